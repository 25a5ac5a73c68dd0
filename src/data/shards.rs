//! uint16 token shards in NumPy `.npy` format (the build-nanogpt / fineweb layout:
//! 1-D `<u2` arrays, shard 0 is validation, each document preceded by end-of-text).

use super::corpus::Document;
use super::tokenizer::TextTokenizer;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// Writes tokens as a 1-D little-endian uint16 `.npy` (v1.0), atomically via `path.tmp`,
/// so shards are readable by NumPy and by the seed's loaders.
pub fn write_npy_u16(path: &Path, tokens: &[u16]) -> Result<()> {
    let dict = format!(
        "{{'descr': '<u2', 'fortran_order': False, 'shape': ({},), }}",
        tokens.len()
    );
    // magic(6) + version(2) + header_len(2) + dict + padding + '\n' is a multiple of 64.
    let unpadded = NPY_MAGIC.len() + 2 + 2 + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let header_len = dict.len() + pad + 1;
    let header_len_u16 = u16::try_from(header_len)
        .with_context(|| format!("npy header for {} is too long", path.display()))?;
    let mut buf = Vec::with_capacity(unpadded + pad + tokens.len() * 2);
    buf.extend_from_slice(NPY_MAGIC);
    buf.extend_from_slice(&[1, 0]);
    buf.extend_from_slice(&header_len_u16.to_le_bytes());
    buf.extend_from_slice(dict.as_bytes());
    buf.extend(std::iter::repeat_n(b' ', pad));
    buf.push(b'\n');
    for t in tokens {
        buf.extend_from_slice(&t.to_le_bytes());
    }
    let tmp = tmp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&buf)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().with_context(|| {
        format!(
            "cannot write shard {}: check that the directory exists, is writable and has free space",
            path.display()
        )
    })
}

/// Reads a 1-D little-endian uint16 `.npy` (header v1/v2/v3), validating it fully so a
/// corrupt or foreign shard fails loudly instead of training on garbage.
pub fn read_npy_u16(path: &Path) -> Result<Vec<u16>> {
    let shown = path.display();
    let bytes = std::fs::read(path).with_context(|| {
        format!("cannot read shard {shown}: check that the file exists and is readable")
    })?;
    let (header, data_start) = parse_header(&bytes).map_err(|why| {
        anyhow::anyhow!("shard {shown} is not a valid .npy file ({why}): regenerate it with `prepare` or numpy.save of a uint16 array")
    })?;
    let n = parse_dict(&header).map_err(|why| {
        anyhow::anyhow!("shard {shown} has an unsupported .npy header ({why}): expected a 1-D '<u2' (uint16) array, convert it with arr.astype(np.uint16)")
    })?;
    let data = &bytes[data_start..];
    let expected = n.saturating_mul(2);
    if data.len() != expected {
        bail!(
            "shard {shown} is truncated or padded: header says {n} tokens = {expected} data bytes but the file holds {} data bytes; regenerate it",
            data.len()
        );
    }
    Ok(data
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect())
}

/// Number of tokens in a uint16 `.npy` shard, reading only its header (and checking the file
/// size), so loaders can plan batches without loading every shard.
pub fn npy_u16_len(path: &Path) -> Result<usize> {
    use std::io::Read;
    let shown = path.display();
    let open_err =
        || format!("cannot read shard {shown}: check that the file exists and is readable");
    let mut f = std::fs::File::open(path).with_context(open_err)?;
    let file_len = f.metadata().with_context(open_err)?.len();
    let mut head = Vec::new();
    (&mut f)
        .take(12)
        .read_to_end(&mut head)
        .with_context(open_err)?;
    let header_end = match head.get(6) {
        Some(1) if head.len() >= 10 => 10 + u16::from_le_bytes([head[8], head[9]]) as u64,
        Some(2 | 3) if head.len() >= 12 => {
            12 + u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as u64
        }
        _ => 12,
    };
    let want = header_end.min(file_len).saturating_sub(head.len() as u64);
    (&mut f)
        .take(want)
        .read_to_end(&mut head)
        .with_context(open_err)?;
    let (header, data_start) = parse_header(&head).map_err(|why| {
        anyhow::anyhow!("shard {shown} is not a valid .npy file ({why}): regenerate it with `prepare` or numpy.save of a uint16 array")
    })?;
    let n = parse_dict(&header).map_err(|why| {
        anyhow::anyhow!("shard {shown} has an unsupported .npy header ({why}): expected a 1-D '<u2' (uint16) array, convert it with arr.astype(np.uint16)")
    })?;
    let data_len = file_len - data_start as u64;
    let expected = (n as u64).saturating_mul(2);
    if data_len != expected {
        bail!(
            "shard {shown} is truncated or padded: header says {n} tokens = {expected} data bytes but the file holds {data_len} data bytes; regenerate it"
        );
    }
    Ok(n)
}

/// Returns (header dict text, offset of the data) or a short reason.
fn parse_header(bytes: &[u8]) -> std::result::Result<(String, usize), String> {
    if bytes.len() < 10 || &bytes[..6] != NPY_MAGIC {
        return Err("missing \\x93NUMPY magic".into());
    }
    let major = bytes[6];
    let (len, start): (usize, usize) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("file ends inside the header".into());
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(format!("unknown format version {v}")),
    };
    let end = start
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| "file ends inside the header".to_string())?;
    let header = std::str::from_utf8(&bytes[start..end])
        .map_err(|_| "header is not text".to_string())?
        .to_string();
    Ok((header, end))
}

/// Checks dtype/order/shape in a header dict and returns the element count.
fn parse_dict(h: &str) -> std::result::Result<usize, String> {
    let descr = dict_value(h, "descr").ok_or("no 'descr'")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    if !matches!(descr, "<u2" | "=u2") {
        return Err(format!("dtype {descr:?} is not little-endian uint16"));
    }
    let fortran = dict_value(h, "fortran_order").ok_or("no 'fortran_order'")?;
    if fortran != "False" {
        return Err(format!("fortran_order is {fortran}"));
    }
    let shape = dict_value(h, "shape").ok_or("no 'shape'")?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("bad shape {shape}"))?;
    let dims: Vec<&str> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if dims.len() != 1 {
        return Err(format!("shape {shape} is not 1-D"));
    }
    dims[0]
        .trim_end_matches('L')
        .parse::<usize>()
        .map_err(|_| format!("bad shape {shape}"))
}

/// Value text for `key` in a Python dict literal (strings keep their quotes, tuples their
/// parentheses).
fn dict_value<'a>(h: &'a str, key: &str) -> Option<&'a str> {
    let pos = h
        .find(&format!("'{key}'"))
        .or_else(|| h.find(&format!("\"{key}\"")))?;
    let rest = &h[pos + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else if let Some(q) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') {
        rest[1..].find(q)? + 2
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

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

fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    s.into()
}

#[cfg(test)]
mod tests {
    use super::*;

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
