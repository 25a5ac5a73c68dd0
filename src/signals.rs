//! SIGINT, SIGTERM and SIGHUP as stop requests: a pre-empted cluster job, a `kill` or a closed
//! ssh session finishes its step and saves instead of dying mid-run. Uses the maintained
//! `signal-hook` crate (its self-pipe iterator) rather than hand-written async-signal-safe
//! handlers. Exit codes follow the shell convention 128 + signal number: 130, 143, 129.

use crate::protocol::FinishReason;

/// The conventional name of the signal behind a signal reason ("SIGTERM"), for messages.
pub fn signal_name(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Interrupted => "SIGINT",
        FinishReason::Terminated => "SIGTERM",
        FinishReason::HangUp => "SIGHUP",
        FinishReason::MaxSteps | FinishReason::Stopped | FinishReason::Error => "stop",
    }
}

/// The stop reason for a signal number, `None` for signals this module does not handle.
#[cfg(unix)]
pub fn reason_for(signal: i32) -> Option<FinishReason> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    match signal {
        SIGINT => Some(FinishReason::Interrupted),
        SIGTERM => Some(FinishReason::Terminated),
        SIGHUP => Some(FinishReason::HangUp),
        _ => None,
    }
}

/// How long a repeat of the same signal counts as the same request: `timeout`, `kill -TERM
/// -PGID` and job launchers deliver one signal to the process *and* its group, and that echo
/// must not be taken for an impatient second signal that aborts without saving.
pub const REPEAT_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

/// Drops echoes: the same signal again within [`REPEAT_WINDOW`] of the last one accepted.
#[derive(Debug, Default)]
pub struct EchoFilter {
    last: Option<(FinishReason, std::time::Instant)>,
}

impl EchoFilter {
    /// Whether a signal arriving `now` is a new request (true) or an echo of the last (false).
    pub fn accept(&mut self, reason: FinishReason, now: std::time::Instant) -> bool {
        if let Some((last, at)) = self.last {
            if last == reason && now.duration_since(at) < REPEAT_WINDOW {
                return false;
            }
        }
        self.last = Some((reason, now));
        true
    }
}

/// Stop signals caught from now on: until `forward` starts delivering them they queue, so a
/// signal that arrives while the engine starts is not lost (nor fatal).
pub struct StopSignals {
    #[cfg(unix)]
    signals: signal_hook::iterator::Signals,
}

/// Delivers caught signals on a background thread until dropped.
pub struct SignalForwarder {
    #[cfg(unix)]
    handle: signal_hook::iterator::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StopSignals {
    /// Replace the default (fatal) action of SIGINT, SIGTERM and SIGHUP with catching them.
    pub fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
            let signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
                .map_err(|e| anyhow::anyhow!("cannot install signal handlers: {e}"))?;
            Ok(Self { signals })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Call `on_signal(reason, nth)` for every signal caught (`nth` counts from 1), on a
    /// thread of its own; queued signals are delivered first, echoes (see [`EchoFilter`])
    /// dropped.
    pub fn forward(
        self,
        mut on_signal: impl FnMut(FinishReason, u32) + Send + 'static,
    ) -> SignalForwarder {
        #[cfg(unix)]
        {
            let mut signals = self.signals;
            let handle = signals.handle();
            let thread = std::thread::Builder::new()
                .name("llite-signals".into())
                .spawn(move || {
                    let mut nth = 0;
                    let mut echoes = EchoFilter::default();
                    for signal in signals.forever() {
                        let Some(reason) = reason_for(signal) else {
                            continue;
                        };
                        if echoes.accept(reason, std::time::Instant::now()) {
                            nth += 1;
                            on_signal(reason, nth);
                        }
                    }
                })
                .ok();
            SignalForwarder { handle, thread }
        }
        #[cfg(not(unix))]
        {
            let _ = &mut on_signal;
            SignalForwarder { thread: None }
        }
    }
}

impl Drop for SignalForwarder {
    fn drop(&mut self) {
        #[cfg(unix)]
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn signals_map_to_reasons_and_exit_codes() {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
        for (sig, name, code) in [
            (SIGINT, "SIGINT", 130),
            (SIGTERM, "SIGTERM", 143),
            (SIGHUP, "SIGHUP", 129),
        ] {
            let reason = reason_for(sig).unwrap();
            assert_eq!(signal_name(reason), name);
            assert_eq!(reason.signal_exit_code(), Some(128 + sig));
            assert_eq!(reason.signal_exit_code(), Some(code));
        }
        assert_eq!(reason_for(SIGUSR1), None);
        assert_eq!(FinishReason::MaxSteps.signal_exit_code(), None);
    }

    #[test]
    fn an_echo_of_the_same_signal_is_not_a_second_request() {
        let mut f = EchoFilter::default();
        let t0 = std::time::Instant::now();
        let ms = std::time::Duration::from_millis;
        assert!(f.accept(FinishReason::Terminated, t0));
        assert!(!f.accept(FinishReason::Terminated, t0 + ms(3)));
        assert!(f.accept(FinishReason::Interrupted, t0 + ms(5)));
        assert!(f.accept(FinishReason::Terminated, t0 + ms(10)));
        assert!(f.accept(FinishReason::Terminated, t0 + ms(1200)));
    }
}
