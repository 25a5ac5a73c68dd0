//! End to end: the real binary inside a detached tmux session (a real pseudo-terminal). Waits
//! for steps to advance, pauses and checks the step count stops, resumes and checks it moves,
//! changes the LR live through the control pane (seen in the LR pane), opens the chronicle
//! timeline (`t`, with `chronicle.every = 2`), generates text from the prompt pane, quits, and
//! checks the terminal was restored (exit code 0 and the alternate screen off).
//!
//! Needs `tmux` (CI installs it). Set `LLITE_SKIP_TMUX=1` to skip where tmux cannot be had.
//! Screen text this test relies on (status bar): `step <n>/<max>`, `RUNNING`, `PAUSED`; prompt
//! pane history header: `─ step <n> · <k> tok · <r> tok/s`.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A private tmux server (own socket), killed on drop even when the test fails.
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("running tmux")
    }

    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        let out = self.cmd(&args);
        assert!(out.status.success(), "tmux send-keys failed: {out:?}");
    }

    fn type_text(&self, text: &str) {
        let out = self.cmd(&["send-keys", "-t", &self.session, "-l", text]);
        assert!(out.status.success(), "tmux send-keys -l failed: {out:?}");
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(
            &self
                .cmd(&["capture-pane", "-p", "-t", &self.session])
                .stdout,
        )
        .into_owned()
    }

    /// Poll the screen until `pred` holds; panic with the last screen after `timeout`.
    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if start.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// The `<n>` of the status bar's `step <n>/<max>`.
fn status_step(screen: &str) -> Option<u64> {
    let line = screen.lines().next()?;
    let rest = &line[line.find("step ")? + 5..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    rest[digits.len()..]
        .starts_with('/')
        .then(|| digits.parse().ok())?
}

/// Tokens of the newest finished generation, from its `· <k> tok ·` header.
fn sample_tokens(screen: &str) -> Option<u64> {
    screen
        .lines()
        .filter_map(|l| {
            let i = l.find(" tok · ")?;
            let head = &l[..i];
            let n: String = head
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            n.chars().rev().collect::<String>().parse().ok()
        })
        .next_back()
}

/// The learning rate shown in the LR pane's `│lr <value>` line.
fn pane_lr(screen: &str) -> Option<f64> {
    let at = screen.find("│lr ")? + "│lr ".len();
    let token: String = screen[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '│')
        .collect();
    token.parse().ok()
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[test]
fn cockpit_in_tmux_pause_resume_sample_quit() {
    if std::env::var("LLITE_SKIP_TMUX").as_deref() == Ok("1") {
        eprintln!("LLITE_SKIP_TMUX=1: skipping the tmux end-to-end test");
        return;
    }
    if !Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        panic!(
            "tmux is not installed: the cockpit end-to-end test needs it \
             (e.g. `apt-get install tmux`); set LLITE_SKIP_TMUX=1 to skip this test"
        );
    }
    let runs = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_llite-tui");
    let args = [
        "--runs-dir",
        runs.path().to_str().unwrap(),
        "--set",
        "train.max_steps=100000",
        "--set",
        "model.d_model=64",
        "--set",
        "model.n_layers=2",
        "--set",
        "model.ff_dim=128",
        "--set",
        "data.tokenizer=train:512",
        "--set",
        "model.vocab_size=512",
        "--set",
        "chronicle.every=2",
        "--set",
        "chronicle.prompts=ROMEO:",
        "--set",
        "chronicle.max_new_tokens=4",
    ];
    let mut line = shell_quote(bin);
    for a in args {
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    // Keep the pane alive after exit so the exit code and screen state can be read.
    let script = format!("{line}; echo EXITED-$?; sleep 600");
    let tmux = Tmux {
        socket: format!("llite-e2e-{}", std::process::id()),
        session: "cockpit".into(),
    };
    let out = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        &tmux.session,
        "-x",
        "120",
        "-y",
        "40",
        "sh",
        "-c",
        &script,
    ]);
    assert!(out.status.success(), "tmux new-session failed: {out:?}");

    // 1. Steps advance.
    let s = tmux.wait_for("the step count to reach 2", Duration::from_secs(120), |s| {
        status_step(s).is_some_and(|n| n >= 2)
    });
    assert!(s.contains("RUNNING"), "status bar should say RUNNING:\n{s}");

    // 1b. `t` opens the chronicle timeline: an entry (step 0 or 2) with the fixed prompt.
    tmux.send(&["t"]);
    tmux.wait_for("a chronicle entry", Duration::from_secs(60), |s| {
        s.contains("chronicle ·") && s.contains("── step ") && s.contains("ROMEO:")
    });
    tmux.send(&["t"]);

    // 2. `p` pauses: PAUSED shows and the step count stands still.
    tmux.send(&["p"]);
    let s = tmux.wait_for("PAUSED", Duration::from_secs(60), |s| s.contains("PAUSED"));
    let paused_at = status_step(&s).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let s = tmux.screen();
    assert_eq!(
        status_step(&s),
        Some(paused_at),
        "steps moved while paused:\n{s}"
    );
    assert!(s.contains("PAUSED"), "{s}");

    // 3. `p` again resumes and steps advance.
    tmux.send(&["p"]);
    tmux.wait_for(
        "steps to advance after resume",
        Duration::from_secs(60),
        |s| s.contains("RUNNING") && status_step(s).is_some_and(|n| n > paused_at),
    );

    // 3a. `R` opens the runs pane: this run is listed by its default name (preset + time),
    // running; Esc closes it.
    tmux.send(&["R"]);
    tmux.wait_for(
        "the runs pane listing this run",
        Duration::from_secs(20),
        |s| s.contains("runs ·") && s.contains("[x] tiny-20") && s.contains("running"),
    );
    tmux.send(&["Escape"]);
    tmux.wait_for("the runs pane to close", Duration::from_secs(10), |s| {
        !s.contains("runs ·")
    });

    // 3b. A live LR change through the control pane: `k`, edit train.lr, confirm with `y`;
    // the change is shown (history line) and the LR pane's value drops to at most the new peak.
    tmux.send(&["k"]);
    tmux.wait_for("the control pane", Duration::from_secs(10), |s| {
        s.contains("controls (live)")
    });
    tmux.send(&["Enter"]);
    for _ in 0..12 {
        tmux.send(&["BSpace"]);
    }
    tmux.type_text("5e-4");
    tmux.send(&["Enter"]);
    tmux.wait_for("the confirmation", Duration::from_secs(10), |s| {
        s.contains("apply train.lr 0.002 -> 0.0005? y / n")
    });
    tmux.send(&["y"]);
    tmux.wait_for("the change in the history", Duration::from_secs(30), |s| {
        s.contains("train.lr 0.002 -> 0.0005")
    });
    tmux.send(&["Escape"]);
    tmux.wait_for(
        "the LR pane at or below the new peak",
        Duration::from_secs(30),
        |s| !s.contains("controls (live)") && pane_lr(s).is_some_and(|lr| lr <= 5e-4 * 1.0001),
    );

    // 4. Prompt pane: type, Enter, wait for a finished generation with tokens.
    tmux.send(&["g"]);
    tmux.wait_for("the prompt pane", Duration::from_secs(10), |s| {
        s.contains("prompt ·")
    });
    tmux.type_text("ROMEO:");
    tmux.send(&["Enter"]);
    let s = tmux.wait_for("generated text", Duration::from_secs(120), |s| {
        sample_tokens(s).is_some_and(|n| n > 0)
    });
    assert!(
        s.contains("ROMEO:"),
        "the prompt should be shown with its continuation:\n{s}"
    );

    // 5. Close the prompt pane (Esc), quit without saving (q, q), terminal restored.
    tmux.send(&["Escape"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux.send(&["q"]);
    tmux.wait_for("the quit dialog", Duration::from_secs(10), |s| {
        s.contains("Quit the cockpit?")
    });
    tmux.send(&["q"]);
    let s = tmux.wait_for("the process to exit", Duration::from_secs(60), |s| {
        s.contains("EXITED-")
    });
    assert!(s.contains("EXITED-0"), "cockpit exited with an error:\n{s}");
    let alt = tmux.cmd(&[
        "display-message",
        "-p",
        "-t",
        &tmux.session,
        "#{alternate_on}",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&alt.stdout).trim(),
        "0",
        "alternate screen still on: terminal not restored"
    );
}

#[test]
fn screen_parsers() {
    let s = " llite  run │ step 123/100000 │ RUNNING │ cpu\nfoo\n│─ step 40 · 14 tok · 212 tok/s │";
    assert_eq!(status_step(s), Some(123));
    assert_eq!(sample_tokens(s), Some(14));
    assert_eq!(
        status_step(" llite  (starting) │ step 0/0 │ STARTING"),
        Some(0)
    );
    assert_eq!(sample_tokens("nothing"), None);
    assert_eq!(pane_lr("│tokens/s 1 ││lr 8.526e-4   │"), Some(8.526e-4));
}
