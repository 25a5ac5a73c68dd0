//! The `?` help overlay and the quit confirmation. The help lays its key groups out in as many
//! columns as the terminal is wide (one to three), so every key fits from 80x24 up; a terminal
//! too small even for that shows what fits and says how much is hidden.

use super::{centered, pane_block, wrap_text};
use crate::tui::app::{App, Mode};
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

/// Every binding, grouped; also the reference for the report and README. Keys fit in
/// [`KEY_WIDTH`] columns and descriptions in [`DESC_WIDTH`] (a unit test checks), so two
/// columns of groups fit an 80-column terminal.
pub const HELP: &[(&str, &[(&str, &str)])] = &[
    (
        "training",
        &[
            ("p / space", "pause / resume"),
            ("s", "save a checkpoint now"),
            ("e / k", "eval now / live controls"),
            ("q", "quit: save, quit, cancel"),
            ("Ctrl-C", "save & quit; twice: now"),
        ],
    ),
    (
        "view",
        &[
            ("Tab/arrows", "move focus between panes"),
            ("[ / ]", "less / more EMA smoothing"),
            ("l", "toggle log scale"),
            ("w", "all steps / last 200"),
            ("m", "RSS, CPU, GPU, MFU peak"),
            ("t", "chronicle: samples, tasks"),
            ("x / r", "dismiss alerts / rewind"),
            ("Esc", "close pane / overlay"),
            ("?", "this help; any key closes"),
        ],
    ),
    (
        "prompt (g or /)",
        &[
            ("Enter", "generate (live weights)"),
            ("Esc", "cancel, then close"),
            ("Up / Down", "pick temp/top-k/top-p/max"),
            ("PgUp / PgDn", "raise / lower that knob"),
            ("Ctrl-R", "again: rerun the newest"),
            ("Ctrl-P / N", "older / newer samples"),
            ("Tab", "leave input: keys work"),
        ],
    ),
    (
        "checkpoints (c)",
        &[
            ("Up / Down", "select"),
            ("r / f / b", "resume/fine-tune/rewind"),
            ("i", "sample, training goes on"),
            ("e / d", "export to HF / delete"),
            ("u", "pin/unpin (never pruned)"),
            ("R / F5", "refresh now"),
        ],
    ),
    (
        "runs (R)",
        &[
            ("↑↓ / space", "move / select to overlay"),
            ("x", "x: step/tokens/wall-clock"),
            ("Enter / r", "follow (watch) / refresh"),
        ],
    ),
];

/// Columns of a key name in the help overlay.
pub const KEY_WIDTH: usize = 11;
/// Columns of a key's description in the help overlay.
pub const DESC_WIDTH: usize = 25;
/// One help column: a blank, the key, a blank, the description.
const COLUMN_WIDTH: u16 = (1 + KEY_WIDTH + 1 + DESC_WIDTH) as u16;
/// Blanks between two help columns.
const COLUMN_GAP: u16 = 2;
/// Most columns the help is spread over (more would only leave short columns).
const MAX_COLUMNS: usize = 3;
/// Inner width of the one-column box, wider than a column so notices wrap less.
const ONE_COLUMN_WIDTH: u16 = 56;

/// Rows a group takes: its title and one per key.
fn group_rows(group: usize) -> usize {
    1 + HELP[group].1.len()
}

/// Split the groups, in order, into at most `columns` runs with the shortest tallest run.
pub fn split_groups(columns: usize) -> Vec<std::ops::Range<usize>> {
    let n = HELP.len();
    // Smallest height H such that a greedy fill of columns of height H uses few enough.
    let fill = |h: usize| {
        let mut cols: Vec<std::ops::Range<usize>> = Vec::new();
        cols.push(0..0);
        let mut used = 0;
        for g in 0..n {
            let rows = group_rows(g);
            if used + rows > h && used > 0 {
                let start = cols.last().map_or(0, |r| r.end);
                cols.push(start..start);
                used = 0;
            }
            used += rows;
            cols.last_mut().expect("one column at least").end = g + 1;
        }
        cols
    };
    let tallest = (0..n).map(group_rows).max().unwrap_or(0);
    let total: usize = (0..n).map(group_rows).sum();
    (tallest..=total)
        .map(fill)
        .find(|cols| cols.len() <= columns.max(1))
        .unwrap_or_else(|| fill(total))
}

/// How the help is laid out in a terminal area: columns of groups and the box's inner width.
struct HelpLayout {
    columns: Vec<std::ops::Range<usize>>,
    inner_width: u16,
}

fn help_layout(area: Rect) -> HelpLayout {
    let room = area.width.saturating_sub(2);
    let fits = |n: u16| n * COLUMN_WIDTH + (n - 1) * COLUMN_GAP <= room;
    let n = (1..=MAX_COLUMNS as u16)
        .rev()
        .find(|&n| fits(n))
        .unwrap_or(1);
    let columns = split_groups(n as usize);
    let used = columns.len() as u16;
    let inner_width = if used > 1 {
        used * COLUMN_WIDTH + (used - 1) * COLUMN_GAP
    } else {
        ONE_COLUMN_WIDTH.max(COLUMN_WIDTH).min(room)
    };
    HelpLayout {
        columns,
        inner_width,
    }
}

/// The lines of one column: each group's title, then its keys.
fn column_lines(groups: std::ops::Range<usize>, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for (group, keys) in &HELP[groups] {
        lines.push(Line::styled(
            *group,
            Style::new().fg(theme.accent).add_modifier(Modifier::BOLD),
        ));
        for (k, what) in *keys {
            lines.push(Line::from(vec![
                Span::styled(
                    format!(" {k:<KEY_WIDTH$} "),
                    Style::new().fg(theme.text).add_modifier(Modifier::BOLD),
                ),
                Span::styled(*what, Style::new().fg(theme.dim)),
            ]));
        }
    }
    lines
}

/// Draw the help overlay: key columns, then the newest notices that fit (wrapped whole).
pub fn render_help(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let layout = help_layout(area);
    let width = layout.inner_width;
    let room = usize::from(area.height.saturating_sub(2));
    let mut head = Vec::new();
    if app.mode == Mode::Watch {
        head.push(Line::styled(
            "watch mode: read-only, training keys are disabled",
            Style::new().fg(theme.warning),
        ));
    }
    let mut columns: Vec<Vec<Line>> = layout
        .columns
        .iter()
        .map(|r| column_lines(r.clone(), theme))
        .collect();
    let tallest = columns.iter().map(Vec::len).max().unwrap_or(0);
    // Rows for the keys; a terminal too small for all of them keeps one for the hint.
    let key_rows = if head.len() + tallest <= room {
        tallest
    } else {
        room.saturating_sub(head.len() + 1)
    };
    let hidden: usize = columns
        .iter()
        .map(|c| c.len().saturating_sub(key_rows))
        .sum();
    for c in &mut columns {
        c.truncate(key_rows);
    }
    let mut tail = Vec::new();
    if hidden > 0 {
        tail.push(Line::styled(
            format!("… {hidden} more lines: enlarge to 80x24 for every key"),
            Style::new().fg(theme.warning),
        ));
    }
    let free = room.saturating_sub(head.len() + key_rows + tail.len());
    tail.extend(notice_lines(app, theme, width, free));
    let rows = head.len() + key_rows + tail.len();
    let rect = centered(area, width + 2, rows as u16 + 2);
    frame.render_widget(Clear, rect);
    let block = pane_block(" keys ", true, theme);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [head_area, keys_area, tail_area] = Layout::vertical([
        Constraint::Length(head.len() as u16),
        Constraint::Length(key_rows as u16),
        Constraint::Min(0),
    ])
    .areas(inner);
    frame.render_widget(Paragraph::new(head), head_area);
    let mut x = keys_area.x;
    for lines in columns {
        let w = COLUMN_WIDTH.min(keys_area.right().saturating_sub(x));
        let col = Rect {
            x,
            width: w,
            ..keys_area
        };
        frame.render_widget(Paragraph::new(lines), col);
        x = x.saturating_add(COLUMN_WIDTH + COLUMN_GAP);
    }
    frame.render_widget(Paragraph::new(tail), tail_area);
}

/// The notice log wrapped to `width`, newest last, as many of the newest as fit in `rows`
/// (with a header saying how many older ones are left out).
fn notice_lines(app: &App, theme: &Theme, width: u16, rows: usize) -> Vec<Line<'static>> {
    if app.notice_log.is_empty() || rows < 2 {
        return Vec::new();
    }
    let width = usize::from(width).saturating_sub(2).max(1);
    let mut shown: Vec<Vec<String>> = Vec::new();
    let mut used = 1;
    for n in app.notice_log.iter().rev() {
        let wrapped = wrap_text(n, width);
        if used + wrapped.len() > rows {
            break;
        }
        used += wrapped.len();
        shown.push(wrapped);
    }
    let left_out = app.notice_log.len() - shown.len();
    let title = match left_out {
        0 => "recent notices (newest last)".to_string(),
        n => format!("recent notices (newest last; {n} older not shown)"),
    };
    let mut lines = vec![Line::styled(
        title,
        Style::new().fg(theme.accent).add_modifier(Modifier::BOLD),
    )];
    for wrapped in shown.into_iter().rev() {
        for l in wrapped {
            lines.push(Line::styled(format!("  {l}"), Style::new().fg(theme.dim)));
        }
    }
    lines
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
