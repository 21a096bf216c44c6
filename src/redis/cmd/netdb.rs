//! `NETDB.STATUS`: the node's [`Status`] for machines, as a declared
//! structure rather than text, and its decoding ([`decode_status`]), which
//! `netdb --connect` uses. Both directions live here so the wire form is
//! written down once. Must never append store ops.
//!
//! # The reply
//!
//! A map (in RESP2, as in `HELLO` and `COMMAND DOCS`, a flat array of
//! name, value pairs; the decoder reads both):
//!
//! | field | value |
//! | --- | --- |
//! | `name` | bulk: the node's name |
//! | `addr` | bulk: the address it listens on |
//! | `live_keys` | integer |
//! | `tombstones` | integer |
//! | `digest` | bulk: the digest of the live data, 40 hex digits (`DEBUG DIGEST`) |
//! | `digest_mismatches` | integer: rounds that found equal vectors and different digests |
//! | `repairs` | integer: full exchanges made to repair those |
//! | `peers` | array of maps, one per listed peer (below) |
//! | `persistence` | map (below), or null when not known |
//! | `server` | map (below), or null when not known |
//! | `max_clock_offset_ms` | integer: `--max-clock-offset-ms` |
//! | `writes_refused` | bulk: why the node refuses writes now, or null |
//! | `used_memory` | integer: the process's resident bytes, or null when not known |
//! | `members` | array of maps, one per member this node knows, itself first: `id`, `name`, `addr`, `state` (bulks), `incarnation`, `myself` (0 or 1), `health` (bulk `up`, `suspect` or `down`, or null for itself and gone members) and `health_for_ms` (integer or null); absent from an older node |
//!
//! A peer: `addr` (bulk), `state` (bulk: `not_tried`, `reachable` or
//! `unreachable`), `error` (bulk or null), `last_sync_ms_ago` (integer, or
//! null: never), `writes_behind` (integer, or null: nothing acknowledged
//! yet), `last_round_bytes` and `tombstones_waiting` (integers),
//! `clock_offset_ms` (integer, negative when the peer's clock is behind;
//! or null: not measured) and `clock_off` (integer 0 or 1: over the
//! bound). A decoder takes the clock fields, and the node's
//! `max_clock_offset_ms`, `writes_refused` and `used_memory`, as absent
//! (null, 0) when an older node leaves them out.
//!
//! Persistence: `aof_enabled` (integer 0 or 1); with 1, `dir` (bulk),
//! `appendfsync` (bulk: `always`, `everysec` or `no`) and `compaction`
//! (null when the store thread does not report it, else a map:
//! `in_progress` 0 or 1, `last_ended_unix_secs` integer or null,
//! `last_ok` 0, 1 or null).
//!
//! Server: `uptime_in_seconds`, `process_id`, `connected_clients`,
//! `maxclients`, `total_connections_received`, `total_commands_processed`,
//! `rejected_connections`, `keyspace_hits`, `keyspace_misses` (integers,
//! `INFO`'s names).
//!
//! A decoder ignores fields it does not know, so a field can be added
//! without breaking an older `netdb --connect`; removing or retyping one
//! is a breaking change. The digest fields came later: a status without
//! them decodes with none.

use crate::durability::FsyncPolicy;
use crate::membership::{Health, Member, MemberView, State};
use crate::redis::command::{Action, Call, Command, Docs, NodeQuery};
use crate::redis::resp::Reply;
use crate::status::{
    AntiEntropyCounts, CompactionStatus, DataDigest, DiskStatus, LastCompaction, PeerReport,
    PeerState, Persistence, ServerStats, ShardingStatus, Status,
};

/// `NETDB.STATUS`'s and `NETDB.PROXY`'s entries.
pub const COMMANDS: &[Command] = &[
    Command {
        flags: &["loading", "stale"],
        acl: &["@slow"],
        docs: Docs {
            summary: "The node's status for machines: name, keys, peers, persistence and clients, \
                  as a map (netdb --connect reads it)",
            since: env!("CARGO_PKG_VERSION"),
            group: "server",
            args: &[],
        },
        ..Command::new("netdb.status", 1, status)
    },
    Command {
        flags: &["fast", "stale"],
        acl: &["@connection", "@fast"],
        docs: Docs {
            summary: "Marks the connection as another member's forwarding connection: every \
                  command on it is served by this node, never forwarded again",
            since: env!("CARGO_PKG_VERSION"),
            group: "connection",
            args: &[],
        },
        ..Command::new("netdb.proxy", 1, proxy)
    },
    Command {
        flags: &["readonly"],
        acl: &["@keyspace", "@read", "@slow", "@dangerous"],
        docs: Docs {
            summary: "KEYS of the whole cluster: this node's keys matching the pattern, and, \
                      when sharded, every other member's (the console's and --connect's keys)",
            since: env!("CARGO_PKG_VERSION"),
            group: "generic",
            args: &[],
        },
        ..Command::new("netdb.keys", 2, cluster_keys)
    },
];

/// `NETDB.KEYS pattern`: as `KEYS` here; a sharded node also asks every
/// other member (see [`crate::redis::route`]) and answers the union, so
/// the consoles show the cluster's keys while `KEYS` stays this node's,
/// as in Redis Cluster.
fn cluster_keys(call: Call<'_>) -> Action {
    let Some(keys) = crate::redis::cmd::find(b"keys") else {
        return Action::Reply(Reply::Error("ERR KEYS is missing".into()));
    };
    let pattern = call.args[1].clone();
    (keys.run)(Call {
        command: keys,
        args: vec![b"KEYS".to_vec(), pattern],
        session: call.session,
        facts: call.facts,
    })
}

/// `NETDB.PROXY`: what a member's forwarding connection sends first (see
/// [`crate::redis::forward`]). The layout's views of two nodes may
/// briefly differ; serving here what comes on such a connection keeps a
/// command from going back and forth.
fn proxy(call: Call<'_>) -> Action {
    call.session.proxied = true;
    Action::Reply(Reply::ok())
}

fn status(_: Call<'_>) -> Action {
    Action::Node(NodeQuery::Status)
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

fn int(n: u64) -> Reply {
    Reply::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

fn or_null(n: Option<u64>) -> Reply {
    n.map_or(Reply::Null, int)
}

fn map(pairs: Vec<(&str, Reply)>) -> Reply {
    Reply::map_of(pairs)
}

/// The reply to `NETDB.STATUS`.
pub fn encode_status(s: &Status) -> Reply {
    let mut fields = vec![
        ("name", bulk(&s.name)),
        ("addr", bulk(&s.addr)),
        ("live_keys", int(s.live as u64)),
        ("tombstones", int(s.tombstones as u64)),
        ("expiring_keys", int(s.expiring as u64)),
        ("expired_keys", int(s.expired)),
    ];
    if let Some(digest) = s.digest {
        fields.push(("digest", bulk(&digest.to_string())));
    }
    if let Some(counts) = s.anti_entropy {
        fields.extend([
            ("digest_mismatches", int(counts.mismatches)),
            ("repairs", int(counts.repairs)),
        ]);
    }
    fields.extend([
        (
            "peers",
            Reply::Array(s.peers.iter().map(encode_peer).collect()),
        ),
        (
            "persistence",
            s.persistence
                .as_ref()
                .map_or(Reply::Null, encode_persistence),
        ),
        (
            "server",
            s.server.as_ref().map_or(Reply::Null, encode_server),
        ),
        ("max_clock_offset_ms", or_null(s.max_clock_offset_ms)),
        (
            "writes_refused",
            s.writes_refused.as_deref().map_or(Reply::Null, bulk),
        ),
        ("used_memory", or_null(s.memory_rss)),
        (
            "members",
            Reply::Array(s.members.iter().map(encode_member).collect()),
        ),
    ]);
    if let Some(sh) = &s.sharding {
        fields.push((
            "sharding",
            map(vec![
                ("replicas", int(sh.replicas as u64)),
                ("partitions_held", int(sh.held as u64)),
                ("partitions_gaining", int(sh.gaining as u64)),
                ("partitions_handing_off", int(sh.handing_off as u64)),
                ("keys_arrived", int(sh.keys_arrived)),
                ("layout_age_ms", int(sh.layout_age_ms)),
            ]),
        ));
    }
    map(fields)
}

fn encode_member(v: &MemberView) -> Reply {
    let m = &v.member;
    map(vec![
        ("id", bulk(&m.id)),
        ("name", bulk(&m.name)),
        ("addr", bulk(&m.addr)),
        ("state", bulk(m.state.as_str())),
        ("incarnation", int(m.incarnation)),
        ("myself", int(u64::from(v.myself))),
        (
            "health",
            v.health.map_or(Reply::Null, |(h, _)| bulk(h.as_str())),
        ),
        (
            "health_for_ms",
            or_null(
                v.health
                    .map(|(_, d)| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            ),
        ),
    ])
}

/// A member from a `NETDB.STATUS` reply, checked as gossip is.
fn decode_member(reply: Reply) -> Result<MemberView, String> {
    let mut f = Fields::of(reply, "member")?;
    let state = f.text("state")?;
    let member = Member {
        id: f.text("id")?,
        name: f.text("name")?,
        addr: f.text("addr")?,
        state: State::parse(&state).ok_or_else(|| format!("'state': unknown '{state}'"))?,
        incarnation: f.number("incarnation")?,
    };
    member.check().map_err(|e| e.to_string())?;
    let health = match f.opt_text("health")?.as_deref() {
        None => None,
        Some(h) => {
            let health = [Health::Up, Health::Suspect, Health::Down]
                .into_iter()
                .find(|x| x.as_str() == h)
                .ok_or_else(|| format!("'health': unknown '{h}'"))?;
            let ms = f.opt_number("health_for_ms")?.unwrap_or(0);
            Some((health, std::time::Duration::from_millis(ms)))
        }
    };
    Ok(MemberView {
        member,
        myself: f.number("myself")? == 1,
        health,
    })
}

fn encode_peer(p: &PeerReport) -> Reply {
    let (state, error) = match &p.state {
        PeerState::NotTried => ("not_tried", None),
        PeerState::Reachable => ("reachable", None),
        PeerState::Unreachable(e) => ("unreachable", e.as_deref()),
    };
    map(vec![
        ("addr", bulk(&p.addr)),
        ("state", bulk(state)),
        ("error", error.map_or(Reply::Null, bulk)),
        ("last_sync_ms_ago", or_null(p.last_sync_ms_ago)),
        ("writes_behind", or_null(p.writes_behind)),
        ("last_round_bytes", int(p.last_round_bytes as u64)),
        ("tombstones_waiting", int(p.tombstones_waiting as u64)),
        (
            "clock_offset_ms",
            p.clock_offset_ms.map_or(Reply::Null, Reply::Integer),
        ),
        ("clock_off", int(u64::from(p.clock_off))),
        ("tls", int(u64::from(p.tls))),
    ])
}

fn encode_persistence(p: &Persistence) -> Reply {
    match p {
        Persistence::InMemory => map(vec![("aof_enabled", int(0))]),
        Persistence::Disk(d) => map(vec![
            ("aof_enabled", int(1)),
            ("dir", bulk(&d.dir)),
            ("appendfsync", bulk(&d.fsync.to_string())),
            (
                "compaction",
                d.compaction.map_or(Reply::Null, |c| {
                    map(vec![
                        ("in_progress", int(u64::from(c.in_progress))),
                        (
                            "last_ended_unix_secs",
                            or_null(c.last.map(|l| l.ended_unix_secs)),
                        ),
                        ("last_ok", or_null(c.last.map(|l| u64::from(l.ok)))),
                    ])
                }),
            ),
        ]),
    }
}

fn encode_server(s: &ServerStats) -> Reply {
    map(vec![
        ("uptime_in_seconds", int(s.uptime_secs)),
        ("process_id", int(u64::from(s.process_id))),
        ("connected_clients", int(s.connected_clients as u64)),
        ("maxclients", int(s.max_clients as u64)),
        ("total_connections_received", int(s.total_connections)),
        ("total_commands_processed", int(s.total_commands)),
        ("rejected_connections", int(s.rejected_connections)),
        ("keyspace_hits", int(s.keyspace_hits)),
        ("keyspace_misses", int(s.keyspace_misses)),
    ])
}

/// A map read from a reply: its fields by name.
struct Fields(Vec<(String, Reply)>);

impl Fields {
    fn of(reply: Reply, what: &str) -> Result<Fields, String> {
        let items = match reply {
            Reply::Array(items) => items,
            Reply::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
            other => return Err(format!("{what}: expected a map, got {other:?}")),
        };
        if items.len() % 2 != 0 {
            return Err(format!("{what}: a map with an odd number of items"));
        }
        let mut fields = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter();
        while let (Some(name), Some(value)) = (items.next(), items.next()) {
            let Reply::Bulk(name) = name else {
                return Err(format!("{what}: a field name that is not a bulk"));
            };
            fields.push((String::from_utf8_lossy(&name).into_owned(), value));
        }
        Ok(Fields(fields))
    }

    /// A field an older node may leave out: null when absent.
    fn take_new(&mut self, name: &str) -> Reply {
        self.take(name).unwrap_or(Reply::Null)
    }

    fn take(&mut self, name: &str) -> Result<Reply, String> {
        let at = self
            .0
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| format!("no field '{name}'"))?;
        Ok(self.0.swap_remove(at).1)
    }

    fn text(&mut self, name: &str) -> Result<String, String> {
        match self.take(name)? {
            Reply::Bulk(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
            other => Err(format!("'{name}': expected a bulk, got {other:?}")),
        }
    }

    fn opt_text(&mut self, name: &str) -> Result<Option<String>, String> {
        match self.take(name)? {
            Reply::Null => Ok(None),
            Reply::Bulk(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
            other => Err(format!("'{name}': expected a bulk or null, got {other:?}")),
        }
    }

    fn opt_number(&mut self, name: &str) -> Result<Option<u64>, String> {
        match self.take(name)? {
            Reply::Null => Ok(None),
            Reply::Integer(n) => u64::try_from(n)
                .map(Some)
                .map_err(|_| format!("'{name}': negative")),
            other => Err(format!("'{name}': expected an integer, got {other:?}")),
        }
    }

    /// Whether the map has a field `name` (one a newer node added).
    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    fn number(&mut self, name: &str) -> Result<u64, String> {
        self.opt_number(name)?
            .ok_or_else(|| format!("'{name}': expected an integer, got null"))
    }

    fn size(&mut self, name: &str) -> Result<usize, String> {
        usize::try_from(self.number(name)?).map_err(|_| format!("'{name}': too large"))
    }

    fn map(&mut self, name: &str) -> Result<Option<Fields>, String> {
        match self.take(name)? {
            Reply::Null => Ok(None),
            other => Fields::of(other, name).map(Some),
        }
    }
}

/// Reads a `NETDB.STATUS` reply back into the [`Status`] it was made
/// from; the error says what is missing or malformed.
pub fn decode_status(reply: Reply) -> Result<Status, String> {
    let mut f = Fields::of(reply, "NETDB.STATUS")?;
    let Reply::Array(peers) = f.take("peers")? else {
        return Err("'peers': expected an array".into());
    };
    Ok(Status {
        name: f.text("name")?,
        addr: f.text("addr")?,
        live: f.size("live_keys")?,
        tombstones: f.size("tombstones")?,
        // Absent from a node older than expiry.
        expiring: if f.has("expiring_keys") {
            f.size("expiring_keys")?
        } else {
            0
        },
        expired: if f.has("expired_keys") {
            f.number("expired_keys")?
        } else {
            0
        },
        digest: if f.has("digest") {
            Some(parse_digest(&f.text("digest")?)?)
        } else {
            None
        },
        anti_entropy: if f.has("digest_mismatches") {
            Some(AntiEntropyCounts {
                mismatches: f.number("digest_mismatches")?,
                repairs: f.number("repairs")?,
            })
        } else {
            None
        },
        peers: peers
            .into_iter()
            .map(decode_peer)
            .collect::<Result<_, _>>()?,
        persistence: f.map("persistence")?.map(decode_persistence).transpose()?,
        server: f.map("server")?.map(decode_server).transpose()?,
        max_clock_offset_ms: match f.take_new("max_clock_offset_ms") {
            Reply::Integer(n) => u64::try_from(n).ok(),
            _ => None,
        },
        writes_refused: match f.take_new("writes_refused") {
            Reply::Bulk(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            _ => None,
        },
        memory_rss: match f.take_new("used_memory") {
            Reply::Integer(n) => u64::try_from(n).ok(),
            _ => None,
        },
        // The machine form carries the resident set only.
        memory_used: None,
        databases: Vec::new(),
        expiring_by_database: Vec::new(),
        // Absent from a node older than membership.
        members: match f.take_new("members") {
            Reply::Array(members) => members
                .into_iter()
                .map(decode_member)
                .collect::<Result<_, _>>()?,
            _ => Vec::new(),
        },
        gossip_sent: None,
        // Absent from an unsharded node, and from a node older than
        // sharding.
        sharding: match f.take_new("sharding") {
            Reply::Null => None,
            other => {
                let mut s = Fields::of(other, "sharding")?;
                Some(ShardingStatus {
                    replicas: s.size("replicas")?,
                    held: s.size("partitions_held")?,
                    gaining: s.size("partitions_gaining")?,
                    handing_off: s.size("partitions_handing_off")?,
                    keys_arrived: s.size("keys_arrived")? as u64,
                    layout_age_ms: s.size("layout_age_ms")? as u64,
                })
            }
        },
    })
}

/// A digest's 40 hex digits.
fn parse_digest(hex: &str) -> Result<DataDigest, String> {
    let bad = || format!("'digest': not 40 hex digits: {hex:?}");
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok(DataDigest {
        sum: u128::from_str_radix(&hex[..32], 16).map_err(|_| bad())?,
        live: u32::from_str_radix(&hex[32..], 16).map_err(|_| bad())?,
    })
}

fn decode_peer(reply: Reply) -> Result<PeerReport, String> {
    let mut f = Fields::of(reply, "a peer")?;
    let error = f.opt_text("error")?;
    Ok(PeerReport {
        addr: f.text("addr")?,
        state: match f.text("state")?.as_str() {
            "not_tried" => PeerState::NotTried,
            "reachable" => PeerState::Reachable,
            "unreachable" => PeerState::Unreachable(error),
            other => return Err(format!("a peer's state '{other}'")),
        },
        last_sync_ms_ago: f.opt_number("last_sync_ms_ago")?,
        writes_behind: f.opt_number("writes_behind")?,
        last_round_bytes: f.size("last_round_bytes")?,
        tombstones_waiting: f.size("tombstones_waiting")?,
        clock_offset_ms: match f.take_new("clock_offset_ms") {
            Reply::Integer(n) => Some(n),
            _ => None,
        },
        clock_off: matches!(f.take_new("clock_off"), Reply::Integer(n) if n != 0),
        tls: matches!(f.take_new("tls"), Reply::Integer(n) if n != 0),
    })
}

fn decode_persistence(mut f: Fields) -> Result<Persistence, String> {
    if f.number("aof_enabled")? == 0 {
        return Ok(Persistence::InMemory);
    }
    let compaction = match f.map("compaction")? {
        None => None,
        Some(mut c) => {
            let ended = c.opt_number("last_ended_unix_secs")?;
            let ok = c.opt_number("last_ok")?;
            Some(CompactionStatus {
                in_progress: c.number("in_progress")? != 0,
                last: ended.zip(ok).map(|(ended_unix_secs, ok)| LastCompaction {
                    ended_unix_secs,
                    ok: ok != 0,
                }),
            })
        }
    };
    Ok(Persistence::Disk(DiskStatus {
        dir: f.text("dir")?,
        fsync: f
            .text("appendfsync")?
            .parse::<FsyncPolicy>()
            .map_err(|e| e.to_string())?,
        compaction,
        log: None,
    }))
}

fn decode_server(mut f: Fields) -> Result<ServerStats, String> {
    Ok(ServerStats {
        uptime_secs: f.number("uptime_in_seconds")?,
        process_id: u32::try_from(f.number("process_id")?)
            .map_err(|_| "'process_id': too large".to_string())?,
        connected_clients: f.size("connected_clients")?,
        max_clients: f.size("maxclients")?,
        total_connections: f.number("total_connections_received")?,
        total_commands: f.number("total_commands_processed")?,
        rejected_connections: f.number("rejected_connections")?,
        keyspace_hits: f.number("keyspace_hits")?,
        keyspace_misses: f.number("keyspace_misses")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::resp::Protocol;
    use crate::status::tests::sample;

    /// Through RESP2 and RESP3 bytes, which must decode alike.
    fn round_trip(status: &Status) -> Result<Status, String> {
        let decoded = [Protocol::Resp2, Protocol::Resp3].map(|proto| {
            let bytes = encode_status(status).to_bytes_as(proto);
            let reply = crate::redis::resp::parse_reply(&bytes)
                .expect("valid RESP")
                .expect("whole")
                .0;
            decode_status(reply)
        });
        let [resp2, resp3] = decoded;
        assert_eq!(resp2, resp3);
        resp2
    }

    #[test]
    fn the_status_reads_back_as_it_was() {
        let mut status = sample();
        assert_eq!(round_trip(&status), Ok(status.clone()));
        status.peers.push(PeerReport {
            addr: "c:3".into(),
            state: PeerState::NotTried,
            last_sync_ms_ago: None,
            writes_behind: None,
            last_round_bytes: 0,
            tombstones_waiting: 0,
            clock_offset_ms: Some(-7_200_000),
            clock_off: true,
            tls: false,
        });
        status.writes_refused = Some("writes refused: the clock".into());
        status.members = vec![
            MemberView {
                member: Member {
                    id: "a".repeat(40),
                    name: "a".into(),
                    addr: "127.0.0.1:9001".into(),
                    state: State::Up,
                    incarnation: 2,
                },
                myself: true,
                health: None,
            },
            MemberView {
                member: Member {
                    id: "b".repeat(40),
                    name: "b".into(),
                    addr: "127.0.0.1:9002".into(),
                    state: State::Joining,
                    incarnation: 0,
                },
                myself: false,
                health: Some((Health::Suspect, std::time::Duration::from_millis(1500))),
            },
        ];
        status.persistence = Some(Persistence::Disk(DiskStatus {
            dir: "/data/a b".into(),
            fsync: FsyncPolicy::No,
            compaction: Some(CompactionStatus {
                in_progress: false,
                last: Some(LastCompaction {
                    ended_unix_secs: 1_700_000_000,
                    ok: true,
                }),
            }),
            log: None,
        }));
        assert_eq!(round_trip(&status), Ok(status.clone()));
        status.persistence = None;
        status.server = None;
        status.peers.clear();
        assert_eq!(round_trip(&status), Ok(status.clone()));
        // An older node's status, without the digest fields.
        status.digest = None;
        status.anti_entropy = None;
        assert_eq!(round_trip(&status), Ok(status));
    }

    #[test]
    fn unknown_fields_are_ignored_and_missing_ones_named() {
        let Reply::Map(pairs) = encode_status(&sample()) else {
            panic!("a map")
        };
        // As a RESP2 client reads it.
        let mut items: Vec<Reply> = pairs.into_iter().flat_map(|(k, v)| [k, v]).collect();
        items.extend([bulk("from_a_newer_node"), int(1)]);
        assert_eq!(decode_status(Reply::Array(items.clone())), Ok(sample()));
        let without_name = Reply::Array(items[2..].to_vec());
        assert_eq!(
            decode_status(without_name),
            Err("no field 'name'".to_string())
        );
        assert!(decode_status(Reply::Integer(1)).is_err());
        // A node from before the clock and memory fields: the last three,
        // left out (and the members and sharding after them, which came
        // later still).
        let older = Reply::Array(items[..items.len() - 12].to_vec());
        let want = Status {
            max_clock_offset_ms: None,
            memory_rss: None,
            sharding: None,
            ..sample()
        };
        assert_eq!(decode_status(older), Ok(want));
        assert!(decode_status(Reply::Array(vec![bulk("name")])).is_err());
    }
}
