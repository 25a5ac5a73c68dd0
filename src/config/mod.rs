//! `RunConfig`: everything that defines a run, loaded from TOML presets with `--set` overrides.
//! One struct so a run directory's `run.toml` reproduces the run exactly.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

mod chronicle;
#[cfg(test)]
mod docs_tests;
mod log;
mod parallel;
mod rope_scaling;
mod validate;
pub use chronicle::ChronicleConfig;
pub use log::LogConfig;
pub use parallel::{ws_port, ParallelConfig, MAX_NODES, MAX_PEERS};
pub use rope_scaling::RopeScaling;
pub use validate::{
    validate_sample, MAX_SAMPLE_TOKENS, MAX_SEQ_LEN, MAX_THREADS, MAX_TOKENS_PER_STEP,
};

/// The preset compiled into the binary, so `llite-tui` works from any directory.
pub const TINY_PRESET: &str = include_str!("../../configs/tiny.toml");
/// The instruction fine-tuning preset: the schedule an SFT run gets when no `--config` is given
/// (a pretraining schedule would run thousands of steps at a pretraining learning rate).
pub const SFT_PRESET: &str = include_str!("../../configs/sft.toml");

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
    fn fill_omitted_defaults(table: &mut toml::Table) {
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

/// Optimisation and schedule; AdamW defaults are the seed report's (0.9/0.95, clip 1.0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub seed: u64,
    pub batch_size: usize,
    pub seq_len: usize,
    pub grad_accum: usize,
    pub max_steps: u64,
    pub lr: f64,
    pub min_lr: f64,
    pub warmup_steps: u64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub grad_clip: f64,
    pub eval_every: u64,
    pub eval_batches: usize,
    /// Worker threads for the CPU backend; 0 lets the backend decide (all cores).
    pub threads: usize,
    /// What the consumer (cockpit or headless runner) does on a loss spike or gradient
    /// explosion; the engine itself only alerts.
    pub on_spike: OnSpike,
    /// Steps' worth of batches an automatic rewind skips; 0 = those from the checkpoint to
    /// the spike, the spike's own included (the batches that led to it).
    pub rewind_skip: u64,
    /// Automatic rewinds allowed in one process; past it a spike is only alerted.
    pub max_auto_rewinds: u32,
    /// Keep only each block's input in the forward pass and recompute the block in the
    /// backward (`train/recompute.rs`): less activation memory for about one more forward.
    pub activation_checkpointing: bool,
    /// Dtype of the forward/backward compute; weights and AdamW moments stay f32
    /// (`train/precision.rs`).
    pub precision: Precision,
}

/// `[train] precision`: the dtype activations and gradients are computed in. Master weights
/// and optimizer moments are f32 whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    Bf16,
    F16,
}

/// `[train] on_spike`: alert only, pause, or rewind to the newest checkpoint before the spike
/// and skip past the batches that caused it (the PaLM remedy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnSpike {
    #[default]
    Alert,
    Pause,
    Rewind,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed: 1337,
            batch_size: 8,
            seq_len: 128,
            grad_accum: 1,
            max_steps: 2000,
            lr: 1e-3,
            min_lr: 1e-4,
            warmup_steps: 50,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            grad_clip: 1.0,
            eval_every: 100,
            eval_batches: 8,
            threads: 0,
            on_spike: OnSpike::Alert,
            rewind_skip: 0,
            max_auto_rewinds: 3,
            activation_checkpointing: false,
            precision: Precision::F32,
        }
    }
}

/// When checkpoints are written and which are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Steps between checkpoints; 0 = only on demand and at the end.
    pub every: u64,
    /// Keep the newest N checkpoints (0 keeps all).
    pub keep_last: usize,
    /// Also keep every checkpoint whose step is a multiple of this (0 = none).
    pub keep_every: u64,
    /// Write checkpoints on a background thread from a host-memory snapshot (the step loop
    /// stalls only for the copy); false writes them in the step loop, holding no second copy
    /// of weights and moments while a write is in flight.
    #[serde(rename = "async")]
    pub async_write: bool,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            every: 500,
            keep_last: 3,
            keep_every: 0,
            async_write: true,
        }
    }
}

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

/// Cockpit preferences; stored with the run so a watcher shows it the same way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    pub theme: String,
    /// EMA factor for the train-loss curve, in [0, 1).
    pub smoothing: f64,
    pub log_scale: bool,
    /// Peak FLOP/s of the device in TFLOP/s, for MFU; 0 hides MFU.
    pub peak_tflops: f64,
    pub auto_pause_on_spike: bool,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            theme: "default".into(),
            smoothing: 0.9,
            log_scale: false,
            peak_tflops: 0.0,
            auto_pause_on_spike: false,
        }
    }
}

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

    /// Apply `section.key=value` overrides; unknown keys are errors, never silently ignored.
    pub fn apply_overrides(&mut self, overrides: &[String]) -> Result<()> {
        if overrides.is_empty() {
            return Ok(());
        }
        let mut root = toml::Value::try_from(&*self)?;
        if let Some(model) = root.get_mut("model").and_then(|v| v.as_table_mut()) {
            ModelConfig::fill_omitted_defaults(model);
        }
        for item in overrides {
            let (key, raw) = item.split_once('=').with_context(|| {
                format!("--set {item}: expected section.key=value, e.g. train.lr=3e-4")
            })?;
            let (section, field) = key.trim().split_once('.').with_context(|| {
                format!("--set {item}: expected section.key=value, e.g. train.lr=3e-4")
            })?;
            let table = root
                .get_mut(section)
                .and_then(|v| v.as_table_mut())
                .with_context(|| {
                    format!(
                        "--set {item}: unknown section `{section}` (model, data, train, checkpoint, sample, ui, sft, chronicle, log, parallel)"
                    )
                })?;
            let known: Vec<_> = table.keys().cloned().collect();
            let slot = table.get_mut(field).with_context(|| {
                format!(
                    "--set {item}: unknown key `{field}` in [{section}] (known: {})",
                    known.join(", ")
                )
            })?;
            *slot = parse_override_value(raw.trim(), slot);
        }
        *self = root
            .try_into()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("--set: {}", one_line(&e)))?;
        Ok(())
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

/// Interpret an override with the type of the value it replaces, so `train.lr=1` stays a float
/// and `data.tokenizer=gpt2` needs no quotes.
fn parse_override_value(raw: &str, current: &toml::Value) -> toml::Value {
    use toml::Value;
    let parsed: Option<Value> = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"));
    match (current, parsed) {
        (Value::Float(_), Some(Value::Integer(i))) => Value::Float(i as f64),
        (Value::String(_), Some(Value::String(s))) => Value::String(s),
        (Value::String(_), _) => Value::String(raw.to_string()),
        (Value::Array(_), Some(Value::Array(a))) => Value::Array(a),
        (Value::Array(_), _) => Value::Array(
            raw.split(',')
                .map(|s| Value::String(s.trim().to_string()))
                .collect(),
        ),
        (_, Some(v)) => v,
        (_, None) => Value::String(raw.to_string()),
    }
}

/// TOML errors span several lines with a caret diagram; the CLI promises one line.
fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^'))
        .collect::<Vec<_>>()
        .join(" ")
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
