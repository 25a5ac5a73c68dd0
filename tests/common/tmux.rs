//! Driving the real cockpit inside a detached tmux session (a real pseudo-terminal), and
//! reading its screen: shared by the end-to-end tests. Screen text relied on (status bar):
//! `step <n>/<max>`, `RUNNING`, `PAUSED`; prompt pane history header `─ step <n> · <k> tok ·
//! <r> tok/s` (live weights) or `─ checkpoint step <n> · <k> tok · <r> tok/s` (side engine).

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A private tmux server (own socket), killed on drop even when the test fails.
pub struct Tmux {
    pub socket: String,
    pub session: String,
}

impl Tmux {
    /// Start `command_line` (a shell line) in a new `width`x`height` session on a server of
    /// its own; the pane stays after the command exits, with `EXITED-<code>` printed, so the
    /// exit code and screen state can be read. None (after a message) when `LLITE_SKIP_TMUX=1`;
    /// panics when tmux is missing.
    pub fn start(name: &str, command_line: &str, width: u16, height: u16) -> Option<Self> {
        if std::env::var("LLITE_SKIP_TMUX").as_deref() == Ok("1") {
            eprintln!("LLITE_SKIP_TMUX=1: skipping the tmux end-to-end test");
            return None;
        }
        if !Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            panic!(
                "tmux is not installed: the cockpit end-to-end tests need it \
                 (e.g. `apt-get install tmux`); set LLITE_SKIP_TMUX=1 to skip them"
            );
        }
        let tmux = Self {
            socket: format!("llite-{name}-{}", std::process::id()),
            session: "cockpit".into(),
        };
        let script = format!("{command_line}; echo EXITED-$?; sleep 600");
        let (w, h) = (width.to_string(), height.to_string());
        let out = tmux.cmd(&[
            "new-session",
            "-d",
            "-s",
            &tmux.session,
            "-x",
            &w,
            "-y",
            &h,
            "sh",
            "-c",
            &script,
        ]);
        assert!(out.status.success(), "tmux new-session failed: {out:?}");
        Some(tmux)
    }

    pub fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("running tmux")
    }

    /// Send key names (`Enter`, `Escape`, `q`, ...).
    pub fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        let out = self.cmd(&args);
        assert!(out.status.success(), "tmux send-keys failed: {out:?}");
    }

    /// Type `text` literally.
    pub fn type_text(&self, text: &str) {
        let out = self.cmd(&["send-keys", "-t", &self.session, "-l", text]);
        assert!(out.status.success(), "tmux send-keys -l failed: {out:?}");
    }

    /// The visible screen, one line per row.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(
            &self
                .cmd(&["capture-pane", "-p", "-t", &self.session])
                .stdout,
        )
        .into_owned()
    }

    /// Poll the screen until `pred` holds; panic with the last screen after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
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

    /// Quit the cockpit without saving (`q`, `q`) and check it exited 0 with the terminal
    /// restored (alternate screen off).
    pub fn quit_and_check_restored(&self) {
        self.send(&["q"]);
        self.wait_for("the quit dialog", Duration::from_secs(10), |s| {
            s.contains("Quit the cockpit?")
        });
        self.send(&["q"]);
        let s = self.wait_for("the process to exit", Duration::from_secs(60), |s| {
            s.contains("EXITED-")
        });
        assert!(s.contains("EXITED-0"), "cockpit exited with an error:\n{s}");
        let alt = self.cmd(&[
            "display-message",
            "-p",
            "-t",
            &self.session,
            "#{alternate_on}",
        ]);
        assert_eq!(
            String::from_utf8_lossy(&alt.stdout).trim(),
            "0",
            "alternate screen still on: terminal not restored"
        );
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// The `<n>` of the status bar's `step <n>/<max>`.
pub fn status_step(screen: &str) -> Option<u64> {
    let line = screen.lines().next()?;
    let rest = &line[line.find("step ")? + 5..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    rest[digits.len()..]
        .starts_with('/')
        .then(|| digits.parse().ok())?
}

/// Tokens of the newest finished generation, from its `· <k> tok ·` header.
pub fn sample_tokens(screen: &str) -> Option<u64> {
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
pub fn pane_lr(screen: &str) -> Option<f64> {
    let at = screen.find("│lr ")? + "│lr ".len();
    let token: String = screen[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '│')
        .collect();
    token.parse().ok()
}

/// `s` quoted for `sh`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A shell line running `program` with `args`, each quoted.
pub fn shell_line<S: AsRef<str>>(program: &str, args: &[S]) -> String {
    let mut line = shell_quote(program);
    for a in args {
        line.push(' ');
        line.push_str(&shell_quote(a.as_ref()));
    }
    line
}
