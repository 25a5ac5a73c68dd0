//! Reading raw text corpora (built-in Shakespeare, UTF-8 files, directories of `.txt`).

use anyhow::{bail, Context, Result};
use std::path::Path;

/// One named text unit; documents are separated by the end-of-text token when tokenized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Where the text came from (file path or `builtin:shakespeare/<TITLE>`), for messages.
    pub name: String,
    /// The full UTF-8 text of the document.
    pub text: String,
}

/// The built-in corpus (42 works of Shakespeare), so training works with no downloads.
pub const BUILTIN_SHAKESPEARE: &str = include_str!("../../data/shakespeare.txt");

/// Spec prefix for built-in corpora, e.g. `builtin:shakespeare`.
const BUILTIN_PREFIX: &str = "builtin:";

/// Names accepted after `builtin:`, listed in error messages.
pub const BUILTIN_NAMES: &[&str] = &["shakespeare"];

/// Reads every corpus spec (`builtin:shakespeare`, a UTF-8 text file, or a directory of
/// `*.txt`) into documents, in spec order, so the engine can tokenize them.
pub fn read_corpus(specs: &[String]) -> Result<Vec<Document>> {
    if specs.is_empty() {
        bail!("no corpus given: pass at least one of builtin:shakespeare, a UTF-8 .txt file or a directory of .txt files");
    }
    let mut docs = Vec::new();
    for spec in specs {
        docs.extend(read_spec(spec)?);
    }
    Ok(docs)
}

/// True when `spec` names pre-tokenized data (a `.npy` file or a directory holding `*.npy`),
/// so the engine skips tokenization and hands it to the shard loader instead.
pub fn is_shard_source(spec: &str) -> bool {
    if spec.starts_with(BUILTIN_PREFIX) {
        return false;
    }
    let path = Path::new(spec);
    if path.is_dir() {
        match std::fs::read_dir(path) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .any(|e| has_ext(&e.path(), "npy") && e.path().is_file()),
            Err(_) => false,
        }
    } else {
        has_ext(path, "npy")
    }
}

/// Splits the built-in Shakespeare text into its 42 works (one document each).
pub fn builtin_shakespeare_documents() -> Vec<Document> {
    split_works(BUILTIN_SHAKESPEARE)
}

fn has_ext(path: &Path, ext: &str) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

fn read_spec(spec: &str) -> Result<Vec<Document>> {
    if let Some(name) = spec.strip_prefix(BUILTIN_PREFIX) {
        return match name {
            "shakespeare" => Ok(builtin_shakespeare_documents()),
            other => bail!(
                "unknown built-in corpus {spec:?} (name {other:?}): use one of {}",
                BUILTIN_NAMES
                    .iter()
                    .map(|n| format!("{BUILTIN_PREFIX}{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
    }
    let path = Path::new(spec);
    if !path.exists() {
        bail!("corpus {spec} does not exist: check the path, or use builtin:shakespeare");
    }
    if is_shard_source(spec) {
        bail!("corpus {spec} holds .npy token shards, not text: pass it as a shard source (the engine skips tokenization for it)");
    }
    if path.is_dir() {
        let mut files = Vec::new();
        let entries = std::fs::read_dir(path).with_context(|| {
            format!("cannot list corpus directory {spec}: check its permissions")
        })?;
        for entry in entries {
            let entry = entry.with_context(|| {
                format!("cannot list corpus directory {spec}: check its permissions")
            })?;
            let p = entry.path();
            if p.is_file() && has_ext(&p, "txt") {
                files.push(p);
            }
        }
        if files.is_empty() {
            bail!("corpus directory {spec} contains no .txt files: add UTF-8 .txt files or pass a file / builtin:shakespeare");
        }
        files.sort();
        files.iter().map(|f| read_text_file(f)).collect()
    } else {
        Ok(vec![read_text_file(path)?])
    }
}

fn read_text_file(path: &Path) -> Result<Document> {
    let shown = path.display();
    let bytes = crate::store::fsio::read_bounded(path, super::npy::MAX_DATA_FILE_BYTES)
        .with_context(|| format!("cannot read corpus {shown}"))?;
    let bytes = bytes
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .map(<[u8]>::to_vec)
        .unwrap_or(bytes);
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => bail!(
            "corpus {shown} is not UTF-8 (invalid byte at offset {}): convert it to UTF-8 or pass a .npy shard directory",
            e.utf8_error().valid_up_to()
        ),
    };
    if text.trim().is_empty() {
        bail!("corpus {shown} is empty or whitespace-only: add text to it or remove it from the corpus list");
    }
    Ok(Document {
        name: path.display().to_string(),
        text,
    })
}

/// Splits a concatenation of works at each title line (the non-empty line before a
/// `by William Shakespeare` line); falls back to one document when no marker is found.
fn split_works(text: &str) -> Vec<Document> {
    // Byte offsets of every line start.
    let mut line_starts = vec![0usize];
    line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    let line = |i: usize| -> &str {
        let start = line_starts[i];
        let end = line_starts.get(i + 1).map_or(text.len(), |&e| e - 1);
        text[start..end].trim_end_matches('\r')
    };
    let n_lines = line_starts.len();
    let mut starts: Vec<(usize, String)> = Vec::new();
    for i in 0..n_lines {
        if line(i).trim() != "by William Shakespeare" {
            continue;
        }
        // Walk back over blank lines to the title.
        let mut j = i;
        while j > 0 {
            j -= 1;
            if !line(j).trim().is_empty() {
                starts.push((line_starts[j], line(j).trim().to_string()));
                break;
            }
        }
    }
    if starts.is_empty() {
        return vec![Document {
            name: "builtin:shakespeare".to_string(),
            text: text.to_string(),
        }];
    }
    // Anything before the first title is attached to the first work.
    starts[0].0 = 0;
    let mut docs = Vec::with_capacity(starts.len());
    for (k, (start, title)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(text.len(), |s| s.0);
        docs.push(Document {
            name: format!("builtin:shakespeare/{title}"),
            text: text[*start..end].to_string(),
        });
    }
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_splits_into_42_works() {
        let docs = read_corpus(&["builtin:shakespeare".to_string()]).unwrap();
        assert_eq!(docs.len(), 42);
        assert_eq!(
            docs[0].name,
            "builtin:shakespeare/ALL'S WELL THAT ENDS WELL"
        );
        assert!(docs[0].text.starts_with("ALL'S WELL THAT ENDS WELL\n"));
        let total: usize = docs.iter().map(|d| d.text.len()).sum();
        assert_eq!(total, BUILTIN_SHAKESPEARE.len());
        assert!(docs.iter().all(|d| !d.text.trim().is_empty()));
    }

    #[test]
    fn errors_are_one_line_and_name_the_input() {
        let dir = tempfile::tempdir().unwrap();
        let check = |specs: &[String], needle: &str| {
            let err = read_corpus(specs).unwrap_err();
            let msg = format!("{err:#}");
            assert!(!msg.contains('\n'), "multi-line error: {msg}");
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
        };
        check(&[], "no corpus");
        check(&["builtin:nope".into()], "builtin:nope");
        let missing = dir.path().join("missing.txt");
        check(&[missing.display().to_string()], "does not exist");
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, " \n\t\n").unwrap();
        check(&[empty.display().to_string()], "whitespace-only");
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, b"hello \xff world").unwrap();
        check(&[bad.display().to_string()], "offset 6");
        let empty_dir = dir.path().join("nothing");
        std::fs::create_dir(&empty_dir).unwrap();
        check(&[empty_dir.display().to_string()], "no .txt files");
    }

    #[test]
    fn directory_reads_sorted_txt_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.txt"), "second").unwrap();
        std::fs::write(dir.path().join("a.txt"), "\u{feff}first").unwrap();
        std::fs::write(dir.path().join("c.md"), "ignored").unwrap();
        let docs = read_corpus(&[dir.path().display().to_string()]).unwrap();
        let texts: Vec<_> = docs.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(texts, ["first", "second"]);
        assert!(!is_shard_source(&dir.path().display().to_string()));
        std::fs::write(dir.path().join("x_val_000000.npy"), b"").unwrap();
        assert!(is_shard_source(&dir.path().display().to_string()));
        assert!(is_shard_source("some/file.npy"));
        assert!(!is_shard_source("builtin:shakespeare"));
    }
}
