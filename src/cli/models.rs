//! Options of the commands that read a checkpoint or model directory: `sample`, `eval`,
//! `export`, `import` and `template`.

use clap::Args;
use std::path::PathBuf;

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
