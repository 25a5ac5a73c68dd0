//! End to end: the real binary inside a detached tmux session (a real pseudo-terminal). Waits
//! for steps to advance, pauses and checks the step count stops, resumes and checks it moves,
//! changes the LR live through the control pane (seen in the LR pane), opens the chronicle
//! timeline (`t`, with `chronicle.every = 2`), generates text from the prompt pane, quits, and
//! checks the terminal was restored (exit code 0 and the alternate screen off).
//!
//! Needs `tmux` (CI installs it). Set `LLITE_SKIP_TMUX=1` to skip where tmux cannot be had.
//! The screen text relied on is listed in `common/tmux.rs`.

mod common;

use common::tmux::{pane_lr, sample_tokens, shell_line, status_step, Tmux};
use std::time::Duration;

#[test]
fn cockpit_in_tmux_pause_resume_sample_quit() {
    let runs = tempfile::tempdir().unwrap();
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
    let Some(tmux) = Tmux::start("e2e", &shell_line(common::BIN, &args), 120, 40) else {
        return;
    };

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
    tmux.quit_and_check_restored();
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
