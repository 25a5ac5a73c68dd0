//! Hugging Face LlamaForCausalLM interop: tensor names, the `[out, in]` layout, `config.json`
//! in both directions, and loading a (possibly sharded) HF model directory.

use super::safetensors_io::{self, OutTensor};
use crate::config::ModelConfig;
use crate::model::params::NamedTensor;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::borrow::Cow;
use std::path::Path;

const ATTN: [&str; 4] = ["q_proj", "k_proj", "v_proj", "o_proj"];
const MLP: [&str; 3] = ["gate_proj", "up_proj", "down_proj"];

/// HF name of an internal parameter path and whether its matrix must be transposed
/// (we store linear weights `[in, out]`, HF stores `[out, in]`).
pub fn hf_name(path: &str) -> Option<(String, bool)> {
    match path {
        "embed_tokens" => return Some(("model.embed_tokens.weight".into(), false)),
        "norm" => return Some(("model.norm.weight".into(), false)),
        "lm_head" => return Some(("lm_head.weight".into(), true)),
        _ => {}
    }
    let rest = path.strip_prefix("layers.")?;
    let (index, field) = rest.split_once('.')?;
    index.parse::<usize>().ok()?;
    let (group, transpose) = if ATTN.contains(&field) {
        ("self_attn.", true)
    } else if MLP.contains(&field) {
        ("mlp.", true)
    } else if field == "input_layernorm" || field == "post_attention_layernorm" {
        ("", false)
    } else {
        return None;
    };
    Some((
        format!("model.layers.{index}.{group}{field}.weight"),
        transpose,
    ))
}

/// Inverse of [`hf_name`].
pub fn internal_name(hf: &str) -> Option<(String, bool)> {
    match hf {
        "model.embed_tokens.weight" => return Some(("embed_tokens".into(), false)),
        "model.norm.weight" => return Some(("norm".into(), false)),
        "lm_head.weight" => return Some(("lm_head".into(), true)),
        _ => {}
    }
    let rest = hf.strip_prefix("model.layers.")?.strip_suffix(".weight")?;
    let (index, field) = rest.split_once('.')?;
    let field = field
        .strip_prefix("self_attn.")
        .or_else(|| field.strip_prefix("mlp."))
        .unwrap_or(field);
    let path = format!("layers.{index}.{field}");
    let (back, transpose) = hf_name(&path)?;
    (back == hf).then_some((path, transpose))
}

/// Row-major `[rows, cols]` -> `[cols, rows]` in cache-sized tiles (a checkpoint transposes
/// every matrix, so a naive strided loop would dominate the save time).
fn transpose_data(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    const TILE: usize = 32;
    let mut out = vec![0f32; src.len()];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    out[c * rows + r] = src[r * cols + c];
                }
            }
        }
    }
    out
}

fn transpose(t: NamedTensor, name: String) -> NamedTensor {
    let (rows, cols) = (t.shape[0], t.shape[1]);
    NamedTensor {
        name,
        shape: vec![cols, rows],
        data: transpose_data(&t.data, rows, cols),
    }
}

/// Rename (and transpose) internal tensors to HF LlamaForCausalLM layout, borrowing what
/// needs no transpose. `suffix` keeps optimizer-moment suffixes like `.exp_avg` attached.
pub fn to_hf(tensors: &[NamedTensor]) -> Result<Vec<OutTensor<'_>>> {
    tensors
        .iter()
        .map(|t| {
            let (base, suffix) = split_suffix(&t.name);
            let (hf, tr) =
                hf_name(base).with_context(|| format!("no HF name for parameter `{}`", t.name))?;
            let name = format!("{hf}{suffix}");
            Ok(if tr {
                let (rows, cols) = (t.shape[0], t.shape[1]);
                OutTensor {
                    name,
                    shape: vec![cols, rows],
                    data: Cow::Owned(transpose_data(&t.data, rows, cols)),
                }
            } else {
                OutTensor {
                    name,
                    ..OutTensor::borrowed(t)
                }
            })
        })
        .collect()
}

/// Rename HF tensors to internal paths; rotary caches and other non-parameters are dropped,
/// a tied model's redundant `lm_head.weight` too.
pub fn from_hf(tensors: Vec<NamedTensor>, tied: bool) -> Result<Vec<NamedTensor>> {
    let mut out = Vec::new();
    for t in tensors {
        if t.name.ends_with("rotary_emb.inv_freq") {
            continue;
        }
        let (base, suffix) = split_suffix(&t.name);
        let Some((path, tr)) = internal_name(base) else {
            bail!("tensor `{}` is not part of a LlamaForCausalLM", t.name);
        };
        if tied && path == "lm_head" {
            continue;
        }
        if tr && t.shape.len() != 2 {
            bail!(
                "tensor `{}` should be a matrix, has shape {:?}",
                t.name,
                t.shape
            );
        }
        let name = format!("{path}{suffix}");
        out.push(if tr {
            transpose(t, name)
        } else {
            NamedTensor { name, ..t }
        });
    }
    Ok(out)
}

fn split_suffix(name: &str) -> (&str, &str) {
    for s in [".exp_avg_sq", ".exp_avg"] {
        if let Some(base) = name.strip_suffix(s) {
            return (base, s);
        }
    }
    (name, "")
}

/// A transformers `LlamaConfig` for this model.
pub fn config_json(m: &ModelConfig, eos_token_id: u32) -> Value {
    json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": m.vocab_size,
        "hidden_size": m.d_model,
        "intermediate_size": m.ff_dim,
        "num_hidden_layers": m.n_layers,
        "num_attention_heads": m.n_heads,
        "num_key_value_heads": m.n_kv_heads,
        "head_dim": m.d_model / m.n_heads,
        "max_position_embeddings": m.max_seq_len,
        "rms_norm_eps": m.norm_eps,
        "rope_theta": m.rope_theta,
        "tie_word_embeddings": m.tie_embeddings,
        "hidden_act": "silu",
        "attention_bias": false,
        "mlp_bias": false,
        "bos_token_id": eos_token_id,
        "eos_token_id": eos_token_id,
        "torch_dtype": "float32",
        "initializer_range": 0.02,
    })
}

/// `eos_token_id` of a config (an integer or a list whose first entry is used).
pub fn eos_token_id(v: &Value) -> Option<u32> {
    let e = v.get("eos_token_id")?;
    e.as_u64()
        .or_else(|| e.as_array().and_then(|a| a.first()).and_then(Value::as_u64))
        .map(|x| x as u32)
}

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

/// Load an HF model directory: `config.json` plus `model.safetensors` or the shards listed in
/// `model.safetensors.index.json`. Returns the config and tensors in internal naming.
pub fn read_hf_dir(dir: &Path) -> Result<(ModelConfig, Vec<NamedTensor>, Option<u32>)> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).with_context(|| {
        format!(
            "{}: missing; not a Hugging Face model directory",
            cfg_path.display()
        )
    })?;
    let json: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: invalid JSON", cfg_path.display()))?;
    let config = model_config_from_json(&json, &cfg_path)?;
    let index = dir.join("model.safetensors.index.json");
    let files: Vec<std::path::PathBuf> = if index.is_file() {
        let idx: Value = serde_json::from_str(&std::fs::read_to_string(&index)?)
            .with_context(|| format!("{}: invalid JSON", index.display()))?;
        let map = idx
            .get("weight_map")
            .and_then(Value::as_object)
            .with_context(|| format!("{}: no weight_map", index.display()))?;
        let mut shards: Vec<String> = map
            .values()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        shards.sort();
        shards.dedup();
        shards.into_iter().map(|s| dir.join(s)).collect()
    } else {
        vec![dir.join("model.safetensors")]
    };
    let mut tensors = Vec::new();
    for f in files {
        tensors.extend(safetensors_io::read_file(&f)?);
    }
    let tensors = from_hf(tensors, config.tie_embeddings)?;
    Ok((config, tensors, eos_token_id(&json)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_follow_llama_naming() {
        let cases = [
            ("embed_tokens", "model.embed_tokens.weight"),
            ("layers.0.q_proj", "model.layers.0.self_attn.q_proj.weight"),
            (
                "layers.11.o_proj",
                "model.layers.11.self_attn.o_proj.weight",
            ),
            ("layers.2.gate_proj", "model.layers.2.mlp.gate_proj.weight"),
            ("layers.2.down_proj", "model.layers.2.mlp.down_proj.weight"),
            (
                "layers.3.input_layernorm",
                "model.layers.3.input_layernorm.weight",
            ),
            (
                "layers.3.post_attention_layernorm",
                "model.layers.3.post_attention_layernorm.weight",
            ),
            ("norm", "model.norm.weight"),
            ("lm_head", "lm_head.weight"),
        ];
        for (internal, hf) in cases {
            assert_eq!(hf_name(internal).unwrap().0, hf);
            assert_eq!(internal_name(hf).unwrap().0, internal);
        }
        assert!(internal_name("model.layers.0.self_attn.q_proj.bias").is_none());
        assert!(internal_name("model.layers.0.mlp.q_proj.weight").is_none());
    }

    #[test]
    fn rope_theta_inside_rope_parameters_is_read() {
        let v = json!({"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 16, "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"}});
        let m = model_config_from_json(&v, Path::new("config.json")).unwrap();
        assert_eq!(m.rope_theta, 100000.0);
        assert_eq!(m.n_kv_heads, 2);
    }
}
