//! Activation checkpointing and precision: ms/step and peak RSS of each `[train]` mode on the
//! bench models. Each row runs in a child process of its own (this binary, the hidden
//! `--only memory-row` section): the allocator keeps freed memory (`alloc_tuning.rs`), so one
//! process measuring several modes would report the biggest mode's peak for all later ones.

use super::training::{peak_rss_bytes, random_rows};
use super::{cases, BenchCase};
use crate::config::Precision;
use crate::model::stats::format_bytes;
use crate::model::Llama;
use crate::train::backward::{micro_batch, BackwardPlan, MicroBatch};
use crate::train::optim::GradBuffer;
use std::time::Instant;

type Train = burn::backend::Autodiff<burn::backend::Flex>;

/// The child's instructions, in the environment: `case index, mode index, steps`.
const ROW_ENV: &str = "LLITE_BENCH_MEMORY_ROW";

/// The measured modes, the plain f32 path first.
const MODES: [(&str, BackwardPlan); 4] = [
    ("f32", plan(false, Precision::F32)),
    ("f32 + ckpt", plan(true, Precision::F32)),
    ("bf16", plan(false, Precision::Bf16)),
    ("bf16 + ckpt", plan(true, Precision::Bf16)),
];

const fn plan(checkpointing: bool, precision: Precision) -> BackwardPlan {
    BackwardPlan {
        checkpointing,
        precision,
    }
}

/// One row's figures, as the child prints them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct RowResult {
    ms_per_step: f64,
    peak_rss: u64,
}

/// Print the table: one child process per case and mode.
pub fn memory_table(steps: usize, large: bool) {
    println!();
    println!("activation checkpointing and precision: median of {steps} steps after 1 warm-up, each row in a fresh process (peak RSS = the whole process: weights, moments, gradients, activations)");
    println!(
        "{:<20} {:<12} {:>10} {:>8} {:>12} {:>8}",
        "config", "mode", "ms/step", "vs f32", "peak RSS", "vs f32"
    );
    for (c, case) in cases(large).iter().enumerate() {
        let mut base: Option<RowResult> = None;
        for (m, (name, _)) in MODES.iter().enumerate() {
            match run_child(c, m, steps) {
                Ok(r) => {
                    let b = *base.get_or_insert(r);
                    println!(
                        "{:<20} {:<12} {:>10.1} {:>7.2}x {:>12} {:>7.2}x",
                        if m == 0 { case.name } else { "" },
                        name,
                        r.ms_per_step,
                        r.ms_per_step / b.ms_per_step,
                        format_bytes(r.peak_rss),
                        r.peak_rss as f64 / b.peak_rss as f64
                    );
                }
                Err(e) => println!("{:<20} {:<12} failed: {e}", case.name, name),
            }
        }
    }
    println!("ckpt = train.activation_checkpointing; bf16 = train.precision (on CPU a numerics match for GPU runs, not a speed-up: see README).");
}

fn run_child(case: usize, mode: usize, steps: usize) -> Result<RowResult, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current executable: {e}"))?;
    let out = std::process::Command::new(&exe)
        .args(["bench", "--only", "memory-row", "--large"])
        .env(ROW_ENV, format!("{case},{mode},{steps}"))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.starts_with('{'));
    match (out.status.success(), line) {
        (true, Some(l)) => serde_json::from_str(l).map_err(|e| format!("child output: {e}")),
        _ => Err(format!(
            "child exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// The child side: measure the row `LLITE_BENCH_MEMORY_ROW` names and print it as JSON.
pub fn memory_row() -> Result<(), String> {
    let spec = std::env::var(ROW_ENV).map_err(|_| format!("{ROW_ENV} is not set"))?;
    let nums: Vec<usize> = spec
        .split(',')
        .map(|p| {
            p.parse()
                .map_err(|_| format!("{ROW_ENV}: bad value {spec:?}"))
        })
        .collect::<Result<_, _>>()?;
    let [c, m, steps] = nums[..] else {
        return Err(format!("{ROW_ENV}: want case,mode,steps, got {spec:?}"));
    };
    let all = cases(true);
    let case = all.get(c).ok_or(format!("{ROW_ENV}: no case {c}"))?;
    let (_, plan) = MODES.get(m).ok_or(format!("{ROW_ENV}: no mode {m}"))?;
    let ms_per_step = step_ms(case, *plan, steps.max(1));
    let r = RowResult {
        ms_per_step,
        peak_rss: peak_rss_bytes().unwrap_or(0),
    };
    println!(
        "{}",
        serde_json::to_string(&r).expect("plain numbers serialize")
    );
    Ok(())
}

/// Median ms of a full training step (forward, backward as `plan` says, AdamW).
fn step_ms(case: &BenchCase, plan: BackwardPlan, steps: usize) -> f64 {
    let device = Default::default();
    let mut model = Llama::<Train>::new(&case.model, 1, &device);
    let mut optim = super::training::bench_adamw();
    let mut times = Vec::new();
    for i in 0..=steps {
        let rows = random_rows(case.batch, case.seq + 1, case.model.vocab_size, i as u64);
        let start = Instant::now();
        let mut buffer = GradBuffer::default();
        micro_batch(
            &model,
            &MicroBatch::from_rows(rows, None),
            plan,
            &mut buffer,
        );
        let (m, _) = optim.update(model, buffer, 1e-4);
        model = m;
        let _ = crate::model::params::tensor_to_vec(model.norm.val().sum());
        if i > 0 {
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
