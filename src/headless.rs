//! The headless consumer: drives an engine to completion, printing one progress line per step
//! (or a progress bar on a terminal). `metrics.jsonl` is written by the engine itself.

use crate::protocol::{EngineLink, Event, FinishReason};
use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// Outcome of a headless run, for the exit code and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadlessSummary {
    pub final_step: u64,
    pub last_loss: Option<f64>,
    pub last_val_loss: Option<f64>,
    pub run_dir: Option<String>,
}

fn eta(steps_left: u64, step_ms: f64) -> String {
    let secs = (steps_left as f64 * step_ms / 1000.0).round() as u64;
    format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Consume events until the engine finishes; an engine error becomes this function's error.
pub fn run(link: EngineLink, quiet: bool) -> Result<HeadlessSummary> {
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    });
    let mut summary = HeadlessSummary {
        final_step: 0,
        last_loss: None,
        last_val_loss: None,
        run_dir: None,
    };
    let mut max_steps = 0;
    let mut error = None;
    let mut smoothed_ms: Option<f64> = None;
    for event in link.events.iter() {
        match &event {
            Event::Started { info, .. } => {
                max_steps = info.max_steps;
                summary.run_dir = Some(info.run_dir.clone());
                if let Some(b) = &bar {
                    b.set_length(max_steps);
                    b.set_position(info.start_step);
                }
                if !quiet {
                    eprintln!(
                        "run {} on {}: {} parameters, {} tokens/step, steps {}..{} -> {}",
                        info.run_name,
                        info.device,
                        info.params,
                        info.tokens_per_step,
                        info.start_step,
                        info.max_steps,
                        info.run_dir
                    );
                }
            }
            Event::Step(s) => {
                summary.final_step = s.step;
                summary.last_loss = Some(s.loss);
                let ms = smoothed_ms.map_or(s.step_ms, |m| 0.9 * m + 0.1 * s.step_ms);
                smoothed_ms = Some(ms);
                let line = format!(
                    "step {:>6}/{} loss {:.4} lr {:.2e} grad {:.3} {:.0} ms/step {:.0} tok/s eta {}",
                    s.step,
                    max_steps,
                    s.loss,
                    s.lr,
                    s.grad_norm,
                    s.step_ms,
                    s.tokens_per_s,
                    eta(max_steps.saturating_sub(s.step), ms)
                );
                match &bar {
                    Some(b) => {
                        b.set_position(s.step);
                        b.set_message(line);
                    }
                    None if !quiet => println!("{line}"),
                    None => {}
                }
            }
            Event::Eval { step, val_loss } => {
                summary.last_val_loss = Some(*val_loss);
                if !quiet {
                    let line = format!("eval step {step} val_loss {val_loss:.4}");
                    match &bar {
                        Some(b) => b.println(line),
                        None => println!("{line}"),
                    }
                }
            }
            Event::CheckpointSaved { path, .. } if !quiet => eprintln!("checkpoint {path}"),
            Event::Alert { step, kind, detail } if !quiet => {
                eprintln!("alert at step {step} ({kind:?}): {detail}")
            }
            Event::Error { message, .. } => error = Some(message.clone()),
            _ => {}
        }
        let finished = matches!(event, Event::Finished { .. });
        let failed = matches!(
            event,
            Event::Finished {
                reason: FinishReason::Error,
                ..
            }
        );
        if finished {
            if failed && error.is_none() {
                error = Some("engine failed".into());
            }
            break;
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(join) = link.join {
        let _ = join.join();
    }
    if let Some(e) = error {
        bail!(e);
    }
    Ok(summary)
}
