//! `trainer.json`: the non-tensor half of a checkpoint (step, cursor, seeds, schedule,
//! lineage), with the hash that ties it to the model config it was trained with.

use super::layout::{unix_now, CHECKPOINT_FORMAT_VERSION, TRAINER_FILE};
use crate::config::{ModelConfig, RunConfig};
use crate::data::loader::DataCursor;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Seeds of the run's independent random streams. Initialisation happens once; the data order
/// is a pure function of (`data_seed`, epoch), so the cursor completes its state; sampling
/// derives a fresh stream per request and never feeds back into training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    pub init_seed: u64,
    pub data_seed: u64,
    pub sample_seed: u64,
}

/// Where the LR schedule stands; stored so a resume can refuse a silently changed schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleState {
    pub lr: f64,
    pub min_lr: f64,
    pub warmup_steps: u64,
    pub max_steps: u64,
    /// The learning rate used by the last completed step.
    pub last_lr: f64,
}

/// `trainer.json`: the non-tensor half of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    pub format_version: u32,
    pub run_name: String,
    /// Completed optimizer updates.
    pub step: u64,
    pub tokens_seen: u64,
    pub data_cursor: DataCursor,
    pub rng: RngState,
    pub schedule: ScheduleState,
    /// AdamW's bias-correction step count (differs from `step` after a fine-tune start).
    pub optimizer_step: u64,
    pub last_val_loss: Option<f64>,
    /// The checkpoint this run's weights started from, if any.
    pub parent: Option<String>,
    /// Seconds of training wall time accumulated over the run's life.
    pub wall_time_s: f64,
    /// Seconds since the Unix epoch when written.
    pub written_unix: u64,
    /// Hash of the `[model]` config: resume refuses a checkpoint whose hash differs.
    pub model_config_hash: String,
    pub vocab_size: usize,
    /// The run's full config as TOML, so a checkpoint alone can rebuild its run.
    pub config_toml: String,
}

/// Read and check `trainer.json`, naming the file in every error.
pub fn read_trainer_state(ckpt_dir: &Path) -> Result<TrainerState> {
    let path = ckpt_dir.join(TRAINER_FILE);
    // Bounded, regular files only: a FIFO or device named trainer.json must not hang a reader.
    let text = super::fsio::read_bounded_string(&path, super::fsio::MAX_METADATA_BYTES).with_context(|| {
        format!(
            "{}: missing or unreadable; this is not a complete checkpoint, pick another one (llite-tui ckpt ls)",
            path.display()
        )
    })?;
    let state: TrainerState = serde_json::from_str(&text)
        .with_context(|| format!("{}: corrupt trainer state", path.display()))?;
    if state.format_version != CHECKPOINT_FORMAT_VERSION {
        bail!(
            "{}: checkpoint format version {} is not supported (this build reads {})",
            path.display(),
            state.format_version,
            CHECKPOINT_FORMAT_VERSION
        );
    }
    Ok(state)
}

/// Short stable hash of the `[model]` section: resume refuses a checkpoint whose hash differs.
pub fn model_config_hash(m: &ModelConfig) -> String {
    let text = toml::to_string(m).expect("model config serialises");
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Trainer state of a checkpoint that no training has touched yet (an import, a benchmark):
/// step 0, cursor at the start, schedule from `config`.
pub fn initial_trainer_state(
    config: &RunConfig,
    run_name: String,
    vocab_size: usize,
    parent: Option<String>,
) -> TrainerState {
    TrainerState {
        format_version: CHECKPOINT_FORMAT_VERSION,
        run_name,
        step: 0,
        tokens_seen: 0,
        data_cursor: DataCursor {
            epoch: 0,
            shard: 0,
            offset: 0,
        },
        rng: RngState {
            init_seed: 0,
            data_seed: 0,
            sample_seed: 0,
        },
        schedule: ScheduleState {
            lr: config.train.lr,
            min_lr: config.train.min_lr,
            warmup_steps: config.train.warmup_steps,
            max_steps: config.train.max_steps,
            last_lr: 0.0,
        },
        optimizer_step: 0,
        last_val_loss: None,
        parent,
        wall_time_s: 0.0,
        written_unix: unix_now(),
        model_config_hash: model_config_hash(&config.model),
        vocab_size,
        config_toml: config.to_toml(),
    }
}
