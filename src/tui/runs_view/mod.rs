//! The runs pane (`R`): every run with status, steps, best val loss, age, parent and tags in
//! lineage order; space selects runs whose train/val loss curves are overlaid on one chart
//! (x: step, tokens or wall-clock) next to the config keys that differ between them.
//! A self-contained component: its own state, `on_key` and `draw`; the runtime feeds it data
//! (`loader.rs`, through `store/`) when it asks with a [`RunsRequest`], so drawing reads no file.

mod draw;
pub mod loader;
#[cfg(test)]
mod tests;

pub use draw::draw;

use crate::store::run_curves::RunCurves;
use crate::store::run_tree::{lineage_rows, TreeRow};
use crate::store::runs::RunIndex;
use crossterm::event::{KeyCode, KeyEvent};
use std::path::PathBuf;

/// Runs overlaid at most (one colour each).
pub const MAX_SELECTED: usize = 6;

/// What the x axis of the overlay measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XAxis {
    #[default]
    Step,
    Tokens,
    /// Seconds since each run's first event.
    WallClock,
}

impl XAxis {
    /// Axis title.
    pub fn label(self) -> &'static str {
        match self {
            XAxis::Step => "step",
            XAxis::Tokens => "tokens",
            XAxis::WallClock => "wall-clock",
        }
    }

    fn next(self) -> Self {
        match self {
            XAxis::Step => XAxis::Tokens,
            XAxis::Tokens => XAxis::WallClock,
            XAxis::WallClock => XAxis::Step,
        }
    }
}

/// What the pane needs the runtime to do.
#[derive(Debug, Clone, PartialEq)]
pub enum RunsRequest {
    /// Re-read the runs index (and the selected runs' curves).
    Refresh,
    /// Load curves and config of these runs (directory, display name), in selection order.
    LoadCurves(Vec<(PathBuf, String)>),
    /// Watch mode: follow this run instead of the current one.
    Watch(PathBuf),
    /// Close the pane.
    Close,
}

/// The pane's state: the index, the cursor, the selection and the loaded curves.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunsView {
    pub index: RunIndex,
    /// Rows in display order (lineage tree).
    pub rows: Vec<TreeRow>,
    /// Cursor, as a position in `rows`.
    pub cursor: usize,
    /// Selected run directories, in the order they were picked.
    pub selected: Vec<PathBuf>,
    pub curves: Vec<RunCurves>,
    pub x_axis: XAxis,
    /// The run being shown by the cockpit (highlighted with `*`).
    pub current: Option<PathBuf>,
    /// Watch mode: Enter switches the followed run.
    pub can_switch: bool,
    /// One-line message from the last action (a refusal, a note).
    pub message: Option<String>,
    /// Which runs are listed (empty: the cockpit's runs directory).
    pub source: loader::RunsSource,
}

impl RunsView {
    /// Replace the index, keeping the cursor on the same run and dropping selections of runs
    /// that are gone.
    pub fn set_index(&mut self, index: RunIndex) {
        let keep = self.cursor_run().map(|r| r.dir.clone());
        self.index = index;
        self.rows = lineage_rows(&self.index.runs);
        self.selected
            .retain(|d| self.index.runs.iter().any(|r| &r.dir == d));
        self.curves.retain(|c| self.selected.contains(&c.dir));
        self.cursor = keep
            .and_then(|d| {
                self.rows
                    .iter()
                    .position(|row| self.index.runs[row.index].dir == d)
            })
            .unwrap_or(0)
            .min(self.rows.len().saturating_sub(1));
        if self.selected.is_empty() {
            if let Some(cur) = self.current.clone() {
                if self.index.runs.iter().any(|r| r.dir == cur) {
                    self.selected.push(cur);
                }
            }
        }
    }

    /// The curves the runtime loaded for the selection.
    pub fn set_curves(&mut self, curves: Vec<RunCurves>) {
        self.curves = curves;
    }

    /// The run under the cursor.
    pub fn cursor_run(&self) -> Option<&crate::store::runs::RunSummary> {
        let row = self.rows.get(self.cursor)?;
        self.index.runs.get(row.index)
    }

    /// The load request for the current selection.
    pub fn curves_request(&self) -> RunsRequest {
        let picked = self
            .selected
            .iter()
            .filter_map(|d| self.index.runs.iter().find(|r| &r.dir == d))
            .map(|r| (r.dir.clone(), r.name.clone()))
            .collect();
        RunsRequest::LoadCurves(picked)
    }

    /// Handle one key; returns what the runtime must do.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<RunsRequest> {
        self.message = None;
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('R') => {
                return vec![RunsRequest::Close]
            }
            KeyCode::Up | KeyCode::Char('k') => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.cursor = (self.cursor + 1).min(self.rows.len().saturating_sub(1))
            }
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.rows.len().saturating_sub(1),
            KeyCode::Char(' ') => return self.toggle_selected(),
            KeyCode::Char('x') => self.x_axis = self.x_axis.next(),
            KeyCode::Char('r') | KeyCode::F(5) => return vec![RunsRequest::Refresh],
            KeyCode::Enter => {
                let Some(run) = self.cursor_run() else {
                    return vec![];
                };
                if !self.can_switch {
                    self.message = Some(format!(
                        "{}: `llite-tui watch {}` follows it (switching runs here works in watch mode)",
                        run.name,
                        run.dir.display()
                    ));
                    return vec![];
                }
                return vec![RunsRequest::Watch(run.dir.clone())];
            }
            _ => {}
        }
        vec![]
    }

    fn toggle_selected(&mut self) -> Vec<RunsRequest> {
        let Some(dir) = self.cursor_run().map(|r| r.dir.clone()) else {
            return vec![];
        };
        if let Some(i) = self.selected.iter().position(|d| d == &dir) {
            self.selected.remove(i);
        } else if self.selected.len() >= MAX_SELECTED {
            self.message = Some(format!(
                "at most {MAX_SELECTED} runs overlaid; unselect one first"
            ));
            return vec![];
        } else {
            self.selected.push(dir);
        }
        vec![self.curves_request()]
    }
}
