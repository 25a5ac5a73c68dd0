//! Building a `Trainer`: the model and optimizer from the config, the data source and its
//! validation batches, and, when the run starts from a checkpoint, its weights and state.

use super::{Source, TrainBatch, Trainer};
use crate::data::loader::{eval_batches, TokenLoader};
use crate::data::sft_loader::{stack, SftLoader};
use crate::model::params::{import_params, param_shapes};
use crate::model::Llama;
use crate::train::backward::BackwardPlan;
use crate::train::optim::{AdamW, AdamWConfig};
use crate::train::precision::LossScaler;
use crate::train::schedule::LrSchedule;
use crate::train::session::PreparedRun;
use anyhow::{bail, Result};
use burn::tensor::backend::AutodiffBackend;

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
}
