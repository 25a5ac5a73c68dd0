//! `--set section.key=value`: overrides applied to a resolved config through its TOML form,
//! so every key is settable by the name it has in a preset and typos are refused.

use super::{ModelConfig, RunConfig};
use anyhow::{Context, Result};

impl RunConfig {
    /// Apply `section.key=value` overrides; unknown keys are errors, never silently ignored.
    pub fn apply_overrides(&mut self, overrides: &[String]) -> Result<()> {
        if overrides.is_empty() {
            return Ok(());
        }
        let mut root = toml::Value::try_from(&*self)?;
        if let Some(model) = root.get_mut("model").and_then(|v| v.as_table_mut()) {
            ModelConfig::fill_omitted_defaults(model);
        }
        for item in overrides {
            let (key, raw) = item.split_once('=').with_context(|| {
                format!("--set {item}: expected section.key=value, e.g. train.lr=3e-4")
            })?;
            let (section, field) = key.trim().split_once('.').with_context(|| {
                format!("--set {item}: expected section.key=value, e.g. train.lr=3e-4")
            })?;
            let table = root
                .get_mut(section)
                .and_then(|v| v.as_table_mut())
                .with_context(|| {
                    format!(
                        "--set {item}: unknown section `{section}` (model, data, train, checkpoint, sample, ui, sft, chronicle, log, parallel)"
                    )
                })?;
            let known: Vec<_> = table.keys().cloned().collect();
            let slot = table.get_mut(field).with_context(|| {
                format!(
                    "--set {item}: unknown key `{field}` in [{section}] (known: {})",
                    known.join(", ")
                )
            })?;
            *slot = parse_override_value(raw.trim(), slot);
        }
        *self = root
            .try_into()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("--set: {}", one_line(&e)))?;
        Ok(())
    }
}

/// Interpret an override with the type of the value it replaces, so `train.lr=1` stays a float
/// and `data.tokenizer=gpt2` needs no quotes.
fn parse_override_value(raw: &str, current: &toml::Value) -> toml::Value {
    use toml::Value;
    let parsed: Option<Value> = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"));
    match (current, parsed) {
        (Value::Float(_), Some(Value::Integer(i))) => Value::Float(i as f64),
        (Value::String(_), Some(Value::String(s))) => Value::String(s),
        (Value::String(_), _) => Value::String(raw.to_string()),
        (Value::Array(_), Some(Value::Array(a))) => Value::Array(a),
        (Value::Array(_), _) => Value::Array(
            raw.split(',')
                .map(|s| Value::String(s.trim().to_string()))
                .collect(),
        ),
        (_, Some(v)) => v,
        (_, None) => Value::String(raw.to_string()),
    }
}

/// TOML errors span several lines with a caret diagram; the CLI promises one line.
pub(super) fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^'))
        .collect::<Vec<_>>()
        .join(" ")
}
