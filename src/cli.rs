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
  Loss spikes and gradient explosions are alerted; train.on_spike = 'pause' pauses the run
  and 'rewind' rolls it back to the newest checkpoint before the spike as a branch, skipping
  train.rewind_skip steps of data (0 = up to the spike), at most train.max_auto_rewinds times.
Exit codes: 0 finished; 1 error, or any checkpoint save or metrics.jsonl write failed
  (the last line names the newest good checkpoint); 130 / 143 / 129 stopped by a signal.";

/// Subcommands; without one, the cockpit opens.
#[derive(Subcommand, Debug)]
pub enum Commands {
    /// Train (headless with --headless or without a terminal).
    #[command(after_help = TRAIN_AFTER_HELP)]
    Train,
    /// Show a run written by another process, following metrics.jsonl and checkpoints/
    /// (and steering it through its control socket, unless --read-only).
    Watch {
        run_dir: PathBuf,
        /// Only watch, even when the run has a control socket.
        #[arg(long)]
        read_only: bool,
    },
    /// Steer a running run from another terminal through its control socket.
    #[command(after_help = CTL_AFTER_HELP)]
    Ctl(CtlArgs),
    /// Generate text from a checkpoint.
    Sample(SampleArgs),
    /// Tokenize text files into .npy shards (uint16, or uint32 for vocabularies over 65,536;
    /// shard 0 = validation).
    Prepare(PrepareArgs),
    /// Write a Hugging Face LlamaForCausalLM directory from a checkpoint.
    Export {
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Weights dtype: f32 (as trained), bf16 or f16 (half the size).
        #[arg(long, value_enum, default_value = "f32")]
        dtype: llite_tui::interop::hf_write::ExportDtype,
    },
    /// Turn a Hugging Face LLaMa directory into a checkpoint.
    Import {
        #[arg(long)]
        hf: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Render a conversation through a model's chat template and print text and token ids
    /// as JSON (to check templates against transformers; see benches/reference/).
    Template(TemplateArgs),
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

/// The protocol and failure modes of `ctl`, shown by `ctl --help`.
const CTL_AFTER_HELP: &str = "\
A training run serves <run>/control.sock (owner-only; not opened in a run directory others
can write). Protocol: one JSON line each way, {\"v\":1,\"cmd\":\"status\"} -> {\"v\":1,\"ok\":true,...}.
`set` accepts the live keys only, checked like --set. Exit codes: 0 done; 1 refused, no run
(stale or missing socket), a foreign socket, no answer in time or a malformed reply.";

/// `ctl` options.
#[derive(Args, Debug)]
pub struct CtlArgs {
    /// The run directory (<runs>/<run-name>).
    pub run_dir: PathBuf,
    #[command(subcommand)]
    pub action: CtlAction,
    /// Seconds to wait for the engine, which acts between steps.
    #[arg(long, default_value_t = 60, global = true)]
    pub timeout: u64,
    /// Print the reply as the raw JSON line.
    #[arg(long, global = true)]
    pub json: bool,
}

/// What `ctl` asks the run to do.
#[derive(Subcommand, Debug)]
pub enum CtlAction {
    /// Step, state, run name, live control values, last loss.
    Status,
    /// Pause before the next step.
    Pause,
    Resume,
    /// Write a checkpoint now.
    Save,
    /// Evaluate the validation loss now.
    Eval,
    /// Change a live key: train.lr, train.min_lr, train.grad_clip, train.weight_decay,
    /// train.eval_every, checkpoint.every.
    Set {
        #[arg(value_name = "KEY=VALUE")]
        setting: String,
    },
    /// Generate from the current weights (the run's [sample] settings unless given).
    Sample {
        prompt: String,
        #[arg(long)]
        max_tokens: Option<usize>,
        #[arg(long)]
        temperature: Option<f32>,
        #[arg(long)]
        top_k: Option<usize>,
        #[arg(long)]
        top_p: Option<f32>,
        #[arg(long)]
        seed: Option<u64>,
    },
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
    /// Send the prompt as is (default: wrap it in the SFT run's template, or the model's own
    /// chat template when it carries one).
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
    /// Prompt template for questions: model, vicuna, chatml, plain (default: the checkpoint's
    /// SFT template, else the model's own chat template, else plain).
    #[arg(long)]
    pub template: Option<String>,
    /// Only the held-out split of Alpaca data, as SFT with this data.val_fraction made it.
    #[arg(long)]
    pub held_out: Option<f64>,
    /// At most this many questions or windows.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
}

/// `template` options.
#[derive(Args, Debug)]
pub struct TemplateArgs {
    /// A checkpoint or a Hugging Face model directory (only its tokenizer files are read).
    #[arg(long)]
    pub model: PathBuf,
    /// A JSON list of {role, content} messages (or an object with `messages`).
    #[arg(long)]
    pub messages: PathBuf,
    /// auto, model, vicuna, chatml or plain (default: the model's own chat template).
    #[arg(long)]
    pub template: Option<String>,
    /// Append the assistant's opening, as for a prompt.
    #[arg(long)]
    pub generation_prompt: bool,
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
