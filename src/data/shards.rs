//! uint16 token shards in NumPy `.npy` format (the build-nanogpt / fineweb layout:
//! 1-D `<u2` arrays, shard 0 is validation, each document preceded by end-of-text).

use super::corpus::Document;
pub use super::npy::{npy_u16_len, read_npy_u16, write_npy_u16};
use super::tokenizer::TextTokenizer;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// What `prepare` wrote, for the CLI summary and the run's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepareSummary {
    /// Tokens in the validation shard.
    pub val_tokens: u64,
    /// Tokens across all training shards.
    pub train_tokens: u64,
    /// Every shard written, validation first.
    pub shards: Vec<PathBuf>,
    /// Vocabulary size of the tokenizer used (fits in uint16).
    pub vocab_size: usize,
}

/// Tokenizes documents into `{prefix}_val_000000.npy` + `{prefix}_train_NNNNNN.npy` shards
/// (each document preceded by end-of-text) plus `tokenizer.json`, so training can stream
/// tokens without re-tokenizing.
pub fn prepare(
    docs: &[Document],
    tok: &TextTokenizer,
    val_fraction: f64,
    shard_tokens: usize,
    out_dir: &Path,
    prefix: &str,
) -> Result<PrepareSummary> {
    let shown = out_dir.display();
    let vocab_size = tok.vocab_size();
    if vocab_size > 1 << 16 {
        bail!("tokenizer vocab {vocab_size} does not fit uint16 shards (max 65536): use a smaller tokenizer, e.g. gpt2 or train:<=65536");
    }
    if !(0.0..1.0).contains(&val_fraction) || val_fraction.is_nan() {
        bail!("val_fraction {val_fraction} for {shown} is out of range: use a value in [0, 1), e.g. 0.05");
    }
    if shard_tokens == 0 {
        bail!("shard_tokens must be > 0 for {shown}: use e.g. 100000000");
    }
    if docs.is_empty() {
        bail!("no documents to prepare into {shown}: pass a non-empty corpus");
    }
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create shard directory {shown}: check permissions"))?;

    let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
    let encoded = tok.encode_batch(&texts)?;
    let total: usize = encoded.iter().map(|e| e.len() + 1).sum();
    let eot = tok.eot_id() as u16;
    let mut stream: Vec<u16> = Vec::with_capacity(total);
    for ids in &encoded {
        stream.push(eot);
        // vocab <= 65536 was checked, so every id fits.
        stream.extend(ids.iter().map(|&i| i as u16));
    }
    drop(encoded);

    let n_val = ((stream.len() as f64) * val_fraction).ceil() as usize;
    let n_val = n_val.min(stream.len());
    if n_val >= stream.len() {
        bail!(
            "corpus for {shown} yields only {} tokens, none left for training after validation: add text or lower val_fraction",
            stream.len()
        );
    }
    let mut shards = Vec::new();
    let val_path = out_dir.join(format!("{prefix}_val_{:06}.npy", 0));
    write_npy_u16(&val_path, &stream[..n_val])?;
    shards.push(val_path);
    for (i, chunk) in stream[n_val..].chunks(shard_tokens).enumerate() {
        let p = out_dir.join(format!("{prefix}_train_{:06}.npy", i + 1));
        write_npy_u16(&p, chunk)?;
        shards.push(p);
    }
    tok.save(&out_dir.join("tokenizer.json"))?;
    Ok(PrepareSummary {
        val_tokens: n_val as u64,
        train_tokens: (stream.len() - n_val) as u64,
        shards,
        vocab_size,
    })
}

/// Refuse a shard holding a token id the model has no embedding row for (a shard made with a
/// bigger tokenizer): the engine would otherwise index out of bounds deep in a forward pass.
pub fn check_token_ids(path: &Path, tokens: &[u16], vocab_size: usize) -> Result<()> {
    if let Some((pos, &id)) = tokens
        .iter()
        .enumerate()
        .find(|(_, &t)| t as usize >= vocab_size)
    {
        bail!(
            "shard {} holds token id {id} at position {pos}, outside the model's vocabulary (vocab_size {vocab_size}): it was made with another tokenizer; prepare the data again with the run's tokenizer",
            path.display()
        );
    }
    Ok(())
}

/// Validation and training shard paths of a shard directory, for the loaders.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShardSet {
    /// Validation shards (names containing "val", else the first shard).
    pub val: Vec<PathBuf>,
    /// Training shards, sorted by name.
    pub train: Vec<PathBuf>,
}

/// Finds the `*.npy` shards in `dir` and splits them into validation and training, so a
/// prepared or seed-style (fineweb) directory can be trained on directly.
pub fn list_shards(dir: &Path) -> Result<ShardSet> {
    let shown = dir.display();
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "cannot list shard directory {shown}: check that it exists (create it with `prepare`)"
        )
    })?;
    let mut files = Vec::new();
    for e in entries {
        let p = e
            .with_context(|| format!("cannot list shard directory {shown}: check its permissions"))?
            .path();
        let is_npy = p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
        if is_npy && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    let is_val = |p: &PathBuf| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains("val"))
    };
    let mut set = ShardSet::default();
    if files.iter().any(is_val) {
        for f in files {
            if is_val(&f) {
                set.val.push(f);
            } else {
                set.train.push(f);
            }
        }
    } else if !files.is_empty() {
        set.val.push(files.remove(0));
        set.train = files;
    }
    if set.train.is_empty() {
        bail!(
            "shard directory {shown} has no training shards ({} validation): prepare data into it or add *_train_*.npy files",
            set.val.len()
        );
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::npy::NPY_MAGIC;

    #[test]
    fn npy_round_trip_and_header_layout() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let toks: Vec<u16> = (0..1000u32).map(|i| (i * 77 % 65536) as u16).collect();
        write_npy_u16(&p, &toks).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let hl = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hl) % 64, 0);
        assert_eq!(bytes[10 + hl - 1], b'\n');
        assert!(std::str::from_utf8(&bytes[10..10 + hl])
            .unwrap()
            .starts_with("{'descr': '<u2', 'fortran_order': False, 'shape': (1000,), }"));
        assert_eq!(read_npy_u16(&p).unwrap(), toks);
        assert_eq!(npy_u16_len(&p).unwrap(), 1000);
        assert!(!dir.path().join("a.npy.tmp").exists());
        write_npy_u16(&p, &[]).unwrap();
        assert!(read_npy_u16(&p).unwrap().is_empty());
    }

    #[test]
    fn npy_v2_header_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v2.npy");
        let dict = b"{'descr': '<u2', 'fortran_order': False, 'shape': (3,), }          \n";
        let mut b = NPY_MAGIC.to_vec();
        b.extend_from_slice(&[2, 0]);
        b.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        b.extend_from_slice(dict);
        b.extend_from_slice(&[1, 0, 2, 0, 0xff, 0xff]);
        std::fs::write(&p, b).unwrap();
        assert_eq!(read_npy_u16(&p).unwrap(), [1, 2, 65535]);
    }

    #[test]
    fn bad_npy_files_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.npy");
        write_npy_u16(&p, &[1, 2, 3, 4]).unwrap();
        let full = std::fs::read(&p).unwrap();
        std::fs::write(&p, &full[..full.len() - 3]).unwrap();
        let m = format!("{:#}", read_npy_u16(&p).unwrap_err());
        assert!(
            m.contains("t.npy")
                && m.contains("8 data bytes")
                && m.contains("5 data bytes")
                && !m.contains('\n'),
            "{m}"
        );
        let m = format!("{:#}", npy_u16_len(&p).unwrap_err());
        assert!(m.contains("t.npy") && m.contains("5 data bytes"), "{m}");
        std::fs::write(&p, b"not numpy").unwrap();
        let m = format!("{:#}", read_npy_u16(&p).unwrap_err());
        assert!(m.contains("magic"), "{m}");
        for (dict, why) in [
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                "uint16",
            ),
            (
                "{'descr': '>u2', 'fortran_order': False, 'shape': (2,), }",
                "uint16",
            ),
            (
                "{'descr': '<u2', 'fortran_order': True, 'shape': (2,), }",
                "fortran",
            ),
            (
                "{'descr': '<u2', 'fortran_order': False, 'shape': (1, 2), }",
                "1-D",
            ),
        ] {
            let mut b = NPY_MAGIC.to_vec();
            b.extend_from_slice(&[1, 0]);
            b.extend_from_slice(&(dict.len() as u16 + 1).to_le_bytes());
            b.extend_from_slice(dict.as_bytes());
            b.push(b'\n');
            b.extend_from_slice(&[0; 4]);
            std::fs::write(&p, b).unwrap();
            let m = format!("{:#}", read_npy_u16(&p).unwrap_err());
            assert!(m.contains(why) && m.contains("t.npy"), "{m}");
        }
    }

    #[test]
    fn prepare_writes_val_then_train_shards() {
        let dir = tempfile::tempdir().unwrap();
        let docs: Vec<Document> = (0..20)
            .map(|i| Document {
                name: format!("d{i}"),
                text: format!("Document number {i} says hello to the world. ").repeat(10),
            })
            .collect();
        let tok = TextTokenizer::gpt2().unwrap();
        let s = prepare(&docs, &tok, 0.1, 500, dir.path(), "shk").unwrap();
        let expected: usize = docs
            .iter()
            .map(|d| tok.encode(&d.text).unwrap().len() + 1)
            .sum();
        assert_eq!((s.val_tokens + s.train_tokens) as usize, expected);
        assert_eq!(
            s.val_tokens as usize,
            (expected as f64 * 0.1).ceil() as usize
        );
        assert_eq!(s.vocab_size, 50257);
        assert!(s.shards[0].ends_with("shk_val_000000.npy"));
        assert!(s.shards[1].ends_with("shk_train_000001.npy"));
        let all: Vec<u16> = s
            .shards
            .iter()
            .flat_map(|p| read_npy_u16(p).unwrap())
            .collect();
        assert_eq!(all.len(), expected);
        assert_eq!(all[0], 50256);
        assert!(s.shards[1..]
            .iter()
            .all(|p| read_npy_u16(p).unwrap().len() <= 500));
        let first: Vec<u32> = tok.encode(&docs[0].text).unwrap();
        assert_eq!(
            all[1..=first.len()]
                .iter()
                .map(|&t| t as u32)
                .collect::<Vec<_>>(),
            first
        );
        assert!(dir.path().join("tokenizer.json").is_file());
        let set = list_shards(dir.path()).unwrap();
        assert_eq!(set.val, s.shards[..1]);
        assert_eq!(set.train, s.shards[1..]);
    }

    #[test]
    fn list_shards_seed_convention_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "edufineweb_000002.npy",
            "edufineweb_000000.npy",
            "edufineweb_000001.npy",
        ] {
            write_npy_u16(&dir.path().join(name), &[1, 2, 3]).unwrap();
        }
        let set = list_shards(dir.path()).unwrap();
        assert!(set.val[0].ends_with("edufineweb_000000.npy"));
        assert_eq!(set.train.len(), 2);
        let one = tempfile::tempdir().unwrap();
        write_npy_u16(&one.path().join("x_val_000000.npy"), &[1]).unwrap();
        let m = format!("{:#}", list_shards(one.path()).unwrap_err());
        assert!(m.contains("no training shards"), "{m}");
        let m = format!(
            "{:#}",
            list_shards(&one.path().join("missing")).unwrap_err()
        );
        assert!(m.contains("missing"), "{m}");
    }

    #[test]
    fn prepare_errors() {
        let dir = tempfile::tempdir().unwrap();
        let tok = TextTokenizer::gpt2().unwrap();
        let docs = vec![Document {
            name: "a".into(),
            text: "hi".into(),
        }];
        let m = format!(
            "{:#}",
            prepare(&docs, &tok, 0.99, 10, dir.path(), "p").unwrap_err()
        );
        assert!(m.contains("none left for training"), "{m}");
        let m = format!(
            "{:#}",
            prepare(&docs, &tok, 1.5, 10, dir.path(), "p").unwrap_err()
        );
        assert!(m.contains("val_fraction"), "{m}");
    }
}
