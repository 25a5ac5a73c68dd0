//! Reading token shard directories: which `.npy` files are validation and which training,
//! one dtype per set (uint16 or uint32, see `npy`), and token ids within the vocabulary.
//! Writing them is `prepare`'s job (`data::prepare`).

pub use super::npy::{
    npy_info, npy_layout, read_npy_tokens, read_npy_u16, write_npy, write_npy_u16, NpyInfo,
    NpyLayout, ShardTokens, TokenDtype,
};
pub use super::prepare::{prepare, PrepareManifest, PrepareSummary, PREPARE_MANIFEST};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Refuse a shard holding a token id the model has no embedding row for (a shard made with a
/// bigger tokenizer): the engine would otherwise index out of bounds deep in a forward pass.
pub fn check_token_ids(path: &Path, tokens: &ShardTokens, vocab_size: usize) -> Result<()> {
    check_ids_at(path, 0, tokens.iter(), vocab_size)
}

/// [`check_token_ids`] for a span of a shard starting at token `first`, as the loader reads
/// them (the message names the position within the shard).
pub fn check_ids_at(
    path: &Path,
    first: usize,
    ids: impl Iterator<Item = u32>,
    vocab_size: usize,
) -> Result<()> {
    if let Some((pos, id)) = ids
        .enumerate()
        .map(|(i, t)| (first + i, t))
        .find(|&(_, t)| t as usize >= vocab_size)
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
    let all: Vec<PathBuf> = set.val.iter().chain(&set.train).cloned().collect();
    shards_dtype(&all)?;
    Ok(set)
}

/// The one dtype of a shard set, from the headers. A set mixing uint16 and uint32 shards is
/// refused naming a file of each: it was assembled from two `prepare` runs with different
/// tokenizers, and the ids of one would be garbage under the other's vocabulary.
pub fn shards_dtype(shards: &[PathBuf]) -> Result<TokenDtype> {
    let Some(first) = shards.first() else {
        bail!("no shards given: prepare data first or point at a shard directory");
    };
    let want = npy_info(first)?.dtype;
    for p in &shards[1..] {
        check_dtype(p, npy_info(p)?.dtype, first, want)?;
    }
    Ok(want)
}

/// Refuse `path` (of `dtype`) when the set it belongs to is `want`, as `reference` is.
pub fn check_dtype(
    path: &Path,
    dtype: TokenDtype,
    reference: &Path,
    want: TokenDtype,
) -> Result<()> {
    if dtype != want {
        bail!(
            "shard {} is {dtype} but {} is {want}: one shard set must use one dtype (shards from different tokenizers?); prepare the data again into one directory",
            path.display(),
            reference.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A directory mixing `<u2` and `<u4` shards is refused naming both files; a uniform
    /// `<u4` set lists, and ids are checked against the vocabulary in either width.
    #[test]
    fn mixed_dtypes_are_refused_and_ids_checked_in_both_widths() {
        let dir = tempfile::tempdir().unwrap();
        write_npy(&dir.path().join("m_val_000000.npy"), &[1u32, 70000]).unwrap();
        write_npy(&dir.path().join("m_train_000001.npy"), &[2u32, 3]).unwrap();
        let set = list_shards(dir.path()).unwrap();
        assert_eq!(shards_dtype(&set.train).unwrap(), TokenDtype::U32);
        write_npy_u16(&dir.path().join("m_train_000002.npy"), &[4, 5]).unwrap();
        let m = format!("{:#}", list_shards(dir.path()).unwrap_err());
        assert!(
            m.contains("m_train_000002.npy is uint16")
                && m.contains("m_val_000000.npy is uint32")
                && !m.contains('\n'),
            "{m}"
        );
        let p = dir.path().join("m_val_000000.npy");
        let toks = read_npy_tokens(&p).unwrap();
        check_token_ids(&p, &toks, 70001).unwrap();
        let m = format!("{:#}", check_token_ids(&p, &toks, 70000).unwrap_err());
        assert!(
            m.contains("m_val_000000.npy") && m.contains("token id 70000 at position 1"),
            "{m}"
        );
    }
}
