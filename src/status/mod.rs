//! One status model: what a node reports of itself.
//!
//! [`Status`] is gathered once and rendered three ways: the line
//! console's `status` text ([`format_status`], also what `netdb --connect`
//! prints), the `INFO` sections ([`crate::redis::cmd::info`]), and the
//! machine-readable reply of `NETDB.STATUS`
//! ([`crate::redis::cmd::netdb`]), which `netdb --connect` decodes back
//! into a [`Status`]. No consumer parses another's text.
//!
//! Pure: plain data and its text. Gathering it (the store thread's counts
//! and lags, the pushers' table) is [`gather`]'s work, and the client
//! counters [`crate::redis::client`]'s; apart from [`gather`], this module
//! must never read a socket, a file, a channel or the clock.

use crate::durability::FsyncPolicy;
pub use crate::replication::anti_entropy::AntiEntropyCounts;
pub use crate::store::DataDigest;
use std::fmt;

pub mod activity;
pub mod gather;

/// What a node reports of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The node's name.
    pub name: String,
    /// The address it listens on.
    pub addr: String,
    /// Keys with a value.
    pub live: usize,
    /// Keys whose current version is a delete.
    pub tombstones: usize,
    /// Keys with a value that expires.
    pub expiring: usize,
    /// Values turned into tombstones by their expiry since the start.
    pub expired: u64,
    /// The digest of the live data (`DEBUG DIGEST`); `None` in the status
    /// of a node that does not report it.
    pub digest: Option<DataDigest>,
    /// Digest mismatches found and repairs made; `None` in the status of a
    /// node that does not report them.
    pub anti_entropy: Option<AntiEntropyCounts>,
    /// One report per listed peer.
    pub peers: Vec<PeerReport>,
    /// How the node keeps its data; `None` where whoever gathered the
    /// status does not know it (the console does not see the settings the
    /// data directory was opened with).
    pub persistence: Option<Persistence>,
    /// The Redis side's counters; `None` where whoever gathered the status
    /// does not see the client connections (the console).
    pub server: Option<ServerStats>,
    /// `--max-clock-offset-ms`; `None` in the machine form of a status
    /// from a node that does not say it.
    pub max_clock_offset_ms: Option<u64>,
    /// Why this node refuses local writes now (its clock is off from its
    /// peers', another live node uses its name, its wall clock is past
    /// what a timestamp can hold), or `None` while it takes them.
    pub writes_refused: Option<String>,
    /// The node process's resident memory in bytes (`used_memory_rss` in
    /// `INFO`); `None` where it could not be read (no `/proc`) or a node
    /// does not report it.
    pub memory_rss: Option<u64>,
    /// What the allocator has handed out, in bytes (`used_memory`; see
    /// [`gather::allocated_bytes`]); `None` where it was not read (the
    /// machine form of a status), and then `INFO` shows the resident set.
    pub memory_used: Option<u64>,
    /// Each database with live keys and how many (`INFO keyspace`), in
    /// index order; empty where they were not counted (the console, the
    /// machine form of a status), and then every live key is database
    /// 0's as far as the status says.
    pub databases: Vec<(crate::engine::Database, usize)>,
    /// Keys with an expiry in each database that has any (`expires=` of
    /// `INFO keyspace`); empty where not gathered, when `expiring` is
    /// database 0's.
    pub expiring_by_database: Vec<(crate::engine::Database, usize)>,
    /// Every member of the cluster as this node sees it, itself first;
    /// empty where not gathered (the machine form of a status).
    pub members: Vec<crate::membership::MemberView>,
    /// Bytes of gossip (probes and their answers) the node has sent since
    /// it started; `None` where not gathered.
    pub gossip_sent: Option<u64>,
    /// Where the node's keys are placed, when the cluster is sharded
    /// (`--replicas`); `None` otherwise, or where not gathered.
    pub sharding: Option<ShardingStatus>,
}

/// A sharded node's partitions (see [`crate::placement`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardingStatus {
    /// `--replicas`: the members each partition is placed on.
    pub replicas: usize,
    /// The partitions the layout gives this node.
    pub held: usize,
    /// Of those, the ones it is still receiving from their holders.
    pub gaining: usize,
    /// Partitions it no longer holds and still has data of: handed off
    /// once every new holder has all of it.
    pub handing_off: usize,
    /// Keys received while partitions were arriving, since the layout
    /// last changed.
    pub keys_arrived: u64,
    /// Milliseconds since the layout last changed.
    pub layout_age_ms: u64,
}

/// Whether the last push to a peer worked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerState {
    /// No push tried yet.
    NotTried,
    /// The last push succeeded.
    Reachable,
    /// The last push failed, and why if known.
    Unreachable(Option<String>),
}

/// What a node reports of one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReport {
    /// The peer as written in the peers file.
    pub addr: String,
    /// Whether the last push worked.
    pub state: PeerState,
    /// How long ago a push last succeeded, in milliseconds.
    pub last_sync_ms_ago: Option<u64>,
    /// Writes this node has that the peer has not acknowledged; `None`
    /// before its first acknowledgement.
    pub writes_behind: Option<u64>,
    /// Bytes sent in the last successful round.
    pub last_round_bytes: usize,
    /// Tombstones kept until this peer acknowledges them.
    pub tombstones_waiting: usize,
    /// How far the peer's clock is from this node's, in milliseconds
    /// (positive: ahead), as measured when last connecting; `None` before
    /// that or while it cannot be reached.
    pub clock_offset_ms: Option<i64>,
    /// Whether that offset is certainly over `--max-clock-offset-ms`.
    pub clock_off: bool,
    /// Whether the last connection to it was over TLS.
    pub tls: bool,
}

/// How a node keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing on disk: a restart starts empty (`--in-memory`).
    InMemory,
    /// An append-only log and snapshots in a data directory.
    Disk(DiskStatus),
}

/// A data directory in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskStatus {
    /// The directory, absolute where it could be resolved.
    pub dir: String,
    /// When the log is fsynced.
    pub fsync: FsyncPolicy,
    /// Compaction's state, as the store thread reports it; `None` where
    /// it was not asked (the machine form of a status from an older node).
    pub compaction: Option<CompactionStatus>,
    /// How often the log was written and fsynced; `None` where it was
    /// not asked.
    pub log: Option<LogCounts>,
}

pub use crate::durability::{CompactionStatus, LastCompaction, LogCounts};

/// The Redis side's counters since the node started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Seconds since the node started.
    pub uptime_secs: u64,
    /// The node's process id.
    pub process_id: u32,
    /// Client connections open now.
    pub connected_clients: usize,
    /// Most client connections at once.
    pub max_clients: usize,
    /// Client connections accepted.
    pub total_connections: u64,
    /// Client commands run.
    pub total_commands: u64,
    /// Client connections refused at the limit.
    pub rejected_connections: u64,
    /// Gets that found a value.
    pub keyspace_hits: u64,
    /// Gets that found none.
    pub keyspace_misses: u64,
}

impl fmt::Display for PeerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerState::NotTried => f.write_str("not tried yet"),
            PeerState::Reachable => f.write_str("reachable"),
            PeerState::Unreachable(Some(e)) => write!(f, "unreachable ({e})"),
            PeerState::Unreachable(None) => f.write_str("unreachable"),
        }
    }
}

/// The text `status` prints, without a final newline: the node, its
/// counts, its peers and its digest (last, so that the lines before keep
/// their places for whoever reads them by position).
pub fn format_status(status: &Status) -> String {
    let mut lines = vec![
        format!("node {} listening on {}", status.name, status.addr),
        format!(
            "keys: {} live, {} tombstones",
            status.live, status.tombstones
        ),
    ];
    if status.peers.is_empty() {
        lines.push("peers: none".to_string());
    }
    for p in &status.peers {
        let last = match p.last_sync_ms_ago {
            Some(ms) => format!("last sync {:.1} s ago", ms as f64 / 1000.0),
            None => "never synced".to_string(),
        };
        let behind = match p.writes_behind {
            Some(n) => format!("{n} writes behind"),
            None => "nothing acknowledged yet".to_string(),
        };
        let clock = match (p.clock_off, p.clock_offset_ms) {
            (true, Some(ms)) => format!(
                ", CLOCK OFF: its clock is {} ms {} this node's",
                ms.unsigned_abs(),
                if ms >= 0 { "ahead of" } else { "behind" }
            ),
            _ => String::new(),
        };
        let over = if p.tls && p.state == PeerState::Reachable {
            " over TLS"
        } else {
            ""
        };
        lines.push(format!(
            "peer {}: {}{over}, {last}, {behind}, {} bytes sent last round, {} tombstones waiting on it{clock}",
            p.addr, p.state, p.last_round_bytes, p.tombstones_waiting
        ));
    }
    if let Some(why) = &status.writes_refused {
        // The reasons start "writes refused: ".
        lines.push(why.clone());
    }
    if let Some(s) = &status.sharding {
        lines.push(format!(
            "sharding: {} replicas per partition; this node holds {} of {} partitions, \
             {} still arriving, {} being handed off; layout changed {:.1} s ago, {} keys \
             received since while partitions were arriving",
            s.replicas,
            s.held,
            crate::placement::PARTITIONS,
            s.gaining,
            s.handing_off,
            s.layout_age_ms as f64 / 1000.0,
            s.keys_arrived
        ));
    }
    // A node alone has nothing to say of its members.
    if status.members.len() > 1 {
        lines.extend(status.members.iter().map(member_line));
    }
    if let Some(digest) = status.digest {
        lines.push(format!("digest: {digest}"));
    }
    lines.join("\n")
}

/// A member's `status` line: `member NAME ID at ADDR: STATE`, and for
/// another live member how it looks from here and for how long.
pub fn member_line(view: &crate::membership::MemberView) -> String {
    let m = &view.member;
    let me = if view.myself { " (this node)" } else { "" };
    let health = match view.health {
        Some((health, since)) => format!(", {} for {:.1} s", health.as_str(), since.as_secs_f64()),
        None => String::new(),
    };
    format!(
        "member {} {} at {}{me}: {}{health}",
        m.name, m.id, m.addr, m.state
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A status with every part filled in, for the renderers' tests.
    pub(crate) fn sample() -> Status {
        Status {
            name: "a".into(),
            addr: "127.0.0.1:9001".into(),
            live: 12,
            expiring: 2,
            expired: 5,
            tombstones: 2,
            digest: Some(DataDigest {
                sum: 0xabc,
                live: 12,
            }),
            anti_entropy: Some(AntiEntropyCounts {
                mismatches: 3,
                repairs: 2,
            }),
            peers: vec![
                PeerReport {
                    addr: "127.0.0.1:9002".into(),
                    state: PeerState::Reachable,
                    last_sync_ms_ago: Some(250),
                    writes_behind: Some(0),
                    last_round_bytes: 300,
                    tombstones_waiting: 0,
                    clock_offset_ms: Some(-3),
                    clock_off: false,
                    tls: false,
                },
                PeerReport {
                    addr: "127.0.0.1:9003".into(),
                    state: PeerState::Unreachable(Some("Connection refused (os error 111)".into())),
                    last_sync_ms_ago: None,
                    writes_behind: None,
                    last_round_bytes: 0,
                    tombstones_waiting: 2,
                    clock_offset_ms: None,
                    clock_off: false,
                    tls: false,
                },
            ],
            persistence: Some(Persistence::InMemory),
            server: Some(ServerStats {
                uptime_secs: 90_000,
                process_id: 42,
                connected_clients: 3,
                max_clients: 100,
                total_connections: 9,
                total_commands: 1000,
                rejected_connections: 1,
                keyspace_hits: 5,
                keyspace_misses: 6,
            }),
            max_clock_offset_ms: Some(500),
            writes_refused: None,
            memory_rss: Some(50 << 20),
            memory_used: None,
            databases: Vec::new(),
            expiring_by_database: Vec::new(),
            members: Vec::new(),
            gossip_sent: None,
            sharding: Some(ShardingStatus {
                replicas: 3,
                held: 128,
                gaining: 2,
                handing_off: 1,
                keys_arrived: 1000,
                layout_age_ms: 2500,
            }),
        }
    }

    #[test]
    fn a_sharded_node_says_what_it_holds_and_what_moves() {
        let text = format_status(&sample());
        assert!(
            text.contains(
                "sharding: 3 replicas per partition; this node holds 128 of 256 partitions, \
                 2 still arriving, 1 being handed off; layout changed 2.5 s ago, 1000 keys \
                 received since while partitions were arriving"
            ),
            "{text}"
        );
    }

    #[test]
    fn status_text() {
        let mut status = Status {
            name: "a".into(),
            addr: "127.0.0.1:9001".into(),
            live: 3,
            expiring: 0,
            expired: 0,
            tombstones: 1,
            digest: None,
            anti_entropy: None,
            peers: Vec::new(),
            persistence: None,
            server: None,
            max_clock_offset_ms: Some(500),
            writes_refused: None,
            memory_rss: None,
            memory_used: None,
            databases: Vec::new(),
            expiring_by_database: Vec::new(),
            members: Vec::new(),
            gossip_sent: None,
            sharding: None,
        };
        assert_eq!(
            format_status(&status),
            "node a listening on 127.0.0.1:9001\nkeys: 3 live, 1 tombstones\npeers: none"
        );
        let with_digest = Status {
            digest: Some(DataDigest { sum: 1, live: 3 }),
            ..status.clone()
        };
        assert_eq!(
            format_status(&with_digest),
            format!(
                "node a listening on 127.0.0.1:9001\nkeys: 3 live, 1 tombstones\npeers: none\n\
                 digest: {:031}1{:07}3",
                0, 0
            )
        );
        status.peers = vec![
            PeerReport {
                addr: "b:1".into(),
                state: PeerState::Reachable,
                last_sync_ms_ago: Some(1250),
                writes_behind: Some(0),
                last_round_bytes: 10,
                tombstones_waiting: 0,
                clock_offset_ms: Some(12),
                clock_off: false,
                tls: false,
            },
            PeerReport {
                addr: "c:2".into(),
                state: PeerState::Unreachable(Some("refused".into())),
                last_sync_ms_ago: None,
                writes_behind: None,
                last_round_bytes: 0,
                tombstones_waiting: 1,
                clock_offset_ms: None,
                clock_off: false,
                tls: false,
            },
        ];
        let text = format_status(&status);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[2],
            "peer b:1: reachable, last sync 1.2 s ago, 0 writes behind, 10 bytes sent last round, 0 tombstones waiting on it"
        );
        assert_eq!(
            lines[3],
            "peer c:2: unreachable (refused), never synced, nothing acknowledged yet, 0 bytes sent last round, 1 tombstones waiting on it"
        );
        // What the console does not know changes nothing in its text.
        let full = Status {
            persistence: Some(Persistence::InMemory),
            server: Some(ServerStats::default()),
            anti_entropy: Some(AntiEntropyCounts::default()),
            ..status.clone()
        };
        assert_eq!(format_status(&full), text);

        // A clock off, and writes refused for it: said on the peer's line
        // and on a line of its own.
        status.peers[0].clock_offset_ms = Some(-7_200_000);
        status.peers[0].clock_off = true;
        status.writes_refused = Some("writes refused: this node's clock is off".into());
        let text = format_status(&status);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(
            lines[2].ends_with(
                "0 tombstones waiting on it, CLOCK OFF: its clock is 7200000 ms behind this node's"
            ),
            "{}",
            lines[2]
        );
        assert_eq!(lines[4], "writes refused: this node's clock is off");
    }
}
