//! `trainer.json`: the non-tensor half of a checkpoint (step, cursor, seeds, schedule,
//! lineage), with the hash that ties it to the model config it was trained with.

use super::digest::{mismatch, FileDigest};
use super::fsio::{read_bounded_string, MAX_METADATA_BYTES};
use super::layout::{unix_now, CHECKPOINT_FORMAT_VERSION, TRAINER_FILE};
use crate::config::{ModelConfig, RunConfig};
use crate::controls::{ControlRecord, RewindRecord};
use crate::data::loader::{DataCursor, DataOrder};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
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

/// Whether a checkpoint carries AdamW moments. An import has none (all-zero moments would be
/// a gigabyte of nothing): the optimizer starts them at zero on the first resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerState {
    /// `optimizer.safetensors` holds both moments of every parameter (and must be there).
    #[default]
    Present,
    /// No moments were written; a resume starts them at zero and says so.
    Absent,
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
    /// The step `last_val_loss` was measured at: a checkpoint saved between evaluations
    /// carries an earlier step's value, and the browser labels it so (absent in older ones).
    #[serde(default)]
    pub last_val_step: Option<u64>,
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
    /// Live control changes applied so far in this run's lineage, oldest first (format 3;
    /// absent, so empty, in older checkpoints). `config_toml` already includes their effect;
    /// a resume from an older checkpoint replays the newer checkpoint's extra entries.
    #[serde(default)]
    pub controls: Vec<ControlRecord>,
    /// Rewinds in this run's lineage, oldest first (format 3; empty in older checkpoints).
    #[serde(default)]
    pub rewinds: Vec<RewindRecord>,
    /// Whether `optimizer.safetensors` exists (checkpoints written before this field have it).
    #[serde(default)]
    pub optimizer_state: OptimizerState,
    /// Saved on demand (cockpit `s`, `ctl save`, a stop or switch with save, a signal): kept
    /// by retention until a user unpins it. Absent, so false, in older checkpoints.
    #[serde(default)]
    pub pinned: bool,
}

/// `trainer.json` as read back: the state, and the digests of the checkpoint's other files
/// (`None` for a format-1 checkpoint, written before digests: it loads, not verified).
#[derive(Debug, Clone)]
pub struct TrainerRecord {
    pub state: TrainerState,
    pub files: Option<BTreeMap<String, FileDigest>>,
}

impl TrainerRecord {
    /// The recorded digest of `file` (a name inside the checkpoint directory), if any.
    pub fn digest(&self, file: &str) -> Option<&FileDigest> {
        self.files.as_ref().and_then(|f| f.get(file))
    }
}

/// The digest fields of `trainer.json` (format 2), read alongside [`TrainerState`].
#[derive(Deserialize)]
struct RecordedDigests {
    files: BTreeMap<String, FileDigest>,
}

/// `trainer.json` as written: the state, every other file's digest, and the digest of this
/// text itself computed with `trainer_blake3` empty (so a flipped bit here is caught too).
#[derive(Serialize)]
struct TrainerFileOut<'a> {
    #[serde(flatten)]
    state: &'a TrainerState,
    files: &'a BTreeMap<String, FileDigest>,
    trainer_blake3: &'a str,
}

/// The JSON key of trainer.json's own digest, as it appears in the pretty-printed text (a
/// string value cannot contain this sequence unescaped, so the last match is the field).
const SELF_DIGEST_KEY: &str = "\"trainer_blake3\": \"";

/// Render `trainer.json` with the digests of the checkpoint's other files and its own.
pub fn trainer_json(state: &TrainerState, files: &BTreeMap<String, FileDigest>) -> Result<String> {
    let text = serde_json::to_string_pretty(&TrainerFileOut {
        state,
        files,
        trainer_blake3: "",
    })?;
    let at = text
        .rfind(SELF_DIGEST_KEY)
        .context("trainer.json lost its digest field")?
        + SELF_DIGEST_KEY.len();
    let own = blake3::hash(text.as_bytes()).to_hex();
    Ok(format!("{}{own}{}", &text[..at], &text[at..]))
}

/// Check trainer.json's own digest; `Ok(false)` when the text carries none (format 1).
fn check_self_digest(text: &str, path: &Path) -> Result<bool> {
    let Some(key) = text.rfind(SELF_DIGEST_KEY) else {
        return Ok(false);
    };
    let start = key + SELF_DIGEST_KEY.len();
    let len = text[start..].find('"').ok_or_else(|| mismatch(path))?;
    let recorded = &text[start..start + len];
    let blanked = format!("{}{}", &text[..start], &text[start + len..]);
    if blake3::hash(blanked.as_bytes()).to_hex().as_str() != recorded {
        return Err(mismatch(path));
    }
    Ok(true)
}

/// Read and check `trainer.json` (bounded, special files refused, own digest verified),
/// naming the file in every error.
pub fn read_trainer_record(ckpt_dir: &Path) -> Result<TrainerRecord> {
    let path = ckpt_dir.join(TRAINER_FILE);
    if path.symlink_metadata().is_err() {
        bail!(
            "{}: missing; this is not a complete checkpoint, pick another one (llite-tui ckpt ls)",
            path.display()
        );
    }
    let text = read_bounded_string(&path, MAX_METADATA_BYTES)?;
    let self_checked = check_self_digest(&text, &path)?;
    let state: TrainerState = serde_json::from_str(&text)
        .with_context(|| format!("{}: corrupt trainer state", path.display()))?;
    if !(1..=CHECKPOINT_FORMAT_VERSION).contains(&state.format_version) {
        bail!(
            "{}: checkpoint format version {} is not supported (this build reads 1 to {})",
            path.display(),
            state.format_version,
            CHECKPOINT_FORMAT_VERSION
        );
    }
    if state.format_version == 1 {
        return Ok(TrainerRecord { state, files: None });
    }
    if !self_checked {
        bail!(
            "{}: format {} but no digest of its own: the file is corrupt or was edited; pick another checkpoint (llite-tui ckpt ls --verify)",
            path.display(),
            state.format_version
        );
    }
    let digests: RecordedDigests = serde_json::from_str(&text)
        .with_context(|| format!("{}: corrupt file digests", path.display()))?;
    Ok(TrainerRecord {
        state,
        files: Some(digests.files),
    })
}

/// Read and check `trainer.json`, naming the file in every error.
pub fn read_trainer_state(ckpt_dir: &Path) -> Result<TrainerState> {
    Ok(read_trainer_record(ckpt_dir)?.state)
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
        data_cursor: DataCursor::start(DataOrder::Windows),
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
        last_val_step: None,
        parent,
        wall_time_s: 0.0,
        written_unix: unix_now(),
        model_config_hash: model_config_hash(&config.model),
        vocab_size,
        config_toml: config.to_toml(),
        controls: Vec::new(),
        rewinds: Vec::new(),
        optimizer_state: OptimizerState::Present,
        pinned: false,
    }
}

/// `trainer.json`'s text with its top-level `pinned` flag set to `pinned` and its own digest
/// recomputed; every other byte is kept (a re-serialisation could round a float). `None`
/// when the text has no top-level `pinned` field (written before pinning existed).
pub fn repin_trainer_json(text: &str, pinned: bool) -> Option<String> {
    // Pretty-printed: a top-level key sits alone on a line indented by two spaces, and a
    // string value cannot hold a raw newline, so this pattern matches only the field.
    let field = |v: bool| format!("\n  \"pinned\": {v}");
    if text.contains(&field(pinned)) {
        return Some(text.to_string());
    }
    let at = text.find(&field(!pinned))?;
    let key = text.rfind(SELF_DIGEST_KEY)? + SELF_DIGEST_KEY.len();
    let len = text[key..].find('"')?;
    if at > key {
        return None;
    }
    // The flag flipped and the old digest blanked, as `trainer_json` hashes it.
    let blanked = format!(
        "{}{}{}{}",
        &text[..at],
        field(pinned),
        &text[at + field(!pinned).len()..key],
        &text[key + len..]
    );
    let at = blanked.len() - (text.len() - key - len);
    let own = blake3::hash(blanked.as_bytes()).to_hex();
    Some(format!("{}{own}{}", &blanked[..at], &blanked[at..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trainer_json_digests_itself_and_a_look_alike_string_cannot_fool_it() {
        let dir = tempfile::tempdir().unwrap();
        // A run name holding the digest key's text: escaped in JSON, so never taken for it.
        let mut state = initial_trainer_state(
            &RunConfig::default(),
            "x\", \"trainer_blake3\": \"".into(),
            100,
            None,
        );
        state.step = 7;
        let files = BTreeMap::from([("model.safetensors".to_string(), FileDigest::of_bytes(b"w"))]);
        let path = dir.path().join(TRAINER_FILE);
        let text = trainer_json(&state, &files).unwrap();
        std::fs::write(&path, &text).unwrap();
        let record = read_trainer_record(dir.path()).unwrap();
        assert_eq!(record.state, state);
        assert_eq!(record.files.unwrap(), files);

        for (from, to) in [("\"step\": 7", "\"step\": 8"), ("  \"", " \"")] {
            std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
            let e = read_trainer_record(dir.path()).unwrap_err().to_string();
            assert!(e.contains("trainer.json: blake3 digest mismatch"), "{e}");
        }
    }

    #[test]
    fn repinning_flips_only_the_flag_and_keeps_the_digest_valid() {
        let dir = tempfile::tempdir().unwrap();
        // A run name that looks like the field must not be taken for it.
        let mut state = initial_trainer_state(
            &RunConfig::default(),
            "\n  \"pinned\": true".into(),
            100,
            None,
        );
        state.pinned = true;
        state.schedule.last_lr = 0.1 + 0.2;
        let files = BTreeMap::from([("model.safetensors".to_string(), FileDigest::of_bytes(b"w"))]);
        let text = trainer_json(&state, &files).unwrap();
        let unpinned = repin_trainer_json(&text, false).unwrap();
        let path = dir.path().join(TRAINER_FILE);
        std::fs::write(&path, &unpinned).unwrap();
        let record = read_trainer_record(dir.path()).unwrap();
        assert!(!record.state.pinned);
        assert_eq!(record.state.run_name, state.run_name);
        assert_eq!(record.state.schedule.last_lr, 0.1 + 0.2);
        assert_eq!(repin_trainer_json(&unpinned, true).unwrap(), text);
        let old = text.replace("\n  \"pinned\": true,", "");
        assert!(repin_trainer_json(&old, false).is_none());
    }
}
