//! `orchestrator`: serves Burn's global collective orchestrator
//! (`burn_collective::start_global_orchestrator`), where the nodes of a multi-machine
//! data-parallel run register and learn about each other. It runs on a tokio runtime because
//! Burn's orchestrator is an async WebSocket server.

use crate::cli::OrchestratorArgs;
use anyhow::{bail, Context, Result};

/// Listen on `--port` until Ctrl-C or SIGTERM.
pub fn serve(args: &OrchestratorArgs) -> Result<()> {
    let port = args.port;
    if port == 0 {
        bail!("orchestrator: --port must be in 1..=65535");
    }
    // Burn's server only logs a failed bind and returns; check the port first for a clear error.
    std::net::TcpListener::bind(("0.0.0.0", port))
        .with_context(|| format!("orchestrator: cannot listen on port {port}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("orchestrator: cannot start its async runtime")?;
    eprintln!(
        "llite-tui orchestrator: listening on ws://0.0.0.0:{port} (Ctrl-C or SIGTERM stops it)"
    );
    runtime.block_on(burn_collective::start_global_orchestrator(port));
    eprintln!("llite-tui orchestrator: stopped");
    Ok(())
}
