//! Checkpoints written off the step loop. The engine hands a host-memory snapshot
//! ([`CheckpointData`]) to one writer thread, which writes it with the very protocol a
//! synchronous save uses ([`checkpoint::save`]: `.partial`, every file fsynced and digested,
//! rename, parent fsynced), applies retention only once the files are durable, then reports.
//! At most one write is in flight: a second save waits for the first (two writers never share
//! a `checkpoints/`), and dropping the writer waits too, so quitting never abandons a write.

use super::checkpoint::{self, CheckpointData};
use super::listing::apply_retention;
use anyhow::Result;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Which checkpoints survive a save (`[checkpoint] keep_last`, `keep_every`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Keep the newest N (0 keeps all).
    pub keep_last: usize,
    /// Also keep every checkpoint whose step is a multiple of this (0 = none).
    pub keep_every: u64,
}

/// One checkpoint to write: the snapshot, the run it belongs to and what to keep afterwards.
pub struct SaveJob {
    /// The run directory; the checkpoint goes to `<run_dir>/checkpoints/step-N/`.
    pub run_dir: PathBuf,
    /// Everything the checkpoint holds, already copied off the device.
    pub data: CheckpointData,
    pub retention: Retention,
}

/// How a save ended, reported once its files are durable (or the write failed).
pub struct SaveOutcome {
    /// The step the checkpoint was taken at (not the step the run has reached since).
    pub step: u64,
    /// The checkpoint's directory, or an error naming the path that failed.
    pub result: Result<PathBuf>,
}

/// Called with every outcome, on the thread that did the write.
pub type Report = Arc<dyn Fn(SaveOutcome) + Send + Sync>;

/// Whether saves run on the writer thread or on the caller's (`checkpoint.async = false`:
/// no second copy of weights and moments held in memory while a write is in flight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Background,
    Inline,
}

/// Write one job: the checkpoint, then retention (never before the new set is on disk).
pub fn write_job(job: &SaveJob) -> Result<PathBuf> {
    let dir = checkpoint::save(&job.run_dir, &job.data)?;
    let r = job.retention;
    apply_retention(&job.run_dir, r.keep_last, r.keep_every, &dir)?;
    Ok(dir)
}

/// Write a job and report it; a panic in the write is reported as a failed save, not lost.
fn write_and_report(job: SaveJob, report: &Report) {
    let step = job.data.trainer.step;
    let target = job.run_dir.join("checkpoints");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write_job(&job)))
        .unwrap_or_else(|_| {
            Err(anyhow::anyhow!(
                "checkpoint of step {step} in {} was not written: its writer panicked",
                target.display()
            ))
        });
    drop(job);
    report(SaveOutcome { step, result });
}

/// The run's checkpoint writer: one write in flight at most, waited for on drop.
pub struct CheckpointWriter {
    mode: WriteMode,
    report: Report,
    in_flight: Option<JoinHandle<()>>,
}

impl CheckpointWriter {
    /// A writer that hands every outcome to `report`.
    pub fn new(mode: WriteMode, report: Report) -> Self {
        Self {
            mode,
            report,
            in_flight: None,
        }
    }

    /// Whether saves are written in the background.
    pub fn mode(&self) -> WriteMode {
        self.mode
    }

    /// Whether a background write has been started and not yet waited for.
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Block until the write in flight (if any) has finished and been reported.
    pub fn wait(&mut self) {
        if let Some(handle) = self.in_flight.take() {
            // The thread catches a panicking write itself; a panic here came from `report`.
            let _ = handle.join();
        }
    }

    /// Write `job`: in the background (after waiting for the previous write), or right here.
    /// Callers that snapshot large tensors should [`Self::wait`] before taking the snapshot,
    /// so at most two copies of the weights (live and one snapshot) exist at a time.
    pub fn submit(&mut self, job: SaveJob) {
        self.wait();
        if self.mode == WriteMode::Inline {
            write_and_report(job, &self.report);
            return;
        }
        let report = self.report.clone();
        let shared = Arc::new(std::sync::Mutex::new(Some(job)));
        let for_thread = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("llite-ckpt-writer".into())
            .spawn(move || {
                let job = for_thread.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(job) = job {
                    write_and_report(job, &report);
                }
            });
        match spawned {
            Ok(handle) => self.in_flight = Some(handle),
            // No thread to be had: write synchronously rather than not at all.
            Err(_) => {
                let job = shared.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(job) = job {
                    write_and_report(job, &self.report);
                }
            }
        }
    }
}

impl Drop for CheckpointWriter {
    fn drop(&mut self) {
        self.wait();
    }
}
