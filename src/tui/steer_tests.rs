//! The cockpit's steering component: the control pane (type, step, confirm, refuse) and the
//! rewind dialog from the checkpoint browser, as key sequences and snapshots.

use super::app::{Action, App, Overlay};
use super::panes;
use super::snapshot_tests::scripted_app;
use super::theme::Theme;
use crate::config::RunConfig;
use crate::controls::{ControlSetting, ControlValue};
use crate::protocol::{CheckpointSummary, Command, Event};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::path::PathBuf;

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn press(app: &mut App, codes: &[KeyCode]) -> Vec<Action> {
    codes.iter().flat_map(|c| app.on_key(key(*c))).collect()
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
}

fn steering_app() -> App {
    let mut app = scripted_app();
    app.on_event(Event::Resumed { step: 50 });
    app.controls.config = Some(RunConfig::default());
    app
}

fn render(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    t.draw(|f| panes::draw(f, app, &Theme::default())).unwrap();
    t.backend().to_string()
}

macro_rules! snap {
    ($name:expr, $value:expr) => {
        insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

#[test]
fn control_pane_types_confirms_and_shows_history() {
    let mut app = steering_app();
    assert!(press(&mut app, &[KeyCode::Char('k')]).is_empty());
    assert_eq!(app.overlay, Overlay::Controls);
    // Enter edits the selected key (train.lr), pre-filled with its value.
    press(&mut app, &[KeyCode::Enter]);
    assert_eq!(app.controls.input.as_deref(), Some("0.001"));
    press(&mut app, &[KeyCode::Backspace; 8]);
    typed(&mut app, "5e-4");
    assert!(press(&mut app, &[KeyCode::Enter]).is_empty(), "asks first");
    snap!("steer_controls_confirm", render(&app));
    let sent = press(&mut app, &[KeyCode::Char('y')]);
    assert_eq!(
        sent,
        vec![Action::Send(Command::Set {
            key: "train.lr".into(),
            value: "5e-4".into()
        })]
    );
    app.on_event(Event::ControlChanged {
        step: 50,
        change: ControlSetting {
            key: "train.lr".into(),
            old: ControlValue::Real(1e-3),
            new: ControlValue::Real(5e-4),
        },
    });
    assert_eq!(app.controls.value(0), Some(ControlValue::Real(5e-4)));
    snap!("steer_controls_history", render(&app));

    // A bad value is refused with --set's words and nothing is sent; n cancels a proposal.
    press(&mut app, &[KeyCode::Down, KeyCode::Down, KeyCode::Enter]);
    press(&mut app, &[KeyCode::Backspace; 8]);
    typed(&mut app, "-1");
    assert!(press(&mut app, &[KeyCode::Enter]).is_empty());
    let error = app.controls.error.clone().unwrap_or_default();
    assert!(error.contains("train.grad_clip"), "{error}");
    assert!(app.controls.confirm.is_none());
    press(&mut app, &[KeyCode::Char('+')]);
    assert!(app.controls.confirm.is_some(), "+ proposes double");
    assert!(press(&mut app, &[KeyCode::Char('n'), KeyCode::Esc]).is_empty());
    assert_eq!(app.overlay, Overlay::None);
}

#[test]
fn rewind_from_the_browser_defaults_the_skip_to_the_spike_and_asks_first() {
    let mut app = steering_app();
    let path = "/runs/tiny-demo/checkpoints/step-00000030";
    app.set_checkpoints(vec![CheckpointSummary {
        path: path.into(),
        run_name: "tiny-demo".into(),
        step: 30,
        tokens: 30 * 1024,
        val_loss: None,
        val_step: None,
        size_bytes: 1 << 20,
        written_unix: super::snapshot_tests::NOW,
        error: None,
        pinned: false,
    }]);
    press(&mut app, &[KeyCode::Char('c'), KeyCode::Char('b')]);
    assert_eq!(app.overlay, Overlay::Rewind);
    // The scripted run's grad explosion at step 37: skip the 7 steps that led to it.
    assert_eq!(app.rewind.as_ref().map(|r| r.skip), Some(7));
    press(&mut app, &[KeyCode::Up, KeyCode::Up, KeyCode::Down]);
    snap!("steer_rewind", render(&app));
    let sent = press(&mut app, &[KeyCode::Char('y')]);
    assert_eq!(
        sent,
        vec![Action::Send(Command::Rewind {
            checkpoint: PathBuf::from(path),
            skip_batches: 8
        })]
    );
    // The branch's events keep the curve up to the checkpoint.
    app.on_event(Event::Rewound {
        step: 30,
        from_step: 50,
        checkpoint: path.into(),
        skip_batches: 8,
        run_dir: "/runs/tiny-demo-branch-30".into(),
    });
    assert_eq!(app.run_view.last_step(), Some(30));
    assert_eq!(
        app.info.as_ref().map(|i| i.run_dir.as_str()),
        Some("/runs/tiny-demo-branch-30")
    );
}

#[test]
fn r_on_a_banner_without_checkpoint_before_the_spike_says_so() {
    let mut app = steering_app();
    assert!(press(&mut app, &[KeyCode::Char('r')]).is_empty());
    assert_eq!(app.overlay, Overlay::None);
    let notice = app.notice.clone().unwrap_or_default();
    assert!(notice.contains("no checkpoint before step 37"), "{notice}");
}
