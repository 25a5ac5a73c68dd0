//! System pane (`m`, in place of the LR/grad chart): process RSS, CPU use and threads, GPU
//! utilisation and memory (NVML, `cuda` builds), and the peak MFU is measured against. A
//! self-contained component: its state (the last reading from `crate::sys`), rows and drawing.
//! The process is the cockpit's own, or in `watch` the watched run's writer (`system_watch`).

use super::pane_block;
use super::system_watch::{writer_of, WatchedWriter};
use crate::sys::{peaks, GpuReading, ProcessTarget, SysSampler, SysSnapshot};
use crate::tui::app::App;
use crate::tui::theme::Theme;
use crate::units::format_bytes;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use std::path::Path;

/// Seconds between readings (CPU use is averaged over this interval).
pub const INTERVAL_SECS: u64 = 1;

/// The pane's state: whether it is shown and the newest reading.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SystemPane {
    pub shown: bool,
    pub last: Option<SysSnapshot>,
    /// Watch mode: the watched run's writer, whose process the reading is (None: the
    /// cockpit's own process, which trains in it).
    pub writer: Option<WatchedWriter>,
}

impl SystemPane {
    /// Fold in a new reading of this process.
    pub fn update(&mut self, snapshot: SysSnapshot) {
        self.last = Some(snapshot);
    }

    /// Fold in a reading taken by [`Reading::take`] (the sampler thread's, or a test's).
    pub fn update_from(&mut self, reading: Reading) {
        self.writer = reading.writer;
        self.last = Some(reading.snapshot);
    }

    /// Take the next reading now (see [`Reading::take`]) and fold it in.
    pub fn read(&mut self, sampler: &mut SysSampler, watched: Option<&Path>) {
        self.update_from(Reading::take(sampler, watched));
    }
}

/// One system reading and, in watch mode, whose process it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub snapshot: SysSnapshot,
    /// The watched run's writer (None: the cockpit's own process).
    pub writer: Option<WatchedWriter>,
}

impl Reading {
    /// Of this process, or, when watching `watched` (a run directory), of that run's writer
    /// if it runs on this machine (no process figures otherwise; GPUs are always this
    /// machine's).
    pub fn take(sampler: &mut SysSampler, watched: Option<&Path>) -> Self {
        let writer = watched.map(writer_of);
        let target = writer
            .as_ref()
            .map_or(ProcessTarget::This, WatchedWriter::target);
        Self {
            snapshot: sampler.sample_of(target),
            writer,
        }
    }
}

/// Where the MFU peak comes from, shown next to it.
#[derive(Debug, Clone, PartialEq)]
pub enum PeakSource {
    /// `ui.peak_tflops`, which always wins.
    Configured,
    /// The engine's GEMM measured at start (CPU).
    MeasuredGemm,
    /// The vendor peak of a GPU known by name.
    Known(String),
}

/// The peak MFU is computed against, in TFLOP/s.
#[derive(Debug, Clone, PartialEq)]
pub struct Peak {
    pub tflops: f64,
    pub source: PeakSource,
}

impl Peak {
    /// `0.5 TFLOP/s`, `0.214 TFLOP/s (measured GEMM)`, `989 TFLOP/s (NVIDIA H100)`.
    pub fn label(&self) -> String {
        match &self.source {
            PeakSource::Configured => format!("{} TFLOP/s", self.tflops),
            PeakSource::MeasuredGemm => format!("{} TFLOP/s (GEMM)", sig3(self.tflops)),
            PeakSource::Known(name) => format!("{} TFLOP/s ({name})", sig3(self.tflops)),
        }
    }
}

/// Three significant digits, never scientific.
fn sig3(x: f64) -> String {
    let decimals = if x >= 100.0 {
        0
    } else if x >= 10.0 {
        1
    } else if x >= 1.0 {
        2
    } else {
        3
    };
    format!("{x:.decimals$}")
}

impl App {
    /// The peak for MFU: `ui.peak_tflops` if set, else the engine's measured GEMM (CPU), else
    /// the table peak of the run's GPU as NVML names it.
    pub fn peak(&self) -> Option<Peak> {
        if self.peak_tflops > 0.0 {
            return Some(Peak {
                tflops: self.peak_tflops,
                source: PeakSource::Configured,
            });
        }
        let info = self.info.as_ref()?;
        if let Some(t) = info.measured_peak_tflops.filter(|t| *t > 0.0) {
            return Some(Peak {
                tflops: t,
                source: PeakSource::MeasuredGemm,
            });
        }
        let index: u32 = info
            .device
            .strip_prefix("cuda:")
            .and_then(|i| i.parse().ok())?;
        let Some(GpuReading::Devices(gpus)) = self.system.last.as_ref().map(|s| &s.gpus) else {
            return None;
        };
        let gpu = gpus.iter().find(|g| g.index == index)?;
        Some(Peak {
            tflops: peaks::known_peak_tflops(&gpu.name)?,
            source: PeakSource::Known(gpu.name.clone()),
        })
    }
}

/// Label/value rows, kept apart from drawing so tests can check them.
pub fn rows(app: &App) -> Vec<(String, String)> {
    let na = || "n/a".to_string();
    let Some(s) = &app.system.last else {
        return vec![("system".into(), "reading…".into())];
    };
    let mut rows: Vec<(String, String)> = Vec::new();
    // In watch mode, whose figures these are first, and none at all rather than the watcher's.
    let figures = match &app.system.writer {
        None => true,
        Some(w) => {
            rows.push(("process".into(), w.describe(s)));
            w.has_figures(s)
        }
    };
    if figures {
        rows.extend([
            (
                "RSS".into(),
                s.rss_bytes.map(format_bytes).unwrap_or_else(na),
            ),
            (
                "CPU".into(),
                s.cpu_percent
                    .map(|c| format!("{c:.0}% of {} cores", s.cores))
                    .unwrap_or_else(na),
            ),
            (
                "threads".into(),
                s.threads.map(|t| t.to_string()).unwrap_or_else(na),
            ),
        ]);
    }
    // GPUs are this machine's, which a watched run need not be on.
    let here = if app.system.writer.is_some() {
        " here"
    } else {
        ""
    };
    let gpu = format!("GPU{here}");
    match &s.gpus {
        GpuReading::NotBuilt => rows.push((gpu, "none (CPU build, no NVML)".into())),
        GpuReading::NoNvml(why) => rows.push((gpu, format!("no NVML: {why}"))),
        GpuReading::Devices(gpus) if gpus.is_empty() => rows.push((gpu, "NVML sees no GPU".into())),
        GpuReading::Devices(gpus) => {
            for g in gpus {
                rows.push((
                    format!("GPU {}{here}", g.index),
                    format!(
                        "{}% · {} / {} · {}",
                        g.util_percent,
                        format_bytes(g.mem_used),
                        format_bytes(g.mem_total),
                        g.name
                    ),
                ));
            }
        }
    }
    let peak = match app.peak() {
        Some(p) => p.label(),
        None => "unknown (set ui.peak_tflops)".into(),
    };
    rows.push(("MFU peak".into(), peak));
    rows
}

/// Draw the pane.
pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let block = pane_block(" system ", false, theme);
    let rows = rows(app);
    let label = rows
        .iter()
        .map(|(k, _)| k.chars().count() + 1)
        .fold(10, usize::max);
    let lines: Vec<Line> = rows
        .into_iter()
        .map(|(k, v)| {
            Line::from(vec![
                Span::styled(format!("{k:<label$}"), Style::new().fg(theme.dim)),
                Span::styled(v, Style::new().fg(theme.text)),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::sys::GpuStat;
    use crate::tui::snapshot_tests::scripted_app;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn reading(gpus: GpuReading) -> SysSnapshot {
        SysSnapshot {
            target: crate::sys::ProcessTarget::This,
            rss_bytes: Some(734_003_200),
            cpu_percent: Some(187.4 / 2.0),
            threads: Some(23),
            cores: 2,
            gpus,
        }
    }

    /// The system pane alone, drawn at `w`x`h` (also used by `system_watch`'s tests).
    pub(in crate::tui::panes) fn draw(app: &App, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| render(f, f.area(), app, &Theme::default()))
            .unwrap();
        t.backend().to_string()
    }

    /// Compare with a snapshot beside every other cockpit snapshot, in `tui/snapshots/`.
    pub(in crate::tui::panes) fn snap(name: &str, value: String) {
        insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true, snapshot_path => "../snapshots" }, {
            insta::assert_snapshot!(name, value);
        });
    }

    #[test]
    fn cpu_run_uses_the_measured_gemm_peak() {
        let mut app = scripted_app();
        app.info.as_mut().unwrap().measured_peak_tflops = Some(0.2143);
        app.system.update(reading(GpuReading::NotBuilt));
        assert_eq!(app.peak().unwrap().source, PeakSource::MeasuredGemm);
        assert!(app.mfu().is_some(), "MFU without a hand-set peak");
        snap("pane_system_cpu", draw(&app, 52, 8));
        // A configured peak still wins.
        app.peak_tflops = 0.5;
        assert_eq!(app.peak().unwrap().label(), "0.5 TFLOP/s");
    }

    #[test]
    fn gpu_run_uses_the_table_peak_of_its_device() {
        let mut app = scripted_app();
        app.info.as_mut().unwrap().device = "cuda:1".into();
        let gpu = |index, name: &str| GpuStat {
            index,
            name: name.into(),
            util_percent: 87,
            mem_used: 41 << 30,
            mem_total: 80 << 30,
        };
        app.system.update(reading(GpuReading::Devices(vec![
            gpu(0, "NVIDIA A100-SXM4-80GB"),
            gpu(1, "NVIDIA H100 80GB HBM3"),
        ])));
        let peak = app.peak().unwrap();
        assert_eq!(
            peak.tflops, 989.0,
            "the run's device (cuda:1), not the first"
        );
        snap("pane_system_gpu", draw(&app, 60, 9));
        // Unknown device, or NVML missing at run time: no peak, and the pane says why.
        app.system.update(reading(GpuReading::NoNvml(
            "libnvidia-ml.so: not found".into(),
        )));
        assert!(app.peak().is_none() && app.mfu().is_none());
        let rows = rows(&app);
        assert!(rows
            .iter()
            .any(|(_, v)| v == "no NVML: libnvidia-ml.so: not found"));
        assert!(rows.iter().any(|(_, v)| v.starts_with("unknown")));
    }
}
