//! The chronicle (issue 13, item 3) end to end through the real engine: entries at step 0 and
//! at the cadence, written to `metrics.jsonl` as their own event kinds, the same losses bit for
//! bit with the chronicle on or off, the cockpit's timeline rebuilt from the log (as `watch`
//! and a resumed cockpit do), and a bad task path refused before any step, naming it.

mod common;
use common::*;
use llite_tui::config::RunConfig;
use llite_tui::protocol::{Event, StartFrom};
use llite_tui::train::engine::spawn;
use llite_tui::tui::app::{App, Mode};
use llite_tui::tui::watch::MetricsTail;
use std::path::Path;

const TASK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sft-shakespeare.jsonl");

fn chronicled(mut cfg: RunConfig) -> RunConfig {
    cfg.chronicle.every = 3;
    cfg.chronicle.prompts = vec!["ROMEO:".into(), "The king".into()];
    cfg.chronicle.max_new_tokens = 8;
    cfg.chronicle.tasks = vec![TASK.into()];
    cfg.chronicle.max_questions = 3;
    cfg
}

fn losses(events: &[Event]) -> Vec<(u64, u64)> {
    steps(events)
        .iter()
        .map(|s| (s.step, s.loss.to_bits()))
        .collect()
}

#[test]
fn chronicle_entries_are_logged_replayable_and_leave_training_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 120_000);
    let plain = tiny_config(&corpus, 7);
    let off = run_to_end(spawn(request(
        plain.clone(),
        dir.path(),
        "off",
        StartFrom::Fresh,
    )));
    let on = run_to_end(spawn(request(
        chronicled(plain),
        dir.path(),
        "on",
        StartFrom::Fresh,
    )));
    assert_eq!(losses(&off).len(), 7);
    assert_eq!(losses(&on), losses(&off), "the chronicle changed training");
    assert!(!off.iter().any(|e| matches!(
        e,
        Event::ChronicleSample { .. } | Event::ChronicleTask { .. }
    )));

    // Entries at step 0 (the untrained model) and every 3 steps, each prompt and the task.
    let sample_steps: Vec<(u64, u64)> = on
        .iter()
        .filter_map(|e| match e {
            Event::ChronicleSample {
                step,
                prompt_index,
                prompt,
                tokens,
                ..
            } => {
                assert_eq!(prompt, ["ROMEO:", "The king"][*prompt_index as usize]);
                assert!(*tokens <= 8);
                Some((*step, *prompt_index))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        sample_steps,
        [(0, 0), (0, 1), (3, 0), (3, 1), (6, 0), (6, 1)]
    );
    let task_steps: Vec<u64> = on
        .iter()
        .filter_map(|e| match e {
            Event::ChronicleTask {
                step,
                task,
                metrics,
            } => {
                assert_eq!(task, "sft-shakespeare");
                assert_eq!(metrics["n"], 3.0);
                assert!((0.0..=1.0).contains(&metrics["acc"]), "{metrics:?}");
                // 37 titles to choose from.
                assert!((metrics["chance"] - 1.0 / 37.0).abs() < 1e-9, "{metrics:?}");
                Some(*step)
            }
            _ => None,
        })
        .collect();
    assert_eq!(task_steps, [0, 3, 6]);
    // Greedy: the same prompt at the same step gives the same text in another run.
    let again = run_to_end(spawn(request(
        chronicled(tiny_config(&corpus, 3)),
        dir.path(),
        "again",
        StartFrom::Fresh,
    )));
    let text_at = |events: &[Event], at: u64| -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::ChronicleSample { step, text, .. } if *step == at => Some(text.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(text_at(&again, 3), text_at(&on, 3));

    // In metrics.jsonl under their own kinds, and a cockpit fed the log (as `watch` is)
    // rebuilds the same timeline.
    let log = dir.path().join("on").join("metrics.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("\"event\":\"chronicle_sample\"").count(), 6);
    assert_eq!(text.matches("\"event\":\"chronicle_task\"").count(), 3);
    let mut app = App::new(
        Mode::Watch,
        &Default::default(),
        llite_tui::protocol::SampleParams::default(),
    );
    let mut tail = MetricsTail::new(&log);
    for e in tail.poll() {
        app.on_event(e);
    }
    assert_eq!(tail.skipped, 0);
    let entries = app.chronicle.entries();
    assert_eq!(
        entries.iter().map(|e| e.step).collect::<Vec<_>>(),
        [0, 3, 6]
    );
    assert_eq!(entries[1].samples.len(), 2);
    assert_eq!(
        Some(entries[1].samples[0].text.clone()),
        text_at(&on, 3).first().cloned()
    );
    assert_eq!(app.chronicle.tasks()["sft-shakespeare"].len(), 3);
}

#[test]
fn unknown_event_kinds_are_skipped_and_old_chronicle_lines_read_with_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("metrics.jsonl");
    // A kind from a newer writer is skipped (how readers older than the chronicle treat its
    // lines); a chronicle line without the optional fields reads with their defaults.
    std::fs::write(
        &log,
        concat!(
            "{\"event\":\"eval\",\"step\":1,\"val_loss\":2.0,\"time\":\"t\"}\n",
            "{\"event\":\"from_the_future\",\"step\":2,\"time\":\"t\"}\n",
            "{\"event\":\"chronicle_sample\",\"step\":2,\"prompt\":\"A\",\"text\":\"b\",\"time\":\"t\"}\n",
        ),
    )
    .unwrap();
    let mut tail = MetricsTail::new(&log);
    let events = tail.poll();
    assert_eq!(tail.skipped, 1);
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[1],
        Event::ChronicleSample {
            step: 2,
            prompt_index: 0,
            prompt: "A".into(),
            text: "b".into(),
            tokens: 0
        }
    );
}

#[test]
fn a_missing_task_file_stops_the_run_before_its_first_step_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 60_000);
    let mut cfg = chronicled(tiny_config(&corpus, 3));
    let missing = dir.path().join("nope.jsonl");
    cfg.chronicle.tasks = vec![missing.display().to_string()];
    let link = spawn(request(cfg, dir.path(), "bad", StartFrom::Fresh));
    let mut message = None;
    loop {
        match next_event(&link, 120) {
            Event::Step(_) => panic!("a step ran with a broken chronicle"),
            Event::Error { message: m, .. } => message = Some(m),
            Event::Finished { .. } => break,
            _ => {}
        }
    }
    let m = message.expect("an Error event");
    assert!(
        m.contains("chronicle.tasks") && m.contains("nope.jsonl") && !m.contains('\n'),
        "{m}"
    );
    assert!(!Path::new(&missing).exists());
}
