//! The one harness of the integration tests and of the benches that run
//! real processes (they include this folder with `#[path]`): `netdb`
//! nodes as child processes, clusters of them, waits with deadlines, a
//! seeded random generator, and clients for the Redis and peer protocols.
//!
//! - `node.rs`: [`NodeSpec`] (how to start a node, and its peers file) and
//!   [`Node`] (a running one, spoken to over stdin/stdout, watched on
//!   stderr, stopped, killed, restarted); [`run_netdb`] for runs left to
//!   finish.
//! - `cluster.rs`: [`Cluster`], [`cluster`] and friends, and the sync
//!   intervals and convergence deadlines the tests share.
//! - `process.rs`: [`Process`], any child (a node's, redis-server's):
//!   output collected as it comes, killed and reaped on drop.
//! - `output.rs`: the line lists those threads fill and waits watch.
//! - `wait.rs`: [`eventually`], the one polling loop; nothing else sleeps.
//! - `ports.rs`: reserved ports, retried when taken before use.
//! - `proc.rs`: what `/proc` says about a node (threads, resident memory,
//!   open files and their limit), and raising this process's own
//!   open-files limit.
//! - `rng.rs`: [`Rng`], seeded and printing its seed.
//! - `resp_client.rs`, `peer.rs`: the Redis protocol and the peer protocol;
//!   peers that never answer ([`Blackhole`]), a second loopback address
//!   for a node ([`Forwarder`]), and a peer that acknowledges whatever it
//!   is told to ([`ForgedAcker`]).
//! - `secret.rs`: secret files, and [`AuthedPeer`], a peer from outside
//!   that speaks the authenticated handshake and then sends what a test
//!   likes (sealed, altered, reordered or replayed frames).
//! - `disk.rs`: temporary directories and the files of a data directory.
//! - `net.rs`: [`Net`], network partitions between nodes, each under a uid
//!   of its own, made with nftables rules in a table of the test's own.
//! - `clock.rs`: nodes with a skewed wall clock, made with libfaketime.
//! - `skip.rs`: [`skip`], the visible `skipped:` line of a test that
//!   cannot run here (not root, no `nft`, no libfaketime).
//!
//! Nothing here sleeps as an assertion: every wait is for a condition and
//! ends at its deadline in a panic that says what was awaited. No test owns
//! a fixed port. Every child is killed when its owner is dropped, so a
//! failing test leaves no process behind.

// Each test binary and bench uses a different part of the harness.
#![allow(dead_code)]

mod clock;
mod cluster;
mod disk;
mod net;
mod netns;
mod node;
mod output;
mod peer;
mod ports;
mod proc;
mod process;
mod resp_client;
mod rng;
mod secret;
mod skip;
mod wait;

// What a test may use, in one list; each uses only some of it.
#[allow(unused_imports)]
pub use self::{
    clock::{clock_offset_secs, Faketime},
    cluster::{
        cluster, cluster_with, durable_cluster, on_disk, sharded_cluster, wait_cluster_ok, Cluster,
        CONVERGE_TIMEOUT, DISK_CONVERGE_TIMEOUT, FAST_SYNC_MS, NO_SYNC_MS,
    },
    disk::{contains, data_files, file_names, last_log, max_gen, record_spans, temp_dir, Kind},
    net::Net,
    netns::Netns,
    node::{
        assert_no_panic, netdb_bin, netdb_command, run_netdb, solo, start_all, write_peers_file,
        Finished, Node, NodeSpec, REPLY_TIMEOUT, START_TIMEOUT,
    },
    output::show,
    peer::{frame_of, greeting, read_until_ack, wall_clock_ms, Blackhole, ForgedAcker, Forwarder},
    ports::{connect, dead_addr, free_addrs, on_free_ports, PortTaken},
    proc::{
        open_fds, open_files_limit, peak_rss_bytes, raise_open_files_limit, rss_bytes, thread_count,
    },
    process::{run, Exited, Input, Process, Stream, EXIT_TIMEOUT},
    resp_client::{
        debug_digest, info_field, raw, read_n, read_to_close, redis_cli, redis_connection,
        redis_url, RESP_TIMEOUT,
    },
    rng::Rng,
    secret::{overwriting_push, secret_file, AuthedPeer, OTHER_SECRET, SECRET},
    skip::{is_root, missing_tool, skip},
    wait::{eventually, eventually_ok, poll, throughout, POLL},
};

// Every item of the netdb library that the tests and benches use is
// reached through these lines: when a module moves inside the crate, they
// are the only ones to change.
#[allow(unused_imports)]
pub use netdb::{
    config,
    console::line::HELP,
    durability::record,
    placement,
    redis::resp,
    replication::{auth, frame, transfer, wire},
    store,
};
