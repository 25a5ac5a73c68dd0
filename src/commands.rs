//! What each CLI command does, in terms of the library.

use crate::cli::EvalArgs;
use crate::cli::{CkptCommand, Cli, Commands, PrepareArgs, RunArgs, SampleArgs};
use anyhow::{bail, Context, Result};
use llite_tui::config::{RunConfig, SFT_PRESET};
use llite_tui::data::corpus::read_corpus;
use llite_tui::data::tokenizer::TextTokenizer;
use llite_tui::model::stats::{format_bytes, memory_floor, param_count, train_flops_per_token};
use llite_tui::protocol::{EngineLauncher, EngineLink, StartFrom};
use llite_tui::train::session::{DeviceSpec, EngineRequest};
use llite_tui::{bench, headless, interop, store, train};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Run the parsed command line.
pub fn dispatch(cli: Cli) -> Result<()> {
    let run = cli.run;
    match cli.command {
        None => cockpit_or_headless(&run),
        Some(Commands::Train) => cockpit_or_headless(&run),
        Some(Commands::Watch { run_dir, read_only }) => {
            let cfg = load_config(&run)?;
            llite_tui::tui::run_watch(&run_dir, cockpit_options(&run, &cfg)?, read_only)
        }
        Some(Commands::Ctl(args)) => crate::ctl::run(&args),
        Some(Commands::Sample(args)) => sample(&run, &args),
        Some(Commands::Prepare(args)) => prepare(&args),
        Some(Commands::Export {
            checkpoint,
            out,
            dtype,
        }) => {
            interop::export::export_checkpoint_as(&checkpoint, &out, dtype)?;
            println!("wrote {}", out.display());
            Ok(())
        }
        Some(Commands::Import { hf, out }) => {
            interop::export::import_hf(&hf, &out)?;
            println!("wrote checkpoint {}", out.display());
            Ok(())
        }
        Some(Commands::Template(a)) => interop::template_ids::print_report(
            &a.model,
            &a.messages,
            a.template.as_deref(),
            a.generation_prompt,
        ),
        Some(Commands::Ckpt {
            command: CkptCommand::Ls { run_dir, verify },
        }) => ckpt_ls(&run_dir, verify),
        Some(Commands::Eval(args)) => eval(&args),
        Some(Commands::Info) => info(&run),
        Some(Commands::Bench(args)) => {
            let io_dir = match args.io_dir {
                Some(d) => d,
                None => runs_dir(&run)?,
            };
            bench::run_table(args.steps, args.large, &io_dir, &args.only)
        }
    }
}

fn load_config(run: &RunArgs) -> Result<RunConfig> {
    load_config_with_default(run, false)
}

/// The command line's config; without `--config`, the embedded tiny preset, or the SFT preset
/// when `sft` (an instruction fine-tune, from the CLI or the checkpoint browser).
fn load_config_with_default(run: &RunArgs, sft: bool) -> Result<RunConfig> {
    let mut cfg = match (&run.config, sft) {
        (None, true) => RunConfig::from_toml_str(SFT_PRESET, "embedded SFT preset")?,
        (path, _) => RunConfig::load(path.as_deref())?,
    };
    cfg.apply_overrides(&run.overrides)?;
    if let Some(n) = run.max_steps {
        cfg.train.max_steps = n;
    }
    if let Some(t) = &run.theme {
        cfg.ui.theme = t.clone();
    }
    Ok(cfg)
}

fn runs_dir(run: &RunArgs) -> Result<PathBuf> {
    if let Some(d) = &run.runs_dir {
        return Ok(d.clone());
    }
    let dirs = directories::ProjectDirs::from("", "", "llite-tui")
        .context("cannot find a data directory; pass --runs-dir")?;
    Ok(dirs.data_dir().join("runs"))
}

fn start_from(run: &RunArgs) -> StartFrom {
    match (&run.resume, &run.finetune) {
        (Some(dir), _) => StartFrom::Resume(dir.clone()),
        (None, Some(dir)) => StartFrom::FineTune {
            checkpoint: dir.clone(),
            data: run.data.clone(),
        },
        (None, None) => StartFrom::Fresh,
    }
}

/// Whether `start` fine-tunes on instruction data (a `.jsonl` file).
fn is_sft_finetune(start: &StartFrom) -> bool {
    matches!(start, StartFrom::FineTune { data: Some(d), .. }
        if d.extension().is_some_and(|e| e.eq_ignore_ascii_case("jsonl")))
}

fn engine_request(run: &RunArgs, start: StartFrom) -> Result<EngineRequest> {
    let config = load_config_with_default(run, is_sft_finetune(&start))?;
    let mut overrides = run.overrides.clone();
    if let Some(n) = run.max_steps {
        overrides.push(format!("train.max_steps={n}"));
    }
    if let Some(t) = Some(config.train.threads).filter(|t| *t > 0) {
        std::env::set_var("RAYON_NUM_THREADS", t.to_string());
    }
    Ok(EngineRequest {
        config,
        overrides,
        config_explicit: run.config.is_some(),
        runs_dir: runs_dir(run)?,
        run_name: run.run_name.clone(),
        start,
        device: DeviceSpec::parse(&run.device)?,
        fresh_optimizer: run.fresh_optimizer,
        stop_at: run.stop_at_step,
        discard_later: run.discard_later,
    })
}

/// Starts engines for the cockpit with the command line's settings.
struct Launcher {
    run: RunArgs,
}

impl EngineLauncher for Launcher {
    fn launch(&self, from: StartFrom) -> Result<EngineLink> {
        let mut run = self.run.clone();
        // A run started from the browser gets a fresh name unless resuming.
        if !matches!(from, StartFrom::Fresh) {
            run.run_name = None;
        }
        Ok(train::engine::spawn(engine_request(&run, from)?))
    }

    fn export_hf(&self, checkpoint: &Path, out: &Path) -> Result<()> {
        interop::export::export_checkpoint(checkpoint, out)
    }
}

fn cockpit_options(run: &RunArgs, cfg: &RunConfig) -> Result<llite_tui::tui::CockpitOptions> {
    Ok(llite_tui::tui::CockpitOptions {
        ui: cfg.ui.clone(),
        runs_dir: runs_dir(run)?,
        themes_dir: themes_dir(),
        sample_defaults: cfg.sample.params(),
    })
}

/// `themes/` next to the working directory, else next to the executable's crate.
fn themes_dir() -> PathBuf {
    let local = PathBuf::from("themes");
    if local.is_dir() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("themes")
}

fn cockpit_or_headless(run: &RunArgs) -> Result<()> {
    let start = start_from(run);
    let interactive =
        !run.headless && std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    if interactive {
        let cfg = load_config(run)?;
        let opts = cockpit_options(run, &cfg)?;
        return llite_tui::tui::run_cockpit(Box::new(Launcher { run: run.clone() }), start, opts);
    }
    // Caught from before the engine starts, so a signal during start-up still saves step 0.
    let signals = llite_tui::signals::StopSignals::install()?;
    let req = engine_request(run, start)?;
    let summary = headless::run(train::engine::spawn(req), false, Some(signals))?;
    let newest_good = headless::newest_good_checkpoint(&summary);
    let line = summary.verdict(newest_good.as_deref())?;
    // Never panics on a closed stderr (a dead ssh session): the run is already saved.
    let _ = writeln!(std::io::stderr(), "{line}");
    Ok(())
}

/// A checkpoint or Hugging Face model directory loaded for `sample` or `eval` (memory checked
/// first, digests verified, weights mapped), with the run config it records; an unverified
/// model (format 1, or an HF directory) is noted on stderr.
fn load_for_reading(checkpoint: &Path) -> Result<(store::checkpoint::LoadedCheckpoint, RunConfig)> {
    let ckpt = llite_tui::interop::model_dir::open_model(checkpoint)?;
    let origin = checkpoint.join(store::layout::TRAINER_FILE);
    let cfg = RunConfig::from_toml_str(&ckpt.trainer.config_toml, &origin.display().to_string())?;
    if let Some(notice) = ckpt.notice() {
        eprintln!("note: {notice}");
    }
    Ok((ckpt, cfg))
}

fn sample(run: &RunArgs, args: &SampleArgs) -> Result<()> {
    let (ckpt, cfg) = load_for_reading(&args.checkpoint)?;
    let mut params = cfg.sample.params();
    if let Some(v) = args.max_tokens {
        params.max_tokens = v;
    }
    if let Some(v) = args.temperature {
        params.temperature = v;
    }
    if let Some(v) = args.top_k {
        params.top_k = v;
    }
    if let Some(v) = args.top_p {
        params.top_p = v;
    }
    if let Some(v) = args.seed {
        params.seed = v;
    }
    llite_tui::config::validate_sample(&params).map_err(|e| anyhow::anyhow!("sample: {e}"))?;
    if DeviceSpec::parse(&run.device)? != DeviceSpec::Cpu {
        bail!("`sample` runs on the CPU; drop --device");
    }
    let tokenizer = store::checkpoint::load_tokenizer(&ckpt)?;
    type B = burn::backend::Flex;
    let device = Default::default();
    let model =
        llite_tui::model::load::load_model::<B>(&ckpt.model_config, &ckpt.weights, &device)?;
    if let Some(path) = &args.dump_logits {
        dump_logits(&model, &tokenizer, &args.prompt, path)?;
    }
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let template = match args.raw {
        true => None,
        false => llite_tui::data::template::prompt_template(&cfg, &tokenizer)?,
    };
    let prompt = match &template {
        Some(t) => t.prompt_for(&args.prompt)?,
        None => args.prompt.clone(),
    };
    print!("{prompt}");
    let g = llite_tui::sample::generate(&model, &tokenizer, &prompt, &params, &cancel, |piece| {
        print!("{piece}");
        let _ = std::io::stdout().flush();
    })?;
    println!();
    eprintln!(
        "[{} tokens, {:.1} tokens/s, stop: {:?}]",
        g.tokens, g.tokens_per_s, g.stop
    );
    Ok(())
}

fn dump_logits(
    model: &llite_tui::model::Llama<burn::backend::Flex>,
    tokenizer: &TextTokenizer,
    prompt: &str,
    path: &Path,
) -> Result<()> {
    use burn::tensor::{Int, Tensor, TensorData};
    let ids = tokenizer.encode(prompt)?;
    if ids.is_empty() || ids.len() > model.dims.max_seq_len {
        bail!(
            "--dump-logits needs a prompt of 1..={} tokens, got {}",
            model.dims.max_seq_len,
            ids.len()
        );
    }
    let data: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
    let tokens = Tensor::<burn::backend::Flex, 2, Int>::from_data(
        TensorData::new(data, [1, ids.len()]),
        &Default::default(),
    );
    let logits = model.forward(tokens, 0, None);
    let shape = logits.dims();
    let values = llite_tui::model::params::tensor_to_vec(logits);
    let json = serde_json::json!({"ids": ids, "shape": shape, "logits": values});
    if std::fs::symlink_metadata(path).is_ok() {
        bail!(
            "--dump-logits {}: already exists; pick a new file name",
            path.display()
        );
    }
    llite_tui::store::fsio::write_atomic(path, serde_json::to_string(&json)?.as_bytes())
}

fn eval(args: &EvalArgs) -> Result<()> {
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
    let (ckpt, cfg) = load_for_reading(&args.checkpoint)?;
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
        llite_tui::eval::multiple_choice(&model, &tokenizer, &items)?
    } else {
        let seq = cfg.train.seq_len.min(ckpt.model_config.max_seq_len);
        llite_tui::eval::perplexity(&model, &tokenizer, &args.task, seq, args.limit)?
    };
    let task = args
        .task
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let summary: Vec<String> = metrics.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
    println!(
        "{task} at step {}: {} ({:.1} s)",
        ckpt.trainer.step,
        summary.join(", "),
        start.elapsed().as_secs_f64()
    );
    let run_dir = train::session::run_dir_of(&args.checkpoint);
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

fn prepare(args: &PrepareArgs) -> Result<()> {
    // A run's data/ belongs to its checkpoints (cursor, tokenizer): even --replace must not
    // swap it, least of all under a trainer that holds the run's lock.
    store::outputs::ensure_outside_runs(&args.out, "prepare --out")?;
    let docs = read_corpus(&args.input)?;
    let tokenizer = TextTokenizer::resolve(&args.tokenizer, &docs)?;
    let s = llite_tui::data::shards::prepare(
        &docs,
        &tokenizer,
        args.val_fraction,
        args.shard_tokens,
        &args.out,
        &args.prefix,
        args.replace,
    )?;
    println!(
        "wrote {} {} shards to {}: {} validation + {} training tokens, vocab {}",
        s.shards.len(),
        s.dtype,
        args.out.display(),
        s.val_tokens,
        s.train_tokens,
        s.vocab_size
    );
    Ok(())
}

fn ckpt_ls(dir: &Path, verify: bool) -> Result<()> {
    use store::listing::{list_checkpoints_with, Check};
    if !dir.is_dir() {
        bail!("{}: no such run directory", dir.display());
    }
    let looks_like_run = ["run.toml", "metrics.jsonl"]
        .iter()
        .any(|f| dir.join(f).is_file());
    if !store::layout::checkpoints_dir(dir).is_dir() && !looks_like_run {
        bail!("{}", store::listing::not_a_run_dir_hint(dir));
    }
    let check = if verify { Check::Digests } else { Check::Cheap };
    let start = std::time::Instant::now();
    let list = list_checkpoints_with(dir, check);
    let elapsed = start.elapsed().as_secs_f64();
    if list.is_empty() {
        println!(
            "no checkpoints in {}",
            store::layout::checkpoints_dir(dir).display()
        );
        return Ok(());
    }
    let now = store::layout::unix_now();
    println!(
        "{:<16} {:>8} {:>12} {:>9} {:>10} {:>8}  status",
        "checkpoint", "step", "tokens", "val_loss", "size", "age"
    );
    let mut invalid = 0;
    let mut newest_good = None;
    let mut verified_bytes = 0u64;
    for c in &list {
        let name = Path::new(&c.path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let val = c
            .val_loss
            .map(|v| format!("{v:.4}"))
            .unwrap_or_else(|| "-".into());
        let age = match c.written_unix {
            0 => "-".to_string(), // trainer.json unreadable: no write time to show
            t => humantime::format_duration(std::time::Duration::from_secs(now.saturating_sub(t)))
                .to_string()
                .split(' ')
                .next()
                .unwrap_or("")
                .to_string(),
        };
        let status = match &c.error {
            Some(e) => {
                invalid += 1;
                format!("INVALID: {e}")
            }
            None => {
                newest_good = Some(name.clone());
                let unverified = store::trainer_state::read_trainer_record(Path::new(&c.path))
                    .map(|r| r.files.is_none())
                    .unwrap_or(false);
                match (unverified, verify) {
                    (true, _) => "ok (written before digests; not verified)".to_string(),
                    (false, true) => {
                        verified_bytes += c.size_bytes;
                        "ok, digests verified".to_string()
                    }
                    (false, false) => "ok".to_string(),
                }
            }
        };
        println!(
            "{name:<16} {:>8} {:>12} {val:>9} {:>10} {age:>8}  {status}",
            c.step,
            c.tokens,
            format_bytes(c.size_bytes)
        );
    }
    if verify {
        println!(
            "verified {} in {elapsed:.2} s ({:.0} MB/s)",
            format_bytes(verified_bytes),
            verified_bytes as f64 / 1e6 / elapsed.max(1e-9)
        );
    }
    if invalid > 0 {
        bail!(
            "{invalid} of {} checkpoints in {} are invalid; newest valid: {}",
            list.len(),
            store::layout::checkpoints_dir(dir).display(),
            newest_good.as_deref().unwrap_or("none")
        );
    }
    Ok(())
}

fn info(run: &RunArgs) -> Result<()> {
    let cfg = load_config(run)?;
    cfg.validate()?;
    let m = &cfg.model;
    let p = param_count(m);
    let mem = memory_floor(m);
    let flops = train_flops_per_token(m, cfg.train.seq_len);
    println!(
        "model: {} layers, d_model {}, {} heads / {} kv heads, ff {}, vocab {}, context {}, {}",
        m.n_layers,
        m.d_model,
        m.n_heads,
        m.n_kv_heads,
        m.ff_dim,
        m.vocab_size,
        m.max_seq_len,
        if m.tie_embeddings {
            "tied embeddings"
        } else {
            "untied embeddings"
        }
    );
    println!(
        "parameters: {} ({} embedding, {} in matmuls)",
        group(p.total),
        group(p.embedding),
        group(p.matmul)
    );
    println!(
        "memory floor (f32 AdamW, before activations): weights {} + grads {} + moments {} = {}",
        format_bytes(mem.weights),
        format_bytes(mem.grads),
        format_bytes(mem.adam_moments),
        format_bytes(mem.total())
    );
    println!(
        "training FLOPs per token at seq_len {}: {:.3e} ({:.2} GFLOP)",
        cfg.train.seq_len,
        flops,
        flops / 1e9
    );
    println!("tokens per step: {}", cfg.tokens_per_step());
    Ok(())
}

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
