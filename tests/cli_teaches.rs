//! The CLI of issue 13 end to end on the real binary: `RUN_DIR/latest` and run directories as
//! checkpoint arguments (skipping a corrupt newest one, saying which was picked), headless
//! progress lines every `--log-every` steps, `eval` progress and integer counts, and the
//! refusals (`ckpt ls FILE`, `sample --config`, a run without checkpoints).

mod common;
use common::*;
use std::path::Path;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Step numbers of the progress lines a headless run printed on stdout.
fn logged_steps(stdout: &str) -> Vec<u64> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("step "))
        .filter_map(|rest| rest.trim_start().split('/').next()?.parse().ok())
        .collect()
}

#[test]
fn latest_resolves_to_the_newest_valid_checkpoint_and_progress_is_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 60_000);
    let runs = dir.path().join("runs");
    let run = runs.join("r");
    let mut args = headless_args(&runs, &["--run-name", "r"]);
    args.extend(tiny_flags_with(
        &corpus,
        &["checkpoint.every=5", "checkpoint.keep_last=0"],
    ));
    args.extend(strs(&["--max-steps", "12", "--log-every", "5"]));
    let out = run_within(&args, 240);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // The first step, every 5th and the last: not one line per step.
    assert_eq!(
        logged_steps(&out.stdout),
        vec![1, 5, 10, 12],
        "{}",
        out.stdout
    );

    // --resume RUN_DIR/latest continues the newest checkpoint in place and says so.
    let resume = strs(&[
        "train",
        "--headless",
        "--resume",
        &format!("{}/latest", run.display()),
        "--max-steps",
        "16",
        "--log-every",
        "100",
    ]);
    let out = run_within(&resume, 240);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let picked = format!(
        "{}/latest -> {}",
        run.display(),
        run.join("checkpoints/step-00000012").display()
    );
    assert!(out.stderr.contains(&picked), "{}", out.stderr);
    assert_eq!(logged_steps(&out.stdout), vec![13, 16], "{}", out.stdout);

    // A corrupt newest checkpoint is skipped, and the note says so.
    let newest = run.join("checkpoints/step-00000016");
    std::fs::write(newest.join("model.safetensors"), b"not tensors").unwrap();
    let out = run_within(
        &strs(&[
            "sample",
            "--checkpoint",
            &s(&run),
            "--prompt",
            "ROMEO:",
            "--max-tokens",
            "3",
        ]),
        120,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("step-00000015 (newest valid of 4; skipped 1 newer invalid)"),
        "{}",
        out.stderr
    );

    // eval on the run directory: progress on stderr, counts as integers on stdout.
    let out = run_within(
        &strs(&[
            "eval",
            "--checkpoint",
            &format!("{}/latest", run.display()),
            "--task",
            &s(&corpus),
            "--limit",
            "3",
        ]),
        120,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("done 3/3 windows"), "{}", out.stderr);
    assert!(out.stdout.contains("tokens 96"), "{}", out.stdout);
    assert!(!out.stdout.contains("tokens 96.0"), "{}", out.stdout);
    assert!(out.stdout.contains("at step 15"), "{}", out.stdout);
}

#[test]
fn checkpoint_arguments_that_cannot_resolve_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let empty_run = dir.path().join("empty");
    std::fs::create_dir_all(empty_run.join("checkpoints")).unwrap();
    let loose = dir.path().join("notes.txt");
    std::fs::write(&loose, "hello").unwrap();
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            strs(&["train", "--headless", "--resume", &format!("{}/latest", empty_run.display())]),
            format!("no valid checkpoint in {}", empty_run.join("checkpoints").display()),
        ),
        (
            strs(&["sample", "--checkpoint", &format!("{}/latest", dir.path().display())]),
            "is not a run directory (it has no checkpoints/ folder)".into(),
        ),
        (
            strs(&["ckpt", "ls", &s(&loose)]),
            format!("{} is a file (5 B), not a run directory", loose.display()),
        ),
        (
            strs(&["sample", "--checkpoint", &s(&empty_run), "--config", "configs/tiny.toml"]),
            "sample --config configs/tiny.toml: sampling uses the config recorded in the checkpoint".into(),
        ),
    ];
    for (args, needle) in cases {
        let out = run_within(&args, 60);
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stderr);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {}", out.stderr);
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(&needle),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn man_pages_go_to_a_new_directory_and_never_over_existing_files() {
    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("man1");
    let out = run_within(&strs(&["manpage", "--out", &s(&man)]), 60);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for page in [
        "llite-tui.1",
        "llite-tui-train.1",
        "llite-tui-ckpt.1",
        "llite-tui-completions.1",
    ] {
        let text = std::fs::read_to_string(man.join(page)).unwrap();
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page}: {text}"
        );
    }
    let before = snapshot(dir.path());
    let out = run_within(&strs(&["manpage", "--out", &s(&man)]), 60);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("directory is not empty"),
        "{}",
        out.stderr
    );
    assert_eq!(
        snapshot(dir.path()),
        before,
        "a refused manpage --out changed files"
    );
    let out = run_within(&strs(&["completions", "zsh"]), 60);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("#compdef llite-tui"), "{}", out.stdout);
}
