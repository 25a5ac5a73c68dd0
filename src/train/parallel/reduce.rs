//! The one all-reduce of a step, over Burn's collective (`burn::collective::all_reduce`, mean).
//! Every gradient and a few scalars travel in one flat buffer (what DDP calls a bucket): one
//! collective operation per step instead of one per parameter, and the scalars ride along
//! for free: the step's loss, a stop flag (a node leaving the run) and each peer's compute time.

use super::super::optim::GradBuffer;
use crate::model::params::tensor_to_vec;
use anyhow::{anyhow, bail, Result};
use burn::collective::{all_reduce, PeerId, ReduceOperation};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use std::time::Duration;

/// How the flat buffer is laid out: every parameter's gradient in traversal order, then the
/// loss, the stop flag and one compute-time slot per peer (over all nodes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Elements of each parameter, in the model's traversal order.
    pub(super) sizes: Vec<usize>,
    /// Peers over all nodes.
    pub(super) total_peers: usize,
}

/// The scalars every peer gets back from the all-reduce.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Slots {
    /// Mean over peers of their slice losses: the global batch's loss.
    pub(super) loss: f64,
    /// Some peer is leaving the run instead of stepping.
    pub(super) stop: bool,
    /// Each peer's forward + backward milliseconds, by peer index.
    pub(super) peer_ms: Vec<f64>,
}

impl Layout {
    fn grad_len(&self) -> usize {
        self.sizes.iter().sum()
    }

    /// Elements in the buffer: what one peer sends (and receives) per step.
    pub(crate) fn len(&self) -> usize {
        self.grad_len() + 2 + self.total_peers
    }

    /// Bytes of one peer's buffer (f32).
    pub(crate) fn bytes(&self) -> u64 {
        self.len() as u64 * 4
    }

    /// One buffer from a peer's summed gradients (a missing one counts as zeros, so every
    /// peer's buffer has the same shape) and its scalars.
    pub(super) fn pack<B: Backend>(
        &self,
        grads: &mut GradBuffer<B>,
        loss: Option<Tensor<B, 1>>,
        stop: bool,
        peer: usize,
        compute_ms: f64,
        device: &B::Device,
    ) -> Tensor<B, 1> {
        let mut parts: Vec<Tensor<B, 1>> = Vec::with_capacity(self.sizes.len() + 2);
        let grads = grads.grads_mut();
        for (i, &n) in self.sizes.iter().enumerate() {
            match grads.get_mut(i).and_then(Option::take) {
                Some(g) => parts.push(g),
                None => parts.push(Tensor::zeros([n], device)),
            }
        }
        parts.push(loss.unwrap_or_else(|| Tensor::zeros([1], device)));
        let mut scalars = vec![0.0f32; 1 + self.total_peers];
        scalars[0] = if stop { 1.0 } else { 0.0 };
        scalars[1 + peer] = compute_ms as f32;
        parts.push(Tensor::from_data(
            TensorData::new(scalars, [1 + self.total_peers]),
            device,
        ));
        Tensor::cat(parts, 0)
    }

    /// Put the reduced gradients back into `grads` and read the scalars.
    pub(super) fn unpack<B: Backend>(
        &self,
        flat: Tensor<B, 1>,
        grads: &mut GradBuffer<B>,
    ) -> Slots {
        let g = self.grad_len();
        let scalars = tensor_to_vec(flat.clone().narrow(0, g, 2 + self.total_peers));
        let out = grads.grads_mut();
        out.clear();
        let mut at = 0;
        for &n in &self.sizes {
            out.push(Some(flat.clone().narrow(0, at, n)));
            at += n;
        }
        let peers = self.total_peers as f64;
        Slots {
            loss: scalars[0] as f64,
            stop: scalars[1] > 0.0,
            // The mean divided each slot (one non-zero entry) by the peer count.
            peer_ms: scalars[2..].iter().map(|&v| v as f64 * peers).collect(),
        }
    }
}

/// Mean of `tensor` over every peer of the collective, through Burn's collective.
pub(super) fn mean_over_peers<B: Backend>(
    id: PeerId,
    tensor: Tensor<B, 1>,
) -> Result<Tensor<B, 1>> {
    let reduced = all_reduce::<B>(id, tensor.into_primitive().tensor(), ReduceOperation::Mean)
        .map_err(|e| anyhow!("all-reduce of peer {}: {e:?}", id.0))?;
    Ok(Tensor::from_primitive(TensorPrimitive::Float(reduced)))
}

/// Run a blocking collective call on a helper thread and give up after `timeout`: a peer that
/// died or never came must fail the run, not hang it. The helper is left behind on a timeout
/// (the collective call cannot be cancelled); the run then ends with the error.
pub(super) fn within<T: Send + 'static>(
    timeout: Duration,
    what: &str,
    call: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("llite-collective".into())
        .spawn(move || {
            let _ = tx.send(call());
        })
        .map_err(|e| anyhow!("cannot start a collective call: {e}"))?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => bail!(
            "{what}: no answer from the other data-parallel peers within {} s (parallel.timeout_s); a peer died, is paused or never started",
            timeout.as_secs()
        ),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            bail!("{what}: the collective call ended without an answer (it panicked)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type B = burn::backend::Flex;

    #[test]
    fn a_buffer_round_trips_and_missing_gradients_travel_as_zeros() {
        let layout = Layout {
            sizes: vec![2, 3],
            total_peers: 2,
        };
        let dev = Default::default();
        let mut grads = GradBuffer::<B>::default();
        grads
            .grads_mut()
            .push(Some(Tensor::from_floats([1.0, 2.0], &dev)));
        let loss = Tensor::from_floats([0.5], &dev);
        let flat = layout.pack(&mut grads, Some(loss), false, 1, 8.0, &dev);
        assert_eq!(flat.dims(), [layout.len()]);
        assert_eq!(layout.bytes(), 4 * (2 + 3 + 2 + 2));
        // Unpacked as it would be after a mean over 2 peers that all sent this buffer.
        let slots = layout.unpack(flat, &mut grads);
        assert_eq!(slots.loss, 0.5);
        assert!(!slots.stop);
        assert_eq!(slots.peer_ms, vec![0.0, 16.0]);
        let back: Vec<Vec<f32>> = grads
            .grads_mut()
            .iter()
            .map(|g| tensor_to_vec(g.clone().unwrap()))
            .collect();
        assert_eq!(back, vec![vec![1.0, 2.0], vec![0.0, 0.0, 0.0]]);
        let stop = layout.pack(&mut GradBuffer::<B>::default(), None, true, 0, 0.0, &dev);
        assert!(layout.unpack(stop, &mut grads).stop);
    }
}
