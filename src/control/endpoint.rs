//! The control socket's place in the run directory: created owner-only with no window in
//! which another user could connect, refused in a directory others can write, a stale one
//! (its server died) replaced, and removed on exit only while it is still ours. Hand-written
//! on std's `UnixListener`: the checks are the point, and no crate does them.

use anyhow::{bail, Context, Result};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The socket's file name inside a run directory.
pub const SOCKET_NAME: &str = "control.sock";
/// Prefix of the private directory a socket is bound in before it is renamed into place.
const STAGING_PREFIX: &str = ".ctl";
/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// The socket path of `run_dir`.
pub fn socket_path(run_dir: &Path) -> PathBuf {
    run_dir.join(SOCKET_NAME)
}

/// The effective uid of this process.
pub fn my_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Refuse a path the kernel cannot bind or connect to, with its length.
pub fn check_path_len(path: &Path) -> Result<()> {
    let n = path.as_os_str().len();
    if n > MAX_SOCKET_PATH {
        bail!(
            "{}: path is {n} bytes, longer than a Unix socket allows ({MAX_SOCKET_PATH}); use a shorter runs directory",
            path.display()
        );
    }
    Ok(())
}

/// A socket this process created at `path`, identified by device and inode so that dropping
/// it never removes a file someone else put there since.
#[derive(Debug)]
pub struct Endpoint {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Endpoint {
    /// Where the socket lives.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Open the run's control socket. Refuses (and creates nothing) when the run directory is
/// writable by group or others or not owned by this user, when something that is not a stale
/// socket of ours sits at `control.sock`, or when another server answers there. The caller
/// holds the run's writer lock, so no other trainer of this run can race it.
pub fn open(run_dir: &Path) -> Result<(UnixListener, Endpoint)> {
    let meta = std::fs::metadata(run_dir)
        .with_context(|| format!("{}: cannot stat the run directory", run_dir.display()))?;
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        bail!(
            "{}: writable by group or others (mode {mode:03o}), so another user could replace its control socket; not opening one (`chmod go-w` it to steer this run with `llite-tui ctl`)",
            run_dir.display()
        );
    }
    if meta.uid() != my_uid() {
        bail!(
            "{}: owned by uid {}, not by this user (uid {}); not opening a control socket there",
            run_dir.display(),
            meta.uid(),
            my_uid()
        );
    }
    let path = socket_path(run_dir);
    check_path_len(&path)?;
    if let Ok(existing) = std::fs::symlink_metadata(&path) {
        use std::os::unix::fs::FileTypeExt;
        if !existing.file_type().is_socket() {
            bail!(
                "{}: exists and is not a socket; not touching it (move it away to steer this run)",
                path.display()
            );
        }
        if existing.uid() != my_uid() {
            bail!(
                "{}: a socket of uid {}, not ours; not touching it",
                path.display(),
                existing.uid()
            );
        }
        if UnixStream::connect(&path).is_ok() {
            bail!(
                "{}: another process already serves this run's control socket",
                path.display()
            );
        }
        // A stale socket of ours (its server died): the rename below replaces it.
    }
    clean_staging_leftovers(run_dir);
    let staging = make_staging_dir(run_dir)?;
    let result = bind_and_publish(&staging, &path);
    let _ = std::fs::remove_dir(&staging);
    result
}

/// Bind inside the private `staging` directory (mode 0700: nobody else can reach the socket
/// before its mode is narrowed), make it 0600, then rename it into place atomically.
fn bind_and_publish(staging: &Path, path: &Path) -> Result<(UnixListener, Endpoint)> {
    let tmp = staging.join("s");
    let listener = UnixListener::bind(&tmp)
        .with_context(|| format!("{}: cannot create the control socket", path.display()))?;
    let publish = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = publish {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "{}: cannot put the control socket in place: {e}",
            path.display()
        );
    }
    let meta = std::fs::symlink_metadata(path)
        .with_context(|| format!("{}: the control socket vanished", path.display()))?;
    listener
        .set_nonblocking(true)
        .with_context(|| format!("{}: cannot configure the control socket", path.display()))?;
    Ok((
        listener,
        Endpoint {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
        },
    ))
}

fn make_staging_dir(run_dir: &Path) -> Result<PathBuf> {
    let pid = std::process::id();
    for n in 0..100 {
        let dir = run_dir.join(format!("{STAGING_PREFIX}{pid}-{n}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => bail!("{}: cannot create a private directory: {e}", dir.display()),
        }
    }
    bail!(
        "{}: no free name for a private staging directory",
        run_dir.display()
    )
}

/// Staging directories a crash left between bind and rename: ours by name and owner, holding
/// at most the socket `s`. Anything else is left alone.
fn clean_staging_leftovers(run_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(run_dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with(STAGING_PREFIX) {
            continue;
        }
        let dir = e.path();
        let ours = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir() && m.uid() == my_uid());
        if !ours {
            continue;
        }
        let Ok(inner) = std::fs::read_dir(&dir) else {
            continue;
        };
        let names: Vec<_> = inner.flatten().map(|i| i.file_name()).collect();
        if names.iter().all(|n| n == "s") {
            let _ = std::fs::remove_file(dir.join("s"));
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        d
    }

    #[test]
    fn owner_only_socket_replaced_when_stale_and_removed_only_while_ours() {
        let d = private_dir();
        let (listener, ep) = open(d.path()).unwrap();
        let meta = std::fs::symlink_metadata(ep.path()).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert!(open(d.path())
            .unwrap_err()
            .to_string()
            .contains("already serves"));
        // The server dies without cleaning up: its socket is stale and gets replaced.
        drop(listener);
        std::mem::forget(ep);
        let (_l2, ep2) = open(d.path()).unwrap();
        // Someone swaps the file: dropping must not remove theirs.
        std::fs::remove_file(ep2.path()).unwrap();
        std::fs::write(ep2.path(), b"theirs").unwrap();
        let p = ep2.path().to_path_buf();
        drop(ep2);
        assert_eq!(std::fs::read(&p).unwrap(), b"theirs");
        assert!(open(d.path())
            .unwrap_err()
            .to_string()
            .contains("not a socket"));
        let leftovers: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(STAGING_PREFIX))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let d = private_dir();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o770)).unwrap();
        let e = open(d.path()).unwrap_err().to_string();
        assert!(e.contains("writable by group or others (mode 770)"), "{e}");
        assert!(!socket_path(d.path()).exists());
    }
}
