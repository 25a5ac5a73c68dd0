//! Following files another process writes: a `metrics.jsonl` tail that only ever yields
//! complete lines, and a notify watcher that turns filesystem changes into a cheap "dirty" flag
//! (with polling as the fallback, since notify can miss events on network filesystems).

use crate::protocol::Event;
use crate::store::metrics_log::parse_metrics_line;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Incremental reader of an append-only JSONL file.
#[derive(Debug)]
pub struct MetricsTail {
    path: PathBuf,
    pos: u64,
    /// Bytes after the last newline: a line still being written.
    partial: Vec<u8>,
    /// Lines that did not parse (kept for diagnostics; they are skipped).
    pub skipped: usize,
}

impl MetricsTail {
    /// Start at the beginning of `path` (which need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            pos: 0,
            partial: Vec::new(),
            skipped: 0,
        }
    }

    /// Events from complete lines appended since the last call. A file that shrank (rotated or
    /// rewritten) is read again from the start.
    pub fn poll(&mut self) -> Vec<Event> {
        // A FIFO or device in place of the log is ignored, never waited on.
        let Ok(mut file) = crate::store::fsio::open_regular(&self.path) else {
            return vec![];
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.pos {
            self.pos = 0;
            self.partial.clear();
        }
        if len == self.pos || file.seek(SeekFrom::Start(self.pos)).is_err() {
            return vec![];
        }
        let mut buf = Vec::new();
        if file.take(len - self.pos).read_to_end(&mut buf).is_err() {
            return vec![];
        }
        self.pos += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let Some(last_nl) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return vec![];
        };
        let rest = self.partial.split_off(last_nl + 1);
        let complete = std::mem::replace(&mut self.partial, rest);
        let mut events = Vec::new();
        for line in String::from_utf8_lossy(&complete).lines() {
            if line.trim().is_empty() {
                continue;
            }
            match parse_metrics_line(line) {
                Some(m) => events.push(m.event),
                None => self.skipped += 1,
            }
        }
        events
    }
}

/// A recursive notify watch plus a polling fallback, answering "should I re-read now?".
pub struct ChangeWatch {
    dirty: Arc<AtomicBool>,
    _watcher: Option<notify::RecommendedWatcher>,
    last_check: Instant,
    poll_every: Duration,
    debounce: Duration,
    last_fire: Instant,
}

impl ChangeWatch {
    /// Watch `path` (recursively when `recursive`); a path that cannot be watched (missing,
    /// out of inotify handles) silently degrades to polling every `poll_every`.
    pub fn new(path: &Path, recursive: bool, poll_every: Duration) -> Self {
        use notify::Watcher;
        let dirty = Arc::new(AtomicBool::new(true));
        let flag = dirty.clone();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if res.is_ok_and(|e| !e.kind.is_access()) {
                flag.store(true, Ordering::Relaxed);
            }
        })
        .ok()
        .and_then(|mut w| {
            let mode = if recursive {
                notify::RecursiveMode::Recursive
            } else {
                notify::RecursiveMode::NonRecursive
            };
            w.watch(path, mode).ok().map(|_| w)
        });
        let past = Instant::now() - Duration::from_secs(3600);
        Self {
            dirty,
            _watcher: watcher,
            last_check: past,
            poll_every,
            debounce: Duration::from_millis(200),
            last_fire: past,
        }
    }

    /// True when something changed (debounced) or the polling interval elapsed.
    pub fn due(&mut self) -> bool {
        let now = Instant::now();
        let notified = self.dirty.load(Ordering::Relaxed)
            && now.duration_since(self.last_fire) >= self.debounce;
        if notified || now.duration_since(self.last_check) >= self.poll_every {
            self.dirty.store(false, Ordering::Relaxed);
            self.last_fire = now;
            self.last_check = now;
            return true;
        }
        false
    }

    /// Whether notify is active (false means polling only).
    pub fn is_notifying(&self) -> bool {
        self._watcher.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn step_line(step: u64, loss: f64) -> String {
        format!(
            "{{\"event\":\"step\",\"step\":{step},\"loss\":{loss},\"lr\":0.001,\"grad_norm\":1.0,\"tokens\":{},\"step_ms\":10.0,\"tokens_per_s\":100.0,\"time\":\"2025-01-01T00:00:00Z\"}}\n",
            step * 64
        )
    }

    #[test]
    fn tails_a_growing_file_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut tail = MetricsTail::new(&path);
        assert!(tail.poll().is_empty(), "missing file yields nothing");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(step_line(1, 5.0).as_bytes()).unwrap();
        f.write_all(b"not json\n").unwrap();
        let line2 = step_line(2, 4.5);
        let (a, b) = line2.split_at(30);
        f.write_all(a.as_bytes()).unwrap();
        f.flush().unwrap();
        let ev = tail.poll();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].step(), 1);
        assert_eq!(tail.skipped, 1);
        assert!(tail.poll().is_empty(), "half a line is held back");
        f.write_all(b.as_bytes()).unwrap();
        f.write_all(b"{\"event\":\"eval\",\"step\":2,\"val_loss\":4.4,\"time\":\"x\"}\n")
            .unwrap();
        f.flush().unwrap();
        let ev = tail.poll();
        assert_eq!(ev.len(), 2);
        assert!(matches!(&ev[0], Event::Step(s) if s.step == 2 && s.loss == 4.5));
        assert!(matches!(ev[1], Event::Eval { step: 2, .. }));
        // Rewritten (shorter) file: start over.
        std::fs::write(&path, step_line(1, 5.0)).unwrap();
        assert_eq!(tail.poll().len(), 1);
    }

    #[test]
    fn change_watch_fires_first_then_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChangeWatch::new(dir.path(), true, Duration::from_secs(3600));
        assert!(w.due(), "first check always reads");
        assert!(!w.due());
        if w.is_notifying() {
            std::fs::write(dir.path().join("x"), "1").unwrap();
            let start = Instant::now();
            while !w.due() {
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "notify never fired"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
