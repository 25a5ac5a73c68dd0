//! Listing, validating and deleting checkpoints without loading tensors, so the cockpit,
//! `ckpt ls` and watchers stay fast and Burn-free.

use super::layout::{
    checkpoints_dir, is_final_checkpoint_name, HF_CONFIG_FILE, MODEL_FILE, OPTIMIZER_FILE,
    TOKENIZER_FILE,
};
use super::trainer_state::{read_trainer_state, TrainerState};
use crate::protocol::CheckpointSummary;
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Check that a safetensors file is complete (header parses, data as long as the header says)
/// without reading the tensors, so listings stay fast and flag truncated files.
pub fn check_safetensors_file(path: &Path) -> Result<()> {
    // open_regular: a FIFO or device in a checkpoint must not hang a listing.
    let mut file = super::fsio::open_regular(path)?;
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

/// Remove `.partial` / `.old` leftovers of a crash; returns one warning per removal.
pub fn clean_leftovers(run_dir: &Path) -> Vec<String> {
    let mut warnings = Vec::new();
    let Ok(rd) = std::fs::read_dir(checkpoints_dir(run_dir)) else {
        return warnings;
    };
    for entry in rd.flatten() {
        let p = entry.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if (name.ends_with(".partial") || name.ends_with(".old"))
            && std::fs::remove_dir_all(&p).is_ok()
        {
            warnings.push(format!(
                "removed incomplete checkpoint {} left by an interrupted save",
                p.display()
            ));
        }
    }
    warnings
}

/// Delete checkpoints outside the retention policy: keep the newest `keep_last` (0 = all) and
/// every step divisible by `keep_every`. `protect` (the one just written) is never deleted.
pub fn apply_retention(
    run_dir: &Path,
    keep_last: usize,
    keep_every: u64,
    protect: &Path,
) -> Result<Vec<PathBuf>> {
    if keep_last == 0 {
        return Ok(Vec::new());
    }
    let mut dirs: Vec<(u64, PathBuf)> = std::fs::read_dir(checkpoints_dir(run_dir))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && is_final_checkpoint_name(p))
        .filter_map(|p| {
            let step = p
                .file_name()?
                .to_str()?
                .strip_prefix("step-")?
                .parse()
                .ok()?;
            Some((step, p))
        })
        .collect();
    dirs.sort();
    let n = dirs.len();
    let mut removed = Vec::new();
    for (i, (step, path)) in dirs.into_iter().enumerate() {
        let recent = i + keep_last >= n;
        let milestone = keep_every > 0 && step % keep_every == 0;
        if !recent && !milestone && path != protect {
            remove_checkpoint(&path)?;
            removed.push(path);
        }
    }
    Ok(removed)
}
