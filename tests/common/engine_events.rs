//! Test helpers that drive an in-process engine through its protocol: stopping it, waiting
//! for an event, collecting a failing run's events.

use super::next_event;
use llite_tui::protocol::{AlertKind, Command, EngineLink, Event, FinishReason};

/// Ask the engine to end the run as a user would (`FinishReason::Stopped`), with or without
/// a final save.
pub fn send_stop(link: &EngineLink, save: bool) {
    link.commands
        .send(Command::Stop {
            save,
            reason: FinishReason::Stopped,
        })
        .unwrap();
}

/// Skip events until `pick` returns a value; panics on an engine error.
pub fn wait_for_event<T>(link: &EngineLink, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    loop {
        let e = next_event(link, 120);
        if let Event::Error { message, .. } = &e {
            panic!("engine error: {message}");
        }
        if let Some(v) = pick(&e) {
            return v;
        }
    }
}

/// Skip events until a step at or past `at_least` is reported; panics on an engine error.
pub fn wait_step(link: &EngineLink, at_least: u64) {
    wait_for_event(link, |e| match e {
        Event::Step(s) if s.step >= at_least => Some(()),
        _ => None,
    })
}

/// Every event up to and including `Finished`, errors included (unlike [`run_to_end`], for
/// tests of how a run fails); each one must come within `secs`.
pub fn events_until_finished(link: &EngineLink, secs: u64) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        let e = next_event(link, secs);
        let done = matches!(e, Event::Finished { .. });
        events.push(e);
        if done {
            return events;
        }
    }
}

/// The details of the alerts of one kind, in order.
pub fn alert_details(events: &[Event], kind: AlertKind) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Alert {
                kind: k, detail, ..
            } if *k == kind => Some(detail.clone()),
            _ => None,
        })
        .collect()
}

/// The engine's `Error` message, for a run that must fail; panics naming `what` was accepted
/// if the run finishes without one.
pub fn engine_error(link: &EngineLink, what: &str) -> String {
    loop {
        match next_event(link, 60) {
            Event::Error { message, .. } => return message,
            Event::Finished { .. } => panic!("{what} was accepted"),
            _ => {}
        }
    }
}
