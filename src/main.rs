//! The `llite-tui` binary: parses the CLI and hands off to the library. Every error ends as
//! one line on stderr and a non-zero exit code.

mod cli;
mod cli_help;
mod cli_parallel;
#[cfg(test)]
mod cli_tests;
mod commands;
mod ctl;

use clap::Parser;
use std::io::Write;

fn main() {
    llite_tui::alloc_tuning::keep_freed_memory();
    let cli = cli::Cli::parse();
    if let Err(e) = commands::dispatch(cli) {
        let msg = format!("{e:#}");
        // Not `eprintln!`: a closed stderr must not turn the error into a panic.
        let _ = writeln!(std::io::stderr(), "error: {}", msg.replace('\n', " "));
        // 130/143/129 after a stop signal, 1 for every other failure (see `train --help`).
        std::process::exit(llite_tui::exit::Exit::code_of(&e));
    }
}
