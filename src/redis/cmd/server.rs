//! The server commands: `CONFIG GET`, `CONFIG RESETSTAT`, `CONFIG
//! HELP`, `ROLE`, `TIME`, `SLOWLOG ...` and `WAIT`. netdb's settings are its
//! command line, so `CONFIG SET` and `CONFIG REWRITE` are not offered.
//!
//! The handlers read only the [`Facts`] the node started with and their
//! arguments; what needs the running node (its clock, its counters, its
//! slow log, its peers' acknowledgements) is a [`NodeQuery`] the shell
//! answers, with the reply built here ([`time_reply`],
//! [`slowlog_reply`]). Must never append store ops.

use crate::redis::cmd::introspection::{container, help_entry};
use crate::redis::command::{
    arg, error, multiple, not_an_integer, optional, parse_i64, Action, Call, Command, Docs, Facts,
    NodeQuery, SlowlogQuery,
};
use crate::redis::glob::glob_match;
use crate::redis::resp::Reply;
use crate::status::activity::SlowEntry;
use crate::status::Persistence;

/// What this group's docs say unless an entry says otherwise.
const DOCS: Docs = Docs::in_group("server");

const ADMIN: &[&str] = &["admin", "loading", "stale"];
const ADMIN_ACL: &[&str] = &["@admin", "@slow", "@dangerous"];

/// The server commands' entries.
pub const COMMANDS: &[Command] = &[
    Command {
        acl: &["@slow"],
        docs: Docs {
            summary: "A container for server configuration commands",
            since: "2.0.0",
            ..DOCS
        },
        subcommands: &[
            Command {
                flags: &["admin", "noscript", "loading", "stale"],
                acl: &["@admin", "@slow", "@dangerous"],
                docs: Docs {
                    summary: "Get the values of configuration parameters",
                    since: "2.0.0",
                    args: &[multiple(arg("parameter", "pattern"))],
                    ..DOCS
                },
                ..Command::new("config|get", -3, config_get)
            },
            Command {
                flags: &["admin", "noscript", "loading", "stale"],
                acl: ADMIN_ACL,
                docs: Docs {
                    summary: "Reset the stats returned by INFO",
                    since: "2.0.0",
                    ..DOCS
                },
                ..Command::new("config|resetstat", 2, config_resetstat)
            },
            help_entry("config|help", "server", &["@slow"]),
        ],
        ..Command::new("config", -2, container)
    },
    Command {
        flags: &["noscript", "loading", "stale", "fast"],
        acl: &["@admin", "@fast", "@dangerous"],
        docs: Docs {
            summary: "Returns the replication role (netdb: every node is a master)",
            since: "2.8.12",
            ..DOCS
        },
        ..Command::new("role", 1, role)
    },
    Command {
        flags: &["loading", "stale", "fast"],
        acl: &["@fast"],
        docs: Docs {
            summary: "Return the current server time",
            since: "2.6.0",
            ..DOCS
        },
        ..Command::new("time", 1, time)
    },
    Command {
        acl: &["@slow"],
        docs: Docs {
            summary: "A container for slow log commands",
            since: "2.2.12",
            ..DOCS
        },
        subcommands: &[
            Command {
                flags: ADMIN,
                acl: ADMIN_ACL,
                docs: Docs {
                    summary: "Get the slow log's entries",
                    since: "2.2.12",
                    args: &[optional(arg("count", "integer"))],
                    ..DOCS
                },
                ..Command::new("slowlog|get", -2, slowlog_get)
            },
            Command {
                flags: ADMIN,
                acl: ADMIN_ACL,
                docs: Docs {
                    summary: "Get the slow log's length",
                    since: "2.2.12",
                    ..DOCS
                },
                ..Command::new("slowlog|len", 2, slowlog_len)
            },
            Command {
                flags: ADMIN,
                acl: ADMIN_ACL,
                docs: Docs {
                    summary: "Clear all entries from the slow log",
                    since: "2.2.12",
                    ..DOCS
                },
                ..Command::new("slowlog|reset", 2, slowlog_reset)
            },
            Command {
                flags: &["loading", "stale"],
                acl: &["@slow"],
                docs: Docs {
                    summary: "Show helpful text about the different subcommands",
                    since: "6.2.0",
                    ..DOCS
                },
                ..Command::new("slowlog|help", 2, slowlog_help)
            },
        ],
        ..Command::new("slowlog", -2, container)
    },
    Command {
        flags: &["noscript"],
        acl: &["@slow", "@connection"],
        docs: Docs {
            summary: "Wait for the synchronous replication of all the write commands sent in \
                      the context of the current connection",
            since: "3.0.0",
            group: "generic",
            args: &[arg("numreplicas", "integer"), arg("timeout", "integer")],
        },
        ..Command::new("wait", 3, wait)
    },
];

/// `CONFIG RESETSTAT`: the shell zeroes the counters.
fn config_resetstat(_: Call<'_>) -> Action {
    Action::Node(NodeQuery::ResetStat)
}

/// `ROLE`: what Redis's primary with no replicas answers (`master`,
/// replication offset 0, no replicas), as `HELLO` and `INFO replication`
/// say too. Every netdb node takes writes and none follows another, so
/// a client that checks it is talking to a writable primary (redis-py's
/// `role()`, node-redis's `role()`, Sentinel-style health checks) finds
/// one; peers are not Redis replicas and are not listed.
fn role(_: Call<'_>) -> Action {
    Action::Reply(Reply::Array(vec![
        Reply::Bulk(b"master".to_vec()),
        Reply::Integer(0),
        Reply::Array(Vec::new()),
    ]))
}

/// `TIME`: the shell reads its clock ([`time_reply`]).
fn time(_: Call<'_>) -> Action {
    Action::Node(NodeQuery::Time)
}

/// `TIME`'s reply for a wall clock `unix_micros` microseconds after the
/// epoch: the seconds and the microseconds within the second, as bulks.
pub fn time_reply(unix_micros: u64) -> Reply {
    Reply::Array(vec![
        Reply::Bulk((unix_micros / 1_000_000).to_string().into_bytes()),
        Reply::Bulk((unix_micros % 1_000_000).to_string().into_bytes()),
    ])
}

/// `SLOWLOG GET [count]`: 10 entries by default, all for -1.
fn slowlog_get(call: Call<'_>) -> Action {
    if call.args.len() > 3 {
        return error(
            "ERR unknown subcommand or wrong number of arguments for 'get'. Try SLOWLOG HELP.",
        );
    }
    let count = match call.args.get(2) {
        None => Some(10),
        Some(arg) => match parse_i64(arg) {
            Some(-1) => None,
            Some(n) if n >= 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => return error("ERR count should be greater than or equal to -1"),
        },
    };
    Action::Node(NodeQuery::Slowlog(SlowlogQuery::Get { count }))
}

fn slowlog_len(_: Call<'_>) -> Action {
    Action::Node(NodeQuery::Slowlog(SlowlogQuery::Len))
}

fn slowlog_reset(_: Call<'_>) -> Action {
    Action::Node(NodeQuery::Slowlog(SlowlogQuery::Reset))
}

/// `SLOWLOG HELP`, in Redis's words.
fn slowlog_help(_: Call<'_>) -> Action {
    let lines = [
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Prints this help.",
    ];
    Action::Reply(Reply::Array(
        lines.iter().map(|l| Reply::Simple((*l).into())).collect(),
    ))
}

/// `SLOWLOG GET`'s reply: per entry its id, Unix time, microseconds,
/// arguments, client address and client name.
pub fn slowlog_reply(entries: &[SlowEntry]) -> Reply {
    Reply::Array(
        entries
            .iter()
            .map(|e| {
                Reply::Array(vec![
                    Reply::Integer(i64::try_from(e.id).unwrap_or(i64::MAX)),
                    Reply::Integer(i64::try_from(e.unix_secs).unwrap_or(i64::MAX)),
                    Reply::Integer(i64::try_from(e.usec).unwrap_or(i64::MAX)),
                    Reply::Array(e.args.shown().into_iter().map(Reply::Bulk).collect()),
                    Reply::Bulk(e.addr.clone().into_bytes()),
                    Reply::Bulk(e.name.clone()),
                ])
            })
            .collect(),
    )
}

/// `WAIT numreplicas timeout`: the peers that have acknowledged every
/// write this node has seen, once there are `numreplicas` of them or the
/// timeout has passed; the connection blocks meanwhile (see
/// [`crate::redis::client`]).
fn wait(call: Call<'_>) -> Action {
    let Some(replicas) = parse_i64(&call.args[1]) else {
        return not_an_integer();
    };
    match parse_i64(&call.args[2]) {
        None => error("ERR timeout is not an integer or out of range"),
        Some(t) if t < 0 => error("ERR timeout is negative"),
        Some(t) => Action::Node(NodeQuery::Wait {
            replicas,
            timeout_ms: t.unsigned_abs(),
        }),
    }
}

/// `CONFIG GET pattern ...`: the settings whose names match, as a map.
fn config_get(call: Call<'_>) -> Action {
    let patterns: Vec<Vec<u8>> = call.args[2..]
        .iter()
        .map(|p| p.to_ascii_lowercase())
        .collect();
    let mut out = Vec::new();
    for (name, value) in settings(call.facts) {
        if patterns.iter().any(|p| glob_match(p, name.as_bytes())) {
            out.push((name, Reply::Bulk(value.into_bytes())));
        }
    }
    Action::Reply(Reply::map_of(out))
}

/// The settings `CONFIG GET` knows, under Redis's names, with what netdb
/// does: no RDB snapshots of Redis's kind (`save` is empty), an
/// append-only log when the node has a data directory (`appendonly`,
/// `appendfsync`, `dir`; an in-memory node has neither policy nor
/// directory, so it lists neither), `--databases`, no eviction, and the
/// client password (empty for none), which only an authenticated client
/// can ask for, as in Redis.
fn settings(facts: &Facts) -> Vec<(&'static str, String)> {
    let mut settings = vec![("save", String::new())];
    match &facts.persistence {
        Persistence::InMemory => settings.push(("appendonly", "no".into())),
        Persistence::Disk(disk) => settings.extend([
            ("appendonly", "yes".into()),
            ("appendfsync", disk.fsync.to_string()),
            ("dir", disk.dir.clone()),
        ]),
    }
    settings.extend([
        ("maxmemory", "0".into()),
        ("maxmemory-policy", "noeviction".into()),
        ("databases", facts.databases.to_string()),
        ("maxclients", facts.max_clients.to_string()),
        ("timeout", facts.idle_timeout_secs.to_string()),
        ("proto-max-bulk-len", facts.max_bulk_len.to_string()),
        (
            "client-query-buffer-limit",
            facts.max_request_len.to_string(),
        ),
        ("cluster-enabled", "no".into()),
        ("io-threads", "1".into()),
        (
            "slowlog-log-slower-than",
            facts.slowlog_slower_than.to_string(),
        ),
        ("slowlog-max-len", facts.slowlog_max_len.to_string()),
        (
            "requirepass",
            facts
                .auth
                .password
                .as_ref()
                .map_or_else(String::new, |p| p.reveal().to_owned()),
        ),
    ]);
    settings
}

#[cfg(test)]
mod tests {
    use crate::durability::FsyncPolicy;
    use crate::redis::cmd::testing::{bulk_of, facts, run, session, Fake};

    /// A map as `CONFIG GET` answers it: read back from RESP2, a flat array.
    fn map(pairs: &[(&str, &str)]) -> Reply {
        Reply::Array(
            pairs
                .iter()
                .flat_map(|(k, v)| [bulk_of(k.as_bytes()), bulk_of(v.as_bytes())])
                .collect(),
        )
    }
    use super::{slowlog_reply, time_reply};
    use crate::redis::cmd::testing::{err, request};
    use crate::redis::command::{dispatch, Action, Facts, NodeQuery, SlowlogQuery};
    use crate::redis::resp::Reply;
    use crate::status::activity::{SlowArgs, SlowEntry};
    use crate::status::{DiskStatus, Persistence};

    #[test]
    fn config_get_answers_what_benchmarks_ask() {
        assert_eq!(run(&[b"CONFIG", b"GET", b"save"]), map(&[("save", "")]));
        assert_eq!(
            run(&[b"config", b"get", b"APPENDONLY"]),
            map(&[("appendonly", "no")])
        );
        assert_eq!(
            run(&[b"config", b"get", b"appendfsync", b"dir"]),
            map(&[]),
            "an in-memory node has no log to fsync and no directory"
        );
        assert_eq!(
            run(&[b"config", b"get", b"maxmemory*"]),
            map(&[("maxmemory", "0"), ("maxmemory-policy", "noeviction")])
        );
        assert_eq!(
            run(&[b"config", b"get", b"maxclients", b"timeout"]),
            map(&[("maxclients", "100"), ("timeout", "300")])
        );
        assert_eq!(run(&[b"config", b"get", b"nope"]), map(&[]));
        assert_eq!(
            run(&[b"config", b"get", b"requirepass"]),
            map(&[("requirepass", "")])
        );
    }

    /// redis-py's and node-redis's `role()` get Redis's reply for a
    /// primary without replicas.
    #[test]
    fn role_answers_as_a_primary_without_replicas() {
        let want = Reply::Array(vec![
            Reply::Bulk(b"master".to_vec()),
            Reply::Integer(0),
            Reply::Array(Vec::new()),
        ]);
        assert_eq!(run(&[b"ROLE"]), want);
        assert_eq!(
            run(&[b"role", b"x"]),
            err("ERR wrong number of arguments for 'role' command")
        );
    }

    #[test]
    fn config_get_reports_the_slow_log_settings() {
        assert_eq!(
            run(&[b"config", b"get", b"slowlog-*"]),
            map(&[
                ("slowlog-log-slower-than", "10000"),
                ("slowlog-max-len", "128")
            ])
        );
    }

    fn node_query(args: &[&[u8]]) -> Result<NodeQuery, Reply> {
        match dispatch(&mut session(), request(args), &facts()) {
            Action::Node(query) => Ok(query),
            Action::Reply(reply) => Err(reply),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_commands_are_answered_by_the_shell_after_redis_checks() {
        assert_eq!(node_query(&[b"TIME"]), Ok(NodeQuery::Time));
        assert_eq!(
            node_query(&[b"time", b"x"]),
            Err(err("ERR wrong number of arguments for 'time' command"))
        );
        assert_eq!(
            node_query(&[b"config", b"resetstat"]),
            Ok(NodeQuery::ResetStat)
        );
        assert_eq!(
            node_query(&[b"slowlog", b"get"]),
            Ok(NodeQuery::Slowlog(SlowlogQuery::Get { count: Some(10) }))
        );
        assert_eq!(
            node_query(&[b"slowlog", b"GET", b"-1"]),
            Ok(NodeQuery::Slowlog(SlowlogQuery::Get { count: None }))
        );
        assert_eq!(
            node_query(&[b"slowlog", b"get", b"0"]),
            Ok(NodeQuery::Slowlog(SlowlogQuery::Get { count: Some(0) }))
        );
        for bad in [&b"-2"[..], b"x", b"1.5"] {
            assert_eq!(
                node_query(&[b"slowlog", b"get", bad]),
                Err(err("ERR count should be greater than or equal to -1"))
            );
        }
        assert_eq!(
            node_query(&[b"slowlog", b"get", b"1", b"1"]),
            Err(err(
                "ERR unknown subcommand or wrong number of arguments for 'get'. Try SLOWLOG HELP."
            ))
        );
        assert_eq!(
            node_query(&[b"slowlog", b"len"]),
            Ok(NodeQuery::Slowlog(SlowlogQuery::Len))
        );
        assert_eq!(
            node_query(&[b"slowlog", b"reset"]),
            Ok(NodeQuery::Slowlog(SlowlogQuery::Reset))
        );
        assert_eq!(
            node_query(&[b"slowlog"]),
            Err(err("ERR wrong number of arguments for 'slowlog' command"))
        );
        let Err(Reply::Array(help)) = node_query(&[b"slowlog", b"help"]) else {
            panic!("help lines")
        };
        assert_eq!(help.len(), 12);
        assert_eq!(
            node_query(&[b"wait", b"1", b"0"]),
            Ok(NodeQuery::Wait {
                replicas: 1,
                timeout_ms: 0
            })
        );
        assert_eq!(
            node_query(&[b"wait", b"x", b"0"]),
            Err(err("ERR value is not an integer or out of range"))
        );
        assert_eq!(
            node_query(&[b"wait", b"0", b"1.5"]),
            Err(err("ERR timeout is not an integer or out of range"))
        );
        assert_eq!(
            node_query(&[b"wait", b"0", b"-1"]),
            Err(err("ERR timeout is negative"))
        );
    }

    #[test]
    fn time_and_slowlog_replies_have_redis_shapes() {
        assert_eq!(
            time_reply(1_700_000_000_123_456),
            Reply::Array(vec![bulk_of(b"1700000000"), bulk_of(b"123456")])
        );
        let entry = SlowEntry {
            id: 4,
            unix_secs: 1_700_000_000,
            usec: 12_000,
            args: SlowArgs::of(&[b"GET".to_vec(), b"k".to_vec()]),
            addr: "127.0.0.1:5000".into(),
            name: b"worker".to_vec(),
        };
        assert_eq!(
            slowlog_reply(&[entry]),
            Reply::Array(vec![Reply::Array(vec![
                Reply::Integer(4),
                Reply::Integer(1_700_000_000),
                Reply::Integer(12_000),
                Reply::Array(vec![bulk_of(b"GET"), bulk_of(b"k")]),
                bulk_of(b"127.0.0.1:5000"),
                bulk_of(b"worker"),
            ])])
        );
    }

    #[test]
    fn config_get_tells_the_truth_about_a_data_directory() {
        let on_disk = Facts {
            persistence: Persistence::Disk(DiskStatus {
                dir: "/var/lib/netdb/a".into(),
                fsync: FsyncPolicy::Always,
                compaction: None,
                log: None,
            }),
            ..facts()
        };
        assert_eq!(
            Fake::default().run_with(
                &mut session(),
                &[b"config", b"get", b"append*", b"dir"],
                &on_disk
            ),
            map(&[
                ("appendonly", "yes"),
                ("appendfsync", "always"),
                ("dir", "/var/lib/netdb/a"),
            ])
        );
    }
}
