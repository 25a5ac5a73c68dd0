//! Cockpit state: plain data fed by engine events and keys, with no terminal or engine handle,
//! so every behaviour can be unit- and snapshot-tested without a TTY or Burn.

use crate::protocol::{
    AlertKind, CheckpointSummary, Command, Event, FinishReason, RunInfo, SampleParams, StartFrom,
    StepStats,
};
use std::path::PathBuf;

pub use super::calc::{ema, fmt_count, fmt_duration, mfu, scale_y};

/// Steps shown by the "recent" loss window (`w` toggles between it and the full history).
pub const RECENT_WINDOW: usize = 200;
/// Steps averaged for ms/step, tokens/s and the ETA, so one slow step does not swing them.
pub const RATE_WINDOW: usize = 20;
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

/// One alert as raised by the engine, kept for the banner and the alert count.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEntry {
    pub step: u64,
    pub kind: AlertKind,
    pub detail: String,
}

/// A finished generation, kept so earlier answers stay visible.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleEntry {
    pub step: u64,
    pub prompt: String,
    pub text: String,
    pub tokens: u64,
    pub tokens_per_s: f64,
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
    pub active: Option<(u64, String, String)>,
    /// Finished generations, bounded and scrollable (`prompt_history.rs`).
    pub history: super::prompt_history::SampleHistory,
}

/// A pending question inside the checkpoint browser.
#[derive(Debug, Clone, PartialEq)]
pub enum BrowserPrompt {
    /// Text input for the fine-tune instruction data file.
    FineTuneData { checkpoint: PathBuf, input: String },
    /// Text input for the export directory (pre-filled with the default).
    ExportDir { checkpoint: PathBuf, input: String },
    /// y/n before `remove_dir_all`.
    ConfirmDelete(PathBuf),
    /// A live engine would be replaced: save it first, drop it, or cancel.
    ConfirmSwitch(StartFrom),
}

/// Checkpoint browser: the list plus selection and any open question.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BrowserState {
    pub entries: Vec<CheckpointSummary>,
    pub selected: usize,
    pub prompt: Option<BrowserPrompt>,
}

/// Everything the cockpit shows.
#[derive(Debug, Clone)]
pub struct App {
    pub mode: Mode,
    pub info: Option<RunInfo>,
    pub state: RunState,
    /// A `SaveCheckpoint` is in flight (cleared by `CheckpointSaved`).
    pub saving: bool,
    /// Whether an engine is connected (false in watch mode and after it ended).
    pub engine_alive: bool,
    pub steps: Vec<StepStats>,
    pub evals: Vec<(u64, f64)>,
    /// Task evaluations (step, task, "metric value, ...") from `llite-tui eval`.
    pub task_evals: Vec<(u64, String, String)>,
    /// Watch mode: when the followed `metrics.jsonl` was last written (0 = unknown).
    pub last_write_unix: u64,
    pub last_checkpoint: Option<(u64, String)>,
    pub alerts: Vec<AlertEntry>,
    /// Index into `alerts` below which the banner was dismissed.
    pub alerts_seen: usize,
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
    pub theme_warning: Option<String>,
    pub smoothing: f64,
    pub log_scale: bool,
    pub full_history: bool,
    pub peak_tflops: f64,
    pub auto_pause_on_spike: bool,
    /// `[train] on_spike` of the run, applied by this consumer (steer.rs).
    pub spike_policy: crate::spike_policy::SpikePolicy,
    pub controls: super::steer::ControlPane,
    pub rewind: Option<super::steer::RewindPrompt>,
    pub focus: Pane,
    pub overlay: Overlay,
    pub prompt_open: bool,
    pub prompt: PromptState,
    pub browser: BrowserState,
    /// Seconds since the Unix epoch, set by the loop each frame (fixed in tests) for ages.
    pub now_unix: u64,
    /// Runs directory, used to build default export paths shown to the user.
    pub runs_dir: PathBuf,
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
            steps: Vec::new(),
            evals: Vec::new(),
            task_evals: Vec::new(),
            last_write_unix: 0,
            last_checkpoint: None,
            alerts: Vec::new(),
            alerts_seen: 0,
            error: None,
            notice: None,
            notice_at: 0,
            notice_warns: false,
            notice_log: std::collections::VecDeque::new(),
            theme_warning: None,
            smoothing: ui.smoothing.clamp(0.0, 0.99),
            log_scale: ui.log_scale,
            full_history: true,
            peak_tflops: ui.peak_tflops,
            auto_pause_on_spike: ui.auto_pause_on_spike,
            spike_policy: Default::default(),
            controls: Default::default(),
            rewind: None,
            focus: Pane::Loss,
            overlay: Overlay::None,
            prompt_open: false,
            prompt: PromptState {
                input: String::new(),
                cursor: 0,
                params: sample,
                selected: 0,
                next_id: 1,
                active: None,
                history: Default::default(),
            },
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
        match event {
            Event::Started { info, .. } => {
                let same_run = self
                    .info
                    .as_ref()
                    .is_some_and(|i| i.run_dir == info.run_dir);
                if !same_run {
                    self.steps.clear();
                    self.evals.clear();
                    self.alerts.clear();
                    self.alerts_seen = 0;
                    self.last_checkpoint = None;
                }
                // A resumed run replays nothing: drop history past the resume point.
                self.steps.retain(|s| s.step <= info.start_step);
                self.evals.retain(|e| e.0 <= info.start_step);
                self.error = None;
                self.saving = false;
                self.state = if self.mode == Mode::Inspect {
                    RunState::Paused
                } else {
                    RunState::Running
                };
                self.info = Some(info);
            }
            Event::Step(s) => {
                if matches!(self.state, RunState::Starting) {
                    self.state = RunState::Running;
                }
                if self.steps.last().is_some_and(|l| l.step >= s.step) {
                    self.steps.retain(|l| l.step < s.step);
                }
                self.steps.push(s);
            }
            Event::Eval { step, val_loss } => self.evals.push((step, val_loss)),
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
            } => {
                self.steps.retain(|s| s.step <= step);
                self.evals.retain(|e| e.0 <= step);
                self.notify(format!(
                    "rewound from step {from_step} to {step}, skipping {skip_batches} steps of data"
                ))
            }
            Event::TaskEval {
                step,
                task,
                metrics,
            } => {
                let summary = crate::units::format_metrics(&metrics);
                self.notify(format!("eval {task} at step {step}: {summary}"));
                self.task_evals.push((step, task, summary));
            }
            Event::CheckpointSaved { step, path } => {
                self.saving = false;
                self.notify(format!("checkpoint saved: {path}"));
                self.last_checkpoint = Some((step, path));
                actions.push(Action::RefreshCheckpoints);
            }
            Event::Paused { .. } => {
                if self.mode != Mode::Inspect {
                    self.state = RunState::Paused;
                }
            }
            Event::Resumed { .. } => self.state = RunState::Running,
            Event::SampleToken { id, text, .. } => {
                if let Some((active, _, out)) = &mut self.prompt.active {
                    if *active == id {
                        out.push_str(&text);
                    }
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
                if self.prompt.active.as_ref().is_some_and(|a| a.0 == id) {
                    self.prompt.active = None;
                }
                self.prompt.history.push(SampleEntry {
                    step,
                    prompt,
                    text,
                    tokens,
                    tokens_per_s,
                });
            }
            Event::Alert { step, kind, detail } => {
                let running = self.state == RunState::Running;
                self.alerts.push(AlertEntry { step, kind, detail });
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
            // Kept by the chronicle timeline (fed above).
            Event::ChronicleSample { .. } | Event::ChronicleTask { .. } => {}
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
        self.prompt.active = None;
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
        self.prompt.active = None;
        if mode == Mode::Inspect {
            self.prompt_open = true;
            self.focus = Pane::Prompt;
        }
    }

    /// Alerts not yet dismissed, newest last.
    pub fn unseen_alerts(&self) -> &[AlertEntry] {
        &self.alerts[self.alerts_seen.min(self.alerts.len())..]
    }

    /// The browser's highlighted checkpoint.
    pub fn selected_checkpoint(&self) -> Option<&CheckpointSummary> {
        self.browser.entries.get(self.browser.selected)
    }

    /// Replace the checkpoint list, keeping the selection on the same path when it survives.
    pub fn set_checkpoints(&mut self, entries: Vec<CheckpointSummary>) {
        let keep = self.selected_checkpoint().map(|c| c.path.clone());
        self.browser.entries = entries;
        self.browser.selected = keep
            .and_then(|p| self.browser.entries.iter().position(|c| c.path == p))
            .unwrap_or(self.browser.selected)
            .min(self.browser.entries.len().saturating_sub(1));
    }
}
