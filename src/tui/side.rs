//! Sampling a stored checkpoint from the prompt pane through the side engine (browser `i`):
//! training keeps running, and the side's output is kept apart from live-weight samples.
//! State and its event folding live here; `SideHost` owns the engine for the runtime (its
//! events reach the loop through the `UiEvent` channel).

use super::app::{Action, App, Overlay, Pane};
use super::producers::{Feed, Stop};
use super::ui_event::Generation;
use crate::protocol::{CheckpointSummary, SideCommand, SideEvent, SideRequest, SideSpawn};
use std::path::PathBuf;
use std::sync::mpsc::Sender;
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

/// The runtime's end of the side engine: started on first use, restarted if it died. Its
/// events reach the loop through the `UiEvent` channel, tagged with the engine's generation.
#[derive(Default)]
pub struct SideHost {
    spawn: Option<SideSpawn>,
    feed: Option<Feed>,
    conn: Option<SideConn>,
    generation: Generation,
}

/// A running side engine: its commands, thread and event forwarder.
struct SideConn {
    generation: Generation,
    commands: Sender<SideCommand>,
    join: Option<std::thread::JoinHandle<()>>,
    forwarder: Stop,
}

impl Drop for SideConn {
    fn drop(&mut self) {
        self.forwarder.set();
    }
}

impl SideHost {
    /// A host that starts engines with `spawn` (None: side sampling is unavailable) and
    /// forwards their events into the loop's channel through `feed`.
    pub fn new(spawn: Option<SideSpawn>, feed: Feed) -> Self {
        Self {
            spawn,
            feed: Some(feed),
            conn: None,
            generation: Generation::default(),
        }
    }

    /// Send a command, starting the engine first when needed.
    pub fn send(&mut self, cmd: SideCommand) -> Result<(), String> {
        if self.spawn.is_none() || self.feed.is_none() {
            return Err("not available here".into());
        }
        if let SideCommand::Cancel { .. } = cmd {
            if self.conn.is_none() {
                return Ok(());
            }
        }
        if let Some(conn) = &self.conn {
            if conn.commands.send(cmd.clone()).is_ok() {
                return Ok(());
            }
        }
        // Not started, or the thread ended (it panicked): one fresh start.
        let fresh = self.start()?;
        fresh
            .commands
            .send(cmd)
            .map_err(|_| "the side engine did not start".to_string())
    }

    fn start(&mut self) -> Result<&SideConn, String> {
        let (Some(spawn), Some(feed)) = (self.spawn, &self.feed) else {
            return Err("not available here".into());
        };
        self.generation = self.generation.next();
        let link = spawn(SIDE_IDLE);
        let forwarder = feed.forward_side(link.events, self.generation)?;
        Ok(self.conn.insert(SideConn {
            generation: self.generation,
            commands: link.commands,
            join: link.join,
            forwarder,
        }))
    }

    /// Whether events of `generation` come from the engine in use (else they are stale).
    pub fn is_current(&self, generation: Generation) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|c| c.generation == generation)
    }

    /// The engine of `generation` ended: true when it was the one in use (now forgotten).
    pub fn lost(&mut self, generation: Generation) -> bool {
        if !self.is_current(generation) {
            return false;
        }
        self.conn = None;
        true
    }

    /// End the engine (a generation in flight is cancelled) and return its thread to join.
    pub fn close(&mut self) -> Option<std::thread::JoinHandle<()>> {
        self.conn.take().and_then(|mut c| c.join.take())
    }
}
