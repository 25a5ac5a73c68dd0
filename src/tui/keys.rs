//! Key handling: turns key presses into state changes plus `Action`s for the loop to perform.
//! Layers are checked top-down (dialogs, overlays, the prompt input, then global keys) so a key
//! typed into a text field never doubles as a command.

use super::app::{Action, App, BrowserPrompt, Mode, Overlay, Pane, RunState};
use super::runs_view::RunsRequest;
use crate::protocol::{Command, FinishReason, StartFrom};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::path::{Path, PathBuf};

/// Shown when a key needs an engine that the watch mode does not have.
pub const READ_ONLY: &str = "read-only: watching another process";

impl App {
    /// Handle one key event; releases and repeats are ignored (only presses count).
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if key.kind != KeyEventKind::Press {
            return vec![];
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == KeyCode::Char('c') {
            return self.interrupt(FinishReason::Interrupted);
        }
        match self.overlay {
            Overlay::QuitConfirm => return self.quit_key(key),
            Overlay::Help => {
                self.overlay = Overlay::None;
                return vec![];
            }
            Overlay::Checkpoints => return self.browser_key(key),
            Overlay::Controls => return self.controls_key(key),
            Overlay::Rewind => return self.rewind_key(key),
            Overlay::Runs => return self.runs_key(key),
            Overlay::None => {}
        }
        if let Some(actions) = self.steer_key(key) {
            return actions;
        }
        if self.prompt_open && self.focus == Pane::Prompt {
            if let Some(actions) = self.prompt_key(key) {
                return actions;
            }
        }
        if self.chronicle.is_open() && self.chronicle.on_key(key) {
            return vec![];
        }
        self.global_key(key)
    }

    fn global_key(&mut self, key: KeyEvent) -> Vec<Action> {
        match key.code {
            KeyCode::Char('p') | KeyCode::Char(' ') => {
                if let Some(why) = self.cannot_command() {
                    self.warn(why);
                    return vec![];
                }
                match self.state {
                    RunState::Running => return vec![Action::Send(Command::Pause)],
                    RunState::Paused => return vec![Action::Send(Command::Resume)],
                    _ => self.warn(format!("cannot pause: run is {}", self.state.label())),
                }
            }
            KeyCode::Char('s') => {
                if let Some(why) = self.cannot_command() {
                    self.warn(why);
                    return vec![];
                }
                self.saving = true;
                self.notify("saving checkpoint…");
                return vec![Action::Send(Command::SaveCheckpoint)];
            }
            KeyCode::Char('q') => {
                if self.engine_alive && self.mode == Mode::Live {
                    self.overlay = Overlay::QuitConfirm;
                } else {
                    let mut out = vec![];
                    if self.engine_alive && self.mode == Mode::Inspect {
                        out.push(Action::Send(Command::Stop {
                            save: false,
                            reason: FinishReason::Stopped,
                        }));
                    }
                    out.push(Action::Quit);
                    self.should_quit = true;
                    return out;
                }
            }
            KeyCode::Char('g') | KeyCode::Char('/') => {
                self.prompt_open = true;
                self.focus = Pane::Prompt;
            }
            KeyCode::Char('c') => {
                self.overlay = Overlay::Checkpoints;
                return vec![Action::RefreshCheckpoints];
            }
            KeyCode::Char('R') => {
                self.overlay = Overlay::Runs;
                if let Some(info) = &self.info {
                    self.runs.current = Some(PathBuf::from(&info.run_dir));
                }
                return vec![Action::Runs(RunsRequest::Refresh)];
            }
            KeyCode::Char('?') => self.overlay = Overlay::Help,
            KeyCode::Char('t') => self.chronicle.toggle(),
            KeyCode::Char('k') => self.open_controls(),
            KeyCode::Char('r') => self.rewind_from_banner(),
            KeyCode::Char('e') => match self.cannot_command() {
                Some(why) => self.warn(why),
                None => return vec![Action::Send(Command::EvalNow)],
            },
            KeyCode::Char('[') => self.smoothing = smoothing_step(self.smoothing, -1),
            KeyCode::Char(']') => self.smoothing = smoothing_step(self.smoothing, 1),
            KeyCode::Char('l') => self.log_scale = !self.log_scale,
            KeyCode::Char('w') => self.full_history = !self.full_history,
            KeyCode::Char('m') => self.system.shown = !self.system.shown,
            KeyCode::Char('x') => self.alerts_seen = self.alerts.len(),
            KeyCode::Tab | KeyCode::Right | KeyCode::Down => self.cycle_focus(1),
            KeyCode::BackTab | KeyCode::Left | KeyCode::Up => self.cycle_focus(-1),
            KeyCode::Esc => {
                if self.prompt_open {
                    self.prompt_open = false;
                    self.focus = Pane::Loss;
                }
                self.notice = None;
            }
            _ => {}
        }
        vec![]
    }

    /// The runs pane has the keys while open; its requests go to the runtime.
    fn runs_key(&mut self, key: KeyEvent) -> Vec<Action> {
        let mut out = Vec::new();
        for req in self.runs.on_key(key) {
            match req {
                RunsRequest::Close => self.overlay = Overlay::None,
                other => out.push(Action::Runs(other)),
            }
        }
        out
    }

    /// Ctrl-C, or a stop signal delivered to the cockpit: a live run saves a checkpoint and
    /// then quits (as "save & quit" does); a second one quits at once without waiting. Watch
    /// and inspect modes have nothing to save and quit at once.
    pub fn interrupt(&mut self, reason: FinishReason) -> Vec<Action> {
        let live = self.engine_alive && self.mode == Mode::Live;
        if live && !self.quit_after_stop {
            self.overlay = Overlay::None;
            self.quit_after_stop = true;
            self.saving = true;
            self.notify("saving…, Ctrl-C again to quit without saving");
            return vec![Action::Send(Command::Stop { save: true, reason })];
        }
        let mut out = vec![];
        if self.engine_alive && self.mode == Mode::Inspect {
            out.push(Action::Send(Command::Stop {
                save: false,
                reason,
            }));
        }
        self.abandon_save = live;
        out.push(Action::Quit);
        self.should_quit = true;
        out
    }

    /// Why training commands cannot be sent now, if they cannot.
    fn cannot_command(&self) -> Option<String> {
        match self.mode {
            Mode::Watch if self.steer.available => None,
            Mode::Watch => Some(READ_ONLY.into()),
            Mode::Inspect => Some("inspect mode: this engine only samples (c to switch)".into()),
            Mode::Live if !self.engine_alive => Some("engine is not running".into()),
            Mode::Live => None,
        }
    }

    fn cycle_focus(&mut self, dir: i32) {
        let mut panes = vec![Pane::Loss, Pane::Throughput, Pane::LrGrad];
        if self.prompt_open {
            panes.push(Pane::Prompt);
        }
        let i = panes.iter().position(|p| *p == self.focus).unwrap_or(0) as i32;
        self.focus = panes[(i + dir).rem_euclid(panes.len() as i32) as usize];
    }

    fn quit_key(&mut self, key: KeyEvent) -> Vec<Action> {
        match key.code {
            KeyCode::Char('s') => {
                self.overlay = Overlay::None;
                self.quit_after_stop = true;
                self.saving = true;
                self.notify("saving final checkpoint, then quitting…");
                vec![Action::Send(Command::Stop {
                    save: true,
                    reason: FinishReason::Stopped,
                })]
            }
            KeyCode::Char('q') | KeyCode::Char('y') | KeyCode::Enter => {
                self.should_quit = true;
                vec![
                    Action::Send(Command::Stop {
                        save: false,
                        reason: FinishReason::Stopped,
                    }),
                    Action::Quit,
                ]
            }
            KeyCode::Char('n') | KeyCode::Char('c') | KeyCode::Esc => {
                self.overlay = Overlay::None;
                vec![]
            }
            _ => vec![],
        }
    }

    /// Prompt pane input; `None` lets the key fall through to the global handler.
    fn prompt_key(&mut self, key: KeyEvent) -> Option<Vec<Action>> {
        if let Some(actions) = self.prompt_history_key(key) {
            return Some(actions);
        }
        let p = &mut self.prompt;
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Tab | KeyCode::BackTab => return None,
            KeyCode::Esc if self.side.target.is_some() => return self.side_escape(),
            KeyCode::Enter if self.side.target.is_some() => return Some(self.side_submit()),
            KeyCode::Esc => {
                if let Some((id, prompt, text)) = p.active.take() {
                    p.history.push(super::app::SampleEntry {
                        step: self.steps.last().map(|s| s.step).unwrap_or(0),
                        prompt,
                        text: format!("{text} [cancelled]"),
                        tokens: 0,
                        tokens_per_s: 0.0,
                    });
                    return Some(vec![Action::Send(Command::CancelSample { id })]);
                }
                self.prompt_open = false;
                self.focus = Pane::Loss;
            }
            KeyCode::Enter => {
                let prompt = p.input.clone();
                let actions = self.submit_prompt(prompt);
                if !actions.is_empty() {
                    self.prompt.input.clear();
                    self.prompt.cursor = 0;
                }
                return Some(actions);
            }

            KeyCode::Up => p.selected = (p.selected + 3) % 4,
            KeyCode::Down => p.selected = (p.selected + 1) % 4,
            KeyCode::PageUp => adjust_param(&mut p.params, p.selected, 1),
            KeyCode::PageDown => adjust_param(&mut p.params, p.selected, -1),
            KeyCode::Char('u') if ctrl => {
                p.input.clear();
                p.cursor = 0;
            }
            KeyCode::Char(ch) if !ctrl => {
                let at = byte_at(&p.input, p.cursor);
                p.input.insert(at, ch);
                p.cursor += 1;
            }
            KeyCode::Backspace if p.cursor > 0 => {
                p.cursor -= 1;
                let at = byte_at(&p.input, p.cursor);
                p.input.remove(at);
            }
            KeyCode::Delete if p.cursor < p.input.chars().count() => {
                let at = byte_at(&p.input, p.cursor);
                p.input.remove(at);
            }
            KeyCode::Left => p.cursor = p.cursor.saturating_sub(1),
            KeyCode::Right => p.cursor = (p.cursor + 1).min(p.input.chars().count()),
            KeyCode::Home => p.cursor = 0,
            KeyCode::End => p.cursor = p.input.chars().count(),
            _ => {}
        }
        Some(vec![])
    }

    fn browser_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if self.browser.prompt.is_some() {
            return self.browser_prompt_key(key);
        }
        let n = self.browser.entries.len();
        let b = &mut self.browser;
        match key.code {
            KeyCode::Esc | KeyCode::Char('c') | KeyCode::Char('q') => self.overlay = Overlay::None,
            KeyCode::Up | KeyCode::Char('k') => b.selected = b.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                b.selected = (b.selected + 1).min(n.saturating_sub(1))
            }
            KeyCode::Home => b.selected = 0,
            KeyCode::End => b.selected = n.saturating_sub(1),
            KeyCode::F(5) | KeyCode::Char('R') => return vec![Action::RefreshCheckpoints],
            KeyCode::Char(ch @ ('r' | 'f' | 'i' | 'e' | 'd' | 'b' | 'u')) => {
                let Some(sel) = self.selected_checkpoint().cloned() else {
                    self.warn("no checkpoint selected");
                    return vec![];
                };
                let path = PathBuf::from(&sel.path);
                if ch == 'd' {
                    self.browser.prompt = Some(BrowserPrompt::ConfirmDelete(path));
                    return vec![];
                }
                if ch == 'u' {
                    return vec![Action::SetPinned {
                        checkpoint: path,
                        pinned: !sel.pinned,
                    }];
                }
                if let Some(err) = &sel.error {
                    self.warn(format!("invalid checkpoint: {err}"));
                    return vec![];
                }
                if ch == 'i' {
                    // The side engine: nothing running is stopped, watch mode included.
                    return self.side_open(&sel);
                }
                if self.mode == Mode::Watch {
                    self.warn(READ_ONLY);
                    return vec![];
                }
                match ch {
                    'r' => return self.launch_or_confirm(StartFrom::Resume(path)),
                    'b' => self.open_rewind(path, sel.step),
                    'f' => {
                        self.browser.prompt = Some(BrowserPrompt::FineTuneData {
                            checkpoint: path,
                            input: String::new(),
                        })
                    }
                    _ => {
                        let input = default_export_dir(&path, sel.step).display().to_string();
                        self.browser.prompt = Some(BrowserPrompt::ExportDir {
                            checkpoint: path,
                            input,
                        })
                    }
                }
            }
            _ => {}
        }
        vec![]
    }

    fn browser_prompt_key(&mut self, key: KeyEvent) -> Vec<Action> {
        let Some(prompt) = self.browser.prompt.take() else {
            return vec![];
        };
        match (prompt, key.code) {
            (_, KeyCode::Esc) => {}
            (BrowserPrompt::ConfirmDelete(path), KeyCode::Char('y')) => {
                return vec![Action::Delete(path)]
            }
            (BrowserPrompt::ConfirmDelete(_), KeyCode::Char('n')) => {}
            (BrowserPrompt::ConfirmSwitch(from), KeyCode::Char(c @ ('s' | 'y'))) => {
                self.overlay = Overlay::None;
                return vec![Action::Launch {
                    from,
                    save_current: c == 's',
                }];
            }
            (BrowserPrompt::ConfirmSwitch(_), KeyCode::Char('n')) => {}
            (BrowserPrompt::FineTuneData { checkpoint, input }, KeyCode::Enter) => {
                let data = (!input.trim().is_empty()).then(|| PathBuf::from(input.trim()));
                // Before anything is stopped: a typo must not cost the running training.
                if let Some(Err(e)) = data.as_deref().map(crate::data::probe::probe_data_path) {
                    self.warn(format!("fine-tune data refused: {e:#}"));
                    self.browser.prompt = Some(BrowserPrompt::FineTuneData { checkpoint, input });
                    return vec![];
                }
                return self.launch_or_confirm(StartFrom::FineTune { checkpoint, data });
            }
            (BrowserPrompt::ExportDir { checkpoint, input }, KeyCode::Enter) => {
                self.notify(format!("exporting to {}…", input.trim()));
                return vec![Action::Export {
                    checkpoint,
                    out: PathBuf::from(input.trim()),
                }];
            }
            (
                BrowserPrompt::FineTuneData {
                    checkpoint,
                    mut input,
                },
                code,
            ) => {
                edit_line(&mut input, code);
                self.browser.prompt = Some(BrowserPrompt::FineTuneData { checkpoint, input });
            }
            (
                BrowserPrompt::ExportDir {
                    checkpoint,
                    mut input,
                },
                code,
            ) => {
                edit_line(&mut input, code);
                self.browser.prompt = Some(BrowserPrompt::ExportDir { checkpoint, input });
            }
            (other, _) => self.browser.prompt = Some(other),
        }
        vec![]
    }

    /// Launch directly when nothing would be lost, otherwise ask first.
    fn launch_or_confirm(&mut self, from: StartFrom) -> Vec<Action> {
        let training = self.engine_alive
            && self.mode == Mode::Live
            && matches!(
                self.state,
                RunState::Running | RunState::Paused | RunState::Starting
            );
        if training {
            self.browser.prompt = Some(BrowserPrompt::ConfirmSwitch(from));
            vec![]
        } else {
            self.overlay = Overlay::None;
            vec![Action::Launch {
                from,
                save_current: false,
            }]
        }
    }
}

/// `<run>/export-step-N` next to the run's `checkpoints/` folder.
pub fn default_export_dir(ckpt: &Path, step: u64) -> PathBuf {
    ckpt.parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."))
        .join(format!("export-step-{step}"))
}

fn adjust_param(p: &mut crate::protocol::SampleParams, which: usize, dir: i32) {
    let d = dir as f32;
    match which {
        0 => p.temperature = ((p.temperature + 0.1 * d).clamp(0.0, 5.0) * 100.0).round() / 100.0,
        1 => p.top_k = (p.top_k as i64 + 5 * dir as i64).clamp(0, 1000) as usize,
        2 => p.top_p = ((p.top_p + 0.05 * d).clamp(0.05, 1.0) * 100.0).round() / 100.0,
        _ => p.max_tokens = (p.max_tokens as i64 + 16 * dir as i64).clamp(1, 4096) as usize,
    }
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

fn byte_at(s: &str, chars: usize) -> usize {
    s.char_indices()
        .nth(chars)
        .map(|(i, _)| i)
        .unwrap_or(s.len())
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
