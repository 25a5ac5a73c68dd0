//! Whether a model fits in this machine's memory, checked before anything is allocated: an
//! absurd config must end in one line naming the need and the supply, not an allocator abort.
//! Burn-free, so session preparation and every command share it. Hand-written because it is
//! one file read (`/proc/meminfo`); a system-info crate would pull in far more than that.

use crate::config::{ModelConfig, RunConfig};
use crate::memory_plan::{plan_run, precision_name, PlanDevice, RunShape, HOST_PROCESS_OVERHEAD};
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

/// Refuse to train a run whose planned peak (model state plus activations at its batch, see
/// [`crate::memory_plan`]) exceeds the host memory available, before the model is built. Only
/// host training is checked here: a GPU's memory is known to `info --device` when queried.
pub fn ensure_training_fits(config: &RunConfig, on_host: bool) -> Result<()> {
    if !on_host {
        return Ok(());
    }
    training_fits_in(config, available_memory())
}

/// [`ensure_training_fits`] with the supply passed in, so it is testable on any machine.
fn training_fits_in(config: &RunConfig, available: Option<u64>) -> Result<()> {
    let Some(available) = available else {
        return Ok(());
    };
    let shape = RunShape::of(config);
    let per_device = plan_run(config, PlanDevice::Host);
    let need = per_device
        .and_then(|p| p.total().checked_mul(shape.peers.max(1) as u64))
        .and_then(|n| n.checked_add(HOST_PROCESS_OVERHEAD))
        .unwrap_or(u64::MAX);
    if need <= available {
        return Ok(());
    }
    let what = match per_device {
        Some(p) => format!(
            "estimated peak: model state {} + activations and logits {} at {} rows x {} tokens, {}{}{}",
            format_bytes(p.model_state()),
            format_bytes(p.batch_state()),
            config.train.batch_size,
            config.train.seq_len,
            precision_name(shape.precision),
            if shape.activation_checkpointing {
                ", activation checkpointing"
            } else {
                ""
            },
            if shape.peers > 1 {
                format!(", x{} peers on this host", shape.peers)
            } else {
                String::new()
            }
        ),
        None => "sizes overflow 64 bits".into(),
    };
    ensure_fits(need, &what, Some(available))
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
            "model needs ~{} ({what}), this machine has {} available; use a smaller model or batch (see `llite-tui info`)",
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

    /// The training check uses the whole plan: a config whose model state alone fits is still
    /// refused when its batch's activations do not, with both parts named.
    #[test]
    fn training_refusal_counts_activations() {
        let mut cfg = crate::config::RunConfig::default();
        cfg.train.batch_size = 64;
        cfg.train.seq_len = 256;
        let p = plan_run(&cfg, PlanDevice::Host).unwrap();
        assert!(p.batch_state() > p.model_state());
        let available = Some(p.model_state() + p.batch_state() / 2);
        let err = training_fits_in(&cfg, available).unwrap_err().to_string();
        assert!(
            err.contains("activations and logits") && err.contains("64 rows x 256 tokens"),
            "{err}"
        );
        assert!(training_fits_in(&cfg, None).is_ok());
        cfg.train.batch_size = 1;
        assert!(training_fits_in(&cfg, available).is_ok());
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
