//! The browser on its own: selection, the intents its keys return and its questions (the App's
//! handling of the intents is in app_tests / side_tests).

use super::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::path::Path;

fn ckpt(run: &str, step: u64, error: Option<&str>) -> CheckpointSummary {
    CheckpointSummary {
        path: format!("/runs/{run}/checkpoints/step-{step:08}"),
        run_name: run.into(),
        step,
        tokens: step * 100,
        val_loss: None,
        val_step: None,
        size_bytes: 1,
        written_unix: 0,
        error: error.map(str::to_string),
        pinned: false,
    }
}

fn press(b: &mut BrowserState, code: KeyCode) -> BrowserIntent {
    b.on_key(KeyEvent::new(code, KeyModifiers::NONE), false)
}

fn two() -> BrowserState {
    let mut b = BrowserState::default();
    b.set_entries(vec![ckpt("a", 10, None), ckpt("b", 20, Some("torn"))]);
    b
}

#[test]
fn selection_moves_within_the_list_and_survives_a_refresh() {
    let mut b = two();
    press(&mut b, KeyCode::Down);
    press(&mut b, KeyCode::Char('j'));
    assert_eq!(b.selected, 1, "clamped at the end");
    press(&mut b, KeyCode::Home);
    assert_eq!(b.selected, 0);
    press(&mut b, KeyCode::End);
    // A refresh that adds one in front keeps the same checkpoint highlighted.
    b.set_entries(vec![
        ckpt("z", 1, None),
        ckpt("a", 10, None),
        ckpt("b", 20, Some("torn")),
    ]);
    assert_eq!(b.selected_entry().unwrap().run_name, "b");
    b.set_entries(vec![]);
    assert_eq!((b.selected, b.selected_entry()), (0, None));
    assert_eq!(
        press(&mut b, KeyCode::Char('r')),
        BrowserIntent::Warn("no checkpoint selected".into())
    );
    assert_eq!(press(&mut b, KeyCode::F(5)), BrowserIntent::Refresh);
    assert_eq!(press(&mut b, KeyCode::Esc), BrowserIntent::Close);
}

#[test]
fn actions_on_the_selection_become_intents_and_invalid_ones_are_refused() {
    let mut b = two();
    let path = PathBuf::from("/runs/a/checkpoints/step-00000010");
    assert_eq!(
        press(&mut b, KeyCode::Char('r')),
        BrowserIntent::Launch(StartFrom::Resume(path.clone()))
    );
    assert_eq!(
        press(&mut b, KeyCode::Char('b')),
        BrowserIntent::Rewind {
            checkpoint: path.clone(),
            step: 10
        }
    );
    assert!(matches!(
        press(&mut b, KeyCode::Char('i')),
        BrowserIntent::SampleSide(c) if c.step == 10
    ));
    assert_eq!(
        press(&mut b, KeyCode::Char('u')),
        BrowserIntent::SetPinned {
            checkpoint: path.clone(),
            pinned: true
        }
    );
    // Watch mode: sampling on the side still works, starting an engine does not.
    let read_only = |b: &mut BrowserState, c| b.on_key(KeyEvent::from(KeyCode::Char(c)), true);
    assert!(matches!(
        read_only(&mut b, 'i'),
        BrowserIntent::SampleSide(_)
    ));
    assert!(matches!(read_only(&mut b, 'r'), BrowserIntent::Warn(w) if w.contains("read-only")));
    press(&mut b, KeyCode::Down);
    assert_eq!(
        press(&mut b, KeyCode::Char('r')),
        BrowserIntent::Warn("invalid checkpoint: torn".into())
    );
    // Deleting and unpinning an invalid checkpoint stay possible.
    assert_eq!(press(&mut b, KeyCode::Char('d')), BrowserIntent::Handled);
    assert!(matches!(b.prompt, Some(BrowserPrompt::ConfirmDelete(_))));
    assert_eq!(press(&mut b, KeyCode::Char('x')), BrowserIntent::Handled);
    assert!(b.prompt.is_some(), "other keys leave the question open");
    assert_eq!(
        press(&mut b, KeyCode::Char('y')),
        BrowserIntent::Delete(PathBuf::from("/runs/b/checkpoints/step-00000020"))
    );
    assert!(b.prompt.is_none());
}

#[test]
fn export_prefills_the_default_directory_and_edits_it() {
    let mut b = two();
    press(&mut b, KeyCode::Char('e'));
    let Some(BrowserPrompt::ExportDir { input, .. }) = &b.prompt else {
        panic!("{:?}", b.prompt);
    };
    assert_eq!(input, "/runs/a/export-step-10");
    press(&mut b, KeyCode::Backspace);
    press(&mut b, KeyCode::Backspace);
    press(&mut b, KeyCode::Char('9'));
    assert_eq!(
        press(&mut b, KeyCode::Enter),
        BrowserIntent::Export {
            checkpoint: PathBuf::from("/runs/a/checkpoints/step-00000010"),
            out: PathBuf::from("/runs/a/export-step-9"),
        }
    );
    assert_eq!(
        default_export_dir(Path::new("x"), 3),
        PathBuf::from("./export-step-3")
    );
}

#[test]
fn fine_tune_checks_the_data_path_before_asking_to_start() {
    let mut b = two();
    press(&mut b, KeyCode::Char('f'));
    for c in "/no/such/file.jsonl".chars() {
        press(&mut b, KeyCode::Char(c));
    }
    let refused = press(&mut b, KeyCode::Enter);
    assert!(
        matches!(&refused, BrowserIntent::Warn(w) if w.starts_with("fine-tune data refused")),
        "{refused:?}"
    );
    assert!(
        matches!(b.prompt, Some(BrowserPrompt::FineTuneData { .. })),
        "the question stays open to fix the typo"
    );
    press(&mut b, KeyCode::Esc);
    assert!(b.prompt.is_none());
    // Empty: the run's own corpus.
    press(&mut b, KeyCode::Char('f'));
    assert_eq!(
        press(&mut b, KeyCode::Enter),
        BrowserIntent::Launch(StartFrom::FineTune {
            checkpoint: PathBuf::from("/runs/a/checkpoints/step-00000010"),
            data: None
        })
    );
}

#[test]
fn a_confirmed_switch_says_whether_to_save_first() {
    let mut b = two();
    let from = StartFrom::Resume(PathBuf::from("/runs/a/checkpoints/step-00000010"));
    b.confirm_switch(from.clone());
    assert_eq!(press(&mut b, KeyCode::Char('n')), BrowserIntent::Handled);
    assert!(b.prompt.is_none());
    b.confirm_switch(from.clone());
    assert_eq!(
        press(&mut b, KeyCode::Char('s')),
        BrowserIntent::Switch {
            from,
            save_current: true
        }
    );
}
