//! Figures that combine the run view's step history with the run's info: the step, MFU, ETA
//! and watch-mode silence. Pure functions of `App`, kept apart from event handling (the
//! history-only figures live on `RunView`).

use super::app::App;
use super::calc::mfu;

impl App {
    /// Latest step, 0 before the first one.
    pub fn step(&self) -> u64 {
        self.run_view
            .last_step()
            .or(self.info.as_ref().map(|i| i.start_step))
            .unwrap_or(0)
    }

    /// Model FLOPs utilisation in [0, 1], when a peak is known (`App::peak`).
    pub fn mfu(&self) -> Option<f64> {
        let flops = self.info.as_ref()?.flops_per_token;
        mfu(
            self.run_view.recent_tokens_per_s()?,
            flops,
            self.peak()?.tflops,
        )
    }

    /// Seconds to `max_steps` at the recent pace.
    pub fn eta_secs(&self) -> Option<f64> {
        let info = self.info.as_ref()?;
        let left = info.max_steps.checked_sub(self.step())?;
        Some(left as f64 * self.run_view.recent_step_ms()? / 1000.0)
    }

    /// In watch mode, seconds since the followed run last wrote anything, once that exceeds a
    /// minute while it claims to be running (its writer may have died).
    pub fn watch_silence_secs(&self) -> Option<u64> {
        let silent = self.now_unix.saturating_sub(self.last_write_unix);
        (self.mode == super::app::Mode::Watch
            && self.state == super::app::RunState::Running
            && self.last_write_unix > 0
            && silent > 60)
            .then_some(silent)
    }
}
