//! The training engine: its thread, optimizer, schedule, checkpoints and health metrics.

pub mod emitter;
pub mod engine;
pub mod metrics;
pub mod optim;
pub mod parallel;
pub mod resume;
mod rewind;
pub mod run_data;
mod samplers;
pub mod schedule;
pub mod session;
mod steering;
pub mod trainer;
