//! What a `tokenizer.json` cannot hold: the chat template and the named special tokens (bos,
//! eos, pad, unk, generation's stop list), read from and written as Hugging Face's
//! `tokenizer_config.json`, `chat_template.jinja` and `generation_config.json`, so they survive
//! import -> checkpoint -> export unchanged.

use crate::store::fsio::{read_bounded_string, MAX_METADATA_BYTES};
use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use std::path::Path;
use tokenizers::Tokenizer;

/// transformers' tokenizer settings file (special tokens, chat template).
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";
/// The chat template as its own file (transformers >= 4.43 writes it; it wins over the JSON).
pub const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";
/// transformers' generation defaults (bos, the eos list, pad).
pub const GENERATION_CONFIG_FILE: &str = "generation_config.json";

/// A named special token and its id in the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialToken {
    pub content: String,
    pub id: u32,
}

/// The chat template and special tokens a model carries besides its vocabulary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenizerMeta {
    /// Jinja source of the model's chat template, if it has one.
    pub chat_template: Option<String>,
    pub bos: Option<SpecialToken>,
    pub eos: Option<SpecialToken>,
    pub pad: Option<SpecialToken>,
    pub unk: Option<SpecialToken>,
    /// Every id generation stops at (`generation_config.json`'s `eos_token_id`); empty when the
    /// model names none besides its end-of-text.
    pub stop_ids: Vec<u32>,
}

impl TokenizerMeta {
    /// The GPT-2 convention our own tokenizers follow: bos = eos = unk = end-of-text, no pad.
    pub fn gpt2_style(eot_token: &str, eot: u32) -> Self {
        let t = Some(SpecialToken {
            content: eot_token.to_string(),
            id: eot,
        });
        Self {
            chat_template: None,
            bos: t.clone(),
            eos: t.clone(),
            pad: None,
            unk: t,
            stop_ids: Vec::new(),
        }
    }

    /// Read what an HF-style directory (an HF model or a checkpoint) says about `tok`:
    /// `tokenizer_config.json`, `chat_template.jinja`, `generation_config.json`, and the ids
    /// in `config` (its `config.json`) where the files name none. `None` when the directory has
    /// none of the three files (a checkpoint written before they were kept).
    pub fn read_dir(dir: &Path, tok: &Tokenizer, config: Option<&Value>) -> Result<Option<Self>> {
        let tc_path = dir.join(TOKENIZER_CONFIG_FILE);
        let jinja_path = dir.join(CHAT_TEMPLATE_FILE);
        let gen_path = dir.join(GENERATION_CONFIG_FILE);
        if !tc_path.exists() && !jinja_path.exists() && !gen_path.exists() {
            return Ok(None);
        }
        let tc = read_json(&tc_path)?.unwrap_or(Value::Null);
        let gen = read_json(&gen_path)?.unwrap_or(Value::Null);
        let mut meta = Self::from_config_ids(tok, config, &tc_path)?;
        for (key, slot) in [
            ("bos_token", &mut meta.bos),
            ("eos_token", &mut meta.eos),
            ("pad_token", &mut meta.pad),
            ("unk_token", &mut meta.unk),
        ] {
            match tc.get(key) {
                Some(Value::Null) => *slot = None,
                Some(v) => *slot = Some(named_token(v, tok, &tc_path, key)?),
                None => {}
            }
        }
        meta.chat_template = if jinja_path.exists() {
            Some(read_bounded_string(&jinja_path, MAX_METADATA_BYTES)?)
        } else {
            template_from_json(tc.get("chat_template"), &tc_path)?
        };
        if let Some(ids) = id_list(gen.get("eos_token_id"), tok, &gen_path)? {
            meta.stop_ids = ids;
        }
        if let Some(t) = &meta.chat_template {
            // A template that cannot compile is refused here, not carried into every checkpoint.
            let origin = match jinja_path.exists() {
                true => jinja_path.display().to_string(),
                false => tc_path.display().to_string(),
            };
            super::chat_template::check_source(t, &origin)?;
            super::chat_template::ChatTemplate::new(t, Default::default(), &origin)?;
        }
        Ok(Some(meta))
    }

    /// Special tokens from a `config.json`'s `bos_token_id` / `eos_token_id` / `pad_token_id`
    /// alone (an HF directory without tokenizer files of its own); `origin` names errors.
    pub fn from_config_ids(tok: &Tokenizer, config: Option<&Value>, origin: &Path) -> Result<Self> {
        let mut meta = Self::default();
        let Some(cfg) = config else {
            return Ok(meta);
        };
        let by_id = |key: &str| -> Result<Option<SpecialToken>> {
            let ids = id_list(cfg.get(key), tok, origin)?;
            Ok(ids
                .and_then(|ids| ids.first().copied())
                .map(|id| SpecialToken {
                    content: tok.id_to_token(id).unwrap_or_default(),
                    id,
                }))
        };
        meta.bos = by_id("bos_token_id")?;
        meta.eos = by_id("eos_token_id")?;
        meta.pad = by_id("pad_token_id")?;
        if let Some(ids) = id_list(cfg.get("eos_token_id"), tok, origin)? {
            if ids.len() > 1 {
                meta.stop_ids = ids;
            }
        }
        Ok(meta)
    }

    /// `tokenizer_config.json` for transformers' `PreTrainedTokenizerFast`, with the chat template.
    pub fn tokenizer_config(&self, model_max_length: usize) -> Value {
        let mut m = Map::new();
        m.insert("tokenizer_class".into(), json!("PreTrainedTokenizerFast"));
        for (key, t) in self.named() {
            m.insert(key.into(), t.map_or(Value::Null, |t| json!(t.content)));
        }
        if let Some(t) = &self.chat_template {
            m.insert("chat_template".into(), json!(t));
        }
        m.insert("model_max_length".into(), json!(model_max_length));
        m.insert("clean_up_tokenization_spaces".into(), json!(false));
        Value::Object(m)
    }

    /// `generation_config.json`: bos, the eos (a list when generation stops at several), pad.
    pub fn generation_config(&self, eot: u32) -> Value {
        let mut m = Map::new();
        if let Some(b) = &self.bos {
            m.insert("bos_token_id".into(), json!(b.id));
        }
        let eos = match self.stop_ids.len() {
            0 => json!(eot),
            1 => json!(self.stop_ids[0]),
            _ => json!(self.stop_ids),
        };
        m.insert("eos_token_id".into(), eos);
        if let Some(p) = &self.pad {
            m.insert("pad_token_id".into(), json!(p.id));
        }
        Value::Object(m)
    }

    fn named(&self) -> [(&'static str, Option<&SpecialToken>); 4] {
        [
            ("bos_token", self.bos.as_ref()),
            ("eos_token", self.eos.as_ref()),
            ("pad_token", self.pad.as_ref()),
            ("unk_token", self.unk.as_ref()),
        ]
    }
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = read_bounded_string(path, MAX_METADATA_BYTES)?;
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("{}: invalid JSON", path.display()))
}

/// A token named as a string or as transformers' AddedToken object (`{"content": ...}`).
fn named_token(v: &Value, tok: &Tokenizer, origin: &Path, key: &str) -> Result<SpecialToken> {
    let content = v
        .as_str()
        .or_else(|| v.get("content").and_then(Value::as_str))
        .with_context(|| {
            format!(
                "{}: {key} is neither a string nor {{\"content\": ...}}",
                origin.display()
            )
        })?;
    let id = tok.token_to_id(content).with_context(|| {
        format!(
            "{}: {key} {content:?} is not in the tokenizer's vocabulary",
            origin.display()
        )
    })?;
    Ok(SpecialToken {
        content: content.to_string(),
        id,
    })
}

/// An id or list of ids, each checked against the vocabulary.
fn id_list(v: Option<&Value>, tok: &Tokenizer, origin: &Path) -> Result<Option<Vec<u32>>> {
    let ids: Vec<u64> = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_u64).collect(),
        Some(x) => x.as_u64().into_iter().collect(),
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let id32 = u32::try_from(id)
            .ok()
            .filter(|&i| tok.id_to_token(i).is_some());
        let Some(id32) = id32 else {
            bail!(
                "{}: token id {id} is not in the tokenizer's vocabulary",
                origin.display()
            );
        };
        out.push(id32);
    }
    Ok((!out.is_empty()).then_some(out))
}

/// `chat_template` as a string, or transformers' list of named templates (the `default` one).
fn template_from_json(v: Option<&Value>, origin: &Path) -> Result<Option<String>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Array(list)) => {
            let default = list
                .iter()
                .find(|t| t.get("name").and_then(Value::as_str) == Some("default"));
            match default
                .and_then(|t| t.get("template"))
                .and_then(Value::as_str)
            {
                Some(s) => Ok(Some(s.to_string())),
                None => bail!(
                    "{}: chat_template is a list without a `default` template; llite-tui needs one",
                    origin.display()
                ),
            }
        }
        Some(_) => bail!(
            "{}: chat_template is neither a string nor a list",
            origin.display()
        ),
    }
}
