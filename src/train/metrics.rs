//! Training-health signals computed in the engine: loss-spike and grad-norm explosion detection
//! by z-score over a recent window (as llm.c does), with a floor on the size of the jump so a
//! healthy run's ordinary noise never alerts (see [`SpikeDetector::default`]).

use crate::protocol::AlertKind;
use std::collections::VecDeque;

/// A value's place in its window.
#[derive(Debug, Clone, Copy)]
struct Score {
    z: f64,
    mean: f64,
}

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

    /// How far `x` is above the window: its z-score and the window's mean (None until full).
    fn zscore(&self, x: f64) -> Option<Score> {
        if self.values.len() < self.capacity {
            return None;
        }
        let n = self.values.len() as f64;
        let mean = self.values.iter().sum::<f64>() / n;
        let var = self.values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        Some(Score {
            z: (x - mean) / var.sqrt().max(1e-8),
            mean,
        })
    }

    fn push(&mut self, x: f64) {
        if self.values.len() == self.capacity {
            self.values.pop_front();
        }
        self.values.push_back(x);
    }
}

/// Flags losses and gradient norms far outside their recent distribution: above `threshold`
/// standard deviations of the window *and* by a margin that matters (a loss `loss_margin`
/// above the window's mean, a grad norm `grad_ratio` times it). The z-score alone fired on
/// noise: over a quiet stretch the window's deviation is tiny, so an ordinary 3x grad-norm
/// blip or a harder batch scored 6 sigma.
#[derive(Debug, Clone)]
pub struct SpikeDetector {
    loss: Window,
    grad: Window,
    threshold: f64,
    loss_margin: f64,
    grad_ratio: f64,
}

/// Steps of history each signal is judged against.
pub const SPIKE_WINDOW: usize = 50;
/// Standard deviations above the window's mean an alert needs.
pub const SPIKE_SIGMA: f64 = 5.0;
/// A loss spike must also be this fraction above the window's mean loss.
pub const LOSS_SPIKE_MARGIN: f64 = 0.15;
/// A grad explosion must also be this many times the window's mean grad norm.
pub const GRAD_EXPLOSION_RATIO: f64 = 5.0;

impl Default for SpikeDetector {
    /// The tuned detector: silent over a healthy tiny run (see the tests), firing on a loss
    /// 15% above its recent level or a grad norm 5x its recent level, when either is also
    /// 5 sigma out.
    fn default() -> Self {
        Self::new(SPIKE_WINDOW, SPIKE_SIGMA).with_margins(LOSS_SPIKE_MARGIN, GRAD_EXPLOSION_RATIO)
    }
}

impl SpikeDetector {
    /// A detector over `window` steps that fires above `threshold` standard deviations
    /// (no margin floors: add them with [`SpikeDetector::with_margins`]).
    pub fn new(window: usize, threshold: f64) -> Self {
        Self {
            loss: Window::new(window),
            grad: Window::new(window),
            threshold,
            loss_margin: 0.0,
            grad_ratio: 0.0,
        }
    }

    /// The same detector requiring a loss `loss_margin` (a fraction) above the window's mean
    /// and a grad norm `grad_ratio` times the window's mean before it alerts.
    pub fn with_margins(mut self, loss_margin: f64, grad_ratio: f64) -> Self {
        self.loss_margin = loss_margin;
        self.grad_ratio = grad_ratio;
        self
    }

    /// Record one step; returns an alert when the loss or grad norm spikes. Spiking values are
    /// kept out of the window so one spike does not hide the next.
    pub fn observe(&mut self, loss: f64, grad_norm: f64) -> Option<(AlertKind, String)> {
        if !loss.is_finite() {
            return Some((AlertKind::NonFiniteLoss, format!("loss is {loss}")));
        }
        let lz = self.loss.zscore(loss);
        let gz = self.grad.zscore(grad_norm);
        if let Some(s) =
            lz.filter(|s| s.z > self.threshold && loss > s.mean * (1.0 + self.loss_margin))
        {
            return Some((
                AlertKind::LossSpike,
                format!(
                    "loss {loss:.4} is {:.1} sigma and {:.0}% above the mean of the last {} steps",
                    s.z,
                    (loss / s.mean - 1.0) * 100.0,
                    self.loss.capacity
                ),
            ));
        }
        if let Some(s) = gz.filter(|s| s.z > self.threshold && grad_norm > s.mean * self.grad_ratio)
        {
            self.loss.push(loss);
            return Some((
                AlertKind::GradExplosion,
                format!(
                    "grad norm {grad_norm:.3} is {:.1} sigma above and {:.1}x the mean of the last {} steps",
                    s.z,
                    grad_norm / s.mean,
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

    /// A quiet stretch then the blips a healthy run has: a harder batch (+8% loss) and a
    /// grad norm 3x its recent level. The bare z-score calls both spikes; the tuned default
    /// calls neither, and still catches a real loss spike and a real explosion.
    #[test]
    fn the_tuned_detector_ignores_healthy_blips_and_catches_real_spikes() {
        let quiet = |d: &mut SpikeDetector| {
            for i in 0..60 {
                let wobble = if i % 2 == 0 { 0.01 } else { -0.01 };
                assert!(d.observe(4.0 + wobble, 1.0 + wobble).is_none(), "step {i}");
            }
        };
        let mut bare = SpikeDetector::new(SPIKE_WINDOW, SPIKE_SIGMA);
        quiet(&mut bare);
        assert_eq!(bare.observe(4.32, 1.0).unwrap().0, AlertKind::LossSpike);
        assert_eq!(bare.observe(4.0, 3.0).unwrap().0, AlertKind::GradExplosion);

        let mut tuned = SpikeDetector::default();
        quiet(&mut tuned);
        assert!(tuned.observe(4.32, 1.0).is_none(), "a harder batch");
        assert!(tuned.observe(4.0, 3.0).is_none(), "a 3x grad blip");
        let (kind, detail) = tuned.observe(6.0, 1.0).unwrap();
        assert_eq!(kind, AlertKind::LossSpike);
        assert!(
            detail.contains("above the mean of the last 50 steps"),
            "{detail}"
        );
        let (kind, detail) = tuned.observe(4.0, 12.0).unwrap();
        assert_eq!(kind, AlertKind::GradExplosion);
        assert!(detail.contains("x the mean"), "{detail}");
    }

    /// (loss, grad norm) of every step of a real healthy run: the embedded tiny preset,
    /// headless, release build, shuffled-window loader (`llite-tui train --headless
    /// --max-steps 1000`), read back from its metrics.jsonl.
    const HEALTHY_TINY_RUN: &str = include_str!("testdata/tiny_run_steps.csv");

    fn healthy_steps() -> Vec<(f64, f64)> {
        HEALTHY_TINY_RUN
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (a, b) = l.split_once(',').unwrap();
                (a.parse().unwrap(), b.parse().unwrap())
            })
            .collect()
    }

    fn alerts(d: &mut SpikeDetector, steps: &[(f64, f64)]) -> Vec<(usize, AlertKind)> {
        steps
            .iter()
            .enumerate()
            .filter_map(|(i, &(l, g))| d.observe(l, g).map(|(k, _)| (i + 1, k)))
            .collect()
    }

    /// The recorded healthy run raises nothing under the tuned detector (the bare z-score
    /// raised grad-explosion alerts on it); the same run with a real spike injected alerts.
    #[test]
    fn a_recorded_healthy_run_raises_none_and_an_injected_spike_still_does() {
        let steps = healthy_steps();
        assert!(steps.len() >= 500, "{} steps", steps.len());
        assert_eq!(alerts(&mut SpikeDetector::default(), &steps), vec![]);
        let bare = alerts(&mut SpikeDetector::new(SPIKE_WINDOW, SPIKE_SIGMA), &steps);
        assert!(!bare.is_empty(), "the bare z-score fired on this run");

        let at = steps.len() - 100;
        let mut spiked = steps.clone();
        spiked[at].0 *= 1.3;
        assert_eq!(
            alerts(&mut SpikeDetector::default(), &spiked),
            vec![(at + 1, AlertKind::LossSpike)]
        );
        let mut exploded = steps.clone();
        exploded[at].1 *= 10.0;
        assert_eq!(
            alerts(&mut SpikeDetector::default(), &exploded),
            vec![(at + 1, AlertKind::GradExplosion)]
        );
    }
}
