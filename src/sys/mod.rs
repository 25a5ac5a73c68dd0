//! Process and GPU figures for the cockpit's system pane: RSS, CPU use, threads, and per-GPU
//! utilisation and memory. Burn-free plain data. Hand-written for the process figures: one
//! read of `/proc/<pid>/stat` gives all three (Linux only; elsewhere they show as n/a), where
//! `sysinfo` would build a whole-system scanner for three numbers.

pub mod gpu;
pub mod peaks;
mod proc_stat;

pub use gpu::{GpuReading, GpuStat};
pub use proc_stat::{parse_stat, read_stat, ProcStat};
use std::time::Instant;

/// Whose process figures a reading takes: the cockpit's own process (it trains in it), a
/// process of this machine by PID (the writer of a watched run), or none (the writer is on
/// another host or gone: GPU figures only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProcessTarget {
    #[default]
    This,
    Pid(u32),
    Nothing,
}

/// One reading of a process (and this machine's GPUs), as the system pane shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SysSnapshot {
    /// Whose figures these are. For `Pid`, all three are None when its `/proc` entry could
    /// not be read (the process exited, or is not visible from here).
    pub target: ProcessTarget,
    /// Resident set size in bytes.
    pub rss_bytes: Option<u64>,
    /// CPU time used since the previous reading, as % of all cores (100 = every core busy).
    pub cpu_percent: Option<f64>,
    pub threads: Option<u64>,
    /// Cores available to this process, the base of `cpu_percent`.
    pub cores: usize,
    /// GPUs of this machine (never another host's).
    pub gpus: GpuReading,
}

/// Takes readings; keeps the previous CPU time of the process read last so each reading
/// covers the last interval.
pub struct SysSampler {
    last_cpu: Option<(ProcessTarget, Instant, f64)>,
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

    /// Read this process now (CPU use needs a previous reading: the first one has none).
    pub fn sample(&mut self) -> SysSnapshot {
        self.sample_of(ProcessTarget::This)
    }

    /// Read `target` now; CPU use needs a previous reading of the same target.
    pub fn sample_of(&mut self, target: ProcessTarget) -> SysSnapshot {
        let now = Instant::now();
        let stat = match target {
            ProcessTarget::This => read_stat(None),
            ProcessTarget::Pid(pid) => read_stat(Some(pid)),
            ProcessTarget::Nothing => None,
        };
        let cpu_secs = stat.as_ref().and_then(|s| s.cpu_secs());
        let cpu_percent = match (self.last_cpu, cpu_secs) {
            (Some((of, t0, c0)), Some(c1)) if of == target => {
                let wall = now.duration_since(t0).as_secs_f64();
                (wall > 0.0).then(|| ((c1 - c0) / (wall * self.cores as f64) * 100.0).max(0.0))
            }
            _ => None,
        };
        self.last_cpu = cpu_secs.map(|c| (target, now, c));
        SysSnapshot {
            target,
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

#[cfg(all(test, target_os = "linux"))]
mod other_process_tests {
    use super::*;
    use std::time::Duration;

    /// Another process's figures are its own: a one-thread busy shell, not this multi-threaded
    /// test process; gone once it exits; the CPU interval restarts when the target changes.
    #[test]
    fn reads_another_process_by_pid() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("spawning sh");
        let pid = child.id();
        let mut s = SysSampler::new();
        let first = s.sample_of(ProcessTarget::Pid(pid));
        assert_eq!(first.target, ProcessTarget::Pid(pid));
        assert!(first.cpu_percent.is_none(), "no interval yet");
        // The busy loop shows as CPU use within a few intervals, even on a loaded machine.
        let start = Instant::now();
        let busy = loop {
            std::thread::sleep(Duration::from_millis(200));
            let r = s.sample_of(ProcessTarget::Pid(pid));
            if r.cpu_percent.is_some_and(|c| c > 0.0) || start.elapsed().as_secs() > 10 {
                break r;
            }
        };
        let own = read_stat(None).unwrap();
        assert!(own.threads >= 2, "the test harness runs tests in threads");
        assert_eq!(busy.threads, Some(1), "the shell's thread count, not ours");
        let rss = busy.rss_bytes.unwrap();
        assert!(rss > 0 && rss < 1 << 30, "rss {rss}");
        let cpu = busy.cpu_percent.expect("a second reading of the same pid");
        assert!(cpu > 0.0 && cpu <= 100.0 * 1.05, "cpu {cpu}%");
        // Switching to this process starts a new interval.
        assert!(s.sample().cpu_percent.is_none());

        child.kill().unwrap();
        child.wait().unwrap();
        let gone = s.sample_of(ProcessTarget::Pid(pid));
        assert_eq!(
            (gone.rss_bytes, gone.cpu_percent, gone.threads),
            (None, None, None),
            "an exited process has no figures"
        );
        let nothing = s.sample_of(ProcessTarget::Nothing);
        assert_eq!(nothing.threads, None);
        #[cfg(not(feature = "cuda"))]
        assert_eq!(
            nothing.gpus,
            GpuReading::NotBuilt,
            "GPU figures are read either way"
        );
    }
}
