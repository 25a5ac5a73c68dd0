//! Fused training kernels for the CPU training backend (`Autodiff<Flex>`).
//!
//! Burn's autodiff records every primitive op of causal attention, cross-entropy, RMSNorm and
//! SwiGLU and replays a backward for each; on the `flex` backend that is a dozen full passes
//! over `[batch, heads, seq, seq]` score tensors per layer. Here each of those blocks is one
//! autodiff node with a hand-written backward: the matmuls go to Flex's gemm, everything
//! else is one cache-friendly pass over rows, split across threads.
//!
//! The model stays generic over `Backend`: each entry point checks at run time whether the
//! backend is `Autodiff<Flex>` (a `TypeId` comparison and a safe `Any` downcast) and returns
//! `Err(inputs)` otherwise, so the caller falls back to the generic formulation (CUDA, plain
//! Flex inference, ...). Every kernel is deterministic: a row is always reduced by one thread
//! in a fixed order, and column reductions sum fixed-size row blocks in order, independent of
//! the thread count.

use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorPrimitive};
use std::any::{Any, TypeId};
use std::sync::OnceLock;

type Ad = Autodiff<Flex>;
type AdTensor = <Ad as burn::tensor::backend::BackendTypes>::FloatTensorPrimitive;

/// Whether `B` is the CPU training backend these kernels serve.
pub fn enabled<B: Backend>() -> bool {
    TypeId::of::<B>() == TypeId::of::<Ad>() && !FORCE_UNFUSED.with(|f| f.get()) && !env_unfused()
}

/// `LLITE_UNFUSED=1` turns the fused kernels off (for A/B comparisons).
fn env_unfused() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| std::env::var_os("LLITE_UNFUSED").is_some_and(|v| v != "0"))
}

thread_local! {
    /// Tests compare the fused kernels with the generic formulation on the same thread.
    pub static FORCE_UNFUSED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn to_ad<B: Backend, const D: usize>(t: Tensor<B, D>) -> AdTensor {
    let prim = match t.into_primitive() {
        TensorPrimitive::Float(p) => p,
        TensorPrimitive::QFloat(_) => panic!("fused kernels take float tensors"),
    };
    let any: Box<dyn Any> = Box::new(prim);
    *any.downcast::<AdTensor>()
        .expect("backend checked by `enabled`")
}

fn from_ad<B: Backend, const D: usize>(t: AdTensor) -> Tensor<B, D> {
    let any: Box<dyn Any> = Box::new(t);
    let prim = *any
        .downcast::<B::FloatTensorPrimitive>()
        .expect("backend checked by `enabled`");
    Tensor::from_primitive(TensorPrimitive::Float(prim))
}

/// Worker threads of the CPU backend: `RAYON_NUM_THREADS` if set, else all cores. Shared by
/// the kernels, the engine's device label and the benchmark so they all report the same.
pub fn worker_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

fn threads() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(worker_threads)
}

/// Run `f(first_row, rows)` over `out` split into row chunks of `width`, on all threads.
/// Each row is handled by exactly one call, so results never depend on the split. The chunks
/// run on rayon's pool, the one Flex's gemm uses: spawning fresh OS threads per call put three
/// busy threads on two cores and cost a thread start per kernel.
fn par_rows<F>(out: &mut [f32], width: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    use rayon::prelude::*;
    let rows = out.len() / width.max(1);
    let t = threads().min(rows.max(1));
    if t <= 1 || out.len() < 32 * 1024 {
        f(0, out);
        return;
    }
    let per = rows.div_ceil(t);
    out.par_chunks_mut(per * width)
        .enumerate()
        .for_each(|(i, chunk)| f(i * per, chunk));
}

fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.is_contiguous() && t.layout().start_offset() == 0 {
        t
    } else {
        t.to_contiguous()
    }
}

fn f32s(t: &FlexTensor) -> &[f32] {
    t.storage::<f32>()
}

fn new_tensor(data: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(burn::tensor::TensorData::new(data, shape))
}

fn dims(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().iter().copied().collect()
}

fn all_f32(ts: &[&AdTensor]) -> bool {
    ts.iter().all(|t| t.primitive.dtype() == DType::F32)
}

// ---------------------------------------------------------------------------------------------
// Causal grouped-query attention: softmax(Q K^T * scale, causal) V.
// ---------------------------------------------------------------------------------------------

/// Row `r` of a `[.., rep * s, s]` score block attends to keys `0..=r % s`.
mod attention;
mod linear;
mod pointwise;
mod products;

pub use attention::attention_block;
pub use linear::linear;
pub use pointwise::{cross_entropy, masked_cross_entropy, rms_norm, swiglu};
