//! `export` and `import`: moving checkpoints to and from Hugging Face model directories.

use super::hf_write::{self, ExportDtype};
use crate::data::tokenizer_meta::TokenizerMeta;
use crate::store::checkpoint::{self, CheckpointData, ModelOrigin};
use crate::store::fsio::copy_synced;
use crate::store::hf_layout::{config_json, to_hf};
use crate::store::layout::{HF_CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE};
use crate::store::outputs;
use crate::store::trainer_state::initial_trainer_state;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Write a directory that `transformers.AutoModelForCausalLM.from_pretrained` and
/// `AutoTokenizer.from_pretrained` load, in f32 (what the cockpit's browser does); see
/// [`export_checkpoint_as`].
pub fn export_checkpoint(ckpt_dir: &Path, out: &Path) -> Result<()> {
    export_checkpoint_as(ckpt_dir, out, ExportDtype::F32)
}

/// Write weights in `dtype`, config, tokenizer, `tokenizer_config.json` (chat template and the
/// real bos/eos/pad/unk), `chat_template.jinja` and `generation_config.json`, all mode 0644.
/// `out` must be new or empty and outside any run; the files are written to a staging
/// directory and renamed into place, so a failure leaves nothing half-written.
/// The source is a checkpoint or an HF model directory (read only).
pub fn export_checkpoint_as(ckpt_dir: &Path, out: &Path, dtype: ExportDtype) -> Result<()> {
    outputs::ensure_outside_runs(out, "export --out")?;
    outputs::ensure_fresh_target(out, "export --out")?;
    let ckpt = super::model_dir::open_model(ckpt_dir)?;
    let tokenizer = checkpoint::load_tokenizer(&ckpt)?;
    let staging = outputs::create_staging(out)?;
    let written = write_export(&ckpt, &tokenizer, ckpt_dir, &staging, dtype);
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e.context(format!("{} was not written", out.display())));
    }
    outputs::commit_staging(&staging, out, "export --out")
}

fn write_export(
    ckpt: &checkpoint::LoadedCheckpoint,
    tokenizer: &crate::data::tokenizer::TextTokenizer,
    ckpt_dir: &Path,
    dir: &Path,
    dtype: ExportDtype,
) -> Result<()> {
    match (dtype, &ckpt.origin) {
        // Verified on open: the checkpoint's own file is already what transformers reads.
        (ExportDtype::F32, ModelOrigin::Checkpoint) => {
            copy_synced(&ckpt_dir.join(MODEL_FILE), &dir.join(MODEL_FILE))?;
        }
        // Another dtype, or an HF directory's shards (any float dtype): one file in `dtype`.
        _ => {
            let weights = ckpt.weights.read_all()?;
            hf_write::write_weights(&dir.join(MODEL_FILE), &to_hf(&weights)?, dtype)?
        }
    }
    let config = config_json(&ckpt.model_config, tokenizer.eot_id());
    hf_write::write_metadata(dir, config, tokenizer, ckpt.model_config.max_seq_len, dtype)?;
    hf_write::make_shareable(dir)
}

/// Read an HF LLaMa directory (sharded or not, f32/f16/bf16) into a checkpoint at `out`
/// without optimizer moments, ready for `--finetune`, `sample` or `export`. `out` must be
/// new or empty: nothing already there is replaced.
pub fn import_hf(hf_dir: &Path, out: &Path) -> Result<()> {
    // An import dropped into a run's checkpoints/ would pose as that run's history.
    outputs::ensure_outside_runs(out, "import --out")?;
    outputs::ensure_fresh_target(out, "import --out")?;
    for suffix in ["partial", "old"] {
        let mut side = out.as_os_str().to_owned();
        side.push(format!(".{suffix}"));
        let side = std::path::PathBuf::from(side);
        if side.exists() {
            bail!(
                "import --out {}: {} exists and would be replaced while writing; move it away first",
                out.display(),
                side.display()
            );
        }
    }
    let (model_config, weights, eos) = super::hf::read_hf_dir(hf_dir)?;
    let hf_config = crate::store::fsio::read_bounded_string(
        &hf_dir.join(HF_CONFIG_FILE),
        crate::store::fsio::MAX_METADATA_BYTES,
    )?;
    let hf_config: serde_json::Value = serde_json::from_str(&hf_config)
        .with_context(|| format!("{}: invalid JSON", hf_dir.join(HF_CONFIG_FILE).display()))?;
    let tok_path = hf_dir.join(TOKENIZER_FILE);
    if !tok_path.is_file() {
        bail!(
            "{}: missing; an imported model needs its tokenizer.json",
            tok_path.display()
        );
    }
    let mut tokenizer = crate::data::tokenizer::TextTokenizer::from_file(&tok_path)?;
    if let Some(id) = eos {
        tokenizer = tokenizer
            .with_eot_id(id)
            .with_context(|| format!("{}", hf_dir.join("config.json").display()))?;
    }
    // The chat template and special tokens travel with the weights.
    let meta = match TokenizerMeta::read_dir(hf_dir, tokenizer.inner(), Some(&hf_config))? {
        Some(meta) => meta,
        None => TokenizerMeta::from_config_ids(
            tokenizer.inner(),
            Some(&hf_config),
            &hf_dir.join(HF_CONFIG_FILE),
        )?,
    };
    let tokenizer = tokenizer.with_meta(meta);
    if tokenizer.vocab_size() > model_config.vocab_size {
        bail!(
            "{}: tokenizer has {} tokens, more than the model's vocab_size {}",
            tok_path.display(),
            tokenizer.vocab_size(),
            model_config.vocab_size
        );
    }
    let mut config = super::hf::run_config_for(&model_config);
    config.data.tokenizer = "tokenizer.json".into();
    config.validate()?;
    let run_name = hf_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "imported".into());
    let trainer = initial_trainer_state(
        &config,
        run_name,
        tokenizer.vocab_size(),
        Some(hf_dir.display().to_string()),
    );
    let data = CheckpointData {
        trainer,
        model_config,
        weights,
        // No all-zero moments: `optimizer_state: absent`; a resume starts them at zero.
        moments: None,
        tokenizer_json: tokenizer.to_json_string()?,
        eos_token_id: tokenizer.eot_id(),
        tokenizer_meta: Some(tokenizer.meta()),
    };
    checkpoint::save_to(out, &data)
}
