//! The cockpit: a ratatui UI over a live engine (`run_cockpit`) or over a run directory that
//! another process writes (`run_watch`). The UI holds plain data only and never imports Burn;
//! it talks to the engine solely through `crate::protocol`.

pub mod app;
mod app_derived;
pub mod browser;
pub mod calc;
pub mod chronicle;
pub mod farewell;
mod host;
pub mod keys;
pub mod panes;
pub mod producers;
pub mod prompt;
pub mod remote;
pub mod run_view;
pub mod runs_view;
pub mod runtime;
pub mod side;
pub mod steer;
pub mod theme;
pub mod ui_event;
pub mod watch;
pub mod watch_steer;

#[cfg(test)]
mod app_tests;
#[cfg(test)]
mod help_tests;
#[cfg(test)]
mod runtime_tests;
#[cfg(test)]
mod side_tests;
#[cfg(test)]
mod small_fixes_tests;
#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod steer_tests;

use crate::protocol::{EngineLauncher, SampleParams, StartFrom};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the CLI hands the cockpit besides the engine.
#[derive(Debug, Clone)]
pub struct CockpitOptions {
    /// `[ui]` preferences: theme, smoothing, log scale, MFU peak, auto-pause.
    pub ui: crate::config::UiConfig,
    /// Where the checkpoint browser looks (every run's `checkpoints/`).
    pub runs_dir: PathBuf,
    /// Where `<ui.theme>.toml` is looked up (and watched for live edits).
    pub themes_dir: PathBuf,
    /// Initial knobs of the prompt pane (from the run's `[sample]` config).
    pub sample_defaults: SampleParams,
    /// Starts the side engine that samples stored checkpoints while training goes on (browser
    /// `i`); None where the binary offers none.
    pub side_sampler: Option<crate::protocol::SideSpawn>,
}

/// Open the cockpit on a new engine started as `start`; returns when the user quits.
/// The terminal is restored on every path, including errors (and panics, via ratatui's hook).
pub fn run_cockpit(
    launcher: Box<dyn EngineLauncher>,
    start: StartFrom,
    opts: CockpitOptions,
) -> anyhow::Result<()> {
    let mode = if matches!(start, StartFrom::Inspect(_)) {
        app::Mode::Inspect
    } else {
        app::Mode::Live
    };
    // Caught before the engine starts, so no signal can kill it mid-way without a save.
    let signals = crate::signals::StopSignals::install()?;
    let app = app::App::new(mode, &opts.ui, opts.sample_defaults.clone());
    let rt = runtime::Runtime::new(app, &opts)
        .with_signals(signals)
        .with_engine(launcher, start);
    drive(rt)
}

/// Show a run another process is writing, by following its `metrics.jsonl` and checkpoints;
/// unless `read_only`, steer it through its control socket whenever it serves one. `args` are
/// run directories or runs roots: the newest running run among them is followed (else the
/// newest written), and the runs pane (`R`) lists them all, Enter switching to another.
pub fn run_watch(args: &[PathBuf], opts: CockpitOptions, read_only: bool) -> anyhow::Result<()> {
    let source = runs_view::loader::RunsSource::from_args(args)?;
    let index = source.load();
    let Some(picked) = runs_view::loader::pick_to_watch(&index) else {
        let shown: Vec<String> = args.iter().map(|a| a.display().to_string()).collect();
        anyhow::bail!(
            "{}: no runs to watch (no <run>/metrics.jsonl or run.toml there); start one with `llite-tui train --runs-dir DIR` first",
            shown.join(", ")
        );
    };
    let run_dir = picked.dir.clone();
    let others = index.runs.len() - 1;
    let why = match (picked.status, others) {
        (_, 0) => format!("watching {}", picked.name),
        (runs_view::loader::RunStatus::Running, n) => {
            format!(
                "watching {}, the newest running run; R lists {n} more",
                picked.name
            )
        }
        (s, n) => format!(
            "no run is running; watching the newest, {} ({}); R lists {n} more",
            picked.name,
            s.label()
        ),
    };
    let signals = crate::signals::StopSignals::install()?;
    let mut app = app::App::new(app::Mode::Watch, &opts.ui, opts.sample_defaults.clone());
    app.runs.source = source;
    app.runs.current = Some(run_dir.clone());
    app.runs.can_switch = true;
    app.notify(why);
    let mut rt = runtime::Runtime::new(app, &opts)
        .with_signals(signals)
        .with_tail(&run_dir);
    if !read_only {
        rt = rt.with_remote(&run_dir);
    }
    drive(rt)
}

/// After a stop signal the cockpit exits 128 + signal number, naming the newest valid
/// checkpoint on disk. Called after `Runtime::shutdown`, so a final save that finished while
/// shutdown waited for it is seen (the app's own record stops when the UI loop does).
fn signal_exit(app: &app::App) -> anyhow::Result<()> {
    let Some(reason) = app.stop_signal else {
        return Ok(());
    };
    let newest = app
        .info
        .as_ref()
        .and_then(|i| crate::store::listing::latest_valid_checkpoint(Path::new(&i.run_dir)));
    let saved = match (newest, app.mode) {
        (Some(path), app::Mode::Live) => format!("; newest checkpoint {}", path.display()),
        (None, app::Mode::Live) => "; the run has no complete checkpoint".to_string(),
        _ => String::new(),
    };
    Err(crate::exit::Exit::new(
        reason.signal_exit_code().unwrap_or(1),
        format!(
            "{}: cockpit closed{saved}",
            crate::signals::signal_name(reason)
        ),
    )
    .into())
}

fn drive(mut rt: runtime::Runtime) -> anyhow::Result<()> {
    let previous = install_panic_hooks()?;
    let mut terminal = ratatui::try_init()?;
    // ratatui's hook restores the terminal on *any* panic; a panicking engine thread must not
    // yank the terminal from under a UI that keeps running, nor print over it.
    let ratatui_hook = std::panic::take_hook();
    let ui_thread = std::thread::current().id();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == ui_thread {
            ratatui_hook(info);
        } else {
            record_background_panic(info);
        }
    }));
    let result = rt.run(&mut terminal);
    // Not `restore()`: after SIGHUP the terminal is gone and its error print would panic.
    let _ = ratatui::try_restore();
    std::panic::set_hook(Box::new(move |info| previous(info)));
    for msg in take_background_panics() {
        eprintln!("engine thread panicked: {msg}");
    }
    let app = rt.shutdown();
    if let Some(lines) = farewell::farewell(&app) {
        // Never panics on a closed stdout (after SIGHUP the terminal is gone).
        let _ = writeln!(std::io::stdout(), "{lines}");
    }
    // A stop signal (or a lost terminal, handled as SIGHUP) says more than the loop's error
    // about how the run ended and where its newest checkpoint is.
    match app.stop_signal {
        Some(_) => signal_exit(&app),
        None => result,
    }
}

type Hook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Keep the caller's hook so it can be reinstated once the terminal is back.
fn install_panic_hooks() -> anyhow::Result<std::sync::Arc<Hook>> {
    let previous: std::sync::Arc<Hook> = std::sync::Arc::new(std::panic::take_hook());
    let chained = previous.clone();
    std::panic::set_hook(Box::new(move |info| chained(info)));
    Ok(previous)
}

static BACKGROUND_PANICS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn record_background_panic(info: &std::panic::PanicHookInfo<'_>) {
    let payload = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into());
    let at = info
        .location()
        .map(|l| format!(" at {}:{}", l.file(), l.line()))
        .unwrap_or_default();
    if let Ok(mut v) = BACKGROUND_PANICS.lock() {
        v.push(format!("{payload}{at}"));
    }
}

/// Panic messages of non-UI threads since the last call (shown in the error banner).
pub fn take_background_panics() -> Vec<String> {
    BACKGROUND_PANICS
        .lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default()
}
