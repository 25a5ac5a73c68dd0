//! What each CLI command does, in terms of the library: `dispatch` routes a parsed command
//! line to one family of subcommands (one file each) and holds the config and runs-directory
//! resolution they share.

mod checkpoints;
mod data;
mod eval;
mod info;
mod metrics;
mod orchestrator;
mod reference;
mod runs;
mod sample;
mod train;

use crate::cli::{CkptCommand, Cli, Commands, ConfigArgs, MetricsCommand, RunArgs};
use anyhow::{Context, Result};
use llite_tui::config::{RunConfig, SFT_PRESET};
use llite_tui::{bench, interop, store};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Run the parsed command line.
pub fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        None => train::cockpit_or_headless(&cli.run),
        Some(Commands::Train(run)) => train::cockpit_or_headless(&run),
        Some(Commands::Watch(args)) => train::watch(&args),
        Some(Commands::Ctl(args)) => crate::ctl::run(&args),
        Some(Commands::Sample(args)) => sample::sample(&args),
        Some(Commands::Prepare(args)) => data::prepare(&args),
        Some(Commands::Export(args)) => {
            let checkpoint = resolve_checkpoint(&args.checkpoint)?;
            interop::export::export_checkpoint_as(&checkpoint, &args.out, args.dtype)?;
            println!("wrote {}", args.out.display());
            Ok(())
        }
        Some(Commands::Import(args)) => {
            interop::export::import_hf(&args.hf, &args.out)?;
            println!("wrote checkpoint {}", args.out.display());
            Ok(())
        }
        Some(Commands::Template(a)) => interop::template_ids::print_report(
            &a.model,
            &a.messages,
            a.template.as_deref(),
            a.generation_prompt,
        ),
        Some(Commands::Ckpt {
            command: CkptCommand::Ls { run_dir, verify },
        }) => checkpoints::ckpt_ls(&run_dir, verify),
        Some(Commands::Runs(args)) => runs::runs(&args),
        Some(Commands::Metrics {
            command:
                MetricsCommand::Export {
                    run_dir,
                    csv: _,
                    out,
                    force,
                },
        }) => metrics::export_csv(&run_dir, out, force),
        Some(Commands::Eval(args)) => eval::eval(&args),
        Some(Commands::Info(args)) => info::info(&args),
        Some(Commands::Bench(args)) => {
            let io_dir = match args.io_dir {
                Some(d) => d,
                None => runs_dir(args.runs_dir.as_deref())?,
            };
            bench::run_table(args.steps, args.large, &io_dir, &args.only)
        }
        Some(Commands::Orchestrator(args)) => orchestrator::serve(&args),
        Some(Commands::Completions { shell }) => reference::completions(shell),
        Some(Commands::Manpage { out }) => reference::manpage(out.as_deref()),
    }
}

/// A training command line's config: its preset (see `load_preset`) with `--max-steps` and
/// `--theme` applied.
pub(crate) fn load_config_with_default(run: &RunArgs, sft: bool) -> Result<RunConfig> {
    let mut cfg = load_preset(&run.preset, sft)?;
    if let Some(n) = run.max_steps {
        cfg.train.max_steps = n;
    }
    if let Some(t) = &run.theme {
        cfg.ui.theme = t.clone();
    }
    Ok(cfg)
}

/// `--config` with the `--set` overrides applied; without `--config`, the embedded tiny preset,
/// or the SFT preset when `sft` (an instruction fine-tune, from the CLI or the browser).
pub(crate) fn load_preset(preset: &ConfigArgs, sft: bool) -> Result<RunConfig> {
    let mut cfg = match (&preset.config, sft) {
        (None, true) => RunConfig::from_toml_str(SFT_PRESET, "embedded SFT preset")?,
        (path, _) => RunConfig::load(path.as_deref())?,
    };
    cfg.apply_overrides(&preset.overrides)?;
    Ok(cfg)
}

/// `--runs-dir`, else the platform data directory's `runs/`.
pub(crate) fn runs_dir(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(d) = given {
        return Ok(d.to_path_buf());
    }
    let dirs = directories::ProjectDirs::from("", "", "llite-tui")
        .context("cannot find a data directory; pass --runs-dir")?;
    Ok(dirs.data_dir().join("runs"))
}

/// A `--checkpoint`/`--resume`/`--finetune` argument with `RUN_DIR/latest` or a bare run
/// directory turned into the run's newest valid checkpoint, saying on stderr which it picked.
pub(crate) fn resolve_checkpoint(arg: &Path) -> Result<PathBuf> {
    let resolved = store::latest::resolve_checkpoint_arg(arg)?;
    if let Some(note) = &resolved.note {
        // Never panics on a closed stderr; the note is informational.
        let _ = writeln!(std::io::stderr(), "note: {note}");
    }
    Ok(resolved.path)
}
