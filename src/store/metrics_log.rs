//! `metrics.jsonl`: the run's append-only event log, one JSON object per line.

use super::fsio::{open_regular_with, sync_dir, write_synced};
use super::layout::metrics_path;
use super::lock::RunLock;
use crate::protocol::{Event, MetricsLine};
use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// How `metrics.jsonl` is used, for the refusal of one that is not a regular file.
const METRICS_LOG_USE: &str = "use it as the run's metrics log";

/// Append-only `metrics.jsonl`, flushed per line so a watcher sees events as they happen.
pub struct MetricsLog {
    file: File,
    /// The run's writer lock, kept as long as anything may still append (sampler threads
    /// share the log), so no line is written after the lock is released.
    lock: Option<RunLock>,
}

impl MetricsLog {
    /// Open (creating if needed) the run's `metrics.jsonl` for appending.
    pub fn open(run_dir: &Path) -> Result<Self> {
        let path = metrics_path(run_dir);
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        // A FIFO planted as metrics.jsonl must fail at once, not block until a reader comes.
        let file = open_regular_with(&mut options, &path, METRICS_LOG_USE)?;
        Ok(Self { file, lock: None })
    }

    /// Keep the run's writer lock for as long as this log lives.
    pub fn hold_lock(&mut self, lock: Option<RunLock>) {
        self.lock = lock;
    }

    /// Write one event as one JSON line; streaming sample tokens are skipped.
    pub fn append(&mut self, event: &Event) -> Result<()> {
        if !event.is_persistent() {
            return Ok(());
        }
        let mut line = serde_json::to_string(&MetricsLine::now(event.clone()))?;
        line.push('\n');
        // One write of one whole line: a crash can tear only the last line, never glue two.
        self.file.write_all(line.as_bytes())?;
        self.file.flush()?;
        Ok(())
    }
}

/// Parse one `metrics.jsonl` line; unknown or partial lines are skipped by callers.
pub fn parse_metrics_line(line: &str) -> Option<MetricsLine> {
    serde_json::from_str(line).ok()
}

/// A path next to `base` named `<base name>.<tag>` that does not exist yet, so saved bytes
/// never overwrite an earlier save.
fn fresh_sibling(base: &Path, tag: &str) -> PathBuf {
    let name = base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut candidate = base.with_file_name(format!("{name}.{tag}"));
    let mut i = 2;
    while std::fs::symlink_metadata(&candidate).is_ok() {
        candidate = base.with_file_name(format!("{name}.{tag}-{i}"));
        i += 1;
    }
    candidate
}

/// Cut a torn last line of `metrics.jsonl` (bytes after the last newline, left by a crash
/// mid-write) back to the last newline, so the next event is not glued onto it. The torn
/// bytes are first saved, fsynced, to `metrics.jsonl.torn-<unix time>` next to it: nothing is
/// lost. Returns the notice to show, if anything was cut.
pub fn repair_torn_tail(lock: &RunLock) -> Result<Option<String>> {
    let path = metrics_path(lock.run_dir());
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    let mut file = open_regular_with(
        OpenOptions::new().read(true).write(true),
        &path,
        METRICS_LOG_USE,
    )?;
    let len = file.metadata()?.len();
    let keep = last_newline_end(&mut file, len)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if keep == len {
        return Ok(None);
    }
    let mut torn = Vec::with_capacity((len - keep) as usize);
    file.seek(SeekFrom::Start(keep))?;
    (&mut file).take(len - keep).read_to_end(&mut torn)?;
    let saved = fresh_sibling(&path, &format!("torn-{}", super::layout::unix_now()));
    write_synced(&saved, &torn)?;
    sync_dir(lock.run_dir());
    file.set_len(keep)
        .and_then(|_| file.sync_all())
        .with_context(|| format!("cannot cut the torn last line of {}", path.display()))?;
    Ok(Some(format!(
        "{}: the last line was torn by an interrupted write ({} bytes, saved to {}); cut back to the last complete line",
        path.display(),
        torn.len(),
        saved.display()
    )))
}

/// Offset just past the last `\n` of the first `len` bytes (0 when there is none).
fn last_newline_end(file: &mut File, len: u64) -> std::io::Result<u64> {
    const CHUNK: u64 = 64 * 1024;
    let mut end = len;
    let mut buf = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Move the lines of events after `step` out of `metrics.jsonl` into `dest` (a new file,
/// written and fsynced first), then cut them from the log (truncate when they are its tail,
/// else an atomic rewrite), so a resume from `step` never duplicates a step. Lines that do
/// not parse, and events at or before `step`, stay. Returns how many lines moved.
pub fn move_events_after(lock: &RunLock, step: u64, dest: &Path) -> Result<usize> {
    let path = metrics_path(lock.run_dir());
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(0);
    }
    let mut file = open_regular_with(
        OpenOptions::new().read(true).write(true),
        &path,
        METRICS_LOG_USE,
    )?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let (mut kept, mut moved) = (Vec::new(), Vec::new());
    let mut moved_count = 0;
    let mut kept_is_prefix = true;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let later = std::str::from_utf8(line)
            .ok()
            .and_then(|l| parse_metrics_line(l.trim_end()))
            .is_some_and(|m| m.event.step() > step);
        if later {
            moved.extend_from_slice(line);
            moved_count += 1;
        } else {
            kept_is_prefix &= moved.is_empty();
            kept.extend_from_slice(line);
        }
    }
    if moved_count == 0 {
        return Ok(0);
    }
    if std::fs::symlink_metadata(dest).is_ok() {
        bail!(
            "{}: already exists; refusing to overwrite it",
            dest.display()
        );
    }
    write_synced(dest, &moved)?;
    if let Some(parent) = dest.parent() {
        sync_dir(parent);
    }
    if kept_is_prefix {
        file.set_len(kept.len() as u64)
            .and_then(|_| file.sync_all())
            .with_context(|| format!("cannot truncate {}", path.display()))?;
    } else {
        let tmp = fresh_sibling(&path, "rewrite");
        write_synced(&tmp, &kept)?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
    }
    sync_dir(lock.run_dir());
    Ok(moved_count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::FinishReason;

    fn line(event: Event) -> String {
        let stamped = MetricsLine {
            event,
            time: "2026-01-01T00:00:00.000Z".into(),
        };
        serde_json::to_string(&stamped).unwrap() + "\n"
    }

    fn eval(step: u64) -> String {
        line(Event::Eval {
            step,
            val_loss: 1.0,
        })
    }

    #[test]
    fn a_torn_last_line_is_cut_back_and_saved_and_the_next_event_starts_a_line() {
        let run = tempfile::tempdir().unwrap();
        let good = eval(1) + &eval(2);
        let torn = "{\"event\":\"eval\",\"step\":3,\"val_l";
        std::fs::write(metrics_path(run.path()), format!("{good}{torn}")).unwrap();
        let lock = RunLock::acquire(run.path()).unwrap();
        let notice = repair_torn_tail(&lock).unwrap().unwrap();
        assert!(
            notice.contains("torn") && !notice.contains('\n'),
            "{notice}"
        );
        assert_eq!(
            std::fs::read_to_string(metrics_path(run.path())).unwrap(),
            good
        );
        let saved: Vec<_> = std::fs::read_dir(run.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".torn-"))
            .collect();
        assert_eq!(saved.len(), 1);
        assert_eq!(std::fs::read_to_string(saved[0].path()).unwrap(), torn);
        // Whole log intact now: nothing more to repair.
        assert_eq!(repair_torn_tail(&lock).unwrap(), None);
        let mut log = MetricsLog::open(run.path()).unwrap();
        log.append(&Event::Finished {
            step: 2,
            reason: FinishReason::Stopped,
            failures: Default::default(),
        })
        .unwrap();
        let text = std::fs::read_to_string(metrics_path(run.path())).unwrap();
        assert!(
            text.lines().all(|l| parse_metrics_line(l).is_some()),
            "{text}"
        );
    }

    #[test]
    fn events_after_a_step_move_out_whole_and_in_order() {
        let run = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(run.path()).unwrap();
        let dest = run.path().join("moved.jsonl");
        // Tail case: truncate.
        std::fs::write(metrics_path(run.path()), eval(1) + &eval(2) + &eval(3)).unwrap();
        assert_eq!(move_events_after(&lock, 1, &dest).unwrap(), 2);
        assert_eq!(
            std::fs::read_to_string(metrics_path(run.path())).unwrap(),
            eval(1)
        );
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), eval(2) + &eval(3));
        // Nothing later: nothing written, dest not needed.
        assert_eq!(move_events_after(&lock, 1, &dest).unwrap(), 0);
        // Interleaved (a later line, then an older `eval` appended afterwards): rewrite.
        std::fs::write(
            metrics_path(run.path()),
            eval(1) + &eval(5) + &eval(1) + "junk\n",
        )
        .unwrap();
        let dest2 = run.path().join("moved2.jsonl");
        assert_eq!(move_events_after(&lock, 1, &dest2).unwrap(), 1);
        assert_eq!(
            std::fs::read_to_string(metrics_path(run.path())).unwrap(),
            eval(1) + &eval(1) + "junk\n"
        );
        // A destination that exists is never overwritten.
        std::fs::write(metrics_path(run.path()), eval(9)).unwrap();
        assert!(move_events_after(&lock, 1, &dest).is_err());
        assert_eq!(
            std::fs::read_to_string(metrics_path(run.path())).unwrap(),
            eval(9)
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_metrics_log_is_refused_without_hanging() {
        let run = tempfile::tempdir().unwrap();
        let fifo = std::ffi::CString::new(metrics_path(run.path()).to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(MetricsLog::open(run.path()).is_err());
        let lock = RunLock::acquire(run.path()).unwrap();
        assert!(repair_torn_tail(&lock).is_err());
    }
}
