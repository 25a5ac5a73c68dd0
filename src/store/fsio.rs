//! Durable file writes: every byte fsynced, directories too, so a crash leaves the old state
//! or the new one.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

/// Create (or replace) `path` with `bytes` and fsync it.
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {} (disk full?)", path.display()))
}

/// Replace `path` atomically: write and fsync `<path>.tmp`, rename it over `path`, fsync the
/// directory. A crash leaves the old file or the new one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    // Our own temporary: removed again when the write or the rename fails (a full disk).
    let written = write_synced(&tmp, bytes).and_then(|_| {
        std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent);
    }
    Ok(())
}

/// Copy a regular file to a new `dst` and fsync it. The source is opened with
/// [`open_regular`], so a FIFO or device named as a source is refused instead of hanging the
/// copy; an existing `dst` is never replaced.
pub fn copy_synced(src: &Path, dst: &Path) -> Result<u64> {
    copy_synced_seeing(src, dst, |_| {})
}

/// [`copy_synced`], showing every chunk copied to `seen` on the way (a hash of what was
/// actually written, without reading the file a second time).
pub fn copy_synced_seeing(src: &Path, dst: &Path, seen: impl FnMut(&[u8])) -> Result<u64> {
    /// A reader that shows what passes through it.
    struct Seeing<R, F> {
        inner: R,
        seen: F,
    }
    impl<R: Read, F: FnMut(&[u8])> Read for Seeing<R, F> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            (self.seen)(&buf[..n]);
            Ok(n)
        }
    }
    let mut from = Seeing {
        inner: open_regular(src)?,
        seen,
    };
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)
        .with_context(|| format!("cannot create {}", dst.display()))?;
    std::io::copy(&mut from, &mut to)
        .and_then(|n| to.sync_all().map(|_| n))
        .with_context(|| {
            format!(
                "cannot copy {} to {} (disk full?)",
                src.display(),
                dst.display()
            )
        })
}

/// Fsync a directory so a rename or create inside it survives a crash.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Open `path` for reading only if it is a regular file (following symlinks). FIFOs, devices
/// and sockets are refused before anything blocks on them: the file is opened non-blocking and
/// its type checked on the open handle, so a swap between check and open cannot sneak one in.
pub fn open_regular(path: &Path) -> Result<File> {
    open_regular_with(std::fs::OpenOptions::new().read(true), path, "read it")
}

/// [`open_regular`] with the caller's open options (append, create, read-write), for files the
/// store writes in place such as `metrics.jsonl`; `purpose` ends the refusal ("refusing to
/// {purpose}").
pub fn open_regular_with(
    options: &mut std::fs::OpenOptions,
    path: &Path,
    purpose: &str,
) -> Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Opening a FIFO for reading would otherwise wait for a writer forever.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let kind = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?
        .file_type();
    if !kind.is_file() {
        anyhow::bail!(
            "{}: not a regular file ({}); refusing to {purpose}",
            path.display(),
            describe_file_type(&kind)
        );
    }
    Ok(file)
}

/// Read a whole regular file of at most `max_bytes`; larger files and special files are refused
/// with the path named, so a hostile `/dev/zero` or a 100 GB "config" never exhausts memory.
pub fn read_bounded(path: &Path, max_bytes: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = open_regular(path)?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > max_bytes {
        anyhow::bail!(
            "{}: {} bytes, more than the {} this file may have; refusing to read it",
            path.display(),
            len,
            max_bytes
        );
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > max_bytes {
        anyhow::bail!(
            "{}: grew past {} bytes while being read; refusing it",
            path.display(),
            max_bytes
        );
    }
    Ok(bytes)
}

/// [`read_bounded`] as UTF-8 text.
pub fn read_bounded_string(path: &Path, max_bytes: u64) -> Result<String> {
    String::from_utf8(read_bounded(path, max_bytes)?)
        .map_err(|_| anyhow::anyhow!("{}: not valid UTF-8", path.display()))
}

/// Upper bound for small JSON/TOML metadata files (configs, trainer state, indexes).
pub const MAX_METADATA_BYTES: u64 = 64 << 20;

fn describe_file_type(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "not a plain file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_and_copies_never_clobber() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write_atomic(&a, b"one").unwrap();
        write_atomic(&a, b"two").unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"two");
        assert!(!dir.path().join("a.tmp").exists());
        assert_eq!(copy_synced(&a, &b).unwrap(), 3);
        write_atomic(&a, b"three").unwrap();
        let e = copy_synced(&a, &b).unwrap_err().to_string();
        assert!(e.contains(&b.display().to_string()), "{e}");
        assert_eq!(std::fs::read(&b).unwrap(), b"two");
        let e = copy_synced(dir.path(), &dir.path().join("c")).unwrap_err();
        assert!(format!("{e:#}").contains("not a regular file"), "{e:#}");
    }
}
