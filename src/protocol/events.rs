//! Engine -> consumers: the `Event`s of a run, the step statistics and alert kinds they carry,
//! and the `metrics.jsonl` line they are written as.

use super::RunInfo;
use serde::{Deserialize, Serialize};

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
