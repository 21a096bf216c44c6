//! Nodes whose clock is wrong: a node run under libfaketime (the
//! `faketime` package) sees its wall clock shifted, so a test can start
//! one hours ahead of its peers, on one machine.
//!
//! The library is preloaded (`LD_PRELOAD`) rather than run through the
//! `faketime` wrapper, so the node's spec keeps its binary and can drop
//! the shift on a restart. The multi-threaded build of the library is
//! used where there is one (a node has many threads); only the wall
//! clock is shifted, never the monotonic one its timeouts run on.

use super::node::NodeSpec;
use std::path::{Path, PathBuf};

/// Where distributions put libfaketime.
const LIBRARY_DIRS: [&str; 5] = [
    "/usr/lib/x86_64-linux-gnu/faketime",
    "/usr/lib/aarch64-linux-gnu/faketime",
    "/usr/lib64/faketime",
    "/usr/lib/faketime",
    "/usr/local/lib/faketime",
];

/// The environment variables a shift sets.
const VARIABLES: [&str; 4] = [
    "LD_PRELOAD",
    "FAKETIME",
    "FAKETIME_NO_CACHE",
    "DONT_FAKE_MONOTONIC",
];

/// The libfaketime library to preload, or `None` where it is not
/// installed (a test then says `skipped: ...` and returns).
pub fn faketime_lib() -> Option<PathBuf> {
    LIBRARY_DIRS.iter().find_map(|dir| {
        ["libfaketimeMT.so.1", "libfaketime.so.1"]
            .iter()
            .map(|name| Path::new(dir).join(name))
            .find(|path| path.is_file())
    })
}

/// `spec` with its wall clock shifted by `shift` (libfaketime's syntax:
/// `+2h`, `-1h`, `+30s`), using the library at `lib`.
pub fn clock_shifted(spec: NodeSpec, lib: &Path, shift: &str) -> NodeSpec {
    spec.env("LD_PRELOAD", &lib.display().to_string())
        .env("FAKETIME", shift)
        // Read the shift on every call, not once per few seconds.
        .env("FAKETIME_NO_CACHE", "1")
        .env("DONT_FAKE_MONOTONIC", "1")
}

/// `spec` with its clock as the machine's: any shift undone.
pub fn clock_unshifted(spec: NodeSpec) -> NodeSpec {
    VARIABLES.iter().fold(spec, |spec, v| spec.without_env(v))
}
