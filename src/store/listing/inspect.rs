//! Cheap and full checks of one checkpoint directory without loading tensors: headers,
//! sizes and the model config (`inspect_checkpoint`), or every byte's digest (`verify_digests`).

use crate::config::ModelConfig;
use crate::store::digest::{check_size, verify_file};
use crate::store::fsio::open_regular;
use crate::store::layout::{
    HF_CONFIG_FILE, MODEL_FILE, OPTIMIZER_FILE, TOKENIZER_FILE, TRAINER_FILE,
};
use crate::store::safetensors_io::read_header;
use crate::store::structure::{
    check_config_json, check_header, expected_moments, expected_weights,
};
use crate::store::trainer_state::{
    read_trainer_record, OptimizerState, TrainerRecord, TrainerState,
};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// A checkpoint whose file set passed the cheap checks: `trainer.json` (its own digest
/// verified), the model config it records, and the other files present at their recorded
/// sizes with the tensors that config implies.
pub struct InspectedCheckpoint {
    pub record: TrainerRecord,
    pub model_config: ModelConfig,
}

/// Cheap checks of a checkpoint directory, reading only `trainer.json`, `config.json` and the
/// safetensors headers: names, shapes and dtypes against the model config, sizes against
/// `trainer.json`. Special files are refused without blocking.
pub fn inspect_checkpoint(dir: &Path) -> Result<InspectedCheckpoint> {
    if !dir.is_dir() {
        bail!("{}: not a checkpoint directory", dir.display());
    }
    let record = read_trainer_record(dir)?;
    let trainer_path = dir.join(TRAINER_FILE);
    let model_config = crate::config::RunConfig::from_toml_str(
        &record.state.config_toml,
        &trainer_path.display().to_string(),
    )?
    .model;
    // A checkpoint without moments (an import) must not be taken for one that lost them: only
    // `optimizer_state: absent` in the (self-digested) trainer.json excuses the file.
    let has_moments = record.state.optimizer_state == OptimizerState::Present;
    let mut tensor_files = vec![(MODEL_FILE, expected_weights(&model_config))];
    if has_moments {
        tensor_files.push((OPTIMIZER_FILE, expected_moments(&model_config)));
    }
    for (file, expected) in tensor_files {
        let path = dir.join(file);
        let header = read_header(&path)?;
        if let Some(recorded) = record.digest(file) {
            check_size(&path, header.file_bytes, recorded)?;
        }
        check_header(&path, &header, &expected)?;
    }
    check_config_json(&dir.join(HF_CONFIG_FILE), &model_config)?;
    let tokenizer = dir.join(TOKENIZER_FILE);
    let len = open_regular(&tokenizer)?
        .metadata()
        .with_context(|| format!("cannot stat {}", tokenizer.display()))?
        .len();
    if let Some(recorded) = record.digest(TOKENIZER_FILE) {
        check_size(&tokenizer, len, recorded)?;
    }
    if let Some(files) = &record.files {
        for f in [MODEL_FILE, OPTIMIZER_FILE, HF_CONFIG_FILE, TOKENIZER_FILE] {
            if !files.contains_key(f) && (has_moments || f != OPTIMIZER_FILE) {
                bail!(
                    "{}: records no digest for {f}; the file is corrupt or was edited",
                    trainer_path.display()
                );
            }
        }
    }
    Ok(InspectedCheckpoint {
        record,
        model_config,
    })
}

/// Stream every file of a checkpoint through blake3 and compare with `trainer.json`; returns
/// the bytes verified. A checkpoint written before digests (format 1) verifies nothing.
pub fn verify_digests(dir: &Path, record: &TrainerRecord) -> Result<u64> {
    let mut bytes = 0;
    for (file, digest) in record.files.iter().flatten() {
        if !is_checkpoint_file(file) {
            bail!(
                "{}: records a digest for `{file}`, which is not a checkpoint file",
                dir.join(TRAINER_FILE).display()
            );
        }
        bytes += verify_file(&dir.join(file), digest)?;
    }
    Ok(bytes)
}

/// The files a checkpoint holds besides `trainer.json` (the only names a digest may name, so a
/// hostile `trainer.json` cannot make a verifier read `../../somewhere`).
fn is_checkpoint_file(name: &str) -> bool {
    use crate::data::tokenizer_meta::{GENERATION_CONFIG_FILE, TOKENIZER_CONFIG_FILE};
    [
        MODEL_FILE,
        OPTIMIZER_FILE,
        HF_CONFIG_FILE,
        TOKENIZER_FILE,
        TOKENIZER_CONFIG_FILE,
        GENERATION_CONFIG_FILE,
    ]
    .contains(&name)
}

/// Validate a checkpoint directory's file set cheaply, returning its trainer state.
pub fn validate_checkpoint_dir(dir: &Path) -> Result<TrainerState> {
    Ok(inspect_checkpoint(dir)?.record.state)
}
