//! Row-wise fused kernels: cross-entropy, the SwiGLU gate and RMSNorm, with their backwards.

use super::*;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensorOps;
use burn::tensor::Tensor;

#[derive(Debug)]
struct CrossEntropy;

impl Backward<Flex, 1> for CrossEntropy {
    /// d(mean loss)/d(logits), computed in the forward pass.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = grads.consume::<Flex>(&ops.node);
        let [parent] = ops.parents;
        if let Some(node) = parent {
            let g = contiguous(g);
            let scale = f32s(&g)[0];
            let mut d = ops.state;
            if scale != 1.0 {
                d = Flex::float_mul_scalar(d, scale.into());
            }
            grads.register::<Flex>(node.id, d);
        }
    }
}

/// Mean negative log-likelihood of `targets` under `logits [n, vocab]`, shape `[1]`.
pub fn cross_entropy<B: Backend>(
    logits: Tensor<B, 2>,
    targets: &[i64],
) -> Result<Tensor<B, 1>, Tensor<B, 2>> {
    weighted_cross_entropy(logits, targets, None)
}

/// Masked mean negative log-likelihood, `sum(w * nll) / max(sum(w), 1)`, shape `[1]`: SFT's
/// loss over response tokens only (weights 0 or 1), on the same fused path as pretraining.
/// Rows of weight 0 cost no exponentials and get a zero gradient.
pub fn masked_cross_entropy<B: Backend>(
    logits: Tensor<B, 2>,
    targets: &[i64],
    weights: &[f32],
) -> Result<Tensor<B, 1>, Tensor<B, 2>> {
    weighted_cross_entropy(logits, targets, Some(weights))
}

fn weighted_cross_entropy<B: Backend>(
    logits: Tensor<B, 2>,
    targets: &[i64],
    weights: Option<&[f32]>,
) -> Result<Tensor<B, 1>, Tensor<B, 2>> {
    if !enabled::<B>() {
        return Err(logits);
    }
    let [n, vocab] = logits.dims();
    let logits = to_ad(logits);
    let weights_fit = weights.is_none_or(|w| w.len() == n);
    if !all_f32(&[&logits]) || targets.len() != n || !weights_fit {
        return Err(from_ad(logits));
    }
    let x = contiguous(logits.primitive.clone());
    let xs = f32s(&x);
    // The generic path's denominator: the number of rows, or the mask's sum clamped to 1.
    let denominator = match weights {
        None => n as f32,
        Some(w) => w.iter().sum::<f32>().max(1.0),
    };
    let weight = |r: usize| weights.map_or(1.0, |w| w[r]);
    // Per-row loss, then a fixed-order f64 sum: deterministic for any thread count.
    let mut grad = vec![0f32; n * vocab];
    let mut losses = vec![0f32; n];
    let inv_n = 1.0 / denominator;
    {
        let losses_ptr = SendPtr(losses.as_mut_ptr());
        par_rows(&mut grad, vocab, |first, rows| {
            let lp = &losses_ptr;
            for (i, g) in rows.chunks_mut(vocab).enumerate() {
                let r = first + i;
                let w = weight(r);
                if w == 0.0 {
                    continue;
                }
                let row = &xs[r * vocab..(r + 1) * vocab];
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0f32;
                for (gi, &xi) in g.iter_mut().zip(row) {
                    let e = (xi - max).exp();
                    *gi = e;
                    sum += e;
                }
                let lse = max + sum.ln();
                let t = targets[r] as usize;
                let row_scale = w * inv_n;
                let scale = row_scale / sum;
                for gi in g.iter_mut() {
                    *gi *= scale;
                }
                g[t] -= row_scale;
                // SAFETY: each row index is written by exactly one thread.
                unsafe { *lp.0.add(r) = w * (lse - row[t]) };
            }
        });
    }
    let total: f64 = losses.iter().map(|&l| l as f64).sum();
    let loss = new_tensor(vec![(total / denominator as f64) as f32], vec![1]);
    let grad = new_tensor(grad, vec![n, vocab]);
    let out = match CrossEntropy
        .prepare::<NoCheckpointing>([logits.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(grad, loss),
        OpsKind::UnTracked(prep) => prep.finish(loss),
    };
    Ok(from_ad(out))
}

struct SendPtr(*mut f32);
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

// ---------------------------------------------------------------------------------------------
// SwiGLU gate: silu(a) * b.
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct SwiGlu;

impl Backward<Flex, 2> for SwiGlu {
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (a, b) = ops.state;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let shape = dims(&a);
        let width = *shape.last().unwrap();
        let (av, bv, dyv) = (f32s(&a), f32s(&b), f32s(&dy));
        let n = av.len();
        let mut da = vec![0f32; n];
        let mut db = vec![0f32; n];
        let db_ptr = SendPtr(db.as_mut_ptr());
        par_rows(&mut da, width, |first, rows| {
            let dbp = &db_ptr;
            let off = first * width;
            for (j, dai) in rows.iter_mut().enumerate() {
                let i = off + j;
                let x = av[i];
                let sig = 1.0 / (1.0 + (-x).exp());
                let silu = x * sig;
                *dai = dyv[i] * bv[i] * sig * (1.0 + x * (1.0 - sig));
                // SAFETY: element i is written by exactly one thread.
                unsafe { *dbp.0.add(i) = dyv[i] * silu };
            }
        });
        let [pa, pb] = ops.parents;
        if let Some(node) = pa {
            grads.register::<Flex>(node.id, new_tensor(da, shape.clone()));
        }
        if let Some(node) = pb {
            grads.register::<Flex>(node.id, new_tensor(db, shape));
        }
    }
}

/// `silu(a) * b` for `[n, ff]` tensors.
#[allow(clippy::type_complexity)]
pub fn swiglu<B: Backend>(
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
) -> Result<Tensor<B, 2>, (Tensor<B, 2>, Tensor<B, 2>)> {
    if !enabled::<B>() {
        return Err((a, b));
    }
    let (a, b) = (to_ad(a), to_ad(b));
    if !all_f32(&[&a, &b]) || a.primitive.layout().shape() != b.primitive.layout().shape() {
        return Err((from_ad(a), from_ad(b)));
    }
    let af = contiguous(a.primitive.clone());
    let bf = contiguous(b.primitive.clone());
    let shape = dims(&af);
    let width = *shape.last().unwrap();
    let (av, bv) = (f32s(&af), f32s(&bf));
    let mut y = vec![0f32; av.len()];
    par_rows(&mut y, width, |first, rows| {
        let off = first * width;
        for (j, yi) in rows.iter_mut().enumerate() {
            let x = av[off + j];
            *yi = x / (1.0 + (-x).exp()) * bv[off + j];
        }
    });
    let y = new_tensor(y, shape);
    let out = match SwiGlu
        .prepare::<NoCheckpointing>([a.node.clone(), b.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((af, bf), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Ok(from_ad(out))
}

// ---------------------------------------------------------------------------------------------
// RMSNorm: y = x / sqrt(mean(x^2) + eps) * w over the last dimension of [n, d].
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct RmsNorm;

#[derive(Debug, Clone)]
struct RmsState {
    x: FlexTensor,
    w: FlexTensor,
    inv: Vec<f32>,
}

/// Rows per block of the weight-gradient column sum (fixed, so the sum order never depends on
/// the thread count).
const RMS_BLOCK: usize = 64;

impl Backward<Flex, 2> for RmsNorm {
    type State = RmsState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let st = ops.state;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let shape = dims(&st.x);
        let d = shape[1];
        let n = shape[0];
        let (xv, wv, dyv, inv) = (f32s(&st.x), f32s(&st.w), f32s(&dy), &st.inv);
        let [px, pw] = ops.parents;
        if let Some(node) = px {
            let mut dx = vec![0f32; n * d];
            par_rows(&mut dx, d, |first, rows| {
                for (i, out) in rows.chunks_mut(d).enumerate() {
                    let r = first + i;
                    let (x, g) = (&xv[r * d..(r + 1) * d], &dyv[r * d..(r + 1) * d]);
                    let mut dot = 0f32;
                    for j in 0..d {
                        dot += g[j] * wv[j] * x[j];
                    }
                    let ir = inv[r];
                    let c = ir * ir * ir * dot / d as f32;
                    for j in 0..d {
                        out[j] = ir * g[j] * wv[j] - c * x[j];
                    }
                }
            });
            grads.register::<Flex>(node.id, new_tensor(dx, shape.clone()));
        }
        if let Some(node) = pw {
            let blocks = n.div_ceil(RMS_BLOCK);
            let mut partial = vec![0f32; blocks * d];
            par_rows(&mut partial, d, |first, rows| {
                for (bi, acc) in rows.chunks_mut(d).enumerate() {
                    let blk = first + bi;
                    for r in blk * RMS_BLOCK..((blk + 1) * RMS_BLOCK).min(n) {
                        let ir = inv[r];
                        let (x, g) = (&xv[r * d..(r + 1) * d], &dyv[r * d..(r + 1) * d]);
                        for j in 0..d {
                            acc[j] += g[j] * x[j] * ir;
                        }
                    }
                }
            });
            let mut dw = vec![0f32; d];
            for blk in partial.chunks(d) {
                for (a, b) in dw.iter_mut().zip(blk) {
                    *a += b;
                }
            }
            grads.register::<Flex>(node.id, new_tensor(dw, vec![d]));
        }
    }
}

/// RMSNorm of `x [n, d]` with weight `w [d]`.
pub fn rms_norm<B: Backend>(
    x: Tensor<B, 2>,
    w: Tensor<B, 1>,
    eps: f64,
) -> Result<Tensor<B, 2>, (Tensor<B, 2>, Tensor<B, 1>)> {
    if !enabled::<B>() {
        return Err((x, w));
    }
    let (x, w) = (to_ad(x), to_ad(w));
    if !all_f32(&[&x, &w]) {
        return Err((from_ad(x), from_ad(w)));
    }
    let xf = contiguous(x.primitive.clone());
    let wf = contiguous(w.primitive.clone());
    let shape = dims(&xf);
    let (n, d) = (shape[0], shape[1]);
    let (xv, wv) = (f32s(&xf), f32s(&wf));
    let mut inv = vec![0f32; n];
    for (r, ir) in inv.iter_mut().enumerate() {
        let row = &xv[r * d..(r + 1) * d];
        let ss: f32 = row.iter().map(|v| v * v).sum();
        *ir = 1.0 / ((ss / d as f32) + eps as f32).sqrt();
    }
    let mut y = vec![0f32; n * d];
    par_rows(&mut y, d, |first, rows| {
        for (i, out) in rows.chunks_mut(d).enumerate() {
            let r = first + i;
            let ir = inv[r];
            for j in 0..d {
                out[j] = xv[r * d + j] * ir * wv[j];
            }
        }
    });
    let y = new_tensor(y, shape);
    let out = match RmsNorm
        .prepare::<NoCheckpointing>([x.node.clone(), w.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(RmsState { x: xf, w: wf, inv }, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Ok(from_ad(out))
}
