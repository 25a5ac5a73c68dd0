//! `/proc/<pid>/stat` (Linux): CPU time, threads and RSS of a process in one read, this one
//! (`self`) or another on this machine (a watched run's writer); `proc(5)` gives the fields.

/// The fields of `/proc/<pid>/stat` the system pane uses, in the kernel's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// User and system CPU time in clock ticks (fields 14 and 15).
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    /// Field 20.
    pub threads: u64,
    /// Resident pages (field 24).
    pub rss_pages: u64,
}

impl ProcStat {
    /// CPU time in seconds, when the clock tick rate is known.
    pub fn cpu_secs(&self) -> Option<f64> {
        let hz = sysconf(SysconfKey::ClockTicks)?;
        Some((self.utime_ticks + self.stime_ticks) as f64 / hz as f64)
    }

    /// Resident bytes, when the page size is known.
    pub fn rss_bytes(&self) -> Option<u64> {
        Some(
            self.rss_pages
                .saturating_mul(sysconf(SysconfKey::PageSize)?),
        )
    }
}

/// Parse a stat line. The command name (field 2) is in parentheses and may itself hold spaces
/// and parentheses, so fields are counted after its *last* `)`.
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    let rest = &line[line.rfind(')')? + 1..];
    // `rest` starts at field 3 (state): field n is at index n - 3.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
    Some(ProcStat {
        utime_ticks: num(14)?,
        stime_ticks: num(15)?,
        threads: num(20)?,
        rss_pages: num(24)?,
    })
}

/// The stat of this process (`pid` None) or of process `pid`; None where there is no `/proc`
/// (not Linux) or no such process is visible (it exited, or lives in another PID namespace).
pub fn read_stat(pid: Option<u32>) -> Option<ProcStat> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let path = match pid {
        None => "/proc/self/stat".to_string(),
        Some(pid) => format!("/proc/{pid}/stat"),
    };
    parse_stat(&std::fs::read_to_string(path).ok()?)
}

enum SysconfKey {
    ClockTicks,
    PageSize,
}

#[cfg(unix)]
fn sysconf(key: SysconfKey) -> Option<u64> {
    let name = match key {
        SysconfKey::ClockTicks => libc::_SC_CLK_TCK,
        SysconfKey::PageSize => libc::_SC_PAGESIZE,
    };
    // SAFETY: sysconf only reads a configuration value; it has no memory effects.
    let v = unsafe { libc::sysconf(name) };
    (v > 0).then_some(v as u64)
}

#[cfg(not(unix))]
fn sysconf(_key: SysconfKey) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_name_with_spaces_and_parentheses() {
        let line = "4242 (llite (tui) x) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                    150 25 0 0 20 0 9 0 1000 123456789 3000 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(
            s,
            ProcStat {
                utime_ticks: 150,
                stime_ticks: 25,
                threads: 9,
                rss_pages: 3000
            }
        );
        assert!(parse_stat("4242 (cut short) S 1 2").is_none());
        assert!(parse_stat("no parentheses").is_none());
    }
}
