//! The server settings: `CONFIG GET` and `CONFIG HELP`. netdb's settings
//! are its command line, so `CONFIG SET` and `CONFIG REWRITE` are not
//! offered. Reads only the [`Facts`] the node started with; must never
//! append store ops.

use crate::redis::cmd::introspection::{container, help_entry};
use crate::redis::command::{arg, multiple, Action, Call, Command, Docs, Facts};
use crate::redis::glob::glob_match;
use crate::redis::resp::Reply;
use crate::status::Persistence;

/// What this group's docs say unless an entry says otherwise.
const DOCS: Docs = Docs::in_group("server");

/// The server settings' entries.
pub const COMMANDS: &[Command] = &[Command {
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
        help_entry("config|help", "server", &["@slow"]),
    ],
    ..Command::new("config", -2, container)
}];

/// `CONFIG GET pattern ...`: the settings whose names match, as name,
/// value pairs.
fn config_get(call: Call<'_>) -> Action {
    let patterns: Vec<Vec<u8>> = call.args[2..]
        .iter()
        .map(|p| p.to_ascii_lowercase())
        .collect();
    let mut out = Vec::new();
    for (name, value) in settings(call.facts) {
        if patterns.iter().any(|p| glob_match(p, name.as_bytes())) {
            out.extend([
                Reply::Bulk(name.as_bytes().to_vec()),
                Reply::Bulk(value.into_bytes()),
            ]);
        }
    }
    Action::Reply(Reply::Array(out))
}

/// The settings `CONFIG GET` knows, under Redis's names, with what netdb
/// does: no RDB snapshots of Redis's kind (`save` is empty), an
/// append-only log when the node has a data directory (`appendonly`,
/// `appendfsync`, `dir`; an in-memory node has neither policy nor
/// directory, so it lists neither), one database, no eviction.
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
        ("databases", "1".into()),
        ("maxclients", facts.max_clients.to_string()),
        ("timeout", facts.idle_timeout_secs.to_string()),
        ("proto-max-bulk-len", facts.max_bulk_len.to_string()),
        (
            "client-query-buffer-limit",
            facts.max_request_len.to_string(),
        ),
        ("cluster-enabled", "no".into()),
        ("io-threads", "1".into()),
    ]);
    settings
}

#[cfg(test)]
mod tests {
    use crate::durability::FsyncPolicy;
    use crate::redis::cmd::testing::{bulk_of, facts, run, session, Fake};
    use crate::redis::command::Facts;
    use crate::redis::resp::Reply;
    use crate::status::{DiskStatus, Persistence};

    #[test]
    fn config_get_answers_what_benchmarks_ask() {
        assert_eq!(
            run(&[b"CONFIG", b"GET", b"save"]),
            Reply::Array(vec![bulk_of(b"save"), bulk_of(b"")])
        );
        assert_eq!(
            run(&[b"config", b"get", b"APPENDONLY"]),
            Reply::Array(vec![bulk_of(b"appendonly"), bulk_of(b"no")])
        );
        assert_eq!(
            run(&[b"config", b"get", b"appendfsync", b"dir"]),
            Reply::Array(Vec::new()),
            "an in-memory node has no log to fsync and no directory"
        );
        assert_eq!(
            run(&[b"config", b"get", b"maxmemory*"]),
            Reply::Array(vec![
                bulk_of(b"maxmemory"),
                bulk_of(b"0"),
                bulk_of(b"maxmemory-policy"),
                bulk_of(b"noeviction")
            ])
        );
        assert_eq!(
            run(&[b"config", b"get", b"maxclients", b"timeout"]),
            Reply::Array(vec![
                bulk_of(b"maxclients"),
                bulk_of(b"100"),
                bulk_of(b"timeout"),
                bulk_of(b"300")
            ])
        );
        assert_eq!(run(&[b"config", b"get", b"nope"]), Reply::Array(Vec::new()));
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
            Reply::Array(vec![
                bulk_of(b"appendonly"),
                bulk_of(b"yes"),
                bulk_of(b"appendfsync"),
                bulk_of(b"always"),
                bulk_of(b"dir"),
                bulk_of(b"/var/lib/netdb/a"),
            ])
        );
    }
}
