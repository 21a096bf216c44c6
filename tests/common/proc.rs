//! What Linux's `/proc` says about a process the test started (a node):
//! its threads, its resident memory now and at its peak, its open files
//! and their limit. And this process's own open-files limit, raised for
//! a test that opens thousands of sockets.
//!
//! Linux only, like the rest of the harness; a field that is not there
//! panics with the file it was looked for in.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// A `kB` or count field of `/proc/PID/status` (`Threads`, `VmRSS`,
/// `VmHWM` ...), without its unit.
fn status_field(pid: u32, field: &str) -> u64 {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {path}:\n{text}"))
}

/// How many threads process `pid` runs now.
pub fn thread_count(pid: u32) -> u64 {
    status_field(pid, "Threads")
}

/// Its resident memory now, in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> u64 {
    status_field(pid, "VmRSS") * 1024
}

/// The most resident memory it has had since it started, in bytes
/// (`VmHWM`): a peak that sampling [`rss_bytes`] could miss.
pub fn peak_rss_bytes(pid: u32) -> u64 {
    status_field(pid, "VmHWM") * 1024
}

/// How many file descriptors it has open (sockets included).
pub fn open_fds(pid: u32) -> usize {
    let path = format!("/proc/{pid}/fd");
    std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .count()
}

/// Its open-files limit, soft and hard (`u64::MAX` for unlimited), from
/// `/proc/PID/limits`.
pub fn open_files_limit(pid: u32) -> (u64, u64) {
    let path = format!("/proc/{pid}/limits");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let number = |v: &str| {
        if v == "unlimited" {
            Some(u64::MAX)
        } else {
            v.parse().ok()
        }
    };
    text.lines()
        .find_map(|l| {
            let mut values = l.strip_prefix("Max open files")?.split_whitespace();
            Some((number(values.next()?)?, number(values.next()?)?))
        })
        .unwrap_or_else(|| panic!("no open-files limit in {path}:\n{text}"))
}

/// Raises this process's soft open-files limit to its hard limit (the
/// nodes it starts inherit it), and returns the soft limit it then has.
pub fn raise_open_files_limit() -> u64 {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit(RLIMIT_NOFILE)");
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit(RLIMIT_NOFILE)");
    }
    getrlimit(Resource::RLIMIT_NOFILE)
        .expect("getrlimit(RLIMIT_NOFILE)")
        .0
}
