//! Nodes whose wall clock is wrong, made with libfaketime (Debian's
//! `faketime` package).
//!
//! What works for netdb (a multi-threaded Rust binary):
//!
//! - **`LD_PRELOAD` of `libfaketime.so.1` with `FAKETIME` in the node's
//!   environment**, not the `faketime` command: that command forks and
//!   waits for the program, so the process a test kills with SIGKILL would
//!   be the wrapper, and the node would live on.
//! - `FAKETIME=+1h`, `-1h` (an offset; the clock runs at normal speed) or
//!   `@6500-01-01 00:00:00` (starts there and runs on). Every thread sees
//!   the same clock: Rust's `SystemTime::now` calls glibc's `clock_gettime`,
//!   which the library replaces, so the store thread's write timestamps and
//!   the log's timestamps are both skewed.
//! - `DONT_FAKE_MONOTONIC=1`: only the wall clock is skewed. Timeouts,
//!   sync intervals and `Instant`s stay true (a monotonic clock an hour
//!   back could go below zero soon after boot), as on a machine whose
//!   NTP is wrong.
//! - `FAKETIME_NO_CACHE` is not needed: the offset never changes while
//!   the node runs.
//!
//! Each skewed node's log is checked to carry the skewed time
//! ([`clock_offset_secs`]), so a library that silently does nothing makes
//! the test fail rather than pass vacuously.
//!
//! The library is found in the usual places, or at `NETDB_TEST_LIBFAKETIME`.

use super::node::{Node, NodeSpec};
use super::skip::skip;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where libfaketime is, or why it is not to be had.
fn libfaketime() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("NETDB_TEST_LIBFAKETIME") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "NETDB_TEST_LIBFAKETIME={} is not a file",
                path.display()
            ))
        };
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("faketime"))
        .collect();
    dirs.extend(["/usr/lib/faketime", "/usr/local/lib/faketime"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("libfaketime.so.1"))
        .find(|p| p.is_file())
        .ok_or_else(|| "libfaketime not found (install the faketime package)".into())
}

/// libfaketime, found: it makes nodes whose wall clock is wrong.
pub struct Faketime {
    lib: PathBuf,
}

impl Faketime {
    /// libfaketime, or `None` after printing why the test is skipped.
    pub fn or_skip() -> Option<Faketime> {
        match libfaketime() {
            Ok(lib) => Some(Faketime { lib }),
            Err(why) => {
                skip(why);
                None
            }
        }
    }

    /// `spec` with its wall clock faked as `faketime` says (`+1h`, `-1h`,
    /// `@6500-01-01 00:00:00`); its monotonic clock stays true.
    pub fn skew(&self, spec: NodeSpec, faketime: &str) -> NodeSpec {
        spec.env("LD_PRELOAD", &self.lib.to_string_lossy())
            .env("FAKETIME", faketime)
            .env("DONT_FAKE_MONOTONIC", "1")
    }

    /// `spec` with its true clock back.
    pub fn unskew(spec: NodeSpec) -> NodeSpec {
        spec.without_env("LD_PRELOAD")
            .without_env("FAKETIME")
            .without_env("DONT_FAKE_MONOTONIC")
    }
}

/// How far ahead of the true time (negative: behind) the node's wall
/// clock is, in seconds, read from the timestamp of its `listening on`
/// log line (`2026-12-03T17:02:49.322Z ...`).
pub fn clock_offset_secs(node: &Node) -> i64 {
    let line = node.wait_log("listening on", std::time::Duration::from_secs(1));
    let logged = log_line_secs(&line).unwrap_or_else(|| panic!("no timestamp in {line:?}"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    logged - now
}

/// The Unix time, in whole seconds, of a log line's leading
/// `YYYY-MM-DDTHH:MM:SS` timestamp.
fn log_line_secs(line: &str) -> Option<i64> {
    let stamp = line.get(..19)?;
    let num = |r: std::ops::Range<usize>| stamp.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, min, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    Some(days_from_civil(y, m, d) * 86_400 + h * 3600 + min * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
