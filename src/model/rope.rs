//! Rotary position embeddings in the Hugging Face "rotate_half" layout (the first half of each
//! head pairs with the second half), so checkpoints move to and from transformers unchanged.
//! Burn's own `RotaryEncoding` rotates interleaved pairs instead, hence this module.

use burn::tensor::{backend::Backend, Tensor, TensorData};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// cos and sin tables for positions `start..start+len`, shaped `[1, 1, len, head_dim]` so they
/// broadcast over batch and heads.
pub fn rope_tables<B: Backend>(
    head_dim: usize,
    theta: f64,
    start: usize,
    len: usize,
    device: &B::Device,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let tables = rope_values_cached(head_dim, theta, start, len);
    let shape = [1, 1, len, head_dim];
    (
        Tensor::from_data(TensorData::new(tables.0.clone(), shape), device),
        Tensor::from_data(TensorData::new(tables.1.clone(), shape), device),
    )
}

/// `rope_values`, computed once per (head_dim, theta, start, len) and shared: training calls
/// it every step with the same arguments, and the f64 sin/cos cost shows in profiles.
pub fn rope_values_cached(
    head_dim: usize,
    theta: f64,
    start: usize,
    len: usize,
) -> Arc<(Vec<f32>, Vec<f32>)> {
    type Key = (usize, u64, usize, usize);
    type Tables = Arc<(Vec<f32>, Vec<f32>)>;
    static CACHE: OnceLock<Mutex<HashMap<Key, Tables>>> = OnceLock::new();
    let key = (head_dim, theta.to_bits(), start, len);
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(t) = cache.get(&key) {
        return t.clone();
    }
    // Sampling asks for one new position per token: keep the cache bounded.
    if cache.len() >= 64 {
        cache.clear();
    }
    let t = Arc::new(rope_values(head_dim, theta, start, len));
    cache.insert(key, t.clone());
    t
}

/// The raw table values; computed in f64 and rounded once so every backend sees the same
/// numbers.
pub fn rope_values(head_dim: usize, theta: f64, start: usize, len: usize) -> (Vec<f32>, Vec<f32>) {
    let half = head_dim / 2;
    let mut cos = Vec::with_capacity(len * head_dim);
    let mut sin = Vec::with_capacity(len * head_dim);
    for pos in start..start + len {
        for i in 0..head_dim {
            let freq = 1.0 / theta.powf((2 * (i % half)) as f64 / head_dim as f64);
            let angle = pos as f64 * freq;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    (cos, sin)
}

/// Apply RoPE to `x` of shape `[batch, heads, seq, head_dim]`: x*cos + rotate_half(x)*sin.
pub fn apply_rope<B: Backend>(
    x: Tensor<B, 4>,
    cos: &Tensor<B, 4>,
    sin: &Tensor<B, 4>,
) -> Tensor<B, 4> {
    let head_dim = x.dims()[3];
    let half = head_dim / 2;
    let x1 = x.clone().narrow(3, 0, half);
    let x2 = x.clone().narrow(3, half, half);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos.clone() + rotated * sin.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    /// Rotate one vector by hand with the textbook formula for the rotate_half layout.
    fn direct_rope(v: &[f32], pos: usize, theta: f64) -> Vec<f32> {
        let d = v.len();
        let half = d / 2;
        let mut out = vec![0f32; d];
        for i in 0..half {
            let freq = 1.0 / theta.powf(2.0 * i as f64 / d as f64);
            let (s, c) = (pos as f64 * freq).sin_cos();
            let (a, b) = (v[i] as f64, v[i + half] as f64);
            out[i] = (a * c - b * s) as f32;
            out[i + half] = (b * c + a * s) as f32;
        }
        out
    }

    #[test]
    fn rope_matches_direct_rotation() {
        let device = Default::default();
        let (heads, seq, dim, theta) = (2, 5, 8, 10000.0);
        let values: Vec<f32> = (0..heads * seq * dim)
            .map(|i| (i as f32 * 0.37).sin())
            .collect();
        let x = Tensor::<Flex, 4>::from_data(
            TensorData::new(values.clone(), [1, heads, seq, dim]),
            &device,
        );
        let (cos, sin) = rope_tables::<Flex>(dim, theta, 3, seq, &device);
        let out = apply_rope(x, &cos, &sin)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        for h in 0..heads {
            for t in 0..seq {
                let base = (h * seq + t) * dim;
                let expect = direct_rope(&values[base..base + dim], 3 + t, theta);
                for i in 0..dim {
                    assert!((out[base + i] - expect[i]).abs() < 1e-5, "h{h} t{t} i{i}");
                }
            }
        }
    }

    #[test]
    fn rope_preserves_norm() {
        let (cos, sin) = rope_values(16, 500000.0, 100, 1);
        for (c, s) in cos.iter().zip(&sin) {
            assert!((c * c + s * s - 1.0).abs() < 1e-6);
        }
    }
}
