//! Reading foreign Hugging Face LLaMa directories: `config.json` into our model config and
//! (possibly sharded) safetensors into tensors in internal naming.

use crate::config::{ModelConfig, RopeScaling, RunConfig};
use crate::store::fsio::{read_bounded_string, MAX_METADATA_BYTES};
use crate::store::hf_check::{check_hf_tensors, read_shard_header, resolve_shard, ShardHeader};
use crate::store::hf_layout::eos_token_id;
use crate::store::mapped::MappedWeights;
use crate::store::NamedTensor;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Read a transformers LlamaConfig (rope_theta and the RoPE scaling may sit inside
/// `rope_parameters`, transformers 5's form, or in `rope_theta` / `rope_scaling`).
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
    // Kept only when it differs from d_model / n_heads, so a config that merely spells out
    // the default imports exactly as before (same model hash).
    let head_dim = match v.get("head_dim").filter(|h| !h.is_null()) {
        None => 0,
        Some(h) => {
            let hd = h.as_u64().filter(|&x| x > 0).with_context(|| {
                format!(
                    "{}: head_dim {h} is not a positive integer",
                    origin.display()
                )
            })? as usize;
            if n_heads > 0 && d_model.is_multiple_of(n_heads) && hd == d_model / n_heads {
                0
            } else {
                hd
            }
        }
    };
    let rope_theta = v
        .get("rope_theta")
        .or_else(|| v.get("rope_parameters").and_then(|r| r.get("rope_theta")))
        .and_then(Value::as_f64)
        .unwrap_or(10000.0);
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
        head_dim,
        rope_theta,
        rope_scaling: rope_scaling_from_json(v, origin)?,
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

/// The RoPE scaling of a config: `rope_scaling` (`rope_type` or the older `type`), else
/// `rope_parameters`; `default` or absent is plain RoPE. Kinds other than `linear` and
/// `llama3` (dynamic, yarn, longrope...) are refused by name rather than run wrong.
fn rope_scaling_from_json(v: &Value, origin: &Path) -> Result<RopeScaling> {
    let Some(obj) = v
        .get("rope_scaling")
        .filter(|s| !s.is_null())
        .or_else(|| v.get("rope_parameters").filter(|s| !s.is_null()))
    else {
        return Ok(RopeScaling::None);
    };
    let shown = origin.display();
    let kind = obj
        .get("rope_type")
        .or_else(|| obj.get("type"))
        .and_then(Value::as_str);
    let number = |key: &str| -> Result<f64> {
        obj.get(key).and_then(Value::as_f64).with_context(|| {
            format!(
                "{shown}: rope scaling `{}` needs a number `{key}`",
                kind.unwrap_or("?")
            )
        })
    };
    match kind {
        None | Some("default") if obj.get("factor").is_none() => Ok(RopeScaling::None),
        Some("linear") => Ok(RopeScaling::Linear {
            factor: number("factor")?,
        }),
        Some("llama3") => {
            let original = number("original_max_position_embeddings")?;
            if original.fract() != 0.0 || !(1.0..=u32::MAX as f64).contains(&original) {
                bail!("{shown}: rope scaling original_max_position_embeddings {original} is not a positive integer");
            }
            Ok(RopeScaling::Llama3 {
                factor: number("factor")?,
                low_freq_factor: number("low_freq_factor")?,
                high_freq_factor: number("high_freq_factor")?,
                original_max_position_embeddings: original as usize,
            })
        }
        _ => bail!("{shown}: RoPE scaling {obj} is not supported (only linear and llama3)"),
    }
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
        assert!(m.rope_scaling.is_none());
    }

    /// Llama-3.2-1B's config.json fields, in both the transformers 4 form (`rope_scaling`)
    /// and the transformers 5 form (`rope_parameters`), and back through our writer.
    #[test]
    fn llama3_configs_read_and_write_back() {
        let llama3 = RopeScaling::Llama3 {
            factor: 32.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192,
        };
        let v4 = json!({"model_type": "llama", "vocab_size": 128256, "hidden_size": 2048,
            "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
            "head_dim": 64, "intermediate_size": 8192, "max_position_embeddings": 131072,
            "rope_theta": 500000.0, "tie_word_embeddings": true, "rms_norm_eps": 1e-5,
            "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                "original_max_position_embeddings": 8192, "rope_type": "llama3"}});
        let m = model_config_from_json(&v4, Path::new("config.json")).unwrap();
        assert_eq!(m.rope_scaling, llama3);
        // 64 = 2048 / 32 is the default width: stored as 0.
        assert_eq!((m.head_dim, m.resolved_head_dim()), (0, 64));
        let mut v5 = v4.clone();
        let params = v5.as_object_mut().unwrap();
        let mut rp = params.remove("rope_scaling").unwrap();
        rp["rope_theta"] = params.remove("rope_theta").unwrap();
        params.insert("rope_parameters".into(), rp);
        assert_eq!(model_config_from_json(&v5, Path::new("c")).unwrap(), m);
        // A head width of its own, and our config.json reads back to the same model.
        let wide = ModelConfig {
            head_dim: 80,
            ..m.clone()
        };
        let written = crate::store::hf_layout::config_json(&wide, 2);
        assert_eq!(written["head_dim"], 80);
        assert_eq!(written["rope_scaling"]["rope_type"], "llama3");
        assert_eq!(
            model_config_from_json(&written, Path::new("c")).unwrap(),
            wide
        );
        let plain = crate::store::hf_layout::config_json(&ModelConfig::default(), 2);
        assert!(plain.get("rope_scaling").is_none());
    }

    #[test]
    fn linear_scaling_reads_and_unknown_kinds_are_refused() {
        let base = json!({"model_type": "llama", "vocab_size": 10, "hidden_size": 8,
            "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16});
        let with = |scaling: Value| {
            let mut v = base.clone();
            v["rope_scaling"] = scaling;
            model_config_from_json(&v, Path::new("hf/config.json"))
        };
        let m = with(json!({"type": "linear", "factor": 4.0})).unwrap();
        assert_eq!(m.rope_scaling, RopeScaling::Linear { factor: 4.0 });
        assert!(with(Value::Null).unwrap().rope_scaling.is_none());
        for (bad, needle) in [
            (json!({"rope_type": "yarn", "factor": 4.0}), "not supported"),
            (
                json!({"rope_type": "dynamic", "factor": 2.0}),
                "not supported",
            ),
            (
                json!({"rope_type": "llama3", "factor": 8.0}),
                "original_max_position_embeddings",
            ),
            (json!({"rope_type": "linear"}), "factor"),
        ] {
            let e = format!("{:#}", with(bad).unwrap_err());
            assert!(e.contains(needle) && e.contains("hf/config.json"), "{e}");
        }
    }
}
