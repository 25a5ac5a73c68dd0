//! The cockpit's small things (issue 13 item 9): alert kinds in words, info and warning
//! notices told apart and never silently cut, the footer's pause key saying what it does,
//! smoothing returning to its default, a checkpoint's val loss labelled with its step.

use super::app::{App, Overlay, RunState};
use super::panes;
use super::panes::status::fit_notice;
use super::run_view::smoothing_step;
use super::snapshot_tests::scripted_app;
use super::theme::Theme;
use crate::protocol::{CheckpointSummary, Event};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;

fn render(app: &App, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| panes::draw(f, app, &Theme::default())).unwrap();
    t.backend().buffer().clone()
}

fn row(buf: &Buffer, y: u16) -> String {
    (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect()
}

fn text(buf: &Buffer) -> String {
    (0..buf.area.height)
        .map(|y| row(buf, y))
        .collect::<Vec<_>>()
        .join("\n")
}

fn press(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

#[test]
fn alert_banners_name_the_kind_in_words() {
    let app = scripted_app(); // holds a grad-norm alert at step 37
    let shown = text(&render(&app, 120, 40));
    assert!(
        shown.contains("alert at step 37: gradient explosion"),
        "{shown}"
    );
    assert!(!shown.contains("GradExplosion"), "{shown}");
}

#[test]
fn the_footer_offers_resume_while_paused() {
    let mut app = scripted_app();
    app.run_view.alerts_seen = app.run_view.alerts.len();
    app.notice = None; // the footer shows key hints when no notice is up
    app.state = RunState::Paused;
    let footer = row(&render(&app, 120, 40), 39);
    assert!(footer.contains("p resume"), "{footer}");
    app.state = RunState::Running;
    let footer = row(&render(&app, 120, 40), 39);
    assert!(footer.contains("p pause"), "{footer}");
}

/// Information in the text colour, refusals in the warning colour; a notice wider than the
/// footer ends in "… (? all)" and the help overlay shows it whole, wrapped.
#[test]
fn notices_are_styled_by_level_cut_visibly_and_logged_whole() {
    let theme = Theme::default();
    let mut app = scripted_app();
    app.notify("checkpoint saved: /runs/tiny-demo/checkpoints/step-00000050");
    let buf = render(&app, 80, 24);
    assert!(row(&buf, 23).contains("checkpoint saved"));
    assert_eq!(buf[(2, 23)].fg, theme.text);
    app.warn("cannot pause: run is FINISHED");
    let buf = render(&app, 80, 24);
    assert_eq!(buf[(2, 23)].fg, theme.warning);

    let long = format!("run refused: {} the end", "a very long reason ".repeat(8));
    app.notify(long.clone());
    let footer = row(&render(&app, 80, 24), 23);
    assert!(footer.trim_end().ends_with("… (? all)"), "{footer}");
    assert!(footer.contains("run refused: a very long reason"));
    assert_eq!(fit_notice("short", 80), " short");
    assert_eq!(fit_notice(&long, 20).chars().count(), 20);

    // The help overlay alone, as wide as its box: its rows hold the wrapped notices only.
    let mut t = Terminal::new(TestBackend::new(58, 70)).unwrap();
    t.draw(|f| panes::dialogs::render_help(f, f.area(), &app, &theme))
        .unwrap();
    let help = text(t.backend().buffer()).replace(['┃', '━', '\n'], "");
    let squeezed: String = help.split_whitespace().collect();
    let want: String = long.split_whitespace().collect();
    assert!(
        squeezed.contains(&want),
        "the whole notice is in the help log:\n{help}"
    );
    assert!(squeezed.contains("cannotpause:runisFINISHED"));
}

#[test]
fn smoothing_steps_return_to_the_default() {
    let mut app = scripted_app();
    assert_eq!(app.run_view.smoothing, 0.9);
    press(&mut app, KeyCode::Char(']'));
    press(&mut app, KeyCode::Char(']'));
    press(&mut app, KeyCode::Char(']'));
    assert_eq!(app.run_view.smoothing, 0.99, "capped");
    press(&mut app, KeyCode::Char('['));
    press(&mut app, KeyCode::Char('['));
    assert_eq!(app.run_view.smoothing, 0.9, "back to the default");
    assert_eq!(
        smoothing_step(0.93, -1),
        0.9,
        "an off-grid start lands on the grid"
    );
    assert_eq!(smoothing_step(0.93, 1), 0.95);
    assert_eq!(smoothing_step(0.0, -1), 0.0);
}

#[test]
fn a_checkpoint_val_loss_from_an_earlier_eval_names_its_step() {
    let c = |step, val_step| CheckpointSummary {
        path: "/runs/r/checkpoints/step-00000045".into(),
        run_name: "r".into(),
        step,
        tokens: 0,
        val_loss: Some(2.6),
        val_step,
        size_bytes: 0,
        written_unix: 0,
        error: None,
        pinned: false,
    };
    assert_eq!(c(45, Some(40)).val_loss_label().unwrap(), "2.6000 @ 40");
    assert_eq!(c(40, Some(40)).val_loss_label().unwrap(), "2.6000");
    assert_eq!(
        c(45, None).val_loss_label().unwrap(),
        "2.6000",
        "older checkpoints"
    );
    let mut app = scripted_app();
    app.on_event(Event::Resumed { step: 50 });
    app.overlay = Overlay::Checkpoints;
    app.set_checkpoints(vec![c(45, Some(40))]);
    assert!(text(&render(&app, 100, 20)).contains("2.6000 @ 40"));
}
