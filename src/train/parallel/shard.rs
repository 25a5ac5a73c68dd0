//! A peer's slice of a global micro-batch. Every node reads the same global batch (the data
//! order never depends on the peer count) and peer `g` of `n` trains on rows
//! `g * b / n .. (g + 1) * b / n`. The slice's loss is scaled so that the mean over peers of
//! the slice losses is exactly the global batch's loss, also for SFT batches, whose loss is
//! normalised by the count of response tokens of the whole batch.

use crate::model::Llama;
use crate::train::trainer::TrainBatch;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// One peer's rows of one micro-batch and the factor its mean loss is scaled by.
pub(crate) struct Shard {
    pub(super) batch: TrainBatch,
    /// 1 for token batches (every row has the same number of targets); for masked batches
    /// `n * max(local targets, 1) / max(global targets, 1)`.
    pub(super) scale: f32,
}

impl Shard {
    /// Rows of `global` for peer `index` of `peers` (`peers` divides the batch; validated).
    pub(crate) fn of(global: &TrainBatch, index: usize, peers: usize) -> Self {
        let rows = global.batch / peers;
        let (r0, r1) = (index * rows, (index + 1) * rows);
        let width = global.seq + 1;
        let tokens = global.tokens[r0 * width..r1 * width].to_vec();
        let (mask, scale) = match &global.mask {
            None => (None, 1.0),
            Some(m) => {
                let local = m[r0 * global.seq..r1 * global.seq].to_vec();
                let count = |v: &[f32]| v.iter().sum::<f32>().max(1.0);
                let scale = peers as f32 * count(&local) / count(m);
                (Some(local), scale)
            }
        };
        Self {
            batch: TrainBatch {
                tokens,
                mask,
                batch: rows,
                seq: global.seq,
            },
            scale,
        }
    }

    /// This slice's share of the global loss (see the module doc).
    pub(super) fn loss<B: Backend>(&self, model: &Llama<B>, device: &B::Device) -> Tensor<B, 1> {
        let loss = self.batch.loss(model, device);
        if self.scale == 1.0 {
            loss
        } else {
            loss.mul_scalar(self.scale)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(mask: Option<Vec<f32>>) -> TrainBatch {
        TrainBatch {
            tokens: (0..12).collect(),
            mask,
            batch: 4,
            seq: 2,
        }
    }

    #[test]
    fn rows_are_cut_in_order() {
        let b = batch(None);
        let s = Shard::of(&b, 1, 2);
        assert_eq!(s.batch.tokens, vec![6, 7, 8, 9, 10, 11]);
        assert_eq!((s.batch.batch, s.scale), (2, 1.0));
    }

    #[test]
    fn masked_slices_weigh_by_their_share_of_targets() {
        // 3 targets in the first two rows, 1 in the last two: 4 in all.
        let b = batch(Some(vec![1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]));
        let (a, c) = (Shard::of(&b, 0, 2), Shard::of(&b, 1, 2));
        // mean over peers of scale_i * (sum_i / count_i) = sum / count.
        assert_eq!(a.scale, 2.0 * 3.0 / 4.0);
        assert_eq!(c.scale, 2.0 * 1.0 / 4.0);
    }
}
