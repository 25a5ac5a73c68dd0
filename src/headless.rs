//! The headless consumer: drives an engine to completion, printing progress lines (every
//! `--log-every` steps) or a progress bar on a terminal (see `progress`). `metrics.jsonl` is written by the engine itself.
//! A stop signal makes the engine finish its step and save; a run whose writes failed, or that
//! a signal stopped, ends with a typed `Exit` so the process exit code tells a script.
//! It also serves the run's control socket (`crate::control`), so `llite-tui ctl` and
//! `watch` from another terminal can steer it.
//! On a spike it applies `[train] on_spike` (`spike_policy.rs`): pause, or rewind and skip.

#[cfg(unix)]
use crate::control::ControlServer;
use crate::exit::Exit;
use crate::progress::StepLog;
use crate::protocol::{Command, EngineLink, Event, FailureCounts, FinishReason};
use crate::signals::{signal_name, StopSignals};
use crate::spike_policy::SpikePolicy;
use crate::store::listing::latest_valid_checkpoint;
use anyhow::{bail, Result};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Outcome of a headless run, for the exit code and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadlessSummary {
    pub final_step: u64,
    pub last_loss: Option<f64>,
    pub last_val_loss: Option<f64>,
    pub run_dir: Option<String>,
    /// Why the engine finished (None if it vanished without saying).
    pub reason: Option<FinishReason>,
    /// Writes that failed during the run, as the engine counted them.
    pub failures: FailureCounts,
}

/// "2 checkpoint saves and 1 metrics.jsonl write failed", or None when nothing failed.
fn describe_failures(f: &FailureCounts) -> Option<String> {
    let plural = |n: u64, one: &str, many: &str| match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    };
    let mut parts = Vec::new();
    if f.checkpoint_saves > 0 {
        parts.push(plural(
            f.checkpoint_saves,
            "checkpoint save",
            "checkpoint saves",
        ));
    }
    if f.metrics_writes > 0 {
        parts.push(plural(
            f.metrics_writes,
            "metrics.jsonl write",
            "metrics.jsonl writes",
        ));
    }
    (!parts.is_empty()).then(|| format!("{} failed", parts.join(" and ")))
}

impl HeadlessSummary {
    /// The run's last line: `Ok` with the message for a clean run, or an `Exit` carrying
    /// 128 + signal number after a stop signal, 1 when any checkpoint save or metrics write
    /// failed. `newest_good` is the newest valid checkpoint, which every message names.
    pub fn verdict(&self, newest_good: Option<&Path>) -> Result<String> {
        let dir = self.run_dir.as_deref().unwrap_or("?");
        let good = newest_good.map_or("none".to_string(), |p| p.display().to_string());
        let failed = describe_failures(&self.failures);
        let step = self.final_step;
        if let Some(code) = self.reason.and_then(|r| r.signal_exit_code()) {
            let name = signal_name(self.reason.unwrap_or(FinishReason::Stopped));
            let tail = match (&failed, newest_good) {
                (None, Some(p)) => format!("resume with --resume {}", p.display()),
                (Some(f), _) => format!("{f}; newest good checkpoint: {good}"),
                (None, None) => "no checkpoint was saved".to_string(),
            };
            return Err(Exit::new(code, format!("{name}: stopped at step {step}; {tail}")).into());
        }
        if let Some(f) = failed {
            return Err(Exit::new(
                1,
                format!("run finished at step {step}, but {f}; newest good checkpoint: {good}"),
            )
            .into());
        }
        Ok(format!("finished at step {step}; run directory {dir}"))
    }
}

/// `println!` that never panics: a closed stdout (`| head`) or a dead terminal (after SIGHUP)
/// must not kill a training run; progress lines are then simply lost.
macro_rules! say_out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that never panics, for the same reason.
macro_rules! say_err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

fn eta(steps_left: u64, step_ms: f64) -> String {
    let secs = (steps_left as f64 * step_ms / 1000.0).round() as u64;
    format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Relay stop signals to the engine: the first asks it to finish the step and save, a second
/// ends the process at once with the same code (checkpoints are renamed into place whole, so
/// none is torn; a leftover `.partial` is cleaned by the next resume).
fn relay_signals(
    signals: StopSignals,
    link: &EngineLink,
    step: Arc<AtomicU64>,
) -> crate::signals::SignalForwarder {
    let commands = link.commands.clone();
    signals.forward(move |reason, nth| {
        let name = signal_name(reason);
        let code = reason.signal_exit_code().unwrap_or(1);
        if nth == 1 {
            say_err!(
                "{name}: finishing step {} and saving a checkpoint; send it again (after a second) to abort",
                step.load(Ordering::Relaxed) + 1
            );
            let _ = commands.send(Command::Stop { save: true, reason });
        } else {
            say_err!("error: {name} again: aborted without saving; checkpoints already on disk are untouched");
            std::process::exit(code);
        }
    })
}

/// Open the run's control endpoint for `llite-tui ctl` and `watch`. A refusal (a directory
/// others can write, a foreign file at `control.sock`) is said on stderr and the run goes on
/// without one: steering is optional, the training is not.
#[cfg(unix)]
fn open_control(
    info: &crate::protocol::RunInfo,
    link: &EngineLink,
    quiet: bool,
) -> Option<ControlServer> {
    match ControlServer::start(info, link.commands.clone()) {
        Ok(c) => {
            if !quiet {
                say_err!("control: llite-tui ctl {} status|pause|resume|save|eval|set KEY=VALUE|sample PROMPT", info.run_dir);
            }
            Some(c)
        }
        Err(e) => {
            say_err!("warning: no control endpoint, `llite-tui ctl` cannot steer this run: {e:#}");
            None
        }
    }
}

/// No control endpoint off Unix.
#[cfg(not(unix))]
struct ControlServer;

#[cfg(not(unix))]
impl ControlServer {
    fn observe(&self, _: &Event) {}
}

#[cfg(not(unix))]
fn open_control(_: &crate::protocol::RunInfo, _: &EngineLink, _: bool) -> Option<ControlServer> {
    None
}

/// Consume events until the engine finishes; an engine error becomes this function's error.
/// With `signals`, SIGINT/SIGTERM/SIGHUP stop the run gracefully (see `relay_signals`).
/// Not quiet: a bar on a terminal, else a line every step (`run_logged` chooses the rate).
pub fn run(link: EngineLink, quiet: bool, signals: Option<StopSignals>) -> Result<HeadlessSummary> {
    let log = if quiet {
        StepLog::Quiet
    } else {
        StepLog::every(1)
    };
    run_logged(link, log, signals)
}

/// [`run`] with the step output chosen by `log` (`--log-every`).
pub fn run_logged(
    link: EngineLink,
    log: StepLog,
    signals: Option<StopSignals>,
) -> Result<HeadlessSummary> {
    let quiet = log.is_quiet();
    let step = Arc::new(AtomicU64::new(0));
    let _relay = signals.map(|s| relay_signals(s, &link, step.clone()));
    let bar = log.bar();
    let mut start_step = 0;
    let mut summary = HeadlessSummary {
        final_step: 0,
        last_loss: None,
        last_val_loss: None,
        run_dir: None,
        reason: None,
        failures: FailureCounts::default(),
    };
    let mut max_steps = 0;
    let mut error = None;
    let mut control: Option<ControlServer> = None;
    let mut smoothed_ms: Option<f64> = None;
    let mut spike_policy = SpikePolicy::default();
    for event in link.events.iter() {
        if let Some(c) = &control {
            c.observe(&event);
        }
        // `[train] on_spike` is this consumer's decision: pause, or rewind and skip.
        if let Some(decision) = spike_policy.observe(&event) {
            if !quiet {
                say_err!("{}", decision.notice);
            }
            if let Some(command) = decision.command {
                let _ = link.commands.send(command);
            }
        }
        match &event {
            Event::Started { info, .. } => {
                control = open_control(info, &link, quiet);
                max_steps = info.max_steps;
                summary.run_dir = Some(info.run_dir.clone());
                summary.final_step = info.start_step;
                start_step = info.start_step;
                step.store(info.start_step, Ordering::Relaxed);
                if let Some(b) = &bar {
                    b.set_length(max_steps);
                    b.set_position(info.start_step);
                }
                if !quiet {
                    say_err!(
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
                step.store(s.step, Ordering::Relaxed);
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
                    None if log.line_due(s.step, start_step, max_steps) => say_out!("{line}"),
                    None => {}
                }
            }
            Event::Eval { step, val_loss } => {
                summary.last_val_loss = Some(*val_loss);
                if !quiet {
                    let line = format!("eval step {step} val_loss {val_loss:.4}");
                    match &bar {
                        Some(b) => b.println(line),
                        None => say_out!("{line}"),
                    }
                }
            }
            Event::CheckpointSaved { path, .. } if !quiet => say_err!("checkpoint {path}"),
            Event::Alert { step, kind, detail } if !quiet => {
                say_err!("alert at step {step} ({}): {detail}", kind.label())
            }
            Event::Rewound {
                step,
                from_step,
                skip_batches,
                run_dir,
                ..
            } if !quiet => say_err!(
                "rewound from step {from_step} to step {step}, skipped {skip_batches} steps of data; continuing as the branch {run_dir}"
            ),
            Event::ControlChanged { step, change } if !quiet => say_err!(
                "step {step}: {} {} -> {}",
                change.key,
                change.old,
                change.new
            ),
            Event::ControlRejected { message, .. } if !quiet => say_err!("refused: {message}"),
            Event::Error { message, .. } => error = Some(message.clone()),
            Event::Finished {
                step,
                reason,
                failures,
            } => {
                summary.final_step = *step;
                summary.reason = Some(*reason);
                summary.failures = *failures;
                if *reason == FinishReason::Error && error.is_none() {
                    error = Some("engine failed".into());
                }
                break;
            }
            _ => {}
        }
    }
    // Stop serving and remove the socket (only if still ours: a next owner of the run may
    // already have put its own there once the engine released the run lock).
    drop(control);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(join) = link.join {
        let _ = join.join();
    }
    if let Some(e) = error {
        match describe_failures(&summary.failures) {
            Some(f) => bail!("{e} (at step {}; also {f})", summary.final_step),
            None => bail!(e),
        }
    }
    Ok(summary)
}

/// The newest valid checkpoint of the summary's run directory, for `verdict`.
pub fn newest_good_checkpoint(summary: &HeadlessSummary) -> Option<std::path::PathBuf> {
    summary
        .run_dir
        .as_deref()
        .and_then(|d| latest_valid_checkpoint(Path::new(d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(reason: FinishReason, saves: u64, writes: u64) -> HeadlessSummary {
        HeadlessSummary {
            final_step: 15,
            last_loss: None,
            last_val_loss: None,
            run_dir: Some("/runs/r".into()),
            reason: Some(reason),
            failures: FailureCounts {
                checkpoint_saves: saves,
                metrics_writes: writes,
            },
        }
    }

    fn exit_of(r: Result<String>) -> Exit {
        r.unwrap_err().downcast::<Exit>().expect("an Exit")
    }

    #[test]
    fn a_clean_run_succeeds_and_failed_writes_exit_1_naming_the_newest_good_checkpoint() {
        let good = Path::new("/runs/r/checkpoints/step-00000005");
        let ok = summary(FinishReason::MaxSteps, 0, 0).verdict(Some(good));
        assert_eq!(ok.unwrap(), "finished at step 15; run directory /runs/r");
        let x = exit_of(summary(FinishReason::MaxSteps, 2, 0).verdict(Some(good)));
        assert_eq!(x.code, 1);
        assert_eq!(
            x.message,
            "run finished at step 15, but 2 checkpoint saves failed; newest good checkpoint: /runs/r/checkpoints/step-00000005"
        );
        let x = exit_of(summary(FinishReason::Stopped, 1, 3).verdict(None));
        assert_eq!(
            x.message,
            "run finished at step 15, but 1 checkpoint save and 3 metrics.jsonl writes failed; newest good checkpoint: none"
        );
    }

    #[test]
    fn a_signal_stop_exits_128_plus_the_signal_and_says_how_to_resume() {
        let good = Path::new("/runs/r/checkpoints/step-00000015");
        let x = exit_of(summary(FinishReason::Terminated, 0, 0).verdict(Some(good)));
        assert_eq!(x.code, 143);
        assert_eq!(
            x.message,
            "SIGTERM: stopped at step 15; resume with --resume /runs/r/checkpoints/step-00000015"
        );
        let x = exit_of(summary(FinishReason::HangUp, 1, 0).verdict(None));
        assert_eq!(x.code, 129);
        assert!(
            x.message.contains("1 checkpoint save failed"),
            "{}",
            x.message
        );
        let x = exit_of(summary(FinishReason::Interrupted, 0, 0).verdict(None));
        assert_eq!(x.code, 130);
        assert!(
            x.message.ends_with("no checkpoint was saved"),
            "{}",
            x.message
        );
    }
}
