//! The chronicle timeline (`t`): the `[chronicle]` entries of a run (step -> greedy sample of
//! each fixed prompt) and its task accuracies over steps. A self-contained component: its own
//! state, `on_event` (engine or `metrics.jsonl` events, so `watch` and a resumed cockpit rebuild
//! it from the log), `on_key` and `draw` (draw.rs); the App only forwards to it.

mod draw;
#[cfg(test)]
mod tests;

pub use draw::draw;

use crate::protocol::Event;
use crossterm::event::{KeyCode, KeyEvent};
use std::collections::BTreeMap;

/// Chronicle steps kept (the oldest go first); a 100k-step run at `every = 100` fits.
pub const MAX_ENTRIES: usize = 1000;
/// Entries one PgUp / PgDn moves.
const PAGE: usize = 5;

/// The greedy continuation of one fixed prompt at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptSample {
    pub prompt_index: u64,
    pub prompt: String,
    pub text: String,
    pub tokens: u64,
}

/// Everything recorded at one chronicle step.
#[derive(Debug, Clone, PartialEq)]
pub struct ChronicleEntry {
    pub step: u64,
    /// In prompt order.
    pub samples: Vec<PromptSample>,
}

/// One task score at one step, for the accuracy chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskPoint {
    pub step: u64,
    pub acc: f64,
    pub acc_norm: f64,
    /// Accuracy of guessing (1 / choices, averaged), drawn as the floor to beat.
    pub chance: f64,
}

/// State of the timeline pane.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChronicleView {
    open: bool,
    /// The run the entries belong to (a `Started` of another run clears them).
    run_dir: Option<String>,
    entries: Vec<ChronicleEntry>,
    tasks: BTreeMap<String, Vec<TaskPoint>>,
    /// Index of the first entry shown; `None` follows the newest entries.
    top: Option<usize>,
    /// The first entry the last frame showed (written by `draw`, which alone knows how many
    /// entries fit), so scrolling up from "follow" starts where the eye is.
    shown_first: std::cell::Cell<usize>,
}

impl ChronicleView {
    /// Whether the timeline replaces the charts.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Show or hide the timeline (`t`); it opens following the newest entries.
    pub fn toggle(&mut self) {
        self.open = !self.open;
        self.top = None;
    }

    /// Recorded steps, oldest first.
    pub fn entries(&self) -> &[ChronicleEntry] {
        &self.entries
    }

    /// Task name -> its scores over steps, oldest first.
    pub fn tasks(&self) -> &BTreeMap<String, Vec<TaskPoint>> {
        &self.tasks
    }

    /// Index of the first entry shown, `None` when following the newest.
    pub fn top(&self) -> Option<usize> {
        self.top
    }

    /// Fold an event in; events of other kinds only matter when they start, resume or rewind
    /// a run (entries after the step it continues from are dropped, as the log's are).
    pub fn on_event(&mut self, event: &Event) {
        match event {
            Event::Started { info, .. } => {
                if self.run_dir.as_deref() != Some(info.run_dir.as_str()) {
                    self.entries.clear();
                    self.tasks.clear();
                    self.top = None;
                    self.run_dir = Some(info.run_dir.clone());
                }
                self.truncate_after(info.start_step);
            }
            Event::Rewound { step, .. } => self.truncate_after(*step),
            Event::ChronicleSample {
                step,
                prompt_index,
                prompt,
                text,
                tokens,
            } => self.add_sample(
                *step,
                PromptSample {
                    prompt_index: *prompt_index,
                    prompt: prompt.clone(),
                    text: text.clone(),
                    tokens: *tokens,
                },
            ),
            Event::ChronicleTask {
                step,
                task,
                metrics,
            } => {
                let get = |k: &str| metrics.get(k).copied().unwrap_or(f64::NAN);
                let point = TaskPoint {
                    step: *step,
                    acc: get("acc"),
                    acc_norm: get("acc_norm"),
                    chance: get("chance"),
                };
                self.entry_at(*step);
                let points = self.tasks.entry(task.clone()).or_default();
                points.retain(|p| p.step != *step);
                let at = points.partition_point(|p| p.step < *step);
                points.insert(at, point);
                if points.len() > MAX_ENTRIES {
                    points.remove(0);
                }
            }
            _ => {}
        }
    }

    /// The entry of `step`, created in step order when new (the oldest dropped past the cap).
    fn entry_at(&mut self, step: u64) -> &mut ChronicleEntry {
        let at = self.entries.partition_point(|e| e.step < step);
        if self.entries.get(at).is_none_or(|e| e.step != step) {
            self.entries.insert(
                at,
                ChronicleEntry {
                    step,
                    samples: Vec::new(),
                },
            );
            if self.entries.len() > MAX_ENTRIES {
                self.entries.remove(0);
                self.top = self.top.map(|t| t.saturating_sub(1));
            }
        }
        let at = self.entries.partition_point(|e| e.step < step);
        &mut self.entries[at]
    }

    fn add_sample(&mut self, step: u64, sample: PromptSample) {
        let samples = &mut self.entry_at(step).samples;
        samples.retain(|s| s.prompt_index != sample.prompt_index);
        let i = samples.partition_point(|s| s.prompt_index < sample.prompt_index);
        samples.insert(i, sample);
    }

    fn truncate_after(&mut self, step: u64) {
        self.entries.retain(|e| e.step <= step);
        for points in self.tasks.values_mut() {
            points.retain(|p| p.step <= step);
        }
        self.tasks.retain(|_, p| !p.is_empty());
        self.top = self.top.filter(|&t| t < self.entries.len());
    }

    /// Scroll keys while the timeline is open; `false` lets the key through (pause, save...).
    /// Up/Down move one entry, PgUp/PgDn five, Home the first, End follows the newest again;
    /// Esc or `t` closes.
    pub fn on_key(&mut self, key: KeyEvent) -> bool {
        let current = self.top.unwrap_or(self.shown_first.get());
        match key.code {
            KeyCode::Esc | KeyCode::Char('t') => self.toggle(),
            KeyCode::Up => self.top = Some(current.saturating_sub(1)),
            KeyCode::PageUp => self.top = Some(current.saturating_sub(PAGE)),
            KeyCode::Down => self.move_down(current, 1),
            KeyCode::PageDown => self.move_down(current, PAGE),
            KeyCode::Home => self.top = Some(0),
            KeyCode::End => self.top = None,
            _ => return false,
        }
        true
    }

    /// Scroll later; reaching the newest entry follows it again (already following: stay).
    fn move_down(&mut self, current: usize, by: usize) {
        if self.top.is_none() {
            return;
        }
        let next = current + by;
        self.top = (next + 1 < self.entries.len()).then_some(next);
    }
}
