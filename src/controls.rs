//! Live controls: the hyperparameters a user may change in a running engine, and the one
//! validation every channel (cockpit control pane, `llite-tui ctl ... set`, the engine itself)
//! goes through, so a live change is refused with the same words as `--set` at start-up.
//! Burn-free: the UI and the control endpoint use it without touching tensors.

use crate::config::RunConfig;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The config keys that may change between two steps of a live run. Everything else (shapes,
/// data, seeds, batch size) would make the run a different run, so it is refused.
pub const LIVE_KEYS: &[&str] = &[
    "train.lr",
    "train.min_lr",
    "train.grad_clip",
    "train.weight_decay",
    "train.eval_every",
    "checkpoint.every",
];

/// A control value as written in `metrics.jsonl` and `trainer.json`: counts stay integers
/// (`"new": 50`), rates stay floats (`"new": 0.0003`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ControlValue {
    Count(u64),
    Real(f64),
}

impl std::fmt::Display for ControlValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlValue::Count(n) => write!(f, "{n}"),
            ControlValue::Real(x) => write!(f, "{x}"),
        }
    }
}

/// One accepted change of a live key, before the engine stamps it with a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlSetting {
    /// A member of [`LIVE_KEYS`], e.g. `train.lr`.
    pub key: String,
    pub old: ControlValue,
    pub new: ControlValue,
}

/// An applied change stamped with the step it was applied after (`trainer.step` at the time):
/// kept in `trainer.json` so a resume continues with it, and replayed at the same step by a
/// resume from an earlier checkpoint, so a steered run stays bit-for-bit reproducible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlRecord {
    /// Steps completed when the change took effect; it first affects step `step + 1`.
    pub step: u64,
    #[serde(flatten)]
    pub change: ControlSetting,
}

/// A rewind in a run's lineage, kept in the branch's `trainer.json` so its history says where
/// it came from and which batches it skipped (the data cursor already reflects the skip).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewindRecord {
    /// The checkpoint's step: where the branch starts.
    pub step: u64,
    /// The step the engine had reached when it rewound.
    pub from_step: u64,
    /// The checkpoint rolled back to.
    pub checkpoint: String,
    /// Training steps' worth of batches skipped after the checkpoint.
    pub skip_batches: u64,
}

/// The current value of a live key in `config`.
pub fn current_value(config: &RunConfig, key: &str) -> Result<ControlValue> {
    Ok(match key {
        "train.lr" => ControlValue::Real(config.train.lr),
        "train.min_lr" => ControlValue::Real(config.train.min_lr),
        "train.grad_clip" => ControlValue::Real(config.train.grad_clip),
        "train.weight_decay" => ControlValue::Real(config.train.weight_decay),
        "train.eval_every" => ControlValue::Count(config.train.eval_every),
        "checkpoint.every" => ControlValue::Count(config.checkpoint.every),
        other => bail!(
            "set {other}: not a live key (a running run can change: {})",
            LIVE_KEYS.join(", ")
        ),
    })
}

/// Check a `key=value` request against `config` exactly as `--set` would (same parser, same
/// validation, same messages), and refuse keys that cannot change mid-run. Returns the change
/// and the config with it applied; `config` itself is untouched.
pub fn validate_setting(config: &RunConfig, item: &str) -> Result<(ControlSetting, RunConfig)> {
    let (key, _) = item
        .split_once('=')
        .with_context(|| format!("set {item}: expected key=value, e.g. train.lr=3e-4"))?;
    let key = key.trim();
    let old = current_value(config, key)?;
    let mut changed = config.clone();
    changed.apply_overrides(&[item.trim().to_string()])?;
    changed.validate()?;
    let new = current_value(&changed, key)?;
    Ok((
        ControlSetting {
            key: key.to_string(),
            old,
            new,
        },
        changed,
    ))
}

/// Apply an already validated setting to `config` (the engine replaying a recorded change).
pub fn apply_setting(config: &mut RunConfig, setting: &ControlSetting) -> Result<()> {
    let (_, changed) = validate_setting(config, &format!("{}={}", setting.key, setting.new))?;
    *config = changed;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_keys_change_and_keep_their_types() {
        let cfg = RunConfig::default();
        let (s, changed) = validate_setting(&cfg, "train.lr=1e-4").unwrap();
        assert_eq!(s.key, "train.lr");
        assert_eq!(s.old, ControlValue::Real(cfg.train.lr));
        assert_eq!(s.new, ControlValue::Real(1e-4));
        assert_eq!(changed.train.lr, 1e-4);
        assert_eq!(
            cfg.train.lr,
            RunConfig::default().train.lr,
            "input untouched"
        );
        let (s, _) = validate_setting(&cfg, "checkpoint.every=50").unwrap();
        assert_eq!(s.new, ControlValue::Count(50));
        assert_eq!(serde_json::to_string(&s.new).unwrap(), "50");
        let mut replay = cfg.clone();
        apply_setting(&mut replay, &s).unwrap();
        assert_eq!(replay.checkpoint.every, 50);
    }

    #[test]
    fn refusals_name_the_problem() {
        let cfg = RunConfig::default();
        let e = validate_setting(&cfg, "train.batch_size=4").unwrap_err();
        assert!(format!("{e:#}").contains("not a live key"), "{e:#}");
        let e = validate_setting(&cfg, "train.lr").unwrap_err();
        assert!(format!("{e:#}").contains("expected key=value"), "{e:#}");
        let e = validate_setting(&cfg, "train.lr=-1").unwrap_err();
        assert!(format!("{e:#}").contains("train.lr"), "{e:#}");
        let e = validate_setting(&cfg, "train.grad_clip=abc").unwrap_err();
        assert!(format!("{e:#}").contains("--set"), "{e:#}");
    }
}
