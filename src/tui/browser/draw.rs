//! Drawing the checkpoint browser overlay: every checkpoint under the runs directory with its
//! age, size and validity, plus the small dialogs its actions open.

use super::{BrowserPrompt, BrowserState};
use crate::tui::app::{fmt_count, fmt_duration, App};
use crate::tui::panes::{centered, pane_block, selection_table, truncate, wrap_text};
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Paragraph, Row, TableState, Wrap};
use ratatui::Frame;
use std::path::Path;

/// Human byte sizes in binary units ("12.3 MiB"), the same as `ckpt ls` prints.
pub fn fmt_bytes(b: u64) -> String {
    crate::units::format_bytes(b)
}

/// What the browser shows of the rest of the cockpit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BrowserFrame<'a> {
    /// Where the checkpoints are looked for (the title).
    pub runs_dir: &'a Path,
    /// Seconds since the Unix epoch, for ages.
    pub now_unix: u64,
    /// The run this cockpit shows, whose checkpoints get a `*`.
    pub current_run: Option<&'a str>,
}

/// Draw the browser from the App (the layout's entry point).
pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let ctx = BrowserFrame {
        runs_dir: &app.runs_dir,
        now_unix: app.now_unix,
        current_run: app.info.as_ref().map(|i| i.run_dir.as_str()),
    };
    draw(frame, area, &app.browser, &ctx, theme);
}

/// Draw the browser over `area`.
pub fn draw(frame: &mut Frame, area: Rect, b: &BrowserState, ctx: &BrowserFrame, theme: &Theme) {
    let popup = centered(
        area,
        area.width.saturating_sub(4),
        area.height.saturating_sub(2),
    );
    frame.render_widget(Clear, popup);
    let title = format!(" checkpoints · {} ", ctx.runs_dir.display());
    let block = pane_block(title, true, theme);
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let [table_area, detail] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(3)]).areas(inner);

    let header = Row::new(["run", "step", "tokens", "val loss", "size", "age", "status"])
        .style(Style::new().fg(theme.accent).add_modifier(Modifier::BOLD));
    let rows = b.entries.iter().map(|c| {
        let age = if c.written_unix == 0 {
            "?".to_string()
        } else {
            format!(
                "{} ago",
                fmt_duration(ctx.now_unix.saturating_sub(c.written_unix) as f64)
            )
        };
        let (status, style) = match &c.error {
            None if c.pinned => ("ok · pinned".to_string(), Style::new().fg(theme.ok)),
            None => ("ok".to_string(), Style::new().fg(theme.ok)),
            Some(e) => (format!("INVALID: {e}"), Style::new().fg(theme.error)),
        };
        let current = ctx.current_run.is_some_and(|r| c.path.starts_with(r));
        let run = if current {
            format!("{} *", c.run_name)
        } else {
            c.run_name.clone()
        };
        Row::new(vec![
            run,
            c.step.to_string(),
            fmt_count(c.tokens as f64),
            c.val_loss_label().unwrap_or_else(|| "—".into()),
            fmt_bytes(c.size_bytes),
            age,
            status,
        ])
        .style(if c.error.is_some() {
            style
        } else {
            Style::new().fg(theme.text)
        })
    });
    let widths = [
        Constraint::Fill(2),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(14), // "4.1234 @ 12345" when measured before the checkpoint
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Fill(3),
    ];
    let table = selection_table(rows, &widths, header, theme);
    let mut state =
        TableState::default().with_selected((!b.entries.is_empty()).then_some(b.selected));
    if b.entries.is_empty() {
        let msg = Paragraph::new("no checkpoints yet (press s in the cockpit to save one)")
            .style(Style::new().fg(theme.dim));
        frame.render_widget(msg, table_area);
    } else {
        frame.render_stateful_widget(table, table_area, &mut state);
    }

    let detail_text = match b.selected_entry() {
        Some(c) => match &c.error {
            Some(e) => format!("{}\ninvalid: {e}", c.path),
            None => c.path.clone(),
        },
        None => String::new(),
    };
    frame.render_widget(
        Paragraph::new(detail_text)
            .style(Style::new().fg(theme.dim))
            .wrap(Wrap { trim: false })
            .block(
                Block::new()
                    .borders(ratatui::widgets::Borders::TOP)
                    .border_style(Style::new().fg(theme.border)),
            ),
        detail,
    );

    if let Some(prompt) = &b.prompt {
        render_prompt(frame, popup, prompt, theme);
    }
}

fn render_prompt(frame: &mut Frame, area: Rect, prompt: &BrowserPrompt, theme: &Theme) {
    let w = area.width.saturating_sub(8).min(76);
    let (title, body): (&str, Vec<String>) = match prompt {
        BrowserPrompt::FineTuneData { checkpoint, input } => (
            " fine-tune ",
            vec![
                format!("from {}", checkpoint.display()),
                "instruction data file (empty = the run's corpus):".into(),
                format!("› {input}▌"),
                "Enter start · Esc cancel".into(),
            ],
        ),
        BrowserPrompt::ExportDir { checkpoint, input } => (
            " export to Hugging Face ",
            vec![
                format!("from {}", checkpoint.display()),
                "output directory:".into(),
                format!("› {input}▌"),
                "Enter export · Esc cancel".into(),
            ],
        ),
        BrowserPrompt::ConfirmDelete(p) => (
            " delete checkpoint ",
            vec![
                format!("delete {} ?", p.display()),
                "y delete · n/Esc keep".into(),
            ],
        ),
        BrowserPrompt::ConfirmSwitch(_) => (
            " replace the running engine ",
            vec![
                "training is running in this cockpit.".into(),
                "s save a checkpoint, stop it, then switch".into(),
                "y stop without saving, then switch".into(),
                "n/Esc cancel".into(),
            ],
        ),
    };
    let inner_w = w.saturating_sub(2) as usize;
    let lines: Vec<Line> = body
        .iter()
        .flat_map(|l| wrap_text(&truncate(l, inner_w * 3), inner_w))
        .map(Line::raw)
        .collect();
    let rect = centered(area, w, lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(pane_block(title, true, theme)),
        rect,
    );
}
