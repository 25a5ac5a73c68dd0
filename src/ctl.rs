//! `llite-tui ctl RUN_DIR ...`: one request to a running run's control socket, its reply
//! printed for a person (or as the raw JSON line with `--json`), a refusal as one error line.

use crate::cli::{CtlAction, CtlArgs};
use anyhow::{bail, Result};

/// Send the command line's request and print the reply; a refused request exits 1.
#[cfg(unix)]
pub fn run(args: &CtlArgs) -> Result<()> {
    use llite_tui::control::{client, wire};
    let action = match &args.action {
        CtlAction::Status => wire::Action::Status,
        CtlAction::Pause => wire::Action::Pause,
        CtlAction::Resume => wire::Action::Resume,
        CtlAction::Save => wire::Action::Save,
        CtlAction::Eval => wire::Action::Eval,
        CtlAction::Set { setting } => wire::Action::Set(setting.clone()),
        CtlAction::Sample {
            prompt,
            max_tokens,
            temperature,
            top_k,
            top_p,
            seed,
        } => wire::Action::Sample {
            prompt: prompt.clone(),
            knobs: wire::SampleKnobs {
                max_tokens: *max_tokens,
                temperature: *temperature,
                top_k: *top_k,
                top_p: *top_p,
                seed: *seed,
            },
        },
    };
    if !(1..=wire::MAX_TIMEOUT_S).contains(&args.timeout) {
        bail!("ctl: --timeout must be 1..={} seconds", wire::MAX_TIMEOUT_S);
    }
    let request = wire::Request {
        action,
        timeout_s: args.timeout,
    };
    let reply = client::request(&args.run_dir, &request)?;
    if args.json {
        println!("{}", reply.to_line());
    }
    if !reply.ok {
        bail!("{}: {}", args.run_dir.display(), reply.message);
    }
    if args.json {
        return Ok(());
    }
    match (&reply.status, &reply.text) {
        (Some(s), _) => {
            println!("{}", reply.message);
            let loss = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.4}"));
            println!(
                "pid {}, tokens {}, loss {}, val_loss {}, dir {}",
                s.pid,
                s.tokens,
                loss(s.last_loss),
                loss(s.last_val_loss),
                s.run_dir
            );
            for (k, v) in &s.controls {
                println!("{k} = {v}");
            }
        }
        (None, Some(text)) => {
            println!("{text}");
            eprintln!("[{}]", reply.message);
        }
        (None, None) => println!("{}", reply.message),
    }
    Ok(())
}

/// Control sockets are Unix domain sockets.
#[cfg(not(unix))]
pub fn run(args: &CtlArgs) -> Result<()> {
    bail!(
        "{}: `ctl` needs Unix domain sockets (Linux, macOS)",
        args.run_dir.display()
    )
}
