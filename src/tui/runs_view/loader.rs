//! Feeds the runs pane from disk through `store/`: which runs it lists (a runs root, or the
//! run directories `watch` was given) and the curves of the selected ones. Called by the
//! runtime on the pane's requests, never while drawing.

use crate::store::run_curves::{load_curves, RunCurves};
pub use crate::store::runs::RunStatus;
use crate::store::runs::{is_run_dir, scan_runs, summarize_run, RunIndex, RunSummary};
use std::path::{Path, PathBuf};

/// Where the listed runs come from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunsSource {
    /// Runs roots: every run directly under each.
    pub roots: Vec<PathBuf>,
    /// Single run directories.
    pub dirs: Vec<PathBuf>,
}

impl RunsSource {
    /// Sort `watch` arguments into run directories and runs roots; an argument that is
    /// neither is an error naming it.
    pub fn from_args(args: &[PathBuf]) -> anyhow::Result<Self> {
        let mut src = Self::default();
        for a in args {
            if is_run_dir(a) {
                src.dirs.push(a.clone());
            } else if a.is_dir() {
                src.roots.push(a.clone());
            } else {
                anyhow::bail!(
                    "{}: not a run directory (expected <runs>/<run-name>/ with metrics.jsonl) nor a runs root",
                    a.display()
                );
            }
        }
        Ok(src)
    }

    /// One index over every source, newest first; a root that cannot be listed is a note.
    pub fn load(&self) -> RunIndex {
        let mut all = RunIndex {
            root: self.roots.first().cloned().unwrap_or_default(),
            ..Default::default()
        };
        for root in &self.roots {
            match scan_runs(root) {
                Ok(idx) => {
                    all.runs.extend(idx.runs);
                    all.skipped.extend(idx.skipped);
                }
                Err(e) => all.skipped.push(format!("{e:#}")),
            }
        }
        for d in &self.dirs {
            if !all.runs.iter().any(|r| same_dir(&r.dir, d)) {
                all.runs.push(summarize_run(d));
            }
        }
        all.runs.sort_by(|a, b| {
            (b.last_write_unix, &a.dir_name).cmp(&(a.last_write_unix, &b.dir_name))
        });
        all
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || std::fs::canonicalize(a).ok() == std::fs::canonicalize(b).ok()
}

/// The run `watch` follows first: the newest running one, else the newest written.
pub fn pick_to_watch(index: &RunIndex) -> Option<&RunSummary> {
    index
        .runs
        .iter()
        .find(|r| r.status == RunStatus::Running)
        .or_else(|| index.runs.first())
}

/// Curves and configs of the selected runs, in order.
pub fn load_selected(picked: &[(PathBuf, String)]) -> Vec<RunCurves> {
    picked.iter().map(|(d, n)| load_curves(d, n)).collect()
}
