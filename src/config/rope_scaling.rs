//! `[model] rope_scaling`: how RoPE frequencies are stretched for long context, the two kinds
//! transformers' Llama family uses (`linear` and Llama 3's `llama3`), named as in HF configs.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// RoPE frequency scaling. In TOML a table with a `type` key:
/// `rope_scaling = { type = "llama3", factor = 32.0, low_freq_factor = 1.0,
/// high_freq_factor = 4.0, original_max_position_embeddings = 8192 }`.
/// The frequencies themselves are computed in `model::rope` (the engine owns the maths).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum RopeScaling {
    /// Plain RoPE: `inv_freq[i] = theta^(-2i/head_dim)`.
    #[default]
    None,
    /// Position interpolation: every inverse frequency divided by `factor`.
    Linear {
        /// Context stretch, >= 1.
        factor: f64,
    },
    /// Llama 3.1+: low frequencies divided by `factor`, high ones kept, the band between
    /// smoothly interpolated (transformers' `_compute_llama3_parameters`).
    Llama3 {
        /// Stretch of the low frequencies, >= 1.
        factor: f64,
        /// Wavelengths above `original_max_position_embeddings / low_freq_factor` are scaled.
        low_freq_factor: f64,
        /// Wavelengths below `original_max_position_embeddings / high_freq_factor` are kept.
        high_freq_factor: f64,
        /// The context the model was pretrained with before the extension.
        original_max_position_embeddings: usize,
    },
}

impl RopeScaling {
    /// Whether this is plain RoPE; such configs omit the key, so checkpoints written before
    /// it existed keep their model hash.
    pub fn is_none(&self) -> bool {
        matches!(self, RopeScaling::None)
    }

    /// The name HF configs use as `rope_type`.
    pub fn kind(&self) -> &'static str {
        match self {
            RopeScaling::None => "default",
            RopeScaling::Linear { .. } => "linear",
            RopeScaling::Llama3 { .. } => "llama3",
        }
    }

    /// Refuse values transformers' own validation refuses (and the ones that would divide by
    /// zero or give NaN frequencies), naming the key.
    pub fn validate(&self) -> Result<()> {
        let key = "model.rope_scaling";
        match *self {
            RopeScaling::None => Ok(()),
            RopeScaling::Linear { factor } => check_factor(key, factor),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                check_factor(key, factor)?;
                if !low_freq_factor.is_finite() || low_freq_factor <= 0.0 {
                    bail!("config: {key}.low_freq_factor must be a finite number > 0, got {low_freq_factor}");
                }
                if !high_freq_factor.is_finite() || high_freq_factor <= low_freq_factor {
                    bail!(
                        "config: {key}.high_freq_factor ({high_freq_factor}) must be finite and greater than low_freq_factor ({low_freq_factor})"
                    );
                }
                if original_max_position_embeddings == 0 {
                    bail!("config: {key}.original_max_position_embeddings must be positive, got 0");
                }
                Ok(())
            }
        }
    }
}

fn check_factor(key: &str, factor: f64) -> Result<()> {
    if !factor.is_finite() || factor < 1.0 {
        bail!("config: {key}.factor must be a finite number >= 1, got {factor}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder {
        rope_scaling: RopeScaling,
    }

    #[test]
    fn toml_form_round_trips_and_unknown_keys_are_refused() {
        let text = "rope_scaling = { type = \"llama3\", factor = 32.0, low_freq_factor = 1.0, high_freq_factor = 4.0, original_max_position_embeddings = 8192 }";
        let h: Holder = toml::from_str(text).unwrap();
        let want = RopeScaling::Llama3 {
            factor: 32.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192,
        };
        assert_eq!(h.rope_scaling, want);
        let back: Holder = toml::from_str(&toml::to_string(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        let h: Holder = toml::from_str("rope_scaling = { type = \"none\" }").unwrap();
        assert!(h.rope_scaling.is_none());
        let e = toml::from_str::<Holder>("rope_scaling = { type = \"linear\", factr = 2.0 }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("factr") || e.contains("factor"), "{e}");
        let e = toml::from_str::<Holder>("rope_scaling = { type = \"yarn\", factor = 2.0 }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("yarn"), "{e}");
    }

    /// `--set` reaches both new keys although run.toml omits them at their defaults (which
    /// keeps the model hash of every checkpoint written before they existed), and a config
    /// with them round-trips through TOML.
    #[test]
    fn run_config_keys_are_settable_and_omitted_at_defaults() {
        use crate::config::RunConfig;
        let mut cfg = RunConfig::default();
        let plain = toml::to_string(&cfg.model).unwrap();
        assert!(
            !plain.contains("head_dim") && !plain.contains("rope_scaling"),
            "{plain}"
        );
        cfg.apply_overrides(&[
            "model.head_dim=32".into(),
            "model.rope_scaling={ type = \"linear\", factor = 2.0 }".into(),
        ])
        .unwrap();
        assert_eq!(cfg.model.head_dim, 32);
        assert_eq!(cfg.model.rope_scaling, RopeScaling::Linear { factor: 2.0 });
        let back = RunConfig::from_toml_str(&cfg.to_toml(), "run.toml").unwrap();
        assert_eq!(back, cfg);
        let diff = crate::train::resume::model_differences(&RunConfig::default().model, &cfg.model);
        assert_eq!(diff.len(), 2, "{diff:?}");
        let e = cfg
            .apply_overrides(&["model.rope_scaling={ type = \"linear\" }".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("factor"), "{e}");
    }

    /// An explicit head_dim frees d_model from dividing by n_heads but must be even; a bad
    /// scaling is refused through `RunConfig::validate` too.
    #[test]
    fn head_dim_and_scaling_are_validated_with_the_config() {
        use crate::config::RunConfig;
        let mut cfg = RunConfig::default();
        cfg.model.n_heads = 3;
        cfg.model.n_kv_heads = 1;
        assert!(cfg.validate().unwrap_err().to_string().contains("head_dim"));
        cfg.model.head_dim = 64;
        cfg.validate().unwrap();
        cfg.model.head_dim = 63;
        let e = cfg.validate().unwrap_err().to_string();
        assert!(
            e.contains("model.head_dim = 63") && e.contains("even"),
            "{e}"
        );
        let mut cfg = RunConfig::default();
        cfg.model.rope_scaling = RopeScaling::Linear { factor: 0.0 };
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("model.rope_scaling.factor"), "{e}");
    }

    #[test]
    fn validation_names_the_bad_key() {
        let ok = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192,
        };
        ok.validate().unwrap();
        let bad = |s: RopeScaling, needle: &str| {
            let e = s.validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        };
        bad(RopeScaling::Linear { factor: 0.5 }, "factor");
        bad(RopeScaling::Linear { factor: f64::NAN }, "factor");
        let with = |low: f64, high: f64, orig: usize| RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: low,
            high_freq_factor: high,
            original_max_position_embeddings: orig,
        };
        bad(with(0.0, 4.0, 8192), "low_freq_factor");
        bad(with(4.0, 4.0, 8192), "high_freq_factor");
        bad(with(1.0, f64::INFINITY, 8192), "high_freq_factor");
        bad(with(1.0, 4.0, 0), "original_max_position_embeddings");
    }
}
