//! Sampling speed: greedy generation with the KV cache on the bench model, and the same weights
//! written as a Hugging Face directory so transformers `generate` can run them side by side.

use super::BenchCase;
use crate::model::kv_cache::KvCache;
use crate::model::params::{export_params, tensor_to_vec};
use crate::model::Llama;
use crate::store::{hf_layout as hf, safetensors_io};
use anyhow::{Context, Result};
use burn::tensor::{Int, Tensor, TensorData};
use std::path::Path;
use std::time::Instant;

type Infer = burn::backend::Flex;

/// Prompt length and new tokens of the sampling benchmark (the 64 + 256).
pub const PROMPT_LEN: usize = 64;
/// New tokens generated per timed run.
pub const NEW_TOKENS: usize = 256;
/// Timed runs; the best is reported on both sides (first-run page faults are not sampling).
const REPEATS: usize = 3;

/// The bench's synthetic prompt (token i is i*7 mod vocab), shared with `generate.py`.
pub fn prompt(vocab: usize) -> Vec<i64> {
    (0..PROMPT_LEN).map(|i| (i * 7 % vocab) as i64).collect()
}

/// The inference model every sampling measurement uses (seed 1, as in training).
pub fn bench_model(case: &BenchCase) -> Llama<Infer> {
    Llama::<Infer>::new(&case.model, 1, &Default::default())
}

/// Greedy generation result: best tokens/s and time to first token over the repeats, and the
/// generated ids.
pub struct SampleRun {
    pub tokens_per_s: f64,
    /// Seconds from the prompt to the first new token's id (prefill + output head + argmax).
    pub first_token_s: f64,
    pub ids: Vec<u32>,
}

/// Tokens per second of greedy generation with the KV cache, timed from the prompt to the
/// last new token (prefill included, as transformers `generate` is timed), and the time to the
/// first token. The model is loaded before the clock starts.
pub fn greedy_tokens_per_s(model: &Llama<Infer>, vocab: usize) -> SampleRun {
    let device = Default::default();
    let mut best = 0.0f64;
    let mut first_best = f64::INFINITY;
    let mut ids = Vec::new();
    let argmax = |logits: Tensor<Infer, 2>| tensor_to_vec(logits.argmax(1).float())[0] as u32;
    for _ in 0..REPEATS {
        let mut cache = KvCache::<Infer>::new(model.layers.len());
        let start = Instant::now();
        let prompt = Tensor::<Infer, 2, Int>::from_data(
            TensorData::new(prompt(vocab), [1, PROMPT_LEN]),
            &device,
        );
        let h = model.hidden(prompt, 0, Some(&mut cache));
        let mut id = argmax(model.logits(h.narrow(0, PROMPT_LEN - 1, 1)));
        first_best = first_best.min(start.elapsed().as_secs_f64());
        let mut run_ids = Vec::with_capacity(NEW_TOKENS);
        for i in 0..NEW_TOKENS {
            run_ids.push(id);
            if i + 1 == NEW_TOKENS {
                break;
            }
            let next = Tensor::<Infer, 2, Int>::from_data(
                TensorData::new(vec![id as i64], [1, 1]),
                &device,
            );
            let pos = cache.len();
            id = argmax(model.forward(next, pos, Some(&mut cache)));
        }
        best = best.max(NEW_TOKENS as f64 / start.elapsed().as_secs_f64());
        ids = run_ids;
    }
    SampleRun {
        tokens_per_s: best,
        first_token_s: first_best,
        ids,
    }
}

/// Write `model` as a LlamaForCausalLM directory (config.json + model.safetensors).
pub fn write_hf_dir(model: &Llama<Infer>, case: &BenchCase, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let weights = export_params(model);
    safetensors_io::write_file_synced(&dir.join("model.safetensors"), &hf::to_hf(&weights)?, None)?;
    let config = hf::config_json(&case.model, 0);
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config)?,
    )?;
    Ok(())
}

/// How many leading ids two greedy continuations share (random-init logits are nearly flat,
/// so float rounding may legitimately split them after a while).
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
