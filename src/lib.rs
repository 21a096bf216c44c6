//! netdb: a distributed key-value store of equal nodes.
//!
//! Each node keeps every key with a per-key vector clock and pushes its
//! state to its peers on a period; replicas converge, and concurrent writes
//! are resolved last-write-wins, the same way on every node.
//!
//! # Map of the crate
//!
//! Folders by concern. Each folder's `mod.rs` says what it owns and what
//! it must never touch; dependencies point down this table, never up
//! (the pure core imports no thread, socket, file or clock):
//!
//! | folder | owns | may use |
//! | --- | --- | --- |
//! | [`core`](mod@core) | names, vector clocks, hybrid timestamps, version vectors, and the one merge rule with its laws | nothing |
//! | [`store`] | the clocked map: local writes, merges, deltas for a peer, tombstones and peer acknowledgements, `SCAN`, the digest, undo of an unlogged group; the batches stores exchange | `core` |
//! | [`durability`] | what reaches the disk: record framing, the log's own entry types, the data directory, fsync policy, compaction, streaming recovery, fail points | `store`, `core` |
//! | [`engine`] | the store thread: the request vocabulary other threads use, the `Db` a front end's work runs against, group commit | `store`, `durability` |
//! | [`membership`] | the member list (a CRDT of records with incarnations), the members file, failure detection's judgement | `core` |
//! | [`placement`] | key slots as Redis Cluster computes them, partitions of slots, and the layout of partitions over members (pure) | `membership` |
//! | [`replication`] | the peer protocol (wire, framing), the peers file, both halves of a transfer (pusher, receiver), the sync thread, the prober (probes and gossip), what a node knows of its peers | `engine`, `store`, `membership` |
//! | [`redis`] | RESP2 and RESP3, the command table (one entry per command) and its handlers, transactions, client passwords, client connections | `engine`, `status`, `replication`, `durability`, `store` |
//! | [`console`] | the line commands: parsing, running them on this node (stdin, with line editing at a terminal), or on another over RESP (`--connect`) | `engine`, `status`, `redis`, `replication`, `node` |
//! | [`status`](mod@status) | the one status model that `status`, `INFO` and `NETDB.STATUS` render, and the one place it is gathered | `engine`, `replication`, `durability`, `store` |
//!
//! And at the top: [`config`] (the command line and the config file,
//! checked), [`node`] (starting and stopping all of it: the one stop path),
//! [`listener`] (accepting connections, and the peer threads),
//! [`routing`] (the layout of the member list as it is now: which
//! partitions this node holds and serves, where the others are served),
//! [`ioloop`] (the I/O threads' poll loops: client connections, and
//! telling a peer from a client by the first byte), [`logging`] (levelled,
//! timestamped lines on stderr), [`tls`] (the node's certificate, a
//! TLS client's layer between its socket and its protocol state, and
//! what peers dial each other with),
//! [`error`] (what stops a node, one line each), and `main.rs` (a thin
//! `run() -> Result`).
//!
//! Where to look:
//!
//! | for | read |
//! | --- | --- |
//! | the merge rule | [`core::version::merge`] |
//! | how a `SET` is answered | [`redis::cmd`]'s `strings.rs` (the handler and the work it sends), [`engine::Db::put`], [`store::Store::put`] |
//! | what a push frame holds | [`replication::wire::Message`], framed by [`replication::frame`] |
//! | how a log record is framed | [`durability::record`]; what a record holds: [`durability::journal`] |
//! | what a node sends a peer, and when | [`replication::pusher`], [`store::Store::delta`] |
//! | how peers prove the cluster secret, and what a frame's MAC covers | [`replication::auth`] |
//! | when a tombstone may go | `store/tombstones.rs` |
//!
//! # Threads
//!
//! ```text
//!  stdin ──> console thread ──┐                             ┌─> pusher(peer 1) ──TCP──> peer
//!                             │   request channel           │   (a round after each logged
//!  Redis clients ──TCP──>     │   (bounded, 1024)           │    write, and every interval)
//!    I/O threads (poll loops, ┼────────────────> store thread ─── log ──> data dir
//!    --io-threads; one request│  owns the Store; │   ^       │   (snapshots written by a
//!    per turn for every ready │  each request    │   │       │    compaction thread)
//!    connection) <── answers + waker ────────────┘   │       └─> pusher(peer n) ──TCP──> peer
//!  peer ──TCP──> peer thread (receiver; one per peer ┘
//!    connection, handed over by an I/O thread)
//!  listener: accepts, hands each connection to an I/O thread (round robin)
//!  sync thread: a round every interval, tombstone collection
//!  prober(peer i), one per pusher: probes its peer and gossips the member
//!    list (a shared `Membership`, never through the store thread); a
//!    change of the list adds or retires pushers, probers and the store's
//!    acknowledgement slots
//!  main thread: waits for the console to end or a signal, then Node::stop
//! ```
//!
//! An I/O thread ([`ioloop`]) peeks at each new connection's first byte
//! without blocking: the peer magic makes a peer connection (handed to a
//! thread of its own, served by [`replication::receiver`]), anything else
//! a Redis client connection, which stays in the loop ([`redis::client`]
//! holds its protocol state); a first byte of 0x16 (a TLS ClientHello),
//! when the node has a certificate, starts a TLS handshake in the loop,
//! after which the first byte inside TLS tells a peer (handed to its
//! thread with its TLS layer) from a Redis client over TLS ([`tls`]).
//!
//! Only the store thread touches the map, so it needs no lock. Front ends
//! send it their commands as closures that run against a
//! [`Db`](engine::Db) and return the front end's own reply type; peers'
//! batches, deltas and version vectors are requests of their own. Each
//! pusher asks the store thread for its own peer's delta, part by part,
//! and merges what its peer sends back through the same channel. A channel
//! whose other end is gone means "shut down".
//!
//! `core` is a module name here: the standard library's `core` is
//! reached as `::core` at this crate's root.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod console;
pub mod core;
pub mod durability;
pub mod engine;
pub mod error;
pub mod ioloop;
pub mod listener;
pub mod logging;
pub mod membership;
pub mod node;
pub mod placement;
pub mod redis;
pub mod replication;
pub mod routing;
pub mod status;
pub mod store;
pub mod tls;

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
