//! The trainer's side of data parallelism: joining the peers of `[parallel]` and the step
//! that feeds them. Kept here so `trainer.rs` only branches to it.

use super::{ParallelStep, PeerGroup};
use crate::protocol::StepStats;
use crate::train::trainer::{NonFiniteLoss, Trainer};
use anyhow::{anyhow, bail, Result};
use burn::tensor::backend::AutodiffBackend;
use std::time::Instant;

/// Another node of a multi-node run left (stopped, failed or was interrupted) before this
/// step: nothing was updated, and this process stops too (a typed error so the engine can
/// finish cleanly instead of reporting a failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeersLeft {
    /// The step that was not taken.
    pub step: u64,
}

impl std::fmt::Display for PeersLeft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "another node of the data-parallel run left before step {}; stopping too",
            self.step
        )
    }
}

impl std::error::Error for PeersLeft {}

/// Live keys a multi-node run refuses: the other nodes would keep the old value and their
/// replicas would drift apart from this one.
const DIVERGING_KEYS: [&str; 4] = [
    "train.lr",
    "train.min_lr",
    "train.grad_clip",
    "train.weight_decay",
];

impl<B: AutodiffBackend> Trainer<B> {
    /// Join the data-parallel peers `[parallel]` asks for, with replicas of the current
    /// weights and moments on `devices` (one per local peer, the coordinator's first). With
    /// one peer on one node nothing happens: the single-device path stays as it is.
    pub fn start_peers(&mut self, devices: Vec<B::Device>) -> Result<()> {
        let plan = self.run.config.parallel.clone();
        if !plan.is_parallel() {
            return Ok(());
        }
        let group = PeerGroup::start(&plan, devices, self.model(), &self.optim)?;
        self.peers = Some(group);
        Ok(())
    }

    /// Whether this process evaluates, writes checkpoints and owns the run's history (node 0).
    pub fn is_coordinator(&self) -> bool {
        self.run.config.parallel.is_coordinator()
    }

    /// Bytes each peer sends into the all-reduce per step (None on one device).
    pub fn allreduce_bytes(&self) -> Option<u64> {
        self.peers.as_ref().map(|g| g.bytes_per_step())
    }

    /// Move the peers of `from` (a trainer being replaced by a rewind) to this one and give
    /// them its weights and moments.
    pub(in crate::train) fn adopt_peers(&mut self, from: &mut Trainer<B>) -> Result<()> {
        let Some(mut group) = from.peers.take() else {
            return Ok(());
        };
        self.run.config.parallel = from.run.config.parallel.clone();
        let reloaded = group.reload(self.model(), &self.optim);
        self.peers = Some(group);
        reloaded
    }

    /// Refuse a live change the other nodes of a multi-node run would not see.
    pub(in crate::train) fn refuse_diverging_change(&self, item: &str) -> Result<()> {
        let key = item.split_once('=').map_or(item, |(k, _)| k).trim();
        let nodes = self.run.config.parallel.nodes;
        if nodes > 1 && DIVERGING_KEYS.contains(&key) {
            bail!(
                "{key} cannot change live in a run over {nodes} nodes (the other nodes would keep the old value); stop, then resume every node with --set {key}=..."
            );
        }
        Ok(())
    }

    /// One optimizer update over `grad_accum` global micro-batches, shared out to the peers.
    pub(in crate::train) fn parallel_step(&mut self) -> Result<StepStats> {
        let start = Instant::now();
        let accum = self.run.config.train.grad_accum;
        let mut batches = Vec::with_capacity(accum);
        for _ in 0..accum {
            batches.push(self.loader.next_batch()?);
        }
        let lr = self.schedule.at(self.step + 1);
        let Some(group) = self.peers.as_mut() else {
            bail!("internal: a data-parallel step without peers");
        };
        let model = self
            .model
            .take()
            .ok_or_else(|| anyhow!("internal: model missing between steps"))?;
        let (model, result) = group.step(model, &mut self.optim, &batches, lr);
        self.model = Some(model);
        let ParallelStep {
            loss,
            grad_norm,
            stopped,
            peer_ms,
            allreduce_ms,
        } = result?;
        if stopped {
            return Err(PeersLeft {
                step: self.step + 1,
            }
            .into());
        }
        let (true, Some(grad_norm)) = (loss.is_finite(), grad_norm) else {
            return Err(NonFiniteLoss {
                loss,
                step: self.step + 1,
            }
            .into());
        };
        self.step += 1;
        let step_tokens = self.run.config.tokens_per_step();
        self.tokens += step_tokens;
        self.last_lr = lr;
        let total_peers = self.run.config.parallel.total_peers() as u32;
        if self.finished() {
            // Every node ends here too: nobody is waiting for a farewell.
            if let Some(group) = self.peers.as_mut() {
                group.settle();
            }
        }
        let secs = start.elapsed().as_secs_f64();
        self.wall_time_s += secs;
        Ok(StepStats {
            step: self.step,
            loss,
            lr,
            grad_norm,
            tokens: self.tokens,
            step_ms: secs * 1000.0,
            tokens_per_s: step_tokens as f64 / secs.max(1e-9),
            peers: total_peers,
            peer_step_ms: peer_ms,
            allreduce_ms,
        })
    }
}
