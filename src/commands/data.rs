//! `prepare`: text to token shards.

use crate::cli::PrepareArgs;
use anyhow::Result;
use llite_tui::data::corpus::read_corpus;
use llite_tui::data::tokenizer::TextTokenizer;
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
