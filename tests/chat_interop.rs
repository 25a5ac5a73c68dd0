//! Hugging Face interop of chat models: import -> export -> import is the identity on weights,
//! tokenizer, special tokens and chat template; exports carry tokenizer_config.json,
//! chat_template.jinja and generation_config.json (0644, f32/bf16); an SFT run from an imported
//! model trains with the model's own template and exports it; `llite-tui template` prints ids.

mod common;
use common::*;
use llite_tui::data::template::{prompt_template, Template};
use llite_tui::data::tokenizer::TextTokenizer;
use llite_tui::interop::export::{export_checkpoint_as, import_hf};
use llite_tui::interop::hf_write::ExportDtype;
use llite_tui::model::params::export_params;
use llite_tui::protocol::StartFrom;
use llite_tui::store::checkpoint::{load, load_tokenizer};
use llite_tui::store::hf_layout as hf;
use llite_tui::store::safetensors_io;
use llite_tui::train::engine::spawn;
use serde_json::{json, Value};
use std::path::Path;

/// SmolLM2-Instruct's chat template (ChatML with a default system prompt).
const SMOLLM2_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

const VOCAB: usize = 304;

/// A SmolLM2-shaped HF directory: a byte-level BPE of 300 (+ `<|im_start|>` 300, `<|im_end|>`
/// 301), bos = `<|im_start|>`, eos = pad = `<|im_end|>`, unk = `<|endoftext|>`.
fn smollm2_like_dir(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let corpus = small_corpus(dir, 50_000);
    let docs = llite_tui::data::corpus::read_corpus(&[corpus.display().to_string()]).unwrap();
    std::fs::remove_file(&corpus).unwrap();
    let base = TextTokenizer::train_bpe(&docs, 300).unwrap();
    let mut v: Value = serde_json::from_str(&base.to_json_string().unwrap()).unwrap();
    for (id, content) in [(300, "<|im_start|>"), (301, "<|im_end|>")] {
        v["added_tokens"].as_array_mut().unwrap().push(json!({"id": id, "content": content,
            "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}));
    }
    std::fs::write(dir.join("tokenizer.json"), v.to_string()).unwrap();
    let mut cfg = tiny_config(Path::new("unused"), 1).model;
    cfg.vocab_size = VOCAB;
    cfg.tie_embeddings = true;
    let model = llite_tui::model::Llama::<burn::backend::Flex>::new(&cfg, 3, &Default::default());
    let weights = export_params(&model);
    safetensors_io::write_file_synced(
        &dir.join("model.safetensors"),
        &hf::to_hf(&weights).unwrap(),
        None,
    )
    .unwrap();
    let mut config = hf::config_json(&cfg, 301);
    config["bos_token_id"] = json!(300);
    config["pad_token_id"] = json!(301);
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let tc = json!({"tokenizer_class": "GPT2Tokenizer", "bos_token": "<|im_start|>",
        "eos_token": {"content": "<|im_end|>", "__type": "AddedToken"}, "pad_token": "<|im_end|>",
        "unk_token": "<|endoftext|>", "chat_template": SMOLLM2_TEMPLATE, "model_max_length": 8192});
    std::fs::write(dir.join("tokenizer_config.json"), tc.to_string()).unwrap();
    std::fs::write(
        dir.join("generation_config.json"),
        r#"{"bos_token_id": 300, "eos_token_id": 301, "pad_token_id": 301}"#,
    )
    .unwrap();
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn import_export_import_is_the_identity_and_exports_are_complete() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    smollm2_like_dir(&d.join("hf"));
    import_hf(&d.join("hf"), &d.join("ck1")).unwrap();
    export_checkpoint_as(&d.join("ck1"), &d.join("out"), ExportDtype::F32).unwrap();
    import_hf(&d.join("out"), &d.join("ck2")).unwrap();

    let (c1, c2) = (load(&d.join("ck1")).unwrap(), load(&d.join("ck2")).unwrap());
    let (t1, t2) = (load_tokenizer(&c1).unwrap(), load_tokenizer(&c2).unwrap());
    let (w1, w2) = (
        c1.weights.read_all().unwrap(),
        c2.weights.read_all().unwrap(),
    );
    assert_eq!(w1.len(), w2.len());
    for (a, b) in w1.iter().zip(&w2) {
        assert_eq!((&a.name, &a.shape), (&b.name, &b.shape));
        assert!(
            a.data
                .iter()
                .zip(&b.data)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "{}",
            a.name
        );
    }
    assert_eq!(t1.to_json_string().unwrap(), t2.to_json_string().unwrap());
    assert_eq!(t1.meta(), t2.meta());
    assert_eq!(t1.eot_id(), 301);
    let m = t2.meta();
    assert_eq!(m.chat_template.as_deref(), Some(SMOLLM2_TEMPLATE));
    let ids = |t: &Option<llite_tui::data::tokenizer_meta::SpecialToken>| t.as_ref().map(|t| t.id);
    assert_eq!(
        (ids(&m.bos), ids(&m.eos), ids(&m.pad), ids(&m.unk)),
        (Some(300), Some(301), Some(301), Some(0))
    );

    // What transformers reads from the export.
    let out = d.join("out");
    let tc = read_json(&out.join("tokenizer_config.json"));
    assert_eq!(tc["chat_template"], SMOLLM2_TEMPLATE);
    assert_eq!(
        (tc["bos_token"].as_str(), tc["eos_token"].as_str()),
        (Some("<|im_start|>"), Some("<|im_end|>"))
    );
    assert_eq!(
        (tc["pad_token"].as_str(), tc["unk_token"].as_str()),
        (Some("<|im_end|>"), Some("<|endoftext|>"))
    );
    assert_eq!(
        std::fs::read_to_string(out.join("chat_template.jinja")).unwrap(),
        SMOLLM2_TEMPLATE
    );
    let gen = read_json(&out.join("generation_config.json"));
    assert_eq!(
        (
            gen["bos_token_id"].as_u64(),
            gen["eos_token_id"].as_u64(),
            gen["pad_token_id"].as_u64()
        ),
        (Some(300), Some(301), Some(301))
    );
    let config = read_json(&out.join("config.json"));
    assert_eq!(
        (
            config["bos_token_id"].as_u64(),
            config["eos_token_id"].as_u64(),
            config["pad_token_id"].as_u64()
        ),
        (Some(300), Some(301), Some(301))
    );
    #[cfg(unix)]
    for e in std::fs::read_dir(&out).unwrap() {
        use std::os::unix::fs::PermissionsExt;
        let e = e.unwrap();
        assert_eq!(
            e.metadata().unwrap().permissions().mode() & 0o777,
            0o644,
            "{:?}",
            e.path()
        );
    }

    // `sample` and the prompt pane wrap a prompt in the model's own template.
    let cfg = llite_tui::config::RunConfig::from_toml_str(&c2.trainer.config_toml, "t").unwrap();
    let t = prompt_template(&cfg, &t2)
        .unwrap()
        .expect("the model's template");
    assert!(t
        .prompt_for("Hi")
        .unwrap()
        .ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));

    // bf16 and f16 exports hold the weights rounded to that dtype, and import back.
    for (dtype, name, round) in [
        (
            ExportDtype::Bf16,
            "bfloat16",
            (|x: f32| half::bf16::from_f32(x).to_f32()) as fn(f32) -> f32,
        ),
        (ExportDtype::F16, "float16", |x: f32| {
            half::f16::from_f32(x).to_f32()
        }),
    ] {
        let (out, back) = (d.join(format!("out-{name}")), d.join(format!("ck-{name}")));
        export_checkpoint_as(&d.join("ck1"), &out, dtype).unwrap();
        assert_eq!(read_json(&out.join("config.json"))["torch_dtype"], name);
        let half_size = std::fs::metadata(out.join("model.safetensors"))
            .unwrap()
            .len();
        let full_size = std::fs::metadata(d.join("out/model.safetensors"))
            .unwrap()
            .len();
        assert!(half_size < full_size * 6 / 10, "{half_size} vs {full_size}");
        import_hf(&out, &back).unwrap();
        let c = load(&back).unwrap();
        let (w1, w) = (
            c1.weights.read_all().unwrap(),
            c.weights.read_all().unwrap(),
        );
        assert_eq!(w1.len(), w.len());
        for (a, b) in w1.iter().zip(&w) {
            assert!(
                a.data.iter().zip(&b.data).all(|(x, y)| round(*x) == *y),
                "{name} {}",
                a.name
            );
        }
        assert_eq!(load_tokenizer(&c).unwrap().meta(), m);
    }
}

#[test]
fn sft_from_an_imported_model_trains_with_and_exports_its_template() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    smollm2_like_dir(&d.join("hf"));
    import_hf(&d.join("hf"), &d.join("ck")).unwrap();
    let line = json!({"messages": [
        {"role": "user", "content": "Which play? To be"}, {"role": "assistant", "content": "Hamlet"},
        {"role": "user", "content": "And? Out, spot"}, {"role": "assistant", "content": "Macbeth"},
        {"role": "user", "content": "And? Winter"}, {"role": "assistant", "content": "Richard III"}]});
    let data = d.join("chat.jsonl");
    std::fs::write(&data, format!("{line}\n").repeat(40)).unwrap();
    for (template, expected) in [
        ("auto", SMOLLM2_TEMPLATE),
        ("vicuna", llite_tui::data::chat_template::VICUNA_JINJA),
    ] {
        let mut cfg = tiny_config(Path::new("unused"), 2);
        cfg.sft.template = template.into();
        cfg.train.eval_every = 0;
        let name = format!("sft-{template}");
        let start = StartFrom::FineTune {
            checkpoint: d.join("ck"),
            data: Some(data.clone()),
        };
        run_to_end(spawn(request(cfg, d, &name, start)));
        let ckpt = d.join(&name).join("checkpoints/step-00000002");
        let out = d.join(format!("out-{template}"));
        export_checkpoint_as(&ckpt, &out, ExportDtype::F32).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("chat_template.jinja")).unwrap(),
            expected,
            "{template}"
        );
        // The template subcommand renders the exported model's conversation; its ids are the
        // whole text's, the SFT ids the same tokens.
        let msgs = d.join("msgs.json");
        std::fs::write(&msgs, line["messages"].to_string()).unwrap();
        let run = run_within(
            &[
                "template",
                "--model",
                out.to_str().unwrap(),
                "--messages",
                msgs.to_str().unwrap(),
            ],
            60,
        );
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let report: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(report["ids"], report["sft_ids"], "{template}");
        let tok = load_tokenizer(&load(&ckpt).unwrap()).unwrap();
        let t = Template::resolve("model", &tok).unwrap();
        assert_eq!(
            report["text"],
            t.render_text(&llite_tui::data::sft::parse_line(&line).unwrap(), false)
                .unwrap()
        );
    }
}

#[test]
fn bad_tokenizer_metadata_is_refused_naming_the_file_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    smollm2_like_dir(&d.join("hf"));
    let tc_path = d.join("hf/tokenizer_config.json");
    let good = read_json(&tc_path);
    let cases = [
        (
            "bos_token",
            json!("<|nope|>"),
            "not in the tokenizer's vocabulary",
        ),
        (
            "chat_template",
            json!([{"name": "tool_use", "template": "x"}]),
            "without a `default`",
        ),
        ("chat_template", json!("{% for %}"), "does not compile"),
        ("eos_token", json!(7), "neither a string"),
    ];
    for (i, (key, value, expected)) in cases.into_iter().enumerate() {
        let mut tc = good.clone();
        tc[key] = value;
        std::fs::write(&tc_path, tc.to_string()).unwrap();
        let out = d.join(format!("ck{i}"));
        let err = format!("{:#}", import_hf(&d.join("hf"), &out).unwrap_err());
        assert!(!out.exists(), "{key}: {} was written", out.display());
        assert!(err.contains("tokenizer_config.json"), "{err}");
        assert!(
            err.contains(expected) && !err.contains('\n'),
            "{key}: {err}"
        );
    }
}
