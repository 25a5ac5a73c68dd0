//! Options of `ctl`: one request to a live run's control socket.

use crate::cli_help as help;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `ctl` options.
#[derive(Args, Debug)]
pub struct CtlArgs {
    /// The run directory (<runs>/<run-name>), holding the run's control.sock.
    pub run_dir: PathBuf,
    #[command(subcommand)]
    pub action: CtlAction,
    /// Seconds to wait for the engine, which acts between steps.
    #[arg(long, value_name = "SECS", default_value_t = 60, global = true)]
    pub timeout: u64,
    /// Print the reply as the raw JSON line (default: a readable summary).
    #[arg(long, global = true)]
    pub json: bool,
}

/// What `ctl` asks the run to do.
#[derive(Subcommand, Debug)]
pub enum CtlAction {
    /// Step, state, run name, live control values, last loss.
    #[command(after_help = help::CTL)]
    Status,
    /// Pause before the next step.
    #[command(after_help = help::CTL)]
    Pause,
    /// Resume a paused run.
    #[command(after_help = help::CTL)]
    Resume,
    /// Write a checkpoint now.
    #[command(after_help = help::CTL)]
    Save,
    /// Evaluate the validation loss now.
    #[command(after_help = help::CTL)]
    Eval,
    /// Change a live key: train.lr, train.min_lr, train.grad_clip, train.weight_decay,
    /// train.eval_every, checkpoint.every.
    #[command(after_help = help::CTL)]
    Set {
        /// The live key and its new value, checked like --set.
        #[arg(value_name = "KEY=VALUE")]
        setting: String,
    },
    /// Generate from the current weights (the run's [sample] settings unless given).
    #[command(after_help = help::CTL)]
    Sample {
        /// Text to continue.
        prompt: String,
        /// Most tokens to generate (default: the run's sample.max_tokens).
        #[arg(long, value_name = "N")]
        max_tokens: Option<usize>,
        /// Sampling temperature, 0 = greedy (default: the run's sample.temperature).
        #[arg(long, value_name = "T")]
        temperature: Option<f32>,
        /// Keep only the K likeliest tokens, 0 = all (default: the run's sample.top_k).
        #[arg(long, value_name = "K")]
        top_k: Option<usize>,
        /// Nucleus sampling mass in (0, 1] (default: the run's sample.top_p).
        #[arg(long, value_name = "P")]
        top_p: Option<f32>,
        /// Random seed of the sampler (default: the run's sample.seed).
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
    },
}
