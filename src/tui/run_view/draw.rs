//! Where the run view's charts go in the area the layout leaves them: side by side from
//! [`WIDE`] columns, stacked below it; the system pane (`m`) takes the LR/grad chart's place.

use super::{loss, lrgrad, throughput};
use crate::tui::app::App;
use crate::tui::panes::system;
use crate::tui::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::Frame;

/// From this width the charts go side by side instead of stacked.
const WIDE: u16 = 100;

/// Draw the loss, throughput and LR/grad (or system) panes into `charts`.
pub fn draw(frame: &mut Frame, charts: Rect, app: &App, theme: &Theme) {
    if charts.width >= WIDE {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)])
                .areas(charts);
        let [tp, lg] =
            Layout::vertical([Constraint::Length(throughput::HEIGHT), Constraint::Min(0)])
                .areas(right);
        loss::render(frame, left, app, theme);
        throughput::render(frame, tp, app, theme);
        lrgrad_or_system(frame, lg, app, theme);
    } else {
        let bottom_h = throughput::HEIGHT.min(charts.height / 2);
        let [top, bottom] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(bottom_h)]).areas(charts);
        let [tp, lg] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(bottom);
        loss::render(frame, top, app, theme);
        throughput::render(frame, tp, app, theme);
        lrgrad_or_system(frame, lg, app, theme);
    }
}

/// The system pane (`m`) takes the LR/grad chart's place while shown.
fn lrgrad_or_system(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    if app.system.shown {
        system::render(frame, area, app, theme);
    } else {
        lrgrad::render(frame, area, app, theme);
    }
}
