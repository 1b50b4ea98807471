//! The process collector's numbers, read from `/proc/self` at scrape time (Linux; elsewhere
//! every value reads as absent and is left out). Names as Prometheus's client libraries
//! export them: `process_cpu_user_seconds_total`, `process_resident_memory_bytes`, ...

use std::fs;

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, 100 on every Linux ABI).
const USER_HZ: f64 = 100.0;

/// One reading.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// User CPU seconds.
    pub cpu_user_seconds: f64,
    /// System CPU seconds.
    pub cpu_system_seconds: f64,
    /// Resident set size, bytes.
    pub resident_bytes: u64,
    /// Virtual memory size, bytes.
    pub virtual_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft limit on open file descriptors.
    pub max_fds: u64,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

/// `/proc/self` now, or `None` where there is no `/proc`.
pub fn read() -> Option<ProcessStats> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): utime is field 14, stime 15, starttime 22, vsize 23.
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|v| v * 1024)
    };
    let boot_time = fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    });
    let max_fds = fs::read_to_string("/proc/self/limits").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse::<u64>().ok())
    });
    Some(ProcessStats {
        cpu_user_seconds: field(14)? as f64 / USER_HZ,
        cpu_system_seconds: field(15)? as f64 / USER_HZ,
        resident_bytes: kb("VmRSS:").unwrap_or(0),
        virtual_bytes: field(23).unwrap_or(0),
        open_fds: fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64),
        max_fds: max_fds.unwrap_or(0),
        start_time_seconds: boot_time.unwrap_or(0.0) + field(22).unwrap_or(0) as f64 / USER_HZ,
    })
}
