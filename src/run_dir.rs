//! The on-disk layout of a run (`run.toml`, `metrics.jsonl`, `checkpoints/step-N/`), kept free
//! of Burn so that the UI, `ckpt ls` and watchers can read runs without touching tensors.

use crate::data::loader::DataCursor;
use crate::protocol::{CheckpointSummary, Event, MetricsLine};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Bumped whenever `trainer.json` or the checkpoint file set changes incompatibly.
pub const CHECKPOINT_FORMAT_VERSION: u32 = 1;
/// Weights in Hugging Face LlamaForCausalLM naming.
pub const MODEL_FILE: &str = "model.safetensors";
/// AdamW moments, keyed `<hf name>.exp_avg` / `<hf name>.exp_avg_sq`.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// transformers' LlamaConfig.
pub const HF_CONFIG_FILE: &str = "config.json";
/// Everything else needed to continue exactly.
pub const TRAINER_FILE: &str = "trainer.json";
/// The tokenizer travels with every checkpoint so a checkpoint is self-contained.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

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

/// Directory name for a checkpoint at `step`; zero-padded so names sort by step.
pub fn checkpoint_dir_name(step: u64) -> String {
    format!("step-{step:08}")
}

/// The `checkpoints/` folder of a run.
pub fn checkpoints_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

/// Read and check `trainer.json`, naming the file in every error.
pub fn read_trainer_state(ckpt_dir: &Path) -> Result<TrainerState> {
    let path = ckpt_dir.join(TRAINER_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
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

/// Check that a safetensors file is complete (header parses, data as long as the header says)
/// without reading the tensors, so listings stay fast and flag truncated files.
pub fn check_safetensors_file(path: &Path) -> Result<()> {
    let mut file = File::open(path).with_context(|| format!("{}: missing", path.display()))?;
    let len = file.metadata()?.len();
    let mut n = [0u8; 8];
    file.read_exact(&mut n)
        .with_context(|| format!("{}: truncated (no header)", path.display()))?;
    let header_len = u64::from_le_bytes(n);
    if header_len > 100_000_000 || 8 + header_len > len {
        bail!("{}: truncated or corrupt header", path.display());
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)?;
    let value: serde_json::Value = serde_json::from_slice(&header)
        .with_context(|| format!("{}: corrupt header", path.display()))?;
    let mut end = 0u64;
    for (name, info) in value.as_object().into_iter().flatten() {
        if name == "__metadata__" {
            continue;
        }
        if let Some(off) = info.get("data_offsets").and_then(|o| o.as_array()) {
            end = end.max(off.get(1).and_then(|v| v.as_u64()).unwrap_or(0));
        }
    }
    let actual = len - 8 - header_len;
    if actual != end {
        bail!(
            "{}: truncated or corrupt: header promises {} data bytes, file has {}",
            path.display(),
            end,
            actual
        );
    }
    Ok(())
}

/// Validate a checkpoint directory's file set, returning its trainer state.
pub fn validate_checkpoint_dir(dir: &Path) -> Result<TrainerState> {
    if !dir.is_dir() {
        bail!("{}: not a checkpoint directory", dir.display());
    }
    let state = read_trainer_state(dir)?;
    check_safetensors_file(&dir.join(MODEL_FILE))?;
    check_safetensors_file(&dir.join(OPTIMIZER_FILE))?;
    for f in [HF_CONFIG_FILE, TOKENIZER_FILE] {
        if !dir.join(f).is_file() {
            bail!("{}: missing", dir.join(f).display());
        }
    }
    Ok(state)
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Summarise one checkpoint directory for listings; invalid ones carry their reason.
pub fn summarize_checkpoint(dir: &Path) -> CheckpointSummary {
    let run_name = dir
        .parent()
        .and_then(|p| p.parent())
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut summary = CheckpointSummary {
        path: dir.display().to_string(),
        run_name,
        step: 0,
        tokens: 0,
        val_loss: None,
        size_bytes: dir_size(dir),
        written_unix: 0,
        error: None,
    };
    match validate_checkpoint_dir(dir) {
        Ok(state) => {
            summary.step = state.step;
            summary.tokens = state.tokens_seen;
            summary.val_loss = state.last_val_loss;
            summary.written_unix = state.written_unix;
        }
        Err(e) => {
            if let Ok(state) = read_trainer_state(dir) {
                summary.step = state.step;
                summary.tokens = state.tokens_seen;
                summary.written_unix = state.written_unix;
            }
            summary.error = Some(format!("{e:#}"));
        }
    }
    summary
}

/// Checkpoints of one run, oldest first. `.partial` leftovers of a crash are never listed.
pub fn list_checkpoints(run_dir: &Path) -> Vec<CheckpointSummary> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(checkpoints_dir(run_dir))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir() && is_final_checkpoint_name(p))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.iter().map(|d| summarize_checkpoint(d)).collect()
}

/// Checkpoints of every run under a runs directory, grouped by run.
pub fn list_all_checkpoints(runs_dir: &Path) -> Vec<CheckpointSummary> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(runs_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    runs.sort();
    runs.iter().flat_map(|r| list_checkpoints(r)).collect()
}

/// True for `step-NNNNNNNN` (a finished checkpoint), false for `.partial` and strangers.
pub fn is_final_checkpoint_name(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("step-"))
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Delete a checkpoint so that no reader ever sees it half-deleted: rename it out of the
/// `step-N` namespace first (atomic), then remove the files.
pub fn remove_checkpoint(dir: &Path) -> Result<()> {
    let name = dir
        .file_name()
        .context("checkpoint path has no directory name")?
        .to_string_lossy()
        .into_owned();
    let doomed = dir.with_file_name(format!("{name}.deleting"));
    std::fs::rename(dir, &doomed).with_context(|| format!("cannot remove {}", dir.display()))?;
    std::fs::remove_dir_all(&doomed).with_context(|| format!("cannot remove {}", doomed.display()))
}

/// The newest valid checkpoint of a run, for "resume the latest".
pub fn latest_valid_checkpoint(run_dir: &Path) -> Option<PathBuf> {
    list_checkpoints(run_dir)
        .into_iter()
        .rev()
        .find(|s| s.error.is_none())
        .map(|s| PathBuf::from(s.path))
}

/// Append-only `metrics.jsonl`, flushed per line so a watcher sees events as they happen.
pub struct MetricsLog {
    file: File,
}

impl MetricsLog {
    /// Open (creating if needed) the run's `metrics.jsonl` for appending.
    pub fn open(run_dir: &Path) -> Result<Self> {
        let path = run_dir.join("metrics.jsonl");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {} for appending", path.display()))?;
        Ok(Self { file })
    }

    /// Write one event as one JSON line; streaming sample tokens are skipped.
    pub fn append(&mut self, event: &Event) -> Result<()> {
        if !event.is_persistent() {
            return Ok(());
        }
        let mut line = serde_json::to_string(&MetricsLine::now(event.clone()))?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.flush()?;
        Ok(())
    }
}

/// Parse one `metrics.jsonl` line; unknown or partial lines are skipped by callers.
pub fn parse_metrics_line(line: &str) -> Option<MetricsLine> {
    serde_json::from_str(line).ok()
}

/// Seconds since the Unix epoch, for `written_unix` fields.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
