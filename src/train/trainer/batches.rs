//! Training batches as the step uploads them: token rows from either data source (pretraining
//! shards or SFT examples with their loss mask), and the `Source` that yields them.

use crate::data::loader::{Batch, DataCursor, TokenLoader};
use crate::data::sft_loader::{MaskedBatch, SftLoader};
use crate::model::Llama;
use crate::train::backward::MicroBatch;
use anyhow::Result;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

/// Upload a batch of token rows.
pub fn batch_tensor<B: Backend>(batch: &Batch, device: &B::Device) -> Tensor<B, 2, Int> {
    rows_tensor(&batch.tokens, batch.batch, batch.seq, device)
}

fn rows_tensor<B: Backend>(
    tokens: &[u32],
    batch: usize,
    seq: usize,
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    let data: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
    Tensor::from_data(TensorData::new(data, [batch, seq + 1]), device)
}

/// A batch from either data source; SFT batches carry a loss mask.
pub(crate) struct TrainBatch {
    pub(crate) tokens: Vec<u32>,
    pub(crate) mask: Option<Vec<f32>>,
    pub(crate) batch: usize,
    pub(crate) seq: usize,
}

impl TrainBatch {
    /// Upload the batch: inputs, targets and mask.
    pub(crate) fn upload<B: Backend>(&self, device: &B::Device) -> MicroBatch<B> {
        let rows = rows_tensor::<B>(&self.tokens, self.batch, self.seq, device);
        let mask = self
            .mask
            .as_ref()
            .map(|m| Tensor::from_data(TensorData::new(m.clone(), [m.len()]), device));
        MicroBatch::from_rows(rows, mask)
    }

    pub(crate) fn loss<B: Backend>(&self, model: &Llama<B>, device: &B::Device) -> Tensor<B, 1> {
        self.upload(device).loss(model)
    }
}

impl From<Batch> for TrainBatch {
    fn from(b: Batch) -> Self {
        Self {
            tokens: b.tokens,
            mask: None,
            batch: b.batch,
            seq: b.seq,
        }
    }
}

impl From<MaskedBatch> for TrainBatch {
    fn from(b: MaskedBatch) -> Self {
        Self {
            tokens: b.tokens,
            mask: Some(b.mask),
            batch: b.batch,
            seq: b.seq,
        }
    }
}

/// Where training batches come from.
pub(in crate::train) enum Source {
    Tokens(TokenLoader),
    Sft(SftLoader),
}

impl Source {
    pub(in crate::train) fn next_batch(&mut self) -> Result<TrainBatch> {
        Ok(match self {
            Source::Tokens(l) => l.next_batch()?.into(),
            Source::Sft(l) => l.next_batch().into(),
        })
    }
    pub(super) fn cursor(&self) -> DataCursor {
        match self {
            Source::Tokens(l) => l.cursor(),
            Source::Sft(l) => l.cursor(),
        }
    }
    pub(super) fn seek(&mut self, c: DataCursor) -> Result<()> {
        match self {
            Source::Tokens(l) => l.seek(c),
            Source::Sft(l) => l.seek(c),
        }
    }
}
