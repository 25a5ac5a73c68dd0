//! One batch of token windows, and the fixed validation batches every evaluation scores.

use super::loader::window;
use super::shards::{check_dtype, check_token_ids, read_npy_tokens};
use anyhow::{bail, Result};
use std::path::PathBuf;

/// One training batch: `batch` rows of `seq + 1` tokens, row-major; inputs are `row[..seq]`
/// and targets `row[1..]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// `batch * (seq + 1)` token ids, row-major.
    pub tokens: Vec<u32>,
    /// Number of rows.
    pub batch: usize,
    /// Sequence length (each row holds `seq + 1` tokens).
    pub seq: usize,
}

impl Batch {
    /// Row `i` (`seq + 1` tokens), for building input/target tensors.
    pub fn row(&self, i: usize) -> &[u32] {
        let w = self.seq + 1;
        &self.tokens[i * w..(i + 1) * w]
    }

    /// Inputs of all rows flattened (`batch * seq`), the model's input tensor data.
    pub fn inputs(&self) -> Vec<u32> {
        (0..self.batch)
            .flat_map(|i| self.row(i)[..self.seq].iter().copied())
            .collect()
    }

    /// Targets of all rows flattened (`batch * seq`), the inputs shifted by one.
    pub fn targets(&self) -> Vec<u32> {
        (0..self.batch)
            .flat_map(|i| self.row(i)[1..].iter().copied())
            .collect()
    }
}

/// The first `n` batches of the validation shard(s), identical on every call, so evaluations
/// are comparable across steps and runs. Token ids are checked against `vocab_size`.
pub fn eval_batches(
    shards: &[PathBuf],
    batch: usize,
    seq: usize,
    n: usize,
    vocab_size: usize,
) -> Result<Vec<Batch>> {
    if batch == 0 || seq == 0 || n == 0 {
        bail!("eval batch {batch}, seq {seq} and batch count {n} must all be > 0: fix the eval config");
    }
    let need = window(batch, seq)?;
    let mut out = Vec::new();
    let mut largest = 0;
    let mut dtype = None;
    for path in shards {
        if out.len() >= n {
            break;
        }
        let toks = read_npy_tokens(path)?;
        let want = *dtype.get_or_insert(toks.dtype());
        check_dtype(path, toks.dtype(), &shards[0], want)?;
        check_token_ids(path, &toks, vocab_size)?;
        largest = largest.max(toks.len());
        let mut off = 0;
        while out.len() < n && off + need <= toks.len() {
            let mut v = Vec::with_capacity(batch * (seq + 1));
            for i in 0..batch {
                toks.extend_window(off + i * seq, seq + 1, &mut v);
            }
            out.push(Batch {
                tokens: v,
                batch,
                seq,
            });
            off += batch * seq;
        }
    }
    if out.is_empty() {
        let shown = shards
            .first()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(none given)".into());
        bail!(
            "validation shards ({shown}, {} files) cannot supply one eval batch: need batch*seq+1 = {need} tokens, largest has {largest}; lower eval batch/seq or raise val_fraction",
            shards.len()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::loader::tests::make_shards;
    use super::*;

    #[test]
    fn eval_batches_are_the_first_windows() {
        let dir = tempfile::tempdir().unwrap();
        let shards = make_shards(dir.path(), &[40, 30]);
        let a = eval_batches(&shards, 2, 8, 10, 65536).unwrap();
        // Shard 0: windows at 0, 16 (16+17=33<=40); shard 1: window at 0.
        assert_eq!(a.len(), 3);
        assert_eq!(a[1].row(0)[0], 16);
        assert_eq!(a[2].row(0)[0], 1000);
        assert_eq!(a, eval_batches(&shards, 2, 8, 10, 65536).unwrap());
        assert_eq!(eval_batches(&shards, 2, 8, 1, 65536).unwrap().len(), 1);
        assert!(eval_batches(&shards, 4, 16, 1, 65536).is_err());
    }
}
