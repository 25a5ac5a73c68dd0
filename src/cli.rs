//! Command-line interface definitions (clap derive). Kept apart from `main.rs` so the parsing
//! rules are readable in one place; the long help texts live in `cli_help.rs`. The top-level
//! `Cli` and `Commands` are here; each subcommand group's options live in a submodule and are
//! re-exported, so `cli::X` is the one path.

mod control;
mod models;
mod records;
mod tools;
mod training;

use crate::cli_help as help;
pub use crate::cli_parallel::{OrchestratorArgs, ParallelArgs};
use clap::{Parser, Subcommand};
pub use control::{CtlAction, CtlArgs};
pub use models::{EvalArgs, ExportArgs, ImportArgs, SampleArgs, TemplateArgs};
pub use records::{CkptCommand, MetricsCommand, RunsArgs, RunsCommand};
use std::path::PathBuf;
pub use tools::{BenchArgs, InfoArgs, PrepareArgs};
pub use training::{ConfigArgs, RunArgs, WatchArgs};

/// llite-tui: train LLaMa-style models from one terminal.
#[derive(Parser, Debug)]
#[command(
    name = "llite-tui",
    version,
    about,
    after_help = help::TOP,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Commands>,
    /// Training flags of the bare command, which opens the cockpit on a new run.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands; without one, the cockpit opens on a new run.
#[derive(Subcommand, Debug)]
pub enum Commands {
    /// Train: the cockpit on a terminal, headless with --headless or without one.
    #[command(after_help = help::TRAIN)]
    Train(RunArgs),
    /// Show a run written by another process, following metrics.jsonl and checkpoints/
    /// (and steering it through its control socket, unless --read-only).
    #[command(after_help = help::WATCH)]
    Watch(WatchArgs),
    /// Steer a running run from another terminal through its control socket.
    #[command(after_help = help::CTL)]
    Ctl(CtlArgs),
    /// Generate text from a checkpoint (with the sampling knobs of its own config).
    #[command(after_help = help::SAMPLE)]
    Sample(SampleArgs),
    /// Tokenize text files into .npy shards (uint16, or uint32 for vocabularies over 65,536;
    /// shard 0 = validation).
    #[command(after_help = help::PREPARE)]
    Prepare(PrepareArgs),
    /// Write a Hugging Face LlamaForCausalLM directory from a checkpoint.
    #[command(after_help = help::EXPORT)]
    Export(ExportArgs),
    /// Turn a Hugging Face LLaMa directory into a checkpoint.
    #[command(after_help = help::IMPORT)]
    Import(ImportArgs),
    /// Render a conversation through a model's chat template and print text and token ids
    /// as JSON (to check templates against transformers; see benches/reference/).
    #[command(after_help = help::TEMPLATE)]
    Template(TemplateArgs),
    /// Checkpoint utilities.
    Ckpt {
        #[command(subcommand)]
        command: CkptCommand,
    },
    /// List runs (name, status, steps, best val loss, age, parent, tags), draw their lineage
    /// tree, rename or tag them.
    #[command(after_help = help::RUNS, args_conflicts_with_subcommands = true)]
    Runs(RunsArgs),
    /// A run's metrics in other formats.
    Metrics {
        #[command(subcommand)]
        command: MetricsCommand,
    },
    /// Evaluate a checkpoint: perplexity (.txt or shard dir) or multiple choice (.jsonl).
    #[command(after_help = help::EVAL)]
    Eval(EvalArgs),
    /// Parameter count, FLOPs per token and the memory plan of a config, and whether it fits.
    #[command(after_help = help::INFO)]
    Info(InfoArgs),
    /// Training, sampling and checkpoint I/O throughput next to PyTorch and the raw disk.
    #[command(after_help = help::BENCH)]
    Bench(BenchArgs),
    /// Serve Burn's global collective orchestrator, which the nodes of a multi-machine
    /// data-parallel run join (--orchestrator ws://HOST:PORT); stops on Ctrl-C or SIGTERM.
    #[command(after_help = help::ORCHESTRATOR)]
    Orchestrator(OrchestratorArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    #[command(after_help = help::COMPLETIONS)]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, or write one page per command into a directory.
    #[command(after_help = help::MANPAGE)]
    Manpage {
        /// Write llite-tui.1 and llite-tui-<command>.1 into this new or empty directory
        /// (default: print the top-level page to stdout).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}
