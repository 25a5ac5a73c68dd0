//! Host copies of tensors, the currency between the engine and the store: plain data, so the
//! store can write and read checkpoints without Burn.

/// A host copy of one parameter (or optimizer moment), in the model's own layout.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Where a model's weights come from while it is built: a list already in memory, or a
/// mapped file read one tensor at a time (`store::mapped`), so loading never needs the whole
/// set in memory twice.
pub trait TensorSource {
    /// Internal names of every tensor on offer.
    fn names(&self) -> Vec<String>;
    /// The tensor called `name`, handed over now (`None` if there is none).
    fn take(&mut self, name: &str) -> anyhow::Result<Option<NamedTensor>>;
}

impl TensorSource for Vec<NamedTensor> {
    fn names(&self) -> Vec<String> {
        self.iter().map(|t| t.name.clone()).collect()
    }
    fn take(&mut self, name: &str) -> anyhow::Result<Option<NamedTensor>> {
        Ok(self
            .iter()
            .position(|t| t.name == name)
            .map(|i| self.swap_remove(i)))
    }
}
