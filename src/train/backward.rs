//! One micro-batch's forward and backward, the way `[train]` asks for it: on the f32 model or
//! a reduced-precision compute copy (`precision.rs`), in one pass or block by block with
//! recomputation (`recompute.rs`). Gradients always land in the f32 `GradBuffer`.

use super::optim::GradBuffer;
use super::precision::compute_copy;
use crate::config::Precision;
use crate::model::llama::{masked_next_token_loss, next_token_loss};
use crate::model::Llama;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};

/// How the backward of a step is computed (`[train] activation_checkpointing`, `precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackwardPlan {
    /// Recompute each block in the backward instead of keeping its activations.
    pub checkpointing: bool,
    /// Dtype of the forward/backward compute.
    pub precision: Precision,
}

/// A micro-batch on the device: model inputs, next-token targets and the optional loss mask
/// (SFT: 1 on response tokens).
pub struct MicroBatch<B: Backend> {
    /// Token ids `[batch, seq]`.
    pub inputs: Tensor<B, 2, Int>,
    /// Next-token ids as a column `[batch * seq, 1]`.
    pub targets: Tensor<B, 2, Int>,
    /// Per-target weights `[batch * seq]`; `None` averages over every target.
    pub mask: Option<Tensor<B, 1>>,
}

impl<B: Backend> MicroBatch<B> {
    /// Split `[batch, seq + 1]` token rows into inputs and targets.
    pub fn from_rows(rows: Tensor<B, 2, Int>, mask: Option<Tensor<B, 1>>) -> Self {
        let [batch, width] = rows.dims();
        let seq = width - 1;
        Self {
            inputs: rows.clone().narrow(1, 0, seq),
            targets: rows.narrow(1, 1, seq).reshape([batch * seq, 1]),
            mask,
        }
    }

    /// The mean next-token loss (f32) of `logits [batch * seq, vocab]`; masked when the batch
    /// has a mask.
    pub fn loss_from_logits(&self, logits: Tensor<B, 2>) -> Tensor<B, 1> {
        match &self.mask {
            Some(mask) => masked_next_token_loss(logits, self.targets.clone(), mask.clone()),
            None => next_token_loss(logits, self.targets.clone()),
        }
    }

    /// Forward pass and loss in one graph.
    pub fn loss(&self, model: &Llama<B>) -> Tensor<B, 1> {
        self.loss_from_logits(model.forward(self.inputs.clone(), 0, None))
    }
}

/// Forward and backward of one micro-batch on the f32 master `model`; its gradients are added
/// to `buffer` (multiplied by `buffer.loss_scale`) and its unscaled f32 loss returned.
pub fn micro_batch<B: AutodiffBackend>(
    model: &Llama<B>,
    batch: &MicroBatch<B>,
    plan: BackwardPlan,
    buffer: &mut GradBuffer<B::InnerBackend>,
) -> Tensor<B::InnerBackend, 1> {
    if plan.checkpointing {
        return super::recompute::micro_batch(model, batch, plan.precision, buffer);
    }
    let loss = match plan.precision {
        Precision::F32 => batch.loss(model),
        p => batch.loss(&compute_copy(model, p)),
    };
    let value = loss.clone().inner();
    let grads = scaled(loss, buffer.loss_scale).backward();
    buffer.accumulate::<B, _>(model, grads);
    value
}

/// `loss * scale`, or `loss` itself at scale 1 (the default path adds no op).
pub(super) fn scaled<B: Backend>(loss: Tensor<B, 1>, scale: f64) -> Tensor<B, 1> {
    match scale == 1.0 {
        true => loss,
        false => loss.mul_scalar(scale),
    }
}
