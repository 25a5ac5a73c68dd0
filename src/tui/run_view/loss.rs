//! Loss chart: raw train loss (dim), its EMA (bright) and validation loss, on a linear or
//! log axis, over the full history or the recent window.

use crate::tui::app::{ema, scale_y, App, Pane};
use crate::tui::panes::{focused, pane_block};
use crate::tui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, LegendPosition, Paragraph};
use ratatui::Frame;

/// Series ready for the chart: (step, scaled value) pairs plus axis bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct LossSeries {
    pub raw: Vec<(f64, f64)>,
    pub smooth: Vec<(f64, f64)>,
    pub val: Vec<(f64, f64)>,
    pub x: [f64; 2],
    pub y: [f64; 2],
}

/// Build the plotted series, thinned to about `max_points` so a 100k-step run stays cheap.
pub fn series(app: &App, max_points: usize) -> LossSeries {
    let view = &app.run_view;
    let steps = view.visible_steps();
    let losses: Vec<f64> = steps.iter().map(|s| s.loss).collect();
    let smoothed = ema(&losses, view.smoothing);
    let pick = |vals: &[f64]| -> Vec<(f64, f64)> {
        steps
            .iter()
            .zip(vals)
            .filter_map(|(s, &v)| scale_y(v, view.log_scale).map(|y| (s.step as f64, y)))
            .collect()
    };
    let raw = thin(pick(&losses), max_points);
    let smooth = thin(pick(&smoothed), max_points);
    let first = steps.first().map(|s| s.step).unwrap_or(0);
    let val: Vec<(f64, f64)> = view
        .evals
        .iter()
        .filter(|e| steps.is_empty() || e.step >= first)
        .filter_map(|e| scale_y(e.val_loss, view.log_scale).map(|y| (e.step as f64, y)))
        .collect();
    let xs = raw.iter().chain(&val).map(|p| p.0);
    let (x0, x1) = bounds(xs);
    let ys = raw.iter().chain(&smooth).chain(&val).map(|p| p.1);
    let (y0, y1) = bounds(ys);
    let pad = ((y1 - y0) * 0.05).max(if view.log_scale { 0.01 } else { 0.05 });
    LossSeries {
        raw,
        smooth,
        val,
        x: [x0, x1.max(x0 + 1.0)],
        y: [y0 - pad, y1 + pad],
    }
}

fn bounds(it: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = it.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if lo.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    }
}

/// Keep every k-th point (and the last) so at most about `max` remain.
pub fn thin(points: Vec<(f64, f64)>, max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max.max(2) {
        return points;
    }
    let stride = points.len().div_ceil(max.max(2));
    let last = *points.last().unwrap();
    let mut out: Vec<_> = points.into_iter().step_by(stride).collect();
    if out.last() != Some(&last) {
        out.push(last);
    }
    out
}

fn y_label(v: f64, log: bool) -> String {
    let v = if log { 10f64.powf(v) } else { v };
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 0.01 {
        format!("{v:.2}")
    } else {
        format!("{v:.1e}")
    }
}

/// Draw the chart into `area`.
pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let view = &app.run_view;
    let last = view.steps.last();
    let mut title = format!(
        " loss {} ",
        last.map(|s| format!("{:.4}", s.loss)).unwrap_or_default()
    );
    if let Some(e) = view.evals.last() {
        title.push_str(&format!("· val {:.4} ", e.val_loss));
    }
    let flags = format!(
        " ema {:.2} · {} · {} ",
        view.smoothing,
        if view.log_scale { "log" } else { "linear" },
        if view.full_history {
            "full".to_string()
        } else {
            format!("last {}", super::RECENT_WINDOW)
        }
    );
    let block = pane_block(title, focused(app, Pane::Loss), theme)
        .title_bottom(Line::styled(flags, Style::new().fg(theme.dim)).right_aligned());
    if view.steps.is_empty() {
        let p = Paragraph::new("waiting for the first step…")
            .style(Style::new().fg(theme.dim))
            .block(block);
        frame.render_widget(p, area);
        return;
    }
    let s = series(app, (area.width as usize).saturating_mul(2).max(16));
    let datasets = vec![
        Dataset::default()
            .name("train")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(theme.train_raw))
            .data(&s.raw),
        Dataset::default()
            .name(format!("ema {:.2}", view.smoothing))
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(theme.train_loss))
            .data(&s.smooth),
        Dataset::default()
            .name("val")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(theme.val_loss))
            .data(&s.val),
    ];
    let xl = |v: f64| format!("{v:.0}");
    let x_axis = Axis::default()
        .style(Style::new().fg(theme.dim))
        .bounds(s.x)
        .labels([xl(s.x[0]), xl((s.x[0] + s.x[1]) / 2.0), xl(s.x[1])]);
    let y_axis = Axis::default()
        .style(Style::new().fg(theme.dim))
        .bounds(s.y)
        .labels([
            y_label(s.y[0], view.log_scale),
            y_label((s.y[0] + s.y[1]) / 2.0, view.log_scale),
            y_label(s.y[1], view.log_scale),
        ]);
    let chart = Chart::new(datasets)
        .block(block)
        .style(theme.base())
        .x_axis(x_axis)
        .y_axis(y_axis)
        .legend_position(Some(LegendPosition::TopRight))
        .hidden_legend_constraints((
            ratatui::layout::Constraint::Percentage(40),
            ratatui::layout::Constraint::Percentage(50),
        ));
    frame.render_widget(chart, area);
}
