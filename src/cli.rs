//! Command-line interface definitions (clap). Kept apart from `main.rs` so the parsing rules
//! are readable in one place.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// llite-tui: train LLaMa-style models from one terminal.
#[derive(Parser, Debug)]
#[command(name = "llite-tui", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Commands>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Options shared by the cockpit and `train`.
#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// TOML preset (default: the embedded tiny preset).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Override a config key: --set train.lr=3e-4 (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE", global = true)]
    pub overrides: Vec<String>,
    /// Shortcut for --set train.max_steps=N.
    #[arg(long, global = true)]
    pub max_steps: Option<u64>,
    /// Where runs live (default: the platform data directory).
    #[arg(long, global = true)]
    pub runs_dir: Option<PathBuf>,
    /// Name of a new run's directory (default: run-<timestamp>).
    #[arg(long, global = true)]
    pub run_name: Option<String>,
    /// Continue a checkpoint exactly (weights, optimizer, schedule, data cursor, RNG).
    #[arg(long, global = true, conflicts_with = "finetune")]
    pub resume: Option<PathBuf>,
    /// Start a new run from a checkpoint's weights.
    #[arg(long, global = true)]
    pub finetune: Option<PathBuf>,
    /// Data for --finetune (text corpus or shard directory).
    #[arg(long, global = true)]
    pub data: Option<PathBuf>,
    /// With --resume of a checkpoint older than the run's newest: continue in place, moving the
    /// later checkpoints and metrics lines into <run>/discarded/ (default: branch a new run).
    #[arg(long, global = true, requires = "resume")]
    pub discard_later: bool,
    /// With --resume: load weights only and start AdamW from zero (for comparison).
    #[arg(long, global = true)]
    pub fresh_optimizer: bool,
    /// Stop with a checkpoint at this step without changing the schedule (time-sliced jobs).
    #[arg(long, global = true)]
    pub stop_at_step: Option<u64>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", global = true)]
    pub device: String,
    /// Never draw the TUI; print progress lines (implied when stdout is not a terminal).
    #[arg(long, global = true)]
    pub headless: bool,
    /// Theme name (a file stem in themes/).
    #[arg(long, global = true)]
    pub theme: Option<String>,
}

/// How a headless run ends and what it does on a spike, shown by `train --help`.
const TRAIN_AFTER_HELP: &str = "\
Headless runs:
  SIGINT, SIGTERM or SIGHUP: finish the current step, save a checkpoint (even at step 0),
  log `finished` with the reason, exit 130 / 143 / 129 (128 + signal number). A second
  signal exits at once with the same code; earlier checkpoints stay intact. The same signal
  again within a second is taken as an echo (sent to the process and its group), not a second.
  Loss spikes and gradient explosions are alerted and training goes on
  (ui.auto_pause_on_spike pauses the cockpit only).
Exit codes: 0 finished; 1 error, or any checkpoint save or metrics.jsonl write failed
  (the last line names the newest good checkpoint); 130 / 143 / 129 stopped by a signal.";

/// Subcommands; without one, the cockpit opens.
#[derive(Subcommand, Debug)]
pub enum Commands {
    /// Train (headless with --headless or without a terminal).
    #[command(after_help = TRAIN_AFTER_HELP)]
    Train,
    /// Show a run written by another process, following metrics.jsonl and checkpoints/.
    Watch { run_dir: PathBuf },
    /// Generate text from a checkpoint.
    Sample(SampleArgs),
    /// Tokenize text files into uint16 .npy shards (shard 0 = validation).
    Prepare(PrepareArgs),
    /// Write a Hugging Face LlamaForCausalLM directory from a checkpoint.
    Export {
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Turn a Hugging Face LLaMa directory into a checkpoint.
    Import {
        #[arg(long)]
        hf: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Checkpoint utilities.
    Ckpt {
        #[command(subcommand)]
        command: CkptCommand,
    },
    /// Evaluate a checkpoint: perplexity (.txt or shard dir) or multiple choice (.jsonl).
    Eval(EvalArgs),
    /// Parameter count, memory floor and FLOPs per token of a config.
    Info,
    /// Training and sampling throughput table.
    Bench(BenchArgs),
}

/// `ckpt` subcommands.
#[derive(Subcommand, Debug)]
pub enum CkptCommand {
    /// List a run's checkpoints with step, tokens, val loss, size, age; flags invalid ones
    /// (tensor names, shapes, dtypes and sizes against the config) and exits 1 if any is.
    Ls {
        run_dir: PathBuf,
        /// Also check every file's blake3 digest (reads every byte; reports MB/s).
        #[arg(long)]
        verify: bool,
    },
}

/// `sample` options.
#[derive(Args, Debug)]
pub struct SampleArgs {
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[arg(long, default_value = "")]
    pub prompt: String,
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// 0 = greedy.
    #[arg(long)]
    pub temperature: Option<f32>,
    #[arg(long)]
    pub top_k: Option<usize>,
    #[arg(long)]
    pub top_p: Option<f32>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Send the prompt as is, even to an SFT checkpoint (default: wrap it in its chat template).
    #[arg(long)]
    pub raw: bool,
    /// Also write the prompt's logits (every position) as JSON, for numerical comparisons.
    #[arg(long)]
    pub dump_logits: Option<PathBuf>,
}

/// `eval` options.
#[derive(Args, Debug)]
pub struct EvalArgs {
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// A .txt file or shard directory (perplexity) or a .jsonl multiple-choice task.
    #[arg(long)]
    pub task: PathBuf,
    /// Prompt template for questions: vicuna, chatml, plain (default: the checkpoint's SFT
    /// template, else plain).
    #[arg(long)]
    pub template: Option<String>,
    /// Only the held-out split of Alpaca data, as SFT with this data.val_fraction made it.
    #[arg(long)]
    pub held_out: Option<f64>,
    /// At most this many questions or windows.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
}

/// `prepare` options.
#[derive(Args, Debug)]
pub struct PrepareArgs {
    #[arg(long, required = true, num_args = 1..)]
    pub input: Vec<String>,
    #[arg(long)]
    pub out: PathBuf,
    /// gpt2, a tokenizer.json path, or train:<vocab>.
    #[arg(long, default_value = "gpt2")]
    pub tokenizer: String,
    #[arg(long, default_value_t = 0.05)]
    pub val_fraction: f64,
    #[arg(long, default_value_t = 100_000_000)]
    pub shard_tokens: usize,
    /// File name prefix of the shards (a plain file name).
    #[arg(long, default_value = "corpus")]
    pub prefix: String,
    /// Overwrite shards already in --out, only if an earlier `prepare` wrote them (listed in
    /// its prepare.json); files it did not write are never touched.
    #[arg(long)]
    pub replace: bool,
}

/// `bench` options.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Timed steps per config (after one warm-up step).
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Also bench a larger config (d_model 512, 8 layers, seq 512).
    #[arg(long)]
    pub large: bool,
    /// Directory for the checkpoint save/load measurement (default: the runs directory,
    /// where checkpoints are really written). Everything written there is removed.
    #[arg(long)]
    pub io_dir: Option<std::path::PathBuf>,
    /// Run only these tables (repeatable): train, sample, io, load. Default: all four.
    #[arg(long, value_enum)]
    pub only: Vec<llite_tui::bench::Section>,
}
