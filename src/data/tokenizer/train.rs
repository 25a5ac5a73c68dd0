//! Training a byte-level BPE (GPT-2 style) on the corpus, for `train:<vocab>` tokenizers.

use super::{one_line, TextTokenizer, EOT_TOKEN};
use crate::data::corpus::Document;
use anyhow::{anyhow, bail, Result};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    AddedToken, DecoderWrapper, ModelWrapper, NormalizerWrapper, PostProcessorWrapper,
    PreTokenizerWrapper, Tokenizer, TokenizerImpl,
};

/// Smallest trainable vocabulary: 256 byte symbols plus the end-of-text token.
const MIN_TRAIN_VOCAB: usize = 257;

impl TextTokenizer {
    /// Trains a deterministic byte-level BPE (GPT-2 style) on the corpus, for small
    /// vocabularies matched to the data.
    pub fn train_bpe(docs: &[Document], vocab_size: usize) -> Result<Self> {
        if docs.is_empty() {
            bail!("cannot train a BPE tokenizer on an empty corpus: pass at least one non-empty document");
        }
        if !(MIN_TRAIN_VOCAB..=1 << 24).contains(&vocab_size) {
            bail!(
                "BPE vocab size {vocab_size} is out of range: use train:<N> with {MIN_TRAIN_VOCAB} <= N <= 16777216 (256 bytes + <|endoftext|> at least; shards are uint16 up to 65536, uint32 above)"
            );
        }
        let trainer = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(0)
            .show_progress(false)
            .special_tokens(vec![AddedToken::from(EOT_TOKEN, true)])
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        let mut trainer = TrainerWrapper::BpeTrainer(trainer);
        let mut imp: TokenizerImpl<
            ModelWrapper,
            NormalizerWrapper,
            PreTokenizerWrapper,
            PostProcessorWrapper,
            DecoderWrapper,
        > = TokenizerImpl::new(ModelWrapper::BPE(BPE::default()));
        imp.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        imp.with_decoder(Some(ByteLevelDecoder::default()));
        imp.train(&mut trainer, docs.iter().map(|d| d.text.as_str()))
            .map_err(|e| {
                anyhow!(
                    "BPE training failed on a corpus of {} documents ({}): check the corpus text or pick another vocab size",
                    docs.len(),
                    one_line(&e.to_string())
                )
            })?;
        Self::from_tokenizer(Tokenizer::from(imp), "trained BPE")
    }
}
