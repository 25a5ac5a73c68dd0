//! `llite-tui template`: render one conversation through a model's chat template and report
//! the text and token ids, so `benches/reference/chat_template_check.py` can compare them with
//! transformers' `apply_chat_template` on an exported directory.

use crate::data::sft::{self, tokenize, Conversation, Message};
use crate::data::template::Template;
use crate::data::tokenizer::TextTokenizer;
use crate::store::checkpoint::tokenizer_of_dir;
use crate::store::digest::verify_file;
use crate::store::fsio::{read_bounded_string, MAX_METADATA_BYTES};
use crate::store::layout::TRAINER_FILE;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::path::Path;

/// The tokenizer of a checkpoint (its small files verified against `trainer.json`) or of an
/// HF model directory; no weights are read.
pub fn tokenizer_for(dir: &Path) -> Result<TextTokenizer> {
    if dir.join(TRAINER_FILE).is_file() {
        let inspected = crate::store::listing::inspect_checkpoint(dir)?;
        for (file, digest) in inspected.record.files.iter().flatten() {
            if !file.ends_with(".safetensors") {
                verify_file(&dir.join(file), digest)?;
            }
        }
    } else if !dir.join("tokenizer.json").is_file() {
        bail!(
            "{}: neither a checkpoint (trainer.json) nor a model directory with a tokenizer.json",
            dir.display()
        );
    }
    tokenizer_of_dir(dir)
}

/// Read a conversation: a JSON list of `{role, content}` or an object with `messages`.
pub fn read_conversation(path: &Path) -> Result<Conversation> {
    let text = read_bounded_string(path, MAX_METADATA_BYTES)?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))?;
    let v = match v {
        Value::Array(_) => json!({ "messages": v }),
        other => other,
    };
    let conv = sft::parse_line(&v).or_else(|why| {
        // A prompt-only conversation (ends with the user) is fine for rendering.
        let msgs = v
            .get("messages")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("{}: {why}", path.display()))?;
        let mut conv = Conversation {
            system: None,
            turns: Vec::new(),
        };
        for m in msgs {
            let field = |k: &str| m.get(k).and_then(Value::as_str).map(String::from);
            match (field("role"), field("content")) {
                (Some(r), Some(c)) if r == "system" && conv.turns.is_empty() => {
                    conv.system = Some(c)
                }
                (Some(role), Some(content)) if role == "user" || role == "assistant" => {
                    conv.turns.push(Message { role, content })
                }
                _ => bail!("{}: {why}", path.display()),
            }
        }
        Ok::<_, anyhow::Error>(conv)
    })?;
    Ok(conv)
}

/// Render `conv` with `template` (a name, or the model's own / none as `sample` chooses) and
/// report `{template, text, ids}`, plus the SFT tokenization (`sft_ids`, `trained`) when the
/// conversation has an assistant turn.
pub fn render_report(
    tok: &TextTokenizer,
    template: Option<&str>,
    conv: &Conversation,
    add_generation_prompt: bool,
) -> Result<Value> {
    let template = match template {
        Some(name) => Template::resolve(name, tok)?,
        None if tok.chat_template().is_some() => Template::resolve("model", tok)?,
        None => {
            bail!("this model carries no chat template; pass --template vicuna, chatml or plain")
        }
    };
    let text = template.render_text(conv, add_generation_prompt)?;
    let ids = tok.encode(&text)?;
    let mut report = json!({"template": template.name(), "text": text, "ids": ids});
    if conv.turns.iter().any(|m| m.role == "assistant") && !add_generation_prompt {
        let (sft_ids, trained) = tokenize(conv, &template, tok)?;
        report["sft_ids"] = json!(sft_ids);
        report["trained"] = json!(trained.iter().map(|&t| t as u8).collect::<Vec<_>>());
    }
    Ok(report)
}

/// `llite-tui template`: the report of [`render_report`] for `model`'s tokenizer and the
/// conversation in `messages`, printed as one JSON line.
pub fn print_report(
    model: &Path,
    messages: &Path,
    template: Option<&str>,
    add_generation_prompt: bool,
) -> Result<()> {
    let tok = tokenizer_for(model)?;
    let conv = read_conversation(messages)?;
    let report = render_report(&tok, template, &conv, add_generation_prompt)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
