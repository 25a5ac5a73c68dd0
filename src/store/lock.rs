//! One writer per run: an exclusive OS advisory lock (`flock` via std's `File::try_lock`,
//! released by the kernel when the holder dies, so a SIGKILL never leaves a stale lock) on
//! `<run>/lock`, with the holder's PID, host and start time written into it so a refusal can
//! name who is training. std's lock is enough; no crate is needed since Rust 1.89.

use super::fsio::read_bounded_string;
use super::layout::lock_path;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::{File, TryLockError};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a lock held by this very process is waited for: an engine of this process that
/// just emitted `Finished` drops its lock a moment later, and a new engine (the cockpit
/// switching runs) must not be refused because of that.
const OWN_PROCESS_WAIT: Duration = Duration::from_secs(5);
/// How long any lock is waited for before refusing: a watcher checking whether the run is
/// alive (`holder`, e.g. `watch`'s system pane each second) holds it for a moment.
const PROBE_WAIT: Duration = Duration::from_millis(250);

/// Who holds a run's lock, as written into the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub pid: u32,
    pub host: String,
    /// RFC 3339 time the lock was taken.
    pub since: String,
}

impl LockHolder {
    fn this_process() -> Self {
        Self {
            pid: std::process::id(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            since: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        }
    }

    /// True when the holder is this process (on this host).
    pub fn is_this_process(&self) -> bool {
        self.pid == std::process::id() && self.on_this_host()
    }

    /// True when the holder runs on this machine, so its PID can be looked up here (the
    /// system pane of `watch` samples it).
    pub fn on_this_host(&self) -> bool {
        self.host == gethostname::gethostname().to_string_lossy()
    }

    /// The one-line refusal for a second writer of `run_dir`.
    pub fn refusal(&self, run_dir: &Path) -> String {
        let this = if self.is_this_process() {
            " (this process)"
        } else {
            ""
        };
        format!(
            "run {dir} is being trained by PID {}{this} on host {} since {}; stop that process first, or watch it with `llite-tui watch {dir}`",
            self.pid,
            self.host,
            self.since,
            dir = run_dir.display()
        )
    }
}

/// The exclusive right to write into one run directory, held until dropped (or the process
/// dies). Functions that modify a run take `&RunLock` as proof that the caller holds it.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    run_dir: PathBuf,
}

impl RunLock {
    /// Take the run's lock or refuse with one line naming the holder. Creates `<run>/lock`.
    pub fn acquire(run_dir: &Path) -> Result<Self> {
        let path = lock_path(run_dir);
        let mut file = open_lock_file(&path, true)?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let holder = read_holder(&path);
                    let ours = holder.as_ref().is_some_and(LockHolder::is_this_process);
                    let waited = start.elapsed();
                    if waited < PROBE_WAIT || (ours && waited < OWN_PROCESS_WAIT) {
                        std::thread::sleep(Duration::from_millis(if ours { 50 } else { 10 }));
                        continue;
                    }
                    match holder {
                        Some(h) => bail!("{}", h.refusal(run_dir)),
                        None => bail!(
                            "run {dir} is being trained by another process (its holder is not recorded in {}); stop that process first, or watch it with `llite-tui watch {dir}`",
                            path.display(),
                            dir = run_dir.display()
                        ),
                    }
                }
                Err(TryLockError::Error(e)) => {
                    bail!("{}: cannot lock the run directory: {e}", path.display())
                }
            }
        }
        let holder = serde_json::to_string(&LockHolder::this_process())? + "\n";
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(holder.as_bytes()))
            .and_then(|_| file.sync_all())
            .with_context(|| format!("{}: cannot record the lock holder", path.display()))?;
        Ok(Self {
            file,
            run_dir: run_dir.to_path_buf(),
        })
    }

    /// The run directory this lock guards.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Another process's hold on `run_dir`, if any, without taking or writing anything: for
/// destructive actions outside training (the cockpit's delete) that must not race a writer.
/// A lock held by this process (the cockpit's own engine) is not foreign.
pub fn foreign_holder(run_dir: &Path) -> Result<Option<LockHolder>> {
    Ok(holder(run_dir)?.filter(|h| !h.is_this_process()))
}

/// Whoever holds `run_dir`'s lock now, this process included (None: no live writer), without
/// taking or writing anything: the runs index tells a running run from a crashed one by it.
pub fn holder(run_dir: &Path) -> Result<Option<LockHolder>> {
    let path = lock_path(run_dir);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    let file = open_lock_file(&path, false)?;
    match file.try_lock() {
        Ok(()) => {
            let _ = file.unlock();
            Ok(None)
        }
        Err(TryLockError::WouldBlock) => match read_holder(&path) {
            Some(h) => Ok(Some(h)),
            None => Ok(Some(LockHolder {
                pid: 0,
                host: "unknown".into(),
                since: "unknown".into(),
            })),
        },
        Err(TryLockError::Error(e)) => {
            bail!("{}: cannot check the run's lock: {e}", path.display())
        }
    }
}

/// Open the lock file without following a symlink (a planted link must not make us truncate
/// a file elsewhere) and without blocking on a FIFO; refuse anything but a regular file.
fn open_lock_file(path: &Path, create: bool) -> Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(create);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options
        .open(path)
        .with_context(|| format!("{}: cannot open the run's lock file", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("{}: cannot stat the run's lock file", path.display()))?;
    if !meta.is_file() {
        bail!(
            "{}: the run's lock file is not a regular file; refusing to use it",
            path.display()
        );
    }
    Ok(file)
}

fn read_holder(path: &Path) -> Option<LockHolder> {
    let text = read_bounded_string(path, 4096).ok()?;
    serde_json::from_str(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let text = std::fs::read_to_string(lock_path(dir.path())).unwrap();
        let holder: LockHolder = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(holder.pid, std::process::id());
        // Same process, second open file description: flock conflicts; after the grace
        // period for this process's own engines, the refusal names the PID.
        let t = Instant::now();
        let e = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(t.elapsed() >= OWN_PROCESS_WAIT);
        assert!(e.contains(&format!("PID {}", std::process::id())), "{e}");
        assert!(e.contains("llite-tui watch"), "{e}");
        assert!(!e.contains('\n'));
        // This process's own lock is not foreign (the cockpit may delete in its own run).
        assert_eq!(foreign_holder(dir.path()).unwrap(), None);
        drop(first);
        let _again = RunLock::acquire(dir.path()).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_or_special_lock_file_is_refused_without_touching_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, b"keep me").unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::os::unix::fs::symlink(&target, lock_path(&run)).unwrap();
        let e = RunLock::acquire(&run).unwrap_err().to_string();
        assert!(e.contains("lock"), "{e}");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");

        let run2 = dir.path().join("run2");
        std::fs::create_dir(&run2).unwrap();
        let fifo = std::ffi::CString::new(lock_path(&run2).to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let e = RunLock::acquire(&run2).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

    /// `watch` checks every second whether its run's writer is alive (`holder`, which holds
    /// the lock for a moment when it is free): a writer starting right then must not be
    /// refused in the name of the previous, long-gone holder.
    #[test]
    fn a_watchers_probe_never_makes_a_writer_fail() {
        let dir = tempfile::tempdir().unwrap();
        let gone = r#"{"pid":1,"host":"elsewhere","since":"2026-01-01T00:00:00Z"}"#;
        std::fs::write(lock_path(dir.path()), gone).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let probe = {
            let (dir, stop) = (dir.path().to_path_buf(), stop.clone());
            std::thread::spawn(move || {
                let mut probes = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = holder(&dir);
                    probes += 1;
                }
                probes
            })
        };
        for i in 0..200 {
            let lock = RunLock::acquire(dir.path())
                .unwrap_or_else(|e| panic!("acquire {i} refused during a probe: {e}"));
            drop(lock);
            // As a writer of another process would leave it.
            std::fs::write(lock_path(dir.path()), gone).unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(probe.join().unwrap() > 200, "the probe ran throughout");
    }
}
