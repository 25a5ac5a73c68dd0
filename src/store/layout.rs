//! Names and places of a run's files (`run.toml`, `metrics.jsonl`, `checkpoints/step-N/`):
//! the one definition every reader and writer uses, so no path is built by hand elsewhere.

use std::path::{Path, PathBuf};

/// Bumped whenever `trainer.json` or the checkpoint file set changes incompatibly. 2: every
/// file's size and blake3 digest recorded in `trainer.json` (1 still loads, unverified).
pub const CHECKPOINT_FORMAT_VERSION: u32 = 2;
/// Weights in Hugging Face LlamaForCausalLM naming.
pub const MODEL_FILE: &str = "model.safetensors";
/// AdamW moments, keyed `<hf name>.exp_avg` / `<hf name>.exp_avg_sq`.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// transformers' LlamaConfig.
pub const HF_CONFIG_FILE: &str = "config.json";
/// Everything else needed to continue exactly.
pub const TRAINER_FILE: &str = "trainer.json";
/// The tokenizer travels with every checkpoint so a checkpoint is self-contained.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Directory name for a checkpoint at `step`; zero-padded so names sort by step.
pub fn checkpoint_dir_name(step: u64) -> String {
    format!("step-{step:08}")
}

/// The `checkpoints/` folder of a run.
pub fn checkpoints_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoints")
}

/// True for `step-NNNNNNNN` (a finished checkpoint), false for `.partial` and strangers.
pub fn is_final_checkpoint_name(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("step-"))
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Seconds since the Unix epoch, for `written_unix` fields.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
