//! Turning a request ("fresh run with this config", "resume that checkpoint") into everything
//! the engine needs before the first tensor: resolved config, run directory, tokenizer, token
//! shards and the checkpoint to start from (resuming is in `resume.rs`, data resolution in
//! `run_data.rs`). Kept free of Burn; all bad input is caught here with one-line errors.

use super::run_data::{check_vocab, resolve_data, sft_summary};
use crate::config::RunConfig;
use crate::data::sft::SftData;
use crate::data::shards::ShardSet;
use crate::data::tokenizer::TextTokenizer;
use crate::protocol::StartFrom;
use crate::store::checkpoint::{self, LoadedCheckpoint};
use crate::store::layout::{self, validate_run_name};
use crate::store::lineage::{ParentKind, ParentRecord};
use crate::store::listing::latest_valid_checkpoint;
use crate::store::lock::{foreign_holder, RunLock};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Which device the engine trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
}

impl DeviceSpec {
    /// Parse `cpu`, `cuda` or `cuda:N`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => match s.strip_prefix("cuda:").and_then(|i| i.parse().ok()) {
                Some(i) => Ok(Self::Cuda(i)),
                None => bail!("--device {s}: expected cpu, cuda or cuda:N"),
            },
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// What a consumer asks the engine to do.
#[derive(Debug, Clone)]
pub struct EngineRequest {
    /// Config from `--config` (or the embedded preset) with `overrides` applied.
    pub config: RunConfig,
    /// `--set` overrides, re-applied on top of a checkpoint's own config when resuming.
    pub overrides: Vec<String>,
    /// Whether the user named a config file (then its model must match a resumed checkpoint).
    pub config_explicit: bool,
    pub runs_dir: PathBuf,
    pub run_name: Option<String>,
    pub start: StartFrom,
    pub device: DeviceSpec,
    /// Resume weights but not AdamW moments (the seed code's behaviour, for comparison).
    pub fresh_optimizer: bool,
    /// Stop (with a checkpoint) once this step is reached, without changing the schedule:
    /// for time-sliced jobs and for exact-resume tests.
    pub stop_at: Option<u64>,
    /// Resuming a checkpoint older than the run's newest: continue in place after moving the
    /// later checkpoints and metrics lines into `<run>/discarded/` (default: branch a new run).
    pub discard_later: bool,
    /// Where a fresh run caches its trained tokenizer and token shards
    /// (`data::prep_cache`); None prepares from scratch every time (the tests' default).
    pub prep_cache: Option<PathBuf>,
}

/// A run ready to train.
pub struct PreparedRun {
    pub config: RunConfig,
    pub run_name: String,
    pub run_dir: PathBuf,
    pub tokenizer: TextTokenizer,
    /// Token shards of a pretraining run (None for SFT and sample-only sessions).
    pub shards: Option<ShardSet>,
    /// Instruction rows of an SFT run.
    pub sft: Option<SftData>,
    /// Weights (and for a resume, optimizer and cursor) to start from.
    pub checkpoint: Option<LoadedCheckpoint>,
    /// Continue the checkpoint's optimizer, step, schedule and data cursor.
    pub continue_state: bool,
    pub parent: Option<String>,
    /// Live control changes recorded after the resumed checkpoint (by a newer checkpoint of the
    /// same run), replayed at their steps so the resume reproduces the run (empty otherwise).
    pub replay: Vec<crate::controls::ControlRecord>,
    pub warnings: Vec<String>,
    /// The run directory's writer lock, held for the engine's whole life (None when the
    /// session only samples and writes nothing).
    pub lock: Option<RunLock>,
}

/// Resolve a request; creates the run directory for new runs.
pub fn prepare(req: &EngineRequest) -> Result<PreparedRun> {
    if let StartFrom::Resume(dir)
    | StartFrom::Inspect(dir)
    | StartFrom::FineTune {
        checkpoint: dir, ..
    } = &req.start
    {
        // A hostile or oversized checkpoint is refused from its trainer.json (or an HF
        // directory's config.json) alone.
        crate::interop::model_dir::ensure_model_fits(dir)?;
    }
    if let StartFrom::Resume(dir) = &req.start {
        crate::interop::model_dir::refuse_resume_of_hf(dir)?;
    }
    match &req.start {
        StartFrom::Fresh => prepare_fresh(req),
        StartFrom::Resume(dir) => super::resume::prepare_resume(req, dir),
        StartFrom::FineTune { checkpoint, data } => {
            prepare_finetune(req, checkpoint, data.as_deref())
        }
        StartFrom::Inspect(dir) => {
            let ckpt = crate::interop::model_dir::open_model(dir)?;
            let origin = dir.join(layout::TRAINER_FILE).display().to_string();
            let mut config = RunConfig::from_toml_str(&ckpt.trainer.config_toml, &origin)?;
            config.model = ckpt.model_config.clone();
            let tokenizer = checkpoint::load_tokenizer(&ckpt)?;
            Ok(PreparedRun {
                run_name: ckpt.trainer.run_name.clone(),
                run_dir: run_dir_of(dir),
                config,
                tokenizer,
                shards: None,
                sft: None,
                parent: Some(dir.display().to_string()),
                checkpoint: Some(ckpt),
                continue_state: true,
                replay: Vec::new(),
                warnings: Vec::new(),
                lock: None,
            })
        }
    }
}

/// A checkpoint lives at `<run>/checkpoints/step-N`.
pub fn run_dir_of(ckpt: &Path) -> PathBuf {
    layout::run_dir_of(ckpt)
}

/// A new run's directory, claimed under its writer lock.
struct NewRun {
    name: String,
    dir: PathBuf,
    lock: RunLock,
    /// The directory did not exist before: a start that fails may remove it again.
    created: bool,
}

impl NewRun {
    /// Undo the claim of a run whose preparation failed before any event was logged, so a
    /// failed start (a bad data path, a tokenizer error) leaves no half-made run behind. Only a
    /// directory this process created is removed; a pre-existing one keeps what it held.
    fn abandon(self) {
        let NewRun {
            dir, lock, created, ..
        } = self;
        drop(lock);
        if created {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// Refuse a run directory that already holds a run, saying accurately what is there.
fn refuse_existing_run(dir: &Path) -> Result<()> {
    let holds_run = std::fs::symlink_metadata(layout::metrics_path(dir)).is_ok()
        || std::fs::symlink_metadata(layout::checkpoints_dir(dir)).is_ok();
    if !holds_run {
        return Ok(());
    }
    match latest_valid_checkpoint(dir) {
        Some(ckpt) => bail!(
            "run directory {} already holds a run; pick another --run-name or resume it with --resume {}",
            dir.display(),
            ckpt.display()
        ),
        None => bail!(
            "run directory {} holds an unfinished run with no complete checkpoint; pick another --run-name",
            dir.display()
        ),
    }
}

/// Refuse an existing, non-empty directory that this tool did not start: a run writes its
/// `lock` before anything else, so files without one are the user's (a `run.toml` or
/// `tokenizer.json` there would otherwise be overwritten or read as the run's own).
fn refuse_foreign_dir(dir: &Path) -> Result<()> {
    let Ok(mut entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    if entries.next().is_none() || std::fs::symlink_metadata(layout::lock_path(dir)).is_ok() {
        return Ok(());
    }
    bail!(
        "run directory {} already exists and holds files llite-tui did not write; pick another --run-name (or an empty directory)",
        dir.display()
    )
}

/// The directory of a fresh run or fine-tune: `--run-name` (validated) or a derived name,
/// locked before anything in it is written; a directory that already holds a run is refused.
fn new_run_dir(req: &EngineRequest, prefix: &str) -> Result<NewRun> {
    let name = match &req.run_name {
        Some(n) => {
            validate_run_name(n, "--run-name")?;
            n.clone()
        }
        None => {
            let n = layout::default_run_name(prefix, std::time::SystemTime::now());
            validate_run_name(&n, "derived run name")?;
            n
        }
    };
    let dir = req.runs_dir.join(&name);
    if let Some(holder) = foreign_holder(&dir)? {
        bail!("{}", holder.refusal(&dir));
    }
    refuse_existing_run(&dir)?;
    refuse_foreign_dir(&dir)?;
    let created = std::fs::symlink_metadata(&dir).is_err();
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create run directory {}", dir.display()))?;
    let lock = RunLock::acquire(&dir)?;
    // Another process may have started and finished a run here between the check and the lock.
    refuse_existing_run(&dir)?;
    Ok(NewRun {
        name,
        dir,
        lock,
        created,
    })
}

fn prepare_fresh(req: &EngineRequest) -> Result<PreparedRun> {
    let config = req.config.clone();
    config.validate()?;
    crate::resources::ensure_training_fits(&config, req.device == DeviceSpec::Cpu)?;
    let claim = new_run_dir(req, "run")?;
    let run_dir = claim.dir.clone();
    let mut warnings = Vec::new();
    let cache = req.prep_cache.as_deref();
    let prepared = resolve_data(&config, &run_dir, None, cache, &mut warnings).and_then(
        |(tokenizer, data)| {
            check_vocab(&tokenizer, &config.model, &config.data.tokenizer)?;
            write_run_config(&run_dir, &config)?;
            Ok((tokenizer, data))
        },
    );
    let (tokenizer, data) = match prepared {
        Ok(ready) => ready,
        Err(e) => {
            claim.abandon();
            return Err(e);
        }
    };
    let (shards, sft) = data.split();
    Ok(PreparedRun {
        config,
        run_name: claim.name,
        run_dir,
        tokenizer,
        shards,
        sft,
        checkpoint: None,
        continue_state: false,
        parent: None,
        replay: Vec::new(),
        warnings,
        lock: Some(claim.lock),
    })
}

pub(super) fn write_run_config(run_dir: &Path, config: &RunConfig) -> Result<()> {
    crate::store::fsio::write_synced(
        &run_dir.join(layout::RUN_CONFIG_FILE),
        config.to_toml().as_bytes(),
    )
}

fn prepare_finetune(req: &EngineRequest, dir: &Path, data: Option<&Path>) -> Result<PreparedRun> {
    // A checkpoint or an HF model directory (read in place, never written to).
    let ckpt = crate::interop::model_dir::open_model(dir)?;
    let mut config = req.config.clone();
    // The model always comes from the checkpoint; a preset's [model] section is ignored here.
    config.model = ckpt.model_config.clone();
    if let Some(data) = data {
        if !data.exists() {
            bail!("{}: no such data file", data.display());
        }
        config.data.corpus = vec![data.display().to_string()];
    }
    config.data.tokenizer = ckpt.tokenizer_path.display().to_string();
    config.train.seq_len = config.train.seq_len.min(config.model.max_seq_len);
    config.validate()?;
    crate::resources::ensure_training_fits(&config, req.device == DeviceSpec::Cpu)?;
    let parent_name = ckpt.trainer.run_name.clone();
    if req.run_name.is_none() {
        let what = format!("{}: run_name", dir.join(layout::TRAINER_FILE).display());
        validate_run_name(&parent_name, &what)?;
    }
    let claim = new_run_dir(req, &format!("{parent_name}-ft"))?;
    let run_dir = claim.dir.clone();
    let prepared = (|| {
        if config.is_sft() {
            // Keep a copy so a resume sees exactly the same examples even if the file changes.
            let copy = run_dir.join("data").join("sft.jsonl");
            std::fs::create_dir_all(run_dir.join("data"))
                .with_context(|| format!("cannot create {}", run_dir.join("data").display()))?;
            crate::store::fsio::copy_synced(Path::new(&config.data.corpus[0]), &copy)?;
            config.data.corpus = vec![copy.display().to_string()];
        }
        let tokenizer = checkpoint::load_tokenizer(&ckpt)?;
        let ready = resolve_data(&config, &run_dir, Some(tokenizer), None, &mut Vec::new())?;
        write_run_config(&run_dir, &config)?;
        let parent = ParentRecord::of_checkpoint(ParentKind::FineTune, dir);
        crate::store::lineage::write_parent(&run_dir, &parent)?;
        Ok(ready)
    })();
    let (tokenizer, data) = match prepared {
        Ok(ready) => ready,
        Err(e) => {
            claim.abandon();
            return Err(e);
        }
    };
    let (shards, sft) = data.split();
    let mut warnings: Vec<String> = sft.as_ref().map(sft_summary).into_iter().collect();
    warnings.extend(ckpt.notice());
    Ok(PreparedRun {
        config,
        run_name: claim.name,
        run_dir,
        tokenizer,
        shards,
        sft,
        parent: Some(dir.display().to_string()),
        checkpoint: Some(ckpt),
        continue_state: false,
        replay: Vec::new(),
        warnings,
        lock: Some(claim.lock),
    })
}
