//! `export` and `import`: moving checkpoints to and from Hugging Face model directories.

use crate::config::RunConfig;
use crate::store::checkpoint::{self, CheckpointData};
use crate::store::layout::{HF_CONFIG_FILE, MODEL_FILE, TOKENIZER_FILE};
use crate::store::trainer_state::initial_trainer_state;
use crate::store::NamedTensor;
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::path::Path;

/// Write a directory that `transformers.AutoModelForCausalLM.from_pretrained` and
/// `AutoTokenizer.from_pretrained` load: weights, config, tokenizer files.
pub fn export_checkpoint(ckpt_dir: &Path, out: &Path) -> Result<()> {
    let ckpt = checkpoint::load(ckpt_dir)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for f in [MODEL_FILE, HF_CONFIG_FILE, TOKENIZER_FILE] {
        std::fs::copy(ckpt_dir.join(f), out.join(f)).with_context(|| {
            format!(
                "cannot copy {} to {}",
                ckpt_dir.join(f).display(),
                out.display()
            )
        })?;
    }
    let tokenizer = checkpoint::load_tokenizer(&ckpt)?;
    let eos = tokenizer.eot_token().to_string();
    let tok_cfg = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": eos,
        "eos_token": eos,
        "unk_token": eos,
        "model_max_length": ckpt.model_config.max_seq_len,
        "clean_up_tokenization_spaces": false,
    });
    std::fs::write(
        out.join("tokenizer_config.json"),
        serde_json::to_string_pretty(&tok_cfg)?,
    )?;
    let gen_cfg = json!({"bos_token_id": tokenizer.eot_id(), "eos_token_id": tokenizer.eot_id()});
    std::fs::write(
        out.join("generation_config.json"),
        serde_json::to_string_pretty(&gen_cfg)?,
    )?;
    Ok(())
}

/// Read an HF LLaMa directory (sharded or not, f32/f16/bf16) into a checkpoint at `out`
/// with zero optimizer moments, ready for `--finetune`, `sample` or `export`.
pub fn import_hf(hf_dir: &Path, out: &Path) -> Result<()> {
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
    let mut config = RunConfig {
        model: model_config.clone(),
        ..RunConfig::default()
    };
    config.train.seq_len = config.train.seq_len.min(model_config.max_seq_len);
    config.data.tokenizer = "tokenizer.json".into();
    config.validate()?;
    let moments = zero_moments(&weights);
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
        moments,
        tokenizer_json: tokenizer.to_json_string()?,
        eos_token_id: tokenizer.eot_id(),
    };
    checkpoint::save_to(out, &data)
}

/// AdamW moments of an optimizer that has taken no step yet (both zero), named as a checkpoint
/// stores them: what an imported or freshly built checkpoint carries.
pub fn zero_moments(weights: &[NamedTensor]) -> Vec<NamedTensor> {
    weights
        .iter()
        .flat_map(|w| {
            ["exp_avg", "exp_avg_sq"].map(|s| NamedTensor {
                name: format!("{}.{s}", w.name),
                shape: w.shape.clone(),
                data: vec![0.0; w.data.len()],
            })
        })
        .collect()
}
