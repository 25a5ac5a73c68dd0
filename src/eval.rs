//! `llite-tui eval`: perplexity on text or held-out shards, and multiple-choice accuracy by
//! log-likelihood (acc, and acc_norm normalised by answer length in characters, the seed's
//! HellaSwag method). Formats: HellaSwag `{context, endings, label}`, MMLU-style
//! `{question, choices, answer}`, and Alpaca instruction data whose instruction has a small set
//! of answers (the bundled "Which work of Shakespeare contains this line?").

use crate::data::loader::eval_batches;
use crate::data::sft::{self, Template};
use crate::data::tokenizer::TextTokenizer;
use crate::model::params::tensor_to_vec;
use crate::model::Llama;
use anyhow::{bail, Context, Result};
use burn::tensor::backend::Backend;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

mod score;
pub use score::{score_choices, score_choices_unshared};

/// One multiple-choice question: the answer is scored as a continuation of the context.
#[derive(Debug, Clone, PartialEq)]
pub struct McItem {
    pub context: String,
    pub choices: Vec<String>,
    pub label: usize,
}

fn argmax(v: impl Iterator<Item = f64>) -> usize {
    v.enumerate()
        .fold(
            (0, f64::NEG_INFINITY),
            |b, (i, x)| if x > b.1 { (i, x) } else { b },
        )
        .0
}

/// acc and acc_norm over items.
pub fn multiple_choice<B: Backend>(
    model: &Llama<B>,
    tok: &TextTokenizer,
    items: &[McItem],
) -> Result<BTreeMap<String, f64>> {
    multiple_choice_with(model, tok, items, &mut |_| {})
}

/// [`multiple_choice`], calling `done(n)` after each of the n questions scored so far (the
/// CLI's progress bar).
pub fn multiple_choice_with<B: Backend>(
    model: &Llama<B>,
    tok: &TextTokenizer,
    items: &[McItem],
    done: &mut dyn FnMut(usize),
) -> Result<BTreeMap<String, f64>> {
    let (mut acc, mut acc_norm) = (0usize, 0usize);
    for (i, item) in items.iter().enumerate() {
        let scores = score_choices(model, tok, &item.context, &item.choices)
            .with_context(|| format!("question {}", i + 1))?;
        acc += (argmax(scores.iter().map(|s| s.0)) == item.label) as usize;
        acc_norm += (argmax(scores.iter().map(|s| s.0 / s.1 as f64)) == item.label) as usize;
        done(i + 1);
    }
    let n = items.len().max(1) as f64;
    let chance = items
        .iter()
        .map(|i| 1.0 / i.choices.len() as f64)
        .sum::<f64>()
        / n;
    Ok(BTreeMap::from([
        ("acc".into(), acc as f64 / n),
        ("acc_norm".into(), acc_norm as f64 / n),
        ("chance".into(), chance),
        ("n".into(), items.len() as f64),
    ]))
}

fn answer_index(v: &Value, n: usize) -> Option<usize> {
    let i = v
        .as_u64()
        .map(|x| x as usize)
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .or_else(|| {
            let s = v.as_str()?.trim();
            let c = s.chars().next()?;
            (s.len() == 1 && c.is_ascii_uppercase()).then(|| (c as u8 - b'A') as usize)
        })?;
    (i < n).then_some(i)
}

/// Read a multiple-choice JSONL file. `template` formats questions the way an SFT model saw
/// its prompts; `held_out` keeps only the SFT held-out split of Alpaca data.
pub fn load_mc(
    path: &Path,
    template: Option<&Template>,
    held_out: Option<f64>,
) -> Result<Vec<McItem>> {
    let text = crate::store::fsio::read_bounded_string(path, crate::data::npy::MAX_DATA_FILE_BYTES)
        .with_context(|| format!("cannot read task file {}", path.display()))?;
    let first: Value = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| serde_json::from_str(l).ok())
        .with_context(|| format!("{}: first line is not JSON", path.display()))?;
    if first.get("instruction").is_some() {
        return alpaca_mc(path, template, held_out);
    }
    let mut items = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = |why: &str| anyhow::anyhow!("{}:{}: {why}", path.display(), i + 1);
        let v: Value =
            serde_json::from_str(line).map_err(|e| bad(&format!("invalid JSON ({e})")))?;
        let strings = |key: &str| -> Option<Vec<String>> {
            v.get(key)?
                .as_array()?
                .iter()
                .map(|x| x.as_str().map(String::from))
                .collect()
        };
        let item = if let (Some(ctx), Some(endings)) =
            (v.get("context").and_then(Value::as_str), strings("endings"))
        {
            let label = v
                .get("label")
                .and_then(|l| answer_index(l, endings.len()))
                .ok_or_else(|| bad("label missing or out of range"))?;
            McItem {
                context: ctx.to_string(),
                choices: endings.into_iter().map(|e| format!(" {e}")).collect(),
                label,
            }
        } else if let (Some(q), Some(choices)) = (
            v.get("question").and_then(Value::as_str),
            strings("choices"),
        ) {
            let label = v
                .get("answer")
                .and_then(|a| answer_index(a, choices.len()))
                .ok_or_else(|| bad("answer missing or out of range"))?;
            let (context, prefix) = match template {
                Some(t) => (t.prompt_for(q)?, t.answer_prefix()?),
                None => (format!("Question: {q}\nAnswer:"), " ".to_string()),
            };
            McItem {
                context,
                choices: choices
                    .into_iter()
                    .map(|c| format!("{prefix}{c}"))
                    .collect(),
                label,
            }
        } else {
            return Err(bad(
                "expected {context, endings, label} or {question, choices, answer}",
            ));
        };
        items.push(item);
    }
    Ok(items)
}

/// Alpaca lines grouped by instruction; an instruction with a closed answer set (2..=64
/// distinct answers, each used twice on average) becomes multiple choice over those answers.
fn alpaca_mc(
    path: &Path,
    template: Option<&Template>,
    held_out: Option<f64>,
) -> Result<Vec<McItem>> {
    let (convs, _) = sft::parse_jsonl(path, true)?;
    let mut answers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let instruction = |q: &str| q.lines().next().unwrap_or("").to_string();
    // A line without a question and an answer (e.g. a chat line of one turn) has nothing to
    // score; it is left out rather than indexed blindly.
    for (q, a) in convs.iter().filter_map(question_answer) {
        *counts.entry(instruction(q)).or_default() += 1;
        let list = answers.entry(instruction(q)).or_default();
        if !list.iter().any(|x| x == a) {
            list.push(a.to_string());
        }
    }
    let selected = match held_out {
        Some(f) => sft::held_out(&convs, f),
        None => convs.clone(),
    };
    // Without a template, the plain one's framing: the question on its line, the answer next.
    let prefix = match template {
        Some(t) => t.answer_prefix()?,
        None => String::new(),
    };
    let mut items = Vec::new();
    for (q, answer) in selected.iter().filter_map(question_answer) {
        let key = instruction(q);
        let Some(choices) = answers.get(&key) else {
            continue;
        };
        // A closed answer set: few distinct answers, each seen repeatedly.
        if !(2..=64).contains(&choices.len()) || counts[&key] < 2 * choices.len() {
            continue;
        }
        let Some(label) = choices.iter().position(|a| a == answer) else {
            continue;
        };
        items.push(McItem {
            context: match template {
                Some(t) => t.prompt_for(q)?,
                None => format!("{q}\n"),
            },
            choices: choices.iter().map(|a| format!("{prefix}{a}")).collect(),
            label,
        });
    }
    if items.is_empty() {
        bail!(
            "{}: no instruction with 2..=64 distinct answers to score as multiple choice",
            path.display()
        );
    }
    Ok(items)
}

/// The first user turn and the assistant turn answering it, if the conversation has both.
fn question_answer(c: &sft::Conversation) -> Option<(&str, &str)> {
    let q = c.turns.iter().position(|m| m.role == "user")?;
    let a = c.turns[q + 1..].iter().find(|m| m.role == "assistant")?;
    Some((&c.turns[q].content, &a.content))
}

/// Mean loss and perplexity over non-overlapping windows of a text file or a shard
/// directory's validation split.
pub fn perplexity<B: Backend>(
    model: &Llama<B>,
    tok: &TextTokenizer,
    path: &Path,
    seq: usize,
    max_windows: usize,
) -> Result<BTreeMap<String, f64>> {
    perplexity_with(model, tok, path, seq, max_windows, &mut |_, _| {})
}

/// [`perplexity`], calling `done(n, total)` after each of the `total` windows (the CLI's
/// progress bar).
pub fn perplexity_with<B: Backend>(
    model: &Llama<B>,
    tok: &TextTokenizer,
    path: &Path,
    seq: usize,
    max_windows: usize,
    done: &mut dyn FnMut(usize, usize),
) -> Result<BTreeMap<String, f64>> {
    let device = model.embed_tokens.val().device();
    let batches = if path.is_dir() {
        let set = crate::data::shards::list_shards(path)?;
        let shards = if set.val.is_empty() {
            set.train
        } else {
            set.val
        };
        eval_batches(&shards, 1, seq, max_windows, model.dims.vocab_size)?
    } else {
        let docs = crate::data::corpus::read_corpus(&[path.display().to_string()])?;
        let mut ids = Vec::new();
        for d in &docs {
            ids.push(tok.eot_id());
            ids.extend(tok.encode(&d.text)?);
        }
        if ids.len() < seq + 1 {
            bail!(
                "{}: only {} tokens, need at least {}",
                path.display(),
                ids.len(),
                seq + 1
            );
        }
        (0..(ids.len() - 1) / seq)
            .take(max_windows)
            .map(|w| crate::data::loader::Batch {
                tokens: ids[w * seq..w * seq + seq + 1].to_vec(),
                batch: 1,
                seq,
            })
            .collect()
    };
    let mut total = 0.0;
    for (i, b) in batches.iter().enumerate() {
        let rows = crate::train::trainer::batch_tensor::<B>(b, &device);
        total += tensor_to_vec(model.loss(rows))[0] as f64;
        done(i + 1, batches.len());
    }
    let loss = total / batches.len() as f64;
    Ok(BTreeMap::from([
        ("loss".into(), loss),
        ("ppl".into(), loss.exp()),
        ("tokens".into(), (batches.len() * seq) as f64),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_turn_chat_line_is_skipped_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl");
        let mut lines = Vec::new();
        for i in 0..8 {
            let answer = if i % 2 == 0 { "Hamlet" } else { "Macbeth" };
            lines.push(format!(
                r#"{{"instruction": "Which play?\nline {i}", "input": "", "output": "{answer}"}}"#
            ));
        }
        lines.push(r#"{"messages": [{"role": "assistant", "content": "Hamlet"}]}"#.into());
        std::fs::write(&p, lines.join("\n")).unwrap();
        let items = load_mc(&p, None, None).unwrap();
        assert_eq!(items.len(), 8);
        assert!(items.iter().all(|i| i.choices.len() == 2));
    }
}
