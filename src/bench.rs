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

/// Print the benchmark table.
pub fn run_table(steps: usize, large: bool) -> Result<()> {
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>12} {:>12} {:>14}",
        "config", "params", "ms/step", "tokens/s", "GFLOP/s", "sample tok/s", "peak RSS/floor"
    );
    for case in cases(large) {
        let ms = train_step_ms(&case, steps.max(1));
        let tokens = (case.batch * case.seq) as f64;
        let tps = tokens / (ms / 1000.0);
        let gflops = tps * train_flops_per_token(&case.model, case.seq) / 1e9;
        let sample = sample_tokens_per_s(&case);
        let floor = memory_floor(&case.model).total();
        let rss = peak_rss_bytes()
            .map(|r| {
                format!(
                    "{} / {} = {:.1}x",
                    format_bytes(r),
                    format_bytes(floor),
                    r as f64 / floor as f64
                )
            })
            .unwrap_or_else(|| "n/a".into());
        println!(
            "{:<22} {:>10} {:>10.1} {:>10.0} {:>12.2} {:>12.1} {:>14}",
            case.name,
            param_count(&case.model).total,
            ms,
            tps,
            gflops,
            sample,
            rss
        );
    }
    println!(
        "threads: {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    Ok(())
}
