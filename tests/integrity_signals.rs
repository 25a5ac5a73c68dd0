//! Signals, loud failures and honest engine events (issue 10, items 1, 5 and 9): the real
//! binary stopped by SIGTERM/SIGINT/SIGHUP saves, logs `finished` with the reason and exits
//! 128 + signal; failed writes end non-zero naming the newest good checkpoint; the engine
//! reports the real step on errors and never pauses itself on a spike.
#![cfg(unix)]

mod common;

use common::{
    events_until_finished, headless_args, next_event, request, run_with_file_limit, small_corpus,
    tiny_config, tiny_flags_with, BackgroundRun, Outcome, BIN,
};
use llite_tui::protocol::{AlertKind, Event, FinishReason, MetricsLine, StartFrom};
use llite_tui::store::listing::{latest_valid_checkpoint, list_checkpoints};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A headless training process of the binary (`common::BackgroundRun`).
struct Trainer(BackgroundRun);

impl std::ops::Deref for Trainer {
    type Target = BackgroundRun;
    fn deref(&self) -> &BackgroundRun {
        &self.0
    }
}

impl std::ops::DerefMut for Trainer {
    fn deref_mut(&mut self) -> &mut BackgroundRun {
        &mut self.0
    }
}

impl Trainer {
    fn start(dir: &Path, runs: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(dir, runs, extra, &[])
    }

    fn start_with_env(dir: &Path, runs: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let corpus = small_corpus(dir, 300_000);
        let stderr = dir.join(format!("stderr-{}.txt", extra.join("_").replace('/', "")));
        let mut args = headless_args(runs, &[]);
        args.extend(tiny_flags_with(&corpus, &["checkpoint.every=0"]));
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut cmd = Command::new(BIN);
        cmd.args(&args).envs(env.iter().copied());
        Self(BackgroundRun::spawn(cmd, stderr))
    }

    /// Whether the process has installed its handler for `sig` (Linux: /proc SigCgt).
    fn catches(&self, sig: i32) -> bool {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (sig - 1)) != 0)
    }
}

fn metrics(run_dir: &Path) -> Vec<MetricsLine> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l}: {e}")))
        .collect()
}

fn step_numbers(lines: &[MetricsLine]) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|l| match &l.event {
            Event::Step(s) => Some(s.step),
            _ => None,
        })
        .collect()
}

/// Poll until metrics.jsonl shows at least `n` steps.
fn wait_for_steps(t: &mut Trainer, run_dir: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while step_numbers(&metrics(run_dir)).len() < n {
        if let Some(s) = t.child.try_wait().unwrap() {
            panic!("exited early ({s:?}): {}", t.stderr_text());
        }
        assert!(Instant::now() < deadline, "no steps: {}", t.stderr_text());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ckpt_name(step: u64) -> String {
    format!("step-{step:08}")
}

/// After a graceful signal stop: exit code, a valid loadable checkpoint at the finished step,
/// `finished` with the reason as the last line, and a resume that continues without gaps.
fn assert_stopped_and_resumable(
    dir: &Path,
    t: &mut Trainer,
    run_dir: &Path,
    code: i32,
    name: &str,
    reason: FinishReason,
) {
    assert_eq!(t.wait(120), Some(code), "{}", t.stderr_text());
    let stderr = t.stderr_text();
    let lines = metrics(run_dir);
    let last = lines.last().expect("metrics.jsonl is empty");
    let Event::Finished {
        step,
        reason: got,
        failures,
    } = last.event
    else {
        panic!("last line is not `finished`: {last:?}");
    };
    assert_eq!(got, reason);
    assert!(failures.is_clean(), "{failures:?}");
    let steps = step_numbers(&lines);
    assert_eq!(
        steps.last().copied().unwrap_or(0),
        step,
        "no step after the stop"
    );
    let ckpt = run_dir.join("checkpoints").join(ckpt_name(step));
    assert_eq!(latest_valid_checkpoint(run_dir), Some(ckpt.clone()));
    let loaded = llite_tui::store::checkpoint::load(&ckpt).expect("the final checkpoint loads");
    assert_eq!(loaded.trainer.step, step);
    assert!(
        stderr.contains(&format!("{name}: finishing step "))
            && stderr.contains("send it again (after a second) to abort"),
        "{stderr}"
    );
    let last_line = stderr.lines().last().unwrap_or("");
    assert_eq!(
        last_line,
        format!(
            "error: {name}: stopped at step {step}; resume with --resume {}",
            ckpt.display()
        )
    );

    // The run is resumable (its name is not dead) and continues where it stopped.
    let target = (step + 2).to_string();
    let mut resumed = Trainer::start(
        dir,
        run_dir.parent().unwrap(),
        &["--resume", ckpt.to_str().unwrap(), "--max-steps", &target],
    );
    assert_eq!(resumed.wait(300), Some(0), "{}", resumed.stderr_text());
    let after = step_numbers(&metrics(run_dir));
    let expected: Vec<u64> = (1..=step + 2).collect();
    assert_eq!(after, expected, "steps lost or duplicated");
}

fn signal_stops_with_a_checkpoint(sig: i32, code: i32, name: &str, reason: FinishReason) {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let run_dir = runs.join("sig");
    let mut t = Trainer::start(
        dir.path(),
        &runs,
        &["--run-name", "sig", "--max-steps", "100000"],
    );
    wait_for_steps(&mut t, &run_dir, 3);
    t.signal(sig);
    assert_stopped_and_resumable(dir.path(), &mut t, &run_dir, code, name, reason);
}

#[test]
fn sigterm_finishes_the_step_saves_and_exits_143() {
    signal_stops_with_a_checkpoint(libc::SIGTERM, 143, "SIGTERM", FinishReason::Terminated);
}

#[test]
fn sigint_finishes_the_step_saves_and_exits_130() {
    signal_stops_with_a_checkpoint(libc::SIGINT, 130, "SIGINT", FinishReason::Interrupted);
}

#[test]
fn sighup_finishes_the_step_saves_and_exits_129() {
    signal_stops_with_a_checkpoint(libc::SIGHUP, 129, "SIGHUP", FinishReason::HangUp);
}

#[test]
fn a_signal_during_start_up_leaves_a_resumable_step_0_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let run_dir = runs.join("early");
    let mut t = Trainer::start(
        dir.path(),
        &runs,
        &["--run-name", "early", "--max-steps", "100000"],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !t.catches(libc::SIGTERM) {
        assert!(Instant::now() < deadline, "handler never installed");
        std::thread::sleep(Duration::from_millis(1));
    }
    t.signal(libc::SIGTERM);
    assert_stopped_and_resumable(
        dir.path(),
        &mut t,
        &run_dir,
        143,
        "SIGTERM",
        FinishReason::Terminated,
    );
    assert!(run_dir.join("checkpoints").join(ckpt_name(0)).is_dir());
}

#[test]
fn a_second_signal_aborts_at_once_without_a_torn_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let run_dir = runs.join("twice");
    // The first save stalls once its `.partial` exists: the second signal lands mid-save.
    let mut t = Trainer::start_with_env(
        dir.path(),
        &runs,
        &["--run-name", "twice", "--max-steps", "100000"],
        &[("LLITE_FAULT_POINT", "save.partial_created:1:stall")],
    );
    wait_for_steps(&mut t, &run_dir, 3);
    t.signal(libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_dir(run_dir.join("checkpoints"))
        .map(|rd| {
            rd.flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        })
        .unwrap_or(false)
    {
        assert!(Instant::now() < deadline, "the save never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    // An echo of the same signal (process and group) is not a second request...
    t.signal(libc::SIGTERM);
    std::thread::sleep(llite_tui::signals::REPEAT_WINDOW + Duration::from_millis(300));
    assert!(
        t.child.try_wait().unwrap().is_none(),
        "an echo aborted the run"
    );
    // ...a second SIGTERM after the window is.
    t.signal(libc::SIGTERM);
    let start = Instant::now();
    assert_eq!(t.wait(30), Some(143), "{}", t.stderr_text());
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "did not abort at once"
    );
    assert!(
        t.stderr_text().contains("SIGTERM again: aborted"),
        "{}",
        t.stderr_text()
    );
    for c in list_checkpoints(&run_dir) {
        assert!(c.error.is_none(), "torn checkpoint listed: {c:?}");
        llite_tui::store::checkpoint::load(Path::new(&c.path)).expect("listed checkpoints load");
    }
}

/// A short fresh run `name` stopped at `steps`; returns (run dir, its checkpoint).
fn short_run(dir: &Path, name: &str, steps: &str) -> (PathBuf, PathBuf) {
    let runs = dir.join("runs");
    let mut t = Trainer::start(
        dir,
        &runs,
        &[
            "--run-name",
            name,
            "--max-steps",
            "50",
            "--stop-at-step",
            steps,
        ],
    );
    assert_eq!(t.wait(300), Some(0), "{}", t.stderr_text());
    let run_dir = runs.join(name);
    let ckpt = latest_valid_checkpoint(&run_dir).expect("a checkpoint");
    (run_dir, ckpt)
}

#[test]
fn failed_metrics_writes_end_non_zero_and_name_the_file_and_the_newest_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, ckpt) = short_run(dir.path(), "full", "3");
    let metrics_path = run_dir.join("metrics.jsonl");
    let before = std::fs::read(&metrics_path).unwrap();
    assert!(
        before.len() > 1024,
        "metrics.jsonl must exceed the 1 KiB limit"
    );
    let ckpt_model = std::fs::read(ckpt.join("model.safetensors")).unwrap();

    let mut args = headless_args(&dir.path().join("runs"), &[]);
    args.extend(tiny_flags_with(
        &small_corpus(dir.path(), 300_000),
        &["checkpoint.every=0"],
    ));
    args.extend(["--resume".into(), ckpt.display().to_string()]);
    args.extend(["--max-steps".into(), "6".into()]);
    let Outcome { code, stderr, .. } = run_with_file_limit(1, &args);
    let code = code.unwrap_or(-1);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("metrics write failed")
            && stderr.contains(&metrics_path.display().to_string()),
        "{stderr}"
    );
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("error: run finished at step 6, but ")
            && last.contains("metrics.jsonl writes failed")
            && last.ends_with(&format!("newest good checkpoint: {}", ckpt.display())),
        "{last}"
    );
    assert_eq!(
        std::fs::read(&metrics_path).unwrap(),
        before,
        "log untouched"
    );
    assert_eq!(
        std::fs::read(ckpt.join("model.safetensors")).unwrap(),
        ckpt_model
    );
}

#[test]
fn eval_that_cannot_record_its_result_fails_naming_metrics_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, ckpt) = short_run(dir.path(), "ev", "2");
    let metrics_path = run_dir.join("metrics.jsonl");
    let before = std::fs::read(&metrics_path).unwrap();
    let task = dir.path().join("task.txt");
    std::fs::write(
        &task,
        "To be, or not to be, that is the question. ".repeat(20),
    )
    .unwrap();
    let args: Vec<String> = vec![
        "eval".into(),
        "--checkpoint".into(),
        ckpt.display().to_string(),
        "--task".into(),
        task.display().to_string(),
        "--limit".into(),
        "2".into(),
    ];
    let Outcome { code, stderr, .. } = run_with_file_limit(1, &args);
    let code = code.unwrap_or(-1);
    assert_eq!(code, 1, "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains(&format!("cannot append to {}", metrics_path.display())),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&metrics_path).unwrap(), before);
}

/// Shards for an in-process engine: `train` token lists and one validation list, with a
/// tokenizer trained on the small corpus (ids below 512).
fn write_shards(dir: &Path, train: &[Vec<u16>], val: &[u16]) -> (PathBuf, PathBuf) {
    let corpus = small_corpus(dir, 100_000);
    let docs = llite_tui::data::corpus::read_corpus(&[corpus.display().to_string()]).unwrap();
    let tok = llite_tui::data::tokenizer::TextTokenizer::resolve("train:512", &docs).unwrap();
    let tok_path = dir.join("tokenizer.json");
    tok.save(&tok_path).unwrap();
    let shard_dir = dir.join("shards");
    std::fs::create_dir_all(&shard_dir).unwrap();
    llite_tui::data::npy::write_npy_u16(&shard_dir.join("t_val_000000.npy"), val).unwrap();
    for (i, toks) in train.iter().enumerate() {
        let p = shard_dir.join(format!("t_train_{:06}.npy", i + 1));
        llite_tui::data::npy::write_npy_u16(&p, toks).unwrap();
    }
    (shard_dir, tok_path)
}

fn shard_config(
    dir: &Path,
    shard_dir: &Path,
    tok: &Path,
    max_steps: u64,
) -> llite_tui::config::RunConfig {
    let mut cfg = tiny_config(&small_corpus(dir, 1000), max_steps);
    cfg.data.corpus = vec![shard_dir.display().to_string()];
    cfg.data.tokenizer = tok.display().to_string();
    cfg
}

/// Pseudo-random ids in [0, 500), deterministic.
fn noise(n: usize, seed: u64) -> Vec<u16> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 500) as u16
        })
        .collect()
}

#[test]
fn a_step_that_fails_for_io_is_step_failed_and_error_finished_carry_the_real_step() {
    let dir = tempfile::tempdir().unwrap();
    // Two training shards of ~6 steps each: the second is read only when the first runs out.
    let (shard_dir, tok) =
        write_shards(dir.path(), &[noise(800, 1), noise(800, 2)], &noise(800, 3));
    let cfg = shard_config(dir.path(), &shard_dir, &tok, 50);
    let runs = dir.path().join("runs");
    let link = llite_tui::train::engine::spawn(request(cfg, &runs, "io", StartFrom::Fresh));
    let mut events = Vec::new();
    loop {
        let e = next_event(&link, 120);
        let first_step = matches!(e, Event::Step(ref s) if s.step == 1);
        events.push(e);
        if first_step {
            // The shards are gone when the loader next reads a window (it reads windows from
            // the files, in a shuffled order across both), so a later step fails for I/O.
            for entry in std::fs::read_dir(&shard_dir).unwrap() {
                let p = entry.unwrap().path();
                if p.to_string_lossy().contains("_train_") {
                    std::fs::remove_file(p).unwrap();
                }
            }
            break;
        }
    }
    events.extend(events_until_finished(&link, 120));
    let last_step = events
        .iter()
        .filter_map(|e| match e {
            Event::Step(s) => Some(s.step),
            _ => None,
        })
        .max()
        .unwrap();
    assert!(last_step >= 1, "the first step trained: {events:?}");
    let alert = events.iter().find_map(|e| match e {
        Event::Alert { step, kind, detail } if *kind != AlertKind::Notice => {
            Some((*step, *kind, detail.clone()))
        }
        _ => None,
    });
    let (alert_step, kind, detail) = alert.expect("an alert for the failed step");
    assert_eq!(kind, AlertKind::StepFailed, "{detail}");
    assert_eq!(
        alert_step,
        last_step + 1,
        "the alert names the step that failed"
    );
    assert!(detail.contains("shard"), "{detail}");
    let n = events.len();
    assert!(
        matches!(&events[n - 2], Event::Error { step, .. } if *step == last_step),
        "{:?}",
        &events[n - 2]
    );
    assert!(
        matches!(
            &events[n - 1],
            Event::Finished { step, reason: FinishReason::Error, .. } if *step == last_step
        ),
        "{:?}",
        &events[n - 1]
    );
    // The log says the same as the channel.
    let logged = metrics(&runs.join("io"));
    assert!(matches!(
        logged.last().map(|l| &l.event),
        Some(Event::Finished { step, reason: FinishReason::Error, .. }) if *step == last_step
    ));
}

#[test]
fn headless_never_pauses_itself_on_a_spike_even_with_ui_auto_pause() {
    let dir = tempfile::tempdir().unwrap();
    // One repeated window (the loss collapses), then a learning rate of 2.0 from step 55: a
    // certain spike whatever order the loader visits the windows in.
    let window: Vec<u16> = (0..128).map(|i| (i * 7 % 300) as u16).collect();
    let mut train: Vec<u16> = window.iter().cycle().take(128 * 60 + 1).copied().collect();
    train.extend(noise(128 * 20, 9));
    let (shard_dir, tok) = write_shards(dir.path(), &[train], &noise(800, 4));
    let mut cfg = shard_config(dir.path(), &shard_dir, &tok, 70);
    cfg.ui.auto_pause_on_spike = true;
    cfg.train.eval_every = 0;
    let runs = dir.path().join("runs");
    let link = llite_tui::train::engine::spawn(request(cfg, &runs, "spike", StartFrom::Fresh));
    let mut spiked = false;
    let mut forced = false;
    loop {
        match next_event(&link, 120) {
            Event::Step(s) if s.step == 55 && !forced => {
                link.commands
                    .send(llite_tui::protocol::Command::Set {
                        key: "train.lr".into(),
                        value: "2.0".into(),
                    })
                    .unwrap();
                forced = true;
            }
            Event::Alert {
                kind: AlertKind::LossSpike | AlertKind::GradExplosion,
                ..
            } => spiked = true,
            Event::Paused { step } => panic!("the engine paused itself at step {step}"),
            Event::Error { message, .. } => panic!("engine error: {message}"),
            Event::Finished { step, reason, .. } => {
                assert_eq!((step, reason), (70, FinishReason::MaxSteps));
                break;
            }
            _ => {}
        }
    }
    assert!(
        spiked,
        "the forced learning rate must trigger a spike alert"
    );
}
