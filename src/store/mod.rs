//! The Burn-free home of a run's files: layout and naming, trainer state, checkpoint
//! write/read/verify, listing and retention, the metrics log. `train`, `interop`, `tui` and the
//! commands all go through it, so each integrity rule is enforced in one place.

pub mod checkpoint;
pub mod ckpt_writer;
pub mod digest;
pub mod faults;
pub mod fsio;
pub mod hf_check;
pub mod hf_layout;
pub mod history;
pub mod latest;
pub mod layout;
pub mod lineage;
pub mod listing;
pub mod lock;
pub mod mapped;
pub mod metrics_csv;
pub mod metrics_log;
pub mod outputs;
pub mod pin;
pub mod run_cells;
pub mod run_curves;
pub mod run_labels;
pub mod run_tree;
pub mod runs;
pub mod safetensors_io;
pub mod structure;
pub mod tensors;
pub mod tfevents;
pub mod trainer_state;

pub use tensors::NamedTensor;
