//! The runtime's one `UiEvent` channel: a flood of engine events does not starve keys,
//! events of a replaced engine are told apart by generation, and dropping the runtime ends
//! its producer threads.

use super::app::{Action, App, Mode, Overlay};
use super::producers::Producers;
use super::runtime::Runtime;
use super::ui_event::UiEvent;
use crate::protocol::{Command, EngineLauncher, EngineLink, Event, SampleParams, StartFrom};
use crate::protocol::{FinishReason, StepStats};
use crossterm::event::{KeyCode, KeyEvent};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Hands out prepared engine links in order.
struct Links(Mutex<Vec<EngineLink>>);

impl EngineLauncher for Links {
    fn launch(&self, _: StartFrom) -> anyhow::Result<EngineLink> {
        let mut links = self.0.lock().unwrap();
        anyhow::ensure!(!links.is_empty(), "no more engines");
        Ok(links.remove(0))
    }

    fn export_hf(&self, _: &Path, _: &Path) -> anyhow::Result<()> {
        anyhow::bail!("not in this test")
    }
}

/// A fake engine: the test's ends of its channels.
struct FakeEngine {
    events: Sender<Event>,
    commands: Receiver<Command>,
}

fn fake_engine() -> (FakeEngine, EngineLink) {
    let (ev_tx, ev_rx) = channel();
    let (cmd_tx, cmd_rx) = channel();
    let link = EngineLink {
        commands: cmd_tx,
        events: ev_rx,
        join: None,
    };
    (
        FakeEngine {
            events: ev_tx,
            commands: cmd_rx,
        },
        link,
    )
}

fn step(step: u64) -> Event {
    Event::Step(StepStats {
        step,
        loss: 3.0,
        lr: 1e-3,
        grad_norm: 1.0,
        tokens: step * 64,
        step_ms: 10.0,
        tokens_per_s: 6400.0,
        peers: 1,
        peer_step_ms: vec![],
        allreduce_ms: 0.0,
    })
}

fn runtime(runs: &Path, links: Vec<EngineLink>, producers: Producers) -> Runtime {
    let opts = super::CockpitOptions {
        ui: Default::default(),
        runs_dir: runs.into(),
        themes_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("themes"),
        sample_defaults: SampleParams::default(),
        side_sampler: None,
    };
    let app = App::new(Mode::Live, &Default::default(), SampleParams::default());
    Runtime::with_producers(app, &opts, producers)
        .with_engine(Box::new(Links(Mutex::new(links))), StartFrom::Fresh)
}

fn last_step(app: &App) -> u64 {
    app.run_view.steps.last().map_or(0, |s| s.step)
}

#[test]
fn a_flood_of_engine_events_does_not_starve_keys() {
    const CAP: usize = 1_000;
    const FLOOD: u64 = 50_000;
    let tmp = tempfile::tempdir().unwrap();
    let (engine, link) = fake_engine();
    for s in 1..=FLOOD {
        engine.events.send(step(s)).unwrap();
    }
    let mut rt = runtime(tmp.path(), vec![link], Producers::with_flood_cap(CAP));
    rt.pump();
    // Time for the forwarder to queue all it may: without metering, the whole flood.
    std::thread::sleep(Duration::from_millis(300));
    let before = last_step(&rt.app);
    assert!(before < FLOOD, "the flood is still going");
    assert!(rt
        .feed()
        .send(UiEvent::Key(KeyEvent::from(KeyCode::Char('?')))));
    let deadline = Instant::now() + Duration::from_secs(60);
    while rt.app.overlay != Overlay::Help {
        assert!(Instant::now() < deadline, "the key was never handled");
        rt.pump();
    }
    let at_key = last_step(&rt.app);
    assert!(
        at_key <= before + 3 * CAP as u64,
        "the key waited behind {} engine events",
        at_key - before
    );
    // Nothing is lost or reordered: the rest of the flood follows the key.
    while last_step(&rt.app) < FLOOD {
        assert!(Instant::now() < deadline, "the flood never ended");
        rt.pump();
    }
    let steps: Vec<u64> = rt.app.run_view.steps.iter().map(|s| s.step).collect();
    assert_eq!(steps, (1..=FLOOD).collect::<Vec<_>>());
}

#[test]
fn a_replaced_engine_is_told_apart_by_generation() {
    let tmp = tempfile::tempdir().unwrap();
    let (old, old_link) = fake_engine();
    let (new, new_link) = fake_engine();
    let mut rt = runtime(tmp.path(), vec![old_link, new_link], Producers::new());
    old.events.send(step(1)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while last_step(&rt.app) != 1 {
        assert!(
            Instant::now() < deadline,
            "the first engine's step never came"
        );
        rt.pump();
    }
    rt.perform(vec![Action::Launch {
        from: StartFrom::Fresh,
        save_current: true,
    }]);
    assert!(matches!(
        old.commands.try_recv(),
        Ok(Command::Stop {
            save: true,
            reason: FinishReason::Stopped
        })
    ));
    // The retiring engine's steps are not the run's; its final save is reported.
    old.events.send(step(2)).unwrap();
    old.events
        .send(Event::CheckpointSaved {
            step: 2,
            path: "ckpt-2".into(),
        })
        .unwrap();
    while rt.app.notice.as_deref() != Some("checkpoint saved: ckpt-2 (step 2)") {
        assert!(Instant::now() < deadline, "{:?}", rt.app.notice);
        rt.pump();
    }
    assert_eq!(last_step(&rt.app), 1);
    // Its channel closing launches the next engine, whose events are folded.
    drop(old);
    new.events.send(step(5)).unwrap();
    while last_step(&rt.app) != 5 {
        assert!(
            Instant::now() < deadline,
            "the new engine's step never came"
        );
        rt.pump();
    }
    assert!(rt.app.engine_alive);
}

#[test]
fn dropping_the_runtime_ends_its_producer_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let (engine, link) = fake_engine();
    // The forwarder is left waiting for room while nobody pumps.
    for s in 1..=100 {
        engine.events.send(step(s)).unwrap();
    }
    let rt = runtime(tmp.path(), vec![link], Producers::with_flood_cap(10)).with_tail(tmp.path());
    std::thread::sleep(Duration::from_millis(200));
    let (done_tx, done_rx) = channel();
    std::thread::spawn(move || {
        drop(rt);
        let _ = done_tx.send(());
    });
    assert!(
        done_rx.recv_timeout(Duration::from_secs(5)).is_ok(),
        "dropping the runtime hung"
    );
    // The forwarder owned the engine's receiver: it is gone with its thread.
    assert!(engine.events.send(step(101)).is_err());
}
