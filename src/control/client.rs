//! The client side of a run's control socket (`llite-tui ctl`, the cockpit's `watch`): checks
//! what sits at `<run>/control.sock` before connecting, so a missing, stale, foreign or fake
//! socket is one clear line, and reads the reply with a timeout and a size bound.

use super::endpoint::{check_path_len, my_uid, socket_path};
use super::wire::{read_line, LineRead, Reply, Request, PROTOCOL_VERSION};
use anyhow::{bail, Result};
use std::io::{BufReader, ErrorKind, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Time allowed to hand a request to the server.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Slack on top of the request's own timeout before the client gives up on a reply.
const REPLY_SLACK: Duration = Duration::from_secs(5);

/// Whether `run_dir` has a control socket to try (the cockpit's watch mode steers only then).
pub fn has_endpoint(run_dir: &Path) -> bool {
    std::fs::symlink_metadata(socket_path(run_dir)).is_ok_and(|m| m.file_type().is_socket())
}

/// Connect to `run_dir`'s control socket, refusing anything that is not a live socket of ours.
pub fn connect(run_dir: &Path) -> Result<UnixStream> {
    if !run_dir.is_dir() {
        bail!("{}: no such run directory", run_dir.display());
    }
    let path = socket_path(run_dir);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(no_socket(run_dir, &path));
        }
        Err(e) => bail!("{}: cannot stat the control socket: {e}", path.display()),
    };
    if !meta.file_type().is_socket() {
        bail!(
            "{}: not a socket; refusing to use it (not a run's control endpoint)",
            path.display()
        );
    }
    if meta.uid() != my_uid() {
        bail!(
            "{}: a foreign run: the socket belongs to uid {}, not to you (uid {}); refusing to talk to it",
            path.display(),
            meta.uid(),
            my_uid()
        );
    }
    check_path_len(&path)?;
    match UnixStream::connect(&path) {
        Ok(s) => Ok(s),
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::NotFound) => bail!(
            "{}: run is not running (stale socket {}; the next run of it replaces it)",
            run_dir.display(),
            path.display()
        ),
        Err(e) => bail!("{}: cannot connect: {e}", path.display()),
    }
}

/// The error for a run directory without a socket: says whether anything trains it.
fn no_socket(run_dir: &Path, path: &Path) -> anyhow::Error {
    let is_run = ["run.toml", "metrics.jsonl"]
        .iter()
        .any(|f| run_dir.join(f).is_file());
    if !is_run {
        return anyhow::anyhow!(
            "{}: not a run directory (expected <runs>/<run-name>/ with run.toml and metrics.jsonl)",
            run_dir.display()
        );
    }
    match crate::store::lock::foreign_holder(run_dir) {
        Ok(Some(h)) => anyhow::anyhow!(
            "{}: run is being trained by PID {} on host {}, but it has no control endpoint (it refused to open one, see its stderr, or it predates `ctl`)",
            run_dir.display(),
            h.pid,
            h.host
        ),
        _ => anyhow::anyhow!(
            "{}: run is not running (no control socket at {})",
            run_dir.display(),
            path.display()
        ),
    }
}

/// Send one request to `run_dir`'s run and return its reply (which may be a refusal: check
/// `ok`). Fails with one line for a dead, foreign or silent run and for a malformed reply.
pub fn request(run_dir: &Path, req: &Request) -> Result<Reply> {
    let stream = connect(run_dir)?;
    let path = socket_path(run_dir);
    let wait = Duration::from_secs(req.timeout_s) + REPLY_SLACK;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    stream.set_read_timeout(Some(wait))?;
    let mut line = req.to_line();
    line.push('\n');
    if let Err(e) = (&stream).write_all(line.as_bytes()) {
        bail!("{}: cannot send the request: {e}", path.display());
    }
    let mut reader = BufReader::new(&stream);
    let text = match read_line(&mut reader) {
        Ok(LineRead::Line(l)) => l,
        Ok(LineRead::Eof) => bail!(
            "{}: the run closed the connection without answering",
            path.display()
        ),
        Ok(LineRead::TooLong) => bail!("{}: malformed reply: longer than allowed", path.display()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => bail!(
            "{}: no reply within {} s (the run may be wedged)",
            path.display(),
            wait.as_secs()
        ),
        Err(e) => bail!("{}: cannot read the reply: {e}", path.display()),
    };
    let reply: Reply = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            let shown: String = text.chars().take(80).collect();
            bail!("{}: malformed reply ({e}): {shown}", path.display())
        }
    };
    if reply.v != PROTOCOL_VERSION {
        bail!(
            "{}: the run speaks control protocol {}, this llite-tui speaks {PROTOCOL_VERSION}",
            path.display(),
            reply.v
        );
    }
    Ok(reply)
}
