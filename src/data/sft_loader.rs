//! Batches of instruction rows in a per-epoch shuffled order that is a pure function of
//! (seed, epoch), so the same `DataCursor` that pretraining saves resumes SFT exactly.

use super::loader::{DataCursor, DataOrder};
use super::sft::SftRow;
use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A batch of rows with its loss mask (`batch * seq`, 1.0 on response targets).
#[derive(Debug, Clone, PartialEq)]
pub struct MaskedBatch {
    pub tokens: Vec<u32>,
    pub mask: Vec<f32>,
    pub batch: usize,
    pub seq: usize,
}

/// Stack rows into one batch.
pub fn stack(rows: &[&SftRow], seq: usize) -> MaskedBatch {
    MaskedBatch {
        tokens: rows.iter().flat_map(|r| r.tokens.iter().copied()).collect(),
        mask: rows.iter().flat_map(|r| r.mask.iter().copied()).collect(),
        batch: rows.len(),
        seq,
    }
}

/// Yields shuffled batches of SFT rows; `offset` in the cursor is the position in the epoch's
/// permutation.
#[derive(Debug)]
pub struct SftLoader {
    rows: Vec<SftRow>,
    batch: usize,
    seq: usize,
    seed: u64,
    epoch: u64,
    offset: usize,
    order: Vec<usize>,
}

fn permutation(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    order.shuffle(&mut rng);
    order
}

impl SftLoader {
    /// A loader over `rows` (each `seq + 1` tokens); needs at least one full batch.
    pub fn new(rows: Vec<SftRow>, batch: usize, seq: usize, seed: u64) -> Result<Self> {
        if rows.len() < batch {
            bail!(
                "instruction data has {} training rows, fewer than train.batch_size = {batch}; add data or lower the batch size",
                rows.len()
            );
        }
        let order = permutation(rows.len(), seed, 0);
        Ok(Self {
            rows,
            batch,
            seq,
            seed,
            epoch: 0,
            offset: 0,
            order,
        })
    }

    /// The next batch; a partial batch at the end of an epoch is dropped.
    pub fn next_batch(&mut self) -> MaskedBatch {
        if self.offset + self.batch > self.rows.len() {
            self.epoch += 1;
            self.offset = 0;
            self.order = permutation(self.rows.len(), self.seed, self.epoch);
        }
        let picked: Vec<&SftRow> = self.order[self.offset..self.offset + self.batch]
            .iter()
            .map(|&i| &self.rows[i])
            .collect();
        self.offset += self.batch;
        stack(&picked, self.seq)
    }

    /// Position of the next batch.
    pub fn cursor(&self) -> DataCursor {
        DataCursor {
            epoch: self.epoch,
            shard: 0,
            offset: self.offset,
            order: DataOrder::Rows,
        }
    }

    /// Continue from a saved cursor (one of an older build, without `order`, means the same).
    pub fn seek(&mut self, c: DataCursor) -> Result<()> {
        if c.order == DataOrder::Windows {
            bail!("data cursor {c} is a pretraining position, not an instruction-tuning (SFT) one: resume it with its token shards");
        }
        if c.shard != 0 || c.offset > self.rows.len() {
            bail!("data cursor {c} does not fit this instruction data ({} rows); was the data file changed?", self.rows.len());
        }
        self.epoch = c.epoch;
        self.offset = c.offset;
        self.order = permutation(self.rows.len(), self.seed, self.epoch);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<SftRow> {
        (0..n)
            .map(|i| SftRow {
                tokens: vec![i as u32; 5],
                mask: vec![1.0; 4],
            })
            .collect()
    }

    #[test]
    fn seek_resumes_identically_across_epochs() {
        let mut a = SftLoader::new(rows(10), 3, 4, 9).unwrap();
        for _ in 0..4 {
            a.next_batch();
        }
        let cursor = a.cursor();
        let expected: Vec<_> = (0..7).map(|_| a.next_batch()).collect();
        let mut b = SftLoader::new(rows(10), 3, 4, 9).unwrap();
        b.seek(cursor).unwrap();
        let got: Vec<_> = (0..7).map(|_| b.next_batch()).collect();
        assert_eq!(expected, got);
        assert!(SftLoader::new(rows(2), 3, 4, 9).is_err());
    }
}
