//! Snapshot and key tests of the runs pane on `TestBackend`: the lineage list, the loss
//! overlay of two selected runs on each x axis, and their config diff.

use super::{RunsRequest, RunsView, XAxis};
use crate::store::lineage::{ParentKind, ParentRecord};
use crate::store::run_curves::{CurvePoint, RunCurves};
use crate::store::runs::{RunIndex, RunStatus, RunSummary};
use crate::tui::theme::Theme;
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::collections::BTreeMap;
use std::path::PathBuf;

const NOW: u64 = 1_750_000_000;

fn summary(dir: &str, status: RunStatus, steps: u64, parent: Option<&str>) -> RunSummary {
    RunSummary {
        dir: PathBuf::from("/runs").join(dir),
        dir_name: dir.into(),
        name: dir.into(),
        tags: vec![],
        status,
        steps,
        max_steps: 200,
        tokens: steps * 1024,
        best_val_loss: Some(5.0 - steps as f64 / 100.0),
        last_write_unix: NOW - 90 - steps,
        parent: parent.map(|p| ParentRecord {
            kind: ParentKind::Branch,
            checkpoint: format!("/runs/{p}/checkpoints/step-00000100"),
            run: Some(p.into()),
            step: Some(100),
        }),
        notes: vec![],
    }
}

fn index() -> RunIndex {
    let mut renamed = summary("tiny-20261130-051233", RunStatus::Running, 150, None);
    renamed.name = "baseline".into();
    renamed.tags = vec!["sweep".into()];
    let mut ft = summary("baseline-ft-20261130-060000", RunStatus::Crashed, 20, None);
    ft.parent = Some(ParentRecord {
        kind: ParentKind::FineTune,
        checkpoint: "/runs/tiny-20261130-051233/checkpoints/step-00000150".into(),
        run: Some("tiny-20261130-051233".into()),
        step: Some(150),
    });
    RunIndex {
        root: "/runs".into(),
        runs: vec![
            renamed,
            summary("tiny-20261129-120000", RunStatus::Finished, 200, None),
            summary(
                "tiny-20261130-051233-branch-100",
                RunStatus::Stopped,
                120,
                Some("tiny-20261130-051233"),
            ),
            ft,
        ],
        skipped: vec![],
    }
}

fn curves(name: &str, dir: &str, slope: f64, lr: &str) -> RunCurves {
    let train = (1..=100u64)
        .map(|s| CurvePoint {
            step: s,
            tokens: s * 2048,
            secs: s as f64 * 1.5,
            loss: 2.0 + 4.0 * (-(s as f64) * slope).exp(),
        })
        .collect();
    let val = [25u64, 50, 75, 100]
        .iter()
        .map(|&s| CurvePoint {
            step: s,
            tokens: s * 2048,
            secs: s as f64 * 1.5,
            loss: 2.1 + 4.0 * (-(s as f64) * slope).exp(),
        })
        .collect();
    let mut config = BTreeMap::new();
    config.insert("train.lr".to_string(), lr.to_string());
    config.insert("train.seed".to_string(), "1337".to_string());
    config.insert("model.d_model".to_string(), "256".to_string());
    RunCurves {
        dir: PathBuf::from("/runs").join(dir),
        name: name.into(),
        train,
        val,
        config,
        notes: vec![],
    }
}

fn view() -> RunsView {
    let mut v = RunsView {
        current: Some("/runs/tiny-20261130-051233".into()),
        ..Default::default()
    };
    v.set_index(index());
    v
}

fn render(v: &RunsView, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| super::draw(f, f.area(), v, &Theme::default(), NOW))
        .unwrap();
    t.backend().to_string()
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::from(code)
}

macro_rules! snap {
    ($name:expr, $value:expr) => {
        insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

#[test]
fn list_shows_lineage_status_and_the_current_run_selected() {
    let v = view();
    // Tree order: the renamed run, its branch and fine-tune under it, then the older run.
    let names: Vec<&str> = v
        .rows
        .iter()
        .map(|r| v.index.runs[r.index].dir_name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "tiny-20261130-051233",
            "tiny-20261130-051233-branch-100",
            "baseline-ft-20261130-060000",
            "tiny-20261129-120000"
        ]
    );
    assert_eq!(
        v.selected,
        vec![PathBuf::from("/runs/tiny-20261130-051233")]
    );
    snap!("runs_list_120x30", render(&v, 120, 30));
}

#[test]
fn space_selects_and_asks_for_curves_overlaid_by_step_tokens_and_time() {
    let mut v = view();
    assert!(v.on_key(key(KeyCode::Down)).is_empty());
    let req = v.on_key(key(KeyCode::Char(' ')));
    let RunsRequest::LoadCurves(picked) = &req[0] else {
        panic!("{req:?}")
    };
    let dirs: Vec<&str> = picked.iter().map(|p| p.1.as_str()).collect();
    assert_eq!(dirs, ["baseline", "tiny-20261130-051233-branch-100"]);
    v.set_curves(vec![
        curves("baseline", "tiny-20261130-051233", 0.03, "0.001"),
        curves(
            "branch-100",
            "tiny-20261130-051233-branch-100",
            0.06,
            "0.0005",
        ),
    ]);
    snap!("runs_overlay_step_120x36", render(&v, 120, 36));
    v.on_key(key(KeyCode::Char('x')));
    assert_eq!(v.x_axis, XAxis::Tokens);
    v.on_key(key(KeyCode::Char('x')));
    assert_eq!(v.x_axis, XAxis::WallClock);
    snap!("runs_overlay_wallclock_120x36", render(&v, 120, 36));
    // Space again unselects.
    let req = v.on_key(key(KeyCode::Char(' ')));
    assert_eq!(
        req,
        vec![RunsRequest::LoadCurves(vec![(
            "/runs/tiny-20261130-051233".into(),
            "baseline".into()
        )])]
    );
}

#[test]
fn config_diff_lists_only_keys_that_differ() {
    let mut v = view();
    let mut c = curves("b", "x", 0.05, "0.002");
    c.config.insert("train.grad_clip".into(), "1.0".into());
    v.set_curves(vec![curves("a", "y", 0.03, "0.001"), c]);
    let screen = render(&v, 100, 30);
    assert!(screen.contains("train.lr"), "{screen}");
    assert!(screen.contains("train.grad_clip"), "{screen}");
    assert!(!screen.contains("train.seed"), "{screen}");
    snap!("runs_diff_100x30", screen);
}

#[test]
fn enter_switches_only_in_watch_mode_and_esc_closes() {
    let mut v = view();
    assert!(v.on_key(key(KeyCode::Enter)).is_empty());
    assert!(v.message.as_deref().unwrap().contains("llite-tui watch"));
    v.can_switch = true;
    v.on_key(key(KeyCode::End));
    assert_eq!(
        v.on_key(key(KeyCode::Enter)),
        vec![RunsRequest::Watch("/runs/tiny-20261129-120000".into())]
    );
    assert_eq!(v.on_key(key(KeyCode::Esc)), vec![RunsRequest::Close]);
    // A refreshed index keeps the cursor on the same run.
    v.set_index(index());
    assert_eq!(v.cursor_run().unwrap().dir_name, "tiny-20261129-120000");
}

#[test]
fn the_cockpit_opens_the_pane_with_r_and_closes_it_with_esc() {
    use crate::tui::app::{Action, App, Mode, Overlay};
    let mut app = App::new(Mode::Live, &Default::default(), Default::default());
    let actions = app.on_key(key(KeyCode::Char('R')));
    assert_eq!(app.overlay, Overlay::Runs);
    assert_eq!(actions, vec![Action::Runs(RunsRequest::Refresh)]);
    app.runs.set_index(index());
    let actions = app.on_key(key(KeyCode::Char(' ')));
    assert!(matches!(
        actions[0],
        Action::Runs(RunsRequest::LoadCurves(_))
    ));
    assert!(app.on_key(key(KeyCode::Esc)).is_empty());
    assert_eq!(app.overlay, Overlay::None);
}
