//! The run view: the current run's step history, evaluations, alerts and last checkpoint, the
//! chart preferences (`[` `]` smoothing, `l` log scale, `w` window, `x` dismiss alerts), and
//! the charts drawn from them (loss, throughput, LR/grad). A component like the others: its own
//! state, `on_event` (engine or `metrics.jsonl` events), `on_key` and `draw`; the App keeps the
//! run's lifecycle (mode, state, info) and only forwards here.

mod draw;
pub mod loss;
pub mod lrgrad;
#[cfg(test)]
mod tests;
pub mod throughput;

pub use draw::draw;

use crate::protocol::{AlertKind, Event, StepStats};
use crossterm::event::{KeyCode, KeyEvent};

/// Steps shown by the "recent" loss window (`w` toggles between it and the full history).
pub const RECENT_WINDOW: usize = 200;
/// Steps averaged for ms/step, tokens/s and the ETA, so one slow step does not swing them.
pub const RATE_WINDOW: usize = 20;

/// One alert as raised by the engine, kept for the banner and the alert count.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEntry {
    pub step: u64,
    pub kind: AlertKind,
    pub detail: String,
}

/// One validation loss, drawn on the loss chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalPoint {
    pub step: u64,
    pub val_loss: f64,
}

/// One task evaluation from `llite-tui eval`, shown in the throughput pane.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEvalEntry {
    pub step: u64,
    pub task: String,
    /// Its metrics as one line ("acc 0.2500, acc_norm 0.5000, n 8").
    pub summary: String,
}

/// The newest checkpoint this run reported saving.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedCheckpoint {
    pub step: u64,
    pub path: String,
}

/// State of the run view: what the charts plot and how.
#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    pub steps: Vec<StepStats>,
    pub evals: Vec<EvalPoint>,
    pub task_evals: Vec<TaskEvalEntry>,
    pub last_checkpoint: Option<SavedCheckpoint>,
    pub alerts: Vec<AlertEntry>,
    /// Index into `alerts` below which the banner was dismissed.
    pub alerts_seen: usize,
    /// EMA factor of the smoothed loss curve, in [0, 0.99].
    pub smoothing: f64,
    pub log_scale: bool,
    /// All steps (true) or the last [`RECENT_WINDOW`].
    pub full_history: bool,
}

impl RunView {
    /// An empty view with the `[ui]` chart preferences.
    pub fn new(ui: &crate::config::UiConfig) -> Self {
        Self {
            steps: Vec::new(),
            evals: Vec::new(),
            task_evals: Vec::new(),
            last_checkpoint: None,
            alerts: Vec::new(),
            alerts_seen: 0,
            smoothing: ui.smoothing.clamp(0.0, 0.99),
            log_scale: ui.log_scale,
            full_history: true,
        }
    }

    /// Forget the shown run's history (another run is shown now); preferences stay.
    pub fn clear(&mut self) {
        self.steps.clear();
        self.evals.clear();
        self.alerts.clear();
        self.alerts_seen = 0;
        self.last_checkpoint = None;
    }

    /// An engine started at `start_step`: another run starts afresh, and a resumed one replays
    /// nothing, so history past the resume point goes.
    pub fn on_started(&mut self, same_run: bool, start_step: u64) {
        if !same_run {
            self.clear();
        }
        self.truncate_after(start_step);
    }

    /// Fold one event into the history (`Started` goes through [`RunView::on_started`],
    /// since whether it is the same run is the App's to say).
    pub fn on_event(&mut self, event: &Event) {
        match event {
            Event::Step(s) => {
                if self.steps.last().is_some_and(|l| l.step >= s.step) {
                    self.steps.retain(|l| l.step < s.step);
                }
                self.steps.push(s.clone());
            }
            Event::Eval { step, val_loss } => self.evals.push(EvalPoint {
                step: *step,
                val_loss: *val_loss,
            }),
            Event::Rewound { step, .. } => self.truncate_after(*step),
            Event::TaskEval {
                step,
                task,
                metrics,
            } => self.task_evals.push(TaskEvalEntry {
                step: *step,
                task: task.clone(),
                summary: crate::units::format_metrics(metrics),
            }),
            Event::CheckpointSaved { step, path } => {
                self.last_checkpoint = Some(SavedCheckpoint {
                    step: *step,
                    path: path.clone(),
                })
            }
            Event::Alert { step, kind, detail } => self.alerts.push(AlertEntry {
                step: *step,
                kind: *kind,
                detail: detail.clone(),
            }),
            _ => {}
        }
    }

    /// The chart keys; false for any other key (the App's global handler gets it).
    pub fn on_key(&mut self, key: KeyEvent) -> bool {
        match key.code {
            KeyCode::Char('[') => self.smoothing = smoothing_step(self.smoothing, -1),
            KeyCode::Char(']') => self.smoothing = smoothing_step(self.smoothing, 1),
            KeyCode::Char('l') => self.log_scale = !self.log_scale,
            KeyCode::Char('w') => self.full_history = !self.full_history,
            KeyCode::Char('x') => self.alerts_seen = self.alerts.len(),
            _ => return false,
        }
        true
    }

    fn truncate_after(&mut self, step: u64) {
        self.steps.retain(|s| s.step <= step);
        self.evals.retain(|e| e.step <= step);
    }

    /// Alerts not yet dismissed, newest last.
    pub fn unseen_alerts(&self) -> &[AlertEntry] {
        &self.alerts[self.alerts_seen.min(self.alerts.len())..]
    }

    /// Latest step seen, if any.
    pub fn last_step(&self) -> Option<u64> {
        self.steps.last().map(|s| s.step)
    }

    /// Steps the chart shows: everything, or the last `RECENT_WINDOW`.
    pub fn visible_steps(&self) -> &[StepStats] {
        if self.full_history || self.steps.len() <= RECENT_WINDOW {
            &self.steps
        } else {
            &self.steps[self.steps.len() - RECENT_WINDOW..]
        }
    }

    /// Mean step time over the recent window, in ms.
    pub fn recent_step_ms(&self) -> Option<f64> {
        self.recent_mean(|s| s.step_ms)
    }

    /// Mean tokens/s over the recent window.
    pub fn recent_tokens_per_s(&self) -> Option<f64> {
        self.recent_mean(|s| s.tokens_per_s)
    }

    fn recent_mean(&self, field: impl Fn(&StepStats) -> f64) -> Option<f64> {
        let n = self.steps.len().min(RATE_WINDOW);
        (n > 0).then(|| {
            self.steps[self.steps.len() - n..]
                .iter()
                .map(field)
                .sum::<f64>()
                / n as f64
        })
    }
}

/// The next smoothing on the 0.05 grid in `direction` (0.99 at the top), so any value, the
/// default 0.9 included, is reachable again after hitting either end or starting off-grid.
pub(crate) fn smoothing_step(current: f64, direction: i32) -> f64 {
    let on_grid = (current / 0.05 + 1e-6).floor();
    let next = match direction {
        d if d < 0 && (current / 0.05 - on_grid).abs() > 1e-3 => on_grid,
        d if d < 0 => on_grid - 1.0,
        _ => on_grid + 1.0,
    };
    round2((next * 0.05).clamp(0.0, 0.99))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
