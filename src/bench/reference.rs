//! The PyTorch side of the side-by-side benchmark: finding a Python with torch and running the
//! reference scripts in `benches/reference/` on the same model, batch and weights.

use super::BenchCase;
use serde::de::DeserializeOwned;
use std::path::Path;

/// The training-step reference, embedded so the binary runs it from anywhere.
const TRAIN_STEP_SCRIPT: &str = include_str!("../../benches/reference/train_step.py");
/// The GEMM reference of the roofline row, embedded for the same reason.
const GEMM_SCRIPT: &str = include_str!("../../benches/reference/gemm.py");
/// The `generate` reference, embedded for the same reason.
const GENERATE_SCRIPT: &str = include_str!("../../benches/reference/generate.py");

/// Python interpreter for the reference: `LLITE_BENCH_REFERENCE` (a python with torch),
/// else `benches/reference/.venv/bin/python` when it exists (`benches/reference/setup.sh`
/// creates it), else `python3`. `LLITE_BENCH_REFERENCE=off` skips the reference.
pub fn python() -> Option<String> {
    match std::env::var("LLITE_BENCH_REFERENCE") {
        Ok(v) if v == "off" || v == "0" => None,
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            let venv = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/benches/reference/.venv/bin/python"
            );
            Some(if Path::new(venv).exists() {
                venv.to_string()
            } else {
                "python3".to_string()
            })
        }
    }
}

/// What the PyTorch training reference measured for one config.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct TrainResult {
    pub torch: String,
    pub ms_per_step: f64,
    /// Fastest and slowest timed step (0 from an older script).
    #[serde(default)]
    pub ms_min: f64,
    #[serde(default)]
    pub ms_max: f64,
    #[serde(default)]
    pub cpu_util: f64,
    #[serde(default)]
    pub peak_rss_bytes: u64,
    #[serde(default)]
    pub params: u64,
}

/// What transformers `generate` measured on the exported bench weights.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct GenerateResult {
    pub tokens_per_s: f64,
    /// Time to the first new token after loading (absent from older scripts).
    #[serde(default)]
    pub first_token_s: Option<f64>,
    /// The greedy continuation, to check both sides computed the same thing.
    pub ids: Vec<u32>,
}

/// Run a reference script with arguments; parse the last JSON line of its stdout.
fn run_script<T: DeserializeOwned>(
    python: &str,
    name: &str,
    script: &str,
    args: &[String],
) -> Result<T, String> {
    let path = std::env::temp_dir().join(format!("llite-bench-{name}-{}.py", std::process::id()));
    std::fs::write(&path, script).map_err(|e| format!("writing {}: {e}", path.display()))?;
    let out = std::process::Command::new(python)
        .arg(&path)
        .args(args)
        .output();
    let _ = std::fs::remove_file(&path);
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

/// Which PyTorch a training reference row runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TorchMode {
    Eager,
    /// `torch.compile` (inductor) of the model; the optimizer step stays eager.
    Compile,
}

/// `train_step.py` on the same model and batch; `Err` says why not.
pub fn train_step(
    python: &str,
    case: &BenchCase,
    steps: usize,
    threads: usize,
    mode: TorchMode,
) -> Result<TrainResult, String> {
    let m = &case.model;
    let mut args: Vec<String> = [
        ("--vocab", m.vocab_size.to_string()),
        ("--d-model", m.d_model.to_string()),
        ("--layers", m.n_layers.to_string()),
        ("--heads", m.n_heads.to_string()),
        ("--kv-heads", m.n_kv_heads.to_string()),
        ("--ff", m.ff_dim.to_string()),
        ("--batch", case.batch.to_string()),
        ("--seq", case.seq.to_string()),
        ("--steps", steps.to_string()),
        ("--threads", threads.to_string()),
        ("--rope-theta", m.rope_theta.to_string()),
        ("--norm-eps", m.norm_eps.to_string()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect();
    if !m.tie_embeddings {
        args.push("--untied".into());
    }
    if mode == TorchMode::Compile {
        args.push("--compile".into());
    }
    run_script(python, "train", TRAIN_STEP_SCRIPT, &args)
}

/// PyTorch's best GFLOP/s for each `MxKxN` product in `shapes`, in order.
pub fn gemm(
    python: &str,
    shapes: &[String],
    threads: usize,
    repeats: usize,
) -> Result<Vec<f64>, String> {
    #[derive(serde::Deserialize)]
    struct Shape {
        gflops: f64,
    }
    #[derive(serde::Deserialize)]
    struct Out {
        shapes: Vec<Shape>,
    }
    let args = [
        "--shapes".to_string(),
        shapes.join(","),
        "--threads".into(),
        threads.to_string(),
        "--repeats".into(),
        repeats.to_string(),
    ];
    let out: Out = run_script(python, "gemm", GEMM_SCRIPT, &args)?;
    if out.shapes.len() != shapes.len() {
        return Err(format!(
            "gemm.py measured {} shapes, asked for {}",
            out.shapes.len(),
            shapes.len()
        ));
    }
    Ok(out.shapes.into_iter().map(|s| s.gflops).collect())
}

/// `generate.py` on the Hugging Face directory `hf_dir` (the bench model's exact weights).
pub fn generate(
    python: &str,
    hf_dir: &Path,
    prompt_len: usize,
    new_tokens: usize,
    threads: usize,
) -> Result<GenerateResult, String> {
    let args = [
        "--model".to_string(),
        hf_dir.display().to_string(),
        "--prompt-len".into(),
        prompt_len.to_string(),
        "--new".into(),
        new_tokens.to_string(),
        "--threads".into(),
        threads.to_string(),
    ];
    run_script(python, "generate", GENERATE_SCRIPT, &args)
}
