//! Loading for inference: wall time and peak RSS of `llite-tui sample --max-tokens 1` (load,
//! tokenizer, one token) on a SmolLM2-135M-shaped checkpoint, measured on a child process so
//! its peak (VmHWM, polled from procfs) is the load's alone. Hand-written: one procfs read, no
//! crate offers a child's peak RSS. `LLITE_BENCH_BASELINE=/path/to/llite-tui` measures another
//! build on the same checkpoint (before/after figures).

use super::checkpoint_io::zero_moments;
use crate::config::{ModelConfig, RunConfig};
use crate::data::tokenizer::TextTokenizer;
use crate::model::stats::format_bytes;
use crate::store::checkpoint::{self, CheckpointData};
use crate::store::hf_layout::from_hf;
use crate::store::structure::expected_weights;
use crate::store::trainer_state::initial_trainer_state;
use crate::store::NamedTensor;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Timed runs per binary; the best wall time and the largest peak are reported.
const REPEATS: usize = 3;

/// SmolLM2-135M's shape: 30 layers, d576, ff1536, 9/3 heads, vocab 49152, tied.
pub fn smollm2_135m() -> ModelConfig {
    ModelConfig {
        vocab_size: 49152,
        d_model: 576,
        n_layers: 30,
        n_heads: 9,
        n_kv_heads: 3,
        ff_dim: 1536,
        max_seq_len: 2048,
        rope_theta: 100000.0,
        tie_embeddings: true,
        ..ModelConfig::default()
    }
}

/// One measured binary.
pub struct LoadRun {
    pub wall_s: f64,
    pub peak_rss: u64,
}

/// A checkpoint of `m` with small random weights; with zero moments too when `moments` (as
/// training writes one: builds before lean loading cannot read a checkpoint without them).
fn write_checkpoint(m: &ModelConfig, dir: &Path, moments: bool) -> Result<u64> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let hf: Vec<NamedTensor> = expected_weights(m)
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let data = (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.04
                })
                .collect();
            NamedTensor { name, shape, data }
        })
        .collect();
    let weights = from_hf(hf, m.tie_embeddings)?;
    let f32_bytes = weights.iter().map(|t| t.data.len() as u64 * 4).sum();
    // GPT-2's BPE: a real-sized vocabulary (50,257, near SmolLM2's 49,152), every id the
    // random model can emit decodable.
    let tokenizer = TextTokenizer::gpt2()?;
    let mut config = RunConfig {
        model: m.clone(),
        ..RunConfig::default()
    };
    config.train.seq_len = config.train.seq_len.min(m.max_seq_len);
    let data = CheckpointData {
        trainer: initial_trainer_state(&config, "bench-load".into(), tokenizer.vocab_size(), None),
        model_config: m.clone(),
        moments: moments.then(|| zero_moments(&weights)),
        weights,
        tokenizer_json: tokenizer.to_json_string()?,
        eos_token_id: tokenizer.eot_id(),
        tokenizer_meta: Some(tokenizer.meta()),
    };
    checkpoint::save_to(dir, &data)?;
    Ok(f32_bytes)
}

/// Peak RSS (VmHWM) of a running process, from procfs; `None` once it has exited.
fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Run `bin sample` on `ckpt` for one token and return its wall time and peak RSS. The peak
/// is polled from procfs (VmHWM only grows) every millisecond until the child exits: wait4's
/// `ru_maxrss` would report this (large) bench process's own peak, inherited through exec.
fn measure_child(bin: &Path, ckpt: &Path) -> Result<LoadRun> {
    let start = Instant::now();
    let mut child = Command::new(bin)
        .args(["sample", "--checkpoint"])
        .arg(ckpt)
        .args([
            "--prompt",
            "Hello",
            "--max-tokens",
            "1",
            "--temperature",
            "0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    let mut peak_rss = 0;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        peak_rss = peak_rss.max(vm_hwm(child.id()).unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    let wall_s = start.elapsed().as_secs_f64();
    if !status.success() {
        // Its few lines of stderr fit the pipe; read after the exit to name the failure.
        let mut text = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut text);
        }
        bail!(
            "{} sample failed ({status}): {}",
            bin.display(),
            text.lines().last().unwrap_or("")
        );
    }
    if peak_rss == 0 {
        bail!("no peak RSS: /proc/<pid>/status is not readable here (Linux only)");
    }
    Ok(LoadRun { wall_s, peak_rss })
}

fn best_of(bin: &Path, ckpt: &Path) -> Result<LoadRun> {
    let mut best = LoadRun {
        wall_s: f64::MAX,
        peak_rss: 0,
    };
    for _ in 0..REPEATS {
        let run = measure_child(bin, ckpt)?;
        best.wall_s = best.wall_s.min(run.wall_s);
        best.peak_rss = best.peak_rss.max(run.peak_rss);
    }
    Ok(best)
}

/// Print the load table: this binary (and `LLITE_BENCH_BASELINE`, if set) sampling one token
/// from a SmolLM2-135M-shaped checkpoint written in `io_dir` and removed afterwards.
pub fn load_table(io_dir: &Path) {
    println!();
    let m = smollm2_135m();
    println!("load: `sample --max-tokens 1` on a SmolLM2-135M-shaped checkpoint (30 layers, d576, ff1536, 9/3 heads, vocab 49152, tied); child process, best of {REPEATS}");
    println!(
        "{:<28} {:>12} {:>24}",
        "binary", "wall (s)", "peak RSS / f32 weights"
    );
    let dir = io_dir.join("bench-load-135m");
    if std::fs::symlink_metadata(&dir).is_ok() {
        println!("load bench skipped: {} exists; move it away", dir.display());
        return;
    }
    let result = (|| -> Result<()> {
        let mut bins = vec![("this build".to_string(), std::env::current_exe()?)];
        if let Ok(b) = std::env::var("LLITE_BENCH_BASELINE") {
            bins.push((format!("baseline {b}"), b.into()));
        }
        let f32_bytes = write_checkpoint(&m, &dir, bins.len() > 1)?;
        for (label, bin) in bins {
            match best_of(&bin, &dir) {
                Ok(r) => println!(
                    "{:<28} {:>12.2} {:>24}",
                    label,
                    r.wall_s,
                    format!(
                        "{} / {} = {:.2}x",
                        format_bytes(r.peak_rss),
                        format_bytes(f32_bytes),
                        r.peak_rss as f64 / f32_bytes as f64
                    )
                ),
                Err(e) => println!("{label:<28} failed: {e:#}"),
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        println!("load bench failed: {e:#}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
