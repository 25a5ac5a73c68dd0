//! Reading and writing safetensors files of named f32 tensors; f16 and bf16 are widened on
//! read so real Hugging Face checkpoints load.

use super::digest::{FileDigest, HashingWriter};
use super::fsio::open_regular;
use super::tensors::NamedTensor;
use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, Metadata, SafeTensors, TensorInfo, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
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

/// Stream tensors into `path` (no whole-file buffer in memory), hashing every byte on its way,
/// and fsync it; returns the file's size and digest for `trainer.json`. The layout is exactly
/// what `safetensors::serialize_to_file` writes (sorted by name, header padded to 8 bytes); the
/// crate's own writer is not used because it offers no way to see the bytes it writes.
pub fn write_file_synced(
    path: &Path,
    tensors: &[OutTensor<'_>],
    metadata: Option<HashMap<String, String>>,
) -> Result<FileDigest> {
    let fail =
        |e: anyhow::Error| e.context(format!("cannot write {} (disk full?)", path.display()));
    let mut sorted: Vec<&OutTensor<'_>> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut infos = Vec::with_capacity(sorted.len());
    let mut offset = 0usize;
    for t in &sorted {
        let n = t.data_len();
        infos.push((
            t.name.clone(),
            TensorInfo {
                dtype: Dtype::F32,
                shape: t.shape.clone(),
                data_offsets: (offset, offset + n),
            },
        ));
        offset += n;
    }
    let header = Metadata::new(metadata, infos)
        .map_err(|e| anyhow::anyhow!("{}: bad tensor table: {e}", path.display()))?;
    let mut header = serde_json::to_vec(&header)?;
    header.resize(header.len().next_multiple_of(8), b' ');
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
    let written: Result<()> = (|| {
        out.write_all(&(header.len() as u64).to_le_bytes())?;
        out.write_all(&header)?;
        for t in &sorted {
            out.write_all(&t.data())?;
        }
        Ok(())
    })();
    written.map_err(fail)?;
    let (digest, buffered) = out.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| fail(anyhow::Error::new(e.into_error())))?;
    file.sync_all().map_err(|e| fail(e.into()))?;
    Ok(digest)
}

/// One tensor as a header declares it, so its dtype and shape can be checked before its data
/// is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredTensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
}

/// What a safetensors header says, read without touching the tensor data: names, dtypes and
/// shapes, so listings and the HF importer can check a file against a config cheaply.
pub struct Header {
    /// Tensor name -> dtype and shape, sorted by name.
    pub tensors: BTreeMap<String, DeclaredTensor>,
    /// Size of the whole file in bytes.
    pub file_bytes: u64,
}

/// Upper bound of a header (the safetensors crate's own limit): a hostile length field never
/// makes a listing allocate more.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Read and validate only the header of a safetensors file (bounded, special files refused):
/// offsets contiguous, sizes matching shapes and dtypes, data exactly as long as promised.
pub fn read_header(path: &Path) -> Result<Header> {
    let mut file = open_regular(path)?;
    let file_bytes = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len();
    let mut n = [0u8; 8];
    file.read_exact(&mut n)
        .with_context(|| format!("{}: truncated (no header)", path.display()))?;
    let header_len = u64::from_le_bytes(n);
    if header_len > MAX_HEADER_BYTES || 8 + header_len > file_bytes {
        bail!("{}: truncated or corrupt header", path.display());
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)
        .with_context(|| format!("{}: truncated header", path.display()))?;
    let meta: Metadata = serde_json::from_slice(&header)
        .map_err(|e| anyhow::anyhow!("{}: corrupt header ({e})", path.display()))?;
    let actual = file_bytes - 8 - header_len;
    if actual != meta.data_len() as u64 {
        bail!(
            "{}: truncated or corrupt: header promises {} data bytes, file has {}",
            path.display(),
            meta.data_len(),
            actual
        );
    }
    let tensors = meta
        .tensors()
        .into_iter()
        .map(|(name, info)| {
            let declared = DeclaredTensor {
                dtype: info.dtype,
                shape: info.shape.clone(),
            };
            (name, declared)
        })
        .collect();
    Ok(Header {
        tensors,
        file_bytes,
    })
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

/// Read a whole safetensors file (a regular file only: a FIFO or device is refused, not
/// waited on).
pub fn read_file(path: &Path) -> Result<Vec<NamedTensor>> {
    let bytes = super::digest::read_verified(path, None)?;
    from_bytes(&bytes, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named<'b>(
        tensors: &'b [OutTensor<'_>],
    ) -> impl Iterator<Item = (&'b str, &'b OutTensor<'b>)> {
        tensors.iter().map(|t| (t.name.as_str(), t))
    }

    #[test]
    fn hashing_writer_matches_the_crate_byte_for_byte_and_reads_back() {
        let a = NamedTensor {
            name: "b.weight".into(),
            shape: vec![2, 3],
            data: (0..6).map(|i| i as f32 * 0.5).collect(),
        };
        let b = NamedTensor {
            name: "a.weight".into(),
            shape: vec![5],
            data: vec![1.0, -2.0, 3.5, 0.0, 7.0],
        };
        let out = [OutTensor::borrowed(&a), OutTensor::borrowed(&b)];
        let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let digest = write_file_synced(&path, &out, Some(meta.clone())).unwrap();
        let ours = std::fs::read(&path).unwrap();
        let theirs = safetensors::serialize(named(&out), Some(meta)).unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(digest, FileDigest::of_bytes(&ours));
        assert_eq!(read_file(&path).unwrap(), vec![b, a]);
        let header = read_header(&path).unwrap();
        let declared = DeclaredTensor {
            dtype: Dtype::F32,
            shape: vec![2, 3],
        };
        assert_eq!(header.tensors["b.weight"], declared);
        assert_eq!(header.file_bytes, ours.len() as u64);
        std::fs::write(&path, &ours[..ours.len() - 1]).unwrap();
        let e = read_header(&path).err().unwrap().to_string();
        assert!(e.contains("truncated"), "{e}");
    }
}
