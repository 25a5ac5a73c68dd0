//! `[checkpoint]`: when checkpoints are written and which are kept.

use serde::{Deserialize, Serialize};

/// When checkpoints are written and which are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Steps between checkpoints; 0 = only on demand and at the end.
    pub every: u64,
    /// Keep the newest N checkpoints (0 keeps all).
    pub keep_last: usize,
    /// Also keep every checkpoint whose step is a multiple of this (0 = none).
    pub keep_every: u64,
    /// Write checkpoints on a background thread from a host-memory snapshot (the step loop
    /// stalls only for the copy); false writes them in the step loop, holding no second copy
    /// of weights and moments while a write is in flight.
    #[serde(rename = "async")]
    pub async_write: bool,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            every: 500,
            keep_last: 3,
            keep_every: 0,
            async_write: true,
        }
    }
}
