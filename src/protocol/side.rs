//! The side engine's own channel (`SideCommand` / `SideEvent`): sampling a stored checkpoint
//! while training continues, never mixed with the live engine's events.

use super::SampleParams;

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
