//! A run's history is never overwritten: where a resumed checkpoint sits (in a run or
//! standalone), claiming a new run directory for a branch, linking a branch's data, and moving
//! later checkpoints and metrics lines aside into `<run>/discarded/` (renames, never deletes).

use super::fsio::sync_dir;
use super::layout::{
    checkpoint_step, checkpoints_dir, is_final_checkpoint_name, metrics_path, validate_run_name,
    DISCARDED_DIR, METRICS_FILE, RUN_CONFIG_FILE, TOKENIZER_FILE,
};
use super::listing::list_checkpoints;
use super::lock::RunLock;
use super::metrics_log::move_events_after;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Where a checkpoint directory sits, which decides where a resume of it writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointPlace {
    /// At `<run>/checkpoints/step-N` of a real run directory (one with `metrics.jsonl` or
    /// `run.toml`); the path is the run directory.
    InRun(PathBuf),
    /// Anywhere else (an import, a copy): a resume starts a new run in the runs directory.
    Standalone,
}

/// Classify a checkpoint directory (symlinks and `..` resolved first).
pub fn place_of(ckpt_dir: &Path) -> CheckpointPlace {
    let Ok(real) = std::fs::canonicalize(ckpt_dir) else {
        return CheckpointPlace::Standalone;
    };
    let parent = real.parent();
    let in_checkpoints = parent
        .and_then(Path::file_name)
        .is_some_and(|n| n == "checkpoints");
    let run = parent.and_then(Path::parent);
    match run {
        Some(run)
            if in_checkpoints
                && is_final_checkpoint_name(&real)
                && [METRICS_FILE, RUN_CONFIG_FILE]
                    .iter()
                    .any(|f| std::fs::symlink_metadata(run.join(f)).is_ok_and(|m| m.is_file())) =>
        {
            CheckpointPlace::InRun(run.to_path_buf())
        }
        _ => CheckpointPlace::Standalone,
    }
}

/// The step of the run's newest complete (valid) checkpoint.
pub fn newest_complete_step(run_dir: &Path) -> Option<u64> {
    list_checkpoints(run_dir)
        .into_iter()
        .filter(|c| c.error.is_none())
        .map(|c| c.step)
        .max()
}

/// A newly created run directory and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedRun {
    pub name: String,
    pub dir: PathBuf,
}

/// Create a new, empty run directory `runs_dir/base` (validated as a run name). With
/// `uniquify`, an existing one is never reused: `base-2`, `base-3`… are tried instead; without,
/// an existing directory is refused. Creation is the claim (`create_dir` fails if it exists),
/// so two processes never get the same directory.
pub fn claim_run_dir(
    runs_dir: &Path,
    base: &str,
    what: &str,
    uniquify: bool,
) -> Result<ClaimedRun> {
    validate_run_name(base, what)?;
    std::fs::create_dir_all(runs_dir)
        .with_context(|| format!("cannot create runs directory {}", runs_dir.display()))?;
    for i in 1..10_000u32 {
        let name = if i == 1 {
            base.to_string()
        } else {
            format!("{base}-{i}")
        };
        validate_run_name(&name, what)?;
        let dir = runs_dir.join(&name);
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                sync_dir(runs_dir);
                return Ok(ClaimedRun { name, dir });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && uniquify => continue,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
                "run directory {} already exists; pick another --run-name",
                dir.display()
            ),
            Err(e) => bail!("cannot create run directory {}: {e}", dir.display()),
        }
    }
    bail!(
        "{}: no free run name of the form {base}-N; pick one with --run-name",
        runs_dir.display()
    )
}

/// Make a branch self-contained: hard-link (or, across filesystems, copy) the original run's
/// tokenized `data/` and `tokenizer.json` into the new run. Nothing in `from` is modified.
pub fn link_run_data(from: &Path, to: &Path) -> Result<()> {
    let tok = from.join(TOKENIZER_FILE);
    if std::fs::symlink_metadata(&tok).is_ok_and(|m| m.is_file()) {
        link_or_copy(&tok, &to.join(TOKENIZER_FILE))?;
    }
    link_tree(&from.join("data"), &to.join("data"), 0)?;
    sync_dir(to);
    Ok(())
}

fn link_tree(from: &Path, to: &Path, depth: usize) -> Result<()> {
    if depth > 8 || !std::fs::symlink_metadata(from).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let entries =
        std::fs::read_dir(from).with_context(|| format!("cannot list {}", from.display()))?;
    for entry in entries.flatten() {
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let Ok(meta) = std::fs::symlink_metadata(&src) else {
            continue;
        };
        if meta.is_dir() {
            link_tree(&src, &dst, depth + 1)?;
        } else if meta.is_file() {
            link_or_copy(&src, &dst)?;
        }
    }
    sync_dir(to);
    Ok(())
}

fn link_or_copy(src: &Path, dst: &Path) -> Result<()> {
    if std::fs::hard_link(src, dst).is_ok() {
        return Ok(());
    }
    super::fsio::copy_synced(src, dst).map(|_| ())
}

/// Move everything of the run that comes after `step` aside, so a resume from `step` continues
/// in place without overwriting or duplicating history: later `step-M` directories and the
/// `metrics.jsonl` lines of events after `step` go to a new `<run>/discarded/<stamp>/` (by
/// rename; nothing is deleted). Creates nothing when there is nothing to move. Returns one
/// notice per kind of thing moved.
pub fn discard_after(lock: &RunLock, step: u64) -> Result<Vec<String>> {
    let run_dir = lock.run_dir();
    let ckpts = checkpoints_dir(run_dir);
    let mut later: Vec<PathBuf> = std::fs::read_dir(&ckpts)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| checkpoint_step(p).is_some_and(|s| s > step))
                .collect()
        })
        .unwrap_or_default();
    later.sort();
    let has_later_lines = later_metrics_lines(run_dir, step);
    if later.is_empty() && !has_later_lines {
        return Ok(Vec::new());
    }
    let dest = new_discard_dir(run_dir, step)?;
    let mut notices = Vec::new();
    if !later.is_empty() {
        let moved_ckpts = dest.join("checkpoints");
        std::fs::create_dir(&moved_ckpts)
            .with_context(|| format!("cannot create {}", moved_ckpts.display()))?;
        for p in &later {
            let target = moved_ckpts.join(p.file_name().unwrap_or_default());
            std::fs::rename(p, &target)
                .with_context(|| format!("cannot move {} to {}", p.display(), target.display()))?;
        }
        sync_dir(&moved_ckpts);
        sync_dir(&ckpts);
        let names: Vec<String> = later
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        notices.push(format!(
            "moved {} later checkpoint(s) ({}) to {}",
            later.len(),
            names.join(", "),
            moved_ckpts.display()
        ));
    }
    let dest_log = dest.join(METRICS_FILE);
    let moved = move_events_after(lock, step, &dest_log)?;
    if moved > 0 {
        notices.push(format!(
            "moved {moved} metrics.jsonl line(s) of events after step {step} to {} so no step appears twice",
            dest_log.display()
        ));
    }
    Ok(notices)
}

/// Whether `metrics.jsonl` mentions any event after `step` (cheap pre-check: no directory is
/// created for nothing).
fn later_metrics_lines(run_dir: &Path, step: u64) -> bool {
    let Ok(file) = super::fsio::open_regular(&metrics_path(run_dir)) else {
        return false;
    };
    use std::io::BufRead;
    std::io::BufReader::new(file)
        .lines()
        .map_while(|l| l.ok())
        .filter_map(|l| super::metrics_log::parse_metrics_line(&l))
        .any(|m| m.event.step() > step)
}

fn new_discard_dir(run_dir: &Path, step: u64) -> Result<PathBuf> {
    let root = run_dir.join(DISCARDED_DIR);
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let stamp: String = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    for i in 1..1000 {
        let name = match i {
            1 => format!("{stamp}-after-step-{step}"),
            _ => format!("{stamp}-after-step-{step}-{i}"),
        };
        let dir = root.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                sync_dir(&root);
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => bail!("cannot create {}: {e}", dir.display()),
        }
    }
    bail!("{}: cannot find a free directory name", root.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_run_dirs_are_new_and_stay_inside_the_runs_dir() {
        let runs = tempfile::tempdir().unwrap();
        let a = claim_run_dir(runs.path(), "r-branch-5", "branch", true).unwrap();
        let b = claim_run_dir(runs.path(), "r-branch-5", "branch", true).unwrap();
        assert_eq!(a.name, "r-branch-5");
        assert_eq!(b.name, "r-branch-5-2");
        assert!(claim_run_dir(runs.path(), "r-branch-5", "--run-name", false).is_err());
        for bad in ["../x", "a/b", "", ".", ".."] {
            assert!(claim_run_dir(runs.path(), bad, "--run-name", true).is_err());
        }
        assert!(!runs.path().parent().unwrap().join("x").exists());
    }

    #[test]
    fn a_checkpoint_outside_a_run_is_standalone() {
        let dir = tempfile::tempdir().unwrap();
        let ck = dir.path().join("ck");
        std::fs::create_dir(&ck).unwrap();
        assert_eq!(place_of(&ck), CheckpointPlace::Standalone);
        let in_run = dir.path().join("r/checkpoints/step-00000005");
        std::fs::create_dir_all(&in_run).unwrap();
        // No metrics.jsonl or run.toml: not a real run.
        assert_eq!(place_of(&in_run), CheckpointPlace::Standalone);
        std::fs::write(dir.path().join("r/run.toml"), "").unwrap();
        let run = std::fs::canonicalize(dir.path().join("r")).unwrap();
        assert_eq!(place_of(&in_run), CheckpointPlace::InRun(run));
    }
}
