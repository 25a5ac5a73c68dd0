//! Names and places of a run's files (`run.toml`, `metrics.jsonl`, `checkpoints/step-N/`):
//! the one definition every reader and writer uses, so no path is built by hand elsewhere.

use std::path::{Path, PathBuf};

/// Bumped whenever `trainer.json` or the checkpoint file set changes incompatibly. 2: every
/// file's size and blake3 digest recorded in `trainer.json` (1 still loads, unverified).
/// 3: live control changes and rewinds recorded (`controls`, `rewinds`); an older build would
/// ignore them and replay a steered run wrongly, so it must refuse (2 still loads: none).
pub const CHECKPOINT_FORMAT_VERSION: u32 = 3;
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

/// The run's event log, appended by the engine and followed by watchers.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The run's resolved config, written when a run starts.
pub const RUN_CONFIG_FILE: &str = "run.toml";
/// The advisory lock a training process holds on its run directory (see `store::lock`).
pub const LOCK_FILE: &str = "lock";
/// Where a `--discard-later` resume and orphaned metrics lines are moved, never deleted.
pub const DISCARDED_DIR: &str = "discarded";

/// `<run>/metrics.jsonl`.
pub fn metrics_path(run_dir: &Path) -> PathBuf {
    run_dir.join(METRICS_FILE)
}

/// `<run>/lock`.
pub fn lock_path(run_dir: &Path) -> PathBuf {
    run_dir.join(LOCK_FILE)
}

/// The run directory a checkpoint at `<run>/checkpoints/step-N` belongs to (its grandparent);
/// callers that need to know whether it really is one use `store::history::place_of`.
pub fn run_dir_of(ckpt: &Path) -> PathBuf {
    ckpt.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| ckpt.to_path_buf())
}

/// The step of a `step-NNNNNNNN` directory name (None for leftovers and strangers).
pub fn checkpoint_step(path: &Path) -> Option<u64> {
    if !is_final_checkpoint_name(path) {
        return None;
    }
    path.file_name()?
        .to_str()?
        .strip_prefix("step-")?
        .parse()
        .ok()
}

/// A new run's default name: what it is (a preset's name, `<parent>-ft` for a fine-tune)
/// plus its UTC start time, `tiny-20261130-051233`. Runs named `run-YYYYMMDD-HHMMSS` by older
/// builds keep their names; nothing parses them.
pub fn default_run_name(what: &str, at: std::time::SystemTime) -> String {
    let now = humantime::format_rfc3339_seconds(at).to_string();
    let stamp: String = now
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(14)
        .collect();
    format!("{what}-{}-{}", &stamp[..8], &stamp[8..])
}

/// Longest run name accepted: one file name on every common filesystem.
pub const MAX_RUN_NAME_BYTES: usize = 255;

/// A run name must be exactly one path component, so `runs_dir.join(name)` never leaves the
/// runs directory: not empty, not `.`/`..`, no `/` or `\`, no NUL or control characters, at
/// most 255 bytes. `what` says where the name came from, for the error line.
pub fn validate_run_name(name: &str, what: &str) -> anyhow::Result<()> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name == "." || name == ".." {
        Some("it names a directory link, not a run")
    } else if name.contains('/') || name.contains('\\') {
        Some("it contains a path separator; a run name is one directory name")
    } else if name.chars().any(char::is_control) {
        Some("it contains a control character")
    } else if name.trim() != name {
        Some("it starts or ends with white space, which no one can see in a listing")
    } else if name.len() > MAX_RUN_NAME_BYTES {
        Some("it is longer than 255 bytes")
    } else {
        None
    };
    match why {
        Some(why) => anyhow::bail!("{what} {name:?} is not a valid run name: {why}"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_are_one_path_component() {
        for bad in [
            "", ".", "..", "../x", "a/b", "a\\b", "a\u{7}b", "a\0b", "x\n", " ", " a", "a\u{a0}",
        ] {
            let e = validate_run_name(bad, "--run-name")
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("--run-name "), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
        assert!(validate_run_name(&"x".repeat(256), "--run-name").is_err());
        for good in [
            "run-1",
            "Llama 3.2 1B",
            "a.b",
            "..x",
            "ünï",
            &"x".repeat(255),
        ] {
            validate_run_name(good, "--run-name").unwrap();
        }
    }

    #[test]
    fn default_names_say_what_and_when() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000);
        let n = default_run_name("tiny", at);
        assert_eq!(n, "tiny-20261118-110640");
        validate_run_name(&n, "derived run name").unwrap();
    }

    #[test]
    fn checkpoint_steps_parse_only_final_names() {
        assert_eq!(
            checkpoint_step(Path::new("r/checkpoints/step-00000012")),
            Some(12)
        );
        assert_eq!(checkpoint_step(Path::new("step-00000012.old")), None);
        assert_eq!(checkpoint_step(Path::new("step-")), None);
    }
}
