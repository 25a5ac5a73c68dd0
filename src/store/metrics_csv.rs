//! `metrics export --csv`: a run's `metrics.jsonl` as one CSV row per step, for spreadsheets
//! and plotting scripts. Hand-written CSV: every field is a number or an RFC 3339 stamp, so
//! nothing ever needs quoting and a CSV crate would only add a dependency.

use super::fsio::{open_regular, sync_dir, write_synced};
use super::layout::metrics_path;
use super::metrics_log::parse_metrics_line;
use crate::protocol::Event;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The header of the exported table, in column order.
pub const CSV_HEADER: &str =
    "step,tokens,time,elapsed_s,train_loss,val_loss,lr,grad_norm,tokens_per_s,step_ms";

/// One step of a run: its `step` event and the `eval` logged at the same step, if any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepRow {
    pub step: u64,
    pub tokens: Option<u64>,
    /// When the step was logged (RFC 3339), and seconds since the log's first event.
    pub time: String,
    pub elapsed_s: Option<f64>,
    pub train_loss: Option<f64>,
    pub val_loss: Option<f64>,
    pub lr: Option<f64>,
    pub grad_norm: Option<f64>,
    pub tokens_per_s: Option<f64>,
    pub step_ms: Option<f64>,
}

/// Rows by step from a run's `metrics.jsonl`; lines that do not parse (a torn last line) are
/// skipped, and a step logged twice keeps its last values.
pub fn step_rows(run_dir: &Path) -> Result<Vec<StepRow>> {
    let path = metrics_path(run_dir);
    let file = open_regular(&path)?;
    let mut rows: BTreeMap<u64, StepRow> = BTreeMap::new();
    let mut first: Option<SystemTime> = None;
    for line in BufReader::new(file).lines() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        let Some(parsed) = parse_metrics_line(line.trim_end()) else {
            continue;
        };
        let at = humantime::parse_rfc3339(&parsed.time).ok();
        first = first.or(at);
        let elapsed = at
            .zip(first)
            .and_then(|(t, f)| t.duration_since(f).ok())
            .map(|d| d.as_secs_f64());
        match parsed.event {
            Event::Step(s) => {
                let row = rows.entry(s.step).or_default();
                row.step = s.step;
                row.tokens = Some(s.tokens);
                row.time = parsed.time;
                row.elapsed_s = elapsed;
                row.train_loss = Some(s.loss);
                row.lr = Some(s.lr);
                row.grad_norm = Some(s.grad_norm);
                row.tokens_per_s = Some(s.tokens_per_s);
                row.step_ms = Some(s.step_ms);
            }
            Event::Eval { step, val_loss } => {
                let row = rows.entry(step).or_default();
                row.step = step;
                row.val_loss = Some(val_loss);
                if row.time.is_empty() {
                    row.time = parsed.time;
                    row.elapsed_s = elapsed;
                }
            }
            _ => {}
        }
    }
    Ok(rows.into_values().collect())
}

fn cell<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The CSV text of `rows` (empty cells for values a step does not have).
pub fn to_csv(rows: &[StepRow]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for r in rows {
        let cells = [
            r.step.to_string(),
            cell(r.tokens),
            r.time.clone(),
            cell(r.elapsed_s),
            cell(r.train_loss),
            cell(r.val_loss),
            cell(r.lr),
            cell(r.grad_norm),
            cell(r.tokens_per_s),
            cell(r.step_ms),
        ];
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// Write `bytes` to `out` atomically (a fresh temporary beside it, fsynced, then renamed or,
/// without `force`, hard-linked so an existing file is refused even if it appears meanwhile).
pub fn write_new_or_forced(out: &Path, bytes: &[u8], force: bool) -> Result<()> {
    let exists = std::fs::symlink_metadata(out).is_ok();
    if exists && !force {
        bail!(
            "{}: already exists; pass --force to replace it",
            out.display()
        );
    }
    if exists && !std::fs::symlink_metadata(out).is_ok_and(|m| m.is_file()) {
        bail!(
            "{}: not a regular file; refusing to replace it",
            out.display()
        );
    }
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = out
        .file_name()
        .with_context(|| format!("{}: not a file name", out.display()))?;
    let tmp = fresh_tmp(dir, &name.to_string_lossy());
    let placed = write_synced(&tmp, bytes).and_then(|_| {
        let how = if force {
            std::fs::rename(&tmp, out)
        } else {
            std::fs::hard_link(&tmp, out)
        };
        how.with_context(|| format!("cannot write {}", out.display()))
    });
    if !force || placed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    placed?;
    sync_dir(dir);
    Ok(())
}

/// A name beside the output that does not exist yet (never one the user owns).
fn fresh_tmp(dir: &Path, name: &str) -> PathBuf {
    (0u32..)
        .map(|i| dir.join(format!(".{name}.{}-{i}.tmp", std::process::id())))
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .expect("some temporary name is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_values_are_empty_cells() {
        let rows = [StepRow {
            step: 3,
            val_loss: Some(2.5),
            ..StepRow::default()
        }];
        assert_eq!(to_csv(&rows), format!("{CSV_HEADER}\n3,,,,,2.5,,,,\n"));
    }
}
