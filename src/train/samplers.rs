//! Sampler threads of the engine: each sample runs on a snapshot of the weights in its own
//! thread, so sampling never blocks or changes training; cancellable by request id.

use super::emitter::Emitter;
use crate::data::sft::Template;
use crate::data::tokenizer::TextTokenizer;
use crate::model::Llama;
use crate::protocol::{Event, SampleParams};
use crate::sample::generate;
use anyhow::Result;
use burn::tensor::backend::Backend;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Sampler threads in flight, by request id, with their cancel flags.
#[derive(Default)]
pub(super) struct Samplers(HashMap<u64, Arc<AtomicBool>>);

impl Samplers {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start<B: Backend>(
        &mut self,
        template: Result<Option<Template>>,
        id: u64,
        prompt: String,
        params: SampleParams,
        model: Llama<B>,
        tokenizer: TextTokenizer,
        step: u64,
        out: &Emitter,
    ) {
        self.0.retain(|_, flag| Arc::strong_count(flag) > 1);
        let cancel = Arc::new(AtomicBool::new(false));
        self.0.insert(id, cancel.clone());
        let out = out.clone();
        std::thread::spawn(move || {
            let stream = out.clone();
            let model_prompt = match template {
                Ok(Some(t)) => t.prompt_for(&prompt),
                Ok(None) => Ok(prompt.clone()),
                Err(e) => Err(e),
            };
            let result = model_prompt.and_then(|model_prompt| {
                generate(
                    &model,
                    &tokenizer,
                    &model_prompt,
                    &params,
                    &cancel,
                    |piece| {
                        stream.emit(Event::SampleToken {
                            step,
                            id,
                            text: piece.to_string(),
                        });
                    },
                )
            });
            match result {
                Ok(g) => out.emit(Event::SampleDone {
                    step,
                    id,
                    prompt,
                    text: g.text,
                    tokens: g.tokens as u64,
                    tokens_per_s: g.tokens_per_s,
                }),
                Err(e) => out.emit(Event::SampleDone {
                    step,
                    id,
                    prompt,
                    text: format!("[sampling failed: {e:#}]"),
                    tokens: 0,
                    tokens_per_s: 0.0,
                }),
            };
            drop(cancel);
        });
    }

    pub(super) fn cancel(&mut self, id: u64) {
        if let Some(flag) = self.0.remove(&id) {
            flag.store(true, Ordering::Relaxed);
        }
    }

    pub(super) fn cancel_all(&mut self) {
        for (_, flag) in self.0.drain() {
            flag.store(true, Ordering::Relaxed);
        }
    }
}
