//! Layout and drawing. Each pane is a small module with `render(frame, area, &App, &Theme)`,
//! or a component's own `draw` (run_view/, prompt/, browser/, runs_view/, chronicle/); this
//! module only decides where they go for the current terminal size, plus the shared helpers.

pub mod dialogs;
pub mod status;
pub mod steer;
pub mod system;
pub mod system_watch;

use super::app::{App, Overlay, Pane};
use super::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, BorderType, Paragraph, Wrap};
use ratatui::Frame;

/// Smallest terminal the layout works in; below it a clear message replaces the panes.
pub const MIN_WIDTH: u16 = 50;
/// See [`MIN_WIDTH`].
pub const MIN_HEIGHT: u16 = 15;

/// Draw the whole cockpit for the current frame.
pub fn draw(frame: &mut Frame, app: &App, theme: &Theme) {
    let area = frame.area();
    frame.render_widget(Block::new().style(theme.base()), area);
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "enlarge the terminal (need at least {MIN_WIDTH}x{MIN_HEIGHT}, have {}x{})",
            area.width, area.height
        );
        let p = Paragraph::new(msg)
            .style(Style::new().fg(theme.warning).bg(theme.background))
            .wrap(Wrap { trim: true })
            .centered();
        frame.render_widget(p, area);
        return;
    }
    let banner = status::banner_line(app, theme);
    let [top, banner_area, main, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::from(banner.is_some())),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    status::render(frame, top, app, theme);
    if let Some(line) = banner {
        frame.render_widget(Paragraph::new(line), banner_area);
    }
    status::render_footer(frame, footer, app, theme);

    let charts = if app.prompt_open {
        let prompt_h = (main.height / 2).max(8).min(main.height.saturating_sub(8));
        let [charts, prompt_area] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(prompt_h)]).areas(main);
        crate::tui::prompt::render(frame, prompt_area, app, theme);
        charts
    } else {
        main
    };
    if app.chronicle.is_open() {
        crate::tui::chronicle::draw(frame, charts, &app.chronicle, theme);
    } else {
        crate::tui::run_view::draw(frame, charts, app, theme);
    }

    match app.overlay {
        Overlay::None => {}
        Overlay::Help => dialogs::render_help(frame, area, app, theme),
        Overlay::QuitConfirm => dialogs::render_quit(frame, area, app, theme),
        Overlay::Checkpoints => crate::tui::browser::render(frame, area, app, theme),
        Overlay::Controls => steer::render_controls(frame, area, app, theme),
        Overlay::Rewind => steer::render_rewind(frame, area, app, theme),
        Overlay::Runs => super::runs_view::draw(frame, area, &app.runs, theme, app.now_unix),
    }
}

/// A bordered pane whose border shows focus.
pub fn pane_block<'a>(title: impl Into<Line<'a>>, focused: bool, theme: &Theme) -> Block<'a> {
    Block::bordered()
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Rounded
        })
        .border_style(theme.border_style(focused))
        .title(
            title
                .into()
                .style(Style::new().fg(theme.accent).add_modifier(Modifier::BOLD)),
        )
        .style(theme.base())
}

/// A table whose selected row is drawn as in every list of the cockpit (checkpoints, runs).
pub fn selection_table<'a>(
    rows: impl IntoIterator<Item = ratatui::widgets::Row<'a>>,
    widths: &[Constraint],
    header: ratatui::widgets::Row<'a>,
    theme: &Theme,
) -> ratatui::widgets::Table<'a> {
    ratatui::widgets::Table::new(rows, widths.to_vec())
        .header(header)
        .row_highlight_style(
            Style::new()
                .bg(theme.selection_bg)
                .fg(theme.selection_fg)
                .add_modifier(Modifier::BOLD),
        )
        .highlight_symbol("▶ ")
}

/// Whether `pane` holds focus (and no overlay hides it).
pub fn focused(app: &App, pane: Pane) -> bool {
    app.focus == pane && app.overlay == Overlay::None
}

/// A `w`x`h` rectangle centred in `area`, clipped to it.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Cut `s` to `max` chars with an ellipsis, for table cells and one-line summaries.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else if max == 0 {
        String::new()
    } else {
        let mut out: String = s.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

/// Hard-wrap text to `width` columns (char-based), keeping explicit newlines.
pub fn wrap_text(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    for raw in text.split('\n') {
        let chars: Vec<char> = raw.chars().collect();
        if chars.is_empty() {
            out.push(String::new());
        }
        for chunk in chars.chunks(width) {
            out.push(chunk.iter().collect());
        }
    }
    out
}
