//! Throughput pane: tokens/s, ms/step, MFU, ETA, tokens seen, last checkpoint, alert count.

use crate::tui::app::{fmt_count, fmt_duration, App, Pane};
use crate::tui::panes::{focused, pane_block};
use crate::tui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Rows the pane wants (content plus borders).
pub const HEIGHT: u16 = 9;
// A task-eval row, when present, shows where the layout leaves room below the others.

/// Label/value rows, kept separate from drawing so tests can check the numbers.
pub fn rows(app: &App) -> Vec<(&'static str, String)> {
    let na = || "—".to_string();
    let view = &app.run_view;
    let tps = view.recent_tokens_per_s();
    let mfu = match (app.peak(), app.mfu()) {
        (None, _) => "n/a (set ui.peak_tflops)".to_string(),
        (Some(p), Some(m)) => format!("{:.1}% of {}", m * 100.0, p.label()),
        (Some(_), None) => na(),
    };
    let tokens = view.steps.last().map(|s| s.tokens).unwrap_or(0);
    let ckpt = view
        .last_checkpoint
        .as_ref()
        .map(|c| format!("step {}", c.step))
        .unwrap_or_else(|| "none yet".into());
    let mut rows = vec![
        (
            "tokens/s",
            tps.map(|t| format!("{} (avg 20)", fmt_count(t)))
                .unwrap_or_else(na),
        ),
        (
            "ms/step",
            view.recent_step_ms()
                .map(|m| format!("{m:.1}"))
                .unwrap_or_else(na),
        ),
        ("MFU", mfu),
        ("ETA", app.eta_secs().map(fmt_duration).unwrap_or_else(na)),
        ("tokens", fmt_count(tokens as f64)),
        ("checkpoint", ckpt),
        ("alerts", view.alerts.len().to_string()),
    ];
    if let Some(e) = view.task_evals.last() {
        rows.push((
            "task eval",
            format!("{} @{}: {}", e.task, e.step, e.summary),
        ));
    }
    rows
}

/// Draw the pane.
pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let block = pane_block(" throughput ", focused(app, Pane::Throughput), theme);
    let lines: Vec<Line> = rows(app)
        .into_iter()
        .map(|(k, v)| {
            let warn = k == "alerts" && v != "0";
            Line::from(vec![
                Span::styled(format!("{k:<11}"), Style::new().fg(theme.dim)),
                Span::styled(
                    v,
                    Style::new().fg(if warn { theme.warning } else { theme.text }),
                ),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
