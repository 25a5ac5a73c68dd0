//! Steering a live run (issue 15): live control changes are recorded and replayed so a resume
//! from any checkpoint reproduces the steered run bit for bit; a rewind-and-skip branches in
//! place without touching the run's newer checkpoints, and the branch resumes exactly.

mod common;
use common::*;
use llite_tui::controls::ControlValue;
use llite_tui::protocol::{AlertKind, Command, EngineLink, Event, StartFrom};
use llite_tui::store::trainer_state::read_trainer_state;
use llite_tui::train::engine::spawn;
use std::path::{Path, PathBuf};

fn losses(events: &[Event]) -> Vec<(u64, f64)> {
    steps(events).iter().map(|s| (s.step, s.loss)).collect()
}

fn checkpoint_at(run_dir: &Path, step: u64) -> PathBuf {
    run_dir.join("checkpoints").join(format!("step-{step:08}"))
}

fn send(link: &EngineLink, cmd: Command) {
    link.commands.send(cmd).unwrap();
}

fn set(link: &EngineLink, key: &str, value: &str) {
    send(
        link,
        Command::Set {
            key: key.into(),
            value: value.into(),
        },
    );
}

/// The losses of a run, started from `ckpt` (resumed with `overrides`), to its end.
fn resume(runs: &Path, ckpt: &Path, overrides: &[&str]) -> Vec<Event> {
    let cfg = tiny_config(Path::new("unused"), 12);
    let mut req = request(cfg, runs, "ignored", StartFrom::Resume(ckpt.to_path_buf()));
    req.run_name = None;
    req.overrides = strs(overrides);
    run_to_end(spawn(req))
}

#[test]
fn a_live_lr_change_is_recorded_and_replayed_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 200_000);
    let mut cfg = tiny_config(&corpus, 12);
    cfg.checkpoint.every = 5;
    let run = dir.path().join("orig");

    // Steps 1..7, then the engine is live at step 7 and the LR is changed before step 8.
    let mut first = request(cfg.clone(), dir.path(), "orig", StartFrom::Fresh);
    first.stop_at = Some(7);
    let mut original = losses(&run_to_end(spawn(first)));
    let mut req = request(
        cfg.clone(),
        dir.path(),
        "orig",
        StartFrom::Resume(checkpoint_at(&run, 7)),
    );
    req.run_name = None;
    let link = spawn(req);
    set(&link, "train.batch_size", "8");
    set(&link, "train.lr", "1e-3");
    let events = run_to_end(link);
    let rejected = events
        .iter()
        .find_map(|e| match e {
            Event::ControlRejected { message, .. } => Some(message.clone()),
            _ => None,
        })
        .expect("a non-live key is rejected");
    assert!(rejected.contains("not a live key"), "{rejected}");
    let changed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::ControlChanged { step, change } => Some((*step, change.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0].0, 7);
    assert_eq!(changed[0].1.key, "train.lr");
    assert_eq!(changed[0].1.old, ControlValue::Real(3e-3));
    assert_eq!(changed[0].1.new, ControlValue::Real(1e-3));
    let steered = steps(&events);
    assert!(
        steered[0].lr < 1e-3 + 1e-12,
        "step 8 runs with the new peak: lr {}",
        steered[0].lr
    );
    original.extend(losses(&events));
    assert_eq!(original.len(), 12);

    // The change is in metrics.jsonl and in the later checkpoints, not in the earlier ones.
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let line = metrics
        .lines()
        .find(|l| l.contains("\"event\":\"control_changed\""))
        .expect("control_changed logged");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(
        (v["step"].as_u64(), v["key"].as_str(), v["new"].as_f64()),
        (Some(7), Some("train.lr"), Some(1e-3))
    );
    assert!(read_trainer_state(&checkpoint_at(&run, 5))
        .unwrap()
        .controls
        .is_empty());
    let at10 = read_trainer_state(&checkpoint_at(&run, 10)).unwrap();
    assert_eq!(at10.controls.len(), 1);
    assert_eq!(at10.controls[0].step, 7);
    assert_eq!(at10.schedule.lr, 1e-3);

    // A --set of a key that the resume would replay is refused before anything is created.
    let refused = spawn({
        let mut r = request(
            cfg.clone(),
            dir.path(),
            "x",
            StartFrom::Resume(checkpoint_at(&run, 5)),
        );
        r.run_name = None;
        r.overrides = strs(&["train.lr=5e-4"]);
        r
    });
    let error = engine_error(&refused, "the conflicting --set");
    assert!(
        error.contains("--set train.lr: this resume replays"),
        "{error}"
    );
    assert!(!dir.path().join("orig-branch-5").exists());

    // Resume from before the change (a branch) replays it at step 7; from after, it continues.
    let from5 = resume(dir.path(), &checkpoint_at(&run, 5), &[]);
    assert!(from5.iter().any(|e| matches!(
        e,
        Event::ControlChanged { step: 7, change } if change.key == "train.lr"
    )));
    assert_eq!(losses(&from5), original[5..].to_vec(), "resume from 5");
    let from10 = resume(dir.path(), &checkpoint_at(&run, 10), &[]);
    assert_eq!(losses(&from10), original[10..].to_vec(), "resume from 10");
    let branch5 = read_trainer_state(&checkpoint_at(&dir.path().join("orig-branch-5"), 12));
    assert_eq!(branch5.unwrap().controls, at10.controls);
}

#[test]
fn rewind_and_skip_branches_in_place_and_the_branch_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 200_000);
    let mut cfg = tiny_config(&corpus, 12);
    cfg.checkpoint.every = 4;
    let run = dir.path().join("r");
    let mut first = request(cfg.clone(), dir.path(), "r", StartFrom::Fresh);
    first.stop_at = Some(10);
    let parent = losses(&run_to_end(spawn(first)));
    let before = snapshot(&run.join("checkpoints"));

    // Live at step 10: a refused rewind changes nothing, then rewind to 4 skipping 3 steps.
    let mut req = request(
        cfg.clone(),
        dir.path(),
        "r",
        StartFrom::Resume(checkpoint_at(&run, 10)),
    );
    req.run_name = None;
    let link = spawn(req);
    send(
        &link,
        Command::Rewind {
            checkpoint: dir.path().join("nowhere"),
            skip_batches: 1,
        },
    );
    send(
        &link,
        Command::Rewind {
            checkpoint: checkpoint_at(&run, 4),
            skip_batches: 3,
        },
    );
    let events = run_to_end(link);
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Alert { detail, .. } if detail.starts_with("rewind refused") && detail.contains("nowhere")
    )));
    let branch = dir.path().join("r-branch-4");
    let rewound = events
        .iter()
        .find_map(|e| match e {
            Event::Rewound {
                step,
                from_step,
                skip_batches,
                run_dir,
                ..
            } => Some((*step, *from_step, *skip_batches, run_dir.clone())),
            _ => None,
        })
        .expect("rewound");
    assert_eq!(
        rewound,
        (
            4,
            10,
            3,
            std::fs::canonicalize(&branch)
                .unwrap()
                .display()
                .to_string()
        )
    );
    let branch_losses = losses(&events);
    assert_eq!(branch_losses.first().map(|l| l.0), Some(5));
    assert_eq!(branch_losses.len(), 8);
    assert_ne!(
        branch_losses[0].1, parent[4].1,
        "skipped data: a different step 5"
    );

    // The parent's checkpoints are untouched byte for byte; its log records the rewind.
    assert_eq!(snapshot(&run.join("checkpoints")), before);
    let parent_log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(parent_log.contains("\"event\":\"rewound\""));
    assert_eq!(
        metrics_step_losses(&branch.join("metrics.jsonl")),
        branch_losses
    );
    let state = read_trainer_state(&checkpoint_at(&branch, 8)).unwrap();
    assert_eq!(state.rewinds.len(), 1);
    assert_eq!(
        (
            state.rewinds[0].step,
            state.rewinds[0].from_step,
            state.rewinds[0].skip_batches
        ),
        (4, 10, 3)
    );
    assert!(state.parent.unwrap().ends_with("step-00000004"));

    // The branch resumes from its own checkpoint bit for bit.
    let again = resume(dir.path(), &checkpoint_at(&branch, 8), &[]);
    assert_eq!(losses(&again), branch_losses[4..].to_vec());
}

/// Forward a running engine's events to the headless consumer, forcing a spike (a huge LR set
/// live) at step `at`, and again after the first rewind; once the cap stops rewinding, the LR
/// is set back so the run ends normally. Returns the link the consumer reads and the events.
fn with_forced_spikes(
    link: EngineLink,
    at: u64,
) -> (EngineLink, std::sync::mpsc::Receiver<Vec<Event>>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    let commands = link.commands.clone();
    let events = link.events;
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let (mut forced, mut rewound, mut calmed) = (0, false, false);
        for e in events.iter() {
            let huge = || Command::Set {
                key: "train.lr".into(),
                value: "2.0".into(),
            };
            match &e {
                Event::Step(s) if forced == 0 && s.step == at => {
                    commands.send(huge()).unwrap();
                    forced = 1;
                }
                Event::Rewound { .. } => rewound = true,
                Event::Step(_) if rewound && forced == 1 => {
                    commands.send(huge()).unwrap();
                    forced = 2;
                }
                Event::Alert {
                    kind: AlertKind::LossSpike | AlertKind::GradExplosion,
                    ..
                } if forced == 2 && !calmed => {
                    commands
                        .send(Command::Set {
                            key: "train.lr".into(),
                            value: "3e-4".into(),
                        })
                        .unwrap();
                    calmed = true;
                }
                _ => {}
            }
            let done = matches!(e, Event::Finished { .. });
            seen.push(e.clone());
            if tx.send(e).is_err() || done {
                break;
            }
        }
        let _ = seen_tx.send(seen);
    });
    let forwarded = EngineLink {
        commands: link.commands,
        events: rx,
        join: link.join,
    };
    (forwarded, seen_rx)
}

#[test]
fn headless_on_spike_rewind_rewinds_once_and_the_cap_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 200_000);
    let mut cfg = tiny_config(&corpus, 80);
    cfg.checkpoint.every = 5;
    cfg.train.eval_every = 0;
    cfg.train.on_spike = llite_tui::config::OnSpike::Rewind;
    cfg.train.max_auto_rewinds = 1;
    let link = spawn(request(cfg, dir.path(), "spiky", StartFrom::Fresh));
    let (link, seen) = with_forced_spikes(link, 55);
    let summary = llite_tui::headless::run(link, true, None).unwrap();
    let events = seen
        .recv_timeout(std::time::Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        summary.reason,
        Some(llite_tui::protocol::FinishReason::MaxSteps)
    );
    assert_eq!(summary.final_step, 80);
    let rewinds: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Rewound {
                step, skip_batches, ..
            } => Some((*step, *skip_batches)),
            _ => None,
        })
        .collect();
    assert_eq!(rewinds.len(), 1, "one automatic rewind, then the cap");
    let spikes: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Alert {
                step,
                kind: AlertKind::LossSpike | AlertKind::GradExplosion,
                ..
            } => Some(*step),
            _ => None,
        })
        .collect();
    assert!(spikes.len() >= 2, "{spikes:?}");
    // Rewound to the newest checkpoint before the first spike, skipping up to the spike.
    let (step, skip) = rewinds[0];
    assert_eq!(step, 55, "spikes at {spikes:?}");
    assert_eq!(skip, spikes[0] - 55);
    let branch = dir.path().join("spiky-branch-55");
    assert_eq!(
        summary.run_dir.as_deref(),
        Some(std::fs::canonicalize(&branch).unwrap().to_str().unwrap())
    );
    assert!(checkpoint_at(&branch, 80).is_dir());
    assert!(!checkpoint_at(&dir.path().join("spiky"), 80).exists());
}
