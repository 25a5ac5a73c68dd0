//! Runs side by side, end to end through the real binary: a fresh run named after its preset,
//! a branch (resuming an older checkpoint) and a fine-tune recorded in `parent.json`, listed
//! by `runs` as a table and a lineage tree, renamed and tagged in `labels.toml`, `ckpt ls` of
//! the runs root listing every run, and `watch` of an empty root refusing instead of waiting.

mod common;

use common::{run_within, small_corpus, strs, tiny_flags_with};
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn train(runs: &Path, corpus: &Path, extra: &[&str], sets: &[&str]) -> common::Outcome {
    let mut args = strs(&["train", "--headless", "--runs-dir", s(runs)]);
    args.extend(strs(extra));
    args.extend(tiny_flags_with(corpus, sets));
    let out = run_within(&args, 300);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    out
}

#[test]
fn runs_lists_lineage_labels_and_every_runs_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = small_corpus(tmp.path(), 20_000);
    let runs = tmp.path().join("runs");
    let cfg = tmp.path().join("mini.toml");
    std::fs::write(&cfg, llite_tui::config::TINY_PRESET).unwrap();

    // A fresh run without --run-name is named after its preset file and the time.
    train(
        &runs,
        &corpus,
        &["--config", s(&cfg), "--max-steps", "4"],
        &["checkpoint.every=2", "checkpoint.keep_last=0"],
    );
    let names: Vec<String> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let base = names[0].clone();
    assert!(base.starts_with("mini-20"), "{base}");
    let base_dir = runs.join(&base);

    // Resuming the older checkpoint branches; fine-tuning the newest makes a child run.
    let older = base_dir.join("checkpoints/step-00000002");
    train(
        &runs,
        &corpus,
        &["--resume", s(&older), "--max-steps", "4"],
        &[],
    );
    let newest = base_dir.join("checkpoints/step-00000004");
    train(
        &runs,
        &corpus,
        &[
            "--finetune",
            s(&newest),
            "--max-steps",
            "2",
            "--run-name",
            "ft",
        ],
        &[],
    );
    let branch = runs.join(format!("{base}-branch-2"));
    let parent: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(branch.join("parent.json")).unwrap())
            .unwrap();
    assert_eq!(parent["run"], base.as_str());
    assert_eq!(parent["step"], 2);
    assert_eq!(parent["kind"], "branch");
    assert!(runs.join("ft/parent.json").is_file());

    // Labels: a display name and tags, the directory untouched.
    let out = run_within(&["runs", "rename", s(&base_dir), "baseline"], 30);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = run_within(&["runs", "tag", s(&base_dir), "sweep", "good"], 30);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = run_within(&["runs", "tag", s(&base_dir), "good", "--untag"], 30);
    assert!(out.stdout.contains("tags [sweep]"), "{}", out.stdout);
    assert!(base_dir.is_dir());
    let out = run_within(&["runs", "rename", s(&base_dir), "a/b"], 30);
    assert_eq!(out.code, Some(1));
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);

    // The table: every run, finished, with its parent.
    let out = run_within(&["runs", s(&runs)], 30);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let table = out.stdout;
    assert!(table.contains(&format!("baseline [{base}]")), "{table}");
    assert_eq!(table.matches("finished").count(), 3, "{table}");
    assert!(table.contains(&format!("{base}@2 (branch)")), "{table}");
    assert!(table.contains(&format!("{base}@4 (fine-tune)")), "{table}");
    assert!(table.contains("sweep"), "{table}");
    assert!(table.contains("4/4"), "{table}");

    // The tree: both children under the base run.
    let out = run_within(&["runs", s(&runs), "--tree"], 30);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[1].starts_with("baseline"), "{}", out.stdout);
    let kids: Vec<&str> = lines[2..4].iter().map(|l| &l[..6]).collect();
    assert!(kids.iter().all(|k| k.contains("─")), "{}", out.stdout);

    // ckpt ls of the runs root lists each run's checkpoints.
    let out = run_within(&["ckpt", "ls", s(&runs)], 30);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!("{} (finished):", s(&branch))),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("step-00000004"), "{}", out.stdout);

    // watch of a root without runs says so at once instead of waiting forever.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = run_within(&["watch", s(&empty)], 30);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("no runs to watch"), "{}", out.stderr);
}
