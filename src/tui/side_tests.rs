//! The browser's `i` on the side engine: keys to side commands, event folding kept apart from
//! live-weight samples, and the prompt pane drawn for a side sample.

use super::app::{Action, App, Mode, Overlay, Pane};
use super::snapshot_tests::browser_app;
use super::theme::Theme;
use crate::protocol::{Command, Event, SampleParams, SideCommand, SideEvent, SideRequest};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::path::PathBuf;

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn typed(app: &mut App, text: &str) -> Vec<Action> {
    let mut out = vec![];
    for c in text.chars() {
        out.extend(app.on_key(key(KeyCode::Char(c))));
    }
    out
}

const GOOD: &str = "/runs/tiny-demo/checkpoints/step-00000040";

/// The browser on the valid checkpoint, `i` pressed.
fn side_app(mode: Mode) -> App {
    let mut app = browser_app();
    app.mode = mode;
    app.browser.selected = 0;
    assert!(
        app.on_key(key(KeyCode::Char('i'))).is_empty(),
        "nothing launched or stopped"
    );
    app
}

#[test]
fn i_samples_on_the_side_without_stopping_the_run() {
    let mut app = side_app(Mode::Live);
    assert_eq!(app.overlay, Overlay::None);
    assert!(
        app.engine_alive && app.browser.prompt.is_none(),
        "no switch asked"
    );
    assert_eq!((app.prompt_open, app.focus), (true, Pane::Prompt));
    assert!(typed(&mut app, "Hi").is_empty());
    let sent = app.on_key(key(KeyCode::Enter));
    assert_eq!(
        sent,
        vec![Action::Side(SideCommand::Sample(SideRequest {
            id: 1,
            checkpoint: PathBuf::from(GOOD),
            prompt: "Hi".into(),
            params: app.prompt.params.clone(),
        }))]
    );
    // Busy: Enter does nothing until it ends; Esc cancels it.
    typed(&mut app, "again");
    assert!(app.on_key(key(KeyCode::Enter)).is_empty());
    assert_eq!(
        app.on_key(key(KeyCode::Esc)),
        vec![Action::Side(SideCommand::Cancel { id: 1 })]
    );
    app.on_side_event(SideEvent::Started {
        id: 1,
        checkpoint: GOOD.into(),
        step: 40,
        load_ms: 12.0,
        cached: false,
    });
    app.on_side_event(SideEvent::Token {
        id: 1,
        text: " there".into(),
    });
    // A live-weight sample's tokens never land in the side output, nor the reverse.
    app.on_event(Event::SampleToken {
        step: 50,
        id: 1,
        text: "LIVE".into(),
    });
    assert_eq!(app.side.active.as_ref().unwrap().text, " there");
    app.on_side_event(SideEvent::Done {
        id: 1,
        step: 40,
        prompt: "Hi".into(),
        text: " there".into(),
        tokens: 1,
        tokens_per_s: 50.0,
        cancelled: true,
    });
    assert!(app.side.active.is_none() && app.prompt.history.is_empty());
    assert_eq!(app.side.history[0].note, "cancelled");
    // Esc with nothing running: back to the live weights, where Enter samples the engine.
    assert!(app.on_key(key(KeyCode::Esc)).is_empty());
    assert!(app.side.target.is_none());
    assert!(matches!(
        app.on_key(key(KeyCode::Enter))[..],
        [Action::Send(Command::Sample { .. })]
    ));
}

#[test]
fn watch_mode_samples_checkpoints_on_the_side() {
    let mut app = side_app(Mode::Watch);
    typed(&mut app, "x");
    assert!(matches!(
        app.on_key(key(KeyCode::Enter))[..],
        [Action::Side(SideCommand::Sample(_))]
    ));
    app.on_side_event(SideEvent::Failed {
        id: 1,
        message: "boom".into(),
    });
    assert!(app.side.active.is_none());
    assert!(app.notice.as_deref().unwrap().contains("boom"));
}

#[test]
fn prompt_pane_shows_the_side_source_and_output() {
    let mut app = side_app(Mode::Live);
    app.prompt.params = SampleParams::default();
    typed(&mut app, "To be");
    app.on_key(key(KeyCode::Enter));
    app.on_side_event(SideEvent::Started {
        id: 1,
        checkpoint: GOOD.into(),
        step: 40,
        load_ms: 5.0,
        cached: false,
    });
    app.on_side_event(SideEvent::Token {
        id: 1,
        text: ", or not".into(),
    });
    let mut t = Terminal::new(TestBackend::new(70, 8)).unwrap();
    t.draw(|f| super::prompt::render(f, f.area(), &app, &Theme::default()))
        .unwrap();
    insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!("pane_prompt_side", t.backend().to_string());
    });
}
