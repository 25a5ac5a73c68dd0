//! `[data]`: where tokens come from.

use serde::{Deserialize, Serialize};

/// Where tokens come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Text files, directories of `.npy` shards, or `builtin:shakespeare` (the bundled corpus).
    pub corpus: Vec<String>,
    /// `gpt2` (bundled GPT-2 BPE), a `tokenizer.json` path, or `train:<vocab>` (byte-level BPE
    /// trained on the corpus).
    pub tokenizer: String,
    /// Share of tokens held out as validation (shard 0) when text is tokenized.
    pub val_fraction: f64,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            corpus: vec!["builtin:shakespeare".into()],
            tokenizer: "train:4096".into(),
            val_fraction: 0.05,
        }
    }
}
