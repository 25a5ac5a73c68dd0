//! Data parallelism over Burn's collective, end to end on CPU: 2 local peers with half the
//! batch each train like 1 peer with the whole batch; two `llite-tui` processes joined
//! through Burn's global orchestrator do the same; a 2-peer run killed and resumed continues
//! exactly, also with another peer count.

mod common;

use common::*;
use llite_tui::protocol::StartFrom;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Burn's local collective server is one per process: in-process runs with peers take turns.
static COLLECTIVE: Mutex<()> = Mutex::new(());

const STEPS: u64 = 20;

/// Float-summation tolerance between runs that split the batch differently: the same sums in
/// another order, compounded over 20 AdamW steps.
fn assert_close(a: &[(u64, f64)], b: &[(u64, f64)], what: &str) {
    assert_eq!(
        a.len(),
        b.len(),
        "{what}: step counts differ: {a:?} vs {b:?}"
    );
    for ((sa, la), (sb, lb)) in a.iter().zip(b) {
        assert_eq!(sa, sb, "{what}: steps differ");
        let tol = 2e-4 * la.abs().max(1.0);
        assert!(
            (la - lb).abs() <= tol,
            "{what}: step {sa}: loss {la} vs {lb} (tolerance {tol})"
        );
    }
}

/// The losses of `metrics.jsonl` as (step, loss), failing if a step appears twice.
fn losses_of(run_dir: &Path) -> Vec<(u64, f64)> {
    let v = metrics_step_losses(&run_dir.join("metrics.jsonl"));
    let mut steps: Vec<u64> = v.iter().map(|(s, _)| *s).collect();
    steps.dedup();
    assert_eq!(
        steps.len(),
        v.len(),
        "a step logged twice in {}",
        run_dir.display()
    );
    v
}

#[test]
fn two_local_peers_with_half_the_batch_match_one_peer_with_all_of_it() {
    let _turn = COLLECTIVE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 120_000);
    let run = |peers: usize, name: &str| {
        let mut cfg = tiny_config(&corpus, STEPS);
        cfg.parallel.peers = peers;
        let req = request(cfg, dir.path(), name, StartFrom::Fresh);
        steps(&run_to_end(llite_tui::train::engine::spawn(req)))
    };
    let one = run(1, "one");
    let two = run(2, "two");
    assert_eq!(one.len(), STEPS as usize);
    let pairs = |s: &[llite_tui::protocol::StepStats]| -> Vec<(u64, f64)> {
        s.iter().map(|x| (x.step, x.loss)).collect()
    };
    assert_close(
        &pairs(&one),
        &pairs(&two),
        "1 peer x 4 rows vs 2 peers x 2 rows",
    );
    for (a, b) in one.iter().zip(&two) {
        let tol = 1e-3 * a.grad_norm.max(1.0);
        assert!(
            (a.grad_norm - b.grad_norm).abs() <= tol,
            "grad norms {a:?} vs {b:?}"
        );
        assert_eq!(a.tokens, b.tokens, "the global batch is the same");
    }
    // The step events say how the work was shared.
    assert!(one
        .iter()
        .all(|s| s.peers == 1 && s.peer_step_ms.is_empty()));
    assert!(two.iter().all(|s| s.peers == 2
        && s.peer_step_ms.len() == 2
        && s.peer_step_ms.iter().all(|&m| m > 0.0)));
    let line = std::fs::read_to_string(dir.path().join("two/metrics.jsonl")).unwrap();
    let step: serde_json::Value = line
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["event"] == "step")
        .unwrap();
    assert_eq!(step["peers"], 2, "{step}");
    assert_eq!(
        step["peer_step_ms"].as_array().map(Vec::len),
        Some(2),
        "{step}"
    );
    // The one-device log reads as before (no data-parallel fields but the count).
    let one_line = std::fs::read_to_string(dir.path().join("one/metrics.jsonl")).unwrap();
    assert!(!one_line.contains("peer_step_ms"));
}

#[test]
fn a_batch_that_does_not_split_evenly_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 50_000);
    let runs = dir.path().join("runs");
    let mut args = strs(&["train", "--headless", "--max-steps", "2", "--peers", "3"]);
    args.extend(tiny_flags(&corpus));
    args.extend(strs(&[
        "--runs-dir",
        runs.to_str().unwrap(),
        "--run-name",
        "odd",
    ]));
    let out = run_within(&args, 120);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("train.batch_size (4) must be divisible by the 3 data-parallel peers"),
        "{}",
        out.stderr
    );
    assert!(!runs.join("odd").join("checkpoints").exists());
}

/// A TCP port nobody listens on right now (the OS picks it).
fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Children killed when the test ends, however it ends: CI must never keep a stray process.
struct Reaper(Vec<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn_quiet(args: &[String], log: &Path) -> Child {
    let file = std::fs::File::create(log).unwrap();
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap()
}

/// Wait for every child in `reaper` (from `first` on) to exit, up to `secs`; the exit codes.
fn wait_all(reaper: &mut Reaper, first: usize, secs: u64, logs: &[PathBuf]) -> Vec<Option<i32>> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut codes = vec![None; reaper.0.len() - first];
    loop {
        let mut running = false;
        for (k, c) in reaper.0[first..].iter_mut().enumerate() {
            match c.try_wait().unwrap() {
                Some(status) => codes[k] = Some(status.code().unwrap_or(-1)),
                None => running = true,
            }
        }
        if !running {
            return codes;
        }
        if Instant::now() > deadline {
            let tails: Vec<String> = logs
                .iter()
                .map(|l| std::fs::read_to_string(l).unwrap_or_default())
                .collect();
            panic!("nodes still running after {secs} s; their stderr: {tails:#?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Test 2(b): two processes on localhost joined through Burn's global orchestrator give the
/// losses of one peer. Needs the vendored burn-collective fix (Cargo.toml `[patch.crates-io]`,
/// vendor/burn-collective.patch): the published 0.21.0's global `SyncService::sync`
/// (src/global/node/sync.rs:71-80) clears a *copy* of the list of nodes that asked to sync, so
/// the second global all-reduce waits forever; the test then fails at `parallel.timeout_s`.
#[test]
fn two_processes_joined_through_the_orchestrator_match_one_peer() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 120_000);
    let runs = dir.path().join("runs");
    let base = |name: &str| -> Vec<String> {
        let mut a = strs(&["train", "--headless", "--max-steps", &STEPS.to_string()]);
        a.extend(tiny_flags(&corpus));
        a.extend(strs(&[
            "--runs-dir",
            runs.to_str().unwrap(),
            "--run-name",
            name,
        ]));
        a
    };
    let reference = run_within(&base("single"), 300);
    assert_eq!(reference.code, Some(0), "{}", reference.stderr);

    let port = free_port();
    let mut reaper = Reaper(Vec::new());
    let orch_log = dir.path().join("orchestrator.log");
    reaper.0.push(spawn_quiet(
        &strs(&["orchestrator", "--port", &port.to_string()]),
        &orch_log,
    ));
    let mut logs = Vec::new();
    for rank in 0..2 {
        let mut args = base(&format!("node{rank}"));
        args.extend(strs(&[
            "--nodes",
            "2",
            "--node-rank",
            &rank.to_string(),
            "--orchestrator",
            &format!("ws://127.0.0.1:{port}"),
            "--set",
            &format!("parallel.node_address=ws://127.0.0.1:{}", free_port()),
            "--set",
            "parallel.timeout_s=20",
        ]));
        let log = dir.path().join(format!("node{rank}.log"));
        reaper.0.push(spawn_quiet(&args, &log));
        logs.push(log);
    }
    let codes = wait_all(&mut reaper, 1, 60, &logs);
    let tail = |l: &Path| std::fs::read_to_string(l).unwrap_or_default();
    assert_eq!(
        codes,
        vec![Some(0), Some(0)],
        "node0: {} node1: {}",
        tail(&logs[0]),
        tail(&logs[1])
    );

    let single = losses_of(&runs.join("single"));
    let node0 = losses_of(&runs.join("node0"));
    let node1 = losses_of(&runs.join("node1"));
    assert_eq!(single.len(), STEPS as usize);
    assert_close(&single, &node0, "1 process x 4 rows vs 2 nodes x 2 rows");
    assert_eq!(
        node0, node1,
        "both nodes hold identical replicas and see the same loss"
    );
    // Node 0 checkpoints for the run; node 1 holds a replica only.
    assert!(
        llite_tui::store::listing::list_checkpoints(&runs.join("node0"))
            .iter()
            .any(|c| c.step == STEPS && c.error.is_none())
    );
    assert!(llite_tui::store::listing::list_checkpoints(&runs.join("node1")).is_empty());
}

#[test]
fn a_two_peer_run_killed_and_resumed_continues_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 120_000);
    let runs = dir.path().join("runs");
    let base = |name: &str, extra: &[&str]| -> Vec<String> {
        let mut a = strs(&[
            "train",
            "--headless",
            "--max-steps",
            &STEPS.to_string(),
            "--peers",
            "2",
        ]);
        a.extend(tiny_flags_with(
            &corpus,
            &["checkpoint.every=5", "checkpoint.keep_last=0"],
        ));
        a.extend(strs(&[
            "--runs-dir",
            runs.to_str().unwrap(),
            "--run-name",
            name,
        ]));
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let straight = run_within(&base("straight", &[]), 300);
    assert_eq!(straight.code, Some(0), "{}", straight.stderr);
    let expected = losses_of(&runs.join("straight"));
    assert_eq!(expected.len(), STEPS as usize);

    // Kill -9 once step 12 is logged (checkpoint 10 is then complete), wherever it is.
    let killed = runs.join("killed");
    let log = dir.path().join("killed.log");
    let mut reaper = Reaper(vec![spawn_quiet(&base("killed", &[]), &log)]);
    let deadline = Instant::now() + Duration::from_secs(300);
    while losses_of(&killed).last().is_none_or(|(s, _)| *s < 12) {
        assert!(
            reaper.0[0].try_wait().unwrap().is_none(),
            "the run ended before it could be killed: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(Instant::now() < deadline, "no step 12 in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    reaper.0[0].kill().unwrap();
    reaper.0[0].wait().unwrap();

    let resumed = run_within(
        &strs(&[
            "train",
            "--headless",
            "--resume",
            killed.join("latest").to_str().unwrap(),
        ]),
        300,
    );
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    // Bit for bit: the same peers, the same sums in the same order.
    assert_eq!(
        losses_of(&killed),
        expected,
        "killed at step >= 12 and resumed"
    );

    // The same checkpoint resumed with one peer: exact by construction (the global batch and
    // its order never depend on the peer count), up to float summation order.
    let ckpt = killed.join("checkpoints").join("step-00000010");
    let one = run_within(
        &strs(&[
            "train",
            "--headless",
            "--resume",
            ckpt.to_str().unwrap(),
            "--peers",
            "1",
            "--run-name",
            "one-peer-branch",
        ]),
        300,
    );
    assert_eq!(one.code, Some(0), "{}", one.stderr);
    let branch: Vec<(u64, f64)> = losses_of(&runs.join("one-peer-branch"))
        .into_iter()
        .filter(|(s, _)| *s > 10)
        .collect();
    assert_close(
        &branch,
        &expected[10..],
        "2-peer checkpoint resumed by 1 peer",
    );
}
