//! Weights read through a memory map (`memmap2`) one tensor at a time, so loading a model
//! never holds the file in a buffer nor a second full copy of the weights: each tensor is
//! widened to f32 (and transposed to our layout) on its way into the model, and its pages are
//! handed back to the page cache right after. Hand-written over the `safetensors` crate's own
//! mmap-friendly parser (`read_metadata`) because it also verifies the file's blake3 digest and
//! refuses NaN/Inf in the same single pass.

use super::digest::{check_size, mismatch, FileDigest};
use super::fsio::open_regular;
use super::hf_layout::internal_name;
use super::tensors::{NamedTensor, TensorSource};
use anyhow::{bail, Context, Result};
use memmap2::Mmap;
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One tensor's place in a mapped file.
#[derive(Debug, Clone)]
struct Stored {
    dtype: Dtype,
    shape: Vec<usize>,
    /// Byte range within the mapped file.
    start: usize,
    end: usize,
}

/// A safetensors file mapped read-only, its header parsed, every tensor's place known.
struct MappedFile {
    path: PathBuf,
    map: Mmap,
    /// Stored (HF) name -> place.
    tensors: BTreeMap<String, Stored>,
}

impl MappedFile {
    /// Map `path` (a regular file only), parse and validate its header, and read every byte
    /// once: blake3 against `digest` when given, NaN/Inf refused by tensor name.
    fn open(path: &Path, digest: Option<&FileDigest>) -> Result<Self> {
        let file = open_regular(path)?;
        let len = file
            .metadata()
            .with_context(|| format!("cannot stat {}", path.display()))?
            .len();
        if let Some(expected) = digest {
            check_size(path, len, expected)?;
        }
        if len < 8 {
            bail!("{}: truncated (no header)", path.display());
        }
        // SAFETY: the map is read-only and private to this process; every value read from it is
        // copied out (and the digest verified) before use. A file truncated by another process
        // while mapped can still fault the reader, the accepted cost of mmap loading (candle and
        // safetensors' own loaders share it).
        let map = unsafe { Mmap::map(&file) }
            .with_context(|| format!("cannot map {}", path.display()))?;
        let (header_len, meta) = SafeTensors::read_metadata(&map).map_err(|e| {
            anyhow::anyhow!(
                "{}: not a valid safetensors file ({e}); it may be truncated or corrupt",
                path.display()
            )
        })?;
        let data_start = 8 + header_len;
        let mut tensors = BTreeMap::new();
        for (name, info) in meta.tensors() {
            let stored = Stored {
                dtype: info.dtype,
                shape: info.shape.clone(),
                start: data_start + info.data_offsets.0,
                end: data_start + info.data_offsets.1,
            };
            if stored.end > map.len() {
                bail!("{}: truncated or corrupt", path.display());
            }
            tensors.insert(name, stored);
        }
        let file = MappedFile {
            path: path.to_path_buf(),
            map,
            tensors,
        };
        file.verify(data_start, digest)?;
        Ok(file)
    }

    /// One pass over the file in offset order: hash it, find the first non-finite value. A
    /// digest mismatch is reported before a NaN (a flipped bit is corruption, not a bad model).
    fn verify(&self, data_start: usize, digest: Option<&FileDigest>) -> Result<()> {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.map[..data_start]);
        let mut order: Vec<(&String, &Stored)> = self.tensors.iter().collect();
        order.sort_by_key(|(_, s)| s.start);
        let mut non_finite = None;
        for (name, s) in order {
            let bytes = &self.map[s.start..s.end];
            hasher.update(bytes);
            if non_finite.is_none() {
                non_finite = first_non_finite(bytes, s.dtype).map(|(i, v)| (name.clone(), i, v));
            }
            self.release(s.start, s.end - s.start);
        }
        if let Some(expected) = digest {
            let got = FileDigest {
                bytes: self.map.len() as u64,
                blake3: hasher.finalize().to_hex().to_string(),
            };
            if got != *expected {
                return Err(mismatch(&self.path));
            }
        }
        if let Some((name, i, v)) = non_finite {
            bail!(
                "{}: tensor `{name}` holds {v} (at element {i}); the checkpoint is unusable, pick another one (llite-tui ckpt ls)",
                self.path.display()
            );
        }
        Ok(())
    }

    /// Hand a range's pages back (they stay in the page cache; a later read maps them again),
    /// so the process's resident set never holds the file on top of the tensors made from it.
    fn release(&self, offset: usize, len: usize) {
        #[cfg(unix)]
        // SAFETY: the mapping is read-only and file-backed: dropped pages are re-read from the
        // file on the next access, and no reference into the range outlives this call's caller.
        unsafe {
            let _ =
                self.map
                    .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len);
        }
        #[cfg(not(unix))]
        let _ = (offset, len);
    }

    /// The stored tensor `name` widened to f32, transposed if asked (a matrix, checked by the
    /// caller); returns the shape as stored. An aligned little-endian f32 matrix is transposed
    /// straight out of the map, with no intermediate copy.
    fn read_f32(&self, name: &str, transpose: bool) -> Result<(Vec<usize>, Vec<f32>)> {
        let s = self
            .tensors
            .get(name)
            .with_context(|| format!("{}: no tensor `{name}`", self.path.display()))?;
        let bytes = &self.map[s.start..s.end];
        let direct = (transpose && s.dtype == Dtype::F32 && cfg!(target_endian = "little"))
            .then(|| bytemuck::try_cast_slice::<u8, f32>(bytes).ok())
            .flatten();
        let values = match direct {
            Some(src) => super::hf_layout::transpose_data(src, s.shape[0], s.shape[1]),
            None => {
                let v = widen(bytes, s.dtype).with_context(|| {
                    format!(
                        "{}: tensor `{name}` has dtype {:?}",
                        self.path.display(),
                        s.dtype
                    )
                })?;
                match transpose {
                    true => super::hf_layout::transpose_data(&v, s.shape[0], s.shape[1]),
                    false => v,
                }
            }
        };
        self.release(s.start, s.end - s.start);
        Ok((s.shape.clone(), values))
    }
}

/// Bytes of a little-endian tensor as f32 (f16, bf16 and f64 converted per value).
fn widen(bytes: &[u8], dtype: Dtype) -> Result<Vec<f32>> {
    Ok(match dtype {
        Dtype::F32 if cfg!(target_endian = "little") => bytemuck::pod_collect_to_vec(bytes),
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8-byte chunk")) as f32)
            .collect(),
        other => bail!("{other:?} is not supported (only f32, f16, bf16 and f64)"),
    })
}

/// Index and value of the first NaN/Inf in a tensor's bytes, checked on the exponent bits
/// without converting anything (as whole words when aligned, which vectorises).
fn first_non_finite(bytes: &[u8], dtype: Dtype) -> Option<(usize, f32)> {
    let at = |i: usize, width: usize| {
        let one = &bytes[i * width..(i + 1) * width];
        let v = widen(one, dtype).ok().and_then(|v| v.first().copied());
        (i, v.unwrap_or(f32::NAN))
    };
    let le = cfg!(target_endian = "little");
    match dtype {
        Dtype::F32 => match bytemuck::try_cast_slice::<u8, u32>(bytes) {
            Ok(words) if le => words.iter().position(|w| w & 0x7f80_0000 == 0x7f80_0000),
            _ => bytes.chunks_exact(4).position(|c| {
                u32::from_le_bytes([c[0], c[1], c[2], c[3]]) & 0x7f80_0000 == 0x7f80_0000
            }),
        }
        .map(|i| at(i, 4)),
        Dtype::BF16 | Dtype::F16 => {
            let mask = if dtype == Dtype::BF16 { 0x7f80 } else { 0x7c00 };
            match bytemuck::try_cast_slice::<u8, u16>(bytes) {
                Ok(words) if le => words.iter().position(|w| w & mask == mask),
                _ => bytes
                    .chunks_exact(2)
                    .position(|c| u16::from_le_bytes([c[0], c[1]]) & mask == mask),
            }
            .map(|i| at(i, 2))
        }
        Dtype::F64 => bytes
            .chunks_exact(8)
            .position(|c| {
                let bits = u64::from_le_bytes(c.try_into().expect("8-byte chunk"));
                bits & 0x7ff0_0000_0000_0000 == 0x7ff0_0000_0000_0000
            })
            .map(|i| at(i, 8)),
        _ => None,
    }
}

/// Where one parameter (internal name) is stored.
#[derive(Debug, Clone)]
struct Entry {
    file: usize,
    stored: String,
    transpose: bool,
}

/// The weights of a model, verified and mapped, read one tensor at a time in internal naming
/// and layout: a checkpoint's `model.safetensors` or the shards of a Hugging Face directory.
pub struct MappedWeights {
    files: Vec<MappedFile>,
    /// Internal parameter path -> where it is stored.
    index: BTreeMap<String, Entry>,
}

impl MappedWeights {
    /// Map weight files (each verified against its digest when one is given). Rotary caches
    /// are skipped, as is a tied model's redundant `lm_head.weight`; any other tensor that is
    /// not a LlamaForCausalLM weight, or one stored twice, is refused by name.
    pub fn open(files: &[(PathBuf, Option<FileDigest>)], tied: bool) -> Result<Self> {
        let mut mapped = Vec::with_capacity(files.len());
        let mut index = BTreeMap::new();
        for (i, (path, digest)) in files.iter().enumerate() {
            let file = MappedFile::open(path, digest.as_ref())?;
            for name in file.tensors.keys() {
                if name.ends_with("rotary_emb.inv_freq") {
                    continue;
                }
                let Some((internal, transpose)) = internal_name(name) else {
                    bail!(
                        "{}: tensor `{name}` is not part of a LlamaForCausalLM",
                        path.display()
                    );
                };
                if tied && internal == "lm_head" {
                    continue;
                }
                let entry = Entry {
                    file: i,
                    stored: name.clone(),
                    transpose,
                };
                if index.insert(internal, entry).is_some() {
                    bail!("{}: tensor `{name}` is stored twice", path.display());
                }
            }
            mapped.push(file);
        }
        Ok(MappedWeights {
            files: mapped,
            index,
        })
    }

    /// Internal names of every weight, sorted.
    pub fn names(&self) -> Vec<String> {
        self.index.keys().cloned().collect()
    }

    /// The weight `name` in internal layout (`[in, out]` matrices), f32; `None` if absent.
    pub fn read(&self, name: &str) -> Result<Option<NamedTensor>> {
        let Some(e) = self.index.get(name) else {
            return Ok(None);
        };
        let file = &self.files[e.file];
        let stored_shape = &file.tensors[&e.stored].shape;
        if e.transpose && stored_shape.len() != 2 {
            bail!(
                "{}: tensor `{}` should be a matrix, has shape {stored_shape:?}",
                file.path.display(),
                e.stored
            );
        }
        let (mut shape, data) = file.read_f32(&e.stored, e.transpose)?;
        if e.transpose {
            shape.reverse();
        }
        Ok(Some(NamedTensor {
            name: name.to_string(),
            shape,
            data,
        }))
    }

    /// Every weight in memory at once (import and export, which rewrite them all).
    pub fn read_all(&self) -> Result<Vec<NamedTensor>> {
        self.index
            .keys()
            .map(|n| self.read(n).map(|t| t.expect("indexed name is present")))
            .collect()
    }

    /// Bytes of the weights once widened to f32 (what a loaded model holds).
    pub fn f32_bytes(&self) -> u64 {
        self.index
            .values()
            .map(|e| {
                let s = &self.files[e.file].tensors[&e.stored];
                s.shape.iter().product::<usize>() as u64 * 4
            })
            .sum()
    }
}

impl TensorSource for &MappedWeights {
    fn names(&self) -> Vec<String> {
        MappedWeights::names(self)
    }
    fn take(&mut self, name: &str) -> Result<Option<NamedTensor>> {
        self.read(name)
    }
}

impl TensorSource for MappedWeights {
    fn names(&self) -> Vec<String> {
        MappedWeights::names(self)
    }
    fn take(&mut self, name: &str) -> Result<Option<NamedTensor>> {
        self.read(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::safetensors_io::{write_file_synced, OutTensor};

    #[test]
    fn reads_transposed_verifies_digest_and_refuses_nan_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let q = NamedTensor {
            name: "model.layers.0.self_attn.q_proj.weight".into(),
            shape: vec![2, 3],
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        let norm = NamedTensor {
            name: "model.norm.weight".into(),
            shape: vec![2],
            data: vec![0.5, 1.5],
        };
        let write = |norm: &NamedTensor| {
            let out = [OutTensor::borrowed(&q), OutTensor::borrowed(norm)];
            write_file_synced(&path, &out, None).unwrap()
        };
        let digest = write(&norm);
        let w = MappedWeights::open(&[(path.clone(), Some(digest.clone()))], true).unwrap();
        assert_eq!(w.names(), vec!["layers.0.q_proj", "norm"]);
        let t = w.read("layers.0.q_proj").unwrap().unwrap();
        assert_eq!(t.shape, vec![3, 2]);
        assert_eq!(t.data, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(w.read("norm").unwrap().unwrap().data, norm.data);
        assert!(w.read("lm_head").unwrap().is_none());
        assert_eq!(w.f32_bytes(), 8 * 4);
        drop(w);

        let bad = NamedTensor {
            data: vec![0.5, f32::NAN],
            ..norm.clone()
        };
        let nan_digest = write(&bad);
        let e = MappedWeights::open(&[(path.clone(), Some(nan_digest))], true)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("`model.norm.weight` holds NaN (at element 1)"),
            "{e}"
        );
        // The same bytes against the old digest: corruption is named first.
        let e = MappedWeights::open(&[(path.clone(), Some(digest))], true)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("blake3 digest mismatch"), "{e}");
    }

    #[test]
    fn half_precision_is_widened_and_its_infinities_caught() {
        let bf = [half::bf16::from_f32(1.5), half::bf16::from_f32(-2.0)];
        let bytes: Vec<u8> = bf.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(widen(&bytes, Dtype::BF16).unwrap(), vec![1.5, -2.0]);
        assert_eq!(first_non_finite(&bytes, Dtype::BF16), None);
        let inf: Vec<u8> = [half::f16::from_f32(1.0), half::f16::INFINITY]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(first_non_finite(&inf, Dtype::F16), Some((1, f32::INFINITY)));
    }
}
