//! Tests never write into the user's cache directory. `common` points the prepared-data cache
//! (`LLITE_CACHE_DIR`) and `XDG_CACHE_HOME` into the target directory before `main` of every
//! test binary that includes it; these tests check that the variables are set, that a fresh
//! run started the way every test starts the binary caches there and writes nothing under
//! `HOME`, that without the guard it would have written a user-level cache (so the check can
//! fail), and that every test file that starts the binary includes `common`.

mod common;

use common::{cache_entries, small_corpus, test_cache_dir, test_xdg_cache_home, tiny_flags, BIN};
use llite_tui::data::prep_cache::{self, CACHE_ENV};
use std::path::Path;
use std::process::Command;

#[test]
fn the_guard_points_every_cache_into_the_target_directory() {
    assert_eq!(
        std::env::var_os(CACHE_ENV),
        Some(test_cache_dir().into_os_string())
    );
    assert_eq!(
        std::env::var_os("XDG_CACHE_HOME"),
        Some(test_xdg_cache_home().into_os_string())
    );
    assert_eq!(prep_cache::default_root(), Some(test_cache_dir()));
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
    assert!(test_cache_dir().starts_with(target) && test_xdg_cache_home().starts_with(target));
}

/// One headless step of a fresh run on `corpus`, `HOME` set to `home`, with `env` changes.
fn fresh_run(dir: &Path, corpus: &Path, home: &Path, name: &str, env: impl FnOnce(&mut Command)) {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "train",
        "--headless",
        "--max-steps",
        "1",
        "--run-name",
        name,
    ])
    .arg("--runs-dir")
    .arg(dir.join("runs"))
    .args(tiny_flags(corpus))
    .env("HOME", home);
    env(&mut cmd);
    let out = common::output_within(cmd, 300, "a fresh headless run");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn a_fresh_run_started_like_every_test_caches_under_target_not_home() {
    let dir = tempfile::tempdir().unwrap();
    // A corpus of its own (a unique last line), so its cache entry is new.
    let corpus = small_corpus(dir.path(), 40_000);
    let nonce = format!(
        "\nNONCE {} {:?}\n",
        std::process::id(),
        std::time::SystemTime::now()
    );
    let mut text = std::fs::read_to_string(&corpus).unwrap();
    text.push_str(&nonce);
    std::fs::write(&corpus, text).unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();

    let before = cache_entries(&test_cache_dir());
    fresh_run(dir.path(), &corpus, &home, "guarded", |_| {});
    let new: Vec<_> = cache_entries(&test_cache_dir())
        .into_iter()
        .filter(|e| !before.contains(e))
        .collect();
    assert_eq!(
        new.len(),
        1,
        "the run's preparation was cached here: {new:?}"
    );
    assert_eq!(
        std::fs::read(new[0].join("tokenizer.json")).unwrap(),
        std::fs::read(dir.path().join("runs/guarded/tokenizer.json")).unwrap(),
        "the entry is this run's"
    );
    // This test's own corpus: its entry would never be hit again.
    std::fs::remove_dir_all(&new[0]).unwrap();
    assert!(
        common::snapshot(&home).is_empty(),
        "nothing written under HOME"
    );

    // The control: the same launch without the guard's variable writes a cache under
    // XDG_CACHE_HOME (here a temporary one): what the guard keeps out of the user's own.
    let xdg = dir.path().join("xdg");
    fresh_run(dir.path(), &corpus, &home, "unguarded", |cmd| {
        cmd.env_remove(CACHE_ENV).env("XDG_CACHE_HOME", &xdg);
    });
    assert_eq!(
        cache_entries(&xdg.join("llite-tui/prepared")).len(),
        1,
        "the default cache: {:?}",
        common::snapshot(&xdg).keys().collect::<Vec<_>>()
    );
}

/// A test file that starts the binary without `mod common;` would start it without the
/// guard, with the user's cache as its default.
#[test]
fn every_test_that_starts_the_binary_includes_the_guard() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut checked = 0;
    for e in std::fs::read_dir(&tests).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let starts_binary = text.contains("CARGO_BIN_EXE") || text.contains("BIN");
        if starts_binary {
            checked += 1;
            assert!(
                text.lines().any(|l| l.trim() == "mod common;"),
                "{} starts the binary but does not include `common` (its cache guard)",
                path.display()
            );
        }
    }
    assert!(checked >= 10, "only {checked} test files start the binary?");
}
