//! The browser's keys: moving the selection, and the actions on the selected checkpoint with
//! their questions. What needs the engines or other panes comes back as a [`BrowserIntent`].

use super::{BrowserPrompt, BrowserState};
use crate::protocol::{CheckpointSummary, StartFrom};
use crossterm::event::{KeyCode, KeyEvent};
use std::path::{Path, PathBuf};

/// What a key in the browser asks of the App.
#[derive(Debug, Clone, PartialEq)]
pub enum BrowserIntent {
    /// Handled here; nothing more to do.
    Handled,
    /// Close the browser.
    Close,
    /// Re-read the checkpoint list.
    Refresh,
    /// Remove a checkpoint (the user said yes).
    Delete(PathBuf),
    /// Pin or unpin a checkpoint.
    SetPinned { checkpoint: PathBuf, pinned: bool },
    /// Export a checkpoint to a Hugging Face directory.
    Export { checkpoint: PathBuf, out: PathBuf },
    /// Sample this checkpoint on the side engine (`i`); nothing running stops.
    SampleSide(CheckpointSummary),
    /// Open the rewind dialog on this checkpoint (`b`).
    Rewind { checkpoint: PathBuf, step: u64 },
    /// Start an engine from here; the App asks first ([`BrowserState::confirm_switch`]) when
    /// that would stop training.
    Launch(StartFrom),
    /// The user confirmed replacing the running engine (saving it first or not).
    Switch { from: StartFrom, save_current: bool },
    /// Refused, with why (shown as a warning).
    Warn(String),
}

impl BrowserState {
    /// Handle a key while the browser is open; `read_only` (watch mode) refuses what would
    /// start or replace an engine.
    pub fn on_key(&mut self, key: KeyEvent, read_only: bool) -> BrowserIntent {
        if self.prompt.is_some() {
            return self.prompt_key(key);
        }
        let n = self.entries.len();
        match key.code {
            KeyCode::Esc | KeyCode::Char('c') | KeyCode::Char('q') => return BrowserIntent::Close,
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(n.saturating_sub(1))
            }
            KeyCode::Home => self.selected = 0,
            KeyCode::End => self.selected = n.saturating_sub(1),
            KeyCode::F(5) | KeyCode::Char('R') => return BrowserIntent::Refresh,
            KeyCode::Char(ch @ ('r' | 'f' | 'i' | 'e' | 'd' | 'b' | 'u')) => {
                return self.act(ch, read_only)
            }
            _ => {}
        }
        BrowserIntent::Handled
    }

    /// An action key on the selected checkpoint.
    fn act(&mut self, ch: char, read_only: bool) -> BrowserIntent {
        let Some(sel) = self.selected_entry().cloned() else {
            return BrowserIntent::Warn("no checkpoint selected".into());
        };
        let path = PathBuf::from(&sel.path);
        if ch == 'd' {
            self.prompt = Some(BrowserPrompt::ConfirmDelete(path));
            return BrowserIntent::Handled;
        }
        if ch == 'u' {
            return BrowserIntent::SetPinned {
                checkpoint: path,
                pinned: !sel.pinned,
            };
        }
        if let Some(err) = &sel.error {
            return BrowserIntent::Warn(format!("invalid checkpoint: {err}"));
        }
        if ch == 'i' {
            // The side engine: nothing running is stopped, watch mode included.
            return BrowserIntent::SampleSide(sel);
        }
        if read_only {
            return BrowserIntent::Warn(crate::tui::keys::READ_ONLY.into());
        }
        match ch {
            'r' => return BrowserIntent::Launch(StartFrom::Resume(path)),
            'b' => {
                return BrowserIntent::Rewind {
                    checkpoint: path,
                    step: sel.step,
                }
            }
            'f' => {
                self.prompt = Some(BrowserPrompt::FineTuneData {
                    checkpoint: path,
                    input: String::new(),
                })
            }
            _ => {
                let input = default_export_dir(&path, sel.step).display().to_string();
                self.prompt = Some(BrowserPrompt::ExportDir {
                    checkpoint: path,
                    input,
                })
            }
        }
        BrowserIntent::Handled
    }

    /// A key while a question is open: answer it, edit its input, or Esc to drop it.
    fn prompt_key(&mut self, key: KeyEvent) -> BrowserIntent {
        let Some(prompt) = self.prompt.take() else {
            return BrowserIntent::Handled;
        };
        match (prompt, key.code) {
            (_, KeyCode::Esc) => {}
            (BrowserPrompt::ConfirmDelete(path), KeyCode::Char('y')) => {
                return BrowserIntent::Delete(path)
            }
            (BrowserPrompt::ConfirmDelete(_), KeyCode::Char('n')) => {}
            (BrowserPrompt::ConfirmSwitch(from), KeyCode::Char(c @ ('s' | 'y'))) => {
                return BrowserIntent::Switch {
                    from,
                    save_current: c == 's',
                }
            }
            (BrowserPrompt::ConfirmSwitch(_), KeyCode::Char('n')) => {}
            (BrowserPrompt::FineTuneData { checkpoint, input }, KeyCode::Enter) => {
                let data = (!input.trim().is_empty()).then(|| PathBuf::from(input.trim()));
                // Before anything is stopped: a typo must not cost the running training.
                if let Some(Err(e)) = data.as_deref().map(crate::data::probe::probe_data_path) {
                    self.prompt = Some(BrowserPrompt::FineTuneData { checkpoint, input });
                    return BrowserIntent::Warn(format!("fine-tune data refused: {e:#}"));
                }
                return BrowserIntent::Launch(StartFrom::FineTune { checkpoint, data });
            }
            (BrowserPrompt::ExportDir { checkpoint, input }, KeyCode::Enter) => {
                return BrowserIntent::Export {
                    checkpoint,
                    out: PathBuf::from(input.trim()),
                }
            }
            (
                BrowserPrompt::FineTuneData {
                    checkpoint,
                    mut input,
                },
                code,
            ) => {
                edit_line(&mut input, code);
                self.prompt = Some(BrowserPrompt::FineTuneData { checkpoint, input });
            }
            (
                BrowserPrompt::ExportDir {
                    checkpoint,
                    mut input,
                },
                code,
            ) => {
                edit_line(&mut input, code);
                self.prompt = Some(BrowserPrompt::ExportDir { checkpoint, input });
            }
            (other, _) => self.prompt = Some(other),
        }
        BrowserIntent::Handled
    }
}

/// `<run>/export-step-N` next to the run's `checkpoints/` folder.
pub fn default_export_dir(ckpt: &Path, step: u64) -> PathBuf {
    ckpt.parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."))
        .join(format!("export-step-{step}"))
}

/// Minimal line editing for the browser's path inputs (append and backspace).
fn edit_line(input: &mut String, code: KeyCode) {
    match code {
        KeyCode::Char(ch) => input.push(ch),
        KeyCode::Backspace => {
            input.pop();
        }
        _ => {}
    }
}
