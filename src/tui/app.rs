//! Cockpit state: plain data fed by engine events and keys, with no terminal or engine handle,
//! so every behaviour can be unit- and snapshot-tested without a TTY or Burn. The App is a thin
//! router: it keeps the run's lifecycle (mode, state, info), overlay and focus, notices, and the
//! components (run view, prompt, browser, runs, chronicle, system, side), each with its own
//! state, keys, event folding and draw; the App forwards to them (DESIGN.md module map).

use super::browser::BrowserState;
use super::prompt::PromptState;
use super::run_view::{AlertEntry, RunView};
use crate::protocol::{
    AlertKind, CheckpointSummary, Command, Event, FinishReason, RunInfo, SampleParams, StartFrom,
};
use std::path::PathBuf;

pub use super::calc::{ema, fmt_count, fmt_duration, mfu, scale_y};

/// Seconds a footer notice stays before the key help comes back.
pub const NOTICE_SECS: u64 = 6;
/// Notices kept for the help overlay's log.
pub const NOTICE_LOG: usize = 8;

/// What the terminal loop must do on the App's behalf; keeps `App` free of side effects.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Forward to the current engine (dropped with a notice when there is none).
    Send(Command),
    /// Leave the UI loop now.
    Quit,
    /// Stop the current engine (saving first if asked), then start a new one.
    Launch { from: StartFrom, save_current: bool },
    /// Write a Hugging Face export of a checkpoint.
    Export { checkpoint: PathBuf, out: PathBuf },
    /// Remove a checkpoint directory (the user already confirmed).
    Delete(PathBuf),
    /// Pin or unpin a checkpoint (retention never removes a pinned one).
    SetPinned { checkpoint: PathBuf, pinned: bool },
    /// Re-read the checkpoint list now.
    RefreshCheckpoints,
    /// Forward to the side engine (sampling a stored checkpoint while training goes on).
    Side(crate::protocol::SideCommand),
    /// What the runs pane (`R`) asks the runtime to load or do.
    Runs(super::runs_view::RunsRequest),
}

/// Where the data comes from; decides which keys may talk to an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A training engine owned by this process.
    Live,
    /// An engine that only answers `Sample` (a checkpoint opened for inspection).
    Inspect,
    /// Following another process's `metrics.jsonl`; nothing can be commanded.
    Watch,
}

/// The run's lifecycle as the status bar shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    Starting,
    Running,
    Paused,
    Finished(FinishReason),
    Error,
}

impl RunState {
    /// Upper-case label; the tmux end-to-end test greps for these words.
    pub fn label(&self) -> &'static str {
        match self {
            RunState::Starting => "STARTING",
            RunState::Running => "RUNNING",
            RunState::Paused => "PAUSED",
            RunState::Finished(_) => "FINISHED",
            RunState::Error => "ERROR",
        }
    }
}

/// Panes that can hold focus (Tab / arrows); the focused one gets the accent border.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Loss,
    Throughput,
    LrGrad,
    Prompt,
}

/// Modal layers drawn over the panes; only the top one receives keys.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    None,
    Help,
    /// Quit confirmation: save-and-quit, quit, cancel.
    QuitConfirm,
    Checkpoints,
    /// The control pane (`k`): live hyperparameters, their history, set with confirmation.
    Controls,
    /// The rewind dialog: checkpoint and skip, confirm before rolling back.
    Rewind,
    /// The runs pane (`R`): list, lineage, loss overlay and config diff.
    Runs,
}

/// Everything the cockpit shows.
#[derive(Debug, Clone)]
pub struct App {
    /// Live, inspect or watch: which keys may talk to an engine.
    pub mode: Mode,
    /// The shown run, from its `Started` event.
    pub info: Option<RunInfo>,
    /// The run's lifecycle as the status bar shows it.
    pub state: RunState,
    /// A `SaveCheckpoint` is in flight (cleared by `CheckpointSaved`).
    pub saving: bool,
    /// Whether an engine is connected (false in watch mode and after it ended).
    pub engine_alive: bool,
    /// The run view: step history, evaluations, alerts and chart preferences (run_view/).
    pub run_view: RunView,
    /// Watch mode: when the followed `metrics.jsonl` was last written (0 = unknown).
    pub last_write_unix: u64,
    /// The engine's error, shown in the banner.
    pub error: Option<String>,
    /// One-line notice in the footer (read-only warnings, save confirmations, theme problems).
    pub notice: Option<String>,
    /// When `notice` was set (`now_unix`), so it expires after `NOTICE_SECS`.
    pub notice_at: u64,
    /// Whether `notice` reports a refusal or problem (warning colour) or just information.
    pub notice_warns: bool,
    /// The last `NOTICE_LOG` notices, newest last, shown whole (wrapped) in the help overlay,
    /// since the footer cuts a long one to its width.
    pub notice_log: std::collections::VecDeque<String>,
    /// Why the configured theme could not be used, if it could not.
    pub theme_warning: Option<String>,
    /// `ui.peak_tflops`: the MFU peak the user set (0 = find one, `App::peak`).
    pub peak_tflops: f64,
    /// `ui.auto_pause_on_spike`: pause a live run on a health alert.
    pub auto_pause_on_spike: bool,
    /// `[train] on_spike` of the run, applied by this consumer (steer.rs).
    pub spike_policy: crate::spike_policy::SpikePolicy,
    /// The control pane's state (`k`, steer.rs).
    pub controls: super::steer::ControlPane,
    /// The open rewind dialog, if any (steer.rs).
    pub rewind: Option<super::steer::RewindPrompt>,
    /// The pane with the keyboard focus.
    pub focus: Pane,
    /// The modal layer on top, which gets the keys.
    pub overlay: Overlay,
    /// Whether the prompt pane is shown (`g`).
    pub prompt_open: bool,
    /// The prompt pane (prompt/).
    pub prompt: PromptState,
    /// The checkpoint browser (browser/).
    pub browser: BrowserState,
    /// Seconds since the Unix epoch, set by the loop each frame (fixed in tests) for ages.
    pub now_unix: u64,
    /// Runs directory, used to build default export paths shown to the user.
    pub runs_dir: PathBuf,
    /// The UI loop ends after this frame.
    pub should_quit: bool,
    /// Save-and-quit was chosen: leave once the engine reports it has finished.
    pub quit_after_stop: bool,
    /// A second Ctrl-C quit while the final save was still running: do not wait for it.
    pub abandon_save: bool,
    /// The first stop signal (SIGTERM, SIGHUP, SIGINT) the cockpit received, for its exit code.
    pub stop_signal: Option<FinishReason>,
    /// Watch mode: steering the followed run through its control socket.
    pub steer: super::watch_steer::SteerState,
    /// Sampling a stored checkpoint on the side (browser `i`), see `side.rs`.
    pub side: super::side::SideState,
    /// The system pane (`m`): process, GPU and MFU-peak figures, see `panes/system.rs`.
    pub system: super::panes::system::SystemPane,
    /// The `[chronicle]` timeline (`t`), fed every event.
    pub chronicle: super::chronicle::ChronicleView,
    /// The runs pane's own state (runs_view/).
    pub runs: super::runs_view::RunsView,
}

impl App {
    /// A fresh cockpit with preferences from the `[ui]` config.
    pub fn new(mode: Mode, ui: &crate::config::UiConfig, sample: SampleParams) -> Self {
        Self {
            mode,
            info: None,
            state: RunState::Starting,
            saving: false,
            engine_alive: mode != Mode::Watch,
            run_view: RunView::new(ui),
            last_write_unix: 0,
            error: None,
            notice: None,
            notice_at: 0,
            notice_warns: false,
            notice_log: std::collections::VecDeque::new(),
            theme_warning: None,
            peak_tflops: ui.peak_tflops,
            auto_pause_on_spike: ui.auto_pause_on_spike,
            spike_policy: Default::default(),
            controls: Default::default(),
            rewind: None,
            focus: Pane::Loss,
            overlay: Overlay::None,
            prompt_open: false,
            prompt: PromptState::new(sample),
            browser: BrowserState::default(),
            now_unix: 0,
            runs_dir: PathBuf::new(),
            should_quit: false,
            quit_after_stop: false,
            abandon_save: false,
            stop_signal: None,
            steer: Default::default(),
            side: Default::default(),
            system: Default::default(),
            chronicle: Default::default(),
            runs: Default::default(),
        }
    }

    /// Fold one engine (or metrics.jsonl) event into the state; may ask for a `Pause`.
    pub fn on_event(&mut self, event: Event) -> Vec<Action> {
        let mut actions = self.steer_on_event(&event);
        self.chronicle.on_event(&event);
        self.run_view.on_event(&event);
        self.prompt.on_event(&event);
        match event {
            Event::Started { info, .. } => {
                let same_run = self
                    .info
                    .as_ref()
                    .is_some_and(|i| i.run_dir == info.run_dir);
                self.run_view.on_started(same_run, info.start_step);
                self.error = None;
                self.saving = false;
                self.state = if self.mode == Mode::Inspect {
                    RunState::Paused
                } else {
                    RunState::Running
                };
                self.info = Some(info);
            }
            Event::Step(_) => {
                if matches!(self.state, RunState::Starting) {
                    self.state = RunState::Running;
                }
            }
            Event::ControlChanged { step, change } => self.notify(format!(
                "step {step}: {} {} -> {}",
                change.key, change.old, change.new
            )),
            Event::ControlRejected { message, .. } => self.warn(message),
            Event::Rewound {
                step,
                from_step,
                skip_batches,
                ..
            } => self.notify(format!(
                "rewound from step {from_step} to {step}, skipping {skip_batches} steps of data"
            )),
            Event::TaskEval { step, task, .. } => {
                let summary = self.run_view.task_evals.last().map(|e| e.summary.clone());
                let summary = summary.unwrap_or_default();
                self.notify(format!("eval {task} at step {step}: {summary}"));
            }
            Event::CheckpointSaved { path, .. } => {
                self.saving = false;
                self.notify(format!("checkpoint saved: {path}"));
                actions.push(Action::RefreshCheckpoints);
            }
            Event::Paused { .. } => {
                if self.mode != Mode::Inspect {
                    self.state = RunState::Paused;
                }
            }
            Event::Resumed { .. } => self.state = RunState::Running,
            Event::Alert { kind, .. } => {
                let running = self.state == RunState::Running;
                let health = matches!(
                    kind,
                    AlertKind::NonFiniteLoss | AlertKind::LossSpike | AlertKind::GradExplosion
                );
                // `ui.auto_pause_on_spike` pauses unless `train.on_spike` already acted.
                let acted = !actions.is_empty();
                if self.auto_pause_on_spike
                    && health
                    && running
                    && !acted
                    && self.mode == Mode::Live
                {
                    actions.push(Action::Send(Command::Pause));
                }
            }
            Event::Error { message, .. } => {
                self.state = RunState::Error;
                self.saving = false;
                self.error = Some(message);
            }
            // Folded by the components above (run view, prompt, chronicle).
            Event::Eval { .. }
            | Event::SampleToken { .. }
            | Event::SampleDone { .. }
            | Event::ChronicleSample { .. }
            | Event::ChronicleTask { .. } => {}
            Event::Finished { reason, .. } => {
                self.saving = false;
                if self.state != RunState::Error {
                    self.state = RunState::Finished(reason);
                }
                if self.quit_after_stop {
                    self.should_quit = true;
                    actions.push(Action::Quit);
                }
            }
        }
        actions
    }

    /// Show a one-line informational notice in the footer for a few seconds (and log it).
    pub fn notify(&mut self, msg: impl Into<String>) {
        self.set_notice(msg.into(), false);
    }

    /// [`App::notify`] for a refusal or problem: shown in the warning colour.
    pub fn warn(&mut self, msg: impl Into<String>) {
        self.set_notice(msg.into(), true);
    }

    fn set_notice(&mut self, msg: String, warns: bool) {
        if self.notice_log.len() == NOTICE_LOG {
            self.notice_log.pop_front();
        }
        self.notice_log.push_back(msg.clone());
        self.notice = Some(msg);
        self.notice_warns = warns;
        self.notice_at = self.now_unix;
    }

    /// Advance the clock (once per frame); expires old notices.
    pub fn tick(&mut self, now_unix: u64) {
        self.now_unix = now_unix;
        if self.notice.is_some() && now_unix >= self.notice_at + NOTICE_SECS {
            self.notice = None;
        }
    }

    /// The engine's channel closed; without a `Finished` first that means it died.
    pub fn on_engine_lost(&mut self) {
        self.engine_alive = false;
        if self.quit_after_stop {
            self.should_quit = true;
        }
        self.prompt.on_engine_gone();
        if !matches!(self.state, RunState::Finished(_) | RunState::Error) {
            self.state = RunState::Error;
            self.error = Some("engine stopped unexpectedly".into());
        }
    }

    /// A new engine was launched (checkpoint browser action); reset per-engine state.
    pub fn on_engine_launched(&mut self, mode: Mode) {
        self.mode = mode;
        self.engine_alive = true;
        self.state = RunState::Starting;
        self.error = None;
        self.saving = false;
        self.prompt.on_engine_gone();
        if mode == Mode::Inspect {
            self.prompt_open = true;
            self.focus = Pane::Prompt;
        }
    }

    /// Alerts not yet dismissed, newest last.
    pub fn unseen_alerts(&self) -> &[AlertEntry] {
        self.run_view.unseen_alerts()
    }

    /// The browser's highlighted checkpoint.
    pub fn selected_checkpoint(&self) -> Option<&CheckpointSummary> {
        self.browser.selected_entry()
    }

    /// Replace the checkpoint list, keeping the selection on the same path when it survives.
    pub fn set_checkpoints(&mut self, entries: Vec<CheckpointSummary>) {
        self.browser.set_entries(entries);
    }
}
