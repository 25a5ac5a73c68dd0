//! Command-line interface definitions (clap derive). Kept apart from `main.rs` so the parsing
//! rules are readable in one place; the long help texts live in `cli_help.rs`.

use crate::cli_help as help;
pub use crate::cli_parallel::{OrchestratorArgs, ParallelArgs};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

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

/// Options of `info`: the config and the device to plan for.
#[derive(Args, Debug, Clone)]
pub struct InfoArgs {
    #[command(flatten)]
    pub preset: ConfigArgs,
    /// The device to plan for: cpu (this machine's available memory), cuda or cuda:N.
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    pub device: String,
    /// The device's memory, e.g. 80GiB (default: queried where possible), to plan for a
    /// machine other than this one.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
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

/// `export` options.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The checkpoint or Hugging Face model directory to export (a run directory or
    /// RUN_DIR/latest: its newest valid checkpoint).
    #[arg(long, value_name = "CKPT")]
    pub checkpoint: PathBuf,
    /// The HF directory to write: new or empty, never inside a run or checkpoint.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Weights dtype: f32 (as trained), bf16 or f16 (half the size).
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: llite_tui::interop::hf_write::ExportDtype,
}

/// `import` options.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A Hugging Face LLaMa directory (config.json, *.safetensors, tokenizer.json).
    #[arg(long, value_name = "DIR")]
    pub hf: PathBuf,
    /// The checkpoint directory to write: new or empty.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

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

/// `sample` options.
#[derive(Args, Debug)]
pub struct SampleArgs {
    /// The checkpoint or Hugging Face model directory to sample from (a run directory or
    /// RUN_DIR/latest: its newest valid checkpoint).
    #[arg(long, value_name = "CKPT")]
    pub checkpoint: PathBuf,
    /// Text to continue (an SFT checkpoint wraps it in its chat template unless --raw).
    #[arg(long, default_value = "")]
    pub prompt: String,
    /// Most tokens to generate (default: the checkpoint's sample.max_tokens).
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<usize>,
    /// Sampling temperature, 0 = greedy (default: the checkpoint's sample.temperature).
    #[arg(long, value_name = "T")]
    pub temperature: Option<f32>,
    /// Keep only the K likeliest tokens, 0 = all (default: the checkpoint's sample.top_k).
    #[arg(long, value_name = "K")]
    pub top_k: Option<usize>,
    /// Nucleus sampling mass in (0, 1] (default: the checkpoint's sample.top_p).
    #[arg(long, value_name = "P")]
    pub top_p: Option<f32>,
    /// Random seed of the sampler (default: the checkpoint's sample.seed).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Send the prompt as is (default: wrap it in the SFT run's template, or the model's own
    /// chat template when it carries one).
    #[arg(long)]
    pub raw: bool,
    /// Also write the prompt's logits (every position) as JSON to this new file, for numerical
    /// comparisons (default: not written).
    #[arg(long, value_name = "FILE")]
    pub dump_logits: Option<PathBuf>,
    /// Refused: sampling uses the config recorded in the checkpoint (kept so the refusal can
    /// say so instead of a generic parse error).
    #[arg(long, hide = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `eval` options.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The checkpoint or Hugging Face model directory to evaluate (a run directory or
    /// RUN_DIR/latest: its newest valid checkpoint).
    #[arg(long, value_name = "CKPT")]
    pub checkpoint: PathBuf,
    /// A .txt file or shard directory (perplexity) or a .jsonl multiple-choice task.
    #[arg(long, value_name = "PATH")]
    pub task: PathBuf,
    /// Prompt template for questions: model, vicuna, chatml, plain (default: the checkpoint's
    /// SFT template, else the model's own chat template, else plain).
    #[arg(long, value_name = "NAME")]
    pub template: Option<String>,
    /// Only the held-out split of Alpaca data, as SFT with this data.val_fraction made it
    /// (default: every question).
    #[arg(long, value_name = "FRACTION")]
    pub held_out: Option<f64>,
    /// At most this many questions or windows.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub limit: usize,
}

/// `template` options.
#[derive(Args, Debug)]
pub struct TemplateArgs {
    /// A checkpoint or a Hugging Face model directory (only its tokenizer files are read).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// A JSON list of {role, content} messages (or an object with `messages`).
    #[arg(long, value_name = "FILE")]
    pub messages: PathBuf,
    /// auto, model, vicuna, chatml or plain (default: the model's own chat template).
    #[arg(long, value_name = "NAME")]
    pub template: Option<String>,
    /// Append the assistant's opening, as for a prompt (default: the conversation only).
    #[arg(long)]
    pub generation_prompt: bool,
}

/// `prepare` options.
#[derive(Args, Debug)]
pub struct PrepareArgs {
    /// Text files to tokenize (one document each; repeatable after one --input).
    #[arg(long, value_name = "FILE", required = true, num_args = 1..)]
    pub input: Vec<String>,
    /// Directory for the shards and prepare.json (outside every run directory).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// gpt2, a tokenizer.json path, or train:<vocab> (a BPE trained on the input).
    #[arg(long, value_name = "TOKENIZER", default_value = "gpt2")]
    pub tokenizer: String,
    /// Fraction of the tokens that go to the validation shard (shard 0).
    #[arg(long, value_name = "FRACTION", default_value_t = 0.05)]
    pub val_fraction: f64,
    /// Tokens per training shard.
    #[arg(long, value_name = "N", default_value_t = 100_000_000)]
    pub shard_tokens: usize,
    /// File name prefix of the shards (a plain file name).
    #[arg(long, value_name = "NAME", default_value = "corpus")]
    pub prefix: String,
    /// Overwrite shards already in --out, only if an earlier `prepare` wrote them (listed in
    /// its prepare.json); files it did not write are never touched.
    #[arg(long)]
    pub replace: bool,
}

/// `bench` options.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Timed steps per config (after one warm-up step); the median and the spread are shown.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub steps: usize,
    /// Also bench a larger config (d_model 512, 8 layers, seq 512).
    #[arg(long)]
    pub large: bool,
    /// Directory for the checkpoint save/load measurement (default: the runs directory,
    /// where checkpoints are really written). Everything the bench writes there is removed.
    #[arg(long, value_name = "DIR")]
    pub io_dir: Option<PathBuf>,
    /// Where runs live, the default --io-dir (default: the platform data directory).
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    /// Run only these tables (repeatable): train, sample, io, load (default: all four), and
    /// memory (checkpointing and bf16 on/off; only when named).
    #[arg(long, value_enum)]
    pub only: Vec<llite_tui::bench::Section>,
}
