//! The Redis protocol side of a node: RESP framing, the command table and
//! its handlers, and the client connections that speak it.
//!
//! | module | owns | must not |
//! | --- | --- | --- |
//! | [`resp`] | RESP2 and RESP3 bytes: requests in, replies out, the client side | know any command |
//! | [`command`] | what one command entry is; dispatch through the table | hold a command of its own |
//! | [`cmd`] | the table: one file per command group, each entry with its handler | touch the map, the disk or a socket |
//! | [`auth`] | the client password, checked in constant time, and the count of failed attempts | log the password |
//! | [`glob`] | Redis-style glob patterns for `KEYS`, `SCAN MATCH`, `CONFIG GET` | know a command |
//! | [`client`] | a client connection's state for the I/O threads: batches, limits, counters, the status queries | decide what a command means, or touch a socket |
//! | [`route`] | where a command runs when the cluster is sharded: here, forwarded whole, split by slot and gathered, or `CROSSSLOT` | touch a socket |
//! | [`forward`] | the forwarding threads and their pooled connections to the other members (proxying) | run on an I/O thread |
//! | [`output`] | a connection's replies on their way out: encoded chunks, large values moved in whole, vectored writes | know a command |
//!
//! A command becomes store requests; it never touches the map or the disk
//! directly. What a command says about the node (`INFO`, `NETDB.STATUS`)
//! is rendered from one [`crate::status::Status`].

pub mod auth;
pub mod client;
pub mod cmd;
pub mod command;
pub mod forward;
pub mod glob;
pub mod output;
pub mod resp;
pub mod route;
