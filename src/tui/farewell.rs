//! What the cockpit prints after the terminal is restored: where the run lives and the exact
//! command that continues it, so closing the cockpit never means hunting for a path.

use super::app::{App, Mode};
use crate::store::latest::LATEST;
use crate::store::listing::latest_valid_checkpoint;
use std::path::Path;

/// The lines for a cockpit that trained (`Live`), or None for watch and inspect sessions and
/// for a cockpit that quit before its engine started.
pub fn farewell(app: &App) -> Option<String> {
    if app.mode != Mode::Live {
        return None;
    }
    let run_dir = &app.info.as_ref()?.run_dir;
    let newest = latest_valid_checkpoint(Path::new(run_dir));
    Some(farewell_lines(run_dir, newest.as_deref()))
}

/// [`farewell`]'s text: the run directory, then the resume command (`train --resume
/// RUN_DIR/latest`, which picks the newest valid checkpoint) or why there is none.
pub fn farewell_lines(run_dir: &str, newest: Option<&Path>) -> String {
    let mut out = format!("run directory: {run_dir}\n");
    match newest {
        Some(ckpt) => {
            let name = ckpt.file_name().map(|n| n.to_string_lossy().into_owned());
            out.push_str(&format!(
                "resume: llite-tui train --resume {} (now: {})",
                shell_quote(&format!("{}/{LATEST}", run_dir.trim_end_matches('/'))),
                name.unwrap_or_default()
            ));
        }
        None => out.push_str("no checkpoint was saved, so there is nothing to resume"),
    }
    out
}

/// `s` as one shell word: unchanged when it only holds safe characters, else single-quoted.
fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+:=@%,".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_run_and_the_exact_resume_command() {
        let ckpt = Path::new("/r/run-1/checkpoints/step-00000040");
        assert_eq!(
            farewell_lines("/r/run-1", Some(ckpt)),
            "run directory: /r/run-1\nresume: llite-tui train --resume /r/run-1/latest (now: step-00000040)"
        );
        let odd = farewell_lines("/r/it's mine", Some(ckpt));
        assert!(odd.contains(r"--resume '/r/it'\''s mine/latest'"), "{odd}");
        assert!(farewell_lines("/r/x", None).ends_with("nothing to resume"));
    }
}
