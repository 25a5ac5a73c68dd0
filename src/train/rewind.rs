//! Rewind and skip, in place: the live engine rolls back to a checkpoint of its own lineage
//! and skips the next batches of the data cursor (the PaLM remedy for a loss spike). It is a
//! branch made exactly like `train --resume` of an older checkpoint (`resume.rs`, forced to
//! branch), so the run's newer checkpoints are never touched, the writer lock and
//! `metrics.jsonl` move to the branch, and the skip is recorded in the branch's checkpoints.

use super::emitter::Emitter;
use super::resume::{prepare_resume_as, ResumeMode};
use super::session::EngineRequest;
use super::trainer::Trainer;
use crate::controls::RewindRecord;
use crate::protocol::{AlertKind, Event, StartFrom};
use crate::store::history::{self, CheckpointPlace};
use crate::store::metrics_log::MetricsLog;
use crate::store::trainer_state::read_trainer_state;
use anyhow::{bail, Result};
use burn::tensor::backend::AutodiffBackend;
use std::path::{Path, PathBuf};

/// How many ancestors a lineage walk follows before giving up (a loop in `parent` links).
const MAX_LINEAGE: usize = 64;

/// The run directories of `trainer`'s lineage: its own, then those of the checkpoints it
/// descends from (following `parent` in each `trainer.json`), canonical.
fn lineage_runs(run_dir: &Path, parent: Option<&str>) -> Vec<PathBuf> {
    let mut runs: Vec<PathBuf> = std::fs::canonicalize(run_dir).into_iter().collect();
    let mut next = parent.map(PathBuf::from);
    while let Some(ckpt) = next.take() {
        if runs.len() >= MAX_LINEAGE {
            break;
        }
        if let CheckpointPlace::InRun(dir) = history::place_of(&ckpt) {
            if !runs.contains(&dir) {
                runs.push(dir);
            }
        }
        next = read_trainer_state(&ckpt)
            .ok()
            .and_then(|s| s.parent)
            .map(PathBuf::from);
    }
    runs
}

/// Refuse a checkpoint that is not of this run's lineage, or ahead of the engine.
fn check_target(
    trainer: &Trainer<impl AutodiffBackend>,
    checkpoint: &Path,
) -> Result<(PathBuf, u64)> {
    let CheckpointPlace::InRun(run) = history::place_of(checkpoint) else {
        bail!(
            "rewind {}: not a checkpoint inside a run's checkpoints/ directory",
            checkpoint.display()
        );
    };
    let lineage = lineage_runs(&trainer.run.run_dir, trainer.run.parent.as_deref());
    if !lineage.contains(&run) {
        bail!(
            "rewind {}: not a checkpoint of this run ({}) or of the runs it descends from",
            checkpoint.display(),
            trainer.run.run_dir.display()
        );
    }
    let step = read_trainer_state(checkpoint)?.step;
    if step > trainer.step {
        bail!(
            "rewind {}: the checkpoint (step {step}) is ahead of the engine (step {})",
            checkpoint.display(),
            trainer.step
        );
    }
    let real = std::fs::canonicalize(checkpoint).unwrap_or_else(|_| checkpoint.to_path_buf());
    Ok((real, step))
}

/// Build the branch trainer at `checkpoint` with `skip` steps of data skipped, its branch
/// directory claimed and locked. A failure after the claim removes the directory it made.
fn build_branch<B: AutodiffBackend>(
    req: &EngineRequest,
    trainer: &Trainer<B>,
    checkpoint: &Path,
    skip: u64,
) -> Result<(Trainer<B>, MetricsLog)> {
    let branch_req = EngineRequest {
        overrides: Vec::new(),
        config_explicit: false,
        run_name: None,
        start: StartFrom::Resume(checkpoint.to_path_buf()),
        fresh_optimizer: false,
        discard_later: false,
        ..req.clone()
    };
    let mut prepared = prepare_resume_as(&branch_req, checkpoint, ResumeMode::Rewind)?;
    let branch_dir = prepared.run_dir.clone();
    let lock = prepared.lock.take();
    let from_step = trainer.step;
    let built = (|| {
        let mut next = Trainer::<B>::new(prepared, trainer.device.clone(), false)?;
        next.skip_batches(skip)?;
        next.rewinds.push(RewindRecord {
            step: next.step,
            from_step,
            checkpoint: checkpoint.display().to_string(),
            skip_batches: skip,
        });
        let log = MetricsLog::open(&branch_dir)?;
        Ok((next, log))
    })();
    match built {
        Ok((next, mut log)) => {
            log.hold_lock(lock);
            Ok((next, log))
        }
        Err(e) => {
            // The branch directory was created new for this rewind: all in it is ours.
            drop(lock);
            let _ = std::fs::remove_dir_all(&branch_dir);
            Err(e)
        }
    }
}

/// Roll `trainer` back in place to `checkpoint`, skipping `skip` steps' worth of batches.
/// On success the engine continues in the branch (`Rewound` is logged in the run it leaves,
/// `Started` opens the branch's log); on failure nothing changed and the error says why.
pub(super) fn rewind<B: AutodiffBackend>(
    req: &EngineRequest,
    trainer: &mut Trainer<B>,
    checkpoint: &Path,
    skip: u64,
    out: &Emitter,
    info: impl FnOnce(&Trainer<B>) -> crate::protocol::RunInfo,
) -> Result<()> {
    let nodes = trainer.run.config.parallel.nodes;
    if nodes > 1 {
        bail!("a run over {nodes} nodes cannot rewind in place (the other nodes would not follow); stop every node and resume them all from the checkpoint");
    }
    let (checkpoint, _) = check_target(trainer, checkpoint)?;
    let (mut next, log) = build_branch(req, trainer, &checkpoint, skip)?;
    let from_step = trainer.step;
    // The local data-parallel peers stay joined and take the branch's weights and moments.
    next.adopt_peers(trainer)?;
    *trainer = next;
    let step = trainer.step;
    out.emit(Event::Rewound {
        step,
        from_step,
        checkpoint: checkpoint.display().to_string(),
        skip_batches: skip,
        run_dir: trainer.run.run_dir.display().to_string(),
    });
    out.attach_log(log, trainer.run.run_dir.join("metrics.jsonl"));
    let tensorboard = trainer
        .run
        .config
        .log
        .tensorboard
        .then(|| crate::store::tfevents::TfEventsWriter::create(&trainer.run.run_dir));
    match tensorboard {
        Some(Ok(writer)) => out.attach_tensorboard(writer),
        Some(Err(e)) => {
            out.emit(Event::Alert {
                step,
                kind: AlertKind::Notice,
                detail: format!("TensorBoard events stop here: {e:#}"),
            });
        }
        None => {}
    }
    out.set_step(step);
    out.emit(Event::Started {
        step,
        info: info(trainer),
    });
    for w in std::mem::take(&mut trainer.run.warnings) {
        out.emit(Event::Alert {
            step,
            kind: AlertKind::Notice,
            detail: w,
        });
    }
    Ok(())
}
