//! `sample`: generate text from a checkpoint or HF model directory, and the model loading
//! `eval` shares.

use super::resolve_checkpoint;
use crate::cli::SampleArgs;
use anyhow::{bail, Result};
use llite_tui::config::RunConfig;
use llite_tui::data::tokenizer::TextTokenizer;
use llite_tui::store;
use std::io::Write;
use std::path::Path;

/// A checkpoint or Hugging Face model directory loaded for `sample` or `eval` (memory checked
/// first, digests verified, weights mapped), with the run config it records; an unverified
/// model (format 1, or an HF directory) is noted on stderr.
pub(crate) fn load_for_reading(
    checkpoint: &Path,
) -> Result<(store::checkpoint::LoadedCheckpoint, RunConfig)> {
    let ckpt = llite_tui::interop::model_dir::open_model(checkpoint)?;
    let origin = checkpoint.join(store::layout::TRAINER_FILE);
    let cfg = RunConfig::from_toml_str(&ckpt.trainer.config_toml, &origin.display().to_string())?;
    if let Some(notice) = ckpt.notice() {
        eprintln!("note: {notice}");
    }
    Ok((ckpt, cfg))
}

/// `sample`: stream a generation from a checkpoint, with the `[sample]` knobs its config
/// recorded unless a flag overrides one.
pub(crate) fn sample(args: &SampleArgs) -> Result<()> {
    if let Some(path) = &args.config {
        bail!(
            "sample --config {}: sampling uses the config recorded in the checkpoint; set the knobs with --temperature, --top-k, --top-p, --max-tokens, --seed",
            path.display()
        );
    }
    let checkpoint = resolve_checkpoint(&args.checkpoint)?;
    let (ckpt, cfg) = load_for_reading(&checkpoint)?;
    let mut params = cfg.sample.params();
    if let Some(v) = args.max_tokens {
        params.max_tokens = v;
    }
    if let Some(v) = args.temperature {
        params.temperature = v;
    }
    if let Some(v) = args.top_k {
        params.top_k = v;
    }
    if let Some(v) = args.top_p {
        params.top_p = v;
    }
    if let Some(v) = args.seed {
        params.seed = v;
    }
    llite_tui::config::validate_sample(&params).map_err(|e| anyhow::anyhow!("sample: {e}"))?;
    let tokenizer = store::checkpoint::load_tokenizer(&ckpt)?;
    type B = burn::backend::Flex;
    let device = Default::default();
    let model =
        llite_tui::model::load::load_model::<B>(&ckpt.model_config, &ckpt.weights, &device)?;
    if let Some(path) = &args.dump_logits {
        dump_logits(&model, &tokenizer, &args.prompt, path)?;
    }
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let template = match args.raw {
        true => None,
        false => llite_tui::data::template::prompt_template(&cfg, &tokenizer)?,
    };
    let prompt = match &template {
        Some(t) => t.prompt_for(&args.prompt)?,
        None => args.prompt.clone(),
    };
    print!("{prompt}");
    let g = llite_tui::sample::generate(&model, &tokenizer, &prompt, &params, &cancel, |piece| {
        print!("{piece}");
        let _ = std::io::stdout().flush();
    })?;
    println!();
    eprintln!(
        "[{} tokens, {:.1} tokens/s, stop: {:?}]",
        g.tokens, g.tokens_per_s, g.stop
    );
    Ok(())
}

fn dump_logits(
    model: &llite_tui::model::Llama<burn::backend::Flex>,
    tokenizer: &TextTokenizer,
    prompt: &str,
    path: &Path,
) -> Result<()> {
    use burn::tensor::{Int, Tensor, TensorData};
    let ids = tokenizer.encode(prompt)?;
    if ids.is_empty() || ids.len() > model.dims.max_seq_len {
        bail!(
            "--dump-logits needs a prompt of 1..={} tokens, got {}",
            model.dims.max_seq_len,
            ids.len()
        );
    }
    let data: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
    let tokens = Tensor::<burn::backend::Flex, 2, Int>::from_data(
        TensorData::new(data, [1, ids.len()]),
        &Default::default(),
    );
    let logits = model.forward(tokens, 0, None);
    let shape = logits.dims();
    let values = llite_tui::model::params::tensor_to_vec(logits);
    let json = serde_json::json!({"ids": ids, "shape": shape, "logits": values});
    if std::fs::symlink_metadata(path).is_ok() {
        bail!(
            "--dump-logits {}: already exists; pick a new file name",
            path.display()
        );
    }
    llite_tui::store::fsio::write_atomic(path, serde_json::to_string(&json)?.as_bytes())
}
