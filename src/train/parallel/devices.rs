//! Which device each local peer trains on: `parallel.devices`, or `--device` for all peers on
//! CPU (they share the one CPU device) and consecutive GPUs from `--device cuda:N` on.

use crate::config::ParallelConfig;
use crate::train::session::DeviceSpec;
use anyhow::{bail, Result};

/// The local peers' devices, the coordinator's first; all of one kind (one backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerDevices {
    /// This many peers, all on the CPU device.
    Cpu(usize),
    /// One CUDA ordinal per peer.
    Cuda(Vec<usize>),
}

/// Resolve the devices of `plan`'s local peers against `--device`.
pub fn peer_devices(plan: &ParallelConfig, base: DeviceSpec) -> Result<PeerDevices> {
    let peers = plan.peers.max(1);
    if plan.devices.is_empty() {
        return Ok(match base {
            DeviceSpec::Cpu => PeerDevices::Cpu(peers),
            DeviceSpec::Cuda(first) => PeerDevices::Cuda((first..first + peers).collect()),
        });
    }
    let specs = plan
        .devices
        .iter()
        .map(|d| DeviceSpec::parse(d))
        .collect::<Result<Vec<_>>>()?;
    let cuda: Vec<usize> = specs
        .iter()
        .filter_map(|s| match s {
            DeviceSpec::Cuda(i) => Some(*i),
            DeviceSpec::Cpu => None,
        })
        .collect();
    match (base, cuda.len()) {
        (DeviceSpec::Cpu, 0) => Ok(PeerDevices::Cpu(specs.len())),
        (DeviceSpec::Cuda(_), n) if n == specs.len() => {
            let mut seen = cuda.clone();
            seen.sort_unstable();
            seen.dedup();
            if seen.len() != cuda.len() {
                bail!("parallel.devices names a GPU twice ({}); give each peer its own", plan.devices.join(", "));
            }
            Ok(PeerDevices::Cuda(cuda))
        }
        _ => bail!(
            "parallel.devices ({}) must all be of the kind of --device {base}: one run trains on one backend",
            plan.devices.join(", ")
        ),
    }
}

/// The device line of `Started`, with the data-parallel layout when there is one.
pub fn device_label(device: String, plan: &ParallelConfig) -> String {
    match (plan.peers, plan.nodes) {
        (1, 1) => device,
        (p, 1) => format!("{device} x {p} peers"),
        (p, n) => format!("{device} x {p} peers x {n} nodes (node {})", plan.node_rank),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_device_flag() {
        let mut plan = ParallelConfig {
            peers: 3,
            ..ParallelConfig::default()
        };
        assert_eq!(
            peer_devices(&plan, DeviceSpec::Cpu).unwrap(),
            PeerDevices::Cpu(3)
        );
        assert_eq!(
            peer_devices(&plan, DeviceSpec::Cuda(2)).unwrap(),
            PeerDevices::Cuda(vec![2, 3, 4])
        );
        plan.devices = vec!["cuda:1".into(), "cuda:0".into(), "cuda:5".into()];
        assert_eq!(
            peer_devices(&plan, DeviceSpec::Cuda(0)).unwrap(),
            PeerDevices::Cuda(vec![1, 0, 5])
        );
        assert!(peer_devices(&plan, DeviceSpec::Cpu).is_err());
        plan.devices = vec!["cuda:1".into(), "cuda:1".into(), "cuda:5".into()];
        assert!(peer_devices(&plan, DeviceSpec::Cuda(0)).is_err());
    }
}
