//! Delivers engine events to the consumer and to `metrics.jsonl`, from the engine thread and
//! from sampler threads alike. A vanished consumer is reported so the engine can stop. It also
//! keeps the run's honest record: the step the engine stands at (for `Error`/`Finished` after
//! a panic) and how many writes failed (for `Finished` and the exit code).

use crate::protocol::{AlertKind, Event, FailureCounts, FinishReason};
use crate::store::metrics_log::MetricsLog;
use crate::store::tfevents::TfEventsWriter;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

/// The open `metrics.jsonl` and its path, for error messages, and the run's TensorBoard
/// event file when `[log] tensorboard` asks for one.
struct AttachedLog {
    log: MetricsLog,
    path: PathBuf,
    tensorboard: Option<TfEventsWriter>,
}

/// Counters shared by every clone of an emitter.
#[derive(Default)]
struct Record {
    /// Optimizer steps completed so far (what `Finished` and `Error` report).
    step: AtomicU64,
    checkpoint_saves_failed: AtomicU64,
    metrics_writes_failed: AtomicU64,
}

/// Cloneable event sink shared by the engine and its sampler threads.
#[derive(Clone)]
pub struct Emitter {
    tx: Sender<Event>,
    log: Arc<Mutex<Option<AttachedLog>>>,
    record: Arc<Record>,
}

/// Whether the `n`-th metrics failure gets an alert: the first, then at powers of two, so a
/// full disk yields a handful of alerts over a long run instead of one per event.
fn alert_on_failure(n: u64) -> bool {
    n.is_power_of_two()
}

impl Emitter {
    /// A sink with no metrics file yet (attached once the run directory exists).
    pub fn new(tx: Sender<Event>) -> Self {
        Self {
            tx,
            log: Arc::new(Mutex::new(None)),
            record: Arc::new(Record::default()),
        }
    }

    /// Start persisting events to this run's `metrics.jsonl` (`path` names it in alerts).
    pub fn attach_log(&self, log: MetricsLog, path: PathBuf) {
        *self.log.lock().unwrap_or_else(|e| e.into_inner()) = Some(AttachedLog {
            log,
            path,
            tensorboard: None,
        });
    }

    /// Also write step and eval scalars to this TensorBoard event file (after `attach_log`;
    /// a new `attach_log` detaches it).
    pub fn attach_tensorboard(&self, writer: TfEventsWriter) {
        if let Some(attached) = self.log.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            attached.tensorboard = Some(writer);
        }
    }

    /// Persist and deliver; returns false when the consumer has gone away. A failing append
    /// does not stop training: it is counted, and alerted on sparsely.
    pub fn emit(&self, event: Event) -> bool {
        let failure = {
            let mut guard = self.log.lock().unwrap_or_else(|e| e.into_inner());
            match guard.as_mut() {
                Some(attached) => match attached.log.append(&event) {
                    Ok(()) => match attached.tensorboard.as_mut().map(|tb| tb.append(&event)) {
                        Some(Err(e)) => Some(format!("{e:#}")),
                        _ => None,
                    },
                    Err(e) => Some(format!(
                        "cannot append to {}: {e:#}",
                        attached.path.display()
                    )),
                },
                None => None,
            }
        };
        if let Some(detail) = failure {
            let n = self
                .record
                .metrics_writes_failed
                .fetch_add(1, Ordering::Relaxed)
                + 1;
            if alert_on_failure(n) {
                // Straight to the consumer: the log that just failed would only fail again.
                let _ = self.tx.send(Event::Alert {
                    step: event.step(),
                    kind: AlertKind::MetricsWriteFailed,
                    detail: format!("{detail} ({n} failed so far; training goes on)"),
                });
            }
        }
        self.tx.send(event).is_ok()
    }

    /// Record the step the engine now stands at (steps completed).
    pub fn set_step(&self, step: u64) {
        self.record.step.store(step, Ordering::Relaxed);
    }

    /// The step the engine stands at, for events sent after an error or a panic.
    pub fn step(&self) -> u64 {
        self.record.step.load(Ordering::Relaxed)
    }

    /// Count one failed checkpoint save.
    pub fn count_failed_save(&self) {
        self.record
            .checkpoint_saves_failed
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The writes that failed so far.
    pub fn failures(&self) -> FailureCounts {
        FailureCounts {
            checkpoint_saves: self.record.checkpoint_saves_failed.load(Ordering::Relaxed),
            metrics_writes: self.record.metrics_writes_failed.load(Ordering::Relaxed),
        }
    }

    /// Emit `Finished` at the current step with the failure counts.
    pub fn finish(&self, reason: FinishReason) -> bool {
        self.emit(Event::Finished {
            step: self.step(),
            reason,
            failures: self.failures(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_failures_are_alerted_sparsely() {
        let alerted: Vec<u64> = (1..=100).filter(|n| alert_on_failure(*n)).collect();
        assert_eq!(alerted, vec![1, 2, 4, 8, 16, 32, 64]);
    }

    #[test]
    fn finished_carries_the_current_step_and_the_failure_counts() {
        let (tx, rx) = std::sync::mpsc::channel();
        let out = Emitter::new(tx);
        let clone = out.clone();
        clone.set_step(7);
        clone.count_failed_save();
        out.count_failed_save();
        assert!(out.finish(FinishReason::Terminated));
        let Ok(Event::Finished {
            step,
            reason,
            failures,
        }) = rx.try_recv()
        else {
            panic!("no Finished event");
        };
        assert_eq!((step, reason), (7, FinishReason::Terminated));
        assert_eq!(failures.checkpoint_saves, 2, "clones share one record");
        assert_eq!(failures.metrics_writes, 0);
    }
}
