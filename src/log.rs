//! Log lines on stderr, prefixed with the node's name.
//!
//! stdout carries command replies only; everything a node says on its own
//! goes through [`log!`](crate::log!) to stderr.

use std::sync::OnceLock;

static NODE: OnceLock<String> = OnceLock::new();

/// Names the node in every later log line (first call wins).
pub fn set_node_name(name: &str) {
    let _ = NODE.set(name.to_owned());
}

/// The prefix of a log line.
pub fn prefix() -> &'static str {
    NODE.get().map_or("netdb", String::as_str)
}

/// Writes one line to stderr, prefixed with the node name.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        eprintln!("[{}] {}", $crate::log::prefix(), format_args!($($arg)*))
    };
}
