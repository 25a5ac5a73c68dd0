//! Where destructive outputs (`import --out`, `export --out`, `prepare --out`) may go: never onto something
//! that already holds files, never into a run or checkpoint, and always via a staging
//! directory renamed into place, so a failure leaves nothing half-written and nothing lost.

use super::fsio::sync_dir;
use super::layout::TRAINER_FILE;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Files that mark a run directory (its resolved config and its event log).
const RUN_MARKERS: [&str; 2] = ["run.toml", "metrics.jsonl"];

/// Refuse `out` if it exists and is anything but an empty directory: the tool never
/// overwrites or deletes files it did not create.
pub fn ensure_fresh_target(out: &Path, flag: &str) -> Result<()> {
    let meta = match std::fs::symlink_metadata(out) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", out.display())),
    };
    if !meta.is_dir() {
        bail!(
            "{flag} {}: exists and is not a directory; refusing to replace it (choose a new path)",
            out.display()
        );
    }
    let mut entries =
        std::fs::read_dir(out).with_context(|| format!("cannot list {}", out.display()))?;
    if entries.next().is_some() {
        bail!(
            "{flag} {}: directory is not empty; refusing to write over its files (choose a new or empty directory)",
            out.display()
        );
    }
    Ok(())
}

/// Refuse an output inside (or onto) a run or checkpoint directory: `out` or one of its
/// ancestors holds `trainer.json`, `run.toml` or `metrics.jsonl`, or `out` sits directly in a
/// `checkpoints/` directory. Checked on the canonical path, so `..` and symlinks cannot hide it.
pub fn ensure_outside_runs(out: &Path, flag: &str) -> Result<()> {
    let abs = canonical_or_nearest(out)?;
    if abs
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|n| n == "checkpoints")
    {
        bail!(
            "{flag} {}: inside a checkpoints directory; write outputs elsewhere",
            out.display()
        );
    }
    for dir in abs.ancestors() {
        for marker in std::iter::once(TRAINER_FILE).chain(RUN_MARKERS) {
            if dir.join(marker).exists() {
                bail!(
                    "{flag} {}: inside the run or checkpoint {} (it holds {marker}); write outputs elsewhere",
                    out.display(),
                    dir.display()
                );
            }
        }
    }
    Ok(())
}

/// The canonical form of `path`, or of its nearest existing ancestor with the rest appended.
fn canonical_or_nearest(path: &Path) -> Result<PathBuf> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("cannot read the current directory")?
            .join(path)
    };
    let mut rest = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(c) = cur.canonicalize() {
            return Ok(rest.iter().rev().fold(c, |p: PathBuf, n| p.join(n)));
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                cur = parent;
            }
            _ => return Ok(abs),
        }
    }
}

/// A fresh staging directory next to `out` (same filesystem, so the final rename is atomic).
pub fn create_staging(out: &Path) -> Result<PathBuf> {
    let name = out
        .file_name()
        .with_context(|| format!("{}: needs a directory name", out.display()))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let staging = parent.join(format!(
        ".{}.staging-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::create_dir(&staging)
        .with_context(|| format!("cannot create staging directory {}", staging.display()))?;
    Ok(staging)
}

/// Move a complete staging directory to `out` (which must not exist or be an empty
/// directory) and fsync both; on failure the staging directory, which this tool created, is
/// removed and `out` is untouched. `flag` names the option in the refusal, as in
/// [`ensure_fresh_target`].
pub fn commit_staging(staging: &Path, out: &Path, flag: &str) -> Result<()> {
    sync_dir(staging);
    let result = ensure_fresh_target(out, flag).and_then(|_| {
        std::fs::rename(staging, out)
            .with_context(|| format!("cannot move {} to {}", staging.display(), out.display()))
    });
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(staging);
        return Err(e);
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_empty_targets_and_run_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(ensure_fresh_target(&d.join("new"), "--out").is_ok());
        std::fs::create_dir(d.join("empty")).unwrap();
        assert!(ensure_fresh_target(&d.join("empty"), "--out").is_ok());
        std::fs::write(d.join("empty2"), b"").unwrap();
        assert!(ensure_fresh_target(&d.join("empty2"), "--out").is_err());
        let e = ensure_fresh_target(d, "--out").unwrap_err().to_string();
        assert!(e.contains("not empty"), "{e}");

        let run = d.join("run");
        std::fs::create_dir_all(run.join("checkpoints/step-1")).unwrap();
        std::fs::write(run.join("metrics.jsonl"), b"").unwrap();
        for bad in [
            run.join("checkpoints/step-1"),
            run.join("checkpoints/new"),
            run.join("a/b"),
            run.join("checkpoints/step-1/../../x"),
        ] {
            let e = ensure_outside_runs(&bad, "--out").unwrap_err().to_string();
            assert!(
                e.contains("write outputs elsewhere"),
                "{}: {e}",
                bad.display()
            );
        }
        assert!(ensure_outside_runs(&d.join("export"), "--out").is_ok());
    }

    #[test]
    fn staging_is_renamed_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let staging = create_staging(&out).unwrap();
        std::fs::write(staging.join("f"), b"x").unwrap();
        commit_staging(&staging, &out, "export --out").unwrap();
        assert_eq!(std::fs::read(out.join("f")).unwrap(), b"x");
        assert!(!staging.exists());
        // A target that filled up meanwhile is left alone; the staging copy is dropped.
        let staging = create_staging(&out).unwrap();
        assert!(commit_staging(&staging, &out, "export --out").is_err());
        assert!(!staging.exists());
        assert_eq!(std::fs::read(out.join("f")).unwrap(), b"x");
    }
}
