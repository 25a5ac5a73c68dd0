//! Closed-form facts about a model config: parameter count, training FLOPs per token and the
//! memory floor of AdamW training. Used by `info`, MFU and the memory benchmark.

use crate::config::ModelConfig;

/// Parameter counts split the way the FLOP and memory formulas need them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamCount {
    pub total: u64,
    /// Token embedding table (a lookup: costs no matmul FLOPs unless tied to the head).
    pub embedding: u64,
    /// Parameters that take part in a matmul for every token, the output head included.
    pub matmul: u64,
}

/// Count parameters exactly as `Llama::new` allocates them.
pub fn param_count(m: &ModelConfig) -> ParamCount {
    let d = m.d_model as u64;
    let head_dim = m.resolved_head_dim() as u64;
    let q = head_dim * m.n_heads as u64;
    let kv = head_dim * m.n_kv_heads as u64;
    let v = m.vocab_size as u64;
    let f = m.ff_dim as u64;
    let attn = d * q * 2 + d * kv * 2;
    let mlp = 3 * d * f;
    let per_layer = attn + mlp + 2 * d;
    let embedding = v * d;
    let head = if m.tie_embeddings { 0 } else { v * d };
    let total = embedding + head + m.n_layers as u64 * per_layer + d;
    let matmul = m.n_layers as u64 * (attn + mlp) + v * d;
    ParamCount {
        total,
        embedding,
        matmul,
    }
}

/// Training FLOPs per token (forward + backward): 6 per matmul weight plus the attention
/// score/value products, 12 * layers * (n_heads * head_dim) * seq_len (the PaLM appendix B
/// formula, whose d_model is the attention width).
pub fn train_flops_per_token(m: &ModelConfig, seq_len: usize) -> f64 {
    let p = param_count(m);
    let width = (m.n_heads * m.resolved_head_dim()) as f64;
    6.0 * p.matmul as f64 + 12.0 * m.n_layers as f64 * width * seq_len as f64
}

/// Bytes of weights, gradients and the two AdamW moments, all f32: the floor below which no
/// f32 training run can go, before activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryFloor {
    pub weights: u64,
    pub grads: u64,
    pub adam_moments: u64,
}

impl MemoryFloor {
    /// Sum of the parts.
    pub fn total(&self) -> u64 {
        self.weights + self.grads + self.adam_moments
    }
}

/// The f32 AdamW memory floor (16 bytes per parameter).
pub fn memory_floor(m: &ModelConfig) -> MemoryFloor {
    let n = param_count(m).total;
    MemoryFloor {
        weights: 4 * n,
        grads: 4 * n,
        adam_moments: 8 * n,
    }
}

/// [`memory_floor`] computed with checked arithmetic: `None` when an absurd config's size
/// overflows 64 bits, so validation refuses it instead of panicking or wrapping around.
pub fn checked_memory_floor(m: &ModelConfig) -> Option<MemoryFloor> {
    let d = m.d_model as u64;
    let head_dim = m.resolved_head_dim() as u64;
    let q = head_dim.checked_mul(m.n_heads as u64)?;
    let kv = head_dim.checked_mul(m.n_kv_heads as u64)?;
    let v = m.vocab_size as u64;
    let f = m.ff_dim as u64;
    let attn = d
        .checked_mul(q)?
        .checked_mul(2)?
        .checked_add(d.checked_mul(kv)?.checked_mul(2)?)?;
    let mlp = d.checked_mul(f)?.checked_mul(3)?;
    let per_layer = attn.checked_add(mlp)?.checked_add(d.checked_mul(2)?)?;
    let embedding = v.checked_mul(d)?;
    let head = if m.tie_embeddings { 0 } else { embedding };
    let n = (m.n_layers as u64)
        .checked_mul(per_layer)?
        .checked_add(embedding)?
        .checked_add(head)?
        .checked_add(d)?;
    // The matmul count (layers * (attn + mlp) + v * d) is below n, so it cannot overflow either.
    n.checked_mul(16)?;
    Some(MemoryFloor {
        weights: 4 * n,
        grads: 4 * n,
        adam_moments: 8 * n,
    })
}

/// Human-readable byte count, kept here for existing callers: see [`crate::units::format_bytes`].
pub use crate::units::format_bytes;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RunConfig;

    fn preset(name: &str) -> RunConfig {
        let path = format!("{}/configs/{name}.toml", env!("CARGO_MANIFEST_DIR"));
        RunConfig::load(Some(std::path::Path::new(&path))).unwrap()
    }

    #[test]
    fn dmas_preset_has_the_reported_parameter_count() {
        let cfg = preset("dmas-1.7b");
        assert_eq!(param_count(&cfg.model).total, 1_716_144_128);
        assert_eq!(memory_floor(&cfg.model).total(), 16 * 1_716_144_128);
    }

    #[test]
    fn gpt2_class_preset_is_about_124m() {
        let cfg = preset("gpt2-124m");
        let n = param_count(&cfg.model).total;
        assert!((120_000_000..130_000_000).contains(&n), "{n}");
    }

    #[test]
    fn checked_floor_matches_and_refuses_overflow() {
        let cfg = preset("dmas-1.7b");
        assert_eq!(
            checked_memory_floor(&cfg.model),
            Some(memory_floor(&cfg.model))
        );
        let mut m = cfg.model.clone();
        m.d_model = usize::MAX / 2;
        assert_eq!(checked_memory_floor(&m), None);
        let mut m = cfg.model.clone();
        m.head_dim = usize::MAX / 4;
        assert_eq!(checked_memory_floor(&m), None);
    }

    /// An explicit head_dim other than d_model / n_heads widens q/o and k/v, as `Llama::new`
    /// allocates them.
    #[test]
    fn explicit_head_dim_is_counted() {
        let m = ModelConfig {
            vocab_size: 100,
            d_model: 64,
            n_layers: 2,
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 24,
            ff_dim: 96,
            tie_embeddings: true,
            ..ModelConfig::default()
        };
        let attn = 64 * 96 * 2 + 64 * 48 * 2;
        let per_layer = attn + 3 * 64 * 96 + 2 * 64;
        assert_eq!(param_count(&m).total, 100 * 64 + 2 * per_layer + 64);
        assert_eq!(
            checked_memory_floor(&m).unwrap().weights,
            4 * param_count(&m).total
        );
    }

    #[test]
    fn tiny_preset_is_a_few_million() {
        let cfg = preset("tiny");
        let n = param_count(&cfg.model).total;
        assert_eq!(
            n,
            4096 * 256 + 4 * (256 * 256 * 2 + 256 * 128 * 2 + 3 * 256 * 704 + 512) + 256
        );
        assert!((2_000_000..8_000_000).contains(&n), "{n}");
    }
}
