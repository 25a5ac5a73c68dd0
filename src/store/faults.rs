//! Fault injection for the crash tests: `LLITE_FAULT_POINT=name[:n[:stall]]` makes the process
//! kill itself with SIGKILL the n-th time (default 1st) it passes the named point in the store,
//! so a test can stop a save mid-write, mid-rename or mid-retention deterministically; with
//! `:stall` it waits there forever instead, so a test can signal a process caught mid-save. Hand-written
//! (a dozen lines) rather than the `fail` crate, whose points only exist in a feature build that
//! the plain `cargo test` of CI would not compile.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The point and hit count this process was asked to die at, read once from the environment.
struct FaultPlan {
    point: String,
    hit: u64,
    /// Wait at the point forever instead of dying there.
    stall: bool,
    seen: AtomicU64,
}

fn plan() -> Option<&'static FaultPlan> {
    static PLAN: OnceLock<Option<FaultPlan>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let spec = std::env::var("LLITE_FAULT_POINT").ok()?;
        let mut parts = spec.split(':');
        let point = parts.next()?.to_string();
        let hit = match parts.next() {
            Some(n) => n.parse().ok()?,
            None => 1,
        };
        let stall = parts.next() == Some("stall");
        Some(FaultPlan {
            point,
            hit,
            stall,
            seen: AtomicU64::new(0),
        })
    })
    .as_ref()
}

/// Mark a named moment of a store operation; a no-op unless a crash test asked to die here.
pub fn point(name: &str) {
    let Some(plan) = plan() else { return };
    if plan.point == name && plan.seen.fetch_add(1, Ordering::SeqCst) + 1 == plan.hit {
        if plan.stall {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        #[cfg(unix)]
        // SAFETY: raising a signal on our own process has no memory-safety preconditions.
        unsafe {
            libc::raise(libc::SIGKILL);
        }
        std::process::abort();
    }
}
