//! Instruction data for supervised fine-tuning: Alpaca and chat JSONL, rendered through a
//! chat template (`super::template`), and rows whose loss mask covers exactly the response tokens.

pub use super::template::{Segment, Template};
use super::tokenizer::TextTokenizer;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::Path;

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

/// What parsing a JSONL file found, for the run summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseReport {
    pub lines: usize,
    pub examples: usize,
    /// (1-based line number, reason) of skipped lines.
    pub skipped: Vec<(usize, String)>,
}

/// One example (`{"messages": [...]}` chat or Alpaca `{instruction, input, output}`) as a
/// conversation, or why it is not one.
pub fn parse_line(v: &Value) -> std::result::Result<Conversation, String> {
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
    template: &Template,
    tok: &TextTokenizer,
) -> Result<(Vec<u32>, Vec<bool>)> {
    let mut ids = Vec::new();
    let mut trained = Vec::new();
    for seg in template.render(conv)? {
        let piece = tok.encode(&seg.text)?;
        trained.extend(std::iter::repeat_n(seg.trained, piece.len()));
        ids.extend(piece);
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
    template: &Template,
    tok: &TextTokenizer,
    seq: usize,
    pack: bool,
    val_fraction: f64,
) -> Result<SftData> {
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
