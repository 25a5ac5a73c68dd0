//! The prompt pane's history: every finished (or cancelled) generation is kept, up to a bound,
//! and can be scrolled back through a sample at a time; the newest prompt can be run again.

use super::SampleEntry;
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

    /// Generations kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing finished yet.
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

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
