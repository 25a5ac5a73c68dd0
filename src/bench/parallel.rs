//! The data-parallel row of `bench`: one step of 1 peer on the whole batch next to 2 local
//! peers on half of it each (`train/parallel`), the pure cost of the all-reduce (every peer
//! ready, zeros moved) and the bytes each peer sends per step, which is what predicts scaling
//! on GPUs. On a CPU both peers share the same cores, so 2 peers are not expected to be faster.

use super::training::{train_step_ms, StepLoss};
use super::BenchCase;
use crate::config::ParallelConfig;
use crate::model::Llama;
use crate::train::parallel::PeerGroup;
use crate::train::trainer::TrainBatch;
use crate::units::format_bytes;
use anyhow::Result;
use rand::{Rng, SeedableRng};
use std::time::Instant;

type Train = burn::backend::Autodiff<burn::backend::Flex>;

/// What the row shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ParallelRow {
    /// Median ms per step, 1 peer, the whole batch.
    pub one_peer_ms: f64,
    /// Median ms per step, 2 peers, half the batch each.
    pub two_peer_ms: f64,
    /// Median time the coordinator waited in the step's all-reduce (includes waiting for the
    /// slower peer).
    pub wait_ms: f64,
    /// Median time of an all-reduce of the same buffer with both peers ready.
    pub allreduce_ms: f64,
    /// Bytes each peer sends into the all-reduce per step.
    pub bytes_per_peer: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Measure `case` with 1 and 2 local peers over `steps` timed steps (after 1 warm-up).
pub fn measure(case: &BenchCase, steps: usize) -> Result<ParallelRow> {
    let one_peer_ms = train_step_ms(case, steps, StepLoss::Full).median;
    let device = Default::default();
    let mut model = Llama::<Train>::new(&case.model, 1, &device);
    let mut optim = super::training::bench_adamw();
    let plan = ParallelConfig {
        peers: 2,
        ..ParallelConfig::default()
    };
    let mut group = PeerGroup::start(&plan, vec![device; 2], &model, &optim)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (mut times, mut waits, mut reduces) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..=steps {
        let batch = TrainBatch {
            tokens: (0..case.batch * (case.seq + 1))
                .map(|_| rng.random_range(0..case.model.vocab_size as u32))
                .collect(),
            mask: None,
            batch: case.batch,
            seq: case.seq,
        };
        let start = Instant::now();
        let (m, result) = group.step(model, &mut optim, &[batch], 1e-4);
        model = m;
        let step = result?;
        if i > 0 {
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            waits.push(step.allreduce_ms);
            reduces.push(group.time_allreduce()?.as_secs_f64() * 1000.0);
        }
    }
    Ok(ParallelRow {
        one_peer_ms,
        two_peer_ms: median(times),
        wait_ms: median(waits),
        allreduce_ms: median(reduces),
        bytes_per_peer: group.bytes_per_step(),
    })
}

/// Data parallelism on this machine: 2 local peers (half the batch each) vs 1 peer.
pub(super) fn parallel_table(steps: usize, large: bool) {
    println!();
    println!("data parallel: 2 local peers (threads, half the batch each) vs 1 peer, median of {steps} steps; all-reduce over Burn's collective");
    println!(
        "{:<20} {:>10} {:>10} {:>7} {:>12} {:>13} {:>12}",
        "config", "1 peer ms", "2 peers ms", "ratio", "wait in AR", "all-reduce ms", "bytes/peer"
    );
    for case in super::cases(large) {
        match measure(&case, steps) {
            Ok(r) => println!(
                "{:<20} {:>10.1} {:>10.1} {:>6.2}x {:>12.1} {:>13.2} {:>12}",
                case.name,
                r.one_peer_ms,
                r.two_peer_ms,
                r.one_peer_ms / r.two_peer_ms,
                r.wait_ms,
                r.allreduce_ms,
                format_bytes(r.bytes_per_peer)
            ),
            Err(e) => println!("{:<20} data parallel failed: {e:#}", case.name),
        }
    }
    println!("ratio = 1-peer / 2-peer step time (above 1: 2 peers are faster); on CPU both peers share the cores. wait in AR = the coordinator's time in the step's all-reduce (waiting for the slower peer included); all-reduce ms = the same buffer with both peers ready.");
}
