//! Per-layer key/value cache for generation: each new token attends to cached keys instead of
//! recomputing the whole prefix.

use burn::tensor::{backend::Backend, Tensor};

/// Keys and values of one layer, `[batch, kv_heads, cached, head_dim]`, after RoPE.
#[derive(Debug, Clone, Default)]
pub struct LayerCache<B: Backend> {
    k: Option<Tensor<B, 4>>,
    v: Option<Tensor<B, 4>>,
}

impl<B: Backend> LayerCache<B> {
    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.k.as_ref().map(|k| k.dims()[2]).unwrap_or(0)
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append new positions and return everything cached so far.
    pub fn append(&mut self, k: Tensor<B, 4>, v: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let k = match self.k.take() {
            Some(past) => Tensor::cat(vec![past, k], 2),
            None => k,
        };
        let v = match self.v.take() {
            Some(past) => Tensor::cat(vec![past, v], 2),
            None => v,
        };
        self.k = Some(k.clone());
        self.v = Some(v.clone());
        (k, v)
    }
}

/// The cache of a whole model.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    layers: Vec<LayerCache<B>>,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for `n_layers` layers.
    pub fn new(n_layers: usize) -> Self {
        Self {
            layers: (0..n_layers)
                .map(|_| LayerCache { k: None, v: None })
                .collect(),
        }
    }

    /// Positions cached (the same in every layer).
    pub fn len(&self) -> usize {
        self.layers.first().map(|l| l.len()).unwrap_or(0)
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cache of a batch-1 prefix repeated `n` times along the batch, so `n` continuations
    /// (the choices of a multiple-choice question) attend to one context encoded once.
    pub fn repeat_batch(&self, n: usize) -> Self {
        let rep = |t: &Option<Tensor<B, 4>>| t.as_ref().map(|t| t.clone().repeat_dim(0, n));
        Self {
            layers: self
                .layers
                .iter()
                .map(|l| LayerCache {
                    k: rep(&l.k),
                    v: rep(&l.v),
                })
                .collect(),
        }
    }

    /// One layer's cache.
    pub fn layer_mut(&mut self, i: usize) -> &mut LayerCache<B> {
        &mut self.layers[i]
    }
}
