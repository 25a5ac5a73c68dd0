//! Delivers engine events to the consumer and to `metrics.jsonl`, from the engine thread and
//! from sampler threads alike. A vanished consumer is reported so the engine can stop.

use crate::protocol::Event;
use crate::store::metrics_log::MetricsLog;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

/// Cloneable event sink shared by the engine and its sampler threads.
#[derive(Clone)]
pub struct Emitter {
    tx: Sender<Event>,
    log: Arc<Mutex<Option<MetricsLog>>>,
}

impl Emitter {
    /// A sink with no metrics file yet (attached once the run directory exists).
    pub fn new(tx: Sender<Event>) -> Self {
        Self {
            tx,
            log: Arc::new(Mutex::new(None)),
        }
    }

    /// Start persisting events to this run's `metrics.jsonl`.
    pub fn attach_log(&self, log: MetricsLog) {
        *self.log.lock().unwrap_or_else(|e| e.into_inner()) = Some(log);
    }

    /// Persist and deliver; returns false when the consumer has gone away.
    pub fn emit(&self, event: Event) -> bool {
        if let Some(log) = self.log.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            // A failing metrics file must not kill training; the consumer still sees events.
            let _ = log.append(&event);
        }
        self.tx.send(event).is_ok()
    }
}
