//! Watch mode's system pane: whose process the figures are. The watched run's lock names its
//! writer (PID and host); the pane reads that process when it runs on this machine, and says
//! where it is otherwise, never showing the watcher's own figures in its place.

use crate::store::lock;
use crate::sys::{ProcessTarget, SysSnapshot};
use std::path::Path;

/// The writer of a watched run, as its lock tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchedWriter {
    /// On this machine: its figures are read by PID.
    Local { pid: u32 },
    /// On another host: nothing to read from here.
    Remote { pid: u32, host: String },
    /// Nobody holds the run's lock: it finished or stopped, or its process died.
    Gone,
    /// The lock could not be checked, or does not name its holder (why).
    Unknown(String),
}

impl WatchedWriter {
    /// Whose figures to read for this writer.
    pub fn target(&self) -> ProcessTarget {
        match self {
            Self::Local { pid } => ProcessTarget::Pid(*pid),
            _ => ProcessTarget::Nothing,
        }
    }

    /// True when `reading` holds this writer's own figures (a local writer that could be read).
    pub fn has_figures(&self, reading: &SysSnapshot) -> bool {
        matches!(self, Self::Local { pid } if reading.target == ProcessTarget::Pid(*pid))
            && reading.threads.is_some()
    }

    /// The pane's `process` row: which process the figures below are, or why there are none.
    pub fn describe(&self, reading: &SysSnapshot) -> String {
        match self {
            Self::Local { pid } if self.has_figures(reading) => {
                format!("PID {pid}, the run's writer")
            }
            Self::Local { pid } => format!("PID {pid}: not readable here (exited?)"),
            Self::Remote { pid, host } => format!("PID {pid} on {host}: another host"),
            Self::Gone => "no live writer (run ended or died)".into(),
            Self::Unknown(why) => format!("writer unknown: {why}"),
        }
    }
}

/// The writer of `run_dir` now, from its lock (taken by nobody here: only checked).
pub fn writer_of(run_dir: &Path) -> WatchedWriter {
    match lock::holder(run_dir) {
        Err(e) => WatchedWriter::Unknown(format!("{e:#}")),
        Ok(None) => WatchedWriter::Gone,
        Ok(Some(h)) if h.pid == 0 => {
            WatchedWriter::Unknown("the run's lock does not name its holder".into())
        }
        Ok(Some(h)) if h.on_this_host() => WatchedWriter::Local { pid: h.pid },
        Ok(Some(h)) => WatchedWriter::Remote {
            pid: h.pid,
            host: h.host,
        },
    }
}

#[cfg(test)]
mod tests_support {
    use crate::store::layout::lock_path;
    use std::io::Write;
    use std::path::Path;

    /// Hold `run`'s lock from this process with a holder record of our choosing, as another
    /// process (or host) would.
    pub fn forged_lock(run: &Path, pid: u32, host: &str) -> std::fs::File {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(lock_path(run))
            .unwrap();
        f.try_lock().unwrap();
        let record = serde_json::json!({"pid": pid, "host": host, "since": "2026-01-01T00:00:00Z"});
        writeln!(f, "{record}").unwrap();
        f
    }

    pub fn this_host() -> String {
        gethostname::gethostname().to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::{forged_lock, this_host};
    use super::*;
    use crate::store::lock::RunLock;

    #[test]
    fn the_lock_tells_where_the_writer_is() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(writer_of(dir.path()), WatchedWriter::Gone, "no lock file");
        let held = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(
            writer_of(dir.path()),
            WatchedWriter::Local {
                pid: std::process::id()
            }
        );
        drop(held);
        assert_eq!(writer_of(dir.path()), WatchedWriter::Gone, "released");

        let f = forged_lock(dir.path(), 4242, "gpu-box-7");
        assert_eq!(
            writer_of(dir.path()),
            WatchedWriter::Remote {
                pid: 4242,
                host: "gpu-box-7".into()
            }
        );
        drop(f);
        let f = forged_lock(dir.path(), 0, &this_host());
        assert!(matches!(writer_of(dir.path()), WatchedWriter::Unknown(_)));
        drop(f);
    }
}

#[cfg(test)]
mod pane_tests {
    use super::super::system::rows;
    use super::super::system::tests::{draw, snap};
    use super::*;
    use crate::sys::{GpuReading, SysSampler};
    use crate::tui::app::App;
    use crate::tui::snapshot_tests::scripted_app;

    /// A watching cockpit's app with a fixed reading of `target`.
    fn watching(writer: WatchedWriter, target: ProcessTarget, figures: bool) -> App {
        let mut app = scripted_app();
        app.info.as_mut().unwrap().measured_peak_tflops = Some(0.2143);
        app.system.writer = Some(writer);
        app.system.update(SysSnapshot {
            target,
            rss_bytes: figures.then_some(301_989_888),
            cpu_percent: figures.then_some(96.5),
            threads: figures.then_some(7),
            cores: 2,
            gpus: GpuReading::NotBuilt,
        });
        app
    }

    #[test]
    fn watch_mode_shows_the_writer_or_says_where_it_is() {
        let app = watching(
            WatchedWriter::Local { pid: 4242 },
            ProcessTarget::Pid(4242),
            true,
        );
        snap("pane_system_watch_local", draw(&app, 52, 9));

        let remote = WatchedWriter::Remote {
            pid: 4242,
            host: "gpu-box-7".into(),
        };
        let app = watching(remote, ProcessTarget::Nothing, false);
        snap("pane_system_watch_remote", draw(&app, 52, 6));

        // Gone, or exited between the lock check and the read: no figures, never n/a rows
        // that could pass for the watcher's.
        for (writer, target, says) in [
            (
                WatchedWriter::Gone,
                ProcessTarget::Nothing,
                "no live writer",
            ),
            (
                WatchedWriter::Local { pid: 4242 },
                ProcessTarget::Pid(4242),
                "PID 4242: not readable here",
            ),
        ] {
            let r = rows(&watching(writer, target, false));
            assert!(r[0].1.starts_with(says), "{r:?}");
            assert!(
                !r.iter().any(|(k, _)| k == "RSS" || k == "threads"),
                "{r:?}"
            );
            assert!(r.iter().any(|(k, _)| k == "GPU here"), "{r:?}");
        }
    }

    /// The whole path: a writer of this machine (a child process holding the lock's record)
    /// is read by PID; the watcher's own figures never appear.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_local_writer_is_read_by_its_pid() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let held = super::tests_support::forged_lock(
            dir.path(),
            child.id(),
            &super::tests_support::this_host(),
        );
        let mut app = scripted_app();
        let mut sampler = SysSampler::new();
        app.system.read(&mut sampler, Some(dir.path()));
        let writer = WatchedWriter::Local { pid: child.id() };
        assert_eq!(app.system.writer, Some(writer));
        let r = rows(&app);
        assert_eq!(r[0].1, format!("PID {}, the run's writer", child.id()));
        let threads = r.iter().find(|(k, _)| k == "threads").unwrap();
        assert_eq!(threads.1, "1", "sleep's one thread, not the watcher's many");
        child.kill().unwrap();
        child.wait().unwrap();
        app.system.read(&mut sampler, Some(dir.path()));
        assert!(
            rows(&app)[0].1.contains("not readable here"),
            "{:?}",
            rows(&app)
        );
        drop(held);
        app.system.read(&mut sampler, Some(dir.path()));
        assert_eq!(rows(&app)[0].1, "no live writer (run ended or died)");
        // Live mode: this process, no `process` row.
        app.system.read(&mut sampler, None);
        assert_eq!(app.system.writer, None);
        assert_eq!(rows(&app)[0].0, "RSS");
    }
}
