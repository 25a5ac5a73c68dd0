//! Activation checkpointing by recomputing each transformer block (`[train]
//! activation_checkpointing`). Hand-written rather than Burn's `BalancedCheckpointing`
//! strategy: that strategy only re-runs Burn's own ops marked memory-bound (element-wise
//! ops) and keeps everything else, so the matmul outputs and our fused kernels' saved state
//! (attention, RMSNorm, SwiGLU: compute-bound custom nodes) would all stay in memory; and it
//! changes the backend type to `Autodiff<Flex, BalancedCheckpointing>`, which the fused
//! kernels' backend check does not recognise, so they would switch off.
//!
//! Here one micro-batch is a forward pass without a graph that keeps only each block's input,
//! then backward passes from the top: the head (norm, output, loss), each block recomputed on
//! its saved input with a graph of its own and back-propagated with the gradient arriving from
//! above (as the gradient of `sum(y * g)`, which is exactly `g` at `y`), and the embedding.
//! At most one block's activations are alive at a time, for one extra forward per step. The
//! backend and the kernels are unchanged, so the gradients are those of the plain pass up to
//! float rounding.

use super::backward::{scaled, MicroBatch};
use super::optim::GradBuffer;
use super::precision::compute_copy;
use crate::config::Precision;
use crate::model::Llama;
use burn::module::Module;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;

/// Forward and backward of one micro-batch block by block; see the module doc. Gradients
/// (times `buffer.loss_scale`) go to `buffer`; returns the unscaled loss.
pub fn micro_batch<B: AutodiffBackend>(
    master: &Llama<B>,
    batch: &MicroBatch<B>,
    precision: Precision,
    buffer: &mut GradBuffer<B::InnerBackend>,
) -> Tensor<B::InnerBackend, 1> {
    let [rows, seq] = batch.inputs.dims();
    let device = batch.inputs.device();
    let dims = master.dims;

    // Forward without a graph: parameters untracked, so no op records anything.
    let frozen = compute_copy(&master.clone().no_grad(), precision);
    let tables = frozen.rope(0, seq, &device);
    let mut block_inputs = Vec::with_capacity(frozen.layers.len());
    let mut x = frozen.embed(batch.inputs.clone());
    for layer in &frozen.layers {
        block_inputs.push(x.clone());
        x = layer.run(x, [rows, seq], &dims, &tables);
    }
    drop(frozen);

    // Head: norm, output projection and loss on the last block's output.
    let head = compute_copy(&master.without_layers(), precision);
    let h = x.require_grad();
    let loss = batch.loss_from_logits(head.head(h.clone()));
    let value = loss.clone().inner();
    let grads = scaled(loss, buffer.loss_scale).backward();
    let mut upstream = h.grad(&grads).expect("the head's input is tracked");
    buffer.add_part::<B, _>(master, grads);

    // Blocks from the top, each recomputed from its saved input.
    for (i, layer) in master.layers.iter().enumerate().rev() {
        let x = block_inputs
            .pop()
            .expect("one saved input per block")
            .require_grad();
        let y = compute_copy(layer, precision).run(x.clone(), [rows, seq], &dims, &tables);
        let grads = (y * Tensor::from_inner(upstream)).sum().backward();
        upstream = x
            .grad(&grads)
            .unwrap_or_else(|| panic!("block {i}'s input is tracked"));
        buffer.add_part::<B, _>(master, grads);
    }

    // Embedding (a tied one also got the head's share above; the buffer sums the two).
    let embed = compute_copy(&master.without_layers(), precision);
    let y = embed.embed(batch.inputs.clone());
    let grads = (y * Tensor::from_inner(upstream)).sum().backward();
    buffer.add_part::<B, _>(master, grads);
    buffer.end_micro_batch();
    value
}
