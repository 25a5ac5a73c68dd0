//! The training table of `bench`: the roofline GEMMs, then per config llite-tui's step
//! (pretraining and SFT's masked loss) next to PyTorch eager and `torch.compile`.

use super::reference::{self, TorchMode};
use super::training::{
    cpu_seconds, peak_rss_bytes, reset_peak_rss, sft_vs_pretraining, train_step_ms, StepLoss,
    StepTimes,
};
use super::{bench_threads, cases, roofline};
use crate::model::stats::{format_bytes, param_count, train_flops_per_token};
use std::time::Instant;

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
pub(super) fn train_table(
    steps: usize,
    large: bool,
    python: Option<&str>,
    notes: &mut Vec<String>,
) {
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
        let (sft, sft_ratio) = sft_vs_pretraining(&case, steps);
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
                format!(
                    "{} {:.2}x pt [{:.2}-{:.2}]",
                    versus(sft.median),
                    sft_ratio.median,
                    sft_ratio.min,
                    sft_ratio.max
                ),
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
