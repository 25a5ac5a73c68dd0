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
mod sampling;
mod training;

use crate::config::ModelConfig;
use crate::model::stats::{format_bytes, param_count, train_flops_per_token};
use anyhow::Result;
use reference::TorchMode;
use std::path::Path;
use std::time::Instant;
use training::{cpu_seconds, peak_rss_bytes, reset_peak_rss, train_step_ms, StepLoss, StepTimes};

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

/// One printed row of the training table.
struct TrainRow<'a> {
    config: &'a str,
    implementation: String,
    params: u64,
    ms: f64,
    tokens_per_s: f64,
    gflops: f64,
    cpu: String,
    versus: String,
    memory: String,
}

const TRAIN_HEADER: [&str; 10] = [
    "config",
    "impl",
    "params",
    "ms/step",
    "tokens/s",
    "GFLOP/s",
    "roof",
    "cpu",
    "vs torch",
    "peak RSS / planned",
];

fn print_train_row(r: &TrainRow, roofline: f64) {
    let roof = if roofline > 0.0 {
        format!("{:.0}%", 100.0 * r.gflops / roofline)
    } else {
        "-".into()
    };
    println!(
        "{:<20} {:<18} {:>9} {:>9.1} {:>9.0} {:>8.2} {:>5} {:>5} {:>13} {:>24}",
        r.config,
        r.implementation,
        r.params,
        r.ms,
        r.tokens_per_s,
        r.gflops,
        roof,
        r.cpu,
        r.versus,
        r.memory
    );
}

/// Training step: the roofline GEMM table, then per config llite-tui (pretraining and SFT's
/// masked loss), PyTorch eager and `torch.compile` on the same model and batch.
fn train_table(steps: usize, large: bool, python: Option<&str>, notes: &mut Vec<String>) {
    let threads = bench_threads();
    let cases = cases(large);
    let (gemm_rows, gemm_note) = roofline::measure(&cases, python, threads);
    let roof = roofline::print_table(&gemm_rows);
    if let Some(e) = gemm_note {
        println!("pytorch GEMM not available: {e}");
        notes.push(e);
    }
    println!("threads: {threads} (RAYON_NUM_THREADS / torch.set_num_threads), median of {steps} steps after the warm-up; spread = min-max");
    let h = TRAIN_HEADER;
    println!(
        "{:<20} {:<18} {:>9} {:>9} {:>9} {:>8} {:>5} {:>5} {:>13} {:>24}",
        h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]
    );
    let mut torch_version = None;
    for case in cases {
        let tokens = (case.batch * case.seq) as f64;
        let flops = train_flops_per_token(&case.model, case.seq);
        let planned = crate::memory_plan::plan(crate::memory_plan::PlanInput {
            model: &case.model,
            rows_per_device: case.batch,
            seq_len: case.seq,
            precision: crate::config::Precision::F32,
            activation_checkpointing: false,
            device: crate::memory_plan::PlanDevice::Host,
        })
        .map(|p| p.total() + crate::memory_plan::HOST_PROCESS_OVERHEAD)
        .unwrap_or(0);
        let params = param_count(&case.model).total;
        let rss_cell = |r: Option<u64>| {
            r.filter(|&r| r > 0)
                .map(|r| {
                    format!(
                        "{} / {} = {:.2}x",
                        format_bytes(r),
                        format_bytes(planned),
                        r as f64 / planned as f64
                    )
                })
                .unwrap_or_else(|| "n/a".into())
        };
        reset_peak_rss();
        let (cpu0, wall0) = (cpu_seconds(), Instant::now());
        let ours = train_step_ms(&case, steps, StepLoss::Full);
        let util = match (cpu0, cpu_seconds()) {
            (Some(a), Some(b)) => (b - a) / wall0.elapsed().as_secs_f64(),
            _ => f64::NAN,
        };
        let rss = peak_rss_bytes();
        let sft = train_step_ms(&case, steps, StepLoss::Masked);
        let references: Vec<(TorchMode, Option<Result<reference::TrainResult, String>>)> =
            [TorchMode::Eager, TorchMode::Compile]
                .into_iter()
                .map(|mode| {
                    (
                        mode,
                        python.map(|py| reference::train_step(py, &case, steps, threads, mode)),
                    )
                })
                .collect();
        let eager_ms = match &references[0].1 {
            Some(Ok(r)) => Some(r.ms_per_step),
            _ => None,
        };
        let versus = |ms: f64| eager_ms.map_or("-".into(), |e| format!("{:.2}x", e / ms));
        let row = |implementation: String,
                   ms: &StepTimes,
                   cpu: String,
                   versus: String,
                   memory: String| TrainRow {
            config: "",
            implementation,
            params,
            ms: ms.median,
            tokens_per_s: tokens / (ms.median / 1000.0),
            gflops: tokens / (ms.median / 1000.0) * flops / 1e9,
            cpu,
            versus,
            memory,
        };
        print_train_row(
            &TrainRow {
                config: case.name,
                ..row(
                    format!("llite {}", ours.spread()),
                    &ours,
                    format!("{util:.2}"),
                    versus(ours.median),
                    rss_cell(rss),
                )
            },
            roof,
        );
        print_train_row(
            &row(
                format!("llite sft {}", sft.spread()),
                &sft,
                String::new(),
                format!("{} {:.2}x pt", versus(sft.median), ours.median / sft.median),
                String::new(),
            ),
            roof,
        );
        for (mode, reference) in references {
            let name = match mode {
                TorchMode::Eager => "pytorch eager",
                TorchMode::Compile => "torch.compile",
            };
            match reference {
                Some(Ok(r)) => {
                    torch_version = Some(r.torch.clone());
                    let ms = StepTimes::single(r.ms_per_step, r.ms_min, r.ms_max);
                    print_train_row(
                        &TrainRow {
                            params: r.params,
                            ..row(
                                format!("{name} {}", ms.spread()),
                                &ms,
                                format!("{:.2}", r.cpu_util),
                                versus(r.ms_per_step),
                                rss_cell(Some(r.peak_rss_bytes)),
                            )
                        },
                        roof,
                    )
                }
                Some(Err(e)) => {
                    println!("{:<20} {:<18} not available: {e}", "", name);
                    notes.push(e);
                }
                None => println!(
                    "{:<20} {:<18} skipped (LLITE_BENCH_REFERENCE=off)",
                    "", name
                ),
            }
        }
    }
    if let Some(v) = torch_version {
        println!("PyTorch {v}.");
    }
    println!("roof = GFLOP/s / the roofline above; vs torch = PyTorch eager ms/step / this row's (above 1: faster than eager); cpu = CPU seconds per wall second.");
    println!("llite sft = the same step with SFT's masked loss (half the targets masked); \"x pt\" = its speed / pretraining's; [a-b] = fastest-slowest step in ms.");
    println!(
        "planned = the memory plan (`llite-tui info`) plus the process overhead; peak RSS of the PyTorch process includes the Python interpreter and libtorch (~0.3 GiB)."
    );
}

/// The sampling table's cases: the training cases, and with `large` a SmolLM2-135M-shaped
/// model (synthetic weights; the shape of a real model people sample from).
fn sample_cases(large: bool) -> Vec<BenchCase> {
    let mut v = cases(large);
    if large {
        v.push(BenchCase {
            name: "SmolLM2-135M shape",
            model: load::smollm2_135m(),
            batch: 1,
            seq: sampling::PROMPT_LEN,
        });
    }
    v
}

/// Greedy sampling: llite-tui, then transformers `generate` on the same weights.
fn sample_table(large: bool, python: Option<&str>, notes: &mut Vec<String>) {
    let threads = bench_threads();
    println!();
    println!(
        "sampling: greedy, KV cache, prompt {} + {} new tokens, best of 3, same weights (loaded before timing)",
        sampling::PROMPT_LEN,
        sampling::NEW_TOKENS
    );
    println!(
        "{:<20} {:>12} {:>14} {:>8} {:>11} {:>13} {:>12}",
        "config",
        "llite tok/s",
        "generate tok/s",
        "ratio",
        "llite TTFT",
        "generate TTFT",
        "same tokens"
    );
    let hf_dir = std::env::temp_dir().join(format!("llite-bench-hf-{}", std::process::id()));
    for case in sample_cases(large) {
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
        drop(model);
        let _ = std::fs::remove_dir_all(&hf_dir);
        let ms = |s: f64| format!("{:.0} ms", s * 1000.0);
        match theirs {
            Ok(t) => println!(
                "{:<20} {:>12.1} {:>14.1} {:>7.2}x {:>11} {:>13} {:>8}/{}",
                case.name,
                ours.tokens_per_s,
                t.tokens_per_s,
                ours.tokens_per_s / t.tokens_per_s,
                ms(ours.first_token_s),
                t.first_token_s.map(ms).unwrap_or_else(|| "-".into()),
                sampling::common_prefix(&ours.ids, &t.ids),
                ours.ids.len()
            ),
            Err(e) => {
                println!(
                    "{:<20} {:>12.1} {:>14} {:>8} {:>11} (transformers: {e})",
                    case.name,
                    ours.tokens_per_s,
                    "-",
                    "-",
                    ms(ours.first_token_s)
                );
                if python.is_some() {
                    notes.push(e);
                }
            }
        }
    }
    println!("ratio = llite / transformers (above 1: llite is faster); TTFT = time to the first new token; same tokens = leading greedy ids that agree.");
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
