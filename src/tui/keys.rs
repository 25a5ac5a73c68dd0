//! Key routing: turns key presses into state changes plus `Action`s for the loop to perform.
//! Layers are checked top-down (dialogs, overlays, the prompt input, then global keys) so a key
//! typed into a text field never doubles as a command. Each component handles its own keys
//! (browser/, prompt/, run_view/, runs_view/, chronicle/); this module routes to them and
//! carries out what they ask (`BrowserIntent`, `PromptIntent`) with the App's knowledge of
//! the mode and engines.

use super::app::{Action, App, Mode, Overlay, Pane, RunState};
use super::browser::BrowserIntent;
use super::prompt::{PromptIntent, PromptKeyCtx};
use super::runs_view::RunsRequest;
use crate::protocol::{Command, FinishReason, StartFrom};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::path::PathBuf;

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
        if self.run_view.on_key(key) {
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
            KeyCode::Char('m') => self.system.shown = !self.system.shown,
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
        let ctx = PromptKeyCtx {
            side: self.side.target.is_some(),
            step: self.run_view.last_step().unwrap_or(0),
        };
        match self.prompt.on_key(key, ctx) {
            PromptIntent::Unhandled => return None,
            PromptIntent::Handled => {}
            PromptIntent::Sample { prompt, from_input } => {
                let actions = self.submit_prompt(prompt);
                if from_input && !actions.is_empty() {
                    self.prompt.input.clear();
                    self.prompt.cursor = 0;
                }
                return Some(actions);
            }
            PromptIntent::NothingToRepeat => self.notify("nothing to run again yet"),
            PromptIntent::Cancel(id) => {
                return Some(vec![Action::Send(Command::CancelSample { id })])
            }
            PromptIntent::Close => {
                self.prompt_open = false;
                self.focus = Pane::Loss;
            }
            PromptIntent::SideSubmit => return Some(self.side_submit()),
            PromptIntent::SideEscape => return self.side_escape(),
        }
        Some(vec![])
    }

    /// Send `prompt` to the engine (or the steered run) unless it is empty, a generation is
    /// still streaming, or nothing can sample now (then a notice says why).
    fn submit_prompt(&mut self, prompt: String) -> Vec<Action> {
        if !self.prompt.accepts(&prompt) {
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
        vec![Action::Send(self.prompt.start(prompt))]
    }

    /// The browser has the keys while open; what it asks for is done here.
    fn browser_key(&mut self, key: KeyEvent) -> Vec<Action> {
        match self.browser.on_key(key, self.mode == Mode::Watch) {
            BrowserIntent::Handled => {}
            BrowserIntent::Close => self.overlay = Overlay::None,
            BrowserIntent::Refresh => return vec![Action::RefreshCheckpoints],
            BrowserIntent::Delete(path) => return vec![Action::Delete(path)],
            BrowserIntent::SetPinned { checkpoint, pinned } => {
                return vec![Action::SetPinned { checkpoint, pinned }]
            }
            BrowserIntent::Export { checkpoint, out } => {
                self.notify(format!("exporting to {}…", out.display()));
                return vec![Action::Export { checkpoint, out }];
            }
            BrowserIntent::SampleSide(ckpt) => return self.side_open(&ckpt),
            BrowserIntent::Rewind { checkpoint, step } => self.open_rewind(checkpoint, step),
            BrowserIntent::Launch(from) => return self.launch_or_confirm(from),
            BrowserIntent::Switch { from, save_current } => {
                self.overlay = Overlay::None;
                return vec![Action::Launch { from, save_current }];
            }
            BrowserIntent::Warn(why) => self.warn(why),
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
            self.browser.confirm_switch(from);
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
