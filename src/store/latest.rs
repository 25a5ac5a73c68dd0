//! `--resume RUN_DIR/latest`, `--checkpoint RUN_DIR`: turning a run directory into its newest
//! valid checkpoint, so nobody has to copy step numbers out of `ckpt ls`.

use super::layout::{checkpoints_dir, TRAINER_FILE};
use super::listing::list_checkpoints;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// The last path component that asks for a run's newest valid checkpoint.
pub const LATEST: &str = "latest";

/// A checkpoint argument after resolution, with what the command should tell the user.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedCheckpoint {
    /// The checkpoint directory to use.
    pub path: PathBuf,
    /// "runs/a/latest -> runs/a/checkpoints/step-00000200 (newest valid of 3)" when the
    /// argument named a run rather than a checkpoint; None when it was used as given.
    pub note: Option<String>,
}

/// Resolve a checkpoint argument: `RUN_DIR/latest` (when no such file exists) or a run
/// directory (it has `checkpoints/` and no `trainer.json`) becomes the run's newest valid
/// checkpoint; anything else is returned unchanged for the loader to judge. A run without a
/// valid checkpoint is refused, naming the run and how many checkpoints were invalid.
pub fn resolve_checkpoint_arg(arg: &Path) -> Result<ResolvedCheckpoint> {
    let as_given = || ResolvedCheckpoint {
        path: arg.to_path_buf(),
        note: None,
    };
    let asks_latest =
        arg.file_name().is_some_and(|n| n == LATEST) && std::fs::symlink_metadata(arg).is_err();
    let run_dir = if asks_latest {
        match arg.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    } else if arg.is_dir() && checkpoints_dir(arg).is_dir() && !arg.join(TRAINER_FILE).exists() {
        arg.to_path_buf()
    } else {
        return Ok(as_given());
    };
    if !checkpoints_dir(&run_dir).is_dir() {
        bail!(
            "{}: {} is not a run directory (it has no checkpoints/ folder); give RUN_DIR/{LATEST} or a checkpoint",
            arg.display(),
            run_dir.display()
        );
    }
    let list = list_checkpoints(&run_dir);
    let Some(pos) = list.iter().rposition(|c| c.error.is_none()) else {
        bail!(
            "{}: no valid checkpoint in {} ({} invalid); see llite-tui ckpt ls {}",
            arg.display(),
            checkpoints_dir(&run_dir).display(),
            list.len(),
            run_dir.display()
        );
    };
    let newer_invalid = list.len() - 1 - pos;
    let path = PathBuf::from(&list[pos].path);
    let valid = list.iter().filter(|c| c.error.is_none()).count();
    let mut note = format!(
        "{} -> {} (newest valid of {valid}",
        arg.display(),
        path.display()
    );
    if newer_invalid > 0 {
        note.push_str(&format!("; skipped {newer_invalid} newer invalid"));
    }
    note.push(')');
    Ok(ResolvedCheckpoint {
        path,
        note: Some(note),
    })
}
