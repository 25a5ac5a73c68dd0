//! Listing, validating and deleting checkpoints without loading tensors, so the cockpit,
//! `ckpt ls` and watchers stay fast and Burn-free.

use super::fsio::sync_dir;
use super::layout::{
    checkpoints_dir, is_final_checkpoint_name, HF_CONFIG_FILE, MODEL_FILE, OPTIMIZER_FILE,
    TOKENIZER_FILE,
};
use super::lock::RunLock;
use super::trainer_state::{read_trainer_state, TrainerState};
use crate::protocol::CheckpointSummary;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

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

/// Delete a checkpoint on a user's request (the cockpit's browser): only a `step-N`
/// directory, and never in a run another process is training (its saves and retention would
/// race the delete); the cockpit's own live run (held by this process) is fine.
pub fn delete_checkpoint_by_user(dir: &Path) -> Result<()> {
    if !is_final_checkpoint_name(dir) {
        bail!(
            "refusing to delete {}: not a checkpoint directory",
            dir.display()
        );
    }
    let run_dir = super::layout::run_dir_of(dir);
    if let Some(holder) = super::lock::foreign_holder(&run_dir)? {
        bail!(
            "refusing to delete {}: {}",
            dir.display(),
            holder.refusal(&run_dir)
        );
    }
    remove_checkpoint(dir)
}

/// The newest valid checkpoint of a run, for "resume the latest".
pub fn latest_valid_checkpoint(run_dir: &Path) -> Option<PathBuf> {
    list_checkpoints(run_dir)
        .into_iter()
        .rev()
        .find(|s| s.error.is_none())
        .map(|s| PathBuf::from(s.path))
}

/// Tidy what an interrupted save, swap or delete left in `checkpoints/`, under the run's lock:
/// `step-N.partial` and `step-N.deleting` (ours, incomplete or doomed) are removed; a
/// `step-N.old` whose `step-N` is missing is an interrupted swap and is RESTORED by renaming
/// it back, never deleted; a `step-N.old` next to its `step-N` (a finished swap) is removed.
/// Only real directories named `step-<digits>.<suffix>` are touched. Returns one notice each.
pub fn clean_leftovers(lock: &RunLock) -> Vec<String> {
    let dir = checkpoints_dir(lock.run_dir());
    let mut notices = Vec::new();
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return notices;
    };
    let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some((base, suffix)) = name.rsplit_once('.') else {
            continue;
        };
        if !is_final_checkpoint_name(Path::new(base))
            || !std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir())
        {
            continue;
        }
        let final_dir = dir.join(base);
        let notice = match suffix {
            "partial" | "deleting" => match std::fs::remove_dir_all(&p) {
                Ok(()) => format!(
                    "removed {} left by an interrupted {}",
                    p.display(),
                    if suffix == "partial" {
                        "save"
                    } else {
                        "delete"
                    }
                ),
                Err(e) => format!("cannot remove leftover {}: {e}", p.display()),
            },
            "old" if std::fs::symlink_metadata(&final_dir).is_ok() => {
                match std::fs::remove_dir_all(&p) {
                    Ok(()) => format!(
                        "removed {}, the previous copy of a completed re-save",
                        p.display()
                    ),
                    Err(e) => format!("cannot remove leftover {}: {e}", p.display()),
                }
            }
            "old" => match validate_checkpoint_dir(&p) {
                Ok(_) => match std::fs::rename(&p, &final_dir) {
                    Ok(()) => {
                        sync_dir(&dir);
                        format!(
                            "restored {} from {} (a re-save was interrupted mid-swap)",
                            final_dir.display(),
                            p.display()
                        )
                    }
                    Err(e) => format!("cannot restore {}: {e}", p.display()),
                },
                Err(e) => format!(
                    "left {} in place: an interrupted swap, but not a complete checkpoint ({e:#})",
                    p.display()
                ),
            },
            _ => continue,
        };
        notices.push(notice);
    }
    notices
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

#[cfg(test)]
mod leftover_tests {
    use super::*;

    fn fake_dir(path: &Path) {
        std::fs::create_dir_all(path).unwrap();
        std::fs::write(path.join("x"), b"1").unwrap();
    }

    #[test]
    fn leftovers_are_removed_and_an_interrupted_swap_is_restored_never_deleted() {
        let run = tempfile::tempdir().unwrap();
        let ck = checkpoints_dir(run.path());
        fake_dir(&ck.join("step-00000001.partial"));
        fake_dir(&ck.join("step-00000002.deleting"));
        fake_dir(&ck.join("step-00000003"));
        fake_dir(&ck.join("step-00000003.old"));
        // An interrupted swap whose `.old` is incomplete is left alone (never deleted).
        fake_dir(&ck.join("step-00000004.old"));
        // Strangers are never touched.
        fake_dir(&ck.join("notes.partial"));
        fake_dir(&ck.join("step-x.deleting"));
        let lock = RunLock::acquire(run.path()).unwrap();
        let notices = clean_leftovers(&lock);
        assert_eq!(notices.len(), 4, "{notices:?}");
        assert!(!ck.join("step-00000001.partial").exists());
        assert!(!ck.join("step-00000002.deleting").exists());
        assert!(ck.join("step-00000003").exists());
        assert!(!ck.join("step-00000003.old").exists());
        assert!(ck.join("step-00000004.old/x").exists());
        assert!(ck.join("notes.partial/x").exists());
        assert!(ck.join("step-x.deleting/x").exists());
    }
}
