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

/// The manifest `prepare` keeps in its output directory: the files it wrote there, so
/// `--replace` can overwrite or remove exactly those and never a file it did not create.
pub const PREPARE_MANIFEST: &str = "prepare.json";

/// Contents of [`PREPARE_MANIFEST`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PrepareManifest {
    /// File names (no directories) written by `prepare`.
    pub files: Vec<String>,
}

/// A name `prepare` may create or remove: one plain file name, no separators, no `..`, no
/// control characters (`--prefix` and manifest entries go through it).
fn plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && !name.contains("..")
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
}

/// Shards and tokenizer already in `dir` (what a new `prepare` would mix with or overwrite).
fn existing_outputs(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut out = Vec::new();
    for e in entries {
        let name = e
            .with_context(|| format!("cannot list {}", dir.display()))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".npy") || name == "tokenizer.json" {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

fn read_manifest(dir: &Path) -> Result<PrepareManifest> {
    let path = dir.join(PREPARE_MANIFEST);
    if !path.exists() {
        return Ok(PrepareManifest::default());
    }
    let text =
        crate::store::fsio::read_bounded_string(&path, crate::store::fsio::MAX_METADATA_BYTES)?;
    let m: PrepareManifest = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a llite-tui prepare manifest; move it away",
            path.display()
        )
    })?;
    if let Some(bad) = m.files.iter().find(|f| !plain_file_name(f)) {
        bail!(
            "{}: entry {bad:?} is not a plain file name; refusing the manifest",
            path.display()
        );
    }
    Ok(m)
}

fn write_manifest(dir: &Path, files: &[String]) -> Result<()> {
    let m = PrepareManifest {
        files: files.to_vec(),
    };
    crate::store::fsio::write_atomic(
        &dir.join(PREPARE_MANIFEST),
        serde_json::to_string_pretty(&m)?.as_bytes(),
    )
}

/// Refuse to write into a directory that already holds shards or a tokenizer, unless
/// `replace` and every such file is listed in the manifest (written by an earlier `prepare`).
/// Returns the manifest's files, which a replacing run may overwrite or remove.
fn check_prepare_target(out_dir: &Path, replace: bool) -> Result<Vec<String>> {
    let existing = existing_outputs(out_dir)?;
    if existing.is_empty() {
        return Ok(read_manifest(out_dir).map(|m| m.files).unwrap_or_default());
    }
    let shown = out_dir.display();
    if !replace {
        bail!(
            "{shown} already holds shards ({}); use --replace to overwrite the files llite-tui wrote there",
            summarize(&existing)
        );
    }
    let manifest = read_manifest(out_dir)?;
    if let Some(foreign) = existing.iter().find(|f| !manifest.files.contains(f)) {
        bail!(
            "{shown}: {foreign} was not written by llite-tui prepare (not in {PREPARE_MANIFEST}); --replace only replaces the tool's own files, move it away first"
        );
    }
    Ok(manifest.files)
}

fn summarize(files: &[String]) -> String {
    let npy = files
        .iter()
        .filter(|f| f.to_ascii_lowercase().ends_with(".npy"))
        .count();
    let tok = files.iter().any(|f| f == "tokenizer.json");
    match (npy, tok) {
        (0, _) => "tokenizer.json".into(),
        (n, false) => format!("{n} .npy files"),
        (n, true) => format!("{n} .npy files and tokenizer.json"),
    }
}

/// Tokenizes documents into `{prefix}_val_000000.npy` + `{prefix}_train_NNNNNN.npy` shards
/// (each document preceded by end-of-text) plus `tokenizer.json`, so training can stream
/// tokens without re-tokenizing. A directory that already holds shards is refused unless
/// `replace`, which overwrites or removes only the files an earlier `prepare` recorded in
/// [`PREPARE_MANIFEST`].
pub fn prepare(
    docs: &[Document],
    tok: &TextTokenizer,
    val_fraction: f64,
    shard_tokens: usize,
    out_dir: &Path,
    prefix: &str,
    replace: bool,
) -> Result<PrepareSummary> {
    let shown = out_dir.display();
    if !plain_file_name(prefix) {
        bail!("--prefix {prefix:?} must be a plain file name (no '/', '\\', '..' or control characters); the shards go in --out {shown}");
    }
    let previous = check_prepare_target(out_dir, replace)?;
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
    let mut names = vec![format!("{prefix}_val_{:06}.npy", 0)];
    let n_train = (stream.len() - n_val).div_ceil(shard_tokens);
    names.extend((1..=n_train).map(|i| format!("{prefix}_train_{i:06}.npy")));
    names.push("tokenizer.json".into());
    // Record every file about to be written before writing it, so an interrupted run can
    // still be replaced; then drop what the previous run wrote and this one did not.
    let mut union = previous.clone();
    union.extend(names.iter().filter(|n| !previous.contains(n)).cloned());
    write_manifest(out_dir, &union)?;
    let mut shards = Vec::new();
    let val_path = out_dir.join(&names[0]);
    write_npy_u16(&val_path, &stream[..n_val])?;
    shards.push(val_path);
    for (i, chunk) in stream[n_val..].chunks(shard_tokens).enumerate() {
        let p = out_dir.join(&names[i + 1]);
        write_npy_u16(&p, chunk)?;
        shards.push(p);
    }
    tok.save(&out_dir.join("tokenizer.json"))?;
    for stale in previous.iter().filter(|p| !names.contains(p)) {
        let path = out_dir.join(stale);
        if path.is_file() {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    write_manifest(out_dir, &names)?;
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
        let s = prepare(&docs, &tok, 0.1, 500, dir.path(), "shk", false).unwrap();
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
    fn prepare_refuses_existing_shards_and_replace_touches_only_its_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let tok = TextTokenizer::gpt2().unwrap();
        let docs = vec![Document {
            name: "a".into(),
            text: "Some words to tokenize into a few shards. ".repeat(40),
        }];
        let first = prepare(&docs, &tok, 0.1, 100, dir.path(), "c", false).unwrap();
        assert!(first.shards.len() > 2);
        let m = format!(
            "{:#}",
            prepare(&docs, &tok, 0.1, 100, dir.path(), "c", false).unwrap_err()
        );
        assert!(
            m.contains("already holds shards") && m.contains("--replace"),
            "{m}"
        );
        // Fewer, larger shards: the old extra shards (the tool's own) are removed.
        let second = prepare(&docs, &tok, 0.1, 100_000, dir.path(), "c", true).unwrap();
        assert_eq!(second.shards.len(), 2);
        assert_eq!(list_shards(dir.path()).unwrap().train, second.shards[1..]);
        // A file the tool did not write blocks --replace and survives it.
        std::fs::write(dir.path().join("mine.npy"), b"user data").unwrap();
        let m = format!(
            "{:#}",
            prepare(&docs, &tok, 0.1, 100, dir.path(), "c", true).unwrap_err()
        );
        assert!(
            m.contains("mine.npy") && m.contains("not written by llite-tui"),
            "{m}"
        );
        assert_eq!(
            std::fs::read(dir.path().join("mine.npy")).unwrap(),
            b"user data"
        );
        for bad in ["", "a/b", "..", "../x", "a\\b", "x\ny"] {
            let other = tempfile::tempdir().unwrap();
            let m = format!(
                "{:#}",
                prepare(&docs, &tok, 0.1, 100, other.path(), bad, false).unwrap_err()
            );
            assert!(m.contains("plain file name"), "{bad:?}: {m}");
        }
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
            prepare(&docs, &tok, 0.99, 10, dir.path(), "p", false).unwrap_err()
        );
        assert!(m.contains("none left for training"), "{m}");
        let m = format!(
            "{:#}",
            prepare(&docs, &tok, 1.5, 10, dir.path(), "p", false).unwrap_err()
        );
        assert!(m.contains("val_fraction"), "{m}");
    }
}
