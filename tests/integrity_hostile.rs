//! Hostile input against the real binary, one row per class of issue 10's "validate at the
//! door" and "nothing outside its place": each row must end in ONE `error: ` line containing
//! its needle, exit code 1, no panic, and leave every pre-existing file byte-identical.

mod common;
use common::{
    copy_dir, mkfifo, output_within, run_within, small_corpus, snapshot, tiny_flags_with, BIN,
};
use std::path::Path;
use std::process::Command;

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn npy_u16(path: &Path, tokens: &[u16]) {
    llite_tui::data::shards::write_npy_u16(path, tokens).unwrap();
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

struct Row {
    class: &'static str,
    args: Vec<String>,
    needle: &'static str,
    env: Vec<(&'static str, String)>,
}

fn row(class: &'static str, args: &[&str], needle: &'static str) -> Row {
    Row {
        class,
        args: args.iter().map(|a| a.to_string()).collect(),
        needle,
        env: Vec::new(),
    }
}

#[test]
fn hostile_inputs_end_in_one_line_errors_and_touch_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let corpus = small_corpus(root, 60_000);
    let runs = root.join("runs");

    // One tiny checkpoint and its HF export, reused by every row.
    let mut train = vec!["train", "--headless", "--max-steps", "2", "--run-name", "r"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    train.extend(["--runs-dir".into(), s(&runs)]);
    train.extend(tiny_flags_with(&corpus, &["train.eval_every=0"]));
    let out = run_within(&train, 300);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let run_dir = runs.join("r");
    let ckpt = run_dir.join("checkpoints/step-00000002");
    let hf = root.join("hf");
    let out = run_within(
        &["export", "--checkpoint", &s(&ckpt), "--out", &s(&hf)],
        120,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    // Hostile material.
    let user_dir = root.join("user-dir");
    std::fs::create_dir(&user_dir).unwrap();
    std::fs::write(user_dir.join("thesis.txt"), b"years of work").unwrap();
    std::fs::write(root.join("secret.safetensors"), b"not yours").unwrap();
    let hf_escape = root.join("hf-escape");
    copy_dir(&hf, &hf_escape);
    std::fs::write(
        hf_escape.join("model.safetensors.index.json"),
        r#"{"weight_map": {"model.norm.weight": "../secret.safetensors"}}"#,
    )
    .unwrap();
    let hf_link = root.join("hf-link");
    copy_dir(&hf, &hf_link);
    std::os::unix::fs::symlink(
        root.join("secret.safetensors"),
        hf_link.join("w.safetensors"),
    )
    .unwrap();
    std::fs::write(
        hf_link.join("model.safetensors.index.json"),
        r#"{"weight_map": {"model.norm.weight": "w.safetensors"}}"#,
    )
    .unwrap();
    let hf_layers = root.join("hf-layers");
    copy_dir(&hf, &hf_layers);
    edit_json(&hf_layers.join("config.json"), |v| {
        v["num_hidden_layers"] = 3.into()
    });
    let hf_huge = root.join("hf-huge");
    copy_dir(&hf, &hf_huge);
    edit_json(&hf_huge.join("config.json"), |v| {
        v["num_hidden_layers"] = 1_000_000.into();
        v["vocab_size"] = 1_000_000_000u64.into();
    });
    let hf_untied = root.join("hf-untied");
    copy_dir(&hf, &hf_untied);
    edit_json(&hf_untied.join("config.json"), |v| {
        v["tie_word_embeddings"] = false.into()
    });
    let hf_shape = root.join("hf-shape");
    copy_dir(&hf, &hf_shape);
    edit_json(&hf_shape.join("config.json"), |v| {
        v["intermediate_size"] = 256.into()
    });
    let hf_zero = root.join("hf-devzero");
    copy_dir(&hf, &hf_zero);
    std::fs::remove_file(hf_zero.join("config.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", hf_zero.join("config.json")).unwrap();
    let fifo = root.join("task.txt");
    mkfifo(&fifo);
    let bad_ids = root.join("bad-ids");
    std::fs::create_dir(&bad_ids).unwrap();
    npy_u16(
        &bad_ids.join("x_val_000000.npy"),
        &[1u16; 40]
            .iter()
            .chain(&[60000u16; 40])
            .copied()
            .collect::<Vec<_>>(),
    );
    npy_u16(&bad_ids.join("x_train_000001.npy"), &[1u16; 100]);
    let one_turn = root.join("one-turn.jsonl");
    std::fs::write(
        &one_turn,
        "{\"instruction\": \"Which?\", \"input\": \"\", \"output\": \"A\"}\n{\"messages\": [{\"role\": \"assistant\", \"content\": \"B\"}]}\n",
    )
    .unwrap();
    let long_choice = root.join("long-choice.jsonl");
    let long =
        serde_json::json!({"question": "Q?", "choices": ["a", "word ".repeat(200)], "answer": 0});
    std::fs::write(&long_choice, format!("{long}\n")).unwrap();
    let nan_ckpt = root.join("nan-ckpt");
    copy_dir(&ckpt, &nan_ckpt);
    // Rewritten with a valid self-digest: the config itself must be refused, not the digest.
    let mut record = llite_tui::store::trainer_state::read_trainer_record(&nan_ckpt).unwrap();
    record.state.config_toml = record
        .state
        .config_toml
        .replace("rope_theta = 10000.0", "rope_theta = nan");
    let text = llite_tui::store::trainer_state::trainer_json(
        &record.state,
        record.files.as_ref().unwrap(),
    )
    .unwrap();
    std::fs::write(nan_ckpt.join("trainer.json"), text).unwrap();
    let fifo_ckpt = root.join("fifo-ckpt");
    copy_dir(&ckpt, &fifo_ckpt);
    std::fs::remove_file(fifo_ckpt.join("trainer.json")).unwrap();
    mkfifo(&fifo_ckpt.join("trainer.json"));
    let fifo_weights = root.join("fifo-weights");
    copy_dir(&ckpt, &fifo_weights);
    std::fs::remove_file(fifo_weights.join("model.safetensors")).unwrap();
    mkfifo(&fifo_weights.join("model.safetensors"));
    let shards = root.join("shards");
    std::fs::create_dir(&shards).unwrap();
    npy_u16(&shards.join("theirs_train_000001.npy"), &[1, 2, 3]);

    // A directory of the user's that happens to carry a run's name (and a run.toml).
    let user_run = runs.join("user-run");
    std::fs::create_dir(&user_run).unwrap();
    std::fs::write(
        user_run.join("run.toml"),
        b"# my own notes, not llite-tui's",
    )
    .unwrap();

    let (c, r, h, k) = (s(&corpus), s(&runs), s(&hf), s(&ckpt));
    let train_with = |sets: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["train", "--headless", "--runs-dir", &r, "--run-name", "x"]
            .iter()
            .map(|x| x.to_string())
            .collect();
        a.extend(tiny_flags_with(&corpus, &["train.eval_every=0"]));
        for set in sets {
            a.extend(["--set".to_string(), set.to_string()]);
        }
        a
    };
    let mut rows = vec![
        Row { class: "config NaN", args: train_with(&["train.lr=nan"]), needle: "train.lr must be a finite number", env: vec![] },
        Row { class: "config inf", args: train_with(&["model.rope_theta=inf"]), needle: "model.rope_theta must be a finite", env: vec![] },
        Row { class: "config zero", args: train_with(&["model.d_model=0"]), needle: "model.d_model must be positive", env: vec![] },
        Row { class: "config rope 0", args: train_with(&["model.rope_theta=0"]), needle: "model.rope_theta must be > 0", env: vec![] },
        Row { class: "absurd size", args: train_with(&["model.d_model=4294967296", "model.n_heads=2", "model.n_kv_heads=2"]), needle: "overflows 64 bits", env: vec![] },
        Row { class: "threads", args: train_with(&["train.threads=100000"]), needle: "train.threads 100000", env: vec![] },
        Row {
            class: "memory (DMaS 1.7B on 24 GiB)",
            args: vec!["train".into(), "--headless".into(), "--runs-dir".into(), r.clone(), "--config".into(), format!("{}/configs/dmas-1.7b.toml", env!("CARGO_MANIFEST_DIR")), "--set".into(), format!("data.corpus={c}")],
            needle: "(estimated peak: model state 25.57 GiB + activations and logits 150.92 GiB at 16 rows x 1024 tokens, f32), this machine has 24.00 GiB available",
            env: vec![("LLITE_MEM_AVAILABLE", (24u64 << 30).to_string())],
        },
        row("sample top_p", &["sample", "--checkpoint", &k, "--top-p", "5"], "top_p must be in (0, 1]"),
        row("hostile trainer.json", &["sample", "--checkpoint", &s(&nan_ckpt)], "model.rope_theta must be a finite"),
        row("eval limit 0", &["eval", "--checkpoint", &k, "--task", &c, "--limit", "0"], "--limit 0"),
        row("eval held-out", &["eval", "--checkpoint", &k, "--task", &s(&one_turn), "--held-out", "1.5"], "--held-out 1.5"),
        row("eval single turn", &["eval", "--checkpoint", &k, "--task", &s(&one_turn)], "no instruction with 2..=64"),
        row("eval choice longer than the context", &["eval", "--checkpoint", &k, "--task", &s(&long_choice)], "cannot be scored fairly"),
        row("bad token ids", &["eval", "--checkpoint", &k, "--task", &s(&bad_ids)], "token id 60000 at position 40"),
        row("FIFO trainer.json", &["sample", "--checkpoint", &s(&fifo_ckpt)], "not a regular file (a FIFO)"),
        row("FIFO model.safetensors", &["eval", "--checkpoint", &s(&fifo_weights), "--task", &c], "not a regular file (a FIFO)"),
        row("FIFO input", &["eval", "--checkpoint", &k, "--task", &s(&fifo)], "not a regular file (a FIFO)"),
        row("/dev/zero config", &["import", "--hf", &s(&hf_zero), "--out", &s(&root.join("i0"))], "not a regular file"),
        row("HF shard ../", &["import", "--hf", &s(&hf_escape), "--out", &s(&root.join("i1"))], "not a plain relative file name"),
        row("HF shard symlink", &["import", "--hf", &s(&hf_link), "--out", &s(&root.join("i2"))], "outside"),
        row("HF layers", &["import", "--hf", &s(&hf_layers), "--out", &s(&root.join("i3"))], "describes 3 layers but tensor `model.layers.2."),
        row("HF 1e6 layers", &["import", "--hf", &s(&hf_huge), "--out", &s(&root.join("i4"))], "model needs ~"),
        row("HF untied head", &["import", "--hf", &s(&hf_untied), "--out", &s(&root.join("i5"))], "untied lm_head"),
        row("HF shapes", &["import", "--hf", &s(&hf_shape), "--out", &s(&root.join("i6"))], "implies [64, 256]"),
        row("import non-empty", &["import", "--hf", &h, "--out", &s(&user_dir)], "directory is not empty"),
        row("export non-empty", &["export", "--checkpoint", &k, "--out", &s(&user_dir)], "directory is not empty"),
        row("export onto checkpoint", &["export", "--checkpoint", &k, "--out", &k], "write outputs elsewhere"),
        row("export into run", &["export", "--checkpoint", &k, "--out", &s(&run_dir.join("hf"))], "write outputs elsewhere"),
        row("prepare prefix", &["prepare", "--input", &c, "--out", &s(&root.join("p1")), "--prefix", "../escape"], "plain file name"),
        row("prepare over shards", &["prepare", "--input", &c, "--out", &s(&shards)], "already holds shards (1 .npy files)"),
        row("prepare --replace foreign", &["prepare", "--input", &c, "--out", &s(&shards), "--replace"], "not written by llite-tui"),
    ];
    let mut fifo_config = train_with(&[]);
    fifo_config.extend(["--config".to_string(), s(&fifo)]);
    rows.push(Row {
        class: "FIFO --config",
        args: fifo_config,
        needle: "not a regular file (a FIFO)",
        env: vec![],
    });
    rows.push(row(
        "/dev/zero --config",
        &["info", "--config", "/dev/zero"],
        "not a regular file (a character device)",
    ));
    let mut user_run_args: Vec<String> = [
        "train",
        "--headless",
        "--runs-dir",
        &r,
        "--run-name",
        "user-run",
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    user_run_args.extend(tiny_flags_with(&corpus, &[]));
    rows.push(Row {
        class: "user's directory as a new run",
        args: user_run_args,
        needle: "holds files llite-tui did not write",
        env: vec![],
    });
    let into_run = s(&run_dir.join("checkpoints/step-00000099"));
    rows.push(row(
        "import into a run's checkpoints",
        &["import", "--hf", &h, "--out", &into_run],
        "write outputs elsewhere",
    ));
    rows.push(row(
        "ckpt ls of a standalone checkpoint",
        &["ckpt", "ls", &s(&fifo_weights)],
        "standalone checkpoint",
    ));
    let run_data = s(&run_dir.join("data"));
    rows.push(row(
        "prepare --replace over a run's data",
        &["prepare", "--input", &c, "--out", &run_data, "--replace"],
        "write outputs elsewhere",
    ));
    rows.push(row(
        "resume with nothing to train",
        &[
            "train",
            "--headless",
            "--runs-dir",
            &r,
            "--resume",
            &k,
            "--max-steps",
            "1",
        ],
        "nothing to train",
    ));
    rows.push(row(
        "sample --dump-logits onto an existing file",
        &[
            "sample",
            "--checkpoint",
            &k,
            "--prompt",
            "To be",
            "--dump-logits",
            &c,
        ],
        "already exists",
    ));
    rows.iter_mut()
        .for_each(|r| r.env.push(("RAYON_NUM_THREADS", "2".into())));

    let mut failures = Vec::new();
    for row in &rows {
        let before = snapshot(root);
        let mut cmd = Command::new(BIN);
        cmd.args(&row.args);
        for (k, v) in &row.env {
            cmd.env(k, v);
        }
        let out = output_within(cmd, 120, &format!("[{}]", row.class));
        let err = out.stderr;
        let lines: Vec<&str> = err.lines().collect();
        let after = snapshot(root);
        let changed: Vec<_> = before
            .iter()
            .filter(|(p, d)| after.get(*p) != Some(d))
            .map(|(p, _)| p.display().to_string())
            .collect();
        let created: Vec<_> = after.keys().filter(|p| !before.contains_key(*p)).collect();
        let ok = out.code == Some(1)
            && lines.len() == 1
            && lines[0].starts_with("error: ")
            && lines[0].contains(row.needle)
            && !err.contains("panicked")
            && changed.is_empty()
            && created.is_empty();
        if !ok {
            failures.push(format!(
                "[{}] exit {:?}, stderr {err:?}, changed {changed:?}, created {created:?}",
                row.class, out.code
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
