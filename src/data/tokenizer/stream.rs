//! The sampler's streaming detokenizer: text out as soon as whole characters are decoded.

use super::TextTokenizer;
use anyhow::Result;

/// Incremental detokenizer for the sampler: turns ids into text as soon as whole UTF-8
/// characters are available.
#[derive(Debug, Clone)]
pub struct StreamDecoder {
    tok: TextTokenizer,
    /// Context ids (already emitted) followed by pending ids (not yet emitted).
    ids: Vec<u32>,
    /// How many leading `ids` are context.
    context: usize,
    /// Decoded text of the context ids.
    prefix: String,
}

impl StreamDecoder {
    /// Starts an empty stream (cheap: shares the tokenizer).
    pub fn new(tok: &TextTokenizer) -> Self {
        Self {
            tok: tok.clone(),
            ids: Vec::new(),
            context: 0,
            prefix: String::new(),
        }
    }

    /// Adds one id and returns the newly completed text (empty while a multi-byte character
    /// is still incomplete).
    pub fn push(&mut self, id: u32) -> Result<String> {
        self.ids.push(id);
        let text = self.tok.decode(&self.ids)?;
        if text.len() <= self.prefix.len() || text.ends_with('\u{FFFD}') {
            return Ok(String::new());
        }
        let new = match text.strip_prefix(self.prefix.as_str()) {
            Some(rest) => rest.to_string(),
            None => {
                // Decoder changed earlier text; emit from the first differing character.
                let common = text
                    .char_indices()
                    .zip(self.prefix.chars())
                    .find(|((_, a), b)| a != b)
                    .map_or(self.prefix.len().min(text.len()), |((i, _), _)| i);
                text.get(common..).unwrap_or_default().to_string()
            }
        };
        // The just-emitted ids become the context for the next piece (bounded window).
        self.ids.drain(..self.context);
        self.context = self.ids.len();
        self.prefix = self.tok.decode(&self.ids)?;
        Ok(new)
    }
}
