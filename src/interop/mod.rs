//! Formats shared with the Hugging Face ecosystem.

pub mod export;
pub mod hf;
pub mod model_dir;
