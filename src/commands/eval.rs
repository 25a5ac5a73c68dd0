//! `eval`: perplexity or multiple-choice accuracy of a checkpoint (recorded in its run's
//! metrics.jsonl) or of a Hugging Face model directory (printed only).

use super::resolve_checkpoint;
use super::sample::load_for_reading;
use crate::cli::EvalArgs;
use anyhow::{bail, Context, Result};
use llite_tui::progress::WorkProgress;
use llite_tui::{store, train};

/// `eval`: score a checkpoint on a task, print the result with a progress display while it
/// runs, and append it to the run's metrics.jsonl as `task_eval`.
pub(crate) fn eval(args: &EvalArgs) -> Result<()> {
    use llite_tui::data::sft::Template;
    use llite_tui::protocol::Event;
    if args.limit == 0 {
        bail!("eval: --limit 0 would evaluate nothing; give at least 1");
    }
    if let Some(f) = args.held_out {
        if !(f > 0.0 && f < 1.0) {
            bail!("eval: --held-out {f} must be a fraction in (0, 1), the data.val_fraction the SFT run used");
        }
    }
    let checkpoint = resolve_checkpoint(&args.checkpoint)?;
    let (ckpt, cfg) = load_for_reading(&checkpoint)?;
    let tokenizer = store::checkpoint::load_tokenizer(&ckpt)?;
    let template = match args.template.as_deref() {
        Some(name) => Some(Template::resolve(name, &tokenizer)?),
        None => llite_tui::data::template::prompt_template(&cfg, &tokenizer)?,
    };
    let device = Default::default();
    let model = llite_tui::model::load::load_model::<burn::backend::Flex>(
        &ckpt.model_config,
        &ckpt.weights,
        &device,
    )?;
    let start = std::time::Instant::now();
    let is_mc = args.task.extension().is_some_and(|e| e == "jsonl");
    let metrics = if is_mc {
        let mut items = llite_tui::eval::load_mc(&args.task, template.as_ref(), args.held_out)?;
        items.truncate(args.limit);
        let mut progress = WorkProgress::new("questions", items.len() as u64);
        let m = llite_tui::eval::multiple_choice_with(&model, &tokenizer, &items, &mut |n| {
            progress.set(n as u64);
        });
        progress.finish();
        m?
    } else {
        let seq = cfg.train.seq_len.min(ckpt.model_config.max_seq_len);
        let mut progress: Option<WorkProgress> = None;
        let m = llite_tui::eval::perplexity_with(
            &model,
            &tokenizer,
            &args.task,
            seq,
            args.limit,
            &mut |n, total| {
                progress
                    .get_or_insert_with(|| WorkProgress::new("windows", total as u64))
                    .set(n as u64);
            },
        );
        if let Some(p) = progress {
            p.finish();
        }
        m?
    };
    let task = args
        .task
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    println!(
        "{task} at step {}: {} ({:.1} s)",
        ckpt.trainer.step,
        llite_tui::units::format_metrics(&metrics),
        start.elapsed().as_secs_f64()
    );
    let run_dir = train::session::run_dir_of(&checkpoint);
    let metrics_path = run_dir.join("metrics.jsonl");
    // A Hugging Face directory belongs to no run: whatever lies two levels up is not its log.
    let in_a_run = ckpt.origin == store::checkpoint::ModelOrigin::Checkpoint;
    if in_a_run && metrics_path.is_file() {
        let mut log = store::metrics_log::MetricsLog::open(&run_dir)?;
        log.append(&Event::TaskEval {
            step: ckpt.trainer.step,
            task,
            metrics,
        })
        .with_context(|| {
            format!(
                "the result was printed but not recorded: cannot append to {}",
                metrics_path.display()
            )
        })?;
    }
    Ok(())
}
