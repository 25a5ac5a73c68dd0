//! Drawing the prompt pane: sampling knobs, the input line, and the finished (scrollable,
//! `history.rs`) plus streaming generations, of the live weights or of the side engine's
//! checkpoint (`side.rs`), both through one list of [`Shown`] generations.

use super::PromptState;
use crate::tui::app::{App, Mode, Pane};
use crate::tui::panes::{focused, pane_block, wrap_text};
use crate::tui::side::SideState;
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// What the pane shows of the rest of the cockpit.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptFrame<'a> {
    /// Where samples come from ("current weights, step 40", "checkpoint", ...).
    pub source: String,
    /// The pane has focus: thick border, terminal cursor in the input.
    pub focused: bool,
    /// The side engine's target and generations; shown instead of the live ones when set.
    pub side: &'a SideState,
}

/// Draw the pane from the App (the layout's entry point).
pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let source = match (&app.side.target, app.mode) {
        (Some(t), _) => format!("{} step {} · side engine", t.run_name, t.step),
        (None, Mode::Inspect) => "checkpoint".to_string(),
        (None, Mode::Watch) => "read-only".to_string(),
        (None, Mode::Live) => format!("current weights, step {}", app.step()),
    };
    let ctx = PromptFrame {
        source,
        focused: focused(app, Pane::Prompt),
        side: &app.side,
    };
    draw(frame, area, &app.prompt, &ctx, theme);
}

/// Draw the pane (and place the terminal cursor in the input when focused).
pub fn draw(frame: &mut Frame, area: Rect, p: &PromptState, ctx: &PromptFrame, theme: &Theme) {
    let is_focused = ctx.focused;
    let mut title = format!(" prompt · {} ", ctx.source);
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
    for g in generations(p, ctx.side) {
        (newest_header, newest_prompt) = (lines.len(), g.prompt);
        let style = Style::new().fg(if g.streaming { theme.accent } else { theme.dim });
        lines.push(Line::styled(g.header, style));
        let cursor = if g.streaming { "▌" } else { "" };
        for l in wrap_text(&format!("{}{}{cursor}", g.prompt, g.text), w) {
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

/// One generation as the pane lists it: a header line over its prompt and text.
#[derive(Debug, Clone, PartialEq)]
struct Shown<'a> {
    header: String,
    prompt: &'a str,
    text: &'a str,
    /// Still streaming: accent header and a cursor after the text.
    streaming: bool,
}

/// The generations shown, oldest first: the side engine's while a side target is set, else
/// the live weights' (the one streaming only while the newest is in view).
fn generations<'a>(p: &'a PromptState, side: &'a SideState) -> Vec<Shown<'a>> {
    let mut out = Vec::new();
    if side.target.is_some() {
        for e in &side.history {
            let note = if e.note.is_empty() {
                String::new()
            } else {
                format!(" · {}", e.note)
            };
            out.push(Shown {
                header: format!(
                    "─ checkpoint step {} · {} tok · {:.0} tok/s{note}",
                    e.step, e.tokens, e.tokens_per_s
                ),
                prompt: &e.prompt,
                text: &e.text,
                streaming: false,
            });
        }
        if let Some(a) = &side.active {
            let what = if a.started {
                "─ generating on the side…"
            } else {
                "─ loading the checkpoint…"
            };
            out.push(Shown {
                header: what.into(),
                prompt: &a.prompt,
                text: &a.text,
                streaming: true,
            });
        }
        return out;
    }
    for e in p.history.visible() {
        out.push(Shown {
            header: format!(
                "─ step {} · {} tok · {:.0} tok/s",
                e.step, e.tokens, e.tokens_per_s
            ),
            prompt: &e.prompt,
            text: &e.text,
            streaming: false,
        });
    }
    if let Some(a) = p.active.as_ref().filter(|_| p.history.scroll() == 0) {
        out.push(Shown {
            header: "─ generating…".into(),
            prompt: &a.prompt,
            text: &a.text,
            streaming: true,
        });
    }
    out
}
