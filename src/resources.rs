//! Whether a model fits in this machine's memory, checked before anything is allocated: an
//! absurd config must end in one line naming the need and the supply, not an allocator abort.
//! Burn-free, so session preparation and every command share it. Hand-written because it is
//! one file read (`/proc/meminfo`); a system-info crate would pull in far more than that.

use crate::config::ModelConfig;
use crate::model::stats::{checked_memory_floor, format_bytes};
use anyhow::{bail, Result};

/// Environment variable that replaces the detected available memory (bytes): for machines
/// whose real limit `/proc/meminfo` does not show (a cgroup, a batch scheduler), and for tests.
pub const MEM_AVAILABLE_ENV: &str = "LLITE_MEM_AVAILABLE";

/// Bytes of memory available to a new allocation: `LLITE_MEM_AVAILABLE` if set, else Linux's
/// `MemAvailable`; `None` where unknown (then no check is made rather than a guess).
pub fn available_memory() -> Option<u64> {
    if let Ok(v) = std::env::var(MEM_AVAILABLE_ENV) {
        return v.trim().parse().ok();
    }
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_available(&text)
}

fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Refuse to train a model whose f32 AdamW floor (weights, grads, two moments) exceeds the
/// memory available, before the model is built.
pub fn ensure_training_fits(m: &ModelConfig) -> Result<()> {
    let need = checked_memory_floor(m)
        .map(|f| f.total())
        .unwrap_or(u64::MAX);
    ensure_fits(
        need,
        "weights + grads + AdamW moments, before activations",
        available_memory(),
    )
}

/// Refuse to load a model for sampling, evaluation, export or import when its f32 weights
/// alone exceed the memory available.
pub fn ensure_weights_fit(m: &ModelConfig) -> Result<()> {
    let need = checked_memory_floor(m)
        .map(|f| f.weights)
        .unwrap_or(u64::MAX);
    ensure_fits(need, "f32 weights", available_memory())
}

/// [`ensure_weights_fit`] for a checkpoint directory, reading only its `trainer.json` (whose
/// config is validated first), so a hostile or oversized checkpoint is refused before its
/// tensors are read.
pub fn ensure_checkpoint_fits(ckpt_dir: &std::path::Path) -> Result<()> {
    let trainer = crate::store::trainer_state::read_trainer_state(ckpt_dir)?;
    let origin = ckpt_dir.join(crate::store::layout::TRAINER_FILE);
    let config = crate::config::RunConfig::from_toml_str(
        &trainer.config_toml,
        &origin.display().to_string(),
    )?;
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("{}: {e}", origin.display()))?;
    ensure_weights_fit(&config.model)
}

/// The comparison itself, with the supply passed in so it is testable on any machine.
pub fn ensure_fits(need: u64, what: &str, available: Option<u64>) -> Result<()> {
    match available {
        Some(have) if need > have => bail!(
            "model needs ~{} ({what}), this machine has {} available; use a smaller model (see `llite-tui info`)",
            format_bytes(need),
            format_bytes(have)
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_parsed() {
        let text = "MemTotal:       32000000 kB\nMemFree: 1 kB\nMemAvailable:   23841096 kB\n";
        assert_eq!(parse_mem_available(text), Some(23841096 * 1024));
        assert_eq!(parse_mem_available("MemTotal: 5 kB\n"), None);
    }

    #[test]
    fn dmas_floor_is_refused_on_24_gib_with_both_figures() {
        let path = format!("{}/configs/dmas-1.7b.toml", env!("CARGO_MANIFEST_DIR"));
        let cfg = crate::config::RunConfig::load(Some(std::path::Path::new(&path))).unwrap();
        let need = checked_memory_floor(&cfg.model).unwrap().total();
        let err = ensure_fits(need, "weights + grads + AdamW moments", Some(24 << 30))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("needs ~25.57 GiB") && err.contains("has 24.00 GiB available"),
            "{err}"
        );
        assert!(ensure_fits(need, "x", Some(32 << 30)).is_ok());
        assert!(ensure_fits(need, "x", None).is_ok());
    }
}
