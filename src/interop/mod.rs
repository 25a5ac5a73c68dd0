//! Formats shared with the Hugging Face ecosystem.

pub mod export;
pub mod hf;
pub mod hf_write;
pub mod model_dir;
pub mod template_ids;
