//! One training run's tensors and counters, and the operations on them: a step, an
//! evaluation, a checkpoint. Generic over the Burn backend; knows nothing of threads or UIs.

use super::backward::{micro_batch, BackwardPlan, MicroBatch};
use super::optim::{AdamW, AdamWConfig, GradBuffer};
use super::parallel::PeerGroup;
use super::precision::{LossScaler, Verdict};
use super::schedule::LrSchedule;
use super::session::PreparedRun;
use crate::controls::{ControlRecord, RewindRecord};
use crate::data::loader::{eval_batches, Batch, DataCursor, TokenLoader};
use crate::data::sft_loader::{stack, MaskedBatch, SftLoader};
use crate::model::params::{export_params, import_params, param_shapes, tensor_to_vec};
use crate::model::Llama;
use crate::protocol::StepStats;
use crate::store::checkpoint::CheckpointData;
use crate::store::ckpt_writer::{Retention, SaveJob};
use crate::store::layout::{unix_now, CHECKPOINT_FORMAT_VERSION};
use crate::store::trainer_state::{
    model_config_hash, OptimizerState, RngState, ScheduleState, TrainerState,
};
use anyhow::{bail, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use std::collections::VecDeque;
use std::time::Instant;

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

/// Upload a batch of token rows.
pub fn batch_tensor<B: Backend>(batch: &Batch, device: &B::Device) -> Tensor<B, 2, Int> {
    rows_tensor(&batch.tokens, batch.batch, batch.seq, device)
}

fn rows_tensor<B: Backend>(
    tokens: &[u32],
    batch: usize,
    seq: usize,
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    let data: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
    Tensor::from_data(TensorData::new(data, [batch, seq + 1]), device)
}

/// A batch from either data source; SFT batches carry a loss mask.
pub(crate) struct TrainBatch {
    pub(crate) tokens: Vec<u32>,
    pub(crate) mask: Option<Vec<f32>>,
    pub(crate) batch: usize,
    pub(crate) seq: usize,
}

impl TrainBatch {
    /// Upload the batch: inputs, targets and mask.
    pub(crate) fn upload<B: Backend>(&self, device: &B::Device) -> MicroBatch<B> {
        let rows = rows_tensor::<B>(&self.tokens, self.batch, self.seq, device);
        let mask = self
            .mask
            .as_ref()
            .map(|m| Tensor::from_data(TensorData::new(m.clone(), [m.len()]), device));
        MicroBatch::from_rows(rows, mask)
    }

    pub(crate) fn loss<B: Backend>(&self, model: &Llama<B>, device: &B::Device) -> Tensor<B, 1> {
        self.upload(device).loss(model)
    }
}

impl From<Batch> for TrainBatch {
    fn from(b: Batch) -> Self {
        Self {
            tokens: b.tokens,
            mask: None,
            batch: b.batch,
            seq: b.seq,
        }
    }
}

impl From<MaskedBatch> for TrainBatch {
    fn from(b: MaskedBatch) -> Self {
        Self {
            tokens: b.tokens,
            mask: Some(b.mask),
            batch: b.batch,
            seq: b.seq,
        }
    }
}

/// Where training batches come from.
pub(super) enum Source {
    Tokens(TokenLoader),
    Sft(SftLoader),
}

impl Source {
    pub(super) fn next_batch(&mut self) -> Result<TrainBatch> {
        Ok(match self {
            Source::Tokens(l) => l.next_batch()?.into(),
            Source::Sft(l) => l.next_batch().into(),
        })
    }
    fn cursor(&self) -> DataCursor {
        match self {
            Source::Tokens(l) => l.cursor(),
            Source::Sft(l) => l.cursor(),
        }
    }
    fn seek(&mut self, c: DataCursor) -> Result<()> {
        match self {
            Source::Tokens(l) => l.seek(c),
            Source::Sft(l) => l.seek(c),
        }
    }
}

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
    /// Build the model and optimizer, loading a checkpoint when the run starts from one.
    pub fn new(run: PreparedRun, device: B::Device, fresh_optimizer: bool) -> Result<Self> {
        let cfg = run.config.clone();
        let t = &cfg.train;
        let mut model = Llama::<B>::new(&cfg.model, t.seed, &device);
        let mut optim = AdamW::new(AdamWConfig {
            beta1: t.beta1,
            beta2: t.beta2,
            eps: t.eps,
            weight_decay: t.weight_decay,
            grad_clip: t.grad_clip,
        });
        let (mut loader, eval_set) = match (&run.shards, &run.sft) {
            (Some(shards), _) => {
                let vocab = cfg.model.vocab_size;
                let loader =
                    TokenLoader::new(shards.train.clone(), t.batch_size, t.seq_len, t.seed, vocab)?;
                let eval = if shards.val.is_empty() || t.eval_batches == 0 {
                    Vec::new()
                } else {
                    eval_batches(&shards.val, t.batch_size, t.seq_len, t.eval_batches, vocab)?
                };
                (
                    Source::Tokens(loader),
                    eval.into_iter().map(TrainBatch::from).collect(),
                )
            }
            (None, Some(sft)) => {
                let loader = SftLoader::new(sft.train.clone(), t.batch_size, t.seq_len, t.seed)?;
                let eval: Vec<TrainBatch> = sft
                    .val
                    .chunks(t.batch_size)
                    .take(t.eval_batches)
                    .map(|rows| stack(&rows.iter().collect::<Vec<_>>(), t.seq_len).into())
                    .collect();
                (Source::Sft(loader), eval)
            }
            (None, None) => bail!("internal: a training run needs data"),
        };
        let (mut step, mut tokens, mut wall, mut val) = (0, 0, 0.0, None);
        let mut val_step = None;
        let (mut controls, mut rewinds) = (Vec::new(), Vec::new());
        if let Some(ck) = &run.checkpoint {
            model = import_params(model, &ck.weights)
                .map_err(|e| anyhow::anyhow!("{}: {e}", ck.dir.display()))?;
            if run.continue_state {
                let st = &ck.trainer;
                // A checkpoint that consumed no data (an import) starts at the beginning in
                // any order; any other cursor must be of this loader's order and fit its data.
                if st.tokens_seen > 0 {
                    loader
                        .seek(st.data_cursor)
                        .map_err(|e| anyhow::anyhow!("{}: {e:#}", ck.dir.display()))?;
                }
                // The only reader of a checkpoint's moments; without any (an import) AdamW
                // starts them at zero on the first step, as `prepare_resume` told the user.
                let moments = match fresh_optimizer {
                    true => None,
                    false => ck.read_moments()?,
                };
                if let Some(moments) = moments {
                    let params = param_shapes(&model);
                    optim
                        .import_moments(&params, moments, st.optimizer_step, &device)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", ck.dir.display()))?;
                }
                (step, tokens, wall, val) =
                    (st.step, st.tokens_seen, st.wall_time_s, st.last_val_loss);
                val_step = st.last_val_step;
                (controls, rewinds) = (st.controls.clone(), st.rewinds.clone());
            }
        }
        let schedule = LrSchedule {
            lr: t.lr,
            min_lr: t.min_lr,
            warmup_steps: t.warmup_steps,
            max_steps: t.max_steps,
        };
        let pending = run.replay.iter().cloned().collect();
        let plan = BackwardPlan {
            checkpointing: t.activation_checkpointing,
            precision: t.precision,
        };
        Ok(Self {
            plan,
            scaler: LossScaler::new(t.precision),
            last_lr: schedule.at(step.max(1)),
            run,
            model: Some(model),
            optim,
            loader,
            eval_set,
            schedule,
            device,
            step,
            tokens,
            wall_time_s: wall,
            last_val_loss: val,
            last_val_step: val_step,
            controls,
            pending,
            rewinds,
            peers: None,
        })
    }

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

    /// The non-tensor state as it would be saved now.
    pub fn trainer_state(&self) -> TrainerState {
        let cfg = &self.run.config;
        TrainerState {
            format_version: CHECKPOINT_FORMAT_VERSION,
            run_name: self.run.run_name.clone(),
            step: self.step,
            tokens_seen: self.tokens,
            data_cursor: self.loader.cursor(),
            rng: RngState {
                init_seed: cfg.train.seed,
                data_seed: cfg.train.seed,
                sample_seed: cfg.sample.seed,
            },
            schedule: ScheduleState {
                lr: cfg.train.lr,
                min_lr: cfg.train.min_lr,
                warmup_steps: cfg.train.warmup_steps,
                max_steps: cfg.train.max_steps,
                last_lr: self.last_lr,
            },
            optimizer_step: self.optim.step,
            last_val_loss: self.last_val_loss,
            last_val_step: self.last_val_step,
            parent: self.run.parent.clone(),
            wall_time_s: self.wall_time_s,
            written_unix: unix_now(),
            model_config_hash: model_config_hash(&cfg.model),
            vocab_size: self.run.tokenizer.vocab_size(),
            config_toml: cfg.to_toml(),
            controls: self.controls.clone(),
            rewinds: self.rewinds.clone(),
            // The engine always saves its moments (zero before the first step).
            optimizer_state: OptimizerState::Present,
            pinned: false,
        }
    }

    /// Copy everything a checkpoint holds to host memory (weights, AdamW moments, trainer
    /// state): the only part of a save the step loop waits for when it is written in the
    /// background (`store::ckpt_writer`). A `pinned` one (saved on demand) is never removed by
    /// retention until a user unpins it.
    pub fn checkpoint_snapshot(&self, pinned: bool) -> Result<SaveJob> {
        let params = param_shapes(self.model());
        let data = CheckpointData {
            trainer: TrainerState {
                pinned,
                ..self.trainer_state()
            },
            model_config: self.run.config.model.clone(),
            weights: export_params(self.model()),
            moments: Some(self.optim.export_moments(&params)),
            tokenizer_json: self.run.tokenizer.to_json_string()?,
            eos_token_id: self.run.tokenizer.eot_id(),
            tokenizer_meta: Some(self.run.tokenizer.meta()),
        };
        let c = &self.run.config.checkpoint;
        Ok(SaveJob {
            run_dir: self.run.run_dir.clone(),
            data,
            retention: Retention {
                keep_last: c.keep_last,
                keep_every: c.keep_every,
            },
        })
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
