//! Cheap structural checks of a checkpoint: the tensor names, shapes and dtypes its
//! safetensors headers promise, and its `config.json`, against the model config in
//! `trainer.json`, without reading tensor data, so listings flag a swapped, missing or
//! mis-shaped tensor in milliseconds.

use super::fsio::{read_bounded, MAX_METADATA_BYTES};
use super::hf_layout::hf_name;
use super::safetensors_io::{DeclaredTensor, Header};
use super::tensors::NamedTensor;
use crate::config::ModelConfig;
use anyhow::{bail, Context, Result};
use safetensors::tensor::Dtype;
use std::collections::BTreeMap;
use std::path::Path;

/// HF name -> shape of every weight a checkpoint of `m` holds (`lm_head` only when untied).
pub fn expected_weights(m: &ModelConfig) -> BTreeMap<String, Vec<usize>> {
    let d = m.d_model;
    // Saturating: listings call this on configs read from disk before anything else.
    let q = m.resolved_head_dim().saturating_mul(m.n_heads);
    let kv = m.resolved_head_dim().saturating_mul(m.n_kv_heads);
    let mut out = BTreeMap::new();
    let mut put = |internal: &str, shape: Vec<usize>| {
        let (name, _) = hf_name(internal).expect("every model parameter has an HF name");
        out.insert(name, shape);
    };
    put("embed_tokens", vec![m.vocab_size, d]);
    put("norm", vec![d]);
    if !m.tie_embeddings {
        put("lm_head", vec![m.vocab_size, d]);
    }
    for i in 0..m.n_layers {
        put(&format!("layers.{i}.input_layernorm"), vec![d]);
        put(&format!("layers.{i}.post_attention_layernorm"), vec![d]);
        put(&format!("layers.{i}.q_proj"), vec![q, d]);
        put(&format!("layers.{i}.k_proj"), vec![kv, d]);
        put(&format!("layers.{i}.v_proj"), vec![kv, d]);
        put(&format!("layers.{i}.o_proj"), vec![d, q]);
        put(&format!("layers.{i}.gate_proj"), vec![m.ff_dim, d]);
        put(&format!("layers.{i}.up_proj"), vec![m.ff_dim, d]);
        put(&format!("layers.{i}.down_proj"), vec![d, m.ff_dim]);
    }
    out
}

/// HF name -> shape of every AdamW moment (`.exp_avg` and `.exp_avg_sq` per weight).
pub fn expected_moments(m: &ModelConfig) -> BTreeMap<String, Vec<usize>> {
    expected_weights(m)
        .into_iter()
        .flat_map(|(name, shape)| {
            [".exp_avg", ".exp_avg_sq"].map(|s| (format!("{name}{s}"), shape.clone()))
        })
        .collect()
}

/// Refuse a header whose tensors are not exactly `expected`: one missing, one extra, a wrong
/// shape or a dtype other than f32 (checkpoints are written in f32) names the tensor.
pub fn check_header(
    path: &Path,
    header: &Header,
    expected: &BTreeMap<String, Vec<usize>>,
) -> Result<()> {
    let missing: Vec<&String> = expected
        .keys()
        .filter(|k| !header.tensors.contains_key(*k))
        .collect();
    if let Some(first) = missing.first() {
        bail!(
            "{}: tensor `{first}` is missing ({} of {} expected tensors absent)",
            path.display(),
            missing.len(),
            expected.len()
        );
    }
    for (name, DeclaredTensor { dtype, shape }) in &header.tensors {
        let Some(want) = expected.get(name) else {
            bail!(
                "{}: unexpected tensor `{name}`: not part of this model's config",
                path.display()
            );
        };
        if shape != want {
            bail!(
                "{}: tensor `{name}` has shape {shape:?}, the config says {want:?}",
                path.display()
            );
        }
        if *dtype != Dtype::F32 {
            bail!(
                "{}: tensor `{name}` is {dtype:?}; checkpoints hold f32",
                path.display()
            );
        }
    }
    Ok(())
}

/// Refuse a `config.json` (bounded read, special files refused) that is not JSON or that
/// disagrees with the model config the checkpoint was trained with.
pub fn check_config_json(path: &Path, m: &ModelConfig) -> Result<()> {
    let bytes = read_bounded(path, MAX_METADATA_BYTES)?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    let expect = [
        ("vocab_size", m.vocab_size as u64),
        ("hidden_size", m.d_model as u64),
        ("intermediate_size", m.ff_dim as u64),
        ("num_hidden_layers", m.n_layers as u64),
        ("num_attention_heads", m.n_heads as u64),
        ("num_key_value_heads", m.n_kv_heads as u64),
    ];
    for (key, want) in expect {
        let got = v.get(key).and_then(|x| x.as_u64());
        if got != Some(want) {
            bail!(
                "{}: `{key}` is {}, trainer.json's model config says {want}",
                path.display(),
                got.map(|g| g.to_string())
                    .unwrap_or_else(|| "missing".into())
            );
        }
    }
    let head_dim = v.get("head_dim").and_then(|x| x.as_u64());
    if head_dim.is_some_and(|h| h != m.resolved_head_dim() as u64) {
        bail!(
            "{}: `head_dim` is {}, trainer.json's model config says {}",
            path.display(),
            head_dim.unwrap_or_default(),
            m.resolved_head_dim()
        );
    }
    let tied = v.get("tie_word_embeddings").and_then(|x| x.as_bool());
    if tied.is_some_and(|t| t != m.tie_embeddings) {
        bail!(
            "{}: `tie_word_embeddings` disagrees with trainer.json's model config",
            path.display()
        );
    }
    Ok(())
}

/// Refuse tensors holding NaN or Inf, naming the first one: training on them is silent ruin.
pub fn refuse_non_finite(path: &Path, tensors: &[NamedTensor]) -> Result<()> {
    for t in tensors {
        if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
            bail!(
                "{}: tensor `{}` holds {} (at element {i}); the checkpoint is unusable, pick another one (llite-tui ckpt ls)",
                path.display(),
                t.name,
                t.data[i]
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_sets_cover_every_parameter_and_both_moments() {
        let m = ModelConfig {
            vocab_size: 100,
            d_model: 16,
            n_layers: 2,
            n_heads: 4,
            n_kv_heads: 2,
            ff_dim: 24,
            tie_embeddings: false,
            ..ModelConfig::default()
        };
        let w = expected_weights(&m);
        assert_eq!(w.len(), 3 + 2 * 9);
        assert_eq!(w["model.layers.1.self_attn.k_proj.weight"], vec![8, 16]);
        assert_eq!(w["model.layers.0.mlp.down_proj.weight"], vec![16, 24]);
        assert_eq!(w["lm_head.weight"], vec![100, 16]);
        let total: usize = w.values().map(|s| s.iter().product::<usize>()).sum();
        assert_eq!(total as u64, crate::model::stats::param_count(&m).total);
        let mo = expected_moments(&m);
        assert_eq!(mo.len(), 2 * w.len());
        assert_eq!(mo["model.norm.weight.exp_avg_sq"], vec![16]);
        let tied = expected_weights(&ModelConfig {
            tie_embeddings: true,
            ..m
        });
        assert!(!tied.contains_key("lm_head.weight"));
        // An explicit head_dim (Llama 3 style) widens q/o and k/v.
        let wide = expected_weights(&ModelConfig { head_dim: 6, ..m });
        assert_eq!(wide["model.layers.0.self_attn.q_proj.weight"], vec![24, 16]);
        assert_eq!(wide["model.layers.0.self_attn.o_proj.weight"], vec![16, 24]);
        assert_eq!(wide["model.layers.0.self_attn.v_proj.weight"], vec![12, 16]);
    }

    #[test]
    fn non_finite_values_are_refused_by_name() {
        let t = |v: f32| NamedTensor {
            name: "norm".into(),
            shape: vec![2],
            data: vec![1.0, v],
        };
        assert!(refuse_non_finite(Path::new("x"), &[t(2.0)]).is_ok());
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let e = refuse_non_finite(Path::new("m.safetensors"), &[t(bad)])
                .unwrap_err()
                .to_string();
            assert!(e.contains("`norm`") && e.contains("m.safetensors"), "{e}");
        }
    }
}
