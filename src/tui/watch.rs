//! Following files another process writes: a `metrics.jsonl` tail that only ever yields
//! complete lines, and a notify watcher that turns filesystem changes into one `UiEvent` at a
//! time (with polling as the fallback, since notify can miss events on network filesystems).

use super::producers::Feed;
use super::ui_event::UiEvent;
use crate::protocol::Event;
use crate::store::metrics_log::parse_metrics_line;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
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

/// What the watch thread hears: a change notify reported, or its owner going away.
enum Wake {
    Changed,
    Stop,
}

/// How long a burst of changes is gathered into one event.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// A recursive notify watch plus a polling fallback that sends `event()` into the UI channel
/// when something changed (debounced) or the polling interval passed. At most one such event
/// waits in the channel at a time: the loop calls [`WatchFeed::ack`] when it takes it, so a
/// file written every step never floods the channel. Its thread ends when this drops.
pub struct WatchFeed {
    wake: Sender<Wake>,
    pending: Arc<AtomicBool>,
    watcher: Option<notify::RecommendedWatcher>,
    thread: Option<JoinHandle<()>>,
}

impl WatchFeed {
    /// Watch `path` (recursively when `recursive`) and send at once, then on change; a path
    /// that cannot be watched (missing, out of inotify handles) silently degrades to polling
    /// every `poll_every`.
    pub fn start(
        path: &Path,
        recursive: bool,
        poll_every: Duration,
        feed: &Feed,
        event: fn() -> UiEvent,
    ) -> Self {
        use notify::Watcher;
        let (wake, heard) = channel();
        let notify_wake = wake.clone();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if res.is_ok_and(|e| !e.kind.is_access()) {
                let _ = notify_wake.send(Wake::Changed);
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
        let pending = Arc::new(AtomicBool::new(false));
        let (flag, feed) = (pending.clone(), feed.clone());
        let thread = std::thread::Builder::new()
            .name("llite-watch".into())
            .spawn(move || watch_loop(&heard, poll_every, &flag, &feed, event))
            .ok();
        Self {
            wake,
            pending,
            watcher,
            thread,
        }
    }

    /// The loop took this watch's event: the next change may send another.
    pub fn ack(&self) {
        self.pending.store(false, Ordering::Relaxed);
    }

    /// Whether notify is active (false means polling only).
    pub fn is_notifying(&self) -> bool {
        self.watcher.is_some()
    }
}

impl Drop for WatchFeed {
    fn drop(&mut self) {
        self.watcher = None;
        let _ = self.wake.send(Wake::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Send when changed (and `DEBOUNCE` passed since the last send) or `poll_every` passed;
/// ends on `Wake::Stop` or when the loop is gone.
fn watch_loop(
    heard: &Receiver<Wake>,
    poll_every: Duration,
    pending: &AtomicBool,
    feed: &Feed,
    event: fn() -> UiEvent,
) {
    let mut dirty = true;
    let now = Instant::now();
    let mut last_fire = now.checked_sub(poll_every.max(DEBOUNCE)).unwrap_or(now);
    loop {
        let since = last_fire.elapsed();
        if (dirty && since >= DEBOUNCE) || since >= poll_every {
            dirty = false;
            last_fire = Instant::now();
            if !pending.swap(true, Ordering::Relaxed) && !feed.send(event()) {
                return;
            }
        }
        let since = last_fire.elapsed();
        let wait = match dirty {
            true => DEBOUNCE.saturating_sub(since),
            false => poll_every.saturating_sub(since),
        };
        match heard.recv_timeout(wait.max(Duration::from_millis(1))) {
            Ok(Wake::Changed) => dirty = true,
            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
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
    fn watch_feed_sends_first_then_once_per_change_until_acked() {
        let dir = tempfile::tempdir().unwrap();
        let mut producers = crate::tui::producers::Producers::new();
        let w = WatchFeed::start(
            dir.path(),
            true,
            Duration::from_secs(3600),
            producers.feed(),
            || UiEvent::ThemeChanged,
        );
        let first = producers.recv_timeout(Duration::from_secs(5));
        assert!(matches!(first, Some(UiEvent::ThemeChanged)), "{first:?}");
        if w.is_notifying() {
            // Not acked yet: changes do not queue a second event.
            std::fs::write(dir.path().join("x"), "1").unwrap();
            let early = producers.recv_timeout(Duration::from_millis(600));
            assert!(early.is_none(), "{early:?}");
            w.ack();
            std::fs::write(dir.path().join("x"), "2").unwrap();
            let next = producers.recv_timeout(Duration::from_secs(5));
            assert!(matches!(next, Some(UiEvent::ThemeChanged)), "{next:?}");
        }
        let start = Instant::now();
        drop(w);
        assert!(start.elapsed() < Duration::from_secs(1), "its thread ends");
    }

    #[test]
    fn watch_feed_polls_without_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut producers = crate::tui::producers::Producers::new();
        let w = WatchFeed::start(
            &dir.path().join("missing"),
            false,
            Duration::from_millis(100),
            producers.feed(),
            || UiEvent::CheckpointsChanged,
        );
        for _ in 0..2 {
            let got = producers.recv_timeout(Duration::from_secs(5));
            assert!(matches!(got, Some(UiEvent::CheckpointsChanged)), "{got:?}");
            w.ack();
        }
    }
}
