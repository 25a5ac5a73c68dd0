//! The commands that train: the cockpit, `train` (headless or not) and `watch`, and the
//! engine launcher the cockpit's checkpoint browser uses.

use super::{load_config_with_default, load_preset, resolve_checkpoint, runs_dir};
use crate::cli::{RunArgs, WatchArgs};
use anyhow::Result;
use llite_tui::config::RunConfig;
use llite_tui::protocol::{EngineLauncher, EngineLink, StartFrom};
use llite_tui::train::session::{DeviceSpec, EngineRequest};
use llite_tui::{headless, interop, train};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Where the command line starts: `--resume` / `--finetune` (a run directory or
/// `RUN_DIR/latest` resolved to its newest valid checkpoint), else a fresh run.
fn start_from(run: &RunArgs) -> Result<StartFrom> {
    Ok(match (&run.resume, &run.finetune) {
        (Some(dir), _) => StartFrom::Resume(resolve_checkpoint(dir)?),
        (None, Some(dir)) => StartFrom::FineTune {
            checkpoint: resolve_checkpoint(dir)?,
            data: run.data.clone(),
        },
        (None, None) => StartFrom::Fresh,
    })
}

/// Whether `start` fine-tunes on instruction data (a `.jsonl` file).
fn is_sft_finetune(start: &StartFrom) -> bool {
    matches!(start, StartFrom::FineTune { data: Some(d), .. }
        if d.extension().is_some_and(|e| e.eq_ignore_ascii_case("jsonl")))
}

fn engine_request(run: &RunArgs, start: StartFrom) -> Result<EngineRequest> {
    let mut config = load_config_with_default(run, is_sft_finetune(&start))?;
    // After `--set`, so a data-parallel flag wins over a --set of the same key; kept with the
    // overrides, so a resume applies it on top of the checkpoint's config too.
    let parallel = run.parallel.overrides();
    config.apply_overrides(&parallel)?;
    let mut overrides = run.preset.overrides.clone();
    overrides.extend(parallel);
    if let Some(n) = run.max_steps {
        overrides.push(format!("train.max_steps={n}"));
    }
    if let Some(t) = Some(config.train.threads).filter(|t| *t > 0) {
        std::env::set_var("RAYON_NUM_THREADS", t.to_string());
    }
    let runs_dir = runs_dir(run.runs_dir.as_deref())?;
    let run_name = match (&run.run_name, &start) {
        (None, StartFrom::Fresh) => Some(fresh_run_name(run, &runs_dir)),
        (name, _) => name.clone(),
    };
    Ok(EngineRequest {
        config,
        overrides,
        config_explicit: run.preset.config.is_some(),
        runs_dir,
        run_name,
        start,
        device: DeviceSpec::parse(&run.device)?,
        fresh_optimizer: run.fresh_optimizer,
        stop_at: run.stop_at_step,
        discard_later: run.discard_later,
        prep_cache: llite_tui::data::prep_cache::default_root(),
    })
}

/// A new run's default name says what it is: the preset's file stem (`tiny` for the embedded
/// one) and the UTC start time, with `-2`, `-3`... when two runs start in the same second.
fn fresh_run_name(run: &RunArgs, runs_dir: &Path) -> String {
    let preset = run
        .preset
        .config
        .as_deref()
        .and_then(Path::file_stem)
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| llite_tui::store::layout::validate_run_name(s, "preset").is_ok())
        .unwrap_or_else(|| "tiny".into());
    let base = llite_tui::store::layout::default_run_name(&preset, std::time::SystemTime::now());
    let mut name = base.clone();
    let mut n = 2;
    while std::fs::symlink_metadata(runs_dir.join(&name)).is_ok() {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// Starts engines for the cockpit with the command line's settings.
struct Launcher {
    run: RunArgs,
}

impl EngineLauncher for Launcher {
    fn launch(&self, from: StartFrom) -> Result<EngineLink> {
        let mut run = self.run.clone();
        // A run started from the browser gets a fresh name unless resuming.
        if !matches!(from, StartFrom::Fresh) {
            run.run_name = None;
        }
        Ok(train::engine::spawn(engine_request(&run, from)?))
    }

    fn export_hf(&self, checkpoint: &Path, out: &Path) -> Result<()> {
        interop::export::export_checkpoint(checkpoint, out)
    }
}

/// What the cockpit needs besides an engine: `[ui]`, `[sample]`, the runs and themes folders.
fn cockpit_options(runs: Option<&Path>, cfg: &RunConfig) -> Result<llite_tui::tui::CockpitOptions> {
    Ok(llite_tui::tui::CockpitOptions {
        ui: cfg.ui.clone(),
        runs_dir: runs_dir(runs)?,
        themes_dir: themes_dir(),
        sample_defaults: cfg.sample.params(),
        side_sampler: Some(llite_tui::train::side::spawn),
    })
}

/// `themes/` next to the working directory, else next to the executable's crate.
fn themes_dir() -> PathBuf {
    let local = PathBuf::from("themes");
    if local.is_dir() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("themes")
}

/// `watch RUN_DIR... | RUNS_ROOT`: the cockpit following a run another process writes, steering it through
/// its control socket unless `--read-only`.
pub(crate) fn watch(args: &WatchArgs) -> Result<()> {
    let mut cfg = load_preset(&args.preset, false)?;
    if let Some(t) = &args.theme {
        cfg.ui.theme = t.clone();
    }
    let opts = cockpit_options(args.runs_dir.as_deref(), &cfg)?;
    llite_tui::tui::run_watch(&args.run_dirs, opts, args.read_only)
}

/// The bare command and `train`: the cockpit on a terminal, else a headless run.
pub(crate) fn cockpit_or_headless(run: &RunArgs) -> Result<()> {
    let start = start_from(run)?;
    let interactive =
        !run.headless && std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    if interactive {
        let cfg = load_config_with_default(run, false)?;
        let opts = cockpit_options(run.runs_dir.as_deref(), &cfg)?;
        return llite_tui::tui::run_cockpit(Box::new(Launcher { run: run.clone() }), start, opts);
    }
    // Caught from before the engine starts, so a signal during start-up still saves step 0.
    let signals = llite_tui::signals::StopSignals::install()?;
    let req = engine_request(run, start)?;
    let log = llite_tui::progress::StepLog::every(run.log_every);
    let summary = headless::run_logged(train::engine::spawn(req), log, Some(signals))?;
    let newest_good = headless::newest_good_checkpoint(&summary);
    let line = summary.verdict(newest_good.as_deref())?;
    // Never panics on a closed stderr (a dead ssh session): the run is already saved.
    let _ = writeln!(std::io::stderr(), "{line}");
    Ok(())
}
