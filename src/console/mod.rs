//! The line console: parsing the line commands, running them on this node
//! (stdin), or on another one over RESP (`netdb --connect`).
//!
//! Replies go to stdout and nothing else does; log lines go to stderr.

pub mod editor;
pub mod line;
pub mod local;
pub mod remote;
