//! Rotary position embeddings in the Hugging Face "rotate_half" layout (the first half of each
//! head pairs with the second half), so checkpoints move to and from transformers unchanged.
//! Burn's own `RotaryEncoding` rotates interleaved pairs instead, and knows no frequency
//! scaling (transformers' `linear` and Llama 3's `llama3`), hence this module.

use crate::config::{ModelConfig, RopeScaling};
use burn::tensor::{backend::Backend, Tensor, TensorData};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Everything the rotary tables depend on, so one value travels from the config to every
/// place that builds tables (training's fused kernel, the generic forward, generation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RopeSpec {
    /// Width of one attention head (the tables are `head_dim` wide).
    pub head_dim: usize,
    /// The base `theta` of the frequencies.
    pub theta: f64,
    /// Long-context stretching of the frequencies.
    pub scaling: RopeScaling,
}

impl RopeSpec {
    /// The spec of a (validated) model config.
    pub fn from_config(m: &ModelConfig) -> Self {
        Self {
            head_dim: m.resolved_head_dim(),
            theta: m.rope_theta,
            scaling: m.rope_scaling,
        }
    }

    /// Plain RoPE of `head_dim` and `theta`, for tests and benchmarks.
    pub fn plain(head_dim: usize, theta: f64) -> Self {
        Self {
            head_dim,
            theta,
            scaling: RopeScaling::None,
        }
    }
}

/// The `head_dim / 2` inverse frequencies, computed as transformers does
/// (`_compute_default_rope_parameters`, then `linear`: divided by the factor, or
/// `_compute_llama3_parameters`), in f64 so every backend sees the same numbers.
pub fn inv_freqs(spec: &RopeSpec) -> Vec<f64> {
    let d = spec.head_dim;
    let plain = (0..d / 2).map(|i| 1.0 / spec.theta.powf((2 * i) as f64 / d as f64));
    match spec.scaling {
        RopeScaling::None => plain.collect(),
        RopeScaling::Linear { factor } => plain.map(|f| f / factor).collect(),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => {
            let old_context = original_max_position_embeddings as f64;
            let low_freq_wavelen = old_context / low_freq_factor;
            let high_freq_wavelen = old_context / high_freq_factor;
            plain
                .map(|inv| {
                    let wavelen = 2.0 * std::f64::consts::PI / inv;
                    // Long wavelengths (low frequencies) are stretched, short ones kept.
                    let scaled = if wavelen > low_freq_wavelen {
                        inv / factor
                    } else {
                        inv
                    };
                    // transformers: ~(wavelen < high) & ~(wavelen > low); wavelen is never NaN here.
                    let medium = wavelen >= high_freq_wavelen && wavelen <= low_freq_wavelen;
                    if !medium {
                        return scaled;
                    }
                    let smooth = (old_context / wavelen - low_freq_factor)
                        / (high_freq_factor - low_freq_factor);
                    (1.0 - smooth) * scaled / factor + smooth * scaled
                })
                .collect()
        }
    }
}

/// cos and sin tables for positions `start..start+len`, shaped `[1, 1, len, head_dim]` so they
/// broadcast over batch and heads.
pub fn rope_tables<B: Backend>(
    spec: &RopeSpec,
    start: usize,
    len: usize,
    device: &B::Device,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let tables = rope_values_cached(spec, start, len);
    let shape = [1, 1, len, spec.head_dim];
    (
        Tensor::from_data(TensorData::new(tables.0.clone(), shape), device),
        Tensor::from_data(TensorData::new(tables.1.clone(), shape), device),
    )
}

/// `rope_values`, computed once per (frequencies, start, len) and shared: training calls it
/// every step with the same arguments, and the f64 sin/cos cost shows in profiles.
pub fn rope_values_cached(spec: &RopeSpec, start: usize, len: usize) -> Arc<(Vec<f32>, Vec<f32>)> {
    type Key = (Vec<u64>, usize, usize);
    type Tables = Arc<(Vec<f32>, Vec<f32>)>;
    static CACHE: OnceLock<Mutex<HashMap<Key, Tables>>> = OnceLock::new();
    let freqs = inv_freqs(spec);
    // The frequencies (and their count, head_dim / 2) are all the tables depend on.
    let key = (freqs.iter().map(|f| f.to_bits()).collect(), start, len);
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
    let t = Arc::new(tables_from(&freqs, start, len));
    cache.insert(key, t.clone());
    t
}

/// The raw table values; computed in f64 and rounded once so every backend sees the same
/// numbers.
pub fn rope_values(spec: &RopeSpec, start: usize, len: usize) -> (Vec<f32>, Vec<f32>) {
    tables_from(&inv_freqs(spec), start, len)
}

/// cos/sin of `pos * inv_freq[i % half]` for each position and each of the `2 * half` lanes
/// (the rotate_half layout repeats the frequencies over both halves).
fn tables_from(freqs: &[f64], start: usize, len: usize) -> (Vec<f32>, Vec<f32>) {
    let half = freqs.len();
    let head_dim = 2 * half;
    let mut cos = Vec::with_capacity(len * head_dim);
    let mut sin = Vec::with_capacity(len * head_dim);
    for pos in start..start + len {
        for i in 0..head_dim {
            let angle = pos as f64 * freqs[i % half];
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
        let (cos, sin) = rope_tables::<Flex>(&RopeSpec::plain(dim, theta), 3, seq, &device);
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

    /// Reference values from `benches/reference/rope_inv_freq.py`, an independent NumPy port
    /// of transformers' `_compute_llama3_parameters` / linear scaling, run once (numpy 2.4,
    /// float64) and pasted here: the test needs no Python.
    #[test]
    fn scaled_inverse_frequencies_match_transformers_reference() {
        let llama3 = |head_dim| RopeSpec {
            head_dim,
            theta: 500000.0,
            scaling: RopeScaling::Llama3 {
                factor: 32.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 8192,
            },
        };
        // head_dim 24: indices 0-5 high frequency (kept), 6 in the smoothed band, 7-11 low
        // frequency (divided by 32).
        let hd24 = [
            1.0,
            0.3350316475065263,
            0.11224620483093732,
            0.03760603093086393,
            0.012599210498948734,
            0.0042211342507443165,
            0.00042955679655936815,
            1.4806446866497858e-05,
            4.960628287400626e-06,
            1.661967467795309e-06,
            5.568116988377118e-07,
            1.8654954081250652e-07,
        ];
        // Llama-3.2-1B's head_dim 64: a few entries from each band (15-17 smoothed).
        let hd64 = [
            (0, 1.0),
            (8, 0.03760603093086393),
            (14, 0.0032114459947525913),
            (15, 0.001290547928209264),
            (16, 0.00042955679655936815),
            (17, 9.70828780262767e-05),
            (18, 1.9461638184831125e-05),
            (31, 9.418306725434911e-08),
        ];
        let close = |got: f64, want: f64, what: &str| {
            assert!(
                (got - want).abs() <= 1e-12 * want.abs(),
                "{what}: {got} vs reference {want}"
            );
        };
        let got = inv_freqs(&llama3(24));
        assert_eq!(got.len(), 12);
        for (i, want) in hd24.iter().enumerate() {
            close(got[i], *want, &format!("hd24[{i}]"));
        }
        let got = inv_freqs(&llama3(64));
        assert_eq!(got.len(), 32);
        for (i, want) in hd64 {
            close(got[i], want, &format!("hd64[{i}]"));
        }
        let linear = RopeSpec {
            head_dim: 8,
            theta: 10000.0,
            scaling: RopeScaling::Linear { factor: 4.0 },
        };
        for (i, want) in [0.25, 0.025, 0.0025, 0.00025].iter().enumerate() {
            close(inv_freqs(&linear)[i], *want, &format!("linear[{i}]"));
        }
    }

    /// Scaling changes the tables (and their cache entry), plain RoPE keeps the old numbers.
    #[test]
    fn tables_follow_the_scaling() {
        let plain = RopeSpec::plain(8, 10000.0);
        let linear = RopeSpec {
            scaling: RopeScaling::Linear { factor: 2.0 },
            ..plain
        };
        // Linear scaling by 2 at position 2p is plain RoPE at position p.
        let (c_lin, s_lin) = rope_values_cached(&linear, 10, 1).as_ref().clone();
        let (c_plain, s_plain) = rope_values_cached(&plain, 5, 1).as_ref().clone();
        assert_eq!((c_lin, s_lin), (c_plain, s_plain));
        assert_ne!(
            rope_values_cached(&linear, 5, 1).0,
            rope_values_cached(&plain, 5, 1).0
        );
        let freq = 1.0 / 10000f64.powf(2.0 / 8.0);
        assert_eq!(rope_values(&plain, 3, 1).0[1], (3.0 * freq).cos() as f32);
    }

    #[test]
    fn rope_preserves_norm() {
        let (cos, sin) = rope_values(&RopeSpec::plain(16, 500000.0), 100, 1);
        for (c, s) in cos.iter().zip(&sin) {
            assert!((c * c + s * s - 1.0).abs() < 1e-6);
        }
    }
}
