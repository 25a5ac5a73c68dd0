//! The side engine: a checkpoint sampled while training keeps stepping, equal to `llite-tui
//! sample` of that checkpoint; one side sample at a time, cancellable, model dropped when idle;
//! and the cockpit path (browser `i` in `watch`, which has no engine).

mod common;

use common::{next_event, request, run_to_end, run_within, send_stop, small_corpus, tiny_config};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use llite_tui::protocol::{
    Command, EngineLink, Event, SampleParams, SideCommand, SideEvent, SideLink, SideRequest,
    StartFrom,
};
use llite_tui::tui::app::{App, Mode};
use llite_tui::tui::runtime::Runtime;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The newest step the engine reported so far (drains its channel without blocking).
fn drain_steps(link: &EngineLink, last: &mut u64) {
    while let Ok(e) = link.events.try_recv() {
        if let Event::Error { message, .. } = &e {
            panic!("engine error: {message}");
        }
        if let Event::Step(s) = e {
            *last = s.step;
        }
    }
}

fn next_side(side: &SideLink) -> SideEvent {
    side.events
        .recv_timeout(Duration::from_secs(120))
        .expect("side engine sent no event in time")
}

/// What one side generation produced, with the training steps seen while it ran.
struct SideRun {
    text: String,
    streamed: String,
    cancelled: bool,
    tokens: u64,
    steps_during: u64,
}

/// Run one side request to its end while the training engine keeps going.
fn side_sample(side: &SideLink, engine: &EngineLink, req: SideRequest) -> SideRun {
    let id = req.id;
    side.commands.send(SideCommand::Sample(req)).unwrap();
    let (mut last, mut at_start, mut streamed) = (0, None, String::new());
    loop {
        drain_steps(engine, &mut last);
        let Ok(ev) = side.events.recv_timeout(Duration::from_millis(5)) else {
            continue;
        };
        match ev {
            SideEvent::Started { id: i, .. } if i == id => at_start = Some(last),
            SideEvent::Token { id: i, text } if i == id => streamed.push_str(&text),
            SideEvent::Done {
                id: i,
                text,
                tokens,
                cancelled,
                ..
            } if i == id => {
                // Steps the engine finished while this generation ran (events may lag a
                // little behind the engine, never ahead of it).
                std::thread::sleep(Duration::from_millis(50));
                drain_steps(engine, &mut last);
                let start = at_start.expect("Started comes before Done");
                return SideRun {
                    text,
                    streamed,
                    cancelled,
                    tokens,
                    steps_during: last - start,
                };
            }
            SideEvent::Failed { message, .. } => panic!("side sample failed: {message}"),
            _ => {}
        }
    }
}

/// `llite-tui sample` of `ckpt` with the same knobs; stdout is the prompt then the text.
fn cli_sample(ckpt: &Path, prompt: &str, p: &SampleParams) -> String {
    let args = [
        "sample".to_string(),
        "--checkpoint".into(),
        ckpt.display().to_string(),
        "--prompt".into(),
        prompt.into(),
        "--temperature".into(),
        p.temperature.to_string(),
        "--top-k".into(),
        p.top_k.to_string(),
        "--top-p".into(),
        p.top_p.to_string(),
        "--max-tokens".into(),
        p.max_tokens.to_string(),
        "--seed".into(),
        p.seed.to_string(),
    ];
    let out = run_within(&args, 120);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let stdout = out.stdout;
    let body = stdout
        .strip_prefix(prompt)
        .expect("sample echoes the prompt");
    body.strip_suffix('\n').unwrap_or(body).to_string()
}

/// Train until a checkpoint is saved on demand; the engine keeps training afterwards.
fn engine_with_checkpoint(dir: &Path) -> (EngineLink, PathBuf) {
    let corpus = small_corpus(dir, 300_000);
    let mut cfg = tiny_config(&corpus, 1_000_000);
    // Room for a generation long enough to span several training steps.
    cfg.model.max_seq_len = 256;
    let req = request(cfg, &dir.join("runs"), "side", StartFrom::Fresh);
    let link = llite_tui::train::engine::spawn(req);
    loop {
        match next_event(&link, 120) {
            Event::Started { info, .. } => {
                // MFU needs no hand-set peak on a CPU: the engine measured its GEMM.
                let peak = info
                    .measured_peak_tflops
                    .expect("a CPU run measures its peak");
                assert!(peak > 1e-4 && peak < 100.0, "{peak} TFLOP/s");
            }
            Event::Step(s) if s.step >= 3 => break,
            _ => {}
        }
    }
    link.commands.send(Command::SaveCheckpoint).unwrap();
    let ckpt = loop {
        match next_event(&link, 120) {
            Event::CheckpointSaved { path, .. } => break PathBuf::from(path),
            Event::Error { message, .. } => panic!("engine error: {message}"),
            _ => {}
        }
    };
    (link, ckpt)
}

#[test]
fn side_sample_runs_while_training_steps_and_equals_the_sample_command() {
    let tmp = tempfile::tempdir().unwrap();
    let (engine, ckpt) = engine_with_checkpoint(tmp.path());
    let side = llite_tui::train::side::spawn(Duration::from_millis(400));
    let prompt = "ROMEO:";
    let greedy = SampleParams {
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
        max_tokens: 200,
        seed: 7,
    };
    let run = side_sample(
        &side,
        &engine,
        SideRequest {
            id: 1,
            checkpoint: ckpt.clone(),
            prompt: prompt.into(),
            params: greedy.clone(),
        },
    );
    assert!(!run.cancelled);
    assert!(run.tokens > 0, "nothing generated");
    assert_eq!(run.streamed, run.text, "streamed pieces add up to the text");
    assert!(
        run.steps_during >= 1,
        "training did not step while the side sample ran"
    );
    assert_eq!(run.text, cli_sample(&ckpt, prompt, &greedy));

    let tempered = SampleParams {
        temperature: 0.9,
        top_k: 20,
        top_p: 0.9,
        max_tokens: 40,
        seed: 11,
    };
    let run = side_sample(
        &side,
        &engine,
        SideRequest {
            id: 2,
            checkpoint: ckpt.clone(),
            prompt: prompt.into(),
            params: tempered.clone(),
        },
    );
    assert_eq!(run.text, cli_sample(&ckpt, prompt, &tempered));

    // One at a time: a second request while one runs is refused, and cancel stops the first.
    let long = SideRequest {
        id: 3,
        checkpoint: ckpt.clone(),
        prompt: prompt.into(),
        params: SampleParams {
            max_tokens: 240,
            ..greedy.clone()
        },
    };
    side.commands
        .send(SideCommand::Sample(long.clone()))
        .unwrap();
    side.commands
        .send(SideCommand::Sample(SideRequest { id: 4, ..long }))
        .unwrap();
    side.commands.send(SideCommand::Cancel { id: 3 }).unwrap();
    let (mut refused, mut done) = (false, None);
    while done.is_none() {
        match next_side(&side) {
            SideEvent::Failed { id: 4, message } => {
                assert!(message.contains("still running"), "{message}");
                refused = true;
            }
            SideEvent::Done {
                id: 3,
                cancelled,
                tokens,
                ..
            } => done = Some((cancelled, tokens)),
            SideEvent::Failed { message, .. } => panic!("{message}"),
            _ => {}
        }
    }
    assert!(refused, "a second side sample was not refused");
    let (cancelled, tokens) = done.unwrap();
    assert!(
        cancelled && tokens < 240,
        "cancel did not stop it ({tokens} tokens)"
    );

    // Bounded memory: the model is dropped once idle.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "the side model was never dropped"
        );
        if let SideEvent::Unloaded { checkpoint } = next_side(&side) {
            assert_eq!(checkpoint, ckpt.display().to_string());
            break;
        }
    }
    // A refused load names its path and leaves the engine usable.
    let missing = tmp.path().join("no-such-checkpoint");
    side.commands
        .send(SideCommand::Sample(SideRequest {
            id: 5,
            checkpoint: missing.clone(),
            prompt: prompt.into(),
            params: greedy,
        }))
        .unwrap();
    match next_side(&side) {
        SideEvent::Failed { id: 5, message } => {
            assert!(
                message.contains(&missing.display().to_string()),
                "{message}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let SideLink { commands, join, .. } = side;
    drop(commands);
    join.unwrap().join().unwrap();

    send_stop(&engine, false);
    let events = run_to_end(engine);
    assert!(matches!(events.last(), Some(Event::Finished { .. })));
}

fn press(rt: &mut Runtime, code: KeyCode) {
    let actions = rt.app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
    rt.perform(actions);
}

fn pump_until(rt: &mut Runtime, what: &str, done: impl Fn(&App) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(&rt.app) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        rt.pump();
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `watch` has no engine: the browser's `i` samples the watched run's checkpoint in a side
/// engine of the watching process, through the cockpit's own keys and loop.
#[test]
fn watch_samples_a_checkpoint_through_the_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let (engine, ckpt) = engine_with_checkpoint(tmp.path());
    let runs = tmp.path().join("runs");
    let opts = llite_tui::tui::CockpitOptions {
        ui: Default::default(),
        runs_dir: runs.clone(),
        themes_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("themes"),
        sample_defaults: SampleParams::default(),
        side_sampler: Some(llite_tui::train::side::spawn),
    };
    let params = SampleParams {
        temperature: 0.0,
        top_k: 0,
        top_p: 1.0,
        max_tokens: 30,
        seed: 3,
    };
    let mut app = App::new(Mode::Watch, &Default::default(), params.clone());
    app.now_unix = 1;
    let mut rt = Runtime::new(app, &opts).with_tail(&runs.join("side"));
    press(&mut rt, KeyCode::Char('c'));
    let want = ckpt.display().to_string();
    pump_until(&mut rt, "the checkpoint in the browser", |a| {
        a.browser.entries.iter().any(|c| c.path == want)
    });
    rt.app.browser.selected = rt
        .app
        .browser
        .entries
        .iter()
        .position(|c| c.path == want)
        .unwrap();
    press(&mut rt, KeyCode::Char('i'));
    for c in "ROMEO:".chars() {
        press(&mut rt, KeyCode::Char(c));
    }
    press(&mut rt, KeyCode::Enter);
    assert!(rt.app.side.active.is_some(), "{:?}", rt.app.notice);
    pump_until(&mut rt, "the side sample", |a| !a.side.history.is_empty());
    let got = &rt.app.side.history[0];
    assert_eq!(got.note, "");
    assert_eq!(got.text, cli_sample(&ckpt, "ROMEO:", &params));
    assert!(
        rt.app.prompt.history.is_empty(),
        "kept apart from live samples"
    );
    drop(rt.shutdown());

    send_stop(&engine, false);
    run_to_end(engine);
}
