//! Figures the panes derive from the step history: the step, the visible window, recent
//! throughput, MFU and ETA. Pure functions of `App`, kept apart from event handling.

use super::app::{App, RATE_WINDOW, RECENT_WINDOW};
use super::calc::mfu;
use crate::protocol::StepStats;

impl App {
    /// Latest step, 0 before the first one.
    pub fn step(&self) -> u64 {
        self.steps
            .last()
            .map(|s| s.step)
            .or(self.info.as_ref().map(|i| i.start_step))
            .unwrap_or(0)
    }

    /// Steps the chart shows: everything, or the last `RECENT_WINDOW`.
    pub fn visible_steps(&self) -> &[StepStats] {
        if self.full_history || self.steps.len() <= RECENT_WINDOW {
            &self.steps
        } else {
            &self.steps[self.steps.len() - RECENT_WINDOW..]
        }
    }

    /// Mean step time over the recent window, in ms.
    pub fn recent_step_ms(&self) -> Option<f64> {
        self.recent_mean(|s| s.step_ms)
    }

    /// Mean tokens/s over the recent window.
    pub fn recent_tokens_per_s(&self) -> Option<f64> {
        self.recent_mean(|s| s.tokens_per_s)
    }

    fn recent_mean(&self, field: impl Fn(&StepStats) -> f64) -> Option<f64> {
        let n = self.steps.len().min(RATE_WINDOW);
        (n > 0).then(|| {
            self.steps[self.steps.len() - n..]
                .iter()
                .map(field)
                .sum::<f64>()
                / n as f64
        })
    }

    /// Model FLOPs utilisation in [0, 1], when a peak is known (`App::peak`).
    pub fn mfu(&self) -> Option<f64> {
        let flops = self.info.as_ref()?.flops_per_token;
        mfu(self.recent_tokens_per_s()?, flops, self.peak()?.tflops)
    }

    /// Seconds to `max_steps` at the recent pace.
    pub fn eta_secs(&self) -> Option<f64> {
        let info = self.info.as_ref()?;
        let left = info.max_steps.checked_sub(self.step())?;
        Some(left as f64 * self.recent_step_ms()? / 1000.0)
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
