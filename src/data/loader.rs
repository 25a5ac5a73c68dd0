//! Training batch loader over token shards: every epoch draws every window of every shard
//! (`windows`) exactly once, in a seeded random order that is a pure function of (seed,
//! epoch, position) (`permute`), so the saved cursor is two numbers and needs no RNG state.
//!
//! Why a permutation and not nanoGPT-style random offsets: random offsets sample with
//! replacement, so an epoch sees about 63% of the windows and repeats others, and "epoch" stops
//! meaning anything; a permutation keeps the i.i.d.-looking batches (what makes the loss curve
//! honest: the old order read one shard front to back, so on the bundled corpus each stretch of
//! training saw one play) and still covers the corpus once per epoch. Why a Feistel bijection
//! and not a shuffled index vector: memory stays O(number of shards) for any corpus size, and a
//! seek is O(1). A batch's rows are consecutive positions of the order; a batch that runs past
//! the end of an epoch continues with the next epoch's order (so no window is dropped and
//! every epoch is complete). The fixed validation batches are in `batch`.

pub use super::batch::{eval_batches, Batch};
use super::permute::Permutation;
use super::windows::ShardWindows;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Which order a saved cursor counts in, so a checkpoint written by another loader is never
/// continued at a wrong position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataOrder {
    /// Written by builds before the shuffled loader (trainer.json without `order`): `shard`
    /// and `offset` were a token position in a sequential read of shuffled shards. SFT
    /// cursors of those builds mean the same as [`DataOrder::Rows`].
    #[default]
    Sequential,
    /// Pretraining: `offset` counts the windows of the epoch's shuffled order already drawn.
    Windows,
    /// Instruction tuning: `offset` counts the rows of the epoch's shuffled order drawn.
    Rows,
}

/// Position of the next batch in the data, saved in checkpoints so a resumed run sees exactly
/// the batches an uninterrupted run would have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataCursor {
    /// Completed passes over all training data.
    pub epoch: u64,
    /// Index of a shard in the loader's list (only in [`DataOrder::Sequential`] cursors; 0 else).
    pub shard: usize,
    /// Position within the epoch; its unit depends on `order`.
    pub offset: usize,
    /// The order `offset` counts in (absent in checkpoints of older builds).
    #[serde(default)]
    pub order: DataOrder,
}

impl DataCursor {
    /// The start of the data (nothing consumed yet), in `order`.
    pub fn start(order: DataOrder) -> Self {
        Self {
            epoch: 0,
            shard: 0,
            offset: 0,
            order,
        }
    }
}

impl std::fmt::Display for DataCursor {
    /// The form error messages show: "(epoch 0, window 4096)" or, for an old cursor,
    /// "(epoch 0, shard 99, offset 4096)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.order {
            DataOrder::Sequential => write!(
                f,
                "(epoch {}, shard {}, offset {})",
                self.epoch, self.shard, self.offset
            ),
            DataOrder::Windows => write!(f, "(epoch {}, window {})", self.epoch, self.offset),
            DataOrder::Rows => write!(f, "(epoch {}, row {})", self.epoch, self.offset),
        }
    }
}

/// Streams `batch x (seq+1)` windows drawn from all training shards in a per-epoch seeded
/// random order (see the module doc), holding no shard in memory.
#[derive(Debug)]
pub struct TokenLoader {
    windows: ShardWindows,
    batch: usize,
    seq: usize,
    seed: u64,
    /// The order of `cursor.epoch`.
    order: Permutation,
    cursor: DataCursor,
}

impl TokenLoader {
    /// Opens training shards (reading headers only) for `batch x seq` batches; `seed` fixes
    /// every epoch's order. Token ids are checked against `vocab_size` as windows are read.
    pub fn new(
        shards: Vec<PathBuf>,
        batch: usize,
        seq: usize,
        seed: u64,
        vocab_size: usize,
    ) -> Result<Self> {
        if batch == 0 || seq == 0 {
            bail!("batch size {batch} and sequence length {seq} must both be > 0: fix the training config");
        }
        window(batch, seq)?;
        let windows = ShardWindows::open(shards, seq, vocab_size)?;
        let n = windows.count();
        if n < batch as u64 {
            let first = &windows.shards()[0];
            let dir = first.parent().unwrap_or(Path::new("."));
            bail!(
                "the training shards in {} hold {n} windows of seq+1 = {} tokens ({} tokens in {} shards), fewer than one batch of {batch}: lower batch/seq or add data",
                dir.display(),
                seq + 1,
                windows.total_tokens(),
                windows.shards().len(),
            );
        }
        Ok(Self {
            order: Permutation::new(n, seed, 0),
            windows,
            batch,
            seq,
            seed,
            cursor: DataCursor::start(DataOrder::Windows),
        })
    }

    /// The next `batch x (seq+1)` batch (the whole global batch); advances the cursor only
    /// when every row was read.
    pub fn next_batch(&mut self) -> Result<Batch> {
        let (b, t) = (self.batch, self.seq);
        let mut cursor = self.cursor;
        let mut order = None;
        let mut ids = Vec::with_capacity(b);
        for _ in 0..b {
            let perm = order.as_ref().unwrap_or(&self.order);
            ids.push(perm.at(cursor.offset as u64));
            cursor.offset += 1;
            if cursor.offset as u64 == perm.len() {
                cursor.epoch += 1;
                cursor.offset = 0;
                order = Some(Permutation::new(perm.len(), self.seed, cursor.epoch));
            }
        }
        let mut tokens = Vec::with_capacity(b * (t + 1));
        self.windows.read(&ids, &mut tokens)?;
        self.cursor = cursor;
        if let Some(o) = order {
            self.order = o;
        }
        Ok(Batch {
            tokens,
            batch: b,
            seq: t,
        })
    }

    /// Position of the next batch, to store in a checkpoint.
    pub fn cursor(&self) -> DataCursor {
        self.cursor
    }

    /// Jumps to a saved cursor (e.g. on resume); refuses one of another order or one that
    /// does not fit these shards and this `seq`.
    pub fn seek(&mut self, c: DataCursor) -> Result<()> {
        let n = self.windows.count();
        match c.order {
            DataOrder::Windows => {}
            DataOrder::Sequential => bail!(
                "data cursor {c} was saved by an older build that read each shard front to back; this build draws every epoch's windows in a seeded random order and cannot continue that stream exactly: start a new run from these weights with --finetune, or resume with the older build"
            ),
            DataOrder::Rows => bail!(
                "data cursor {c} is an instruction-tuning (SFT) position, not a pretraining one: resume it with its SFT data"
            ),
        }
        if c.shard != 0 || c.offset as u64 >= n {
            bail!(
                "data cursor {c} is out of range: these training shards hold {n} windows of seq+1 = {} tokens (resume with the same shard directory and seq_len, or start fresh)",
                self.seq + 1
            );
        }
        self.order = Permutation::new(n, self.seed, c.epoch);
        self.cursor = c;
        Ok(())
    }

    /// Tokens of one batch (`batch * seq`), for throughput accounting.
    pub fn tokens_per_batch(&self) -> usize {
        self.batch * self.seq
    }

    /// Windows in one epoch (every window of every shard).
    pub fn windows_per_epoch(&self) -> u64 {
        self.windows.count()
    }

    /// The training shard paths, in list order.
    pub fn shards(&self) -> &[PathBuf] {
        self.windows.shards()
    }
}

/// Tokens one `batch x seq` window reads (`batch * seq + 1`), refusing an overflow by name.
pub(super) fn window(batch: usize, seq: usize) -> Result<usize> {
    batch
        .checked_mul(seq)
        .and_then(|n| n.checked_add(1))
        .ok_or_else(|| anyhow::anyhow!("batch {batch} x seq {seq} overflows: use smaller values"))
}

#[cfg(test)]
#[path = "loader_tests.rs"]
pub(crate) mod tests;
