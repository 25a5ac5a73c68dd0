//! The prompt pane on its own: editing, knobs, the intents its keys return and the sample
//! events it folds (the App's handling of the intents is in app_tests / history_tests).

use super::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const LIVE: PromptKeyCtx = PromptKeyCtx {
    side: false,
    step: 42,
};

fn press(p: &mut PromptState, code: KeyCode) -> PromptIntent {
    p.on_key(KeyEvent::new(code, KeyModifiers::NONE), LIVE)
}

fn typed(text: &str) -> PromptState {
    let mut p = PromptState::new(SampleParams::default());
    for c in text.chars() {
        assert_eq!(press(&mut p, KeyCode::Char(c)), PromptIntent::Handled);
    }
    p
}

#[test]
fn editing_keys_move_the_cursor_by_chars_and_enter_asks_to_sample_the_line() {
    let mut p = typed("héllo");
    assert_eq!(p.cursor, 5);
    press(&mut p, KeyCode::Left);
    press(&mut p, KeyCode::Backspace);
    assert_eq!((p.input.as_str(), p.cursor), ("hélo", 3));
    press(&mut p, KeyCode::Home);
    press(&mut p, KeyCode::Delete);
    assert_eq!(p.input, "élo");
    press(&mut p, KeyCode::End);
    press(&mut p, KeyCode::Char('!'));
    assert_eq!(
        press(&mut p, KeyCode::Enter),
        PromptIntent::Sample {
            prompt: "élo!".into(),
            from_input: true
        }
    );
    // Tab is left to focus cycling.
    assert_eq!(press(&mut p, KeyCode::Tab), PromptIntent::Unhandled);
    let ctrl_u = KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL);
    assert_eq!(p.on_key(ctrl_u, LIVE), PromptIntent::Handled);
    assert_eq!((p.input.as_str(), p.cursor), ("", 0));
}

#[test]
fn knobs_are_picked_with_up_down_and_adjusted_within_bounds() {
    let mut p = PromptState::new(SampleParams::default());
    let t0 = p.params.temperature;
    press(&mut p, KeyCode::PageUp);
    assert!((p.params.temperature - (t0 + 0.1)).abs() < 1e-6);
    press(&mut p, KeyCode::Up);
    assert_eq!(p.selected, 3, "Up wraps to max tokens");
    for _ in 0..1000 {
        press(&mut p, KeyCode::PageDown);
    }
    assert_eq!(p.params.max_tokens, 1);
    press(&mut p, KeyCode::Down);
    press(&mut p, KeyCode::Down);
    assert_eq!(p.selected, 1);
    for _ in 0..1000 {
        press(&mut p, KeyCode::PageUp);
    }
    assert_eq!(p.params.top_k, 1000);
}

#[test]
fn sample_events_stream_into_the_active_request_and_finish_into_the_history() {
    let mut p = PromptState::new(SampleParams::default());
    assert!(p.accepts("ROMEO:"));
    assert!(!p.accepts("   "));
    let Command::Sample { id, prompt, .. } = p.start("ROMEO:".into()) else {
        panic!("not a sample command");
    };
    assert_eq!(prompt, "ROMEO:");
    assert!(!p.accepts("again"), "one generation at a time");
    for (tid, text) in [(id, " O"), (id + 7, " other request"), (id, " she")] {
        p.on_event(&Event::SampleToken {
            id: tid,
            text: text.into(),
            step: 1,
        });
    }
    assert_eq!(p.active.as_ref().unwrap().text, " O she");
    p.on_event(&Event::SampleDone {
        step: 3,
        id,
        prompt: "ROMEO:".into(),
        text: " O she".into(),
        tokens: 2,
        tokens_per_s: 20.0,
    });
    assert!(p.active.is_none());
    assert_eq!(p.history.last_prompt(), Some("ROMEO:"));
    // The next request gets a fresh id; a lost engine frees the pane.
    let Command::Sample { id: next, .. } = p.start("x".into()) else {
        panic!()
    };
    assert!(next > id);
    p.on_engine_gone();
    assert!(p.active.is_none());
}

#[test]
fn esc_cancels_a_streaming_generation_into_the_history_then_closes() {
    let mut p = PromptState::new(SampleParams::default());
    let Command::Sample { id, .. } = p.start("KING:".into()) else {
        panic!()
    };
    p.on_event(&Event::SampleToken {
        id,
        text: " my".into(),
        step: 1,
    });
    assert_eq!(press(&mut p, KeyCode::Esc), PromptIntent::Cancel(id));
    let kept = p.history.iter().last().unwrap();
    assert_eq!(
        (kept.step, kept.text.as_str()),
        (42, " my [cancelled]"),
        "stamped with the context's step"
    );
    assert_eq!(press(&mut p, KeyCode::Esc), PromptIntent::Close);
}

#[test]
fn with_a_side_target_enter_and_esc_belong_to_the_side_engine() {
    let side = PromptKeyCtx {
        side: true,
        step: 0,
    };
    let mut p = typed("hi");
    let enter = KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE);
    let esc = KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE);
    assert_eq!(p.on_key(enter, side), PromptIntent::SideSubmit);
    assert_eq!(p.on_key(esc, side), PromptIntent::SideEscape);
    assert_eq!(p.take_input(), "hi");
    assert_eq!((p.input.as_str(), p.cursor), ("", 0));
}

#[test]
fn ctrl_r_repeats_the_newest_prompt_or_says_there_is_none() {
    let mut p = PromptState::new(SampleParams::default());
    let ctrl_r = KeyEvent::new(KeyCode::Char('r'), KeyModifiers::CONTROL);
    assert_eq!(p.on_key(ctrl_r, LIVE), PromptIntent::NothingToRepeat);
    p.on_event(&Event::SampleDone {
        step: 1,
        id: 9,
        prompt: "JULIET:".into(),
        text: "!".into(),
        tokens: 1,
        tokens_per_s: 1.0,
    });
    assert_eq!(
        p.on_key(ctrl_r, LIVE),
        PromptIntent::Sample {
            prompt: "JULIET:".into(),
            from_input: false
        }
    );
}
