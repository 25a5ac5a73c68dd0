//! Checkpoints written in the background (`checkpoint.async`, the default): the same bytes as
//! a synchronous save, no torn set when saves overlap, every end of the run waits for the
//! writer, and a failed background write is reported like a failed synchronous one.

mod common;
use common::*;
use llite_tui::protocol::{AlertKind, Command, Event, StartFrom};
use llite_tui::store::checkpoint::{self, CheckpointData};
use llite_tui::store::ckpt_writer::{CheckpointWriter, Retention, SaveJob, SaveOutcome, WriteMode};
use llite_tui::store::listing::{list_checkpoints_with, Check};
use llite_tui::train::engine::spawn;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Every file of a directory, by name.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// `trainer.json` without what differs between two runs of the same trajectory: the run's
/// name, when it was written, the wall time, `checkpoint.async` in the config and the digest
/// that covers them.
fn comparable_trainer_json(bytes: &[u8]) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let obj = v.as_object_mut().unwrap();
    for volatile in ["run_name", "written_unix", "wall_time_s", "trainer_blake3"] {
        obj.remove(volatile);
    }
    let toml = obj["config_toml"].as_str().unwrap().to_string();
    let kept: Vec<&str> = toml.lines().filter(|l| !l.starts_with("async")).collect();
    obj.insert("config_toml".into(), kept.join("\n").into());
    v
}

/// No `.partial`, `.old` or `.deleting` leftovers in the run's `checkpoints/`.
fn assert_no_leftovers(run_dir: &Path) {
    for e in std::fs::read_dir(run_dir.join("checkpoints")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(name.starts_with("step-") && !name.contains('.'), "{name}");
    }
}

fn run_with(async_write: bool, every: u64, name: &str, root: &Path, corpus: &Path) -> Vec<Event> {
    let mut cfg = tiny_config(corpus, 8);
    cfg.checkpoint.every = every;
    cfg.checkpoint.async_write = async_write;
    run_to_end(spawn(request(cfg, root, name, StartFrom::Fresh)))
}

#[test]
fn background_saves_write_the_same_files_as_synchronous_ones() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 40_000);
    let sync = run_with(false, 4, "sync", dir.path(), &corpus);
    let bg = run_with(true, 4, "bg", dir.path(), &corpus);
    // The same trajectory (timings aside), so the checkpoints can be compared byte for byte.
    let trajectory = |events: &[Event]| -> Vec<(u64, u64, u64, u64)> {
        steps(events)
            .iter()
            .map(|s| (s.step, s.loss.to_bits(), s.grad_norm.to_bits(), s.tokens))
            .collect()
    };
    assert_eq!(trajectory(&sync), trajectory(&bg));
    for step in ["step-00000004", "step-00000008"] {
        let a = files(&dir.path().join("sync/checkpoints").join(step));
        let b = files(&dir.path().join("bg/checkpoints").join(step));
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (name, bytes) in &a {
            if name == "trainer.json" {
                assert_eq!(
                    comparable_trainer_json(bytes),
                    comparable_trainer_json(&b[name])
                );
            } else {
                assert!(
                    bytes == &b[name],
                    "{step}/{name} differs between sync and async"
                );
            }
        }
    }

    // The same snapshot through both paths: byte-identical, trainer.json included.
    let ckpt = checkpoint::load(&dir.path().join("bg/checkpoints/step-00000008")).unwrap();
    let data = || CheckpointData {
        trainer: ckpt.trainer.clone(),
        model_config: ckpt.model_config.clone(),
        weights: ckpt.weights.read_all().unwrap(),
        moments: ckpt.read_moments().unwrap(),
        tokenizer_json: std::fs::read_to_string(&ckpt.tokenizer_path).unwrap(),
        eos_token_id: 0,
        tokenizer_meta: None,
    };
    let sync_dir = checkpoint::save(&dir.path().join("direct"), &data()).unwrap();
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let seen = outcomes.clone();
    let mut writer = CheckpointWriter::new(
        WriteMode::Background,
        Arc::new(move |o: SaveOutcome| seen.lock().unwrap().push(o)),
    );
    writer.submit(SaveJob {
        run_dir: dir.path().join("writer"),
        data: data(),
        retention: Retention {
            keep_last: 1,
            keep_every: 0,
        },
    });
    writer.wait();
    let outcome = outcomes.lock().unwrap().pop().unwrap();
    let bg_dir = outcome.result.unwrap();
    assert_eq!(outcome.step, 8);
    assert_eq!(files(&sync_dir), files(&bg_dir));
}

#[test]
fn a_second_save_waits_for_the_first_and_nothing_tears() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 40_000);
    // Store level: two jobs for the same checkpoint, submitted back to back.
    run_with(true, 8, "src", dir.path(), &corpus);
    let ckpt = checkpoint::load(&dir.path().join("src/checkpoints/step-00000008")).unwrap();
    let job = |pinned: bool| SaveJob {
        run_dir: dir.path().join("twice"),
        data: CheckpointData {
            trainer: llite_tui::store::trainer_state::TrainerState {
                pinned,
                ..ckpt.trainer.clone()
            },
            model_config: ckpt.model_config.clone(),
            weights: ckpt.weights.read_all().unwrap(),
            moments: ckpt.read_moments().unwrap(),
            tokenizer_json: "{}".into(),
            eos_token_id: 0,
            tokenizer_meta: None,
        },
        retention: Retention {
            keep_last: 0,
            keep_every: 0,
        },
    };
    let reported = Arc::new(Mutex::new(Vec::new()));
    let seen = reported.clone();
    let mut writer = CheckpointWriter::new(
        WriteMode::Background,
        Arc::new(move |o: SaveOutcome| seen.lock().unwrap().push(o.result.is_ok())),
    );
    writer.submit(job(false));
    writer.submit(job(true));
    assert_eq!(
        *reported.lock().unwrap(),
        vec![true],
        "the second submit returned before the first write was reported"
    );
    drop(writer); // waits for the second
    assert_eq!(*reported.lock().unwrap(), vec![true, true]);
    let twice = dir.path().join("twice");
    let listed = list_checkpoints_with(&twice, Check::Digests);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].error, None);
    assert!(listed[0].pinned, "the second save is the one on disk");
    assert_no_leftovers(&twice);

    // Engine level: a save every step plus on-demand saves piled on top.
    let mut cfg = tiny_config(&corpus, 40);
    cfg.checkpoint.every = 1;
    cfg.checkpoint.keep_last = 3;
    let link = spawn(request(cfg, dir.path(), "busy", StartFrom::Fresh));
    for _ in 0..10 {
        link.commands.send(Command::SaveCheckpoint).unwrap();
    }
    let events = run_to_end(link);
    let failed = alert_details(&events, AlertKind::CheckpointFailed);
    assert!(failed.is_empty(), "{events:?}");
    let mut saved: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::CheckpointSaved { step, .. } => Some(*step),
            _ => None,
        })
        .collect();
    assert!(
        saved.windows(2).all(|w| w[0] <= w[1]),
        "saves reported out of order: {saved:?}"
    );
    saved.dedup();
    // Every step saved once (the on-demand saves land at step 0 or on a step's own save).
    saved.retain(|&s| s > 0);
    assert_eq!(saved, (1..=40).collect::<Vec<_>>());
    let busy = dir.path().join("busy");
    for c in list_checkpoints_with(&busy, Check::Digests) {
        assert_eq!(c.error, None, "{}", c.path);
    }
    assert_no_leftovers(&busy);
}

/// Events up to `Finished`, and the checkpoints reported saved before it.
fn saved_before_finish(events: &[Event]) -> Vec<PathBuf> {
    let end = events
        .iter()
        .position(|e| matches!(e, Event::Finished { .. }))
        .expect("Finished");
    events[..end]
        .iter()
        .filter_map(|e| match e {
            Event::CheckpointSaved { path, .. } => Some(PathBuf::from(path)),
            _ => None,
        })
        .collect()
}

#[test]
fn quitting_waits_for_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 40_000);
    let mut cfg = tiny_config(&corpus, 10_000);
    cfg.checkpoint.every = 3;
    let link = spawn(request(cfg, dir.path(), "quit", StartFrom::Fresh));
    wait_step(&link, 4);
    // A save on demand and a stop with save right behind it, as a cockpit quit sends them.
    link.commands.send(Command::SaveCheckpoint).unwrap();
    send_stop(&link, true);
    let events = run_to_end(link);
    let saved = saved_before_finish(&events);
    assert!(!saved.is_empty());
    let Some(Event::Finished { step, failures, .. }) = events.last() else {
        panic!("no Finished");
    };
    assert_eq!(failures.checkpoint_saves, 0);
    // Every checkpoint reported before Finished is complete, the final step's among them.
    for path in &saved {
        checkpoint::load(path).unwrap();
    }
    assert!(saved.iter().any(|p| p.ends_with(format!("step-{step:08}"))));
    assert_no_leftovers(&dir.path().join("quit"));

    // The end of a headless run: the final save is reported before `finished`, and durable.
    let runs = dir.path().join("runs");
    let mut args = strs(&["train", "--headless", "--runs-dir", runs.to_str().unwrap()]);
    args.extend(strs(&["--run-name", "hl", "--max-steps", "5"]));
    args.extend(tiny_flags(&corpus));
    args.extend(strs(&["--set", "checkpoint.every=2"]));
    let out = run_within(&args, 300);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let log = std::fs::read_to_string(runs.join("hl/metrics.jsonl")).unwrap();
    let kinds: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split("\"event\":\"").nth(1)?.split('"').next())
        .collect();
    let last_ckpt = kinds.iter().rposition(|k| *k == "checkpoint").unwrap();
    assert!(last_ckpt < kinds.iter().rposition(|k| *k == "finished").unwrap());
    checkpoint::load(&runs.join("hl/checkpoints/step-00000005")).unwrap();
}

#[test]
fn a_failed_background_write_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 40_000);
    let cfg = tiny_config(&corpus, 10_000);
    let link = spawn(request(cfg, dir.path(), "ro", StartFrom::Fresh));
    wait_step(&link, 2);
    // `checkpoints` cannot be created: a plain file holds its name.
    let blocker = dir.path().join("ro/checkpoints");
    let _ = std::fs::remove_dir(&blocker);
    std::fs::write(&blocker, b"not a directory").unwrap();
    link.commands.send(Command::SaveCheckpoint).unwrap();
    send_stop(&link, false);
    let events = events_until_finished(&link, 120);
    let detail = alert_details(&events, AlertKind::CheckpointFailed)
        .into_iter()
        .next()
        .expect("a CheckpointFailed alert before Finished");
    assert!(detail.contains(&blocker.display().to_string()), "{detail}");
    assert!(!events
        .iter()
        .any(|e| matches!(e, Event::CheckpointSaved { .. })));
    let Some(Event::Finished { failures, .. }) = events.last() else {
        panic!("no Finished");
    };
    assert_eq!(
        failures.checkpoint_saves, 1,
        "counted like a failed synchronous save"
    );
    assert_eq!(std::fs::read(&blocker).unwrap(), b"not a directory");
}
