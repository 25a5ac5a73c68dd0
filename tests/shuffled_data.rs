//! The shuffled-window loader end to end: a run that crosses epochs resumes bit for bit in
//! the middle of one, and a checkpoint of the old sequential loader is refused by name (its
//! weights still fine-tune).

mod common;
use common::*;
use llite_tui::data::loader::DataOrder;
use llite_tui::protocol::{Event, StartFrom};
use llite_tui::store::trainer_state::{read_trainer_record, read_trainer_state, trainer_json};
use llite_tui::train::engine::spawn;
use std::path::{Path, PathBuf};

fn checkpoint_at(run_dir: &Path, step: u64) -> PathBuf {
    run_dir.join("checkpoints").join(format!("step-{step:08}"))
}

fn losses(events: &[Event]) -> Vec<(u64, f64)> {
    steps(events).iter().map(|s| (s.step, s.loss)).collect()
}

fn first_error(link: llite_tui::protocol::EngineLink) -> String {
    loop {
        match next_event(&link, 120) {
            Event::Error { message, .. } => return message,
            Event::Finished { .. } => panic!("finished without an error"),
            _ => {}
        }
    }
}

/// A corpus of about 22 batches (345 windows of 33 tokens, batch 16): 48 steps cross two
/// epoch ends, and the resume point (step 24) lies inside the second epoch.
#[test]
fn a_run_crossing_epochs_resumes_bit_for_bit_mid_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 24_000);
    let mut cfg = tiny_config(&corpus, 48);
    cfg.train.batch_size = 16;
    let straight = losses(&run_to_end(spawn(request(
        cfg.clone(),
        dir.path(),
        "straight",
        StartFrom::Fresh,
    ))));
    assert_eq!(straight.len(), 48);
    let end = read_trainer_state(&checkpoint_at(&dir.path().join("straight"), 48)).unwrap();
    assert!(
        end.data_cursor.epoch >= 2,
        "the corpus should hold under 24 batches: {:?}",
        end.data_cursor
    );

    let mut first = request(cfg.clone(), dir.path(), "split", StartFrom::Fresh);
    first.stop_at = Some(24);
    run_to_end(spawn(first));
    let ckpt = checkpoint_at(&dir.path().join("split"), 24);
    let cursor = read_trainer_state(&ckpt).unwrap().data_cursor;
    assert_eq!(cursor.order, DataOrder::Windows);
    assert!(cursor.epoch >= 1 && cursor.offset > 0, "{cursor:?}");
    let resumed = losses(&run_to_end(spawn(request(
        cfg,
        dir.path(),
        "ignored",
        StartFrom::Resume(ckpt),
    ))));
    assert_eq!(resumed, straight[24..].to_vec());
}

/// trainer.json of a build before the shuffled loader holds a sequential cursor (no `order`,
/// read as "sequential"): resuming it would silently train on another stream, so it is
/// refused in one line naming the checkpoint and the way out; a fine-tune from it works.
#[test]
fn a_sequential_cursor_of_an_older_build_is_refused_and_finetune_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 50_000);
    let cfg = tiny_config(&corpus, 8);
    let mut first = request(cfg.clone(), dir.path(), "old", StartFrom::Fresh);
    first.stop_at = Some(3);
    run_to_end(spawn(first));
    let ck = checkpoint_at(&dir.path().join("old"), 3);
    let text = std::fs::read_to_string(ck.join("trainer.json")).unwrap();
    assert!(text.contains(r#""order": "windows""#), "{text}");

    // Rewritten as the old loader left it, with a valid self-digest (so the cursor, not the
    // digest, is what gets refused).
    let mut record = read_trainer_record(&ck).unwrap();
    record.state.data_cursor.order = DataOrder::Sequential;
    record.state.data_cursor.offset = 3 * 4 * 32;
    let text = trainer_json(&record.state, record.files.as_ref().unwrap()).unwrap();
    std::fs::write(ck.join("trainer.json"), text).unwrap();

    let err = first_error(spawn(request(
        cfg.clone(),
        dir.path(),
        "x",
        StartFrom::Resume(ck.clone()),
    )));
    assert!(
        err.contains(&ck.display().to_string())
            && err.contains("older build")
            && err.contains("--finetune")
            && !err.contains('\n'),
        "{err}"
    );
    let mut ft = request(
        cfg,
        dir.path(),
        "ft",
        StartFrom::FineTune {
            checkpoint: ck,
            data: None,
        },
    );
    ft.stop_at = Some(2);
    assert_eq!(losses(&run_to_end(spawn(ft))).len(), 2);
}
