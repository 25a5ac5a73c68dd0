//! llite-tui: a terminal cockpit for training LLaMa-style language models with Burn.
//!
//! The engine (`train`) owns every tensor and runs in its own thread; consumers (the TUI in
//! `tui`, the headless writer in `headless`) talk to it only through `protocol`.

pub mod alloc_tuning;
pub mod bench;
pub mod config;
#[cfg(unix)]
pub mod control;
pub mod controls;
pub mod data;
pub mod eval;
pub mod exit;
pub mod headless;
pub mod interop;
pub mod memory_plan;
pub mod model;
pub mod progress;
pub mod protocol;
pub mod resources;
pub mod sample;
pub mod signals;
pub mod spike_policy;
pub mod store;
pub mod sys;
pub mod train;
pub mod tui;
pub mod units;
