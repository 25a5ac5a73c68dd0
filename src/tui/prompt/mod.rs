//! The prompt pane: sampling knobs, the input line, the generation being streamed and the
//! finished ones (history.rs). A component: its own state, `on_key` (keys.rs, answering with
//! a [`PromptIntent`] the App acts on, since only the App knows the mode and engines),
//! `on_event` (the engine's sample events) and `draw` (draw.rs).

mod draw;
pub mod history;
mod keys;
#[cfg(test)]
mod tests;

pub use draw::{draw, render, PromptFrame};
pub use history::SampleHistory;
pub use keys::{PromptIntent, PromptKeyCtx};

use crate::protocol::{Command, Event, SampleParams};

/// A finished generation, kept so earlier answers stay visible.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleEntry {
    pub step: u64,
    pub prompt: String,
    pub text: String,
    pub tokens: u64,
    pub tokens_per_s: f64,
}

/// The generation being streamed from the live weights.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveSample {
    /// The request id the engine's `SampleToken` / `SampleDone` carry.
    pub id: u64,
    pub prompt: String,
    /// Text streamed so far.
    pub text: String,
}

/// Prompt pane: single-line input plus sampling knobs and streamed output.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptState {
    pub input: String,
    /// Cursor position in chars.
    pub cursor: usize,
    pub params: SampleParams,
    /// Which knob Up/Down adjusts: 0 temperature, 1 top-k, 2 top-p, 3 max tokens.
    pub selected: usize,
    pub next_id: u64,
    /// The request being streamed, with its prompt and text so far.
    pub active: Option<ActiveSample>,
    /// Finished generations, bounded and scrollable (`history.rs`).
    pub history: SampleHistory,
}

impl PromptState {
    /// An empty pane with the run's `[sample]` knobs.
    pub fn new(params: SampleParams) -> Self {
        Self {
            input: String::new(),
            cursor: 0,
            params,
            selected: 0,
            next_id: 1,
            active: None,
            history: SampleHistory::default(),
        }
    }

    /// Whether `prompt` could be sent now: not blank, and nothing streaming already.
    pub fn accepts(&self, prompt: &str) -> bool {
        !prompt.trim().is_empty() && self.active.is_none()
    }

    /// Start streaming `prompt` (the caller checked [`PromptState::accepts`] and that an
    /// engine can sample); returns the command to send.
    pub fn start(&mut self, prompt: String) -> Command {
        let id = self.next_id;
        self.next_id += 1;
        self.active = Some(ActiveSample {
            id,
            prompt: prompt.clone(),
            text: String::new(),
        });
        Command::Sample {
            id,
            prompt,
            params: self.params.clone(),
        }
    }

    /// Take the typed line (it was sent elsewhere, e.g. to the side engine), emptying it.
    pub fn take_input(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.input)
    }

    /// Fold the engine's sample events: streamed tokens of the active request, and finished
    /// generations (kept in the history whoever asked for them, e.g. a steered run's).
    pub fn on_event(&mut self, event: &Event) {
        match event {
            Event::SampleToken { id, text, .. } => {
                if let Some(a) = self.active.as_mut().filter(|a| a.id == *id) {
                    a.text.push_str(text);
                }
            }
            Event::SampleDone {
                step,
                id,
                prompt,
                text,
                tokens,
                tokens_per_s,
            } => {
                if self.active.as_ref().is_some_and(|a| a.id == *id) {
                    self.active = None;
                }
                self.history.push(SampleEntry {
                    step: *step,
                    prompt: prompt.clone(),
                    text: text.clone(),
                    tokens: *tokens,
                    tokens_per_s: *tokens_per_s,
                });
            }
            _ => {}
        }
    }

    /// The engine went away (or was replaced): nothing will finish the active request.
    pub fn on_engine_gone(&mut self) {
        self.active = None;
    }
}
