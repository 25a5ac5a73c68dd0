//! The terminal loop: every source (engines, keys, signals, side engine, system sampler, file
//! watches, exports, control replies) sends a `UiEvent` into one channel (`producers.rs`);
//! the loop blocks on it with a frame timeout, folds events into the App, performs the App's
//! actions and redraws at most ~20 times a second.

use super::app::App;
use super::panes;
use super::producers::{EngineConn, KeyReader, Producers, WatchedDir};
use super::theme::Theme;
use super::ui_event::{Generation, UiEvent};
use super::watch::{MetricsTail, WatchFeed};
use crate::protocol::{EngineLauncher, FinishReason, StartFrom};
use crate::signals::{SignalForwarder, StopSignals};
use crate::store::layout;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// The engines' events (a child module, so it reaches the runtime's fields).
#[path = "engine_feed.rs"]
mod engine_feed;
// Carrying out the App's actions.
#[path = "perform.rs"]
mod perform;
// The runs pane's requests.
#[path = "runs_feed.rs"]
mod runs_feed;

const FRAME: Duration = Duration::from_millis(50);
/// Redraw at least this often (clocks and ages move on).
const STALE: Duration = Duration::from_secs(1);
/// Upper bound on events folded per `pump` so a flood cannot starve key handling: engine
/// events wait in the channel at most `producers::MAX_QUEUED_FLOOD` deep, so a key sent
/// during a flood is folded by the second pump at the latest.
pub const MAX_EVENTS_PER_FRAME: usize = 20_000;

/// An engine asked to stop, and what to launch once its channel closes.
struct Retiring {
    engine: EngineConn,
    then: StartFrom,
}

/// Watch mode: the followed run's metrics, its directory watch, and the directory.
struct Followed {
    tail: MetricsTail,
    watch: WatchFeed,
    dir: PathBuf,
}

impl Followed {
    /// Follow `dir`, and point the system sampler at its writer.
    fn new(dir: &Path, producers: &Producers, watched: &WatchedDir) -> Self {
        if let Ok(mut w) = watched.lock() {
            *w = Some(dir.into());
        }
        let watch = WatchFeed::start(
            dir,
            true,
            Duration::from_millis(500),
            producers.feed(),
            || UiEvent::WatchedChanged,
        );
        Self {
            tail: MetricsTail::new(layout::metrics_path(dir)),
            watch,
            dir: dir.into(),
        }
    }
}

/// Everything the loop owns besides the App.
pub struct Runtime {
    /// The cockpit's state, folded from events and keys.
    pub app: App,
    /// The theme in use (reloaded when its file changes).
    pub theme: Theme,
    themes_dir: PathBuf,
    theme_name: String,
    theme_watch: WatchFeed,
    runs_dir: PathBuf,
    ckpt_watch: WatchFeed,
    refresh_checkpoints: bool,
    launcher: Option<Arc<Mutex<Box<dyn EngineLauncher>>>>,
    engine: Option<EngineConn>,
    /// The generation of the last engine launched.
    launched: Generation,
    retiring: Option<Retiring>,
    /// Threads to join once finished (never joined while still running).
    zombies: Vec<std::thread::JoinHandle<()>>,
    tail: Option<Followed>,
    /// The followed run's directory, shared with the system sampler (its writer's figures).
    watched: WatchedDir,
    /// Watch mode: the followed run's control socket, unless `--read-only`.
    remote: Option<super::remote::Remote>,
    /// Live mode: the control socket this cockpit serves for its engine's run.
    host: super::host::Host,
    /// Stop signals delivered to the process, handled like Ctrl-C (the forwarder thread
    /// lives as long as the runtime).
    signals: Option<SignalForwarder>,
    /// The side engine (browser `i`): samples a stored checkpoint while training goes on.
    side: super::side::SideHost,
    /// Why the terminal's input failed, ending `run`.
    input_error: Option<String>,
    /// The one channel every source sends into (last: its drop joins the producer threads).
    producers: Producers,
}

/// A stuck UI loop still ends on the third signal: terminal restored, 128 + signal number.
const HARD_EXIT_SIGNALS: u32 = 3;

impl Runtime {
    /// Set up themes, watches and the system sampler; no terminal is touched here.
    pub fn new(app: App, opts: &super::CockpitOptions) -> Self {
        Self::with_producers(app, opts, Producers::new())
    }

    /// As `new`, over a given channel (tests use a small flood cap).
    pub(crate) fn with_producers(
        app: App,
        opts: &super::CockpitOptions,
        producers: Producers,
    ) -> Self {
        let (theme, warn) = Theme::load(&opts.themes_dir, &opts.ui.theme);
        let mut app = app;
        app.theme_warning = warn;
        app.runs_dir = opts.runs_dir.clone();
        let feed = producers.feed().clone();
        let every = Duration::from_secs(panes::system::INTERVAL_SECS);
        let watched = super::producers::WatchedDir::default();
        if let Err(why) = feed.start_sampler(every, watched.clone()) {
            app.warn(why);
        }
        let poll = Duration::from_secs(2);
        Self {
            app,
            theme,
            themes_dir: opts.themes_dir.clone(),
            theme_name: opts.ui.theme.clone(),
            theme_watch: WatchFeed::start(&opts.themes_dir, false, poll, &feed, || {
                UiEvent::ThemeChanged
            }),
            runs_dir: opts.runs_dir.clone(),
            ckpt_watch: WatchFeed::start(&opts.runs_dir, true, poll, &feed, || {
                UiEvent::CheckpointsChanged
            }),
            refresh_checkpoints: true,
            launcher: None,
            engine: None,
            launched: Generation::default(),
            retiring: None,
            zombies: Vec::new(),
            tail: None,
            watched,
            remote: None,
            host: Default::default(),
            signals: None,
            side: super::side::SideHost::new(opts.side_sampler, feed),
            input_error: None,
            producers,
        }
    }

    /// Treat SIGINT/SIGTERM/SIGHUP like Ctrl-C: save and quit, then quit at once; the third
    /// ends the process even if the loop is stuck.
    pub fn with_signals(mut self, signals: StopSignals) -> Self {
        let feed = self.producers.feed().clone();
        let forwarder = signals.forward(move |reason, nth| {
            if nth >= HARD_EXIT_SIGNALS {
                let _ = ratatui::try_restore();
                std::process::exit(reason.signal_exit_code().unwrap_or(1));
            }
            feed.send(UiEvent::Stop(reason));
        });
        self.signals = Some(forwarder);
        self
    }

    /// Start the first engine.
    pub fn with_engine(mut self, launcher: Box<dyn EngineLauncher>, start: StartFrom) -> Self {
        self.launcher = Some(Arc::new(Mutex::new(launcher)));
        self.launch(start);
        self
    }

    /// Follow `run_dir/metrics.jsonl` instead of an engine.
    pub fn with_tail(mut self, run_dir: &Path) -> Self {
        self.tail = Some(Followed::new(run_dir, &self.producers, &self.watched));
        self
    }

    /// Steer the followed run through its control socket whenever it serves one.
    pub fn with_remote(mut self, run_dir: &Path) -> Self {
        let feed = self.producers.feed().clone();
        self.remote = Some(super::remote::Remote::new(run_dir.into(), feed));
        self
    }

    /// A handle to send events into the loop, as its producers do (scripted input, tests).
    pub fn feed(&self) -> &super::producers::Feed {
        self.producers.feed()
    }

    /// Fold the events waiting in the channel (at most `MAX_EVENTS_PER_FRAME`) into the App
    /// without blocking; true when anything changed. The loop's step, and the tests' driver.
    pub fn pump(&mut self) -> bool {
        let mut changed = false;
        for _ in 0..MAX_EVENTS_PER_FRAME {
            let Some(event) = self.producers.try_recv() else {
                break;
            };
            changed |= self.fold(event);
        }
        self.producers.settle();
        changed | self.settle()
    }

    /// Fold one event, performing what it asks for; true when anything changed.
    fn fold(&mut self, event: UiEvent) -> bool {
        match event {
            UiEvent::Engine { generation, event } => return self.engine_event(generation, event),
            UiEvent::EngineClosed { generation } => return self.engine_closed(generation),
            UiEvent::Key(key) => {
                let actions = self.app.on_key(key);
                self.perform(actions);
            }
            UiEvent::Resize => {}
            UiEvent::InputFailed(why) => self.input_error = Some(why),
            UiEvent::Stop(reason) => {
                self.app.stop_signal.get_or_insert(reason);
                let actions = self.app.interrupt(reason);
                self.perform(actions);
            }
            UiEvent::Side { generation, event } => {
                if !self.side.is_current(generation) {
                    return false;
                }
                self.app.on_side_event(event);
            }
            UiEvent::SideLost { generation } => {
                if !self.side.lost(generation) {
                    return false;
                }
                self.app.on_side_lost("the side engine stopped");
            }
            UiEvent::System(reading) => {
                self.app.system.update_from(*reading);
                return self.app.system.shown;
            }
            UiEvent::WatchedChanged => return self.follow(),
            UiEvent::ThemeChanged => {
                self.theme_watch.ack();
                let (theme, warn) = Theme::load(&self.themes_dir, &self.theme_name);
                if theme == self.theme && warn == self.app.theme_warning {
                    return false;
                }
                self.theme = theme;
                self.app.theme_warning = warn;
            }
            UiEvent::CheckpointsChanged => {
                self.ckpt_watch.ack();
                self.refresh_checkpoints = true;
                return self.refresh_runs_pane();
            }
            UiEvent::ExportDone(msg) => {
                self.app.notify(msg);
                self.refresh_checkpoints = true;
            }
            UiEvent::Control(reply) => self.control_reply(reply),
        }
        true
    }

    /// After a batch: list checkpoints again if asked while the browser shows them, and
    /// join finished threads; true when the browser changed.
    fn settle(&mut self) -> bool {
        self.zombies.retain(|j| !j.is_finished());
        let browsing = self.app.overlay == super::app::Overlay::Checkpoints;
        if !(self.refresh_checkpoints && browsing) {
            return false;
        }
        self.refresh_checkpoints = false;
        self.app.set_checkpoints(self.list_checkpoints());
        true
    }

    /// Watch mode: read what the followed run appended; true when anything changed.
    fn follow(&mut self) -> bool {
        let Some(followed) = &mut self.tail else {
            return false;
        };
        followed.watch.ack();
        let steerable = self.remote.as_ref().is_some_and(|r| r.available());
        let mut changed = steerable != self.app.steer.available;
        self.app.steer.available = steerable;
        for ev in followed.tail.poll() {
            changed = true;
            self.app.on_event(ev);
        }
        self.refresh_checkpoints = true;
        // A writer that died leaves a "running" run behind: show how stale it is.
        self.app.last_write_unix = std::fs::metadata(layout::metrics_path(&followed.dir))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        changed
    }

    /// A control reply: a notice, and a remote sample's prompt freed (its text arrives
    /// through `metrics.jsonl` like any other sample).
    fn control_reply(&mut self, r: super::remote::RemoteResult) {
        if let Some(remote) = &mut self.remote {
            remote.answered();
        }
        let done = self.app.prompt.active.as_ref().map(|a| a.id);
        if r.sample_for.is_some() && r.sample_for == done {
            self.app.prompt.active = None;
        }
        match r.ok {
            true => self.app.notify(format!("run: {}", r.message)),
            false => self.app.warn(format!("run refused: {}", r.message)),
        }
    }

    /// Run until the user quits; the caller owns terminal setup and restore (keys are read
    /// on a thread of this call's own, stopped before it returns).
    pub fn run(&mut self, terminal: &mut ratatui::DefaultTerminal) -> anyhow::Result<()> {
        let _keys = KeyReader::start(self.producers.feed()).map_err(anyhow::Error::msg)?;
        let mut last_draw = Instant::now() - Duration::from_secs(10);
        let mut dirty = true;
        loop {
            self.app.tick(layout::unix_now());
            dirty |= self.pump();
            if let Some(why) = self.input_error.take() {
                return self.terminal_lost(format!("cannot read the terminal: {why}"));
            }
            if self.app.should_quit {
                return Ok(());
            }
            let since = last_draw.elapsed();
            if (dirty && since >= FRAME) || since >= STALE {
                self.app.tick(layout::unix_now());
                if let Err(e) = terminal.draw(|f| panes::draw(f, &self.app, &self.theme)) {
                    return self.terminal_lost(format!("cannot draw on the terminal: {e}"));
                }
                last_draw = Instant::now();
                dirty = false;
            }
            // Sleep until an event comes or the next draw is due.
            let due = if dirty { FRAME } else { STALE };
            let wait = due.saturating_sub(last_draw.elapsed());
            if let Some(event) = self
                .producers
                .recv_timeout(wait.max(Duration::from_millis(1)))
            {
                dirty |= self.fold(event);
            }
        }
    }

    /// The terminal went away (its window closed, the ssh session dropped) before the hang-up
    /// signal was handled: do what SIGHUP does, without drawing. A live engine is told to save
    /// and stop, and [`Runtime::shutdown`] waits (bounded) for that save.
    fn terminal_lost(&mut self, why: String) -> anyhow::Result<()> {
        self.app.stop_signal.get_or_insert(FinishReason::HangUp);
        if !self.app.quit_after_stop {
            let actions = self.app.interrupt(FinishReason::HangUp);
            self.perform(actions);
        }
        anyhow::bail!(why)
    }

    /// After the terminal is restored: give a stopping engine a moment to flush, never hang.
    /// Returns the app, so the exit message is built after a final save had its chance.
    pub fn shutdown(mut self) -> App {
        // A final save still running (the terminal went away mid-save) gets time to finish.
        let saving = self.app.quit_after_stop && !self.app.abandon_save;
        let grace = Duration::from_secs(if saving { 120 } else { 5 });
        let deadline = Instant::now() + grace;
        let mut joins: Vec<_> = self.zombies.drain(..).collect();
        joins.extend(self.engine.take().and_then(|mut e| e.join.take()));
        joins.extend(self.retiring.take().and_then(|mut r| r.engine.join.take()));
        joins.extend(self.side.close());
        if saving && joins.iter().any(|j| !j.is_finished()) {
            // The terminal is restored: say why the process has not exited yet.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "waiting up to {} s for the final checkpoint save to finish…",
                grace.as_secs()
            );
        }
        while Instant::now() < deadline && joins.iter().any(|j| !j.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
        }
        for j in joins.into_iter().filter(|j| j.is_finished()) {
            let _ = j.join();
        }
        self.app
    }
}
