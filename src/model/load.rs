//! Building a model straight from stored weights: the parameters start as zero-filled
//! placeholders (untouched pages, no random init to compute) and are replaced one tensor at
//! a time from a [`TensorSource`], so loading costs one copy of the weights and no more.

use super::llama::{Block, Dims, Llama};
use super::params::{import_params, TensorSource};
use crate::config::ModelConfig;
use anyhow::Result;
use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

fn zeros<B: Backend, const D: usize>(shape: [usize; D], device: &B::Device) -> Param<Tensor<B, D>> {
    Param::from_tensor(Tensor::zeros(shape, device))
}

/// A model of `m`'s shape holding `source`'s weights (checked by name and shape, every
/// mismatch reported at once). For sampling, evaluation and fine-tuning from stored weights,
/// where a random initialisation would only be computed to be thrown away.
pub fn load_model<B: Backend>(
    m: &ModelConfig,
    source: impl TensorSource,
    device: &B::Device,
) -> Result<Llama<B>> {
    let dims = Dims::from_config(m);
    let (d, ff) = (m.d_model, m.ff_dim);
    let kv = dims.head_dim * m.n_kv_heads;
    let model = Llama {
        embed_tokens: zeros([m.vocab_size, d], device),
        layers: (0..m.n_layers)
            .map(|_| Block {
                input_layernorm: zeros([d], device),
                q_proj: zeros([d, d], device),
                k_proj: zeros([d, kv], device),
                v_proj: zeros([d, kv], device),
                o_proj: zeros([d, d], device),
                post_attention_layernorm: zeros([d], device),
                gate_proj: zeros([d, ff], device),
                up_proj: zeros([d, ff], device),
                down_proj: zeros([ff, d], device),
            })
            .collect(),
        norm: zeros([d], device),
        lm_head: (!m.tie_embeddings).then(|| zeros([d, m.vocab_size], device)),
        dims,
    };
    import_params(model, source)
}
