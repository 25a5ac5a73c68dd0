//! The prompt pane's history: every finished (or cancelled) generation is kept, up to a bound,
//! and can be scrolled back through a sample at a time; the newest prompt can be run again.

use super::app::{Action, App, Mode, SampleEntry};
use super::keys::READ_ONLY;
use crate::protocol::Command;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::VecDeque;

/// Generations kept; the oldest go first (each is at most `max_tokens` of text).
pub const MAX_SAMPLES: usize = 200;

/// Finished generations, oldest first, with how far back the pane is scrolled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleHistory {
    entries: VecDeque<SampleEntry>,
    /// Newest generations hidden below the view (0 = the newest is shown).
    scroll: usize,
}

impl SampleHistory {
    /// Keep a finished generation (dropping the oldest past [`MAX_SAMPLES`]) and show it.
    pub fn push(&mut self, entry: SampleEntry) {
        self.entries.push_back(entry);
        if self.entries.len() > MAX_SAMPLES {
            self.entries.pop_front();
        }
        self.scroll = 0;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &SampleEntry> {
        self.entries.iter()
    }

    /// The generations the pane shows: all but the `scroll` newest.
    pub fn visible(&self) -> impl DoubleEndedIterator<Item = &SampleEntry> {
        self.entries.iter().take(self.entries.len() - self.scroll)
    }

    /// How many newer generations are scrolled out of view.
    pub fn scroll(&self) -> usize {
        self.scroll
    }

    /// Show one generation further back (the oldest stays in view).
    pub fn scroll_back(&mut self) {
        self.scroll = (self.scroll + 1).min(self.entries.len().saturating_sub(1));
    }

    /// Show one generation newer.
    pub fn scroll_forward(&mut self) {
        self.scroll = self.scroll.saturating_sub(1);
    }

    /// The prompt of the newest generation, for "again".
    pub fn last_prompt(&self) -> Option<&str> {
        self.entries.back().map(|e| e.prompt.as_str())
    }
}

impl<'a> IntoIterator for &'a SampleHistory {
    type Item = &'a SampleEntry;
    type IntoIter = std::collections::vec_deque::Iter<'a, SampleEntry>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

impl App {
    /// The prompt pane's history keys: Ctrl-P / Ctrl-N (or Ctrl-Up / Ctrl-Down) scroll, and
    /// Ctrl-R runs the newest prompt again with the current knobs, keeping the line being
    /// typed. `None` for any other key.
    pub(super) fn prompt_history_key(&mut self, key: KeyEvent) -> Option<Vec<Action>> {
        if !key.modifiers.contains(KeyModifiers::CONTROL) {
            return None;
        }
        let h = &mut self.prompt.history;
        match key.code {
            KeyCode::Char('p') | KeyCode::Up => h.scroll_back(),
            KeyCode::Char('n') | KeyCode::Down => h.scroll_forward(),
            KeyCode::Char('r') => {
                let Some(prompt) = h.last_prompt().map(str::to_string) else {
                    self.notify("nothing to run again yet");
                    return Some(vec![]);
                };
                return Some(self.submit_prompt(prompt));
            }
            _ => return None,
        }
        Some(vec![])
    }

    /// Send `prompt` to the engine (or the steered run) unless it is empty, a generation is
    /// still streaming, or nothing can sample now (then a notice says why).
    pub(super) fn submit_prompt(&mut self, prompt: String) -> Vec<Action> {
        if prompt.trim().is_empty() || self.prompt.active.is_some() {
            return vec![];
        }
        let steerable = self.mode == Mode::Watch && self.steer.available;
        if self.mode == Mode::Watch && !steerable {
            self.warn(READ_ONLY);
            return vec![];
        }
        if !self.engine_alive && !steerable {
            self.warn("engine is not running: open a checkpoint (c, i)");
            return vec![];
        }
        let p = &mut self.prompt;
        let id = p.next_id;
        p.next_id += 1;
        p.active = Some((id, prompt.clone(), String::new()));
        let params = p.params.clone();
        vec![Action::Send(Command::Sample { id, prompt, params })]
    }
}

#[cfg(test)]
#[path = "prompt_history_tests.rs"]
mod tests;
