//! How long a checkpoint stalls the step loop, written synchronously and in the background
//! (`store::ckpt_writer`), on a model that has taken a real AdamW step (so the snapshot copies
//! real moments), and what a training step costs while the background write runs beside it.

use super::BenchCase;
use crate::config::RunConfig;
use crate::model::params::{export_params, param_shapes, tensor_to_vec};
use crate::model::Llama;
use crate::store::checkpoint::CheckpointData;
use crate::store::ckpt_writer::{CheckpointWriter, Retention, SaveJob, WriteMode};
use crate::store::trainer_state::initial_trainer_state;
use crate::train::optim::{AdamW, AdamWConfig, GradBuffer};
use anyhow::{Context, Result};
use burn::tensor::{Int, Tensor, TensorData};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

type Train = burn::backend::Autodiff<burn::backend::Flex>;

/// Timed rounds; the best of each is reported.
const REPEATS: usize = 2;

/// One row of the stall table, in milliseconds.
pub struct Stall {
    /// Copying weights + moments + trainer state to host memory.
    pub snapshot_ms: f64,
    /// The step loop's wait for a synchronous save (snapshot + write + fsync + retention).
    pub sync_ms: f64,
    /// The step loop's wait for a background save (snapshot + handing it to the writer).
    pub async_ms: f64,
    /// How long the background write took after the hand-off.
    pub background_ms: f64,
    /// A training step on its own, and one started right after the hand-off (sharing the CPU
    /// and the memory bus with the writer).
    pub step_ms: f64,
    pub step_during_write_ms: f64,
}

/// A model with real AdamW moments, and a function running one training step on it.
struct Bench {
    model: Option<Llama<Train>>,
    optim: AdamW<burn::backend::Flex>,
    case: BenchCase,
}

impl Bench {
    fn step(&mut self) -> f64 {
        let (b, w, vocab) = (
            self.case.batch,
            self.case.seq + 1,
            self.case.model.vocab_size,
        );
        let data: Vec<i64> = (0..b * w).map(|i| (i * 7919 % vocab) as i64).collect();
        let rows =
            Tensor::<Train, 2, Int>::from_data(TensorData::new(data, [b, w]), &Default::default());
        let start = Instant::now();
        let model = self.model.take().expect("model present");
        let loss = model.loss(rows);
        let mut buffer = GradBuffer::default();
        buffer.accumulate::<Train, _>(&model, loss.backward());
        let (model, _) = self.optim.update(model, buffer, 1e-4);
        let _ = tensor_to_vec(model.norm.val().sum());
        self.model = Some(model);
        start.elapsed().as_secs_f64() * 1000.0
    }

    fn snapshot(&self, run_dir: &Path) -> SaveJob {
        let model = self.model.as_ref().expect("model present");
        let config = RunConfig {
            model: self.case.model.clone(),
            ..RunConfig::default()
        };
        let data = CheckpointData {
            trainer: initial_trainer_state(
                &config,
                "bench".into(),
                self.case.model.vocab_size,
                None,
            ),
            model_config: self.case.model.clone(),
            weights: export_params(model),
            moments: Some(self.optim.export_moments(&param_shapes(model))),
            tokenizer_json: "{}".into(),
            eos_token_id: 0,
            tokenizer_meta: None,
        };
        SaveJob {
            run_dir: run_dir.to_path_buf(),
            data,
            retention: Retention {
                keep_last: 0,
                keep_every: 0,
            },
        }
    }
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// Measure the stall of one checkpoint of `case` saved into `work_dir` (removed afterwards).
pub fn measure(case: &BenchCase, work_dir: &Path) -> Result<Stall> {
    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("cannot create {}", work_dir.display()))?;
    let result = measure_in(case, work_dir);
    let _ = std::fs::remove_dir_all(work_dir);
    result
}

fn measure_in(case: &BenchCase, work_dir: &Path) -> Result<Stall> {
    let mut bench = Bench {
        model: Some(Llama::<Train>::new(&case.model, 1, &Default::default())),
        optim: AdamW::new(AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            grad_clip: 1.0,
        }),
        case: case.clone(),
    };
    bench.step(); // warm-up, and real moments
                  // When the last write finished, and the first failure (which fails the row).
    let done: Arc<Mutex<Option<Instant>>> = Arc::default();
    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    let (done_at, seen) = (done.clone(), failure.clone());
    let report = Arc::new(move |o: crate::store::ckpt_writer::SaveOutcome| {
        *done_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        if let Err(e) = o.result {
            seen.lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert(format!("{e:#}"));
        }
    });
    let mut sync = CheckpointWriter::new(WriteMode::Inline, report.clone());
    let mut background = CheckpointWriter::new(WriteMode::Background, report);
    let mut best = Stall {
        snapshot_ms: f64::MAX,
        sync_ms: f64::MAX,
        async_ms: f64::MAX,
        background_ms: f64::MAX,
        step_ms: f64::MAX,
        step_during_write_ms: f64::MAX,
    };
    let clear = || std::fs::remove_dir_all(work_dir.join("checkpoints"));
    for _ in 0..REPEATS {
        let _ = clear();
        let start = Instant::now();
        let job = bench.snapshot(work_dir);
        best.snapshot_ms = best.snapshot_ms.min(ms_since(start));
        drop(job);

        let start = Instant::now();
        sync.submit(bench.snapshot(work_dir));
        best.sync_ms = best.sync_ms.min(ms_since(start));
        let _ = clear();

        best.step_ms = best.step_ms.min(bench.step());

        let start = Instant::now();
        background.submit(bench.snapshot(work_dir));
        let handed_off = Instant::now();
        best.async_ms = best.async_ms.min(ms_since(start));
        let step = bench.step();
        background.wait();
        let finished = done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(handed_off);
        let write_ms = finished.duration_since(handed_off).as_secs_f64() * 1000.0;
        best.background_ms = best.background_ms.min(write_ms);
        best.step_during_write_ms = best.step_during_write_ms.min(step);
    }
    let _ = clear();
    if let Some(e) = failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
        anyhow::bail!(e);
    }
    Ok(best)
}

/// The step loop's stall per checkpoint, synchronous vs background write (`checkpoint.async`).
pub(super) fn stall_table(large: bool, io_dir: &Path) {
    println!();
    println!("checkpoint stall of the step loop (weights + real AdamW moments, best of 2)");
    println!(
        "{:<20} {:>11} {:>11} {:>11} {:>13} {:>9} {:>14}",
        "config",
        "snapshot ms",
        "sync stall",
        "async stall",
        "bg write ms",
        "step ms",
        "step during bg"
    );
    for case in super::cases(large) {
        let work = io_dir.join(format!(".bench-stall-{}", std::process::id()));
        match measure(&case, &work) {
            Ok(s) => println!(
                "{:<20} {:>11.1} {:>11.1} {:>11.1} {:>13.1} {:>9.1} {:>14.1}",
                case.name,
                s.snapshot_ms,
                s.sync_ms,
                s.async_ms,
                s.background_ms,
                s.step_ms,
                s.step_during_write_ms
            ),
            Err(e) => println!("{:<20} checkpoint stall failed: {e:#}", case.name),
        }
    }
    println!("stall = how long the step loop waits per checkpoint; async stall = snapshot + hand-off; step during bg = a training step sharing the CPU with the background write.");
}
