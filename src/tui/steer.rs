//! Steering from the cockpit, as one component with its own state and keys (drawn by
//! `panes/steer.rs`): the control pane (pick a live key, type or step a value, confirm, then
//! `Set`), the rewind dialog (checkpoint and adjustable skip, confirm, then `Rewind`), and the
//! `[train] on_spike` policy applied to the events. Values are checked with the same
//! validation the engine uses, so a refusal shows before anything is sent.

use super::app::{Action, App, Mode, Overlay};
use crate::config::RunConfig;
use crate::controls::LIVE_KEYS;
use crate::controls::{
    apply_setting, current_value, validate_setting, ControlRecord, ControlValue,
};
use crate::protocol::{AlertKind, Command, Event};
use crossterm::event::{KeyCode, KeyEvent};
use std::path::PathBuf;

/// A change waiting for the user's y/n.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingChange {
    pub key: String,
    pub value: String,
    /// "0.003 -> 0.001", as validated.
    pub preview: String,
}

/// The control pane's state.
#[derive(Debug, Clone, Default)]
pub struct ControlPane {
    /// Index into [`LIVE_KEYS`].
    pub selected: usize,
    /// The run's live config as last reported (Started, then every ControlChanged).
    pub config: Option<RunConfig>,
    /// The value being typed, when editing.
    pub input: Option<String>,
    pub confirm: Option<PendingChange>,
    /// The last refusal (same words as `--set`).
    pub error: Option<String>,
    /// Changes applied to this run, oldest first.
    pub history: Vec<ControlRecord>,
}

impl ControlPane {
    /// The current value of `LIVE_KEYS[i]`, if the config is known.
    pub fn value(&self, i: usize) -> Option<ControlValue> {
        let cfg = self.config.as_ref()?;
        current_value(cfg, LIVE_KEYS.get(i)?).ok()
    }

    /// Validate `value` for the selected key; on success ask for confirmation.
    fn propose(&mut self, value: String) {
        let Some(cfg) = &self.config else {
            self.error = Some("the run's config is not known yet".into());
            return;
        };
        let key = LIVE_KEYS[self.selected];
        match validate_setting(cfg, &format!("{key}={value}")) {
            Ok((change, _)) => {
                self.error = None;
                self.confirm = Some(PendingChange {
                    key: key.to_string(),
                    value,
                    preview: format!("{} -> {}", change.old, change.new),
                });
            }
            Err(e) => self.error = Some(format!("{e:#}")),
        }
    }

    /// Half or double the selected value (`+`/`-`), as a proposal to confirm.
    fn step_value(&mut self, up: bool) {
        let next = match self.value(self.selected) {
            Some(ControlValue::Real(x)) => format!("{:e}", if up { x * 2.0 } else { x / 2.0 }),
            Some(ControlValue::Count(n)) => {
                format!("{}", if up { (n * 2).max(1) } else { n / 2 })
            }
            None => return,
        };
        self.propose(next);
    }
}

/// The rewind dialog: where to, and how many steps of data to skip (adjustable).
#[derive(Debug, Clone, PartialEq)]
pub struct RewindPrompt {
    pub checkpoint: PathBuf,
    pub step: u64,
    pub skip: u64,
}

impl App {
    /// Policy and pane bookkeeping for one event, before `on_event` folds it in.
    pub(super) fn steer_on_event(&mut self, event: &Event) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            Event::Started { info, .. } => {
                self.controls.config = RunConfig::from_toml_str(&info.config_toml, "run").ok();
            }
            Event::ControlChanged { step, change } => {
                if let Some(cfg) = &mut self.controls.config {
                    let _ = apply_setting(cfg, change);
                }
                self.controls.history.push(ControlRecord {
                    step: *step,
                    change: change.clone(),
                });
            }
            Event::Rewound { run_dir, .. } => {
                // The branch continues this run's curve: keep history up to the checkpoint.
                if let Some(info) = &mut self.info {
                    info.run_dir = run_dir.clone();
                }
                self.rewind = None;
            }
            _ => {}
        }
        if let Some(decision) = self.spike_policy.observe(event) {
            if self.mode == Mode::Live && self.engine_alive {
                actions.extend(decision.command.map(Action::Send));
                self.notify(decision.notice);
            }
        }
        actions
    }

    /// `k`: open the control pane (live runs only).
    pub(super) fn open_controls(&mut self) {
        self.controls.error = None;
        self.controls.input = None;
        self.controls.confirm = None;
        self.overlay = Overlay::Controls;
    }

    /// Keys while the control pane is open.
    pub(super) fn controls_key(&mut self, key: KeyEvent) -> Vec<Action> {
        let live = self.may_steer(true);
        let pane = &mut self.controls;
        if let Some(change) = pane.confirm.clone() {
            match key.code {
                KeyCode::Char('y') | KeyCode::Enter => {
                    pane.confirm = None;
                    if let Err(why) = live {
                        pane.error = Some(why);
                        return vec![];
                    }
                    return vec![Action::Send(Command::Set {
                        key: change.key,
                        value: change.value,
                    })];
                }
                KeyCode::Char('n') | KeyCode::Esc => pane.confirm = None,
                _ => {}
            }
            return vec![];
        }
        if let Some(input) = &mut pane.input {
            match key.code {
                KeyCode::Enter => {
                    let value = input.trim().to_string();
                    pane.input = None;
                    pane.propose(value);
                }
                KeyCode::Esc => pane.input = None,
                KeyCode::Backspace => {
                    input.pop();
                }
                KeyCode::Char(ch) if input.len() < 32 => input.push(ch),
                _ => {}
            }
            return vec![];
        }
        match key.code {
            KeyCode::Esc | KeyCode::Char('k') | KeyCode::Char('q') => self.overlay = Overlay::None,
            KeyCode::Up => pane.selected = pane.selected.saturating_sub(1),
            KeyCode::Down => pane.selected = (pane.selected + 1).min(LIVE_KEYS.len() - 1),
            KeyCode::Enter => {
                let current = pane.value(pane.selected).map(|v| v.to_string());
                pane.input = Some(current.unwrap_or_default());
            }
            KeyCode::Char('+') | KeyCode::Right => pane.step_value(true),
            KeyCode::Char('-') | KeyCode::Left => pane.step_value(false),
            _ => {}
        }
        vec![]
    }

    /// Open the rewind dialog for `checkpoint`, skip defaulting to the batches from it to the
    /// newest spike after it (what caused the spike), or `train.rewind_skip` when set.
    pub(super) fn open_rewind(&mut self, checkpoint: PathBuf, step: u64) {
        let configured = self.controls.config.as_ref().map(|c| c.train.rewind_skip);
        let spike = self
            .run_view
            .alerts
            .iter()
            .rev()
            .find(|a| is_spike(a.kind) && a.step > step)
            .map(|a| a.step);
        let skip = match (configured, spike) {
            (Some(n), _) if n > 0 => n,
            (_, Some(s)) => s - step,
            _ => 0,
        };
        self.rewind = Some(RewindPrompt {
            checkpoint,
            step,
            skip,
        });
        self.overlay = Overlay::Rewind;
    }

    /// `r` on a spike alert banner: rewind to the newest checkpoint before the spike.
    pub(super) fn rewind_from_banner(&mut self) {
        let Some(alert) = self.unseen_alerts().iter().rev().find(|a| is_spike(a.kind)) else {
            self.warn("no spike alert to rewind from (c opens the checkpoints: b rewinds there)");
            return;
        };
        let at = alert.step;
        match self.spike_policy.rewind_target(at) {
            Some((path, step)) => self.open_rewind(path, step),
            None => self.warn(format!("no checkpoint before step {at} to rewind to")),
        }
    }

    /// Keys while the rewind dialog is open.
    pub(super) fn rewind_key(&mut self, key: KeyEvent) -> Vec<Action> {
        let Some(prompt) = &mut self.rewind else {
            self.overlay = Overlay::None;
            return vec![];
        };
        match key.code {
            KeyCode::Up | KeyCode::Char('+') | KeyCode::Right => prompt.skip += 1,
            KeyCode::Down | KeyCode::Char('-') | KeyCode::Left => {
                prompt.skip = prompt.skip.saturating_sub(1)
            }
            KeyCode::PageUp => prompt.skip += 10,
            KeyCode::PageDown => prompt.skip = prompt.skip.saturating_sub(10),
            KeyCode::Char('y') | KeyCode::Enter => {
                let (checkpoint, skip_batches) = (prompt.checkpoint.clone(), prompt.skip);
                self.rewind = None;
                self.overlay = Overlay::None;
                if let Err(why) = self.may_steer(false) {
                    self.warn(why);
                    return vec![];
                }
                self.notify(format!("rewinding to {}…", checkpoint.display()));
                return vec![Action::Send(Command::Rewind {
                    checkpoint,
                    skip_batches,
                })];
            }
            KeyCode::Char('n') | KeyCode::Esc => {
                self.rewind = None;
                self.overlay = Overlay::None;
            }
            _ => {}
        }
        vec![]
    }

    /// Whether this cockpit may steer its engine: a live run it owns, or (for what the control
    /// socket carries, `over_socket`) a watched run that serves one.
    fn may_steer(&self, over_socket: bool) -> Result<(), String> {
        match self.mode {
            Mode::Live if self.engine_alive => Ok(()),
            Mode::Live => Err("engine is not running".into()),
            Mode::Watch if over_socket && self.can_steer() => Ok(()),
            Mode::Watch if self.can_steer() => {
                Err("rewind is not available when watching: use the training terminal".into())
            }
            Mode::Watch => Err(super::keys::READ_ONLY.into()),
            Mode::Inspect => Err("inspect mode: this engine only samples".into()),
        }
    }
}

/// Alerts the spike policy and the rewind key act on.
fn is_spike(kind: AlertKind) -> bool {
    matches!(kind, AlertKind::LossSpike | AlertKind::GradExplosion)
}
