//! The `?` help overlay and the quit confirmation.

use super::{centered, pane_block};
use crate::tui::app::{App, Mode};
use crate::tui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui::Frame;

/// Every binding, grouped; also the reference for the report and README.
pub const HELP: &[(&str, &[(&str, &str)])] = &[
    (
        "training",
        &[
            ("p / space", "pause or resume"),
            ("s", "save a checkpoint now"),
            ("e / k", "evaluate now / live controls pane"),
            ("q", "quit (asks: save & quit / quit / cancel)"),
            ("Ctrl-C", "save & quit; again: quit now"),
        ],
    ),
    (
        "view",
        &[
            ("Tab / arrows", "move focus between panes"),
            ("[ / ]", "less / more EMA smoothing"),
            ("l", "toggle log scale"),
            ("w", "full history / last 200 steps"),
            ("m", "system: RSS, CPU, GPU, MFU peak"),
            ("t", "chronicle: samples and task scores"),
            ("x / r", "dismiss alerts / rewind from a spike"),
            ("Esc", "close prompt pane / overlay"),
        ],
    ),
    (
        "prompt (g or /)",
        &[
            ("Enter", "generate from current weights"),
            ("Esc", "cancel generation, then close"),
            ("Up / Down", "pick temp, top-k, top-p, max"),
            ("PgUp / PgDn", "raise / lower the picked knob"),
            ("Ctrl-R", "again: re-run the newest prompt"),
            ("Ctrl-P / N", "scroll to older / newer samples"),
            ("Tab", "leave the input (keys work again)"),
        ],
    ),
    (
        "checkpoints (c)",
        &[
            ("Up / Down", "select"),
            ("r / f / b", "resume / fine-tune / rewind to it"),
            ("i", "sample from it (training continues)"),
            ("e / d", "export to HF / delete"),
            ("u", "pin / unpin (retention keeps pinned)"),
            ("R / F5", "refresh now"),
        ],
    ),
    (
        "runs (R)",
        &[
            ("↑↓ / space", "move / select runs to overlay"),
            ("x", "x axis: step / tokens / wall-clock"),
            ("Enter / r", "follow that run (watch) / refresh"),
        ],
    ),
];

/// Draw the help overlay.
pub fn render_help(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let mut lines = Vec::new();
    if app.mode == Mode::Watch {
        lines.push(Line::styled(
            "watch mode: read-only, training keys are disabled",
            Style::new().fg(theme.warning),
        ));
    }
    for (group, keys) in HELP {
        lines.push(Line::styled(
            *group,
            Style::new().fg(theme.accent).add_modifier(Modifier::BOLD),
        ));
        for (k, what) in *keys {
            lines.push(Line::from(vec![
                Span::styled(
                    format!("  {k:<14}"),
                    Style::new().fg(theme.text).add_modifier(Modifier::BOLD),
                ),
                Span::styled(*what, Style::new().fg(theme.dim)),
            ]));
        }
    }
    if !app.notice_log.is_empty() {
        lines.push(Line::styled(
            "recent notices (newest last)",
            Style::new().fg(theme.accent).add_modifier(Modifier::BOLD),
        ));
        for n in &app.notice_log {
            lines.push(Line::styled(format!("  {n}"), Style::new().fg(theme.dim)));
        }
    }
    // Wrapped notices may take several rows each: size the box for the wrapped text.
    let inner = 56usize;
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
    let rect = centered(area, 58, rows as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(pane_block(" keys ", true, theme)),
        rect,
    );
}

/// Draw the quit confirmation.
pub fn render_quit(frame: &mut Frame, area: Rect, _app: &App, theme: &Theme) {
    let key = |k: &'static str| {
        Span::styled(
            k,
            Style::new().fg(theme.accent).add_modifier(Modifier::BOLD),
        )
    };
    let lines = vec![
        Line::raw("Quit the cockpit? Training stops."),
        Line::raw(""),
        Line::from(vec![key("s"), Span::raw("  save a checkpoint, then quit")]),
        Line::from(vec![key("q"), Span::raw("  quit without saving")]),
        Line::from(vec![key("Esc"), Span::raw(" cancel")]),
    ];
    let rect = centered(area, 42, lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(pane_block(" quit ", true, theme)),
        rect,
    );
}
