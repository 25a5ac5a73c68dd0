//! `ckpt ls`: a run's checkpoints (or every run's, for a runs root) with their state and
//! validity.

use anyhow::{bail, Result};
use llite_tui::model::stats::format_bytes;
use llite_tui::store;
use std::path::Path;

/// `ckpt ls RUN_DIR [--verify]`: one line per checkpoint; exits 1 if any is invalid. A runs
/// root lists each of its runs in turn.
pub(crate) fn ckpt_ls(dir: &Path, verify: bool) -> Result<()> {
    if !dir.is_dir() {
        bail!("{}", not_a_directory(dir));
    }
    let looks_like_run = store::runs::is_run_dir(dir);
    if !store::layout::checkpoints_dir(dir).is_dir() && !looks_like_run {
        let root = store::runs::scan_runs(dir)?;
        if root.runs.is_empty() || dir.join(store::layout::TRAINER_FILE).exists() {
            bail!("{}", store::listing::not_a_run_dir_hint(dir));
        }
        return ls_runs_root(&root, verify);
    }
    ls_run(dir, verify)
}

/// Every run of a runs root (by name), one table each; exits 1 naming the runs with an
/// invalid checkpoint.
fn ls_runs_root(root: &store::runs::RunIndex, verify: bool) -> Result<()> {
    let mut runs: Vec<&store::runs::RunSummary> = root.runs.iter().collect();
    runs.sort_by(|a, b| a.dir_name.cmp(&b.dir_name));
    let mut bad = Vec::new();
    for r in &runs {
        println!("{} ({}):", r.dir.display(), r.status.label());
        if let Err(e) = ls_run(&r.dir, verify) {
            println!("  {e:#}");
            bad.push(r.dir_name.as_str());
        }
        println!();
    }
    for note in &root.skipped {
        println!("note: {note}");
    }
    if !bad.is_empty() {
        bail!(
            "{} of {} runs in {} have invalid checkpoints: {}",
            bad.len(),
            runs.len(),
            root.root.display(),
            bad.join(", ")
        );
    }
    Ok(())
}

/// One run's checkpoint table.
fn ls_run(dir: &Path, verify: bool) -> Result<()> {
    use store::listing::{list_checkpoints_with, Check};
    let check = if verify { Check::Digests } else { Check::Cheap };
    let start = std::time::Instant::now();
    let list = list_checkpoints_with(dir, check);
    let elapsed = start.elapsed().as_secs_f64();
    if list.is_empty() {
        println!(
            "no checkpoints in {}",
            store::layout::checkpoints_dir(dir).display()
        );
        return Ok(());
    }
    let now = store::layout::unix_now();
    println!(
        "{:<16} {:>8} {:>12} {:>14} {:>10} {:>8}  status",
        "checkpoint", "step", "tokens", "val_loss", "size", "age"
    );
    let mut invalid = 0;
    let mut newest_good = None;
    let mut verified_bytes = 0u64;
    for c in &list {
        let name = Path::new(&c.path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let val = c.val_loss_label().unwrap_or_else(|| "-".into());
        let age = match c.written_unix {
            0 => "-".to_string(), // trainer.json unreadable: no write time to show
            t => humantime::format_duration(std::time::Duration::from_secs(now.saturating_sub(t)))
                .to_string()
                .split(' ')
                .next()
                .unwrap_or("")
                .to_string(),
        };
        let status = match &c.error {
            Some(e) => {
                invalid += 1;
                format!("INVALID: {e}")
            }
            None => {
                newest_good = Some(name.clone());
                let unverified = store::trainer_state::read_trainer_record(Path::new(&c.path))
                    .map(|r| r.files.is_none())
                    .unwrap_or(false);
                match (unverified, verify) {
                    (true, _) => "ok (written before digests; not verified)".to_string(),
                    (false, true) => {
                        verified_bytes += c.size_bytes;
                        "ok, digests verified".to_string()
                    }
                    (false, false) => "ok".to_string(),
                }
            }
        };
        let status = if c.pinned {
            format!("{status}, pinned")
        } else {
            status
        };
        println!(
            "{name:<16} {:>8} {:>12} {val:>14} {:>10} {age:>8}  {status}",
            c.step,
            c.tokens,
            format_bytes(c.size_bytes)
        );
    }
    if verify {
        println!(
            "verified {} in {elapsed:.2} s ({:.0} MiB/s)",
            format_bytes(verified_bytes),
            verified_bytes as f64 / (1024.0 * 1024.0) / elapsed.max(1e-9)
        );
    }
    if invalid > 0 {
        bail!(
            "{invalid} of {} checkpoints in {} are invalid; newest valid: {}",
            list.len(),
            store::layout::checkpoints_dir(dir).display(),
            newest_good.as_deref().unwrap_or("none")
        );
    }
    Ok(())
}

/// Why `path` (not a directory) cannot be listed: missing, or what kind of file it is, and for
/// a file inside a checkpoint, which run to list instead.
fn not_a_directory(path: &Path) -> String {
    let shown = path.display();
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return format!("{shown}: no such run directory");
    };
    if !meta.is_file() {
        return format!("{shown} is not a run directory (it is a special file or a broken link)");
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    match parent {
        Some(ckpt) if ckpt.join(store::layout::TRAINER_FILE).is_file() => format!(
            "{shown} is a file of checkpoint {}, not a run directory; list its run: llite-tui ckpt ls {}",
            ckpt.display(),
            store::layout::run_dir_of(ckpt).display()
        ),
        _ => format!(
            "{shown} is a file ({}), not a run directory; ckpt ls takes <runs>/<run-name>/",
            format_bytes(meta.len())
        ),
    }
}
