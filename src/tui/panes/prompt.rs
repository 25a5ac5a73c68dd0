//! Prompt pane: sampling knobs, the input line, and finished (scrollable, `prompt_history.rs`)
//! plus streaming generations.

use super::{focused, pane_block, wrap_text};
use crate::tui::app::{App, Mode, Pane};
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Draw the pane (and place the terminal cursor in the input when focused).
pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let p = &app.prompt;
    let source = match (&app.side.target, app.mode) {
        (Some(t), _) => format!("{} step {} · side engine", t.run_name, t.step),
        (None, Mode::Inspect) => "checkpoint".to_string(),
        (None, Mode::Watch) => "read-only".to_string(),
        (None, Mode::Live) => format!("current weights, step {}", app.step()),
    };
    let is_focused = focused(app, Pane::Prompt);
    let mut title = format!(" prompt · {source} ");
    if p.history.scroll() > 0 {
        // Scrolled back (Ctrl-P): say how much newer text is hidden and how to return.
        title.push_str(&format!("· {} newer below (^N) ", p.history.scroll()));
    }
    let block = pane_block(title, is_focused, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height < 3 {
        return;
    }
    let [knobs, input, output] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(inner);

    let values = [
        ("temp", format!("{:.2}", p.params.temperature)),
        (
            "top-k",
            if p.params.top_k == 0 {
                "off".into()
            } else {
                p.params.top_k.to_string()
            },
        ),
        ("top-p", format!("{:.2}", p.params.top_p)),
        ("max", p.params.max_tokens.to_string()),
    ];
    let mut spans = Vec::new();
    for (i, (k, v)) in values.iter().enumerate() {
        let style = if i == p.selected {
            Style::new()
                .fg(theme.selection_fg)
                .bg(theme.selection_bg)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(theme.text)
        };
        spans.push(Span::styled(format!("{k} "), Style::new().fg(theme.dim)));
        spans.push(Span::styled(v.clone(), style));
        spans.push(Span::raw("  "));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), knobs);

    let prefix = "› ";
    let width = input.width.saturating_sub(prefix.len() as u16 + 1) as usize;
    // Scroll the input horizontally so the cursor stays visible.
    let skip = p.cursor.saturating_sub(width);
    let shown: String = p.input.chars().skip(skip).take(width).collect();
    let input_line = if p.input.is_empty() && !is_focused {
        Line::from(vec![
            Span::styled(prefix, Style::new().fg(theme.accent)),
            Span::styled("press g to type a prompt", Style::new().fg(theme.dim)),
        ])
    } else {
        Line::from(vec![
            Span::styled(prefix, Style::new().fg(theme.accent)),
            Span::raw(shown),
        ])
    };
    frame.render_widget(Paragraph::new(input_line), input);
    if is_focused {
        let x = input.x + 2 + (p.cursor - skip) as u16;
        frame.set_cursor_position(Position::new(
            x.min(input.right().saturating_sub(1)),
            input.y,
        ));
    }

    let w = output.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    // The newest generation's header line and prompt, kept in view when its text overflows.
    let (mut newest_header, mut newest_prompt) = (0, "");
    if app.side.target.is_some() {
        // Side samples are shown apart from live-weight ones (side_lines).
        (newest_header, newest_prompt) = side_lines(app, theme, w, &mut lines);
    }
    let live_history: Vec<_> = if app.side.target.is_some() {
        Vec::new()
    } else {
        p.history.visible().collect()
    };
    for e in live_history {
        (newest_header, newest_prompt) = (lines.len(), e.prompt.as_str());
        lines.push(Line::styled(
            format!(
                "─ step {} · {} tok · {:.0} tok/s",
                e.step, e.tokens, e.tokens_per_s
            ),
            Style::new().fg(theme.dim),
        ));
        for l in wrap_text(&format!("{}{}", e.prompt, e.text), w) {
            lines.push(Line::raw(l));
        }
    }
    if let Some((_, prompt, text)) = p
        .active
        .as_ref()
        .filter(|_| app.side.target.is_none() && p.history.scroll() == 0)
    {
        (newest_header, newest_prompt) = (lines.len(), prompt.as_str());
        lines.push(Line::styled("─ generating…", Style::new().fg(theme.accent)));
        for l in wrap_text(&format!("{prompt}{text}▌"), w) {
            lines.push(Line::raw(l));
        }
    }
    let h = output.height as usize;
    let start = lines.len().saturating_sub(h);
    let shown = if start > newest_header && h > 1 {
        // The newest text is taller than the pane: pin its header (tokens, speed, or
        // "generating…") and the prompt's first line above the tail of the text instead of
        // scrolling them away.
        let tail = lines.split_off(lines.len() - (h - 1));
        let mut header = lines.swap_remove(newest_header);
        let prompt_line = newest_prompt.lines().next().unwrap_or("");
        header.push_span(Span::raw(format!(" · {prompt_line}")));
        std::iter::once(header).chain(tail).collect()
    } else {
        lines.split_off(start)
    };
    frame.render_widget(Paragraph::new(shown), output);
}

/// The side engine's generations (header line index and prompt of the newest, as above).
fn side_lines<'a>(
    app: &'a App,
    theme: &Theme,
    w: usize,
    lines: &mut Vec<Line<'a>>,
) -> (usize, &'a str) {
    let mut newest = (0, "");
    for e in &app.side.history {
        newest = (lines.len(), e.prompt.as_str());
        let note = if e.note.is_empty() {
            String::new()
        } else {
            format!(" · {}", e.note)
        };
        lines.push(Line::styled(
            format!(
                "─ checkpoint step {} · {} tok · {:.0} tok/s{note}",
                e.step, e.tokens, e.tokens_per_s
            ),
            Style::new().fg(theme.dim),
        ));
        for l in wrap_text(&format!("{}{}", e.prompt, e.text), w) {
            lines.push(Line::raw(l));
        }
    }
    if let Some(a) = &app.side.active {
        newest = (lines.len(), a.prompt.as_str());
        let what = if a.started {
            "─ generating on the side…"
        } else {
            "─ loading the checkpoint…"
        };
        lines.push(Line::styled(what, Style::new().fg(theme.accent)));
        for l in wrap_text(&format!("{}{}▌", a.prompt, a.text), w) {
            lines.push(Line::raw(l));
        }
    }
    newest
}
