//! `info`: what a config costs before anything is allocated: parameters, FLOPs per token and
//! the memory plan of one training device, and whether it fits the device named.

use super::load_preset;
use crate::cli::InfoArgs;
use anyhow::{bail, Result};
use llite_tui::config::RunConfig;
use llite_tui::memory_plan::{
    plan_run, precision_name, MemoryPlan, PlanDevice, RunShape, HOST_PROCESS_OVERHEAD,
};
use llite_tui::model::stats::{format_bytes, param_count, train_flops_per_token};
use llite_tui::resources::available_memory;
use llite_tui::units::parse_bytes;

pub(crate) fn info(args: &InfoArgs) -> Result<()> {
    let cfg = load_preset(&args.preset, false)?;
    cfg.validate()?;
    let supply = device_supply(args)?;
    print_model(&cfg);
    let device = if supply.peers_sharing == 0 {
        PlanDevice::Host
    } else {
        PlanDevice::Gpu
    };
    let Some(plan) = plan_run(&cfg, device) else {
        bail!("the memory plan of this config overflows 64 bits: use a smaller model or batch");
    };
    print_plan(&cfg, &plan, &supply);
    Ok(())
}

/// How much memory the planned device has, and where that figure came from.
struct DeviceSupply {
    /// What the figure describes, e.g. "cpu: available host memory" or "80.00 GiB (--memory)".
    label: String,
    bytes: Option<u64>,
    /// Peers that share this memory: all of them on the host, one per GPU.
    peers_sharing: usize,
}

fn device_supply(args: &InfoArgs) -> Result<DeviceSupply> {
    let on_host = match args.device.as_str() {
        "cpu" => true,
        d if d == "cuda"
            || d.strip_prefix("cuda:")
                .is_some_and(|i| i.parse::<u32>().is_ok()) =>
        {
            false
        }
        d => bail!("--device {d}: expected cpu, cuda or cuda:N"),
    };
    if let Some(text) = &args.memory {
        let Some(bytes) = parse_bytes(text) else {
            bail!("--memory {text}: expected a size such as 80GiB, 80GB or 24576MiB");
        };
        return Ok(DeviceSupply {
            label: format!("{} (--memory)", args.device),
            bytes: Some(bytes),
            peers_sharing: if on_host { 0 } else { 1 },
        });
    }
    Ok(if on_host {
        DeviceSupply {
            label: "cpu: available host memory".into(),
            bytes: available_memory(),
            peers_sharing: 0,
        }
    } else {
        gpu_supply(&args.device)
    })
}

/// The free memory of GPU `device` (cuda or cuda:N) through NVML, in a `cuda` build with the
/// driver present; otherwise why it is unknown.
fn gpu_supply(device: &str) -> DeviceSupply {
    use llite_tui::sys::gpu::{GpuProbe, GpuReading};
    let index: u32 = device
        .strip_prefix("cuda:")
        .and_then(|i| i.parse().ok())
        .unwrap_or(0);
    let unknown = |why: String| DeviceSupply {
        label: format!("{device}: memory not queried ({why}; give --memory, e.g. 80GiB)"),
        bytes: None,
        peers_sharing: 1,
    };
    match GpuProbe::default().read() {
        GpuReading::NotBuilt => unknown("a build without the cuda feature".into()),
        GpuReading::NoNvml(why) => unknown(format!("NVML: {why}")),
        GpuReading::Devices(gpus) => match gpus.into_iter().find(|g| g.index == index) {
            None => unknown(format!("NVML sees no GPU {index}")),
            Some(g) => DeviceSupply {
                label: format!(
                    "{device} ({}, NVML: free of {} total)",
                    g.name,
                    format_bytes(g.mem_total)
                ),
                bytes: Some(g.mem_total.saturating_sub(g.mem_used)),
                peers_sharing: 1,
            },
        },
    }
}

fn print_model(cfg: &RunConfig) {
    let m = &cfg.model;
    let p = param_count(m);
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
        "training FLOPs per token at seq_len {}: {:.3e} ({:.2} GFLOP)",
        cfg.train.seq_len,
        flops,
        flops / 1e9
    );
    println!("tokens per step: {}", cfg.tokens_per_step());
}

fn print_plan(cfg: &RunConfig, plan: &MemoryPlan, supply: &DeviceSupply) {
    let shape = RunShape::of(cfg);
    let rows = cfg.train.batch_size.div_ceil(shape.peers * shape.nodes);
    let nodes = if shape.nodes > 1 {
        format!(" on each of {} nodes", shape.nodes)
    } else {
        String::new()
    };
    println!(
        "memory plan per device (estimated): {rows} rows x {} tokens, {}, activation checkpointing {}, {} peer{}{nodes}",
        cfg.train.seq_len,
        precision_name(shape.precision),
        if shape.activation_checkpointing { "on" } else { "off" },
        shape.peers,
        if shape.peers == 1 { "" } else { "s" }
    );
    let working = if plan.working_weights > 0 {
        format!(" + 16-bit copy {}", format_bytes(plan.working_weights))
    } else {
        String::new()
    };
    println!(
        "  model state: weights {}{working} + grads {} + AdamW moments {} = {}",
        format_bytes(plan.weights),
        format_bytes(plan.grads),
        format_bytes(plan.moments),
        format_bytes(plan.model_state())
    );
    println!(
        "  batch state: activations {} + logits {} + backward workspace {} = {}",
        format_bytes(plan.activations),
        format_bytes(plan.logits),
        format_bytes(plan.backward_workspace),
        format_bytes(plan.batch_state())
    );
    let sharing = if supply.peers_sharing == 0 {
        shape.peers.max(1)
    } else {
        supply.peers_sharing
    };
    let overhead = if supply.peers_sharing == 0 {
        HOST_PROCESS_OVERHEAD
    } else {
        0
    };
    let need = plan
        .total()
        .saturating_mul(sharing as u64)
        .saturating_add(overhead);
    let per = if sharing > 1 {
        format!(" ({} peers share it)", sharing)
    } else {
        String::new()
    };
    let process = if overhead > 0 {
        format!(
            " (tensors {} + process {})",
            format_bytes(need - overhead),
            format_bytes(overhead)
        )
    } else {
        String::new()
    };
    println!("  peak: {}{process}{per}", format_bytes(need));
    match supply.bytes {
        Some(have) if need <= have => println!(
            "fits: {} has {} ({} free after the peak)",
            supply.label,
            format_bytes(have),
            format_bytes(have - need)
        ),
        Some(have) => println!(
            "does not fit: {} has {}, short by {}; {}",
            supply.label,
            format_bytes(have),
            format_bytes(need - have),
            remedies(&shape, supply.peers_sharing == 0)
        ),
        None => println!("fit unknown: {}", supply.label),
    }
}

/// What shrinks the plan, naming only the settings not already in use.
fn remedies(shape: &RunShape, on_host: bool) -> String {
    let mut out = vec!["a smaller train.batch_size with a larger train.grad_accum".to_string()];
    if !shape.activation_checkpointing {
        out.push("activation checkpointing".into());
    }
    if shape.precision == llite_tui::config::Precision::F32 && !on_host {
        out.push("bf16".into());
    }
    out.push("more data-parallel peers".into());
    format!("try {}", out.join(", "))
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
