//! Time to first step: this binary launched as `train --headless` on the embedded default
//! preset (the cockpit's engine and preparation), timed from the spawn to the run's `started`
//! and first `step` events in `metrics.jsonl`, with an empty prepared-data cache (cold) and
//! then with the entry the cold launch stored (warm). The cache lives in the bench's own
//! directory (`LLITE_CACHE_DIR`), never the user's. Hand-written polling of the log: a 5 ms
//! poll is simpler than a file watcher and far below the times measured.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Launches per table: one cold, then warm ones.
const WARM_LAUNCHES: usize = 2;
/// A launch that has not stepped by then is reported as failed.
const LIMIT: Duration = Duration::from_secs(600);

/// Seconds from the spawn to the run's `started` and first `step` events.
pub struct Launch {
    pub started_s: f64,
    pub first_step_s: f64,
}

/// The `event` of each complete line of the run's log.
fn events(log: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(log) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("event")?.as_str().map(String::from))
        .collect()
}

/// Launch one headless run `name` under `runs` with `cache`; wait for it to finish.
fn launch(runs: &Path, cache: &Path, name: &str) -> Result<Launch> {
    let exe = std::env::current_exe().context("cannot find this binary")?;
    let start = Instant::now();
    let mut child = Command::new(exe)
        .args([
            "train",
            "--headless",
            "--max-steps",
            "1",
            "--run-name",
            name,
        ])
        .arg("--runs-dir")
        .arg(runs)
        .env(crate::data::prep_cache::CACHE_ENV, cache)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot launch this binary")?;
    let log = runs.join(name).join("metrics.jsonl");
    let mut started = None;
    let outcome = loop {
        let seen = events(&log);
        if started.is_none() && seen.iter().any(|e| e == "started") {
            started = Some(start.elapsed().as_secs_f64());
        }
        if seen.iter().any(|e| e == "step") {
            break Ok(start.elapsed().as_secs_f64());
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Err(anyhow::anyhow!(
                "the run exited ({status}) before its first step"
            ));
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            break Err(anyhow::anyhow!("no step within {} s", LIMIT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = child.wait();
    let first_step_s = outcome?;
    Ok(Launch {
        started_s: started.unwrap_or(first_step_s),
        first_step_s,
    })
}

/// One cold launch (empty cache) and `WARM_LAUNCHES` warm ones, in `work` (created, removed).
pub fn measure(work: &Path) -> Result<Vec<(String, Launch)>> {
    if work.exists() {
        bail!("{} exists; refusing to use it", work.display());
    }
    let runs = work.join("runs");
    let cache = work.join("cache");
    std::fs::create_dir_all(&runs).with_context(|| format!("cannot create {}", runs.display()))?;
    let mut out = Vec::new();
    let result = (|| {
        for i in 0..=WARM_LAUNCHES {
            let label = if i == 0 {
                "cold".to_string()
            } else {
                format!("warm {i}")
            };
            out.push((label, launch(&runs, &cache, &format!("r{i}"))?));
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(work);
    result.map(|_| out)
}

/// Print the time-to-first-step table, measured in `io_dir`.
pub fn first_step_table(io_dir: &Path) {
    println!();
    println!("time to first step: `train --headless` on the embedded default preset (the cockpit's engine), from spawn; cold = empty prepared-data cache, warm = the entry the cold launch stored");
    println!("{:<8} {:>12} {:>12}", "launch", "started", "first step");
    let work = io_dir.join(format!(".bench-first-step-{}", std::process::id()));
    match measure(&work) {
        Ok(rows) => {
            for (label, l) in rows {
                println!(
                    "{:<8} {:>10.2} s {:>10.2} s",
                    label, l.started_s, l.first_step_s
                );
            }
        }
        Err(e) => println!("time to first step failed: {e:#}"),
    }
    println!("started = the engine's first event (tokenizer and shards ready, model built).");
}
