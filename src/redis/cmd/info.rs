//! `INFO`: the node's [`Status`] as Redis's `INFO` text, under Redis 7's
//! field names where Redis has the field (so redis-cli, `--stat` and
//! monitoring read them) and `netdb_`-prefixed names where it does not.
//!
//! `INFO` is for people and Redis tools; programs that want netdb's own
//! facts ask `NETDB.STATUS` ([`super::netdb`]), which is declared as a
//! structure. Nothing in netdb parses this text. The `# Netdb` section's
//! lines are kept as they were for the benches and scripts that read
//! them. Must never append store ops.

use crate::redis::command::{
    arg, multiple, optional, Action, Call, Command, Docs, NodeQuery, REDIS_VERSION,
};
use crate::redis::resp::Reply;
use crate::status::activity::{Activity, LATENCY_PERCENTILES};
use crate::status::{PeerReport, PeerState, Persistence, Status};
use std::fmt::Write as _;

/// `INFO`'s entry.
pub const COMMANDS: &[Command] = &[Command {
    flags: &["loading", "stale"],
    acl: &["@slow", "@dangerous"],
    docs: Docs {
        summary: "Get information and statistics about the server",
        since: "1.0.0",
        group: "server",
        args: &[optional(multiple(arg("section", "string")))],
    },
    ..Command::new("info", -1, info_command)
}];

/// `INFO [section ...]`: the shell gathers the status.
fn info_command(call: Call<'_>) -> Action {
    Action::Node(NodeQuery::Info {
        sections: call.args[1..]
            .iter()
            .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
            .collect(),
        denied_auth: call.facts.auth.denied(),
    })
}

/// The `INFO` sections, in the order they are printed (Redis's order,
/// then netdb's own).
pub const INFO_SECTIONS: [&str; 12] = [
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
    "netdb",
];

/// Whether `section` is printed by `INFO` without arguments (and
/// `INFO default`): every section but `commandstats` and
/// `latencystats`, as in Redis 7, where only `INFO all`,
/// `INFO everything` or their names print them.
fn is_default(section: &str) -> bool {
    !matches!(section, "commandstats" | "latencystats")
}

/// Line breaks would end an `INFO` line early.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// The `INFO` reply for the asked sections (none or `default`: the
/// default ones; `all` or `everything`: all of them; unknown names are
/// skipped, as in Redis), as text (a verbatim string in RESP3).
/// `denied_auth` is the count of failed `AUTH` attempts, which the client
/// side keeps; `activity` what the client side counts of commands.
pub fn info(sections: &[String], status: &Status, activity: &Activity, denied_auth: u64) -> Reply {
    let all = sections.iter().any(|s| s == "all" || s == "everything");
    let default = sections.is_empty() || sections.iter().any(|s| s == "default");
    let mut text = String::new();
    for section in INFO_SECTIONS {
        let asked =
            all || (default && is_default(section)) || sections.iter().any(|s| s == section);
        if !asked {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        let mut title = section.to_owned();
        if let Some(first) = title.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        let _ = write!(text, "# {title}\r\n");
        for (key, value) in section_lines(section, status, activity, denied_auth) {
            let _ = write!(text, "{key}:{}\r\n", one_line(&value));
        }
    }
    Reply::text(text)
}

/// `# Cluster`: `cluster_enabled:0` without sharding (every node holds
/// all the data: what Redis prints outside cluster mode), `1` with
/// `--replicas` (and `netdb_proxied_commands`: command parts forwarded to
/// the replicas of keys this node does not hold, and where a rebalance
/// stands: partitions held, arriving and handed off, keys arrived since
/// the layout changed and how long ago), then netdb's members: how
/// many, the bytes of gossip sent (probes and answers, framing included),
/// and one line each (`netdb_member<i>:name=..,id=..,addr=..,
/// state=..,health=..,for_ms=..`), this node first.
fn cluster_lines(s: &Status, activity: &Activity) -> Vec<(String, String)> {
    let enabled = if activity.cluster_enabled { "1" } else { "0" };
    let mut lines = vec![("cluster_enabled".to_owned(), enabled.to_owned())];
    if activity.cluster_enabled {
        lines.push((
            "netdb_proxied_commands".into(),
            activity.proxied_commands.to_string(),
        ));
    }
    if let Some(sh) = &s.sharding {
        // Where a rebalance stands (see `status`).
        for (name, value) in [
            ("netdb_replicas", sh.replicas as u64),
            ("netdb_partitions_held", sh.held as u64),
            ("netdb_partitions_arriving", sh.gaining as u64),
            ("netdb_partitions_handing_off", sh.handing_off as u64),
            ("netdb_keys_arrived", sh.keys_arrived),
            ("netdb_layout_age_ms", sh.layout_age_ms),
        ] {
            lines.push((name.into(), value.to_string()));
        }
    }
    if s.members.is_empty() {
        return lines;
    }
    lines.push(("netdb_members".into(), s.members.len().to_string()));
    if let Some(bytes) = s.gossip_sent {
        lines.push(("netdb_gossip_bytes_sent".into(), bytes.to_string()));
    }
    for (i, v) in s.members.iter().enumerate() {
        let m = &v.member;
        let (health, for_ms) = match (v.myself, v.health) {
            (true, _) => ("myself", 0),
            (false, Some((h, since))) => (h.as_str(), since.as_millis()),
            (false, None) => ("none", 0),
        };
        lines.push((
            format!("netdb_member{i}"),
            format!(
                "name={},id={},addr={},state={},health={health},for_ms={for_ms}",
                m.name, m.id, m.addr, m.state
            ),
        ));
    }
    lines
}

/// Bytes as Redis's `used_memory_human` writes them: `B`, then `K`, `M`,
/// `G` with two decimals.
fn human_bytes(n: u64) -> String {
    let units = [(1u64 << 30, 'G'), (1 << 20, 'M'), (1 << 10, 'K')];
    for (size, unit) in units {
        if n >= size {
            return format!("{:.2}{unit}", n as f64 / size as f64);
        }
    }
    format!("{n}B")
}

/// One section's lines. A part of the status that was not gathered
/// (`None`) gives no lines rather than made-up ones.
fn section_lines(
    section: &str,
    s: &Status,
    activity: &Activity,
    denied_auth: u64,
) -> Vec<(String, String)> {
    let mut lines: Vec<(&str, String)> = Vec::new();
    let stats = s.server.as_ref();
    match section {
        "server" => {
            lines.extend([
                ("redis_version", REDIS_VERSION.into()),
                ("netdb_version", env!("CARGO_PKG_VERSION").into()),
                ("redis_mode", "standalone".into()),
                ("os", std::env::consts::OS.into()),
                ("arch_bits", (usize::BITS).to_string()),
                ("multiplexing_api", "threads".into()),
            ]);
            if let Some(st) = stats {
                lines.push(("process_id", st.process_id.to_string()));
            }
            let port = s.addr.rsplit_once(':').map_or("0", |(_, port)| port);
            lines.push(("tcp_port", port.to_owned()));
            if let Some(st) = stats {
                lines.extend([
                    ("uptime_in_seconds", st.uptime_secs.to_string()),
                    ("uptime_in_days", (st.uptime_secs / 86_400).to_string()),
                ]);
            }
        }
        "clients" => {
            if let Some(st) = stats {
                lines.extend([
                    ("connected_clients", st.connected_clients.to_string()),
                    ("maxclients", st.max_clients.to_string()),
                ]);
            }
            lines.push(("blocked_clients", "0".into()));
        }
        "memory" => memory_lines(
            (s.memory_used, s.memory_rss),
            activity.memory_peak,
            &mut lines,
        ),
        "persistence" => persistence_lines(s.persistence.as_ref(), &mut lines),
        "stats" => {
            if let Some(st) = stats {
                lines.extend([
                    (
                        "total_connections_received",
                        st.total_connections.to_string(),
                    ),
                    ("total_commands_processed", st.total_commands.to_string()),
                    (
                        "instantaneous_ops_per_sec",
                        activity.ops_per_sec.to_string(),
                    ),
                    (
                        "total_net_input_bytes",
                        activity.net_input_bytes.to_string(),
                    ),
                    (
                        "total_net_output_bytes",
                        activity.net_output_bytes.to_string(),
                    ),
                    ("rejected_connections", st.rejected_connections.to_string()),
                    ("expired_keys", s.expired.to_string()),
                    ("keyspace_hits", st.keyspace_hits.to_string()),
                    ("keyspace_misses", st.keyspace_misses.to_string()),
                ]);
            }
            lines.push(("acl_access_denied_auth", denied_auth.to_string()));
        }
        // What a Redis primary without replicas prints, as `ROLE` and
        // `HELLO` answer: every node takes writes, and peers are not
        // Redis replicas (they are in `# Netdb`).
        "replication" => lines.extend([
            ("role", "master".into()),
            ("connected_slaves", "0".into()),
            ("master_failover_state", "no-failover".into()),
            ("master_repl_offset", "0".into()),
            ("repl_backlog_active", "0".into()),
        ]),
        "commandstats" => return commandstats_lines(activity),
        "latencystats" => return latencystats_lines(activity),
        "errorstats" => {
            return activity
                .errors
                .iter()
                .map(|(code, count)| (format!("errorstat_{code}"), format!("count={count}")))
                .collect()
        }
        "keyspace" => return keyspace_lines(s),
        "cluster" => return cluster_lines(s, activity),
        "netdb" => return netdb_lines(s),
        _ => {}
    }
    lines.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// `# Keyspace`: one line per database with live keys; every live key is
/// database 0's when the status has no per-database counts.
fn keyspace_lines(s: &Status) -> Vec<(String, String)> {
    let counted;
    let databases = if s.databases.is_empty() {
        counted = [(crate::engine::Database::ZERO, s.live)];
        &counted[..]
    } else {
        &s.databases[..]
    };
    let expires = |db: crate::engine::Database| {
        if s.expiring_by_database.is_empty() {
            if db == crate::engine::Database::ZERO {
                s.expiring
            } else {
                0
            }
        } else {
            (s.expiring_by_database.iter())
                .find(|&&(d, _)| d == db)
                .map_or(0, |&(_, n)| n)
        }
    };
    databases
        .iter()
        .filter(|&&(_, keys)| keys > 0)
        .map(|&(db, keys)| {
            let line = format!("keys={keys},expires={},avg_ttl=0", expires(db));
            (db.to_string(), line)
        })
        .collect()
}

/// `# Memory`, as Redis reports it: `used_memory` is what the allocator
/// (jemalloc, as in Redis) has handed out, `used_memory_rss` the resident
/// set (`VmRSS`), `mem_fragmentation_ratio` the one over the other; the
/// peak is the most `used_memory` seen by `INFO` or by the samples taken
/// as commands run (every 100 ms while there are commands). Where the
/// allocator's count is not known, `used_memory` is the resident set.
fn memory_lines(
    (used, rss): (Option<u64>, Option<u64>),
    peak: Option<u64>,
    lines: &mut Vec<(&str, String)>,
) {
    let used_and_rss = used.or(rss).zip(rss.or(used));
    if let Some((used, rss)) = used_and_rss {
        let peak = peak.unwrap_or(used).max(used);
        lines.extend([
            ("used_memory", used.to_string()),
            ("used_memory_human", human_bytes(used)),
            ("used_memory_rss", rss.to_string()),
            ("used_memory_rss_human", human_bytes(rss)),
            ("used_memory_peak", peak.to_string()),
            ("used_memory_peak_human", human_bytes(peak)),
        ]);
    }
    lines.extend([
        ("maxmemory", "0".into()),
        ("maxmemory_human", "0B".into()),
        ("maxmemory_policy", "noeviction".into()),
    ]);
    if let Some((used, rss)) = used_and_rss {
        let ratio = if used == 0 {
            1.0
        } else {
            rss as f64 / used as f64
        };
        lines.push(("mem_fragmentation_ratio", format!("{ratio:.2}")));
    }
}

/// `# Commandstats`: one line per command that ran or was refused, as
/// Redis 7 writes it.
fn commandstats_lines(activity: &Activity) -> Vec<(String, String)> {
    activity
        .commands
        .iter()
        .map(|(name, c)| {
            let per_call = if c.calls == 0 {
                0.0
            } else {
                c.nanos as f64 / 1000.0 / c.calls as f64
            };
            (
                format!("cmdstat_{name}"),
                format!(
                    "calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}",
                    c.calls,
                    c.nanos / 1000,
                    c.rejected_calls,
                    c.failed_calls
                ),
            )
        })
        .collect()
}

/// `# Latencystats`: per command that ran, its durations at Redis's
/// default percentiles (50, 99, 99.9) in microseconds with three
/// decimals, as Redis 7 writes them
/// (`latency_percentiles_usec_get:p50=1.003,p99=2.007,p99.9=3.007`).
fn latencystats_lines(activity: &Activity) -> Vec<(String, String)> {
    activity
        .latencies
        .iter()
        .map(|(name, nanos)| {
            let values: Vec<String> = LATENCY_PERCENTILES
                .iter()
                .zip(nanos)
                .map(|(p, n)| format!("p{p}={:.3}", *n as f64 / 1000.0))
                .collect();
            (format!("latency_percentiles_usec_{name}"), values.join(","))
        })
        .collect()
}

/// `# Persistence`: Redis's AOF fields for netdb's log (netdb has no RDB
/// snapshots of Redis's kind, so no `rdb_*` save is ever in progress).
fn persistence_lines(persistence: Option<&Persistence>, lines: &mut Vec<(&str, String)>) {
    lines.push(("loading", "0".into()));
    let Some(persistence) = persistence else {
        return;
    };
    let disk = match persistence {
        Persistence::InMemory => None,
        Persistence::Disk(disk) => Some(disk),
    };
    lines.extend([
        (
            "netdb_persistence",
            if disk.is_some() { "disk" } else { "in-memory" }.into(),
        ),
        ("rdb_bgsave_in_progress", "0".into()),
        ("aof_enabled", u8::from(disk.is_some()).to_string()),
    ]);
    let Some(disk) = disk else {
        return;
    };
    if let Some(compaction) = disk.compaction {
        lines.push((
            "aof_rewrite_in_progress",
            u8::from(compaction.in_progress).to_string(),
        ));
        // Redis says `ok` before any rewrite has run.
        let ok = compaction.last.is_none_or(|last| last.ok);
        lines.push((
            "aof_last_bgrewrite_status",
            if ok { "ok" } else { "err" }.into(),
        ));
        if let Some(last) = compaction.last {
            lines.push((
                "netdb_last_compaction_time",
                last.ended_unix_secs.to_string(),
            ));
        }
    }
    if let Some(log) = disk.log {
        lines.extend([
            ("netdb_log_writes", log.writes.to_string()),
            ("netdb_log_fsyncs", log.fsyncs.to_string()),
        ]);
    }
    lines.extend([
        ("netdb_appendfsync", disk.fsync.to_string()),
        ("netdb_data_dir", disk.dir.clone()),
    ]);
}

/// `# Netdb`: the node, its counts, its digest and the anti-entropy
/// counts (see [`crate::replication::anti_entropy`]), and one line per
/// peer.
fn netdb_lines(s: &Status) -> Vec<(String, String)> {
    let mut lines: Vec<(String, String)> = [
        ("node_name", s.name.clone()),
        ("listen_addr", s.addr.clone()),
        ("live_keys", s.live.to_string()),
        ("tombstones", s.tombstones.to_string()),
        ("peers", s.peers.len().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(bound) = s.max_clock_offset_ms {
        lines.push(("max_clock_offset_ms".into(), bound.to_string()));
    }
    let off = s.peers.iter().filter(|p| p.clock_off).count();
    lines.push(("clock_off_peers".into(), off.to_string()));
    lines.push((
        "writes_refused".into(),
        u8::from(s.writes_refused.is_some()).to_string(),
    ));
    if let Some(why) = &s.writes_refused {
        lines.push(("writes_refused_reason".into(), why.clone()));
    }
    if let Some(digest) = s.digest {
        lines.push(("netdb_digest".into(), digest.to_string()));
    }
    if let Some(counts) = s.anti_entropy {
        lines.extend([
            (
                "netdb_digest_mismatches".into(),
                counts.mismatches.to_string(),
            ),
            ("netdb_repairs".into(), counts.repairs.to_string()),
        ]);
    }
    for (i, p) in s.peers.iter().enumerate() {
        lines.push((format!("peer{i}"), peer_fields(p)));
        if let PeerState::Unreachable(Some(e)) = &p.state {
            lines.push((format!("peer{i}_error"), e.clone()));
        }
        if let Some(ms) = p.clock_offset_ms {
            lines.push((format!("peer{i}_clock_offset_ms"), ms.to_string()));
        }
    }
    lines
}

fn peer_fields(p: &PeerReport) -> String {
    let state = match p.state {
        PeerState::NotTried => "not_tried",
        PeerState::Reachable => "reachable",
        PeerState::Unreachable(_) => "unreachable",
    };
    let or = |v: Option<u64>, none: &str| v.map_or_else(|| none.to_owned(), |n| n.to_string());
    format!(
        "addr={},state={state},last_sync_ms_ago={},writes_behind={},last_round_bytes={},tombstones_waiting={}",
        p.addr,
        or(p.last_sync_ms_ago, "never"),
        or(p.writes_behind, "unknown"),
        p.last_round_bytes,
        p.tombstones_waiting
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::durability::FsyncPolicy;
    use crate::status::activity::CommandStat;
    use crate::status::tests::sample;
    use crate::status::{CompactionStatus, DiskStatus, LastCompaction};

    /// Counts as the client side would have them after a few commands.
    fn activity() -> Activity {
        Activity {
            commands: vec![
                (
                    "config|get".into(),
                    CommandStat {
                        calls: 0,
                        nanos: 0,
                        rejected_calls: 1,
                        failed_calls: 0,
                    },
                ),
                (
                    "get".into(),
                    CommandStat {
                        calls: 3,
                        nanos: 10_000,
                        rejected_calls: 0,
                        failed_calls: 1,
                    },
                ),
            ],
            latencies: vec![
                ("get".into(), [1_003, 2_007, 3_007]),
                ("set".into(), [15, 1_000_000, 12_345_678]),
            ],
            errors: vec![("ERR".into(), 2), ("WRONGTYPE".into(), 1)],
            ops_per_sec: 1234,
            net_input_bytes: 100,
            net_output_bytes: 200,
            memory_peak: Some(60 << 20),
            cluster_enabled: false,
            proxied_commands: 0,
        }
    }

    #[test]
    fn commandstats_and_errorstats_are_written_as_redis_does() {
        let status = sample();
        let stats = text(&["commandstats"], &status);
        assert_eq!(
            stats,
            "# Commandstats\r\n\
             cmdstat_config|get:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0\r\n\
             cmdstat_get:calls=3,usec=10,usec_per_call=3.33,rejected_calls=0,failed_calls=1\r\n"
        );
        assert_eq!(
            text(&["errorstats"], &status),
            "# Errorstats\r\nerrorstat_ERR:count=2\r\nerrorstat_WRONGTYPE:count=1\r\n"
        );
        // As in Redis 7: errorstats is a default section, commandstats
        // only comes with all, everything, or its name.
        for default in [&[][..], &["default"]] {
            let t = text(default, &status);
            assert!(t.contains("# Errorstats\r\n"), "{t}");
            assert!(!t.contains("# Commandstats"), "{t}");
        }
        for all in ["all", "everything"] {
            let t = text(&[all], &status);
            let at = |title: &str| t.find(title).unwrap_or_else(|| panic!("{title}: {t}"));
            assert!(at("# Stats") < at("# Commandstats"));
            assert!(at("# Commandstats") < at("# Errorstats"));
            assert!(at("# Errorstats") < at("# Keyspace"));
        }
        let both = text(&["default", "commandstats"], &status);
        assert!(both.contains("# Commandstats") && both.contains("# Server"));
    }

    #[test]
    fn latencystats_are_written_as_redis_7_does() {
        let status = sample();
        assert_eq!(
            text(&["latencystats"], &status),
            "# Latencystats\r\n\
             latency_percentiles_usec_get:p50=1.003,p99=2.007,p99.9=3.007\r\n\
             latency_percentiles_usec_set:p50=0.015,p99=1000.000,p99.9=12345.678\r\n"
        );
        // As in Redis 7: not a default section; after errorstats in all.
        for default in [&[][..], &["default"]] {
            assert!(!text(default, &status).contains("# Latencystats"));
        }
        let t = text(&["everything"], &status);
        let at = |title: &str| t.find(title).unwrap_or_else(|| panic!("{title}: {t}"));
        assert!(at("# Errorstats") < at("# Latencystats"));
        assert!(at("# Latencystats") < at("# Keyspace"));
    }

    #[test]
    fn stats_and_memory_have_redis_fields() {
        let status = sample();
        let stats = text(&["stats"], &status);
        for line in [
            "total_connections_received:9",
            "total_commands_processed:1000",
            "instantaneous_ops_per_sec:1234",
            "total_net_input_bytes:100",
            "total_net_output_bytes:200",
            "rejected_connections:1",
            "keyspace_hits:5",
            "keyspace_misses:6",
        ] {
            assert!(stats.contains(&format!("{line}\r\n")), "{line}: {stats}");
        }
        assert_eq!(
            text(&["memory"], &status),
            "# Memory\r\nused_memory:52428800\r\nused_memory_human:50.00M\r\n\
             used_memory_rss:52428800\r\nused_memory_rss_human:50.00M\r\n\
             used_memory_peak:62914560\r\nused_memory_peak_human:60.00M\r\n\
             maxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\n\
             mem_fragmentation_ratio:1.00\r\n"
        );
        // With the allocator's count: it is used_memory, the resident set
        // is used_memory_rss, and the ratio is the one over the other.
        let counted = Status {
            memory_used: Some(20 << 20),
            ..sample()
        };
        let memory = text(&["memory"], &counted);
        for line in [
            "used_memory:20971520",
            "used_memory_rss:52428800",
            "used_memory_peak:62914560",
            "mem_fragmentation_ratio:2.50",
        ] {
            assert!(memory.contains(&format!("{line}\r\n")), "{line}: {memory}");
        }
        // The peak is never below what is used now.
        let low = Activity {
            memory_peak: Some(1),
            ..activity()
        };
        let sections = vec!["memory".to_owned()];
        let Reply::Verbatim { text, .. } = info(&sections, &status, &low, 0) else {
            panic!("text")
        };
        assert!(String::from_utf8_lossy(&text).contains("used_memory_peak:52428800\r\n"));
    }

    fn text(sections: &[&str], status: &Status) -> String {
        let sections: Vec<String> = sections.iter().map(|s| (*s).to_owned()).collect();
        let Reply::Verbatim { format, text } = info(&sections, status, &activity(), 4) else {
            panic!("text")
        };
        assert_eq!(format, "txt");
        String::from_utf8(text).expect("text")
    }

    #[test]
    fn info_sections() {
        let status = sample();
        let all = text(&[], &status);
        for title in [
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# Keyspace",
            "# Netdb",
        ] {
            assert!(all.contains(&format!("{title}\r\n")), "{title}");
        }
        for line in [
            "redis_version:7.0.0",
            "tcp_port:9001",
            "uptime_in_days:1",
            "connected_clients:3",
            "netdb_persistence:in-memory",
            "aof_enabled:0",
            "total_commands_processed:1000",
            "acl_access_denied_auth:4",
            "used_memory:52428800",
            "used_memory_human:50.00M",
            "maxmemory:0",
            "role:master",
            "connected_slaves:0",
            "db0:keys=12,expires=2,avg_ttl=0",
            "node_name:a",
            "netdb_digest:00000000000000000000000000000abc0000000c",
            "netdb_digest_mismatches:3",
            "netdb_repairs:2",
            "peer0:addr=127.0.0.1:9002,state=reachable,last_sync_ms_ago=250,writes_behind=0,last_round_bytes=300,tombstones_waiting=0",
            "peer1_error:Connection refused (os error 111)",
            "max_clock_offset_ms:500",
            "clock_off_peers:0",
            "writes_refused:0",
            "peer0_clock_offset_ms:-3",
        ] {
            assert!(all.contains(&format!("{line}\r\n")), "{line}");
        }
        assert!(all.contains("\r\n\r\n# Clients\r\n"), "sections apart");
        assert!(!all.contains("peer1_clock_offset_ms"), "not measured");
        let mut skewed = status.clone();
        skewed.peers[0].clock_offset_ms = Some(7_200_000);
        skewed.peers[0].clock_off = true;
        skewed.writes_refused = Some("writes refused: the clock".into());
        let netdb = text(&["netdb"], &skewed);
        for line in [
            "clock_off_peers:1",
            "writes_refused:1",
            "writes_refused_reason:writes refused: the clock",
            "peer0_clock_offset_ms:7200000",
        ] {
            assert!(netdb.contains(&format!("{line}\r\n")), "{line}: {netdb}");
        }
        assert!(!all.contains("netdb_data_dir"), "{all}");
        let one = text(&["stats"], &status);
        assert!(one.starts_with("# Stats\r\n"));
        assert!(!one.contains("# Server"));
        assert_eq!(text(&["nope"], &status), "");
        let mut alone = status.clone();
        alone.live = 0;
        assert!(!text(&[], &alone).contains("# Keyspace\r\ndb0"));
    }

    #[test]
    fn persistence_on_disk_uses_redis_aof_fields() {
        let mut status = sample();
        let mut disk = DiskStatus {
            dir: "/data/a".into(),
            fsync: FsyncPolicy::EverySec,
            compaction: None,
            log: None,
        };
        status.persistence = Some(Persistence::Disk(disk.clone()));
        assert_eq!(
            text(&["persistence"], &status),
            "# Persistence\r\nloading:0\r\nnetdb_persistence:disk\r\nrdb_bgsave_in_progress:0\r\n\
             aof_enabled:1\r\nnetdb_appendfsync:everysec\r\nnetdb_data_dir:/data/a\r\n"
        );
        disk.compaction = Some(CompactionStatus {
            in_progress: true,
            last: Some(LastCompaction {
                ended_unix_secs: 1_700_000_000,
                ok: false,
            }),
        });
        status.persistence = Some(Persistence::Disk(disk));
        let text = text(&["persistence"], &status);
        for line in [
            "aof_rewrite_in_progress:1",
            "aof_last_bgrewrite_status:err",
            "netdb_last_compaction_time:1700000000",
        ] {
            assert!(text.contains(&format!("{line}\r\n")), "{line}: {text}");
        }
    }

    #[test]
    fn memory_is_shown_as_redis_does() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1536), "1.50K");
        assert_eq!(human_bytes(3 << 30), "3.00G");
    }

    #[test]
    fn the_keyspace_has_a_line_per_database_with_keys() {
        use crate::engine::Database;
        let status = Status {
            live: 7,
            databases: vec![
                (Database::ZERO, 4),
                (Database::new(3), 2),
                (Database::new(15), 1),
            ],
            expiring_by_database: vec![(Database::new(3), 1)],
            members: Vec::new(),
            gossip_sent: None,
            ..sample()
        };
        assert!(text(&["keyspace"], &status).ends_with(
            "# Keyspace\r\ndb0:keys=4,expires=0,avg_ttl=0\r\ndb3:keys=2,expires=1,avg_ttl=0\r\n\
             db15:keys=1,expires=0,avg_ttl=0\r\n"
        ));
        let empty = Status {
            live: 0,
            databases: Vec::new(),
            ..sample()
        };
        assert_eq!(text(&["keyspace"], &empty), "# Keyspace\r\n");
    }

    #[test]
    fn parts_not_gathered_give_no_lines() {
        let status = Status {
            persistence: None,
            server: None,
            memory_rss: None,
            ..sample()
        };
        let all = text(&[], &status);
        for absent in [
            "used_memory:",
            "aof_enabled",
            "process_id",
            "connected_clients",
            "keyspace_hits",
        ] {
            assert!(!all.contains(absent), "{absent}: {all}");
        }
    }
}
