//! Data parallelism over Burn's collective operations (`burn::collective`, the `collective`
//! feature of Burn 0.21): one engine drives N peers, each with a replica of the model on its
//! own device and its own slice of every batch. The coordinator (peer 0 of node 0, the
//! engine thread) evaluates, checkpoints and emits events; local peers are worker threads;
//! other nodes are processes that meet through Burn's global orchestrator. Gradients are
//! all-reduced (mean) and every peer applies the same AdamW update: the alternative, peer 0
//! updates and broadcasts the weights, would move the weights again every step (as many
//! bytes as the gradients) and burn-collective 0.21 has no multi-node broadcast at all.

mod coordinator;
mod devices;
mod peer_step;
mod reduce;
mod shard;
mod worker;

pub use coordinator::PeersLeft;
pub use devices::{device_label, peer_devices, PeerDevices};

use crate::config::{ws_port, ParallelConfig};
use crate::model::params::param_shapes;
use crate::model::Llama;
use crate::train::optim::AdamW;
use crate::train::trainer::TrainBatch;
use anyhow::{anyhow, bail, Context, Result};
use burn::collective::{finish_collective, register, AllReduceStrategy, CollectiveConfig, PeerId};
use burn::module::Module;
use burn::tensor::backend::AutodiffBackend;
use peer_step::{peer_step, PeerSeat, StepOrder};
use reduce::{within as reduce_within, Layout};
use shard::Shard;
use std::str::FromStr;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Duration;
use worker::{Job, Report, WorkerStart};

/// Longest wait for the farewell all-reduce of a node leaving a multi-node run.
const FAREWELL_WAIT: Duration = Duration::from_secs(5);

/// A step's outcome as the coordinator reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParallelStep {
    /// The global batch's loss (mean over peers of their slice losses).
    pub loss: f64,
    /// Global gradient norm before clipping; None when no update was applied.
    pub grad_norm: Option<f64>,
    /// Another node left the run: nothing was updated and this process should stop too.
    pub stopped: bool,
    /// Each peer's forward + backward milliseconds, by peer index over all nodes.
    pub peer_ms: Vec<f64>,
    /// The coordinator's time in the all-reduce.
    pub allreduce_ms: f64,
}

struct WorkerLink<B: AutodiffBackend> {
    device: B::Device,
    jobs: Sender<Job<B>>,
    reports: Receiver<Report>,
}

/// The peers of this process (the coordinator's own seat and its worker threads), joined to
/// Burn's collective for the life of the run.
pub struct PeerGroup<B: AutodiffBackend> {
    plan: ParallelConfig,
    seat: PeerSeat,
    device: B::Device,
    layout: Layout,
    workers: Vec<WorkerLink<B>>,
    timeout: Duration,
    /// No farewell is owed on drop: the run reached its end on every node, or another node
    /// already left.
    settled: bool,
}

/// Burn's collective configuration for `plan`: a tree all-reduce between local peers, a
/// ring between nodes (burn-collective's recommendation).
fn collective_config(plan: &ParallelConfig) -> Result<CollectiveConfig> {
    let config = CollectiveConfig::default()
        .with_num_devices(plan.peers)
        .with_local_all_reduce_strategy(AllReduceStrategy::Tree(2));
    if plan.nodes == 1 {
        return Ok(config);
    }
    let node = plan.resolved_node_address()?;
    let port = ws_port(&node, "parallel.node_address")?;
    let address = |a: &str| burn_communication::Address::from_str(a).map_err(|e| anyhow!(e));
    Ok(config
        .with_num_nodes(plan.nodes as u32)
        .with_global_address(address(&plan.orchestrator)?)
        .with_node_address(address(&node)?)
        .with_data_service_port(port)
        .with_global_all_reduce_strategy(AllReduceStrategy::Ring))
}

impl<B: AutodiffBackend> PeerGroup<B> {
    /// Start the worker threads with replicas of `model` and `optim` on `devices[1..]` and
    /// join Burn's collective (waiting for every peer of every node, up to `timeout_s`).
    pub fn start(
        plan: &ParallelConfig,
        devices: Vec<B::Device>,
        model: &Llama<B>,
        optim: &AdamW<B::InnerBackend>,
    ) -> Result<Self> {
        if devices.len() != plan.peers {
            bail!(
                "internal: {} devices for {} peers",
                devices.len(),
                plan.peers
            );
        }
        let collective = collective_config(plan)?;
        let layout = Layout {
            sizes: param_shapes(model)
                .iter()
                .map(|(_, s)| s.iter().product())
                .collect(),
            total_peers: plan.total_peers(),
        };
        let first = plan.node_rank * plan.peers;
        let seat_of = |i: usize| PeerSeat {
            id: PeerId::from(first + i),
            index: first + i,
        };
        let mut workers = Vec::new();
        for (i, device) in devices.iter().enumerate().skip(1) {
            let (job_tx, job_rx) = channel();
            let (report_tx, report_rx) = channel();
            let start = WorkerStart {
                seat: seat_of(i),
                device: device.clone(),
                model: model.clone().fork(device),
                optim: optim.replica(device),
                layout: layout.clone(),
                collective: collective.clone(),
            };
            std::thread::Builder::new()
                .name(format!("llite-peer-{}", first + i))
                .spawn(move || worker::run(start, job_rx, report_tx))
                .context("cannot start a data-parallel peer thread")?;
            workers.push(WorkerLink {
                device: device.clone(),
                jobs: job_tx,
                reports: report_rx,
            });
        }
        let timeout = Duration::from_secs(plan.timeout_s);
        let seat = seat_of(0);
        let device = devices[0].clone();
        let (id, dev) = (seat.id, device.clone());
        reduce_within(timeout, "joining the data-parallel peers", move || {
            register::<B::InnerBackend>(id, dev, collective)
                .map_err(|e| anyhow!("peer {} could not join the collective: {e:?}", id.0))
        })?;
        let group = Self {
            plan: plan.clone(),
            seat,
            device,
            layout,
            workers,
            timeout,
            settled: false,
        };
        group.collect_reports("joining the data-parallel peers")?;
        Ok(group)
    }

    /// Bytes one peer sends into the all-reduce per step (gradients and a few scalars).
    pub fn bytes_per_step(&self) -> u64 {
        self.layout.bytes()
    }

    /// One data-parallel step over the global micro-batches `batches`: this process's peers
    /// train on their slices, the gradients are all-reduced and every peer updates. The
    /// coordinator's model comes back whatever happens.
    pub(crate) fn step(
        &mut self,
        model: Llama<B>,
        optim: &mut AdamW<B::InnerBackend>,
        batches: &[TrainBatch],
        lr: f64,
    ) -> (Llama<B>, Result<ParallelStep>) {
        let total = self.plan.total_peers();
        let first = self.seat.index;
        let shards_of = |i: usize| -> Vec<Shard> {
            batches
                .iter()
                .map(|b| Shard::of(b, first + i, total))
                .collect()
        };
        for (k, w) in self.workers.iter().enumerate() {
            let job = Job::Step {
                shards: shards_of(k + 1),
                lr,
                config: optim.config,
            };
            if w.jobs.send(job).is_err() {
                return (
                    model,
                    Err(anyhow!("data-parallel peer {} is gone", first + k + 1)),
                );
            }
        }
        let order = StepOrder {
            shards: &shards_of(0),
            lr,
            config: optim.config,
            farewell: false,
        };
        let (model, mine) = peer_step(
            model,
            optim,
            order,
            self.seat,
            &self.layout,
            &self.device,
            Some(self.timeout),
        );
        let theirs = self.collect_reports("a data-parallel step");
        let result = mine.and_then(|step| {
            theirs?;
            if step.slots.stop {
                self.settled = true;
            }
            Ok(ParallelStep {
                loss: step.slots.loss,
                grad_norm: step.grad_norm,
                stopped: step.slots.stop,
                peer_ms: step.slots.peer_ms,
                allreduce_ms: step.allreduce_ms,
            })
        });
        (model, result)
    }

    /// Give every worker a fresh replica (a rewind replaced the coordinator's state).
    pub fn reload(&mut self, model: &Llama<B>, optim: &AdamW<B::InnerBackend>) -> Result<()> {
        for w in &self.workers {
            let job = Job::Reload {
                model: Box::new(model.clone().fork(&w.device)),
                optim: Box::new(optim.replica(&w.device)),
            };
            w.jobs
                .send(job)
                .map_err(|_| anyhow!("a data-parallel peer is gone"))?;
        }
        self.collect_reports("reloading the data-parallel peers")
    }

    /// No farewell is owed when this group is dropped (every node reached the same end).
    pub fn settle(&mut self) {
        self.settled = true;
    }

    /// Peers over all nodes.
    pub fn total_peers(&self) -> usize {
        self.plan.total_peers()
    }

    /// One report from every worker, each within the timeout.
    fn collect_reports(&self, what: &str) -> Result<()> {
        self.collect_reports_within(what, self.timeout)
    }

    /// One report from every worker, each within `wait`.
    fn collect_reports_within(&self, what: &str, wait: Duration) -> Result<()> {
        for w in &self.workers {
            match w.reports.recv_timeout(wait) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => bail!("{what}: {e}"),
                Err(_) => bail!(
                    "{what}: a data-parallel peer did not answer within {} s (parallel.timeout_s)",
                    wait.as_secs()
                ),
            }
        }
        Ok(())
    }

    /// Tell the other nodes this one leaves (they stop instead of waiting for its gradients).
    fn farewell(&mut self) {
        let _ = self.empty_round(FAREWELL_WAIT);
    }

    /// Time one all-reduce of a step's buffer with every peer ready (zeros and the stop flag:
    /// nothing is updated), for `bench`: the pure cost of moving the gradients. The group
    /// stays usable for local peers; over several nodes it tells the others to stop.
    pub fn time_allreduce(&mut self) -> Result<Duration> {
        let start = std::time::Instant::now();
        self.empty_round(self.timeout)?;
        Ok(start.elapsed())
    }

    /// One all-reduce of zeros with the stop flag set, joined by every local worker.
    fn empty_round(&mut self, wait: Duration) -> Result<()> {
        for w in &self.workers {
            w.jobs
                .send(Job::Farewell)
                .map_err(|_| anyhow!("a data-parallel peer is gone"))?;
        }
        let mut empty = crate::train::optim::GradBuffer::<B::InnerBackend>::default();
        let flat = self
            .layout
            .pack(&mut empty, None, true, self.seat.index, 0.0, &self.device);
        let id = self.seat.id;
        reduce_within(wait, "an all-reduce", move || {
            reduce::mean_over_peers(id, flat).map(|_| ())
        })?;
        self.collect_reports_within("an all-reduce", wait)
    }
}

impl<B: AutodiffBackend> Drop for PeerGroup<B> {
    fn drop(&mut self) {
        if self.plan.nodes > 1 && !self.settled {
            self.farewell();
        }
        // Closing its job channel ends a worker, which leaves the collective and drops its
        // report channel: wait for that (bounded), so a next group can take the same ids.
        for w in self.workers.drain(..) {
            drop(w.jobs);
            while let Ok(_report) = w.reports.recv_timeout(FAREWELL_WAIT) {}
        }
        let id = self.seat.id;
        let _ = reduce_within(FAREWELL_WAIT, "leaving the collective", move || {
            finish_collective::<B::InnerBackend>(id).map_err(|e| anyhow!("{e:?}"))
        });
    }
}
