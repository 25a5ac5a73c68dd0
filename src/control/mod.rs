//! Steering a run from another process: a Unix domain socket in the run directory
//! (`control.sock`, owner-only) that the run's owner serves and `llite-tui ctl` and the
//! cockpit's `watch` mode talk to with line-delimited JSON (`wire`). Burn-free: it speaks only
//! `protocol::Command` / `protocol::Event` to the engine, through the consumer that owns it.

pub mod client;
pub mod endpoint;
mod handlers;
pub mod server;
pub mod wire;

pub use endpoint::SOCKET_NAME;
pub use server::ControlServer;
