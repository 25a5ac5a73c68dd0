//! Watch mode's link to the followed run's control socket: turns the cockpit's `Command`s
//! into control requests, each on its own short-lived thread (the UI never waits on a
//! socket), and hands the replies back to the loop as `UiEvent::Control`.

use super::producers::Feed;
use super::ui_event::UiEvent;
use crate::control::{client, wire};
use crate::protocol::Command;
use std::path::PathBuf;

/// Requests in flight at once; more are refused until one answers.
const MAX_IN_FLIGHT: usize = 4;

/// A finished request: its one-line outcome, and the cockpit's sample id it answered.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteResult {
    pub message: String,
    pub ok: bool,
    pub sample_for: Option<u64>,
}

/// The followed run's control socket, as the watching cockpit uses it.
pub struct Remote {
    run_dir: PathBuf,
    feed: Feed,
    in_flight: usize,
}

impl Remote {
    /// Steer `run_dir` (whether it serves a socket is checked with [`Remote::available`]);
    /// replies go into the loop's channel through `feed`.
    pub fn new(run_dir: PathBuf, feed: Feed) -> Self {
        Self {
            run_dir,
            feed,
            in_flight: 0,
        }
    }

    /// Whether the run currently has a control socket.
    pub fn available(&self) -> bool {
        client::has_endpoint(&self.run_dir)
    }

    /// Send `cmd` as a control request; an `Err` says why it cannot go (no remote form, busy).
    pub fn send(&mut self, cmd: Command) -> Result<(), String> {
        let mut sample_for = None;
        let action = match cmd {
            Command::Pause => wire::Action::Pause,
            Command::Resume => wire::Action::Resume,
            Command::SaveCheckpoint => wire::Action::Save,
            Command::EvalNow => wire::Action::Eval,
            Command::Set { key, value } => wire::Action::Set(format!("{key}={value}")),
            Command::Sample { id, prompt, params } => {
                sample_for = Some(id);
                wire::Action::Sample {
                    prompt,
                    knobs: wire::SampleKnobs {
                        max_tokens: Some(params.max_tokens),
                        temperature: Some(params.temperature),
                        top_k: Some(params.top_k),
                        top_p: Some(params.top_p),
                        seed: Some(params.seed),
                    },
                }
            }
            other => return Err(format!("not available when watching: {other:?}")),
        };
        if self.in_flight >= MAX_IN_FLIGHT {
            return Err("busy: earlier requests to the run have not answered yet".into());
        }
        self.in_flight += 1;
        let (run_dir, feed) = (self.run_dir.clone(), self.feed.clone());
        std::thread::spawn(move || {
            let result = match client::request(&run_dir, &wire::Request::new(action)) {
                Ok(r) => RemoteResult {
                    message: r.message,
                    ok: r.ok,
                    sample_for,
                },
                Err(e) => RemoteResult {
                    message: format!("{e:#}"),
                    ok: false,
                    sample_for,
                },
            };
            feed.send(UiEvent::Control(result));
        });
        Ok(())
    }

    /// The loop received a reply: one more request may go.
    pub fn answered(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }
}
