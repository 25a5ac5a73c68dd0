//! The `?` help overlay fits small terminals without losing a key: every binding of
//! [`HELP`] is on screen at 80x24 (watch mode too), 100x37 and a wide terminal, and a terminal
//! too small for them says so instead of cutting keys off silently.

use super::app::{App, Mode, Overlay};
use super::panes;
use super::panes::dialogs::{split_groups, DESC_WIDTH, HELP, KEY_WIDTH};
use super::snapshot_tests::scripted_app;
use super::theme::Theme;
use crate::config::UiConfig;
use crate::protocol::SampleParams;
use ratatui::backend::TestBackend;
use ratatui::text::Line;
use ratatui::Terminal;

fn render(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| panes::draw(f, app, &Theme::default())).unwrap();
    t.backend().to_string()
}

fn help_app(mode: Mode) -> App {
    let mut app = match mode {
        Mode::Live => scripted_app(),
        _ => App::new(mode, &UiConfig::default(), SampleParams::default()),
    };
    app.overlay = Overlay::Help;
    app
}

/// Every key with its description (on one row, in that order) and every group title.
fn assert_every_key_shown(screen: &str, size: &str) {
    for (group, keys) in HELP {
        assert!(
            screen.contains(group),
            "{size}: group {group:?} missing:\n{screen}"
        );
        for (k, what) in *keys {
            let row = format!(" {k:<KEY_WIDTH$} {what}");
            assert!(
                screen.lines().any(|l| l.contains(&row)),
                "{size}: key {k:?} ({what}) missing:\n{screen}"
            );
        }
    }
}

fn snap(name: &str, value: String) {
    insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!(name, value);
    });
}

#[test]
fn every_key_fits_from_80x24_up() {
    for (w, h, name) in [
        (80, 24, "overlay_help_80x24"),
        (100, 37, "overlay_help_100x37"),
        (160, 40, "overlay_help_160x40"),
    ] {
        let screen = render(&help_app(Mode::Live), w, h);
        assert_every_key_shown(&screen, name);
        assert!(!screen.contains("more lines"), "{name}: nothing hidden");
        snap(name, screen);
    }
    // Watch mode adds its read-only line and still fits 80x24.
    let screen = render(&help_app(Mode::Watch), 80, 24);
    assert!(screen.contains("watch mode: read-only"), "{screen}");
    assert_every_key_shown(&screen, "watch 80x24");
}

#[test]
fn the_columns_follow_the_width() {
    assert_eq!(split_groups(1).len(), 1);
    let two = split_groups(2);
    assert_eq!(two.len(), 2);
    let rows = |r: &std::ops::Range<usize>| -> usize {
        HELP[r.clone()].iter().map(|g| 1 + g.1.len()).sum()
    };
    // Short enough for 24 rows: 22 inside the box, one of them for watch mode's line.
    assert!(two.iter().all(|r| rows(r) <= 21), "{two:?}");
    assert!(split_groups(3).len() <= 3);
    // Groups stay whole and in order.
    for cols in [two, split_groups(3)] {
        assert_eq!(cols.first().unwrap().start, 0);
        assert_eq!(cols.last().unwrap().end, HELP.len());
        assert!(cols.windows(2).all(|w| w[0].end == w[1].start));
    }
}

#[test]
fn keys_and_descriptions_fit_their_columns() {
    for (_, keys) in HELP {
        for (k, what) in *keys {
            assert!(Line::raw(*k).width() <= KEY_WIDTH, "key {k:?} too wide");
            assert!(Line::raw(*what).width() <= DESC_WIDTH, "{what:?} too wide");
        }
    }
}

#[test]
fn a_terminal_too_small_says_what_it_hides() {
    // Narrower than two columns and short: one column, cut, with the hint.
    let screen = render(&help_app(Mode::Live), 60, 20);
    assert!(
        screen.contains("more lines: enlarge to 80x24 for every key"),
        "{screen}"
    );
    assert!(screen.contains("pause / resume"), "{screen}");
}

#[test]
fn notices_take_the_rows_left_newest_first() {
    let mut app = help_app(Mode::Live);
    for i in 0..8 {
        app.notify(format!("notice number {i}"));
    }
    let screen = render(&app, 100, 37);
    assert_every_key_shown(&screen, "100x37 with notices");
    assert!(screen.contains("notice number 7"), "{screen}");
    // At 80x24 only the newest fit; the header says how many older ones are left out.
    let screen = render(&app, 80, 24);
    assert_every_key_shown(&screen, "80x24 with notices");
    assert!(screen.contains("older not shown"), "{screen}");
    assert!(!screen.contains("notice number 0"), "{screen}");
}
