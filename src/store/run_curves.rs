//! What the runs view overlays and compares: a run's train and val loss curves (by step,
//! tokens and wall-clock) and its config flattened to `section.key = value`, read with the
//! same bounds as the runs index. Plain data only, so the UI can draw it without reading files.

use super::fsio::read_bounded_string;
use super::layout::{metrics_path, RUN_CONFIG_FILE};
use super::runs::{event_kind, scan_lines, MAX_SCAN_BYTES};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Points kept per curve; longer ones are thinned evenly (the last point always kept).
pub const MAX_POINTS: usize = 2_000;
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// One point of a loss curve with every x axis the view can switch to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    pub step: u64,
    pub tokens: u64,
    /// Seconds since the run's first logged event.
    pub secs: f64,
    pub loss: f64,
}

/// A run's curves and config, loaded for the runs view.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunCurves {
    pub dir: PathBuf,
    /// Display name, for the legend.
    pub name: String,
    pub train: Vec<CurvePoint>,
    pub val: Vec<CurvePoint>,
    /// `run.toml` flattened: `train.lr` -> `0.0003`.
    pub config: BTreeMap<String, String>,
    pub notes: Vec<String>,
}

#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    step: u64,
    #[serde(default)]
    tokens: u64,
    #[serde(default)]
    loss: Option<f64>,
    #[serde(default)]
    val_loss: Option<f64>,
    #[serde(default)]
    time: String,
}

/// Load `dir`'s curves and config; unreadable parts become notes.
pub fn load_curves(dir: &Path, name: &str) -> RunCurves {
    let mut out = RunCurves {
        dir: dir.to_path_buf(),
        name: name.to_string(),
        ..Default::default()
    };
    let mut t0: Option<std::time::SystemTime> = None;
    let mut tokens = 0u64;
    let scanned = scan_lines(&metrics_path(dir), MAX_SCAN_BYTES, |raw, _| {
        let kind = event_kind(raw);
        if !matches!(kind, Some("step" | "eval" | "started")) {
            return;
        }
        let Ok(l) = serde_json::from_slice::<Line>(raw) else {
            return;
        };
        let at = humantime::parse_rfc3339_weak(&l.time).ok();
        let start = *t0.get_or_insert_with(|| at.unwrap_or(std::time::UNIX_EPOCH));
        let secs = at
            .and_then(|a| a.duration_since(start).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        match (kind, l.loss, l.val_loss) {
            (Some("step"), Some(loss), _) if loss.is_finite() => {
                // A resume after discarded history restarts the step count: keep it monotone.
                out.train.retain(|p| p.step < l.step);
                tokens = l.tokens;
                out.train.push(CurvePoint {
                    step: l.step,
                    tokens,
                    secs,
                    loss,
                });
            }
            (Some("eval"), _, Some(loss)) if loss.is_finite() => {
                out.val.retain(|p| p.step < l.step);
                out.val.push(CurvePoint {
                    step: l.step,
                    tokens,
                    secs,
                    loss,
                });
            }
            _ => {}
        }
    });
    match scanned {
        Ok(true) => out.notes.push(format!(
            "{}: only its newest {} MiB are shown",
            metrics_path(dir).display(),
            MAX_SCAN_BYTES >> 20
        )),
        Ok(false) => {}
        Err(e) => out.notes.push(format!("{e:#}")),
    }
    thin(&mut out.train);
    thin(&mut out.val);
    match read_config(dir) {
        Ok(c) => out.config = c,
        Err(e) => out.notes.push(format!("{e:#}")),
    }
    out
}

/// Keep at most `MAX_POINTS` evenly spaced points, the last one included.
fn thin(points: &mut Vec<CurvePoint>) {
    if points.len() <= MAX_POINTS {
        return;
    }
    let n = points.len();
    let last = points[n - 1];
    let stride = n.div_ceil(MAX_POINTS - 1);
    let mut kept: Vec<CurvePoint> = points.iter().step_by(stride).copied().collect();
    if kept.last() != Some(&last) {
        kept.push(last);
    }
    *points = kept;
}

/// `run.toml` flattened to dotted keys.
pub fn read_config(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let path = dir.join(RUN_CONFIG_FILE);
    let text = read_bounded_string(&path, MAX_CONFIG_BYTES)?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: not TOML: {}",
            path.display(),
            e.message().replace('\n', " ")
        )
    })?;
    let mut out = BTreeMap::new();
    flatten("", &toml::Value::Table(table), &mut out);
    Ok(out)
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        toml::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// One config key whose value differs between the compared runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigDiffRow {
    pub key: String,
    /// One value per run, in the order given (None: the key is absent there).
    pub values: Vec<Option<String>>,
}

/// The keys whose values are not the same in every one of `configs`, sorted by key.
pub fn config_diff(configs: &[&BTreeMap<String, String>]) -> Vec<ConfigDiffRow> {
    let keys: std::collections::BTreeSet<&String> = configs.iter().flat_map(|c| c.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let values: Vec<Option<String>> = configs.iter().map(|c| c.get(k).cloned()).collect();
            let differ = values.iter().any(|v| v != &values[0]);
            differ.then(|| ConfigDiffRow {
                key: k.clone(),
                values,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_carry_every_axis_and_configs_diff_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let lines = [
            r#"{"event":"started","step":0,"time":"2026-11-30T05:00:00Z"}"#,
            r#"{"event":"step","step":1,"loss":4.0,"lr":0.1,"grad_norm":1.0,"tokens":64,"step_ms":1.0,"tokens_per_s":1.0,"time":"2026-11-30T05:00:02Z"}"#,
            r#"{"event":"step","step":2,"loss":3.5,"lr":0.1,"grad_norm":1.0,"tokens":128,"step_ms":1.0,"tokens_per_s":1.0,"time":"2026-11-30T05:00:04Z"}"#,
            r#"{"event":"eval","step":2,"val_loss":3.75,"time":"2026-11-30T05:00:05Z"}"#,
            r#"{"event":"step","step":3,"loss":NaN}"#,
        ];
        std::fs::write(metrics_path(dir.path()), lines.join("\n") + "\n").unwrap();
        std::fs::write(
            dir.path().join(RUN_CONFIG_FILE),
            "[train]\nlr = 0.001\nseed = 1\n[data]\ncorpus = [\"a.txt\"]\n",
        )
        .unwrap();
        let c = load_curves(dir.path(), "a");
        assert_eq!(c.train.len(), 2);
        assert_eq!(
            (c.train[1].step, c.train[1].tokens, c.train[1].secs),
            (2, 128, 4.0)
        );
        assert_eq!(
            (c.val[0].tokens, c.val[0].secs, c.val[0].loss),
            (128, 5.0, 3.75)
        );
        assert_eq!(c.config["train.lr"], "0.001");
        assert!(c.notes.is_empty(), "{:?}", c.notes);

        let mut other = c.config.clone();
        other.insert("train.lr".into(), "0.002".into());
        other.remove("train.seed");
        let d = config_diff(&[&c.config, &other]);
        let keys: Vec<&str> = d.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["train.lr", "train.seed"]);
        assert_eq!(d[1].values, vec![Some("1".to_string()), None]);

        let mut many: Vec<CurvePoint> = (0..10_001)
            .map(|i| CurvePoint {
                step: i,
                tokens: i,
                secs: 0.0,
                loss: 1.0,
            })
            .collect();
        thin(&mut many);
        assert!(many.len() <= MAX_POINTS, "{}", many.len());
        assert_eq!(many.last().unwrap().step, 10_000);
    }
}
