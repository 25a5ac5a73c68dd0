//! `export` and `import`: moving checkpoints to and from Hugging Face model directories.

use crate::store::checkpoint::{self, CheckpointData, ModelOrigin};
use crate::store::fsio::{copy_synced, write_synced};
use crate::store::layout::{HF_CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE};
use crate::store::outputs;
use crate::store::trainer_state::initial_trainer_state;
use crate::store::{hf_layout, safetensors_io};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::path::Path;

/// Write a directory that `transformers.AutoModelForCausalLM.from_pretrained` and
/// `AutoTokenizer.from_pretrained` load: weights, config, tokenizer files. The source is a
/// checkpoint or an HF model directory (rewritten as one f32 file). `out` must be new or empty
/// and outside any run; the files are written to a staging directory and renamed into place,
/// so a failure leaves nothing half-written.
pub fn export_checkpoint(ckpt_dir: &Path, out: &Path) -> Result<()> {
    outputs::ensure_outside_runs(out, "export --out")?;
    outputs::ensure_fresh_target(out, "export --out")?;
    let ckpt = super::model_dir::open_model(ckpt_dir)?;
    let tokenizer = checkpoint::load_tokenizer(&ckpt)?;
    let staging = outputs::create_staging(out)?;
    let written = write_export(&ckpt, &tokenizer, ckpt_dir, &staging);
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
) -> Result<()> {
    match ckpt.origin {
        // Verified on open: the checkpoint's own file is already what transformers reads.
        ModelOrigin::Checkpoint => {
            copy_synced(&ckpt_dir.join(MODEL_FILE), &dir.join(MODEL_FILE))?;
        }
        // Shards in any float dtype become one f32 file in the checkpoint layout.
        ModelOrigin::HuggingFace => {
            let weights = ckpt.weights.read_all()?;
            let meta = std::collections::HashMap::from([("format".into(), "pt".into())]);
            safetensors_io::write_file_synced(
                &dir.join(MODEL_FILE),
                &hf_layout::to_hf(&weights)?,
                Some(meta),
            )?;
        }
    }
    for f in [HF_CONFIG_FILE, TOKENIZER_FILE] {
        copy_synced(&ckpt_dir.join(f), &dir.join(f))?;
    }
    let eos = tokenizer.eot_token().to_string();
    let tok_cfg = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": eos,
        "eos_token": eos,
        "unk_token": eos,
        "model_max_length": ckpt.model_config.max_seq_len,
        "clean_up_tokenization_spaces": false,
    });
    write_synced(
        &dir.join("tokenizer_config.json"),
        serde_json::to_string_pretty(&tok_cfg)?.as_bytes(),
    )?;
    let gen_cfg = json!({"bos_token_id": tokenizer.eot_id(), "eos_token_id": tokenizer.eot_id()});
    write_synced(
        &dir.join("generation_config.json"),
        serde_json::to_string_pretty(&gen_cfg)?.as_bytes(),
    )
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
    };
    checkpoint::save_to(out, &data)
}
