//! `llite-tui bench`: training, sampling and checkpoint I/O speed on this machine, next to
//! PyTorch / transformers and the raw disk, printed as tables. Random tokens: it measures
//! compute, not data loading.

mod checkpoint_io;
mod ckpt_stall;
mod eval;
mod first_step;
mod load;
mod memory;
mod parallel;
mod reference;
mod roofline;
mod sample_table;
mod sampling;
mod train_table;
mod training;

use crate::config::ModelConfig;
use crate::model::stats::format_bytes;
use anyhow::Result;
use sample_table::sample_table;
use std::path::Path;
use train_table::train_table;

/// One benchmarked configuration.
#[derive(Debug, Clone)]
pub struct BenchCase {
    pub name: &'static str,
    pub model: ModelConfig,
    pub batch: usize,
    pub seq: usize,
}

/// The tiny preset (batch 8 x 256) and a larger d512/8-layer model at seq 512.
pub fn cases(large: bool) -> Vec<BenchCase> {
    let tiny = ModelConfig {
        vocab_size: 4096,
        d_model: 256,
        n_layers: 4,
        n_heads: 4,
        n_kv_heads: 2,
        ff_dim: 704,
        max_seq_len: 512,
        ..ModelConfig::default()
    };
    let mut v = vec![BenchCase {
        name: "tiny d256 L4 b8x256",
        model: tiny.clone(),
        batch: 8,
        seq: 256,
    }];
    if large {
        let big = ModelConfig {
            vocab_size: 8192,
            d_model: 512,
            n_layers: 8,
            n_heads: 8,
            n_kv_heads: 4,
            ff_dim: 1408,
            max_seq_len: 512,
            ..tiny
        };
        v.push(BenchCase {
            name: "d512 L8 b4x512",
            model: big,
            batch: 4,
            seq: 512,
        });
    }
    v
}

/// One of the bench's tables, to run a subset with `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    /// Training step vs PyTorch eager.
    Train,
    /// Greedy sampling vs transformers `generate`.
    Sample,
    /// Checkpoint save/load vs the raw disk.
    Io,
    /// Time and peak RSS to load a SmolLM2-135M-shaped checkpoint and sample one token.
    Load,
    /// Multiple-choice scoring: shared context vs one row per choice.
    Eval,
    /// Launch to first training step, cold and warm prepared-data cache.
    FirstStep,
    /// Step time and peak RSS with activation checkpointing and bf16, on and off (only when
    /// asked for: each row is a child process, and bf16 is slow on CPU).
    Memory,
    /// One row of the memory table, in the child process it starts (internal).
    #[value(hide = true)]
    MemoryRow,
    /// Data parallelism: 2 local peers vs 1, the all-reduce's cost and bytes per step.
    Parallel,
}

/// Threads both implementations use: RAYON_NUM_THREADS if set, else all cores.
fn bench_threads() -> usize {
    crate::model::fused::worker_threads()
}

/// Print the benchmark tables: training step, sampling and checkpoint I/O, llite-tui next to
/// PyTorch eager / transformers `generate` (when a Python with torch is found) and the disk.
/// Checkpoint I/O is measured in `io_dir` (where checkpoints would go) and cleaned up.
pub fn run_table(steps: usize, large: bool, io_dir: &Path, only: &[Section]) -> Result<()> {
    if only.contains(&Section::MemoryRow) {
        return memory::memory_row().map_err(|e| anyhow::anyhow!("bench memory row: {e}"));
    }
    let wanted = |s: Section| only.is_empty() || only.contains(&s);
    let python = reference::python();
    let mut notes = Vec::new();
    if wanted(Section::Train) {
        train_table(steps.max(1), large, python.as_deref(), &mut notes);
    }
    if wanted(Section::Sample) {
        sample_table(large, python.as_deref(), &mut notes);
    }
    if wanted(Section::Io) {
        io_table(large, io_dir);
    }
    if wanted(Section::Load) {
        load::load_table(io_dir);
    }
    if wanted(Section::Eval) {
        eval::eval_table(&cases(false)[0]);
    }
    if wanted(Section::FirstStep) {
        first_step::first_step_table(io_dir);
    }
    if only.contains(&Section::Memory) {
        memory::memory_table(steps.max(1), large);
    }
    if wanted(Section::Parallel) {
        parallel::parallel_table(steps.max(1), large);
    }
    if !notes.is_empty() {
        println!("no reference: set LLITE_BENCH_REFERENCE=/path/to/python (a Python with torch and transformers), or run benches/reference/setup.sh to create benches/reference/.venv.");
    }
    Ok(())
}

/// Checkpoint save/load next to raw writes/reads of as many bytes in `io_dir`.
fn io_table(large: bool, io_dir: &Path) {
    println!();
    println!(
        "checkpoint I/O in {} (weights + AdamW moments, fsynced; raw = one file of as many bytes)",
        io_dir.display()
    );
    println!(
        "{:<20} {:>10} {:>10} {:>10} {:>8} {:>10} {:>10} {:>8}",
        "config", "size", "save MB/s", "raw write", "ratio", "load MB/s", "raw read", "ratio"
    );
    for case in cases(large) {
        let model = sampling::bench_model(&case);
        let work = io_dir.join(format!(".bench-io-{}", std::process::id()));
        match checkpoint_io::measure(&model, &case, &work) {
            Ok(io) => println!(
                "{:<20} {:>10} {:>10.0} {:>10.0} {:>7.2}x {:>10.0} {:>10.0} {:>7.2}x",
                case.name,
                format_bytes(io.bytes),
                io.save_mb_s,
                io.disk_write_mb_s,
                io.save_mb_s / io.disk_write_mb_s,
                io.load_mb_s,
                io.disk_read_mb_s,
                io.load_mb_s / io.disk_read_mb_s
            ),
            Err(e) => println!("{:<20} checkpoint I/O failed: {e:#}", case.name),
        }
    }
    println!("ratio = checkpoint speed / raw disk speed on the same directory (1.00x: as fast as the disk allows).");
    ckpt_stall::stall_table(large, io_dir);
}
