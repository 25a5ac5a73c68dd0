//! Lean loading and model directories, on the real binary: a Hugging Face directory (bf16,
//! sharded) is sampled, evaluated, exported and fine-tuned from directly, read-only, with the
//! same results as after an `import`; an import writes no moments and a resume starts them at
//! zero with a notice; sampling never reads the moments, a resume still verifies them.

mod common;
use common::*;
use llite_tui::config::ModelConfig;
use llite_tui::data::corpus::Document;
use llite_tui::data::tokenizer::TextTokenizer;
use safetensors::tensor::{Dtype, TensorView};
use std::path::{Path, PathBuf};

fn model() -> ModelConfig {
    ModelConfig {
        vocab_size: 320,
        d_model: 32,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads: 2,
        ff_dim: 64,
        max_seq_len: 128,
        tie_embeddings: true,
        ..ModelConfig::default()
    }
}

/// A synthetic transformers-style model directory: `config.json`, a BPE `tokenizer.json`
/// trained on a slice of the corpus, and bf16 weights in two shards with an index.
fn synthetic_hf_dir(root: &Path) -> PathBuf {
    let dir = root.join("hf-model");
    std::fs::create_dir_all(&dir).unwrap();
    let text = &llite_tui::data::corpus::BUILTIN_SHAKESPEARE[..40_000];
    let docs = [Document {
        name: "slice".into(),
        text: text.into(),
    }];
    let tok = TextTokenizer::train_bpe(&docs, 300).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tok.to_json_string().unwrap()).unwrap();
    let m = model();
    let mut config = llite_tui::store::hf_layout::config_json(&m, tok.eot_id());
    config["torch_dtype"] = "bfloat16".into();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();

    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let expected = llite_tui::store::structure::expected_weights(&m);
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = expected
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let norm = shape.len() == 1;
            let data: Vec<u8> = (0..n)
                .map(|_| {
                    if norm {
                        1.0 + 0.1 * next()
                    } else {
                        0.2 * next()
                    }
                })
                .flat_map(|v| half::bf16::from_f32(v).to_le_bytes())
                .collect();
            (name, shape, data)
        })
        .collect();
    let mut weight_map = serde_json::Map::new();
    for (i, part) in bytes.chunks(bytes.len().div_ceil(2)).enumerate() {
        let file = format!("model-{:05}-of-00002.safetensors", i + 1);
        let views: Vec<(String, TensorView<'_>)> = part
            .iter()
            .map(|(n, s, d)| {
                (
                    n.clone(),
                    TensorView::new(Dtype::BF16, s.clone(), d).unwrap(),
                )
            })
            .collect();
        for (n, _) in &views {
            weight_map.insert(n.clone(), file.clone().into());
        }
        let out = safetensors::serialize(views, None).unwrap();
        std::fs::write(dir.join(&file), out).unwrap();
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    dir
}

fn ok(out: &Outcome, what: &str) {
    assert_eq!(out.code, Some(0), "{what}: {}{}", out.stdout, out.stderr);
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn sample_args(model: &Path) -> Vec<String> {
    strs(&[
        "sample",
        "--checkpoint",
        s(model),
        "--prompt",
        "KING HENRY",
        "--max-tokens",
        "12",
        "--temperature",
        "0",
    ])
}

/// A headless run of two small steps into `runs`, started as `start` says (`--finetune DIR`
/// or `--resume CKPT`, with what goes with it).
fn two_small_steps(runs: &Path, start: &[&str]) -> Vec<String> {
    let mut args = headless_args(runs, start);
    args.extend(strs(&["--max-steps", "2"]));
    for setting in [
        "train.batch_size=2",
        "train.seq_len=32",
        "train.eval_every=0",
    ] {
        args.extend(strs(&["--set", setting]));
    }
    args
}

#[test]
fn an_hf_directory_is_sampled_evaluated_exported_and_fine_tuned_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let hf = synthetic_hf_dir(tmp.path());
    let before = snapshot(&hf);

    // The same model through `import`, for reference: every direct use must agree with it.
    let imported = tmp.path().join("imported");
    ok(
        &run_within(&["import", "--hf", s(&hf), "--out", s(&imported)], 60),
        "import",
    );

    // The cockpit's browser lists it (and not the checkpoint beside it), loadable.
    let listed = llite_tui::interop::model_dir::list_hf_dirs(tmp.path());
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].path, hf.display().to_string());
    assert_eq!(listed[0].error, None);

    let direct = run_within(&sample_args(&hf), 60);
    ok(&direct, "sample HF_DIR");
    assert!(direct.stdout.starts_with("KING HENRY"), "{}", direct.stdout);
    assert!(
        direct.stderr.contains("Hugging Face model directory"),
        "{}",
        direct.stderr
    );
    let via_import = run_within(&sample_args(&imported), 60);
    ok(&via_import, "sample imported");
    assert_eq!(direct.stdout, via_import.stdout);

    let task = tmp.path().join("notes.txt");
    std::fs::write(
        &task,
        &llite_tui::data::corpus::BUILTIN_SHAKESPEARE[50_000..54_000],
    )
    .unwrap();
    let score = |m: &Path| {
        let out = run_within(&["eval", "--checkpoint", s(m), "--task", s(&task)], 60);
        ok(&out, "eval");
        // "notes at step 0: ppl X, ... (T s)": everything but the timing.
        out.stdout.split(" (").next().unwrap().to_string()
    };
    let direct_score = score(&hf);
    assert!(direct_score.contains("notes at step 0:"), "{direct_score}");
    assert_eq!(direct_score, score(&imported));

    // Export straight from the HF directory: one f32 file that imports to the same weights.
    let exported = tmp.path().join("exported");
    ok(
        &run_within(
            &["export", "--checkpoint", s(&hf), "--out", s(&exported)],
            60,
        ),
        "export HF_DIR",
    );
    let again = tmp.path().join("again");
    ok(
        &run_within(&["import", "--hf", s(&exported), "--out", s(&again)], 60),
        "import of the export",
    );
    assert_eq!(
        std::fs::read(imported.join("model.safetensors")).unwrap(),
        std::fs::read(again.join("model.safetensors")).unwrap(),
        "HF_DIR -> export -> import changed the weights"
    );

    // Fine-tune from the HF directory without an import.
    let corpus = small_corpus(tmp.path(), 60_000);
    let runs = tmp.path().join("runs");
    let start = [
        "--finetune",
        s(&hf),
        "--data",
        s(&corpus),
        "--run-name",
        "ft",
    ];
    let out = run_within(&two_small_steps(&runs, &start), 120);
    ok(&out, "train --finetune HF_DIR");
    let ckpt = llite_tui::store::listing::latest_valid_checkpoint(&runs.join("ft"))
        .expect("the fine-tune saved a checkpoint");
    let state = llite_tui::store::trainer_state::read_trainer_state(&ckpt).unwrap();
    assert_eq!(state.step, 2);
    assert_eq!(state.parent.as_deref(), Some(s(&hf)));

    // Resuming it is refused with the way out; nothing above wrote into the HF directory.
    let out = run_within(&headless_args(&runs, &["--resume", s(&hf)]), 60);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("--finetune"), "{}", out.stderr);
    assert_eq!(
        snapshot(&hf),
        before,
        "a command wrote into the HF directory"
    );
}

#[test]
fn an_import_has_no_moments_and_a_resume_starts_them_with_a_notice() {
    let tmp = tempfile::tempdir().unwrap();
    let hf = synthetic_hf_dir(tmp.path());
    let ckpt = tmp.path().join("imported");
    ok(
        &run_within(&["import", "--hf", s(&hf), "--out", s(&ckpt)], 60),
        "import",
    );
    assert!(!ckpt.join("optimizer.safetensors").exists());
    let trainer: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ckpt.join("trainer.json")).unwrap()).unwrap();
    assert_eq!(trainer["optimizer_state"], "absent");
    assert!(trainer["files"].get("optimizer.safetensors").is_none());

    let corpus = small_corpus(tmp.path(), 60_000);
    let runs = tmp.path().join("runs");
    let data = format!("data.corpus={}", corpus.display());
    let out = run_within(
        &two_small_steps(&runs, &["--resume", s(&ckpt), "--set", &data]),
        120,
    );
    ok(&out, "resume of an import");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("no AdamW moments saved") && all.contains("starts them at zero"),
        "{all}"
    );
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let resumed = llite_tui::store::listing::latest_valid_checkpoint(&run).unwrap();
    let state = llite_tui::store::trainer_state::read_trainer_state(&resumed).unwrap();
    assert_eq!(state.step, 2);
    assert_eq!(
        state.optimizer_state,
        llite_tui::store::trainer_state::OptimizerState::Present
    );
    assert!(resumed.join("optimizer.safetensors").is_file());
}

#[test]
fn sampling_never_reads_the_moments_but_a_resume_verifies_them() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = small_corpus(tmp.path(), 150_000);
    let runs = tmp.path().join("runs");
    let mut a = headless_args(&runs, &["--max-steps", "2", "--run-name", "r"]);
    a.extend(tiny_flags(&corpus));
    ok(&run_within(&a, 120), "train");
    let ckpt = llite_tui::store::listing::latest_valid_checkpoint(&runs.join("r")).unwrap();

    // A flipped bit in the moments' data: the cheap checks pass (header and size intact).
    let opt = ckpt.join("optimizer.safetensors");
    let mut bytes = std::fs::read(&opt).unwrap();
    let at = bytes.len() - 5;
    bytes[at] ^= 0x10;
    std::fs::write(&opt, &bytes).unwrap();
    let out = run_within(&sample_args(&ckpt), 60);
    ok(&out, "sample with corrupt moments");
    assert!(out.stdout.starts_with("KING HENRY"), "{}", out.stdout);

    let resume = headless_args(&runs, &["--resume", s(&ckpt), "--max-steps", "4"]);
    let out = run_within(&resume, 60);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("optimizer.safetensors: blake3 digest mismatch"),
        "{}",
        out.stderr
    );

    // A checkpoint claiming moments whose file is gone is refused by every reader.
    std::fs::remove_file(&opt).unwrap();
    let out = run_within(&sample_args(&ckpt), 60);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("optimizer.safetensors"),
        "{}",
        out.stderr
    );
}
