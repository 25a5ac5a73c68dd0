//! Reading and writing safetensors files of named f32 tensors; f16 and bf16 are widened on
//! read so real Hugging Face checkpoints load.

use super::tensors::NamedTensor;
use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

/// A tensor on its way to a file: borrowed when it needs no reordering, owned when it was
/// transposed, so writing a checkpoint copies each value as few times as possible.
pub struct OutTensor<'a> {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Cow<'a, [f32]>,
}

impl<'a> OutTensor<'a> {
    /// Borrow a named tensor as it is.
    pub fn borrowed(t: &'a NamedTensor) -> Self {
        OutTensor {
            name: t.name.clone(),
            shape: t.shape.clone(),
            data: Cow::Borrowed(&t.data),
        }
    }
}

impl View for &OutTensor<'_> {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        if cfg!(target_endian = "little") {
            Cow::Borrowed(bytemuck::cast_slice(&self.data))
        } else {
            Cow::Owned(self.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        }
    }
    fn data_len(&self) -> usize {
        self.data.len() * 4
    }
}

fn named<'b>(tensors: &'b [OutTensor<'_>]) -> impl Iterator<Item = (&'b str, &'b OutTensor<'b>)> {
    tensors.iter().map(|t| (t.name.as_str(), t))
}

/// Stream tensors into `path` (no whole-file buffer in memory) and fsync it.
pub fn write_file_synced(
    path: &Path,
    tensors: &[OutTensor<'_>],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    safetensors::serialize_to_file(named(tensors), metadata, path)
        .and_then(|_| Ok(std::fs::File::open(path)?.sync_all()?))
        .with_context(|| format!("cannot write {} (disk full?)", path.display()))
}

/// Decode a safetensors buffer; `origin` names the file in errors.
pub fn from_bytes(buffer: &[u8], origin: &Path) -> Result<Vec<NamedTensor>> {
    let st = SafeTensors::deserialize(buffer).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a valid safetensors file ({e}); it may be truncated or corrupt",
            origin.display()
        )
    })?;
    let mut out = Vec::new();
    for (name, view) in st.iter() {
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 if cfg!(target_endian = "little") => bytemuck::pod_collect_to_vec(data),
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::F64 => data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            other => bail!(
                "{}: tensor `{name}` has dtype {other:?}; only f32, f16, bf16 and f64 are supported",
                origin.display()
            ),
        };
        out.push(NamedTensor {
            name: name.to_string(),
            shape: view.shape().to_vec(),
            data: values,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Read a whole safetensors file.
pub fn read_file(path: &Path) -> Result<Vec<NamedTensor>> {
    let bytes = super::fsio::read_bounded(path, crate::data::npy::MAX_DATA_FILE_BYTES)
        .with_context(|| format!("cannot read {}", path.display()))?;
    from_bytes(&bytes, path)
}
