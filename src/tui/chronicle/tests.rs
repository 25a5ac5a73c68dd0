//! The timeline component: events in any order and repeated, run changes, rewinds, scrolling,
//! and its rendering (insta snapshots on `TestBackend`).

use super::*;
use crate::protocol::RunInfo;
use crate::tui::snapshot_tests::scripted_app;
use crate::tui::theme::Theme;
use crossterm::event::KeyModifiers;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn started(run_dir: &str, start_step: u64) -> Event {
    Event::Started {
        step: start_step,
        info: RunInfo {
            run_name: "r".into(),
            run_dir: run_dir.into(),
            device: "cpu".into(),
            params: 1,
            flops_per_token: 1.0,
            tokens_per_step: 1,
            max_steps: 100,
            start_step,
            config_toml: String::new(),
            origin: "fresh".into(),
            measured_peak_tflops: None,
        },
    }
}

fn sample(step: u64, i: u64, text: &str) -> Event {
    let prompt = ["ROMEO:", "To be"][i as usize];
    Event::ChronicleSample {
        step,
        prompt_index: i,
        prompt: prompt.into(),
        text: text.into(),
        tokens: text.split_whitespace().count() as u64,
    }
}

fn task(step: u64, acc: f64) -> Event {
    Event::ChronicleTask {
        step,
        task: "which-work".into(),
        metrics: [
            ("acc", acc),
            ("acc_norm", acc * 0.9),
            ("chance", 0.1),
            ("n", 20.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    }
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// A run of 5 chronicle entries (steps 0, 20, .. 80): noise turning into words.
fn story() -> Vec<Event> {
    let texts = [
        ("xq,,e ee th", "zz"),
        (" the the the", " be be"),
        (" And I will the lord", " or not to be the"),
        (" O, I will not be so.", " or not to be, that is"),
        (
            " What, shall I go to bed?\nNurse: Ay.",
            " or not to be, that is the question",
        ),
    ];
    let mut ev = vec![started("/runs/a", 0)];
    for (k, (a, b)) in texts.iter().enumerate() {
        let step = 20 * k as u64;
        ev.push(task(step, 0.1 + 0.15 * k as f64));
        ev.push(sample(step, 1, b));
        ev.push(sample(step, 0, a));
    }
    ev
}

fn view_of(events: &[Event]) -> ChronicleView {
    let mut v = ChronicleView::default();
    for e in events {
        v.on_event(e);
    }
    v
}

#[test]
fn entries_are_in_step_and_prompt_order_and_a_repeat_replaces() {
    let mut v = view_of(&story());
    assert_eq!(
        v.entries().iter().map(|e| e.step).collect::<Vec<_>>(),
        [0, 20, 40, 60, 80]
    );
    let idx: Vec<u64> = v.entries()[0]
        .samples
        .iter()
        .map(|s| s.prompt_index)
        .collect();
    assert_eq!(idx, [0, 1]);
    // A late, repeated event (a resume re-recording step 40) replaces, never duplicates.
    v.on_event(&sample(40, 0, " again"));
    v.on_event(&task(40, 0.99));
    assert_eq!(v.entries().len(), 5);
    assert_eq!(v.entries()[2].samples.len(), 2);
    assert_eq!(v.entries()[2].samples[0].text, " again");
    let points = &v.tasks()["which-work"];
    assert_eq!(points.len(), 5);
    assert_eq!(points[2].acc, 0.99);
    assert_eq!(points[2].chance, 0.1);
}

#[test]
fn a_resume_or_rewind_drops_later_entries_and_another_run_starts_afresh() {
    let mut v = view_of(&story());
    v.on_event(&started("/runs/a", 40));
    assert_eq!(v.entries().last().unwrap().step, 40);
    assert_eq!(v.tasks()["which-work"].len(), 3);
    v.on_event(&Event::Rewound {
        step: 20,
        from_step: 40,
        checkpoint: "c".into(),
        skip_batches: 0,
        run_dir: "/runs/a".into(),
    });
    assert_eq!(v.entries().len(), 2);
    v.on_event(&started("/runs/b", 0));
    assert!(v.entries().is_empty() && v.tasks().is_empty());
}

#[test]
fn the_entry_count_is_bounded() {
    let mut v = ChronicleView::default();
    for step in 0..(MAX_ENTRIES as u64 + 10) {
        v.on_event(&sample(step, 0, "x"));
    }
    assert_eq!(v.entries().len(), MAX_ENTRIES);
    assert_eq!(v.entries()[0].step, 10);
}

fn render(v: &ChronicleView, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, f.area(), v, &Theme::default())).unwrap();
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
fn keys_scroll_the_timeline_and_close_it() {
    let mut v = view_of(&story());
    v.toggle();
    assert!(v.is_open());
    // Following: the newest entries fit at the bottom; Down stays following.
    let following = render(&v, 80, 20);
    assert!(following.contains("step 80") && following.contains("following"));
    assert!(v.on_key(key(KeyCode::Down)));
    assert_eq!(v.top(), None);
    // Up starts from the first entry that was on screen.
    let first = v.shown_first.get();
    assert!(first > 0, "20 rows cannot hold all five entries");
    v.on_key(key(KeyCode::Up));
    assert_eq!(v.top(), Some(first - 1));
    v.on_key(key(KeyCode::Home));
    assert_eq!(v.top(), Some(0));
    let top = render(&v, 80, 20);
    assert!(
        top.contains("step 0") && top.contains("End: follow"),
        "{top}"
    );
    // PgDn past the newest follows it again.
    v.on_key(key(KeyCode::PageDown));
    assert_eq!(v.top(), None);
    v.on_key(key(KeyCode::Home));
    v.on_key(key(KeyCode::Down));
    assert_eq!(v.top(), Some(1));
    v.on_key(key(KeyCode::End));
    assert_eq!(v.top(), None);
    // Keys it does not use fall through (pause, save...).
    assert!(!v.on_key(key(KeyCode::Char('p'))));
    assert!(v.on_key(key(KeyCode::Esc)));
    assert!(!v.is_open());
}

#[test]
fn timeline_snapshots() {
    let mut v = view_of(&story());
    v.toggle();
    snap!("chronicle_following_100x30", render(&v, 100, 30));
    v.on_key(key(KeyCode::Home));
    snap!("chronicle_top_60x20", render(&v, 60, 20));
    snap!(
        "chronicle_empty_60x8",
        render(&ChronicleView::default(), 60, 8)
    );
}

#[test]
fn t_opens_the_timeline_in_place_of_the_charts_and_keys_reach_it() {
    let mut app = scripted_app();
    for e in story().into_iter().skip(1) {
        app.on_event(e);
    }
    app.on_key(key(KeyCode::Char('t')));
    assert!(app.chronicle.is_open());
    app.on_key(key(KeyCode::Home));
    assert_eq!(app.chronicle.top(), Some(0));
    let mut t = Terminal::new(TestBackend::new(100, 30)).unwrap();
    t.draw(|f| crate::tui::panes::draw(f, &app, &Theme::default()))
        .unwrap();
    snap!("layout_chronicle_100x30", t.backend().to_string());
    app.on_key(key(KeyCode::Char('t')));
    assert!(!app.chronicle.is_open());
}
