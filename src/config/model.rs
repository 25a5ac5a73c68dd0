//! `[model]`: the shape of the LLaMa decoder.

use super::RopeScaling;
use serde::{Deserialize, Serialize};

/// Shape of the LLaMa decoder; names follow DESIGN.md and map one to one onto HF `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    /// Width of one attention head; 0 means d_model / n_heads. Llama 3 and others may set it
    /// to something else (q_proj is then `[n_heads * head_dim, d_model]`). Omitted from
    /// run.toml when 0, so checkpoints written before the key existed keep their model hash.
    #[serde(skip_serializing_if = "is_zero")]
    pub head_dim: usize,
    pub ff_dim: usize,
    pub max_seq_len: usize,
    pub rope_theta: f64,
    /// RoPE frequency scaling for long context (Llama 3's `llama3`, or `linear`); omitted
    /// when none, like `head_dim`.
    #[serde(skip_serializing_if = "RopeScaling::is_none")]
    pub rope_scaling: RopeScaling,
    pub norm_eps: f64,
    pub tie_embeddings: bool,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

impl ModelConfig {
    /// The attention head width the model is built with: `head_dim`, or d_model / n_heads
    /// when it is 0 (validated beforehand, so n_heads is not 0).
    pub fn resolved_head_dim(&self) -> usize {
        if self.head_dim > 0 {
            self.head_dim
        } else {
            self.d_model / self.n_heads.max(1)
        }
    }

    /// Keys omitted from serialisation while they hold their defaults (see `head_dim`), so
    /// `--set` and config diffs still see every key.
    pub(super) fn fill_omitted_defaults(table: &mut toml::Table) {
        table.entry("head_dim").or_insert(toml::Value::Integer(0));
        table.entry("rope_scaling").or_insert_with(|| {
            toml::Value::try_from(RopeScaling::None).expect("rope scaling serialises")
        });
    }

    /// The whole `[model]` section as a TOML table, defaults included.
    pub fn to_full_table(&self) -> toml::Table {
        let mut table = toml::Table::try_from(self).expect("model config serialises");
        Self::fill_omitted_defaults(&mut table);
        table
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            vocab_size: 4096,
            d_model: 256,
            n_layers: 4,
            n_heads: 4,
            n_kv_heads: 4,
            head_dim: 0,
            ff_dim: 704,
            max_seq_len: 256,
            rope_theta: 10000.0,
            rope_scaling: RopeScaling::None,
            norm_eps: 1e-5,
            tie_embeddings: true,
        }
    }
}
