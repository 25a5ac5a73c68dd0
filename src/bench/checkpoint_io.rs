//! Checkpoint save/load speed against the disk's own speed, measured on the same directory:
//! a checkpoint that writes at a fraction of the disk's speed stalls training for nothing.

use super::BenchCase;
use crate::config::RunConfig;
use crate::model::params::export_params;
use crate::model::Llama;
use crate::store::checkpoint::{self, CheckpointData};
use crate::store::trainer_state::initial_trainer_state;
use crate::store::NamedTensor;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

type Infer = burn::backend::Flex;

/// Timed rounds; the best of each is reported (disk speed varies from write to write).
const REPEATS: usize = 3;

/// Save and load throughput of one checkpoint next to raw writes/reads of as many bytes.
pub struct CheckpointIo {
    /// Bytes of the checkpoint's tensor files (weights + both AdamW moments).
    pub bytes: u64,
    pub save_mb_s: f64,
    pub load_mb_s: f64,
    /// One file of `bytes` written with `write_all` + `fsync`.
    pub disk_write_mb_s: f64,
    /// The same file read back (from the page cache when it fits, as the checkpoint is).
    pub disk_read_mb_s: f64,
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn mb_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs.max(1e-9)
}

/// A complete checkpoint of the bench model (moments as after import: zero, which the
/// uncompressed safetensors format writes at the same cost as any other value).
fn bench_checkpoint(model: &Llama<Infer>, case: &BenchCase) -> CheckpointData {
    let weights = export_params(model);
    let moments = zero_moments(&weights);
    let config = RunConfig {
        model: case.model.clone(),
        ..RunConfig::default()
    };
    CheckpointData {
        trainer: initial_trainer_state(&config, "bench".into(), case.model.vocab_size, None),
        model_config: case.model.clone(),
        weights,
        moments: Some(moments),
        // The benchmark never loads a tokenizer from this checkpoint.
        tokenizer_json: "{}".into(),
        eos_token_id: 0,
        tokenizer_meta: None,
    }
}

/// Save and load a checkpoint of the bench model in `work_dir`, then write and read as many
/// raw bytes there; everything written is removed again.
pub fn measure(model: &Llama<Infer>, case: &BenchCase, work_dir: &Path) -> Result<CheckpointIo> {
    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("cannot create {}", work_dir.display()))?;
    let ckpt_dir = work_dir.join("step-bench");
    let data = bench_checkpoint(model, case);
    let raw = work_dir.join("raw-write.bin");
    let result = (|| {
        // Best of REPEATS, alternating checkpoint and raw I/O so both see the same disk state.
        let (mut save_s, mut load_s, mut write_s, mut read_s) =
            (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
        let mut bytes = 0;
        for _ in 0..REPEATS {
            let _ = std::fs::remove_dir_all(&ckpt_dir);
            let start = Instant::now();
            checkpoint::save_to(&ckpt_dir, &data)?;
            save_s = save_s.min(start.elapsed().as_secs_f64());
            bytes = dir_bytes(&ckpt_dir);
            let start = Instant::now();
            // What a resume reads: every weight and both moments.
            let ckpt = checkpoint::load(&ckpt_dir)?;
            drop((ckpt.weights.read_all()?, ckpt.read_moments()?));
            load_s = load_s.min(start.elapsed().as_secs_f64());

            let buffer = vec![0x5au8; bytes as usize];
            let _ = std::fs::remove_file(&raw);
            let start = Instant::now();
            let mut f = std::fs::File::create(&raw)
                .with_context(|| format!("cannot create {}", raw.display()))?;
            f.write_all(&buffer)?;
            f.sync_all()?;
            write_s = write_s.min(start.elapsed().as_secs_f64());
            drop(buffer);
            let start = Instant::now();
            drop(std::fs::read(&raw)?);
            read_s = read_s.min(start.elapsed().as_secs_f64());
        }
        Ok(CheckpointIo {
            bytes,
            save_mb_s: mb_s(bytes, save_s),
            load_mb_s: mb_s(bytes, load_s),
            disk_write_mb_s: mb_s(bytes, write_s),
            disk_read_mb_s: mb_s(bytes, read_s),
        })
    })();
    let _ = std::fs::remove_dir_all(&ckpt_dir);
    let _ = std::fs::remove_file(&raw);
    let _ = std::fs::remove_dir(work_dir);
    result
}

/// AdamW moments of an optimizer that has taken no step yet (both zero), named as a checkpoint
/// stores them, so the bench writes and reads a full-size checkpoint as training does.
pub fn zero_moments(weights: &[NamedTensor]) -> Vec<NamedTensor> {
    weights
        .iter()
        .flat_map(|w| {
            ["exp_avg", "exp_avg_sq"].map(|s| NamedTensor {
                name: format!("{}.{s}", w.name),
                shape: w.shape.clone(),
                data: vec![0.0; w.data.len()],
            })
        })
        .collect()
}
