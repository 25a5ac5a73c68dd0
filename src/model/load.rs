//! Building a model straight from stored weights: every parameter is made from its stored
//! tensor as it is read (no random init computed to be thrown away, no placeholder to
//! replace), so loading costs one copy of the weights and no more.

use super::llama::{Block, Dims, Llama};
use super::params::{refuse_with_extras, TensorSource};
use crate::config::ModelConfig;
use anyhow::Result;
use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use std::collections::HashSet;

/// Takes parameters from a source by path, checking shapes and collecting every mismatch.
struct Filler<'a, B: Backend> {
    source: &'a mut dyn TensorSource,
    device: &'a B::Device,
    taken: HashSet<String>,
    errors: Vec<String>,
}

impl<B: Backend> Filler<'_, B> {
    fn param<const D: usize>(&mut self, name: &str, shape: [usize; D]) -> Param<Tensor<B, D>> {
        self.taken.insert(name.to_string());
        match self.source.take(name) {
            Ok(Some(t)) if t.shape == shape => {
                let data = TensorData::new(t.data, shape);
                return Param::from_tensor(Tensor::from_data(data, self.device));
            }
            Ok(Some(t)) => self.errors.push(format!(
                "{name}: shape {:?}, model expects {shape:?}",
                t.shape
            )),
            Ok(None) => self.errors.push(format!("{name}: missing")),
            Err(e) => self.errors.push(format!("{name}: {e:#}")),
        }
        // Never used: the load is refused below with every mismatch listed.
        Param::from_tensor(Tensor::zeros([1; D], self.device))
    }
}

/// A model of `m`'s shape holding `source`'s weights (checked by name and shape, every
/// mismatch reported at once). For sampling, evaluation and serving from stored weights.
pub fn load_model<B: Backend>(
    m: &ModelConfig,
    mut source: impl TensorSource,
    device: &B::Device,
) -> Result<Llama<B>> {
    let dims = Dims::from_config(m);
    let (d, ff) = (m.d_model, m.ff_dim);
    // Attention widths: d_model each unless the config sets its own head_dim (as `Llama::new`).
    let q = dims.head_dim * m.n_heads;
    let kv = dims.head_dim * m.n_kv_heads;
    let mut f = Filler::<B> {
        source: &mut source,
        device,
        taken: HashSet::new(),
        errors: Vec::new(),
    };
    let embed_tokens = f.param("embed_tokens", [m.vocab_size, d]);
    let layers = (0..m.n_layers)
        .map(|i| {
            let n = |field: &str| format!("layers.{i}.{field}");
            Block {
                input_layernorm: f.param(&n("input_layernorm"), [d]),
                q_proj: f.param(&n("q_proj"), [d, q]),
                k_proj: f.param(&n("k_proj"), [d, kv]),
                v_proj: f.param(&n("v_proj"), [d, kv]),
                o_proj: f.param(&n("o_proj"), [q, d]),
                post_attention_layernorm: f.param(&n("post_attention_layernorm"), [d]),
                gate_proj: f.param(&n("gate_proj"), [d, ff]),
                up_proj: f.param(&n("up_proj"), [d, ff]),
                down_proj: f.param(&n("down_proj"), [ff, d]),
            }
        })
        .collect();
    let norm = f.param("norm", [d]);
    let lm_head = (!m.tie_embeddings).then(|| f.param("lm_head", [d, m.vocab_size]));
    let Filler { taken, errors, .. } = f;
    refuse_with_extras(errors, &taken, &source)?;
    Ok(Llama {
        embed_tokens,
        layers,
        norm,
        lm_head,
        dims,
    })
}
