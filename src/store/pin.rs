//! Pinning: a checkpoint saved on demand carries `pinned: true` in its (self-digested)
//! `trainer.json`, so retention keeps it; a user may unpin it (or pin another) from the browser.

use super::fsio::{read_bounded_string, write_atomic, MAX_METADATA_BYTES};
use super::layout::{is_final_checkpoint_name, TRAINER_FILE};
use super::trainer_state::{read_trainer_record, repin_trainer_json};
use anyhow::{bail, Result};
use std::path::Path;

/// Set a checkpoint's `pinned` flag on a user's request: only a verified `step-N` checkpoint
/// with digests, never in a run another process is training (its retention reads the flag);
/// `trainer.json` is rewritten atomically with its own digest recomputed and every other
/// byte kept, so `ckpt ls --verify` and loading still pass. Returns the flag now set.
pub fn set_pinned_by_user(dir: &Path, pinned: bool) -> Result<bool> {
    if !is_final_checkpoint_name(dir) {
        bail!(
            "refusing to change the pin of {}: not a checkpoint directory",
            dir.display()
        );
    }
    let run_dir = super::layout::run_dir_of(dir);
    if let Some(holder) = super::lock::foreign_holder(&run_dir)? {
        bail!(
            "refusing to change the pin of {}: {}",
            dir.display(),
            holder.refusal(&run_dir)
        );
    }
    write_pin(dir, pinned)
}

/// Pin a checkpoint the caller's own run wrote (the engine, holding the run's lock): a stop
/// with save that finds the current step already saved pins that checkpoint instead.
pub fn pin_own_checkpoint(dir: &Path) -> Result<()> {
    write_pin(dir, true).map(|_| ())
}

/// Rewrite `trainer.json` with the flag set (nothing when it already is); returns the flag.
fn write_pin(dir: &Path, pinned: bool) -> Result<bool> {
    let path = dir.join(TRAINER_FILE);
    // Verifies the file's own digest first: a corrupt file is refused, never re-digested.
    let record = read_trainer_record(dir)?;
    if record.state.pinned == pinned {
        return Ok(pinned);
    }
    let text = read_bounded_string(&path, MAX_METADATA_BYTES)?;
    if record.files.is_none() {
        bail!(
            "{}: written before digests; cannot be pinned",
            path.display()
        );
    }
    let Some(edited) = repin_trainer_json(&text, pinned) else {
        bail!(
            "{}: written before pinning existed; it has no pin to change",
            path.display()
        );
    };
    write_atomic(&path, edited.as_bytes())?;
    Ok(pinned)
}
