//! Instruction fine-tuning end to end: a pretrained tiny checkpoint, SFT on the bundled
//! instruction data with the response-only loss, exact resume of the SFT run, sampling through
//! the chat template, and multiple-choice scoring.

mod common;
use common::*;
use llite_tui::data::sft::Template;
use llite_tui::eval::{load_mc, multiple_choice, score_choices, McItem};
use llite_tui::model::params::import_params;
use llite_tui::model::Llama;
use llite_tui::protocol::{Command, Event, SampleParams, StartFrom};
use llite_tui::train::engine::spawn;
use std::path::{Path, PathBuf};

fn sft_file(dir: &Path, lines: usize) -> PathBuf {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/sft-shakespeare.jsonl"
    ))
    .unwrap();
    let path = dir.join("sft.jsonl");
    let picked: Vec<&str> = text.lines().take(lines).collect();
    std::fs::write(&path, picked.join("\n") + "\n").unwrap();
    path
}

fn pretrained(dir: &Path) -> PathBuf {
    let corpus = small_corpus(dir, 200_000);
    let cfg = tiny_config(&corpus, 40);
    run_to_end(spawn(request(cfg, dir, "base", StartFrom::Fresh)));
    dir.join("base/checkpoints/step-00000040")
}

#[test]
fn sft_response_loss_falls_resumes_exactly_and_samples_through_the_template() {
    let dir = tempfile::tempdir().unwrap();
    let base = pretrained(dir.path());
    let data = sft_file(dir.path(), 600);
    let mut cfg = tiny_config(Path::new("unused"), 60);
    cfg.train.lr = 2e-3;
    cfg.train.weight_decay = 0.0;
    cfg.train.seq_len = 64;
    cfg.train.batch_size = 8;
    cfg.sft.template = "plain".into();
    let ft = |name: &str, stop_at: Option<u64>| {
        let mut req = request(
            cfg.clone(),
            dir.path(),
            name,
            StartFrom::FineTune {
                checkpoint: base.clone(),
                data: Some(data.clone()),
            },
        );
        req.stop_at = stop_at;
        req
    };
    let events = run_to_end(spawn(ft("sft", None)));
    let losses: Vec<f64> = steps(&events).iter().map(|s| s.loss).collect();
    assert!(
        losses.iter().all(|l| *l > 0.0),
        "every batch has response tokens: {losses:?}"
    );
    let first = losses[..10].iter().sum::<f64>() / 10.0;
    let last = losses[50..].iter().sum::<f64>() / 10.0;
    // Measured 5.36 -> 4.96 since pretraining visits the corpus in a shuffled order (the base
    // model is less fitted to one play); 0.3 still separates learning from noise (~0.1).
    assert!(
        last < first - 0.3,
        "response loss should fall: {first:.3} -> {last:.3}"
    );
    let run_toml = std::fs::read_to_string(dir.path().join("sft/run.toml")).unwrap();
    assert!(
        run_toml.contains("sft.jsonl") && run_toml.contains("template = \"plain\""),
        "{run_toml}"
    );

    // Exact resume of an SFT run: 30 + stop + resume 30 equals 60 straight.
    run_to_end(spawn(ft("split", Some(30))));
    let ckpt = dir.path().join("split/checkpoints/step-00000030");
    let resumed = run_to_end(spawn(request(
        cfg.clone(),
        dir.path(),
        "x",
        StartFrom::Resume(ckpt),
    )));
    let tail: Vec<f64> = steps(&resumed).iter().map(|s| s.loss).collect();
    assert_eq!(tail, losses[30..].to_vec());

    // The prompt pane's sample goes through the chat template of an SFT checkpoint.
    let last_ckpt = dir.path().join("sft/checkpoints/step-00000060");
    let link = spawn(request(
        cfg,
        dir.path(),
        "inspect",
        StartFrom::Inspect(last_ckpt),
    ));
    assert!(matches!(next_event(&link, 60), Event::Started { .. }));
    let params = SampleParams {
        temperature: 0.0,
        max_tokens: 8,
        ..Default::default()
    };
    link.commands
        .send(Command::Sample {
            id: 1,
            prompt: "Which work of Shakespeare contains this line?\nO Romeo".into(),
            params,
        })
        .unwrap();
    loop {
        if let Event::SampleDone { prompt, text, .. } = next_event(&link, 60) {
            assert!(prompt.starts_with("Which work"));
            assert!(!text.starts_with("[sampling failed"), "{text}");
            break;
        }
    }
    link.commands
        .send(Command::Stop {
            save: false,
            reason: llite_tui::protocol::FinishReason::Stopped,
        })
        .unwrap();
}

#[test]
fn multiple_choice_scores_match_a_direct_computation() {
    let dir = tempfile::tempdir().unwrap();
    let base = pretrained(dir.path());
    let ck = llite_tui::store::checkpoint::load(&base).unwrap();
    let tok = llite_tui::store::checkpoint::load_tokenizer(&ck).unwrap();
    let device = Default::default();
    let model = import_params(
        Llama::<burn::backend::Flex>::new(&ck.model_config, 0, &device),
        ck.weights,
    )
    .unwrap();
    // A hand-made 4-item file in both supported shapes.
    let task = dir.path().join("task.jsonl");
    std::fs::write(
        &task,
        concat!(
            "{\"context\": \"ROMEO: But soft, what light through yonder\", \"endings\": [\"window breaks\", \"xq zzv\"], \"label\": 0}\n",
            "{\"context\": \"To be, or not to\", \"endings\": [\"kq xv zz\", \"be\"], \"label\": 1}\n",
            "{\"question\": \"KING\", \"choices\": [\"qzx\", \"HENRY\", \"vvv\"], \"answer\": \"B\"}\n",
            "{\"question\": \"What light\", \"choices\": [\"the\", \"zqzq\"], \"answer\": 0}\n",
        ),
    )
    .unwrap();
    let items = load_mc(&task, None, None).unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[2].label, 1);
    assert_eq!(items[2].context, "Question: KING\nAnswer:");
    // Batched scores equal one-sequence-at-a-time log-likelihoods.
    for item in &items {
        let batched = score_choices(&model, &tok, &item.context, &item.choices).unwrap();
        for (i, c) in item.choices.iter().enumerate() {
            let single =
                score_choices(&model, &tok, &item.context, std::slice::from_ref(c)).unwrap();
            assert!(
                (batched[i].0 - single[0].0).abs() < 1e-3,
                "{c}: {} vs {}",
                batched[i].0,
                single[0].0
            );
            assert_eq!(batched[i].1, c.chars().count());
        }
    }
    let m = multiple_choice(&model, &tok, &items).unwrap();
    // A model pretrained on Shakespeare prefers real English continuations over gibberish.
    assert!(m["acc_norm"] >= 0.75, "{m:?}");
    assert_eq!(m["n"], 4.0);
    // Alpaca data becomes multiple choice over each instruction's answers.
    let data = sft_file(dir.path(), 400);
    let vicuna = Template::resolve("vicuna", &tok).unwrap();
    let which = load_mc(&data, Some(&vicuna), None).unwrap();
    assert!(which
        .iter()
        .all(|i: &McItem| i.context.contains("Which work") && i.choices.len() >= 2));
}
