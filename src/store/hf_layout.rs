//! The checkpoint's tensor format is Hugging Face LlamaForCausalLM: tensor names, the
//! `[out, in]` layout of linear weights and `config.json`. Both the checkpoint writer and the
//! HF importer go through these mappings.

use super::safetensors_io::OutTensor;
use super::tensors::NamedTensor;
use crate::config::{ModelConfig, RopeScaling};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::borrow::Cow;

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

/// Row-major `[rows, cols]` -> `[cols, rows]` in cache-sized tiles, bands of output rows on
/// rayon's threads (a checkpoint transposes every matrix on save and on load, so a naive
/// strided loop would dominate both).
pub fn transpose_data(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    use rayon::prelude::*;
    const TILE: usize = 32;
    let mut out = vec![0f32; src.len()];
    if rows == 0 || cols == 0 {
        return out;
    }
    out.par_chunks_mut(rows * TILE)
        .enumerate()
        .for_each(|(band, chunk)| {
            let c0 = band * TILE;
            let c1 = (c0 + TILE).min(cols);
            for r0 in (0..rows).step_by(TILE) {
                for c in c0..c1 {
                    let row = &mut chunk[(c - c0) * rows..(c - c0 + 1) * rows];
                    for r in r0..(r0 + TILE).min(rows) {
                        row[r] = src[r * cols + c];
                    }
                }
            }
        });
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

/// A transformers `LlamaConfig` for this model (`rope_scaling` only when the model has one,
/// in the form Llama 3.x checkpoints ship).
pub fn config_json(m: &ModelConfig, eos_token_id: u32) -> Value {
    let mut v = json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": m.vocab_size,
        "hidden_size": m.d_model,
        "intermediate_size": m.ff_dim,
        "num_hidden_layers": m.n_layers,
        "num_attention_heads": m.n_heads,
        "num_key_value_heads": m.n_kv_heads,
        "head_dim": m.resolved_head_dim(),
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
    });
    if let Some(scaling) = rope_scaling_json(&m.rope_scaling) {
        v["rope_scaling"] = scaling;
    }
    v
}

/// HF's `rope_scaling` object (`rope_type` plus its parameters), `None` for plain RoPE.
pub fn rope_scaling_json(s: &RopeScaling) -> Option<Value> {
    match *s {
        RopeScaling::None => None,
        RopeScaling::Linear { factor } => Some(json!({"rope_type": "linear", "factor": factor})),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => Some(json!({
            "rope_type": "llama3",
            "factor": factor,
            "low_freq_factor": low_freq_factor,
            "high_freq_factor": high_freq_factor,
            "original_max_position_embeddings": original_max_position_embeddings,
        })),
    }
}

/// Put a tokenizer's real bos and pad ids into a `config_json` (which starts with bos = eos,
/// the GPT-2 convention of our own tokenizers).
pub fn set_special_ids(config: &mut Value, meta: &crate::data::tokenizer_meta::TokenizerMeta) {
    config["bos_token_id"] = meta.bos.as_ref().map_or(Value::Null, |t| json!(t.id));
    if let Some(p) = &meta.pad {
        config["pad_token_id"] = json!(p.id);
    }
}

/// `eos_token_id` of a config (an integer or a list whose first entry is used).
pub fn eos_token_id(v: &Value) -> Option<u32> {
    let e = v.get("eos_token_id")?;
    e.as_u64()
        .or_else(|| e.as_array().and_then(|a| a.first()).and_then(Value::as_u64))
        .map(|x| x as u32)
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
}
