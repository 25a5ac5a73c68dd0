//! `prepare` (text to token shards) and `info` (what a config costs).

use super::load_preset;
use crate::cli::{ConfigArgs, PrepareArgs};
use anyhow::Result;
use llite_tui::data::corpus::read_corpus;
use llite_tui::data::tokenizer::TextTokenizer;
use llite_tui::model::stats::{format_bytes, memory_floor, param_count, train_flops_per_token};
use llite_tui::store;

pub(crate) fn prepare(args: &PrepareArgs) -> Result<()> {
    // A run's data/ belongs to its checkpoints (cursor, tokenizer): even --replace must not
    // swap it, least of all under a trainer that holds the run's lock.
    store::outputs::ensure_outside_runs(&args.out, "prepare --out")?;
    let docs = read_corpus(&args.input)?;
    let tokenizer = TextTokenizer::resolve(&args.tokenizer, &docs)?;
    let s = llite_tui::data::shards::prepare(
        &docs,
        &tokenizer,
        args.val_fraction,
        args.shard_tokens,
        &args.out,
        &args.prefix,
        args.replace,
    )?;
    println!(
        "wrote {} {} shards to {}: {} validation + {} training tokens, vocab {}",
        s.shards.len(),
        s.dtype,
        args.out.display(),
        s.val_tokens,
        s.train_tokens,
        s.vocab_size
    );
    Ok(())
}

/// `info`: what a config costs before anything is allocated.
pub(crate) fn info(preset: &ConfigArgs) -> Result<()> {
    let cfg = load_preset(preset, false)?;
    cfg.validate()?;
    let m = &cfg.model;
    let p = param_count(m);
    let mem = memory_floor(m);
    let flops = train_flops_per_token(m, cfg.train.seq_len);
    println!(
        "model: {} layers, d_model {}, {} heads / {} kv heads, ff {}, vocab {}, context {}, {}",
        m.n_layers,
        m.d_model,
        m.n_heads,
        m.n_kv_heads,
        m.ff_dim,
        m.vocab_size,
        m.max_seq_len,
        if m.tie_embeddings {
            "tied embeddings"
        } else {
            "untied embeddings"
        }
    );
    println!(
        "parameters: {} ({} embedding, {} in matmuls)",
        group(p.total),
        group(p.embedding),
        group(p.matmul)
    );
    println!(
        "memory floor (f32 AdamW, before activations): weights {} + grads {} + moments {} = {}",
        format_bytes(mem.weights),
        format_bytes(mem.grads),
        format_bytes(mem.adam_moments),
        format_bytes(mem.total())
    );
    println!(
        "training FLOPs per token at seq_len {}: {:.3e} ({:.2} GFLOP)",
        cfg.train.seq_len,
        flops,
        flops / 1e9
    );
    println!("tokens per step: {}", cfg.tokens_per_step());
    Ok(())
}

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
