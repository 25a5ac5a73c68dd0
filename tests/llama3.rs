//! The Llama 3 family through the real binary: a synthetic Hugging Face directory with
//! Llama-3.2-1B's config *fields* (llama3 RoPE scaling, an explicit head_dim other than
//! hidden / heads, tied embeddings, theta 500000, bf16 weights, an eos list) imports, samples
//! and exports back unchanged; a vocabulary over 65,536 gets uint32 shards that `prepare`
//! writes, training reads and `eval` scores.

mod common;

use burn::backend::Flex;
use burn::tensor::{Int, Tensor, TensorData};
use common::*;
use llite_tui::config::RopeScaling;
use llite_tui::model::params::{import_params, tensor_to_vec};
use llite_tui::model::Llama;
use rand::{Rng, SeedableRng};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::BTreeMap;
use std::path::Path;

const VOCAB: usize = 300;
const HIDDEN: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
/// Not HIDDEN / HEADS (16): q_proj is [96, 64], o_proj [64, 96].
const HEAD_DIM: usize = 24;
const FF: usize = 96;
const LAYERS: usize = 2;

/// Llama-3.2-1B's config.json with the sizes shrunk (transformers 4.x form).
fn llama32_config() -> serde_json::Value {
    serde_json::json!({
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": false, "attention_dropout": 0.0,
        "bos_token_id": 1, "eos_token_id": [0, 2],
        "head_dim": HEAD_DIM, "hidden_act": "silu", "hidden_size": HIDDEN,
        "initializer_range": 0.02, "intermediate_size": FF,
        "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
        "num_attention_heads": HEADS, "num_hidden_layers": LAYERS,
        "num_key_value_heads": KV_HEADS, "pretraining_tp": 1, "rms_norm_eps": 1e-5,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
        "transformers_version": "4.45.0.dev0", "use_cache": true, "vocab_size": VOCAB
    })
}

/// HF name -> shape of every tensor of the synthetic model ([out, in] for linear layers).
fn hf_shapes() -> BTreeMap<String, Vec<usize>> {
    let (q, kv) = (HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM);
    let mut out = BTreeMap::new();
    out.insert("model.embed_tokens.weight".into(), vec![VOCAB, HIDDEN]);
    out.insert("model.norm.weight".into(), vec![HIDDEN]);
    for i in 0..LAYERS {
        let p = format!("model.layers.{i}");
        for (name, shape) in [
            ("input_layernorm", vec![HIDDEN]),
            ("post_attention_layernorm", vec![HIDDEN]),
            ("self_attn.q_proj", vec![q, HIDDEN]),
            ("self_attn.k_proj", vec![kv, HIDDEN]),
            ("self_attn.v_proj", vec![kv, HIDDEN]),
            ("self_attn.o_proj", vec![HIDDEN, q]),
            ("mlp.gate_proj", vec![FF, HIDDEN]),
            ("mlp.up_proj", vec![FF, HIDDEN]),
            ("mlp.down_proj", vec![HIDDEN, FF]),
        ] {
            out.insert(format!("{p}.{name}.weight"), shape);
        }
    }
    out
}

/// Write the HF directory (bf16 weights, as Llama 3.2 ships) and return the weights as the
/// f32 values their bf16 bits stand for.
fn write_hf_dir(dir: &Path) -> BTreeMap<String, Vec<f32>> {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut values = BTreeMap::new();
    let mut bytes: BTreeMap<String, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
    for (name, shape) in hf_shapes() {
        let n: usize = shape.iter().product();
        let norm = shape.len() == 1;
        let mut raw = Vec::with_capacity(2 * n);
        let mut vals = Vec::with_capacity(n);
        for _ in 0..n {
            let x: f32 = rng.random_range(-0.08..0.08) + if norm { 1.0 } else { 0.0 };
            let bits = (x.to_bits() >> 16) as u16;
            raw.extend_from_slice(&bits.to_le_bytes());
            vals.push(f32::from_bits((bits as u32) << 16));
        }
        values.insert(name.clone(), vals);
        bytes.insert(name, (shape, raw));
    }
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(n, (shape, raw))| {
            (
                n.clone(),
                TensorView::new(Dtype::BF16, shape.clone(), raw).unwrap(),
            )
        })
        .collect();
    let file = safetensors::serialize(views, None).unwrap();
    std::fs::write(dir.join("model.safetensors"), file).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&llama32_config()).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("tokenizer.json"), word_tokenizer_json(VOCAB)).unwrap();
    values
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Token ids of the word tokenizer's output (`w5 w7w12` -> 5, 7, 12: the stream decoder
/// emits the first new word without a space).
fn word_ids(text: &str) -> Vec<u32> {
    text.split(|c: char| c == 'w' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().unwrap())
        .collect()
}

/// Greedy continuation by full forward passes (no KV cache), stopping at end-of-text (0).
fn greedy(model: &Llama<Flex>, prompt: &[u32], n: usize) -> Vec<u32> {
    let mut ids = prompt.to_vec();
    for _ in 0..n {
        let data: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
        let t = Tensor::<Flex, 2, Int>::from_data(
            TensorData::new(data, [1, ids.len()]),
            &Default::default(),
        );
        let logits = tensor_to_vec(model.forward(t, 0, None));
        let last = &logits[(ids.len() - 1) * VOCAB..];
        let next = (0..VOCAB).fold(0, |b, i| if last[i] > last[b] { i } else { b }) as u32;
        if next == 0 {
            break;
        }
        ids.push(next);
    }
    ids
}

#[test]
fn llama32_shaped_model_imports_samples_and_exports_back() {
    let dir = tempfile::tempdir().unwrap();
    let hf = dir.path().join("Llama-3.2-tiny");
    let original = write_hf_dir(&hf);
    let ckpt = dir.path().join("ckpt");
    let out = run_within(&["import", "--hf", s(&hf), "--out", s(&ckpt)], 120);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    // The listing / browser's header checks agree with the head_dim-shaped tensors.
    llite_tui::store::listing::inspect_checkpoint(&ckpt).unwrap();
    let loaded = llite_tui::store::checkpoint::load(&ckpt).unwrap();
    let m = &loaded.model_config;
    assert_eq!((m.head_dim, m.resolved_head_dim()), (HEAD_DIM, HEAD_DIM));
    assert_eq!(m.rope_theta, 500000.0);
    assert!(m.tie_embeddings);
    assert_eq!(
        m.rope_scaling,
        RopeScaling::Llama3 {
            factor: 32.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192,
        }
    );

    // Greedy sampling through the CLI (KV cache, one position at a time) continues the prompt
    // exactly as full forward passes over the imported weights do.
    let out = run_within(
        &[
            "sample",
            "--checkpoint",
            s(&ckpt),
            "--prompt",
            "w5 w7 w11",
            "--max-tokens",
            "12",
            "--temperature",
            "0",
        ],
        120,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let sampled = word_ids(&out.stdout);
    let model = import_params(
        Llama::<Flex>::new(m, 0, &Default::default()),
        loaded.weights.read_all().unwrap(),
    )
    .unwrap();
    let want = greedy(&model, &[5, 7, 11], 12);
    assert!(want.len() > 3, "greedy produced nothing: {want:?}");
    assert_eq!(sampled, want, "{}", out.stdout);

    // Export writes rope_scaling and head_dim back; the weights survive bit for bit, and a
    // second import gives the same model config.
    let hf2 = dir.path().join("exported");
    let out = run_within(&["export", "--checkpoint", s(&ckpt), "--out", s(&hf2)], 120);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(hf2.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["head_dim"], HEAD_DIM);
    assert_eq!(config["rope_theta"], 500000.0);
    assert_eq!(config["tie_word_embeddings"], true);
    assert_eq!(
        config["rope_scaling"],
        serde_json::json!({"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})
    );
    let bytes = std::fs::read(hf2.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.names().len(), original.len());
    for (name, want) in &original {
        let t = st.tensor(name).unwrap();
        assert_eq!(t.shape(), hf_shapes()[name].as_slice(), "{name}");
        let got: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(&got, want, "{name}");
    }
    // Fine-tuning trains the imported model (fused attention at head_dim 24, scaled RoPE).
    let words: Vec<String> = (0..600)
        .map(|i| format!("w{}", 2 + (i * 37) % 298))
        .collect();
    let text = dir.path().join("words.txt");
    std::fs::write(&text, words.join(" ")).unwrap();
    let runs = dir.path().join("runs");
    let mut args = strs(&[
        "train",
        "--headless",
        "--finetune",
        s(&ckpt),
        "--data",
        s(&text),
    ]);
    args.extend(strs(&[
        "--runs-dir",
        s(&runs),
        "--run-name",
        "ft",
        "--max-steps",
        "2",
    ]));
    for set in [
        "train.seq_len=8",
        "train.batch_size=2",
        "train.eval_every=0",
    ] {
        args.extend(strs(&["--set", set]));
    }
    let out = run_within(&args, 120);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let losses = metrics_step_losses(&runs.join("ft/metrics.jsonl"));
    assert_eq!(losses.len(), 2, "{}", out.stdout);
    assert!(losses.iter().all(|(_, l)| l.is_finite()), "{losses:?}");

    let ckpt2 = dir.path().join("ckpt2");
    let out = run_within(&["import", "--hf", s(&hf2), "--out", s(&ckpt2)], 120);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let again = llite_tui::store::checkpoint::load(&ckpt2).unwrap();
    assert_eq!(&again.model_config, m);
    assert_eq!(
        again.weights.read_all().unwrap(),
        loaded.weights.read_all().unwrap()
    );
}

/// A RoPE scaling llite-tui does not implement is refused by name, not run wrong.
#[test]
fn unsupported_rope_scaling_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let hf = dir.path().join("hf");
    write_hf_dir(&hf);
    let mut config = llama32_config();
    config["rope_scaling"] = serde_json::json!({"rope_type": "yarn", "factor": 4.0,
        "original_max_position_embeddings": 4096});
    std::fs::write(hf.join("config.json"), config.to_string()).unwrap();
    let out = run_within(
        &["import", "--hf", s(&hf), "--out", s(&dir.path().join("c"))],
        60,
    );
    assert_eq!(out.code, Some(1));
    let line = out.stderr.trim();
    assert!(
        line.contains("config.json") && line.contains("yarn") && !line.contains('\n'),
        "{line}"
    );
    assert!(!dir.path().join("c").exists());
}

/// A vocabulary over 65,536: `prepare` writes `<u4` shards holding ids above 65,535, a
/// headless run trains on them and `eval` scores their validation split.
#[test]
fn large_vocabulary_prepares_uint32_shards_that_train_and_evaluate() {
    const BIG: usize = 65_600;
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("big-tokenizer.json");
    std::fs::write(&tok, word_tokenizer_json(BIG)).unwrap();
    // Every third word sits above the uint16 range.
    let words: Vec<String> = (0..3000u64)
        .map(|i| match i % 3 {
            0 => format!("w{}", 65_536 + (i * 7) % 64),
            _ => format!("w{}", 2 + (i * 7919) % 65_000),
        })
        .collect();
    let corpus = dir.path().join("words.txt");
    std::fs::write(&corpus, words.join(" ")).unwrap();
    let shards = dir.path().join("shards");
    let out = run_within(
        &[
            "prepare",
            "--input",
            s(&corpus),
            "--out",
            s(&shards),
            "--tokenizer",
            s(&tok),
        ],
        120,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("uint32 shards"), "{}", out.stdout);
    let set = llite_tui::data::shards::list_shards(&shards).unwrap();
    let train = llite_tui::data::shards::read_npy_tokens(&set.train[0]).unwrap();
    assert_eq!(train.dtype(), llite_tui::data::npy::TokenDtype::U32);
    assert!(train.iter().any(|t| t >= 65_536));

    let runs = dir.path().join("runs");
    let sets = [
        format!("model.vocab_size={BIG}"),
        "model.d_model=16".into(),
        "model.n_layers=1".into(),
        "model.n_heads=2".into(),
        "model.n_kv_heads=1".into(),
        "model.ff_dim=32".into(),
        "model.max_seq_len=32".into(),
        format!("data.corpus={}", shards.display()),
        format!("data.tokenizer={}", tok.display()),
        "train.batch_size=2".into(),
        "train.seq_len=16".into(),
        "train.eval_every=2".into(),
        "train.eval_batches=1".into(),
    ];
    let mut args = strs(&[
        "train",
        "--headless",
        "--max-steps",
        "3",
        "--runs-dir",
        s(&runs),
        "--run-name",
        "big",
    ]);
    args.extend(sets.iter().flat_map(|x| ["--set".to_string(), x.clone()]));
    let out = run_within(&args, 300);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("eval step 2 val_loss"),
        "{}",
        out.stdout
    );
    let losses = metrics_step_losses(&runs.join("big/metrics.jsonl"));
    assert_eq!(losses.len(), 3);
    // An untrained model over 65,600 tokens starts near ln(65600) = 11.09.
    assert!((losses[0].1 - 11.09).abs() < 1.0, "{losses:?}");

    let ckpt = runs.join("big/checkpoints/step-00000003");
    let out = run_within(
        &["eval", "--checkpoint", s(&ckpt), "--task", s(&shards)],
        120,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let line = out.stdout.trim();
    let loss: f64 = line
        .split("loss ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no loss in {line}"));
    assert!(loss.is_finite() && (loss - 11.09).abs() < 1.5, "{line}");
}
