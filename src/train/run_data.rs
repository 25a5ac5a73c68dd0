//! A run's data, resolved before the first step: token shards for pretraining (tokenizing a
//! text corpus into the run directory when needed) or instruction rows for SFT, checked
//! against the model's vocabulary. Split from `session.rs`, which decides what kind of run it is.

use crate::config::{ModelConfig, RunConfig};
use crate::data::corpus::{is_shard_source, read_corpus};
use crate::data::prep_cache::{self, Lookup, PrepKey};
use crate::data::sft::{self, SftData, Template};
use crate::data::shards::{list_shards, prepare as prepare_shards, ShardSet};
use crate::data::tokenizer::TextTokenizer;
use anyhow::{bail, Result};
use std::path::Path;

/// Tokens per training shard when the engine tokenizes a text corpus itself.
pub const SHARD_TOKENS: usize = 100_000_000;

/// The data of a run: token shards for pretraining or instruction rows for SFT.
pub enum RunData {
    Shards(ShardSet),
    Sft(SftData),
}

impl RunData {
    /// The shards or the instruction rows, whichever this run trains on.
    pub(super) fn split(self) -> (Option<ShardSet>, Option<SftData>) {
        match self {
            RunData::Shards(s) => (Some(s), None),
            RunData::Sft(d) => (None, Some(d)),
        }
    }
}

fn resolve_sft(
    config: &RunConfig,
    fixed_tokenizer: Option<TextTokenizer>,
) -> Result<(TextTokenizer, RunData)> {
    let path = Path::new(&config.data.corpus[0]);
    let tokenizer = match fixed_tokenizer {
        Some(t) => t,
        None if config.data.tokenizer.starts_with("train:") => bail!(
            "{}: instruction data needs a pretrained tokenizer; fine-tune a checkpoint (--finetune CKPT --data {})",
            path.display(),
            path.display()
        ),
        None => TextTokenizer::resolve(&config.data.tokenizer, &[])?,
    };
    let template = Template::resolve(&config.sft.template, &tokenizer)?;
    let (convs, report) = sft::parse_jsonl(path, config.sft.skip_bad_lines)?;
    let data = sft::build(
        &convs,
        report,
        &template,
        &tokenizer,
        config.train.seq_len,
        config.sft.pack,
        config.data.val_fraction,
    )?;
    // The run's checkpoints carry the template it trains with, for `sample` and `export`.
    let tokenizer = crate::data::template::carrying(tokenizer, &template);
    Ok((tokenizer, RunData::Sft(data)))
}

/// Tokenize (or locate) the data for a run, with `tokenizer` fixed or resolved from it. With
/// `cache`, a text corpus tokenized with a resolved tokenizer is taken from (or stored in) the
/// prepared-data cache; what went wrong with the cache is pushed to `warnings`.
pub(super) fn resolve_data(
    config: &RunConfig,
    run_dir: &Path,
    fixed_tokenizer: Option<TextTokenizer>,
    cache: Option<&Path>,
    warnings: &mut Vec<String>,
) -> Result<(TextTokenizer, RunData)> {
    if config.is_sft() {
        return resolve_sft(config, fixed_tokenizer);
    }
    let (tok, shards) = resolve_shards(config, run_dir, fixed_tokenizer, cache, warnings)?;
    Ok((tok, RunData::Shards(shards)))
}

fn resolve_shards(
    config: &RunConfig,
    run_dir: &Path,
    fixed_tokenizer: Option<TextTokenizer>,
    cache: Option<&Path>,
    warnings: &mut Vec<String>,
) -> Result<(TextTokenizer, ShardSet)> {
    let corpus = &config.data.corpus;
    if corpus.len() == 1 && is_shard_source(&corpus[0]) {
        let tokenizer = match fixed_tokenizer {
            Some(t) => t,
            None if config.data.tokenizer.starts_with("train:") => bail!(
                "data.tokenizer = {}: cannot train a tokenizer from token shards {}; use gpt2 or a tokenizer.json path",
                config.data.tokenizer,
                corpus[0]
            ),
            None => TextTokenizer::resolve(&config.data.tokenizer, &[])?,
        };
        return Ok((tokenizer, list_shards(Path::new(&corpus[0]))?));
    }
    let data_dir = run_dir.join("data");
    let tokenizer_path = run_dir.join("tokenizer.json");
    if data_dir.is_dir() && tokenizer_path.is_file() {
        let tokenizer = TextTokenizer::from_file(&tokenizer_path)?;
        return Ok((tokenizer, list_shards(&data_dir)?));
    }
    let docs = read_corpus(corpus)?;
    // The key names the tokenizer by its spec, so only specs that fix its content are cached:
    // `train:<vocab>` (a function of the corpus) and the bundled `gpt2`; a tokenizer file (which
    // may change under the same path) or a checkpoint's tokenizer is not.
    let spec = &config.data.tokenizer;
    let pure = spec.starts_with("train:") || spec == "gpt2";
    let cache = cache
        .filter(|_| pure && fixed_tokenizer.is_none())
        .map(|root| {
            let key = PrepKey::new(
                &docs,
                &config.data.tokenizer,
                config.data.val_fraction,
                SHARD_TOKENS,
            );
            (root, key)
        });
    if let Some((root, key)) = &cache {
        if let Some(tokenizer) = from_cache(root, key, run_dir, warnings) {
            return Ok((tokenizer, list_shards(&data_dir)?));
        }
    }
    let tokenizer = match fixed_tokenizer {
        Some(t) => t,
        None => TextTokenizer::resolve(&config.data.tokenizer, &docs)?,
    };
    check_vocab(&tokenizer, &config.model, &config.data.tokenizer)?;
    prepare_shards(
        &docs,
        &tokenizer,
        config.data.val_fraction,
        SHARD_TOKENS,
        &data_dir,
        "corpus",
        // The run's own data directory: an interrupted preparation is replaced.
        true,
    )?;
    tokenizer.save(&tokenizer_path)?;
    if let Some((root, key)) = &cache {
        if let Err(e) = prep_cache::store(root, key, run_dir) {
            warnings.push(format!(
                "cannot cache the prepared data in {}: {e:#}",
                root.display()
            ));
        }
    }
    Ok((tokenizer, list_shards(&data_dir)?))
}

/// The cached tokenizer and shards of `key`, copied into `run_dir`; None on a miss. A corrupt
/// entry is reported in `warnings` and removed, so this launch rebuilds it.
fn from_cache(
    root: &Path,
    key: &PrepKey,
    run_dir: &Path,
    warnings: &mut Vec<String>,
) -> Option<TextTokenizer> {
    let entry = root.join(key.hex());
    match prep_cache::restore(root, key, run_dir) {
        Ok(Lookup::Hit(tokenizer)) => Some(tokenizer),
        Ok(Lookup::Miss) => None,
        Ok(Lookup::Corrupt(why)) => {
            warnings.push(format!(
                "prepared-data cache entry {} is corrupt ({why}); preparing the data again",
                entry.display()
            ));
            if let Err(e) = prep_cache::discard(root, key) {
                warnings.push(format!("{e:#}"));
            }
            None
        }
        Err(e) => {
            warnings.push(format!(
                "prepared-data cache {}: {e:#}; preparing the data again",
                entry.display()
            ));
            None
        }
    }
}

pub(super) fn check_vocab(
    tokenizer: &TextTokenizer,
    model: &ModelConfig,
    origin: &str,
) -> Result<()> {
    if tokenizer.vocab_size() > model.vocab_size {
        bail!(
            "tokenizer {origin} has {} tokens but model.vocab_size is {}: use --set model.vocab_size={} or a smaller tokenizer",
            tokenizer.vocab_size(),
            model.vocab_size,
            tokenizer.vocab_size()
        );
    }
    Ok(())
}

/// One line describing what SFT data preparation did, for the run's first notice.
pub fn sft_summary(d: &SftData) -> String {
    let skipped: Vec<String> = d
        .report
        .skipped
        .iter()
        .take(3)
        .map(|(l, why)| format!("line {l}: {why}"))
        .collect();
    let more = d.report.skipped.len().saturating_sub(3);
    format!(
        "instruction data: {} examples from {} lines; {} skipped{}{}; {} truncated to the context; {} train rows, {} held-out rows, {} response tokens",
        d.report.examples,
        d.report.lines,
        d.report.skipped.len(),
        if skipped.is_empty() { String::new() } else { format!(" ({})", skipped.join("; ")) },
        if more > 0 { format!(" +{more} more") } else { String::new() },
        d.truncated,
        d.train.len(),
        d.val.len(),
        d.response_tokens
    )
}
