//! A cache of what a fresh run prepares from a text corpus (the trained tokenizer and the token
//! shards), keyed by the corpus's content and the preparation settings, so a second launch on
//! the same corpus copies them instead of training a BPE and tokenizing again. Both are pure
//! functions of the key. Entries are written to a staging directory and renamed into place,
//! every file's size and blake3 digest recorded and checked while it is copied back; a corrupt
//! entry is reported, set aside and rebuilt, never trusted.

use super::corpus::Document;
use super::tokenizer::TextTokenizer;
use crate::store::fsio::{self, read_bounded, read_bounded_string};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Environment variable naming the cache directory (`off` disables the cache), so tests and
/// the bench never touch the user's own cache.
pub const CACHE_ENV: &str = "LLITE_CACHE_DIR";
/// The manifest of one entry: the key and every file's size and digest.
const ENTRY_FILE: &str = "entry.json";
/// The tokenizer's name inside an entry (and in the run directory).
const TOKENIZER_FILE: &str = "tokenizer.json";
/// Subdirectory of the shards, inside an entry and in the run directory.
const DATA_DIR: &str = "data";
/// Bumped when the layout of an entry or the meaning of the key changes.
const FORMAT: u32 = 1;

/// Where prepared data is cached: `LLITE_CACHE_DIR` when set (`off` or empty: no cache), else
/// the platform cache directory (`directories`) + `prepared/`; None when there is none.
pub fn default_root() -> Option<PathBuf> {
    match std::env::var_os(CACHE_ENV) {
        Some(v) if v == "off" || v.is_empty() => None,
        Some(v) => Some(PathBuf::from(v)),
        None => directories::ProjectDirs::from("", "", "llite-tui")
            .map(|d| d.cache_dir().join("prepared")),
    }
}

/// The content key of one preparation: a blake3 hex digest over the crate version (the BPE
/// trainer and shard writer it ships), the tokenizer spec, the validation fraction, the shard
/// size and every document's text in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepKey(String);

impl PrepKey {
    /// Key of preparing `docs` with tokenizer `spec` (e.g. `train:4096`).
    pub fn new(docs: &[Document], spec: &str, val_fraction: f64, shard_tokens: usize) -> Self {
        let mut h = blake3::Hasher::new();
        h.update(format!("llite-tui prepared data {FORMAT}\n").as_bytes());
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        for part in [spec.as_bytes(), &val_fraction.to_le_bytes()] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.update(&(shard_tokens as u64).to_le_bytes());
        h.update(&(docs.len() as u64).to_le_bytes());
        for d in docs {
            h.update(&(d.text.len() as u64).to_le_bytes());
            h.update(d.text.as_bytes());
        }
        Self(h.finalize().to_hex().to_string())
    }

    /// The entry's directory name.
    pub fn hex(&self) -> &str {
        &self.0
    }
}

/// One cached file: its path inside the entry, size and digest.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct CachedFile {
    name: String,
    bytes: u64,
    blake3: String,
}

/// Contents of [`ENTRY_FILE`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct EntryManifest {
    format: u32,
    key: String,
    files: Vec<CachedFile>,
}

/// What a lookup found.
pub enum Lookup {
    /// The entry was copied into the run directory; this is its tokenizer.
    Hit(TextTokenizer),
    /// No entry for the key.
    Miss,
    /// An entry that failed verification (why); nothing of it was left in the run directory.
    Corrupt(String),
}

/// The only names an entry may hold: the tokenizer and `data/<plain file name>`.
fn allowed(name: &str) -> bool {
    let plain =
        |n: &str| !n.is_empty() && n != "." && !n.contains("..") && !n.contains(['/', '\\']);
    name == TOKENIZER_FILE || name.strip_prefix("data/").is_some_and(plain)
}

/// Copy `src` to a new file `dst` (never replacing one), hashing what passes; fsynced.
fn copy_hashed(src: &Path, dst: &Path) -> Result<(u64, String)> {
    let mut h = blake3::Hasher::new();
    let total = fsio::copy_synced_seeing(src, dst, |chunk| {
        h.update(chunk);
    })?;
    Ok((total, h.finalize().to_hex().to_string()))
}

fn read_manifest(entry: &Path, key: &PrepKey) -> Result<EntryManifest> {
    let path = entry.join(ENTRY_FILE);
    let text = read_bounded_string(&path, fsio::MAX_METADATA_BYTES)?;
    let m: EntryManifest = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a cache manifest", path.display()))?;
    if m.format != FORMAT || m.key != key.hex() {
        bail!("{}: format or key does not match", path.display());
    }
    if let Some(bad) = m.files.iter().find(|f| !allowed(&f.name)) {
        bail!(
            "{}: lists an unexpected file {:?}",
            path.display(),
            bad.name
        );
    }
    if !m.files.iter().any(|f| f.name == TOKENIZER_FILE) {
        bail!("{}: has no tokenizer", path.display());
    }
    Ok(m)
}

/// Copy the entry of `key` under `root` into `run_dir` (`tokenizer.json` and `data/`),
/// verifying every file while it is copied. Only into a run directory with no `data/` yet
/// (else `Miss`: nothing is ever overwritten). On a corrupt entry the files copied so far
/// are removed again (this call created them).
pub fn restore(root: &Path, key: &PrepKey, run_dir: &Path) -> Result<Lookup> {
    let entry = root.join(key.hex());
    let data_dir = run_dir.join(DATA_DIR);
    if !entry.is_dir() || data_dir.exists() {
        return Ok(Lookup::Miss);
    }
    let manifest = match read_manifest(&entry, key) {
        Ok(m) => m,
        Err(e) => return Ok(Lookup::Corrupt(format!("{e:#}"))),
    };
    std::fs::create_dir(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let undo = |written: &[PathBuf]| {
        for p in written {
            let _ = std::fs::remove_file(p);
        }
        let _ = std::fs::remove_dir(&data_dir);
    };
    let mut written = Vec::new();
    for f in manifest.files.iter().filter(|f| f.name != TOKENIZER_FILE) {
        let dst = run_dir.join(&f.name);
        let copied = copy_hashed(&entry.join(&f.name), &dst);
        if copied.is_ok() || dst.exists() {
            written.push(dst.clone());
        }
        match copied {
            Ok((bytes, digest)) if bytes == f.bytes && digest == f.blake3 => {}
            Ok(_) => {
                undo(&written);
                return Ok(Lookup::Corrupt(format!(
                    "{}: size or digest differs from its manifest",
                    entry.join(&f.name).display()
                )));
            }
            Err(e) => {
                undo(&written);
                return Ok(Lookup::Corrupt(format!("{e:#}")));
            }
        }
    }
    fsio::sync_dir(&data_dir);
    let tok = manifest.files.iter().find(|f| f.name == TOKENIZER_FILE);
    let tok_path = entry.join(TOKENIZER_FILE);
    let verified = tok.context("no tokenizer").and_then(|t| {
        let bytes = read_bounded(&tok_path, t.bytes)?;
        let ok =
            bytes.len() as u64 == t.bytes && blake3::hash(&bytes).to_hex().as_str() == t.blake3;
        if !ok {
            bail!(
                "{}: size or digest differs from its manifest",
                tok_path.display()
            );
        }
        let parsed = TextTokenizer::from_json_bytes(&bytes, &tok_path.display().to_string())?;
        Ok((bytes, parsed))
    });
    let (bytes, tokenizer) = match verified {
        Ok(v) => v,
        Err(e) => {
            undo(&written);
            return Ok(Lookup::Corrupt(format!("{e:#}")));
        }
    };
    if let Err(e) = fsio::write_atomic(&run_dir.join(TOKENIZER_FILE), &bytes) {
        undo(&written);
        return Err(e);
    }
    Ok(Lookup::Hit(tokenizer))
}

/// Move a corrupt entry of `key` aside and remove it (the cache created it; nothing else
/// lives under its name).
pub fn discard(root: &Path, key: &PrepKey) -> Result<()> {
    let entry = root.join(key.hex());
    let aside = root.join(format!(".{}.corrupt-{}", key.hex(), std::process::id()));
    std::fs::rename(&entry, &aside)
        .with_context(|| format!("cannot move {} aside", entry.display()))?;
    std::fs::remove_dir_all(&aside).with_context(|| format!("cannot remove {}", aside.display()))
}

/// Store what a fresh preparation wrote in `run_dir` (`tokenizer.json`, `data/`) as the
/// entry of `key`: copied into a staging directory with each file's digest, then renamed
/// into place. A concurrent launch that stored it first wins; ours is removed.
pub fn store(root: &Path, key: &PrepKey, run_dir: &Path) -> Result<()> {
    let entry = root.join(key.hex());
    if entry.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
    let staging = root.join(format!(".{}.partial-{}", key.hex(), std::process::id()));
    if staging.exists() {
        // A staging directory of this name is ours: a crashed launch with the same PID.
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("cannot remove {}", staging.display()))?;
    }
    let result = (|| -> Result<bool> {
        std::fs::create_dir_all(staging.join(DATA_DIR))
            .with_context(|| format!("cannot create {}", staging.display()))?;
        let data_dir = run_dir.join(DATA_DIR);
        let mut names = vec![TOKENIZER_FILE.to_string()];
        let listing = std::fs::read_dir(&data_dir)
            .with_context(|| format!("cannot list {}", data_dir.display()))?;
        let mut shards = Vec::new();
        for e in listing {
            let e = e.with_context(|| format!("cannot list {}", data_dir.display()))?;
            shards.push(format!("data/{}", e.file_name().to_string_lossy()));
        }
        shards.sort();
        names.extend(shards);
        let mut files = Vec::new();
        for name in names {
            if !allowed(&name) {
                bail!("{}: unexpected file {name:?}", data_dir.display());
            }
            let (bytes, blake3) = copy_hashed(&run_dir.join(&name), &staging.join(&name))?;
            files.push(CachedFile {
                name,
                bytes,
                blake3,
            });
        }
        let manifest = EntryManifest {
            format: FORMAT,
            key: key.hex().to_string(),
            files,
        };
        fsio::write_synced(
            &staging.join(ENTRY_FILE),
            serde_json::to_string_pretty(&manifest)?.as_bytes(),
        )?;
        fsio::sync_dir(&staging.join(DATA_DIR));
        fsio::sync_dir(&staging);
        Ok(std::fs::rename(&staging, &entry).is_ok())
    })();
    match result {
        Ok(true) => {
            fsio::sync_dir(root);
            Ok(())
        }
        // Renamed by nobody: another launch stored the same entry first.
        Ok(false) if entry.is_dir() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(())
        }
        Ok(false) => {
            let _ = std::fs::remove_dir_all(&staging);
            bail!("cannot rename {} to {}", staging.display(), entry.display())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}
