//! One training run's tensors and counters, and the operations on them: a step, an
//! evaluation, a checkpoint. Generic over the Burn backend; knows nothing of threads or UIs.
//! By phase: `build` (construction and loading), this file (step and evaluation),
//! `snapshot` (what a checkpoint holds); `batches` is the data the step uploads.

use super::backward::{micro_batch, BackwardPlan};
use super::optim::{AdamW, GradBuffer};
use super::parallel::PeerGroup;
use super::precision::{LossScaler, Verdict};
use super::schedule::LrSchedule;
use super::session::PreparedRun;
use crate::controls::{ControlRecord, RewindRecord};
use crate::model::params::tensor_to_vec;
use crate::model::Llama;
use crate::protocol::StepStats;
use anyhow::{bail, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use std::collections::VecDeque;
use std::time::Instant;

mod batches;
mod build;
mod snapshot;
pub use batches::batch_tensor;
use batches::Source;
pub(crate) use batches::TrainBatch;

/// A step whose loss was NaN or infinite: a typed error so the engine can tell it (an alert
/// about the run's health) from an I/O or internal failure (a `StepFailed` alert).
#[derive(Debug, Clone, PartialEq)]
pub struct NonFiniteLoss {
    /// The loss value (NaN or infinite).
    pub loss: f64,
    /// The step that was attempted and skipped.
    pub step: u64,
}

impl std::fmt::Display for NonFiniteLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "loss became {} at step {}; the update was skipped. Lower train.lr or train.grad_clip and resume from the last checkpoint",
            self.loss, self.step
        )
    }
}

impl std::error::Error for NonFiniteLoss {}

/// A run in progress.
pub struct Trainer<B: AutodiffBackend> {
    pub run: PreparedRun,
    /// Always `Some` between steps; taken during the update so AdamW can write in place.
    pub(super) model: Option<Llama<B>>,
    pub(super) optim: AdamW<B::InnerBackend>,
    pub(super) loader: Source,
    eval_set: Vec<TrainBatch>,
    pub(super) schedule: LrSchedule,
    pub(super) device: B::Device,
    pub step: u64,
    pub tokens: u64,
    pub wall_time_s: f64,
    pub last_val_loss: Option<f64>,
    /// The step `last_val_loss` was measured at.
    pub last_val_step: Option<u64>,
    pub last_lr: f64,
    /// Live control changes of this run's lineage, stored in every checkpoint (steering.rs).
    pub controls: Vec<ControlRecord>,
    /// Recorded changes of a newer checkpoint still to replay, oldest first (steering.rs).
    pub(super) pending: VecDeque<ControlRecord>,
    /// Rewinds of this run's lineage, stored in every checkpoint.
    pub rewinds: Vec<RewindRecord>,
    /// Activation checkpointing and precision of the backward (`[train]`).
    plan: BackwardPlan,
    /// f16 loss scale (fixed at 1 otherwise); starts afresh in every process.
    scaler: LossScaler,
    /// The other data-parallel peers (`[parallel]`, `train/parallel/`); None on one device.
    pub(super) peers: Option<PeerGroup<B>>,
}

impl<B: AutodiffBackend> Trainer<B> {
    /// One optimizer update over `grad_accum` micro-batches. A non-finite loss is an error and
    /// the update is skipped, so the weights stay as they were.
    pub fn step(&mut self) -> Result<StepStats> {
        if self.peers.is_some() {
            return self.parallel_step();
        }
        let start = Instant::now();
        let (loss, buffer) = loop {
            let cursor = self.loader.cursor();
            let (loss, buffer) = self.forward_backward()?;
            if !loss.is_finite() {
                return Err(NonFiniteLoss {
                    loss,
                    step: self.step + 1,
                }
                .into());
            }
            if !self.scaler.is_dynamic() {
                break (loss, buffer);
            }
            // f16: an overflowing update is not applied; the same batches are tried again at
            // half the scale (PyTorch's GradScaler moves on to the next batches instead; here
            // the data order stays that of an f32 run).
            match self.scaler.observe(buffer.raw_norm().is_finite()) {
                Verdict::Apply => break (loss, buffer),
                Verdict::Retry => self.loader.seek(cursor)?,
                Verdict::GiveUp => bail!(
                    "f16 gradients overflow even at loss scale 1 at step {}; use train.precision = \"bf16\" or \"f32\"",
                    self.step + 1
                ),
            }
        };
        let lr = self.schedule.at(self.step + 1);
        let model = self.model.take().expect("model present between steps");
        let (model, stats) = self.optim.update(model, buffer, lr);
        self.model = Some(model);
        self.step += 1;
        let step_tokens = self.run.config.tokens_per_step();
        self.tokens += step_tokens;
        self.last_lr = lr;
        let secs = start.elapsed().as_secs_f64();
        self.wall_time_s += secs;
        Ok(StepStats {
            step: self.step,
            loss,
            lr,
            grad_norm: stats.grad_norm,
            tokens: self.tokens,
            step_ms: secs * 1000.0,
            tokens_per_s: step_tokens as f64 / secs.max(1e-9),
            peers: 1,
            peer_step_ms: Vec::new(),
            allreduce_ms: 0.0,
        })
    }

    /// Forward and backward over `grad_accum` micro-batches: the mean loss and the gradients.
    fn forward_backward(&mut self) -> Result<(f64, GradBuffer<B::InnerBackend>)> {
        let mut buffer = GradBuffer::<B::InnerBackend>::default();
        buffer.loss_scale = self.scaler.scale();
        let accum = self.run.config.train.grad_accum;
        let mut losses = Vec::with_capacity(accum);
        for _ in 0..accum {
            let batch = self.loader.next_batch()?.upload::<B>(&self.device);
            losses.push(micro_batch(self.model(), &batch, self.plan, &mut buffer));
        }
        let loss = tensor_to_vec(Tensor::cat(losses, 0).mean())[0] as f64;
        Ok((loss, buffer))
    }

    /// Advance the data cursor past `steps` training steps' worth of batches without training
    /// on them (a rewind's skip); tokens seen stay those actually trained on.
    pub fn skip_batches(&mut self, steps: u64) -> Result<()> {
        let batches = steps.saturating_mul(self.run.config.train.grad_accum as u64);
        for _ in 0..batches {
            self.loader.next_batch()?;
        }
        Ok(())
    }

    /// Mean loss over the fixed validation batches (`None` without validation data, and on
    /// the nodes of a multi-node run other than node 0, which evaluates for all).
    pub fn evaluate(&mut self) -> Option<f64> {
        if self.eval_set.is_empty() || !self.is_coordinator() {
            return None;
        }
        let model = self.model().valid();
        let device = self.device.clone();
        let losses: Vec<_> = self
            .eval_set
            .iter()
            .map(|b| b.loss(&model, &device))
            .collect();
        let val = tensor_to_vec(Tensor::cat(losses, 0).mean())[0] as f64;
        self.last_val_loss = Some(val);
        self.last_val_step = Some(self.step);
        Some(val)
    }

    /// The current weights (for sampling snapshots and checkpoints).
    pub fn model(&self) -> &Llama<B> {
        self.model.as_ref().expect("model present between steps")
    }

    /// Steps left before `max_steps`.
    pub fn finished(&self) -> bool {
        self.step >= self.run.config.train.max_steps
    }
}
