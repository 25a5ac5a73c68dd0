//! The training windows of a shard set: every `seq + 1`-token span at stride `seq` of every
//! shard (each token is a target once per pass), numbered shard by shard, and read straight
//! from the files with positioned reads. A shuffled order over all of them then needs neither
//! the shards in memory nor an index per window: memory is O(number of shards).

use super::shards::{check_dtype, check_ids_at, npy_layout, NpyLayout, TokenDtype};
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Where one window lies: a shard (index into the loader's list) and its first token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowAt {
    /// Index of the shard in the list the set was opened with.
    pub shard: usize,
    /// Token offset of the window's first token in that shard.
    pub start: usize,
}

/// The numbered windows of a set of training shards (see the module doc).
#[derive(Debug)]
pub struct ShardWindows {
    shards: Vec<PathBuf>,
    layouts: Vec<NpyLayout>,
    /// First window id of each shard, plus the total at the end (`shards.len() + 1` entries).
    starts: Vec<u64>,
    seq: usize,
    vocab_size: usize,
}

impl ShardWindows {
    /// Reads the shards' headers (one dtype for the set) and numbers their windows; a shard
    /// shorter than one window contributes none. Token ids are checked against `vocab_size`
    /// as windows are read.
    pub fn open(shards: Vec<PathBuf>, seq: usize, vocab_size: usize) -> Result<Self> {
        let Some(first) = shards.first() else {
            bail!("no training shards given to the loader: prepare data first or point it at a shard directory");
        };
        let layouts = shards
            .iter()
            .map(|p| npy_layout(p))
            .collect::<Result<Vec<_>>>()?;
        let dtype = layouts[0].info.dtype;
        for (p, l) in shards.iter().zip(&layouts) {
            check_dtype(p, l.info.dtype, first, dtype)?;
        }
        let mut starts = Vec::with_capacity(shards.len() + 1);
        let mut total = 0u64;
        for l in &layouts {
            starts.push(total);
            total += (l.info.len.saturating_sub(1) / seq) as u64;
        }
        starts.push(total);
        Ok(Self {
            shards,
            layouts,
            starts,
            seq,
            vocab_size,
        })
    }

    /// Number of windows in the whole set.
    pub fn count(&self) -> u64 {
        self.starts[self.shards.len()]
    }

    /// Total tokens of all shards, for messages.
    pub fn total_tokens(&self) -> u64 {
        self.layouts.iter().map(|l| l.info.len as u64).sum()
    }

    /// The training shard paths, in list order.
    pub fn shards(&self) -> &[PathBuf] {
        &self.shards
    }

    /// Where window `id` (< `count()`) lies.
    pub fn locate(&self, id: u64) -> WindowAt {
        // The last shard whose first id is <= id and that has windows (empty shards share
        // their start with the next one, so the partition point skips them).
        let shard = self.starts.partition_point(|&s| s <= id) - 1;
        WindowAt {
            shard,
            start: (id - self.starts[shard]) as usize * self.seq,
        }
    }

    /// Appends the `seq + 1` tokens of each window in `ids`, in that order, opening each shard
    /// once per run of consecutive windows in it.
    pub fn read(&self, ids: &[u64], out: &mut Vec<u32>) -> Result<()> {
        let mut open: Option<(usize, File)> = None;
        let mut buf = Vec::new();
        for &id in ids {
            let at = self.locate(id);
            let file = match &mut open {
                Some((s, f)) if *s == at.shard => f,
                _ => &mut open.insert((at.shard, self.open_shard(at.shard)?)).1,
            };
            let layout = self.layouts[at.shard];
            let width = layout.info.dtype.width();
            let path = &self.shards[at.shard];
            buf.resize((self.seq + 1) * width, 0);
            file.seek(SeekFrom::Start(
                layout.data_start + (at.start * width) as u64,
            ))
            .and_then(|_| file.read_exact(&mut buf))
            .with_context(|| changed(path, "cannot read tokens"))?;
            let first = out.len();
            match layout.info.dtype {
                TokenDtype::U16 => out.extend(
                    buf.chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32),
                ),
                TokenDtype::U32 => out.extend(
                    buf.chunks_exact(4)
                        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                ),
            }
            check_ids_at(
                path,
                at.start,
                out[first..].iter().copied(),
                self.vocab_size,
            )?;
        }
        Ok(())
    }

    /// Opens a shard for reading and refuses one whose size no longer matches its header.
    fn open_shard(&self, shard: usize) -> Result<File> {
        let path = &self.shards[shard];
        let file = crate::store::fsio::open_regular(path)
            .with_context(|| changed(path, "cannot open it"))?;
        let len = file
            .metadata()
            .with_context(|| changed(path, "cannot stat it"))?
            .len();
        let want = self.layouts[shard].file_len();
        if len != want {
            bail!(
                "shard {} changed while training ({len} bytes, expected {want}): do not modify shards during a run",
                path.display()
            );
        }
        Ok(file)
    }
}

fn changed(path: &Path, what: &str) -> String {
    format!(
        "shard {}: {what} (was it moved or changed during the run?)",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::super::loader::tests::make_shards;
    use super::*;

    #[test]
    fn windows_are_numbered_shard_by_shard_and_read_in_place() {
        let dir = tempfile::tempdir().unwrap();
        // seq 8: (len - 1) / 8 windows each: 7, 5, 1, 0, 9.
        let shards = make_shards(dir.path(), &[60, 45, 10, 8, 80]);
        let w = ShardWindows::open(shards.clone(), 8, 65536).unwrap();
        assert_eq!(w.count(), 22);
        assert_eq!(w.total_tokens(), 203);
        let at = |shard, start| WindowAt { shard, start };
        assert_eq!(w.locate(0), at(0, 0));
        assert_eq!(w.locate(6), at(0, 48));
        assert_eq!(w.locate(7), at(1, 0));
        assert_eq!(w.locate(12), at(2, 0));
        assert_eq!(w.locate(13), at(4, 0), "the empty shard 3 is skipped");
        assert_eq!(w.locate(21), at(4, 64));
        let mut out = Vec::new();
        w.read(&[21, 0, 12], &mut out).unwrap();
        let want: Vec<u32> = (4064..4073).chain(0..9).chain(2000..2009).collect();
        assert_eq!(out, want);
        // A shard rewritten with another length is refused by name.
        super::super::shards::write_npy_u16(&shards[4], &[1, 2, 3]).unwrap();
        let m = format!("{:#}", w.read(&[20], &mut out).unwrap_err());
        assert!(
            m.contains("t_train_000005.npy changed while training") && !m.contains('\n'),
            "{m}"
        );
    }
}
