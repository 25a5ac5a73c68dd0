//! `--resume RUN_DIR/latest`, `--checkpoint RUN_DIR`: turning a run directory into its newest
//! valid checkpoint, so nobody has to copy step numbers out of `ckpt ls`.

use super::layout::{checkpoints_dir, HF_CONFIG_FILE, TRAINER_FILE};
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
/// directory (it has `checkpoints/` and neither a `trainer.json` nor the `config.json` of a
/// Hugging Face model directory) becomes the run's newest valid checkpoint; anything else, an
/// HF directory included, is returned unchanged for the loader to judge. A run without a
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
    } else if arg.is_dir()
        && checkpoints_dir(arg).is_dir()
        && !arg.join(TRAINER_FILE).exists()
        && !arg.join(HF_CONFIG_FILE).exists()
    {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hugging_face_directory_is_passed_through_even_with_a_checkpoints_folder() {
        let dir = tempfile::tempdir().unwrap();
        let hf = dir.path().join("SmolLM2");
        std::fs::create_dir_all(checkpoints_dir(&hf)).unwrap();
        // Without config.json it reads as a run with no valid checkpoint: refused.
        let err = resolve_checkpoint_arg(&hf).unwrap_err().to_string();
        assert!(err.contains("no valid checkpoint"), "{err}");
        std::fs::write(hf.join(HF_CONFIG_FILE), "{}").unwrap();
        let r = resolve_checkpoint_arg(&hf).unwrap();
        assert_eq!(r.path, hf);
        assert_eq!(r.note, None);
        // A plain HF directory (no checkpoints/) is untouched as well.
        let plain = dir.path().join("plain");
        std::fs::create_dir(&plain).unwrap();
        std::fs::write(plain.join(HF_CONFIG_FILE), "{}").unwrap();
        assert_eq!(resolve_checkpoint_arg(&plain).unwrap().path, plain);
    }
}
