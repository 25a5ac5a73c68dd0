//! The producers behind the cockpit's one `UiEvent` channel: forwarding threads for the
//! receivers the UI cannot change (engine and side-engine links), the key reader, and the
//! system sampler. Hand-written over std channels rather than crossbeam's `select!`: the
//! links are std receivers, and each source only needs "forward until told to stop".
//! Every thread here ends within [`SLICE`] of its stop flag being set, and dropping
//! [`Producers`] sets them all and joins them, so quitting never hangs on one. The key reader
//! is the exception: on a terminal that has gone away it may block in `read`, so it is left
//! behind after a short grace rather than joined.

use super::ui_event::{Generation, UiEvent};
use crate::protocol::{Command, EngineLink, Event, SideEvent};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a waiting producer looks at its stop flag.
pub const SLICE: Duration = Duration::from_millis(50);

/// Engine and side-engine events that may sit in the channel unfolded. A key sent during a
/// flood therefore waits behind at most this many of them: one `Runtime::pump` folds them.
pub const MAX_QUEUED_FLOOD: usize = 20_000;

/// A stop flag shared by a thread and its owner; a child also stops with its parent.
#[derive(Clone, Default)]
pub struct Stop {
    own: Arc<AtomicBool>,
    parent: Option<Arc<AtomicBool>>,
}

impl Stop {
    /// A flag that is also set whenever this one is.
    pub fn child(&self) -> Stop {
        Stop {
            own: Arc::default(),
            parent: Some(self.own.clone()),
        }
    }

    /// Tell the thread to end.
    pub fn set(&self) {
        self.own.store(true, Ordering::Relaxed);
    }

    /// Whether the thread should end.
    pub fn is_set(&self) -> bool {
        self.own.load(Ordering::Relaxed)
            || self
                .parent
                .as_ref()
                .is_some_and(|p| p.load(Ordering::Relaxed))
    }

    /// Sleep `d` in slices; true when the flag was set meanwhile.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            if self.is_set() {
                return true;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(SLICE));
        }
    }
}

/// Room in the channel for flood-prone events: producers take one credit per event and
/// wait while none is left; the loop gives them back once it has received the events.
struct Credits {
    queued: Mutex<usize>,
    room: Condvar,
    cap: usize,
}

impl Credits {
    fn lock(&self) -> MutexGuard<'_, usize> {
        self.queued.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait for room for one event; false when `stop` was set first.
    fn take(&self, stop: &Stop) -> bool {
        let mut queued = self.lock();
        while *queued >= self.cap {
            if stop.is_set() {
                return false;
            }
            queued = match self.room.wait_timeout(queued, SLICE) {
                Ok((q, _)) => q,
                Err(e) => e.into_inner().0,
            };
        }
        *queued += 1;
        true
    }

    fn give_back(&self, n: usize) {
        let mut queued = self.lock();
        *queued = queued.saturating_sub(n);
        self.room.notify_all();
    }
}

/// A producer's handle on the channel: cheap to clone, one per source.
#[derive(Clone)]
pub struct Feed {
    tx: Sender<UiEvent>,
    credits: Arc<Credits>,
    stop: Stop,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Feed {
    /// Send one event; false when the loop is gone (the producer should end).
    pub fn send(&self, event: UiEvent) -> bool {
        self.tx.send(event).is_ok()
    }

    /// A stop flag for one producer, also set when the whole runtime stops.
    pub fn child_stop(&self) -> Stop {
        self.stop.child()
    }

    /// Start a producer thread, joined when [`Producers`] drops; Err names why it could not.
    pub fn spawn(&self, name: &str, body: impl FnOnce() + Send + 'static) -> Result<(), String> {
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(body)
            .map_err(|e| format!("cannot start the {name} thread: {e}"))?;
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        threads.retain(|t| !t.is_finished());
        threads.push(handle);
        Ok(())
    }

    /// Forward `events` as `wrap(event)` until it closes (then `closed` is sent) or `stop`
    /// is set; each event waits for a credit, so a flood stays a frame deep.
    fn forward<T: Send + 'static>(
        &self,
        name: &str,
        events: Receiver<T>,
        stop: Stop,
        wrap: impl Fn(T) -> UiEvent + Send + 'static,
        closed: UiEvent,
    ) -> Result<(), String> {
        let feed = self.clone();
        self.spawn(name, move || loop {
            if stop.is_set() {
                return;
            }
            match events.recv_timeout(SLICE) {
                Ok(ev) => {
                    if !feed.credits.take(&stop) || !feed.send(wrap(ev)) {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    feed.send(closed);
                    return;
                }
            }
        })
    }

    /// Forward an engine's events tagged with `generation`; the commands and thread stay
    /// with the returned connection.
    pub fn connect_engine(
        &self,
        link: EngineLink,
        generation: Generation,
    ) -> Result<EngineConn, String> {
        let stop = self.child_stop();
        self.forward(
            "llite-engine-events",
            link.events,
            stop.clone(),
            move |event: Event| UiEvent::Engine { generation, event },
            UiEvent::EngineClosed { generation },
        )?;
        Ok(EngineConn {
            generation,
            commands: link.commands,
            join: link.join,
            forwarder: stop,
        })
    }

    /// Forward a side engine's events tagged with `generation`; returns the forwarder's stop.
    pub fn forward_side(
        &self,
        events: Receiver<SideEvent>,
        generation: Generation,
    ) -> Result<Stop, String> {
        let stop = self.child_stop();
        self.forward(
            "llite-side-events",
            events,
            stop.clone(),
            move |event: SideEvent| UiEvent::Side { generation, event },
            UiEvent::SideLost { generation },
        )?;
        Ok(stop)
    }

    /// Take a system reading now and every `every` after, for the system pane: of this
    /// process, or of the writer of the run `watched` names (watch mode; it may change).
    pub fn start_sampler(&self, every: Duration, watched: WatchedDir) -> Result<(), String> {
        let (feed, stop) = (self.clone(), self.child_stop());
        self.spawn("llite-sys", move || {
            use crate::tui::panes::system::Reading;
            let mut sampler = crate::sys::SysSampler::new();
            loop {
                let dir = watched.lock().map(|d| d.clone()).unwrap_or_default();
                let reading = Reading::take(&mut sampler, dir.as_deref());
                if !feed.send(UiEvent::System(Box::new(reading))) || stop.sleep(every) {
                    break;
                }
            }
        })
    }
}

/// The run directory watch mode follows, shared with the system sampler (None: live mode).
pub type WatchedDir = Arc<Mutex<Option<std::path::PathBuf>>>;

/// The runtime's end of one engine: its commands and thread (its events are forwarded into
/// the channel); dropping it stops the forwarding, which lets go of the engine's events.
pub struct EngineConn {
    /// Tags this engine's events in the channel.
    pub generation: Generation,
    /// Commands to the engine.
    pub commands: Sender<Command>,
    /// The engine thread, joined at shutdown.
    pub join: Option<JoinHandle<()>>,
    forwarder: Stop,
}

impl Drop for EngineConn {
    fn drop(&mut self) {
        self.forwarder.set();
    }
}

/// The loop's end of the channel; dropping it stops and joins every producer thread.
pub struct Producers {
    feed: Feed,
    rx: Receiver<UiEvent>,
    /// Flood events received since the credits were last given back.
    unsettled: usize,
}

impl Default for Producers {
    fn default() -> Self {
        Self::new()
    }
}

impl Producers {
    /// An empty channel; producers attach through [`Producers::feed`].
    pub fn new() -> Self {
        Self::with_flood_cap(MAX_QUEUED_FLOOD)
    }

    /// As `new`, letting at most `cap` flood events wait in the channel.
    pub fn with_flood_cap(cap: usize) -> Self {
        let (tx, rx) = mpsc::channel();
        let credits = Credits {
            queued: Mutex::new(0),
            room: Condvar::new(),
            cap: cap.max(1),
        };
        Self {
            feed: Feed {
                tx,
                credits: Arc::new(credits),
                stop: Stop::default(),
                threads: Arc::default(),
            },
            rx,
            unsettled: 0,
        }
    }

    /// A handle for a new producer.
    pub fn feed(&self) -> &Feed {
        &self.feed
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<UiEvent> {
        let ev = self.rx.try_recv().ok()?;
        self.unsettled += usize::from(ev.is_metered());
        Some(ev)
    }

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<UiEvent> {
        let ev = self.rx.recv_timeout(timeout).ok()?;
        self.unsettled += usize::from(ev.is_metered());
        Some(ev)
    }

    /// Let the flood producers send again as many events as were received.
    pub fn settle(&mut self) {
        if self.unsettled > 0 {
            self.feed
                .credits
                .give_back(std::mem::take(&mut self.unsettled));
        }
    }
}

impl Drop for Producers {
    fn drop(&mut self) {
        self.feed.stop.set();
        let threads =
            std::mem::take(&mut *self.feed.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

/// Reads the terminal's keys and resizes on a thread of its own while the loop runs; the
/// reader is stopped and joined when this drops (before the terminal is restored).
pub struct KeyReader {
    stop: Stop,
    thread: Option<JoinHandle<()>>,
}

impl KeyReader {
    /// Start reading; Err names why the thread could not start.
    pub fn start(feed: &Feed) -> Result<Self, String> {
        use crossterm::event::{self, Event as TermEvent};
        let (feed, stop) = (feed.clone(), feed.child_stop());
        let halt = stop.clone();
        let thread = std::thread::Builder::new()
            .name("llite-keys".into())
            .spawn(move || {
                while !halt.is_set() {
                    let ready = match event::poll(SLICE) {
                        Ok(false) => continue,
                        Ok(true) => event::read(),
                        Err(e) => Err(e),
                    };
                    let sent = match ready {
                        Ok(TermEvent::Key(key)) => feed.send(UiEvent::Key(key)),
                        Ok(TermEvent::Resize(..)) => feed.send(UiEvent::Resize),
                        Ok(_) => true,
                        Err(e) => {
                            feed.send(UiEvent::InputFailed(e.to_string()));
                            return;
                        }
                    };
                    if !sent {
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start the key reader: {e}"))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

/// How long dropping a [`KeyReader`] waits for its thread before leaving it behind.
const KEY_READER_GRACE: Duration = Duration::from_millis(500);

impl Drop for KeyReader {
    /// Stop the reader and join it, but never wait on a terminal that has gone away: crossterm
    /// can block in `read` on a hung-up tty, so after a short grace the thread is left to end
    /// with the process (it holds nothing that needs flushing).
    fn drop(&mut self) {
        self.stop.set();
        let Some(t) = self.thread.take() else { return };
        let deadline = std::time::Instant::now() + KEY_READER_GRACE;
        while !t.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if t.is_finished() {
            let _ = t.join();
        }
    }
}
