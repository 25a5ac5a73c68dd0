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

#[test]
fn loss_mask_covers_exactly_the_responses_for_each_template() {
    let gpt2 = TextTokenizer::gpt2().unwrap();
    let chat = chat_tokenizer();
    let cases = [
        (
            Template::Vicuna,
            &gpt2,
            vec![" Hamlet<|endoftext|>", " Macbeth<|endoftext|>"],
        ),
        (
            Template::Plain,
            &gpt2,
            vec!["Hamlet<|endoftext|>", "Macbeth<|endoftext|>"],
        ),
        (
            Template::ChatMl,
            &chat,
            vec!["Hamlet<|im_end|>", "Macbeth<|im_end|>"],
        ),
    ];
    for (template, tok, expected) in cases {
        let (ids, trained) = tokenize(&conv(), template, tok).unwrap();
        assert_eq!(ids.len(), trained.len());
        assert_eq!(trained_text(tok, &ids, &trained), expected, "{template:?}");
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
            "{template:?}: {prompt}"
        );
    }
    assert!(Template::ChatMl
        .check_tokenizer(&gpt2)
        .unwrap_err()
        .to_string()
        .contains("<|im_start|>"));
}

#[test]
fn rows_shift_the_mask_onto_targets_and_truncate_with_a_count() {
    let tok = TextTokenizer::gpt2().unwrap();
    let (ids, trained) = tokenize(&conv(), Template::Plain, &tok).unwrap();
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
