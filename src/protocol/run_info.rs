//! Plain facts about a run and its checkpoints (`RunInfo`, `CheckpointSummary`), shown by
//! every consumer without loading a tensor.

use serde::{Deserialize, Serialize};

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
