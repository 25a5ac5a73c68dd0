//! `completions` and `manpage`: the CLI's own reference, generated from the clap definitions
//! (clap_complete, clap_mangen) so it can never drift from the parser.

use crate::cli::Cli;
use anyhow::{Context, Result};
use clap::CommandFactory;
use llite_tui::store::{fsio, outputs};
use std::io::Write;
use std::path::Path;

/// Print the completion script for `shell` to stdout.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "llite-tui", &mut out);
    std::io::stdout()
        .write_all(&out)
        .context("cannot write the completion script to stdout")
}

/// The man page of `cmd` (roff).
fn render(cmd: clap::Command) -> Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut page)
        .context("cannot render the man page")?;
    Ok(page)
}

/// Print the top-level man page, or with `out` write `llite-tui.1` and one
/// `llite-tui-<command>.1` per subcommand into a new or empty directory (staged, then renamed
/// into place whole).
pub(crate) fn manpage(out: Option<&Path>) -> Result<()> {
    let cmd = Cli::command();
    let Some(dir) = out else {
        return std::io::stdout()
            .write_all(&render(cmd)?)
            .context("cannot write the man page to stdout");
    };
    outputs::ensure_fresh_target(dir, "manpage --out")?;
    let staging = outputs::create_staging(dir)?;
    let written = (|| -> Result<usize> {
        let mut pages = vec![("llite-tui.1".to_string(), render(cmd.clone())?)];
        for sub in cmd.get_subcommands() {
            let name = format!("llite-tui-{}", sub.get_name());
            let page = render(sub.clone().name(name.clone()))?;
            pages.push((format!("{name}.1"), page));
        }
        for (file, page) in &pages {
            fsio::write_synced(&staging.join(file), page)?;
        }
        Ok(pages.len())
    })();
    let count = match written {
        Ok(n) => n,
        Err(e) => {
            // Only the staging directory this command created is removed.
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    outputs::commit_staging(&staging, dir, "manpage --out")?;
    println!("wrote {count} man pages to {}", dir.display());
    Ok(())
}
