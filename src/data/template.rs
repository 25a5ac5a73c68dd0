//! Which chat template a run or command uses (the built-in vicuna / chatml / plain, or the
//! model's own `chat_template`) and how a conversation becomes masked prompt and trained reply
//! segments, rendered prefix by prefix so response-only masking stays exact over many turns.

use super::chat_template::{
    ChatMessage, ChatTemplate, TemplateTokens, CHATML_JINJA, PLAIN_JINJA, VICUNA_JINJA,
};
use super::sft::{Conversation, Message};
use super::tokenizer::TextTokenizer;
use anyhow::{bail, Result};

/// The names `sft.template` and `--template` accept.
pub const TEMPLATE_NAMES: &str = "auto, model, vicuna, chatml or plain";

/// A piece of rendered text and whether the model is trained to produce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub text: String,
    pub trained: bool,
}

/// A chat template chosen by name and bound to a tokenizer's special tokens.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    chat: ChatTemplate,
}

/// Refuse a template name before any data is read (config validation).
pub fn check_name(name: &str) -> Result<()> {
    match name {
        "auto" | "model" | "vicuna" | "vicuna_v1.1" | "chatml" | "plain" => Ok(()),
        other => bail!("sft.template = {other}: expected {TEMPLATE_NAMES}"),
    }
}

impl Template {
    /// Resolve `name` against `tok`: `model` is the tokenizer's own chat template, `auto` that
    /// one when it carries one and vicuna otherwise; `vicuna`, `chatml`, `plain` are built in.
    pub fn resolve(name: &str, tok: &TextTokenizer) -> Result<Self> {
        check_name(name)?;
        let (name, source) = match (name, tok.chat_template()) {
            ("model" | "auto", Some(own)) => ("model", own.to_string()),
            ("model", None) => bail!(
                "sft.template = model: the tokenizer carries no chat_template; use vicuna, chatml or plain"
            ),
            ("auto" | "vicuna" | "vicuna_v1.1", _) => ("vicuna", VICUNA_JINJA.to_string()),
            ("chatml", _) => ("chatml", CHATML_JINJA.to_string()),
            _ => ("plain", PLAIN_JINJA.to_string()),
        };
        if name == "chatml" {
            for t in ["<|im_start|>", "<|im_end|>"] {
                if tok.inner().token_to_id(t).is_none() {
                    bail!("sft.template = chatml needs the token {t}, which this tokenizer lacks; use vicuna or plain");
                }
            }
        }
        let meta = tok.meta();
        let eos = meta
            .eos
            .as_ref()
            .map_or(tok.eot_token().to_string(), |t| t.content.clone());
        if name != "model"
            && tok.encode(&eos)? != [tok.inner().token_to_id(&eos).unwrap_or(u32::MAX)]
        {
            bail!("sft.template = {name} ends replies with {eos:?}, which this tokenizer does not encode as one special token; use the model's template");
        }
        let tokens = TemplateTokens {
            bos: meta.bos.map(|t| t.content),
            eos: Some(eos),
            pad: meta.pad.map(|t| t.content),
            unk: meta.unk.map(|t| t.content),
        };
        let origin = format!("chat template `{name}`");
        Ok(Self {
            name: name.to_string(),
            chat: ChatTemplate::new(&source, tokens, &origin)?,
        })
    }

    /// `vicuna`, `chatml`, `plain` or `model`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Jinja source (what a checkpoint and an export carry as `chat_template`).
    pub fn source(&self) -> &str {
        self.chat.source()
    }

    /// The whole conversation as text, with the assistant's opening when asked.
    pub fn render_text(&self, conv: &Conversation, add_generation_prompt: bool) -> Result<String> {
        self.chat
            .render(&messages(conv, conv.turns.len()), add_generation_prompt)
    }

    /// Render a conversation into masked prompt and trained reply segments. Each assistant
    /// turn is the text its full rendering adds to the rendering that asks for it (with the
    /// generation prompt), trailing whitespace left to the prompt; a template that rewrites
    /// earlier text when a turn is added is refused, since no exact mask exists for it.
    pub fn render(&self, conv: &Conversation) -> Result<Vec<Segment>> {
        let mut out = Vec::new();
        let mut done = String::new();
        for (i, m) in conv.turns.iter().enumerate() {
            if m.role != "assistant" {
                continue;
            }
            let asked = self.chat.render(&messages(conv, i), true)?;
            let full = self.chat.render(&messages(conv, i + 1), false)?;
            let (Some(prompt), Some(reply)) = (
                asked.strip_prefix(done.as_str()),
                full.strip_prefix(asked.as_str()),
            ) else {
                bail!(
                    "chat template `{}` changes earlier text when assistant turn {} is added; response-only masking needs a template that renders turn by turn",
                    self.name,
                    i + 1
                );
            };
            let reply = reply.trim_end();
            out.push(Segment {
                text: prompt.to_string(),
                trained: false,
            });
            out.push(Segment {
                text: reply.to_string(),
                trained: true,
            });
            done = format!("{asked}{reply}");
        }
        let whole = self.render_text(conv, false)?;
        let Some(rest) = whole.strip_prefix(done.as_str()) else {
            bail!("chat template `{}` renders the whole conversation differently from its turns; response-only masking needs a template that renders turn by turn", self.name);
        };
        out.push(Segment {
            text: rest.to_string(),
            trained: false,
        });
        out.retain(|s| !s.text.is_empty());
        Ok(out)
    }

    /// The prompt text for one user message, ending where the reply starts; the prompt pane,
    /// `sample` and multiple-choice evaluation use it.
    pub fn prompt_for(&self, user: &str) -> Result<String> {
        self.chat.render(
            &[ChatMessage {
                role: "user",
                content: user,
            }],
            true,
        )
    }

    /// Text between the prompt and a reply's first character (vicuna: " "), so multiple-choice
    /// answers are scored as the model saw replies in training.
    pub fn answer_prefix(&self) -> Result<String> {
        const MARK: &str = "\u{E000}";
        let user = ChatMessage {
            role: "user",
            content: "?",
        };
        let asked = self.chat.render(std::slice::from_ref(&user), true)?;
        let full = self.chat.render(
            &[
                user,
                ChatMessage {
                    role: "assistant",
                    content: MARK,
                },
            ],
            false,
        )?;
        match full
            .strip_prefix(asked.as_str())
            .and_then(|r| r.split_once(MARK))
        {
            Some((prefix, _)) => Ok(prefix.to_string()),
            None => bail!(
                "chat template `{}` does not render a reply after its generation prompt",
                self.name
            ),
        }
    }
}

/// The first `turns` turns of a conversation, its system prompt first, as a template sees them.
fn messages(conv: &Conversation, turns: usize) -> Vec<ChatMessage<'_>> {
    let system = conv.system.as_deref().map(|s| ChatMessage {
        role: "system",
        content: s,
    });
    system
        .into_iter()
        .chain(
            conv.turns[..turns]
                .iter()
                .map(|Message { role, content }| ChatMessage { role, content }),
        )
        .collect()
}

/// The tokenizer an SFT run trains and checkpoints with: it carries the run's template (for
/// `sample` and `export`), and a `chatml` run also stops generating at `<|im_end|>`, which
/// ends its replies even where end-of-text is another token.
pub fn carrying(tok: TextTokenizer, template: &Template) -> TextTokenizer {
    let mut meta = tok.meta();
    meta.chat_template = Some(template.source().to_string());
    if template.name() == "chatml" {
        if let Some(id) = tok.inner().token_to_id("<|im_end|>") {
            if meta.stop_ids.is_empty() {
                meta.stop_ids.push(tok.eot_id());
            }
            if !meta.stop_ids.contains(&id) {
                meta.stop_ids.push(id);
            }
        }
    }
    tok.with_meta(meta)
}

/// The template prompts are wrapped in (sample, the prompt pane, eval): an SFT run's
/// `sft.template`, else the model's own chat template when its tokenizer carries one, else
/// none (the prompt is sent as typed).
pub fn prompt_template(
    config: &crate::config::RunConfig,
    tok: &TextTokenizer,
) -> Result<Option<Template>> {
    if config.is_sft() {
        return Template::resolve(&config.sft.template, tok).map(Some);
    }
    match tok.chat_template() {
        Some(_) => Template::resolve("model", tok).map(Some),
        None => Ok(None),
    }
}
