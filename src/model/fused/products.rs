//! Matrix products written straight into fresh buffers by gemm, hand-written because Flex's
//! matmul allocates every output zero-filled and then copies it once more to realign it
//! (`FlexTensor::empty` -> `Bytes::from_bytes_vec`): 6.9% of a tiny training step in `perf`,
//! all of it on the dispatching thread while both gemm workers wait. The gemm calls (shapes,
//! strides, parallelism strategy) are the ones Flex makes, so results are bit-identical.

use super::*;
use std::mem::MaybeUninit;

/// Flex's thresholds (`burn-flex` `ops/matmul.rs`): one product this large is split across
/// threads by gemm; a batch of smaller ones this large in total is split by matrix.
const PARALLEL_THRESHOLD: usize = 192 * 192 * 192;
const BATCH_PARALLEL_THRESHOLD: usize = 128 * 128 * 128;

/// A 2-D view into a tensor's f32 storage: its shape and element strides (the last two
/// dimensions of the tensor; `batch` picks the matrix of a batched tensor).
#[derive(Clone, Copy)]
pub(super) struct MatView {
    ptr: *const f32,
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
}

// SAFETY: a view only reads a tensor that outlives the product it is used in.
unsafe impl Send for MatView {}
unsafe impl Sync for MatView {}

impl MatView {
    /// The view of a rank-2 f32 tensor as its layout describes it (no copy).
    pub(super) fn of(t: &FlexTensor) -> Self {
        Self::of_batch(t, 0)
    }

    /// Matrix `batch` (row-major over the leading dimensions) of an f32 tensor of rank >= 2.
    fn of_batch(t: &FlexTensor, batch: usize) -> Self {
        let layout = t.layout();
        let shape = layout.shape();
        let strides = layout.strides();
        let rank = shape.num_dims();
        let mut offset = layout.start_offset() as isize;
        let mut rest = batch;
        for d in (0..rank - 2).rev() {
            offset += (rest % shape[d]) as isize * strides[d];
            rest /= shape[d];
        }
        let data = f32s(t);
        Self {
            // SAFETY: the layout maps every in-range index inside the tensor's storage.
            ptr: unsafe { data.as_ptr().offset(offset) },
            rows: shape[rank - 2],
            cols: shape[rank - 1],
            row_stride: strides[rank - 2],
            col_stride: strides[rank - 1],
        }
    }

    /// The transposed view (strides swapped, nothing moved).
    pub(super) fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// `dst = a @ b` for one matrix; `dst` is row-major `[a.rows, b.cols]` and only written.
///
/// # Safety
/// `dst` must hold `a.rows * b.cols` elements and both views must describe live tensors.
unsafe fn gemm_into(dst: *mut f32, a: MatView, b: MatView, parallelism: gemm::Parallelism) {
    debug_assert_eq!(a.cols, b.rows);
    // SAFETY: the caller's contract; `read_dst = false` means gemm never reads `dst`
    // (dst := beta * a * b, alpha ignored), so uninitialised memory is never read.
    unsafe {
        gemm::gemm(
            a.rows,
            b.cols,
            a.cols,
            dst,
            1,
            b.cols as isize,
            false,
            a.ptr,
            a.col_stride,
            a.row_stride,
            b.ptr,
            b.col_stride,
            b.row_stride,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `len` elements for gemm to fill, and the conversion once it has.
fn uninit(len: usize) -> Vec<MaybeUninit<f32>> {
    let mut out = Vec::with_capacity(len);
    // SAFETY: MaybeUninit elements need no initialisation.
    unsafe { out.set_len(len) };
    out
}

/// # Safety
/// Every element of `out` has been written.
unsafe fn assume_written(out: Vec<MaybeUninit<f32>>) -> Vec<f32> {
    let mut out = std::mem::ManuallyDrop::new(out);
    // SAFETY: MaybeUninit<f32> and f32 share layout; pointer, length and capacity come from
    // that same vector, and the caller vouches every element is initialised.
    unsafe { Vec::from_raw_parts(out.as_mut_ptr() as *mut f32, out.len(), out.capacity()) }
}

/// `a @ b` into a new row-major `[a.rows, b.cols]` tensor, written once by gemm.
pub(super) fn product(a: MatView, b: MatView) -> FlexTensor {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut out = uninit(m * n);
    let parallelism = if m.saturating_mul(n).saturating_mul(k) >= PARALLEL_THRESHOLD {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `out` holds m * n elements; the views come from live tensors; gemm writes all.
    let data = unsafe {
        gemm_into(out.as_mut_ptr() as *mut f32, a, b, parallelism);
        assume_written(out)
    };
    new_tensor(data, vec![m, n])
}

/// Which operand of [`batched_product`] is read transposed (a stride swap, never a copy).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Transposed {
    Neither,
    Lhs,
    Rhs,
}

/// Matrix by matrix `a[i] @ b[i]` over equal leading dimensions (no broadcasting), with the
/// operand named by `transposed` read as its transpose; the result is row-major
/// `[lead.., m, n]`. Flex's strategy: big matrices split by gemm, many small ones by matrix.
pub(super) fn batched_product(
    a: &FlexTensor,
    b: &FlexTensor,
    transposed: Transposed,
) -> FlexTensor {
    let lead: Vec<usize> = {
        let shape = a.layout().shape();
        shape.iter().take(shape.num_dims() - 2).copied().collect()
    };
    let batches: usize = lead.iter().product();
    let view = |t: &FlexTensor, i: usize, flip: bool| {
        let v = MatView::of_batch(t, i);
        if flip {
            v.t()
        } else {
            v
        }
    };
    let (ta, tb) = (transposed == Transposed::Lhs, transposed == Transposed::Rhs);
    let (a0, b0) = (view(a, 0, ta), view(b, 0, tb));
    let (m, k, n) = (a0.rows, a0.cols, b0.cols);
    let matrix = m * n;
    let mut out = uninit(batches * matrix);
    let per_matrix = m.saturating_mul(n).saturating_mul(k);
    let total = batches.saturating_mul(per_matrix);
    let by_matrix = batches >= 4 && total >= BATCH_PARALLEL_THRESHOLD;
    let run = |dst: &mut [MaybeUninit<f32>], i: usize, parallelism| {
        // SAFETY: `dst` is matrix `i`'s m * n elements; the views are in-bounds for `i`.
        unsafe {
            gemm_into(
                dst.as_mut_ptr() as *mut f32,
                view(a, i, ta),
                view(b, i, tb),
                parallelism,
            )
        }
    };
    if per_matrix >= PARALLEL_THRESHOLD && !by_matrix {
        for (i, dst) in out.chunks_mut(matrix).enumerate() {
            run(dst, i, gemm::Parallelism::Rayon(0));
        }
    } else if total >= BATCH_PARALLEL_THRESHOLD && batches > 1 {
        use rayon::prelude::*;
        out.par_chunks_mut(matrix)
            .enumerate()
            .for_each(|(i, dst)| run(dst, i, gemm::Parallelism::None));
    } else {
        for (i, dst) in out.chunks_mut(matrix).enumerate() {
            run(dst, i, gemm::Parallelism::None);
        }
    }
    // SAFETY: each of the `batches` chunks was written by its gemm call above.
    let data = unsafe { assume_written(out) };
    let mut shape = lead;
    shape.extend([m, n]);
    new_tensor(data, shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::ops::FloatTensorOps;

    fn tensor(shape: Vec<usize>, salt: usize) -> FlexTensor {
        let len = shape.iter().product();
        let data = (0..len)
            .map(|i| ((i * 37 + salt) % 101) as f32 / 50.0 - 1.0)
            .collect();
        new_tensor(data, shape)
    }

    #[test]
    fn batched_products_match_flex_bit_for_bit() {
        // Small batch (one thread) and one above the batch threshold, each transpose form.
        for [b1, b2, m, k, n] in [[1, 2, 3, 4, 5], [2, 3, 64, 32, 96]] {
            let cases = [
                (
                    tensor(vec![b1, b2, m, k], 1),
                    tensor(vec![b1, b2, k, n], 2),
                    Transposed::Neither,
                ),
                (
                    tensor(vec![b1, b2, k, m], 3),
                    tensor(vec![b1, b2, k, n], 4),
                    Transposed::Lhs,
                ),
                (
                    tensor(vec![b1, b2, m, k], 5),
                    tensor(vec![b1, b2, n, k], 6),
                    Transposed::Rhs,
                ),
            ];
            for (a, b, t) in cases {
                let (fa, fb) = match t {
                    Transposed::Neither => (a.clone(), b.clone()),
                    Transposed::Lhs => (Flex::float_transpose(a.clone()), b.clone()),
                    Transposed::Rhs => (a.clone(), Flex::float_transpose(b.clone())),
                };
                let want = Flex::float_matmul(fa, fb);
                let got = batched_product(&a, &b, t);
                assert_eq!(got.layout().shape(), want.layout().shape());
                assert_eq!(f32s(&got), f32s(&contiguous(want)));
            }
        }
    }
}
