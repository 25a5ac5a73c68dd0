//! Any model directory: a checkpoint of ours or a Hugging Face model directory (`config.json`,
//! safetensors and `tokenizer.json`), opened the same way by `sample`, `eval`, `export`, a
//! fine-tune start and the cockpit's checkpoint browser. An HF directory is only ever read.

use super::hf::{inspect_hf_dir, map_weights, read_hf_config, run_config_for};
use crate::protocol::CheckpointSummary;
use crate::store::checkpoint::{self, LoadedCheckpoint, ModelOrigin, MomentsFile};
use crate::store::layout::{
    is_final_checkpoint_name, HF_CONFIG_FILE, OPTIMIZER_FILE, TOKENIZER_FILE, TRAINER_FILE,
};
use crate::store::trainer_state::initial_trainer_state;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// True for a directory that looks like a Hugging Face model rather than a checkpoint: a
/// `config.json`, no `trainer.json`, and nothing of a checkpoint's own (a `step-N` name, an
/// `optimizer.safetensors`), so a checkpoint that lost its `trainer.json` is still refused as
/// an incomplete checkpoint, naming that file.
pub fn is_hf_model_dir(dir: &Path) -> bool {
    let exists = |name: &str| std::fs::symlink_metadata(dir.join(name)).is_ok();
    !exists(TRAINER_FILE)
        && !exists(OPTIMIZER_FILE)
        && !is_final_checkpoint_name(dir)
        && std::fs::symlink_metadata(dir.join(HF_CONFIG_FILE)).is_ok_and(|m| m.is_file())
}

/// Refuse, before anything is read, a model whose weights would not fit in memory: from a
/// checkpoint's `trainer.json` or an HF directory's `config.json`.
pub fn ensure_model_fits(dir: &Path) -> Result<()> {
    if is_hf_model_dir(dir) {
        read_hf_config(dir).map(|_| ())
    } else {
        crate::resources::ensure_checkpoint_fits(dir)
    }
}

/// Open a checkpoint or an HF model directory for reading: memory checked, digests (where
/// there are any) verified, NaN/Inf refused, weights mapped; moments are never read here.
pub fn open_model(dir: &Path) -> Result<LoadedCheckpoint> {
    ensure_model_fits(dir)?;
    if is_hf_model_dir(dir) {
        open_hf(dir)
    } else {
        checkpoint::load(dir)
    }
}

/// An HF directory as a step-0 checkpoint without moments: the run config an import would get
/// (its own tokenizer, end-of-text id from `config.json`), the weights mapped in place.
fn open_hf(dir: &Path) -> Result<LoadedCheckpoint> {
    let tokenizer_path = dir.join(TOKENIZER_FILE);
    if !std::fs::symlink_metadata(&tokenizer_path).is_ok_and(|m| m.is_file()) {
        bail!(
            "{}: missing; a Hugging Face model directory needs its tokenizer.json",
            tokenizer_path.display()
        );
    }
    let hf = inspect_hf_dir(dir)?;
    let weights = map_weights(&hf)?;
    let mut config = run_config_for(&hf.config);
    config.data.tokenizer = TOKENIZER_FILE.into();
    config.validate()?;
    let run_name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "imported".into());
    let trainer = initial_trainer_state(
        &config,
        run_name,
        hf.config.vocab_size,
        Some(dir.display().to_string()),
    );
    Ok(LoadedCheckpoint {
        dir: dir.to_path_buf(),
        trainer,
        model_config: hf.config,
        weights,
        moments: MomentsFile::Absent,
        tokenizer_path,
        digests_verified: false,
        origin: ModelOrigin::HuggingFace,
    })
}

/// Refuse to resume an HF directory (it has no training state), pointing at `--finetune`.
pub fn refuse_resume_of_hf(dir: &Path) -> Result<()> {
    if is_hf_model_dir(dir) {
        bail!(
            "{}: no trainer.json: a Hugging Face model directory has no training state to resume; fine-tune from it instead (--finetune {})",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

/// A browser row for an HF model directory, from its config and headers alone (cheap); one
/// that cannot be loaded carries the reason.
pub fn summarize_hf_dir(dir: &Path) -> CheckpointSummary {
    let size_bytes = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    let written_unix = std::fs::metadata(dir.join(HF_CONFIG_FILE))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let tokenizer = dir.join(TOKENIZER_FILE);
    let error = match inspect_hf_dir(dir) {
        Ok(_) if !tokenizer.is_file() => Some(format!("{}: missing", tokenizer.display())),
        Ok(_) => None,
        Err(e) => Some(format!("{e:#}")),
    };
    CheckpointSummary {
        path: dir.display().to_string(),
        run_name: dir
            .file_name()
            .map(|n| format!("{} (HF)", n.to_string_lossy()))
            .unwrap_or_default(),
        step: 0,
        tokens: 0,
        val_loss: None,
        val_step: None,
        size_bytes,
        written_unix,
        error,
        pinned: false,
    }
}

/// HF model directories directly inside `root` (the runs directory), sorted, for the browser:
/// a model dropped there can be sampled, fine-tuned or exported like a checkpoint.
pub fn list_hf_dirs(root: &Path) -> Vec<CheckpointSummary> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir() && is_hf_model_dir(p))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.iter().map(|d| summarize_hf_dir(d)).collect()
}
