//! The prepared-data cache: a second fresh run on the same corpus takes the trained tokenizer
//! and token shards from the cache and gets byte-identical files; a corrupt entry is detected,
//! reported, rebuilt, and never changes the tokens a run trains on.

mod common;

use common::{cache_entries, request, small_corpus, tiny_config};
use llite_tui::protocol::StartFrom;
use llite_tui::train::session::prepare;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every file of `run/data` and `run/tokenizer.json`, by name.
fn prepared_files(run_dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    out.insert(
        "tokenizer.json".to_string(),
        std::fs::read(run_dir.join("tokenizer.json")).unwrap(),
    );
    for e in std::fs::read_dir(run_dir.join("data")).unwrap() {
        let e = e.unwrap();
        out.insert(
            format!("data/{}", e.file_name().to_string_lossy()),
            std::fs::read(e.path()).unwrap(),
        );
    }
    out
}

/// Prepare a fresh run `name` (no training); its run directory and warnings.
fn fresh(corpus: &Path, runs: &Path, name: &str, cache: Option<&Path>) -> (PathBuf, Vec<String>) {
    let mut req = request(tiny_config(corpus, 1), runs, name, StartFrom::Fresh);
    req.prep_cache = cache.map(Path::to_path_buf);
    let run = prepare(&req).unwrap();
    (run.run_dir.clone(), run.warnings.clone())
}

#[test]
fn cached_and_uncached_preparation_give_identical_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 60_000);
    let runs = dir.path().join("runs");
    let cache = dir.path().join("cache");
    let (plain, w) = fresh(&corpus, &runs, "plain", None);
    assert!(w.is_empty(), "{w:?}");
    assert!(!cache.exists(), "no cache given, none written");
    let reference = prepared_files(&plain);
    assert!(
        reference.keys().any(|k| k.ends_with(".npy")),
        "{reference:?}"
    );

    // Cold: prepared from scratch, then stored.
    let (cold, w) = fresh(&corpus, &runs, "cold", Some(&cache));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(prepared_files(&cold), reference);
    let stored = cache_entries(&cache);
    assert_eq!(stored.len(), 1, "one entry per corpus and settings");
    // Warm: copied from the entry (the corruption test shows the entry is what is read),
    // same bytes.
    let (warm, w) = fresh(&corpus, &runs, "warm", Some(&cache));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(prepared_files(&warm), reference);
    assert_eq!(cache_entries(&cache), stored, "a hit stores nothing new");

    // Other settings are another entry, never the first one's tokens.
    let mut req = request(tiny_config(&corpus, 1), &runs, "other", StartFrom::Fresh);
    req.config.data.val_fraction = 0.1;
    req.prep_cache = Some(cache.clone());
    let other = prepare(&req).unwrap();
    assert_ne!(prepared_files(&other.run_dir), reference);
    assert_eq!(cache_entries(&cache).len(), 2);
}

#[test]
fn a_corrupt_entry_is_detected_reported_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 60_000);
    let runs = dir.path().join("runs");
    let cache = dir.path().join("cache");
    let (plain, _) = fresh(&corpus, &runs, "plain", None);
    let reference = prepared_files(&plain);
    fresh(&corpus, &runs, "cold", Some(&cache));
    let entry = cache_entries(&cache).pop().unwrap();

    // One flipped byte in a cached shard (same size): caught by its digest.
    let shard = std::fs::read_dir(entry.join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "npy"))
        .unwrap();
    let mut bytes = std::fs::read(&shard).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x5a;
    std::fs::write(&shard, &bytes).unwrap();
    let (run, w) = fresh(&corpus, &runs, "after-flip", Some(&cache));
    assert!(
        w.iter()
            .any(|m| m.contains("corrupt") && m.contains(&*entry.to_string_lossy())),
        "{w:?}"
    );
    assert_eq!(
        prepared_files(&run),
        reference,
        "the run's tokens are the uncached ones"
    );
    // Rebuilt: the next launch hits it without a warning, with the same tokens.
    let (run, w) = fresh(&corpus, &runs, "rebuilt", Some(&cache));
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(prepared_files(&run), reference);

    // A truncated tokenizer and a garbled manifest are caught the same way.
    for victim in ["tokenizer.json", "entry.json"] {
        let path = entry.join(victim);
        let text = std::fs::read(&path).unwrap();
        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        let (run, w) = fresh(&corpus, &runs, &format!("after-{victim}"), Some(&cache));
        assert!(w.iter().any(|m| m.contains("corrupt")), "{victim}: {w:?}");
        assert_eq!(prepared_files(&run), reference, "{victim}");
        assert_eq!(
            cache_entries(&cache),
            vec![entry.clone()],
            "{victim}: rebuilt in place"
        );
    }
    // Nothing left behind: no staging or set-aside directories.
    let hidden: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}
