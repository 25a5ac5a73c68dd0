//! Writing the files of an exported Hugging Face directory: weights in the chosen dtype
//! (through the safetensors crate), tokenizer metadata, and permissions a shared model
//! directory needs (0644), whatever the checkpoint's own files had.

use crate::data::tokenizer::TextTokenizer;
use crate::data::tokenizer_meta::{
    CHAT_TEMPLATE_FILE, GENERATION_CONFIG_FILE, TOKENIZER_CONFIG_FILE,
};
use crate::store::fsio::write_synced;
use crate::store::layout::{HF_CONFIG_FILE, TOKENIZER_FILE};
use crate::store::safetensors_io::OutTensor;
use anyhow::{Context, Result};
use safetensors::tensor::{Dtype, View};
use std::borrow::Cow;
use std::path::Path;

/// The dtype of exported weights (`export --dtype`): f32 as trained, or half the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ExportDtype {
    #[default]
    F32,
    Bf16,
    F16,
}

impl ExportDtype {
    /// transformers' name for it (`torch_dtype` in config.json).
    pub fn torch_name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::Bf16 => "bfloat16",
            Self::F16 => "float16",
        }
    }
}

/// One tensor converted to the export dtype, as the safetensors crate serialises it.
struct Converted {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Converted {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn convert(t: &OutTensor<'_>, dtype: ExportDtype) -> Converted {
    let bytes: Vec<u8> = match dtype {
        ExportDtype::F32 => t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ExportDtype::Bf16 => t
            .data
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect(),
        ExportDtype::F16 => t
            .data
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect(),
    };
    Converted {
        dtype: match dtype {
            ExportDtype::F32 => Dtype::F32,
            ExportDtype::Bf16 => Dtype::BF16,
            ExportDtype::F16 => Dtype::F16,
        },
        shape: t.shape.clone(),
        bytes,
    }
}

/// Write HF-named tensors to `path` in `dtype` and fsync it.
pub fn write_weights(path: &Path, tensors: &[OutTensor<'_>], dtype: ExportDtype) -> Result<()> {
    let converted: Vec<(String, Converted)> = tensors
        .iter()
        .map(|t| (t.name.clone(), convert(t, dtype)))
        .collect();
    let views = converted.iter().map(|(n, c)| (n.clone(), c));
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(meta), path)
        .map_err(|e| anyhow::anyhow!("cannot write {} ({e})", path.display()))?;
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", path.display()))
}

/// Write `config.json` (with the real bos / pad ids and the dtype), the tokenizer, its
/// `tokenizer_config.json`, `chat_template.jinja` when it has a template and
/// `generation_config.json` into `dir`.
pub fn write_metadata(
    dir: &Path,
    mut config: serde_json::Value,
    tokenizer: &TextTokenizer,
    model_max_length: usize,
    dtype: ExportDtype,
) -> Result<()> {
    let meta = tokenizer.meta();
    crate::store::hf_layout::set_special_ids(&mut config, &meta);
    config["torch_dtype"] = serde_json::json!(dtype.torch_name());
    let mut files = vec![
        (HF_CONFIG_FILE, serde_json::to_string_pretty(&config)?),
        (TOKENIZER_FILE, tokenizer.to_json_string()?),
        (
            TOKENIZER_CONFIG_FILE,
            serde_json::to_string_pretty(&meta.tokenizer_config(model_max_length))?,
        ),
        (
            GENERATION_CONFIG_FILE,
            serde_json::to_string_pretty(&meta.generation_config(tokenizer.eot_id()))?,
        ),
    ];
    if let Some(t) = &meta.chat_template {
        files.push((CHAT_TEMPLATE_FILE, t.clone()));
    }
    for (name, text) in files {
        write_synced(&dir.join(name), text.as_bytes())?;
    }
    Ok(())
}

/// Make every file in `dir` readable by all (0644) and the directory 0755: a model
/// directory is shared, unlike a run's private files.
pub fn make_shareable(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let set = |p: &Path, mode: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("cannot set permissions of {}", p.display()))
        };
        for entry in
            std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_file() {
                set(&path, 0o644)?;
            }
        }
        set(dir, 0o755)?;
    }
    Ok(())
}
