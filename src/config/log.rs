//! `[log]`: where a run's metrics go besides `metrics.jsonl`.

use serde::{Deserialize, Serialize};

/// Where a run's metrics are written besides `metrics.jsonl` (which is always written).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Also write TensorBoard event files into the run directory (opt-in: most runs are
    /// watched in the cockpit, and the file duplicates `metrics.jsonl`).
    pub tensorboard: bool,
}
