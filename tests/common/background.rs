//! A process of the binary running in the background (a headless run a test signals, steers
//! or waits for), never left behind by a failing test.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A background process of the binary (a headless run), stderr captured in a file (a pipe
/// could fill up); killed and reaped on drop, so a failing test leaves no process behind.
pub struct BackgroundRun {
    pub child: std::process::Child,
    pub stderr: PathBuf,
}

impl BackgroundRun {
    /// Spawn `cmd` with stdin and stdout closed and stderr written to `stderr`.
    pub fn spawn(mut cmd: Command, stderr: PathBuf) -> Self {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Self { child, stderr }
    }

    /// What the process wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Send `sig` to the process.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child, not yet reaped.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as i32, sig) },
            0,
            "kill failed"
        );
    }

    /// Exit code within `secs` (None: ended by a signal), killing the process and failing the
    /// test if it hangs.
    pub fn wait(&mut self, secs: u64) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("did not exit within {secs} s: {}", self.stderr_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for BackgroundRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
