//! `[parallel]`: data-parallel peers on this machine and, for several machines, the node's
//! place in Burn's global collective. Parsed and validated here; the engine's peer plumbing
//! (`train/parallel/`) only reads the resolved values.

use super::RunConfig;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Most local peers one process drives (threads, one model replica each).
pub const MAX_PEERS: usize = 64;
/// Most nodes (processes) one global collective joins.
pub const MAX_NODES: usize = 1024;

/// Data-parallel layout of a run. The global batch (`train.batch_size` rows per micro-batch)
/// is read identically by every node and split into equal row slices, one per peer, so the
/// data order and the checkpoint do not depend on the peer count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParallelConfig {
    /// Peers (model replicas, one thread each) in this process; 1 = single-device training.
    pub peers: usize,
    /// One device per peer (`cpu`, `cuda:N`); empty = every peer on `--device` (on CPU all
    /// peers share the one CPU device; with `--device cuda` peer i gets `cuda:i`).
    pub devices: Vec<String>,
    /// Processes (machines) in the collective; 1 = this process alone.
    pub nodes: usize,
    /// This process's index among the nodes; node 0 evaluates, checkpoints and emits the run's
    /// events, the others only train.
    pub node_rank: usize,
    /// The global orchestrator (`llite-tui orchestrator`) every node joins, `ws://HOST:PORT`;
    /// needed when `nodes` > 1.
    pub orchestrator: String,
    /// Where the other nodes reach this one for tensor transfers, `ws://HOST:PORT`; empty =
    /// `ws://127.0.0.1:<orchestrator port + 1 + node_rank>` (all nodes on one machine).
    pub node_address: String,
    /// Seconds to wait for the other peers to join or to answer one all-reduce before the run
    /// fails (a dead or paused peer must not hang the others forever).
    pub timeout_s: u64,
}

impl Default for ParallelConfig {
    fn default() -> Self {
        Self {
            peers: 1,
            devices: Vec::new(),
            nodes: 1,
            node_rank: 0,
            orchestrator: String::new(),
            node_address: String::new(),
            timeout_s: 600,
        }
    }
}

impl ParallelConfig {
    /// Peers over all nodes: the number of row slices each global micro-batch is cut into.
    pub fn total_peers(&self) -> usize {
        self.peers * self.nodes
    }

    /// Whether this run trains with more than one replica (else today's single-device path).
    pub fn is_parallel(&self) -> bool {
        self.total_peers() > 1
    }

    /// Whether this process writes checkpoints, evaluates and owns the run's history.
    pub fn is_coordinator(&self) -> bool {
        self.node_rank == 0
    }

    /// The address other nodes use to reach this one (see `node_address`).
    pub fn resolved_node_address(&self) -> Result<String> {
        if !self.node_address.is_empty() {
            return Ok(self.node_address.clone());
        }
        let port = ws_port(&self.orchestrator, "parallel.orchestrator")?;
        let own = u32::from(port) + 1 + self.node_rank as u32;
        if own > u32::from(u16::MAX) {
            bail!(
                "config: parallel.node_address is empty and orchestrator port {port} + 1 + node_rank {} is past 65535; set parallel.node_address",
                self.node_rank
            );
        }
        Ok(format!("ws://127.0.0.1:{own}"))
    }
}

/// The port of a `ws://HOST:PORT` address.
pub fn ws_port(address: &str, key: &str) -> Result<u16> {
    let Some(rest) = address.strip_prefix("ws://") else {
        bail!("config: {key} = {address:?} must look like ws://HOST:PORT");
    };
    let hostport = rest.trim_end_matches('/');
    match hostport
        .rsplit_once(':')
        .map(|(h, p)| (h, p.parse::<u16>()))
    {
        Some((host, Ok(port))) if !host.is_empty() && port > 0 && !hostport.contains('/') => {
            Ok(port)
        }
        _ => bail!("config: {key} = {address:?} must look like ws://HOST:PORT"),
    }
}

impl RunConfig {
    /// `[parallel]` on its own and against the batch: every peer gets the same whole number of
    /// rows of each micro-batch.
    pub(super) fn validate_parallel(&self) -> Result<()> {
        let p = &self.parallel;
        if p.peers == 0 || p.peers > MAX_PEERS {
            bail!(
                "config: parallel.peers must be in 1..={MAX_PEERS}, got {}",
                p.peers
            );
        }
        if p.nodes == 0 || p.nodes > MAX_NODES {
            bail!(
                "config: parallel.nodes must be in 1..={MAX_NODES}, got {}",
                p.nodes
            );
        }
        if p.peers * p.nodes > 1
            && (self.train.activation_checkpointing
                || self.train.precision != super::Precision::F32)
        {
            // The peers' backward (train/parallel/) is the plain f32 one; refusing beats
            // silently training differently from what the config says.
            bail!(
                "config: [parallel] with {} peers x {} nodes cannot yet be combined with train.activation_checkpointing or train.precision other than \"f32\" (each peer runs the plain f32 backward)",
                p.peers,
                p.nodes
            );
        }
        if p.node_rank >= p.nodes {
            bail!(
                "config: parallel.node_rank ({}) must be below parallel.nodes ({})",
                p.node_rank,
                p.nodes
            );
        }
        if !p.devices.is_empty() && p.devices.len() != p.peers {
            bail!(
                "config: parallel.devices names {} devices for {} peers; give one per peer or none",
                p.devices.len(),
                p.peers
            );
        }
        for d in &p.devices {
            let known = d == "cpu"
                || d == "cuda"
                || d.strip_prefix("cuda:")
                    .is_some_and(|i| i.parse::<usize>().is_ok());
            if !known {
                bail!("config: parallel.devices entry {d:?}: expected cpu, cuda or cuda:N");
            }
        }
        if p.nodes > 1 {
            ws_port(&p.orchestrator, "parallel.orchestrator")?;
            if !p.node_address.is_empty() {
                ws_port(&p.node_address, "parallel.node_address")?;
            }
            p.resolved_node_address()?;
        }
        if p.timeout_s == 0 {
            bail!("config: parallel.timeout_s must be positive, got 0");
        }
        let total = p.total_peers();
        if !self.train.batch_size.is_multiple_of(total) {
            bail!(
                "config: train.batch_size ({}) must be divisible by the {total} data-parallel peers (parallel.peers {} x parallel.nodes {}): each peer trains on batch_size / peers rows of every micro-batch",
                self.train.batch_size,
                p.peers,
                p.nodes
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_must_split_evenly_over_all_peers() {
        let mut cfg = RunConfig::default();
        cfg.train.batch_size = 6;
        cfg.parallel.peers = 4;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("train.batch_size (6)"), "{err}");
        assert!(err.contains("divisible by the 4"), "{err}");
        cfg.parallel.peers = 3;
        cfg.validate().unwrap();
        cfg.parallel.peers = 1;
        cfg.parallel.nodes = 4;
        cfg.parallel.orchestrator = "ws://127.0.0.1:4000".into();
        assert!(cfg.validate().is_err());
    }

    #[test]
    fn nodes_need_an_orchestrator_and_a_rank_below_them() {
        let mut cfg = RunConfig::default();
        cfg.parallel.nodes = 2;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("parallel.orchestrator"), "{err}");
        cfg.parallel.orchestrator = "ws://127.0.0.1:4000".into();
        cfg.validate().unwrap();
        assert_eq!(
            cfg.parallel.resolved_node_address().unwrap(),
            "ws://127.0.0.1:4001"
        );
        cfg.parallel.node_rank = 2;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("node_rank (2)"), "{err}");
        cfg.parallel.node_rank = 1;
        cfg.parallel.orchestrator = "127.0.0.1:4000".into();
        assert!(cfg.validate().is_err());
    }

    #[test]
    fn devices_are_one_per_peer() {
        let mut cfg = RunConfig::default();
        cfg.parallel.peers = 2;
        cfg.parallel.devices = vec!["cuda:0".into()];
        assert!(cfg.validate().is_err());
        cfg.parallel.devices = vec!["cuda:0".into(), "gpu1".into()];
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("\"gpu1\""), "{err}");
        cfg.parallel.devices = vec!["cuda:0".into(), "cuda:1".into()];
        cfg.validate().unwrap();
    }
}
