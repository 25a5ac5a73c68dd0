//! The side engine: samples a stored checkpoint in its own thread while the training engine
//! keeps stepping (the cockpit's browser `i`, and `watch`, which has no engine). It holds at
//! most one model, loaded through the lean loader, and drops it after an idle time.

use crate::config::RunConfig;
use crate::data::template::{prompt_template, Template};
use crate::data::tokenizer::TextTokenizer;
use crate::model::Llama;
use crate::protocol::{SideCommand, SideEvent, SideLink, SideRequest};
use crate::sample::generate;
use crate::store::{checkpoint, layout};
use anyhow::Result;
use burn::tensor::backend::Backend;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::{Duration, Instant};

/// A checkpoint made ready for generation: what `llite-tui sample` builds, kept for reuse.
pub struct SideModel<B: Backend> {
    pub checkpoint: PathBuf,
    pub step: u64,
    pub model: Llama<B>,
    pub tokenizer: TextTokenizer,
    pub template: Option<Template>,
}

/// Load `dir` the way `sample` does (memory checked first, digests verified, the recorded
/// config's chat template), through the lean loader: one copy of the weights, no more.
pub fn load_side_model<B: Backend>(dir: &Path, device: &B::Device) -> Result<SideModel<B>> {
    let ckpt = crate::interop::model_dir::open_model(dir)?;
    let origin = dir.join(layout::TRAINER_FILE).display().to_string();
    let cfg = RunConfig::from_toml_str(&ckpt.trainer.config_toml, &origin)?;
    let tokenizer = checkpoint::load_tokenizer(&ckpt)?;
    let template = prompt_template(&cfg, &tokenizer)?;
    let model = crate::model::load::load_model::<B>(&ckpt.model_config, &ckpt.weights, device)?;
    Ok(SideModel {
        checkpoint: dir.to_path_buf(),
        step: ckpt.trainer.step,
        model,
        tokenizer,
        template,
    })
}

/// The side engine on the CPU backend `sample` uses, so a side sample equals `llite-tui
/// sample` of the same checkpoint with the same knobs. Matches [`crate::protocol::SideSpawn`].
pub fn spawn(idle: Duration) -> SideLink {
    spawn_on::<burn::backend::Flex>(Default::default(), idle)
}

/// The side engine on any backend: a thread answering `SideCommand`s until its sender drops.
pub fn spawn_on<B: Backend>(device: B::Device, idle: Duration) -> SideLink
where
    B::Device: Send + 'static,
{
    let (cmd_tx, cmd_rx) = mpsc::channel();
    let (ev_tx, ev_rx) = mpsc::channel();
    let join = std::thread::Builder::new()
        .name("side-engine".into())
        .spawn(move || serve::<B>(device, idle, cmd_rx, ev_tx))
        .ok();
    SideLink {
        commands: cmd_tx,
        events: ev_rx,
        join,
    }
}

fn serve<B: Backend>(
    device: B::Device,
    idle: Duration,
    cmds: Receiver<SideCommand>,
    out: Sender<SideEvent>,
) {
    let mut loaded: Option<SideModel<B>> = None;
    loop {
        let cmd = match &loaded {
            Some(m) => match cmds.recv_timeout(idle) {
                Ok(c) => c,
                Err(RecvTimeoutError::Timeout) => {
                    let checkpoint = m.checkpoint.display().to_string();
                    loaded = None;
                    let _ = out.send(SideEvent::Unloaded { checkpoint });
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            },
            None => match cmds.recv() {
                Ok(c) => c,
                Err(_) => return,
            },
        };
        let SideCommand::Sample(req) = cmd else {
            continue; // a cancel for a request that already ended
        };
        if !run_one(&device, &mut loaded, req, &cmds, &out) {
            return;
        }
    }
}

/// One request; false when the UI went away mid-way.
fn run_one<B: Backend>(
    device: &B::Device,
    loaded: &mut Option<SideModel<B>>,
    req: SideRequest,
    cmds: &Receiver<SideCommand>,
    out: &Sender<SideEvent>,
) -> bool {
    let id = req.id;
    let start = Instant::now();
    let cached = loaded
        .as_ref()
        .is_some_and(|m| m.checkpoint == req.checkpoint);
    if !cached {
        // Never two models at once: the old one goes before the new one is read.
        *loaded = None;
        match load_side_model::<B>(&req.checkpoint, device) {
            Ok(m) => *loaded = Some(m),
            Err(e) => {
                let message = format!("{}: {e:#}", req.checkpoint.display());
                return out.send(SideEvent::Failed { id, message }).is_ok();
            }
        }
    }
    let Some(m) = loaded.as_ref() else {
        return true;
    };
    let cancel = AtomicBool::new(false);
    let mut gone = false;
    // Requests that arrived during the load: a cancel of this one counts.
    poll_commands(id, cmds, out, &cancel, &mut gone);
    let _ = out.send(SideEvent::Started {
        id,
        checkpoint: m.checkpoint.display().to_string(),
        step: m.step,
        load_ms: start.elapsed().as_secs_f64() * 1000.0,
        cached,
    });
    let model_prompt = match &m.template {
        Some(t) => t.prompt_for(&req.prompt),
        None => Ok(req.prompt.clone()),
    };
    let result = model_prompt.and_then(|p| {
        generate(&m.model, &m.tokenizer, &p, &req.params, &cancel, |piece| {
            let _ = out.send(SideEvent::Token {
                id,
                text: piece.to_string(),
            });
            poll_commands(id, cmds, out, &cancel, &mut gone);
        })
    });
    let event = match result {
        Ok(g) => SideEvent::Done {
            id,
            step: m.step,
            prompt: req.prompt,
            text: g.text,
            tokens: g.tokens as u64,
            tokens_per_s: g.tokens_per_s,
            cancelled: g.stop == crate::sample::StopReason::Cancelled,
        },
        Err(e) => SideEvent::Failed {
            id,
            message: format!("sampling failed: {e:#}"),
        },
    };
    out.send(event).is_ok() && !gone
}

/// Between tokens: a cancel of `id` stops it, another request is refused (one at a time), and
/// a closed channel cancels (the UI is gone).
fn poll_commands(
    id: u64,
    cmds: &Receiver<SideCommand>,
    out: &Sender<SideEvent>,
    cancel: &AtomicBool,
    gone: &mut bool,
) {
    loop {
        match cmds.try_recv() {
            Ok(SideCommand::Cancel { id: c }) if c == id => cancel.store(true, Ordering::Relaxed),
            Ok(SideCommand::Cancel { .. }) => {}
            Ok(SideCommand::Sample(other)) => {
                let _ = out.send(SideEvent::Failed {
                    id: other.id,
                    message: format!("side sample {id} is still running; cancel it first"),
                });
            }
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => {
                *gone = true;
                cancel.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
}
