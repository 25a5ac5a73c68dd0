//! Multiple-choice scoring speed: the bundled "which work" held-out questions scored with the
//! shared-context path and with the one-row-per-choice reference, alternated in one process,
//! on the tiny bench model with the tiny preset's tokenizer (BPE 4096 trained on the corpus).

use super::sampling::bench_model;
use super::BenchCase;
use crate::data::corpus::builtin_shakespeare_documents;
use crate::data::sft::Template;
use crate::data::tokenizer::TextTokenizer;
use crate::eval::{load_mc, score_choices, score_choices_unshared, McItem};
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Instant;

/// The SFT demo set shipped in `data/`; its held-out split (`--held-out 0.02`) gives the
/// 198 "which work" questions of 37 choices each.
const TASK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sft-shakespeare.jsonl");
/// Rounds of (shared, reference); the spread of the per-round ratio is printed.
const ROUNDS: usize = 3;
/// Questions timed per round: the first of the 198 (the reference path needs ~12 GFLOP a
/// question; all 198 take minutes a round on two cores).
const QUESTIONS: usize = 40;

/// What one comparison measured.
pub struct EvalRun {
    /// Questions timed, of `of` held-out ones.
    pub questions: usize,
    pub of: usize,
    pub choices: usize,
    /// Seconds per round for the shared-context path and the reference.
    pub shared_s: Vec<f64>,
    pub reference_s: Vec<f64>,
    /// Largest |shared - reference| log-likelihood over every choice.
    pub max_abs_diff: f64,
    /// Questions whose best choice (acc) differs between the two paths.
    pub different_answers: usize,
}

/// Each choice's (log-likelihood, characters) for one question.
type QuestionScores = Vec<(f64, usize)>;
type Scores = Vec<QuestionScores>;

fn score_all(
    items: &[McItem],
    score: &dyn Fn(&McItem) -> Result<QuestionScores>,
) -> Result<(Scores, f64)> {
    let start = Instant::now();
    let scores = items.iter().map(score).collect::<Result<Vec<_>>>()?;
    Ok((scores, start.elapsed().as_secs_f64()))
}

fn best(v: &[(f64, usize)]) -> Option<usize> {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
        .map(|(i, _)| i)
}

/// Score the held-out questions both ways, `ROUNDS` times, alternating.
pub fn compare(case: &BenchCase) -> Result<EvalRun> {
    let tok = TextTokenizer::train_bpe(&builtin_shakespeare_documents(), case.model.vocab_size)?;
    let plain = Template::resolve("plain", &tok)?;
    let all = load_mc(Path::new(TASK), Some(&plain), Some(0.02))
        .with_context(|| format!("bench task {TASK}"))?;
    let total = all.len();
    let items = &all[..QUESTIONS.min(total)];
    let model = bench_model(case);
    let shared = |i: &McItem| score_choices(&model, &tok, &i.context, &i.choices);
    let reference = |i: &McItem| score_choices_unshared(&model, &tok, &i.context, &i.choices);
    let mut run = EvalRun {
        questions: items.len(),
        of: total,
        choices: items.iter().map(|i| i.choices.len()).max().unwrap_or(0),
        shared_s: Vec::new(),
        reference_s: Vec::new(),
        max_abs_diff: 0.0,
        different_answers: 0,
    };
    for _ in 0..ROUNDS {
        let (a, ta) = score_all(items, &shared)?;
        let (b, tb) = score_all(items, &reference)?;
        run.shared_s.push(ta);
        run.reference_s.push(tb);
        let mut differ = 0;
        for (qa, qb) in a.iter().zip(&b) {
            for (x, y) in qa.iter().zip(qb) {
                run.max_abs_diff = run.max_abs_diff.max((x.0 - y.0).abs());
            }
            differ += (best(qa) != best(qb)) as usize;
        }
        run.different_answers = run.different_answers.max(differ);
    }
    Ok(run)
}

/// Print the eval table (one row: the tiny bench model).
pub fn eval_table(case: &BenchCase) {
    println!();
    println!(
        "multiple-choice eval: held-out \"which work\" questions of data/sft-shakespeare.jsonl (plain template), {} model, {ROUNDS} rounds alternating",
        case.name
    );
    println!(
        "{:<20} {:>12} {:>12} {:>12} {:>16} {:>12} {:>10}",
        "config", "questions", "shared s", "per-row s", "speed-up", "max |diff|", "answers"
    );
    match compare(case) {
        Ok(r) => {
            let ratios: Vec<f64> = r
                .reference_s
                .iter()
                .zip(&r.shared_s)
                .map(|(b, a)| b / a)
                .collect();
            let (lo, hi) = ratios
                .iter()
                .fold((f64::INFINITY, 0.0f64), |(l, h), &x| (l.min(x), h.max(x)));
            let median = |v: &[f64]| {
                let mut v = v.to_vec();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            println!(
                "{:<20} {:>12} {:>12.2} {:>12.2} {:>16} {:>12.1e} {:>10}",
                case.name,
                format!("{}/{}x{}", r.questions, r.of, r.choices),
                median(&r.shared_s),
                median(&r.reference_s),
                format!("{:.2}x ({lo:.2}-{hi:.2})", median(&ratios)),
                r.max_abs_diff,
                if r.different_answers == 0 {
                    "same".to_string()
                } else {
                    format!("{} differ", r.different_answers)
                }
            );
        }
        Err(e) => println!("{:<20} eval bench failed: {e:#}", case.name),
    }
    println!("shared = context encoded once, choices batched on its KV cache; per-row = one row of context + choice per choice (the previous path); seconds are medians.");
}
