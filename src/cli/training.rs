//! Options of the commands that train or show a training run: the shared preset flags
//! (`ConfigArgs`), the cockpit's and `train`'s flags (`RunArgs`) and `watch`'s.

use super::ParallelArgs;
use clap::Args;
use std::path::PathBuf;

/// Where a run's config comes from: shared by the commands that read a preset.
#[derive(Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// TOML preset to start from (default: the embedded tiny preset, configs/tiny.toml; a
    /// .jsonl --finetune uses configs/sft.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override one config key (repeatable; none by default; unknown keys are errors; keys:
    /// docs/CONFIG.md).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// Options of the commands that train: the cockpit and `train`. Nothing else accepts them.
#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    #[command(flatten)]
    pub preset: ConfigArgs,
    /// Shortcut for --set train.max_steps=N (default: the preset's, 2000 for tiny).
    #[arg(long, value_name = "N")]
    pub max_steps: Option<u64>,
    /// Where runs live (default: the platform data directory, e.g.
    /// ~/.local/share/llite-tui/runs).
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    /// Name of a new run's directory, one path component (default: <preset>-YYYYMMDD-HHMMSS in UTC,
    /// e.g. tiny-20261130-051233;
    /// a fine-tune: <parent>-ft-YYYYMMDD-HHMMSS).
    #[arg(long, value_name = "NAME")]
    pub run_name: Option<String>,
    /// Continue a checkpoint exactly (weights, optimizer, schedule, data cursor, RNG). A run
    /// directory or RUN_DIR/latest means its newest valid checkpoint (default: a new run).
    #[arg(long, value_name = "CKPT", conflicts_with = "finetune")]
    pub resume: Option<PathBuf>,
    /// Start a new run from a checkpoint's weights (a run directory or RUN_DIR/latest: its
    /// newest valid checkpoint; default: fresh weights).
    #[arg(long, value_name = "CKPT")]
    pub finetune: Option<PathBuf>,
    /// Data for --finetune: a text file, a shard directory or instruction .jsonl (default:
    /// the checkpoint's own corpus).
    #[arg(long, value_name = "PATH", requires = "finetune")]
    pub data: Option<PathBuf>,
    /// With --resume of a checkpoint older than the run's newest: continue in place, moving the
    /// later checkpoints and metrics lines into <run>/discarded/ (default: branch a new run).
    #[arg(long, requires = "resume")]
    pub discard_later: bool,
    /// With --resume: load weights only and start AdamW from zero (to see the spike it causes).
    #[arg(long, requires = "resume")]
    pub fresh_optimizer: bool,
    /// Stop with a checkpoint at this step without changing the schedule (time-sliced jobs;
    /// default: run to max_steps).
    #[arg(long, value_name = "STEP")]
    pub stop_at_step: Option<u64>,
    /// cpu, cuda or cuda:N (cuda needs a build with --features cuda).
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    pub device: String,
    #[command(flatten)]
    pub parallel: ParallelArgs,
    /// Never draw the cockpit; print progress instead (implied when stdin or stdout is not a
    /// terminal).
    #[arg(long)]
    pub headless: bool,
    /// Headless without a terminal on stderr: print a progress line every N steps (and the
    /// first and the last); on a terminal a progress bar is drawn instead.
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub log_every: u64,
    /// Cockpit theme: a file stem in themes/ (default: the preset's ui.theme, "default").
    #[arg(long, value_name = "NAME")]
    pub theme: Option<String>,
}

/// `watch` options.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Run directories (<runs>/<run-name>/ with metrics.jsonl) or a runs root: the newest
    /// running run among them is followed (else the newest written); `R` in the cockpit lists
    /// the others and Enter switches to one.
    #[arg(value_name = "RUN_DIR", required = true, num_args = 1..)]
    pub run_dirs: Vec<PathBuf>,
    /// A preset whose [ui] and [sample] sections the cockpit uses (default: the embedded one).
    #[command(flatten)]
    pub preset: ConfigArgs,
    /// Where the checkpoint browser looks (default: the platform data directory).
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    /// Cockpit theme: a file stem in themes/ (default: the preset's ui.theme, "default").
    #[arg(long, value_name = "NAME")]
    pub theme: Option<String>,
    /// Only watch, even when the run has a control socket (default: steer through it).
    #[arg(long)]
    pub read_only: bool,
}
