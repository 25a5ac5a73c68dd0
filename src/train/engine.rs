//! The engine thread: owns the trainer, drains `Command`s between steps, emits `Event`s.
//! Pausing blocks on the command channel, so a paused engine uses no CPU. A panic or error
//! in the engine becomes an `Error` + `Finished` event (at the step it reached) instead of a
//! silent dead thread. The engine never reads `[ui]` and only alerts on a spike: pausing or
//! rewinding is the consumer's decision (`[train] on_spike`, `spike_policy.rs`). Live changes
//! (`Set`) apply between steps (`steering.rs`); `Rewind` swaps in a branch (`rewind.rs`).

use super::chronicle::Chronicle;
use super::emitter::Emitter;
use super::metrics::SpikeWatch;
use super::parallel::{device_label, peer_devices, PeerDevices, PeersLeft};
use super::samplers::Samplers;
use super::saving::{finish, pin_current, save, saved_at_current_step, SaveKind};
use super::session::{prepare, EngineRequest, PreparedRun};
use super::trainer::NonFiniteLoss;
use super::trainer::Trainer;
use crate::data::sft::Template;
use crate::model::stats::{param_count, train_flops_per_token};
use crate::protocol::{AlertKind, Command, EngineLink, Event, FinishReason, RunInfo};
use crate::store::metrics_log::MetricsLog;
use crate::store::tfevents::TfEventsWriter;
use anyhow::{bail, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use std::sync::mpsc::{channel, Receiver};

/// Start an engine thread for `req`.
pub fn spawn(req: EngineRequest) -> EngineLink {
    let (cmd_tx, cmd_rx) = channel();
    let (ev_tx, ev_rx) = channel();
    let join = std::thread::Builder::new()
        .name("llite-engine".into())
        .spawn(move || {
            let out = Emitter::new(ev_tx);
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&req, &cmd_rx, &out)));
            let message = match result {
                Ok(Ok(())) => return,
                Ok(Err(e)) => format!("{e:#}"),
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "unknown panic".into());
                    format!("engine panicked: {what}")
                }
            };
            out.emit(Event::Error {
                step: out.step(),
                message,
            });
            out.finish(FinishReason::Error);
        })
        .expect("spawning the engine thread");
    EngineLink {
        commands: cmd_tx,
        events: ev_rx,
        join: Some(join),
    }
}

fn run(req: &EngineRequest, cmds: &Receiver<Command>, out: &Emitter) -> Result<()> {
    let mut prepared = prepare(req)?;
    if prepared.shards.is_some() || prepared.sft.is_some() {
        let mut log = MetricsLog::open(&prepared.run_dir)?;
        // The run stays locked until the engine's last line (its Finished event) is written.
        log.hold_lock(prepared.lock.take());
        out.attach_log(log, prepared.run_dir.join("metrics.jsonl"));
        if prepared.config.log.tensorboard {
            out.attach_tensorboard(TfEventsWriter::create(&prepared.run_dir)?);
        }
    }
    // One device per local data-parallel peer (just `--device` without `[parallel]`).
    match peer_devices(&prepared.config.parallel, req.device)? {
        PeerDevices::Cpu(peers) => {
            type Cpu = burn::backend::Autodiff<burn::backend::Flex>;
            let devices = vec![Default::default(); peers];
            let name = device_label(cpu_name(), &prepared.config.parallel);
            dispatch::<Cpu>(req, prepared, devices, name, cmds, out)
        }
        #[cfg(feature = "cuda")]
        PeerDevices::Cuda(ordinals) => {
            type Gpu = burn::backend::Autodiff<burn::backend::Cuda>;
            let devices: Vec<_> = ordinals
                .iter()
                .map(|&i| burn::backend::cuda::CudaDevice::new(i))
                .collect();
            let first = format!("cuda:{}", ordinals.first().copied().unwrap_or(0));
            let name = device_label(first, &prepared.config.parallel);
            dispatch::<Gpu>(req, prepared, devices, name, cmds, out)
        }
        #[cfg(not(feature = "cuda"))]
        PeerDevices::Cuda(_) => bail!("--device cuda needs a build with `--features cuda`"),
    }
}

fn cpu_name() -> String {
    let threads = crate::model::fused::worker_threads();
    format!("cpu (burn-flex, {threads} threads)")
}

fn dispatch<B: AutodiffBackend>(
    req: &EngineRequest,
    prepared: PreparedRun,
    devices: Vec<B::Device>,
    device_name: String,
    cmds: &Receiver<Command>,
    out: &Emitter,
) -> Result<()> {
    let Some(device) = devices.first().cloned() else {
        bail!("internal: no device to train on");
    };
    if prepared.shards.is_none() && prepared.sft.is_none() {
        return serve_samples::<B::InnerBackend>(prepared, device, device_name, cmds, out);
    }
    let origin = match &req.start {
        crate::protocol::StartFrom::Fresh => "fresh".to_string(),
        crate::protocol::StartFrom::Resume(d) => format!("resume:{}", d.display()),
        crate::protocol::StartFrom::FineTune { checkpoint, .. } => {
            format!("finetune:{}", checkpoint.display())
        }
        crate::protocol::StartFrom::Inspect(d) => format!("inspect:{}", d.display()),
    };
    if let (true, Some(ckpt)) = (prepared.continue_state, &prepared.checkpoint) {
        // A resume that fails while building its trainer (a bad data cursor) reports the
        // checkpoint's step, not 0.
        out.set_step(ckpt.trainer.step);
    }
    let mut trainer = Trainer::<B>::new(prepared, device, req.fresh_optimizer)?;
    trainer.start_peers(devices)?;
    train_loop(req, trainer, device_name, origin, cmds, out)
}

fn run_info(run: &PreparedRun, device: String, start_step: u64, origin: String) -> RunInfo {
    let cfg = &run.config;
    RunInfo {
        run_name: run.run_name.clone(),
        run_dir: run.run_dir.display().to_string(),
        params: param_count(&cfg.model).total,
        flops_per_token: train_flops_per_token(&cfg.model, cfg.train.seq_len),
        tokens_per_step: cfg.tokens_per_step(),
        max_steps: cfg.train.max_steps,
        start_step,
        config_toml: cfg.to_toml(),
        measured_peak_tflops: device
            .starts_with("cpu")
            .then(super::peak::cpu_gemm_peak_tflops)
            .flatten(),
        origin,
        device,
    }
}

/// The chat template prompts are wrapped in: an SFT run's, else the model's own, else none.
fn chat_template(
    cfg: &crate::config::RunConfig,
    tok: &crate::data::tokenizer::TextTokenizer,
) -> Result<Option<Template>> {
    crate::data::template::prompt_template(cfg, tok)
}

/// The alert for a step that failed: a non-finite loss is a health problem of the run, any
/// other error (I/O reading data, an internal failure) is a failed step.
fn step_failure_alert(error: &anyhow::Error, failed_step: u64) -> Event {
    let kind = match error.downcast_ref::<NonFiniteLoss>() {
        Some(_) => AlertKind::NonFiniteLoss,
        None => AlertKind::StepFailed,
    };
    Event::Alert {
        step: failed_step,
        kind,
        detail: format!("{error:#}"),
    }
}

/// Apply the recorded changes due now (a resume replaying a newer checkpoint's history).
fn replay_due(trainer: &mut Trainer<impl AutodiffBackend>, out: &Emitter) -> Result<()> {
    for record in trainer.take_due_replays()? {
        out.emit(Event::ControlChanged {
            step: record.step,
            change: record.change,
        });
    }
    Ok(())
}

fn train_loop<B: AutodiffBackend>(
    req: &EngineRequest,
    mut trainer: Trainer<B>,
    device: String,
    origin: String,
    cmds: &Receiver<Command>,
    out: &Emitter,
) -> Result<()> {
    let stop_at = req.stop_at;
    let mut start_step = trainer.step;
    out.set_step(start_step);
    let info = run_info(&trainer.run, device.clone(), start_step, origin);
    let mut chronicle = Chronicle::for_trainer(&trainer)?;
    if !out.emit(Event::Started {
        step: start_step,
        info,
    }) {
        return Ok(());
    }
    // After Started, so consumers that reset on a new run keep these notices.
    for w in &trainer.run.warnings {
        out.emit(Event::Alert {
            step: start_step,
            kind: AlertKind::Notice,
            detail: w.clone(),
        });
    }
    if trainer.step == 0 {
        // The untrained model: where the chronicle's story starts.
        Chronicle::record_due(&mut chronicle, &trainer, out);
    }
    let mut spikes = SpikeWatch::default();
    let mut samplers = Samplers::default();
    // Dropped (waited for) on every way out of the loop, errors and panics included.
    let mut writer = super::saving::writer(&trainer.run.config, out);
    let mut paused = false;
    loop {
        replay_due(&mut trainer, out)?;
        // Drain commands; while paused, block on the channel (no CPU) until Resume or Stop.
        loop {
            let cmd = if paused {
                match cmds.recv() {
                    Ok(c) => c,
                    Err(_) => return Ok(()),
                }
            } else {
                match cmds.try_recv() {
                    Ok(c) => c,
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return Ok(()),
                }
            };
            match cmd {
                Command::Pause if !paused => {
                    paused = true;
                    out.emit(Event::Paused { step: trainer.step });
                }
                Command::Resume if paused => {
                    paused = false;
                    out.emit(Event::Resumed { step: trainer.step });
                }
                Command::Pause | Command::Resume => {}
                Command::SaveCheckpoint => {
                    save(&trainer, &mut writer, out, SaveKind::OnDemand);
                }
                Command::Sample { id, prompt, params } => {
                    let snapshot = trainer.model().valid();
                    samplers.start(
                        chat_template(&trainer.run.config, &trainer.run.tokenizer),
                        id,
                        prompt,
                        params,
                        snapshot,
                        trainer.run.tokenizer.clone(),
                        trainer.step,
                        out,
                    );
                }
                Command::CancelSample { id } => samplers.cancel(id),
                Command::EvalNow => {
                    if let Some(val_loss) = trainer.evaluate() {
                        out.emit(Event::Eval {
                            step: trainer.step,
                            val_loss,
                        });
                    }
                }
                Command::Set { key, value } => {
                    let event = match trainer.apply_control(&format!("{key}={value}")) {
                        Ok(record) => Event::ControlChanged {
                            step: record.step,
                            change: record.change,
                        },
                        Err(e) => Event::ControlRejected {
                            step: trainer.step,
                            key,
                            value,
                            message: format!("{e:#}"),
                        },
                    };
                    out.emit(event);
                }
                Command::Rewind {
                    checkpoint,
                    skip_batches,
                } => {
                    // The branch may start from, or move aside, the checkpoint being written.
                    writer.wait();
                    let origin = format!("rewind:{}", checkpoint.display());
                    let made = super::rewind::rewind(
                        req,
                        &mut trainer,
                        &checkpoint,
                        skip_batches,
                        out,
                        |t| run_info(&t.run, device.clone(), t.step, origin),
                    );
                    match made {
                        Ok(()) => {
                            start_step = trainer.step;
                            spikes.rewind_to(trainer.step);
                        }
                        Err(e) => {
                            out.emit(Event::Alert {
                                step: trainer.step,
                                kind: AlertKind::Notice,
                                detail: format!("rewind refused: {e:#}"),
                            });
                        }
                    }
                }
                Command::Stop {
                    save: want_save,
                    reason,
                } => {
                    samplers.cancel_all();
                    // Even at step 0 of a fresh run: a stopped run stays resumable.
                    if want_save && !saved_at_current_step(&trainer, &mut writer) {
                        save(&trainer, &mut writer, out, SaveKind::OnDemand);
                    } else if want_save {
                        pin_current(&trainer, out);
                    }
                    finish(&mut writer, out, reason);
                    return Ok(());
                }
            }
        }
        if stop_at.is_some_and(|s| trainer.step >= s) && !trainer.finished() {
            if !saved_at_current_step(&trainer, &mut writer) {
                save(&trainer, &mut writer, out, SaveKind::Scheduled);
            }
            finish(&mut writer, out, FinishReason::Stopped);
            return Ok(());
        }
        if trainer.finished() {
            if trainer.step > start_step && !saved_at_current_step(&trainer, &mut writer) {
                save(&trainer, &mut writer, out, SaveKind::Scheduled);
            }
            finish(&mut writer, out, FinishReason::MaxSteps);
            return Ok(());
        }
        let stats = match trainer.step() {
            Ok(s) => s,
            Err(e) if e.is::<PeersLeft>() => {
                // Another node left a multi-node run: stop at the last completed step,
                // resumable like any stop.
                out.emit(Event::Alert {
                    step: trainer.step,
                    kind: AlertKind::Notice,
                    detail: format!("{e:#}"),
                });
                if !saved_at_current_step(&trainer, &mut writer) {
                    save(&trainer, &mut writer, out, SaveKind::OnDemand);
                }
                finish(&mut writer, out, FinishReason::Stopped);
                return Ok(());
            }
            Err(e) => {
                // Error and Finished (sent by `spawn`) report the last completed step.
                out.emit(step_failure_alert(&e, trainer.step + 1));
                return Err(e);
            }
        };
        out.set_step(stats.step);
        let (step, loss, grad_norm) = (stats.step, stats.loss, stats.grad_norm);
        if !out.emit(Event::Step(stats)) {
            return Ok(());
        }
        // Alert and go on: what to do on a spike (pause, rewind) is the consumer's decision
        // (`[train] on_spike`, applied by the cockpit and the headless runner).
        if let Some((kind, detail)) = spikes.observe(step, loss, grad_norm) {
            // Consumers answer a spike from the checkpoints on disk (a rewind to the newest
            // before it): let the write in flight land first. Spikes are rare; this is free.
            writer.wait();
            out.emit(Event::Alert { step, kind, detail });
        }
        // The live config: a `Set` of a cadence applies from the next step on.
        let (eval_every, ckpt_every) = (
            trainer.run.config.train.eval_every,
            trainer.run.config.checkpoint.every,
        );
        if (eval_every > 0 && step % eval_every == 0) || trainer.finished() {
            if let Some(val_loss) = trainer.evaluate() {
                out.emit(Event::Eval { step, val_loss });
            }
        }
        Chronicle::record_due(&mut chronicle, &trainer, out);
        if ckpt_every > 0 && step % ckpt_every == 0 {
            save(&trainer, &mut writer, out, SaveKind::Scheduled);
        }
    }
}

/// A sample-only engine over a checkpoint: answers `Sample` until `Stop`.
fn serve_samples<B: Backend>(
    run: PreparedRun,
    device: B::Device,
    device_name: String,
    cmds: &Receiver<Command>,
    out: &Emitter,
) -> Result<()> {
    let Some(ckpt) = run.checkpoint.as_ref() else {
        bail!("internal: sample-only engine without a checkpoint");
    };
    let step = ckpt.trainer.step;
    let model = crate::model::load::load_model::<B>(&run.config.model, &ckpt.weights, &device)?;
    out.set_step(step);
    let origin = format!("inspect:{}", ckpt.dir.display());
    let mut info = run_info(&run, device_name, step, origin);
    info.max_steps = step;
    out.emit(Event::Started { step, info });
    let mut samplers = Samplers::default();
    let mut reason = FinishReason::Stopped;
    while let Ok(cmd) = cmds.recv() {
        match cmd {
            Command::Sample { id, prompt, params } => samplers.start(
                chat_template(&run.config, &run.tokenizer),
                id,
                prompt,
                params,
                model.clone(),
                run.tokenizer.clone(),
                step,
                out,
            ),
            Command::CancelSample { id } => samplers.cancel(id),
            Command::Stop { reason: why, .. } => {
                reason = why;
                break;
            }
            _ => {}
        }
    }
    samplers.cancel_all();
    out.finish(reason);
    Ok(())
}
