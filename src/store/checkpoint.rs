//! Writing and reading complete checkpoints. A checkpoint is written into `step-N.partial/`,
//! every file fsynced, then renamed to `step-N/` and the parent directory fsynced: a crash
//! leaves the old set or the new one, never a torn one. Loading is lean: weights are mapped
//! and read one tensor at a time, AdamW moments only when a resume asks for them.

use super::digest::{read_verified, verify_file, FileDigest};
use super::faults;
use super::fsio::{read_bounded, read_bounded_string, sync_dir, write_synced, MAX_METADATA_BYTES};
use super::hf_layout as hf;
use super::layout::{
    checkpoint_dir_name, checkpoints_dir, CHECKPOINT_FORMAT_VERSION, HF_CONFIG_FILE, MODEL_FILE,
    OPTIMIZER_FILE, TOKENIZER_FILE, TRAINER_FILE,
};
use super::listing::{inspect_checkpoint, InspectedCheckpoint};
use super::mapped::MappedWeights;
use super::safetensors_io;
use super::structure::refuse_non_finite;
use super::tensors::NamedTensor;
use super::trainer_state::{model_config_hash, trainer_json, OptimizerState, TrainerState};
use crate::config::ModelConfig;
use crate::data::tokenizer_meta::{TokenizerMeta, GENERATION_CONFIG_FILE, TOKENIZER_CONFIG_FILE};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Everything a checkpoint holds, in host memory and internal naming.
pub struct CheckpointData {
    pub trainer: TrainerState,
    pub model_config: ModelConfig,
    pub weights: Vec<NamedTensor>,
    /// AdamW moments; `None` writes none (an import) and records `optimizer_state: absent`.
    pub moments: Option<Vec<NamedTensor>>,
    pub tokenizer_json: String,
    pub eos_token_id: u32,
    /// Chat template and special tokens, written as `tokenizer_config.json` and
    /// `generation_config.json` so they survive to `sample` and `export` (None: not written).
    pub tokenizer_meta: Option<TokenizerMeta>,
}

/// Write a checkpoint atomically into the run's `checkpoints/` and return its directory.
pub fn save(run_dir: &Path, data: &CheckpointData) -> Result<PathBuf> {
    let final_dir = checkpoints_dir(run_dir).join(checkpoint_dir_name(data.trainer.step));
    save_to(&final_dir, data)?;
    Ok(final_dir)
}

/// Write a checkpoint atomically to `final_dir` (via `<final_dir>.partial` and a rename).
pub fn save_to(final_dir: &Path, data: &CheckpointData) -> Result<()> {
    let parent = final_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let name = final_dir
        .file_name()
        .context("checkpoint path has no directory name")?
        .to_string_lossy()
        .into_owned();
    let final_dir = final_dir.to_path_buf();
    let partial = parent.join(format!("{name}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)?;
    }
    std::fs::create_dir_all(&partial)?;
    faults::point("save.partial_created");
    let result = write_files(&partial, data).and_then(|_| {
        sync_dir(&partial);
        faults::point("save.files_written");
        if final_dir.exists() {
            // Re-saving the same step: swap, so there is always one complete copy on disk.
            let old = parent.join(format!("{name}.old"));
            let _ = std::fs::remove_dir_all(&old);
            std::fs::rename(&final_dir, &old)?;
            faults::point("save.swap_old_moved");
            std::fs::rename(&partial, &final_dir)?;
            std::fs::remove_dir_all(&old)?;
        } else {
            std::fs::rename(&partial, &final_dir)?;
        }
        faults::point("save.renamed");
        sync_dir(&parent);
        Ok(())
    });
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e.context(format!(
            "checkpoint {} was not written; earlier checkpoints are intact",
            final_dir.display()
        )));
    }
    Ok(())
}

fn write_files(dir: &Path, data: &CheckpointData) -> Result<()> {
    // The two tensor files are independent: transpose and write them on two threads, each
    // hashing its bytes on their way to disk.
    let write_weights = || {
        let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
        safetensors_io::write_file_synced(
            &dir.join(MODEL_FILE),
            &hf::to_hf(&data.weights)?,
            Some(meta),
        )
    };
    let write_moments = |moments: &[NamedTensor]| {
        let meta = std::collections::HashMap::from([(
            "adamw_step".to_string(),
            data.trainer.optimizer_step.to_string(),
        )]);
        safetensors_io::write_file_synced(
            &dir.join(OPTIMIZER_FILE),
            &hf::to_hf(moments)?,
            Some(meta),
        )
    };
    let (weights, moments) = std::thread::scope(|s| {
        let weights = s.spawn(write_weights);
        let moments = data.moments.as_deref().map(write_moments).transpose();
        (weights.join(), moments)
    });
    let mut files = BTreeMap::new();
    files.insert(
        MODEL_FILE.to_string(),
        weights.map_err(|_| anyhow::anyhow!("the thread writing {MODEL_FILE} panicked"))??,
    );
    let optimizer_state = match moments? {
        Some(digest) => {
            files.insert(OPTIMIZER_FILE.to_string(), digest);
            OptimizerState::Present
        }
        None => OptimizerState::Absent,
    };
    faults::point("save.tensors_written");
    let mut config = hf::config_json(&data.model_config, data.eos_token_id);
    let mut small = vec![(TOKENIZER_FILE, data.tokenizer_json.clone())];
    if let Some(meta) = &data.tokenizer_meta {
        hf::set_special_ids(&mut config, meta);
        let tc = meta.tokenizer_config(data.model_config.max_seq_len);
        let gen = meta.generation_config(data.eos_token_id);
        small.push((TOKENIZER_CONFIG_FILE, serde_json::to_string_pretty(&tc)?));
        small.push((GENERATION_CONFIG_FILE, serde_json::to_string_pretty(&gen)?));
    }
    small.push((HF_CONFIG_FILE, serde_json::to_string_pretty(&config)?));
    for (name, text) in &small {
        write_synced(&dir.join(name), text.as_bytes())?;
        files.insert(name.to_string(), FileDigest::of_bytes(text.as_bytes()));
    }
    // trainer.json last: its presence marks the set complete even before the rename.
    let trainer = TrainerState {
        format_version: CHECKPOINT_FORMAT_VERSION,
        optimizer_state,
        ..data.trainer.clone()
    };
    write_synced(
        &dir.join(TRAINER_FILE),
        trainer_json(&trainer, &files)?.as_bytes(),
    )?;
    Ok(())
}

/// Where a loaded model came from: a checkpoint of ours or a Hugging Face model directory
/// (read as it is, never written to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelOrigin {
    Checkpoint,
    HuggingFace,
}

/// The AdamW moments of a loaded checkpoint, not read until a resume asks for them.
#[derive(Debug, Clone)]
pub enum MomentsFile {
    /// The checkpoint holds none (`optimizer_state: absent`, or a Hugging Face directory).
    Absent,
    /// `optimizer.safetensors`, with the digest `trainer.json` records (none in format 1).
    File {
        path: PathBuf,
        digest: Option<FileDigest>,
    },
}

/// A validated checkpoint: its metadata in memory, its weights mapped (digest verified,
/// NaN/Inf refused) and read into a model one tensor at a time, its moments left on disk.
pub struct LoadedCheckpoint {
    pub dir: PathBuf,
    pub trainer: TrainerState,
    pub model_config: ModelConfig,
    pub weights: MappedWeights,
    pub moments: MomentsFile,
    pub tokenizer_path: PathBuf,
    /// False for a format-1 checkpoint, written before digests: it loaded, not verified.
    pub digests_verified: bool,
    pub origin: ModelOrigin,
}

impl LoadedCheckpoint {
    /// A one-line notice for models that could not be verified, to show the user.
    pub fn notice(&self) -> Option<String> {
        match (self.origin, self.digests_verified) {
            (ModelOrigin::HuggingFace, _) => Some(format!(
                "{}: a Hugging Face model directory, read as it is (no digests to verify)",
                self.dir.display()
            )),
            (ModelOrigin::Checkpoint, false) => Some(format!(
                "{}: written before digests; not verified",
                self.dir.display()
            )),
            (ModelOrigin::Checkpoint, true) => None,
        }
    }

    /// Stream the moments file through its digest (constant memory), so a resume refuses a
    /// corrupt one before it touches the run; [`Self::read_moments`] checks again as it reads.
    pub fn verify_moments(&self) -> Result<()> {
        if let MomentsFile::File {
            path,
            digest: Some(digest),
        } = &self.moments
        {
            verify_file(path, digest)?;
        }
        Ok(())
    }

    /// The AdamW moments in internal naming (digest verified, NaN/Inf refused), read only now:
    /// sampling, evaluation, export and fine-tuning never call this. `None` when the
    /// checkpoint has none, for the optimizer to start at zero.
    pub fn read_moments(&self) -> Result<Option<Vec<NamedTensor>>> {
        let MomentsFile::File { path, digest } = &self.moments else {
            return Ok(None);
        };
        let bytes = read_verified(path, digest.as_ref())?;
        let tensors = safetensors_io::from_bytes(&bytes, path)?;
        drop(bytes);
        refuse_non_finite(path, &tensors)?;
        hf::from_hf(tensors, self.model_config.tie_embeddings)
            .with_context(|| format!("{}", path.display()))
            .map(Some)
    }
}

/// Read and validate a checkpoint directory: the cheap structural checks, the small files'
/// digests, and the weights mapped with their digest verified and NaN/Inf refused in one pass.
/// The moments are checked structurally here and read only by [`LoadedCheckpoint::read_moments`].
pub fn load(dir: &Path) -> Result<LoadedCheckpoint> {
    let InspectedCheckpoint {
        record,
        model_config,
    } = inspect_checkpoint(dir)?;
    if model_config_hash(&model_config) != record.state.model_config_hash {
        anyhow::bail!(
            "{}: model config hash mismatch; the file was edited or corrupted",
            dir.join(TRAINER_FILE).display()
        );
    }
    for small in [
        HF_CONFIG_FILE,
        TOKENIZER_FILE,
        TOKENIZER_CONFIG_FILE,
        GENERATION_CONFIG_FILE,
    ] {
        if let Some(digest) = record.digest(small) {
            verify_file(&dir.join(small), digest)?;
        }
    }
    let weights_file = (dir.join(MODEL_FILE), record.digest(MODEL_FILE).cloned());
    let weights = MappedWeights::open(&[weights_file], model_config.tie_embeddings)?;
    let moments = match record.state.optimizer_state {
        OptimizerState::Absent => MomentsFile::Absent,
        OptimizerState::Present => MomentsFile::File {
            path: dir.join(OPTIMIZER_FILE),
            digest: record.digest(OPTIMIZER_FILE).cloned(),
        },
    };
    Ok(LoadedCheckpoint {
        dir: dir.to_path_buf(),
        digests_verified: record.files.is_some(),
        trainer: record.state,
        model_config,
        weights,
        moments,
        tokenizer_path: dir.join(TOKENIZER_FILE),
        origin: ModelOrigin::Checkpoint,
    })
}

/// The checkpoint's tokenizer with the end-of-text id its `config.json` names (so an imported
/// chat model stops at `<|im_end|>` rather than a stray `<|endoftext|>`).
pub fn load_tokenizer(ckpt: &LoadedCheckpoint) -> Result<crate::data::tokenizer::TextTokenizer> {
    tokenizer_of_dir(&ckpt.dir)
}

/// The tokenizer of a checkpoint or HF model directory, with the end-of-text id its
/// `config.json` names and the chat template and special tokens its tokenizer files carry;
/// the caller has verified the files it needs verified.
pub fn tokenizer_of_dir(dir: &Path) -> Result<crate::data::tokenizer::TextTokenizer> {
    let tokenizer_path = dir.join(TOKENIZER_FILE);
    let bytes = read_bounded(&tokenizer_path, MAX_METADATA_BYTES)?;
    let tokenizer = crate::data::tokenizer::TextTokenizer::from_json_bytes(
        &bytes,
        &tokenizer_path.display().to_string(),
    )?;
    let cfg_path = dir.join(HF_CONFIG_FILE);
    let config = read_bounded_string(&cfg_path, MAX_METADATA_BYTES)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    let eos = config.as_ref().and_then(hf::eos_token_id);
    let tokenizer = match eos {
        Some(id) if id != tokenizer.eot_id() => tokenizer
            .with_eot_id(id)
            .with_context(|| format!("{}", cfg_path.display()))?,
        _ => tokenizer,
    };
    // Chat template and special tokens (checkpoints written before they were kept have none).
    match TokenizerMeta::read_dir(dir, tokenizer.inner(), config.as_ref())? {
        Some(meta) => Ok(tokenizer.with_meta(meta)),
        None => Ok(tokenizer),
    }
}
