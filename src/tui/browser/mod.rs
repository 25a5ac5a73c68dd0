//! The checkpoint browser (`c`): every checkpoint under the runs directory, the selection, and
//! the small questions its actions ask (fine-tune data, export directory, delete, replace the
//! running engine). A component: its own state, `on_key` (keys.rs, answering with a
//! [`BrowserIntent`] the App carries out, since only the App knows the engines and the other
//! panes) and `draw` (draw.rs); the runtime feeds it the list (`App::set_checkpoints`).

mod draw;
mod keys;
#[cfg(test)]
mod tests;

pub use draw::{draw, render, BrowserFrame};
pub use keys::{default_export_dir, BrowserIntent};

use crate::protocol::{CheckpointSummary, StartFrom};
use std::path::PathBuf;

/// A pending question inside the checkpoint browser.
#[derive(Debug, Clone, PartialEq)]
pub enum BrowserPrompt {
    /// Text input for the fine-tune instruction data file.
    FineTuneData { checkpoint: PathBuf, input: String },
    /// Text input for the export directory (pre-filled with the default).
    ExportDir { checkpoint: PathBuf, input: String },
    /// y/n before `remove_dir_all`.
    ConfirmDelete(PathBuf),
    /// A live engine would be replaced: save it first, drop it, or cancel.
    ConfirmSwitch(StartFrom),
}

/// Checkpoint browser: the list plus selection and any open question.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BrowserState {
    pub entries: Vec<CheckpointSummary>,
    pub selected: usize,
    pub prompt: Option<BrowserPrompt>,
}

impl BrowserState {
    /// The highlighted checkpoint.
    pub fn selected_entry(&self) -> Option<&CheckpointSummary> {
        self.entries.get(self.selected)
    }

    /// Replace the list, keeping the selection on the same path when it survives.
    pub fn set_entries(&mut self, entries: Vec<CheckpointSummary>) {
        let keep = self.selected_entry().map(|c| c.path.clone());
        self.entries = entries;
        self.selected = keep
            .and_then(|p| self.entries.iter().position(|c| c.path == p))
            .unwrap_or(self.selected)
            .min(self.entries.len().saturating_sub(1));
    }

    /// Starting `from` would stop the training running in this cockpit: ask first.
    pub fn confirm_switch(&mut self, from: StartFrom) {
        self.prompt = Some(BrowserPrompt::ConfirmSwitch(from));
    }
}
