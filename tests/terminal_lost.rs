//! End to end, in tmux: the cockpit's terminal goes away (its tmux server is killed, as when
//! a terminal window closes or an ssh session drops). The cockpit must do what SIGHUP asks:
//! save a checkpoint, log `finished` with reason `hang_up`, and exit within seconds; before,
//! it kept training with no terminal, unseen and unsaved, until killed.
//!
//! Needs `tmux` (as `tui_e2e.rs`); `LLITE_SKIP_TMUX=1` skips it.

mod common;

use common::tmux::{shell_line, status_step, Tmux};
use common::{small_corpus, tiny_flags_with, BIN};
use llite_tui::store::lock;
use std::time::{Duration, Instant};

/// Whether process `pid` still exists (a zombie awaiting its parent counts as gone).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

/// Kills the cockpit if the test fails while it still runs (it would otherwise train on with
/// no terminal, as the bug this test guards against did).
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if alive(self.0) {
            // SAFETY: kill(2) with a pid this test read from the run's lock and a valid signal.
            unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
        }
    }
}

#[test]
fn a_lost_terminal_saves_and_ends_the_cockpit() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 100_000);
    let runs = dir.path().join("runs");
    let mut args = vec![
        "--runs-dir".to_string(),
        runs.to_str().unwrap().to_string(),
        "--run-name".into(),
        "lost".into(),
    ];
    args.extend(tiny_flags_with(
        &corpus,
        &["train.max_steps=1000000", "checkpoint.every=0"],
    ));
    let Some(tmux) = Tmux::start("lost", &shell_line(BIN, &args), 100, 30) else {
        return;
    };
    tmux.wait_for("steps", Duration::from_secs(120), |s| {
        s.contains("RUNNING") && status_step(s).is_some_and(|n| n >= 3)
    });
    let run = runs.join("lost");
    let pid = lock::holder(&run)
        .unwrap()
        .expect("the cockpit holds its run's lock")
        .pid;
    let _reaper = KillOnDrop(pid);
    assert!(alive(pid));

    // The terminal goes away: tmux's server and every pane with it.
    drop(tmux);
    let deadline = Instant::now() + Duration::from_secs(60);
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the cockpit (pid {pid}) outlived its terminal by 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let finished = log
        .lines()
        .rev()
        .find(|l| l.contains("\"finished\""))
        .expect("the run logged how it finished");
    assert!(finished.contains("hang_up"), "{finished}");
    assert!(
        llite_tui::store::listing::latest_valid_checkpoint(&run).is_some(),
        "no checkpoint saved on the way out"
    );
}
