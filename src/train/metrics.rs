//! Training-health signals computed in the engine: loss-spike and grad-norm explosion detection
//! by z-score over a recent window (as llm.c does), and throughput smoothing.

use crate::protocol::AlertKind;
use std::collections::VecDeque;

/// Running mean/std over the last `capacity` values.
#[derive(Debug, Clone)]
struct Window {
    values: VecDeque<f64>,
    capacity: usize,
}

impl Window {
    fn new(capacity: usize) -> Self {
        Self {
            values: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    fn zscore(&self, x: f64) -> Option<f64> {
        if self.values.len() < self.capacity {
            return None;
        }
        let n = self.values.len() as f64;
        let mean = self.values.iter().sum::<f64>() / n;
        let var = self.values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        Some((x - mean) / var.sqrt().max(1e-8))
    }

    fn push(&mut self, x: f64) {
        if self.values.len() == self.capacity {
            self.values.pop_front();
        }
        self.values.push_back(x);
    }
}

/// Flags losses and gradient norms far outside their recent distribution.
#[derive(Debug, Clone)]
pub struct SpikeDetector {
    loss: Window,
    grad: Window,
    threshold: f64,
}

impl Default for SpikeDetector {
    fn default() -> Self {
        Self::new(50, 5.0)
    }
}

impl SpikeDetector {
    /// A detector over `window` steps that fires above `threshold` standard deviations.
    pub fn new(window: usize, threshold: f64) -> Self {
        Self {
            loss: Window::new(window),
            grad: Window::new(window),
            threshold,
        }
    }

    /// Record one step; returns an alert when the loss or grad norm spikes. Spiking values are
    /// kept out of the window so one spike does not hide the next.
    pub fn observe(&mut self, loss: f64, grad_norm: f64) -> Option<(AlertKind, String)> {
        if !loss.is_finite() {
            return Some((AlertKind::NonFiniteLoss, format!("loss is {loss}")));
        }
        let lz = self.loss.zscore(loss);
        let gz = self.grad.zscore(grad_norm);
        if let Some(z) = lz.filter(|z| *z > self.threshold) {
            return Some((
                AlertKind::LossSpike,
                format!(
                    "loss {loss:.4} is {z:.1} sigma above the last {} steps",
                    self.loss.capacity
                ),
            ));
        }
        if let Some(z) = gz.filter(|z| *z > self.threshold) {
            self.loss.push(loss);
            return Some((
                AlertKind::GradExplosion,
                format!(
                    "grad norm {grad_norm:.3} is {z:.1} sigma above the last {} steps",
                    self.grad.capacity
                ),
            ));
        }
        self.loss.push(loss);
        self.grad.push(grad_norm);
        None
    }
}

/// Steps kept for rebuilding the spike detector after a rewind (its window is far smaller).
const SPIKE_HISTORY: usize = 1024;

/// The spike detector and the recent steps it saw, so a rewind can rebuild it as it stood at
/// the checkpoint (the branch shares the run's history up to there).
#[derive(Default)]
pub struct SpikeWatch {
    detector: SpikeDetector,
    recent: VecDeque<SeenStep>,
}

/// One step as the spike detector saw it.
#[derive(Debug, Clone, Copy)]
struct SeenStep {
    step: u64,
    loss: f64,
    grad_norm: f64,
}

impl SpikeWatch {
    /// Record one step; returns an alert when it spikes (see [`SpikeDetector::observe`]).
    pub fn observe(&mut self, step: u64, loss: f64, grad_norm: f64) -> Option<(AlertKind, String)> {
        if self.recent.len() == SPIKE_HISTORY {
            self.recent.pop_front();
        }
        self.recent.push_back(SeenStep {
            step,
            loss,
            grad_norm,
        });
        self.detector.observe(loss, grad_norm)
    }

    /// Forget the steps after `step` and rebuild the detector from those before.
    pub fn rewind_to(&mut self, step: u64) {
        self.recent.retain(|r| r.step <= step);
        self.detector = SpikeDetector::default();
        for r in &self.recent {
            let _ = self.detector.observe(r.loss, r.grad_norm);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spike_fires_only_on_outliers() {
        let mut d = SpikeDetector::new(20, 5.0);
        for i in 0..100 {
            let loss = 4.0 - i as f64 * 0.01 + if i % 2 == 0 { 0.01 } else { -0.01 };
            assert!(
                d.observe(loss, 1.0 + (i % 3) as f64 * 0.01).is_none(),
                "step {i}"
            );
        }
        assert_eq!(d.observe(9.0, 1.0).unwrap().0, AlertKind::LossSpike);
        assert_eq!(d.observe(3.0, 50.0).unwrap().0, AlertKind::GradExplosion);
        assert_eq!(
            d.observe(f64::NAN, 1.0).unwrap().0,
            AlertKind::NonFiniteLoss
        );
    }
}
