//! Tests of the shuffled-window loader: coverage per epoch, exact resume, refusals.

use super::super::shards::write_npy_u16;
use super::*;
use std::collections::BTreeSet;

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

/// The (shard, start) of a row of `make_shards` tokens, checking it is one contiguous window
/// starting at a multiple of `seq`.
fn row_window(row: &[u32], seq: usize) -> (u32, u32) {
    let (shard, start) = (row[0] / 1000, row[0] % 1000);
    assert_eq!(start as usize % seq, 0, "{row:?}");
    assert!(row.windows(2).all(|w| w[1] == w[0] + 1), "{row:?}");
    (shard, start)
}

/// Rows of the next `batches` batches, as windows.
fn draw(l: &mut TokenLoader, batches: usize, seq: usize) -> Vec<(u32, u32)> {
    let mut rows = Vec::new();
    for _ in 0..batches {
        let b = l.next_batch().unwrap();
        rows.extend((0..b.batch).map(|i| row_window(b.row(i), seq)));
    }
    rows
}

#[test]
fn every_epoch_draws_every_window_once_in_a_seeded_order() {
    let dir = tempfile::tempdir().unwrap();
    // seq 8: (len - 1) / 8 windows per shard: 7 + 5 + 1 + 9 = 22 (shard 2 holds just one).
    let shards = make_shards(dir.path(), &[60, 45, 10, 80]);
    let mut l = TokenLoader::new(shards.clone(), 2, 8, 42, 65536).unwrap();
    assert_eq!(l.windows_per_epoch(), 22);
    let b = l.next_batch().unwrap();
    assert_eq!((b.batch, b.seq, b.tokens.len()), (2, 8, 18));
    assert_eq!(b.inputs()[..8], b.row(0)[..8]);
    assert_eq!(b.targets()[..8], b.row(0)[1..]);
    let mut rows = vec![row_window(b.row(0), 8), row_window(b.row(1), 8)];
    rows.extend(draw(&mut l, 43, 8));
    let all: BTreeSet<(u32, u32)> = [(0, 7), (1, 5), (2, 1), (3, 9)]
        .iter()
        .flat_map(|&(s, n)| (0..n).map(move |k| (s, k * 8)))
        .collect();
    let epochs: Vec<&[(u32, u32)]> = rows.chunks(22).collect();
    assert_eq!(epochs.len(), 4);
    for e in &epochs {
        assert_eq!(e.iter().copied().collect::<BTreeSet<_>>(), all, "{e:?}");
    }
    assert_ne!(epochs[0], epochs[1], "each epoch has its own order");
    // Not a sequential read: the shard changes often between consecutive rows.
    let switches = rows[..22].windows(2).filter(|w| w[0].0 != w[1].0).count();
    assert!(
        switches >= 8,
        "{switches} shard switches in {:?}",
        &rows[..22]
    );
    assert_eq!(
        l.cursor(),
        DataCursor {
            epoch: 4,
            shard: 0,
            offset: 0,
            order: DataOrder::Windows
        }
    );
    // Another seed, another order; the same seed, the same one.
    let mut same = TokenLoader::new(shards.clone(), 2, 8, 42, 65536).unwrap();
    assert_eq!(draw(&mut same, 11, 8), rows[..22]);
    let mut other = TokenLoader::new(shards, 2, 8, 43, 65536).unwrap();
    assert_ne!(draw(&mut other, 11, 8), rows[..22]);
}

/// A batch that runs past the end of an epoch finishes with the next epoch's order.
#[test]
fn a_batch_crossing_an_epoch_boundary_drops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let shards = make_shards(dir.path(), &[100]); // 12 windows of 8 + 1
    let mut l = TokenLoader::new(shards, 5, 8, 0, 65536).unwrap();
    let rows = draw(&mut l, 2, 8);
    assert_eq!(l.cursor().offset, 10);
    let b = l.next_batch().unwrap();
    assert_eq!((l.cursor().epoch, l.cursor().offset), (1, 3));
    let crossing: Vec<(u32, u32)> = (0..5).map(|i| row_window(b.row(i), 8)).collect();
    let first: BTreeSet<_> = rows.iter().chain(&crossing[..2]).copied().collect();
    assert_eq!(first.len(), 12, "epoch 0 saw every window once");
    let mut next = draw(&mut l, 2, 8);
    next.splice(0..0, crossing[2..].iter().copied());
    assert_eq!(next[..12].iter().collect::<BTreeSet<_>>().len(), 12);
}

#[test]
fn seek_resumes_identically_across_shards_and_epochs() {
    let dir = tempfile::tempdir().unwrap();
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
    assert!(cursors
        .iter()
        .all(|c| c.shard == 0 && c.order == DataOrder::Windows));
    for k in [0, 3, 7, 11, 13, 22, 39] {
        let mut resumed = TokenLoader::new(shards.clone(), 2, 8, 42, 65536).unwrap();
        // Round-trip the cursor through JSON like a checkpoint would.
        let json = serde_json::to_string(&cursors[k]).unwrap();
        assert!(json.contains(r#""order":"windows""#), "{json}");
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
}

#[test]
fn bad_cursors_and_shards_error() {
    let dir = tempfile::tempdir().unwrap();
    let shards = make_shards(dir.path(), &[60, 10]); // 7 + 1 windows
    let mut l = TokenLoader::new(shards.clone(), 2, 8, 0, 65536).unwrap();
    let windows = |epoch, shard, offset| DataCursor {
        epoch,
        shard,
        offset,
        order: DataOrder::Windows,
    };
    for c in [windows(0, 5, 0), windows(0, 0, 8), windows(3, 0, 50)] {
        let m = format!("{:#}", l.seek(c).unwrap_err());
        assert!(
            m.contains("out of range") && m.contains("hold 8 windows") && !m.contains('\n'),
            "{m}"
        );
    }
    assert!(l.seek(windows(9, 0, 7)).is_ok());
    // A cursor of the old sequential loader (no "order" in trainer.json) is refused, saying
    // why and what to do; so is an SFT cursor.
    let old: DataCursor = serde_json::from_str(r#"{"epoch":0,"shard":1,"offset":16}"#).unwrap();
    assert_eq!(old.order, DataOrder::Sequential);
    let m = format!("{:#}", l.seek(old).unwrap_err());
    assert!(
        m.contains("(epoch 0, shard 1, offset 16)")
            && m.contains("older build")
            && m.contains("--finetune")
            && !m.contains('\n'),
        "{m}"
    );
    let rows = DataCursor {
        order: DataOrder::Rows,
        ..windows(0, 0, 1)
    };
    assert!(format!("{:#}", l.seek(rows).unwrap_err()).contains("SFT"));
    // One window cannot make a batch of two.
    let m = format!(
        "{:#}",
        TokenLoader::new(vec![shards[1].clone()], 2, 8, 0, 65536).unwrap_err()
    );
    assert!(
        m.contains("hold 1 windows of seq+1 = 9 tokens (10 tokens in 1 shards)")
            && m.contains("fewer than one batch of 2")
            && m.contains(&dir.path().display().to_string()),
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

/// Draws batches until one fails; the error text.
fn first_error(l: &mut TokenLoader, max: usize) -> String {
    for _ in 0..max {
        if let Err(e) = l.next_batch() {
            return format!("{e:#}");
        }
    }
    panic!("no batch failed in {max}");
}

#[test]
fn token_ids_outside_the_vocabulary_are_refused_naming_shard_and_id() {
    let dir = tempfile::tempdir().unwrap();
    // Shard 0 holds ids 0..60, shard 1 holds 1000..1045: with seq 8 its windows start at
    // 0, 8, ..., 32, and only the last reaches id 1040 (at position 40).
    let shards = make_shards(dir.path(), &[60, 45]);
    let mut l = TokenLoader::new(vec![shards[1].clone()], 2, 8, 0, 1040).unwrap();
    let m = first_error(&mut l, 3);
    assert!(
        m.contains("t_train_000002.npy")
            && m.contains("token id 1040 at position 40")
            && m.contains("vocab_size 1040")
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
    for i in 0..2 {
        let row = b.row(i);
        assert!(
            row[0] >= 70_000 && (row[0] - 70_000).is_multiple_of(8),
            "{row:?}"
        );
        assert!(row.windows(2).all(|w| w[1] == w[0] + 1), "{row:?}");
    }
    let e = eval_batches(std::slice::from_ref(&wide), 1, 8, 1, 70_040).unwrap();
    assert_eq!(e[0].row(0)[8], 70_008);
    // Windows start at 0, 8, 16, 24; id 70030 (position 30) is in the last one only.
    let mut l = TokenLoader::new(vec![wide.clone()], 2, 8, 0, 70_030).unwrap();
    let m = first_error(&mut l, 3);
    assert!(
        m.contains("token id 70030 at position 30") && m.contains("w_train_000001.npy"),
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
