//! The Redis protocol: RESP framing, glob patterns, the command table and
//! its handlers, and the client connections that speak it.
//!
//! A command becomes store requests; it never touches the map or the disk
//! directly.

pub mod client;
pub mod commands;
pub mod glob;
pub mod resp;
