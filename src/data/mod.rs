//! Data pipeline: text corpora, tokenizers, uint16/uint32 `.npy` token shards and the batch
//! loader.

pub mod batch;
pub mod chat_template;
pub mod corpus;
pub mod loader;
pub mod npy;
pub mod permute;
pub mod prep_cache;
pub mod prepare;
pub mod probe;
pub mod sft;
pub mod sft_loader;
pub mod shards;
pub mod template;
pub mod tokenizer;
pub mod tokenizer_meta;
pub mod windows;
