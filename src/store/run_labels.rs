//! A run's display name and tags, `<run>/labels.toml`, written only by `runs rename` / `runs
//! tag` (never by training). Not `run.toml`: that file is the run's resolved config, rewritten
//! by every resume and loadable with `--config` (whose parser refuses unknown keys). The
//! directory itself is never renamed: branches, fine-tunes and scripts refer to it by path,
//! and a training or watching process may hold it open.

use super::fsio::{read_bounded_string, write_atomic};
use super::layout::validate_run_name;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `<run>/labels.toml`.
pub const LABELS_FILE: &str = "labels.toml";
const MAX_LABELS_BYTES: u64 = 64 << 10;
/// Longest tag accepted.
pub const MAX_TAG_BYTES: usize = 64;

/// What a user called a run and how they tagged it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunLabels {
    /// Display name (None: the directory name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub tags: Vec<String>,
}

/// The run's labels (defaults when it has no `labels.toml`); a file that is there but not
/// ours (unparsable, too big, special) is an error naming it, never silently replaced.
pub fn read_labels(run_dir: &Path) -> Result<RunLabels> {
    let path = run_dir.join(LABELS_FILE);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(RunLabels::default());
    }
    let text = read_bounded_string(&path, MAX_LABELS_BYTES)?;
    toml::from_str(&text).map_err(|e| {
        let why = e.message().replace('\n', " ");
        anyhow::anyhow!("{}: not a labels file: {why}", path.display())
    })
}

fn write_labels(run_dir: &Path, labels: &RunLabels) -> Result<()> {
    let text = toml::to_string(labels)?;
    write_atomic(&run_dir.join(LABELS_FILE), text.as_bytes())
}

/// Refuse anything that is not a run directory, so labels never land in a stranger's folder.
fn ensure_run_dir(run_dir: &Path) -> Result<()> {
    let is_run = [super::layout::METRICS_FILE, super::layout::RUN_CONFIG_FILE]
        .iter()
        .any(|f| run_dir.join(f).is_file());
    if !is_run {
        bail!(
            "{}: not a run directory (no run.toml or metrics.jsonl); refusing to label it",
            run_dir.display()
        );
    }
    Ok(())
}

/// Give the run a display name (same rules as a run name: one line, no separators).
pub fn rename(run_dir: &Path, name: &str) -> Result<RunLabels> {
    ensure_run_dir(run_dir)?;
    validate_run_name(name, "new name")?;
    let mut labels = read_labels(run_dir)?;
    labels.name = Some(name.to_string());
    write_labels(run_dir, &labels)?;
    Ok(labels)
}

/// Add `tags` (or remove them when `untag`), keeping the existing order; duplicates are one.
pub fn tag(run_dir: &Path, tags: &[String], untag: bool) -> Result<RunLabels> {
    ensure_run_dir(run_dir)?;
    for t in tags {
        validate_tag(t)?;
    }
    let mut labels = read_labels(run_dir)?;
    if untag {
        labels.tags.retain(|t| !tags.contains(t));
    } else {
        for t in tags {
            if !labels.tags.contains(t) {
                labels.tags.push(t.clone());
            }
        }
    }
    write_labels(run_dir, &labels)?;
    Ok(labels)
}

/// A tag is one word: no white space, commas or control characters, at most 64 bytes.
pub fn validate_tag(tag: &str) -> Result<()> {
    let bad = tag.is_empty()
        || tag.len() > MAX_TAG_BYTES
        || tag
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',');
    if bad {
        bail!("tag {tag:?} is not valid: one word of 1 to {MAX_TAG_BYTES} bytes, without spaces or commas");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_and_tag_write_labels_and_refuse_strangers() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        assert!(rename(run, "x")
            .unwrap_err()
            .to_string()
            .contains("not a run directory"));
        std::fs::write(run.join("run.toml"), "").unwrap();
        assert_eq!(read_labels(run).unwrap(), RunLabels::default());
        rename(run, "baseline lr 3e-4").unwrap();
        tag(run, &["sweep".into(), "good".into(), "sweep".into()], false).unwrap();
        let l = tag(run, &["good".into()], true).unwrap();
        assert_eq!(l.name.as_deref(), Some("baseline lr 3e-4"));
        assert_eq!(l.tags, vec!["sweep".to_string()]);
        assert_eq!(read_labels(run).unwrap(), l);
        assert!(rename(run, "a/b").is_err());
        assert!(tag(run, &["two words".into()], false).is_err());
        // A labels.toml that is not ours is refused, not replaced.
        std::fs::write(run.join(LABELS_FILE), "colour = 3\n").unwrap();
        let e = tag(run, &["x".into()], false).unwrap_err().to_string();
        assert!(e.contains(LABELS_FILE) && !e.contains('\n'), "{e}");
        assert_eq!(
            std::fs::read_to_string(run.join(LABELS_FILE)).unwrap(),
            "colour = 3\n"
        );
    }
}
