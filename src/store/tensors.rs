//! Host copies of tensors, the currency between the engine and the store: plain data, so the
//! store can write and read checkpoints without Burn.

/// A host copy of one parameter (or optimizer moment), in the model's own layout.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}
