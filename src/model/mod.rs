//! The LLaMa decoder and the arithmetic about it (parameter counts, FLOPs, memory) that the
//! CLI and the cockpit show before a single tensor exists.

pub mod fused;
pub mod init;
pub mod kv_cache;
pub mod llama;
pub mod load;
pub mod params;
pub mod rope;
pub mod stats;

pub use llama::Llama;
