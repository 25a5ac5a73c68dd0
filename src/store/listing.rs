//! Listing, validating and deleting checkpoints without loading tensors, so the cockpit,
//! `ckpt ls` and watchers stay fast and Burn-free.

use super::digest::{check_size, verify_file};
use super::fsio::{open_regular, sync_dir};
use super::layout::{
    checkpoints_dir, is_final_checkpoint_name, HF_CONFIG_FILE, MODEL_FILE, OPTIMIZER_FILE,
    TOKENIZER_FILE, TRAINER_FILE,
};
use super::lock::RunLock;
use super::safetensors_io::read_header;
use super::structure::{check_config_json, check_header, expected_moments, expected_weights};
use super::trainer_state::{
    read_trainer_record, read_trainer_state, OptimizerState, TrainerRecord, TrainerState,
};
use crate::config::ModelConfig;
use crate::protocol::CheckpointSummary;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// A checkpoint whose file set passed the cheap checks: `trainer.json` (its own digest
/// verified), the model config it records, and the other files present at their recorded
/// sizes with the tensors that config implies.
pub struct InspectedCheckpoint {
    pub record: TrainerRecord,
    pub model_config: ModelConfig,
}

/// Cheap checks of a checkpoint directory, reading only `trainer.json`, `config.json` and the
/// safetensors headers: names, shapes and dtypes against the model config, sizes against
/// `trainer.json`. Special files are refused without blocking.
pub fn inspect_checkpoint(dir: &Path) -> Result<InspectedCheckpoint> {
    if !dir.is_dir() {
        bail!("{}: not a checkpoint directory", dir.display());
    }
    let record = read_trainer_record(dir)?;
    let trainer_path = dir.join(TRAINER_FILE);
    let model_config = crate::config::RunConfig::from_toml_str(
        &record.state.config_toml,
        &trainer_path.display().to_string(),
    )?
    .model;
    // A checkpoint without moments (an import) must not be taken for one that lost them: only
    // `optimizer_state: absent` in the (self-digested) trainer.json excuses the file.
    let has_moments = record.state.optimizer_state == OptimizerState::Present;
    let mut tensor_files = vec![(MODEL_FILE, expected_weights(&model_config))];
    if has_moments {
        tensor_files.push((OPTIMIZER_FILE, expected_moments(&model_config)));
    }
    for (file, expected) in tensor_files {
        let path = dir.join(file);
        let header = read_header(&path)?;
        if let Some(recorded) = record.digest(file) {
            check_size(&path, header.file_bytes, recorded)?;
        }
        check_header(&path, &header, &expected)?;
    }
    check_config_json(&dir.join(HF_CONFIG_FILE), &model_config)?;
    let tokenizer = dir.join(TOKENIZER_FILE);
    let len = open_regular(&tokenizer)?
        .metadata()
        .with_context(|| format!("cannot stat {}", tokenizer.display()))?
        .len();
    if let Some(recorded) = record.digest(TOKENIZER_FILE) {
        check_size(&tokenizer, len, recorded)?;
    }
    if let Some(files) = &record.files {
        for f in [MODEL_FILE, OPTIMIZER_FILE, HF_CONFIG_FILE, TOKENIZER_FILE] {
            if !files.contains_key(f) && (has_moments || f != OPTIMIZER_FILE) {
                bail!(
                    "{}: records no digest for {f}; the file is corrupt or was edited",
                    trainer_path.display()
                );
            }
        }
    }
    Ok(InspectedCheckpoint {
        record,
        model_config,
    })
}

/// Stream every file of a checkpoint through blake3 and compare with `trainer.json`; returns
/// the bytes verified. A checkpoint written before digests (format 1) verifies nothing.
pub fn verify_digests(dir: &Path, record: &TrainerRecord) -> Result<u64> {
    let mut bytes = 0;
    for (file, digest) in record.files.iter().flatten() {
        if !is_checkpoint_file(file) {
            bail!(
                "{}: records a digest for `{file}`, which is not a checkpoint file",
                dir.join(TRAINER_FILE).display()
            );
        }
        bytes += verify_file(&dir.join(file), digest)?;
    }
    Ok(bytes)
}

/// The files a checkpoint holds besides `trainer.json` (the only names a digest may name, so a
/// hostile `trainer.json` cannot make a verifier read `../../somewhere`).
fn is_checkpoint_file(name: &str) -> bool {
    use crate::data::tokenizer_meta::{GENERATION_CONFIG_FILE, TOKENIZER_CONFIG_FILE};
    [
        MODEL_FILE,
        OPTIMIZER_FILE,
        HF_CONFIG_FILE,
        TOKENIZER_FILE,
        TOKENIZER_CONFIG_FILE,
        GENERATION_CONFIG_FILE,
    ]
    .contains(&name)
}

/// Validate a checkpoint directory's file set cheaply, returning its trainer state.
pub fn validate_checkpoint_dir(dir: &Path) -> Result<TrainerState> {
    Ok(inspect_checkpoint(dir)?.record.state)
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

/// Summarise one checkpoint directory for listings (cheap checks only); invalid ones carry
/// their reason.
pub fn summarize_checkpoint(dir: &Path) -> CheckpointSummary {
    summarize(dir, Check::Cheap)
}

/// How deep a listing looks at each checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Headers, `config.json` and sizes only (milliseconds).
    Cheap,
    /// Also every file's blake3 digest (reads every byte).
    Digests,
}

fn summarize(dir: &Path, check: Check) -> CheckpointSummary {
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
        val_step: None,
        size_bytes: dir_size(dir),
        written_unix: 0,
        error: None,
        pinned: false,
    };
    let checked = inspect_checkpoint(dir).and_then(|c| {
        if check == Check::Digests {
            verify_digests(dir, &c.record)?;
        }
        Ok(c)
    });
    match checked {
        Ok(c) => {
            let state = c.record.state;
            summary.step = state.step;
            summary.tokens = state.tokens_seen;
            summary.val_loss = state.last_val_loss;
            summary.val_step = state.last_val_step;
            summary.written_unix = state.written_unix;
            summary.pinned = state.pinned;
        }
        Err(e) => {
            if let Ok(state) = read_trainer_state(dir) {
                summary.step = state.step;
                summary.tokens = state.tokens_seen;
                summary.written_unix = state.written_unix;
                summary.pinned = state.pinned;
            }
            summary.error = Some(format!("{e:#}"));
        }
    }
    summary
}

/// Checkpoints of one run, oldest first. `.partial` leftovers of a crash are never listed.
pub fn list_checkpoints(run_dir: &Path) -> Vec<CheckpointSummary> {
    list_checkpoints_with(run_dir, Check::Cheap)
}

/// [`list_checkpoints`] at the given depth (`ckpt ls --verify` asks for digests).
pub fn list_checkpoints_with(run_dir: &Path, check: Check) -> Vec<CheckpointSummary> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(checkpoints_dir(run_dir))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir() && is_final_checkpoint_name(p))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.iter().map(|d| summarize(d, check)).collect()
}

/// Why `dir` (which has no `checkpoints/`) is not a run directory, and what to list instead:
/// a runs root names its runs, a checkpoint or `checkpoints/` folder names its run.
pub fn not_a_run_dir_hint(dir: &Path) -> String {
    let shown = dir.display();
    if dir.join(TRAINER_FILE).exists() {
        // Only a checkpoint that really sits in a run's checkpoints/ has a run to list; the
        // grandparent of an imported or copied one is not a run (and may be "").
        return match super::history::place_of(dir) {
            super::history::CheckpointPlace::InRun(_) => format!(
                "{shown} is a checkpoint, not a run directory; list its run: llite-tui ckpt ls {}",
                dir.parent().and_then(Path::parent).unwrap_or(dir).display()
            ),
            super::history::CheckpointPlace::Standalone => format!(
                "{shown} is a standalone checkpoint (not in a run's checkpoints/ folder); ckpt ls lists runs, and sample, eval and export verify a checkpoint's digests"
            ),
        };
    }
    if dir.file_name().is_some_and(|n| n == "checkpoints") {
        let run = dir.parent().unwrap_or(dir);
        return format!(
            "{shown} is a run's checkpoints folder; list the run: llite-tui ckpt ls {}",
            run.display()
        );
    }
    let mut runs: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| checkpoints_dir(&e.path()).is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    runs.sort();
    match runs.first() {
        Some(first) => format!(
            "{shown} is not a run directory but holds {} run(s) ({}); list one: llite-tui ckpt ls {}",
            runs.len(),
            runs.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
            dir.join(first).display()
        ),
        None => format!("{shown} is not a run directory (it has no checkpoints/ folder)"),
    }
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
    super::faults::point("retention.renamed");
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
/// every step divisible by `keep_every`. `protect` (the one just written) and pinned ones
/// (saved on demand) are never deleted, nor counted among the newest `keep_last`.
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
        .filter(|(_, p)| !read_trainer_state(p).is_ok_and(|s| s.pinned))
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
