//! The training engine: its thread, optimizer, schedule, checkpoints and health metrics.

pub mod backward;
mod chronicle;
pub mod emitter;
pub mod engine;
pub mod metrics;
pub mod optim;
pub mod parallel;
pub mod peak;
pub mod precision;
pub mod recompute;
pub mod resume;
mod rewind;
pub mod run_data;
mod samplers;
mod saving;
pub mod schedule;
pub mod session;
pub mod side;
mod steering;
pub mod trainer;
