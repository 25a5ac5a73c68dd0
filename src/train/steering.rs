//! Live controls inside the trainer: a validated change of a live key reaches what the next
//! step actually uses (schedule peak and floor, AdamW clip and decay, cadences read from the
//! config), is recorded for the checkpoint, and recorded changes of a newer checkpoint are
//! replayed at their steps, so a steered run resumes bit for bit from any of its checkpoints.

use super::trainer::Trainer;
use crate::controls::{apply_setting, validate_setting, ControlRecord};
use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;

impl<B: AutodiffBackend> Trainer<B> {
    /// Validate `key=value` like `--set` against the live config and apply it before the next
    /// step; the change is recorded (stamped with the current step) and returned. A refusal
    /// leaves everything as it was.
    pub fn apply_control(&mut self, item: &str) -> Result<ControlRecord> {
        self.refuse_diverging_change(item)?;
        let (change, changed) = validate_setting(&self.run.config, item)?;
        self.run.config = changed;
        self.sync_knobs();
        let record = ControlRecord {
            step: self.step,
            change,
        };
        self.controls.push(record.clone());
        Ok(record)
    }

    /// Apply the recorded changes due at the current step (a resume from an older checkpoint
    /// replaying a newer one's history); returns them, for the events.
    pub fn take_due_replays(&mut self) -> Result<Vec<ControlRecord>> {
        let mut due = Vec::new();
        while self.pending.front().is_some_and(|r| r.step <= self.step) {
            let Some(record) = self.pending.pop_front() else {
                break;
            };
            apply_setting(&mut self.run.config, &record.change)?;
            self.sync_knobs();
            self.controls.push(record.clone());
            due.push(record);
        }
        Ok(due)
    }

    /// Recorded changes not yet replayed.
    pub fn pending_replays(&self) -> usize {
        self.pending.len()
    }

    /// Push the live config's knobs into the schedule and the optimizer (the cadences are read
    /// from the config by the engine at each step).
    fn sync_knobs(&mut self) {
        let t = &self.run.config.train;
        self.schedule.lr = t.lr;
        self.schedule.min_lr = t.min_lr;
        self.optim.config.grad_clip = t.grad_clip;
        self.optim.config.weight_decay = t.weight_decay;
    }
}
