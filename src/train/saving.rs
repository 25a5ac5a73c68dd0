//! Saving from the engine: the step loop takes a host-memory snapshot, the run's checkpoint
//! writer (`store::ckpt_writer`) writes it (on its own thread unless `checkpoint.async =
//! false`), and the outcome becomes `CheckpointSaved` or a `CheckpointFailed` alert once the
//! files are durable or the write failed. Every end of the run waits for the writer first.

use super::emitter::Emitter;
use super::trainer::Trainer;
use crate::config::RunConfig;
use crate::protocol::{AlertKind, Event, FinishReason};
use crate::store::ckpt_writer::{CheckpointWriter, SaveOutcome, WriteMode};
use crate::store::layout::{checkpoint_dir_name, checkpoints_dir};
use burn::tensor::backend::AutodiffBackend;
use std::sync::Arc;

/// Whether a save was asked for (pinned: retention keeps it) or is the run's own cadence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SaveKind {
    /// `SaveCheckpoint`, or a stop with save (cockpit switch or quit, a signal).
    OnDemand,
    /// `checkpoint.every`, `--stop-at` and the end of the run.
    Scheduled,
}

/// The run's writer, reporting to `out` (from whichever thread did the write).
pub(super) fn writer(config: &RunConfig, out: &Emitter) -> CheckpointWriter {
    let mode = match config.checkpoint.async_write {
        true => WriteMode::Background,
        false => WriteMode::Inline,
    };
    let out = out.clone();
    CheckpointWriter::new(mode, Arc::new(move |outcome| report(&out, outcome)))
}

/// A save's outcome as events; a failure is alerted and counted (the run then ends
/// non-zero), never fatal.
fn report(out: &Emitter, outcome: SaveOutcome) {
    match outcome.result {
        Ok(path) => {
            out.emit(Event::CheckpointSaved {
                step: outcome.step,
                path: path.display().to_string(),
            });
        }
        Err(e) => {
            out.count_failed_save();
            out.emit(Event::Alert {
                step: outcome.step,
                kind: AlertKind::CheckpointFailed,
                detail: format!("{e:#}"),
            });
        }
    }
}

/// Save now: wait for a write still in flight (one snapshot at a time, never two writers),
/// snapshot, and hand the snapshot to the writer.
pub(super) fn save(
    trainer: &Trainer<impl AutodiffBackend>,
    writer: &mut CheckpointWriter,
    out: &Emitter,
    kind: SaveKind,
) {
    if !trainer.is_coordinator() {
        // Node 0 of a multi-node run writes the run's checkpoints; the others hold replicas.
        return;
    }
    writer.wait();
    match trainer.checkpoint_snapshot(kind == SaveKind::OnDemand) {
        Ok(job) => writer.submit(job),
        Err(e) => report(
            out,
            SaveOutcome {
                step: trainer.step,
                result: Err(e),
            },
        ),
    }
}

/// Whether the run has a complete checkpoint at the current step (written by this engine,
/// or the one a resume started from), so a final save would only rewrite it. Waits for the
/// write in flight first, so the answer is about durable files.
pub(super) fn saved_at_current_step(
    trainer: &Trainer<impl AutodiffBackend>,
    writer: &mut CheckpointWriter,
) -> bool {
    writer.wait();
    checkpoints_dir(&trainer.run.run_dir)
        .join(checkpoint_dir_name(trainer.step))
        .is_dir()
}

/// A stop with save found the current step already saved: pin that checkpoint, as the save
/// it stands for would have been; a failure is a notice (the checkpoint itself is intact).
pub(super) fn pin_current(trainer: &Trainer<impl AutodiffBackend>, out: &Emitter) {
    let dir = checkpoints_dir(&trainer.run.run_dir).join(checkpoint_dir_name(trainer.step));
    if let Err(e) = crate::store::pin::pin_own_checkpoint(&dir) {
        out.emit(Event::Alert {
            step: trainer.step,
            kind: AlertKind::Notice,
            detail: format!("could not pin {}: {e:#}", dir.display()),
        });
    }
}

/// End the run: wait for the checkpoint writer (its outcome is reported before `Finished`,
/// whose failure counts then include it), then emit `Finished`.
pub(super) fn finish(writer: &mut CheckpointWriter, out: &Emitter, reason: FinishReason) {
    writer.wait();
    out.finish(reason);
}
