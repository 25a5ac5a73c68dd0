//! Corruption is detected: a flipped bit, swapped, missing or mis-shaped tensors, NaN weights,
//! special files in a checkpoint and format-1 checkpoints, each against `ckpt ls` (cheap and
//! `--verify`), `store::checkpoint::load` and the real binary's `sample`, `export`, `eval` and
//! `--resume`: refused with one line naming the file, nothing hangs, nothing is modified.

mod common;
use common::{copy_dir, run_within, snapshot, tiny_flags_with, Outcome};
use llite_tui::store::checkpoint::load;
use llite_tui::store::digest::FileDigest;
use llite_tui::store::safetensors_io::{read_file, write_file_synced, OutTensor};
use llite_tui::store::trainer_state::{read_trainer_record, trainer_json};
use llite_tui::store::NamedTensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const STEP: &str = "checkpoints/step-00000002";

/// One trained run (2 steps, one checkpoint), made once and copied by every test.
fn base_run() -> &'static Path {
    static BASE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, run) = BASE.get_or_init(|| {
        // Under the target's tmp dir: a static is never dropped, so keep the leftover there.
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let corpus = common::small_corpus(dir.path(), 60_000);
        let runs = dir.path().join("runs");
        let mut a = vec![
            "train".to_string(),
            "--headless".into(),
            "--max-steps".into(),
            "2".into(),
            "--runs-dir".into(),
            runs.display().to_string(),
            "--run-name".into(),
            "base".into(),
        ];
        a.extend(tiny_flags_with(
            &corpus,
            &[
                "train.batch_size=2",
                "train.seq_len=16",
                "train.eval_every=100",
                "checkpoint.every=2",
            ],
        ));
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = run_within(&refs, 300);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let run_dir = runs.join("base");
        assert!(run_dir.join(STEP).join("trainer.json").is_file());
        (dir, run_dir)
    });
    run
}

/// A private copy of the base run under `<tmp>/runs/r`, for one test to damage.
fn copy_run(tmp: &Path) -> PathBuf {
    let dst = tmp.join("runs").join("r");
    copy_dir(base_run(), &dst);
    dst
}

fn flip_bit(path: &Path, offset_from_end: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = bytes.len() - 1 - offset_from_end;
    bytes[i] ^= 0x04;
    std::fs::write(path, bytes).unwrap();
}

/// Assert a one-line `error:` naming `file` and `reason`, non-zero exit.
fn assert_refused(out: &Outcome, file: &str, reason: &str) {
    assert_ne!(out.code, Some(0), "accepted: {}{}", out.stdout, out.stderr);
    assert!(out.code.is_some(), "killed by a signal: {}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    let last = lines.last().copied().unwrap_or("");
    assert!(
        last.starts_with("error: ") && last.contains(file) && last.contains(reason),
        "want one line naming {file} ({reason}), got: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

/// Replace a checkpoint's tensor file and record consistent digests for it, as a buggy or
/// hostile writer would: only the structural checks can catch what is wrong.
fn rewrite_with_digests(ckpt: &Path, file: &str, tensors: &[NamedTensor]) {
    let path = ckpt.join(file);
    let out: Vec<OutTensor> = tensors.iter().map(OutTensor::borrowed).collect();
    let digest = write_file_synced(&path, &out, None).unwrap();
    let mut record = read_trainer_record(ckpt).unwrap();
    let mut files = record.files.take().unwrap();
    files.insert(file.to_string(), digest);
    rerecord(ckpt, &record.state, &files);
}

fn rerecord(
    ckpt: &Path,
    state: &llite_tui::store::trainer_state::TrainerState,
    files: &BTreeMap<String, FileDigest>,
) {
    std::fs::write(
        ckpt.join("trainer.json"),
        trainer_json(state, files).unwrap(),
    )
    .unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_fresh_checkpoint_records_digests_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = copy_run(tmp.path());
    let ckpt = run_dir.join(STEP);
    let record = read_trainer_record(&ckpt).unwrap();
    assert_eq!(
        record.state.format_version,
        llite_tui::store::layout::CHECKPOINT_FORMAT_VERSION
    );
    let files = record.files.expect("format 2 records digests");
    for f in [
        "model.safetensors",
        "optimizer.safetensors",
        "config.json",
        "tokenizer.json",
    ] {
        let bytes = std::fs::read(ckpt.join(f)).unwrap();
        assert_eq!(files[f], FileDigest::of_bytes(&bytes), "{f}");
    }
    assert!(load(&ckpt).unwrap().digests_verified);
    let out = run_within(&["ckpt", "ls", "--verify", s(&run_dir)], 60);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("ok, digests verified"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("MiB/s"), "{}", out.stdout);
}

#[test]
fn a_flipped_bit_in_the_weights_passes_the_cheap_check_but_nothing_loads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = copy_run(tmp.path());
    let ckpt = run_dir.join(STEP);
    flip_bit(&ckpt.join("model.safetensors"), 100);
    let before = snapshot(tmp.path());

    let out = run_within(&["ckpt", "ls", s(&run_dir)], 60);
    assert_eq!(
        out.code,
        Some(0),
        "cheap check: {}{}",
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.contains(" ok"), "{}", out.stdout);

    let out = run_within(&["ckpt", "ls", "--verify", s(&run_dir)], 60);
    assert!(
        out.stdout.contains("INVALID") && out.stdout.contains("blake3 digest mismatch"),
        "{}",
        out.stdout
    );
    assert_refused(&out, "checkpoints", "1 of 1 checkpoints");

    let e = format!("{:#}", load(&ckpt).err().expect("load refuses"));
    assert!(
        e.contains("model.safetensors: blake3 digest mismatch: the file is corrupt"),
        "{e}"
    );
    let reason = "blake3 digest mismatch";
    let out = run_within(&["sample", "--checkpoint", s(&ckpt), "--prompt", "a"], 60);
    assert_refused(&out, "model.safetensors", reason);
    let hf = tmp.path().join("hf");
    let out = run_within(&["export", "--checkpoint", s(&ckpt), "--out", s(&hf)], 60);
    assert_refused(&out, "model.safetensors", reason);
    assert!(!hf.exists(), "export wrote {}", hf.display());
    let task = tmp.path().join("task.txt");
    std::fs::write(&task, "some text to score for perplexity. ".repeat(20)).unwrap();
    let out = run_within(&["eval", "--checkpoint", s(&ckpt), "--task", s(&task)], 60);
    assert_refused(&out, "model.safetensors", reason);
    let runs = tmp.path().join("runs");
    let out = run_within(
        &[
            "train",
            "--headless",
            "--resume",
            s(&ckpt),
            "--max-steps",
            "4",
            "--runs-dir",
            s(&runs),
        ],
        60,
    );
    assert_refused(&out, "model.safetensors", reason);

    std::fs::remove_file(&task).unwrap();
    assert_eq!(snapshot(tmp.path()), before, "a refusal modified files");
}

#[test]
fn a_flipped_bit_in_trainer_json_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = copy_run(tmp.path());
    let ckpt = run_dir.join(STEP);
    let path = ckpt.join("trainer.json");
    let text = std::fs::read_to_string(&path).unwrap();
    // "step": 2 -> "step": 6: still valid JSON, a plausible but false state.
    let at = text.find("\"step\": 2").unwrap() + "\"step\": ".len();
    let mut bytes = text.into_bytes();
    bytes[at] ^= 0x04;
    std::fs::write(&path, bytes).unwrap();

    let e = format!("{:#}", load(&ckpt).err().expect("load refuses"));
    assert!(e.contains("trainer.json: blake3 digest mismatch"), "{e}");
    let out = run_within(&["ckpt", "ls", s(&run_dir)], 60);
    assert!(out.stdout.contains("INVALID"), "{}", out.stdout);
    assert_refused(&out, "checkpoints", "invalid");
    let out = run_within(&["sample", "--checkpoint", s(&ckpt)], 60);
    assert_refused(&out, "trainer.json", "blake3 digest mismatch");
}

#[test]
fn swapped_tensor_names_of_one_shape_are_caught_by_the_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = copy_run(tmp.path());
    let ckpt = run_dir.join(STEP);
    let path = ckpt.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[8..8 + n].to_vec()).unwrap();
    let swapped = header
        .replace("layers.0.self_attn.q_proj", "layers.0.self_attn.X_proj")
        .replace("layers.0.self_attn.o_proj", "layers.0.self_attn.q_proj")
        .replace("layers.0.self_attn.X_proj", "layers.0.self_attn.o_proj");
    assert_ne!(swapped, header);
    bytes[8..8 + n].copy_from_slice(swapped.as_bytes());
    std::fs::write(&path, bytes).unwrap();

    let out = run_within(&["ckpt", "ls", s(&run_dir)], 60);
    assert_eq!(
        out.code,
        Some(0),
        "names and shapes still fit: {}",
        out.stdout
    );
    let out = run_within(&["ckpt", "ls", "--verify", s(&run_dir)], 60);
    assert!(
        out.stdout.contains("blake3 digest mismatch"),
        "{}",
        out.stdout
    );
    let e = format!("{:#}", load(&ckpt).err().expect("load refuses"));
    assert!(
        e.contains("model.safetensors: blake3 digest mismatch"),
        "{e}"
    );
}

#[test]
fn missing_and_mis_shaped_tensors_are_caught_by_the_cheap_check() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = copy_run(tmp.path());
    let ckpt = run_dir.join(STEP);
    let weights = read_file(&ckpt.join("model.safetensors")).unwrap();

    // A tensor dropped, digests consistent: named as missing.
    let fewer: Vec<NamedTensor> = weights
        .iter()
        .filter(|t| t.name != "model.layers.1.mlp.up_proj.weight")
        .cloned()
        .collect();
    rewrite_with_digests(&ckpt, "model.safetensors", &fewer);
    let out = run_within(&["ckpt", "ls", s(&run_dir)], 60);
    assert!(
        out.stdout.contains("INVALID")
            && out
                .stdout
                .contains("`model.layers.1.mlp.up_proj.weight` is missing"),
        "{}",
        out.stdout
    );
    assert_refused(&out, "checkpoints", "invalid");
    let e = format!("{:#}", load(&ckpt).err().unwrap());
    assert!(
        e.contains("model.safetensors") && e.contains("missing"),
        "{e}"
    );

    // A tensor of the wrong shape (same element count), digests consistent.
    let mut reshaped = weights.clone();
    let t = reshaped
        .iter_mut()
        .find(|t| t.name == "model.layers.0.self_attn.k_proj.weight")
        .unwrap();
    t.shape.reverse();
    rewrite_with_digests(&ckpt, "model.safetensors", &reshaped);
    let out = run_within(&["ckpt", "ls", s(&run_dir)], 60);
    assert!(
        out.stdout
            .contains("`model.layers.0.self_attn.k_proj.weight` has shape [64, 32]"),
        "{}",
        out.stdout
    );

    // A stranger tensor.
    let mut extra = weights.clone();
    extra.push(NamedTensor {
        name: "model.layers.7.mlp.up_proj.weight".into(),
        shape: vec![1],
        data: vec![0.0],
    });
    rewrite_with_digests(&ckpt, "model.safetensors", &extra);
    let e = format!("{:#}", load(&ckpt).err().unwrap());
    assert!(e.contains("unexpected tensor `model.layers.7"), "{e}");

    // Truncated moments without re-recording: the size check names the file.
    rewrite_with_digests(&ckpt, "model.safetensors", &weights);
    assert!(load(&ckpt).is_ok());
    let opt = ckpt.join("optimizer.safetensors");
    let bytes = std::fs::read(&opt).unwrap();
    std::fs::write(&opt, &bytes[..bytes.len() - 4]).unwrap();
    let e = format!("{:#}", load(&ckpt).err().unwrap());
    assert!(e.contains("optimizer.safetensors"), "{e}");
}

#[test]
fn nan_weights_are_refused_on_load_naming_the_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = copy_run(tmp.path());
    let ckpt = run_dir.join(STEP);
    let mut weights = read_file(&ckpt.join("model.safetensors")).unwrap();
    let norm = weights
        .iter_mut()
        .find(|t| t.name == "model.norm.weight")
        .unwrap();
    norm.data[3] = f32::NAN;
    rewrite_with_digests(&ckpt, "model.safetensors", &weights);

    // The file is intact as written: digests verify; only the load refuses its content.
    let out = run_within(&["ckpt", "ls", "--verify", s(&run_dir)], 60);
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    let e = format!("{:#}", load(&ckpt).err().unwrap());
    assert!(
        e.contains("model.safetensors: tensor `model.norm.weight` holds NaN"),
        "{e}"
    );
    let out = run_within(&["sample", "--checkpoint", s(&ckpt)], 60);
    assert_refused(&out, "model.norm.weight", "NaN");

    // Inf in a moment likewise.
    let mut moments = read_file(&ckpt.join("optimizer.safetensors")).unwrap();
    moments[0].data[0] = f32::INFINITY;
    let name = moments[0].name.clone();
    rewrite_with_digests(&ckpt, "model.safetensors", &{
        let mut w = weights.clone();
        w.iter_mut()
            .find(|t| t.name == "model.norm.weight")
            .unwrap()
            .data[3] = 1.0;
        w
    });
    rewrite_with_digests(&ckpt, "optimizer.safetensors", &moments);
    // Moments are read only when a resume asks for them, and refused then.
    let loaded = load(&ckpt).expect("weights are fine; moments are not read by load");
    let e = format!("{:#}", loaded.read_moments().err().unwrap());
    assert!(e.contains(&format!("`{name}` holds inf")), "{e}");
}

#[cfg(unix)]
#[test]
fn special_files_in_a_checkpoint_never_hang_a_listing_or_a_load() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = copy_run(tmp.path());
    let ckpt = run_dir.join(STEP);
    // A second checkpoint whose trainer.json is a FIFO nobody writes to.
    let fifo_ckpt = run_dir.join("checkpoints/step-00000004");
    copy_dir(&ckpt, &fifo_ckpt);
    let trainer = fifo_ckpt.join("trainer.json");
    std::fs::remove_file(&trainer).unwrap();
    common::mkfifo(&trainer);
    // And the first checkpoint's weights a symlink to /dev/zero.
    let model = ckpt.join("model.safetensors");
    std::fs::remove_file(&model).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &model).unwrap();

    let started = Instant::now();
    for verify in [false, true] {
        let mut a = vec!["ckpt", "ls", s(&run_dir)];
        if verify {
            a.push("--verify");
        }
        let out = run_within(&a, 20);
        assert_eq!(out.stdout.matches("INVALID").count(), 2, "{}", out.stdout);
        assert!(out.stdout.contains("a FIFO"), "{}", out.stdout);
        assert!(out.stdout.contains("a character device"), "{}", out.stdout);
        assert_refused(&out, "checkpoints", "2 of 2");
    }
    let e = format!("{:#}", load(&fifo_ckpt).err().unwrap());
    assert!(
        e.contains("trainer.json: not a regular file (a FIFO)"),
        "{e}"
    );
    let e = format!("{:#}", load(&ckpt).err().unwrap());
    assert!(
        e.contains("model.safetensors: not a regular file (a character device)"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_format_1_checkpoint_without_digests_still_loads_with_a_notice() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = copy_run(tmp.path());
    let ckpt = run_dir.join(STEP);
    let path = ckpt.join("trainer.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let obj = v.as_object_mut().unwrap();
    obj.remove("files");
    obj.remove("trainer_blake3");
    obj.insert("format_version".into(), 1.into());
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();

    let loaded = load(&ckpt).unwrap();
    assert!(!loaded.digests_verified);
    assert!(loaded
        .notice()
        .unwrap()
        .contains("written before digests; not verified"));
    let out = run_within(&["ckpt", "ls", "--verify", s(&run_dir)], 60);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("ok (written before digests; not verified)"),
        "{}",
        out.stdout
    );
    let out = run_within(
        &["sample", "--checkpoint", s(&ckpt), "--max-tokens", "3"],
        60,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("written before digests"),
        "{}",
        out.stderr
    );

    // Claiming format 2 without digests is refused: digests cannot be stripped silently.
    v.as_object_mut()
        .unwrap()
        .insert("format_version".into(), 2.into());
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let e = format!("{:#}", load(&ckpt).err().unwrap());
    assert!(e.contains("trainer.json: format 2 but no digest"), "{e}");
}

#[test]
fn ckpt_ls_of_a_runs_root_or_a_checkpoint_says_what_to_list() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = copy_run(tmp.path());
    let runs = tmp.path().join("runs");
    // A runs root lists each run's checkpoints.
    let out = run_within(&["ckpt", "ls", s(&runs)], 30);
    let stdout = &out.stdout;
    assert_eq!(out.code, Some(0), "{stdout}\n{}", out.stderr);
    assert!(stdout.contains(&format!("{} (", s(&run_dir))), "{stdout}");
    assert!(stdout.contains("step-00000002"), "{stdout}");
    let out = run_within(&["ckpt", "ls", s(&run_dir.join(STEP))], 30);
    assert_refused(&out, "is a checkpoint", s(&run_dir));
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = run_within(&["ckpt", "ls", s(&empty)], 30);
    assert_refused(&out, "empty", "not a run directory");
}
