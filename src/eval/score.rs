//! Scoring multiple-choice answers by log-likelihood: the shared context is encoded once into
//! a KV cache and every choice continues from it in one batch ([`score_choices`]); the
//! older one-row-per-choice formulation ([`score_choices_unshared`]) stays as the reference
//! the tests and `bench` compare it with.

use crate::data::tokenizer::TextTokenizer;
use crate::model::kv_cache::KvCache;
use crate::model::params::tensor_to_vec;
use crate::model::Llama;
use anyhow::{bail, Result};
use burn::tensor::activation::log_softmax;
use burn::tensor::{backend::Backend, Int, Tensor, TensorData};

/// A question as token ids: the (possibly front-truncated) context every choice follows, and
/// each choice's tokens.
struct EncodedQuestion {
    context: Vec<u32>,
    choices: Vec<Vec<u32>>,
}

/// Every choice is scored after the *same* context: when context plus the longest choice
/// exceed the model's window, the context is cut from the front to what that longest choice
/// leaves. (Cutting per choice used to give each choice a different context, and a choice
/// longer than the window lost its own first tokens from the sum, scoring 0 = certain, so it
/// always won.) A choice that cannot follow even one context token is refused, naming its
/// length: scoring only part of it would compare sums over different tokens.
fn encode_question(
    limit: usize,
    tok: &TextTokenizer,
    context: &str,
    choices: &[String],
) -> Result<EncodedQuestion> {
    let mut ctx = tok.encode(context)?;
    if ctx.is_empty() {
        // The first answer token needs something to be predicted from.
        ctx.push(tok.eot_id());
    }
    let mut conts = Vec::with_capacity(choices.len());
    for c in choices {
        let cont = tok.encode(c)?;
        if cont.is_empty() {
            bail!("choice {c:?} encodes to no tokens");
        }
        if cont.len() > limit {
            let preview: String = c.chars().take(40).collect();
            bail!(
                "choice {preview:?}... is {} tokens, more than the model's context of {limit} allows after at least one context token; it cannot be scored fairly against the others",
                cont.len()
            );
        }
        conts.push(cont);
    }
    let longest = conts.iter().map(Vec::len).max().unwrap_or(0);
    let keep = ctx.len().min(limit + 1 - longest);
    Ok(EncodedQuestion {
        context: ctx[ctx.len() - keep..].to_vec(),
        choices: conts,
    })
}

/// `[rows, width]` token tensor from rows of ids, each padded at the end with `pad` (causal
/// attention keeps padding from reaching the positions that are scored).
fn padded<B: Backend>(
    rows: &[&[u32]],
    width: usize,
    pad: u32,
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    let mut data = Vec::with_capacity(rows.len() * width);
    for ids in rows {
        data.extend(ids.iter().map(|&i| i as i64));
        data.extend(std::iter::repeat_n(pad as i64, width - ids.len()));
    }
    Tensor::from_data(TensorData::new(data, [rows.len(), width]), device)
}

/// Log-likelihood of each choice after the context, with the choice's length in characters.
///
/// The context is encoded once (batch 1, its keys and values kept in a [`KvCache`]); its last
/// position gives every choice's first token, and the choices' remaining tokens run as one
/// batch against copies of that cache. This does the context's work once instead of once per
/// choice (37 times on the bundled "which work" questions). The scores equal
/// [`score_choices_unshared`]'s up to float rounding (the same sums, computed in other
/// groupings); see the tests for the tolerance.
pub fn score_choices<B: Backend>(
    model: &Llama<B>,
    tok: &TextTokenizer,
    context: &str,
    choices: &[String],
) -> Result<Vec<(f64, usize)>> {
    let q = encode_question(model.dims.max_seq_len, tok, context, choices)?;
    let device = model.embed_tokens.val().device();
    let ctx_len = q.context.len();
    let mut cache = KvCache::<B>::new(model.layers.len());
    let h = model.hidden(
        padded::<B>(&[&q.context], ctx_len, 0, &device),
        0,
        Some(&mut cache),
    );
    let first = tensor_to_vec(log_softmax(model.logits(h.narrow(0, ctx_len - 1, 1)), 1));
    let mut totals: Vec<f64> = q
        .choices
        .iter()
        .map(|c| first[c[0] as usize] as f64)
        .collect();
    // Inputs after the first choice token: each choice but its last token.
    let width = q.choices.iter().map(Vec::len).max().unwrap_or(1) - 1;
    if width > 0 {
        let n = q.choices.len();
        let rows: Vec<&[u32]> = q.choices.iter().map(|c| &c[..c.len() - 1]).collect();
        let inputs = padded::<B>(&rows, width, tok.eot_id(), &device);
        let mut cache = cache.repeat_batch(n);
        let logp = tensor_to_vec(log_softmax(
            model.forward(inputs, ctx_len, Some(&mut cache)),
            1,
        ));
        let vocab = logp.len() / (n * width);
        for (r, cont) in q.choices.iter().enumerate() {
            for (j, &id) in cont.iter().enumerate().skip(1) {
                totals[r] += logp[(r * width + j - 1) * vocab + id as usize] as f64;
            }
        }
    }
    Ok(totals
        .into_iter()
        .zip(choices)
        .map(|(total, choice)| (total, choice.chars().count().max(1)))
        .collect())
}

/// [`score_choices`] the older way: one row per choice holding the whole context and the
/// choice, all rows in one forward pass. Kept as the reference the shared-context path is
/// tested and benchmarked against.
pub fn score_choices_unshared<B: Backend>(
    model: &Llama<B>,
    tok: &TextTokenizer,
    context: &str,
    choices: &[String],
) -> Result<Vec<(f64, usize)>> {
    let q = encode_question(model.dims.max_seq_len, tok, context, choices)?;
    let rows: Vec<(Vec<u32>, usize)> = q
        .choices
        .iter()
        .map(|cont| {
            let mut ids = q.context.clone();
            ids.extend(cont);
            (ids, cont.len())
        })
        .collect();
    let width = rows.iter().map(|(ids, _)| ids.len()).max().unwrap_or(1) - 1;
    let device = model.embed_tokens.val().device();
    let inputs: Vec<&[u32]> = rows.iter().map(|(ids, _)| &ids[..ids.len() - 1]).collect();
    let n = rows.len();
    let inputs = padded::<B>(&inputs, width, tok.eot_id(), &device);
    let logp = tensor_to_vec(log_softmax(model.forward(inputs, 0, None), 1));
    let vocab = logp.len() / (n * width);
    Ok(rows
        .iter()
        .zip(choices)
        .enumerate()
        .map(|(r, ((ids, cont), choice))| {
            let start = ids.len() - 1 - cont;
            let total: f64 = (start..ids.len() - 1)
                .map(|p| logp[(r * width + p) * vocab + ids[p + 1] as usize] as f64)
                .sum();
            (total, choice.chars().count().max(1))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;

    type B = burn::backend::Flex;

    fn model_with(max_seq_len: usize, n_kv_heads: usize) -> (Llama<B>, TextTokenizer) {
        let tok = TextTokenizer::gpt2().unwrap();
        let m = ModelConfig {
            vocab_size: tok.vocab_size(),
            d_model: 16,
            n_layers: 2,
            n_heads: 4,
            n_kv_heads,
            ff_dim: 24,
            max_seq_len,
            ..ModelConfig::default()
        };
        (Llama::<B>::new(&m, 7, &Default::default()), tok)
    }

    fn tiny_model(max_seq_len: usize) -> (Llama<B>, TextTokenizer) {
        model_with(max_seq_len, 2)
    }

    /// Scores of the shared-context path against the one-row-per-choice reference: each
    /// log-likelihood within 1e-4 (absolute; they are sums of a few f32 log-probabilities
    /// computed in other groupings), and the same winner.
    fn assert_same_scores(model: &Llama<B>, tok: &TextTokenizer, context: &str, choices: &[&str]) {
        let choices: Vec<String> = choices.iter().map(|c| c.to_string()).collect();
        let shared = score_choices(model, tok, context, &choices).unwrap();
        let reference = score_choices_unshared(model, tok, context, &choices).unwrap();
        assert_eq!(shared.len(), reference.len());
        for (i, (s, r)) in shared.iter().zip(&reference).enumerate() {
            assert!(
                (s.0 - r.0).abs() < 1e-4,
                "choice {i} {:?}: shared {} vs reference {}",
                choices[i],
                s.0,
                r.0
            );
            assert_eq!(s.1, r.1);
        }
        let best = |v: &[(f64, usize)]| {
            v.iter()
                .enumerate()
                .max_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
                .map(|(i, _)| i)
        };
        assert_eq!(best(&shared), best(&reference));
    }

    #[test]
    fn the_shared_context_gives_the_reference_scores() {
        for kv in [1, 2, 4] {
            let (model, tok) = model_with(64, kv);
            let context = "Which work of Shakespeare contains this line?\nO Romeo, Romeo! wherefore art thou Romeo?\n";
            // Choices of one token and of several, sharing prefixes, of different lengths.
            let choices = [
                " Hamlet",
                " Romeo and Juliet",
                " King Henry IV, the First Part",
                " King Henry IV, the Second Part",
                " x",
            ];
            assert_same_scores(&model, &tok, context, &choices);
            // Every choice one token: only the context's last position is needed.
            assert_same_scores(&model, &tok, context, &[" a", " b", " c"]);
            // A context cut at the front by the window.
            let (short, tok) = model_with(12, kv);
            assert_same_scores(&short, &tok, &" the".repeat(30), &choices);
            assert_same_scores(&short, &tok, "", &[" y", " z w"]);
        }
    }

    #[test]
    fn a_choice_longer_than_the_window_is_refused_not_a_certain_winner() {
        let (model, tok) = tiny_model(8);
        let long = " x".repeat(12);
        for score in [score_choices::<B>, score_choices_unshared::<B>] {
            let err = score(
                &model,
                &tok,
                "Question: which?",
                &[" y".into(), long.clone()],
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("is 12 tokens") && err.contains("context of 8"),
                "{err}"
            );
        }
    }

    #[test]
    fn every_choice_is_scored_on_the_same_truncated_context() {
        let (model, tok) = tiny_model(8);
        let context = " a b c d e f g h i j";
        // Exactly the window: allowed, scored after one context token, never 0 ("certain").
        let full = " x".repeat(8);
        let s = score_choices(&model, &tok, context, &[" y".into(), full.clone()]).unwrap();
        assert!(s.iter().all(|(v, _)| v.is_finite() && *v < 0.0), "{s:?}");
        // The short choice's score depends only on the longest choice's length, which sets
        // the shared context, not on which long choice it is.
        let with_x = score_choices(&model, &tok, context, &[" y".into(), full]).unwrap();
        let with_z = score_choices(&model, &tok, context, &[" y".into(), " z".repeat(8)]).unwrap();
        assert_eq!(with_x[0].0, with_z[0].0);
        // An empty context still gives the first answer token something to follow.
        let s = score_choices(&model, &tok, "", &[" y".into(), " z".into()]).unwrap();
        assert!(s.iter().all(|(v, _)| v.is_finite() && *v < 0.0), "{s:?}");
    }
}
