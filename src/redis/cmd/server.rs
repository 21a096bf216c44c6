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
    use crate::redis::command::Facts;
    use crate::redis::resp::Reply;
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
