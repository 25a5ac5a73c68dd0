//! The control pane (`k`: live keys, their values and change history, the edit or y/n line)
//! and the rewind dialog (checkpoint, adjustable skip, y/n). State and keys: `tui/steer.rs`.

use super::{centered, pane_block};
use crate::controls::LIVE_KEYS;
use crate::tui::app::App;
use crate::tui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

/// History lines shown under the keys.
const HISTORY_LINES: usize = 4;

/// Draw the control pane.
pub fn render_controls(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let pane = &app.controls;
    let bold = |c| Style::new().fg(c).add_modifier(Modifier::BOLD);
    let mut lines = Vec::new();
    for (i, key) in LIVE_KEYS.iter().enumerate() {
        let value = pane.value(i).map_or("?".to_string(), |v| v.to_string());
        let style = if i == pane.selected {
            Style::new().fg(theme.selection_fg).bg(theme.selection_bg)
        } else {
            Style::new().fg(theme.text)
        };
        lines.push(Line::styled(format!(" {key:<20} {value:>12} "), style));
    }
    lines.push(Line::raw(""));
    let key = LIVE_KEYS[pane.selected];
    if let Some(c) = &pane.confirm {
        lines.push(Line::styled(
            format!(" apply {} {}? y / n", c.key, c.preview),
            bold(theme.warning),
        ));
    } else if let Some(input) = &pane.input {
        lines.push(Line::from(vec![
            Span::styled(format!(" {key} = "), bold(theme.accent)),
            Span::styled(format!("{input}▏"), Style::new().fg(theme.text)),
        ]));
    } else {
        lines.push(Line::styled(
            " ↑↓ key  Enter type  + / - double / halve  Esc close",
            Style::new().fg(theme.dim),
        ));
    }
    if let Some(e) = &pane.error {
        lines.push(Line::styled(format!(" {e}"), Style::new().fg(theme.error)));
    }
    lines.push(Line::styled(" changes", bold(theme.accent)));
    if pane.history.is_empty() {
        lines.push(Line::styled(" none yet", Style::new().fg(theme.dim)));
    }
    let skip = pane.history.len().saturating_sub(HISTORY_LINES);
    for r in &pane.history[skip..] {
        lines.push(Line::styled(
            format!(
                " step {:>6}  {} {} -> {}",
                r.step, r.change.key, r.change.old, r.change.new
            ),
            Style::new().fg(theme.dim),
        ));
    }
    let rect = centered(area, 60, lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(pane_block(" controls (live) ", true, theme)),
        rect,
    );
}

/// Draw the rewind dialog.
pub fn render_rewind(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let Some(r) = &app.rewind else {
        return;
    };
    let key = |k: &'static str| {
        Span::styled(
            k,
            Style::new().fg(theme.accent).add_modifier(Modifier::BOLD),
        )
    };
    let lines = vec![
        Line::raw(format!(
            " back to step {}: {}",
            r.step,
            r.checkpoint.display()
        )),
        Line::from(vec![
            Span::raw(" skip the next "),
            Span::styled(
                format!("{}", r.skip),
                Style::new().fg(theme.warning).add_modifier(Modifier::BOLD),
            ),
            Span::raw(" steps of data"),
        ]),
        Line::styled(
            " continues as a new branch run; newer checkpoints stay",
            Style::new().fg(theme.dim),
        ),
        Line::raw(""),
        Line::from(vec![
            key(" ↑↓"),
            Span::raw(" skip ±1  "),
            key("PgUp/PgDn"),
            Span::raw(" ±10  "),
            key("y"),
            Span::raw(" rewind  "),
            key("n"),
            Span::raw(" cancel"),
        ]),
    ];
    let rect = centered(area, 64, lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(pane_block(" rewind and skip ", true, theme)),
        rect,
    );
}
