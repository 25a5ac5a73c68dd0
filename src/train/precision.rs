//! Mixed precision (`[train] precision`): the forward and backward run on a reduced-precision
//! *compute copy* of the model while the parameters (the master weights) and AdamW moments
//! stay f32. The copy is made with Burn's own `Tensor::cast`, which autodiff differentiates
//! (its backward casts the gradient back), so the gradients land on the f32 master parameters
//! in f32 and the optimizer never sees a reduced-precision value. The loss is taken in f32
//! (`model::llama::logits_f32`). f16 adds dynamic loss scaling; bf16 has f32's exponent range
//! and needs none.
//!
//! On the CPU (Flex) backend bf16/f16 are real reduced-precision tensors (each element is
//! stored as bf16/f16 and every op rounds its result), but Flex computes them by widening to
//! f32 element by element, and the fused f32 kernels (`model/fused`) step aside for them, so
//! reduced precision is slower than f32 on CPU: it exists there to reproduce a GPU run's
//! numerics, not for speed. On CUDA the same code runs cubecl's native bf16/f16 kernels.

use crate::config::Precision;
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{FloatDType, Tensor};

/// The Burn dtype a precision computes in; `None` for f32 (no copy is made).
pub fn compute_dtype(p: Precision) -> Option<FloatDType> {
    match p {
        Precision::F32 => None,
        Precision::Bf16 => Some(FloatDType::BF16),
        Precision::F16 => Some(FloatDType::F16),
    }
}

struct CastMapper(FloatDType);

impl<B: Backend> ModuleMapper<B> for CastMapper {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        Param::from_mapped_value(id, tensor.cast(self.0), mapper)
    }
}

/// The module the forward pass should run on: `module` itself for f32, else a copy whose
/// every parameter is a cast of the master one (a differentiable graph node, so gradients
/// flow back to the master parameters in f32).
pub fn compute_copy<B: Backend, M: Module<B>>(module: &M, p: Precision) -> M {
    match compute_dtype(p) {
        None => module.clone(),
        Some(dtype) => module.clone().map(&mut CastMapper(dtype)),
    }
}

/// Dynamic loss scaling for f16 (as in PyTorch's `GradScaler`): the loss is multiplied by
/// `scale` before the backward so small gradients do not flush to zero in f16; an update whose
/// gradients overflow is not applied, the scale is halved and the trainer retries the same
/// batches; after `GROWTH_INTERVAL` good steps in a row it doubles. bf16 and f32 use a fixed
/// scale of 1 (never retry). Not saved in checkpoints: a resumed f16 run starts at 2^16 again.
#[derive(Debug, Clone, PartialEq)]
pub struct LossScaler {
    scale: f64,
    good_steps: u32,
    dynamic: bool,
}

/// Initial f16 loss scale (2^16, PyTorch's default).
pub const INITIAL_SCALE: f64 = 65536.0;
/// Good steps in a row before the scale doubles (PyTorch's default).
pub const GROWTH_INTERVAL: u32 = 2000;
/// The scale never drops below this: a run that overflows even at 1 has another problem.
const MIN_SCALE: f64 = 1.0;

impl LossScaler {
    /// The scaler a precision needs.
    pub fn new(p: Precision) -> Self {
        let dynamic = p == Precision::F16;
        Self {
            scale: if dynamic { INITIAL_SCALE } else { 1.0 },
            good_steps: 0,
            dynamic,
        }
    }

    /// The factor to multiply this step's losses by.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Whether the step's gradients must be checked for overflow (f16 only).
    pub fn is_dynamic(&self) -> bool {
        self.dynamic
    }

    /// Record whether the step's (scaled) gradients were finite and say what to do with the
    /// update. An overflow halves the scale (the update is skipped and retried); one at the
    /// lowest scale gives up.
    pub fn observe(&mut self, finite: bool) -> Verdict {
        if !self.dynamic {
            return Verdict::Apply;
        }
        if !finite {
            if self.scale <= MIN_SCALE {
                return Verdict::GiveUp;
            }
            self.scale = (self.scale / 2.0).max(MIN_SCALE);
            self.good_steps = 0;
            return Verdict::Retry;
        }
        self.good_steps += 1;
        if self.good_steps >= GROWTH_INTERVAL {
            self.scale *= 2.0;
            self.good_steps = 0;
        }
        Verdict::Apply
    }
}

/// What a step does with gradients the scaler has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Finite: apply the update.
    Apply,
    /// Overflow: skip it and try the next batches at the lowered scale.
    Retry,
    /// Overflow at the lowest scale: the run cannot go on in f16.
    GiveUp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::{DType, TensorData};

    #[test]
    fn scaler_halves_on_overflow_and_grows_after_interval() {
        let mut s = LossScaler::new(Precision::F16);
        assert_eq!(s.scale(), INITIAL_SCALE);
        assert_eq!(s.observe(false), Verdict::Retry);
        assert_eq!(s.scale(), INITIAL_SCALE / 2.0);
        for _ in 0..GROWTH_INTERVAL {
            assert_eq!(s.observe(true), Verdict::Apply);
        }
        assert_eq!(s.scale(), INITIAL_SCALE);
        while s.scale() > 1.0 {
            assert_eq!(s.observe(false), Verdict::Retry);
        }
        assert_eq!(s.observe(false), Verdict::GiveUp);
        let mut fixed = LossScaler::new(Precision::Bf16);
        assert_eq!(fixed.observe(false), Verdict::Apply);
        assert_eq!(fixed.scale(), 1.0);
    }

    /// The cast copy computes in bf16 and its gradient reaches the f32 master in f32.
    #[test]
    fn gradient_of_a_cast_copy_reaches_the_f32_master() {
        type Ad = Autodiff<Flex>;
        let device = Default::default();
        let w = Tensor::<Ad, 1>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0], [3]), &device)
            .require_grad();
        let wc = w.clone().cast(FloatDType::BF16);
        assert_eq!(wc.dtype(), DType::BF16);
        let loss = (wc.clone() * wc).sum().cast(FloatDType::F32);
        let grads = loss.backward();
        let g = w.grad(&grads).expect("master has a gradient");
        assert_eq!(g.dtype(), DType::F32);
        let g: Vec<f32> = g.into_data().to_vec().unwrap();
        assert_eq!(g, vec![2.0, 4.0, 6.0]);
    }
}
