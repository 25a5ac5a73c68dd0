//! The only seam between the engine (which owns every tensor) and its consumers (the TUI,
//! the headless writer, tests). Everything here is plain data so the UI never needs Burn.
//!
//! Split by direction: `commands` (consumer -> engine), `events` (engine -> consumers and
//! `metrics.jsonl`), `run_info` (facts about a run and its checkpoints) and `side` (the side
//! engine's own channel). Every item is re-exported here, so `protocol::X` is the one path.

mod commands;
mod events;
mod run_info;
mod side;

pub use commands::{Command, EngineLauncher, EngineLink, SampleParams, StartFrom};
pub use events::{AlertKind, Event, FailureCounts, FinishReason, MetricsLine, StepStats};
pub use run_info::{CheckpointSummary, RunInfo};
pub use side::{SideCommand, SideEvent, SideLink, SideRequest, SideSpawn};
