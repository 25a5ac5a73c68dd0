//! Fault injection on the real binary: SIGKILL at twenty moments (named points inside a save,
//! a rename and retention, and pseudo-random moments mid-step), and a checkpoint directory that
//! stops being writable. After every fault the newest complete checkpoint loads, and the run,
//! resumed to the end, has every step in `metrics.jsonl` exactly once with the losses of an
//! uninterrupted run, bit for bit.

mod common;
use common::*;
use llite_tui::store::listing::{latest_valid_checkpoint, list_checkpoints};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const STEPS: u64 = 400;

/// One way a training process is ended early.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// The process kills itself the `hit`-th time it passes this point of the store.
    At { point: &'static str, hit: u64 },
    /// The test kills the process this many milliseconds after a new checkpoint appeared.
    AfterMs(u64),
}

fn train_args(runs: &Path, name: &str, corpus: &Path, resume: Option<&Path>) -> Vec<String> {
    let mut a: Vec<String> = [
        "train",
        "--headless",
        "--max-steps",
        &STEPS.to_string(),
        "--runs-dir",
        runs.to_str().unwrap(),
        "--run-name",
        name,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(tiny_flags_with(
        corpus,
        &["checkpoint.every=2", "checkpoint.keep_last=2"],
    ));
    if let Some(ckpt) = resume {
        a.extend(["--resume".to_string(), ckpt.display().to_string()]);
    }
    a
}

fn spawn(args: &[String], fault: Option<&str>) -> std::process::Child {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(f) = fault {
        cmd.env("LLITE_FAULT_POINT", f);
    }
    cmd.spawn().unwrap()
}

fn stderr_of(child: &mut std::process::Child) -> String {
    let mut err = String::new();
    if let Some(s) = child.stderr.as_mut() {
        let _ = std::io::Read::read_to_string(s, &mut err);
    }
    err
}

fn wait_with_deadline(child: &mut std::process::Child, secs: u64, what: &str) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{what}: no exit within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn newest_valid_step(run_dir: &Path) -> u64 {
    list_checkpoints(run_dir)
        .iter()
        .filter(|c| c.error.is_none())
        .map(|c| c.step)
        .max()
        .unwrap_or(0)
}

/// What every crash must leave: only complete checkpoints listed, and the newest one loads.
fn assert_consistent(run_dir: &Path, what: &str) -> PathBuf {
    let listed = list_checkpoints(run_dir);
    for c in &listed {
        assert!(c.error.is_none(), "{what}: torn checkpoint listed: {c:?}");
    }
    let newest = latest_valid_checkpoint(run_dir).unwrap_or_else(|| panic!("{what}: none left"));
    llite_tui::store::checkpoint::load(&newest)
        .unwrap_or_else(|e| panic!("{what}: newest checkpoint does not load: {e:#}"));
    newest
}

/// Every step 1..=STEPS exactly once, in order, with the reference losses bit for bit.
fn assert_history_matches(metrics: &Path, reference: &[(u64, f64)]) {
    let got = metrics_step_losses(metrics);
    let steps: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
    let expected: Vec<u64> = (1..=STEPS).collect();
    assert_eq!(
        steps, expected,
        "metrics.jsonl lost or duplicated steps: {steps:?}"
    );
    for ((step, loss), (_, want)) in got.iter().zip(reference) {
        assert_eq!(
            loss.to_bits(),
            want.to_bits(),
            "step {step}: loss {loss} differs from the uninterrupted run's {want}"
        );
    }
}

fn reference_run(dir: &Path, corpus: &Path) -> Vec<(u64, f64)> {
    let runs = dir.join("runs");
    let mut child = spawn(&train_args(&runs, "reference", corpus, None), None);
    let status = wait_with_deadline(&mut child, 300, "reference run");
    assert!(status.success(), "reference run: {}", stderr_of(&mut child));
    let losses = metrics_step_losses(&runs.join("reference/metrics.jsonl"));
    assert_eq!(losses.len(), STEPS as usize);
    losses
}

/// Twenty faults: the named points of a save (files half written, written but not renamed,
/// renamed but the directory not yet synced) and of retention (renamed to `.deleting`, not yet
/// removed), and pseudo-random moments mid-step.
fn faults() -> Vec<Fault> {
    let points = [
        ("save.partial_created", 1),
        ("save.tensors_written", 2),
        ("save.files_written", 1),
        ("save.renamed", 2),
        ("retention.renamed", 1),
        ("save.tensors_written", 1),
        ("retention.renamed", 2),
        ("save.files_written", 3),
    ];
    // A small LCG: reproducible "random" delays between 0 and 150 ms.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut delays = (0..12).map(move |_| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % 150
    });
    let mut out = Vec::new();
    for (i, (point, hit)) in points.into_iter().enumerate() {
        // A delayed kill first: every round needs a checkpoint to resume from.
        out.push(Fault::AfterMs(delays.next().unwrap()));
        out.push(Fault::At { point, hit });
        if i % 2 == 1 {
            out.push(Fault::AfterMs(delays.next().unwrap()));
        }
    }
    out
}

#[test]
fn twenty_crashes_lose_nothing_and_the_run_resumes_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 150_000);
    let reference = reference_run(dir.path(), &corpus);
    let runs = dir.path().join("runs");
    let run_dir = runs.join("crashy");
    let plan = faults();
    assert_eq!(plan.len(), 20);
    for (round, fault) in plan.iter().enumerate() {
        let what = format!("round {round} ({fault:?})");
        let resume = latest_valid_checkpoint(&run_dir);
        let args = train_args(&runs, "crashy", &corpus, resume.as_deref());
        let before = newest_valid_step(&run_dir);
        let mut child = match fault {
            Fault::At { point, hit } => spawn(&args, Some(&format!("{point}:{hit}"))),
            Fault::AfterMs(_) => spawn(&args, None),
        };
        match fault {
            Fault::At { .. } => {
                let status = wait_with_deadline(&mut child, 120, &what);
                assert_eq!(
                    status.signal(),
                    Some(libc::SIGKILL),
                    "{what}: the fault point was never reached ({status}): {}",
                    stderr_of(&mut child)
                );
            }
            Fault::AfterMs(ms) => {
                let deadline = Instant::now() + Duration::from_secs(120);
                while newest_valid_step(&run_dir) <= before {
                    if let Some(status) = child.try_wait().unwrap() {
                        panic!("{what}: exited early ({status}): {}", stderr_of(&mut child));
                    }
                    assert!(Instant::now() < deadline, "{what}: no new checkpoint");
                    std::thread::sleep(Duration::from_millis(2));
                }
                std::thread::sleep(Duration::from_millis(*ms));
                child.kill().unwrap();
                child.wait().unwrap();
            }
        }
        assert_consistent(&run_dir, &what);
    }
    let newest = assert_consistent(&run_dir, "after the faults");
    assert!(
        newest_valid_step(&run_dir) < STEPS,
        "the faults left nothing to resume; raise STEPS"
    );
    let mut last = spawn(&train_args(&runs, "crashy", &corpus, Some(&newest)), None);
    let status = wait_with_deadline(&mut last, 300, "final resume");
    assert!(status.success(), "final resume: {}", stderr_of(&mut last));
    assert_history_matches(&run_dir.join("metrics.jsonl"), &reference);
    // The resume cleaned every leftover of the crashes.
    let names: Vec<String> = std::fs::read_dir(run_dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.contains('.')),
        "leftovers remain: {names:?}"
    );
}

/// The checkpoint directory stops being usable mid-run (here it is moved away and a plain file
/// takes its name, which fails even for root): saves fail loudly, training goes on, the process
/// exits non-zero naming the failures, and once the directory is back the run resumes exactly.
#[test]
fn a_checkpoint_directory_that_becomes_unwritable_fails_loudly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 150_000);
    let reference = reference_run(dir.path(), &corpus);
    let runs = dir.path().join("runs");
    let run_dir = runs.join("blocked");
    let ckpts = run_dir.join("checkpoints");
    let mut child = spawn(&train_args(&runs, "blocked", &corpus, None), None);
    let deadline = Instant::now() + Duration::from_secs(120);
    while newest_valid_step(&run_dir) < 4 {
        assert!(Instant::now() < deadline, "no checkpoint in time");
        std::thread::sleep(Duration::from_millis(2));
    }
    let away = run_dir.join("checkpoints.away");
    std::fs::rename(&ckpts, &away).unwrap();
    // A background save in flight may recreate `checkpoints/` between the rename and the
    // write: move such a directory aside too (like a save that failed) and try again.
    let mut extras = Vec::new();
    while let Err(e) = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&ckpts)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"not a directory"))
    {
        assert!(extras.len() < 20, "cannot block {}: {e}", ckpts.display());
        let extra = run_dir.join(format!("checkpoints.extra{}", extras.len()));
        std::fs::rename(&ckpts, &extra).unwrap();
        extras.push(extra);
    }
    let status = wait_with_deadline(&mut child, 300, "blocked run");
    let err = stderr_of(&mut child);
    assert!(
        !status.success(),
        "a run whose saves failed exited 0: {err}"
    );
    assert!(
        err.contains("checkpoint save") && err.contains("failed"),
        "no failure summary: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    std::fs::remove_file(&ckpts).unwrap();
    for extra in extras {
        std::fs::remove_dir_all(extra).unwrap();
    }
    std::fs::rename(&away, &ckpts).unwrap();
    let newest = assert_consistent(&run_dir, "after the blocked saves");
    let mut resumed = spawn(&train_args(&runs, "blocked", &corpus, Some(&newest)), None);
    let status = wait_with_deadline(&mut resumed, 300, "resume");
    assert!(status.success(), "resume: {}", stderr_of(&mut resumed));
    assert_history_matches(&run_dir.join("metrics.jsonl"), &reference);
}
