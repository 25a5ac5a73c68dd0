//! The sampling table of `bench`: greedy generation with a KV cache, llite-tui next to
//! transformers `generate` on the same weights.

use super::{bench_threads, cases, load, reference, sampling, BenchCase};

/// The sampling table's cases: the training cases, and with `large` a SmolLM2-135M-shaped
/// model (synthetic weights; the shape of a real model people sample from).
fn sample_cases(large: bool) -> Vec<BenchCase> {
    let mut v = cases(large);
    if large {
        v.push(BenchCase {
            name: "SmolLM2-135M shape",
            model: load::smollm2_135m(),
            batch: 1,
            seq: sampling::PROMPT_LEN,
        });
    }
    v
}

/// Greedy sampling: llite-tui, then transformers `generate` on the same weights.
pub(super) fn sample_table(large: bool, python: Option<&str>, notes: &mut Vec<String>) {
    let threads = bench_threads();
    println!();
    println!(
        "sampling: greedy, KV cache, prompt {} + {} new tokens, best of 3, same weights (loaded before timing)",
        sampling::PROMPT_LEN,
        sampling::NEW_TOKENS
    );
    println!(
        "{:<20} {:>12} {:>14} {:>8} {:>11} {:>13} {:>12}",
        "config",
        "llite tok/s",
        "generate tok/s",
        "ratio",
        "llite TTFT",
        "generate TTFT",
        "same tokens"
    );
    let hf_dir = std::env::temp_dir().join(format!("llite-bench-hf-{}", std::process::id()));
    for case in sample_cases(large) {
        let model = sampling::bench_model(&case);
        let ours = sampling::greedy_tokens_per_s(&model, case.model.vocab_size);
        let theirs = match python {
            Some(py) => sampling::write_hf_dir(&model, &case, &hf_dir)
                .map_err(|e| format!("{e:#}"))
                .and_then(|_| {
                    reference::generate(
                        py,
                        &hf_dir,
                        sampling::PROMPT_LEN,
                        sampling::NEW_TOKENS,
                        threads,
                    )
                }),
            None => Err("skipped (LLITE_BENCH_REFERENCE=off)".into()),
        };
        drop(model);
        let _ = std::fs::remove_dir_all(&hf_dir);
        let ms = |s: f64| format!("{:.0} ms", s * 1000.0);
        match theirs {
            Ok(t) => println!(
                "{:<20} {:>12.1} {:>14.1} {:>7.2}x {:>11} {:>13} {:>8}/{}",
                case.name,
                ours.tokens_per_s,
                t.tokens_per_s,
                ours.tokens_per_s / t.tokens_per_s,
                ms(ours.first_token_s),
                t.first_token_s.map(ms).unwrap_or_else(|| "-".into()),
                sampling::common_prefix(&ours.ids, &t.ids),
                ours.ids.len()
            ),
            Err(e) => {
                println!(
                    "{:<20} {:>12.1} {:>14} {:>8} {:>11} (transformers: {e})",
                    case.name,
                    ours.tokens_per_s,
                    "-",
                    "-",
                    ms(ours.first_token_s)
                );
                if python.is_some() {
                    notes.push(e);
                }
            }
        }
    }
    println!("ratio = llite / transformers (above 1: llite is faster); TTFT = time to the first new token; same tokens = leading greedy ids that agree.");
}
