//! Metrics where users already look: TensorBoard event files beside `metrics.jsonl`
//! (`[log] tensorboard`) and `metrics export --csv`.

mod common;
use common::*;
use llite_tui::store::tfevents::masked_crc32c;
use std::path::{Path, PathBuf};

/// Train a few steps headless into `runs/name` with `extra` flags.
fn train(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let corpus = small_corpus(dir, 40_000);
    let runs = dir.join("runs");
    let mut args = strs(&["train", "--headless", "--runs-dir", runs.to_str().unwrap()]);
    args.extend(strs(&["--run-name", name, "--max-steps", "12"]));
    args.extend(tiny_flags(&corpus));
    args.extend(strs(&["--set", "train.eval_every=4"]));
    args.extend(strs(extra));
    let out = run_within(&args, 300);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    runs.join(name)
}

/// The payloads of a tfevents file, each record's two masked CRCs checked.
fn records(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len_bytes = &bytes[at..at + 8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let len_crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        assert_eq!(len_crc, masked_crc32c(len_bytes), "length CRC at {at}");
        let payload = &bytes[at + 12..at + 12 + len];
        let crc = u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
        assert_eq!(crc, masked_crc32c(payload), "payload CRC at {at}");
        out.push(payload.to_vec());
        at += 16 + len;
    }
    out
}

fn event_files(run_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(run_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .collect()
}

#[test]
fn tensorboard_events_are_written_only_when_asked_one_record_per_scalar_event() {
    let dir = tempfile::tempdir().unwrap();
    let plain = train(dir.path(), "plain", &[]);
    assert!(event_files(&plain).is_empty(), "opt-in only");

    let run = train(dir.path(), "tb", &["--set", "log.tensorboard=true"]);
    let files = event_files(&run);
    assert_eq!(files.len(), 1, "{files:?}");
    let recs = records(&std::fs::read(&files[0]).unwrap());
    let log = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let count = |kind: &str| log.matches(&format!("\"event\":\"{kind}\"")).count();
    let (steps, evals) = (count("step"), count("eval"));
    assert_eq!(steps, 12);
    assert!(evals >= 3, "{log}");
    // The version header, then one record per step and per eval.
    assert_eq!(recs.len(), 1 + steps + evals);
    assert!(recs[0].windows(13).any(|w| w == b"brain.Event:2"));
    assert!(recs[1].windows(10).any(|w| w == b"train/loss"));
    let val = recs
        .iter()
        .filter(|r| r.windows(8).any(|w| w == b"val/loss"))
        .count();
    assert_eq!(val, evals);
}

#[test]
fn metrics_export_csv_writes_one_row_per_step_and_never_clobbers() {
    let dir = tempfile::tempdir().unwrap();
    let run = train(dir.path(), "csv", &[]);
    let run_s = run.to_str().unwrap();
    let out = run_within(&["metrics", "export", "--csv", run_s], 60);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let csv_path = run.join("metrics.csv");
    let text = std::fs::read_to_string(&csv_path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "step,tokens,time,elapsed_s,train_loss,val_loss,lr,grad_norm,tokens_per_s,step_ms"
    );
    assert_eq!(lines.len(), 1 + 12);
    // Row values are metrics.jsonl's, byte for byte as serde prints them.
    let losses = metrics_step_losses(&run.join("metrics.jsonl"));
    for (row, (step, loss)) in lines[1..].iter().zip(&losses) {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells.len(), 10, "{row}");
        assert_eq!(cells[0], step.to_string());
        assert_eq!(cells[4].parse::<f64>().unwrap(), *loss);
        let val_expected = step % 4 == 0;
        assert_eq!(!cells[5].is_empty(), val_expected, "{row}");
    }

    // An existing file is refused (and left as it was) unless --force.
    std::fs::write(&csv_path, "mine").unwrap();
    let again = run_within(&["metrics", "export", "--csv", run_s], 60);
    assert_eq!(again.code, Some(1));
    assert!(
        again.stderr.contains(&csv_path.display().to_string()) && again.stderr.contains("--force"),
        "{}",
        again.stderr
    );
    assert_eq!(std::fs::read_to_string(&csv_path).unwrap(), "mine");
    let forced = run_within(&["metrics", "export", "--csv", run_s, "--force"], 60);
    assert_eq!(forced.code, Some(0), "{}", forced.stderr);
    assert_eq!(std::fs::read_to_string(&csv_path).unwrap(), text);

    // --out elsewhere; no temporaries left behind.
    let elsewhere = dir.path().join("export.csv");
    let out = run_within(
        &[
            "metrics",
            "export",
            "--csv",
            run_s,
            "--out",
            elsewhere.to_str().unwrap(),
        ],
        60,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), text);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");

    // Not a run: one error line naming the path.
    let missing = dir.path().join("nope");
    let bad = run_within(
        &["metrics", "export", "--csv", missing.to_str().unwrap()],
        60,
    );
    assert_eq!(bad.code, Some(1));
    assert!(bad.stderr.contains("nope"), "{}", bad.stderr);
}
