//! Sampling a stored checkpoint from the prompt pane through the side engine (browser `i`):
//! training keeps running, and the side's output is kept apart from live-weight samples.
//! State and its event folding live here; `SideHost` owns the engine link for the runtime.

use super::app::{Action, App, Overlay, Pane};
use crate::protocol::{
    CheckpointSummary, SideCommand, SideEvent, SideLink, SideRequest, SideSpawn,
};
use std::path::PathBuf;
use std::sync::mpsc::TryRecvError;
use std::time::Duration;

/// Seconds without a request after which the side engine drops its model.
pub const SIDE_IDLE: Duration = Duration::from_secs(60);

/// The checkpoint the prompt pane samples instead of the live weights.
#[derive(Debug, Clone, PartialEq)]
pub struct SideTarget {
    pub checkpoint: PathBuf,
    pub run_name: String,
    pub step: u64,
}

/// The side generation being streamed.
#[derive(Debug, Clone, PartialEq)]
pub struct SideActive {
    pub id: u64,
    pub prompt: String,
    pub text: String,
    /// The model is loaded and tokens flow (false while the checkpoint is read).
    pub started: bool,
}

/// A finished side generation.
#[derive(Debug, Clone, PartialEq)]
pub struct SideEntry {
    pub step: u64,
    pub prompt: String,
    pub text: String,
    pub tokens: u64,
    pub tokens_per_s: f64,
    /// "cancelled", or why it failed; empty when it ran to its end.
    pub note: String,
}

/// What the prompt pane needs to sample from a checkpoint on the side.
#[derive(Debug, Clone, PartialEq)]
pub struct SideState {
    pub target: Option<SideTarget>,
    pub active: Option<SideActive>,
    pub history: Vec<SideEntry>,
    next_id: u64,
}

impl Default for SideState {
    fn default() -> Self {
        Self {
            target: None,
            active: None,
            history: Vec::new(),
            next_id: 1,
        }
    }
}

impl App {
    /// Browser `i`: point the prompt pane at `ckpt`; nothing running is stopped.
    pub fn side_open(&mut self, ckpt: &CheckpointSummary) -> Vec<Action> {
        self.side.target = Some(SideTarget {
            checkpoint: PathBuf::from(&ckpt.path),
            run_name: ckpt.run_name.clone(),
            step: ckpt.step,
        });
        self.overlay = Overlay::None;
        self.prompt_open = true;
        self.focus = Pane::Prompt;
        self.notify(format!(
            "sampling {} step {} on the side; training continues (Esc: back to live weights)",
            ckpt.run_name, ckpt.step
        ));
        vec![]
    }

    /// Enter in the prompt pane while a side target is set.
    pub(super) fn side_submit(&mut self) -> Vec<Action> {
        let Some(target) = &self.side.target else {
            return vec![];
        };
        if self.prompt.input.trim().is_empty() || self.side.active.is_some() {
            return vec![];
        }
        let id = self.side.next_id;
        self.side.next_id += 1;
        let prompt = self.prompt.take_input();
        self.side.active = Some(SideActive {
            id,
            prompt: prompt.clone(),
            text: String::new(),
            started: false,
        });
        vec![Action::Side(SideCommand::Sample(SideRequest {
            id,
            checkpoint: target.checkpoint.clone(),
            prompt,
            params: self.prompt.params.clone(),
        }))]
    }

    /// Esc in the prompt pane: cancel the side generation, else leave the side target; `None`
    /// when there is no side target (the key means what it always did).
    pub(super) fn side_escape(&mut self) -> Option<Vec<Action>> {
        self.side.target.as_ref()?;
        if let Some(a) = &self.side.active {
            return Some(vec![Action::Side(SideCommand::Cancel { id: a.id })]);
        }
        self.side.target = None;
        self.notify("prompt pane back on the live weights");
        Some(vec![])
    }

    /// Fold one side-engine event into the state.
    pub fn on_side_event(&mut self, event: SideEvent) {
        let active_id = self.side.active.as_ref().map(|a| a.id);
        match event {
            SideEvent::Started {
                id,
                step,
                load_ms,
                cached,
                ..
            } if Some(id) == active_id => {
                if let Some(a) = &mut self.side.active {
                    a.started = true;
                }
                if !cached {
                    self.notify(format!(
                        "side engine: step {step} loaded in {load_ms:.0} ms"
                    ));
                }
            }
            SideEvent::Token { id, text } if Some(id) == active_id => {
                if let Some(a) = &mut self.side.active {
                    a.text.push_str(&text);
                }
            }
            SideEvent::Done {
                id,
                step,
                prompt,
                text,
                tokens,
                tokens_per_s,
                cancelled,
            } if Some(id) == active_id => {
                self.side.active = None;
                let note = if cancelled { "cancelled" } else { "" };
                self.side.history.push(SideEntry {
                    step,
                    prompt,
                    text,
                    tokens,
                    tokens_per_s,
                    note: note.into(),
                });
            }
            SideEvent::Failed { id, message } => {
                if Some(id) == active_id {
                    self.side.active = None;
                }
                self.notify(format!("side sample refused: {message}"));
            }
            SideEvent::Unloaded { .. } => {}
            _ => {} // events of a request the UI no longer follows
        }
    }

    /// The side engine could not be reached (or is not available in this build).
    pub fn on_side_lost(&mut self, why: &str) {
        if self.side.active.take().is_some() || self.side.target.is_some() {
            self.notify(format!("side engine: {why}"));
        }
    }
}

/// The runtime's end of the side engine: started on first use, restarted if it died.
#[derive(Default)]
pub struct SideHost {
    spawn: Option<SideSpawn>,
    link: Option<SideLink>,
}

impl SideHost {
    /// A host that starts engines with `spawn` (None: side sampling is unavailable).
    pub fn new(spawn: Option<SideSpawn>) -> Self {
        Self { spawn, link: None }
    }

    /// Send a command, starting the engine first when needed.
    pub fn send(&mut self, cmd: SideCommand) -> Result<(), String> {
        let Some(spawn) = self.spawn else {
            return Err("not available here".into());
        };
        if let SideCommand::Cancel { .. } = cmd {
            if self.link.is_none() {
                return Ok(());
            }
        }
        let link = self.link.get_or_insert_with(|| spawn(SIDE_IDLE));
        if link.commands.send(cmd.clone()).is_ok() {
            return Ok(());
        }
        // The thread ended (it panicked): one fresh start.
        let fresh = self.link.insert(spawn(SIDE_IDLE));
        fresh
            .commands
            .send(cmd)
            .map_err(|_| "the side engine did not start".to_string())
    }

    /// Events so far, and why the engine thread is gone if it ended since the last poll.
    pub fn poll(&mut self) -> (Vec<SideEvent>, Option<String>) {
        let Some(link) = &self.link else {
            return (vec![], None);
        };
        let mut out = Vec::new();
        loop {
            match link.events.try_recv() {
                Ok(e) => out.push(e),
                Err(TryRecvError::Empty) => return (out, None),
                Err(TryRecvError::Disconnected) => {
                    self.link = None;
                    return (out, Some("the side engine stopped".into()));
                }
            }
        }
    }

    /// End the engine (a generation in flight is cancelled) and return its thread to join.
    pub fn close(&mut self) -> Option<std::thread::JoinHandle<()>> {
        self.link.take().and_then(|mut l| l.join.take())
    }
}
