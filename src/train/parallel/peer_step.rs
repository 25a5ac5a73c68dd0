//! One peer's part of a data-parallel step, the same code on the coordinator and on every
//! worker thread: forward + backward over its slices, the all-reduce, then the AdamW update
//! every peer applies identically (the reduced gradients, the loss and the clipping decision
//! are bit-identical on all peers, so the replicas never drift apart).

use super::reduce::{mean_over_peers, within, Layout, Slots};
use super::shard::Shard;
use crate::model::Llama;
use crate::train::optim::{AdamW, AdamWConfig, GradBuffer};
use anyhow::Result;
use burn::collective::PeerId;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use std::time::{Duration, Instant};

/// Who a peer is in the collective.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PeerSeat {
    /// Its id with Burn's collective (unique over all nodes).
    pub(super) id: PeerId,
    /// Its index over all nodes (its rows of each batch and its compute-time slot).
    pub(super) index: usize,
}

/// What one step did, as every peer sees it after the all-reduce.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PeerStep {
    pub(super) slots: Slots,
    /// Global gradient norm before clipping (None when no update was made).
    pub(super) grad_norm: Option<f64>,
    /// This peer's wait in the all-reduce.
    pub(super) allreduce_ms: f64,
}

/// What a step asks of one peer.
pub(super) struct StepOrder<'a> {
    pub(super) shards: &'a [Shard],
    pub(super) lr: f64,
    pub(super) config: AdamWConfig,
    /// Leave the run: send a buffer of zeros with the stop flag set, update nothing.
    pub(super) farewell: bool,
}

/// Run one peer's step; the model comes back whatever happens. No update is applied when the
/// loss is not finite or some peer stops (every peer sees the same and decides the same).
/// `timeout` bounds the all-reduce (the coordinator's; worker threads wait as long as it does).
pub(super) fn peer_step<B: AutodiffBackend>(
    model: Llama<B>,
    optim: &mut AdamW<B::InnerBackend>,
    order: StepOrder<'_>,
    seat: PeerSeat,
    layout: &Layout,
    device: &B::Device,
    timeout: Option<Duration>,
) -> (Llama<B>, Result<PeerStep>) {
    let start = Instant::now();
    let mut buffer = GradBuffer::<B::InnerBackend>::default();
    let mut losses = Vec::with_capacity(order.shards.len());
    if !order.farewell {
        for shard in order.shards {
            let loss = shard.loss(&model, device);
            losses.push(loss.clone().inner());
            buffer.accumulate::<B, _>(&model, loss.backward());
        }
    }
    let loss = (!losses.is_empty()).then(|| Tensor::cat(losses, 0).mean());
    let compute_ms = start.elapsed().as_secs_f64() * 1000.0;
    let flat = layout.pack(
        &mut buffer,
        loss,
        order.farewell,
        seat.index,
        compute_ms,
        &device.clone(),
    );
    let reduce_start = Instant::now();
    let reduced = match timeout {
        Some(t) => within(t, "gradient all-reduce", move || {
            mean_over_peers(seat.id, flat)
        }),
        None => mean_over_peers(seat.id, flat),
    };
    let reduced = match reduced {
        Ok(r) => r,
        Err(e) => return (model, Err(e)),
    };
    let slots = layout.unpack(reduced, &mut buffer);
    let allreduce_ms = reduce_start.elapsed().as_secs_f64() * 1000.0;
    if slots.stop || !slots.loss.is_finite() {
        let step = PeerStep {
            slots,
            grad_norm: None,
            allreduce_ms,
        };
        return (model, Ok(step));
    }
    optim.config = order.config;
    let (model, stats) = optim.update(model, buffer, order.lr);
    let step = PeerStep {
        slots,
        grad_norm: Some(stats.grad_norm),
        allreduce_ms,
    };
    (model, Ok(step))
}
