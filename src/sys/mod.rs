//! Process and GPU figures for the cockpit's system pane: RSS, CPU use, threads, and per-GPU
//! utilisation and memory. Burn-free plain data. Hand-written for the process figures: one
//! read of `/proc/self/stat` gives all three (Linux only; elsewhere they show as n/a), where
//! `sysinfo` would build a whole-system scanner for three numbers.

pub mod gpu;
pub mod peaks;
mod proc_self;

pub use gpu::{GpuReading, GpuStat};
pub use proc_self::{parse_stat, ProcStat};
use std::time::Instant;

/// One reading of the process (and GPUs), as the system pane shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SysSnapshot {
    /// Resident set size in bytes.
    pub rss_bytes: Option<u64>,
    /// CPU time used since the previous reading, as % of all cores (100 = every core busy).
    pub cpu_percent: Option<f64>,
    pub threads: Option<u64>,
    /// Cores available to this process, the base of `cpu_percent`.
    pub cores: usize,
    pub gpus: GpuReading,
}

/// Takes readings; keeps the previous CPU time so each reading covers the last interval.
pub struct SysSampler {
    last_cpu: Option<(Instant, f64)>,
    gpu: gpu::GpuProbe,
    cores: usize,
}

impl Default for SysSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl SysSampler {
    /// A sampler; NVML (in a `cuda` build) is opened on the first reading, not here.
    pub fn new() -> Self {
        Self {
            last_cpu: None,
            gpu: gpu::GpuProbe::default(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// Read the process now (CPU use needs a previous reading: the first one has none).
    pub fn sample(&mut self) -> SysSnapshot {
        let now = Instant::now();
        let stat = proc_self::read_self();
        let cpu_secs = stat.as_ref().and_then(|s| s.cpu_secs());
        let cpu_percent = match (self.last_cpu, cpu_secs) {
            (Some((t0, c0)), Some(c1)) => {
                let wall = now.duration_since(t0).as_secs_f64();
                (wall > 0.0).then(|| ((c1 - c0) / (wall * self.cores as f64) * 100.0).max(0.0))
            }
            _ => None,
        };
        if let Some(c) = cpu_secs {
            self.last_cpu = Some((now, c));
        }
        SysSnapshot {
            rss_bytes: stat.as_ref().and_then(|s| s.rss_bytes()),
            cpu_percent,
            threads: stat.map(|s| s.threads),
            cores: self.cores,
            gpus: self.gpu.read(),
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let mut s = SysSampler::new();
        let first = s.sample();
        assert!(first.cpu_percent.is_none(), "no interval yet");
        let spawned: Vec<_> = (0..3)
            .map(|_| {
                std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_millis(300)))
            })
            .collect();
        // Burn some CPU so the interval has something to measure.
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 150 {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let second = s.sample();
        let threads = second.threads.unwrap();
        assert!(threads >= 4, "{threads} threads with 3 spawned");
        let rss = second.rss_bytes.unwrap();
        assert!(rss > 1 << 20 && rss < 1 << 40, "rss {rss}");
        let cpu = second.cpu_percent.unwrap();
        assert!(cpu > 0.0 && cpu <= 100.0 * 1.05, "cpu {cpu}%");
        for j in spawned {
            j.join().unwrap();
        }
    }
}
