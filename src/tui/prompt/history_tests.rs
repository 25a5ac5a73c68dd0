//! The prompt pane's history: bounded, scrolled a generation at a time (Ctrl-P / Ctrl-N) with
//! the pane showing it, and "again" (Ctrl-R) re-running the newest prompt.

use super::*;
use crate::protocol::{Command, Event};
use crate::tui::app::{Action, App};
use crate::tui::snapshot_tests::scripted_app;
use crate::tui::theme::Theme;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn entry(i: usize) -> SampleEntry {
    SampleEntry {
        step: i as u64,
        prompt: format!("P{i}:"),
        text: format!(" answer {i}"),
        tokens: 2,
        tokens_per_s: 10.0,
    }
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn prompt_focused() -> App {
    let mut app = scripted_app();
    app.on_key(KeyEvent::new(KeyCode::Char('g'), KeyModifiers::NONE));
    app
}

fn done(app: &mut App, id: u64, prompt: &str, text: &str) {
    app.on_event(Event::SampleDone {
        step: 50,
        id,
        prompt: prompt.into(),
        text: text.into(),
        tokens: 3,
        tokens_per_s: 30.0,
    });
}

fn render(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(60, 9)).unwrap();
    t.draw(|f| crate::tui::prompt::render(f, f.area(), app, &Theme::default()))
        .unwrap();
    t.backend().to_string()
}

#[test]
fn the_history_is_bounded_and_scrolls_one_generation_at_a_time() {
    let mut h = SampleHistory::default();
    for i in 0..MAX_SAMPLES + 5 {
        h.push(entry(i));
    }
    assert_eq!(h.len(), MAX_SAMPLES);
    assert_eq!(h.iter().next().unwrap().step, 5);
    h.scroll_back();
    h.scroll_back();
    assert_eq!(h.scroll(), 2);
    assert_eq!(h.visible().last().unwrap().step, MAX_SAMPLES as u64 + 2);
    for _ in 0..10 * MAX_SAMPLES {
        h.scroll_back();
    }
    // The oldest stays in view.
    assert_eq!(h.visible().count(), 1);
    h.scroll_forward();
    assert_eq!(h.visible().count(), 2);
    // A new generation is shown at once.
    h.push(entry(999));
    assert_eq!(h.scroll(), 0);
    assert_eq!(h.last_prompt(), Some("P999:"));
}

#[test]
fn ctrl_r_runs_the_newest_prompt_again_and_keeps_the_typed_line() {
    let mut app = prompt_focused();
    assert!(app.on_key(ctrl('r')).is_empty());
    assert_eq!(app.notice.as_deref(), Some("nothing to run again yet"));
    for c in "ROMEO:".chars() {
        app.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
    let first = app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    let Some(Action::Send(Command::Sample { id, .. })) = first.first() else {
        panic!("{first:?}");
    };
    done(&mut app, *id, "ROMEO:", " O, she doth teach");
    for c in "KING".chars() {
        app.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
    let again = app.on_key(ctrl('r'));
    match again.as_slice() {
        [Action::Send(Command::Sample {
            id: again_id,
            prompt,
            params,
        })] => {
            assert_eq!(prompt, "ROMEO:");
            assert_eq!(*params, app.prompt.params);
            assert!(again_id > id);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(app.prompt.input, "KING", "the line being typed is kept");
    // One at a time: while it streams, again does nothing.
    assert!(app.on_key(ctrl('r')).is_empty());
}

#[test]
fn ctrl_p_and_ctrl_n_scroll_the_pane_through_earlier_samples() {
    let mut app = prompt_focused();
    done(&mut app, 1, "ROMEO:", " the first answer");
    done(&mut app, 2, "JULIET:", " the second answer");
    done(&mut app, 3, "KING:", " the third answer");
    let newest = render(&app);
    assert!(newest.contains("KING: the third answer"), "{newest}");
    app.on_key(ctrl('p'));
    app.on_key(KeyEvent::new(KeyCode::Up, KeyModifiers::CONTROL));
    assert_eq!(app.prompt.history.scroll(), 2);
    let back = render(&app);
    // The cockpit's snapshots live together in src/tui/snapshots.
    insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true, snapshot_path => "../snapshots" }, {
        insta::assert_snapshot!("pane_prompt_scrolled_back", back);
    });
    assert!(back.contains("ROMEO: the first answer"), "{back}");
    assert!(!back.contains("KING:"), "{back}");
    assert!(back.contains("2 newer below"), "{back}");
    app.on_key(ctrl('n'));
    app.on_key(KeyEvent::new(KeyCode::Down, KeyModifiers::CONTROL));
    assert_eq!(app.prompt.history.scroll(), 0);
    assert!(render(&app).contains("KING: the third answer"));
}
