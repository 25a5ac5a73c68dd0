//! The data-parallel flags of `train` and the `orchestrator` command's options: each flag is a
//! shortcut for a `[parallel]` key (docs/CONFIG.md), so a resume re-applies it like `--set`.

use clap::Args;

/// `[parallel]` shortcuts on the commands that train.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Data parallelism")]
pub struct ParallelArgs {
    /// Data-parallel peers in this process, one model replica each; train.batch_size must be
    /// divisible by peers x nodes (--set parallel.peers=N; default: 1).
    #[arg(long, value_name = "N")]
    pub peers: Option<usize>,
    /// One device per peer, comma-separated, e.g. cuda:0,cuda:1 (--set parallel.devices=...;
    /// default: all on --device, consecutive GPUs from cuda:N).
    #[arg(long, value_name = "LIST")]
    pub devices: Option<String>,
    /// Machines (processes) in the run, each started with its own --node-rank
    /// (--set parallel.nodes=N; default: 1).
    #[arg(long, value_name = "N")]
    pub nodes: Option<usize>,
    /// This process's index among the nodes; node 0 checkpoints and evaluates
    /// (--set parallel.node_rank=R; default: 0).
    #[arg(long, value_name = "R")]
    pub node_rank: Option<usize>,
    /// The global orchestrator every node joins, ws://HOST:PORT (`llite-tui orchestrator`;
    /// --set parallel.orchestrator=...; default: none, needed when --nodes is above 1).
    #[arg(long, value_name = "ADDR")]
    pub orchestrator: Option<String>,
}

impl ParallelArgs {
    /// The flags as `--set` overrides, in a fixed order.
    pub fn overrides(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(n) = self.peers {
            out.push(format!("parallel.peers={n}"));
        }
        if let Some(d) = &self.devices {
            out.push(format!("parallel.devices={d}"));
        }
        if let Some(n) = self.nodes {
            out.push(format!("parallel.nodes={n}"));
        }
        if let Some(r) = self.node_rank {
            out.push(format!("parallel.node_rank={r}"));
        }
        if let Some(a) = &self.orchestrator {
            out.push(format!("parallel.orchestrator={a}"));
        }
        out
    }
}

/// `orchestrator` options.
#[derive(Args, Debug)]
pub struct OrchestratorArgs {
    /// TCP port to listen on (all interfaces); nodes join with
    /// --orchestrator ws://THIS_HOST:PORT.
    #[arg(long, value_name = "P", default_value_t = 3000)]
    pub port: u16,
}
