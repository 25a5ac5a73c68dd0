//! Status bar (top), alert/error banner and key-help footer (bottom).

use crate::protocol::AlertKind;
use crate::tui::app::{App, Mode, Overlay, Pane, RunState};
use crate::tui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// The state word as shown; the tmux e2e test greps for `RUNNING` and `PAUSED`.
pub fn state_word(app: &App) -> &'static str {
    match (app.mode, &app.state) {
        (Mode::Inspect, RunState::Running | RunState::Paused) => "INSPECT",
        (_, s) => s.label(),
    }
}

/// One line: `WATCH │ run │ step 123/100000 │ RUNNING · SAVING │ cpu │ 1.2M params`.
pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let sep = || Span::styled(" │ ", Style::new().fg(theme.border));
    let bold = Modifier::BOLD;
    let mut spans = vec![Span::styled(
        " llite ",
        Style::new()
            .fg(theme.background)
            .bg(theme.accent)
            .add_modifier(bold),
    )];
    if app.mode == Mode::Watch {
        spans.push(Span::styled(
            " WATCH",
            Style::new().fg(theme.warning).add_modifier(bold),
        ));
    }
    let (name, max, device) = match &app.info {
        Some(i) => (i.run_name.clone(), i.max_steps, i.device.as_str()),
        // Watch mode says what it waits for instead of an empty "(starting)".
        None => match (&app.runs.current, app.mode) {
            (Some(dir), Mode::Watch) => (
                format!(
                    "waiting for {}",
                    crate::store::layout::metrics_path(dir).display()
                ),
                0,
                "?",
            ),
            _ => ("(starting)".to_string(), 0, "?"),
        },
    };
    spans.push(Span::raw(" "));
    spans.push(Span::styled(name, Style::new().add_modifier(bold)));
    spans.push(sep());
    spans.push(Span::raw(format!("step {}/{}", app.step(), max)));
    spans.push(sep());
    let color = match app.state {
        RunState::Running => theme.ok,
        RunState::Paused | RunState::Starting => theme.warning,
        RunState::Finished(_) => theme.accent,
        RunState::Error => theme.error,
    };
    spans.push(Span::styled(
        state_word(app),
        Style::new().fg(color).add_modifier(bold),
    ));
    if app.saving {
        spans.push(Span::styled(" · SAVING", Style::new().fg(theme.warning)));
    }
    if app.side.active.is_some() {
        spans.push(Span::styled(
            " · SIDE SAMPLE",
            Style::new().fg(theme.accent),
        ));
    }
    if app.prompt.active.is_some() {
        spans.push(Span::styled(" · SAMPLING", Style::new().fg(theme.accent)));
    }
    if let Some(secs) = app.watch_silence_secs() {
        spans.push(Span::styled(
            format!(
                " · no update for {}",
                crate::tui::app::fmt_duration(secs as f64)
            ),
            Style::new().fg(theme.warning),
        ));
    }
    if let RunState::Finished(reason) = app.state {
        spans.push(Span::styled(
            format!(" ({reason:?})").to_lowercase(),
            Style::new().fg(theme.dim),
        ));
    }
    spans.push(sep());
    spans.push(Span::raw(device.to_string()));
    if let Some(peers) = app.run_view.steps.last().and_then(peer_times) {
        spans.push(Span::styled(peers, Style::new().fg(theme.dim)));
    }
    if let Some(info) = &app.info {
        spans.push(sep());
        spans.push(Span::styled(
            format!("{} params", crate::tui::app::fmt_count(info.params as f64)),
            Style::new().fg(theme.dim),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(theme.base()), area);
}

/// ` · 2 peers 41|43 ms, all-reduce 3 ms`: each data-parallel peer's compute time of the
/// last step (a straggler shows) and the wait in the all-reduce; None on one device.
pub fn peer_times(step: &crate::protocol::StepStats) -> Option<String> {
    if step.peers <= 1 {
        return None;
    }
    let times: Vec<String> = step
        .peer_step_ms
        .iter()
        .map(|ms| format!("{ms:.0}"))
        .collect();
    Some(format!(
        " · {} peers {} ms, all-reduce {:.0} ms",
        step.peers,
        times.join("|"),
        step.allreduce_ms
    ))
}

/// The one-line banner above the panes: engine error, newest unseen alert, or theme warning.
pub fn banner_line(app: &App, theme: &Theme) -> Option<Line<'static>> {
    let style = |c| {
        Style::new()
            .fg(theme.background)
            .bg(c)
            .add_modifier(Modifier::BOLD)
    };
    if let Some(err) = &app.error {
        return Some(Line::styled(
            format!(" ✖ engine error: {err}"),
            style(theme.error),
        ));
    }
    let unseen = app.unseen_alerts();
    if let Some(a) = unseen.last() {
        let more = if unseen.len() > 1 {
            format!(" (+{} more)", unseen.len() - 1)
        } else {
            String::new()
        };
        let kind = a.kind.label();
        return Some(Line::styled(
            format!(
                " ⚠ alert at step {}: {} — {}{more}  [x dismiss{}]",
                a.step,
                kind,
                a.detail,
                if matches!(a.kind, AlertKind::LossSpike | AlertKind::GradExplosion) {
                    ", r rewind"
                } else {
                    ""
                }
            ),
            style(theme.warning),
        ));
    }
    app.theme_warning
        .as_ref()
        .map(|w| Line::styled(format!(" ⚠ {w}"), Style::new().fg(theme.warning)))
}

/// A notice cut to `width` columns: whole when it fits, else ending in "… (? all)" so the user
/// knows the help overlay shows it in full.
pub fn fit_notice(notice: &str, width: usize) -> String {
    let line = format!(" {notice}");
    if line.chars().count() <= width {
        return line;
    }
    const MORE: &str = "… (? all)";
    let keep = width.saturating_sub(MORE.chars().count());
    let mut cut: String = line.chars().take(keep).collect();
    cut.push_str(MORE);
    cut.chars().take(width).collect()
}

/// Context-dependent key hints, replaced by the latest notice when there is one.
pub fn render_footer(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let line = if let Some(input) = app.steer_footer() {
        Line::styled(input, Style::new().fg(theme.warning))
    } else if let Some(n) = &app.notice {
        let color = match app.notice_warns {
            true => theme.warning,
            false => theme.text,
        };
        Line::styled(fit_notice(n, area.width as usize), Style::new().fg(color))
    } else {
        let pause = match app.state {
            RunState::Paused => "resume",
            _ => "pause",
        };
        let keys: &[(&str, &str)] = match app.overlay {
            Overlay::Checkpoints => &[
                ("↑↓", "select"),
                ("r", "resume"),
                ("f", "fine-tune"),
                ("i", "sample"),
                ("e", "export"),
                ("d", "delete"),
                ("u", "pin"),
                ("Esc", "close"),
            ],
            Overlay::QuitConfirm => &[("s", "save & quit"), ("q", "quit"), ("Esc", "cancel")],
            Overlay::Help => &[("any key", "close help")],
            Overlay::Controls => &[
                ("↑↓", "key"),
                ("Enter", "type"),
                ("+/-", "double/halve"),
                ("y/n", "confirm"),
                ("Esc", "close"),
            ],
            Overlay::Rewind => &[("↑↓", "skip"), ("y", "rewind"), ("n", "cancel")],
            Overlay::Runs => &[
                ("↑↓", "move"),
                ("space", "select"),
                ("x", "x axis"),
                ("Enter", "watch"),
                ("r", "refresh"),
                ("Esc", "close"),
            ],
            Overlay::None if app.prompt_open && app.focus == Pane::Prompt => &[
                ("Enter", "generate"),
                ("Esc", "cancel/close"),
                ("↑↓", "knob"),
                ("PgUp/PgDn", "adjust"),
                ("^R", "again"),
                ("^P/^N", "history"),
                ("Tab", "leave"),
                ("^U", "clear"),
            ],
            Overlay::None if app.chronicle.is_open() => &[
                ("↑↓", "scroll"),
                ("PgUp/PgDn", "page"),
                ("Home/End", "first/follow"),
                ("t/Esc", "close"),
                ("p", "pause"),
                ("?", "help"),
            ],
            Overlay::None => &[
                ("p", pause),
                ("s", "save"),
                ("g", "prompt"),
                ("c", "checkpoints"),
                ("k", "controls"),
                ("R", "runs"),
                ("[ ]", "smooth"),
                ("l", "log"),
                ("w", "window"),
                ("Tab", "focus"),
                ("?", "help"),
                ("q", "quit"),
            ],
        };
        let mut spans = vec![Span::raw(" ")];
        for (k, what) in keys {
            spans.push(Span::styled(
                *k,
                Style::new().fg(theme.accent).add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::styled(
                format!(" {what}  "),
                Style::new().fg(theme.dim),
            ));
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line).style(theme.base()), area);
}
