//! The memory planner end to end: `info` plans a 1.7B run for a GPU it is not on, says what
//! does not fit and by how much, and `train` refuses a run whose activations do not fit the
//! host, with the numbers, before anything is allocated.

mod common;
use common::*;

fn dmas() -> String {
    format!("{}/configs/dmas-1.7b.toml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn info_plans_a_gpu_run_and_says_whether_it_fits() {
    let one_gpu = run_within(
        &[
            "info",
            "--config",
            &dmas(),
            "--device",
            "cuda",
            "--memory",
            "80GiB",
        ],
        30,
    );
    assert_eq!(one_gpu.code, Some(0), "{}", one_gpu.stderr);
    assert!(
        one_gpu.stdout.contains(
            "model state: weights 6.39 GiB + grads 6.39 GiB + AdamW moments 12.79 GiB = 25.57 GiB"
        ),
        "{}",
        one_gpu.stdout
    );
    assert!(
        one_gpu
            .stdout
            .contains("does not fit: cuda (--memory) has 80.00 GiB, short by"),
        "{}",
        one_gpu.stdout
    );
    let small_batch = run_within(
        &[
            "info",
            "--config",
            &dmas(),
            "--device",
            "cuda:3",
            "--memory",
            "80GiB",
            "--set",
            "train.batch_size=2",
        ],
        30,
    );
    assert!(
        small_batch.stdout.contains("2 rows x 1024 tokens"),
        "{}",
        small_batch.stdout
    );
    assert!(
        small_batch
            .stdout
            .contains("fits: cuda:3 (--memory) has 80.00 GiB"),
        "{}",
        small_batch.stdout
    );
    let unknown = run_within(&["info", "--config", &dmas(), "--device", "cuda"], 30);
    assert!(
        unknown
            .stdout
            .contains("fit unknown: cuda: memory not queried"),
        "{}",
        unknown.stdout
    );
}

#[test]
fn info_refuses_bad_devices_and_sizes_in_one_line() {
    for (args, needle) in [
        (
            vec!["info", "--device", "tpu"],
            "--device tpu: expected cpu, cuda or cuda:N",
        ),
        (
            vec!["info", "--memory", "lots"],
            "--memory lots: expected a size",
        ),
    ] {
        let out = run_within(&args, 30);
        assert_ne!(out.code, Some(0));
        assert!(out.stderr.contains(needle), "{}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    }
}

/// A tiny model with a batch whose activations need several GiB: refused up front with both
/// parts of the plan named, and nothing created in the runs directory.
#[test]
fn train_refuses_a_batch_whose_activations_do_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 20_000);
    let runs = dir.path().join("runs");
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["train", "--headless"])
        .args(tiny_flags_with(&corpus, &["train.batch_size=8192"]))
        .args(["--runs-dir".as_ref(), runs.as_os_str()])
        .env("LLITE_MEM_AVAILABLE", (2u64 << 30).to_string());
    let out = output_within(cmd, 60, "train with a huge batch");
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("activations and logits")
            && out.stderr.contains("8192 rows x")
            && out.stderr.contains("this machine has 2.00 GiB available"),
        "{}",
        out.stderr
    );
    let made = std::fs::read_dir(&runs)
        .map(|d| d.flatten().count())
        .unwrap_or(0);
    assert_eq!(
        made,
        0,
        "a refused run left something in {}",
        runs.display()
    );
}
