//! The prompt pane's keys: line editing, the knobs (Up/Down pick, PgUp/PgDn adjust) and the
//! history (Ctrl-P / Ctrl-N scroll, Ctrl-R again). What needs the mode or an engine comes back
//! as a [`PromptIntent`] for the App to carry out.

use super::{PromptState, SampleEntry};
use crate::protocol::SampleParams;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What the prompt pane needs to know of the rest of the cockpit to handle a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptKeyCtx {
    /// The pane samples a stored checkpoint on the side (Enter and Esc mean side.rs's).
    pub side: bool,
    /// The newest training step, stamped on a cancelled generation.
    pub step: u64,
}

/// What a key in the prompt pane asks of the App.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptIntent {
    /// Not the pane's key: the global handler gets it.
    Unhandled,
    /// Handled here; nothing more to do.
    Handled,
    /// Sample `prompt` on the engine; `from_input` (Enter) clears the line once it is sent,
    /// while Ctrl-R ("again") keeps the line being typed.
    Sample { prompt: String, from_input: bool },
    /// Ctrl-R before any generation finished.
    NothingToRepeat,
    /// Esc while a generation streamed: it went to the history as cancelled; tell the engine.
    Cancel(u64),
    /// Esc with nothing streaming: close the pane.
    Close,
    /// Enter while a side target is set: side.rs sends the line to the side engine.
    SideSubmit,
    /// Esc while a side target is set: side.rs cancels or leaves the side target.
    SideEscape,
}

impl PromptState {
    /// Handle a key while the pane has focus.
    pub fn on_key(&mut self, key: KeyEvent, ctx: PromptKeyCtx) -> PromptIntent {
        if let Some(intent) = self.history_key(key) {
            return intent;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Tab | KeyCode::BackTab => return PromptIntent::Unhandled,
            KeyCode::Esc if ctx.side => return PromptIntent::SideEscape,
            KeyCode::Enter if ctx.side => return PromptIntent::SideSubmit,
            KeyCode::Esc => {
                let Some(a) = self.active.take() else {
                    return PromptIntent::Close;
                };
                self.history.push(SampleEntry {
                    step: ctx.step,
                    prompt: a.prompt,
                    text: format!("{} [cancelled]", a.text),
                    tokens: 0,
                    tokens_per_s: 0.0,
                });
                return PromptIntent::Cancel(a.id);
            }
            KeyCode::Enter => {
                return PromptIntent::Sample {
                    prompt: self.input.clone(),
                    from_input: true,
                }
            }
            KeyCode::Up => self.selected = (self.selected + 3) % 4,
            KeyCode::Down => self.selected = (self.selected + 1) % 4,
            KeyCode::PageUp => adjust_param(&mut self.params, self.selected, 1),
            KeyCode::PageDown => adjust_param(&mut self.params, self.selected, -1),
            KeyCode::Char('u') if ctrl => {
                self.input.clear();
                self.cursor = 0;
            }
            KeyCode::Char(ch) if !ctrl => {
                let at = byte_at(&self.input, self.cursor);
                self.input.insert(at, ch);
                self.cursor += 1;
            }
            KeyCode::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                let at = byte_at(&self.input, self.cursor);
                self.input.remove(at);
            }
            KeyCode::Delete if self.cursor < self.input.chars().count() => {
                let at = byte_at(&self.input, self.cursor);
                self.input.remove(at);
            }
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(self.input.chars().count()),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.input.chars().count(),
            _ => {}
        }
        PromptIntent::Handled
    }

    /// The history keys: Ctrl-P / Ctrl-N (or Ctrl-Up / Ctrl-Down) scroll, and Ctrl-R runs the
    /// newest prompt again with the current knobs. `None` for any other key.
    fn history_key(&mut self, key: KeyEvent) -> Option<PromptIntent> {
        if !key.modifiers.contains(KeyModifiers::CONTROL) {
            return None;
        }
        let h = &mut self.history;
        match key.code {
            KeyCode::Char('p') | KeyCode::Up => h.scroll_back(),
            KeyCode::Char('n') | KeyCode::Down => h.scroll_forward(),
            KeyCode::Char('r') => {
                return Some(match h.last_prompt() {
                    Some(prompt) => PromptIntent::Sample {
                        prompt: prompt.to_string(),
                        from_input: false,
                    },
                    None => PromptIntent::NothingToRepeat,
                })
            }
            _ => return None,
        }
        Some(PromptIntent::Handled)
    }
}

fn adjust_param(p: &mut SampleParams, which: usize, dir: i32) {
    let d = dir as f32;
    match which {
        0 => p.temperature = ((p.temperature + 0.1 * d).clamp(0.0, 5.0) * 100.0).round() / 100.0,
        1 => p.top_k = (p.top_k as i64 + 5 * dir as i64).clamp(0, 1000) as usize,
        2 => p.top_p = ((p.top_p + 0.05 * d).clamp(0.05, 1.0) * 100.0).round() / 100.0,
        _ => p.max_tokens = (p.max_tokens as i64 + 16 * dir as i64).clamp(1, 4096) as usize,
    }
}

fn byte_at(s: &str, chars: usize) -> usize {
    s.char_indices()
        .nth(chars)
        .map(|(i, _)| i)
        .unwrap_or(s.len())
}
