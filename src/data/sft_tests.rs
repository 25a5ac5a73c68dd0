//! Tests of the SFT templates, masks and parsing.
use super::*;

fn chat_tokenizer() -> TextTokenizer {
    let base = TextTokenizer::gpt2().unwrap().to_json_string().unwrap();
    let mut v: Value = serde_json::from_str(&base).unwrap();
    let added = v["added_tokens"].as_array_mut().unwrap();
    for (id, content) in [(50257, "<|im_start|>"), (50258, "<|im_end|>")] {
        added.push(
            serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true}),
        );
    }
    TextTokenizer::from_json_bytes(v.to_string().as_bytes(), "test").unwrap()
}

fn conv() -> Conversation {
    Conversation {
        system: None,
        turns: vec![
            Message {
                role: "user".into(),
                content: "Which work contains this line?\nTo be, or not to be".into(),
            },
            Message {
                role: "assistant".into(),
                content: "Hamlet".into(),
            },
            Message {
                role: "user".into(),
                content: "And this one?\nOut, damned spot!".into(),
            },
            Message {
                role: "assistant".into(),
                content: "Macbeth".into(),
            },
        ],
    }
}

/// Decode the trained tokens of each contiguous trained run.
fn trained_text(tok: &TextTokenizer, ids: &[u32], trained: &[bool]) -> Vec<String> {
    let mut runs = Vec::new();
    let mut current = Vec::new();
    for (id, t) in ids.iter().zip(trained) {
        if *t {
            current.push(*id);
        } else if !current.is_empty() {
            runs.push(tok.decode(&std::mem::take(&mut current)).unwrap());
        }
    }
    if !current.is_empty() {
        runs.push(tok.decode(&current).unwrap());
    }
    runs
}

/// SmolLM2-Instruct's chat template as its tokenizer_config.json carries it (ChatML with a
/// default system prompt inserted by the template).
const SMOLLM2_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

fn three_turns() -> Conversation {
    let mut c = conv();
    c.system = Some("You answer with a play.".into());
    c.turns.extend([
        Message {
            role: "user".into(),
            content: "And this?\nNow is the winter of our discontent".into(),
        },
        Message {
            role: "assistant".into(),
            content: "Richard III".into(),
        },
    ]);
    c
}

/// Token ids of exactly one assistant turn as the template renders it on its own.
fn reply_ids(tok: &TextTokenizer, t: &Template, conv: &Conversation, turn: usize) -> Vec<u32> {
    let upto = |n: usize, gen: bool| {
        let c = Conversation {
            system: conv.system.clone(),
            turns: conv.turns[..n].to_vec(),
        };
        t.render_text(&c, gen).unwrap()
    };
    let asked = upto(turn, true);
    let full = upto(turn + 1, false);
    tok.encode(full[asked.len()..].trim_end()).unwrap()
}

#[test]
fn loss_mask_covers_exactly_the_responses_for_each_template() {
    let gpt2 = TextTokenizer::gpt2().unwrap();
    let chat = chat_tokenizer();
    let smol = chat_tokenizer().with_chat_template(Some(SMOLLM2_TEMPLATE.into()));
    let cases = [
        (
            Template::resolve("vicuna", &gpt2).unwrap(),
            &gpt2,
            vec![
                " Hamlet<|endoftext|>",
                " Macbeth<|endoftext|>",
                " Richard III<|endoftext|>",
            ],
        ),
        (
            Template::resolve("plain", &gpt2).unwrap(),
            &gpt2,
            vec![
                "Hamlet<|endoftext|>",
                "Macbeth<|endoftext|>",
                "Richard III<|endoftext|>",
            ],
        ),
        (
            Template::resolve("chatml", &chat).unwrap(),
            &chat,
            vec![
                "Hamlet<|im_end|>",
                "Macbeth<|im_end|>",
                "Richard III<|im_end|>",
            ],
        ),
        (
            Template::resolve("model", &smol).unwrap(),
            &smol,
            vec![
                "Hamlet<|im_end|>",
                "Macbeth<|im_end|>",
                "Richard III<|im_end|>",
            ],
        ),
    ];
    for (template, tok, expected) in cases {
        for c in [conv(), three_turns()] {
            let (ids, trained) = tokenize(&c, &template, tok).unwrap();
            assert_eq!(ids.len(), trained.len());
            let want = &expected[..c.turns.len() / 2];
            assert_eq!(
                trained_text(tok, &ids, &trained),
                want,
                "{}",
                template.name()
            );
            // Each trained run is exactly that assistant turn's tokens, in order.
            let runs = trained_runs(&ids, &trained);
            let assistant_turns: Vec<usize> = (0..c.turns.len())
                .filter(|i| c.turns[*i].role == "assistant")
                .collect();
            assert_eq!(runs.len(), assistant_turns.len());
            for (run, turn) in runs.iter().zip(assistant_turns) {
                assert_eq!(
                    run,
                    &reply_ids(tok, &template, &c, turn),
                    "{} turn {turn}",
                    template.name()
                );
            }
            // The segments put together are the template's whole rendering, token for token.
            assert_eq!(
                tok.decode(&ids).unwrap(),
                template.render_text(&c, false).unwrap()
            );
            // Everything else is the prompt, masked.
            let prompt: Vec<u32> = ids
                .iter()
                .zip(&trained)
                .filter(|(_, t)| !**t)
                .map(|(i, _)| *i)
                .collect();
            let prompt = tok.decode(&prompt).unwrap();
            assert!(
                prompt.contains("To be, or not to be") && prompt.contains("Out, damned spot!"),
                "{prompt}"
            );
            assert!(
                !prompt.contains("Hamlet") && !prompt.contains("Macbeth"),
                "{}: {prompt}",
                template.name()
            );
        }
    }
    assert!(Template::resolve("chatml", &gpt2)
        .unwrap_err()
        .to_string()
        .contains("<|im_start|>"));
    assert!(Template::resolve("model", &gpt2)
        .unwrap_err()
        .to_string()
        .contains("no chat_template"));
    // `auto` is the model's own template when it carries one, vicuna otherwise.
    assert_eq!(Template::resolve("auto", &smol).unwrap().name(), "model");
    assert_eq!(Template::resolve("auto", &gpt2).unwrap().name(), "vicuna");
}

/// Contiguous runs of trained ids.
fn trained_runs(ids: &[u32], trained: &[bool]) -> Vec<Vec<u32>> {
    let mut runs = vec![];
    let mut cur = vec![];
    for (id, t) in ids.iter().zip(trained) {
        if *t {
            cur.push(*id);
        } else if !cur.is_empty() {
            runs.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

#[test]
fn builtin_templates_render_the_seed_formats_and_prompts() {
    let gpt2 = TextTokenizer::gpt2().unwrap();
    let vicuna = Template::resolve("vicuna", &gpt2).unwrap();
    assert_eq!(
        vicuna.render_text(&conv(), false).unwrap(),
        format!("{VICUNA} USER: Which work contains this line?\nTo be, or not to be ASSISTANT: Hamlet<|endoftext|>USER: And this one?\nOut, damned spot! ASSISTANT: Macbeth<|endoftext|>")
    );
    assert_eq!(
        vicuna.prompt_for("Hi").unwrap(),
        format!("{VICUNA} USER: Hi ASSISTANT:")
    );
    assert_eq!(vicuna.answer_prefix().unwrap(), " ");
    let chat = chat_tokenizer();
    let chatml = Template::resolve("chatml", &chat).unwrap();
    assert_eq!(
        chatml.prompt_for("Hi").unwrap(),
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(chatml.answer_prefix().unwrap(), "");
    let plain = Template::resolve("plain", &gpt2).unwrap();
    assert_eq!(plain.prompt_for("Hi").unwrap(), "Hi\n");
    let smol = chat.with_chat_template(Some(SMOLLM2_TEMPLATE.into()));
    let own = Template::resolve("model", &smol).unwrap();
    assert_eq!(
        own.prompt_for("Hi").unwrap(),
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    // A template that rewrites earlier turns has no exact mask: refused, not guessed.
    let rewriting = chat_tokenizer().with_chat_template(Some(
        "{% for m in messages %}{% if loop.last %}LAST {% endif %}{{ m.content }}\n{% endfor %}"
            .into(),
    ));
    let t = Template::resolve("model", &rewriting).unwrap();
    let err = tokenize(&conv(), &t, &rewriting).unwrap_err().to_string();
    assert!(err.contains("turn by turn"), "{err}");
}

const VICUNA: &str = "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";

#[test]
fn rows_shift_the_mask_onto_targets_and_truncate_with_a_count() {
    let tok = TextTokenizer::gpt2().unwrap();
    let (ids, trained) =
        tokenize(&conv(), &Template::resolve("plain", &tok).unwrap(), &tok).unwrap();
    let mut truncated = 0;
    let rows = rows_padded(
        &[(ids.clone(), trained.clone())],
        ids.len() + 3,
        tok.eot_id(),
        &mut truncated,
    );
    assert_eq!(truncated, 0);
    for (t, m) in rows[0].mask.iter().enumerate() {
        let expect = t + 1 < ids.len() && trained[t + 1];
        assert_eq!(*m > 0.0, expect, "target {t}");
    }
    let short = rows_padded(&[(ids, trained)], 8, tok.eot_id(), &mut truncated);
    assert_eq!(truncated, 1);
    assert_eq!(short[0].tokens.len(), 9);
}

#[test]
fn bad_lines_are_reported_with_line_numbers_or_stop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.jsonl");
    std::fs::write(
        &path,
        "{\"instruction\": \"a\", \"output\": \"b\"}\nnot json\n{\"instruction\": \"c\", \"output\": \"\"}\n{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}\n",
    )
    .unwrap();
    let (convs, report) = parse_jsonl(&path, true).unwrap();
    assert_eq!(convs.len(), 2);
    assert_eq!(
        report.skipped.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(report.skipped[1].1.contains("empty output"));
    let err = parse_jsonl(&path, false).unwrap_err().to_string();
    assert!(err.contains("d.jsonl:2"), "{err}");
}

#[test]
fn a_chatml_run_stops_at_im_end_and_carries_its_template() {
    let chat = chat_tokenizer();
    let t = Template::resolve("chatml", &chat).unwrap();
    let tok = crate::data::template::carrying(chat, &t);
    assert_eq!(tok.chat_template(), Some(t.source()));
    assert!(tok.is_stop(50256) && tok.is_stop(50258) && !tok.is_stop(50257));
    assert_eq!(
        tok.meta().generation_config(tok.eot_id())["eos_token_id"],
        serde_json::json!([50256, 50258])
    );
    let gpt2 = TextTokenizer::gpt2().unwrap();
    let v = Template::resolve("vicuna", &gpt2).unwrap();
    let tok = crate::data::template::carrying(gpt2, &v);
    assert!(tok.meta().stop_ids.is_empty());
    assert_eq!(tok.chat_template(), Some(v.source()));
}
