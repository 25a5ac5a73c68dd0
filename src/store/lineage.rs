//! Where a run came from: `<run>/parent.json`, written once when a branch, rewind or fine-tune
//! creates its directory, so the runs index can draw a lineage tree without trusting names.
//! Runs made before this file existed fall back to the `origin` of their first `started` event.

use super::fsio::{read_bounded_string, write_atomic};
use super::history::{place_of, CheckpointPlace};
use super::layout::checkpoint_step;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `<run>/parent.json`.
pub const PARENT_FILE: &str = "parent.json";
/// parent.json is a few hundred bytes; anything much larger is not ours.
const MAX_PARENT_BYTES: u64 = 64 << 10;

/// How a run descends from its parent checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParentKind {
    /// Resuming an older checkpoint (or `--run-name`) continued in a new directory.
    Branch,
    /// A rewind from the cockpit (a branch made while training).
    Rewind,
    /// New run from a checkpoint's weights.
    FineTune,
}

impl ParentKind {
    /// Short word for tables and trees.
    pub fn label(self) -> &'static str {
        match self {
            ParentKind::Branch => "branch",
            ParentKind::Rewind => "rewind",
            ParentKind::FineTune => "fine-tune",
        }
    }
}

/// The durable parent record of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParentRecord {
    pub kind: ParentKind,
    /// The parent checkpoint as an absolute path when it could be resolved.
    pub checkpoint: String,
    /// Directory name of the parent run (None: a checkpoint outside any run, or an HF dir).
    pub run: Option<String>,
    /// Step of the parent checkpoint (None when its name carries none).
    pub step: Option<u64>,
}

impl ParentRecord {
    /// The record for a run started from `checkpoint`.
    pub fn of_checkpoint(kind: ParentKind, checkpoint: &Path) -> Self {
        let real = std::fs::canonicalize(checkpoint).unwrap_or_else(|_| checkpoint.to_path_buf());
        let run = match place_of(&real) {
            CheckpointPlace::InRun(run) => run.file_name().map(|n| n.to_string_lossy().into()),
            CheckpointPlace::Standalone => None,
        };
        Self {
            kind,
            checkpoint: real.display().to_string(),
            run,
            step: checkpoint_step(&real),
        }
    }

    /// The record implied by a `started` event's `origin` ("resume:<dir>", "finetune:<dir>",
    /// "rewind:<dir>"), for runs written before `parent.json` existed. A resume of the run's
    /// own checkpoint (continuing in place) is not a parent.
    pub fn from_origin(origin: &str, own_dir_name: &str) -> Option<Self> {
        let (kind, path) = if let Some(p) = origin.strip_prefix("finetune:") {
            (ParentKind::FineTune, p)
        } else if let Some(p) = origin.strip_prefix("rewind:") {
            (ParentKind::Rewind, p)
        } else {
            (ParentKind::Branch, origin.strip_prefix("resume:")?)
        };
        let path = Path::new(path);
        let run = path
            .parent()
            .filter(|p| p.file_name().is_some_and(|n| n == "checkpoints"))
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned());
        if kind != ParentKind::FineTune && run.as_deref() == Some(own_dir_name) {
            return None;
        }
        Some(Self {
            kind,
            checkpoint: path.display().to_string(),
            run,
            step: checkpoint_step(path),
        })
    }
}

/// Record `record` as the parent of the new run in `run_dir` (atomic, fsynced). Called by
/// the engine's preparation while it holds the new run's lock, before any event is logged.
pub fn write_parent(run_dir: &Path, record: &ParentRecord) -> Result<()> {
    let text = serde_json::to_string_pretty(record)? + "\n";
    write_atomic(&run_dir.join(PARENT_FILE), text.as_bytes())
}

/// The run's recorded parent: Ok(None) when it has no `parent.json`, an error naming the file
/// when one is there but unreadable (the index shows it as a note, never guesses).
pub fn read_parent(run_dir: &Path) -> Result<Option<ParentRecord>> {
    let path = run_dir.join(PARENT_FILE);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    let text = read_bounded_string(&path, MAX_PARENT_BYTES)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{}: not a parent record: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_origins_name_their_parent_run() {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = dir.path().join("a/checkpoints/step-00000010");
        std::fs::create_dir_all(&ckpt).unwrap();
        std::fs::write(dir.path().join("a/metrics.jsonl"), "").unwrap();
        let rec = ParentRecord::of_checkpoint(ParentKind::Branch, &ckpt);
        assert_eq!(rec.run.as_deref(), Some("a"));
        assert_eq!(rec.step, Some(10));
        let child = dir.path().join("a-branch-10");
        std::fs::create_dir(&child).unwrap();
        assert_eq!(read_parent(&child).unwrap(), None);
        write_parent(&child, &rec).unwrap();
        assert_eq!(read_parent(&child).unwrap(), Some(rec));
        std::fs::write(child.join(PARENT_FILE), "{").unwrap();
        assert!(read_parent(&child)
            .unwrap_err()
            .to_string()
            .contains(PARENT_FILE));

        let o = ParentRecord::from_origin("resume:/r/a/checkpoints/step-00000004", "b").unwrap();
        assert_eq!(
            (o.kind, o.run.as_deref(), o.step),
            (ParentKind::Branch, Some("a"), Some(4))
        );
        assert_eq!(
            ParentRecord::from_origin("resume:/r/a/checkpoints/step-4", "a"),
            None
        );
        let ft = ParentRecord::from_origin("finetune:/models/hf", "x").unwrap();
        assert_eq!((ft.kind, ft.run), (ParentKind::FineTune, None));
        assert_eq!(ParentRecord::from_origin("fresh", "x"), None);
    }
}
