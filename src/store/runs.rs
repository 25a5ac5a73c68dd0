//! The runs index: every run under a runs root with its name, status, steps, best val loss,
//! age, parent and tags, from what the store already writes (the lock, `metrics.jsonl`,
//! `parent.json`, `labels.toml`). Reads are bounded and a broken or hostile entry is skipped
//! with a note, never a failure of the whole listing.

use super::fsio::open_regular;
use super::layout::{metrics_path, METRICS_FILE, RUN_CONFIG_FILE};
use super::lineage::{read_parent, ParentRecord};
use super::run_labels::read_labels;
use anyhow::Result;
use serde::Deserialize;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// At most this many entries of a runs root are looked at (a hostile root cannot stall us).
pub const MAX_RUNS: usize = 10_000;
/// Of a longer `metrics.jsonl`, only the last this many bytes are scanned (its newest steps,
/// evals and end), plus its first line for the start.
pub const MAX_SCAN_BYTES: u64 = 256 << 20;

/// A run's state as the index tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Its lock is held by a live process.
    Running,
    /// It reached `max_steps`.
    Finished,
    /// Stopped by the user or a signal, resumable.
    Stopped,
    /// It ended in an error, or its writer died without a `finished` event.
    Crashed,
    /// No events yet (a run being set up, or one whose start failed).
    Empty,
}

impl RunStatus {
    /// Lower-case word for tables; the tmux test greps for "running".
    pub fn label(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Stopped => "stopped",
            RunStatus::Crashed => "crashed",
            RunStatus::Empty => "empty",
        }
    }
}

/// One row of the index.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub dir: PathBuf,
    /// The directory's name: what branches, `parent.json` and the CLI refer to.
    pub dir_name: String,
    /// `labels.toml`'s name, else the directory name.
    pub name: String,
    pub tags: Vec<String>,
    pub status: RunStatus,
    /// Newest step logged.
    pub steps: u64,
    /// `max_steps` of its newest start (0 unknown).
    pub max_steps: u64,
    pub tokens: u64,
    pub best_val_loss: Option<f64>,
    /// Last write to `metrics.jsonl` (0 unknown), for the age column and "newest".
    pub last_write_unix: u64,
    pub parent: Option<ParentRecord>,
    /// What could not be read, one line each (shown, never fatal).
    pub notes: Vec<String>,
}

/// All runs under one root, sorted by last write (newest first).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunIndex {
    pub root: PathBuf,
    pub runs: Vec<RunSummary>,
    /// Entries skipped, with why.
    pub skipped: Vec<String>,
}

/// Whether `dir` is a run directory (holds `metrics.jsonl` or `run.toml`).
pub fn is_run_dir(dir: &Path) -> bool {
    [METRICS_FILE, RUN_CONFIG_FILE]
        .iter()
        .any(|f| std::fs::metadata(dir.join(f)).is_ok_and(|m| m.is_file()))
}

/// Index every run directly under `root`. Symlinks are not followed (a link could lead
/// anywhere); unreadable entries are skipped with a note.
pub fn scan_runs(root: &Path) -> Result<RunIndex> {
    let entries = std::fs::read_dir(root)
        .map_err(|e| anyhow::anyhow!("{}: cannot list runs: {e}", root.display()))?;
    let mut index = RunIndex {
        root: root.to_path_buf(),
        ..Default::default()
    };
    for (n, entry) in entries.enumerate() {
        if n >= MAX_RUNS {
            index.skipped.push(format!(
                "{}: more than {MAX_RUNS} entries; the rest are not listed",
                root.display()
            ));
            break;
        }
        let Ok(entry) = entry else {
            index
                .skipped
                .push(format!("{}: an entry could not be read", root.display()));
            continue;
        };
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            if is_run_dir(&path) {
                index.skipped.push(format!(
                    "{}: a symlink; not followed (watch or list its target instead)",
                    path.display()
                ));
            }
            continue;
        }
        if meta.is_dir() && is_run_dir(&path) {
            index.runs.push(summarize_run(&path));
        }
    }
    index
        .runs
        .sort_by(|a, b| (b.last_write_unix, &a.dir_name).cmp(&(a.last_write_unix, &b.dir_name)));
    Ok(index)
}

/// What one pass over `metrics.jsonl` learns.
#[derive(Debug, Default)]
struct LogFacts {
    steps: u64,
    tokens: u64,
    max_steps: u64,
    best_val: Option<f64>,
    /// The last event that ended the run (None: it never ended, or was started again since).
    finished: Option<String>,
    events: u64,
    first_origin: Option<String>,
}

#[derive(Deserialize)]
struct StepLite {
    step: u64,
    #[serde(default)]
    tokens: u64,
}
#[derive(Deserialize)]
struct EvalLite {
    val_loss: f64,
}
#[derive(Deserialize)]
struct StartedLite {
    #[serde(default)]
    max_steps: u64,
    #[serde(default)]
    origin: String,
}
#[derive(Deserialize)]
struct FinishedLite {
    reason: String,
}

/// Summarize one run directory; never fails (problems become notes).
pub fn summarize_run(dir: &Path) -> RunSummary {
    let dir_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let mut notes = Vec::new();
    let labels = read_labels(dir).unwrap_or_else(|e| {
        notes.push(format!("{e:#}"));
        Default::default()
    });
    let mut facts = LogFacts::default();
    let path = metrics_path(dir);
    let last_write_unix = mtime_unix(&path).or_else(|| mtime_unix(dir)).unwrap_or(0);
    if std::fs::symlink_metadata(&path).is_ok() {
        match scan_log(&path, &mut facts) {
            Ok(true) => notes.push(format!(
                "{}: longer than {} MiB; steps and best val loss from its newest part only",
                path.display(),
                MAX_SCAN_BYTES >> 20
            )),
            Ok(false) => {}
            Err(e) => notes.push(format!("{e:#}")),
        }
    }
    let parent = match read_parent(dir) {
        Ok(Some(p)) => Some(p),
        Ok(None) => facts
            .first_origin
            .as_deref()
            .and_then(|o| ParentRecord::from_origin(o, &dir_name)),
        Err(e) => {
            notes.push(format!("{e:#}"));
            None
        }
    };
    let held = match super::lock::holder(dir) {
        Ok(h) => h.is_some(),
        Err(e) => {
            notes.push(format!("{e:#}"));
            false
        }
    };
    let status = match (held, facts.finished.as_deref(), facts.events) {
        (true, ..) => RunStatus::Running,
        (false, _, 0) => RunStatus::Empty,
        (false, Some("max_steps"), _) => RunStatus::Finished,
        (false, Some("error") | None, _) => RunStatus::Crashed,
        (false, Some(_), _) => RunStatus::Stopped,
    };
    RunSummary {
        dir: dir.to_path_buf(),
        name: labels.name.unwrap_or_else(|| dir_name.clone()),
        dir_name,
        tags: labels.tags,
        status,
        steps: facts.steps,
        max_steps: facts.max_steps,
        tokens: facts.tokens,
        best_val_loss: facts.best_val,
        last_write_unix,
        parent,
        notes,
    }
}

fn mtime_unix(path: &Path) -> Option<u64> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs())
}

/// The `"event"` of a metrics line, read from its text without parsing the whole line.
pub(crate) fn event_kind(line: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(line).ok()?;
    let at = text.find("\"event\":\"")? + 9;
    let rest = &text[at..];
    Some(&rest[..rest.find('"')?])
}

fn scan_log(path: &Path, facts: &mut LogFacts) -> Result<bool> {
    let mut last_step: Vec<u8> = Vec::new();
    let truncated = scan_lines(path, MAX_SCAN_BYTES, |line, first| {
        let kind = event_kind(line);
        if kind.is_some() {
            facts.events += 1;
        }
        match kind {
            Some("step") => {
                last_step.clear();
                last_step.extend_from_slice(line);
            }
            Some("eval") => {
                if let Ok(e) = serde_json::from_slice::<EvalLite>(line) {
                    if e.val_loss.is_finite() && facts.best_val.is_none_or(|b| e.val_loss < b) {
                        facts.best_val = Some(e.val_loss);
                    }
                }
            }
            Some("started") => {
                if let Ok(s) = serde_json::from_slice::<StartedLite>(line) {
                    facts.max_steps = s.max_steps;
                    if first {
                        facts.first_origin = Some(s.origin);
                    }
                }
                facts.finished = None;
            }
            Some("finished") => {
                facts.finished = serde_json::from_slice::<FinishedLite>(line)
                    .ok()
                    .map(|f| f.reason);
            }
            _ => {}
        }
    })?;
    if let Ok(s) = serde_json::from_slice::<StepLite>(&last_step) {
        facts.steps = s.step;
        facts.tokens = s.tokens;
    }
    Ok(truncated)
}

/// Call `f(line, is_first_line_of_file)` for every complete line of a regular file; of a file
/// longer than `max_bytes`, the first line and then the lines of its last `max_bytes` only
/// (returns true then). Special files are refused by `open_regular`; a torn last line is
/// skipped.
pub(crate) fn scan_lines(
    path: &Path,
    max_bytes: u64,
    mut f: impl FnMut(&[u8], bool),
) -> Result<bool> {
    let file = open_regular(path)?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let read_err = |e: std::io::Error| anyhow::anyhow!("cannot read {}: {e}", path.display());
    // The first line (the run's start), bounded like everything else.
    (&mut reader)
        .take(max_bytes.min(1 << 20))
        .read_until(b'\n', &mut line)
        .map_err(read_err)?;
    let mut pos = line.len() as u64;
    if line.ends_with(b"\n") {
        f(&line[..line.len() - 1], true);
    }
    let truncated = len.saturating_sub(pos) > max_bytes;
    if truncated {
        pos = len - max_bytes;
        reader.seek(SeekFrom::Start(pos)).map_err(read_err)?;
        line.clear();
        // Skip the partial line the window starts in.
        reader.read_until(b'\n', &mut line).map_err(read_err)?;
    }
    let mut body = reader.take(len.saturating_sub(pos));
    loop {
        line.clear();
        let n = body.read_until(b'\n', &mut line).map_err(read_err)?;
        if n == 0 || !line.ends_with(b"\n") {
            break;
        }
        f(&line[..line.len() - 1], false);
    }
    Ok(truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn write_run(root: &Path, name: &str, lines: &[&str]) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(dir.join(METRICS_FILE), text).unwrap();
        dir
    }

    const STARTED: &str = r#"{"event":"started","step":0,"run_name":"a","run_dir":"/r/a","device":"cpu","params":1,"flops_per_token":1.0,"tokens_per_step":8,"max_steps":20,"start_step":0,"config_toml":"","origin":"fresh","time":"2026-11-30T05:00:00Z"}"#;

    #[test]
    fn status_steps_best_val_and_parent_come_from_the_log() {
        let root = tempfile::tempdir().unwrap();
        let step = |n: u64| {
            format!(
                r#"{{"event":"step","step":{n},"loss":3.0,"lr":0.001,"grad_norm":1.0,"tokens":{},"step_ms":1.0,"tokens_per_s":1.0,"time":"t"}}"#,
                n * 8
            )
        };
        let eval = |v: f64| format!(r#"{{"event":"eval","step":1,"val_loss":{v},"time":"t"}}"#);
        let fin = |r: &str| {
            format!(r#"{{"event":"finished","step":2,"reason":"{r}","failures":0,"time":"t"}}"#)
        };
        let (s1, s2, e1, e2) = (step(1), step(2), eval(4.5), eval(4.25));
        write_run(
            root.path(),
            "done",
            &[STARTED, &s1, &e1, &s2, &e2, &fin("max_steps")],
        );
        write_run(root.path(), "stopped", &[STARTED, &s1, &fin("interrupted")]);
        write_run(root.path(), "died", &[STARTED, &s1, &s2]);
        // Finished, then resumed and killed: crashed, not finished.
        write_run(
            root.path(),
            "again",
            &[STARTED, &fin("stopped"), STARTED, &s1],
        );
        let branch_start = STARTED.replace(
            r#""origin":"fresh""#,
            r#""origin":"resume:/r/done/checkpoints/step-00000001""#,
        );
        write_run(root.path(), "done-branch-1", &[&branch_start, "{torn"]);
        std::fs::create_dir(root.path().join("not-a-run")).unwrap();
        std::fs::write(root.path().join("loose-file"), "x").unwrap();
        let idx = scan_runs(root.path()).unwrap();
        let get = |n: &str| idx.runs.iter().find(|r| r.dir_name == n).unwrap();
        assert_eq!(idx.runs.len(), 5);
        let done = get("done");
        assert_eq!(
            (done.status, done.steps, done.tokens, done.max_steps),
            (RunStatus::Finished, 2, 16, 20)
        );
        assert_eq!(done.best_val_loss, Some(4.25));
        assert_eq!(get("stopped").status, RunStatus::Stopped);
        assert_eq!(get("died").status, RunStatus::Crashed);
        assert_eq!(get("again").status, RunStatus::Crashed);
        let b = get("done-branch-1");
        assert_eq!(
            b.parent.as_ref().and_then(|p| p.run.as_deref()),
            Some("done")
        );
        assert_eq!(b.steps, 0);
        // A live lock holder makes a run "running".
        let _lock = super::super::lock::RunLock::acquire(&get("died").dir).unwrap();
        assert_eq!(summarize_run(&get("died").dir).status, RunStatus::Running);
    }

    #[test]
    fn long_logs_are_scanned_from_their_tail_and_special_files_are_notes() {
        let root = tempfile::tempdir().unwrap();
        let dir = write_run(
            root.path(),
            "r",
            &[
                STARTED,
                "x".repeat(1000).as_str(),
                r#"{"event":"eval","step":1,"val_loss":2.0,"time":"t"}"#,
            ],
        );
        let mut seen = Vec::new();
        let truncated = scan_lines(&dir.join(METRICS_FILE), 300, |l, first| {
            seen.push((event_kind(l).map(str::to_string), first))
        })
        .unwrap();
        assert!(truncated);
        assert_eq!(
            seen,
            vec![(Some("started".into()), true), (Some("eval".into()), false)]
        );
        #[cfg(unix)]
        {
            let fifo_run = root.path().join("fifo");
            std::fs::create_dir(&fifo_run).unwrap();
            std::fs::write(fifo_run.join(RUN_CONFIG_FILE), "").unwrap();
            let p = std::ffi::CString::new(fifo_run.join(METRICS_FILE).to_str().unwrap()).unwrap();
            assert_eq!(unsafe { libc::mkfifo(p.as_ptr(), 0o600) }, 0);
            let s = summarize_run(&fifo_run);
            assert_eq!(s.status, RunStatus::Empty);
            assert!(s.notes[0].contains("not a regular file"), "{:?}", s.notes);
        }
    }
}
