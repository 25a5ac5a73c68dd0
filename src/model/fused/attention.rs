//! The fused causal-attention block (RoPE, grouped-query attention, masked softmax) and its backward.

use super::products::{batched_product, Transposed};
use super::*;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

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
            let dv = batched_product(&st.p, &d_out, Transposed::Lhs);
            let dv = from_heads(f32s(&dv), b, s, kv, hd, None);
            grads.register::<Flex>(node.id, new_tensor(dv, vec![b * s, kv * hd]));
        }
        if pq.is_none() && pk.is_none() {
            return;
        }
        let mut ds = batched_product(&d_out, &st.v, Transposed::Rhs);
        softmax_backward(ds.storage_mut::<f32>(), f32s(&st.p), s, st.scale);
        if let Some(node) = pk {
            let dk = batched_product(&ds, &st.q, Transposed::Lhs);
            let dk = from_heads(f32s(&dk), b, s, kv, hd, rope);
            grads.register::<Flex>(node.id, new_tensor(dk, vec![b * s, kv * hd]));
        }
        if let Some(node) = pq {
            let dq = batched_product(&ds, &st.k, Transposed::Neither);
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
    let mut p = batched_product(&qf, &kf, Transposed::Rhs);
    masked_softmax(p.storage_mut::<f32>(), s, scale);
    let o = batched_product(&p, &vf, Transposed::Neither);
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
