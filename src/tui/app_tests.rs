//! Unit tests for the pure App: keys to commands, event folding, and the chart math.

use super::app::{ema, mfu, scale_y, Action, App, Mode, Overlay, RunState};
use super::browser::{default_export_dir, BrowserPrompt};
use super::keys::READ_ONLY;
use super::snapshot_tests::{browser_app, scripted_app};
use crate::config::UiConfig;
use crate::protocol::{AlertKind, Command, Event, FinishReason, SampleParams, StartFrom};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::path::{Path, PathBuf};

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

fn running_app() -> App {
    let mut app = scripted_app();
    app.on_event(Event::Resumed { step: 50 });
    app
}

#[test]
fn pause_resume_toggle_follows_engine_events() {
    let mut app = running_app();
    assert_eq!(app.on_key(ch('p')), vec![Action::Send(Command::Pause)]);
    assert_eq!(
        app.state,
        RunState::Running,
        "state flips only on the Paused event"
    );
    app.on_event(Event::Paused { step: 50 });
    assert_eq!(app.on_key(ch(' ')), vec![Action::Send(Command::Resume)]);
    app.on_event(Event::Resumed { step: 50 });
    assert_eq!(app.state, RunState::Running);
}

#[test]
fn release_and_repeat_events_are_ignored() {
    let mut app = running_app();
    let mut k = ch('p');
    k.kind = KeyEventKind::Release;
    assert!(app.on_key(k).is_empty());
    k.kind = KeyEventKind::Repeat;
    assert!(app.on_key(k).is_empty());
}

#[test]
fn quit_asks_and_save_and_quit_waits_for_finish() {
    let mut app = running_app();
    assert!(app.on_key(ch('q')).is_empty());
    assert_eq!(app.overlay, Overlay::QuitConfirm);
    assert_eq!(
        app.on_key(ch('s')),
        vec![Action::Send(Command::Stop {
            save: true,
            reason: FinishReason::Stopped
        })]
    );
    assert!(
        !app.should_quit,
        "the final checkpoint is still being written"
    );
    let acts = app.on_event(Event::Finished {
        step: 50,
        reason: FinishReason::Stopped,
        failures: Default::default(),
    });
    assert!(acts.contains(&Action::Quit));
    assert!(app.should_quit);

    let mut app = running_app();
    app.on_key(ch('q'));
    assert!(app.on_key(key(KeyCode::Esc)).is_empty());
    assert_eq!(app.overlay, Overlay::None);
    app.on_key(ch('q'));
    let acts = app.on_key(ch('q'));
    assert_eq!(
        acts,
        vec![
            Action::Send(Command::Stop {
                save: false,
                reason: FinishReason::Stopped
            }),
            Action::Quit
        ]
    );
}

#[test]
fn ctrl_c_saves_then_quits_and_a_second_ctrl_c_quits_at_once() {
    let ctrl_c = || KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    let mut app = running_app();
    let acts = app.on_key(ctrl_c());
    assert_eq!(
        acts,
        vec![Action::Send(Command::Stop {
            save: true,
            reason: FinishReason::Interrupted
        })]
    );
    assert!(!app.should_quit, "waits for the final checkpoint");
    assert_eq!(
        app.notice.as_deref(),
        Some("saving…, Ctrl-C again to quit without saving")
    );
    let acts = app.on_event(Event::Finished {
        step: 50,
        reason: FinishReason::Interrupted,
        failures: Default::default(),
    });
    assert!(acts.contains(&Action::Quit) && app.should_quit);
    assert!(!app.abandon_save);

    let mut app = running_app();
    app.on_key(ctrl_c());
    assert_eq!(app.on_key(ctrl_c()), vec![Action::Quit]);
    assert!(
        app.should_quit && app.abandon_save,
        "second Ctrl-C: no waiting"
    );
}

#[test]
fn stop_signals_act_like_ctrl_c_and_ctrl_c_just_quits_watch_and_inspect() {
    let mut app = running_app();
    let acts = app.interrupt(FinishReason::Terminated);
    assert_eq!(
        acts,
        vec![Action::Send(Command::Stop {
            save: true,
            reason: FinishReason::Terminated
        })]
    );
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    let mut watch = App::new(Mode::Watch, &UiConfig::default(), SampleParams::default());
    assert_eq!(watch.on_key(ctrl_c), vec![Action::Quit]);
    assert!(watch.should_quit);
    let mut inspect = App::new(Mode::Inspect, &UiConfig::default(), SampleParams::default());
    assert_eq!(
        inspect.on_key(ctrl_c),
        vec![
            Action::Send(Command::Stop {
                save: false,
                reason: FinishReason::Interrupted
            }),
            Action::Quit
        ]
    );
}

#[test]
fn watch_mode_is_read_only() {
    let mut app = App::new(Mode::Watch, &UiConfig::default(), SampleParams::default());
    for k in ['p', 's'] {
        assert!(app.on_key(ch(k)).is_empty());
        assert_eq!(app.notice.as_deref(), Some(READ_ONLY));
    }
    assert_eq!(
        app.on_key(ch('q')),
        vec![Action::Quit],
        "nothing to save: quit at once"
    );
}

#[test]
fn prompt_sends_streams_and_cancels() {
    let mut app = running_app();
    app.on_key(ch('g'));
    for c in "hi p".chars() {
        assert!(
            app.on_key(ch(c)).is_empty(),
            "typing never triggers commands"
        );
    }
    app.on_key(key(KeyCode::Backspace));
    app.on_key(key(KeyCode::Backspace));
    app.on_key(key(KeyCode::Down)); // top-k
    app.on_key(key(KeyCode::PageUp));
    let mut params = SampleParams::default();
    params.top_k += 5;
    let acts = app.on_key(key(KeyCode::Enter));
    assert_eq!(
        acts,
        vec![Action::Send(Command::Sample {
            id: 1,
            prompt: "hi".into(),
            params
        })]
    );
    app.on_event(Event::SampleToken {
        step: 50,
        id: 1,
        text: " there".into(),
    });
    app.on_event(Event::SampleToken {
        step: 50,
        id: 99,
        text: "stale".into(),
    });
    assert_eq!(app.prompt.active.as_ref().unwrap().text, " there");
    app.on_event(Event::SampleDone {
        step: 50,
        id: 1,
        prompt: "hi".into(),
        text: " there".into(),
        tokens: 1,
        tokens_per_s: 10.0,
    });
    assert!(app.prompt.active.is_none());
    assert_eq!(app.prompt.history.len(), 1);

    for c in "again".chars() {
        app.on_key(ch(c));
    }
    app.on_key(key(KeyCode::Enter));
    assert_eq!(
        app.on_key(key(KeyCode::Esc)),
        vec![Action::Send(Command::CancelSample { id: 2 })]
    );
    assert!(app.prompt_open, "first Esc cancels, second closes");
    app.on_key(key(KeyCode::Esc));
    assert!(!app.prompt_open);
}

#[test]
fn alerts_auto_pause_only_when_configured() {
    let alert = || Event::Alert {
        step: 7,
        kind: AlertKind::LossSpike,
        detail: "z=6".into(),
    };
    let mut app = running_app();
    assert!(app.on_event(alert()).is_empty());
    app.auto_pause_on_spike = true;
    assert_eq!(app.on_event(alert()), vec![Action::Send(Command::Pause)]);
    for kind in [
        AlertKind::CheckpointFailed,
        AlertKind::MetricsWriteFailed,
        AlertKind::StepFailed,
        AlertKind::Notice,
    ] {
        let not_health = Event::Alert {
            step: 8,
            kind,
            detail: "disk full".into(),
        };
        assert!(app.on_event(not_health).is_empty(), "{kind:?} is no spike");
    }
    assert_eq!(app.unseen_alerts().len(), 7, "scripted run had one already");
    app.on_key(ch('x'));
    assert!(app.unseen_alerts().is_empty());
}

#[test]
fn engine_loss_is_an_error_unless_finished() {
    let mut app = running_app();
    app.on_engine_lost();
    assert_eq!(app.state, RunState::Error);
    assert_eq!(app.error.as_deref(), Some("engine stopped unexpectedly"));
    let mut app = running_app();
    app.on_event(Event::Finished {
        step: 50,
        reason: FinishReason::MaxSteps,
        failures: Default::default(),
    });
    app.on_engine_lost();
    assert_eq!(app.state, RunState::Finished(FinishReason::MaxSteps));
    assert!(app.error.is_none());
}

#[test]
fn browser_actions() {
    let mut app = browser_app(); // selected: the invalid one
    assert!(app.on_key(ch('r')).is_empty());
    assert!(app
        .notice
        .as_deref()
        .unwrap()
        .starts_with("invalid checkpoint"));
    app.on_key(ch('d'));
    let bad = PathBuf::from("/runs/old-run/checkpoints/step-00000900");
    assert_eq!(
        app.browser.prompt,
        Some(BrowserPrompt::ConfirmDelete(bad.clone()))
    );
    assert_eq!(app.on_key(ch('y')), vec![Action::Delete(bad)]);

    app.on_key(key(KeyCode::Up));
    let good = PathBuf::from("/runs/tiny-demo/checkpoints/step-00000040");
    app.on_key(ch('e'));
    let acts = app.on_key(key(KeyCode::Enter));
    let out = PathBuf::from("/runs/tiny-demo/export-step-40");
    assert_eq!(
        acts,
        vec![Action::Export {
            checkpoint: good.clone(),
            out
        }]
    );

    // `u` toggles the pin of the selected one (pinned in the fixture).
    assert_eq!(
        app.on_key(ch('u')),
        vec![Action::SetPinned {
            checkpoint: good.clone(),
            pinned: false
        }]
    );

    let dir = tempfile::tempdir().unwrap();
    let sft = dir.path().join("sft.jsonl");
    std::fs::write(&sft, "{\"instruction\": \"a\", \"output\": \"b\"}\n").unwrap();
    let typed = |app: &mut App, text: &str| {
        for c in text.chars() {
            app.on_key(ch(c));
        }
    };
    app.on_key(ch('f'));
    // A typo is refused before the running training is stopped; the prompt stays to fix it.
    let typo = dir.path().join("stf.jsonl").display().to_string();
    typed(&mut app, &typo);
    assert!(app.on_key(key(KeyCode::Enter)).is_empty());
    assert!(
        app.notice
            .as_deref()
            .unwrap()
            .contains("stf.jsonl: no such file"),
        "{:?}",
        app.notice
    );
    assert!(matches!(
        app.browser.prompt,
        Some(BrowserPrompt::FineTuneData { .. })
    ));
    assert!(app.engine_alive);
    for _ in typo.chars() {
        app.on_key(key(KeyCode::Backspace));
    }
    typed(&mut app, &sft.display().to_string());
    assert!(
        app.on_key(key(KeyCode::Enter)).is_empty(),
        "engine running: asks first"
    );
    let from = StartFrom::FineTune {
        checkpoint: good,
        data: Some(sft),
    };
    assert_eq!(
        app.browser.prompt,
        Some(BrowserPrompt::ConfirmSwitch(from.clone()))
    );
    assert_eq!(
        app.on_key(ch('s')),
        vec![Action::Launch {
            from,
            save_current: true
        }]
    );
    assert_eq!(app.overlay, Overlay::None);
}

#[test]
fn default_export_dir_sits_in_the_run() {
    let p = default_export_dir(Path::new("/r/run1/checkpoints/step-00000100"), 100);
    assert_eq!(p, PathBuf::from("/r/run1/export-step-100"));
}

#[test]
fn ema_is_bias_corrected_and_skips_non_finite() {
    assert_eq!(ema(&[1.0, 1.0, 1.0], 0.9), vec![1.0, 1.0, 1.0]);
    let e = ema(&[0.0, 10.0], 0.5);
    assert_eq!(e[0], 0.0);
    assert!((e[1] - 10.0 * 0.25 / 0.75 * 2.0).abs() < 1e-12, "{e:?}"); // 2.5/0.375... = 6.67
    assert_eq!(ema(&[3.0, 5.0], 0.0), vec![3.0, 5.0]);
    let e = ema(&[2.0, f64::NAN, 2.0], 0.9);
    assert_eq!(e, vec![2.0, 2.0, 2.0]);
}

#[test]
fn log_scale_drops_non_positive_values() {
    assert_eq!(scale_y(100.0, true), Some(2.0));
    assert_eq!(scale_y(0.0, true), None);
    assert_eq!(scale_y(-1.0, true), None);
    assert_eq!(scale_y(f64::INFINITY, false), None);
    assert_eq!(scale_y(-1.0, false), Some(-1.0));
    let mut app = scripted_app();
    app.run_view.log_scale = true;
    app.on_event(Event::Step(crate::protocol::StepStats {
        step: 51,
        loss: 0.0,
        lr: 1e-3,
        grad_norm: 1.0,
        tokens: 51 * 1024,
        step_ms: 100.0,
        tokens_per_s: 10240.0,
        peers: 1,
        peer_step_ms: Vec::new(),
        allreduce_ms: 0.0,
    }));
    let s = super::run_view::loss::series(&app, 1000);
    assert_eq!(s.raw.len(), 50, "the zero loss is not plotted");
    assert!(s.y[0].is_finite() && s.y[1].is_finite());
}

#[test]
fn mfu_needs_a_peak() {
    assert_eq!(mfu(1000.0, 6e9, 0.0), None);
    let m = mfu(1000.0, 6e9, 100.0).unwrap();
    assert!((m - 0.06).abs() < 1e-12);
}

#[test]
fn thinning_keeps_the_last_point() {
    let pts: Vec<(f64, f64)> = (0..1001).map(|i| (i as f64, i as f64)).collect();
    let t = super::run_view::loss::thin(pts, 100);
    assert!(t.len() <= 102);
    assert_eq!(t.last(), Some(&(1000.0, 1000.0)));
}

#[test]
fn watch_mode_flags_a_silent_writer() {
    let mut app = running_app();
    app.mode = Mode::Watch;
    app.last_write_unix = 1_000;
    app.tick(1_030);
    assert_eq!(app.watch_silence_secs(), None, "30 s of silence is normal");
    app.tick(1_300);
    assert_eq!(app.watch_silence_secs(), Some(300));
    app.on_event(Event::Paused { step: 50 });
    assert_eq!(
        app.watch_silence_secs(),
        None,
        "a paused run is expected to be quiet"
    );
    app.mode = Mode::Live;
    app.on_event(Event::Resumed { step: 50 });
    assert_eq!(
        app.watch_silence_secs(),
        None,
        "only watch mode follows a writer"
    );
}
