//! The control endpoint's wire format, version 1: one JSON object per line each way, parsed
//! by hand from a `serde_json::Value` so every refusal names the field at fault and nothing
//! beyond the documented commands and fields is accepted.
//!
//! Request: `{"v":1,"cmd":"status"}`; `cmd` is one of `status`, `pause`, `resume`, `save`,
//! `eval`, `set` (with `"setting":"train.lr=1e-4"`) or `sample` (with `"prompt"`, optional
//! `max_tokens`, `temperature`, `top_k`, `top_p`, `seed`); every command may carry
//! `"timeout_s"` (how long to wait for the engine, 1..=3600, default 60).
//! Reply: `{"v":1,"ok":true,"message":"paused at step 12", ...}` with, by command, `status`,
//! `checkpoint`, `val_loss`, `change`, `text`, `sample_id`; or `{"v":1,"ok":false,"error":...}`.

use crate::controls::{ControlSetting, ControlValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, Read};

/// The protocol version this build speaks; a request or reply with another is refused.
pub const PROTOCOL_VERSION: u32 = 1;
/// The longest line either side reads; a longer one is refused, never buffered.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// How long the server waits for the engine when a request names no `timeout_s`.
pub const DEFAULT_TIMEOUT_S: u64 = 60;
/// The longest wait a request may ask for.
pub const MAX_TIMEOUT_S: u64 = 3600;
/// The commands the endpoint accepts, in the order the docs list them.
pub const COMMANDS: &[&str] = &["status", "pause", "resume", "save", "eval", "set", "sample"];

/// Optional per-request sampling knobs; unset ones take the run's `[sample]` values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleKnobs {
    pub max_tokens: Option<usize>,
    pub temperature: Option<f32>,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    pub seed: Option<u64>,
}

/// What a client asks the run to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Status,
    Pause,
    Resume,
    Save,
    Eval,
    /// `key=value`, validated like `--set` before it reaches the engine.
    Set(String),
    Sample {
        prompt: String,
        knobs: SampleKnobs,
    },
}

/// One request line.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub action: Action,
    /// Seconds the server waits for the engine's answer.
    pub timeout_s: u64,
}

/// Every field a request may carry; unknown fields are refused by serde.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    v: Option<serde_json::Value>,
    cmd: Option<String>,
    setting: Option<String>,
    prompt: Option<String>,
    max_tokens: Option<usize>,
    temperature: Option<f32>,
    top_k: Option<usize>,
    top_p: Option<f32>,
    seed: Option<u64>,
    timeout_s: Option<u64>,
}

impl Request {
    /// A request with the default timeout.
    pub fn new(action: Action) -> Self {
        Self {
            action,
            timeout_s: DEFAULT_TIMEOUT_S,
        }
    }

    /// The command's name on the wire.
    pub fn cmd(&self) -> &'static str {
        match self.action {
            Action::Status => "status",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Save => "save",
            Action::Eval => "eval",
            Action::Set(_) => "set",
            Action::Sample { .. } => "sample",
        }
    }

    /// The request as one line (without the newline).
    pub fn to_line(&self) -> String {
        let mut obj = serde_json::json!({"v": PROTOCOL_VERSION, "cmd": self.cmd(), "timeout_s": self.timeout_s});
        match &self.action {
            Action::Set(s) => obj["setting"] = s.clone().into(),
            Action::Sample { prompt, knobs } => {
                obj["prompt"] = prompt.clone().into();
                let k = knobs;
                for (name, value) in [
                    ("max_tokens", k.max_tokens.map(serde_json::Value::from)),
                    ("temperature", k.temperature.map(serde_json::Value::from)),
                    ("top_k", k.top_k.map(serde_json::Value::from)),
                    ("top_p", k.top_p.map(serde_json::Value::from)),
                    ("seed", k.seed.map(serde_json::Value::from)),
                ] {
                    if let Some(v) = value {
                        obj[name] = v;
                    }
                }
            }
            _ => {}
        }
        obj.to_string()
    }

    /// Parse one request line, or say in one line what is wrong with it.
    pub fn parse(line: &str) -> Result<Self, String> {
        let raw: RawRequest = serde_json::from_str(line.trim())
            .map_err(|e| format!("malformed request: {e} (expected one JSON object per line, e.g. {{\"v\":1,\"cmd\":\"status\"}})"))?;
        match &raw.v {
            Some(v) if v.as_u64() == Some(PROTOCOL_VERSION as u64) => {}
            Some(v) => {
                return Err(format!(
                    "unsupported protocol version {v} (this run speaks {PROTOCOL_VERSION})"
                ))
            }
            None => {
                return Err(format!(
                    "malformed request: missing \"v\" (the protocol version, {PROTOCOL_VERSION})"
                ))
            }
        }
        let cmd = raw.cmd.as_deref().ok_or_else(|| {
            format!(
                "malformed request: missing \"cmd\" (one of {})",
                COMMANDS.join(", ")
            )
        })?;
        let timeout_s = raw.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S);
        if !(1..=MAX_TIMEOUT_S).contains(&timeout_s) {
            return Err(format!(
                "timeout_s must be 1..={MAX_TIMEOUT_S} seconds, got {timeout_s}"
            ));
        }
        let knobs = SampleKnobs {
            max_tokens: raw.max_tokens,
            temperature: raw.temperature,
            top_k: raw.top_k,
            top_p: raw.top_p,
            seed: raw.seed,
        };
        let extra_for = |allowed: &[&str]| -> Result<(), String> {
            let present = [
                ("setting", raw.setting.is_some()),
                ("prompt", raw.prompt.is_some()),
                ("max_tokens", knobs.max_tokens.is_some()),
                ("temperature", knobs.temperature.is_some()),
                ("top_k", knobs.top_k.is_some()),
                ("top_p", knobs.top_p.is_some()),
                ("seed", knobs.seed.is_some()),
            ];
            match present.iter().find(|(n, p)| *p && !allowed.contains(n)) {
                Some((n, _)) => Err(format!("`{cmd}` takes no \"{n}\" field")),
                None => Ok(()),
            }
        };
        let action = match cmd {
            "status" | "pause" | "resume" | "save" | "eval" => {
                extra_for(&[])?;
                match cmd {
                    "status" => Action::Status,
                    "pause" => Action::Pause,
                    "resume" => Action::Resume,
                    "save" => Action::Save,
                    _ => Action::Eval,
                }
            }
            "set" => {
                extra_for(&["setting"])?;
                let s = raw.setting.clone().ok_or(
                    "`set` needs \"setting\": \"key=value\", e.g. \"train.lr=1e-4\"".to_string(),
                )?;
                Action::Set(s)
            }
            "sample" => {
                extra_for(&[
                    "prompt",
                    "max_tokens",
                    "temperature",
                    "top_k",
                    "top_p",
                    "seed",
                ])?;
                let prompt = raw
                    .prompt
                    .clone()
                    .ok_or("`sample` needs \"prompt\"".to_string())?;
                Action::Sample { prompt, knobs }
            }
            other => {
                return Err(format!(
                    "unknown command `{other}`; this endpoint accepts: {}",
                    COMMANDS.join(", ")
                ))
            }
        };
        Ok(Self { action, timeout_s })
    }
}

/// What a run reports about itself (`status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    pub run_name: String,
    pub run_dir: String,
    /// The process serving the endpoint.
    pub pid: u32,
    /// `running`, `paused` or `finished`.
    pub state: String,
    /// Completed optimizer steps.
    pub step: u64,
    pub max_steps: u64,
    pub tokens: u64,
    pub last_loss: Option<f64>,
    pub last_val_loss: Option<f64>,
    /// Current values of the live keys (`controls::LIVE_KEYS`).
    pub controls: BTreeMap<String, ControlValue>,
}

/// One reply line. `message` is a one-line human summary (the error when `ok` is false).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub v: u32,
    pub ok: bool,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
    /// `save`: the checkpoint written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// `eval`: the validation loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    /// `set`: the change the engine applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<ControlSetting>,
    /// `sample`: the generated text, and the id the engine logged it under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_id: Option<u64>,
}

impl Reply {
    /// A success with a one-line message.
    pub fn ok(message: impl Into<String>) -> Self {
        Self {
            v: PROTOCOL_VERSION,
            ok: true,
            message: message.into(),
            status: None,
            checkpoint: None,
            val_loss: None,
            change: None,
            text: None,
            sample_id: None,
        }
    }

    /// A refusal or failure with a one-line message.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            ..Self::ok(one_line(&message.into()))
        }
    }

    /// The reply as one line (without the newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"v":1,"ok":false,"message":"reply could not be encoded"}"#.to_string()
        })
    }
}

/// Newlines folded into spaces, so every message stays one line on the wire and in a terminal.
pub fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// How reading one line ended.
#[derive(Debug, PartialEq)]
pub enum LineRead {
    Line(String),
    /// The peer closed the connection before sending anything more.
    Eof,
    /// The line exceeded [`MAX_LINE_BYTES`] (nothing more is read from this peer).
    TooLong,
}

/// Read one `\n`-terminated line of at most [`MAX_LINE_BYTES`], never allocating more; a
/// timeout or I/O error comes back as the error (the stream's own timeouts bound the wait).
pub fn read_line(reader: &mut impl BufRead) -> std::io::Result<LineRead> {
    let mut buf = Vec::new();
    let mut limited = (&mut *reader).take(MAX_LINE_BYTES as u64 + 1);
    limited.read_until(b'\n', &mut buf)?;
    if buf.is_empty() {
        return Ok(LineRead::Eof);
    }
    // A last line without a newline before EOF still counts; only an overlong one is refused.
    if buf.last() != Some(&b'\n') && buf.len() > MAX_LINE_BYTES {
        return Ok(LineRead::TooLong);
    }
    Ok(LineRead::Line(
        String::from_utf8_lossy(&buf).trim_end().to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_refusals_name_the_field() {
        for action in [
            Action::Status,
            Action::Pause,
            Action::Set("train.lr=1e-4".into()),
            Action::Sample {
                prompt: "ROMEO:".into(),
                knobs: SampleKnobs {
                    max_tokens: Some(8),
                    temperature: Some(0.0),
                    ..Default::default()
                },
            },
        ] {
            let r = Request::new(action);
            assert_eq!(Request::parse(&r.to_line()).unwrap(), r);
        }
        let e = |line: &str| Request::parse(line).unwrap_err();
        assert!(e("{").contains("malformed request"));
        assert!(e(r#"{"cmd":"status"}"#).contains("missing \"v\""));
        assert!(e(r#"{"v":2,"cmd":"status"}"#).contains("unsupported protocol version 2"));
        assert!(e(r#"{"v":1,"cmd":"rm"}"#).contains("unknown command `rm`"));
        assert!(e(r#"{"v":1,"cmd":"status","path":"/"}"#).contains("unknown field"));
        assert!(e(r#"{"v":1,"cmd":"pause","prompt":"x"}"#).contains("takes no \"prompt\""));
        assert!(e(r#"{"v":1,"cmd":"set"}"#).contains("needs \"setting\""));
        assert!(e(r#"{"v":1,"cmd":"eval","timeout_s":0}"#).contains("timeout_s"));
    }

    #[test]
    fn lines_are_bounded() {
        let long = vec![b'x'; MAX_LINE_BYTES + 10];
        let mut r = std::io::Cursor::new(long);
        assert_eq!(read_line(&mut r).unwrap(), LineRead::TooLong);
        let mut r = std::io::Cursor::new(b"{\"a\":1}\nrest".to_vec());
        assert_eq!(
            read_line(&mut r).unwrap(),
            LineRead::Line("{\"a\":1}".into())
        );
        assert_eq!(read_line(&mut r).unwrap(), LineRead::Line("rest".into()));
        assert_eq!(read_line(&mut r).unwrap(), LineRead::Eof);
        let reply = Reply::error("a\nb");
        assert_eq!(reply.message, "a b");
        let back: Reply = serde_json::from_str(&reply.to_line()).unwrap();
        assert_eq!(back, reply);
    }
}
