//! The engine thread obeys its protocol: Started first, Step events with DESIGN.md's fields,
//! Pause/Resume/Stop between steps, loss falling on the bundled corpus, metrics.jsonl written.

mod common;
use common::*;
use llite_tui::protocol::{Command, Event, FinishReason, SampleParams, StartFrom};
use llite_tui::train::engine::spawn;
use std::time::{Duration, Instant};

#[test]
fn tiny_model_loss_falls_and_metrics_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 400_000);
    let cfg = tiny_config(&corpus, 300);
    let events = run_to_end(spawn(request(cfg, dir.path(), "falls", StartFrom::Fresh)));
    assert!(
        matches!(events[0], Event::Started { .. }),
        "first event: {:?}",
        events[0]
    );
    let steps = steps(&events);
    assert_eq!(steps.len(), 300);
    assert_eq!(steps[0].step, 1);
    let first: f64 = steps[..5].iter().map(|s| s.loss).sum::<f64>() / 5.0;
    let last: f64 = steps[290..].iter().map(|s| s.loss).sum::<f64>() / 10.0;
    assert!(
        first > 5.5,
        "initial loss {first} should be near ln(512) = 6.24"
    );
    let run_dir = dir.path().join("falls");
    let unigram = unigram_entropy(&run_dir.join("data"));
    assert!(
        last < unigram - 0.3,
        "loss {last:.3} should fall well below the unigram entropy {unigram:.3} (from {first:.3})"
    );
    assert!(steps
        .iter()
        .all(|s| s.tokens_per_s > 0.0 && s.grad_norm > 0.0 && s.lr > 0.0));
    assert_eq!(steps[299].tokens, 300 * 4 * 32);
    let evals: Vec<f64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Eval { val_loss, .. } => Some(*val_loss),
            _ => None,
        })
        .collect();
    assert_eq!(evals.len(), 30);
    // With every window visited once per epoch in a shuffled order (not one play after the
    // other) 300 steps bring val loss down by ~1.0 (5.66 -> 4.68 measured); 0.75 leaves noise room.
    assert!(
        evals[29] < evals[0] - 0.75,
        "val loss {} -> {}",
        evals[0],
        evals[29]
    );
    assert!(matches!(
        events.last(),
        Some(Event::Finished {
            reason: FinishReason::MaxSteps,
            step: 300,
            ..
        })
    ));

    let metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines
        .iter()
        .all(|l| l.get("event").is_some() && l.get("step").is_some() && l.get("time").is_some()));
    let step_line = lines.iter().find(|l| l["event"] == "step").unwrap();
    for key in [
        "loss",
        "lr",
        "grad_norm",
        "tokens",
        "step_ms",
        "tokens_per_s",
    ] {
        assert!(
            step_line.get(key).is_some(),
            "step line lacks {key}: {step_line}"
        );
    }
    assert!(lines
        .iter()
        .any(|l| l["event"] == "eval" && l.get("val_loss").is_some()));
    assert!(run_dir.join("run.toml").is_file());
    // The final checkpoint exists and is valid.
    let ckpts = llite_tui::store::listing::list_checkpoints(&run_dir);
    assert_eq!(ckpts.len(), 1);
    assert!(ckpts[0].error.is_none(), "{:?}", ckpts[0].error);
    assert_eq!(ckpts[0].step, 300);
}

#[test]
fn pause_resume_and_stop_are_obeyed_between_steps() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 200_000);
    let cfg = tiny_config(&corpus, 1_000_000);
    let link = spawn(request(cfg, dir.path(), "pause", StartFrom::Fresh));
    let mut last_step = 0;
    while last_step < 3 {
        if let Event::Step(s) = next_event(&link, 120) {
            last_step = s.step;
        }
    }
    let sent = Instant::now();
    link.commands.send(Command::Pause).unwrap();
    let paused_at = loop {
        match next_event(&link, 30) {
            Event::Step(s) => last_step = s.step,
            Event::Paused { step } => break step,
            _ => {}
        }
    };
    let latency = sent.elapsed();
    eprintln!("pause latency (command to Paused event): {latency:?}");
    assert_eq!(
        paused_at, last_step,
        "Paused must name the last completed step"
    );
    assert!(latency < Duration::from_secs(10));
    // No step events while paused.
    let quiet_until = Instant::now() + Duration::from_millis(600);
    while Instant::now() < quiet_until {
        if let Ok(e) = link.events.recv_timeout(Duration::from_millis(50)) {
            assert!(!matches!(e, Event::Step(_)), "step while paused: {e:?}");
        }
    }
    link.commands.send(Command::Resume).unwrap();
    assert!(matches!(next_event(&link, 30), Event::Resumed { step } if step == paused_at));
    loop {
        if let Event::Step(s) = next_event(&link, 60) {
            assert_eq!(s.step, paused_at + 1);
            break;
        }
    }
    link.commands
        .send(Command::Stop {
            save: true,
            reason: FinishReason::Stopped,
        })
        .unwrap();
    let mut saved = false;
    loop {
        match next_event(&link, 60) {
            Event::CheckpointSaved { .. } => saved = true,
            Event::Finished { reason, .. } => {
                assert_eq!(reason, FinishReason::Stopped);
                break;
            }
            _ => {}
        }
    }
    assert!(saved, "Stop {{ save: true }} writes a checkpoint");
    link.join.unwrap().join().unwrap();
}

#[test]
fn sampling_during_training_does_not_change_the_losses() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 200_000);
    let cfg = tiny_config(&corpus, 30);
    let plain = steps(&run_to_end(spawn(request(
        cfg.clone(),
        dir.path(),
        "plain",
        StartFrom::Fresh,
    ))));

    let link = spawn(request(cfg, dir.path(), "sampled", StartFrom::Fresh));
    let mut events = Vec::new();
    let mut asked = 0;
    let mut done = 0;
    loop {
        let e = next_event(&link, 120);
        if let Event::Step(s) = &e {
            if s.step % 5 == 0 {
                asked += 1;
                let params = SampleParams {
                    max_tokens: 8,
                    ..Default::default()
                };
                let _ = link.commands.send(Command::Sample {
                    id: asked,
                    prompt: "ROMEO:".into(),
                    params,
                });
            }
        }
        if let Event::SampleDone { text, .. } = &e {
            assert!(!text.starts_with("[sampling failed"), "{text}");
            done += 1;
        }
        let finished = matches!(e, Event::Finished { .. });
        events.push(e);
        if finished {
            break;
        }
    }
    assert!(asked >= 5);
    let _ = done;
    let sampled = steps(&events);
    let a: Vec<f64> = plain.iter().map(|s| s.loss).collect();
    let b: Vec<f64> = sampled.iter().map(|s| s.loss).collect();
    assert_eq!(a, b, "sampling changed the training trajectory");
}

#[test]
fn bad_input_is_a_one_line_error_event() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let cfg = tiny_config(&empty, 10);
    let link = spawn(request(cfg, dir.path(), "empty", StartFrom::Fresh));
    let e = next_event(&link, 60);
    match e {
        Event::Error { message, .. } => {
            assert!(message.contains("empty.txt"), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(matches!(
        next_event(&link, 10),
        Event::Finished {
            reason: FinishReason::Error,
            ..
        }
    ));
    if let Some(j) = link.join {
        j.join().unwrap();
    }
    // The failed start took its claim back: no half-made run blocks or litters the name.
    assert!(
        !dir.path().join("empty").exists(),
        "a failed start left its run directory"
    );

    let bin = dir.path().join("bin.txt");
    std::fs::write(&bin, [0x66, 0x6f, 0xff, 0xfe, 0x00]).unwrap();
    let link = spawn(request(
        tiny_config(&bin, 10),
        dir.path(),
        "bin",
        StartFrom::Fresh,
    ));
    match next_event(&link, 60) {
        Event::Error { message, .. } => assert!(message.contains("UTF-8"), "{message}"),
        other => panic!("expected an error, got {other:?}"),
    }

    let corpus = small_corpus(dir.path(), 100_000);
    let mut cfg = tiny_config(&corpus, 10);
    cfg.data.tokenizer = "gpt2".into();
    let link = spawn(request(cfg, dir.path(), "vocab", StartFrom::Fresh));
    match next_event(&link, 60) {
        Event::Error { message, .. } => assert!(message.contains("model.vocab_size"), "{message}"),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn non_finite_loss_stops_with_an_alert_and_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 100_000);
    let mut cfg = tiny_config(&corpus, 50);
    cfg.train.lr = 1e30;
    cfg.train.min_lr = 0.0;
    cfg.train.warmup_steps = 0;
    cfg.train.grad_clip = 0.0;
    cfg.checkpoint.every = 1;
    let link = spawn(request(cfg, dir.path(), "nan", StartFrom::Fresh));
    let mut alert = false;
    let message = loop {
        match next_event(&link, 60) {
            Event::Alert {
                kind: llite_tui::protocol::AlertKind::NonFiniteLoss,
                ..
            } => alert = true,
            Event::Error { message, .. } => break message,
            Event::Finished { .. } => panic!("finished without an error"),
            _ => {}
        }
    };
    assert!(alert, "a NonFiniteLoss alert precedes the error");
    assert!(
        message.contains("train.lr") && !message.contains('\n'),
        "{message}"
    );
    // Every checkpoint on disk is valid and none holds non-finite weights' step.
    for c in llite_tui::store::listing::list_checkpoints(&dir.path().join("nan")) {
        assert!(c.error.is_none(), "{c:?}");
    }
}
