//! Named access to the parameter tree. Burn keys parameters by `ParamId`, which does not
//! survive a save; everything we persist (weights, AdamW moments) is keyed by the module path
//! instead (`layers.3.q_proj`), which is stable across processes and backends.

use anyhow::{bail, Result};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{backend::Backend, Tensor, TensorData};
use std::collections::HashSet;

/// Tracks the dotted module path while a visitor or mapper walks the tree.
#[derive(Debug, Default, Clone)]
pub struct PathStack(Vec<String>);

impl PathStack {
    /// Descend into a field or list index.
    pub fn enter(&mut self, name: &str) {
        self.0.push(name.to_string());
    }
    /// Leave it again.
    pub fn exit(&mut self) {
        self.0.pop();
    }
    /// The current dotted path.
    pub fn path(&self) -> String {
        self.0.join(".")
    }
}

pub use crate::store::tensors::TensorSource;
pub use crate::store::NamedTensor;

/// Read a tensor back to the host as f32, whatever its storage dtype.
pub fn tensor_to_vec<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("converted tensor data is f32")
}

struct Exporter {
    stack: PathStack,
    out: Vec<NamedTensor>,
}

impl<B: Backend> ModuleVisitor<B> for Exporter {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.stack.enter(name);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.stack.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let t = param.val();
        let shape = t.dims().to_vec();
        self.out.push(NamedTensor {
            name: self.stack.path(),
            shape,
            data: tensor_to_vec(t),
        });
    }
}

/// Every float parameter with its path, in traversal order.
pub fn export_params<B: Backend, M: Module<B>>(module: &M) -> Vec<NamedTensor> {
    let mut v = Exporter {
        stack: PathStack::default(),
        out: Vec::new(),
    };
    module.visit(&mut v);
    v.out
}

struct NameLister {
    stack: PathStack,
    out: Vec<(String, Vec<usize>)>,
}

impl<B: Backend> ModuleVisitor<B> for NameLister {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.stack.enter(name);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.stack.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.out
            .push((self.stack.path(), param.val().dims().to_vec()));
    }
}

/// Paths and shapes of every float parameter, in traversal order (no data copied).
pub fn param_shapes<B: Backend, M: Module<B>>(module: &M) -> Vec<(String, Vec<usize>)> {
    let mut v = NameLister {
        stack: PathStack::default(),
        out: Vec::new(),
    };
    module.visit(&mut v);
    v.out
}

struct Importer<'a> {
    stack: PathStack,
    source: &'a mut dyn TensorSource,
    taken: HashSet<String>,
    errors: Vec<String>,
}

impl<B: Backend> ModuleMapper<B> for Importer<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.stack.enter(name);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.stack.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let name = self.stack.path();
        let expected = tensor.dims().to_vec();
        self.taken.insert(name.clone());
        let tensor = match self.source.take(&name) {
            Ok(Some(nt)) if nt.shape == expected => {
                let device = tensor.device();
                let required = tensor.is_require_grad();
                // Replace the old tensor before building the new one: never both in memory.
                drop(tensor);
                let loaded = Tensor::<B, D>::from_data(TensorData::new(nt.data, expected), &device);
                if required {
                    loaded.require_grad()
                } else {
                    loaded
                }
            }
            Ok(Some(nt)) => {
                self.errors.push(format!(
                    "{name}: shape {:?}, model expects {:?}",
                    nt.shape, expected
                ));
                tensor
            }
            Ok(None) => {
                self.errors.push(format!("{name}: missing"));
                tensor
            }
            Err(e) => {
                self.errors.push(format!("{name}: {e:#}"));
                tensor
            }
        };
        Param::from_mapped_value(id, tensor, mapper)
    }
}

/// Replace every parameter with the tensor of the same path, taken from `source` one at a
/// time (a mapped checkpoint is read as the model is filled, never held whole). Missing,
/// extra or mis-shaped tensors are all reported together, so one error explains the whole
/// mismatch.
pub fn import_params<B: Backend, M: Module<B>>(
    module: M,
    mut source: impl TensorSource,
) -> Result<M> {
    let mut mapper = Importer {
        stack: PathStack::default(),
        source: &mut source,
        taken: HashSet::new(),
        errors: Vec::new(),
    };
    let module = module.map(&mut mapper);
    let Importer { taken, errors, .. } = mapper;
    refuse_with_extras(errors, &taken, &source)?;
    Ok(module)
}

/// Refuse a load whose source holds tensors the model did not take (reported as "not part of
/// this model", sorted) or that collected other `errors`; shared by both loading paths.
pub fn refuse_with_extras(
    mut errors: Vec<String>,
    taken: &HashSet<String>,
    source: &impl TensorSource,
) -> Result<()> {
    let mut extra: Vec<String> = source
        .names()
        .into_iter()
        .filter(|n| !taken.contains(n))
        .collect();
    extra.sort();
    errors.extend(
        extra
            .into_iter()
            .map(|n| format!("{n}: not part of this model")),
    );
    refuse_mismatches(&errors)
}

/// One error listing the first few mismatches between stored tensors and a model (missing,
/// extra, mis-shaped, unreadable) and how many more there are; `Ok` when there are none.
pub fn refuse_mismatches(errors: &[String]) -> Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    let shown = errors
        .iter()
        .take(4)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    let more = if errors.len() > 4 {
        format!(" (+{} more)", errors.len() - 4)
    } else {
        String::new()
    };
    bail!("tensors do not match the model: {shown}{more}");
}
