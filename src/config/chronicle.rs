//! `[chronicle]`: what the engine records between steps so a run's log tells its story (fixed
//! prompts sampled greedily, small multiple-choice tasks scored), and the checks on it.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Most fixed prompts a chronicle may sample at each cadence (each costs a generation).
pub const MAX_CHRONICLE_PROMPTS: usize = 32;
/// Most tokens one chronicle sample may generate; the log and the timeline keep every one.
pub const MAX_CHRONICLE_TOKENS: usize = 1024;
/// Most questions one chronicle task may score at each cadence.
pub const MAX_CHRONICLE_QUESTIONS: usize = 10_000;

/// The chronicle of a run: at step 0 of a fresh run and every `every` steps, each prompt is
/// sampled greedily and each task scored, both written to `metrics.jsonl`. Greedy sampling and
/// scoring only run forward passes on a snapshot of the weights, so training is unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChronicleConfig {
    /// Steps between chronicle entries; 0 turns the chronicle off.
    pub every: u64,
    /// Fixed prompts, sampled greedily (the same prompt at every entry, so entries compare).
    pub prompts: Vec<String>,
    /// Tokens generated per prompt.
    pub max_new_tokens: usize,
    /// Multiple-choice JSONL files (the formats `llite-tui eval` reads), scored by the `eval`
    /// machinery; the task is named after the file stem.
    pub tasks: Vec<String>,
    /// Questions scored per task (the first ones of the file), to keep each entry quick.
    pub max_questions: usize,
}

impl Default for ChronicleConfig {
    fn default() -> Self {
        Self {
            every: 0,
            prompts: Vec::new(),
            max_new_tokens: 48,
            tasks: Vec::new(),
            max_questions: 20,
        }
    }
}

impl ChronicleConfig {
    /// Whether the engine records a chronicle at all.
    pub fn enabled(&self) -> bool {
        self.every > 0
    }

    /// The key checks: sizes bounded, prompts non-empty, and a cadence with nothing to record
    /// refused rather than silently doing nothing. Task files are read when the run starts.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_CHRONICLE_TOKENS).contains(&self.max_new_tokens) {
            bail!(
                "config: chronicle.max_new_tokens must be in 1..={MAX_CHRONICLE_TOKENS}, got {}",
                self.max_new_tokens
            );
        }
        if !(1..=MAX_CHRONICLE_QUESTIONS).contains(&self.max_questions) {
            bail!(
                "config: chronicle.max_questions must be in 1..={MAX_CHRONICLE_QUESTIONS}, got {}",
                self.max_questions
            );
        }
        if self.prompts.len() > MAX_CHRONICLE_PROMPTS {
            bail!(
                "config: chronicle.prompts has {} prompts, more than {MAX_CHRONICLE_PROMPTS}",
                self.prompts.len()
            );
        }
        if let Some(i) = self.prompts.iter().position(|p| p.trim().is_empty()) {
            bail!("config: chronicle.prompts[{i}] is empty; give some text to continue");
        }
        if let Some(t) = self.tasks.iter().find(|t| !t.ends_with(".jsonl")) {
            bail!("config: chronicle.tasks entry {t:?} must be a multiple-choice .jsonl file");
        }
        if self.enabled() && self.prompts.is_empty() && self.tasks.is_empty() {
            bail!(
                "config: chronicle.every = {} but chronicle.prompts and chronicle.tasks are both empty (set every = 0 to turn the chronicle off)",
                self.every
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_off_and_valid_and_bad_values_are_named() {
        let c = ChronicleConfig::default();
        assert!(!c.enabled());
        c.validate().unwrap();
        let bad = |f: &dyn Fn(&mut ChronicleConfig), needle: &str| {
            let mut c = ChronicleConfig {
                every: 5,
                prompts: vec!["ROMEO:".into()],
                ..Default::default()
            };
            c.validate().unwrap();
            f(&mut c);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(needle) && !err.contains('\n'), "{err}");
        };
        bad(&|c| c.max_new_tokens = 0, "chronicle.max_new_tokens");
        bad(&|c| c.max_questions = 0, "chronicle.max_questions");
        bad(&|c| c.prompts.push(" ".into()), "chronicle.prompts[1]");
        bad(&|c| c.prompts = vec!["x".into(); 33], "more than 32");
        bad(&|c| c.tasks.push("q.txt".into()), "chronicle.tasks");
        bad(&|c| c.prompts.clear(), "both empty");
    }
}
