//! Watch mode's steering (a run followed from another terminal that serves a control socket):
//! whether commands may go to it, and the one-line `set KEY=VALUE` input opened with `=`.
//! Deliberately minimal: the training cockpit's richer control pane lives elsewhere.

use super::app::{Action, App, Mode, Pane};
use crate::protocol::Command;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The live key the `=` input starts with, the one people change most.
const DEFAULT_KEY: &str = "train.lr=";

/// Steering state of a watching cockpit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SteerState {
    /// The followed run serves a control socket and `--read-only` was not given.
    pub available: bool,
    /// The `set` input being typed, if open.
    pub input: Option<String>,
}

impl App {
    /// Whether this watching cockpit can send commands to the followed run.
    pub fn can_steer(&self) -> bool {
        self.mode == Mode::Watch && self.steer.available
    }

    /// Keys of the `set` input (and `=` to open it); None when the key is not ours.
    pub(super) fn steer_key(&mut self, key: KeyEvent) -> Option<Vec<Action>> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let Some(input) = self.steer.input.as_mut() else {
            let typing = self.prompt_open && self.focus == Pane::Prompt;
            if key.code == KeyCode::Char('=') && self.can_steer() && !typing {
                self.steer.input = Some(DEFAULT_KEY.to_string());
                return Some(vec![]);
            }
            return None;
        };
        match key.code {
            KeyCode::Esc => self.steer.input = None,
            KeyCode::Backspace => {
                input.pop();
            }
            KeyCode::Char('u') if ctrl => input.clear(),
            KeyCode::Char(c) if !ctrl => input.push(c),
            KeyCode::Enter => {
                let text = self.steer.input.take().unwrap_or_default();
                let Some((k, v)) = text.split_once('=') else {
                    self.warn(format!(
                        "set {text}: expected key=value, e.g. train.lr=3e-4"
                    ));
                    return Some(vec![]);
                };
                self.notify(format!("set {text}: sent"));
                return Some(vec![Action::Send(Command::Set {
                    key: k.trim().to_string(),
                    value: v.trim().to_string(),
                })]);
            }
            _ => {}
        }
        Some(vec![])
    }

    /// The footer line while the `set` input is open.
    pub fn steer_footer(&self) -> Option<String> {
        self.steer
            .input
            .as_ref()
            .map(|i| format!(" set {i}▏  (Enter apply · Esc cancel)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UiConfig;
    use crate::protocol::SampleParams;
    use crossterm::event::KeyEvent;

    fn press(app: &mut App, code: KeyCode) -> Vec<Action> {
        app.on_key(KeyEvent::from(code))
    }

    #[test]
    fn the_set_input_sends_a_set_only_when_the_run_is_steerable() {
        let mut app = App::new(Mode::Watch, &UiConfig::default(), SampleParams::default());
        assert!(press(&mut app, KeyCode::Char('=')).is_empty());
        assert_eq!(app.steer.input, None, "read-only watch: no input");
        assert!(press(&mut app, KeyCode::Char('p')).is_empty());
        app.steer.available = true;
        press(&mut app, KeyCode::Char('='));
        assert!(app.steer_footer().unwrap().contains("train.lr="));
        for c in "1e-4".chars() {
            press(&mut app, KeyCode::Char(c));
        }
        let actions = press(&mut app, KeyCode::Enter);
        assert!(
            matches!(&actions[..], [Action::Send(Command::Set { key, value })]
            if key == "train.lr" && value == "1e-4")
        );
        app.state = crate::tui::app::RunState::Running;
        let actions = press(&mut app, KeyCode::Char('p'));
        assert!(matches!(&actions[..], [Action::Send(Command::Pause)]));
    }
}
