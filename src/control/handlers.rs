//! What each control request does: validate it (`set` exactly like `--set`), send the
//! engine its `Command`, and turn the `Event` that answers it into a reply, waiting at most
//! the request's `timeout_s`. Kept apart from `server.rs`, which owns sockets and threads.

use super::server::Shared;
use super::wire::{one_line, Action, Reply, Request, RunStatus, SampleKnobs};
use crate::controls::validate_setting;
use crate::protocol::{AlertKind, Command, Event, SampleParams};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Receives the engine events after it was created; unsubscribes on drop.
struct Subscription<'a> {
    shared: &'a Shared,
    id: u64,
    rx: Receiver<Event>,
}

impl<'a> Subscription<'a> {
    fn new(shared: &'a Shared) -> Self {
        let (tx, rx) = channel();
        let id = shared.next_subscriber.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut subs) = shared.subscribers.lock() {
            subs.push((id, tx));
        }
        Self { shared, id, rx }
    }

    /// The first event `pick` maps to a reply, an error reply when the run finishes first, or
    /// a timeout reply after `timeout_s`.
    fn wait(
        &self,
        timeout_s: u64,
        what: &str,
        mut pick: impl FnMut(&Event) -> Option<Reply>,
    ) -> Reply {
        let deadline = Instant::now() + Duration::from_secs(timeout_s);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(ev) => {
                    if let Some(r) = pick(&ev) {
                        return r;
                    }
                    if let Event::Finished { step, reason, .. } = ev {
                        return Reply::error(format!(
                            "the run finished at step {step} ({reason:?}) before {what}"
                        ));
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Reply::error(format!(
                        "the run stopped serving its control socket before {what}"
                    ))
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Reply::error(format!(
                        "no answer from the engine within {timeout_s} s ({what}); it acts between steps, so the command is still queued (a longer timeout_s waits longer)"
                    ))
                }
            }
        }
    }
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        if let Ok(mut subs) = self.shared.subscribers.lock() {
            subs.retain(|(id, _)| *id != self.id);
        }
    }
}

/// Send `cmd` to the engine; the refusal to answer with when it cannot be.
fn send(shared: &Shared, cmd: Command) -> Option<Reply> {
    let finished = shared.state.lock().map(|s| s.finished).unwrap_or(true);
    let sent = !finished
        && shared
            .commands
            .lock()
            .map(|tx| tx.send(cmd).is_ok())
            .unwrap_or(false);
    (!sent).then(|| Reply::error("the run has finished; its engine takes no more commands"))
}

fn status_of(shared: &Shared) -> RunStatus {
    match shared.state.lock() {
        Ok(st) => st.status.clone(),
        Err(p) => p.into_inner().status.clone(),
    }
}

/// Answer one parsed request.
pub(super) fn handle(req: Request, shared: &Shared) -> Reply {
    let t = req.timeout_s;
    let status = status_of(shared);
    match req.action {
        Action::Status => {
            let s = status;
            let mut r = Reply::ok(format!(
                "run {} {} at step {}/{}",
                s.run_name, s.state, s.step, s.max_steps
            ));
            r.status = Some(s);
            r
        }
        Action::Pause | Action::Resume => {
            let pause = req.action == Action::Pause;
            let want = if pause { "paused" } else { "running" };
            if status.state == want {
                return Reply::ok(format!("already {want} at step {}", status.step));
            }
            let sub = Subscription::new(shared);
            if let Some(r) = send(
                shared,
                if pause {
                    Command::Pause
                } else {
                    Command::Resume
                },
            ) {
                return r;
            }
            sub.wait(
                t,
                if pause { "pausing" } else { "resuming" },
                |ev| match ev {
                    Event::Paused { step } if pause => {
                        Some(Reply::ok(format!("paused at step {step}")))
                    }
                    Event::Resumed { step } if !pause => {
                        Some(Reply::ok(format!("resumed at step {step}")))
                    }
                    _ => None,
                },
            )
        }
        Action::Save => {
            let sub = Subscription::new(shared);
            if let Some(r) = send(shared, Command::SaveCheckpoint) {
                return r;
            }
            // Checkpoints are written in the background: one still in flight from an earlier
            // step may report first; the answer is the save at or after the run's step now.
            let from = status.step;
            sub.wait(t, "saving", |ev| match ev {
                Event::CheckpointSaved { step, path } if *step >= from => {
                    let mut r = Reply::ok(format!("checkpoint {path} (step {step})"));
                    r.checkpoint = Some(path.clone());
                    Some(r)
                }
                Event::Alert {
                    kind: AlertKind::CheckpointFailed,
                    detail,
                    step,
                } if *step >= from => Some(Reply::error(format!("checkpoint failed: {detail}"))),
                _ => None,
            })
        }
        Action::Eval => {
            let sub = Subscription::new(shared);
            if let Some(r) = send(shared, Command::EvalNow) {
                return r;
            }
            sub.wait(
                t,
                "evaluating (a run without validation data never answers)",
                |ev| match ev {
                    Event::Eval { step, val_loss } => {
                        let mut r = Reply::ok(format!("val_loss {val_loss:.4} at step {step}"));
                        r.val_loss = Some(*val_loss);
                        Some(r)
                    }
                    _ => None,
                },
            )
        }
        Action::Set(item) => set(shared, &item, t),
        Action::Sample { prompt, knobs } => sample(shared, prompt, knobs, t),
    }
}

/// Validate like `--set` (same messages) before anything reaches the engine, then report the
/// engine's own verdict faithfully.
fn set(shared: &Shared, item: &str, timeout_s: u64) -> Reply {
    let validated = match shared.state.lock() {
        Ok(st) => validate_setting(&st.config, item),
        Err(_) => return Reply::error("internal error: control state poisoned"),
    };
    let (setting, _) = match validated {
        Ok(v) => v,
        Err(e) => return Reply::error(format!("{e:#}")),
    };
    let value = item
        .split_once('=')
        .map_or("", |(_, v)| v)
        .trim()
        .to_string();
    let key = setting.key.clone();
    let sub = Subscription::new(shared);
    if let Some(r) = send(
        shared,
        Command::Set {
            key: key.clone(),
            value: value.clone(),
        },
    ) {
        return r;
    }
    sub.wait(timeout_s, "applying the setting", |ev| match ev {
        Event::ControlChanged { step, change } if change.key == key => {
            let mut r = Reply::ok(format!(
                "{}: {} -> {} from step {}",
                change.key,
                change.old,
                change.new,
                step + 1
            ));
            r.change = Some(change.clone());
            Some(r)
        }
        Event::ControlRejected {
            step,
            key: k,
            value: v,
            message,
        } if *k == key => Some(Reply::error(format!(
            "the engine refused {k}={v} at step {step}: {}",
            one_line(message)
        ))),
        _ => None,
    })
}

fn sample(shared: &Shared, prompt: String, knobs: SampleKnobs, timeout_s: u64) -> Reply {
    let mut params: SampleParams = match shared.state.lock() {
        Ok(st) => st.config.sample.params(),
        Err(_) => return Reply::error("internal error: control state poisoned"),
    };
    params.max_tokens = knobs.max_tokens.unwrap_or(params.max_tokens);
    params.temperature = knobs.temperature.unwrap_or(params.temperature);
    params.top_k = knobs.top_k.unwrap_or(params.top_k);
    params.top_p = knobs.top_p.unwrap_or(params.top_p);
    params.seed = knobs.seed.unwrap_or(params.seed);
    if let Err(e) = crate::config::validate_sample(&params) {
        return Reply::error(format!("sample: {e:#}"));
    }
    let id = shared.next_sample.fetch_add(1, Ordering::Relaxed);
    let sub = Subscription::new(shared);
    if let Some(r) = send(shared, Command::Sample { id, prompt, params }) {
        return r;
    }
    sub.wait(timeout_s, "sampling", |ev| match ev {
        Event::SampleDone {
            id: done,
            step,
            text,
            tokens,
            tokens_per_s,
            ..
        } if *done == id => {
            if *tokens == 0 && text.starts_with("[sampling failed") {
                return Some(Reply::error(text.trim_matches(['[', ']'])));
            }
            let mut r = Reply::ok(format!(
                "{tokens} tokens at step {step} ({tokens_per_s:.1} tokens/s)"
            ));
            r.text = Some(text.clone());
            r.sample_id = Some(id);
            Some(r)
        }
        _ => None,
    })
}
