//! Options of the commands that look across a run's records: `runs`, `ckpt` and `metrics`.

use crate::cli_help as help;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `runs` options.
#[derive(Args, Debug)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub command: Option<RunsCommand>,
    /// The runs root to list (default: the platform data directory, e.g.
    /// ~/.local/share/llite-tui/runs).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Draw the lineage tree (branches, rewinds and fine-tunes under their parent) instead of
    /// the flat table (default: the table, newest first).
    #[arg(long)]
    pub tree: bool,
}

/// `runs` subcommands: labels written to the run's labels.toml (the directory keeps its name).
#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// Give a run a display name (its directory keeps its name).
    #[command(after_help = help::RUNS)]
    Rename {
        /// A run directory, or a run name in the default runs directory.
        run: PathBuf,
        /// The new display name (one line, no path separators).
        name: String,
    },
    /// Add tags to a run (or remove them with --untag).
    #[command(after_help = help::RUNS)]
    Tag {
        /// A run directory, or a run name in the default runs directory.
        run: PathBuf,
        /// Tags: one word each, no spaces or commas.
        #[arg(required = true)]
        tags: Vec<String>,
        /// Remove these tags instead of adding them (default: add).
        #[arg(long)]
        untag: bool,
    },
}

/// `ckpt` subcommands.
#[derive(Subcommand, Debug)]
pub enum CkptCommand {
    /// List a run's checkpoints with step, tokens, val loss, size, age; flags invalid ones
    /// (tensor names, shapes, dtypes and sizes against the config) and exits 1 if any is.
    #[command(after_help = help::CKPT_LS)]
    Ls {
        /// The run directory (<runs>/<run-name>/, holding checkpoints/), or a runs root: then
        /// every run's checkpoints, one table per run.
        run_dir: PathBuf,
        /// Also check every file's blake3 digest (reads every byte; reports MiB/s).
        #[arg(long)]
        verify: bool,
    },
}

/// `metrics` subcommands.
#[derive(Subcommand, Debug)]
pub enum MetricsCommand {
    /// Export a run's metrics.jsonl as a table, one row per step: step, tokens, time,
    /// elapsed_s, train_loss, val_loss, lr, grad_norm, tokens_per_s, step_ms.
    #[command(after_help = help::METRICS_EXPORT)]
    Export {
        /// The run directory (<runs>/<run-name>/, holding metrics.jsonl).
        run_dir: PathBuf,
        /// Write CSV (the one format so far).
        #[arg(long, required = true)]
        csv: bool,
        /// The file to write (default: RUN_DIR/metrics.csv). Written atomically.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Replace the output file if it exists (default: refuse).
        #[arg(long)]
        force: bool,
    },
}
