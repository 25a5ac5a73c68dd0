//! The memory planner: peak memory of one training device, part by part (weights, gradients,
//! AdamW moments, activations, logits, backward workspace), for the chosen micro-batch,
//! precision, data-parallel peers and activation checkpointing, so a run that cannot fit is
//! refused before anything is allocated and `info` can plan a GPU run from a laptop.
//! Burn-free closed forms; the activation terms follow what this crate's forward keeps for
//! backward (see `saved_floats_per_token`), and `bench` prints the plan next to the measured
//! peak so the formulas stay honest.

use crate::config::{ModelConfig, Precision, RunConfig};

/// Where the plan's tensors live: it decides whether 16-bit activations really are 16-bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanDevice {
    /// The CPU backend: Burn's Flex stores bf16/f16 tensors but widens every element to f32 to
    /// compute, so activations cost f32 bytes whatever the precision (measured on d512: bf16
    /// peaks 11% above f32).
    Host,
    /// A GPU backend with native 16-bit kernels.
    Gpu,
}

/// Bytes of one activation element.
fn activation_bytes(precision: Precision, device: PlanDevice) -> u64 {
    match (precision, device) {
        (Precision::F32, _) | (_, PlanDevice::Host) => 4,
        (Precision::Bf16 | Precision::F16, PlanDevice::Gpu) => 2,
    }
}

/// Bytes per parameter of the 16-bit compute copy of the weights (0 in f32, where the master
/// weights are used directly).
fn working_copy_bytes(precision: Precision) -> u64 {
    match precision {
        Precision::F32 => 0,
        Precision::Bf16 | Precision::F16 => 2,
    }
}

/// The name used in configs and output.
pub fn precision_name(precision: Precision) -> &'static str {
    match precision {
        Precision::F32 => "f32",
        Precision::Bf16 => "bf16",
        Precision::F16 => "f16",
    }
}

/// Everything the plan depends on, named so callers cannot swap two counts.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub model: &'a ModelConfig,
    /// Rows of one micro-batch on one device (the configured batch divided by the peers).
    pub rows_per_device: usize,
    pub seq_len: usize,
    pub precision: Precision,
    /// Keep only each block's input and recompute the block in backward.
    pub activation_checkpointing: bool,
    pub device: PlanDevice,
}

/// Peak bytes of one training device, by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryPlan {
    /// f32 master weights.
    pub weights: u64,
    /// The 16-bit copy of the weights the forward reads (mixed precision only).
    pub working_weights: u64,
    /// f32 gradients, one per parameter.
    pub grads: u64,
    /// AdamW's two f32 moments.
    pub moments: u64,
    /// Activations the forward keeps for backward, all layers.
    pub activations: u64,
    /// Logits and their gradient (f32: the loss is computed in f32 in every precision).
    pub logits: u64,
    /// Gradients of one block's activations while backward runs through it, and with
    /// activation checkpointing the recomputed block's own activations.
    pub backward_workspace: u64,
}

impl MemoryPlan {
    /// Model state that lives for the whole run: weights, their copy, gradients, moments.
    pub fn model_state(&self) -> u64 {
        self.weights + self.working_weights + self.grads + self.moments
    }

    /// Memory that scales with the micro-batch.
    pub fn batch_state(&self) -> u64 {
        self.activations + self.logits + self.backward_workspace
    }

    /// The estimated peak.
    pub fn total(&self) -> u64 {
        self.model_state() + self.batch_state()
    }
}

/// f32 elements the forward keeps per token of one decoder block for backward: the block
/// input and the residual after attention (RMSNorm backward), both normed inputs (every
/// projection's backward), q/k/v before and q/k after RoPE, the attention output (o_proj),
/// the attention probabilities of this token's row in every head (the fused attention keeps
/// them), gate, up and the SwiGLU output (down_proj).
fn saved_floats_per_token(m: &ModelConfig, seq_len: usize) -> Option<u64> {
    let d = m.d_model as u64;
    let head_dim = m.resolved_head_dim() as u64;
    let q = head_dim.checked_mul(m.n_heads as u64)?;
    let kv = head_dim.checked_mul(m.n_kv_heads as u64)?;
    let ff = m.ff_dim as u64;
    let probs = (m.n_heads as u64).checked_mul(seq_len as u64)?;
    let residual_and_norms = d.checked_mul(4)?;
    let attention = q
        .checked_mul(3)?
        .checked_add(kv.checked_mul(3)?)?
        .checked_add(probs)?;
    let mlp = ff.checked_mul(3)?;
    residual_and_norms.checked_add(attention)?.checked_add(mlp)
}

/// The plan, with checked arithmetic: `None` when an absurd config overflows 64 bits (the
/// caller treats that as "cannot fit").
pub fn plan(input: PlanInput<'_>) -> Option<MemoryPlan> {
    let m = input.model;
    let params = crate::model::stats::checked_memory_floor(m)?.weights / 4;
    let tokens = (input.rows_per_device as u64).checked_mul(input.seq_len as u64)?;
    let act_bytes = activation_bytes(input.precision, input.device);
    let per_block = saved_floats_per_token(m, input.seq_len)?
        .checked_mul(tokens)?
        .checked_mul(act_bytes)?;
    let layers = m.n_layers as u64;
    let block_input = (m.d_model as u64)
        .checked_mul(tokens)?
        .checked_mul(act_bytes)?;
    let (activations, backward_workspace) = if input.activation_checkpointing {
        // Only block inputs stay; backward recomputes one block (its activations) and holds
        // that block's activation gradients.
        (block_input.checked_mul(layers)?, per_block.checked_mul(2)?)
    } else {
        (per_block.checked_mul(layers)?, per_block)
    };
    // The embedding output and the final norm's input, kept whatever the strategy.
    let activations = activations.checked_add(block_input.checked_mul(2)?)?;
    let logits = tokens
        .checked_mul(m.vocab_size as u64)?
        .checked_mul(4)?
        .checked_mul(2)?;
    Some(MemoryPlan {
        weights: params.checked_mul(4)?,
        working_weights: params.checked_mul(working_copy_bytes(input.precision))?,
        grads: params.checked_mul(4)?,
        moments: params.checked_mul(8)?,
        activations,
        logits,
        backward_workspace,
    })
}

/// Host memory a training process uses beyond its tensors: code, the tokenizer, the corpus
/// and allocator slack. Measured: 220 MiB of peak RSS beyond the plan for the tiny preset
/// (debug build, 8 and 32 rows, 2026-11-30); `bench` prints plan and RSS side by side.
pub const HOST_PROCESS_OVERHEAD: u64 = 224 << 20;

/// A run's training settings as the planner sees them: one device's share of the batch and
/// how it is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunShape {
    /// Data-parallel peers of this node (`[parallel] peers`); each holds a full replica.
    pub peers: usize,
    /// Nodes (machines) of the run; the batch is split over `peers * nodes` replicas.
    pub nodes: usize,
    pub precision: Precision,
    pub activation_checkpointing: bool,
}

impl RunShape {
    /// The shape a config asks for.
    pub fn of(config: &RunConfig) -> Self {
        Self {
            peers: config.parallel.peers.max(1),
            nodes: config.parallel.nodes.max(1),
            precision: config.train.precision,
            activation_checkpointing: config.train.activation_checkpointing,
        }
    }
}

/// The plan of one device of `config`'s run (`None`: sizes overflow 64 bits).
pub fn plan_run(config: &RunConfig, device: PlanDevice) -> Option<MemoryPlan> {
    let shape = RunShape::of(config);
    plan(PlanInput {
        model: &config.model,
        rows_per_device: config.train.batch_size.div_ceil(shape.peers * shape.nodes),
        seq_len: config.train.seq_len,
        precision: shape.precision,
        activation_checkpointing: shape.activation_checkpointing,
        device,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dmas() -> ModelConfig {
        let path = format!("{}/configs/dmas-1.7b.toml", env!("CARGO_MANIFEST_DIR"));
        RunConfig::load(Some(std::path::Path::new(&path)))
            .unwrap()
            .model
    }

    fn input(m: &ModelConfig, rows: usize) -> PlanInput<'_> {
        PlanInput {
            model: m,
            rows_per_device: rows,
            seq_len: 1024,
            precision: Precision::F32,
            activation_checkpointing: false,
            device: PlanDevice::Gpu,
        }
    }

    #[test]
    fn model_state_is_the_f32_adamw_floor() {
        let m = dmas();
        let p = plan(input(&m, 1)).unwrap();
        let floor = crate::model::stats::memory_floor(&m);
        assert_eq!(p.weights + p.grads + p.moments, floor.total());
        assert_eq!(p.working_weights, 0);
    }

    #[test]
    fn activations_scale_with_rows_and_checkpointing_shrinks_them() {
        let m = dmas();
        let one = plan(input(&m, 1)).unwrap();
        let two = plan(input(&m, 2)).unwrap();
        assert_eq!(two.batch_state(), 2 * one.batch_state());
        assert_eq!(two.model_state(), one.model_state());
        let ckpt = plan(PlanInput {
            activation_checkpointing: true,
            ..input(&m, 2)
        })
        .unwrap();
        assert!(
            ckpt.activations * 10 < two.activations,
            "{ckpt:?} vs {two:?}"
        );
        assert_eq!(ckpt.logits, two.logits);
    }

    #[test]
    fn mixed_precision_halves_activations_and_adds_a_working_copy() {
        let m = dmas();
        let f32_plan = plan(input(&m, 4)).unwrap();
        let bf16 = plan(PlanInput {
            precision: Precision::Bf16,
            ..input(&m, 4)
        })
        .unwrap();
        assert_eq!(bf16.activations * 2, f32_plan.activations);
        assert_eq!(bf16.working_weights * 2, bf16.weights);
        assert_eq!(bf16.logits, f32_plan.logits);
        // On the CPU backend 16-bit tensors are computed in f32: no saving, plus the copy.
        let host = plan(PlanInput {
            precision: Precision::Bf16,
            device: PlanDevice::Host,
            ..input(&m, 4)
        })
        .unwrap();
        assert_eq!(host.activations, f32_plan.activations);
        assert!(host.total() > f32_plan.total());
    }

    /// One block of the tiny preset, counted by hand: d 256, 4 heads of 64 (q 256, kv 256),
    /// ff 704, seq 8: 4*256 + 3*256 + 3*256 + 4*8 + 3*704 floats per token.
    #[test]
    fn saved_floats_match_a_hand_count() {
        let m = ModelConfig::default();
        assert_eq!(
            saved_floats_per_token(&m, 8),
            Some(4 * 256 + 3 * 256 + 3 * 256 + 4 * 8 + 3 * 704)
        );
    }

    #[test]
    fn absurd_sizes_overflow_to_none() {
        let mut m = dmas();
        m.d_model = usize::MAX / 2;
        assert_eq!(plan(input(&m, 1)), None);
        let m = dmas();
        assert_eq!(plan(input(&m, usize::MAX)), None);
    }
}
