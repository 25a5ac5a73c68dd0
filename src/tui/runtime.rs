//! The terminal loop: drains engine events without blocking, polls keys with a short timeout,
//! performs the App's actions, follows files with notify, and redraws at most ~20 times a second.

use super::app::{Action, App, Mode};
use super::panes;
use super::theme::Theme;
use super::watch::{ChangeWatch, MetricsTail};
use crate::protocol::{Command, EngineLauncher, EngineLink, Event, FinishReason, StartFrom};
use crate::signals::{SignalForwarder, StopSignals};
use crate::store::{layout, listing, pin};
use crossterm::event::{self, Event as TermEvent};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// The runs pane's requests (a child module, so it reaches the runtime's fields).
#[path = "runs_feed.rs"]
mod runs_feed;

const FRAME: Duration = Duration::from_millis(50);
/// Upper bound on events folded per frame so a flood cannot starve key handling.
const MAX_EVENTS_PER_FRAME: usize = 20_000;

/// Everything the loop owns besides the App.
pub struct Runtime {
    pub app: App,
    pub theme: Theme,
    themes_dir: PathBuf,
    theme_name: String,
    theme_watch: ChangeWatch,
    runs_dir: PathBuf,
    ckpt_watch: ChangeWatch,
    refresh_checkpoints: bool,
    launcher: Option<Arc<Mutex<Box<dyn EngineLauncher>>>>,
    link: Option<EngineLink>,
    /// An engine asked to stop, and what to launch once its channel closes.
    retiring: Option<(EngineLink, StartFrom)>,
    /// Threads to join once finished (never joined while still running).
    zombies: Vec<std::thread::JoinHandle<()>>,
    /// Watch mode: the followed run's metrics and its directory watch.
    tail: Option<(MetricsTail, ChangeWatch, PathBuf)>,
    /// Watch mode: the followed run's control socket, unless `--read-only`.
    remote: Option<super::remote::Remote>,
    /// Live mode: the control socket this cockpit serves for its engine's run.
    host: super::host::Host,
    export_results: (mpsc::Sender<String>, mpsc::Receiver<String>),
    /// Stop signals delivered to the process, handled like Ctrl-C (the forwarder thread
    /// lives as long as the runtime).
    signals: Option<(SignalForwarder, mpsc::Receiver<FinishReason>)>,
    /// The side engine (browser `i`): samples a stored checkpoint while training goes on.
    side: super::side::SideHost,
    /// Process and GPU readings for the system pane, and when the next one is due.
    sys: (crate::sys::SysSampler, Instant),
}

/// A stuck UI loop still ends on the third signal: terminal restored, 128 + signal number.
const HARD_EXIT_SIGNALS: u32 = 3;

impl Runtime {
    /// Set up themes and watches; no terminal is touched here.
    pub fn new(app: App, opts: &super::CockpitOptions) -> Self {
        let (theme, warn) = Theme::load(&opts.themes_dir, &opts.ui.theme);
        let mut app = app;
        app.theme_warning = warn;
        app.runs_dir = opts.runs_dir.clone();
        Self {
            app,
            theme,
            themes_dir: opts.themes_dir.clone(),
            theme_name: opts.ui.theme.clone(),
            theme_watch: ChangeWatch::new(&opts.themes_dir, false, Duration::from_secs(2)),
            runs_dir: opts.runs_dir.clone(),
            ckpt_watch: ChangeWatch::new(&opts.runs_dir, true, Duration::from_secs(2)),
            refresh_checkpoints: true,
            launcher: None,
            link: None,
            retiring: None,
            zombies: Vec::new(),
            tail: None,
            remote: None,
            host: Default::default(),
            export_results: mpsc::channel(),
            signals: None,
            side: super::side::SideHost::new(opts.side_sampler),
            sys: (crate::sys::SysSampler::new(), Instant::now()),
        }
    }

    /// Treat SIGINT/SIGTERM/SIGHUP like Ctrl-C: save and quit, then quit at once; the third
    /// ends the process even if the loop is stuck.
    pub fn with_signals(mut self, signals: StopSignals) -> Self {
        let (tx, rx) = mpsc::channel();
        let forwarder = signals.forward(move |reason, nth| {
            if nth >= HARD_EXIT_SIGNALS {
                let _ = ratatui::try_restore();
                std::process::exit(reason.signal_exit_code().unwrap_or(1));
            }
            let _ = tx.send(reason);
        });
        self.signals = Some((forwarder, rx));
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
        let watch = ChangeWatch::new(run_dir, true, Duration::from_millis(500));
        self.tail = Some((
            MetricsTail::new(run_dir.join("metrics.jsonl")),
            watch,
            run_dir.into(),
        ));
        self
    }

    /// Steer the followed run through its control socket whenever it serves one.
    pub fn with_remote(mut self, run_dir: &Path) -> Self {
        self.remote = Some(super::remote::Remote::new(run_dir.into()));
        self
    }

    /// Fold control replies into the app: a notice each, and a remote sample's prompt freed
    /// (its text arrives through `metrics.jsonl` like any other sample).
    fn pump_remote(&mut self) -> bool {
        let Some(remote) = &mut self.remote else {
            return false;
        };
        let results = remote.poll();
        for r in &results {
            let done = self.app.prompt.active.as_ref().map(|a| a.0);
            if r.sample_for.is_some() && r.sample_for == done {
                self.app.prompt.active = None;
            }
            match r.ok {
                true => self.app.notify(format!("run: {}", r.message)),
                false => self.app.warn(format!("run refused: {}", r.message)),
            }
        }
        !results.is_empty()
    }

    fn launch(&mut self, from: StartFrom) {
        let mode = if matches!(from, StartFrom::Inspect(_)) {
            Mode::Inspect
        } else {
            Mode::Live
        };
        let Some(launcher) = &self.launcher else {
            self.app.warn(super::keys::READ_ONLY);
            return;
        };
        let result = match launcher.try_lock() {
            Ok(l) => l.launch(from),
            Err(_) => Err(anyhow::anyhow!(
                "busy with an export; try again when it is done"
            )),
        };
        match result {
            Ok(link) => {
                self.app.on_engine_launched(mode);
                self.link = Some(link);
            }
            Err(e) => {
                self.app.on_engine_lost();
                self.app.error = Some(format!("cannot start engine: {e:#}"));
            }
        }
    }

    /// Fold pending engine / file events into the App; true when anything changed.
    pub fn pump(&mut self) -> bool {
        let mut changed = false;
        let mut actions = Vec::new();
        if let Some((_, rx)) = &self.signals {
            while let Ok(reason) = rx.try_recv() {
                changed = true;
                self.app.stop_signal.get_or_insert(reason);
                actions.extend(self.app.interrupt(reason));
            }
        }
        if let Some(link) = &self.link {
            let mut lost = false;
            for _ in 0..MAX_EVENTS_PER_FRAME {
                match link.events.try_recv() {
                    Ok(ev) => {
                        changed = true;
                        let notice = self.host.observe(&ev, &link.commands);
                        let replay = match &ev {
                            Event::Started { info, .. } if info.start_step > 0 => {
                                Some((PathBuf::from(&info.run_dir), info.start_step))
                            }
                            _ => None,
                        };
                        actions.extend(self.app.on_event(ev));
                        // After `Started`, which starts the app's record of the run afresh.
                        if let Some(notice) = notice {
                            self.app.on_event(notice);
                        }
                        if let Some((dir, upto)) = replay {
                            replay_history(&mut self.app, &dir, upto);
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        lost = true;
                        break;
                    }
                }
            }
            if lost {
                changed = true;
                self.host.close();
                self.app.on_engine_lost();
                let panics = super::take_background_panics();
                if let (Some(msg), Some(err)) = (panics.last(), self.app.error.as_mut()) {
                    err.push_str(&format!(": panicked: {msg}"));
                }
                if let Some(j) = self.link.take().and_then(|mut l| l.join.take()) {
                    self.zombies.push(j);
                }
            }
        }
        if let Some((old, _)) = &self.retiring {
            loop {
                match old.events.try_recv() {
                    Ok(Event::CheckpointSaved { step, path }) => {
                        changed = true;
                        self.app
                            .notify(format!("checkpoint saved: {path} (step {step})"));
                        self.refresh_checkpoints = true;
                    }
                    Ok(_) => {}
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        let (mut old, from) = self.retiring.take().unwrap();
                        if let Some(j) = old.join.take() {
                            self.zombies.push(j);
                        }
                        self.launch(from);
                        changed = true;
                        break;
                    }
                }
            }
        }
        changed |= self.pump_remote();
        let (side_events, side_lost) = self.side.poll();
        changed |= !side_events.is_empty() || side_lost.is_some();
        for ev in side_events {
            self.app.on_side_event(ev);
        }
        if let Some(why) = side_lost {
            self.app.on_side_lost(&why);
        }
        if Instant::now() >= self.sys.1 {
            let every = Duration::from_secs(panes::system::INTERVAL_SECS);
            self.sys.1 = Instant::now() + every;
            // In watch mode, the watched run's writer (its lock names it), not this process.
            let watched = self.tail.as_ref().map(|t| t.2.as_path());
            self.app.system.read(&mut self.sys.0, watched);
            changed |= self.app.system.shown;
        }
        if let Some((tail, watch, run)) = &mut self.tail {
            if watch.due() {
                let steerable = self.remote.as_ref().is_some_and(|r| r.available());
                changed |= steerable != self.app.steer.available;
                self.app.steer.available = steerable;
                for ev in tail.poll() {
                    changed = true;
                    self.app.on_event(ev);
                }
                self.refresh_checkpoints = true;
                // A writer that died leaves a "running" run behind: show how stale it is.
                self.app.last_write_unix = std::fs::metadata(run.join("metrics.jsonl"))
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs());
            }
        }
        if self.theme_watch.due() {
            let (theme, warn) = Theme::load(&self.themes_dir, &self.theme_name);
            if theme != self.theme || warn != self.app.theme_warning {
                self.theme = theme;
                self.app.theme_warning = warn;
                changed = true;
            }
        }
        let browsing = self.app.overlay == super::app::Overlay::Checkpoints;
        if self.ckpt_watch.due() {
            self.refresh_checkpoints = true;
            changed |= self.refresh_runs_pane();
        }
        if self.refresh_checkpoints && browsing {
            self.refresh_checkpoints = false;
            self.app.set_checkpoints(self.list_checkpoints());
            changed = true;
        }
        while let Ok(msg) = self.export_results.1.try_recv() {
            self.app.notify(msg);
            self.refresh_checkpoints = true;
            changed = true;
        }
        self.zombies.retain(|j| !j.is_finished());
        self.perform(actions);
        changed
    }

    fn list_checkpoints(&self) -> Vec<crate::protocol::CheckpointSummary> {
        let mut all = listing::list_all_checkpoints(&self.runs_dir);
        // Hugging Face model directories dropped into the runs directory: sample, fine-tune
        // and export them like checkpoints (read-only; resume and delete refuse them).
        all.extend(crate::interop::model_dir::list_hf_dirs(&self.runs_dir));
        let current = self
            .app
            .info
            .as_ref()
            .map(|i| PathBuf::from(&i.run_dir))
            .or_else(|| self.tail.as_ref().map(|t| t.2.clone()));
        if let Some(dir) = current {
            for c in listing::list_checkpoints(&dir) {
                if !all.iter().any(|a| a.path == c.path) {
                    all.push(c);
                }
            }
        }
        all
    }

    /// Carry out what a key or event asked for.
    pub fn perform(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send(cmd) => self.send(cmd),
                Action::Quit => self.app.should_quit = true,
                Action::RefreshCheckpoints => self.refresh_checkpoints = true,
                Action::Side(cmd) => {
                    if let Err(why) = self.side.send(cmd) {
                        self.app.on_side_lost(&why);
                    }
                }
                Action::Runs(req) => self.runs_request(req),
                Action::Launch { from, save_current } => match self.link.take() {
                    Some(link) if self.app.engine_alive => {
                        self.host.close();
                        let _ = link.commands.send(Command::Stop {
                            save: save_current,
                            reason: crate::protocol::FinishReason::Stopped,
                        });
                        self.app
                            .notify("stopping the current run before switching…");
                        self.retiring = Some((link, from));
                    }
                    _ => self.launch(from),
                },
                Action::Delete(path) => {
                    match listing::delete_checkpoint_by_user(&path) {
                        Ok(()) => self.app.notify(format!("deleted {}", path.display())),
                        Err(e) => self.app.warn(format!("{e:#}")),
                    }
                    self.refresh_checkpoints = true;
                }
                Action::SetPinned { checkpoint, pinned } => {
                    match pin::set_pinned_by_user(&checkpoint, pinned) {
                        Ok(true) => self.app.notify(format!("pinned {}", checkpoint.display())),
                        Ok(false) => self.app.notify(format!(
                            "unpinned {} (retention may remove it now)",
                            checkpoint.display()
                        )),
                        Err(e) => self.app.warn(format!("{e:#}")),
                    }
                    self.refresh_checkpoints = true;
                }
                Action::Export { checkpoint, out } => {
                    let Some(launcher) = self.launcher.clone() else {
                        self.app.warn(super::keys::READ_ONLY);
                        continue;
                    };
                    let tx = self.export_results.0.clone();
                    std::thread::spawn(move || {
                        let result = launcher
                            .lock()
                            .map_err(|_| anyhow::anyhow!("launcher poisoned"));
                        let msg = match result.and_then(|l| l.export_hf(&checkpoint, &out)) {
                            Ok(()) => format!("exported to {}", out.display()),
                            Err(e) => format!("export failed: {e:#}"),
                        };
                        let _ = tx.send(msg);
                    });
                }
            }
        }
    }

    fn send(&mut self, cmd: Command) {
        match &self.link {
            Some(link) => {
                if link.commands.send(cmd).is_err() {
                    self.app.on_engine_lost();
                }
            }
            None if self.app.can_steer() => {
                let sent = self.remote.as_mut().map(|r| r.send(cmd));
                if let Some(Err(why)) = sent {
                    self.app.warn(why);
                }
            }
            None if self.app.mode == Mode::Watch => self.app.warn(super::keys::READ_ONLY),
            None => self.app.warn("engine is not running"),
        }
    }

    /// Run until the user quits; the caller owns terminal setup and restore.
    pub fn run(&mut self, terminal: &mut ratatui::DefaultTerminal) -> anyhow::Result<()> {
        let mut last_draw = Instant::now() - Duration::from_secs(10);
        let mut dirty = true;
        loop {
            self.app.tick(layout::unix_now());
            dirty |= self.pump();
            if self.app.should_quit {
                return Ok(());
            }
            let now = Instant::now();
            let stale = now.duration_since(last_draw) >= Duration::from_secs(1);
            if (dirty && now.duration_since(last_draw) >= FRAME) || stale {
                self.app.tick(layout::unix_now());
                terminal.draw(|f| panes::draw(f, &self.app, &self.theme))?;
                last_draw = now;
                dirty = false;
            }
            if event::poll(FRAME)? {
                match event::read()? {
                    TermEvent::Key(key) => {
                        let actions = self.app.on_key(key);
                        self.perform(actions);
                        dirty = true;
                    }
                    TermEvent::Resize(..) => dirty = true,
                    _ => {}
                }
            }
        }
    }

    /// After the terminal is restored: give a stopping engine a moment to flush, never hang.
    /// Returns the app, so the exit message is built after a final save had its chance.
    pub fn shutdown(mut self) -> App {
        // A final save still running (the terminal went away mid-save) gets time to finish.
        let saving = self.app.quit_after_stop && !self.app.abandon_save;
        let grace = Duration::from_secs(if saving { 120 } else { 5 });
        let deadline = Instant::now() + grace;
        let mut joins: Vec<_> = self.zombies.drain(..).collect();
        joins.extend(self.link.take().and_then(|mut l| l.join.take()));
        joins.extend(self.retiring.take().and_then(|(mut l, _)| l.join.take()));
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

/// A resumed run starts with an empty chart otherwise: load its earlier steps from disk.
fn replay_history(app: &mut App, run_dir: &Path, upto: u64) {
    if app.steps.iter().any(|s| s.step <= upto) {
        return;
    }
    for ev in MetricsTail::new(run_dir.join("metrics.jsonl")).poll() {
        let keep = matches!(
            ev,
            Event::Step(_)
                | Event::Eval { .. }
                | Event::CheckpointSaved { .. }
                | Event::ChronicleSample { .. }
                | Event::ChronicleTask { .. }
        );
        if keep && ev.step() <= upto {
            app.on_event(ev);
        }
    }
    app.notice = None;
}
