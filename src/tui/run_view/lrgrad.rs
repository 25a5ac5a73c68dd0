//! Learning rate and gradient norm as sparklines over the visible steps.

use crate::tui::app::{App, Pane};
use crate::tui::panes::{focused, pane_block};
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Sparkline};
use ratatui::Frame;

/// Scale non-negative values to sparkline bars (0..=1000). Long series are cut into `width`
/// buckets and each bar shows its bucket's maximum, so a single spike stays visible however
/// long the run.
pub fn bars(values: &[f64], width: usize) -> Vec<u64> {
    let clean: Vec<f64> = values
        .iter()
        .map(|v| if v.is_finite() { v.max(0.0) } else { 0.0 })
        .collect();
    if clean.is_empty() || width == 0 {
        return vec![];
    }
    let n = clean.len();
    let buckets: Vec<f64> = if n <= width {
        clean
    } else {
        (0..width)
            .map(|i| {
                clean[i * n / width..((i + 1) * n / width).max(i * n / width + 1)]
                    .iter()
                    .cloned()
                    .fold(0.0, f64::max)
            })
            .collect()
    };
    let max = buckets.iter().cloned().fold(0.0, f64::max);
    if max <= 0.0 {
        return vec![0; buckets.len()];
    }
    buckets
        .iter()
        .map(|v| ((v / max) * 1000.0).round() as u64)
        .collect()
}

/// Draw the pane.
pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let block = pane_block(" lr · grad norm ", focused(app, Pane::LrGrad), theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height < 2 {
        return;
    }
    let steps = app.run_view.visible_steps();
    let lrs: Vec<f64> = steps.iter().map(|s| s.lr).collect();
    let gns: Vec<f64> = steps.iter().map(|s| s.grad_norm).collect();
    let half = inner.height / 2;
    let [lr_t, lr_s, gn_t, gn_s] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(half.saturating_sub(1)),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(inner);
    let w = inner.width as usize;
    let lr_now = lrs
        .last()
        .map(|v| format!("{v:.3e}"))
        .unwrap_or_else(|| "—".into());
    let gn_max = gns
        .iter()
        .cloned()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let gn_now = gns
        .last()
        .map(|v| format!("{v:.3} (max {gn_max:.3})"))
        .unwrap_or_else(|| "—".into());
    let label = |name: &str, v: String, c| {
        Paragraph::new(Line::from(vec![
            ratatui::text::Span::styled(format!("{name} "), Style::new().fg(theme.dim)),
            ratatui::text::Span::styled(v, Style::new().fg(c)),
        ]))
    };
    frame.render_widget(label("lr", lr_now, theme.lr), lr_t);
    frame.render_widget(
        Sparkline::default()
            .data(bars(&lrs, w))
            .max(1000)
            .style(Style::new().fg(theme.lr)),
        lr_s,
    );
    frame.render_widget(label("grad norm", gn_now, theme.grad_norm), gn_t);
    frame.render_widget(
        Sparkline::default()
            .data(bars(&gns, w))
            .max(1000)
            .style(Style::new().fg(theme.grad_norm)),
        gn_s,
    );
}
