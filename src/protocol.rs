//! The only seam between the engine (which owns every tensor) and its consumers (the TUI,
//! the headless writer, tests). Everything here is plain data so the UI never needs Burn.

use serde::{Deserialize, Serialize};

/// Sampling knobs sent with a `Sample` command; kept separate from the run config so a user
/// can change them per prompt without touching the training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleParams {
    /// 0 means greedy decoding.
    pub temperature: f32,
    /// 0 disables top-k filtering.
    pub top_k: usize,
    /// 1.0 disables nucleus filtering.
    pub top_p: f32,
    pub max_tokens: usize,
    pub seed: u64,
}

impl Default for SampleParams {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            max_tokens: 64,
            seed: 1234,
        }
    }
}

/// Requests from a consumer to the engine; the engine drains them between optimizer steps,
/// so none of them can tear a step in half.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Stop before the next step starts; the engine then blocks and uses no CPU.
    Pause,
    Resume,
    /// Write a complete checkpoint at the current step.
    SaveCheckpoint,
    /// Generate from a snapshot of the current weights without touching the training RNGs.
    Sample {
        id: u64,
        prompt: String,
        params: SampleParams,
    },
    CancelSample {
        id: u64,
    },
    /// Change a live hyperparameter (`controls::LIVE_KEYS`) before the next step, e.g.
    /// `key = "train.lr"`, `value = "1e-4"`. The engine validates it like `--set`, applies it,
    /// records it in `metrics.jsonl` and in later checkpoints (`ControlChanged`), or refuses it
    /// with a `ControlRejected` event; it never half-applies.
    Set {
        key: String,
        value: String,
    },
    /// Evaluate the validation loss now, between two steps.
    EvalNow,
    /// Roll the live engine back to `checkpoint` (a checkpoint of this run's lineage) and skip
    /// the next `skip_batches` training steps' worth of batches of its data cursor (each step is
    /// `grad_accum` micro-batches). The continuation is a branch: newer checkpoints are never
    /// overwritten, and the rewind is recorded (`Rewound`, and `rewinds` in `trainer.json`).
    Rewind {
        checkpoint: std::path::PathBuf,
        skip_batches: u64,
    },
    /// End the run; `save` writes a final checkpoint first (even at step 0, so the run stays
    /// resumable). `reason` ends up in the `Finished` event, so a watcher knows who stopped it.
    Stop {
        save: bool,
        reason: FinishReason,
    },
}

/// Static facts about a run, sent once so consumers can label and scale their displays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_name: String,
    pub run_dir: String,
    pub device: String,
    pub params: u64,
    /// Forward + backward FLOPs per trained token, for MFU.
    pub flops_per_token: f64,
    pub tokens_per_step: u64,
    pub max_steps: u64,
    /// The step the run starts from (0 for a fresh run).
    pub start_step: u64,
    /// The fully resolved config as TOML, so a watcher can show exactly what runs.
    pub config_toml: String,
    /// Where the weights came from: "fresh", "resume:<dir>" or "finetune:<dir>".
    pub origin: String,
    /// The device's practical peak (TFLOP/s) from a short GEMM measured at start (CPU), so MFU
    /// needs no hand-set `ui.peak_tflops`; absent on GPUs (a table by name serves them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_peak_tflops: Option<f64>,
}

/// One completed optimizer update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    pub step: u64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    /// Tokens trained on so far, this step included.
    pub tokens: u64,
    pub step_ms: f64,
    pub tokens_per_s: f64,
    /// Data-parallel peers over all nodes (1 = one device); logs written before data
    /// parallelism existed read as 1.
    #[serde(default = "one_peer")]
    pub peers: u32,
    /// Each peer's forward + backward time this step, by peer id, so a straggler shows;
    /// empty on one device.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peer_step_ms: Vec<f64>,
    /// Time this process spent in the gradient all-reduce (waiting for the slowest peer
    /// included); 0 on one device.
    #[serde(default, skip_serializing_if = "is_zero_ms")]
    pub allreduce_ms: f64,
}

fn one_peer() -> u32 {
    1
}

fn is_zero_ms(v: &f64) -> bool {
    *v == 0.0
}

/// What kind of trouble an alert reports, so consumers can decide whether to pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    NonFiniteLoss,
    LossSpike,
    GradExplosion,
    /// A checkpoint could not be written (disk full, permissions); training continues and
    /// the previous checkpoint stays intact.
    CheckpointFailed,
    /// Something the user should know that needs no action (data summary, cleaned leftovers).
    Notice,
    /// Appending to `metrics.jsonl` failed; sent for the first failure and then sparsely
    /// (never one per event), and the run ends non-zero.
    MetricsWriteFailed,
    /// A step failed for a reason other than a non-finite loss (an I/O error reading data, an
    /// internal error); the run ends with an `Error`.
    StepFailed,
}

impl AlertKind {
    /// The words banners and log lines show (never the Rust variant name).
    pub fn label(self) -> &'static str {
        match self {
            AlertKind::NonFiniteLoss => "non-finite loss",
            AlertKind::LossSpike => "loss spike",
            AlertKind::GradExplosion => "gradient explosion",
            AlertKind::CheckpointFailed => "checkpoint failed",
            AlertKind::Notice => "notice",
            AlertKind::MetricsWriteFailed => "metrics write failed",
            AlertKind::StepFailed => "step failed",
        }
    }
}

/// Why a run ended, so a watcher can tell a finished run from an interrupted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    MaxSteps,
    /// Stopped by the user (cockpit quit, `--stop-at-step`, switching runs).
    Stopped,
    Error,
    /// SIGINT or the cockpit's Ctrl-C; the headless exit code is 130.
    Interrupted,
    /// SIGTERM (`kill`, a cluster pre-emption); the headless exit code is 143.
    Terminated,
    /// SIGHUP (a closed ssh session); the headless exit code is 129.
    HangUp,
}

impl FinishReason {
    /// The conventional exit code (128 + signal number) for a signal reason, `None` otherwise.
    pub fn signal_exit_code(self) -> Option<i32> {
        match self {
            FinishReason::Interrupted => Some(130),
            FinishReason::Terminated => Some(143),
            FinishReason::HangUp => Some(129),
            FinishReason::MaxSteps | FinishReason::Stopped | FinishReason::Error => None,
        }
    }
}

/// Writes that failed during a run, carried by `Finished` so every consumer (headless exit
/// code, cockpit, watchers reading `metrics.jsonl`) knows the run's record is incomplete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCounts {
    /// Checkpoint saves that failed (the previous checkpoints stay intact).
    pub checkpoint_saves: u64,
    /// Events that could not be appended to `metrics.jsonl`.
    pub metrics_writes: u64,
}

impl FailureCounts {
    /// True when no write failed.
    pub fn is_clean(&self) -> bool {
        self.checkpoint_saves == 0 && self.metrics_writes == 0
    }
}

/// Everything the engine reports. Each variant carries the step it refers to; serialised as
/// one `metrics.jsonl` line with an `"event"` tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started {
        step: u64,
        #[serde(flatten)]
        info: RunInfo,
    },
    Step(StepStats),
    Eval {
        step: u64,
        val_loss: f64,
    },
    /// A task evaluation (`llite-tui eval`): perplexity or multiple-choice accuracy.
    TaskEval {
        step: u64,
        task: String,
        /// Metric name -> value, e.g. `acc`, `acc_norm`, `ppl`, `n`.
        metrics: std::collections::BTreeMap<String, f64>,
    },
    #[serde(rename = "checkpoint")]
    CheckpointSaved {
        step: u64,
        path: String,
    },
    Paused {
        step: u64,
    },
    Resumed {
        step: u64,
    },
    SampleToken {
        step: u64,
        id: u64,
        text: String,
    },
    #[serde(rename = "sample")]
    SampleDone {
        step: u64,
        id: u64,
        prompt: String,
        text: String,
        tokens: u64,
        tokens_per_s: f64,
    },
    Alert {
        step: u64,
        kind: AlertKind,
        detail: String,
    },
    Error {
        step: u64,
        message: String,
    },
    /// A live control was applied before step `step + 1` runs; replayed on resume.
    ControlChanged {
        step: u64,
        #[serde(flatten)]
        change: crate::controls::ControlSetting,
    },
    /// A `Set` was refused; `message` is the same one-line error `--set` would print.
    ControlRejected {
        step: u64,
        key: String,
        value: String,
        message: String,
    },
    /// The engine rolled back: it now stands at `step` (the checkpoint's) in `run_dir`,
    /// having left `from_step`, and skipped `skip_batches` steps' worth of batches. Logged in
    /// the run it left; the branch's own log starts with the `Started` that follows.
    Rewound {
        step: u64,
        from_step: u64,
        checkpoint: String,
        skip_batches: u64,
        run_dir: String,
    },
    /// `[chronicle]`: one fixed prompt sampled greedily at `step`, so the run's record shows
    /// its text turning from noise into language. New in log format: readers that predate it
    /// skip the line (`parse_metrics_line` yields nothing for an unknown `event`).
    ChronicleSample {
        step: u64,
        /// Position of the prompt in `chronicle.prompts`, so one prompt's samples line up.
        #[serde(default)]
        prompt_index: u64,
        prompt: String,
        text: String,
        #[serde(default)]
        tokens: u64,
    },
    /// `[chronicle]`: a multiple-choice task scored at `step` (`acc`, `acc_norm`, `chance`, `n`).
    ChronicleTask {
        step: u64,
        task: String,
        metrics: std::collections::BTreeMap<String, f64>,
    },
    Finished {
        step: u64,
        reason: FinishReason,
        /// Absent in logs written before failure counting; then no failure was counted.
        #[serde(default)]
        failures: FailureCounts,
    },
}

impl Event {
    /// The optimizer step this event refers to.
    pub fn step(&self) -> u64 {
        match self {
            Event::Step(s) => s.step,
            Event::Started { step, .. }
            | Event::Eval { step, .. }
            | Event::TaskEval { step, .. }
            | Event::CheckpointSaved { step, .. }
            | Event::Paused { step }
            | Event::Resumed { step }
            | Event::SampleToken { step, .. }
            | Event::SampleDone { step, .. }
            | Event::Alert { step, .. }
            | Event::Error { step, .. }
            | Event::ControlChanged { step, .. }
            | Event::ControlRejected { step, .. }
            | Event::Rewound { step, .. }
            | Event::ChronicleSample { step, .. }
            | Event::ChronicleTask { step, .. }
            | Event::Finished { step, .. } => *step,
        }
    }

    /// Streaming tokens are UI-only; everything else belongs in `metrics.jsonl`.
    pub fn is_persistent(&self) -> bool {
        !matches!(self, Event::SampleToken { .. })
    }
}

/// One `metrics.jsonl` line: the event plus its wall-clock time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsLine {
    #[serde(flatten)]
    pub event: Event,
    pub time: String,
}

impl MetricsLine {
    /// Stamp an event with the current time in RFC 3339.
    pub fn now(event: Event) -> Self {
        Self {
            event,
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        }
    }
}

/// How an engine should begin: the cockpit's checkpoint browser and the CLI both speak this.
#[derive(Debug, Clone, PartialEq)]
pub enum StartFrom {
    /// New weights from the config's seed.
    Fresh,
    /// Continue a checkpoint exactly: weights, optimizer moments, schedule, data cursor, RNGs.
    Resume(std::path::PathBuf),
    /// New run (schedule, data, optimizer) starting from a checkpoint's weights.
    FineTune {
        checkpoint: std::path::PathBuf,
        data: Option<std::path::PathBuf>,
    },
    /// Load a checkpoint for sampling only; no training steps are taken.
    Inspect(std::path::PathBuf),
}

/// A live connection to one engine thread.
pub struct EngineLink {
    pub commands: std::sync::mpsc::Sender<Command>,
    pub events: std::sync::mpsc::Receiver<Event>,
    pub join: Option<std::thread::JoinHandle<()>>,
}

/// Starts engines and runs checkpoint actions on behalf of the UI, which cannot touch tensors.
pub trait EngineLauncher: Send {
    /// Spawn an engine thread starting as described.
    fn launch(&self, from: StartFrom) -> anyhow::Result<EngineLink>;
    /// Write a Hugging Face directory for a checkpoint.
    fn export_hf(&self, checkpoint: &std::path::Path, out: &std::path::Path) -> anyhow::Result<()>;
}

/// What a checkpoint browser shows about one checkpoint directory; `error` marks invalid ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointSummary {
    pub path: String,
    pub run_name: String,
    pub step: u64,
    pub tokens: u64,
    pub val_loss: Option<f64>,
    /// The step `val_loss` was measured at, when known (an earlier one than `step` when the
    /// checkpoint was saved between evaluations).
    #[serde(default)]
    pub val_step: Option<u64>,
    pub size_bytes: u64,
    /// Seconds since the Unix epoch when the checkpoint was written.
    pub written_unix: u64,
    /// Why the checkpoint cannot be loaded, if it cannot.
    pub error: Option<String>,
    /// Saved on demand: retention keeps it until a user unpins it.
    #[serde(default)]
    pub pinned: bool,
}

/// One generation asked of the side engine: a stored checkpoint sampled in its own thread, so
/// the training engine (if any) keeps stepping and its RNGs stay untouched.
#[derive(Debug, Clone, PartialEq)]
pub struct SideRequest {
    pub id: u64,
    pub checkpoint: std::path::PathBuf,
    /// The user's text; the checkpoint's chat template (if any) is applied as `sample` does.
    pub prompt: String,
    pub params: SampleParams,
}

/// UI -> side engine. One generation runs at a time: a second `Sample` while one runs is
/// answered with `SideEvent::Failed`, never queued behind it.
#[derive(Debug, Clone, PartialEq)]
pub enum SideCommand {
    Sample(SideRequest),
    Cancel { id: u64 },
}

/// Side engine -> UI. A separate enum from `Event` so side samples are never mistaken for
/// samples of the live weights, nor written to a run's `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq)]
pub enum SideEvent {
    /// The checkpoint is loaded (`cached`: kept from the previous request) and generation
    /// starts; `step` is the checkpoint's.
    Started {
        id: u64,
        checkpoint: String,
        step: u64,
        load_ms: f64,
        cached: bool,
    },
    Token {
        id: u64,
        text: String,
    },
    Done {
        id: u64,
        step: u64,
        prompt: String,
        text: String,
        tokens: u64,
        tokens_per_s: f64,
        cancelled: bool,
    },
    /// The request could not run (load refused, busy, bad prompt): one line naming why.
    Failed {
        id: u64,
        message: String,
    },
    /// The loaded model was dropped after the idle time, so memory goes back to training.
    Unloaded {
        checkpoint: String,
    },
}

/// A live connection to a side engine thread; dropping `commands` ends it (a generation in
/// flight is cancelled).
pub struct SideLink {
    pub commands: std::sync::mpsc::Sender<SideCommand>,
    pub events: std::sync::mpsc::Receiver<SideEvent>,
    pub join: Option<std::thread::JoinHandle<()>>,
}

/// Starts a side engine that drops its model after `idle` without requests. A plain function
/// handed to the UI by the binary, because the engine side (Burn) lives outside `tui/`.
pub type SideSpawn = fn(idle: std::time::Duration) -> SideLink;
impl CheckpointSummary {
    /// The val loss as browsers show it: "2.6000", or "2.6000 @ 30" when it was measured at an
    /// earlier step than the checkpoint's; None without one.
    pub fn val_loss_label(&self) -> Option<String> {
        let v = self.val_loss?;
        Some(match self.val_step {
            Some(at) if at != self.step => format!("{v:.4} @ {at}"),
            _ => format!("{v:.4}"),
        })
    }
}
