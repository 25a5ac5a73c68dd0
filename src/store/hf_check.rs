//! Checks on a foreign Hugging Face model directory made before any tensor data is read: shard
//! paths from `model.safetensors.index.json` must stay inside the directory, and `config.json`
//! must agree with the tensors the safetensors *headers* declare (names, shapes, dtypes, sizes),
//! so a config claiming a million layers or a 1 TB embedding is refused before allocation.
//! Hand-written: the safetensors crate only parses a header from a buffer holding the whole file.

use super::fsio::open_regular;
use super::hf_layout::hf_name;
use crate::config::ModelConfig;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Largest safetensors JSON header read (the format's own limit is 100 MB).
const MAX_HEADER_BYTES: u64 = 100 << 20;

/// One tensor as a safetensors header declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorHeader {
    /// Tensor name, e.g. `model.layers.0.self_attn.q_proj.weight`.
    pub name: String,
    /// safetensors dtype name, e.g. `F32` or `BF16`.
    pub dtype: String,
    /// Dimensions.
    pub shape: Vec<usize>,
}

/// Bytes per element of the dtypes the importer widens to f32.
fn dtype_size(dtype: &str) -> Option<u64> {
    match dtype {
        "F32" => Some(4),
        "F16" | "BF16" => Some(2),
        "F64" => Some(8),
        _ => None,
    }
}

/// Read and check a safetensors file's header only: its length, JSON, dtypes and that each
/// tensor's byte range matches its shape and lies inside the file.
pub fn read_safetensors_header(path: &Path) -> Result<Vec<TensorHeader>> {
    let shown = path.display();
    let mut file = open_regular(path)?;
    let file_len = file
        .metadata()
        .with_context(|| format!("cannot stat {shown}"))?
        .len();
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes)
        .with_context(|| format!("{shown}: too short for a safetensors header"))?;
    let n = u64::from_le_bytes(len_bytes);
    if n > MAX_HEADER_BYTES || n > file_len.saturating_sub(8) {
        bail!("{shown}: safetensors header of {n} bytes does not fit the {file_len}-byte file; it is truncated or not safetensors");
    }
    let mut header = Vec::with_capacity(n as usize);
    (&mut file)
        .take(n)
        .read_to_end(&mut header)
        .with_context(|| format!("cannot read {shown}"))?;
    let json: serde_json::Value = serde_json::from_slice(&header)
        .with_context(|| format!("{shown}: safetensors header is not valid JSON"))?;
    let map = json
        .as_object()
        .with_context(|| format!("{shown}: safetensors header is not a JSON object"))?;
    let data_len = file_len - 8 - n;
    let mut out = Vec::new();
    for (name, info) in map {
        if name == "__metadata__" {
            continue;
        }
        let bad = |why: &str| anyhow::anyhow!("{shown}: tensor `{name}` {why}");
        let dtype = info
            .get("dtype")
            .and_then(|d| d.as_str())
            .ok_or_else(|| bad("has no dtype"))?;
        let size = dtype_size(dtype).ok_or_else(|| {
            bad(&format!(
                "has dtype {dtype}; only F32, F16, BF16 and F64 are supported"
            ))
        })?;
        let shape: Vec<usize> = info
            .get("shape")
            .and_then(|s| s.as_array())
            .and_then(|a| a.iter().map(|d| d.as_u64().map(|x| x as usize)).collect())
            .ok_or_else(|| bad("has no valid shape"))?;
        let offsets: Vec<u64> = info
            .get("data_offsets")
            .and_then(|s| s.as_array())
            .and_then(|a| a.iter().map(|d| d.as_u64()).collect())
            .filter(|v: &Vec<u64>| v.len() == 2)
            .ok_or_else(|| bad("has no valid data_offsets"))?;
        let bytes = shape
            .iter()
            .try_fold(size, |acc, &d| acc.checked_mul(d as u64))
            .ok_or_else(|| bad(&format!("shape {shape:?} overflows")))?;
        if offsets[0] > offsets[1] || offsets[1] > data_len || offsets[1] - offsets[0] != bytes {
            bail!(
                "{shown}: tensor `{name}` of shape {shape:?} {dtype} needs {bytes} bytes but its data_offsets {offsets:?} give another range or run past the file's {data_len} data bytes; the file is truncated or corrupt"
            );
        }
        out.push(TensorHeader {
            name: name.clone(),
            dtype: dtype.to_string(),
            shape,
        });
    }
    Ok(out)
}

/// Resolve a shard file name from an HF index inside `dir`: it must be a relative path of
/// plain components, and its canonical path (symlinks followed) must lie inside the canonical
/// directory, so an index can never make the importer read `/etc/shadow` or `../other`.
pub fn resolve_shard(dir: &Path, name: &str) -> Result<PathBuf> {
    let rel = Path::new(name);
    let plain = !name.is_empty()
        && !name.contains('\\')
        && rel.components().all(|c| matches!(c, Component::Normal(_)));
    let index = dir.join("model.safetensors.index.json");
    if !plain {
        bail!(
            "{}: shard path {name:?} is not a plain relative file name inside the model directory; refusing it",
            index.display()
        );
    }
    let base = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let full = dir
        .join(rel)
        .canonicalize()
        .with_context(|| format!("{}: shard {name} is missing", index.display()))?;
    if !full.starts_with(&base) {
        bail!(
            "{}: shard {name} resolves to {}, outside {}; refusing it",
            index.display(),
            full.display(),
            base.display()
        );
    }
    Ok(full)
}

/// The HF tensors a LlamaForCausalLM with config `m` has, with their shapes.
pub fn expected_hf_shapes(m: &ModelConfig) -> BTreeMap<String, Vec<usize>> {
    let d = m.d_model;
    let kv = d / m.n_heads.max(1) * m.n_kv_heads;
    let (v, f) = (m.vocab_size, m.ff_dim);
    let mut out = BTreeMap::new();
    let mut put = |internal: &str, shape: Vec<usize>| {
        if let Some((name, _)) = hf_name(internal) {
            out.insert(name, shape);
        }
    };
    put("embed_tokens", vec![v, d]);
    put("norm", vec![d]);
    if !m.tie_embeddings {
        put("lm_head", vec![v, d]);
    }
    for i in 0..m.n_layers {
        let l = |f: &str| format!("layers.{i}.{f}");
        put(&l("q_proj"), vec![d, d]);
        put(&l("k_proj"), vec![kv, d]);
        put(&l("v_proj"), vec![kv, d]);
        put(&l("o_proj"), vec![d, d]);
        put(&l("gate_proj"), vec![f, d]);
        put(&l("up_proj"), vec![f, d]);
        put(&l("down_proj"), vec![d, f]);
        put(&l("input_layernorm"), vec![d]);
        put(&l("post_attention_layernorm"), vec![d]);
    }
    out
}

/// Cross-check `config.json` (as `m`, validated and within memory beforehand) against the
/// tensors the headers declare: every expected tensor present once with its exact shape, no
/// unknown tensor. A tied model may still carry `lm_head.weight`; rotary caches are ignored.
pub fn check_hf_tensors(
    m: &ModelConfig,
    config_path: &Path,
    headers: &[(PathBuf, TensorHeader)],
) -> Result<()> {
    let expected = expected_hf_shapes(m);
    let mut seen: BTreeMap<&str, &Path> = BTreeMap::new();
    for (file, t) in headers {
        if t.name.ends_with("rotary_emb.inv_freq") {
            continue;
        }
        if let Some(first) = seen.insert(&t.name, file) {
            bail!(
                "tensor `{}` appears twice, in {} and {}",
                t.name,
                first.display(),
                file.display()
            );
        }
        if m.tie_embeddings && t.name == "lm_head.weight" {
            continue;
        }
        match expected.get(&t.name) {
            Some(shape) if *shape == t.shape => {}
            Some(shape) => bail!(
                "{}: tensor `{}` has shape {:?}, but {} implies {:?}",
                file.display(),
                t.name,
                t.shape,
                config_path.display(),
                shape
            ),
            None => bail!(
                "{}: tensor `{}` is not part of the LlamaForCausalLM that {} describes ({} layers{})",
                file.display(),
                t.name,
                config_path.display(),
                m.n_layers,
                if m.tie_embeddings { ", tied embeddings" } else { "" }
            ),
        }
    }
    let missing: Vec<&String> = expected
        .keys()
        .filter(|k| !seen.contains_key(k.as_str()))
        .collect();
    if let Some(first) = missing.first() {
        bail!(
            "{}: describes {} layers{} but tensor `{first}` is missing ({} of {} missing)",
            config_path.display(),
            m.n_layers,
            if m.tie_embeddings {
                ""
            } else {
                " with an untied lm_head"
            },
            missing.len(),
            expected.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_must_stay_inside_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let hf = dir.path().join("hf");
        std::fs::create_dir(&hf).unwrap();
        std::fs::write(hf.join("a.safetensors"), b"x").unwrap();
        std::fs::write(dir.path().join("secret"), b"x").unwrap();
        assert!(resolve_shard(&hf, "a.safetensors").is_ok());
        for bad in [
            "../secret",
            "/etc/passwd",
            "",
            "./a.safetensors",
            "sub/../../secret",
            "a\\b",
        ] {
            let e = resolve_shard(&hf, bad).unwrap_err().to_string();
            assert!(e.contains("refusing"), "{bad}: {e}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret"), hf.join("link")).unwrap();
            let e = resolve_shard(&hf, "link").unwrap_err().to_string();
            assert!(e.contains("outside"), "{e}");
        }
    }

    #[test]
    fn expected_shapes_count_every_parameter() {
        let m = ModelConfig {
            vocab_size: 10,
            d_model: 8,
            n_layers: 2,
            n_heads: 2,
            n_kv_heads: 1,
            ff_dim: 16,
            tie_embeddings: false,
            ..ModelConfig::default()
        };
        let shapes = expected_hf_shapes(&m);
        assert_eq!(shapes.len(), 3 + 2 * 9);
        let total: usize = shapes.values().map(|s| s.iter().product::<usize>()).sum();
        assert_eq!(total as u64, crate::model::stats::param_count(&m).total);
    }
}
