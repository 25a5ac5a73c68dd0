//! Tokenizers: the bundled GPT-2 BPE, any Hugging Face `tokenizer.json`, or a byte-level BPE
//! trained on the corpus (`train.rs`); plus a streaming decoder for the sampler (`stream.rs`).

use super::corpus::Document;
use super::tokenizer_meta::TokenizerMeta;
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;
use std::sync::Arc;
use tokenizers::Tokenizer;

mod stream;
mod train;
pub use stream::StreamDecoder;

/// The end-of-text token that separates documents (GPT-2 convention).
pub const EOT_TOKEN: &str = "<|endoftext|>";

/// End-of-sequence tokens tried, in order, when a tokenizer has no `<|endoftext|>`.
pub const EOT_FALLBACKS: &[&str] = &[
    EOT_TOKEN,
    "</s>",
    "<|im_end|>",
    "<eos>",
    "<|end_of_text|>",
    "<|eot_id|>",
    "<|end|>",
];

/// The GPT-2 tokenizer bundled in the binary, so `gpt2` works offline.
const GPT2_JSON: &[u8] = include_bytes!("../../data/gpt2/tokenizer.json");

/// A Hugging Face tokenizer plus its end-of-text id: the one text<->ids interface of the crate.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Arc<Tokenizer>,
    eot: u32,
    eot_token: String,
    /// Chat template and named special tokens carried from an HF model or a checkpoint;
    /// `None`: our own tokenizer, GPT-2 convention around the end-of-text token.
    meta: Option<Arc<TokenizerMeta>>,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("eot_token", &self.eot_token)
            .field("eot", &self.eot)
            .finish()
    }
}

impl TextTokenizer {
    /// The bundled GPT-2 byte-level BPE (50257 tokens, eot 50256), the default tokenizer.
    pub fn gpt2() -> Result<Self> {
        Self::from_json_bytes(GPT2_JSON, "built-in gpt2 tokenizer")
    }

    /// Loads any Hugging Face `tokenizer.json`, so pretrained vocabularies can be reused.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = crate::store::fsio::read_bounded(path, crate::store::fsio::MAX_METADATA_BYTES)
            .with_context(|| {
                format!(
                "cannot read tokenizer {}: check the path (expected a Hugging Face tokenizer.json)",
                path.display()
            )
            })?;
        Self::from_json_bytes(&bytes, &path.display().to_string())
    }

    /// Parses tokenizer JSON held in memory (e.g. one stored in a checkpoint); `origin`
    /// names it in error messages.
    pub fn from_json_bytes(bytes: &[u8], origin: &str) -> Result<Self> {
        let tok = Tokenizer::from_bytes(bytes).map_err(|e| {
            anyhow!(
                "tokenizer {origin} is not a valid Hugging Face tokenizer.json ({}): re-export it with tokenizers' save() or use gpt2 / train:<vocab>",
                one_line(&e.to_string())
            )
        })?;
        Self::from_tokenizer(tok, origin)
    }

    fn from_tokenizer(mut tok: Tokenizer, origin: &str) -> Result<Self> {
        // Encoding must be the raw token stream: no truncation, no padding.
        tok.with_truncation(None).map_err(|e| {
            anyhow!(
                "tokenizer {origin}: cannot disable truncation ({}): remove \"truncation\" from its JSON",
                one_line(&e.to_string())
            )
        })?;
        tok.with_padding(None);
        let (eot_token, eot) = EOT_FALLBACKS
            .iter()
            .find_map(|t| tok.token_to_id(t).map(|id| (t.to_string(), id)))
            .ok_or_else(|| {
                anyhow!(
                    "tokenizer {origin} has no end-of-text token (tried {}): add <|endoftext|> as a special token",
                    EOT_FALLBACKS.join(", ")
                )
            })?;
        Ok(Self {
            inner: Arc::new(tok),
            eot,
            eot_token,
            meta: None,
        })
    }

    /// Picks the tokenizer from a CLI/config spec: `gpt2`, `train:<vocab>` or a path to a
    /// tokenizer.json.
    pub fn resolve(spec: &str, docs: &[Document]) -> Result<Self> {
        if spec == "gpt2" {
            return Self::gpt2();
        }
        if let Some(n) = spec.strip_prefix("train:") {
            let vocab: usize = n.trim().parse().map_err(|_| {
                anyhow!(
                    "tokenizer spec {spec:?} has a bad vocab size: use train:<N>, e.g. train:4096"
                )
            })?;
            return Self::train_bpe(docs, vocab);
        }
        let path = Path::new(spec);
        if !path.is_file() {
            bail!("tokenizer {spec} not found: use gpt2, train:<vocab> (e.g. train:4096) or a path to a tokenizer.json");
        }
        Self::from_file(path)
    }

    /// Text to ids (no BOS/EOS insertion; special-token strings in the text map to their ids).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode_fast(text, false).map_err(|e| {
            anyhow!(
                "tokenizer failed to encode {} bytes of text ({}): check the tokenizer.json",
                text.len(),
                one_line(&e.to_string())
            )
        })?;
        Ok(enc.get_ids().to_vec())
    }

    /// Encodes many texts in parallel (tokenizers' own thread pool), for corpus preparation.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let encs = self
            .inner
            .encode_batch_fast(texts.to_vec(), false)
            .map_err(|e| {
                anyhow!(
                    "tokenizer failed to encode a batch of {} texts ({}): check the tokenizer.json",
                    texts.len(),
                    one_line(&e.to_string())
                )
            })?;
        Ok(encs.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// Ids to text (special tokens are kept visible); errors on ids outside the vocabulary.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let vocab = self.vocab_size();
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            bail!("token id {bad} is out of range for a vocabulary of {vocab}: the model and tokenizer do not match (use the checkpoint's tokenizer)");
        }
        self.inner.decode(ids, false).map_err(|e| {
            anyhow!(
                "tokenizer failed to decode {} ids ({}): check the tokenizer.json",
                ids.len(),
                one_line(&e.to_string())
            )
        })
    }

    /// Vocabulary size including added tokens: the model's embedding/output size.
    pub fn vocab_size(&self) -> usize {
        let n = self.inner.get_vocab_size(true);
        // Added tokens can sit past the model vocab; make sure every id fits.
        let max_added = self
            .inner
            .get_added_tokens_decoder()
            .keys()
            .map(|&id| id as usize + 1)
            .max()
            .unwrap_or(0);
        n.max(max_added)
    }

    /// Id of the end-of-text token, which precedes each document and stops sampling.
    pub fn eot_id(&self) -> u32 {
        self.eot
    }

    /// Use another token as end-of-text: a chat model's `config.json` may name `<|im_end|>`
    /// while its vocabulary also holds `<|endoftext|>`.
    pub fn with_eot_id(mut self, id: u32) -> Result<Self> {
        let Some(token) = self.inner.id_to_token(id) else {
            anyhow::bail!("eos_token_id {id} is not in the tokenizer's vocabulary");
        };
        self.eot = id;
        self.eot_token = token;
        Ok(self)
    }

    /// The chat template and special tokens this tokenizer carries (for our own tokenizers:
    /// bos = eos = unk = end-of-text, no template), for templates, checkpoints and export.
    pub fn meta(&self) -> TokenizerMeta {
        match &self.meta {
            Some(m) => (**m).clone(),
            None => TokenizerMeta::gpt2_style(&self.eot_token, self.eot),
        }
    }

    /// Carry `meta` (read from an HF directory or a checkpoint) from now on.
    pub fn with_meta(mut self, meta: TokenizerMeta) -> Self {
        self.meta = Some(Arc::new(meta));
        self
    }

    /// The model's own chat template (Jinja), if it carries one.
    pub fn chat_template(&self) -> Option<&str> {
        self.meta.as_ref()?.chat_template.as_deref()
    }

    /// Replace the chat template (an SFT run records the template it trains with).
    pub fn with_chat_template(self, source: Option<String>) -> Self {
        let mut meta = self.meta();
        meta.chat_template = source;
        self.with_meta(meta)
    }

    /// Whether generation stops at `id`: the end-of-text or any id of the model's stop list.
    pub fn is_stop(&self, id: u32) -> bool {
        id == self.eot || self.meta.as_ref().is_some_and(|m| m.stop_ids.contains(&id))
    }

    /// The end-of-text token's text (`<|endoftext|>` or a fallback such as `</s>`).
    pub fn eot_token(&self) -> &str {
        &self.eot_token
    }

    /// Writes the tokenizer as tokenizer.json, so shards and checkpoints stay decodable.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::store::fsio::write_atomic(path, self.to_json_string()?.as_bytes())
    }

    /// The tokenizer.json text, for embedding in checkpoints.
    pub fn to_json_string(&self) -> Result<String> {
        self.inner.to_string(false).map_err(|e| {
            anyhow!(
                "cannot serialise the tokenizer to JSON ({}): this tokenizer type is not supported, use gpt2 or train:<vocab>",
                one_line(&e.to_string())
            )
        })
    }

    /// The wrapped Hugging Face tokenizer, for anything this wrapper does not expose.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_docs() -> Vec<Document> {
        let text = &super::super::corpus::BUILTIN_SHAKESPEARE[..200_000];
        vec![Document {
            name: "sample".into(),
            text: text.to_string(),
        }]
    }

    #[test]
    fn gpt2_reference_ids() {
        let tok = TextTokenizer::gpt2().unwrap();
        assert_eq!(tok.vocab_size(), 50257);
        assert_eq!(tok.eot_id(), 50256);
        let ids = tok.encode("Hello, I am a language model,").unwrap();
        assert_eq!(ids, [15496, 11, 314, 716, 257, 3303, 2746, 11]);
        assert_eq!(tok.decode(&ids).unwrap(), "Hello, I am a language model,");
        assert_eq!(tok.encode("<|endoftext|>").unwrap(), [50256]);
    }

    #[test]
    fn round_trips() {
        let text = "To be, or not to be, that is the question:\n  Whether 'tis nobler — naïve café 東京 🎭\n\n";
        let gpt2 = TextTokenizer::gpt2().unwrap();
        assert_eq!(gpt2.decode(&gpt2.encode(text).unwrap()).unwrap(), text);
        let trained = TextTokenizer::train_bpe(&sample_docs(), 600).unwrap();
        assert_eq!(trained.vocab_size(), 600);
        assert_eq!(trained.eot_token(), EOT_TOKEN);
        let ids = trained.encode(text).unwrap();
        assert!(ids.iter().all(|&i| (i as usize) < 600));
        assert_eq!(trained.decode(&ids).unwrap(), text);
        assert!(trained.decode(&[600]).is_err());
    }

    #[test]
    fn train_bpe_is_deterministic() {
        let docs = sample_docs();
        let a = TextTokenizer::train_bpe(&docs, 800).unwrap();
        let b = TextTokenizer::train_bpe(&docs, 800).unwrap();
        assert_eq!(a.to_json_string().unwrap(), b.to_json_string().unwrap());
        // Save / reload gives the same tokenizer.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokenizer.json");
        a.save(&p).unwrap();
        let c = TextTokenizer::from_file(&p).unwrap();
        assert_eq!(a.to_json_string().unwrap(), c.to_json_string().unwrap());
        assert_eq!(c.eot_id(), a.eot_id());
    }

    #[test]
    fn stream_decoder_matches_decode() {
        let text = "naïve café — 東京 🎭 done";
        for tok in [
            TextTokenizer::gpt2().unwrap(),
            TextTokenizer::train_bpe(&sample_docs(), 400).unwrap(),
        ] {
            let ids = tok.encode(text).unwrap();
            let mut dec = StreamDecoder::new(&tok);
            let mut out = String::new();
            let mut pieces = 0;
            for &id in &ids {
                let piece = dec.push(id).unwrap();
                assert!(!piece.contains('\u{FFFD}'));
                if !piece.is_empty() {
                    pieces += 1;
                }
                out.push_str(&piece);
            }
            assert_eq!(out, tok.decode(&ids).unwrap());
            assert_eq!(out, text);
            assert!(pieces > 1);
        }
    }

    #[test]
    fn resolve_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(TextTokenizer::resolve("gpt2", &[]).unwrap().eot_id(), 50256);
        let msg = |r: Result<TextTokenizer>| format!("{:#}", r.unwrap_err());
        let m = msg(TextTokenizer::resolve("train:abc", &[]));
        assert!(m.contains("train:<N>") && !m.contains('\n'), "{m}");
        let m = msg(TextTokenizer::resolve("train:10", &sample_docs()));
        assert!(m.contains("out of range"), "{m}");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{not json").unwrap();
        let m = msg(TextTokenizer::resolve(bad.to_str().unwrap(), &[]));
        assert!(m.contains("bad.json") && !m.contains('\n'), "{m}");
        let m = msg(TextTokenizer::resolve("nope/tokenizer.json", &[]));
        assert!(m.contains("nope/tokenizer.json"), "{m}");
        // A tokenizer with </s> instead of <|endoftext|> falls back to it.
        let json = String::from_utf8(GPT2_JSON.to_vec())
            .unwrap()
            .replace("<|endoftext|>", "</s>");
        let t = TextTokenizer::from_json_bytes(json.as_bytes(), "x").unwrap();
        assert_eq!((t.eot_id(), t.eot_token()), (50256, "</s>"));
        let json = json.replace("</s>", "<nothing>");
        let m = msg(TextTokenizer::from_json_bytes(json.as_bytes(), "x.json"));
        assert!(m.contains("x.json") && m.contains("no end-of-text"), "{m}");
    }
}
