//! What a checkpoint of a `Trainer` holds: its non-tensor state (`trainer.json`) and the
//! host-memory snapshot of weights and moments a save writes.

use super::Trainer;
use crate::model::params::{export_params, param_shapes};
use crate::store::checkpoint::CheckpointData;
use crate::store::ckpt_writer::{Retention, SaveJob};
use crate::store::layout::{unix_now, CHECKPOINT_FORMAT_VERSION};
use crate::store::trainer_state::{
    model_config_hash, OptimizerState, RngState, ScheduleState, TrainerState,
};
use anyhow::Result;
use burn::tensor::backend::AutodiffBackend;

impl<B: AutodiffBackend> Trainer<B> {
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
}
