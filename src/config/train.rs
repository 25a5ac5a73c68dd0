//! `[train]`: optimisation, schedule, spike policy and the backward's memory/precision plan.

use serde::{Deserialize, Serialize};

/// Optimisation and schedule; AdamW defaults are the seed report's (0.9/0.95, clip 1.0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub seed: u64,
    pub batch_size: usize,
    pub seq_len: usize,
    pub grad_accum: usize,
    pub max_steps: u64,
    pub lr: f64,
    pub min_lr: f64,
    pub warmup_steps: u64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub grad_clip: f64,
    pub eval_every: u64,
    pub eval_batches: usize,
    /// Worker threads for the CPU backend; 0 lets the backend decide (all cores).
    pub threads: usize,
    /// What the consumer (cockpit or headless runner) does on a loss spike or gradient
    /// explosion; the engine itself only alerts.
    pub on_spike: OnSpike,
    /// Steps' worth of batches an automatic rewind skips; 0 = those from the checkpoint to
    /// the spike, the spike's own included (the batches that led to it).
    pub rewind_skip: u64,
    /// Automatic rewinds allowed in one process; past it a spike is only alerted.
    pub max_auto_rewinds: u32,
    /// Keep only each block's input in the forward pass and recompute the block in the
    /// backward (`train/recompute.rs`): less activation memory for about one more forward.
    pub activation_checkpointing: bool,
    /// Dtype of the forward/backward compute; weights and AdamW moments stay f32
    /// (`train/precision.rs`).
    pub precision: Precision,
}

/// `[train] precision`: the dtype activations and gradients are computed in. Master weights
/// and optimizer moments are f32 whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    Bf16,
    F16,
}

/// `[train] on_spike`: alert only, pause, or rewind to the newest checkpoint before the spike
/// and skip past the batches that caused it (the PaLM remedy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnSpike {
    #[default]
    Alert,
    Pause,
    Rewind,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed: 1337,
            batch_size: 8,
            seq_len: 128,
            grad_accum: 1,
            max_steps: 2000,
            lr: 1e-3,
            min_lr: 1e-4,
            warmup_steps: 50,
            weight_decay: 0.1,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            grad_clip: 1.0,
            eval_every: 100,
            eval_batches: 8,
            threads: 0,
            on_spike: OnSpike::Alert,
            rewind_skip: 0,
            max_auto_rewinds: 3,
            activation_checkpointing: false,
            precision: Precision::F32,
        }
    }
}
