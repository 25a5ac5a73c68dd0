//! A local peer: a thread with its own model replica and optimizer on its own device, which
//! joins Burn's collective and then runs the steps the coordinator sends it. Its replica is
//! updated by the same code as the coordinator's (`peer_step.rs`), so it stays identical.

use super::peer_step::{peer_step, PeerSeat, StepOrder};
use super::reduce::Layout;
use super::shard::Shard;
use crate::model::Llama;
use crate::train::optim::{AdamW, AdamWConfig};
use burn::collective::{finish_collective, register, CollectiveConfig};
use burn::tensor::backend::AutodiffBackend;
use std::sync::mpsc::{Receiver, Sender};

/// What the coordinator asks of a worker.
pub(super) enum Job<B: AutodiffBackend> {
    /// Train on these slices and apply the update.
    Step {
        shards: Vec<Shard>,
        lr: f64,
        config: AdamWConfig,
    },
    /// Replace the replica (a rewind swapped the coordinator's weights and moments).
    Reload {
        model: Box<Llama<B>>,
        optim: Box<AdamW<B::InnerBackend>>,
    },
    /// Join the coordinator's farewell all-reduce (a node leaving a multi-node run).
    Farewell,
}

/// What a worker answers: `Err` carries a one-line reason.
pub(super) type Report = Result<(), String>;

/// Everything a worker thread starts with.
pub(super) struct WorkerStart<B: AutodiffBackend> {
    pub(super) seat: PeerSeat,
    pub(super) device: B::Device,
    pub(super) model: Llama<B>,
    pub(super) optim: AdamW<B::InnerBackend>,
    pub(super) layout: Layout,
    pub(super) collective: CollectiveConfig,
}

/// The worker's life: register (reported once), then one report per job until the
/// coordinator drops its end of the channel; then it leaves the collective.
pub(super) fn run<B: AutodiffBackend>(
    start: WorkerStart<B>,
    jobs: Receiver<Job<B>>,
    reports: Sender<Report>,
) {
    let WorkerStart {
        seat,
        device,
        model,
        mut optim,
        layout,
        collective,
    } = start;
    let joined = register::<B::InnerBackend>(seat.id, device.clone(), collective)
        .map_err(|e| format!("peer {} could not join the collective: {e:?}", seat.id.0));
    let ok = joined.is_ok();
    if reports.send(joined).is_err() || !ok {
        return;
    }
    // Always `Some` between jobs; lent to `peer_step` during one.
    let mut model = Some(model);
    while let Ok(job) = jobs.recv() {
        let report = match job {
            Job::Step { shards, lr, config } => step(
                &mut model, &mut optim, &shards, lr, config, false, seat, &layout, &device,
            ),
            Job::Farewell => {
                let config = optim.config;
                step(
                    &mut model,
                    &mut optim,
                    &[],
                    0.0,
                    config,
                    true,
                    seat,
                    &layout,
                    &device,
                )
            }
            Job::Reload { model: m, optim: o } => {
                model = Some(*m);
                optim = *o;
                Ok(())
            }
        };
        if reports.send(report).is_err() {
            break;
        }
    }
    let _ = finish_collective::<B::InnerBackend>(seat.id);
}

#[allow(clippy::too_many_arguments)]
fn step<B: AutodiffBackend>(
    model: &mut Option<Llama<B>>,
    optim: &mut AdamW<B::InnerBackend>,
    shards: &[Shard],
    lr: f64,
    config: AdamWConfig,
    farewell: bool,
    seat: PeerSeat,
    layout: &Layout,
    device: &B::Device,
) -> Report {
    let order = StepOrder {
        shards,
        lr,
        config,
        farewell,
    };
    let Some(current) = model.take() else {
        return Err(format!("peer {}: internal: replica missing", seat.id.0));
    };
    // `peer_step` hands the replica back in every case.
    let (next, result) = peer_step(current, optim, order, seat, layout, device, None);
    *model = Some(next);
    result
        .map(|_| ())
        .map_err(|e| format!("peer {}: {e:#}", seat.id.0))
}
