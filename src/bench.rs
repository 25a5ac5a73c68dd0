//! `llite-tui bench`: training and sampling throughput on this machine, printed as a table.
//! Uses random tokens so it measures compute, not data loading.

use crate::config::ModelConfig;
use crate::model::kv_cache::KvCache;
use crate::model::stats::{format_bytes, memory_floor, param_count, train_flops_per_token};
use crate::model::Llama;
use crate::train::optim::{AdamW, AdamWConfig, GradBuffer};
use anyhow::Result;
use burn::module::AutodiffModule;
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use std::time::Instant;

type Train = burn::backend::Autodiff<burn::backend::Flex>;
type Infer = burn::backend::Flex;

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

fn random_rows(batch: usize, width: usize, vocab: usize, seed: u64) -> Tensor<Train, 2, Int> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let data: Vec<i64> = (0..batch * width)
        .map(|_| rng.random_range(0..vocab as i64))
        .collect();
    Tensor::from_data(TensorData::new(data, [batch, width]), &Default::default())
}

/// Peak resident memory of this process so far, from /proc (Linux only).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Median milliseconds per training step (fwd + bwd + AdamW) over `steps` timed steps.
pub fn train_step_ms(case: &BenchCase, steps: usize) -> f64 {
    let device = Default::default();
    let mut model = Llama::<Train>::new(&case.model, 1, &device);
    let mut optim = AdamW::new(AdamWConfig {
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.1,
        grad_clip: 1.0,
    });
    let mut times = Vec::new();
    for i in 0..=steps {
        let rows = random_rows(case.batch, case.seq + 1, case.model.vocab_size, i as u64);
        let start = Instant::now();
        let loss = model.loss(rows);
        let mut buffer = GradBuffer::default();
        buffer.accumulate::<Train, _>(&model, loss.backward());
        let (m, _) = optim.update(model, buffer, 1e-4);
        model = m;
        // Force the update to finish before stopping the clock.
        let _ = crate::model::params::tensor_to_vec(model.norm.val().sum());
        if i > 0 {
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Tokens per second of greedy generation with the KV cache (prompt 64, 256 new tokens).
pub fn sample_tokens_per_s(case: &BenchCase) -> f64 {
    let device = Default::default();
    let model = Llama::<Train>::new(&case.model, 1, &device).valid();
    let mut cache = KvCache::<Infer>::new(case.model.n_layers);
    let prompt: Vec<i64> = (0..64)
        .map(|i| (i * 7 % case.model.vocab_size) as i64)
        .collect();
    let start = Instant::now();
    let mut logits = model.forward(
        Tensor::from_data(TensorData::new(prompt, [1, 64]), &device),
        0,
        Some(&mut cache),
    );
    let new_tokens = 256;
    for _ in 0..new_tokens {
        let [n, _] = logits.dims();
        let next = logits.narrow(0, n - 1, 1).argmax(1);
        let pos = cache.len();
        logits = model.forward(next, pos, Some(&mut cache));
    }
    let _ = crate::model::params::tensor_to_vec(logits.sum());
    new_tokens as f64 / start.elapsed().as_secs_f64()
}

/// CPU time (user + system) of this process so far, in seconds, from /proc (Linux only).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0) // USER_HZ is 100 on Linux
}

/// Reset the peak-RSS mark (VmHWM) so each config reports its own peak (Linux >= 4.0).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The PyTorch reference script, embedded so the binary runs it from anywhere.
const REFERENCE_SCRIPT: &str = include_str!("../benches/reference/train_step.py");

/// Threads both implementations use: RAYON_NUM_THREADS if set, else all cores.
fn bench_threads() -> usize {
    crate::model::fused::worker_threads()
}

/// Python interpreter for the reference: `LLITE_BENCH_REFERENCE` (a python with torch),
/// else `benches/reference/.venv/bin/python` when it exists, else `python3`.
/// `LLITE_BENCH_REFERENCE=off` skips the reference.
fn reference_python() -> Option<String> {
    match std::env::var("LLITE_BENCH_REFERENCE") {
        Ok(v) if v == "off" || v == "0" => None,
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            let venv = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/benches/reference/.venv/bin/python"
            );
            Some(if std::path::Path::new(venv).exists() {
                venv.to_string()
            } else {
                "python3".to_string()
            })
        }
    }
}

/// What the PyTorch reference measured for one config.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ReferenceResult {
    pub torch: String,
    pub threads: usize,
    pub ms_per_step: f64,
    pub tokens_per_s: f64,
    #[serde(default)]
    pub cpu_util: f64,
    #[serde(default)]
    pub peak_rss_bytes: u64,
    #[serde(default)]
    pub params: u64,
}

/// Run `benches/reference/train_step.py` on the same model and batch; `Err` says why not.
pub fn reference_train_step(
    python: &str,
    case: &BenchCase,
    steps: usize,
    threads: usize,
) -> std::result::Result<ReferenceResult, String> {
    let script = std::env::temp_dir().join(format!("llite-bench-ref-{}.py", std::process::id()));
    std::fs::write(&script, REFERENCE_SCRIPT).map_err(|e| format!("writing script: {e}"))?;
    let m = &case.model;
    let mut cmd = std::process::Command::new(python);
    cmd.arg(&script)
        .args(["--vocab", &m.vocab_size.to_string()])
        .args(["--d-model", &m.d_model.to_string()])
        .args(["--layers", &m.n_layers.to_string()])
        .args(["--heads", &m.n_heads.to_string()])
        .args(["--kv-heads", &m.n_kv_heads.to_string()])
        .args(["--ff", &m.ff_dim.to_string()])
        .args(["--batch", &case.batch.to_string()])
        .args(["--seq", &case.seq.to_string()])
        .args(["--steps", &steps.to_string()])
        .args(["--threads", &threads.to_string()])
        .args(["--rope-theta", &m.rope_theta.to_string()])
        .args(["--norm-eps", &m.norm_eps.to_string()]);
    if !m.tie_embeddings {
        cmd.arg("--untied");
    }
    let out = cmd.output();
    let _ = std::fs::remove_file(&script);
    let out = out.map_err(|e| format!("cannot run `{python}`: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!("`{python}` failed: {last}"));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("");
    serde_json::from_str(line).map_err(|e| format!("bad reference output ({e}): {line}"))
}

/// Print the benchmark table: llite-tui's training step and, when a Python with torch is
/// found, the PyTorch eager reference on the same model and batch, one after the other.
pub fn run_table(steps: usize, large: bool) -> Result<()> {
    let steps = steps.max(1);
    let threads = bench_threads();
    let python = reference_python();
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
    let mut notes = Vec::new();
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
        let reference = python
            .as_deref()
            .map(|py| reference_train_step(py, &case, steps, threads));
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
                "pytorch eager",
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
    println!();
    println!("{:<20} {:>12}", "config", "sample tok/s");
    for case in cases(large) {
        println!("{:<20} {:>12.1}", case.name, sample_tokens_per_s(&case));
    }
    println!("vs torch = PyTorch ms/step / llite ms/step (above 1: llite is faster); cpu = CPU seconds per wall second.");
    println!(
        "peak RSS of the PyTorch process includes the Python interpreter and libtorch (~0.3 GiB)."
    );
    if !notes.is_empty() {
        println!("no PyTorch reference: set LLITE_BENCH_REFERENCE=/path/to/python (a Python with `torch`), or create benches/reference/.venv with `pip install torch`.");
    }
    Ok(())
}
