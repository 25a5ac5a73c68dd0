//! `runs`: the runs index as a table or a lineage tree, and `runs rename` / `runs tag`.

use super::runs_dir;
use crate::cli::{RunsArgs, RunsCommand};
use anyhow::{bail, Result};
use llite_tui::store::run_tree::{lineage_rows, tree_prefix};
use llite_tui::store::runs::{is_run_dir, scan_runs, RunIndex};
use llite_tui::store::{layout, run_labels};
use std::path::{Path, PathBuf};

/// `runs [DIR] [--tree]`, `runs rename RUN NAME`, `runs tag RUN TAG... [--untag]`.
pub(crate) fn runs(args: &RunsArgs) -> Result<()> {
    match &args.command {
        Some(RunsCommand::Rename { run, name }) => {
            let dir = resolve_run(run)?;
            run_labels::rename(&dir, name)?;
            println!("{}: now shown as {name:?}", dir.display());
            Ok(())
        }
        Some(RunsCommand::Tag { run, tags, untag }) => {
            let dir = resolve_run(run)?;
            let labels = run_labels::tag(&dir, tags, *untag)?;
            println!("{}: tags [{}]", dir.display(), labels.tags.join(", "));
            Ok(())
        }
        None => {
            let root = runs_dir(args.dir.as_deref())?;
            if !root.is_dir() {
                bail!("{}: no such runs directory", root.display());
            }
            if is_run_dir(&root) {
                bail!(
                    "{} is a run directory, not a runs root; list its parent: llite-tui runs {}",
                    root.display(),
                    root.parent().unwrap_or(Path::new(".")).display()
                );
            }
            let index = scan_runs(&root)?;
            print!("{}", render(&index, args.tree, layout::unix_now()));
            Ok(())
        }
    }
}

/// A run directory, or a run name in the default runs directory.
fn resolve_run(arg: &Path) -> Result<PathBuf> {
    if arg.is_dir() {
        return Ok(arg.to_path_buf());
    }
    let name = arg.to_string_lossy();
    let dir = if layout::validate_run_name(&name, "run").is_ok() {
        Some(runs_dir(None)?.join(name.as_ref())).filter(|d| d.is_dir())
    } else {
        None
    };
    match dir {
        Some(d) => Ok(d),
        None => bail!(
            "{}: no such run directory (give <runs>/<run-name>, or a run name in the default runs directory)",
            arg.display()
        ),
    }
}

/// The table (newest first) or the tree, with skipped entries and notes after it.
pub(crate) fn render(index: &RunIndex, tree: bool, now: u64) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if index.runs.is_empty() {
        let _ = writeln!(out, "no runs in {}", index.root.display());
    } else {
        let rows: Vec<(String, usize)> = if tree {
            lineage_rows(&index.runs)
                .iter()
                .map(|r| (tree_prefix(r), r.index))
                .collect()
        } else {
            (0..index.runs.len()).map(|i| (String::new(), i)).collect()
        };
        let names: Vec<String> = rows
            .iter()
            .map(|(p, i)| format!("{p}{}", index.runs[*i].name_cell()))
            .collect();
        let w = names
            .iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            out,
            "{:<w$}  {:<8}  {:>13}  {:>8}  {:>4}  {:<24}  tags",
            "name", "status", "steps", "best val", "age", "parent"
        );
        for ((_, i), name) in rows.iter().zip(&names) {
            let r = &index.runs[*i];
            let pad = w - name.chars().count();
            let line = format!(
                "{name}{:pad$}  {:<8}  {:>13}  {:>8}  {:>4}  {:<24}  {}",
                "",
                r.status.label(),
                r.steps_cell(),
                r.best_val_cell(),
                r.age_cell(now),
                r.parent_cell(),
                r.tags.join(",")
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    for note in index
        .skipped
        .iter()
        .chain(index.runs.iter().flat_map(|r| &r.notes))
    {
        let _ = writeln!(out, "note: {note}");
    }
    out
}
