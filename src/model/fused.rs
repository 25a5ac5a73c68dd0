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

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensorOps;
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

fn threads() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::env::var("RAYON_NUM_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            })
    })
}

/// Run `f(first_row, rows)` over `out` split into row chunks of `width`, on all threads.
/// Each row is handled by exactly one call, so results never depend on the split.
fn par_rows<F>(out: &mut [f32], width: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let rows = out.len() / width.max(1);
    let t = threads().min(rows.max(1));
    if t <= 1 || out.len() < 32 * 1024 {
        f(0, out);
        return;
    }
    let per = rows.div_ceil(t);
    std::thread::scope(|s| {
        let mut chunks = out.chunks_mut(per * width).enumerate();
        let first = chunks.next();
        for (i, chunk) in chunks {
            let f = &f;
            s.spawn(move || f(i * per, chunk));
        }
        if let Some((_, chunk)) = first {
            f(0, chunk);
        }
    });
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
fn masked_softmax(scores: &mut [f32], seq: usize, scale: f32) {
    par_rows(scores, seq, |first, rows| {
        for (i, row) in rows.chunks_mut(seq).enumerate() {
            let pos = (first + i) % seq;
            let (live, dead) = row.split_at_mut(pos + 1);
            let mut max = f32::NEG_INFINITY;
            for x in live.iter_mut() {
                *x *= scale;
                max = max.max(*x);
            }
            let mut sum = 0f32;
            for x in live.iter_mut() {
                *x = (*x - max).exp();
                sum += *x;
            }
            let inv = 1.0 / sum;
            for x in live.iter_mut() {
                *x *= inv;
            }
            dead.fill(0.0);
        }
    });
}

/// dS = scale * P * (dP - rowsum(P * dP)), in place on dP.
fn softmax_backward(dp: &mut [f32], p: &[f32], seq: usize, scale: f32) {
    par_rows(dp, seq, |first, rows| {
        for (i, row) in rows.chunks_mut(seq).enumerate() {
            let r = first + i;
            let pos = r % seq;
            let prow = &p[r * seq..r * seq + pos + 1];
            let (live, dead) = row.split_at_mut(pos + 1);
            let mut dot = 0f32;
            for (g, &pp) in live.iter().zip(prow) {
                dot += g * pp;
            }
            for (g, &pp) in live.iter_mut().zip(prow) {
                *g = scale * pp * (*g - dot);
            }
            dead.fill(0.0);
        }
    });
}

/// `[b*s, n*hd]` token-major projections to head-major `[b, n, s, hd]`, rotating with RoPE
/// tables `cos, sin [s, hd]` (rotate_half layout) when given.
fn to_heads(
    x: &[f32],
    b: usize,
    s: usize,
    n: usize,
    hd: usize,
    rope: Option<(&[f32], &[f32])>,
) -> Vec<f32> {
    let mut out = vec![0f32; b * n * s * hd];
    let half = hd / 2;
    par_rows(&mut out, s * hd, |first, rows| {
        for (i, head) in rows.chunks_mut(s * hd).enumerate() {
            let (bi, hn) = ((first + i) / n, (first + i) % n);
            for t in 0..s {
                let src = &x[(bi * s + t) * n * hd + hn * hd..][..hd];
                let dst = &mut head[t * hd..(t + 1) * hd];
                match rope {
                    None => dst.copy_from_slice(src),
                    Some((cos, sin)) => {
                        let (c, sn) = (&cos[t * hd..(t + 1) * hd], &sin[t * hd..(t + 1) * hd]);
                        for j in 0..half {
                            let (x1, x2) = (src[j], src[j + half]);
                            dst[j] = x1 * c[j] + (-x2) * sn[j];
                            dst[j + half] = x2 * c[j + half] + x1 * sn[j + half];
                        }
                    }
                }
            }
        }
    });
    out
}

/// Inverse of `to_heads` for gradients: head-major `[b, n, s, hd]` back to `[b*s, n*hd]`,
/// applying the transpose of the RoPE rotation when tables are given.
fn from_heads(
    x: &[f32],
    b: usize,
    s: usize,
    n: usize,
    hd: usize,
    rope: Option<(&[f32], &[f32])>,
) -> Vec<f32> {
    let mut out = vec![0f32; b * s * n * hd];
    let half = hd / 2;
    par_rows(&mut out, n * hd, |first, rows| {
        for (i, row) in rows.chunks_mut(n * hd).enumerate() {
            let (bi, t) = ((first + i) / s, (first + i) % s);
            for hn in 0..n {
                let src = &x[((bi * n + hn) * s + t) * hd..][..hd];
                let dst = &mut row[hn * hd..(hn + 1) * hd];
                match rope {
                    None => dst.copy_from_slice(src),
                    Some((cos, sin)) => {
                        let (c, sn) = (&cos[t * hd..(t + 1) * hd], &sin[t * hd..(t + 1) * hd]);
                        for j in 0..half {
                            let (g1, g2) = (src[j], src[j + half]);
                            dst[j] = g1 * c[j] + g2 * sn[j + half];
                            dst[j + half] = g2 * c[j + half] - g1 * sn[j];
                        }
                    }
                }
            }
        }
    });
    out
}

#[derive(Debug)]
struct AttentionBlock;

#[derive(Debug, Clone)]
struct BlockState {
    /// Rotated queries `[b, kv, rep * s, hd]`, keys and values `[b, kv, s, hd]`.
    q: FlexTensor,
    k: FlexTensor,
    v: FlexTensor,
    /// Probabilities `[b, kv, rep * s, s]`.
    p: FlexTensor,
    /// `[b, s, h, kv, hd]`
    dims: [usize; 5],
    rope: std::sync::Arc<(Vec<f32>, Vec<f32>)>,
    scale: f32,
}

impl Backward<Flex, 3> for AttentionBlock {
    type State = BlockState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let st = ops.state;
        let [b, s, h, kv, hd] = st.dims;
        let rope = Some((st.rope.0.as_slice(), st.rope.1.as_slice()));
        let grad = contiguous(grads.consume::<Flex>(&ops.node));
        let d_out = new_tensor(
            to_heads(f32s(&grad), b, s, h, hd, None),
            vec![b, kv, h / kv * s, hd],
        );
        let [pq, pk, pv] = ops.parents;
        if let Some(node) = pv {
            let dv = Flex::float_matmul(Flex::float_transpose(st.p.clone()), d_out.clone());
            let dv = from_heads(f32s(&dv), b, s, kv, hd, None);
            grads.register::<Flex>(node.id, new_tensor(dv, vec![b * s, kv * hd]));
        }
        if pq.is_none() && pk.is_none() {
            return;
        }
        let mut ds = Flex::float_matmul(d_out, Flex::float_transpose(st.v));
        softmax_backward(ds.storage_mut::<f32>(), f32s(&st.p), s, st.scale);
        if let Some(node) = pk {
            let dk = Flex::float_matmul(Flex::float_transpose(ds.clone()), st.q);
            let dk = from_heads(f32s(&dk), b, s, kv, hd, rope);
            grads.register::<Flex>(node.id, new_tensor(dk, vec![b * s, kv * hd]));
        }
        if let Some(node) = pq {
            let dq = Flex::float_matmul(ds, st.k);
            let dq = from_heads(f32s(&dq), b, s, h, hd, rope);
            grads.register::<Flex>(node.id, new_tensor(dq, vec![b * s, h * hd]));
        }
    }
}

/// The whole causal self-attention between the projections, for training: takes the
/// token-major projections `q [b*s, h*hd]`, `k, v [b*s, kv*hd]`, applies RoPE (`rope` holds
/// the `[s, hd]` cos and sin tables), grouped-query causal softmax attention with scale
/// `1/sqrt(hd)`, and returns `[b*s, h*hd]` ready for `o_proj`. `Err` gives the inputs back
/// when the backend is not `Autodiff<Flex>`.
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
pub fn attention_block<B: Backend>(
    q: Tensor<B, 2>,
    k: Tensor<B, 2>,
    v: Tensor<B, 2>,
    batch: usize,
    seq: usize,
    heads: usize,
    kv_heads: usize,
    rope: std::sync::Arc<(Vec<f32>, Vec<f32>)>,
) -> Result<Tensor<B, 2>, (Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 2>)> {
    if !enabled::<B>() {
        return Err((q, k, v));
    }
    let (q, k, v) = (to_ad(q), to_ad(k), to_ad(v));
    let hd = q.primitive.layout().shape()[1] / heads;
    if !all_f32(&[&q, &k, &v]) || rope.0.len() != seq * hd {
        return Err((from_ad(q), from_ad(k), from_ad(v)));
    }
    let (b, s, h, kv) = (batch, seq, heads, kv_heads);
    let rep = h / kv;
    let scale = 1.0 / (hd as f32).sqrt();
    let tables = Some((rope.0.as_slice(), rope.1.as_slice()));
    let (qc, kc, vc) = (
        contiguous(q.primitive.clone()),
        contiguous(k.primitive.clone()),
        contiguous(v.primitive.clone()),
    );
    let qf = new_tensor(
        to_heads(f32s(&qc), b, s, h, hd, tables),
        vec![b, kv, rep * s, hd],
    );
    let kf = new_tensor(
        to_heads(f32s(&kc), b, s, kv, hd, tables),
        vec![b, kv, s, hd],
    );
    let vf = new_tensor(to_heads(f32s(&vc), b, s, kv, hd, None), vec![b, kv, s, hd]);
    drop((qc, kc, vc));
    let mut p = Flex::float_matmul(qf.clone(), Flex::float_transpose(kf.clone()));
    masked_softmax(p.storage_mut::<f32>(), s, scale);
    let o = Flex::float_matmul(p.clone(), vf.clone());
    let out = new_tensor(from_heads(f32s(&o), b, s, h, hd, None), vec![b * s, h * hd]);
    drop(o);
    let out = match AttentionBlock
        .prepare::<NoCheckpointing>([q.node.clone(), k.node.clone(), v.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(
            BlockState {
                q: qf,
                k: kf,
                v: vf,
                p,
                dims: [b, s, h, kv, hd],
                rope,
                scale,
            },
            out,
        ),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Ok(from_ad(out))
}

// ---------------------------------------------------------------------------------------------
// Mean cross-entropy of logits [n, vocab] against integer targets.
// ---------------------------------------------------------------------------------------------

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
    if !enabled::<B>() {
        return Err(logits);
    }
    let [n, vocab] = logits.dims();
    let logits = to_ad(logits);
    if !all_f32(&[&logits]) || targets.len() != n {
        return Err(from_ad(logits));
    }
    let x = contiguous(logits.primitive.clone());
    let xs = f32s(&x);
    // Per-row loss, then a fixed-order f64 sum: deterministic for any thread count.
    let mut grad = vec![0f32; n * vocab];
    let mut losses = vec![0f32; n];
    let inv_n = 1.0 / n as f32;
    {
        let losses_ptr = SendPtr(losses.as_mut_ptr());
        par_rows(&mut grad, vocab, |first, rows| {
            let lp = &losses_ptr;
            for (i, g) in rows.chunks_mut(vocab).enumerate() {
                let r = first + i;
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
                let scale = inv_n / sum;
                for gi in g.iter_mut() {
                    *gi *= scale;
                }
                g[t] -= inv_n;
                // SAFETY: each row index is written by exactly one thread.
                unsafe { *lp.0.add(r) = lse - row[t] };
            }
        });
    }
    let total: f64 = losses.iter().map(|&l| l as f64).sum();
    let loss = new_tensor(vec![(total / n as f64) as f32], vec![1]);
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
