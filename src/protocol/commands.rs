//! Consumer -> engine: the `Command`s drained between steps, how an engine starts
//! (`StartFrom`) and the handles that start and reach one (`EngineLauncher`, `EngineLink`).

use super::{Event, FinishReason};
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
