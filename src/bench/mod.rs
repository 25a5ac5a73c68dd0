//! `llite-tui bench`: training, sampling and checkpoint I/O speed on this machine, next to
//! PyTorch / transformers and the raw disk, printed as tables. Random tokens: it measures
//! compute, not data loading.

mod checkpoint_io;
mod load;
mod parallel;
mod reference;
mod sampling;
mod training;

use crate::config::ModelConfig;
use crate::model::stats::{format_bytes, memory_floor, param_count, train_flops_per_token};
use anyhow::Result;
use std::path::Path;
use std::time::Instant;
use training::{cpu_seconds, peak_rss_bytes, reset_peak_rss, train_step_ms};

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
    if wanted(Section::Parallel) {
        parallel_table(steps.max(1), large);
    }
    if !notes.is_empty() {
        println!("no reference: set LLITE_BENCH_REFERENCE=/path/to/python (a Python with torch and transformers), or run benches/reference/setup.sh to create benches/reference/.venv.");
    }
    Ok(())
}

/// Training step: llite-tui, then PyTorch eager on the same model and batch.
fn train_table(steps: usize, large: bool, python: Option<&str>, notes: &mut Vec<String>) {
    let threads = bench_threads();
    println!("threads: {threads} (RAYON_NUM_THREADS / torch.set_num_threads), median of {steps} steps after 1 warm-up");
    println!(
        "{:<20} {:<14} {:>9} {:>10} {:>9} {:>8} {:>5} {:>9} {:>24}",
        "config",
        "impl",
        "params",
        "ms/step",
        "tokens/s",
        "GFLOP/s",
        "cpu",
        "vs torch",
        "peak RSS / f32 floor"
    );
    for case in cases(large) {
        let tokens = (case.batch * case.seq) as f64;
        let flops = train_flops_per_token(&case.model, case.seq);
        let floor = memory_floor(&case.model).total();
        let params = param_count(&case.model).total;
        let rss_cell = |r: Option<u64>| {
            r.filter(|&r| r > 0)
                .map(|r| {
                    format!(
                        "{} / {} = {:.1}x",
                        format_bytes(r),
                        format_bytes(floor),
                        r as f64 / floor as f64
                    )
                })
                .unwrap_or_else(|| "n/a".into())
        };
        reset_peak_rss();
        let (cpu0, wall0) = (cpu_seconds(), Instant::now());
        let ms = train_step_ms(&case, steps);
        let util = match (cpu0, cpu_seconds()) {
            (Some(a), Some(b)) => (b - a) / wall0.elapsed().as_secs_f64(),
            _ => f64::NAN,
        };
        let tps = tokens / (ms / 1000.0);
        let rss = peak_rss_bytes();
        let reference = python.map(|py| reference::train_step(py, &case, steps, threads));
        let ratio = match &reference {
            Some(Ok(r)) => format!("{:.2}x", r.ms_per_step / ms),
            _ => "-".into(),
        };
        println!(
            "{:<20} {:<14} {:>9} {:>10.1} {:>9.0} {:>8.2} {:>5.2} {:>9} {:>24}",
            case.name,
            "llite (flex)",
            params,
            ms,
            tps,
            tps * flops / 1e9,
            util,
            ratio,
            rss_cell(rss)
        );
        match reference {
            Some(Ok(r)) => println!(
                "{:<20} {:<14} {:>9} {:>10.1} {:>9.0} {:>8.2} {:>5.2} {:>9} {:>24}",
                "",
                format!("pytorch {}", r.torch.split('+').next().unwrap_or("")),
                r.params,
                r.ms_per_step,
                r.tokens_per_s,
                r.tokens_per_s * flops / 1e9,
                r.cpu_util,
                "1.00x",
                rss_cell(Some(r.peak_rss_bytes))
            ),
            Some(Err(e)) => {
                println!("{:<20} {:<14} not available: {e}", "", "pytorch eager");
                notes.push(e);
            }
            None => println!(
                "{:<20} {:<14} skipped (LLITE_BENCH_REFERENCE=off)",
                "", "pytorch eager"
            ),
        }
    }
    println!("vs torch = PyTorch ms/step / llite ms/step (above 1: llite is faster); cpu = CPU seconds per wall second.");
    println!(
        "peak RSS of the PyTorch process includes the Python interpreter and libtorch (~0.3 GiB)."
    );
}

/// Greedy sampling: llite-tui, then transformers `generate` on the same weights.
fn sample_table(large: bool, python: Option<&str>, notes: &mut Vec<String>) {
    let threads = bench_threads();
    println!();
    println!(
        "sampling: greedy, KV cache, prompt {} + {} new tokens, best of 3, same weights",
        sampling::PROMPT_LEN,
        sampling::NEW_TOKENS
    );
    println!(
        "{:<20} {:>12} {:>14} {:>8} {:>14}",
        "config", "llite tok/s", "generate tok/s", "ratio", "same tokens"
    );
    let hf_dir = std::env::temp_dir().join(format!("llite-bench-hf-{}", std::process::id()));
    for case in cases(large) {
        let model = sampling::bench_model(&case);
        let ours = sampling::greedy_tokens_per_s(&model, case.model.vocab_size);
        let theirs = match python {
            Some(py) => sampling::write_hf_dir(&model, &case, &hf_dir)
                .map_err(|e| format!("{e:#}"))
                .and_then(|_| {
                    reference::generate(
                        py,
                        &hf_dir,
                        sampling::PROMPT_LEN,
                        sampling::NEW_TOKENS,
                        threads,
                    )
                }),
            None => Err("skipped (LLITE_BENCH_REFERENCE=off)".into()),
        };
        let _ = std::fs::remove_dir_all(&hf_dir);
        match theirs {
            Ok(t) => println!(
                "{:<20} {:>12.1} {:>14.1} {:>7.2}x {:>10}/{}",
                case.name,
                ours.tokens_per_s,
                t.tokens_per_s,
                ours.tokens_per_s / t.tokens_per_s,
                sampling::common_prefix(&ours.ids, &t.ids),
                ours.ids.len()
            ),
            Err(e) => {
                println!(
                    "{:<20} {:>12.1} {:>14} (transformers: {e})",
                    case.name, ours.tokens_per_s, "-"
                );
                if python.is_some() {
                    notes.push(e);
                }
            }
        }
    }
    println!("ratio = llite / transformers (above 1: llite is faster); same tokens = leading greedy ids that agree.");
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
}

/// Data parallelism on this machine: 2 local peers (half the batch each) vs 1 peer.
fn parallel_table(steps: usize, large: bool) {
    println!();
    println!("data parallel: 2 local peers (threads, half the batch each) vs 1 peer, median of {steps} steps; all-reduce over Burn's collective");
    println!(
        "{:<20} {:>10} {:>10} {:>7} {:>12} {:>13} {:>12}",
        "config", "1 peer ms", "2 peers ms", "ratio", "wait in AR", "all-reduce ms", "bytes/peer"
    );
    for case in cases(large) {
        match parallel::measure(&case, steps) {
            Ok(r) => println!(
                "{:<20} {:>10.1} {:>10.1} {:>6.2}x {:>12.1} {:>13.2} {:>12}",
                case.name,
                r.one_peer_ms,
                r.two_peer_ms,
                r.one_peer_ms / r.two_peer_ms,
                r.wait_ms,
                r.allreduce_ms,
                format_bytes(r.bytes_per_peer)
            ),
            Err(e) => println!("{:<20} data parallel failed: {e:#}", case.name),
        }
    }
    println!("ratio = 1-peer / 2-peer step time (above 1: 2 peers are faster); on CPU both peers share the cores. wait in AR = the coordinator's time in the step's all-reduce (waiting for the slower peer included); all-reduce ms = the same buffer with both peers ready.");
}
