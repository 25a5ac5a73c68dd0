//! Exact resume: N steps + stop (a separate engine instance) + resume + N steps gives the same
//! losses, bit for bit, as 2N steps straight. Also the weights-only resume spike, fine-tune
//! parentage, and refusals of mismatched or corrupt checkpoints.

mod common;
use common::*;
use llite_tui::protocol::{Event, StartFrom};
use llite_tui::store::listing::list_checkpoints;
use llite_tui::store::trainer_state::read_trainer_state;
use llite_tui::train::engine::spawn;
use std::path::{Path, PathBuf};

const N: u64 = 20;

fn losses(events: &[Event]) -> Vec<(u64, f64)> {
    steps(events).iter().map(|s| (s.step, s.loss)).collect()
}

fn checkpoint_at(run_dir: &Path, step: u64) -> PathBuf {
    run_dir.join("checkpoints").join(format!("step-{step:08}"))
}

#[test]
fn stop_and_resume_continues_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 200_000);
    let mut cfg = tiny_config(&corpus, 2 * N);
    cfg.train.grad_accum = 2;
    let straight = losses(&run_to_end(spawn(request(
        cfg.clone(),
        dir.path(),
        "straight",
        StartFrom::Fresh,
    ))));
    assert_eq!(straight.len(), 2 * N as usize);

    let mut first = request(cfg.clone(), dir.path(), "split", StartFrom::Fresh);
    first.stop_at = Some(N);
    let part1 = losses(&run_to_end(spawn(first)));
    assert_eq!(part1, straight[..N as usize].to_vec());

    let ckpt = checkpoint_at(&dir.path().join("split"), N);
    let state = read_trainer_state(&ckpt).unwrap();
    assert_eq!(state.step, N);
    assert_eq!(state.optimizer_step, N);
    assert_eq!(state.tokens_seen, N * 4 * 32 * 2);

    let resumed = run_to_end(spawn(request(
        cfg,
        dir.path(),
        "ignored",
        StartFrom::Resume(ckpt.clone()),
    )));
    assert!(matches!(&resumed[0], Event::Started { step, .. } if *step == N));
    let part2 = losses(&resumed);
    assert_eq!(
        part2,
        straight[N as usize..].to_vec(),
        "resumed losses differ from the straight run"
    );
    // The resumed run appended to the same metrics file, with a second `started` first.
    let metrics = std::fs::read_to_string(dir.path().join("split/metrics.jsonl")).unwrap();
    assert_eq!(metrics.matches("\"event\":\"started\"").count(), 2);
}

#[test]
fn fresh_optimizer_resume_differs_and_finetune_records_parent() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 200_000);
    let cfg = tiny_config(&corpus, 2 * N);
    let straight = losses(&run_to_end(spawn(request(
        cfg.clone(),
        dir.path(),
        "a",
        StartFrom::Fresh,
    ))));
    let mut first = request(cfg.clone(), dir.path(), "b", StartFrom::Fresh);
    first.stop_at = Some(N);
    run_to_end(spawn(first));
    let ckpt = checkpoint_at(&dir.path().join("b"), N);
    // Keep a copy so the weights-only resume does not append to the same run.
    let mut req = request(
        cfg.clone(),
        dir.path(),
        "b",
        StartFrom::Resume(ckpt.clone()),
    );
    req.fresh_optimizer = true;
    let spiky = losses(&run_to_end(spawn(req)));
    assert_eq!(spiky.len(), N as usize);
    assert_ne!(
        spiky[1].1,
        straight[N as usize + 1].1,
        "weights-only resume must not match the exact one"
    );

    let mut ft_cfg = cfg.clone();
    ft_cfg.train.max_steps = 5;
    let ft = run_to_end(spawn(request(
        ft_cfg,
        dir.path(),
        "ft",
        StartFrom::FineTune {
            checkpoint: ckpt.clone(),
            data: None,
        },
    )));
    assert!(matches!(&ft[0], Event::Started { step: 0, .. }));
    let ft_ckpts = list_checkpoints(&dir.path().join("ft"));
    let state = read_trainer_state(Path::new(&ft_ckpts.last().unwrap().path)).unwrap();
    assert_eq!(
        state.parent.as_deref(),
        Some(ckpt.display().to_string().as_str())
    );
    assert_eq!(state.step, 5);
    // Fine-tuning starts from the checkpoint's weights: its first loss is far below a fresh model's.
    assert!(steps(&ft)[0].loss < straight[0].1 - 0.5);
}

#[test]
fn corrupt_or_mismatched_checkpoints_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 200_000);
    let mut cfg = tiny_config(&corpus, 10);
    cfg.checkpoint.every = 5;
    run_to_end(spawn(request(
        cfg.clone(),
        dir.path(),
        "c",
        StartFrom::Fresh,
    )));
    let run = dir.path().join("c");
    let good = checkpoint_at(&run, 5);
    let bad = checkpoint_at(&run, 10);

    // A changed model config on resume.
    let mut other = cfg.clone();
    other.model.d_model = 128;
    let mut req = request(other, dir.path(), "c", StartFrom::Resume(good.clone()));
    req.config_explicit = true;
    let err = first_error(spawn(req));
    assert!(
        err.contains("model.d_model") && err.contains("step-00000005"),
        "{err}"
    );

    // A truncated weights file.
    let model = bad.join("model.safetensors");
    let len = std::fs::metadata(&model).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&model)
        .unwrap();
    f.set_len(len / 2).unwrap();
    let err = first_error(spawn(request(
        cfg.clone(),
        dir.path(),
        "c",
        StartFrom::Resume(bad.clone()),
    )));
    assert!(
        err.contains("model.safetensors") && err.contains("truncated"),
        "{err}"
    );
    let listed = list_checkpoints(&run);
    assert!(listed
        .iter()
        .any(|c| c.path.ends_with("step-00000010") && c.error.is_some()));
    assert!(listed
        .iter()
        .any(|c| c.path.ends_with("step-00000005") && c.error.is_none()));

    // A missing trainer.json.
    std::fs::remove_file(good.join("trainer.json")).unwrap();
    let err = first_error(spawn(request(
        cfg,
        dir.path(),
        "c",
        StartFrom::Resume(good.clone()),
    )));
    assert!(err.contains("trainer.json"), "{err}");
}

fn first_error(link: llite_tui::protocol::EngineLink) -> String {
    loop {
        match next_event(&link, 60) {
            Event::Error { message, .. } => return message,
            Event::Finished { .. } => panic!("finished without an error"),
            _ => {}
        }
    }
}
