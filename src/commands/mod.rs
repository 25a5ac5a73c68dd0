//! What each CLI command does, in terms of the library: `dispatch` routes a parsed command
//! line to one family of subcommands (one file each) and holds the config and runs-directory
//! resolution they share.

mod checkpoints;
mod data;
mod eval;
mod sample;
mod train;

use crate::cli::{CkptCommand, Cli, Commands, RunArgs};
use anyhow::{Context, Result};
use llite_tui::config::{RunConfig, SFT_PRESET};
use llite_tui::{bench, interop};
use std::path::PathBuf;

/// Run the parsed command line.
pub fn dispatch(cli: Cli) -> Result<()> {
    let run = cli.run;
    match cli.command {
        None => train::cockpit_or_headless(&run),
        Some(Commands::Train) => train::cockpit_or_headless(&run),
        Some(Commands::Watch { run_dir }) => {
            let cfg = load_config(&run)?;
            llite_tui::tui::run_watch(&run_dir, train::cockpit_options(&run, &cfg)?)
        }
        Some(Commands::Sample(args)) => sample::sample(&run, &args),
        Some(Commands::Prepare(args)) => data::prepare(&args),
        Some(Commands::Export { checkpoint, out }) => {
            interop::export::export_checkpoint(&checkpoint, &out)?;
            println!("wrote {}", out.display());
            Ok(())
        }
        Some(Commands::Import { hf, out }) => {
            interop::export::import_hf(&hf, &out)?;
            println!("wrote checkpoint {}", out.display());
            Ok(())
        }
        Some(Commands::Ckpt {
            command: CkptCommand::Ls { run_dir, verify },
        }) => checkpoints::ckpt_ls(&run_dir, verify),
        Some(Commands::Eval(args)) => eval::eval(&args),
        Some(Commands::Info) => data::info(&run),
        Some(Commands::Bench(args)) => {
            let io_dir = match args.io_dir {
                Some(d) => d,
                None => runs_dir(&run)?,
            };
            bench::run_table(args.steps, args.large, &io_dir, &args.only)
        }
    }
}

pub(crate) fn load_config(run: &RunArgs) -> Result<RunConfig> {
    load_config_with_default(run, false)
}

/// The command line's config; without `--config`, the embedded tiny preset, or the SFT preset
/// when `sft` (an instruction fine-tune, from the CLI or the checkpoint browser).
pub(crate) fn load_config_with_default(run: &RunArgs, sft: bool) -> Result<RunConfig> {
    let mut cfg = match (&run.config, sft) {
        (None, true) => RunConfig::from_toml_str(SFT_PRESET, "embedded SFT preset")?,
        (path, _) => RunConfig::load(path.as_deref())?,
    };
    cfg.apply_overrides(&run.overrides)?;
    if let Some(n) = run.max_steps {
        cfg.train.max_steps = n;
    }
    if let Some(t) = &run.theme {
        cfg.ui.theme = t.clone();
    }
    Ok(cfg)
}

pub(crate) fn runs_dir(run: &RunArgs) -> Result<PathBuf> {
    if let Some(d) = &run.runs_dir {
        return Ok(d.clone());
    }
    let dirs = directories::ProjectDirs::from("", "", "llite-tui")
        .context("cannot find a data directory; pass --runs-dir")?;
    Ok(dirs.data_dir().join("runs"))
}
