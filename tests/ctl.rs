//! Steering headless runs from another process (issue 15, item 3): `llite-tui ctl` against a
//! real headless run through its `control.sock`: status, pause/resume, save, eval, sample,
//! `set` validated like `--set`, raw malformed requests, a dead run's stale socket replaced by
//! the next owner, and the refusals (a run directory others can write, a foreign or fake
//! socket, no run at all).
#![cfg(unix)]

mod common;

use common::{
    headless_args, run_within, small_corpus, tiny_flags_with, BackgroundRun, Outcome, BIN,
};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A headless training process of the binary (`common::BackgroundRun`) and its run directory.
struct Run {
    proc: BackgroundRun,
    dir: PathBuf,
}

impl std::ops::Deref for Run {
    type Target = BackgroundRun;
    fn deref(&self) -> &BackgroundRun {
        &self.proc
    }
}

impl std::ops::DerefMut for Run {
    fn deref_mut(&mut self) -> &mut BackgroundRun {
        &mut self.proc
    }
}

impl Run {
    /// Start `train --headless` in `runs/<name>` through `sh` (so a test can set the umask).
    fn start(tmp: &Path, name: &str, umask: &str, extra: &[&str]) -> Self {
        let corpus = small_corpus(tmp, 300_000);
        let runs = tmp.join("runs");
        let stderr = tmp.join(format!("stderr-{name}-{}.txt", extra.len()));
        let mut args = headless_args(&runs, &["--run-name", name]);
        args.extend(tiny_flags_with(&corpus, &["checkpoint.every=0"]));
        args.extend(extra.iter().map(|s| s.to_string()));
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let script = format!("umask {umask}; exec '{BIN}' {}", quoted.join(" "));
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script]);
        Self {
            proc: BackgroundRun::spawn(cmd, stderr),
            dir: runs.join(name),
        }
    }

    /// Wait until the run answers `ctl status` (its endpoint is up and serving).
    fn wait_steerable(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if self.dir.join("control.sock").exists() && ctl(&self.dir, &["status"]).code == Some(0)
            {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "run exited ({status:?}) before serving: {}",
                    self.stderr_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no control endpoint: {}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn ctl(run_dir: &Path, args: &[&str]) -> Outcome {
    let mut all = vec!["ctl".to_string(), run_dir.display().to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    run_within(&all, 120)
}

fn json_status(run_dir: &Path) -> serde_json::Value {
    let out = ctl(run_dir, &["status", "--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    serde_json::from_str(out.stdout.trim()).unwrap()
}

/// The one `error:` line of a failed command, without the prefix.
fn error_line(out: &Outcome) -> String {
    assert_eq!(
        out.code,
        Some(1),
        "stdout {} stderr {}",
        out.stdout,
        out.stderr
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", out.stderr);
    lines[0]
        .strip_prefix("error: ")
        .expect("error: prefix")
        .to_string()
}

/// `metrics.jsonl` events named `name`.
fn events(run_dir: &Path, name: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == name)
        .collect()
}

/// Send raw lines on one connection and read one reply line per request line.
fn raw_exchange(sock: &Path, lines: &[&[u8]]) -> Vec<serde_json::Value> {
    let stream = UnixStream::connect(sock).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut replies = Vec::new();
    for line in lines {
        (&stream).write_all(line).unwrap();
        let mut reply = String::new();
        reader.read_line(&mut reply).unwrap();
        replies.push(serde_json::from_str(reply.trim()).unwrap());
    }
    replies
}

#[test]
fn ctl_steers_a_headless_run_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let mut run = Run::start(tmp.path(), "steer", "022", &["--max-steps", "1000000"]);
    run.wait_steerable();
    let dir = run.dir.clone();
    let sock = dir.join("control.sock");
    let mode = std::fs::symlink_metadata(&sock)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "owner-only socket");

    let st = json_status(&dir);
    assert_eq!(st["ok"], true);
    assert_eq!(st["status"]["run_name"], "steer");
    assert_eq!(st["status"]["state"], "running");
    assert_eq!(
        st["status"]["controls"]["train.lr"], 2e-3,
        "the preset's lr"
    );

    // Pause: the engine stops between steps and stays there.
    let out = ctl(&dir, &["pause"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let paused_at: u64 = out
        .stdout
        .trim()
        .strip_prefix("paused at step ")
        .unwrap_or_else(|| panic!("{}", out.stdout))
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let st = json_status(&dir);
    assert_eq!(st["status"]["state"], "paused");
    assert_eq!(st["status"]["step"], paused_at);
    assert_eq!(
        ctl(&dir, &["pause"]).stdout.trim(),
        format!("already paused at step {paused_at}")
    );

    // `set` is validated like `--set`, with its very words, before reaching the engine.
    let e = error_line(&ctl(&dir, &["set", "train.batch_size=8"]));
    assert!(e.contains("not a live key"), "{e}");
    let flag = run_within(&["info", "--set", "train.grad_clip=abc"], 60);
    let flag_msg = error_line(&flag);
    let e = error_line(&ctl(&dir, &["set", "train.grad_clip=abc"]));
    assert!(e.ends_with(&flag_msg), "ctl: {e}\n--set: {flag_msg}");
    assert!(
        events(&dir, "control_rejected").is_empty(),
        "refused before the engine"
    );
    // A valid live change reaches the engine, which applies it before the next step.
    let out = ctl(&dir, &["set", "train.lr=1e-3"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("train.lr: 0.002 -> 0.001"),
        "{}",
        out.stdout
    );
    assert_eq!(json_status(&dir)["status"]["controls"]["train.lr"], 1e-3);
    assert_eq!(events(&dir, "control_changed").len(), 1);

    // Save, eval and sample work while paused, at the paused step.
    let out = ctl(&dir, &["save"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let ckpt = dir.join("checkpoints").join(format!("step-{paused_at:08}"));
    assert!(
        out.stdout.contains(&ckpt.display().to_string()),
        "{}",
        out.stdout
    );
    assert!(ckpt.join("trainer.json").is_file());
    let out = ctl(&dir, &["eval"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!("at step {paused_at}")),
        "{}",
        out.stdout
    );
    assert!(events(&dir, "eval").iter().any(|e| e["step"] == paused_at));
    let out = ctl(
        &dir,
        &[
            "sample",
            "ROMEO:",
            "--max-tokens",
            "8",
            "--temperature",
            "0",
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // What ctl prints is what the engine generated and logged (text and token count).
    let logged = events(&dir, "sample");
    let done = logged
        .iter()
        .find(|e| e["prompt"] == "ROMEO:")
        .expect("the sample is logged");
    assert_eq!(
        out.stdout.strip_suffix('\n'),
        done["text"].as_str(),
        "{}",
        out.stdout
    );
    let tokens = done["tokens"].as_u64().unwrap();
    assert!(
        out.stderr
            .contains(&format!("{tokens} tokens at step {paused_at}")),
        "{}",
        out.stderr
    );
    let e = error_line(&ctl(&dir, &["sample", "x", "--top-p", "2"]));
    assert!(e.contains("top_p must be in (0, 1]"), "{e}");

    // Raw peers: garbage gets an error line and the connection keeps serving.
    let replies = raw_exchange(
        &sock,
        &[
            b"garbage\n",
            b"{\"v\":1,\"cmd\":\"rm\",\"path\":\"/\"}\n",
            b"{\"v\":1,\"cmd\":\"shutdown\"}\n",
            b"{\"v\":9,\"cmd\":\"status\"}\n",
            b"{\"v\":1,\"cmd\":\"status\"}\n",
        ],
    );
    assert_eq!(replies[0]["ok"], false);
    assert!(replies[0]["message"]
        .as_str()
        .unwrap()
        .contains("malformed request"));
    assert!(replies[1]["message"]
        .as_str()
        .unwrap()
        .contains("unknown field"));
    assert!(replies[2]["message"]
        .as_str()
        .unwrap()
        .contains("unknown command `shutdown`"));
    assert!(replies[3]["message"]
        .as_str()
        .unwrap()
        .contains("protocol version 9"));
    assert_eq!(replies[4]["ok"], true);
    // An oversized line is refused without being buffered; the server still serves others.
    let big = vec![b'x'; 200_000];
    let stream = UnixStream::connect(&sock).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let _ = (&stream).write_all(&big);
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).unwrap();
    assert!(reply.contains("longer than"), "{reply}");
    // A peer that connects and says nothing does not block anyone else.
    let _silent = UnixStream::connect(&sock).unwrap();
    assert_eq!(json_status(&dir)["status"]["state"], "paused");

    // Resume: steps go on.
    let out = ctl(&dir, &["resume"]);
    assert_eq!(
        out.stdout.trim(),
        format!("resumed at step {paused_at}"),
        "{}",
        out.stderr
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while json_status(&dir)["status"]["step"].as_u64().unwrap() <= paused_at {
        assert!(Instant::now() < deadline, "no step after resume");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A clean stop removes the socket; then the run is plainly not running.
    run.signal(libc::SIGTERM);
    assert_eq!(run.wait(120), Some(143));
    assert!(!sock.exists(), "socket removed on exit");
    let e = error_line(&ctl(&dir, &["status"]));
    assert!(e.contains("run is not running (no control socket"), "{e}");
}

#[test]
fn a_dead_runs_stale_socket_is_reported_and_replaced_by_the_next_owner() {
    let tmp = tempfile::tempdir().unwrap();
    let mut run = Run::start(tmp.path(), "dead", "022", &["--max-steps", "1000000"]);
    run.wait_steerable();
    let dir = run.dir.clone();
    let out = ctl(&dir, &["save"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let ckpt = out.stdout.split_whitespace().nth(1).unwrap().to_string();
    run.signal(libc::SIGKILL);
    run.wait(60);
    assert!(
        dir.join("control.sock").exists(),
        "SIGKILL leaves the socket"
    );
    let e = error_line(&ctl(&dir, &["pause"]));
    assert!(e.contains("run is not running (stale socket"), "{e}");

    // The next owner of the run (a resume in place) replaces the stale socket.
    let mut next = Run::start(
        tmp.path(),
        "dead",
        "022",
        &["--resume", &ckpt, "--max-steps", "1000000"],
    );
    next.wait_steerable();
    assert_eq!(json_status(&dir)["status"]["pid"], next.child.id());
    next.signal(libc::SIGTERM);
    assert_eq!(next.wait(120), Some(143));
    assert!(!dir.join("control.sock").exists());
}

#[test]
fn a_run_directory_others_can_write_trains_without_an_endpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let mut run = Run::start(tmp.path(), "shared", "002", &["--max-steps", "3"]);
    assert_eq!(run.wait(300), Some(0), "{}", run.stderr_text());
    let err = run.stderr_text();
    assert!(
        err.contains("warning: no control endpoint")
            && err.contains("writable by group or others (mode 775)"),
        "{err}"
    );
    assert!(err.contains("finished at step 3"), "{err}");
    assert!(!run.dir.join("control.sock").exists());
    let e = error_line(&ctl(&run.dir, &["status"]));
    assert!(e.contains("run is not running"), "{e}");
}

#[test]
fn fake_foreign_and_missing_endpoints_are_refused_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let sock = run.join("control.sock");

    let e = error_line(&ctl(&tmp.path().join("nope"), &["status"]));
    assert!(e.contains("no such run directory"), "{e}");
    let e = error_line(&ctl(&run, &["status"]));
    assert!(e.contains("not a run directory"), "{e}");
    std::fs::write(run.join("metrics.jsonl"), b"").unwrap();
    let e = error_line(&ctl(&run, &["status"]));
    assert!(e.contains("run is not running (no control socket"), "{e}");

    std::fs::write(&sock, b"not a socket").unwrap();
    let e = error_line(&ctl(&run, &["status"]));
    assert!(e.contains("not a socket"), "{e}");
    assert_eq!(std::fs::read(&sock).unwrap(), b"not a socket", "untouched");
    std::fs::remove_file(&sock).unwrap();
    common::mkfifo(&sock);
    let e = error_line(&ctl(&run, &["status"]));
    assert!(e.contains("not a socket"), "{e}");
    std::fs::remove_file(&sock).unwrap();

    // A server that answers garbage: a malformed reply, named as such.
    let listener = UnixListener::bind(&sock).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut line = String::new();
        BufReader::new(s.try_clone().unwrap())
            .read_line(&mut line)
            .unwrap();
        s.write_all(b"<html>\n").unwrap();
        listener
    });
    let e = error_line(&ctl(&run, &["status"]));
    assert!(e.contains("malformed reply"), "{e}");
    let listener = server.join().unwrap();
    drop(listener);
    // The listener is gone, its file stays: a stale socket.
    let e = error_line(&ctl(&run, &["status"]));
    assert!(e.contains("stale socket"), "{e}");

    // A socket of another user: a foreign run (only root can make one to test with).
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&sock, Some(65534), None).unwrap();
        let e = error_line(&ctl(&run, &["status"]));
        assert!(
            e.contains("a foreign run") && e.contains("uid 65534"),
            "{e}"
        );
    }
}

/// Starts engines for an in-process cockpit, as the binary's launcher does.
struct TestLauncher(llite_tui::train::session::EngineRequest);

impl llite_tui::protocol::EngineLauncher for TestLauncher {
    fn launch(
        &self,
        _: llite_tui::protocol::StartFrom,
    ) -> anyhow::Result<llite_tui::protocol::EngineLink> {
        Ok(llite_tui::train::engine::spawn(self.0.clone()))
    }

    fn export_hf(&self, _: &Path, _: &Path) -> anyhow::Result<()> {
        anyhow::bail!("not in this test")
    }
}

/// Pump `rts` until `done` holds for the first of them, failing after `secs`.
fn pump_until(
    rts: &mut [&mut llite_tui::tui::runtime::Runtime],
    secs: u64,
    what: &str,
    done: impl Fn(&llite_tui::tui::app::App) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        for rt in rts.iter_mut() {
            rt.app.tick(llite_tui::store::layout::unix_now());
            rt.pump();
        }
        if done(&rts[0].app) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {:?}", rts[0].app.notice);
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_training_cockpit_serves_its_socket_and_a_watching_cockpit_steers_through_it() {
    use crossterm::event::{KeyCode, KeyEvent};
    use llite_tui::protocol::{SampleParams, StartFrom};
    use llite_tui::tui::app::{App, Mode, RunState};
    use llite_tui::tui::runtime::Runtime;
    let tmp = tempfile::tempdir().unwrap();
    let corpus = small_corpus(tmp.path(), 300_000);
    let runs = tmp.path().join("runs");
    let req = common::request(
        common::tiny_config(&corpus, 1_000_000),
        &runs,
        "cockpit",
        StartFrom::Fresh,
    );
    let opts = llite_tui::tui::CockpitOptions {
        ui: Default::default(),
        runs_dir: runs.clone(),
        themes_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("themes"),
        sample_defaults: SampleParams::default(),
        side_sampler: None,
    };
    let app = App::new(Mode::Live, &Default::default(), SampleParams::default());
    let mut live =
        Runtime::new(app, &opts).with_engine(Box::new(TestLauncher(req)), StartFrom::Fresh);
    let dir = runs.join("cockpit");
    pump_until(&mut [&mut live], 120, "first step", |a| {
        a.state == RunState::Running && !a.run_view.steps.is_empty()
    });
    assert!(
        dir.join("control.sock").exists(),
        "the cockpit serves a socket"
    );

    // A second cockpit watches the run and steers it: `p` pauses the first one's engine.
    let app = App::new(Mode::Watch, &Default::default(), SampleParams::default());
    let mut watch = Runtime::new(app, &opts).with_tail(&dir).with_remote(&dir);
    pump_until(&mut [&mut watch, &mut live], 60, "steerable", |a| {
        a.steer.available && a.state == RunState::Running
    });
    let press = |rt: &mut Runtime, code: KeyCode| {
        let actions = rt.app.on_key(KeyEvent::from(code));
        rt.perform(actions);
    };
    press(&mut watch, KeyCode::Char('p'));
    pump_until(
        &mut [&mut live, &mut watch],
        60,
        "paused by the watcher",
        |a| a.state == RunState::Paused,
    );
    pump_until(&mut [&mut watch, &mut live], 60, "pause answered", |a| {
        a.notice
            .as_deref()
            .is_some_and(|n| n.starts_with("run: paused at step"))
            && a.state == RunState::Paused
    });
    // `=` opens the set input; the engine's verdict comes back as a notice.
    press(&mut watch, KeyCode::Char('='));
    for c in "1e-3".chars() {
        press(&mut watch, KeyCode::Char(c));
    }
    press(&mut watch, KeyCode::Enter);
    pump_until(&mut [&mut watch, &mut live], 60, "set answered", |a| {
        a.notice
            .as_deref()
            .is_some_and(|n| n.starts_with("run: train.lr: 0.003 -> 0.001"))
    });
    // The control pane (`k`) steers a watched run through the same socket: edit train.lr
    // (the first live key), confirm, and the engine's verdict comes back.
    pump_until(
        &mut [&mut watch, &mut live],
        60,
        "the change reached the log",
        |a| {
            a.controls
                .config
                .as_ref()
                .is_some_and(|c| c.train.lr == 1e-3)
        },
    );
    press(&mut watch, KeyCode::Char('k'));
    press(&mut watch, KeyCode::Enter);
    for _ in 0..16 {
        press(&mut watch, KeyCode::Backspace);
    }
    for c in "5e-4".chars() {
        press(&mut watch, KeyCode::Char(c));
    }
    press(&mut watch, KeyCode::Enter);
    press(&mut watch, KeyCode::Char('y'));
    pump_until(&mut [&mut watch, &mut live], 60, "pane set answered", |a| {
        a.notice
            .as_deref()
            .is_some_and(|n| n.starts_with("run: train.lr: 0.001 -> 0.0005"))
    });
    // `--read-only`: the same keys stay local.
    let app = App::new(Mode::Watch, &Default::default(), SampleParams::default());
    let mut read_only = Runtime::new(app, &opts).with_tail(&dir);
    pump_until(&mut [&mut read_only], 30, "read-only watch", |a| {
        !a.run_view.steps.is_empty()
    });
    press(&mut read_only, KeyCode::Char('p'));
    assert_eq!(
        read_only.app.notice.as_deref(),
        Some(llite_tui::tui::keys::READ_ONLY)
    );

    // Quitting the training cockpit's engine removes its socket.
    live.perform(vec![llite_tui::tui::app::Action::Send(
        llite_tui::protocol::Command::Stop {
            save: false,
            reason: llite_tui::protocol::FinishReason::Stopped,
        },
    )]);
    pump_until(&mut [&mut live], 60, "finished", |a| {
        matches!(a.state, RunState::Finished(_))
    });
    assert!(
        !dir.join("control.sock").exists(),
        "socket removed with the engine"
    );
    drop(live.shutdown());
}
