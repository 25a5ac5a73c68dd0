//! The LLaMa decoder: RMSNorm, RoPE (rotate_half), grouped-query causal attention, SwiGLU,
//! no biases, tied or untied output head. Linear weights are stored `[in, out]` so a forward
//! pass is a plain `x.matmul(w)`; `store::hf_layout` transposes to HF's `[out, in]`.

use super::fused;

use super::init::InitRng;
use super::kv_cache::KvCache;
use super::rope::{apply_rope, rope_tables, rope_values_cached, RopeSpec};
use crate::config::ModelConfig;
use burn::module::{Module, Param};
use burn::tensor::activation::{log_softmax, silu};
use burn::tensor::backend::Backend;
use burn::tensor::module::{attention, embedding};
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Int, Tensor, TensorData};

/// One transformer block; field names mirror HF's so the name mapping stays obvious.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    pub input_layernorm: Param<Tensor<B, 1>>,
    pub q_proj: Param<Tensor<B, 2>>,
    pub k_proj: Param<Tensor<B, 2>>,
    pub v_proj: Param<Tensor<B, 2>>,
    pub o_proj: Param<Tensor<B, 2>>,
    pub post_attention_layernorm: Param<Tensor<B, 1>>,
    pub gate_proj: Param<Tensor<B, 2>>,
    pub up_proj: Param<Tensor<B, 2>>,
    pub down_proj: Param<Tensor<B, 2>>,
}

/// Shape facts the forward pass needs; kept outside the parameter tree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dims {
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    /// Base, width and scaling of the rotary tables.
    pub rope: RopeSpec,
    pub norm_eps: f64,
    pub max_seq_len: usize,
    pub vocab_size: usize,
}

impl Dims {
    /// Derive from the config (validated beforehand).
    pub fn from_config(m: &ModelConfig) -> Self {
        Self {
            n_heads: m.n_heads,
            n_kv_heads: m.n_kv_heads,
            head_dim: m.resolved_head_dim(),
            rope: RopeSpec::from_config(m),
            norm_eps: m.norm_eps,
            max_seq_len: m.max_seq_len,
            vocab_size: m.vocab_size,
        }
    }
}

/// The whole decoder.
#[derive(Module, Debug)]
pub struct Llama<B: Backend> {
    pub embed_tokens: Param<Tensor<B, 2>>,
    pub layers: Vec<Block<B>>,
    pub norm: Param<Tensor<B, 1>>,
    /// `[d_model, vocab]`; `None` when tied to `embed_tokens`.
    pub lm_head: Option<Param<Tensor<B, 2>>>,
    #[module(skip)]
    pub dims: Dims,
}

fn param<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
}

impl<B: Backend> Llama<B> {
    /// Fresh weights: N(0, 0.02) everywhere, residual projections scaled by 1/sqrt(2 layers)
    /// (GPT-2), norms at one. Deterministic in `seed` on every backend.
    pub fn new(m: &ModelConfig, seed: u64, device: &B::Device) -> Self {
        let dims = Dims::from_config(m);
        let mut rng = InitRng::new(seed);
        let d = m.d_model;
        // Attention widths: d_model each unless the config sets its own head_dim.
        let q = dims.head_dim * m.n_heads;
        let kv = dims.head_dim * m.n_kv_heads;
        let std = 0.02;
        let resid_std = std / (2.0 * m.n_layers as f64).sqrt();
        let embed_tokens = param(rng.normal(m.vocab_size * d, std), [m.vocab_size, d], device);
        let layers = (0..m.n_layers)
            .map(|_| Block {
                input_layernorm: param(vec![1.0; d], [d], device),
                q_proj: param(rng.normal(d * q, std), [d, q], device),
                k_proj: param(rng.normal(d * kv, std), [d, kv], device),
                v_proj: param(rng.normal(d * kv, std), [d, kv], device),
                o_proj: param(rng.normal(q * d, resid_std), [q, d], device),
                post_attention_layernorm: param(vec![1.0; d], [d], device),
                gate_proj: param(rng.normal(d * m.ff_dim, std), [d, m.ff_dim], device),
                up_proj: param(rng.normal(d * m.ff_dim, std), [d, m.ff_dim], device),
                down_proj: param(rng.normal(m.ff_dim * d, resid_std), [m.ff_dim, d], device),
            })
            .collect();
        let norm = param(vec![1.0; d], [d], device);
        let lm_head = (!m.tie_embeddings)
            .then(|| param(rng.normal(d * m.vocab_size, std), [d, m.vocab_size], device));
        Self {
            embed_tokens,
            layers,
            norm,
            lm_head,
            dims,
        }
    }

    /// Logits `[batch * seq, vocab]` for tokens `[batch, seq]` starting at position `start`.
    /// With a cache, keys/values are appended and attention covers everything cached.
    pub fn forward(
        &self,
        tokens: Tensor<B, 2, Int>,
        start: usize,
        cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 2> {
        self.logits(self.hidden(tokens, start, cache))
    }

    /// The final-normed hidden states `[batch * seq, d_model]`: [`Llama::forward`] without
    /// the output head, so a caller that needs logits for a few rows only (the last prompt
    /// token of a prefix) skips the `[rows, vocab]` GEMM for the others.
    pub fn hidden(
        &self,
        tokens: Tensor<B, 2, Int>,
        start: usize,
        mut cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 2> {
        let [batch, seq] = tokens.dims();
        let tables = self.rope(start, seq, &tokens.device());
        let mut x = self.embed(tokens);
        for (i, layer) in self.layers.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| c.layer_mut(i));
            x = layer.forward(x, [batch, seq, start], &self.dims, &tables, layer_cache);
        }
        rms_norm(x, &self.norm.val(), self.dims.norm_eps)
    }

    /// Rotary tables for positions `start..start + seq`, in the dtype of the weights (a
    /// reduced-precision compute copy gets reduced-precision tables: Flex's binary ops need
    /// both sides in one dtype).
    pub fn rope(&self, start: usize, seq: usize, device: &B::Device) -> RopeTables<B> {
        let (cos, sin) = rope_tables::<B>(&self.dims.rope, start, seq, device);
        let dtype = self.norm.val().dtype();
        match cos.dtype() == dtype {
            true => RopeTables { cos, sin },
            false => RopeTables {
                cos: cos.cast(dtype),
                sin: sin.cast(dtype),
            },
        }
    }

    /// Token embeddings as rows `[batch * seq, d_model]`: the input of the first block.
    pub fn embed(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        let [batch, seq] = tokens.dims();
        let d_model = self.norm.dims()[0];
        embedding(self.embed_tokens.val(), tokens).reshape([batch * seq, d_model])
    }

    /// The same model without its blocks (shallow clones): the embedding and the head, which
    /// activation checkpointing differentiates apart from the blocks.
    pub fn without_layers(&self) -> Self {
        Self {
            embed_tokens: self.embed_tokens.clone(),
            layers: Vec::new(),
            norm: self.norm.clone(),
            lm_head: self.lm_head.clone(),
            dims: self.dims,
        }
    }

    /// Final norm and output head: logits `[rows, vocab]` from the last block's output.
    pub fn head(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.logits(rms_norm(x, &self.norm.val(), self.dims.norm_eps))
    }

    /// Logits `[rows, vocab]` of hidden states `[rows, d_model]` from [`Llama::hidden`].
    pub fn logits(&self, h: Tensor<B, 2>) -> Tensor<B, 2> {
        let [rows, d_model] = h.dims();
        match &self.lm_head {
            Some(head) => linear(h, head.val()),
            // One row (a generation step): `E h^T` reads the `[vocab, d]` embedding as it is
            // stored; `h E^T` would copy the transposed embedding on every token.
            None if rows == 1 => self
                .embed_tokens
                .val()
                .matmul(h.reshape([d_model, 1]))
                .reshape([1, self.dims.vocab_size]),
            None => linear(h, self.embed_tokens.val().transpose()),
        }
    }

    /// Mean next-token cross-entropy over a `[batch, seq + 1]` window (inputs are the first
    /// `seq`, targets the last `seq` tokens of each row).
    pub fn loss(&self, rows: Tensor<B, 2, Int>) -> Tensor<B, 1> {
        let [batch, width] = rows.dims();
        let seq = width - 1;
        let inputs = rows.clone().narrow(1, 0, seq);
        let targets = rows.narrow(1, 1, seq).reshape([batch * seq, 1]);
        let logits = self.forward(inputs, 0, None);
        next_token_loss(logits, targets)
    }
}

/// Rotary cos/sin tables `[1, 1, seq, head_dim]` shared by every block of one forward pass.
#[derive(Debug, Clone)]
pub struct RopeTables<B: Backend> {
    pub cos: Tensor<B, 4>,
    pub sin: Tensor<B, 4>,
}

/// Logits in f32: a reduced-precision compute copy still takes its softmax and loss in f32
/// (the usual mixed-precision rule), and the fused f32 cross-entropy then applies.
pub fn logits_f32<B: Backend>(logits: Tensor<B, 2>) -> Tensor<B, 2> {
    match logits.dtype() {
        burn::tensor::DType::F32 => logits,
        _ => logits.cast(burn::tensor::FloatDType::F32),
    }
}

/// Mean cross-entropy of `targets [n, 1]` under `logits [n, vocab]`: the fused kernel on the
/// CPU training backend, the generic formulation elsewhere.
pub fn next_token_loss<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 2, Int>,
) -> Tensor<B, 1> {
    let logits = logits_f32(logits);
    if fused::enabled::<B>() {
        let ids = target_ids(&targets);
        match fused::cross_entropy(logits, &ids) {
            Ok(loss) => return loss,
            Err(logits) => return cross_entropy(logits, targets),
        }
    }
    cross_entropy(logits, targets)
}

/// Masked mean cross-entropy, `sum(mask * nll) / max(sum(mask), 1)` (SFT: response tokens
/// only): the fused kernel on the CPU training backend, the generic formulation elsewhere.
pub fn masked_next_token_loss<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 2, Int>,
    mask: Tensor<B, 1>,
) -> Tensor<B, 1> {
    let logits = logits_f32(logits);
    let logits = if fused::enabled::<B>() {
        let ids = target_ids(&targets);
        let weights: Vec<f32> = mask
            .clone()
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("float mask");
        match fused::masked_cross_entropy(logits, &ids, &weights) {
            Ok(loss) => return loss,
            Err(logits) => logits,
        }
    } else {
        logits
    };
    let n = targets.dims()[0];
    let nll = log_softmax(logits, 1).gather(1, targets).reshape([n]).neg();
    let count = mask.clone().sum().clamp_min(1.0);
    (nll * mask).sum().div(count)
}

/// Target ids on the host, as the fused cross-entropy kernels take them.
fn target_ids<B: Backend>(targets: &Tensor<B, 2, Int>) -> Vec<i64> {
    targets
        .clone()
        .into_data()
        .convert::<i64>()
        .to_vec::<i64>()
        .expect("int targets")
}

/// Mean negative log-likelihood of `targets [n, 1]` under `logits [n, vocab]`.
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 2, Int>) -> Tensor<B, 1> {
    let logp = log_softmax(logits, 1);
    logp.gather(1, targets).mean().neg()
}

/// RMSNorm over the last dimension of `[n, d]`.
pub fn rms_norm<B: Backend>(x: Tensor<B, 2>, weight: &Tensor<B, 1>, eps: f64) -> Tensor<B, 2> {
    let x = match fused::rms_norm(x, weight.clone(), eps) {
        Ok(y) => return y,
        Err((x, _)) => x,
    };
    let inv = x
        .clone()
        .powi_scalar(2)
        .mean_dim(1)
        .add_scalar(eps)
        .sqrt()
        .recip();
    x * inv * weight.clone().unsqueeze::<2>()
}

impl<B: Backend> Block<B> {
    /// The block on rows `[batch * seq, d_model]` at positions from 0 without a KV cache: the
    /// unit activation checkpointing recomputes (`train/recompute.rs`).
    pub fn run(
        &self,
        x: Tensor<B, 2>,
        [batch, seq]: [usize; 2],
        dims: &Dims,
        tables: &RopeTables<B>,
    ) -> Tensor<B, 2> {
        self.forward(x, [batch, seq, 0], dims, tables, None)
    }

    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        x: Tensor<B, 2>,
        [batch, seq, start]: [usize; 3],
        dims: &Dims,
        tables: &RopeTables<B>,
        cache: Option<&mut super::kv_cache::LayerCache<B>>,
    ) -> Tensor<B, 2> {
        let h = rms_norm(x.clone(), &self.input_layernorm.val(), dims.norm_eps);
        let attn = self.attention(h, [batch, seq, start], dims, tables, cache);
        let x = x + attn;
        let h = rms_norm(
            x.clone(),
            &self.post_attention_layernorm.val(),
            dims.norm_eps,
        );
        let gate = linear(h.clone(), self.gate_proj.val());
        let up = linear(h, self.up_proj.val());
        let gated = match fused::swiglu(gate, up) {
            Ok(y) => y,
            Err((gate, up)) => silu(gate) * up,
        };
        x + linear(gated, self.down_proj.val())
    }

    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        h: Tensor<B, 2>,
        [batch, seq, start]: [usize; 3],
        dims: &Dims,
        tables: &RopeTables<B>,
        cache: Option<&mut super::kv_cache::LayerCache<B>>,
    ) -> Tensor<B, 2> {
        let (cos, sin) = (&tables.cos, &tables.sin);
        let (hd, nh, nkv) = (dims.head_dim, dims.n_heads, dims.n_kv_heads);
        let (q, k, v) = (
            linear(h.clone(), self.q_proj.val()),
            linear(h.clone(), self.k_proj.val()),
            linear(h, self.v_proj.val()),
        );
        // Training on the CPU backend: one fused node (RoPE, GQA, causal softmax, layout).
        let (q, k, v) = match (&cache, seq > 1 && fused::enabled::<B>()) {
            (None, true) => {
                let tables = rope_values_cached(&dims.rope, start, seq);
                match fused::attention_block(q, k, v, batch, seq, nh, nkv, tables) {
                    Ok(out) => return linear(out, self.o_proj.val()),
                    Err(qkv) => qkv,
                }
            }
            _ => (q, k, v),
        };
        let heads = |t: Tensor<B, 2>, n: usize| t.reshape([batch, seq, n, hd]).swap_dims(1, 2);
        let q = apply_rope(heads(q, nh), cos, sin);
        let k = apply_rope(heads(k, nkv), cos, sin);
        let v = heads(v, nkv);
        let (k, v, causal) = match cache {
            Some(c) => {
                let (k, v) = c.append(k, v);
                // A single new query may see every cached key; several new queries (a prefill,
                // or choices scored after a cached context) are causal, aligned bottom-right:
                // query i sees the past and new keys up to its own (Burn's convention).
                (k, v, seq > 1)
            }
            None => (k, v, true),
        };
        if seq == 1 && nh != nkv {
            // One new query per head: the `rep` query heads of a group become `rep` rows
            // against their shared keys, so the cache is never copied per head.
            let rep = nh / nkv;
            let options = AttentionModuleOptions {
                scale: None,
                softcap: None,
                is_causal: false,
            };
            let out = attention(q.reshape([batch, nkv, rep, hd]), k, v, None, None, options);
            return out.reshape([batch, nh * hd]).matmul(self.o_proj.val());
        }
        let k = repeat_kv(k, nh / nkv);
        let v = repeat_kv(v, nh / nkv);
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: causal && seq > 1,
        };
        let out = attention(q, k, v, None, None, options);
        linear(
            out.swap_dims(1, 2).reshape([batch * seq, nh * hd]),
            self.o_proj.val(),
        )
    }
}

/// `x @ w`: one fused node on the CPU training backend (no zero-fill and realigning copy of
/// each product), Burn's matmul elsewhere.
fn linear<B: Backend>(x: Tensor<B, 2>, w: Tensor<B, 2>) -> Tensor<B, 2> {
    match fused::linear(x, w) {
        Ok(y) => y,
        Err((x, w)) => x.matmul(w),
    }
}

/// Expand `[b, kv_heads, t, hd]` to `[b, kv_heads * rep, t, hd]` for grouped-query attention.
fn repeat_kv<B: Backend>(x: Tensor<B, 4>, rep: usize) -> Tensor<B, 4> {
    if rep == 1 {
        return x;
    }
    let [b, kv, t, hd] = x.dims();
    x.unsqueeze_dim::<5>(2)
        .expand([b, kv, rep, t, hd])
        .reshape([b, kv * rep, t, hd])
}

#[cfg(test)]
#[path = "llama_tests.rs"]
mod tests;
