//! TensorBoard event files, hand-written: three protobuf messages and a CRC-32C table are ~100
//! lines, while `tensorboard-rs` is unmaintained (last release 2022, protobuf 2, image 0.23) and
//! panics on I/O errors; prost would add a protoc build step for the same three messages.
//!
//! The format (TensorFlow's `record_writer`): each record is `u64 length` (LE), `u32 masked
//! CRC-32C of the length bytes`, the payload, `u32 masked CRC-32C of the payload`. Each payload
//! is an `Event` protobuf: `wall_time` (1, double), `step` (2, int64) and either
//! `file_version` (3, string; the first record) or `summary` (5): `Summary { repeated Value
//! value = 1 }`, `Value { string tag = 1; float simple_value = 2 }`.

use super::fsio::open_regular_with;
use crate::protocol::Event;
use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), one table lookup per byte.
const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |crc, &b| {
        CRC32C_TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8)
    })
}

/// TensorFlow's masked CRC (a CRC of data that embeds CRCs is weak, so records store this).
pub fn masked_crc32c(bytes: &[u8]) -> u32 {
    let crc = crc32c(bytes);
    (crc.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// One framed record: length, its masked CRC, the payload, its masked CRC.
pub fn frame_record(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc32c(payload).to_le_bytes());
    out
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    varint(out, ((field as u64) << 3) | wire_type as u64);
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// One scalar of a summary: a tag (`train/loss`) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub tag: String,
    pub value: f32,
}

/// An `Event` protobuf: the file-version header, or a summary of scalars at `step`.
pub fn event_payload(wall_time: f64, step: u64, what: &EventBody) -> Vec<u8> {
    let mut out = Vec::new();
    key(&mut out, 1, 1);
    out.extend_from_slice(&wall_time.to_le_bytes());
    key(&mut out, 2, 0);
    varint(&mut out, step);
    match what {
        EventBody::FileVersion(v) => bytes_field(&mut out, 3, v.as_bytes()),
        EventBody::Scalars(values) => {
            let mut summary = Vec::new();
            for s in values {
                let mut value = Vec::new();
                bytes_field(&mut value, 1, s.tag.as_bytes());
                key(&mut value, 2, 5);
                value.extend_from_slice(&s.value.to_le_bytes());
                bytes_field(&mut summary, 1, &value);
            }
            bytes_field(&mut out, 5, &summary);
        }
    }
    out
}

/// What an event record carries.
#[derive(Debug, Clone, PartialEq)]
pub enum EventBody {
    /// The first record of every file (`brain.Event:2`).
    FileVersion(String),
    Scalars(Vec<Scalar>),
}

/// The scalars TensorBoard shows for an engine event (none for most events).
pub fn scalars_of(event: &Event) -> Vec<Scalar> {
    let s = |tag: &str, value: f64| Scalar {
        tag: tag.to_string(),
        value: value as f32,
    };
    match event {
        Event::Step(st) => vec![
            s("train/loss", st.loss),
            s("train/lr", st.lr),
            s("train/grad_norm", st.grad_norm),
            s("train/tokens_per_s", st.tokens_per_s),
            s("train/step_ms", st.step_ms),
            s("train/tokens", st.tokens as f64),
        ],
        Event::Eval { val_loss, .. } => vec![s("val/loss", *val_loss)],
        _ => Vec::new(),
    }
}

fn unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// An open event file in a run directory: one per process that writes the run (the names
/// differ by time and pid, as TensorFlow's do), so a resume never rewrites an earlier file.
pub struct TfEventsWriter {
    file: File,
    path: PathBuf,
}

impl TfEventsWriter {
    /// Create `<run_dir>/events.out.tfevents.<unix>.llite-tui.<pid>.<n>` (never an existing file)
    /// and write its version header.
    pub fn create(run_dir: &Path) -> Result<Self> {
        let now = unix_seconds();
        // A rewind in place opens a second file in the same second: numbered, never reused.
        static OPENED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!(
            "events.out.tfevents.{}.llite-tui.{}.{n}",
            now as u64,
            std::process::id()
        );
        let path = run_dir.join(name);
        let mut options = OpenOptions::new();
        options.create_new(true).append(true);
        let file = open_regular_with(&mut options, &path, "write TensorBoard events to it")?;
        let mut w = Self { file, path };
        w.write(now, 0, &EventBody::FileVersion("brain.Event:2".into()))?;
        Ok(w)
    }

    /// The file's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, wall_time: f64, step: u64, body: &EventBody) -> Result<()> {
        let record = frame_record(&event_payload(wall_time, step, body));
        // One write per record, flushed: like metrics.jsonl, a crash tears only the last one
        // (TensorBoard's reader stops at a torn record).
        self.file
            .write_all(&record)
            .and_then(|_| self.file.flush())
            .with_context(|| format!("cannot append to {}", self.path.display()))
    }

    /// Append the scalars of `event`, if it has any.
    pub fn append(&mut self, event: &Event) -> Result<()> {
        let scalars = scalars_of(event);
        if scalars.is_empty() {
            return Ok(());
        }
        self.write(unix_seconds(), event.step(), &EventBody::Scalars(scalars))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `masked_crc32c(struct.pack("<Q", 5))`, `masked_crc32c(b"hello")` and `masked_crc32c(b"")`
    /// from TensorBoard 2.x's own implementation, run once to pin these values.
    const MASKED_LEN_5: u32 = 0x3e04_b2ea;
    const MASKED_HELLO: u32 = 0x191c_1fbb;
    const MASKED_EMPTY: u32 = 0xa282_ead8;

    #[test]
    fn crc32c_matches_the_rfc_3720_vectors() {
        // RFC 3720 (iSCSI) appendix B.4, the vectors TensorFlow's crc32c_test uses too.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
        let descending: Vec<u8> = (0..32).rev().collect();
        assert_eq!(crc32c(&descending), 0x113F_DB5C);
    }

    #[test]
    fn records_are_framed_as_tensorflow_frames_them() {
        let record = frame_record(b"hello");
        assert_eq!(record.len(), 8 + 4 + 5 + 4);
        assert_eq!(&record[..8], &5u64.to_le_bytes());
        // Known masked CRCs, computed by TensorBoard's own `masked_crc32c`
        // (tensorboard.compat.tensorflow_stub.pywrap_tensorflow).
        assert_eq!(record[8..12], MASKED_LEN_5.to_le_bytes());
        assert_eq!(&record[12..17], b"hello");
        assert_eq!(record[17..21], MASKED_HELLO.to_le_bytes());
        assert_eq!(masked_crc32c(b""), MASKED_EMPTY);
    }

    #[test]
    fn a_scalar_event_encodes_as_protobuf() {
        let payload = event_payload(
            1.5,
            300,
            &EventBody::Scalars(vec![Scalar {
                tag: "a".into(),
                value: 2.0,
            }]),
        );
        let mut want = vec![0x09];
        want.extend_from_slice(&1.5f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 0xac, 0x02]); // step 300 as a varint
                                                     // summary (field 5, 10 bytes): value (field 1, 8 bytes): tag "a", simple_value 2.0;
                                                     // the same bytes as TensorBoard's `event_pb2.Event(...).SerializeToString()`.
        want.extend_from_slice(&[0x2a, 0x0a, 0x0a, 0x08, 0x0a, 0x01, b'a', 0x15]);
        want.extend_from_slice(&2.0f32.to_le_bytes());
        assert_eq!(payload, want);
    }
}
