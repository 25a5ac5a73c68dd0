//! The runtime's side of the App's actions: commands to the engine (or the watched run's
//! socket), engine switches, checkpoint deletes, pins and exports, side-engine requests.
//! Kept out of runtime.rs so that file stays the loop.

use super::super::app::{Action, Mode};
use super::super::ui_event::UiEvent;
use super::{Retiring, Runtime};
use crate::protocol::Command;
use crate::store::{listing, pin};
use std::path::PathBuf;

impl Runtime {
    pub(super) fn list_checkpoints(&self) -> Vec<crate::protocol::CheckpointSummary> {
        let mut all = listing::list_all_checkpoints(&self.runs_dir);
        // Hugging Face model directories dropped into the runs directory: sample, fine-tune
        // and export them like checkpoints (read-only; resume and delete refuse them).
        all.extend(crate::interop::model_dir::list_hf_dirs(&self.runs_dir));
        let current = self
            .app
            .info
            .as_ref()
            .map(|i| PathBuf::from(&i.run_dir))
            .or_else(|| self.tail.as_ref().map(|t| t.dir.clone()));
        if let Some(dir) = current {
            for c in listing::list_checkpoints(&dir) {
                if !all.iter().any(|a| a.path == c.path) {
                    all.push(c);
                }
            }
        }
        all
    }

    /// Carry out what a key or event asked for.
    pub fn perform(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(cmd) => self.send(cmd),
                Action::Quit => self.app.should_quit = true,
                Action::RefreshCheckpoints => self.refresh_checkpoints = true,
                Action::Side(cmd) => {
                    if let Err(why) = self.side.send(cmd) {
                        self.app.on_side_lost(&why);
                    }
                }
                Action::Runs(req) => self.runs_request(req),
                Action::Launch { from, save_current } => match self.engine.take() {
                    Some(engine) if self.app.engine_alive => {
                        self.host.close();
                        let _ = engine.commands.send(Command::Stop {
                            save: save_current,
                            reason: crate::protocol::FinishReason::Stopped,
                        });
                        self.app
                            .notify("stopping the current run before switching…");
                        self.retiring = Some(Retiring { engine, then: from });
                    }
                    _ => self.launch(from),
                },
                Action::Delete(path) => {
                    match listing::delete_checkpoint_by_user(&path) {
                        Ok(()) => self.app.notify(format!("deleted {}", path.display())),
                        Err(e) => self.app.warn(format!("{e:#}")),
                    }
                    self.refresh_checkpoints = true;
                }
                Action::SetPinned { checkpoint, pinned } => {
                    match pin::set_pinned_by_user(&checkpoint, pinned) {
                        Ok(true) => self.app.notify(format!("pinned {}", checkpoint.display())),
                        Ok(false) => self.app.notify(format!(
                            "unpinned {} (retention may remove it now)",
                            checkpoint.display()
                        )),
                        Err(e) => self.app.warn(format!("{e:#}")),
                    }
                    self.refresh_checkpoints = true;
                }
                Action::Export { checkpoint, out } => {
                    let Some(launcher) = self.launcher.clone() else {
                        self.app.warn(super::super::keys::READ_ONLY);
                        continue;
                    };
                    let feed = self.producers.feed().clone();
                    std::thread::spawn(move || {
                        let result = launcher
                            .lock()
                            .map_err(|_| anyhow::anyhow!("launcher poisoned"));
                        let msg = match result.and_then(|l| l.export_hf(&checkpoint, &out)) {
                            Ok(()) => format!("exported to {}", out.display()),
                            Err(e) => format!("export failed: {e:#}"),
                        };
                        feed.send(UiEvent::ExportDone(msg));
                    });
                }
            }
        }
    }

    pub(super) fn send(&mut self, cmd: Command) {
        match &self.engine {
            Some(engine) => {
                if engine.commands.send(cmd).is_err() {
                    self.app.on_engine_lost();
                }
            }
            None if self.app.can_steer() => {
                let sent = self.remote.as_mut().map(|r| r.send(cmd));
                if let Some(Err(why)) = sent {
                    self.app.warn(why);
                }
            }
            None if self.app.mode == Mode::Watch => self.app.warn(super::super::keys::READ_ONLY),
            None => self.app.warn("engine is not running"),
        }
    }
}
