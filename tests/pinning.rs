//! On-demand saves are pinned: retention (`checkpoint.keep_last`) never removes them, `ckpt ls`
//! shows them, and unpinning (the browser's `u`) makes them eligible again.

mod common;
use common::*;
use llite_tui::protocol::{Command, EngineLink, Event, StartFrom};
use llite_tui::store::listing::{apply_retention, list_checkpoints, list_checkpoints_with, Check};
use llite_tui::store::pin::set_pinned_by_user;
use llite_tui::train::engine::spawn;
use std::path::PathBuf;

/// Pause and return the step it paused at.
fn pause(link: &EngineLink) -> u64 {
    link.commands.send(Command::Pause).unwrap();
    wait_for_event(link, |e| match e {
        Event::Paused { step } => Some(*step),
        _ => None,
    })
}

/// Pause, and resume for one more step until the engine is paused at a step `wanted` accepts.
fn pause_where(link: &EngineLink, wanted: impl Fn(u64) -> bool) -> u64 {
    loop {
        let s = pause(link);
        if wanted(s) {
            return s;
        }
        link.commands.send(Command::Resume).unwrap();
        wait_step(link, s + 1);
    }
}

/// The `CheckpointSaved` for `step`.
fn saved_at(link: &EngineLink, step: u64) -> PathBuf {
    wait_for_event(link, |e| match e {
        Event::CheckpointSaved { step: s, path } if *s == step => Some(PathBuf::from(path)),
        _ => None,
    })
}

#[test]
fn manual_and_stop_saves_survive_keep_last_until_unpinned() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 40_000);
    let mut cfg = tiny_config(&corpus, 10_000);
    cfg.checkpoint.every = 2;
    cfg.checkpoint.keep_last = 1;
    let link = spawn(request(cfg, dir.path(), "pin", StartFrom::Fresh));
    let run_dir = dir.path().join("pin");
    wait_step(&link, 3);
    // A manual save in the middle of the run.
    let manual_step = pause(&link);
    link.commands.send(Command::SaveCheckpoint).unwrap();
    let manual = saved_at(&link, manual_step);
    link.commands.send(Command::Resume).unwrap();
    // Several periodic saves later, stop with save at a step no periodic save wrote.
    wait_step(&link, manual_step + 6);
    let stop_step = pause_where(&link, |s| !s.is_multiple_of(2));
    send_stop(&link, true);
    let stopped = saved_at(&link, stop_step);
    run_to_end(link);

    // keep_last = 1 kept the newest periodic save and both pinned ones, nothing else.
    let list = list_checkpoints(&run_dir);
    let kept: Vec<(u64, bool)> = list.iter().map(|c| (c.step, c.pinned)).collect();
    let newest_periodic = stop_step - 1;
    let mut want = vec![
        (manual_step, true),
        (newest_periodic, false),
        (stop_step, true),
    ];
    want.sort();
    assert_eq!(kept, want, "{list:?}");
    assert!(list.iter().all(|c| c.error.is_none()), "{list:?}");

    // `ckpt ls --verify` verifies the pinned checkpoints and marks them.
    let out = run_within(&["ckpt", "ls", run_dir.to_str().unwrap(), "--verify"], 120);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let pinned_lines = out
        .stdout
        .lines()
        .filter(|l| l.contains("ok, digests verified, pinned"))
        .count();
    assert_eq!(pinned_lines, 2, "{}", out.stdout);

    // Unpinning keeps every digest valid and makes the manual save eligible again.
    assert!(!set_pinned_by_user(&manual, false).unwrap());
    let verified = list_checkpoints_with(&run_dir, Check::Digests);
    assert!(verified.iter().all(|c| c.error.is_none()), "{verified:?}");
    assert!(
        !verified
            .iter()
            .find(|c| c.step == manual_step)
            .unwrap()
            .pinned
    );
    let removed = apply_retention(&run_dir, 1, 0, &stopped).unwrap();
    assert_eq!(removed, vec![manual.clone()]);
    assert!(!manual.exists() && stopped.exists());
    // The stop's save stays pinned; pinning another by hand works too.
    let periodic = run_dir
        .join("checkpoints")
        .join(format!("step-{newest_periodic:08}"));
    assert!(set_pinned_by_user(&periodic, true).unwrap());
    assert!(apply_retention(&run_dir, 1, 0, &stopped)
        .unwrap()
        .is_empty());
    // A checkpoint that is not ours is refused, named.
    let e = set_pinned_by_user(&dir.path().join("nope"), false).unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
}

#[test]
fn a_stop_with_save_at_an_already_saved_step_pins_that_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 40_000);
    let mut cfg = tiny_config(&corpus, 10_000);
    cfg.checkpoint.every = 2;
    cfg.checkpoint.keep_last = 1;
    let link = spawn(request(cfg, dir.path(), "pin-even", StartFrom::Fresh));
    // Pause on a step the periodic save just wrote (even), then stop with save.
    let step = pause_where(&link, |s| s > 0 && s.is_multiple_of(2));
    send_stop(&link, true);
    let events = run_to_end(link);
    // Checkpoints are written in the background: the periodic save of `step` may report
    // after the pause; a new save would report a second time.
    let alerts: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::Alert { .. } | Event::CheckpointSaved { .. }))
        .collect();
    let periodic = |e: &&&Event| matches!(e, Event::CheckpointSaved { step: s, .. } if *s == step);
    assert!(
        alerts.iter().filter(periodic).count() <= 1 && alerts.iter().all(|e| periodic(&e)),
        "no new save and no failure: {alerts:?}"
    );
    let list = list_checkpoints_with(&dir.path().join("pin-even"), Check::Digests);
    let kept: Vec<(u64, bool, bool)> = list
        .iter()
        .map(|c| (c.step, c.pinned, c.error.is_none()))
        .collect();
    assert_eq!(kept, vec![(step, true, true)], "{list:?}");
}
