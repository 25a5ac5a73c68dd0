//! Validation at the door: every config value finite and in range, every size small enough to
//! count without overflow, before anything is allocated; and the generation knobs.

use super::RunConfig;
use anyhow::{bail, Result};

impl RunConfig {
    /// Catch configs that would fail deep inside the model (an opaque shape error, a NaN loss,
    /// a capacity-overflow panic or an allocator abort) before anything is allocated: every
    /// float finite and in range, every size positive and small enough to count without overflow.
    pub fn validate(&self) -> Result<()> {
        self.check_finite()?;
        let m = &self.model;
        for (key, v) in [
            ("vocab_size", m.vocab_size),
            ("d_model", m.d_model),
            ("n_layers", m.n_layers),
            ("ff_dim", m.ff_dim),
            ("max_seq_len", m.max_seq_len),
        ] {
            if v == 0 {
                bail!("config: model.{key} must be positive, got 0");
            }
        }
        // With an explicit head_dim the heads need not tile d_model (q_proj is
        // [n_heads * head_dim, d_model]); without one, d_model / n_heads must be exact.
        if m.n_heads == 0 || (m.head_dim == 0 && !m.d_model.is_multiple_of(m.n_heads)) {
            bail!(
                "config: model.n_heads ({}) must divide model.d_model ({}) (or set model.head_dim)",
                m.n_heads,
                m.d_model
            );
        }
        if m.n_kv_heads == 0 || !m.n_heads.is_multiple_of(m.n_kv_heads) {
            bail!(
                "config: model.n_kv_heads ({}) must divide model.n_heads ({})",
                m.n_kv_heads,
                m.n_heads
            );
        }
        if m.head_dim > 0 && !m.head_dim.is_multiple_of(2) {
            bail!(
                "config: model.head_dim = {} must be even for RoPE",
                m.head_dim
            );
        }
        if !m.resolved_head_dim().is_multiple_of(2) {
            bail!(
                "config: head dimension d_model/n_heads = {} must be even for RoPE (or set an even model.head_dim)",
                m.resolved_head_dim()
            );
        }
        positive("model.rope_theta", m.rope_theta)?;
        m.rope_scaling.validate()?;
        positive("model.norm_eps", m.norm_eps)?;
        if crate::model::stats::checked_memory_floor(m).is_none() {
            bail!(
                "config: model of d_model {}, {} layers, ff_dim {}, vocab {} is too large to count (its size overflows 64 bits)",
                m.d_model,
                m.n_layers,
                m.ff_dim,
                m.vocab_size
            );
        }
        if m.max_seq_len > MAX_SEQ_LEN {
            bail!(
                "config: model.max_seq_len {} is more than {MAX_SEQ_LEN}",
                m.max_seq_len
            );
        }
        let t = &self.train;
        if t.seq_len == 0 || t.seq_len > m.max_seq_len {
            bail!(
                "config: train.seq_len ({}) must be in 1..=model.max_seq_len ({})",
                t.seq_len,
                m.max_seq_len
            );
        }
        if t.batch_size == 0 || t.grad_accum == 0 {
            bail!("config: train.batch_size and train.grad_accum must be positive");
        }
        if t.batch_size
            .checked_mul(t.seq_len)
            .and_then(|n| n.checked_mul(t.grad_accum))
            .is_none_or(|n| n > MAX_TOKENS_PER_STEP)
        {
            bail!(
                "config: train.batch_size {} x seq_len {} x grad_accum {} tokens per step is more than {MAX_TOKENS_PER_STEP}",
                t.batch_size,
                t.seq_len,
                t.grad_accum
            );
        }
        if t.lr <= 0.0 || t.min_lr < 0.0 || t.min_lr > t.lr {
            bail!(
                "config: need 0 <= train.min_lr ({}) <= train.lr ({}) and lr > 0",
                t.min_lr,
                t.lr
            );
        }
        if t.weight_decay < 0.0 {
            bail!(
                "config: train.weight_decay must be >= 0, got {}",
                t.weight_decay
            );
        }
        positive("train.eps", t.eps)?;
        if t.grad_clip < 0.0 {
            bail!(
                "config: train.grad_clip must be >= 0 (0 = off), got {}",
                t.grad_clip
            );
        }
        if !(0.0..1.0).contains(&t.beta1) || !(0.0..1.0).contains(&t.beta2) {
            bail!("config: train.beta1 and train.beta2 must be in [0, 1)");
        }
        if t.eval_every > 0 && t.eval_batches == 0 {
            bail!("config: train.eval_batches must be >= 1 when train.eval_every > 0 (set eval_every = 0 to turn evaluation off)");
        }
        if t.threads > MAX_THREADS {
            bail!(
                "config: train.threads {} is more than {MAX_THREADS} (0 = all cores)",
                t.threads
            );
        }
        if !(0.0..1.0).contains(&self.data.val_fraction) {
            bail!("config: data.val_fraction must be in [0, 1)");
        }
        validate_sample(&self.sample.params())
            .map_err(|e| anyhow::anyhow!("config: sample.{e}"))?;
        if !(0.0..1.0).contains(&self.ui.smoothing) {
            bail!("config: ui.smoothing must be in [0, 1)");
        }
        if self.ui.peak_tflops < 0.0 {
            bail!("config: ui.peak_tflops must be >= 0 (0 hides MFU)");
        }
        crate::data::template::check_name(&self.sft.template)
            .map_err(|e| anyhow::anyhow!("config: {e}"))?;
        self.chronicle.validate()?;
        self.validate_parallel()
    }

    /// NaN or infinity anywhere is refused, naming the key: such a value would only surface
    /// later as a NaN loss or a silent no-op.
    fn check_finite(&self) -> Result<()> {
        let floats = [
            ("model.rope_theta", self.model.rope_theta),
            ("model.norm_eps", self.model.norm_eps),
            ("data.val_fraction", self.data.val_fraction),
            ("train.lr", self.train.lr),
            ("train.min_lr", self.train.min_lr),
            ("train.weight_decay", self.train.weight_decay),
            ("train.beta1", self.train.beta1),
            ("train.beta2", self.train.beta2),
            ("train.eps", self.train.eps),
            ("train.grad_clip", self.train.grad_clip),
            ("sample.temperature", self.sample.temperature as f64),
            ("sample.top_p", self.sample.top_p as f64),
            ("ui.smoothing", self.ui.smoothing),
            ("ui.peak_tflops", self.ui.peak_tflops),
        ];
        for (key, v) in floats {
            if !v.is_finite() {
                bail!("config: {key} must be a finite number, got {v}");
            }
        }
        Ok(())
    }
}

/// Longest context a config may ask for; the RoPE tables and KV cache grow with it.
pub const MAX_SEQ_LEN: usize = 1 << 20;
/// Most tokens one optimizer step may consume (batch x seq x accumulation).
pub const MAX_TOKENS_PER_STEP: usize = 1 << 28;
/// Most CPU worker threads a run may ask for.
pub const MAX_THREADS: usize = 1024;
/// Most tokens one generation may ask for.
pub const MAX_SAMPLE_TOKENS: usize = 1 << 20;

/// Check generation knobs (from `[sample]`, the CLI or the prompt pane) so a bad value is
/// refused by name instead of sampling garbage: temperature finite and >= 0, top_p in (0, 1],
/// max_tokens bounded. The message starts with the knob's name.
pub fn validate_sample(p: &crate::protocol::SampleParams) -> Result<()> {
    if !p.temperature.is_finite() || p.temperature < 0.0 {
        bail!(
            "temperature must be a finite number >= 0 (0 = greedy), got {}",
            p.temperature
        );
    }
    if !p.top_p.is_finite() || p.top_p <= 0.0 || p.top_p > 1.0 {
        bail!("top_p must be in (0, 1], got {}", p.top_p);
    }
    if p.max_tokens > MAX_SAMPLE_TOKENS {
        bail!(
            "max_tokens must be at most {MAX_SAMPLE_TOKENS}, got {}",
            p.max_tokens
        );
    }
    Ok(())
}

fn positive(key: &str, v: f64) -> Result<()> {
    if v > 0.0 {
        return Ok(());
    }
    bail!("config: {key} must be > 0, got {v}")
}
