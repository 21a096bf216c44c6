//! Tests that cannot run here (not root, no `nft`, no libfaketime) say so
//! and return: libtest has no "skipped" outcome, so such a test counts as
//! passed. To keep that honest, the line goes straight to the process's
//! stderr, past libtest's capture of `println!` and `eprintln!`, so it
//! shows in every run's output; `.ci/run` counts the lines that start with
//! `skipped:` and reports them apart from the passes.

use std::fmt::Display;
use std::io::Write;

/// Prints `skipped: <why> (<test>)` on a line of its own, uncaptured; the
/// caller then returns.
pub fn skip(why: impl Display) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    // One write, so that lines of tests running in parallel do not mix.
    let line = format!("skipped: {why} ({test})\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Whether `tool` is not installed: it then says the calling test is
/// skipped (which returns).
pub fn missing_tool(tool: &str) -> bool {
    let installed = std::process::Command::new(tool)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        skip(format!("{tool} not installed"));
    }
    !installed
}

/// Whether this process runs as root (the owner of `/proc/self` is its
/// effective uid; this needs no unsafe call to `geteuid`).
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
