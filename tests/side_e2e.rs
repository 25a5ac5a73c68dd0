//! End to end, in tmux: sampling a stored checkpoint from the browser while the live run keeps
//! training. The cockpit trains a tiny model, saves a checkpoint (`s`), opens the browser
//! (`c`), samples it in the side engine (`i`, a prompt, Enter); the side sample is the one
//! `llite-tui sample` gives for that checkpoint and knobs (same token count, same text), and
//! the status bar stays RUNNING with its step counter advancing while the sample runs and
//! after it.
//!
//! Needs `tmux` (as `tui_e2e.rs`); `LLITE_SKIP_TMUX=1` skips it.

mod common;

use common::tmux::{sample_tokens, shell_line, status_step, Tmux};
use common::{small_corpus, tiny_flags_with, BIN};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PROMPT: &str = "KING";
/// Tokens of the side sample: few enough that even all newlines fit the prompt pane of a
/// 40-row terminal (a longer text scrolls, its start out of view).
const MAX_TOKENS: &str = "12";

/// The newest complete checkpoint directory of `run` (its `trainer.json` is written last).
fn saved_checkpoint(run: &Path) -> Option<PathBuf> {
    let mut done: Vec<PathBuf> = std::fs::read_dir(run.join("checkpoints"))
        .ok()?
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("step-") && !name.contains('.') && p.join("trainer.json").exists()
        })
        .collect();
    done.sort();
    done.pop()
}

/// A row of the screen inside the full-width prompt pane's borders; None for a row that is
/// not inside a pane (its bottom border).
fn inside_borders(row: &str) -> Option<&str> {
    let row = row.trim_end();
    let inner = row.strip_prefix(['┃', '│'])?;
    Some(inner.strip_suffix(['┃', '│']).unwrap_or(inner).trim_end())
}

/// Columns inside the prompt pane: its side header row's width less the two borders.
fn pane_width(screen: &str) -> usize {
    let row = screen
        .lines()
        .find(|l| l.contains("─ checkpoint step "))
        .expect("a side header");
    row.chars().count() - 2
}

/// A row's printable ASCII, trailing blanks dropped. An undertrained model emits control
/// characters, combining marks and invalid UTF-8 (shown as U+FFFD) that a terminal draws its
/// own way; the exact check is the token count.
fn printable_ascii(row: &str) -> String {
    let kept: String = row
        .chars()
        .filter(|c| c.is_ascii() && !c.is_ascii_control())
        .collect();
    kept.trim_end().to_string()
}

/// Trailing blank rows dropped: the pane's empty rows below the text, a text's last newlines.
fn trim_blank_tail(mut rows: Vec<String>) -> String {
    while rows.last().is_some_and(|r| r.is_empty()) {
        rows.pop();
    }
    rows.join("\n")
}

/// The side sample's text as the prompt pane shows it: the rows under its `─ checkpoint
/// step` header down to the pane's bottom border.
fn side_sample_shown(screen: &str) -> Option<String> {
    let rows: Vec<&str> = screen.lines().collect();
    let at = rows.iter().position(|l| l.contains("─ checkpoint step "))?;
    let body = rows[at + 1..]
        .iter()
        .map_while(|r| inside_borders(r))
        .map(printable_ascii)
        .collect();
    Some(trim_blank_tail(body))
}

/// What `llite-tui sample` gives for a checkpoint.
struct CliSample {
    /// Prompt and text hard-wrapped at the pane's width as the pane wraps them, each row
    /// reduced to its printable ASCII (see [`printable_ascii`]).
    shown: String,
    tokens: u64,
}

/// `llite-tui sample` of `ckpt` with the cockpit's knobs, as a pane `width` columns wide
/// shows it.
fn cli_sample(ckpt: &Path, width: usize) -> CliSample {
    let args = [
        "sample",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--prompt",
        PROMPT,
        "--temperature",
        "0.8",
        "--top-k",
        "40",
        "--top-p",
        "0.95",
        "--max-tokens",
        MAX_TOKENS,
        "--seed",
        "1234",
    ];
    let out = common::run_within(&args, 120);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let rows = out
        .stdout
        .split('\n')
        .flat_map(|l| {
            let chars: Vec<char> = l.chars().collect();
            let rows: Vec<String> = chars.chunks(width).map(|c| c.iter().collect()).collect();
            if rows.is_empty() {
                vec![String::new()]
            } else {
                rows
            }
        })
        .map(|l| printable_ascii(&l))
        .collect();
    // The summary line on stderr: `[<n> tokens, <r> tokens/s, stop: ...]`.
    let tokens = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix('[')?.split(" tokens,").next()?.parse().ok())
        .unwrap_or_else(|| panic!("no token count in: {}", out.stderr));
    CliSample {
        shown: trim_blank_tail(rows),
        tokens,
    }
}

#[test]
fn browser_side_sample_while_training_continues() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 100_000);
    let runs = dir.path().join("runs");
    let sample_max = format!("sample.max_tokens={MAX_TOKENS}");
    let mut args = vec![
        "--runs-dir".to_string(),
        runs.to_str().unwrap().to_string(),
        "--run-name".into(),
        "side-e2e".into(),
    ];
    args.extend(tiny_flags_with(
        &corpus,
        &[
            "train.max_steps=1000000",
            "checkpoint.every=0",
            "model.max_seq_len=128",
            "sample.temperature=0.8",
            "sample.top_k=40",
            "sample.top_p=0.95",
            "sample.seed=1234",
            &sample_max,
        ],
    ));
    let Some(tmux) = Tmux::start("side", &shell_line(BIN, &args), 120, 40) else {
        return;
    };

    // Training runs; `s` saves a checkpoint (pinned, so retention never removes it).
    tmux.wait_for("steps", Duration::from_secs(120), |s| {
        s.contains("RUNNING") && status_step(s).is_some_and(|n| n >= 3)
    });
    tmux.send(&["s"]);
    let run = runs.join("side-e2e");
    let start = Instant::now();
    let ckpt = loop {
        if let Some(c) = saved_checkpoint(&run) {
            break c;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no checkpoint saved; screen:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let ckpt_step: u64 = ckpt.file_name().unwrap().to_string_lossy()["step-".len()..]
        .parse()
        .unwrap();

    // The browser lists it; `i` points the prompt pane at it, on the side engine.
    tmux.send(&["c"]);
    tmux.wait_for(
        "the browser listing the checkpoint",
        Duration::from_secs(20),
        |s| {
            // Its row (the status bar names the run too): a manual save, so pinned.
            s.contains("checkpoints ·")
                && s.lines()
                    .any(|l| l.contains("┃") && l.contains("side-e2e") && l.contains("pinned"))
        },
    );
    tmux.send(&["i"]);
    let title = format!("side-e2e step {ckpt_step} · side engine");
    tmux.wait_for(
        "the prompt pane on the side engine",
        Duration::from_secs(10),
        |s| s.contains(&title) && !s.contains("checkpoints ·"),
    );
    tmux.type_text(PROMPT);
    let before = tmux.wait_for("the typed prompt", Duration::from_secs(10), |s| {
        s.contains(&format!("› {PROMPT}"))
    });
    let at_submit = status_step(&before).expect("a step count");
    tmux.send(&["Enter"]);

    // Until the side sample is done, every screen says RUNNING.
    let start = Instant::now();
    let done = loop {
        let s = tmux.screen();
        assert!(
            s.contains("RUNNING"),
            "training must keep running while the side engine samples:\n{s}"
        );
        let side_done =
            s.contains("─ checkpoint step ") && sample_tokens(&s).is_some_and(|n| n > 0);
        if side_done {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no side sample; screen:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let at_done = status_step(&done).expect("a step count");
    assert!(
        at_done > at_submit,
        "steps advanced while the side sample ran ({at_submit} -> {at_done}):\n{done}"
    );
    assert!(
        done.contains(&format!("─ checkpoint step {ckpt_step} · ")),
        "the sample is of the chosen checkpoint:\n{done}"
    );
    let header = done
        .lines()
        .find(|l| l.contains("─ checkpoint step "))
        .unwrap();
    assert!(
        !header.contains(&format!("· {PROMPT}")),
        "the sample overflowed the pane (its start scrolled out):\n{done}"
    );
    let shown = side_sample_shown(&done).expect("the side sample's rows");
    assert!(shown.starts_with(PROMPT), "{shown:?}\n{done}");
    let cli = cli_sample(&ckpt, pane_width(&done));
    assert_eq!(
        (shown, sample_tokens(&done)),
        (cli.shown, Some(cli.tokens)),
        "the side sample is `llite-tui sample` of that checkpoint:\n{done}"
    );

    // And after it: still RUNNING, still stepping.
    tmux.wait_for(
        "steps after the side sample",
        Duration::from_secs(30),
        |s| s.contains("RUNNING") && status_step(s).is_some_and(|n| n > at_done),
    );

    // Esc leaves the side target, Esc closes the pane; quit, terminal restored.
    tmux.send(&["Escape"]);
    tmux.wait_for("back on the live weights", Duration::from_secs(10), |s| {
        !s.contains(&title)
    });
    tmux.send(&["Escape"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux.quit_and_check_restored();
}

#[test]
fn side_sample_rows_are_read_from_the_pane() {
    let screen = "\
┏ prompt · side-e2e step 8 · side engine ━━━━━━━━━━━━━━━━━━━━━━━┓
┃temp 0.80  top-k 40  top-p 0.95  max 24                        ┃
┃›                                                              ┃
┃─ checkpoint step 8 · 24 tok · 310 tok/s                      ┃
┃KING RICHARD III:                                              ┃
┃Come, come.                                                    ┃
┃                                                               ┃
┃Exeunt                                                         ┃
┃                                                               ┃
┗━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┛";
    assert_eq!(
        side_sample_shown(screen).as_deref(),
        Some("KING RICHARD III:\nCome, come.\n\nExeunt")
    );
    assert_eq!(sample_tokens(screen), Some(24));
    assert_eq!(inside_borders("┗━━━┛"), None);
}
