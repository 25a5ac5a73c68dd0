//! The one stream the cockpit's loop reads. Every source (engines, keys, stop signals, the
//! side engine, the system sampler, file watches, exports, control replies) is a producer
//! that sends a `UiEvent` into one channel (see `producers.rs`), so the loop blocks in one
//! place, with a frame timeout, instead of polling each source in turn.

use super::remote::RemoteResult;
use crate::protocol::{Event, FinishReason, SideEvent};
use crossterm::event::KeyEvent;

/// Which engine (or side engine) an event came from. Each launch takes the next number, so
/// the events of a replaced engine (retiring, abandoned or restarted) are told apart from
/// the current one's even though they share the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Generation(pub u64);

impl Generation {
    /// The generation after this one.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

/// One thing that happened, from whichever source.
#[derive(Debug)]
pub enum UiEvent {
    /// An event of the engine launched as `generation`.
    Engine {
        generation: Generation,
        event: Event,
    },
    /// That engine's event channel closed: its thread ended (finished, failed or panicked).
    /// Sent after its last event.
    EngineClosed { generation: Generation },
    /// A key press (or release/repeat, which the App ignores).
    Key(KeyEvent),
    /// The terminal changed size: redraw.
    Resize,
    /// The terminal's input could not be read: the loop ends with this error.
    InputFailed(String),
    /// SIGINT, SIGTERM or SIGHUP, handled like Ctrl-C.
    Stop(FinishReason),
    /// An event of the side engine started as `generation`.
    Side {
        generation: Generation,
        event: SideEvent,
    },
    /// That side engine's thread ended.
    SideLost { generation: Generation },
    /// A new reading for the system pane.
    System(Box<crate::tui::panes::system::Reading>),
    /// The followed run's directory changed (or its polling interval passed): read its
    /// `metrics.jsonl` on.
    WatchedChanged,
    /// The themes directory changed: load the theme again.
    ThemeChanged,
    /// The runs directory changed: list checkpoints (and runs) again when shown.
    CheckpointsChanged,
    /// A Hugging Face export finished: its one-line outcome.
    ExportDone(String),
    /// A control request to the watched run answered.
    Control(RemoteResult),
}

impl UiEvent {
    /// Events that can come in floods (engine and side engine output): their producers are
    /// metered so that a key never waits behind more than a frame's worth of them.
    pub fn is_metered(&self) -> bool {
        matches!(self, UiEvent::Engine { .. } | UiEvent::Side { .. })
    }
}
