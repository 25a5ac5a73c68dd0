//! Text generation with a KV cache: temperature, top-k, top-p, stop on end-of-text, streaming.
//! Serves the `sample` command and the prompt pane; its RNG is its own, so sampling never
//! touches a training stream.

use crate::data::tokenizer::{StreamDecoder, TextTokenizer};
use crate::model::kv_cache::KvCache;
use crate::model::params::tensor_to_vec;
use crate::model::Llama;
use crate::protocol::SampleParams;
use anyhow::{bail, Result};
use burn::tensor::{backend::Backend, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    EndOfText,
    MaxTokens,
    ContextFull,
    Cancelled,
}

/// The result of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub text: String,
    pub tokens: usize,
    pub tokens_per_s: f64,
    pub stop: StopReason,
}

/// Choose the next token from logits with the given knobs (temperature 0 = greedy).
pub fn pick_token(logits: &[f32], params: &SampleParams, rng: &mut ChaCha8Rng) -> u32 {
    if params.temperature <= 0.0 {
        return argmax(logits);
    }
    let t = params.temperature as f64;
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_unstable_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    if params.top_k > 0 {
        order.truncate(params.top_k);
    }
    let max = logits[order[0]] as f64;
    let mut probs: Vec<f64> = order
        .iter()
        .map(|&i| ((logits[i] as f64 - max) / t).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    if params.top_p < 1.0 {
        let mut cumulative = 0.0;
        let mut keep = probs.len();
        for (i, p) in probs.iter().enumerate() {
            cumulative += p;
            if cumulative >= params.top_p as f64 {
                keep = i + 1;
                break;
            }
        }
        probs.truncate(keep);
        order.truncate(keep);
    }
    let total: f64 = probs.iter().sum();
    let mut r = rng.random::<f64>() * total;
    for (p, &i) in probs.iter().zip(&order) {
        if r < *p {
            return i as u32;
        }
        r -= p;
    }
    order[order.len() - 1] as u32
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in logits.iter().enumerate() {
        if *v > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Logits of the last position of `[rows, d_model]` hidden states: only that row goes
/// through the output head (a prompt's other rows would cost a `[rows, vocab]` GEMM for
/// nothing, most of a short prefill on a large vocabulary).
fn last_row<B: Backend>(model: &Llama<B>, hidden: Tensor<B, 2>) -> Vec<f32> {
    let [n, _] = hidden.dims();
    tensor_to_vec(model.logits(hidden.narrow(0, n - 1, 1)))
}

/// Generate a continuation of `prompt`, calling `on_text` with each newly decoded piece.
pub fn generate<B: Backend>(
    model: &Llama<B>,
    tokenizer: &TextTokenizer,
    prompt: &str,
    params: &SampleParams,
    cancel: &AtomicBool,
    mut on_text: impl FnMut(&str),
) -> Result<Generation> {
    let context = model.dims.max_seq_len;
    let mut ids = tokenizer.encode(prompt)?;
    if ids.is_empty() {
        ids.push(tokenizer.eot_id());
    }
    if ids.len() >= context {
        bail!(
            "prompt is {} tokens but the model's context is {context}; shorten the prompt",
            ids.len()
        );
    }
    if let Some(bad) = ids.iter().find(|&&i| i as usize >= model.dims.vocab_size) {
        bail!(
            "token id {bad} is outside the model's vocabulary of {}",
            model.dims.vocab_size
        );
    }
    let device = model.embed_tokens.val().device();
    let mut cache = KvCache::new(model.layers.len());
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let mut decoder = StreamDecoder::new(tokenizer);
    let mut text = String::new();
    let start = Instant::now();
    let to_tensor = |ids: &[u32]| {
        let data: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
        Tensor::<B, 2, Int>::from_data(TensorData::new(data, [1, ids.len()]), &device)
    };
    let mut logits = last_row(model, model.hidden(to_tensor(&ids), 0, Some(&mut cache)));
    let mut produced = 0;
    let stop = loop {
        if cancel.load(Ordering::Relaxed) {
            break StopReason::Cancelled;
        }
        if produced >= params.max_tokens {
            break StopReason::MaxTokens;
        }
        let next = pick_token(&logits, params, &mut rng);
        if tokenizer.is_stop(next) {
            break StopReason::EndOfText;
        }
        produced += 1;
        let piece = decoder.push(next)?;
        if !piece.is_empty() {
            on_text(&piece);
            text.push_str(&piece);
        }
        let position = cache.len();
        if position >= context {
            break StopReason::ContextFull;
        }
        logits = last_row(
            model,
            model.hidden(to_tensor(&[next]), position, Some(&mut cache)),
        );
    };
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    Ok(Generation {
        text,
        tokens: produced,
        tokens_per_s: produced as f64 / secs,
        stop,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_and_filters_behave() {
        let logits = [0.1f32, 3.0, 2.9, -1.0];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let greedy = SampleParams {
            temperature: 0.0,
            ..Default::default()
        };
        assert_eq!(pick_token(&logits, &greedy, &mut rng), 1);
        let top1 = SampleParams {
            temperature: 1.0,
            top_k: 1,
            top_p: 1.0,
            ..Default::default()
        };
        for _ in 0..20 {
            assert_eq!(pick_token(&logits, &top1, &mut rng), 1);
        }
        let nucleus = SampleParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.6,
            ..Default::default()
        };
        for _ in 0..50 {
            let t = pick_token(&logits, &nucleus, &mut rng);
            assert!(t == 1 || t == 2, "{t}");
        }
    }
}
