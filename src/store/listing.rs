//! Listing, validating and deleting checkpoints without loading tensors, so the cockpit,
//! `ckpt ls` and watchers stay fast and Burn-free. Listing is here; the checks of one
//! checkpoint are in `inspect`, deletion and retention in `retention` (both re-exported).

use super::layout::{checkpoints_dir, is_final_checkpoint_name, TRAINER_FILE};
use super::trainer_state::read_trainer_state;
use crate::protocol::CheckpointSummary;
use std::path::{Path, PathBuf};

mod inspect;
mod retention;
pub use inspect::{
    inspect_checkpoint, validate_checkpoint_dir, verify_digests, InspectedCheckpoint,
};
pub use retention::{
    apply_retention, clean_leftovers, delete_checkpoint_by_user, remove_checkpoint,
};

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

/// The newest valid checkpoint of a run, for "resume the latest".
pub fn latest_valid_checkpoint(run_dir: &Path) -> Option<PathBuf> {
    list_checkpoints(run_dir)
        .into_iter()
        .rev()
        .find(|s| s.error.is_none())
        .map(|s| PathBuf::from(s.path))
}
