//! Drawing the chronicle timeline: the task-accuracy chart (when the run scores tasks) above
//! the scrollable list of steps, each with the greedy sample of every fixed prompt.

use super::{ChronicleEntry, ChronicleView, TaskPoint};
use crate::tui::panes::pane_block;
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, LegendPosition, Paragraph};
use ratatui::Frame;
use std::collections::BTreeMap;

/// Draw the timeline into `area` (the charts' place while it is open).
pub fn draw(frame: &mut Frame, area: Rect, view: &ChronicleView, theme: &Theme) {
    let n = view.entries.len();
    let block = pane_block(format!(" chronicle · {n} entries "), true, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if n == 0 {
        let hint = "no chronicle yet: set [chronicle] every = N with prompts and/or tasks (docs/CONFIG.md)";
        frame.render_widget(
            Paragraph::new(Line::styled(hint, Style::new().fg(theme.dim)))
                .wrap(ratatui::widgets::Wrap { trim: true }),
            inner,
        );
        return;
    }
    let chart_h = if view.tasks.is_empty() || inner.height < 12 {
        0
    } else {
        (inner.height / 3).clamp(6, 14)
    };
    let [chart_area, list_area] =
        Layout::vertical([Constraint::Length(chart_h), Constraint::Min(0)]).areas(inner);
    if chart_h > 0 {
        draw_task_chart(frame, chart_area, &view.tasks, theme);
    }
    draw_list(frame, list_area, view, theme);
}

/// The lines of one entry: a step header, its task scores, then each prompt's sample.
fn entry_lines(
    e: &ChronicleEntry,
    tasks: &BTreeMap<String, Vec<TaskPoint>>,
    width: usize,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let mut lines = vec![Line::styled(
        format!("── step {} ", e.step),
        Style::new().fg(theme.accent).add_modifier(Modifier::BOLD),
    )];
    for (name, points) in tasks {
        if let Some(p) = points.iter().find(|p| p.step == e.step) {
            lines.push(Line::styled(
                format!(
                    "  {name}: acc {:.3} · acc_norm {:.3} · chance {:.3}",
                    p.acc, p.acc_norm, p.chance
                ),
                Style::new().fg(theme.ok),
            ));
        }
    }
    for s in &e.samples {
        lines.extend(sample_lines(
            &s.prompt,
            &s.text,
            width.saturating_sub(2),
            theme,
        ));
    }
    lines
}

/// A sample hard-wrapped (as the prompt pane wraps) with the prompt's characters dim and the
/// model's continuation bright, indented under its step.
fn sample_lines(prompt: &str, text: &str, width: usize, theme: &Theme) -> Vec<Line<'static>> {
    let width = width.max(1);
    let prompt_chars = prompt.chars().count();
    let mut at = 0;
    let mut out = Vec::new();
    for raw in format!("{prompt}{text}").split('\n') {
        let chars: Vec<char> = raw.chars().collect();
        if chars.is_empty() {
            out.push(Line::raw(""));
        }
        for chunk in chars.chunks(width) {
            let dim = prompt_chars.saturating_sub(at).min(chunk.len());
            out.push(Line::from(vec![
                Span::raw("  "),
                Span::styled(
                    chunk[..dim].iter().collect::<String>(),
                    Style::new().fg(theme.dim),
                ),
                Span::styled(
                    chunk[dim..].iter().collect::<String>(),
                    Style::new().fg(theme.text),
                ),
            ]));
            at += chunk.len();
        }
        at += 1;
    }
    out
}

fn draw_list(frame: &mut Frame, area: Rect, view: &ChronicleView, theme: &Theme) {
    let (w, h) = (area.width as usize, area.height as usize);
    if h == 0 {
        return;
    }
    let n = view.entries.len();
    let lines_of = |i: usize| entry_lines(&view.entries[i], &view.tasks, w, theme);
    let first = match view.top {
        Some(t) => t.min(n - 1),
        None => {
            // Following: as many of the newest entries as fit, the newest always.
            let mut first = n - 1;
            let mut used = lines_of(first).len();
            while first > 0 {
                let more = lines_of(first - 1).len();
                if used + more > h {
                    break;
                }
                used += more;
                first -= 1;
            }
            first
        }
    };
    view.shown_first.set(first);
    let mut lines = Vec::with_capacity(h);
    let mut last = first;
    for i in first..n {
        if lines.len() >= h {
            break;
        }
        lines.extend(lines_of(i));
        last = i;
    }
    lines.truncate(h);
    let position = format!(
        " steps {}–{} · {} ",
        view.entries[first].step,
        view.entries[last].step,
        if view.top.is_none() {
            "following"
        } else {
            "End: follow"
        }
    );
    if let Some(Line { spans, .. }) = lines.first_mut() {
        let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
        if used + position.chars().count() < w {
            spans.push(Span::styled(
                format!("{:>width$}", position, width = w - used),
                Style::new().fg(theme.dim),
            ));
        }
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// Colours for the task series, cycled: theme colours so every theme stays legible.
fn series_colors(theme: &Theme) -> [Color; 4] {
    [theme.val_loss, theme.train_loss, theme.lr, theme.grad_norm]
}

fn draw_task_chart(
    frame: &mut Frame,
    area: Rect,
    tasks: &BTreeMap<String, Vec<TaskPoint>>,
    theme: &Theme,
) {
    let series: Vec<(String, Vec<(f64, f64)>)> = tasks
        .iter()
        .map(|(name, points)| {
            let data = points
                .iter()
                .filter(|p| p.acc.is_finite())
                .map(|p| (p.step as f64, p.acc))
                .collect();
            (format!("{name} acc"), data)
        })
        .collect();
    let steps = tasks.values().flatten().map(|p| p.step as f64);
    let (x0, x1) = steps.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), s| {
        (a.min(s), b.max(s))
    });
    let (x0, x1) = if x0.is_finite() { (x0, x1) } else { (0.0, 1.0) };
    let x1 = x1.max(x0 + 1.0);
    // Chance (the floor to beat), averaged over the tasks' latest scores.
    let chances: Vec<f64> = tasks
        .values()
        .filter_map(|p| p.last().map(|p| p.chance))
        .filter(|c| c.is_finite())
        .collect();
    let chance_line = (!chances.is_empty()).then(|| {
        let c = chances.iter().sum::<f64>() / chances.len() as f64;
        vec![(x0, c), (x1, c)]
    });
    let colors = series_colors(theme);
    let mut datasets: Vec<Dataset> = series
        .iter()
        .enumerate()
        .map(|(i, (name, data))| {
            Dataset::default()
                .name(name.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(colors[i % colors.len()]))
                .data(data)
        })
        .collect();
    if let Some(line) = &chance_line {
        datasets.push(
            Dataset::default()
                .name("chance")
                .marker(Marker::Dot)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(theme.dim))
                .data(line),
        );
    }
    let xl = |v: f64| format!("{v:.0}");
    let chart = Chart::new(datasets)
        .style(theme.base())
        .x_axis(
            Axis::default()
                .style(Style::new().fg(theme.dim))
                .bounds([x0, x1])
                .labels([xl(x0), xl((x0 + x1) / 2.0), xl(x1)]),
        )
        .y_axis(
            Axis::default()
                .style(Style::new().fg(theme.dim))
                .bounds([0.0, 1.0])
                .labels(["0", "0.5", "1"]),
        )
        .legend_position(Some(LegendPosition::TopLeft))
        .hidden_legend_constraints((Constraint::Percentage(60), Constraint::Percentage(60)));
    frame.render_widget(chart, area);
}
