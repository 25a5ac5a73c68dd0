//! `[sample]`: generation defaults, convertible to the protocol's `SampleParams`.

use serde::{Deserialize, Serialize};

/// Defaults for generation (CLI `sample` and the prompt pane).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SampleConfig {
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
    pub max_tokens: usize,
    pub seed: u64,
}

impl Default for SampleConfig {
    fn default() -> Self {
        let p = crate::protocol::SampleParams::default();
        Self {
            temperature: p.temperature,
            top_k: p.top_k,
            top_p: p.top_p,
            max_tokens: p.max_tokens,
            seed: p.seed,
        }
    }
}

impl SampleConfig {
    /// The protocol form of these defaults.
    pub fn params(&self) -> crate::protocol::SampleParams {
        crate::protocol::SampleParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            max_tokens: self.max_tokens,
            seed: self.seed,
        }
    }
}
