//! A quick look at a data path before anything is stopped or created (the cockpit's
//! fine-tune prompt): it exists, is readable, and its first lines parse. The full parse still
//! happens when the run starts; this only catches typos and wrong files early.

use super::corpus::is_shard_source;
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;

/// How many bytes of a text or JSONL file the probe reads.
const PROBE_BYTES: u64 = 64 * 1024;
/// How many non-empty JSONL lines the probe parses.
const PROBE_LINES: usize = 8;

/// Check that `path` is data a fine-tune can start from: a `.npy` shard file or directory
/// (headers read), a `.jsonl` whose first lines are instruction examples, a directory of
/// `.txt` files, or a UTF-8 text file. Errors name the path (and line).
pub fn probe_data_path(path: &Path) -> Result<()> {
    let shown = path.display();
    if std::fs::metadata(path).is_err() {
        bail!("{shown}: no such file or directory");
    }
    let spec = path.to_string_lossy();
    if is_shard_source(&spec) {
        let shards: Vec<_> = if path.is_dir() {
            std::fs::read_dir(path)
                .with_context(|| format!("cannot list {shown}"))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "npy"))
                .collect()
        } else {
            vec![path.to_path_buf()]
        };
        for shard in shards {
            super::npy::npy_info(&shard)?;
        }
        return Ok(());
    }
    if path.is_dir() {
        let mut texts: Vec<_> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list {shown}"))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "txt"))
            .collect();
        if texts.is_empty() {
            bail!("{shown}: a directory with neither .npy shards nor .txt files");
        }
        texts.sort();
        return texts.iter().try_for_each(|t| probe_text(t));
    }
    if spec.ends_with(".jsonl") {
        probe_jsonl(path)
    } else {
        probe_text(path)
    }
}

/// The first bytes of a file, opened without blocking on a FIFO or device.
fn head(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    crate::store::fsio::open_regular(path)?
        .take(PROBE_BYTES)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes)
}

fn probe_text(path: &Path) -> Result<()> {
    let bytes = head(path)?;
    if bytes.is_empty() {
        bail!("{}: empty file", path.display());
    }
    // A cut in the middle of a character at the probe's end is not an error.
    if let Err(e) = std::str::from_utf8(&bytes) {
        if e.error_len().is_some() {
            bail!(
                "{} is not UTF-8 text (invalid byte at offset {})",
                path.display(),
                e.valid_up_to()
            );
        }
    }
    Ok(())
}

fn probe_jsonl(path: &Path) -> Result<()> {
    let bytes = head(path)?;
    let mut parsed = 0;
    let full = (bytes.len() as u64) < PROBE_BYTES;
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let last = lines.len();
    for (i, line) in lines.into_iter().enumerate() {
        // The probe's last line may be cut short; the run's full parse checks it.
        if !full && i + 1 == last {
            break;
        }
        let text = std::str::from_utf8(line)
            .map_err(|_| anyhow::anyhow!("{}:{}: not UTF-8", path.display(), i + 1))?;
        if text.trim().is_empty() {
            continue;
        }
        serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| format!("invalid JSON ({e})"))
            .and_then(|v| super::sft::parse_line(&v))
            .map_err(|why| anyhow::anyhow!("{}:{}: {why}", path.display(), i + 1))?;
        parsed += 1;
        if parsed == PROBE_LINES {
            break;
        }
    }
    if parsed == 0 {
        bail!(
            "{}: no instruction examples in its first lines",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_and_wrong_files_are_caught_and_good_data_passes() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let good = r#"{"instruction": "hi", "output": "hello"}"#;
        std::fs::write(p("ok.jsonl"), format!("{good}\n\n{good}\n")).unwrap();
        std::fs::write(p("bad.jsonl"), format!("{good}\n{{\"text\": 1}}\n")).unwrap();
        std::fs::write(p("ok.txt"), "some text").unwrap();
        std::fs::write(p("bin.txt"), [0xff, 0xfe, 0x00]).unwrap();
        std::fs::create_dir(p("empty")).unwrap();
        std::fs::create_dir(p("texts")).unwrap();
        std::fs::write(p("texts/a.txt"), "more text").unwrap();
        probe_data_path(&p("ok.jsonl")).unwrap();
        probe_data_path(&p("ok.txt")).unwrap();
        probe_data_path(&p("texts")).unwrap();
        for (name, want) in [
            ("missing.jsonl", "missing.jsonl: no such file"),
            (
                "bad.jsonl",
                "bad.jsonl:2: neither `messages` nor `instruction`",
            ),
            ("bin.txt", "bin.txt is not UTF-8"),
            ("empty", "neither .npy shards nor .txt"),
            (".", "bin.txt is not UTF-8"),
        ] {
            let e = probe_data_path(&p(name)).unwrap_err().to_string();
            assert!(e.contains(want), "{name}: {e}");
        }
    }
}
