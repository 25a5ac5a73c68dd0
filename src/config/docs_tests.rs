//! docs/CONFIG.md against the config structs: every key documented with its true default, and
//! no row for a key that does not exist. Hand-parsed tables: the format is ours and tiny.

use super::{RopeScaling, RunConfig};
use std::collections::BTreeMap;

const DOC: &str = include_str!("../../docs/CONFIG.md");

/// `section.key` -> the default written in the doc's table, as TOML text.
fn documented(doc: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut section = None;
    for line in doc.lines() {
        if let Some(rest) = line.strip_prefix("## `[") {
            section = rest.split(']').next().map(str::to_string);
            continue;
        }
        let cells: Vec<&str> = line.split(" | ").collect();
        let (Some(s), true) = (&section, cells.len() >= 3 && line.starts_with("| `")) else {
            continue;
        };
        let key = cells[0].trim_start_matches("| ").trim_matches('`');
        let default = cells[1].trim().trim_matches('`');
        let previous = out.insert(format!("{s}.{key}"), default.to_string());
        assert!(
            previous.is_none(),
            "docs/CONFIG.md documents {s}.{key} twice"
        );
    }
    out
}

/// `section.key` -> its default value, from serializing `RunConfig::default()` (with the
/// `[model]` keys serde omits at their default put back); a nested table's keys are dotted
/// (`model.rope_scaling.factor`), and the keys only a non-default variant of it has
/// (`rope_scaling`'s llama3 parameters) default to null (`none` in the doc).
fn actual() -> BTreeMap<String, serde_json::Value> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
        match v.as_object() {
            Some(map) => {
                for (k, child) in map {
                    let key = match prefix {
                        "" => k.clone(),
                        p => format!("{p}.{k}"),
                    };
                    walk(&key, child, out);
                }
            }
            None => {
                out.insert(prefix.to_string(), v.clone());
            }
        }
    }
    let defaults = RunConfig::default();
    let mut json = serde_json::to_value(&defaults).unwrap();
    json["model"] = serde_json::to_value(defaults.model.to_full_table()).unwrap();
    let mut out = BTreeMap::new();
    walk("", &json, &mut out);
    let variants = [
        RopeScaling::Linear { factor: 2.0 },
        RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192,
        },
    ];
    for variant in variants {
        let mut keys = BTreeMap::new();
        walk(
            "model.rope_scaling",
            &serde_json::to_value(variant).unwrap(),
            &mut keys,
        );
        for k in keys.into_keys() {
            out.entry(k).or_insert(serde_json::Value::Null);
        }
    }
    out
}

/// A documented default as JSON: TOML syntax, or `none` for an unset optional key.
fn parse_default(text: &str) -> Option<serde_json::Value> {
    if text == "none" {
        return Some(serde_json::Value::Null);
    }
    let table = toml::from_str::<toml::Table>(&format!("v = {text}")).ok()?;
    serde_json::to_value(&table["v"]).ok()
}

fn same(doc: &serde_json::Value, code: &serde_json::Value) -> bool {
    match (doc.as_f64(), code.as_f64()) {
        // f32 fields (the sampler knobs) serialize as 0.800000011920929: compare at f32 precision.
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * b.abs().max(1.0),
        _ => doc == code,
    }
}

/// Every way `doc` disagrees with the config structs, one message each.
fn disagreements(doc: &str) -> Vec<String> {
    let docs = documented(doc);
    let code = actual();
    let mut out = Vec::new();
    for k in code.keys().filter(|k| !docs.contains_key(*k)) {
        out.push(format!("{k} has no row in docs/CONFIG.md"));
    }
    for k in docs.keys().filter(|k| !code.contains_key(*k)) {
        out.push(format!(
            "docs/CONFIG.md documents {k}, which the config does not have"
        ));
    }
    for (key, text) in docs.iter().filter(|(k, _)| code.contains_key(*k)) {
        match parse_default(text) {
            Some(v) if same(&v, &code[key]) => {}
            _ => out.push(format!(
                "docs/CONFIG.md says {key} defaults to {text}, the code says {}",
                code[key]
            )),
        }
    }
    out
}

#[test]
fn every_config_key_is_documented_with_its_default() {
    let problems = disagreements(DOC);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_missing_row_or_a_wrong_default_is_caught() {
    let without_row: String = DOC
        .lines()
        .filter(|l| !l.starts_with("| `keep_every`"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        disagreements(&without_row),
        vec!["checkpoint.keep_every has no row in docs/CONFIG.md"]
    );
    let wrong = DOC.replace("| `d_model` | `256` |", "| `d_model` | `512` |");
    assert_eq!(
        disagreements(&wrong).len(),
        1,
        "{:?}",
        disagreements(&wrong)
    );
}
