//! `[sft]`: instruction fine-tuning (template, packing, bad lines).

use serde::{Deserialize, Serialize};

/// Instruction fine-tuning; used when the run's data is a `.jsonl` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SftConfig {
    /// `auto` (the model's own chat template when its tokenizer carries one, else vicuna),
    /// `model` (the model's own, required), `vicuna` (Vicuna 1.1, the seed's), `chatml` or `plain`.
    pub template: String,
    /// Pack examples back to back into full rows (true) or pad one example per row.
    pub pack: bool,
    /// Skip malformed JSONL lines with a report (true) or stop at the first one.
    pub skip_bad_lines: bool,
}

impl Default for SftConfig {
    fn default() -> Self {
        Self {
            template: "auto".into(),
            pack: true,
            skip_bad_lines: true,
        }
    }
}
