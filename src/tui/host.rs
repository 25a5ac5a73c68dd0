//! The training cockpit serves its run's control socket too, so a second terminal can steer
//! it with `llite-tui ctl` or `watch`: opened when the engine reports `Started`, fed every
//! engine event, closed when that engine finishes, is lost or is switched away from.

use crate::protocol::{AlertKind, Command, Event};
use std::sync::mpsc::Sender;

/// The control server of the cockpit's current engine, if one is open.
#[derive(Default)]
pub struct Host {
    #[cfg(unix)]
    server: Option<crate::control::ControlServer>,
}

impl Host {
    /// Feed one event of the current engine; returns a notice alert when the socket could
    /// not be opened (the run trains on, unsteerable from outside).
    pub fn observe(&mut self, event: &Event, commands: &Sender<Command>) -> Option<Event> {
        #[cfg(unix)]
        {
            if let Event::Started { info, step } = event {
                self.server = None;
                match crate::control::ControlServer::start(info, commands.clone()) {
                    Ok(s) => self.server = Some(s),
                    Err(e) => {
                        return Some(Event::Alert {
                            step: *step,
                            kind: AlertKind::Notice,
                            detail: format!(
                                "no control endpoint, `llite-tui ctl` cannot steer this run: {e:#}"
                            ),
                        })
                    }
                }
            }
            if let Some(s) = &self.server {
                s.observe(event);
            }
            if matches!(event, Event::Finished { .. }) {
                self.server = None;
            }
        }
        #[cfg(not(unix))]
        let _ = (event, commands, AlertKind::Notice);
        None
    }

    /// Stop serving (the engine is gone or being replaced); removes the socket.
    pub fn close(&mut self) {
        #[cfg(unix)]
        {
            self.server = None;
        }
    }
}
