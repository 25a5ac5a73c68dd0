//! Options of the standalone tools: `prepare` (text to shards), `info` (the memory plan) and
//! `bench` (speed on this machine).

use super::ConfigArgs;
use clap::Args;
use std::path::PathBuf;

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
