//! The runtime's side of the runs pane: it reads the runs index and curves (through
//! `runs_view::loader`, i.e. `store/`) when the pane asks, and switches the followed run in
//! watch mode. Kept out of runtime.rs so the pane's wiring stays in one place.

use super::super::app::{Mode, Overlay};
use super::super::runs_view::{loader, RunsRequest};
use super::{Followed, Runtime};
use std::path::PathBuf;

impl Runtime {
    /// Carry out one request of the runs pane.
    pub(super) fn runs_request(&mut self, req: RunsRequest) {
        match req {
            RunsRequest::Refresh => self.reload_runs(),
            RunsRequest::LoadCurves(picked) => {
                self.app.runs.set_curves(loader::load_selected(&picked));
            }
            RunsRequest::Watch(dir) => self.switch_watched(dir),
            RunsRequest::Close => self.app.overlay = Overlay::None,
        }
    }

    /// While the pane is open, follow the runs directory's changes; true when redrawn data.
    pub(super) fn refresh_runs_pane(&mut self) -> bool {
        if self.app.overlay != Overlay::Runs {
            return false;
        }
        self.reload_runs();
        true
    }

    fn reload_runs(&mut self) {
        if self.app.runs.source == loader::RunsSource::default() {
            self.app.runs.source.roots.push(self.runs_dir.clone());
        }
        let index = self.app.runs.source.load();
        self.app.runs.set_index(index);
        let req = self.app.runs.curves_request();
        self.runs_request(req);
    }

    /// Watch mode: follow `dir` from now on (its whole history is read again).
    fn switch_watched(&mut self, dir: PathBuf) {
        if self.app.mode != Mode::Watch || self.tail.is_none() {
            self.app.notify(super::super::keys::READ_ONLY);
            return;
        }
        self.tail = Some(Followed::new(&dir, &self.producers, &self.watched));
        if self.remote.is_some() {
            let feed = self.producers.feed().clone();
            self.remote = Some(super::super::remote::Remote::new(dir.clone(), feed));
        }
        self.app.info = None;
        self.app.run_view.clear();
        self.app.state = super::super::app::RunState::Starting;
        self.app.runs.current = Some(dir.clone());
        self.app.overlay = Overlay::None;
        self.app.notify(format!("watching {}", dir.display()));
    }
}
