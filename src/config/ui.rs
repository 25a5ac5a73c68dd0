//! `[ui]`: cockpit preferences (read by consumers only, never by the engine).

use serde::{Deserialize, Serialize};

/// Cockpit preferences; stored with the run so a watcher shows it the same way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    pub theme: String,
    /// EMA factor for the train-loss curve, in [0, 1).
    pub smoothing: f64,
    pub log_scale: bool,
    /// Peak FLOP/s of the device in TFLOP/s, for MFU; 0 hides MFU.
    pub peak_tflops: f64,
    pub auto_pause_on_spike: bool,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            theme: "default".into(),
            smoothing: 0.9,
            log_scale: false,
            peak_tflops: 0.0,
            auto_pause_on_spike: false,
        }
    }
}
