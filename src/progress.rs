//! Progress output of long commands (headless training, `eval`): an `indicatif` bar when
//! stderr is a terminal, otherwise plain lines at a bounded rate, so logs stay readable.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How a headless run reports steps: a bar on a terminal, a line every N steps in a log
/// file, or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepLog {
    /// No step output (tests, embedding).
    Quiet,
    /// An `indicatif` bar on stderr; evals, alerts and checkpoints print above it.
    Bar,
    /// One line per `every` steps, plus the run's first and last step.
    Lines { every: u64 },
}

impl StepLog {
    /// A bar when stderr is a terminal, else a line every `every` steps (at least 1).
    pub fn every(every: u64) -> Self {
        if std::io::stderr().is_terminal() {
            StepLog::Bar
        } else {
            StepLog::Lines {
                every: every.max(1),
            }
        }
    }

    /// Whether this prints nothing about steps.
    pub fn is_quiet(&self) -> bool {
        *self == StepLog::Quiet
    }

    /// The progress bar, for `Bar`.
    pub fn bar(&self) -> Option<ProgressBar> {
        (*self == StepLog::Bar).then(|| {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b
        })
    }

    /// Whether step `step` of a run that started after `start_step` and ends at `max_steps`
    /// gets a line: its first step, every `every`-th step and the last one.
    pub fn line_due(&self, step: u64, start_step: u64, max_steps: u64) -> bool {
        match *self {
            StepLog::Lines { every } => {
                step == start_step + 1 || step.is_multiple_of(every) || step >= max_steps
            }
            _ => false,
        }
    }
}

/// Progress through a known number of items (eval questions or windows): a bar on a terminal,
/// otherwise a line at most every `interval` (and at the end), naming what is counted.
pub struct WorkProgress {
    what: String,
    total: u64,
    done: u64,
    bar: Option<ProgressBar>,
    interval: Duration,
    last_line: Instant,
    started: Instant,
}

impl WorkProgress {
    /// Progress over `total` items called `what` ("questions"), on stderr.
    pub fn new(what: &str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.set_message(what.to_string());
            b
        });
        Self::with_bar(what, total, bar, Duration::from_secs(10))
    }

    /// `new` with the bar and the line interval chosen by the caller (tests use lines).
    pub fn with_bar(what: &str, total: u64, bar: Option<ProgressBar>, interval: Duration) -> Self {
        let now = Instant::now();
        Self {
            what: what.to_string(),
            total,
            done: 0,
            bar,
            interval,
            last_line: now,
            started: now,
        }
    }

    /// Record that `done` of the items are finished; returns the line printed, if any.
    pub fn set(&mut self, done: u64) -> Option<String> {
        self.done = done.min(self.total);
        if let Some(b) = &self.bar {
            b.set_position(self.done);
            return None;
        }
        let finished = self.done == self.total;
        if !finished && self.last_line.elapsed() < self.interval {
            return None;
        }
        self.last_line = Instant::now();
        let line = format!(
            "{} {}/{} {} ({:.0} s)",
            if finished { "done" } else { "progress" },
            self.done,
            self.total,
            self.what,
            self.started.elapsed().as_secs_f64()
        );
        // Never panics on a closed stderr: progress is informational.
        let _ = writeln!(std::io::stderr(), "{line}");
        Some(line)
    }

    /// Remove the bar (lines need no cleanup).
    pub fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_on_the_first_every_nth_and_last_step() {
        let log = StepLog::Lines { every: 10 };
        let due: Vec<u64> = (101..=125).filter(|&s| log.line_due(s, 100, 125)).collect();
        assert_eq!(due, vec![101, 110, 120, 125]);
        assert!(!StepLog::Quiet.line_due(110, 100, 125));
        assert!(!StepLog::Bar.line_due(110, 100, 125));
    }

    #[test]
    fn work_progress_prints_at_most_once_per_interval_and_always_at_the_end() {
        let mut p = WorkProgress::with_bar("questions", 3, None, Duration::from_secs(3600));
        assert_eq!(p.set(1), None);
        assert_eq!(p.set(2), None);
        let last = p.set(3).expect("the last item always prints");
        assert!(last.starts_with("done 3/3 questions"), "{last}");
        let mut p = WorkProgress::with_bar("windows", 2, None, Duration::ZERO);
        assert!(p.set(1).unwrap().starts_with("progress 1/2 windows"));
    }
}
