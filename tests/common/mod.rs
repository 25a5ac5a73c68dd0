//! Shared helpers for integration tests: a CI-sized model on a slice of the bundled corpus.
#![allow(dead_code)]

use llite_tui::config::RunConfig;
use llite_tui::protocol::{EngineLink, Event, StartFrom, StepStats};
use llite_tui::train::session::{DeviceSpec, EngineRequest};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The release-under-test binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_llite-tui");

/// Write the first `bytes` of the bundled Shakespeare to `dir/corpus.txt`.
pub fn small_corpus(dir: &Path, bytes: usize) -> PathBuf {
    let text = llite_tui::data::corpus::BUILTIN_SHAKESPEARE;
    let mut end = bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let path = dir.join("corpus.txt");
    std::fs::write(&path, &text[..end]).unwrap();
    path
}

/// A model small enough to take many steps per second in a debug-ish build.
pub fn tiny_config(corpus: &Path, max_steps: u64) -> RunConfig {
    let mut cfg = RunConfig::default();
    cfg.model.vocab_size = 512;
    cfg.model.d_model = 64;
    cfg.model.n_layers = 2;
    cfg.model.n_heads = 4;
    cfg.model.n_kv_heads = 2;
    cfg.model.ff_dim = 128;
    cfg.model.max_seq_len = 64;
    cfg.data.corpus = vec![corpus.display().to_string()];
    cfg.data.tokenizer = "train:512".into();
    cfg.data.val_fraction = 0.05;
    cfg.train.batch_size = 4;
    cfg.train.seq_len = 32;
    cfg.train.max_steps = max_steps;
    cfg.train.lr = 3e-3;
    cfg.train.min_lr = 3e-4;
    cfg.train.warmup_steps = 5;
    cfg.train.eval_every = 10;
    cfg.train.eval_batches = 2;
    cfg.checkpoint.every = 0;
    cfg.checkpoint.keep_last = 0;
    cfg
}

/// A fresh-run request in `runs_dir/name`.
pub fn request(cfg: RunConfig, runs_dir: &Path, name: &str, start: StartFrom) -> EngineRequest {
    EngineRequest {
        config: cfg,
        overrides: Vec::new(),
        config_explicit: false,
        runs_dir: runs_dir.to_path_buf(),
        run_name: Some(name.to_string()),
        start,
        device: DeviceSpec::Cpu,
        fresh_optimizer: false,
        stop_at: None,
        discard_later: false,
        prep_cache: None,
    }
}

/// Receive the next event or fail the test after `secs`.
pub fn next_event(link: &EngineLink, secs: u64) -> Event {
    link.events
        .recv_timeout(Duration::from_secs(secs))
        .expect("engine sent no event in time")
}

/// Drain events until `Finished`; panics on an engine error.
pub fn run_to_end(link: EngineLink) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        let e = next_event(&link, 300);
        if let Event::Error { message, .. } = &e {
            panic!("engine error: {message}");
        }
        let done = matches!(e, Event::Finished { .. });
        events.push(e);
        if done {
            break;
        }
    }
    if let Some(j) = link.join {
        j.join().unwrap();
    }
    events
}

/// The Step events of a run.
pub fn steps(events: &[Event]) -> Vec<StepStats> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Step(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// Entropy (nats) of the unigram distribution of a shard directory's training tokens: the
/// loss of the best model that ignores context.
pub fn unigram_entropy(shard_dir: &Path) -> f64 {
    let set = llite_tui::data::shards::list_shards(shard_dir).unwrap();
    let mut counts = std::collections::HashMap::<u16, u64>::new();
    let mut total = 0u64;
    for s in &set.train {
        for t in llite_tui::data::shards::read_npy_u16(s).unwrap() {
            *counts.entry(t).or_default() += 1;
            total += 1;
        }
    }
    counts
        .values()
        .map(|&c| {
            let p = c as f64 / total as f64;
            -p * p.ln()
        })
        .sum()
}

/// `--set` flags that give the real binary the same CI-sized model as [`tiny_config`].
pub fn tiny_flags(corpus: &Path) -> Vec<String> {
    tiny_flags_with(corpus, &[])
}

/// [`tiny_flags`] followed by `extra` `section.key=value` settings (a later `--set` wins).
pub fn tiny_flags_with(corpus: &Path, extra: &[&str]) -> Vec<String> {
    let sets = [
        "model.vocab_size=512".to_string(),
        "model.d_model=64".into(),
        "model.n_layers=2".into(),
        "model.n_heads=4".into(),
        "model.n_kv_heads=2".into(),
        "model.ff_dim=128".into(),
        "model.max_seq_len=64".into(),
        "data.tokenizer=train:512".into(),
        format!("data.corpus={}", corpus.display()),
        "train.batch_size=4".into(),
        "train.seq_len=32".into(),
        "train.eval_every=10".into(),
        "train.eval_batches=2".into(),
    ];
    sets.into_iter()
        .chain(extra.iter().map(|s| s.to_string()))
        .flat_map(|s| ["--set".to_string(), s])
        .collect()
}

/// Owned arguments from string literals.
pub fn strs(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// One entry of a [`snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir,
    File(Vec<u8>),
    /// A symlink, by its target (never followed).
    Link(PathBuf),
    /// A FIFO, device or socket (never opened).
    Special,
}

/// Everything under `root` by relative path, symlinks and special files never followed or
/// opened: two snapshots are equal only if every pre-existing file is byte-identical and
/// nothing was created or removed.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let kind = std::fs::symlink_metadata(&p).unwrap().file_type();
            let entry = if kind.is_symlink() {
                Entry::Link(std::fs::read_link(&p).unwrap())
            } else if kind.is_dir() {
                stack.push(p.clone());
                Entry::Dir
            } else if kind.is_file() {
                Entry::File(std::fs::read(&p).unwrap())
            } else {
                Entry::Special
            };
            out.insert(p.strip_prefix(root).unwrap().to_path_buf(), entry);
        }
    }
    out
}

/// Copy a directory tree of regular files (a run, a checkpoint, an HF export) for a test to
/// damage.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// Create a FIFO at `path` that nobody writes to: reading it would block forever.
pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
        0,
        "{}",
        path.display()
    );
}

/// Run the binary with `args` under `ulimit -f <kib>` (SIGXFSZ ignored, so writes fail with
/// EFBIG, as on a full disk).
pub fn run_with_file_limit(kib: u64, args: &[String]) -> Outcome {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let script = format!(
        "trap '' XFSZ; ulimit -f {kib}; exec '{BIN}' {}",
        quoted.join(" ")
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-c", &script]);
    output_within(cmd, 300, &format!("`llite-tui` under ulimit -f {kib}"))
}

/// How a run of the binary ended.
pub struct Outcome {
    /// None when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Run `cmd` (stdin closed, output captured) and fail the test, not hang the suite, if it is
/// still running after `secs`; `what` names it in that failure.
pub fn output_within(mut cmd: Command, secs: u64, what: &str) -> Outcome {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    // Output is drained while waiting, so a chatty child never blocks on a full pipe.
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => {
            let out = out.unwrap();
            Outcome {
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        }
        Err(_) => {
            // SAFETY: kill(2) on the PID of our own child, which has not been reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{what}: still running after {secs} s");
        }
    }
}

/// The binary run with `args`, failing the test after `secs`.
pub fn run_within<S: AsRef<std::ffi::OsStr>>(args: &[S], secs: u64) -> Outcome {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    output_within(cmd, secs, &format!("`llite-tui {}`", shown.join(" ")))
}

/// `(step, loss)` of every `step` event in a `metrics.jsonl`, in file order.
pub fn metrics_step_losses(metrics: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(metrics)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "step")
        .map(|v| (v["step"].as_u64().unwrap(), v["loss"].as_f64().unwrap()))
        .collect()
}

/// A word-level `tokenizer.json` of `n` tokens: `<|endoftext|>` = 0, `<unk>` = 1, then
/// `wI` = I for every I in 2..n (split on whitespace, decoded joined by spaces). A real
/// vocabulary of any size (over 65,536 for uint32 shards) without shipping one.
pub fn word_tokenizer_json(n: usize) -> String {
    let mut vocab = serde_json::Map::new();
    vocab.insert("<|endoftext|>".into(), 0.into());
    vocab.insert("<unk>".into(), 1.into());
    for i in 2..n {
        vocab.insert(format!("w{i}"), i.into());
    }
    serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [{"id": 0, "content": "<|endoftext|>", "single_word": false,
            "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
        "normalizer": null, "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
    })
    .to_string()
}

/// `train --headless --runs-dir RUNS` followed by `extra`: how every headless run a test
/// launches starts.
pub fn headless_args(runs: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = strs(&["train", "--headless", "--runs-dir"]);
    args.push(runs.display().to_string());
    args.extend(strs(extra));
    args
}

mod background;
mod engine_events;
// Each test crate uses a few of these (like the rest of this module, see `dead_code` above).
#[allow(unused_imports)]
pub use background::BackgroundRun;
#[allow(unused_imports)]
pub use engine_events::{
    alert_details, engine_error, events_until_finished, send_stop, wait_for_event, wait_step,
};

pub mod tmux;

/// The prepared-data cache (`LLITE_CACHE_DIR`) of every test and every process a test starts:
/// under the target directory (shared between test runs, removed by `cargo clean`), never the
/// user's own cache.
pub fn test_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("llite-cache")
}

/// `XDG_CACHE_HOME` of every test process and its children, so even a launch that loses
/// `LLITE_CACHE_DIR` caches under the target directory (`tests/cache_isolation.rs` checks).
pub fn test_xdg_cache_home() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache")
}

/// Point the caches into the target directory before `main`, while the process has one
/// thread, so every `Command` of every test (and tmux's server, and the cockpit it runs)
/// inherits it: tests spawn the binary in many places, and none may write the user's cache.
#[ctor::ctor(unsafe)]
fn keep_tests_out_of_the_user_cache() {
    std::env::set_var(llite_tui::data::prep_cache::CACHE_ENV, test_cache_dir());
    std::env::set_var("XDG_CACHE_HOME", test_xdg_cache_home());
}

/// The entries of a prepared-data cache root (directories not starting with a dot), sorted.
pub fn cache_entries(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
