//! The CPU's practical peak for MFU, measured once per process by a short GEMM on the backend
//! training uses (no vendor table exists for CPUs): the best rate of a few 512³ matmuls.
//! MFU against it says how much of what this machine's matmul can do the training gets.

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Side of the measured square GEMM: big enough to run at full rate, small enough to take
/// a few milliseconds on a laptop core.
const N: usize = 512;
/// Measuring stops after this long (a loaded machine gets fewer repetitions, not more time).
const BUDGET: Duration = Duration::from_millis(120);

static CPU_PEAK: OnceLock<Option<f64>> = OnceLock::new();

/// The CPU backend's measured GEMM peak in TFLOP/s (measured on first use, then cached).
pub fn cpu_gemm_peak_tflops() -> Option<f64> {
    *CPU_PEAK.get_or_init(|| measure_gemm_tflops::<burn::backend::Flex>(&Default::default()))
}

/// Best observed rate of an `N`x`N` matmul on `device`, in TFLOP/s.
pub fn measure_gemm_tflops<B: Backend>(device: &B::Device) -> Option<f64> {
    let a = Tensor::<B, 2>::random([N, N], Distribution::Default, device);
    let b = Tensor::<B, 2>::random([N, N], Distribution::Default, device);
    // Warm-up: first-use allocations and thread-pool start are not the machine's peak.
    let _ = a.clone().matmul(b.clone()).into_data();
    let flops = 2.0 * (N * N * N) as f64;
    let start = Instant::now();
    let mut best: f64 = 0.0;
    for _ in 0..32 {
        let t = Instant::now();
        let _ = a.clone().matmul(b.clone()).into_data();
        best = best.max(flops / t.elapsed().as_secs_f64().max(1e-9));
        if start.elapsed() > BUDGET {
            break;
        }
    }
    (best.is_finite() && best > 0.0).then_some(best / 1e12)
}
