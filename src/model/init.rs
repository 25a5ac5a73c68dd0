//! Weight initialisation from our own seeded RNG on the host, so the same seed gives the same
//! model on every backend (CPU and CUDA) and the init stream never mixes with other RNGs.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A deterministic normal sampler (Box-Muller over ChaCha8).
pub struct InitRng {
    rng: ChaCha8Rng,
    spare: Option<f64>,
}

impl InitRng {
    /// One stream per run seed.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            spare: None,
        }
    }

    fn standard_normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = self.rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let (s, c) = (2.0 * std::f64::consts::PI * u2).sin_cos();
        self.spare = Some(r * s);
        r * c
    }

    /// `n` values from N(0, std²).
    pub fn normal(&mut self, n: usize, std: f64) -> Vec<f32> {
        (0..n)
            .map(|_| (self.standard_normal() * std) as f32)
            .collect()
    }
}
