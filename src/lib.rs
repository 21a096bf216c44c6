//! netdb: a distributed key-value store of equal nodes.
//!
//! Each node keeps every key with a per-key vector clock and pushes its
//! state to its peers on a period; replicas converge, and concurrent writes
//! are resolved last-write-wins, the same way on every node.
//!
//! # Map of the crate
//!
//! The pure core (no threads, sockets, files or wall clock):
//!
//! | module | holds |
//! | --- | --- |
//! | [`clock`] | vector clocks and their causal comparisons |
//! | [`hlc`] | hybrid logical timestamps and never-repeating write counters |
//! | [`names`] | node names interned to small ids |
//! | [`vv`] | version vectors: what a node has seen of each writer |
//! | [`version`] | a key's version and the merge rule, with its laws |
//! | [`store`] | the clocked map: local writes, merges, snapshots |
//! | [`wire`] | the peer protocol's messages |
//! | [`frame`] | length-prefixed framing over `Read`/`Write` |
//! | [`cli`] | parsing command lines, quoting keys and values |
//! | [`peers`] | parsing the peers file |
//! | [`resp`] | the Redis protocol (RESP2): request parsing, reply encoding, the client side |
//! | [`glob`] | Redis-style glob patterns for `KEYS` and `SCAN MATCH` |
//! | [`command`](redis::command) | one command entry (name, arity, flags, keys, docs, handler) and dispatch through the table |
//! | [`cmd`](redis::cmd) | the command table, one file per group: a request to a reply, or to store ops and how to answer from theirs |
//! | [`status`](mod@status) | one status model: what `status`, `INFO` and `NETDB.STATUS` report |
//! | [`record`] | checksummed records: the framing of the files on disk |
//! | [`journal`] | what the files on disk hold; replaying them into a store |
//!
//! The shell (threads and sockets, kept thin):
//!
//! | module | holds |
//! | --- | --- |
//! | [`config`] | the command line, checked; binding the listener |
//! | [`service`] | the store thread and its request channel |
//! | [`slot`] | the reply slot a client connection reuses for its answers from the store thread |
//! | [`server`] | the listener; incoming connections told apart by their first byte; peer connections |
//! | [`client`] | Redis client connections: batches of pipelined commands, limits, counters |
//! | [`connect`] | `netdb --connect`: the console's line CLI against a remote node over RESP |
//! | [`sync`] | the sync thread, one pusher per peer, transfers in parts both ways |
//! | [`disk`] | the data directory: lock, logs and fsync policy, snapshots, compaction, recovery |
//! | [`node`] | starting and stopping all of the above |
//! | [`console`] | the stdin command loop |
//! | [`error`], [`logging`] | startup errors; log lines on stderr, with levels and timestamps |
//!
//! # Threads
//!
//! ```text
//!  stdin ──> main (console) ─┐                         ┌─> pusher(peer 1) ──TCP──> peer
//!                            │   Request channel       │
//!  peer ──TCP──> conn thread ┼──(bounded, 1024)──> store thread        ...
//!  (one per connection,      │   owns the Store;       │
//!   started by the listener) │   replies on a channel  └─> pusher(peer n) ──TCP──> peer
//!                            │   sent with the request      ^
//!  Redis client ──TCP──>     │                              │
//!     client thread ─────────┤ (one per connection, on the  │
//!                            │  same port; one Ops request  │
//!                            │  per batch of commands)      │
//!  sync thread (on writes, every interval) ── a round ───────┘ (one job channel per pusher)
//! ```
//!
//! The listener peeks at each new connection's first byte: the peer magic
//! makes a peer connection, anything else a Redis client connection.
//!
//! Only the store thread touches the map, so it needs no lock. The sync
//! thread asks it for one snapshot per round and hands that to every
//! pusher; a pusher merges what its peer sends back through the same
//! request channel. A channel whose other end is gone means "shut down".

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod console;
pub mod core;
pub mod durability;
pub mod engine;
pub mod error;
pub mod listener;
pub mod logging;
pub mod node;
pub mod redis;
pub mod replication;
pub mod status;
pub mod store;

/// The property tests' settings: proptest's defaults, but failures are
/// saved to `file` (under `tests/regressions/`) rather than to a
/// `proptest-regressions` folder beside `src/`.
#[cfg(test)]
pub(crate) fn proptest_config(file: &'static str) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, FileFailurePersistence};
    Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(file))),
        ..Config::default()
    }
}
