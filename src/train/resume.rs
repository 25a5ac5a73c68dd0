//! Resuming a checkpoint without overwriting history: where the resumed run writes (in place,
//! a branch beside its parent, or a new run for a standalone checkpoint), what is moved aside
//! first, and the refusals of a resume that could not continue the checkpoint exactly.

use super::run_data::resolve_data;
use super::session::{write_run_config, DeviceSpec, EngineRequest, PreparedRun};
use crate::config::{ModelConfig, RunConfig};
use crate::controls::ControlRecord;
use crate::store::checkpoint::{self, LoadedCheckpoint};
use crate::store::history::{self, CheckpointPlace};
use crate::store::layout;
use crate::store::lineage::{self, ParentKind, ParentRecord};
use crate::store::listing::clean_leftovers;
use crate::store::lock::RunLock;
use crate::store::metrics_log::repair_torn_tail;
use crate::store::trainer_state::read_trainer_state;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// A resume that would not take a single step (the checkpoint is at or past `max_steps`, or
/// `--stop-at-step` is not after it) is refused: it would only log a no-op run.
fn refuse_nothing_to_train(
    ckpt: &Path,
    at: u64,
    max_steps: u64,
    stop_at: Option<u64>,
) -> Result<()> {
    if at >= max_steps {
        bail!(
            "{}: the checkpoint is at step {at} and train.max_steps is {max_steps}: nothing to train; raise --max-steps to continue it",
            ckpt.display()
        );
    }
    if let Some(stop) = stop_at.filter(|s| *s <= at) {
        bail!(
            "{}: --stop-at-step {stop} is not after the checkpoint's step {at}: nothing to train",
            ckpt.display()
        );
    }
    Ok(())
}

/// Keys of the `[model]` section whose values differ, as "key a -> b".
pub fn model_differences(a: &ModelConfig, b: &ModelConfig) -> Vec<String> {
    // Full tables: keys omitted at their defaults (head_dim, rope_scaling) still compare.
    let (ta, tb) = (a.to_full_table(), b.to_full_table());
    ta.iter()
        .filter(|(k, v)| tb.get(*k) != Some(v))
        .map(|(k, v)| {
            format!(
                "model.{k} {} -> {}",
                v,
                tb.get(k).map(|x| x.to_string()).unwrap_or_default()
            )
        })
        .collect()
}

/// How a resume chooses where it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ResumeMode {
    /// `train --resume`: the newest checkpoint continues in place, an older one branches, and
    /// live changes recorded after the checkpoint are replayed.
    Resume,
    /// A live rewind: always a new branch beside the run (the run's later history stays as it
    /// is), restoring the checkpoint's own state, controls included, with nothing replayed.
    Rewind,
}

/// The live control changes a newer checkpoint of the same run recorded after `ckpt`: the
/// newest checkpoint's list continues `ckpt`'s (its own is a prefix), and the extra entries
/// are what a resume must replay. A list that does not continue it is reported, not guessed.
fn recorded_replay(
    dir: &Path,
    ckpt: &LoadedCheckpoint,
) -> Result<(Vec<ControlRecord>, Option<String>)> {
    let CheckpointPlace::InRun(run_dir) = history::place_of(dir) else {
        return Ok((Vec::new(), None));
    };
    let step = ckpt.trainer.step;
    let Some(newest) = history::newest_complete_step(&run_dir).filter(|n| *n > step) else {
        return Ok((Vec::new(), None));
    };
    let newest_dir = layout::checkpoints_dir(&run_dir).join(layout::checkpoint_dir_name(newest));
    let later = read_trainer_state(&newest_dir)?.controls;
    let own = &ckpt.trainer.controls;
    if later.len() < own.len() || later[..own.len()] != own[..] {
        let notice = format!(
            "{}: its recorded live changes do not continue those of {}; none replayed",
            newest_dir.display(),
            dir.display()
        );
        return Ok((Vec::new(), Some(notice)));
    }
    Ok((later[own.len()..].to_vec(), None))
}

/// A `--set` of a key that a replayed change will set again is refused: either would silently
/// undo the other. The user changes it live after the replay, or resumes the newest checkpoint.
fn refuse_set_over_replay(overrides: &[String], replay: &[ControlRecord]) -> Result<()> {
    for item in overrides {
        let key = item
            .split_once('=')
            .map_or(item.as_str(), |(k, _)| k)
            .trim();
        if let Some(r) = replay.iter().find(|r| r.change.key == key) {
            bail!(
                "--set {key}: this resume replays the live change {key} {} -> {} recorded at step {}; drop --set {key} and change it live after that step, or resume the newest checkpoint",
                r.change.old,
                r.change.new,
                r.step
            );
        }
    }
    Ok(())
}

pub(super) fn prepare_resume(req: &EngineRequest, dir: &Path) -> Result<PreparedRun> {
    prepare_resume_as(req, dir, ResumeMode::Resume)
}

pub(super) fn prepare_resume_as(
    req: &EngineRequest,
    dir: &Path,
    mode: ResumeMode,
) -> Result<PreparedRun> {
    let ckpt = checkpoint::load(dir)?;
    let origin = dir.join(layout::TRAINER_FILE).display().to_string();
    let mut config = RunConfig::from_toml_str(&ckpt.trainer.config_toml, &origin)?;
    if req.config_explicit {
        let diff = model_differences(&ckpt.model_config, &req.config.model);
        if !diff.is_empty() {
            bail!(
                "{}: --config differs from the checkpoint's model ({}); resume without --config or start a new run",
                dir.display(),
                diff.join(", ")
            );
        }
        let mut explicit = req.config.clone();
        explicit.model = ckpt.model_config.clone();
        config = explicit;
    }
    config.apply_overrides(&req.overrides)?;
    let diff = model_differences(&ckpt.model_config, &config.model);
    if !diff.is_empty() {
        bail!(
            "{}: cannot change the model of a resumed run ({})",
            dir.display(),
            diff.join(", ")
        );
    }
    config.validate()?;
    refuse_nothing_to_train(dir, ckpt.trainer.step, config.train.max_steps, req.stop_at)?;
    crate::resources::ensure_training_fits(&config, req.device == DeviceSpec::Cpu)?;
    if !req.fresh_optimizer {
        ckpt.verify_moments()?;
    }
    let tokenizer = checkpoint::load_tokenizer(&ckpt)?;
    if tokenizer.vocab_size() != ckpt.trainer.vocab_size {
        bail!(
            "{}: tokenizer has {} tokens, the checkpoint was trained with {}",
            ckpt.tokenizer_path.display(),
            tokenizer.vocab_size(),
            ckpt.trainer.vocab_size
        );
    }
    let (replay, replay_notice) = match mode {
        ResumeMode::Resume => recorded_replay(dir, &ckpt)?,
        ResumeMode::Rewind => (Vec::new(), None),
    };
    refuse_set_over_replay(&req.overrides, &replay)?;
    let target = resume_target(req, dir, &ckpt, mode)?;
    let run_dir = target.run_dir.clone();
    let prepared = (|| {
        if let Some(origin) = &target.branched_from {
            history::link_run_data(origin, &run_dir)?;
            // An SFT run reads its own copy under data/: point the branch at the branch's copy.
            let own_data = origin.join("data");
            for c in config.data.corpus.iter_mut() {
                if let Ok(rest) = Path::new(c.as_str()).strip_prefix(&own_data) {
                    *c = run_dir.join("data").join(rest).display().to_string();
                }
            }
        }
        let (_, data) = resolve_data(
            &config,
            &run_dir,
            Some(tokenizer.clone()),
            None,
            &mut Vec::new(),
        )?;
        if target.new_dir {
            write_run_config(&run_dir, &config)?;
            let kind = match mode {
                ResumeMode::Resume => ParentKind::Branch,
                ResumeMode::Rewind => ParentKind::Rewind,
            };
            lineage::write_parent(&run_dir, &ParentRecord::of_checkpoint(kind, dir))?;
        }
        Ok(data)
    })();
    let data = match prepared {
        Ok(data) => data,
        Err(e) => {
            if target.new_dir {
                // A branch or standalone resume that cannot start leaves no half-made run: the
                // directory was created new for it (`claim_run_dir`), so all in it is ours.
                drop(target.lock);
                let _ = std::fs::remove_dir_all(&run_dir);
            }
            return Err(e);
        }
    };
    let (shards, sft) = data.split();
    let mut warnings = target.warnings;
    warnings.extend(ckpt.notice());
    warnings.extend(replay_notice);
    if let (Some(first), Some(last)) = (replay.first(), replay.last()) {
        warnings.push(format!(
            "replaying {} recorded live change(s) at steps {}..{} so this resume reproduces the run",
            replay.len(),
            first.step,
            last.step
        ));
    }
    if req.fresh_optimizer {
        warnings.push("--fresh-optimizer: AdamW moments discarded; expect a loss spike".into());
    } else if matches!(ckpt.moments, checkpoint::MomentsFile::Absent) {
        warnings.push(format!(
            "{}: no AdamW moments saved (optimizer_state: absent, as after an import); the optimizer starts them at zero",
            dir.display()
        ));
    }
    Ok(PreparedRun {
        run_name: target.run_name,
        run_dir,
        config,
        tokenizer,
        shards,
        sft,
        parent: Some(dir.display().to_string()),
        checkpoint: Some(ckpt),
        continue_state: true,
        replay,
        warnings,
        lock: Some(target.lock),
    })
}

/// Where a resume writes, already locked, with the notices of what was done to get there.
struct ResumeTarget {
    run_name: String,
    run_dir: PathBuf,
    lock: RunLock,
    /// True when the run directory was created for this resume (branch or standalone).
    new_dir: bool,
    /// The original run of a branch, whose data the branch links.
    branched_from: Option<PathBuf>,
    warnings: Vec<String>,
}

/// Decide where resuming `dir` continues, never overwriting history: the newest checkpoint of
/// a run continues in place (orphaned metrics lines moved aside); an older one branches into a
/// new run (or, with `--discard-later`, continues in place after moving the later history
/// aside); a checkpoint outside any run starts a new run in the runs directory.
fn resume_target(
    req: &EngineRequest,
    dir: &Path,
    ckpt: &LoadedCheckpoint,
    mode: ResumeMode,
) -> Result<ResumeTarget> {
    let step = ckpt.trainer.step;
    let run_dir = match history::place_of(dir) {
        CheckpointPlace::InRun(run_dir) => run_dir,
        CheckpointPlace::Standalone => {
            let trainer_file = dir.join(layout::TRAINER_FILE);
            let (base, what, uniquify) = match &req.run_name {
                Some(n) => (n.clone(), "--run-name".to_string(), false),
                None => (
                    ckpt.trainer.run_name.clone(),
                    format!("{}: run_name", trainer_file.display()),
                    true,
                ),
            };
            let claimed = history::claim_run_dir(&req.runs_dir, &base, &what, uniquify)?;
            let lock = RunLock::acquire(&claimed.dir)?;
            let notice = format!(
                "{} is not inside a run's checkpoints/; resuming it as the new run {} in {}",
                dir.display(),
                claimed.name,
                claimed.dir.display()
            );
            return Ok(ResumeTarget {
                run_name: claimed.name,
                run_dir: claimed.dir,
                lock,
                new_dir: true,
                branched_from: None,
                warnings: vec![notice],
            });
        }
    };
    let newest = history::newest_complete_step(&run_dir).unwrap_or(step);
    let mut cleanup_notices = Vec::new();
    if mode == ResumeMode::Resume && (step >= newest || req.discard_later) {
        let lock = RunLock::acquire(&run_dir)?;
        let mut warnings = clean_leftovers(&lock);
        // A restored interrupted swap may have brought back a newer checkpoint.
        let newest = history::newest_complete_step(&run_dir).unwrap_or(step);
        if step >= newest || req.discard_later {
            warnings.extend(repair_torn_tail(&lock)?);
            warnings.extend(history::discard_after(&lock, step)?);
            let run_name = run_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| ckpt.trainer.run_name.clone());
            return Ok(ResumeTarget {
                run_name,
                run_dir,
                lock,
                new_dir: false,
                branched_from: None,
                warnings,
            });
        }
        cleanup_notices = warnings;
    }
    let newest = history::newest_complete_step(&run_dir).unwrap_or(newest);
    let original = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let (base, what, uniquify) = match &req.run_name {
        Some(n) => (n.clone(), "--run-name".to_string(), false),
        None => (
            format!("{original}-branch-{step}"),
            "branch run name".to_string(),
            true,
        ),
    };
    // The branch sits beside its parent run, in that run's own runs directory.
    let runs_dir = match run_dir.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => req.runs_dir.as_path(),
    };
    let claimed = history::claim_run_dir(runs_dir, &base, &what, uniquify)?;
    let lock = RunLock::acquire(&claimed.dir)?;
    let notice = match mode {
        ResumeMode::Resume => format!(
            "{} (step {step}) is older than the newest checkpoint of {} (step {newest}); continuing as the new branch run {} in {}, the original run is left untouched (pass --discard-later to continue in place instead, moving the later history aside)",
            dir.display(),
            run_dir.display(),
            claimed.name,
            claimed.dir.display()
        ),
        ResumeMode::Rewind => format!(
            "rewound to {} (step {step}); continuing as the new branch run {} in {}, {} is left untouched",
            dir.display(),
            claimed.name,
            claimed.dir.display(),
            run_dir.display()
        ),
    };
    cleanup_notices.push(notice);
    Ok(ResumeTarget {
        run_name: claimed.name,
        run_dir: claimed.dir,
        lock,
        new_dir: true,
        branched_from: Some(run_dir),
        warnings: cleanup_notices,
    })
}
