//! Run integrity, runs half: one writer per run (a second writer is refused naming the PID; a
//! SIGKILLed holder's lock is released), resume never overwrites history (an older checkpoint
//! branches, `--discard-later` moves and never deletes, a standalone checkpoint resumes into
//! the runs directory), every step exactly once in `metrics.jsonl` after a SIGKILL and a torn
//! line, interrupted swaps restored, and hostile run names that never escape the runs dir.

mod common;
use common::*;
use llite_tui::protocol::{AlertKind, Event, StartFrom};
use llite_tui::store::metrics_log::parse_metrics_line;
use llite_tui::store::trainer_state::read_trainer_state;
use llite_tui::train::engine::spawn;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// [`tiny_flags`] checkpointing every `every` steps and keeping them all.
fn tiny_flags_every(corpus: &Path, every: u64) -> Vec<String> {
    let every = format!("checkpoint.every={every}");
    tiny_flags_with(corpus, &[&every, "checkpoint.keep_last=0"])
}

/// Run the binary to completion: (exit code, stdout, stderr).
fn run_bin(args: &[String]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `error: ...` line of a failed command; asserts it is the only non-empty stderr line
/// that starts with `error:` and that it is one line.
fn error_line(stderr: &str) -> String {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "expected one error line, got: {stderr}");
    errors[0].to_string()
}

fn checkpoint_at(run_dir: &Path, step: u64) -> PathBuf {
    run_dir.join("checkpoints").join(format!("step-{step:08}"))
}

/// The `step` events of a metrics file, in order.
fn logged_steps(run_dir: &Path) -> Vec<u64> {
    logged_steps_in(&run_dir.join("metrics.jsonl"))
}

/// The details of the `Notice` alerts, in order.
fn notices(events: &[Event]) -> Vec<String> {
    alert_details(events, AlertKind::Notice)
}

/// A 20-step run named `name` with a checkpoint every 5 steps, through the engine API.
fn trained_run(dir: &Path, name: &str) -> (llite_tui::config::RunConfig, PathBuf, Vec<Event>) {
    let corpus = small_corpus(dir, 150_000);
    let mut cfg = tiny_config(&corpus, 20);
    cfg.checkpoint.every = 5;
    let runs = dir.join("runs");
    let events = run_to_end(spawn(request(cfg.clone(), &runs, name, StartFrom::Fresh)));
    (cfg, runs.join(name), events)
}

fn losses_after(events: &[Event], after: u64) -> Vec<(u64, f64)> {
    steps(events)
        .iter()
        .filter(|s| s.step > after)
        .map(|s| (s.step, s.loss))
        .collect()
}

/// Wait until `cond` holds, failing after `secs`.
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_second_writer_is_refused_naming_the_pid_and_a_killed_holder_frees_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 150_000);
    let runs = dir.path().join("runs");
    let run_dir = runs.join("w");
    let mut base = headless_args(&runs, &["--max-steps", "100000", "--run-name", "w"]);
    base.extend(tiny_flags_every(&corpus, 5));
    let mut holder = Command::new(BIN)
        .args(&base)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Past the first checkpoint, and a few steps beyond it, before the second writer comes.
    wait_for(120, "steps past the first checkpoint", || {
        run_dir.join("metrics.jsonl").is_file()
            && checkpoint_at(&run_dir, 5).is_dir()
            && logged_steps(&run_dir).last().is_some_and(|&s| s >= 8)
    });
    let pid = holder.id();
    // A fresh run with the same name, and a resume of its checkpoint, are both refused.
    let (code, _, err) = run_bin(&base);
    assert_ne!(code, 0);
    let line = error_line(&err);
    assert!(line.contains(&format!("PID {pid}")), "{line}");
    assert!(line.contains("llite-tui watch"), "{line}");
    let mut resume = base.clone();
    resume.extend(strs(&[
        "--resume",
        checkpoint_at(&run_dir, 5).to_str().unwrap(),
    ]));
    resume.extend(strs(&["--discard-later"]));
    let (code, _, err) = run_bin(&resume);
    assert_ne!(code, 0);
    assert!(error_line(&err).contains(&format!("PID {pid}")), "{err}");
    // The holder's log has each step exactly once, in order: nothing interleaved.
    let before_kill = logged_steps(&run_dir);
    assert_eq!(
        before_kill,
        (1..=before_kill.len() as u64).collect::<Vec<_>>()
    );

    // SIGKILL after its last checkpoint: the kernel frees the lock.
    holder.kill().unwrap();
    holder.wait().unwrap();
    let latest = llite_tui::store::listing::latest_valid_checkpoint(&run_dir).unwrap();
    let latest_step = read_trainer_state(&latest).unwrap().step;
    let logged = logged_steps(&run_dir);
    // A crash mid-write of the next line leaves a torn tail.
    let torn = "{\"event\":\"step\",\"step\":99999,\"lo";
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(run_dir.join("metrics.jsonl"))
            .unwrap();
        f.write_all(torn.as_bytes()).unwrap();
    }
    let stop = latest_step + 3;
    let mut resume = base.clone();
    resume.extend(strs(&[
        "--resume",
        latest.to_str().unwrap(),
        "--stop-at-step",
        &stop.to_string(),
    ]));
    let (code, _, err) = run_bin(&resume);
    assert_eq!(code, 0, "resume after SIGKILL failed: {err}");
    assert!(err.contains("torn"), "no torn-line notice: {err}");
    if logged.last().is_some_and(|&s| s > latest_step) {
        assert!(
            err.contains("metrics.jsonl line(s)"),
            "no orphan notice: {err}"
        );
    }
    // Every step exactly once, torn bytes cut out (and saved next to the log).
    assert_eq!(logged_steps(&run_dir), (1..=stop).collect::<Vec<_>>());
    let text = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    assert!(text.lines().all(|l| parse_metrics_line(l).is_some()));
    let saved = std::fs::read_dir(&run_dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().contains(".torn-"))
        .expect("torn bytes saved");
    assert_eq!(std::fs::read_to_string(saved.path()).unwrap(), torn);
    // The orphaned lines were moved, not deleted.
    if logged.last().is_some_and(|&s| s > latest_step) {
        let discarded = std::fs::read_dir(run_dir.join("discarded"))
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .path();
        let moved = logged_steps_in(&discarded.join("metrics.jsonl"));
        assert_eq!(
            moved,
            ((latest_step + 1)..=*logged.last().unwrap()).collect::<Vec<_>>()
        );
    }
}

/// The `step` events of any metrics log (a discarded one included), in order.
fn logged_steps_in(file: &Path) -> Vec<u64> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter_map(parse_metrics_line)
        .filter_map(|m| match m.event {
            Event::Step(s) => Some(s.step),
            _ => None,
        })
        .collect()
}

#[test]
fn resuming_an_older_checkpoint_branches_and_leaves_the_original_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, orig, first) = trained_run(dir.path(), "orig");
    let runs = orig.parent().unwrap().to_path_buf();
    let before = snapshot(&orig);
    let ckpt = checkpoint_at(&orig, 10);
    let mut req = request(cfg.clone(), &runs, "x", StartFrom::Resume(ckpt.clone()));
    req.run_name = None;
    let events = run_to_end(spawn(req.clone()));
    assert_eq!(snapshot(&orig), before, "the original run changed");
    let branch = runs.join("orig-branch-10");
    let Event::Started { step, info } = &events[0] else {
        panic!("first event {:?}", events[0]);
    };
    assert_eq!(*step, 10);
    assert_eq!(Path::new(&info.run_dir), branch);
    assert_eq!(info.run_name, "orig-branch-10");
    assert!(info.origin.contains(&ckpt.display().to_string()));
    assert!(
        notices(&events)
            .iter()
            .any(|n| n.contains("branch") && n.contains("orig-branch-10")),
        "{:?}",
        notices(&events)
    );
    // Exact resume in the branch: the same losses as the original's steps 11..=20.
    assert_eq!(losses_after(&events, 10), losses_after(&first, 10));
    let state = read_trainer_state(&checkpoint_at(&branch, 20)).unwrap();
    assert_eq!(
        state.parent.as_deref(),
        Some(ckpt.display().to_string().as_str())
    );
    assert_eq!(state.run_name, "orig-branch-10");
    assert_eq!(logged_steps(&branch), (11..=20).collect::<Vec<_>>());
    // Self-contained: the tokenized data is linked (same inode) or copied.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let shard = std::fs::read_dir(orig.join("data"))
            .unwrap()
            .flatten()
            .next()
            .unwrap();
        let linked = branch.join("data").join(shard.file_name());
        assert_eq!(
            std::fs::metadata(shard.path()).unwrap().ino(),
            std::fs::metadata(&linked).unwrap().ino()
        );
    }
    // A second branch from the same checkpoint never reuses a directory.
    let mut again = req;
    again.stop_at = Some(11);
    let events = run_to_end(spawn(again));
    let Event::Started { info, .. } = &events[0] else {
        panic!()
    };
    assert_eq!(info.run_name, "orig-branch-10-2");
    assert_eq!(snapshot(&orig), before, "the original run changed");
}

#[test]
fn discard_later_moves_later_history_aside_and_never_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, orig, first) = trained_run(dir.path(), "d");
    let runs = orig.parent().unwrap().to_path_buf();
    let later: BTreeMap<PathBuf, Entry> = snapshot(&orig.join("checkpoints"))
        .into_iter()
        .filter(|(k, _)| {
            [15u64, 20]
                .iter()
                .any(|s| k.starts_with(format!("step-{s:08}")))
        })
        .collect();
    let old_lines: Vec<String> = std::fs::read_to_string(orig.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let mut req = request(cfg, &runs, "d", StartFrom::Resume(checkpoint_at(&orig, 10)));
    req.discard_later = true;
    let events = run_to_end(spawn(req));
    let Event::Started { info, .. } = &events[0] else {
        panic!()
    };
    assert_eq!(
        Path::new(&info.run_dir),
        orig,
        "--discard-later continues in place"
    );
    let stash = std::fs::read_dir(orig.join("discarded"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    // The later checkpoints moved byte for byte.
    assert_eq!(snapshot(&stash.join("checkpoints")), later);
    // Every old metrics line is either still in the log or in the stash.
    let moved: Vec<String> = std::fs::read_to_string(stash.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let now = std::fs::read_to_string(orig.join("metrics.jsonl")).unwrap();
    for l in &old_lines {
        assert!(
            moved.contains(l) || now.contains(l.as_str()),
            "lost line {l}"
        );
    }
    assert_eq!(
        logged_steps_in(&stash.join("metrics.jsonl")),
        (11..=20).collect::<Vec<_>>()
    );
    // The continued run logs every step exactly once and reproduces the original losses.
    assert_eq!(logged_steps(&orig), (1..=20).collect::<Vec<_>>());
    assert_eq!(losses_after(&events, 10), losses_after(&first, 10));
    assert!(notices(&events)
        .iter()
        .any(|n| n.contains("moved 2 later checkpoint")));
}

#[test]
fn a_standalone_checkpoint_resumes_into_the_runs_dir_and_hostile_names_never_escape() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, orig, _) = trained_run(dir.path(), "solo");
    // A copy of a checkpoint outside any run (an import, a download).
    let outside = dir.path().join("elsewhere");
    let ck = outside.join("ck");
    std::fs::create_dir_all(&ck).unwrap();
    for e in std::fs::read_dir(checkpoint_at(&orig, 10))
        .unwrap()
        .flatten()
    {
        std::fs::copy(e.path(), ck.join(e.file_name())).unwrap();
    }
    let runs2 = dir.path().join("runs2");
    let before_outside = snapshot(&outside);
    let mut req = request(cfg.clone(), &runs2, "x", StartFrom::Resume(ck.clone()));
    req.run_name = None;
    req.stop_at = Some(12);
    let events = run_to_end(spawn(req.clone()));
    let Event::Started { info, .. } = &events[0] else {
        panic!()
    };
    assert_eq!(Path::new(&info.run_dir), runs2.join("solo"));
    assert!(checkpoint_at(&runs2.join("solo"), 12).is_dir());
    assert_eq!(
        snapshot(&outside),
        before_outside,
        "wrote next to the checkpoint"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        4,
        "something appeared in the checkpoint's grandparent"
    );

    // trainer.json naming `../../escape`: refused, nothing created outside the runs dir.
    // Rewritten with a valid self-digest: the name itself must be refused, not the digest.
    let trainer = ck.join("trainer.json");
    let mut record = llite_tui::store::trainer_state::read_trainer_record(&ck).unwrap();
    record.state.run_name = "../../escape".into();
    let text = llite_tui::store::trainer_state::trainer_json(
        &record.state,
        record.files.as_ref().unwrap(),
    )
    .unwrap();
    std::fs::write(&trainer, text).unwrap();
    assert!(std::fs::read_to_string(&trainer)
        .unwrap()
        .contains("../../escape"));
    let link = spawn(req.clone());
    let err = engine_error(&link, "a hostile trainer.json run_name");
    assert!(
        err.contains("trainer.json") && err.contains("not a valid run name"),
        "{err}"
    );
    assert!(!dir.path().join("escape").exists());
    assert!(!dir.path().parent().unwrap().join("escape").exists());
    // A fine-tune from it derives its name from the same field: refused too.
    let mut ft = req.clone();
    ft.start = StartFrom::FineTune {
        checkpoint: ck.clone(),
        data: None,
    };
    let link = spawn(ft);
    let err = engine_error(&link, "a hostile trainer.json run_name");
    assert!(err.contains("not a valid run name"), "{err}");
    // An explicit, valid --run-name is used as given.
    req.run_name = Some("named".into());
    run_to_end(spawn(req));
    assert!(checkpoint_at(&runs2.join("named"), 12).is_dir());
}

#[test]
fn hostile_run_names_are_refused_in_one_line_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 50_000);
    let runs = dir.path().join("a").join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let before = snapshot(dir.path());
    for name in ["../x", "a/b", "", ".", "..", "a\u{7}b", "/tmp/abs"] {
        let mut a = strs(&["train", "--headless", "--runs-dir", runs.to_str().unwrap()]);
        a.extend(["--run-name".to_string(), name.to_string()]);
        a.extend(tiny_flags_every(&corpus, 5));
        let (code, _, err) = run_bin(&a);
        assert_ne!(code, 0, "{name:?} accepted");
        let line = error_line(&err);
        assert!(line.contains("not a valid run name"), "{name:?}: {line}");
        assert_eq!(snapshot(dir.path()), before, "{name:?} created files");
    }
    assert!(std::fs::read_dir(&runs).unwrap().next().is_none());
    assert!(!dir.path().join("a").join("x").exists());

    // A name that holds an unfinished run (no complete checkpoint) is refused accurately.
    let unfinished = runs.join("u");
    std::fs::create_dir_all(&unfinished).unwrap();
    std::fs::write(unfinished.join("metrics.jsonl"), "").unwrap();
    let mut a = strs(&["train", "--headless", "--runs-dir", runs.to_str().unwrap()]);
    a.extend(strs(&["--run-name", "u"]));
    a.extend(tiny_flags_every(&corpus, 5));
    let (code, _, err) = run_bin(&a);
    assert_ne!(code, 0);
    let line = error_line(&err);
    assert!(
        line.contains("unfinished run") && !line.contains("--resume"),
        "{line}"
    );
}

#[test]
fn an_interrupted_swap_is_restored_and_leftovers_cleaned_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, orig, _) = trained_run(dir.path(), "s");
    let runs = orig.parent().unwrap().to_path_buf();
    let step20 = snapshot(&checkpoint_at(&orig, 20));
    // A re-save of step 20 died mid-swap: the complete old copy is `.old`, no `step-20`.
    let ckpts = orig.join("checkpoints");
    std::fs::rename(checkpoint_at(&orig, 20), ckpts.join("step-00000020.old")).unwrap();
    std::fs::create_dir(ckpts.join("step-00000020.partial")).unwrap();
    std::fs::create_dir(ckpts.join("step-00000005.deleting")).unwrap();
    std::fs::write(ckpts.join("step-00000005.deleting/model.safetensors"), b"x").unwrap();
    // Resuming the newest visible checkpoint (15) restores 20, which makes 15 older: branch.
    let mut req = request(cfg, &runs, "x", StartFrom::Resume(checkpoint_at(&orig, 15)));
    req.run_name = None;
    req.stop_at = Some(16);
    let events = run_to_end(spawn(req));
    assert_eq!(
        snapshot(&checkpoint_at(&orig, 20)),
        step20,
        "step-20 not restored intact"
    );
    let names: Vec<String> = std::fs::read_dir(&ckpts)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.contains('.')),
        "leftovers remain: {names:?}"
    );
    let n = notices(&events);
    assert!(n.iter().any(|m| m.contains("restored")), "{n:?}");
    assert!(
        n.iter()
            .any(|m| m.contains("orig-branch") || m.contains("s-branch-15")),
        "{n:?}"
    );
    assert!(runs.join("s-branch-15").is_dir());
    assert!(logged_steps(&orig).ends_with(&[19, 20]));
}

/// A resume into a new directory (standalone checkpoint or branch) that cannot prepare its
/// data leaves no half-made run behind: the directory it created for itself is removed.
#[test]
fn a_resume_that_cannot_start_removes_the_directory_it_created() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, orig, _) = trained_run(dir.path(), "base");
    let runs = orig.parent().unwrap().to_path_buf();
    let ck = dir.path().join("elsewhere").join("ck");
    copy_dir(&checkpoint_at(&orig, 20), &ck);
    // The checkpoint's corpus is gone and a new run has no tokenized copy of it.
    std::fs::remove_file(dir.path().join("corpus.txt")).unwrap();
    let mut req = request(cfg, &runs, "solo-fails", StartFrom::Resume(ck));
    req.overrides = vec!["train.max_steps=30".into()];
    let link = spawn(req);
    let err = engine_error(&link, "a resume without its data");
    assert!(err.contains("corpus.txt"), "{err}");
    if let Some(j) = link.join {
        j.join().unwrap();
    }
    assert!(
        !runs.join("solo-fails").exists(),
        "the failed resume left its new run directory"
    );
    assert!(
        orig.join("checkpoints").is_dir(),
        "the original run was touched"
    );
}
