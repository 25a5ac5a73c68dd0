//! The runtime's side of its engines: launching one, folding the current engine's events
//! (with the control socket it serves and a resumed run's history), a retiring engine's
//! last saves, and an engine's end. Kept out of runtime.rs so that file stays the loop.

use super::super::app::{App, Mode};
use super::super::ui_event::Generation;
use super::super::watch::MetricsTail;
use super::{Retiring, Runtime};
use crate::protocol::{Event, StartFrom};
use std::path::{Path, PathBuf};

impl Runtime {
    pub(super) fn launch(&mut self, from: StartFrom) {
        let mode = if matches!(from, StartFrom::Inspect(_)) {
            Mode::Inspect
        } else {
            Mode::Live
        };
        let Some(launcher) = &self.launcher else {
            self.app.warn(super::super::keys::READ_ONLY);
            return;
        };
        let result = match launcher.try_lock() {
            Ok(l) => l.launch(from),
            Err(_) => Err(anyhow::anyhow!(
                "busy with an export; try again when it is done"
            )),
        };
        self.launched = self.launched.next();
        let connected = result.and_then(|link| {
            let feed = self.producers.feed();
            feed.connect_engine(link, self.launched)
                .map_err(anyhow::Error::msg)
        });
        match connected {
            Ok(engine) => {
                self.app.on_engine_launched(mode);
                self.engine = Some(engine);
            }
            Err(e) => {
                self.app.on_engine_lost();
                self.app.error = Some(format!("cannot start engine: {e:#}"));
            }
        }
    }

    /// One event of engine `generation`: the current engine's is folded in full; a retiring
    /// one's only reports its last saves. True when anything changed.
    pub(super) fn engine_event(&mut self, generation: Generation, ev: Event) -> bool {
        if self.retiring.as_ref().map(|r| r.engine.generation) == Some(generation) {
            let Event::CheckpointSaved { step, path } = ev else {
                return false;
            };
            self.app
                .notify(format!("checkpoint saved: {path} (step {step})"));
            self.refresh_checkpoints = true;
            return true;
        }
        let Some(engine) = self.engine.as_ref().filter(|e| e.generation == generation) else {
            return false;
        };
        let notice = self.host.observe(&ev, &engine.commands);
        let replay = match &ev {
            Event::Started { info, .. } if info.start_step > 0 => {
                Some((PathBuf::from(&info.run_dir), info.start_step))
            }
            _ => None,
        };
        let actions = self.app.on_event(ev);
        // After `Started`, which starts the app's record of the run afresh.
        if let Some(notice) = notice {
            self.app.on_event(notice);
        }
        if let Some((dir, upto)) = replay {
            replay_history(&mut self.app, &dir, upto);
        }
        self.perform(actions);
        true
    }

    /// Engine `generation` is gone: the current one is reported lost (with a panic's
    /// message); a retiring one makes way for the engine it was replaced by.
    pub(super) fn engine_closed(&mut self, generation: Generation) -> bool {
        if self.retiring.as_ref().map(|r| r.engine.generation) == Some(generation) {
            if let Some(Retiring { mut engine, then }) = self.retiring.take() {
                self.zombies.extend(engine.join.take());
                self.launch(then);
            }
            return true;
        }
        if self.engine.as_ref().map(|e| e.generation) != Some(generation) {
            return false;
        }
        self.host.close();
        self.app.on_engine_lost();
        let panics = super::super::take_background_panics();
        if let (Some(msg), Some(err)) = (panics.last(), self.app.error.as_mut()) {
            err.push_str(&format!(": panicked: {msg}"));
        }
        if let Some(j) = self.engine.take().and_then(|mut e| e.join.take()) {
            self.zombies.push(j);
        }
        true
    }
}

/// A resumed run starts with an empty chart otherwise: load its earlier steps from disk.
fn replay_history(app: &mut App, run_dir: &Path, upto: u64) {
    if app.run_view.steps.iter().any(|s| s.step <= upto) {
        return;
    }
    for ev in MetricsTail::new(run_dir.join("metrics.jsonl")).poll() {
        let keep = matches!(
            ev,
            Event::Step(_)
                | Event::Eval { .. }
                | Event::CheckpointSaved { .. }
                | Event::ChronicleSample { .. }
                | Event::ChronicleTask { .. }
        );
        if keep && ev.step() <= upto {
            app.on_event(ev);
        }
    }
    app.notice = None;
}
