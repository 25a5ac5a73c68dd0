//! Drawing the runs pane: the list (lineage-indented table), the loss overlay of the selected
//! runs and their config diff. Reads only the `RunsView` it is given.

use super::{RunsView, XAxis};
use crate::store::run_curves::{config_diff, CurvePoint};
use crate::store::run_tree::tree_prefix;
use crate::tui::panes::{centered, pane_block, truncate};
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Chart, Clear, Dataset, GraphType, LegendPosition, Paragraph, Row, TableState,
};
use ratatui::Frame;

/// Points plotted per curve at most (the chart is a few hundred cells wide).
const PLOT_POINTS: usize = 600;

/// Draw the pane over `area`; `now_unix` gives the ages.
pub fn draw(frame: &mut Frame, area: Rect, view: &RunsView, theme: &Theme, now_unix: u64) {
    let popup = centered(
        area,
        area.width.saturating_sub(2),
        area.height.saturating_sub(2),
    );
    frame.render_widget(Clear, popup);
    let title = format!(" runs · {} ", view.index.root.display());
    let block = pane_block(title, true, theme);
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let list_h = (view.rows.len() as u16 + 2).clamp(4, (inner.height * 2 / 5).max(4));
    let [list, message, bottom] = Layout::vertical([
        Constraint::Length(list_h),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(inner);
    draw_list(frame, list, view, theme, now_unix);
    let msg = view
        .message
        .clone()
        .or_else(|| view.curves.iter().flat_map(|c| &c.notes).next().cloned())
        .or_else(|| view.index.skipped.first().cloned())
        .unwrap_or_default();
    frame.render_widget(
        Paragraph::new(truncate(&msg, message.width as usize))
            .style(Style::new().fg(theme.warning)),
        message,
    );
    let [chart, diff] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(bottom);
    draw_overlay(frame, chart, view, theme);
    draw_diff(frame, diff, view, theme);
}

/// One colour per selected run, in selection order.
fn palette(theme: &Theme) -> [Color; super::MAX_SELECTED] {
    [
        theme.train_loss,
        theme.val_loss,
        theme.lr,
        theme.grad_norm,
        theme.accent,
        theme.ok,
    ]
}

fn draw_list(frame: &mut Frame, area: Rect, view: &RunsView, theme: &Theme, now: u64) {
    if view.rows.is_empty() {
        let msg = format!("no runs in {}", view.index.root.display());
        frame.render_widget(Paragraph::new(msg).style(Style::new().fg(theme.dim)), area);
        return;
    }
    let colors = palette(theme);
    let header = Row::new([
        "", "name", "status", "steps", "best val", "age", "parent", "tags",
    ])
    .style(Style::new().fg(theme.accent).add_modifier(Modifier::BOLD));
    let rows = view.rows.iter().map(|row| {
        let r = &view.index.runs[row.index];
        let picked = view.selected.iter().position(|d| d == &r.dir);
        let mark = match picked {
            Some(_) => "[x]",
            None => "[ ]",
        };
        let current = if view.current.as_ref() == Some(&r.dir) {
            " *"
        } else {
            ""
        };
        let mark_style = picked.map_or(Style::new().fg(theme.dim), |i| {
            Style::new().fg(colors[i % colors.len()])
        });
        Row::new(vec![
            Line::styled(mark, mark_style),
            Line::raw(format!("{}{}{current}", tree_prefix(row), r.name_cell())),
            Line::raw(r.status.label()),
            Line::raw(r.steps_cell()),
            Line::raw(r.best_val_cell()),
            Line::raw(r.age_cell(now)),
            Line::raw(r.parent_cell()),
            Line::raw(r.tags.join(",")),
        ])
        .style(Style::new().fg(theme.text))
    });
    let widths = [
        Constraint::Length(3),
        Constraint::Fill(3),
        Constraint::Length(8),
        Constraint::Length(11),
        Constraint::Length(8),
        Constraint::Length(4),
        Constraint::Fill(2),
        Constraint::Fill(1),
    ];
    let table = crate::tui::panes::selection_table(rows, &widths, header, theme);
    let mut state = TableState::default().with_selected(Some(view.cursor));
    frame.render_stateful_widget(table, area, &mut state);
}

fn x_of(p: &CurvePoint, axis: XAxis) -> f64 {
    match axis {
        XAxis::Step => p.step as f64,
        XAxis::Tokens => p.tokens as f64,
        XAxis::WallClock => p.secs,
    }
}

fn plot(points: &[CurvePoint], axis: XAxis) -> Vec<(f64, f64)> {
    let stride = points.len().div_ceil(PLOT_POINTS).max(1);
    let mut out: Vec<(f64, f64)> = points
        .iter()
        .step_by(stride)
        .map(|p| (x_of(p, axis), p.loss))
        .collect();
    if let Some(last) = points.last().filter(|_| stride > 1) {
        out.push((x_of(last, axis), last.loss));
    }
    out
}

/// One selected run's curves, ready for the chart.
struct Plotted {
    name: String,
    color: Color,
    train: Vec<(f64, f64)>,
    val: Vec<(f64, f64)>,
}

fn draw_overlay(frame: &mut Frame, area: Rect, view: &RunsView, theme: &Theme) {
    let title = format!(" loss by {} (x: switch) ", view.x_axis.label());
    let block = pane_block(title, false, theme);
    if view.curves.is_empty() {
        let p = Paragraph::new("space selects runs to overlay their train and val loss")
            .style(Style::new().fg(theme.dim))
            .block(block);
        frame.render_widget(p, area);
        return;
    }
    let colors = palette(theme);
    let series: Vec<Plotted> = view
        .curves
        .iter()
        .enumerate()
        .map(|(i, c)| Plotted {
            name: truncate(&c.name, 24),
            color: colors[i % colors.len()],
            train: plot(&c.train, view.x_axis),
            val: plot(&c.val, view.x_axis),
        })
        .collect();
    let all = || series.iter().flat_map(|s| s.train.iter().chain(&s.val));
    let (x0, x1) = bounds(all().map(|p| p.0));
    let (y0, y1) = bounds(all().map(|p| p.1));
    let pad = ((y1 - y0) * 0.05).max(0.05);
    let mut datasets = Vec::new();
    for Plotted {
        name,
        color,
        train,
        val,
    } in &series
    {
        datasets.push(
            Dataset::default()
                .name(name.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(*color))
                .data(train),
        );
        datasets.push(
            Dataset::default()
                .marker(Marker::Dot)
                .graph_type(GraphType::Scatter)
                .style(Style::new().fg(*color).add_modifier(Modifier::BOLD))
                .data(val),
        );
    }
    let x_label = |v: f64| match view.x_axis {
        XAxis::WallClock => crate::tui::app::fmt_duration(v),
        _ => crate::tui::app::fmt_count(v),
    };
    let x_max = x1.max(x0 + 1.0);
    let chart = Chart::new(datasets)
        .block(block)
        .style(theme.base())
        .legend_position(Some(LegendPosition::TopRight))
        .hidden_legend_constraints((Constraint::Percentage(60), Constraint::Percentage(60)))
        .x_axis(
            Axis::default()
                .style(Style::new().fg(theme.dim))
                .bounds([x0, x_max])
                .labels([Span::raw(x_label(x0)), Span::raw(x_label(x_max))]),
        )
        .y_axis(
            Axis::default()
                .style(Style::new().fg(theme.dim))
                .bounds([y0 - pad, y1 + pad])
                .labels([
                    Span::raw(format!("{:.2}", y0 - pad)),
                    Span::raw(format!("{:.2}", y1 + pad)),
                ]),
        );
    frame.render_widget(chart, area);
}

fn bounds(it: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = it.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    }
}

fn draw_diff(frame: &mut Frame, area: Rect, view: &RunsView, theme: &Theme) {
    let block = pane_block(" config diff ", false, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if view.curves.len() < 2 {
        let p = Paragraph::new("select two or more runs to see the config keys that differ")
            .style(Style::new().fg(theme.dim))
            .wrap(ratatui::widgets::Wrap { trim: true });
        frame.render_widget(p, inner);
        return;
    }
    let configs: Vec<_> = view.curves.iter().map(|c| &c.config).collect();
    let rows = config_diff(&configs);
    if rows.is_empty() {
        let p = Paragraph::new("the selected runs have the same config")
            .style(Style::new().fg(theme.dim));
        frame.render_widget(p, inner);
        return;
    }
    let colors = palette(theme);
    let key_w = rows.iter().map(|r| r.key.len()).max().unwrap_or(4).min(24);
    let n = view.curves.len();
    let val_w = ((inner.width as usize).saturating_sub(key_w + 1) / n).max(1);
    let cell = |s: &str| format!("{:<w$}", truncate(s, val_w.saturating_sub(1)), w = val_w);
    let mut lines = Vec::with_capacity(rows.len() + 1);
    let mut header = vec![Span::raw(format!("{:<key_w$} ", ""))];
    for (i, c) in view.curves.iter().enumerate() {
        header.push(Span::styled(
            cell(&c.name),
            Style::new()
                .fg(colors[i % colors.len()])
                .add_modifier(Modifier::BOLD),
        ));
    }
    lines.push(Line::from(header));
    for r in &rows {
        let mut spans = vec![Span::styled(
            format!("{:<key_w$} ", truncate(&r.key, key_w)),
            Style::new().fg(theme.text).add_modifier(Modifier::BOLD),
        )];
        for (i, v) in r.values.iter().enumerate() {
            spans.push(Span::styled(
                cell(v.as_deref().unwrap_or("—")),
                Style::new().fg(colors[i % colors.len()]),
            ));
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
