//! `metrics.jsonl`: the run's append-only event log, one JSON object per line.

use crate::protocol::{Event, MetricsLine};
use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Append-only `metrics.jsonl`, flushed per line so a watcher sees events as they happen.
pub struct MetricsLog {
    file: File,
}

impl MetricsLog {
    /// Open (creating if needed) the run's `metrics.jsonl` for appending.
    pub fn open(run_dir: &Path) -> Result<Self> {
        let path = run_dir.join("metrics.jsonl");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {} for appending", path.display()))?;
        Ok(Self { file })
    }

    /// Write one event as one JSON line; streaming sample tokens are skipped.
    pub fn append(&mut self, event: &Event) -> Result<()> {
        if !event.is_persistent() {
            return Ok(());
        }
        let mut line = serde_json::to_string(&MetricsLine::now(event.clone()))?;
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.flush()?;
        Ok(())
    }
}

/// Parse one `metrics.jsonl` line; unknown or partial lines are skipped by callers.
pub fn parse_metrics_line(line: &str) -> Option<MetricsLine> {
    serde_json::from_str(line).ok()
}
