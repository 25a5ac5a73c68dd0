//! Removing checkpoints: atomic deletion (by retention or a user), tidying what an interrupted
//! save, swap or delete left, and the `keep_last` / `keep_every` retention policy.

use super::validate_checkpoint_dir;
use crate::store::fsio::sync_dir;
use crate::store::layout::{checkpoints_dir, is_final_checkpoint_name};
use crate::store::lock::RunLock;
use crate::store::trainer_state::read_trainer_state;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

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
    crate::store::faults::point("retention.renamed");
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
    let run_dir = crate::store::layout::run_dir_of(dir);
    if let Some(holder) = crate::store::lock::foreign_holder(&run_dir)? {
        bail!(
            "refusing to delete {}: {}",
            dir.display(),
            holder.refusal(&run_dir)
        );
    }
    remove_checkpoint(dir)
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
