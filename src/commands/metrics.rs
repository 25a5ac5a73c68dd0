//! `metrics export --csv`: a run's metrics as a CSV file (store/metrics_csv.rs does the work).

use anyhow::{bail, Result};
use llite_tui::store::metrics_csv::{step_rows, to_csv, write_new_or_forced};
use std::path::{Path, PathBuf};

/// Export `run_dir`'s metrics.jsonl to `out` (default `RUN_DIR/metrics.csv`); an existing
/// file is refused unless `force`.
pub(crate) fn export_csv(run_dir: &Path, out: Option<PathBuf>, force: bool) -> Result<()> {
    if !run_dir.is_dir() {
        bail!(
            "{}: not a directory (expected a run directory)",
            run_dir.display()
        );
    }
    let rows = step_rows(run_dir)?;
    let out = out.unwrap_or_else(|| run_dir.join("metrics.csv"));
    write_new_or_forced(&out, to_csv(&rows).as_bytes(), force)?;
    println!("wrote {} ({} steps)", out.display(), rows.len());
    Ok(())
}
