//! One-row products for generation on plain `Flex` (inference): a decode step multiplies one
//! hidden row by every weight matrix, which is a matrix-vector product bound by memory
//! bandwidth. Flex hands these to gemm single-threaded (its parallel threshold counts
//! `m * n * k`, tiny when m = 1), so one core streams all the weights; here the output columns
//! (or rows of the tied embedding) are split over the worker threads. Each output element is
//! summed by one thread in a fixed order, so results do not depend on the thread count.

use super::{contiguous, f32s, new_tensor, threads};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorPrimitive};
use std::any::{Any, TypeId};

/// Below this many weights one thread is faster than waking another.
const PARALLEL_MIN: usize = 64 * 1024;

fn is_flex<B: Backend>() -> bool {
    TypeId::of::<B>() == TypeId::of::<Flex>()
}

fn to_flex<B: Backend, const D: usize>(t: Tensor<B, D>) -> FlexTensor {
    let prim = match t.into_primitive() {
        TensorPrimitive::Float(p) => p,
        TensorPrimitive::QFloat(_) => panic!("one-row products take float tensors"),
    };
    let any: Box<dyn Any> = Box::new(prim);
    *any.downcast::<FlexTensor>()
        .expect("backend checked by `is_flex`")
}

fn from_flex<B: Backend, const D: usize>(t: FlexTensor) -> Tensor<B, D> {
    let any: Box<dyn Any> = Box::new(t);
    let prim = *any
        .downcast::<B::FloatTensorPrimitive>()
        .expect("backend checked by `is_flex`");
    Tensor::from_primitive(TensorPrimitive::Float(prim))
}

/// Split `out` into one contiguous chunk per thread (multiples of 16) and run `f(first, chunk)`.
fn par_chunks(out: &mut [f32], work: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    use rayon::prelude::*;
    let t = threads();
    if t <= 1 || work < PARALLEL_MIN || out.len() < 32 {
        f(0, out);
        return;
    }
    let per = out.len().div_ceil(t).div_ceil(16) * 16;
    out.par_chunks_mut(per)
        .enumerate()
        .for_each(|(i, chunk)| f(i * per, chunk));
}

/// `x [1, k] @ w [k, n]` on plain Flex in f32; `Err` gives the inputs back otherwise (other
/// backends, several rows, other dtypes) for the caller's `matmul`.
#[allow(clippy::type_complexity)]
pub fn row_matmul<B: Backend>(
    x: Tensor<B, 2>,
    w: Tensor<B, 2>,
) -> Result<Tensor<B, 2>, (Tensor<B, 2>, Tensor<B, 2>)> {
    let ([rows, k], [k2, n]) = (x.dims(), w.dims());
    if !is_flex::<B>() || rows != 1 || k != k2 || super::env_unfused() {
        return Err((x, w));
    }
    let (xf, wf) = (to_flex(x), to_flex(w));
    if xf.dtype() != DType::F32 || wf.dtype() != DType::F32 {
        return Err((from_flex(xf), from_flex(wf)));
    }
    let (xf, wf) = (contiguous(xf), contiguous(wf));
    let (xv, wv) = (f32s(&xf), f32s(&wf));
    let mut out = vec![0f32; n];
    par_chunks(&mut out, k * n, |c0, acc| {
        let c1 = c0 + acc.len();
        for (kk, &xk) in xv.iter().enumerate() {
            let row = &wv[kk * n + c0..kk * n + c1];
            for (a, &b) in acc.iter_mut().zip(row) {
                *a += xk * b;
            }
        }
    });
    Ok(from_flex(new_tensor(out, vec![1, n])))
}

/// `h [1, k]` against every row of `e [v, k]` (the tied output head `h E^T` read as stored):
/// `[1, v]` on plain Flex in f32; `Err` gives the inputs back otherwise.
#[allow(clippy::type_complexity)]
pub fn row_dot_rows<B: Backend>(
    h: Tensor<B, 2>,
    e: Tensor<B, 2>,
) -> Result<Tensor<B, 2>, (Tensor<B, 2>, Tensor<B, 2>)> {
    let ([rows, k], [v, k2]) = (h.dims(), e.dims());
    if !is_flex::<B>() || rows != 1 || k != k2 || super::env_unfused() {
        return Err((h, e));
    }
    let (hf, ef) = (to_flex(h), to_flex(e));
    if hf.dtype() != DType::F32 || ef.dtype() != DType::F32 {
        return Err((from_flex(hf), from_flex(ef)));
    }
    let (hf, ef) = (contiguous(hf), contiguous(ef));
    let (hv, ev) = (f32s(&hf), f32s(&ef));
    let mut out = vec![0f32; v];
    par_chunks(&mut out, k * v, |r0, dst| {
        for (i, o) in dst.iter_mut().enumerate() {
            let row = &ev[(r0 + i) * k..(r0 + i + 1) * k];
            // Eight independent partial sums (vectorisable), folded in a fixed order.
            let mut lanes = [0f32; 8];
            let mut chunks = row.chunks_exact(8);
            let mut hs = hv.chunks_exact(8);
            for (r, x) in (&mut chunks).zip(&mut hs) {
                for l in 0..8 {
                    lanes[l] += r[l] * x[l];
                }
            }
            let mut s: f32 = lanes.iter().sum();
            for (r, x) in chunks.remainder().iter().zip(hs.remainder()) {
                s += r * x;
            }
            *o = s;
        }
    });
    Ok(from_flex(new_tensor(out, vec![1, v])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::params::tensor_to_vec;
    use burn::tensor::TensorData;

    fn tensor(rows: usize, cols: usize, seed: u32) -> Tensor<Flex, 2> {
        let data = (0..rows * cols)
            .map(|i| {
                ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 20) as f32 / 4096.0
                    - 0.5
            })
            .collect::<Vec<f32>>();
        Tensor::from_data(TensorData::new(data, [rows, cols]), &Default::default())
    }

    /// Large enough to take the threaded path (and an odd width for the chunk edges); the same
    /// values as gemm up to float rounding, and the same bits on every call.
    #[test]
    fn one_row_products_equal_matmul() {
        let (k, n) = (301, 997);
        let x = tensor(1, k, 1);
        let w = tensor(k, n, 2);
        let want = tensor_to_vec(x.clone().matmul(w.clone()));
        let got = tensor_to_vec(row_matmul(x.clone(), w.clone()).ok().unwrap());
        let again = tensor_to_vec(row_matmul(x.clone(), w).ok().unwrap());
        assert_eq!(got, again);
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() < 1e-3, "column {i}: {a} vs {b}");
        }
        let e = tensor(n, k, 3);
        let want = tensor_to_vec(x.clone().matmul(e.clone().transpose()));
        let got = tensor_to_vec(row_dot_rows(x, e).ok().unwrap());
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() < 1e-3, "row {i}: {a} vs {b}");
        }
        // Several rows are left to matmul.
        assert!(row_matmul(tensor(2, k, 1), tensor(k, n, 2)).is_err());
    }
}
