//! `prepare`: tokenize a corpus into `.npy` token shards (the build-nanogpt / fineweb layout:
//! shard 0 is validation, each document preceded by end-of-text; uint16, or uint32 when the
//! vocabulary exceeds 65,536), and the manifest that lets `--replace` touch only its own files.

use super::corpus::Document;
use super::npy::{write_npy, TokenDtype, TokenInt};
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
    /// Vocabulary size of the tokenizer used.
    pub vocab_size: usize,
    /// The shards' element type: uint16 up to 65,536 tokens, uint32 above.
    pub dtype: TokenDtype,
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
    let dtype = TokenDtype::for_vocab(vocab_size);
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
    let n_val = ((total as f64) * val_fraction).ceil() as usize;
    let n_val = n_val.min(total);
    if n_val >= total {
        bail!(
            "corpus for {shown} yields only {total} tokens, none left for training after validation: add text or lower val_fraction"
        );
    }
    let mut names = vec![format!("{prefix}_val_{:06}.npy", 0)];
    let n_train = (total - n_val).div_ceil(shard_tokens);
    names.extend((1..=n_train).map(|i| format!("{prefix}_train_{i:06}.npy")));
    names.push("tokenizer.json".into());
    // Record every file about to be written before writing it, so an interrupted run can
    // still be replaced; then drop what the previous run wrote and this one did not.
    let mut union = previous.clone();
    union.extend(names.iter().filter(|n| !previous.contains(n)).cloned());
    write_manifest(out_dir, &union)?;
    let paths: Vec<PathBuf> = names[..=n_train].iter().map(|n| out_dir.join(n)).collect();
    let eot = tok.eot_id();
    match dtype {
        // Every id is below vocab_size <= 65536 here, so the narrowing is exact.
        TokenDtype::U16 => write_stream(&encoded, eot, n_val, shard_tokens, &paths, |t| t as u16)?,
        TokenDtype::U32 => write_stream(&encoded, eot, n_val, shard_tokens, &paths, |t| t)?,
    }
    drop(encoded);
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
        train_tokens: (total - n_val) as u64,
        shards: paths,
        vocab_size,
        dtype,
    })
}

/// The token stream (end-of-text before each document) as `T`: the first `n_val` tokens to
/// `paths[0]`, the rest in `shard_tokens` chunks to `paths[1..]`.
fn write_stream<T: TokenInt>(
    encoded: &[Vec<u32>],
    eot: u32,
    n_val: usize,
    shard_tokens: usize,
    paths: &[PathBuf],
    narrow: impl Fn(u32) -> T,
) -> Result<()> {
    let total: usize = encoded.iter().map(|e| e.len() + 1).sum();
    let mut stream: Vec<T> = Vec::with_capacity(total);
    for ids in encoded {
        stream.push(narrow(eot));
        stream.extend(ids.iter().map(|&i| narrow(i)));
    }
    write_npy(&paths[0], &stream[..n_val])?;
    for (chunk, path) in stream[n_val..].chunks(shard_tokens).zip(&paths[1..]) {
        write_npy(path, chunk)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::npy::read_npy_u16;
    use crate::data::shards::list_shards;

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

    /// A word-level tokenizer of `n` tokens (`<|endoftext|>` = 0, `<unk>` = 1, then `wI` = I):
    /// a real vocabulary over 65,536 without shipping one.
    pub(crate) fn word_tokenizer(n: usize) -> TextTokenizer {
        let mut vocab = serde_json::Map::new();
        vocab.insert("<|endoftext|>".into(), 0.into());
        vocab.insert("<unk>".into(), 1.into());
        for i in 2..n {
            vocab.insert(format!("w{i}"), i.into());
        }
        let json = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": [{"id": 0, "content": "<|endoftext|>", "single_word": false,
                "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
            "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"},
            "post_processor": null, "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
        });
        TextTokenizer::from_json_bytes(json.to_string().as_bytes(), "word tokenizer").unwrap()
    }

    /// Over 65,536 tokens the shards are `<u4` and hold the ids unchanged; at 65,536 they
    /// stay `<u2`.
    #[test]
    fn large_vocabularies_get_uint32_shards() {
        use crate::data::npy::{npy_info, read_npy_tokens, ShardTokens};
        let dir = tempfile::tempdir().unwrap();
        let tok = word_tokenizer(70_001);
        assert_eq!(tok.vocab_size(), 70_001);
        let docs = vec![Document {
            name: "a".into(),
            text: "w70000 w3 w65536 w65535 w2 ".repeat(20),
        }];
        let s = prepare(&docs, &tok, 0.1, 40, dir.path(), "big", false).unwrap();
        assert_eq!(s.dtype, TokenDtype::U32);
        let bytes = std::fs::read(&s.shards[0]).unwrap();
        assert!(String::from_utf8_lossy(&bytes[..64]).contains("'descr': '<u4'"));
        let mut all = Vec::new();
        for p in &s.shards {
            let t = read_npy_tokens(p).unwrap();
            assert_eq!(npy_info(p).unwrap().dtype, TokenDtype::U32);
            assert!(matches!(t, ShardTokens::U32(_)));
            all.extend(t.iter());
        }
        assert_eq!(all[..6], [0, 70000, 3, 65536, 65535, 2]);
        assert_eq!(all.len(), 1 + 5 * 20);
        let m = format!("{:#}", read_npy_u16(&s.shards[1]).unwrap_err());
        assert!(
            m.contains("uint32") && m.contains("big_train_000001.npy"),
            "{m}"
        );

        let small = tempfile::tempdir().unwrap();
        let tok = word_tokenizer(1 << 16);
        let docs = vec![Document {
            name: "a".into(),
            text: "w65535 w2 ".repeat(20),
        }];
        let s = prepare(&docs, &tok, 0.1, 1000, small.path(), "s", false).unwrap();
        assert_eq!(s.dtype, TokenDtype::U16);
        assert_eq!(read_npy_u16(&s.shards[1]).unwrap()[..2], [65535, 2]);
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
