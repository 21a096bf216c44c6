//! `DEBUG`: only what netdb can answer honestly, `DEBUG DIGEST` (the
//! digest of the live data, 40 hex digits, equal on every node that holds
//! the same keys and values: the way to check that replicas agree) and
//! `DEBUG DIGEST-VALUE` (each key's own digest). Redis's other `DEBUG`
//! subcommands (which crash, sleep or reload a server) get the
//! unknown-subcommand error. Reads through the store thread's
//! [`Db`](crate::engine::Db); must never write.

use crate::redis::cmd::introspection::{container, help_entry};
use crate::redis::command::{arg, multiple, Action, Call, Command, Docs, KeyPositions};
use crate::redis::resp::Reply;

const FLAGS: &[&str] = &["admin", "noscript", "loading", "stale"];
const ACL: &[&str] = &["@admin", "@slow", "@dangerous"];

/// What this group's docs say unless an entry says otherwise.
const DOCS: Docs = Docs::in_group("server");

/// `DEBUG`'s entry.
pub const COMMANDS: &[Command] = &[Command {
    flags: FLAGS,
    acl: ACL,
    docs: Docs {
        summary: "A container for debugging commands",
        ..DOCS
    },
    subcommands: &[
        Command {
            flags: FLAGS,
            acl: ACL,
            docs: Docs {
                summary: "The digest of the live data (40 hex digits; all zeros when empty), \
                          equal on every node holding the same keys and values",
                ..DOCS
            },
            ..Command::new("debug|digest", 2, digest)
        },
        Command {
            flags: FLAGS,
            acl: ACL,
            keys: KeyPositions::new(2, -1, 1),
            docs: Docs {
                summary: "Each key's digest (all zeros for a key without a value)",
                args: &[multiple(arg("key", "key"))],
                ..DOCS
            },
            ..Command::new("debug|digest-value", -2, digest_value)
        },
        help_entry("debug|help", "server", ACL),
    ],
    ..Command::new("debug", -2, container)
}];

/// `DEBUG DIGEST`: a status reply, as Redis answers.
fn digest(_: Call<'_>) -> Action {
    Action::Store(Box::new(|db| Reply::Simple(db.digest().to_string()).into()))
}

/// `DEBUG DIGEST-VALUE key ...`: one status reply per key.
fn digest_value(mut call: Call<'_>) -> Action {
    let keys: Vec<Vec<u8>> = call.args.drain(2..).collect();
    Action::Store(Box::new(move |db| {
        Reply::Array(
            keys.iter()
                .map(|k| Reply::Simple(db.key_digest(k).to_string()))
                .collect(),
        )
        .into()
    }))
}

#[cfg(test)]
mod tests {
    use crate::redis::cmd::testing::{err, run, session, Fake};
    use crate::redis::resp::Reply;

    fn simple(s: &str) -> Reply {
        Reply::Simple(s.into())
    }

    #[test]
    fn the_digest_follows_the_data_and_is_zeros_when_empty() {
        let zeros = "0".repeat(40);
        let mut fake = Fake::default();
        let mut s = session();
        assert_eq!(fake.run(&mut s, &[b"DEBUG", b"DIGEST"]), simple(&zeros));
        fake.run(&mut s, &[b"SET", b"k", b"v"]);
        let Reply::Simple(one) = fake.run(&mut s, &[b"debug", b"digest"]) else {
            panic!("a status reply")
        };
        assert_eq!(one.len(), 40);
        assert_ne!(one, zeros);
        // One key: the whole digest is that key's.
        assert_eq!(
            fake.run(&mut s, &[b"debug", b"digest-value", b"k", b"nope"]),
            Reply::Array(vec![simple(&one), simple(&zeros)])
        );
        fake.run(&mut s, &[b"SET", b"k2", b"v"]);
        assert_ne!(fake.run(&mut s, &[b"debug", b"digest"]), simple(&one));
        fake.run(&mut s, &[b"DEL", b"k2"]);
        assert_eq!(fake.run(&mut s, &[b"debug", b"digest"]), simple(&one));
        fake.run(&mut s, &[b"DEL", b"k"]);
        assert_eq!(fake.run(&mut s, &[b"debug", b"digest"]), simple(&zeros));
    }

    #[test]
    fn other_subcommands_are_refused_as_redis_does() {
        assert_eq!(
            run(&[b"DEBUG", b"SLEEP", b"1"]),
            err("ERR unknown subcommand 'SLEEP'. Try DEBUG HELP.")
        );
        assert_eq!(
            run(&[b"debug"]),
            err("ERR wrong number of arguments for 'debug' command")
        );
        assert_eq!(
            run(&[b"debug", b"digest", b"x"]),
            err("ERR wrong number of arguments for 'debug|digest' command")
        );
        let Reply::Array(help) = run(&[b"DEBUG", b"HELP"]) else {
            panic!("an array")
        };
        assert!(help.contains(&simple("DIGEST")), "{help:?}");
        assert!(help.contains(&simple("DIGEST-VALUE")), "{help:?}");
    }
}
