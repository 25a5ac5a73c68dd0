//! Reading foreign Hugging Face LLaMa directories: `config.json` into our model config and
//! (possibly sharded) safetensors into tensors in internal naming.

use crate::config::{ModelConfig, RunConfig};
use crate::store::fsio::{read_bounded_string, MAX_METADATA_BYTES};
use crate::store::hf_check::{check_hf_tensors, read_shard_header, resolve_shard, ShardHeader};
use crate::store::hf_layout::eos_token_id;
use crate::store::mapped::MappedWeights;
use crate::store::NamedTensor;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Read a transformers LlamaConfig (rope_theta may sit inside `rope_parameters`).
pub fn model_config_from_json(v: &Value, origin: &Path) -> Result<ModelConfig> {
    let get = |k: &str| -> Result<u64> {
        v.get(k)
            .and_then(Value::as_u64)
            .with_context(|| format!("{}: missing integer `{k}`", origin.display()))
    };
    if let Some(arch) = v.get("model_type").and_then(Value::as_str) {
        if arch != "llama" {
            bail!(
                "{}: model_type is `{arch}`, only `llama` is supported",
                origin.display()
            );
        }
    }
    let d_model = get("hidden_size")? as usize;
    let n_heads = get("num_attention_heads")? as usize;
    if let Some(hd) = v.get("head_dim").and_then(Value::as_u64) {
        if hd as usize * n_heads != d_model {
            bail!(
                "{}: head_dim {hd} x heads {n_heads} != hidden_size {d_model}; such models are not supported",
                origin.display()
            );
        }
    }
    let rope_theta = v
        .get("rope_theta")
        .or_else(|| v.get("rope_parameters").and_then(|r| r.get("rope_theta")))
        .and_then(Value::as_f64)
        .unwrap_or(10000.0);
    if let Some(scaling) = v.get("rope_scaling").filter(|s| !s.is_null()) {
        bail!(
            "{}: rope_scaling {scaling} is not supported",
            origin.display()
        );
    }
    Ok(ModelConfig {
        vocab_size: get("vocab_size")? as usize,
        d_model,
        n_layers: get("num_hidden_layers")? as usize,
        n_heads,
        n_kv_heads: v
            .get("num_key_value_heads")
            .and_then(Value::as_u64)
            .map(|x| x as usize)
            .unwrap_or(n_heads),
        ff_dim: get("intermediate_size")? as usize,
        max_seq_len: v
            .get("max_position_embeddings")
            .and_then(Value::as_u64)
            .unwrap_or(2048) as usize,
        rope_theta,
        norm_eps: v
            .get("rms_norm_eps")
            .and_then(Value::as_f64)
            .unwrap_or(1e-6),
        tie_embeddings: v
            .get("tie_word_embeddings")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// A Hugging Face model directory whose config and safetensors headers passed every check,
/// no tensor data read yet.
pub struct HfModelDir {
    pub config: ModelConfig,
    /// `config.json` as read, for the end-of-text id and fields we do not model.
    pub json: Value,
    /// The weight files: `model.safetensors` or the index's shards, each inside the directory.
    pub files: Vec<PathBuf>,
}

/// Check an HF model directory without reading tensor data: `config.json` validated and
/// checked against available memory, shard paths resolved inside `dir`, and every
/// safetensors header declaring exactly the tensors and shapes the config implies.
pub fn inspect_hf_dir(dir: &Path) -> Result<HfModelDir> {
    let (config, json) = read_hf_config(dir)?;
    let cfg_path = dir.join("config.json");
    let index = dir.join("model.safetensors.index.json");
    let files: Vec<PathBuf> = if index.exists() {
        let idx: Value = serde_json::from_str(&read_bounded_string(&index, MAX_METADATA_BYTES)?)
            .with_context(|| format!("{}: invalid JSON", index.display()))?;
        let map = idx
            .get("weight_map")
            .and_then(Value::as_object)
            .with_context(|| format!("{}: no weight_map", index.display()))?;
        let mut shards: Vec<String> = map
            .values()
            .map(|v| {
                v.as_str().map(String::from).with_context(|| {
                    format!(
                        "{}: weight_map value {v} is not a file name",
                        index.display()
                    )
                })
            })
            .collect::<Result<_>>()?;
        shards.sort();
        shards.dedup();
        shards
            .iter()
            .map(|s| resolve_shard(dir, s))
            .collect::<Result<_>>()?
    } else {
        vec![dir.join("model.safetensors")]
    };
    let headers: Vec<ShardHeader> = files
        .iter()
        .map(|f| read_shard_header(f))
        .collect::<Result<_>>()?;
    check_hf_tensors(&config, &cfg_path, &headers)?;
    Ok(HfModelDir {
        config,
        json,
        files,
    })
}

/// `config.json` of an HF directory, validated and checked against available memory.
pub fn read_hf_config(dir: &Path) -> Result<(ModelConfig, Value)> {
    let cfg_path = dir.join("config.json");
    if !cfg_path.exists() {
        bail!(
            "{}: missing; not a Hugging Face model directory",
            cfg_path.display()
        );
    }
    let text = read_bounded_string(&cfg_path, MAX_METADATA_BYTES)?;
    let json: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: invalid JSON", cfg_path.display()))?;
    let config = model_config_from_json(&json, &cfg_path)?;
    run_config_for(&config)
        .validate()
        .map_err(|e| anyhow::anyhow!("{}: {e}", cfg_path.display()))?;
    crate::resources::ensure_weights_fit(&config)?;
    Ok((config, json))
}

/// The weights of a checked HF directory, mapped (NaN/Inf refused) and read one tensor at a
/// time.
pub fn map_weights(hf: &HfModelDir) -> Result<MappedWeights> {
    let files: Vec<_> = hf.files.iter().map(|f| (f.clone(), None)).collect();
    MappedWeights::open(&files, hf.config.tie_embeddings)
}

/// Load an HF model directory: `config.json` plus `model.safetensors` or the shards listed in
/// `model.safetensors.index.json`, all checked first ([`inspect_hf_dir`]). Returns the config,
/// every tensor in internal naming and the end-of-text id the config names.
pub fn read_hf_dir(dir: &Path) -> Result<(ModelConfig, Vec<NamedTensor>, Option<u32>)> {
    let hf = inspect_hf_dir(dir)?;
    let tensors = map_weights(&hf)?.read_all()?;
    Ok((hf.config, tensors, eos_token_id(&hf.json)))
}

/// The run config an imported model gets: defaults around its model, the context capped.
pub fn run_config_for(model: &ModelConfig) -> RunConfig {
    let mut config = RunConfig {
        model: model.clone(),
        ..RunConfig::default()
    };
    config.train.seq_len = config.train.seq_len.min(model.max_seq_len);
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rope_theta_inside_rope_parameters_is_read() {
        let v = json!({"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 16, "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"}});
        let m = model_config_from_json(&v, Path::new("config.json")).unwrap();
        assert_eq!(m.rope_theta, 100000.0);
        assert_eq!(m.n_kv_heads, 2);
    }
}
