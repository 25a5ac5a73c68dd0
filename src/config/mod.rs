//! `RunConfig`: everything that defines a run, loaded from TOML presets with `--set` overrides.
//! One struct so a run directory's `run.toml` reproduces the run exactly; one module per
//! section, each re-exported here so `config::X` is the one path.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

mod checkpoint;
mod chronicle;
mod data;
#[cfg(test)]
mod docs_tests;
mod log;
mod model;
mod overrides;
mod parallel;
mod rope_scaling;
mod sample;
mod sft;
mod train;
mod ui;
mod validate;
pub use checkpoint::CheckpointConfig;
pub use chronicle::ChronicleConfig;
pub use data::DataConfig;
pub use log::LogConfig;
pub use model::ModelConfig;
use overrides::one_line;
pub use parallel::{ws_port, ParallelConfig, MAX_NODES, MAX_PEERS};
pub use rope_scaling::RopeScaling;
pub use sample::SampleConfig;
pub use sft::SftConfig;
pub use train::{OnSpike, Precision, TrainConfig};
pub use ui::UiConfig;
pub use validate::{
    validate_sample, MAX_SAMPLE_TOKENS, MAX_SEQ_LEN, MAX_THREADS, MAX_TOKENS_PER_STEP,
};

/// The preset compiled into the binary, so `llite-tui` works from any directory.
pub const TINY_PRESET: &str = include_str!("../../configs/tiny.toml");
/// The instruction fine-tuning preset: the schedule an SFT run gets when no `--config` is given
/// (a pretraining schedule would run thousands of steps at a pretraining learning rate).
pub const SFT_PRESET: &str = include_str!("../../configs/sft.toml");

/// A whole run. Every section has defaults so presets only say what differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    pub model: ModelConfig,
    pub data: DataConfig,
    pub train: TrainConfig,
    pub checkpoint: CheckpointConfig,
    pub sample: SampleConfig,
    pub ui: UiConfig,
    pub sft: SftConfig,
    /// Fixed-prompt samples and task scores recorded over training (off by default).
    pub chronicle: ChronicleConfig,
    pub log: LogConfig,
    pub parallel: ParallelConfig,
}

impl RunConfig {
    /// Parse TOML text; `origin` names the source in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        let cfg: RunConfig =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {}", one_line(&e)))?;
        Ok(cfg)
    }

    /// Load a preset file, or the embedded tiny preset when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        match path {
            None => Self::from_toml_str(TINY_PRESET, "embedded tiny preset"),
            Some(p) => {
                // Bounded and regular files only: a FIFO or /dev/zero "config" must not
                // block or fill memory (the signal handlers are already installed then).
                let text = crate::store::fsio::read_bounded_string(
                    p,
                    crate::store::fsio::MAX_METADATA_BYTES,
                )
                .with_context(|| format!("cannot read config {}", p.display()))?;
                Self::from_toml_str(&text, &p.display().to_string())
            }
        }
    }

    /// Whether the run fine-tunes on instruction data (a `.jsonl` corpus).
    pub fn is_sft(&self) -> bool {
        self.data.corpus.len() == 1 && self.data.corpus[0].ends_with(".jsonl")
    }

    /// Tokens consumed by one optimizer step.
    pub fn tokens_per_step(&self) -> u64 {
        (self.train.batch_size * self.train.seq_len * self.train.grad_accum) as u64
    }

    /// TOML text of the resolved config, as written to `run.toml`.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("RunConfig always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_preset_parses_and_validates() {
        let cfg = RunConfig::load(None).unwrap();
        cfg.validate().unwrap();
    }

    #[test]
    fn overrides_keep_types_and_reject_unknown_keys() {
        let mut cfg = RunConfig::default();
        cfg.apply_overrides(&["train.lr=1".into(), "data.tokenizer=gpt2".into()])
            .unwrap();
        assert_eq!(cfg.train.lr, 1.0);
        assert_eq!(cfg.data.tokenizer, "gpt2");
        let err = cfg
            .apply_overrides(&["train.learning_rate=1".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key `learning_rate`"), "{err}");
        let err = cfg
            .apply_overrides(&["nope.x=1".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown section"), "{err}");
    }

    #[test]
    fn head_divisibility_is_checked() {
        let mut cfg = RunConfig::default();
        cfg.model.n_heads = 3;
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("must divide"));
        let mut cfg = RunConfig::default();
        cfg.model.n_kv_heads = 3;
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("n_kv_heads"));
    }
}
