//! Instruction data for supervised fine-tuning: Alpaca and chat JSONL, the Vicuna 1.1, ChatML
//! and plain templates, and rows whose loss mask covers exactly the response tokens.

use super::tokenizer::TextTokenizer;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::Path;

/// Vicuna 1.1's system prompt (the seed's chat format).
pub const VICUNA_SYSTEM: &str = "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";

/// How a conversation becomes text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    Vicuna,
    ChatMl,
    Plain,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// A parsed example: optional system prompt then alternating user/assistant turns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub system: Option<String>,
    pub turns: Vec<Message>,
}

/// A piece of rendered text and whether the model is trained to produce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub text: String,
    pub trained: bool,
    /// Append the end-of-text token after this segment (trained with it).
    pub eot_after: bool,
}

impl Template {
    /// Parse a config name: `vicuna`, `chatml` or `plain`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "vicuna" | "vicuna_v1.1" => Ok(Self::Vicuna),
            "chatml" => Ok(Self::ChatMl),
            "plain" => Ok(Self::Plain),
            other => bail!("sft.template = {other}: expected vicuna, chatml or plain"),
        }
    }

    /// Fail early when the tokenizer lacks the template's special tokens.
    pub fn check_tokenizer(&self, tok: &TextTokenizer) -> Result<()> {
        if *self == Self::ChatMl {
            for t in ["<|im_start|>", "<|im_end|>"] {
                if tok.inner().token_to_id(t).is_none() {
                    bail!("sft.template = chatml needs the token {t}, which this tokenizer lacks; use vicuna or plain");
                }
            }
        }
        Ok(())
    }

    /// Render a conversation into masked and trained segments.
    pub fn render(&self, conv: &Conversation) -> Vec<Segment> {
        let mut out = Vec::new();
        let prompt = |text: String| Segment {
            text,
            trained: false,
            eot_after: false,
        };
        match self {
            Self::Vicuna => {
                let system = conv.system.as_deref().unwrap_or(VICUNA_SYSTEM);
                let mut pending = format!("{system} ");
                for m in &conv.turns {
                    if m.role == "assistant" {
                        pending.push_str("ASSISTANT:");
                        out.push(prompt(std::mem::take(&mut pending)));
                        out.push(Segment {
                            text: format!(" {}", m.content),
                            trained: true,
                            eot_after: true,
                        });
                    } else {
                        pending.push_str(&format!("USER: {} ", m.content));
                    }
                }
                if !pending.is_empty() && pending != format!("{system} ") {
                    out.push(prompt(pending));
                }
            }
            Self::ChatMl => {
                let mut pending = conv
                    .system
                    .as_ref()
                    .map(|s| format!("<|im_start|>system\n{s}<|im_end|>\n"))
                    .unwrap_or_default();
                for m in &conv.turns {
                    if m.role == "assistant" {
                        pending.push_str("<|im_start|>assistant\n");
                        out.push(prompt(std::mem::take(&mut pending)));
                        out.push(Segment {
                            text: format!("{}<|im_end|>", m.content),
                            trained: true,
                            eot_after: false,
                        });
                        pending.push('\n');
                    } else {
                        pending.push_str(&format!(
                            "<|im_start|>{}\n{}<|im_end|>\n",
                            m.role, m.content
                        ));
                    }
                }
            }
            Self::Plain => {
                let mut pending = conv
                    .system
                    .as_ref()
                    .map(|s| format!("{s}\n"))
                    .unwrap_or_default();
                for m in &conv.turns {
                    if m.role == "assistant" {
                        out.push(prompt(std::mem::take(&mut pending)));
                        out.push(Segment {
                            text: m.content.clone(),
                            trained: true,
                            eot_after: true,
                        });
                    } else {
                        pending.push_str(&format!("{}\n", m.content));
                    }
                }
            }
        }
        out.retain(|s| !s.text.is_empty() || s.eot_after);
        out
    }

    /// The prompt text for one user message, ending where the reply starts; the prompt pane
    /// and multiple-choice evaluation use it.
    pub fn prompt_for(&self, user: &str) -> String {
        let conv = Conversation {
            system: None,
            turns: vec![
                Message {
                    role: "user".into(),
                    content: user.into(),
                },
                Message {
                    role: "assistant".into(),
                    content: String::new(),
                },
            ],
        };
        self.render(&conv)
            .into_iter()
            .filter(|s| !s.trained)
            .map(|s| s.text)
            .collect()
    }

    /// Text before a model answer in multiple-choice scoring (Vicuna answers start with " ").
    pub fn answer_prefix(&self) -> &'static str {
        match self {
            Self::Vicuna => " ",
            _ => "",
        }
    }
}

/// What parsing a JSONL file found, for the run summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseReport {
    pub lines: usize,
    pub examples: usize,
    /// (1-based line number, reason) of skipped lines.
    pub skipped: Vec<(usize, String)>,
}

fn parse_line(v: &Value) -> std::result::Result<Conversation, String> {
    if let Some(msgs) = v.get("messages").and_then(Value::as_array) {
        let mut system = None;
        let mut turns = Vec::new();
        for m in msgs {
            let role = m
                .get("role")
                .and_then(Value::as_str)
                .ok_or("message without a role")?;
            let content = m
                .get("content")
                .and_then(Value::as_str)
                .ok_or("message without content")?;
            match role {
                "system" if turns.is_empty() => system = Some(content.to_string()),
                "user" | "assistant" => turns.push(Message {
                    role: role.into(),
                    content: content.into(),
                }),
                other => return Err(format!("unknown role `{other}`")),
            }
        }
        if !turns
            .iter()
            .any(|m| m.role == "assistant" && !m.content.trim().is_empty())
        {
            return Err("no non-empty assistant message".into());
        }
        return Ok(Conversation { system, turns });
    }
    let instruction = v
        .get("instruction")
        .and_then(Value::as_str)
        .ok_or("neither `messages` nor `instruction`")?;
    let output = v
        .get("output")
        .and_then(Value::as_str)
        .ok_or("missing `output`")?;
    if output.trim().is_empty() {
        return Err("empty output".into());
    }
    let input = v.get("input").and_then(Value::as_str).unwrap_or("");
    let user = if input.is_empty() {
        instruction.to_string()
    } else {
        format!("{instruction}\n{input}")
    };
    Ok(Conversation {
        system: None,
        turns: vec![
            Message {
                role: "user".into(),
                content: user,
            },
            Message {
                role: "assistant".into(),
                content: output.into(),
            },
        ],
    })
}

/// Parse Alpaca (`instruction`, `input`, `output`) or chat (`messages`) JSONL. Bad lines are
/// skipped and reported with their line numbers, or stop the parse when `skip_bad` is false.
pub fn parse_jsonl(path: &Path, skip_bad: bool) -> Result<(Vec<Conversation>, ParseReport)> {
    let bytes = crate::store::fsio::read_bounded(path, super::npy::MAX_DATA_FILE_BYTES)
        .with_context(|| format!("cannot read instruction data {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not UTF-8 (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    let mut report = ParseReport::default();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        report.lines += 1;
        let parsed = serde_json::from_str::<Value>(line)
            .map_err(|e| format!("invalid JSON ({e})"))
            .and_then(|v| parse_line(&v));
        match parsed {
            Ok(c) => out.push(c),
            Err(reason) if skip_bad => report.skipped.push((i + 1, reason)),
            Err(reason) => bail!(
                "{}:{}: {reason}; fix the line or set sft.skip_bad_lines = true",
                path.display(),
                i + 1
            ),
        }
    }
    report.examples = out.len();
    if out.is_empty() {
        bail!(
            "{}: no usable examples ({} lines, {} skipped)",
            path.display(),
            report.lines,
            report.skipped.len()
        );
    }
    Ok((out, report))
}

/// Token ids of a conversation and, per token, whether it is a trained (response) token.
pub fn tokenize(
    conv: &Conversation,
    template: Template,
    tok: &TextTokenizer,
) -> Result<(Vec<u32>, Vec<bool>)> {
    let mut ids = Vec::new();
    let mut trained = Vec::new();
    for seg in template.render(conv) {
        let piece = tok.encode(&seg.text)?;
        trained.extend(std::iter::repeat_n(seg.trained, piece.len()));
        ids.extend(piece);
        if seg.eot_after {
            ids.push(tok.eot_id());
            trained.push(true);
        }
    }
    Ok((ids, trained))
}

/// One training row: `seq + 1` tokens and a loss mask over its `seq` targets.
#[derive(Debug, Clone, PartialEq)]
pub struct SftRow {
    pub tokens: Vec<u32>,
    pub mask: Vec<f32>,
}

/// Rows ready for training plus what building them did.
#[derive(Debug, Clone, PartialEq)]
pub struct SftData {
    pub train: Vec<SftRow>,
    pub val: Vec<SftRow>,
    pub report: ParseReport,
    /// Examples longer than one row, cut to fit (padding mode only).
    pub truncated: usize,
    pub response_tokens: usize,
}

fn rows_padded(
    examples: &[(Vec<u32>, Vec<bool>)],
    seq: usize,
    pad: u32,
    truncated: &mut usize,
) -> Vec<SftRow> {
    examples
        .iter()
        .map(|(ids, trained)| {
            if ids.len() > seq + 1 {
                *truncated += 1;
            }
            let n = ids.len().min(seq + 1);
            let mut tokens = ids[..n].to_vec();
            tokens.resize(seq + 1, pad);
            let mask = (0..seq)
                .map(|t| {
                    if t + 1 < n && trained[t + 1] {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect();
            SftRow { tokens, mask }
        })
        .collect()
}

fn rows_packed(examples: &[(Vec<u32>, Vec<bool>)], seq: usize) -> Vec<SftRow> {
    let ids: Vec<u32> = examples
        .iter()
        .flat_map(|(i, _)| i.iter().copied())
        .collect();
    let trained: Vec<bool> = examples
        .iter()
        .flat_map(|(_, t)| t.iter().copied())
        .collect();
    let mut rows = Vec::new();
    let mut start = 0;
    while start + seq < ids.len() {
        let tokens = ids[start..start + seq + 1].to_vec();
        let mask = (0..seq)
            .map(|t| if trained[start + t + 1] { 1.0 } else { 0.0 })
            .collect();
        rows.push(SftRow { tokens, mask });
        start += seq;
    }
    rows
}

/// Build train and held-out rows: every `1/val_fraction`-th example (deterministic) is held
/// out; rows are packed across examples or padded one example per row.
pub fn build(
    convs: &[Conversation],
    report: ParseReport,
    template: Template,
    tok: &TextTokenizer,
    seq: usize,
    pack: bool,
    val_fraction: f64,
) -> Result<SftData> {
    template.check_tokenizer(tok)?;
    let stride = if val_fraction > 0.0 {
        (1.0 / val_fraction).round().max(2.0) as usize
    } else {
        usize::MAX
    };
    let (mut train_ex, mut val_ex) = (Vec::new(), Vec::new());
    for (i, c) in convs.iter().enumerate() {
        let ex = tokenize(c, template, tok)?;
        if stride != usize::MAX && i % stride == stride - 1 {
            val_ex.push(ex);
        } else {
            train_ex.push(ex);
        }
    }
    let mut truncated = 0;
    let (mut train, mut val) = if pack {
        (rows_packed(&train_ex, seq), rows_packed(&val_ex, seq))
    } else {
        (
            rows_padded(&train_ex, seq, tok.eot_id(), &mut truncated),
            rows_padded(&val_ex, seq, tok.eot_id(), &mut truncated),
        )
    };
    // A row without response targets teaches nothing (it is all prompt).
    let has_targets = |r: &SftRow| r.mask.iter().any(|m| *m > 0.0);
    train.retain(has_targets);
    val.retain(has_targets);
    if train.is_empty() {
        bail!("instruction data yields no training rows of {} tokens; add examples or lower train.seq_len", seq + 1);
    }
    let response_tokens = train
        .iter()
        .map(|r| r.mask.iter().filter(|m| **m > 0.0).count())
        .sum();
    Ok(SftData {
        train,
        val,
        report,
        truncated,
        response_tokens,
    })
}

/// Held-out examples of a conversation list, the same split `build` makes (for evaluation).
pub fn held_out(convs: &[Conversation], val_fraction: f64) -> Vec<Conversation> {
    if val_fraction <= 0.0 {
        return Vec::new();
    }
    let stride = (1.0 / val_fraction).round().max(2.0) as usize;
    convs
        .iter()
        .enumerate()
        .filter(|(i, _)| i % stride == stride - 1)
        .map(|(_, c)| c.clone())
        .collect()
}

#[cfg(test)]
#[path = "sft_tests.rs"]
mod tests;
