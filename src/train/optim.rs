//! AdamW as PyTorch defines it (decoupled weight decay, bias correction), with decay only on
//! matrices (>= 2-D), global-norm clipping and gradient accumulation. Written here rather than
//! taken from burn-optim because Burn clips per tensor, decays every parameter and keys its
//! state by `ParamId`, which does not survive a checkpoint. Moments are keyed by module path.

use crate::model::params::{tensor_to_vec, NamedTensor};
use anyhow::{bail, Result};
use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};

/// AdamW hyper-parameters (the LR comes from the schedule each step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Global gradient-norm limit; 0 disables clipping.
    pub grad_clip: f64,
}

/// Flattened gradients of every parameter, in traversal order, summed over micro-batches.
pub struct GradBuffer<B: Backend> {
    grads: Vec<Option<Tensor<B, 1>>>,
    micro_batches: usize,
    /// The factor the losses were multiplied by before their backward (f16 loss scaling,
    /// `precision.rs`); the update divides it out. 1 otherwise.
    pub loss_scale: f64,
}

impl<B: Backend> Default for GradBuffer<B> {
    fn default() -> Self {
        Self {
            grads: Vec::new(),
            micro_batches: 0,
            loss_scale: 1.0,
        }
    }
}

struct GradCollector<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    out: Vec<Option<Tensor<B::InnerBackend, 1>>>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for GradCollector<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let g = self.grads.remove::<B::InnerBackend, D>(param.id);
        self.out.push(g.map(|g| {
            let n = g.shape().num_elements();
            g.reshape([n])
        }));
    }
}

impl<B: Backend> GradBuffer<B> {
    /// Add one micro-batch's gradients.
    pub fn accumulate<AB, M>(&mut self, model: &M, grads: AB::Gradients)
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB>,
    {
        self.add_part::<AB, M>(model, grads);
        self.micro_batches += 1;
    }

    /// The accumulated gradients, one flattened entry per parameter in traversal order
    /// (`None`: no gradient reached it). For comparisons in tests and benches.
    pub fn grads(&self) -> &[Option<Tensor<B, 1>>] {
        &self.grads
    }

    /// Close a micro-batch whose gradients came in several parts (`add_part`).
    pub fn end_micro_batch(&mut self) {
        self.micro_batches += 1;
    }

    /// Global norm of the gradients as accumulated (loss scale and micro-batches not divided
    /// out): f16 loss scaling checks it is finite before an update.
    pub fn raw_norm(&self) -> f64 {
        global_norm(&self.grads)
    }

    /// Add gradients from one of several backward passes of the same micro-batch (activation
    /// checkpointing runs one per block); parameters absent from `grads` add nothing.
    pub fn add_part<AB, M>(&mut self, model: &M, grads: AB::Gradients)
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB>,
    {
        let mut params = GradientsParams::from_grads(grads, model);
        let mut collector = GradCollector::<AB> {
            grads: &mut params,
            out: Vec::new(),
        };
        model.visit(&mut collector);
        if self.grads.is_empty() {
            self.grads = collector.out;
        } else {
            for (acc, new) in self.grads.iter_mut().zip(collector.out) {
                *acc = match (acc.take(), new) {
                    (Some(a), Some(b)) => Some(a + b),
                    (a, b) => a.or(b),
                };
            }
        }
    }

    /// The summed gradients in traversal order, for the data-parallel all-reduce
    /// (`train/parallel`), which replaces them with their mean over peers.
    pub(crate) fn grads_mut(&mut self) -> &mut Vec<Option<Tensor<B, 1>>> {
        &mut self.grads
    }
}

/// AdamW state: first and second moments per parameter (flattened) and the update count.
pub struct AdamW<B: Backend> {
    pub config: AdamWConfig,
    /// Updates applied so far (bias correction uses it).
    pub step: u64,
    moments: Vec<Option<(Tensor<B, 1>, Tensor<B, 1>)>>,
}

/// What one update did, for the Step event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateStats {
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

struct Updater<'a, B: Backend> {
    index: usize,
    grads: Vec<Option<Tensor<B, 1>>>,
    moments: &'a mut Vec<Option<(Tensor<B, 1>, Tensor<B, 1>)>>,
    config: AdamWConfig,
    lr: f64,
    grad_scale: f64,
    bias1: f64,
    bias2: f64,
}

impl<AB: AutodiffBackend> ModuleMapper<AB> for Updater<'_, AB::InnerBackend> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<AB, D>>) -> Param<Tensor<AB, D>> {
        let (id, tensor, mapper) = param.consume();
        let i = self.index;
        self.index += 1;
        let Some(grad) = self.grads.get_mut(i).and_then(Option::take) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let c = self.config;
        let require_grad = tensor.is_require_grad();
        let inner = tensor.inner();
        let shape = inner.shape();
        let n = shape.num_elements();
        let mut p = inner.reshape([n]);
        let g = grad.mul_scalar(self.grad_scale);
        let (m, v) = match self.moments[i].take() {
            Some(mv) => mv,
            None => (g.zeros_like(), g.zeros_like()),
        };
        let m = m.mul_scalar(c.beta1) + g.clone().mul_scalar(1.0 - c.beta1);
        let v = v.mul_scalar(c.beta2) + g.powi_scalar(2).mul_scalar(1.0 - c.beta2);
        if D >= 2 && c.weight_decay > 0.0 {
            p = p.mul_scalar(1.0 - self.lr * c.weight_decay);
        }
        let denom = v.clone().div_scalar(self.bias2).sqrt().add_scalar(c.eps);
        let update = m
            .clone()
            .div_scalar(self.bias1)
            .div(denom)
            .mul_scalar(self.lr);
        p = p - update;
        self.moments[i] = Some((m, v));
        let mut t = Tensor::<AB, D>::from_inner(p.reshape(shape));
        if require_grad {
            t = t.require_grad();
        }
        Param::from_mapped_value(id, t, mapper)
    }
}

impl<B: Backend> AdamW<B> {
    /// Fresh optimizer with zero moments.
    pub fn new(config: AdamWConfig) -> Self {
        Self {
            config,
            step: 0,
            moments: Vec::new(),
        }
    }

    /// The same state on `device`, for a data-parallel peer's replica (`train/parallel`).
    pub fn replica(&self, device: &B::Device) -> Self {
        let moments = self
            .moments
            .iter()
            .map(|mv| {
                mv.as_ref()
                    .map(|(m, v)| (m.clone().to_device(device), v.clone().to_device(device)))
            })
            .collect();
        Self {
            config: self.config,
            step: self.step,
            moments,
        }
    }

    /// Clip and apply the accumulated gradients with learning rate `lr`; returns the model.
    pub fn update<AB, M>(&mut self, model: M, buffer: GradBuffer<B>, lr: f64) -> (M, UpdateStats)
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB>,
    {
        let micro = buffer.micro_batches.max(1) as f64 * buffer.loss_scale;
        let grad_norm = global_norm(&buffer.grads) / micro;
        let clip = if self.config.grad_clip > 0.0 {
            (self.config.grad_clip / (grad_norm + 1e-6)).min(1.0)
        } else {
            1.0
        };
        if self.moments.len() < buffer.grads.len() {
            self.moments.resize_with(buffer.grads.len(), || None);
        }
        self.step += 1;
        let t = self.step as i32;
        let mut updater = Updater {
            index: 0,
            grads: buffer.grads,
            moments: &mut self.moments,
            config: self.config,
            lr,
            grad_scale: clip / micro,
            bias1: 1.0 - self.config.beta1.powi(t),
            bias2: 1.0 - self.config.beta2.powi(t),
        };
        let model = model.map(&mut updater);
        (model, UpdateStats { grad_norm })
    }

    /// Moments as named host tensors (`<path>.exp_avg`, `<path>.exp_avg_sq`), shaped like their
    /// parameters, for the checkpoint.
    pub fn export_moments(&self, params: &[(String, Vec<usize>)]) -> Vec<NamedTensor> {
        let mut out = Vec::new();
        for (i, (name, shape)) in params.iter().enumerate() {
            let n: usize = shape.iter().product();
            let (m, v) = match self.moments.get(i).and_then(|x| x.as_ref()) {
                Some((m, v)) => (tensor_to_vec(m.clone()), tensor_to_vec(v.clone())),
                None => (vec![0.0; n], vec![0.0; n]),
            };
            out.push(NamedTensor {
                name: format!("{name}.exp_avg"),
                shape: shape.clone(),
                data: m,
            });
            out.push(NamedTensor {
                name: format!("{name}.exp_avg_sq"),
                shape: shape.clone(),
                data: v,
            });
        }
        out
    }

    /// Restore moments saved by `export_moments`; every parameter must have both.
    pub fn import_moments(
        &mut self,
        params: &[(String, Vec<usize>)],
        tensors: Vec<NamedTensor>,
        step: u64,
        device: &B::Device,
    ) -> Result<()> {
        let mut by_name: std::collections::HashMap<String, NamedTensor> =
            tensors.into_iter().map(|t| (t.name.clone(), t)).collect();
        let mut moments = Vec::with_capacity(params.len());
        for (name, shape) in params {
            let mut take = |suffix: &str| -> Result<Tensor<B, 1>> {
                let key = format!("{name}.{suffix}");
                let Some(t) = by_name.remove(&key) else {
                    bail!("optimizer state has no `{key}`")
                };
                if &t.shape != shape {
                    bail!(
                        "optimizer `{key}` has shape {:?}, parameter has {:?}",
                        t.shape,
                        shape
                    );
                }
                let n = t.data.len();
                Ok(Tensor::from_data(TensorData::new(t.data, [n]), device))
            };
            moments.push(Some((take("exp_avg")?, take("exp_avg_sq")?)));
        }
        if let Some(extra) = by_name.keys().next() {
            bail!("optimizer state has `{extra}`, which is not a parameter of this model");
        }
        self.moments = moments;
        self.step = step;
        Ok(())
    }
}

fn global_norm<B: Backend>(grads: &[Option<Tensor<B, 1>>]) -> f64 {
    let mut total: Option<Tensor<B, 1>> = None;
    for g in grads.iter().flatten() {
        let sq = g.clone().powi_scalar(2).sum();
        total = Some(match total {
            Some(t) => t + sq,
            None => sq,
        });
    }
    total
        .map(|t| tensor_to_vec(t)[0] as f64)
        .unwrap_or(0.0)
        .sqrt()
}
