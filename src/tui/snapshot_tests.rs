//! Snapshot tests: every pane and the main layout at several sizes, rendered on `TestBackend`
//! from a scripted event sequence (no engine, fixed clock).

use super::app::{App, Mode, Overlay, Pane};
use super::prompt::{ActiveSample, SampleEntry};
use super::theme::Theme;
use super::{panes, run_view};
use crate::config::UiConfig;
use crate::protocol::{AlertKind, CheckpointSummary, Event, RunInfo, SampleParams, StepStats};
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;

/// Fixed "now" so checkpoint ages are stable.
pub const NOW: u64 = 1_750_000_000;

/// A deterministic run: 50 steps of falling loss, two evals, a checkpoint, an alert, a pause.
pub fn scripted_events() -> Vec<Event> {
    let mut ev = vec![Event::Started {
        step: 0,
        info: RunInfo {
            run_name: "tiny-demo".into(),
            run_dir: "/runs/tiny-demo".into(),
            device: "cpu".into(),
            params: 1_234_567,
            flops_per_token: 7.4e6,
            tokens_per_step: 1024,
            max_steps: 1000,
            start_step: 0,
            config_toml: String::new(),
            origin: "fresh".into(),
            measured_peak_tflops: None,
        },
    }];
    for step in 1..=50u64 {
        let t = step as f64;
        let loss = 2.0 + 6.0 * (-t / 12.0).exp() + 0.15 * (t * 1.7).sin();
        let lr = if step <= 10 {
            1e-3 * t / 10.0
        } else {
            1e-3 * (0.55 + 0.45 * (t / 60.0).cos())
        };
        let grad_norm = 0.3 + 1.5 * (-t / 20.0).exp() + if step == 37 { 2.0 } else { 0.0 };
        let step_ms = 100.0 + (step % 5) as f64;
        ev.push(Event::Step(StepStats {
            step,
            loss,
            lr,
            grad_norm,
            tokens: step * 1024,
            step_ms,
            tokens_per_s: 1024.0 / (step_ms / 1000.0),
            peers: 1,
            peer_step_ms: Vec::new(),
            allreduce_ms: 0.0,
        }));
        match step {
            20 => ev.push(Event::Eval {
                step,
                val_loss: 3.4,
            }),
            37 => ev.push(Event::Alert {
                step,
                kind: AlertKind::GradExplosion,
                detail: "grad norm 3.19 is 4.8σ above the recent mean".into(),
            }),
            40 => {
                ev.push(Event::Eval {
                    step,
                    val_loss: 2.6,
                });
                ev.push(Event::CheckpointSaved {
                    step,
                    path: "/runs/tiny-demo/checkpoints/step-00000040".into(),
                });
            }
            _ => {}
        }
    }
    ev.push(Event::Paused { step: 50 });
    ev
}

/// An App that has seen the scripted run.
pub fn scripted_app() -> App {
    let mut app = App::new(Mode::Live, &UiConfig::default(), SampleParams::default());
    app.now_unix = NOW;
    app.runs_dir = "/runs".into();
    for e in scripted_events() {
        app.on_event(e);
    }
    app
}

fn render_full(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| panes::draw(f, app, &Theme::default())).unwrap();
    t.backend().to_string()
}

fn render_pane(
    w: u16,
    h: u16,
    app: &App,
    pane: fn(&mut ratatui::Frame, Rect, &App, &Theme),
) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| pane(f, f.area(), app, &Theme::default()))
        .unwrap();
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
fn layout_120x40() {
    snap!("layout_120x40", render_full(&scripted_app(), 120, 40));
}

#[test]
fn layout_80x24() {
    snap!("layout_80x24", render_full(&scripted_app(), 80, 24));
}

#[test]
fn layout_too_small() {
    snap!("layout_too_small_20x6", render_full(&scripted_app(), 20, 6));
}

#[test]
fn pane_loss_linear_and_log() {
    let mut app = scripted_app();
    snap!(
        "pane_loss_linear",
        render_pane(70, 16, &app, run_view::loss::render)
    );
    app.run_view.log_scale = true;
    app.run_view.smoothing = 0.5;
    app.run_view.full_history = false;
    snap!(
        "pane_loss_log",
        render_pane(70, 16, &app, run_view::loss::render)
    );
}

#[test]
fn pane_throughput_with_and_without_peak() {
    let mut app = scripted_app();
    snap!(
        "pane_throughput_no_peak",
        render_pane(44, 9, &app, run_view::throughput::render)
    );
    app.peak_tflops = 0.5;
    app.focus = Pane::Throughput;
    snap!(
        "pane_throughput_peak",
        render_pane(44, 9, &app, run_view::throughput::render)
    );
}

#[test]
fn pane_lrgrad() {
    snap!(
        "pane_lrgrad",
        render_pane(44, 10, &scripted_app(), run_view::lrgrad::render)
    );
}

#[test]
fn pane_status_running_saving_sampling() {
    let mut app = scripted_app();
    app.on_event(Event::Resumed { step: 50 });
    app.saving = true;
    app.prompt.active = Some(active(1, "x", ""));
    snap!(
        "pane_status",
        render_pane(100, 1, &app, panes::status::render)
    );
}

/// Prompt pane with one finished generation and one streaming in.
pub fn prompt_app() -> App {
    let mut app = scripted_app();
    app.prompt_open = true;
    app.focus = Pane::Prompt;
    app.prompt.history.push(SampleEntry {
        step: 40,
        prompt: "ROMEO:".into(),
        text: " What light through yonder window breaks? It is the east.".into(),
        tokens: 14,
        tokens_per_s: 212.0,
    });
    app.prompt.active = Some(active(2, "JULIET:", ""));
    for tok in [" O", " Romeo,", " Romeo!", " wherefore"] {
        app.on_event(Event::SampleToken {
            step: 50,
            id: 2,
            text: tok.into(),
        });
    }
    app.prompt.input = "KING".into();
    app.prompt.cursor = 4;
    app.prompt.selected = 2;
    app
}

/// A generation taller than the pane keeps its header (token count, speed) and its prompt in
/// view above the tail of its text; before, both scrolled away with the text.
#[test]
fn pane_prompt_pins_the_newest_header_when_text_overflows() {
    let mut app = scripted_app();
    app.prompt_open = true;
    let text: String = (0..30).map(|i| format!("line {i}\n")).collect();
    app.prompt.history.push(SampleEntry {
        step: 40,
        prompt: "ROMEO:\n".into(),
        text,
        tokens: 96,
        tokens_per_s: 8000.0,
    });
    let screen = render_pane(70, 10, &app, super::prompt::render);
    assert!(
        screen.contains("step 40 · 96 tok · 8000 tok/s · ROMEO:"),
        "{screen}"
    );
    assert!(screen.contains("line 29"), "{screen}");
    assert!(!screen.contains("line 0 "), "{screen}");
    app.prompt.active = Some(active(2, "JULIET:", &"x\n".repeat(30)));
    let screen = render_pane(70, 10, &app, super::prompt::render);
    assert!(screen.contains("generating… · JULIET:"), "{screen}");
    assert!(!screen.contains("96 tok"), "{screen}");
}

#[test]
fn pane_prompt_streaming() {
    let app = prompt_app();
    snap!(
        "pane_prompt",
        render_pane(70, 10, &app, super::prompt::render)
    );
    snap!("layout_prompt_100x30", render_full(&app, 100, 30));
}

/// Browser with one valid checkpoint and one invalid (truncated) one.
pub fn browser_app() -> App {
    let mut app = scripted_app();
    app.overlay = Overlay::Checkpoints;
    app.set_checkpoints(vec![
        CheckpointSummary {
            path: "/runs/tiny-demo/checkpoints/step-00000040".into(),
            run_name: "tiny-demo".into(),
            step: 40,
            tokens: 40_960,
            val_loss: Some(2.6),
            val_step: Some(30),
            size_bytes: 14_900_000,
            written_unix: NOW - 95,
            error: None,
            pinned: true,
        },
        CheckpointSummary {
            path: "/runs/old-run/checkpoints/step-00000900".into(),
            run_name: "old-run".into(),
            step: 900,
            tokens: 921_600,
            val_loss: None,
            val_step: None,
            size_bytes: 1_024,
            written_unix: NOW - 3 * 86_400,
            error: Some("model.safetensors: truncated or corrupt header".into()),
            pinned: false,
        },
    ]);
    app.browser.selected = 1;
    app
}

#[test]
fn checkpoint_browser() {
    let mut app = browser_app();
    snap!("browser_100x20", render_full(&app, 100, 20));
    app.browser.selected = 0;
    let key = |c| crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Char(c));
    app.on_key(key('r'));
    snap!("browser_confirm_switch", render_full(&app, 100, 20));
}

#[test]
fn overlays_help_and_quit() {
    let mut app = scripted_app();
    app.overlay = Overlay::Help;
    snap!("overlay_help", render_full(&app, 100, 34));
    app.overlay = Overlay::QuitConfirm;
    snap!("overlay_quit", render_full(&app, 80, 24));
}

#[test]
fn watch_mode_read_only_notice() {
    let mut app = App::new(Mode::Watch, &UiConfig::default(), SampleParams::default());
    app.now_unix = NOW;
    for e in scripted_events() {
        app.on_event(e);
    }
    app.run_view.alerts_seen = app.run_view.alerts.len();
    app.on_event(Event::Resumed { step: 50 });
    app.on_key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('p'),
    ));
    snap!("layout_watch_80x24", render_full(&app, 80, 24));
}

#[test]
fn engine_error_banner() {
    let mut app = scripted_app();
    app.on_engine_lost();
    snap!("layout_engine_lost_80x24", render_full(&app, 80, 24));
}

/// A live generation streaming `text` so far.
fn active(id: u64, prompt: &str, text: &str) -> ActiveSample {
    ActiveSample {
        id,
        prompt: prompt.into(),
        text: text.into(),
    }
}
