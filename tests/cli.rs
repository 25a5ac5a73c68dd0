//! The real binary: headless training, bad input as one-line errors, `ckpt ls`, HF export and
//! import round trip, and SIGKILL at random moments never leaving a torn checkpoint.

mod common;
use common::*;
use llite_tui::model::params::{import_params, tensor_to_vec};
use llite_tui::model::Llama;
use llite_tui::store::listing::{latest_valid_checkpoint, list_checkpoints};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn run(args: &[String]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_input_gives_one_line_errors_and_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().display().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            strs(&[
                "train",
                "--headless",
                "--runs-dir",
                &runs,
                "--set",
                "train.learning_rate=1",
            ]),
            "unknown key `learning_rate`",
        ),
        (
            strs(&[
                "train",
                "--headless",
                "--runs-dir",
                &runs,
                "--set",
                "model.n_heads=3",
            ]),
            "must divide",
        ),
        (
            strs(&[
                "train",
                "--headless",
                "--runs-dir",
                &runs,
                "--set",
                "model.n_kv_heads=3",
            ]),
            "n_kv_heads",
        ),
        (
            strs(&[
                "train",
                "--headless",
                "--runs-dir",
                &runs,
                "--set",
                "data.corpus=/nonexistent/x.txt",
            ]),
            "/nonexistent/x.txt",
        ),
        (
            strs(&["info", "--config", "/nonexistent.toml"]),
            "/nonexistent.toml",
        ),
        (
            strs(&["sample", "--checkpoint", "/nonexistent-ckpt"]),
            "/nonexistent-ckpt",
        ),
    ];
    for (a, needle) in cases {
        let (ok, _, err) = run(&a);
        assert!(!ok, "{a:?} should fail");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{a:?}: expected one line, got {err}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(needle),
            "{a:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn info_prints_the_dmas_parameter_count() {
    let cfg = format!("{}/configs/dmas-1.7b.toml", env!("CARGO_MANIFEST_DIR"));
    let (ok, out, err) = run(&strs(&["info", "--config", &cfg]));
    assert!(ok, "{err}");
    assert!(out.contains("1,716,144,128"), "{out}");
    assert!(out.contains("FLOPs per token"), "{out}");
}

#[test]
fn headless_train_then_ckpt_ls_sample_export_import() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 150_000);
    let runs = dir.path().join("runs");
    let mut a = headless_args(&runs, &["--max-steps", "12", "--run-name", "h"]);
    a.extend(tiny_flags(&corpus));
    // One line per step (the default, --log-every 10, would print steps 1, 10 and 12).
    a.extend(strs(&["--set", "checkpoint.every=6", "--log-every", "1"]));
    let (ok, out, err) = run(&a);
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("step ")).count(),
        12,
        "{out}"
    );
    assert!(out.contains("eval step 10 val_loss"), "{out}");

    let run_dir = runs.join("h");
    let (ok, ls, err) = run(&strs(&["ckpt", "ls", run_dir.to_str().unwrap()]));
    assert!(ok, "{err}");
    assert!(
        ls.contains("step-00000006") && ls.contains("step-00000012") && ls.contains("ok"),
        "{ls}"
    );

    let ckpt = run_dir.join("checkpoints/step-00000012");
    let (ok, text, err) = run(&strs(&[
        "sample",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--prompt",
        "KING",
        "--max-tokens",
        "10",
        "--temperature",
        "0",
    ]));
    assert!(ok, "{err}");
    assert!(
        text.starts_with("KING") && err.contains("tokens/s"),
        "{text} / {err}"
    );

    // Export: HF names and [out, in] shapes, config.json fields.
    let hf = dir.path().join("hf");
    let export = |out: &Path, extra: &[&str]| {
        let mut args = strs(&["export", "--checkpoint", ckpt.to_str().unwrap(), "--out"]);
        args.push(out.display().to_string());
        args.extend(strs(extra));
        run(&args)
    };
    let (ok, _, err) = export(&hf, &[]);
    assert!(ok, "{err}");
    let bytes = std::fs::read(hf.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let shape = |n: &str| st.tensor(n).unwrap().shape().to_vec();
    assert_eq!(shape("model.embed_tokens.weight"), vec![512, 64]);
    assert_eq!(
        shape("model.layers.0.self_attn.q_proj.weight"),
        vec![64, 64]
    );
    assert_eq!(
        shape("model.layers.0.self_attn.k_proj.weight"),
        vec![32, 64]
    );
    assert_eq!(shape("model.layers.1.mlp.gate_proj.weight"), vec![128, 64]);
    assert_eq!(shape("model.layers.1.mlp.down_proj.weight"), vec![64, 128]);
    assert_eq!(
        shape("model.layers.1.post_attention_layernorm.weight"),
        vec![64]
    );
    assert_eq!(shape("model.norm.weight"), vec![64]);
    assert_eq!(st.names().len(), 2 + 2 * 9, "tied: no lm_head.weight");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(hf.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "LlamaForCausalLM");
    assert_eq!(config["num_key_value_heads"], 2);
    assert_eq!(config["tie_word_embeddings"], true);
    assert!(hf.join("tokenizer.json").is_file() && hf.join("tokenizer_config.json").is_file());
    assert_eq!(config["torch_dtype"], "float32", "--dtype defaults to f32");

    // --dtype bf16 halves the weights and says so in config.json.
    let hf16 = dir.path().join("hf-bf16");
    let (ok, _, err) = export(&hf16, &["--dtype", "bf16"]);
    assert!(ok, "{err}");
    let bytes16 = std::fs::read(hf16.join("model.safetensors")).unwrap();
    let st16 = safetensors::SafeTensors::deserialize(&bytes16).unwrap();
    let embed = st16.tensor("model.embed_tokens.weight").unwrap();
    assert_eq!(embed.dtype(), safetensors::Dtype::BF16);
    assert_eq!(embed.shape(), [512, 64]);
    let config16: serde_json::Value =
        serde_json::from_slice(&std::fs::read(hf16.join("config.json")).unwrap()).unwrap();
    assert_eq!(config16["torch_dtype"], "bfloat16");

    // Import gives identical logits.
    let back = dir.path().join("imported");
    let (ok, _, err) = run(&strs(&[
        "import",
        "--hf",
        hf.to_str().unwrap(),
        "--out",
        back.to_str().unwrap(),
    ]));
    assert!(ok, "{err}");
    let logits = |c: &Path| {
        let ck = llite_tui::store::checkpoint::load(c).unwrap();
        let device = Default::default();
        let m = import_params(
            Llama::<burn::backend::Flex>::new(&ck.model_config, 0, &device),
            ck.weights,
        )
        .unwrap();
        let ids: Vec<i64> = (0..20).map(|i| (i * 37 % 512) as i64).collect();
        let t = burn::tensor::Tensor::<burn::backend::Flex, 2, burn::tensor::Int>::from_data(
            burn::tensor::TensorData::new(ids, [1, 20]),
            &device,
        );
        tensor_to_vec(m.forward(t, 0, None))
    };
    assert_eq!(logits(&ckpt), logits(&back));
}

#[test]
fn sigkill_at_random_moments_never_leaves_a_torn_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 150_000);
    let runs = dir.path().join("runs");
    let run_dir = runs.join("k");
    let mut base = headless_args(&runs, &["--max-steps", "100000", "--run-name", "k"]);
    base.extend(tiny_flags(&corpus));
    base.extend(strs(&[
        "--set",
        "checkpoint.every=2",
        "--set",
        "checkpoint.keep_last=2",
    ]));
    // Pseudo-random but reproducible kill delays (ms after the first checkpoint appears).
    let delays = [7u64, 230, 61, 149, 3, 97];
    let mut last_step = 0;
    for (round, delay) in delays.iter().enumerate() {
        let mut a = base.clone();
        if let Some(latest) = latest_valid_checkpoint(&run_dir) {
            a.extend(strs(&["--resume", latest.to_str().unwrap()]));
        } else {
            assert_eq!(round, 0, "a later round found no valid checkpoint");
        }
        let mut child = Command::new(BIN)
            .args(&a)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until this process has written a checkpoint past the last one, then kill.
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let newest = list_checkpoints(&run_dir)
                .iter()
                .filter(|c| c.error.is_none())
                .map(|c| c.step)
                .max()
                .unwrap_or(0);
            if newest > last_step {
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("round {round}: trainer exited early ({status}): {err}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: no checkpoint in time"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(*delay));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let listed = list_checkpoints(&run_dir);
        assert!(!listed.is_empty());
        for c in &listed {
            assert!(
                c.error.is_none(),
                "round {round}: torn checkpoint listed: {c:?}"
            );
            assert!(!c.path.ends_with(".partial"));
        }
        let newest = listed.iter().map(|c| c.step).max().unwrap();
        assert!(newest > last_step, "round {round}: no progress");
        last_step = newest;
    }
}

/// A save that runs out of space (here: the file-size limit, which fails writes with EFBIG the
/// way a full disk fails them with ENOSPC) leaves no partial checkpoint, keeps the earlier one
/// loadable, reports a `CheckpointFailed` alert and lets training go on.
#[cfg(target_os = "linux")]
#[test]
fn a_save_that_runs_out_of_space_loses_nothing_goes_on_and_ends_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 200_000);
    let runs = dir.path().join("runs");
    let run_dir = runs.join("full");
    let mut base = headless_args(&runs, &["--run-name", "full"]);
    base.extend(tiny_flags(&corpus));
    base.extend(strs(&["--set", "checkpoint.every=10"]));

    // Unlimited first: a good checkpoint at step 10.
    let mut first = base.clone();
    first.extend(strs(&["--max-steps", "30", "--stop-at-step", "10"]));
    let (ok, _, err) = run(&first);
    assert!(ok, "first run failed: {err}");
    let good = latest_valid_checkpoint(&run_dir).expect("step-10 checkpoint");
    let good_model = std::fs::read(good.join("model.safetensors")).unwrap();
    let optimizer_bytes = std::fs::metadata(good.join("optimizer.safetensors"))
        .unwrap()
        .len();
    let model_bytes = good_model.len() as u64;
    // A limit between the two tensor files: model.safetensors fits, the optimizer's does not.
    let limit_kib = (model_bytes + optimizer_bytes) / 2 / 1024;
    assert!(model_bytes / 1024 < limit_kib && limit_kib < optimizer_bytes / 1024);

    let mut resume = base.clone();
    resume.extend(strs(&[
        "--max-steps",
        "30",
        "--resume",
        good.to_str().unwrap(),
    ]));
    let out = run_with_file_limit(limit_kib, &resume);
    let stderr = &out.stderr;
    assert!(
        stderr.contains("checkpoint failed") && stderr.contains("earlier checkpoints are intact"),
        "no checkpoint_failed alert: {stderr}"
    );
    // Loud: non-zero, and the last line says what failed and which checkpoint is good.
    assert_eq!(out.code, Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("error: run finished at step 30, but ")
            && last.contains(" checkpoint saves failed; newest good checkpoint: ")
            && last.ends_with(good.to_str().unwrap()),
        "{last}"
    );
    assert!(
        !stderr.contains("panicked"),
        "the trainer panicked: {stderr}"
    );

    // Training went on past the failed saves at steps 20 and 30.
    let metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    assert!(
        metrics.contains("\"event\":\"step\",\"step\":30"),
        "training stopped early: {stderr}"
    );
    // Nothing half-written is left, and the step-10 checkpoint is untouched and loadable.
    let names: Vec<String> = std::fs::read_dir(run_dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["step-00000010".to_string()], "{names:?}");
    assert_eq!(
        std::fs::read(good.join("model.safetensors")).unwrap(),
        good_model
    );
    assert!(list_checkpoints(&run_dir).iter().all(|c| c.error.is_none()));
    llite_tui::store::checkpoint::load(&good).expect("step-10 still loads");
}

/// Fine-tuning on instruction data without `--config` gets the SFT preset's schedule, not the
/// pretraining preset's (the checkpoint browser launches the same way).
#[test]
fn instruction_finetune_without_config_uses_the_sft_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 100_000);
    let runs = dir.path().join("runs");
    let mut pre = headless_args(&runs, &["--run-name", "pre", "--stop-at-step", "3"]);
    pre.extend(tiny_flags(&corpus));
    let (ok, _, err) = run(&pre);
    assert!(ok, "pretraining failed: {err}");
    let ckpt = latest_valid_checkpoint(&runs.join("pre")).unwrap();

    let jsonl = dir.path().join("tasks.jsonl");
    let lines: Vec<String> = (0..40)
        .map(|i| format!(r#"{{"instruction": "Say {i}.", "input": "", "output": "{i} and {i}."}}"#))
        .collect();
    std::fs::write(&jsonl, lines.join("\n")).unwrap();
    let ft = headless_args(
        &runs,
        &[
            "--run-name",
            "ft",
            "--finetune",
            ckpt.to_str().unwrap(),
            "--data",
            jsonl.to_str().unwrap(),
            "--stop-at-step",
            "2",
        ],
    );
    let (ok, _, err) = run(&ft);
    assert!(ok, "fine-tune failed: {err}");
    let used = llite_tui::config::RunConfig::load(Some(&runs.join("ft").join("run.toml"))).unwrap();
    let preset =
        llite_tui::config::RunConfig::from_toml_str(llite_tui::config::SFT_PRESET, "sft preset")
            .unwrap();
    assert_eq!(used.train.max_steps, preset.train.max_steps);
    assert_eq!(used.train.lr, preset.train.lr);
    assert_eq!(used.sft.template, preset.sft.template);
    assert!(used.is_sft());
}
