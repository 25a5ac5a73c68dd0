//! Checks on a foreign Hugging Face model directory made before any tensor data is read: shard
//! paths from `model.safetensors.index.json` must stay inside the directory, and `config.json`
//! must agree with the tensors the safetensors *headers* declare (names, shapes, dtypes, sizes),
//! so a config claiming a million layers or a 1 TB embedding is refused before allocation.
//! Headers are read by `safetensors_io::read_header` and the expected tensors come from
//! `structure::expected_weights`, the same definitions a checkpoint is checked against.

use super::safetensors_io::{read_header, Header};
use super::structure::expected_weights;
use crate::config::ModelConfig;
use anyhow::{bail, Context, Result};
use safetensors::tensor::Dtype;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// One shard of a foreign model and what its header declares.
pub struct ShardHeader {
    /// The shard file, for error lines.
    pub path: PathBuf,
    /// Its validated header (`safetensors_io::read_header`).
    pub header: Header,
}

/// Read a shard's header only and refuse dtypes the importer cannot widen to f32, so an
/// unsupported file fails before any tensor data is read.
pub fn read_shard_header(path: &Path) -> Result<ShardHeader> {
    let header = read_header(path)?;
    for (name, t) in &header.tensors {
        if !matches!(t.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64) {
            bail!(
                "{}: tensor `{name}` has dtype {:?}; only F32, F16, BF16 and F64 are supported",
                path.display(),
                t.dtype
            );
        }
    }
    Ok(ShardHeader {
        path: path.to_path_buf(),
        header,
    })
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

/// Cross-check `config.json` (as `m`, validated and within memory beforehand) against the
/// tensors the headers declare: every expected tensor present once with its exact shape, no
/// unknown tensor. A tied model may still carry `lm_head.weight`; rotary caches are ignored.
pub fn check_hf_tensors(m: &ModelConfig, config_path: &Path, shards: &[ShardHeader]) -> Result<()> {
    let expected = expected_weights(m);
    let mut seen: BTreeMap<&str, &Path> = BTreeMap::new();
    let declared = shards.iter().flat_map(|s| {
        s.header
            .tensors
            .iter()
            .map(move |(name, t)| (s.path.as_path(), name, t))
    });
    for (file, name, t) in declared {
        if name.ends_with("rotary_emb.inv_freq") {
            continue;
        }
        if let Some(first) = seen.insert(name, file) {
            bail!(
                "tensor `{name}` appears twice, in {} and {}",
                first.display(),
                file.display()
            );
        }
        if m.tie_embeddings && name == "lm_head.weight" {
            continue;
        }
        match expected.get(name) {
            Some(shape) if *shape == t.shape => {}
            Some(shape) => bail!(
                "{}: tensor `{name}` has shape {:?}, but {} implies {:?}",
                file.display(),
                t.shape,
                config_path.display(),
                shape
            ),
            None => bail!(
                "{}: tensor `{name}` is not part of the LlamaForCausalLM that {} describes ({} layers{})",
                file.display(),
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
}
