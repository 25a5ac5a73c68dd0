//! The llite side of the training benchmark: median step time of forward + backward + AdamW on
//! random tokens, and the process's CPU time and peak memory around it.

use super::BenchCase;
use crate::model::Llama;
use crate::train::optim::{AdamW, AdamWConfig, GradBuffer};
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use std::time::Instant;

type Train = burn::backend::Autodiff<burn::backend::Flex>;

/// Random token rows `[batch, width]` (the bench measures compute, not data).
pub(super) fn random_rows(
    batch: usize,
    width: usize,
    vocab: usize,
    seed: u64,
) -> Tensor<Train, 2, Int> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let data: Vec<i64> = (0..batch * width)
        .map(|_| rng.random_range(0..vocab as i64))
        .collect();
    Tensor::from_data(TensorData::new(data, [batch, width]), &Default::default())
}

/// Peak resident memory of this process so far, from /proc (Linux only).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Which loss a benchmarked step computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepLoss {
    /// Pretraining: every target counts.
    Full,
    /// SFT: a loss mask over half the targets (the response tokens of a typical chat row).
    Masked,
}

/// Milliseconds per step over the timed steps: the median and the spread.
#[derive(Debug, Clone, Copy)]
pub struct StepTimes {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl StepTimes {
    /// Times measured elsewhere (the PyTorch reference).
    pub fn single(median: f64, min: f64, max: f64) -> Self {
        Self { median, min, max }
    }

    /// `[min-max]`, the spread printed next to a median.
    pub fn spread(&self) -> String {
        if self.min > 0.0 && self.max > 0.0 {
            format!("[{:.0}-{:.0}]", self.min, self.max)
        } else {
            String::new()
        }
    }
}

/// The optimizer every training bench uses: the seed report's AdamW (0.9/0.95, decay 0.1,
/// clip 1.0), as `benches/reference/train_step.py` configures PyTorch's.
pub fn bench_adamw<B: burn::tensor::backend::Backend>() -> AdamW<B> {
    AdamW::new(AdamWConfig {
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.1,
        grad_clip: 1.0,
    })
}

/// One benchmarked model and its optimizer, stepping on fresh random rows each time.
struct Stepper {
    model: Option<Llama<Train>>,
    optim: AdamW<burn::backend::Flex>,
    mask: Vec<f32>,
    kind: StepLoss,
    case: BenchCase,
    next_seed: u64,
}

impl Stepper {
    fn new(case: &BenchCase, kind: StepLoss) -> Self {
        // SFT's mask: the first half of every row is prompt (masked), the rest response.
        let mask = (0..case.batch * case.seq)
            .map(|i| {
                if (i % case.seq) < case.seq / 2 {
                    0.0
                } else {
                    1.0
                }
            })
            .collect();
        Self {
            model: Some(Llama::<Train>::new(&case.model, 1, &Default::default())),
            optim: bench_adamw(),
            mask,
            kind,
            case: case.clone(),
            next_seed: 0,
        }
    }

    /// One forward + backward + AdamW step; milliseconds, with the update finished.
    fn step(&mut self) -> f64 {
        let case = &self.case;
        let rows = random_rows(
            case.batch,
            case.seq + 1,
            case.model.vocab_size,
            self.next_seed,
        );
        self.next_seed += 1;
        let model = self.model.take().expect("a stepper always holds its model");
        let start = Instant::now();
        let loss = match self.kind {
            StepLoss::Full => model.loss(rows),
            StepLoss::Masked => {
                let mask = TensorData::new(self.mask.clone(), [self.mask.len()]);
                let mask = Tensor::from_data(mask, &Default::default());
                crate::train::backward::MicroBatch::from_rows(rows, Some(mask)).loss(&model)
            }
        };
        let mut buffer = GradBuffer::default();
        buffer.accumulate::<Train, _>(&model, loss.backward());
        let (model, _) = self.optim.update(model, buffer, 1e-4);
        // Force the update to finish before stopping the clock.
        let _ = crate::model::params::tensor_to_vec(model.norm.val().sum());
        self.model = Some(model);
        start.elapsed().as_secs_f64() * 1000.0
    }
}

/// Median and range of a set of measurements.
fn summarize(mut values: Vec<f64>) -> StepTimes {
    values.sort_by(f64::total_cmp);
    StepTimes {
        median: values[values.len() / 2],
        min: values[0],
        max: values[values.len() - 1],
    }
}

/// Step times (fwd + bwd + AdamW) over `steps` timed steps after one warm-up.
pub fn train_step_ms(case: &BenchCase, steps: usize, kind: StepLoss) -> StepTimes {
    let mut stepper = Stepper::new(case, kind);
    stepper.step();
    summarize((0..steps).map(|_| stepper.step()).collect())
}

/// SFT's step against pretraining's, measured in alternation (pretraining step, SFT step,
/// repeat) so both see the same machine state: a busy neighbour slows both sides of a pair,
/// not one row. Returns the SFT step times and the per-pair speed ratio (pretraining ms / SFT
/// ms; 1.0 = as fast), each as median and range.
pub fn sft_vs_pretraining(case: &BenchCase, steps: usize) -> (StepTimes, StepTimes) {
    let mut full = Stepper::new(case, StepLoss::Full);
    let mut masked = Stepper::new(case, StepLoss::Masked);
    full.step();
    masked.step();
    let pairs: Vec<(f64, f64)> = (0..steps).map(|_| (full.step(), masked.step())).collect();
    let sft = summarize(pairs.iter().map(|p| p.1).collect());
    let ratio = summarize(pairs.iter().map(|p| p.0 / p.1).collect());
    (sft, ratio)
}

/// CPU time (user + system) of this process so far, in seconds, from /proc (Linux only).
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0) // USER_HZ is 100 on Linux
}

/// Reset the peak-RSS mark (VmHWM) so each config reports its own peak (Linux >= 4.0).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
