//! Batch loader over token shards (build-nanogpt's DataLoaderLite semantics) with a small,
//! serialisable cursor for exact resume. The fixed validation batches are in `batch`.

pub use super::batch::{eval_batches, Batch};
use super::shards::{
    check_dtype, check_token_ids, npy_info, read_npy_tokens, ShardTokens, TokenDtype,
};
use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Position of the next batch in the data, saved in checkpoints so a resumed run sees exactly
/// the batches an uninterrupted run would have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataCursor {
    /// Completed passes over all training shards.
    pub epoch: u64,
    /// Index of the current shard in the loader's shard list (not in the shuffled order).
    pub shard: usize,
    /// Token offset of the next window within that shard.
    pub offset: usize,
}

impl std::fmt::Display for DataCursor {
    /// The form error messages show: "(epoch 0, shard 99, offset 4096)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "(epoch {}, shard {}, offset {})",
            self.epoch, self.shard, self.offset
        )
    }
}

/// Streams contiguous `batch x (seq+1)` windows from training shards in a per-epoch shuffled
/// shard order, holding only the current shard in memory.
#[derive(Debug)]
pub struct TokenLoader {
    shards: Vec<PathBuf>,
    /// Token count of each shard (from its header).
    lens: Vec<usize>,
    /// Indices of shards long enough for one batch window.
    usable: Vec<usize>,
    batch: usize,
    seq: usize,
    seed: u64,
    /// The model's vocabulary size: every token id read must be below it.
    vocab_size: usize,
    /// Shard order of `cursor.epoch` (a permutation of `usable`).
    order: Vec<usize>,
    /// Position of `cursor.shard` in `order`.
    pos: usize,
    cursor: DataCursor,
    /// The set's one dtype (a shard of another dtype is refused).
    dtype: TokenDtype,
    /// The currently loaded shard (index, tokens).
    loaded: Option<(usize, ShardTokens)>,
}

impl TokenLoader {
    /// Opens training shards (reading headers only) for `batch x seq` batches; `seed` fixes
    /// the per-epoch shard order. Each shard's token ids are checked against `vocab_size`
    /// when it is read.
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
        let Some(first) = shards.first() else {
            bail!("no training shards given to the loader: prepare data first or point it at a shard directory");
        };
        let need = window(batch, seq)?;
        let infos = shards
            .iter()
            .map(|p| npy_info(p))
            .collect::<Result<Vec<_>>>()?;
        let dtype = infos[0].dtype;
        for (p, info) in shards.iter().zip(&infos) {
            check_dtype(p, info.dtype, first, dtype)?;
        }
        let lens: Vec<usize> = infos.iter().map(|i| i.len).collect();
        let usable: Vec<usize> = (0..shards.len()).filter(|&i| lens[i] >= need).collect();
        if usable.is_empty() {
            let dir = first.parent().unwrap_or(Path::new("."));
            bail!(
                "no shard in {} can supply one batch: need batch*seq+1 = {need} tokens but the largest of {} shards has {}; lower batch/seq or add data",
                dir.display(),
                shards.len(),
                lens.iter().max().copied().unwrap_or(0)
            );
        }
        let order = epoch_order(&usable, seed, 0);
        let cursor = DataCursor {
            epoch: 0,
            shard: order[0],
            offset: 0,
        };
        Ok(Self {
            shards,
            lens,
            usable,
            batch,
            seq,
            seed,
            vocab_size,
            order,
            pos: 0,
            cursor,
            dtype,
            loaded: None,
        })
    }

    /// The next `batch x (seq+1)` window; advances the cursor (shard and epoch as needed).
    pub fn next_batch(&mut self) -> Result<Batch> {
        let c = self.cursor;
        let (b, t) = (self.batch, self.seq);
        let tokens = self.shard_tokens(c.shard)?;
        let mut out = Vec::with_capacity(b * (t + 1));
        for i in 0..b {
            tokens.extend_window(c.offset + i * t, t + 1, &mut out);
        }
        self.advance();
        Ok(Batch {
            tokens: out,
            batch: b,
            seq: t,
        })
    }

    /// Position of the next batch, to store in a checkpoint.
    pub fn cursor(&self) -> DataCursor {
        self.cursor
    }

    /// Jumps to a saved cursor (e.g. on resume); errors if it does not fit these shards.
    pub fn seek(&mut self, c: DataCursor) -> Result<()> {
        let need = self.batch * self.seq + 1;
        if c.shard >= self.shards.len() {
            bail!(
                "data cursor {c} is out of range: there are only {} training shards (resume with the same shard directory or start fresh)",
                self.shards.len()
            );
        }
        let len = self.lens[c.shard];
        if len < need || c.offset + need > len {
            bail!(
                "data cursor {c} is out of range for shard {} ({len} tokens, batch*seq+1 = {need}): resume with the same shards, batch and seq, or start fresh",
                self.shards[c.shard].display()
            );
        }
        let order = epoch_order(&self.usable, self.seed, c.epoch);
        let pos = order.iter().position(|&s| s == c.shard).unwrap_or(0);
        self.order = order;
        self.pos = pos;
        self.cursor = c;
        Ok(())
    }

    /// Tokens of one batch (`batch * seq`), for throughput accounting.
    pub fn tokens_per_batch(&self) -> usize {
        self.batch * self.seq
    }

    /// The training shard paths, in list order (cursor `shard` indexes this).
    pub fn shards(&self) -> &[PathBuf] {
        &self.shards
    }

    fn advance(&mut self) {
        let step = self.batch * self.seq;
        let need = step + 1;
        let c = &mut self.cursor;
        c.offset += step;
        if c.offset + need > self.lens[c.shard] {
            c.offset = 0;
            self.pos += 1;
            if self.pos >= self.order.len() {
                c.epoch += 1;
                self.order = epoch_order(&self.usable, self.seed, c.epoch);
                self.pos = 0;
            }
            c.shard = self.order[self.pos];
        }
    }

    fn shard_tokens(&mut self, shard: usize) -> Result<&ShardTokens> {
        if self.loaded.as_ref().map(|(i, _)| *i) != Some(shard) {
            self.loaded = None; // free the old shard before loading the next
            let path = &self.shards[shard];
            let toks = read_npy_tokens(path)?;
            check_dtype(path, toks.dtype(), &self.shards[0], self.dtype)?;
            check_token_ids(path, &toks, self.vocab_size)?;
            if toks.len() != self.lens[shard] {
                bail!(
                    "shard {} changed while training ({} tokens, expected {}): do not modify shards during a run",
                    self.shards[shard].display(),
                    toks.len(),
                    self.lens[shard]
                );
            }
            self.loaded = Some((shard, toks));
        }
        match &self.loaded {
            Some((_, t)) => Ok(t),
            None => unreachable!("the shard was loaded just above"),
        }
    }
}

/// Shard order for an epoch: a pure function of (seed, epoch), so the cursor needs no RNG state.
fn epoch_order(usable: &[usize], seed: u64, epoch: u64) -> Vec<usize> {
    let mut order = usable.to_vec();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    order.shuffle(&mut rng);
    order
}

/// Tokens one `batch x seq` window reads (`batch * seq + 1`), refusing an overflow by name.
pub(super) fn window(batch: usize, seq: usize) -> Result<usize> {
    batch
        .checked_mul(seq)
        .and_then(|n| n.checked_add(1))
        .ok_or_else(|| anyhow::anyhow!("batch {batch} x seq {seq} overflows: use smaller values"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::shards::write_npy_u16;
    use super::*;

    /// Shards whose token at position p of shard s is s*1000 + p (distinguishable windows).
    pub(crate) fn make_shards(dir: &Path, lens: &[usize]) -> Vec<PathBuf> {
        lens.iter()
            .enumerate()
            .map(|(s, &n)| {
                let p = dir.join(format!("t_train_{:06}.npy", s + 1));
                let toks: Vec<u16> = (0..n).map(|i| (s * 1000 + i) as u16).collect();
                write_npy_u16(&p, &toks).unwrap();
                p
            })
            .collect()
    }

    #[test]
    fn rows_are_contiguous_windows() {
        let dir = tempfile::tempdir().unwrap();
        let shards = make_shards(dir.path(), &[100]);
        let mut l = TokenLoader::new(shards, 2, 8, 0, 65536).unwrap();
        let b = l.next_batch().unwrap();
        assert_eq!((b.batch, b.seq, b.tokens.len()), (2, 8, 18));
        assert_eq!(b.row(0), (0..9).collect::<Vec<u32>>());
        assert_eq!(b.row(1), (8..17).collect::<Vec<u32>>());
        assert_eq!(b.inputs()[..8], (0..8).collect::<Vec<u32>>()[..]);
        assert_eq!(b.targets()[..8], (1..9).collect::<Vec<u32>>()[..]);
        assert_eq!(
            l.cursor(),
            DataCursor {
                epoch: 0,
                shard: 0,
                offset: 16
            }
        );
        // 100 tokens: windows at 0,16,...,80 (80+17=97 <= 100); 96+17 > 100 so epoch ends.
        for _ in 0..5 {
            l.next_batch().unwrap();
        }
        assert_eq!(
            l.cursor(),
            DataCursor {
                epoch: 1,
                shard: 0,
                offset: 0
            }
        );
    }

    #[test]
    fn seek_resumes_identically_across_shards_and_epochs() {
        let dir = tempfile::tempdir().unwrap();
        // Shard 2 (10 tokens) is too short for a 2x8 window and is skipped.
        let shards = make_shards(dir.path(), &[60, 45, 10, 80]);
        let mut full = TokenLoader::new(shards.clone(), 2, 8, 42, 65536).unwrap();
        let mut cursors = Vec::new();
        let mut batches = Vec::new();
        for _ in 0..40 {
            cursors.push(full.cursor());
            batches.push(full.next_batch().unwrap());
        }
        let epochs: Vec<u64> = cursors.iter().map(|c| c.epoch).collect();
        assert!(epochs.contains(&3), "{epochs:?}");
        assert!(cursors.iter().all(|c| c.shard != 2));
        let shards_seen: std::collections::HashSet<usize> =
            cursors.iter().map(|c| c.shard).collect();
        assert_eq!(shards_seen.len(), 3);
        for k in [0, 3, 7, 13, 22] {
            let mut resumed = TokenLoader::new(shards.clone(), 2, 8, 42, 65536).unwrap();
            // Round-trip the cursor through JSON like a checkpoint would.
            let json = serde_json::to_string(&cursors[k]).unwrap();
            resumed.seek(serde_json::from_str(&json).unwrap()).unwrap();
            for j in k..40 {
                assert_eq!(resumed.cursor(), cursors[j]);
                assert_eq!(
                    resumed.next_batch().unwrap(),
                    batches[j],
                    "resume at {k}, step {j}"
                );
            }
        }
        // Shard order is a pure function of (seed, epoch) and differs across seeds/epochs.
        let usable = [0, 1, 3, 4, 5, 6, 7, 8];
        assert_eq!(epoch_order(&usable, 1, 5), epoch_order(&usable, 1, 5));
        assert!((0..8).any(|e| epoch_order(&usable, 1, e) != epoch_order(&usable, 1, e + 1)));
    }

    #[test]
    fn bad_cursors_and_shards_error() {
        let dir = tempfile::tempdir().unwrap();
        let shards = make_shards(dir.path(), &[60, 10]);
        let mut l = TokenLoader::new(shards.clone(), 2, 8, 0, 65536).unwrap();
        for c in [
            DataCursor {
                epoch: 0,
                shard: 5,
                offset: 0,
            },
            DataCursor {
                epoch: 0,
                shard: 0,
                offset: 50,
            },
            DataCursor {
                epoch: 0,
                shard: 1,
                offset: 0,
            },
        ] {
            let m = format!("{:#}", l.seek(c).unwrap_err());
            assert!(m.contains("out of range") && !m.contains('\n'), "{m}");
        }
        assert!(l
            .seek(DataCursor {
                epoch: 9,
                shard: 0,
                offset: 43
            })
            .is_ok());
        let m = format!(
            "{:#}",
            TokenLoader::new(vec![shards[1].clone()], 2, 8, 0, 65536).unwrap_err()
        );
        assert!(
            m.contains("17 tokens") && m.contains(&dir.path().display().to_string()),
            "{m}"
        );
        // A truncated shard fails at construction, naming the file.
        let full = std::fs::read(&shards[0]).unwrap();
        std::fs::write(&shards[0], &full[..full.len() - 1]).unwrap();
        let m = format!(
            "{:#}",
            TokenLoader::new(shards.clone(), 2, 8, 0, 65536).unwrap_err()
        );
        assert!(
            m.contains("t_train_000001.npy") && m.contains("truncated"),
            "{m}"
        );
        assert!(TokenLoader::new(vec![], 2, 8, 0, 65536).is_err());
    }

    #[test]
    fn token_ids_outside_the_vocabulary_are_refused_naming_shard_and_id() {
        let dir = tempfile::tempdir().unwrap();
        // Shard 0 holds ids 0..60, shard 1 holds 1000..1045.
        let shards = make_shards(dir.path(), &[60, 45]);
        let mut l = TokenLoader::new(vec![shards[1].clone()], 2, 8, 0, 1000).unwrap();
        let m = format!("{:#}", l.next_batch().unwrap_err());
        assert!(
            m.contains("t_train_000002.npy")
                && m.contains("token id 1000 at position 0")
                && m.contains("vocab_size 1000")
                && !m.contains('\n'),
            "{m}"
        );
        let m = format!("{:#}", eval_batches(&shards, 2, 8, 10, 50).unwrap_err());
        assert!(
            m.contains("t_train_000001.npy") && m.contains("token id 50"),
            "{m}"
        );
        assert!(eval_batches(&shards[..1], 2, 8, 10, 60).is_ok());
    }

    /// uint32 shards stream their ids unchanged (above 65,535 too), in training and eval
    /// batches; a uint16 shard among them is refused naming both files.
    #[test]
    fn uint32_shards_load_and_a_mixed_set_is_refused() {
        use super::super::shards::write_npy;
        let dir = tempfile::tempdir().unwrap();
        let wide = dir.path().join("w_train_000001.npy");
        let toks: Vec<u32> = (0..40).map(|i| 70_000 + i).collect();
        write_npy(&wide, &toks).unwrap();
        let mut l = TokenLoader::new(vec![wide.clone()], 2, 8, 0, 70_040).unwrap();
        let b = l.next_batch().unwrap();
        assert_eq!(b.row(0), (70_000..70_009).collect::<Vec<u32>>());
        assert_eq!(b.row(1), (70_008..70_017).collect::<Vec<u32>>());
        let e = eval_batches(std::slice::from_ref(&wide), 1, 8, 1, 70_040).unwrap();
        assert_eq!(e[0].row(0)[8], 70_008);
        let m = format!(
            "{:#}",
            TokenLoader::new(vec![wide.clone()], 2, 8, 0, 70_039)
                .unwrap()
                .next_batch()
                .unwrap_err()
        );
        assert!(
            m.contains("token id 70039") && m.contains("w_train_000001.npy"),
            "{m}"
        );
        let narrow = make_shards(dir.path(), &[40]).remove(0);
        let both = vec![wide.clone(), narrow.clone()];
        for m in [
            format!(
                "{:#}",
                TokenLoader::new(both.clone(), 2, 8, 0, 70_040).unwrap_err()
            ),
            format!("{:#}", eval_batches(&both, 1, 8, 10, 70_040).unwrap_err()),
        ] {
            assert!(
                m.contains("t_train_000001.npy is uint16")
                    && m.contains("w_train_000001.npy is uint32"),
                "{m}"
            );
        }
    }
}
