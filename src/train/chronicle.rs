//! The chronicle (`[chronicle]`): at step 0 of a fresh run and every `every` steps, the engine
//! samples each fixed prompt greedily and scores each multiple-choice task (`eval.rs`), between
//! two steps, and emits the results (`ChronicleSample`, `ChronicleTask`) into `metrics.jsonl`.
//! Only forward passes on a snapshot of the weights run here: no training RNG, data cursor or
//! optimizer state is touched, so a run's losses are the same with the chronicle on or off.

use super::emitter::Emitter;
use super::trainer::Trainer;
use crate::config::RunConfig;
use crate::data::sft::Template;
use crate::data::tokenizer::TextTokenizer;
use crate::eval::{load_mc, multiple_choice, McItem};
use crate::model::Llama;
use crate::protocol::{AlertKind, Event, SampleParams};
use anyhow::{bail, Context, Result};
use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// One fixed prompt: as configured (shown and logged) and as the model sees it (templated).
struct FixedPrompt {
    shown: String,
    model_text: String,
}

/// One task's questions, loaded once when the run starts.
struct LoadedTask {
    name: String,
    items: Vec<McItem>,
    /// Set after the first failure (e.g. a choice longer than the context): alerted once, then
    /// left out rather than failing at every entry.
    broken: bool,
}

/// The run's chronicle: prompts and tasks resolved at start, so a bad path or an over-long
/// prompt stops the run before its first step, naming the key.
pub(super) struct Chronicle {
    every: u64,
    prompts: Vec<FixedPrompt>,
    params: SampleParams,
    tasks: Vec<LoadedTask>,
}

impl Chronicle {
    /// The chronicle `cfg.chronicle` asks for, or `None` when it is off. Prompts are wrapped
    /// in the run's chat template (as the prompt pane's are) and must fit the model's context;
    /// Alpaca tasks of an SFT run are scored on their held-out split (`data.val_fraction`).
    pub(super) fn new(
        cfg: &RunConfig,
        tokenizer: &TextTokenizer,
        template: Option<&Template>,
    ) -> Result<Option<Self>> {
        let c = &cfg.chronicle;
        if !c.enabled() {
            return Ok(None);
        }
        let context = cfg.model.max_seq_len;
        let mut prompts = Vec::with_capacity(c.prompts.len());
        for (i, shown) in c.prompts.iter().enumerate() {
            let model_text = match template {
                Some(t) => t.prompt_for(shown)?,
                None => shown.clone(),
            };
            let n = tokenizer.encode(&model_text)?.len();
            if n >= context {
                bail!(
                    "config: chronicle.prompts[{i}] is {n} tokens; the model's context of {context} leaves no room to generate"
                );
            }
            prompts.push(FixedPrompt {
                shown: shown.clone(),
                model_text,
            });
        }
        let held_out =
            (cfg.is_sft() && cfg.data.val_fraction > 0.0).then_some(cfg.data.val_fraction);
        let mut tasks = Vec::with_capacity(c.tasks.len());
        for path in &c.tasks {
            let mut items = load_mc(Path::new(path), template, held_out)
                .with_context(|| format!("chronicle.tasks: {path}"))?;
            items.truncate(c.max_questions);
            if items.is_empty() {
                bail!("chronicle.tasks: {path}: no questions to score");
            }
            tasks.push(LoadedTask {
                name: task_name(path),
                items,
                broken: false,
            });
        }
        Ok(Some(Self {
            every: c.every,
            prompts,
            params: SampleParams {
                temperature: 0.0,
                top_k: 0,
                top_p: 1.0,
                max_tokens: c.max_new_tokens,
                seed: 0,
            },
            tasks,
        }))
    }

    /// Whether an entry is due after `step` (step 0 is the untrained model of a fresh run).
    pub(super) fn due(&self, step: u64) -> bool {
        step.is_multiple_of(self.every)
    }

    /// Sample every prompt and score every task on `model` at `step`, emitting one event each.
    /// A failure becomes a notice, never a failed run: the chronicle only observes.
    pub(super) fn record<B: Backend>(
        &mut self,
        model: &Llama<B>,
        tokenizer: &TextTokenizer,
        step: u64,
        out: &Emitter,
    ) {
        let never = AtomicBool::new(false);
        for (i, p) in self.prompts.iter().enumerate() {
            let event = match crate::sample::generate(
                model,
                tokenizer,
                &p.model_text,
                &self.params,
                &never,
                |_| {},
            ) {
                Ok(g) => Event::ChronicleSample {
                    step,
                    prompt_index: i as u64,
                    prompt: p.shown.clone(),
                    text: g.text,
                    tokens: g.tokens as u64,
                },
                Err(e) => notice(step, format!("chronicle prompt {i}: {e:#}")),
            };
            out.emit(event);
        }
        for task in self.tasks.iter_mut().filter(|t| !t.broken) {
            let event = match multiple_choice(model, tokenizer, &task.items) {
                Ok(metrics) => Event::ChronicleTask {
                    step,
                    task: task.name.clone(),
                    metrics,
                },
                Err(e) => {
                    task.broken = true;
                    notice(
                        step,
                        format!("chronicle task {} left out: {e:#}", task.name),
                    )
                }
            };
            out.emit(event);
        }
    }
}

fn notice(step: u64, detail: String) -> Event {
    Event::Alert {
        step,
        kind: AlertKind::Notice,
        detail,
    }
}

/// The task's name in events and charts: its file stem (`sft-shakespeare`).
fn task_name(path: &str) -> String {
    Path::new(path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}

/// The engine's two calls: build the chronicle of a trainer's run, and record an entry when
/// one is due at the trainer's current step.
impl Chronicle {
    /// [`Chronicle::new`] for the run a trainer trains.
    pub(super) fn for_trainer<B: AutodiffBackend>(trainer: &Trainer<B>) -> Result<Option<Self>> {
        let run = &trainer.run;
        let template = crate::data::template::prompt_template(&run.config, &run.tokenizer)?;
        Self::new(&run.config, &run.tokenizer, template.as_ref())
    }

    /// Record an entry at the trainer's step if one is due, on a snapshot of its weights.
    pub(super) fn record_due<B: AutodiffBackend>(
        chronicle: &mut Option<Self>,
        trainer: &Trainer<B>,
        out: &Emitter,
    ) {
        if let Some(c) = chronicle.as_mut().filter(|c| c.due(trainer.step)) {
            let snapshot = trainer.model().valid();
            c.record(&snapshot, &trainer.run.tokenizer, trainer.step, out);
        }
    }
}
