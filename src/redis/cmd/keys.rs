//! The keyspace commands: `DEL`, `EXISTS`, `TYPE`, `KEYS`, `SCAN`,
//! `DBSIZE`, `FLUSHDB`/`FLUSHALL`, and `MEMORY USAGE` (an estimate of
//! what a key costs). Each
//! parses its arguments here and returns the work that runs on the store
//! thread and builds its reply.
//! They must never touch the map directly: a delete goes through
//! `Db::delete`, so it is clocked, replicated and logged like any other
//! write.

use crate::redis::cmd::introspection::{container, help_entry};
use crate::redis::command::{
    arg, bulks, error, multiple, not_an_integer, optional, parse_i64, refused, syntax_error, token,
    Action, Answer, Call, Command, Docs, KeyPositions, Tally,
};
use crate::redis::glob::glob_match;
use crate::redis::resp::Reply;

const ALL_KEYS: KeyPositions = KeyPositions::new(1, -1, 1);

/// What this group's docs say unless an entry says otherwise.
const DOCS: Docs = Docs::in_group("generic");

/// The keyspace group's entries.
pub const COMMANDS: &[Command] = &[
    Command {
        flags: &["write"],
        acl: &["@keyspace", "@write", "@slow"],
        keys: ALL_KEYS,
        docs: Docs {
            summary: "Delete keys; the number that existed",
            args: &[multiple(arg("key", "key"))],
            ..DOCS
        },
        ..Command::new("del", -2, del)
    },
    Command {
        flags: &["readonly", "fast"],
        acl: &["@keyspace", "@read", "@fast"],
        keys: ALL_KEYS,
        docs: Docs {
            summary: "Determine if keys exist",
            args: &[multiple(arg("key", "key"))],
            ..DOCS
        },
        ..Command::new("exists", -2, exists)
    },
    Command {
        flags: &["readonly", "fast"],
        acl: &["@keyspace", "@read", "@fast"],
        keys: KeyPositions::new(1, 1, 1),
        docs: Docs {
            summary: "Determine the type stored at key (netdb: string or none)",
            args: &[arg("key", "key")],
            ..DOCS
        },
        ..Command::new("type", 2, type_of)
    },
    Command {
        flags: &["readonly"],
        acl: &["@keyspace", "@read", "@slow", "@dangerous"],
        docs: Docs {
            summary: "Find all keys matching the given pattern",
            args: &[arg("pattern", "pattern")],
            ..DOCS
        },
        ..Command::new("keys", 2, keys)
    },
    Command {
        flags: &["readonly"],
        acl: &["@keyspace", "@read", "@slow"],
        docs: Docs {
            summary: "Incrementally iterate the keys space",
            since: "2.8.0",
            args: &[
                arg("cursor", "integer"),
                optional(token("MATCH", arg("pattern", "pattern"))),
                optional(token("COUNT", arg("count", "integer"))),
                optional(token("TYPE", arg("type", "string"))),
            ],
            ..DOCS
        },
        ..Command::new("scan", -2, scan)
    },
    Command {
        flags: &["readonly", "fast"],
        acl: &["@keyspace", "@read", "@fast"],
        docs: Docs {
            summary: "Return the number of keys",
            group: "server",
            ..DOCS
        },
        ..Command::new("dbsize", 1, dbsize)
    },
    Command {
        flags: &["write"],
        acl: &["@keyspace", "@write", "@slow", "@dangerous"],
        docs: Docs {
            summary: "Delete every key (netdb: one delete per key, replicated to every \
                      node like any delete; ASYNC and SYNC are the same)",
            group: "server",
            args: &[optional(arg("flush-type", "oneof"))],
            ..DOCS
        },
        ..Command::new("flushdb", -1, flush)
    },
    Command {
        flags: &["write"],
        acl: &["@keyspace", "@write", "@slow", "@dangerous"],
        docs: Docs {
            summary: "Delete every key (netdb has one database: the same as FLUSHDB)",
            group: "server",
            args: &[optional(arg("flush-type", "oneof"))],
            ..DOCS
        },
        ..Command::new("flushall", -1, flush)
    },
    Command {
        acl: &["@slow"],
        docs: Docs {
            summary: "A container for memory diagnostics commands",
            since: "4.0.0",
            group: "server",
            ..DOCS
        },
        subcommands: &[
            Command {
                flags: &["readonly"],
                acl: &["@read", "@slow"],
                keys: KeyPositions::new(2, 2, 1),
                docs: Docs {
                    summary: "Estimate the memory usage of a key (netdb: its bytes and the \
                              per-key overhead measured by benches/memory.sh)",
                    since: "4.0.0",
                    group: "server",
                    args: &[
                        arg("key", "key"),
                        optional(token("SAMPLES", arg("count", "integer"))),
                    ],
                },
                ..Command::new("memory|usage", -3, memory_usage)
            },
            help_entry("memory|help", "server", &["@slow"]),
        ],
        ..Command::new("memory", -2, container)
    },
];

/// What a key costs beyond its own bytes, on average: the entry, its
/// clock, its slot in the table and the table's empty room, and the
/// allocator's rounding. `benches/memory.sh` measures 245 resident bytes
/// per key for a million 10-byte keys with 100-byte values in a node
/// alone, which leaves this much; a clock grows with the writers that
/// wrote the key, so a key written on many nodes costs somewhat more.
pub const PER_KEY_OVERHEAD: usize = 135;

fn del(mut call: Call<'_>) -> Action {
    let keys: Vec<Vec<u8>> = call.args.drain(1..).collect();
    Action::Store(Box::new(move |db| {
        let mut existed = 0;
        let mut first_refusal = None;
        for key in &keys {
            // A key named twice exists only the first time, as in Redis.
            if db.exists(key) {
                existed += 1;
            }
            if let Err(e) = db.delete(key) {
                first_refusal.get_or_insert_with(|| refused(&e));
            }
        }
        first_refusal.unwrap_or(Reply::Integer(existed)).into()
    }))
}

/// `FLUSHDB`/`FLUSHALL [ASYNC|SYNC]`: a delete of every live key, in one
/// store command (nothing comes between), each delete clocked, logged and
/// replicated like any other, so the whole cluster is emptied, as a Redis
/// primary's flush empties its replicas. A write made meanwhile on
/// another node that this node has not seen yet survives, as with any
/// concurrent delete.
fn flush(call: Call<'_>) -> Action {
    match call.args.get(1).map(|a| a.to_ascii_uppercase()) {
        None => {}
        Some(mode) if call.args.len() == 2 && (mode == b"ASYNC" || mode == b"SYNC") => {}
        Some(_) => return syntax_error(),
    }
    Action::Store(Box::new(move |db| {
        let keys = db.keys_where(|_| true);
        for key in &keys {
            if let Err(e) = db.delete(key) {
                return refused(&e).into();
            }
        }
        Reply::ok().into()
    }))
}

/// `EXISTS`: how many of the keys (counted as often as named) exist.
fn exists(mut call: Call<'_>) -> Action {
    let keys: Vec<Vec<u8>> = call.args.drain(1..).collect();
    Action::Store(Box::new(move |db| {
        let existing = keys.iter().filter(|k| db.exists(k)).count();
        Reply::Integer(existing as i64).into()
    }))
}

/// `TYPE key`: `string` for a key with a value, `none` otherwise.
fn type_of(mut call: Call<'_>) -> Action {
    let key = call.args.swap_remove(1);
    Action::Store(Box::new(move |db| {
        let kind = if db.exists(&key) { "string" } else { "none" };
        Reply::Simple(kind.into()).into()
    }))
}

/// `MEMORY USAGE key [SAMPLES count]`: the key's bytes, its value's and
/// [`PER_KEY_OVERHEAD`]; null for a key without a value. (`SAMPLES` is
/// checked and has nothing to sample: a string is one value.)
fn memory_usage(mut call: Call<'_>) -> Action {
    match call.args.get(3..).unwrap_or_default() {
        [] => {}
        [option, count] if option.eq_ignore_ascii_case(b"samples") => {
            if parse_i64(count).is_none() {
                return not_an_integer();
            }
        }
        _ => return syntax_error(),
    }
    let key = call.args.swap_remove(2);
    Action::Store(Box::new(move |db| {
        let mut tally = Tally::default();
        let reply = match db.get(&key) {
            Some(value) => {
                tally.hits += 1;
                let bytes = key.len() + value.len() + PER_KEY_OVERHEAD;
                Reply::Integer(i64::try_from(bytes).unwrap_or(i64::MAX))
            }
            None => {
                tally.misses += 1;
                Reply::Null
            }
        };
        Answer { reply, tally }
    }))
}

/// `KEYS pattern`: the matching keys.
fn keys(mut call: Call<'_>) -> Action {
    let pattern = call.args.swap_remove(1);
    Action::Store(Box::new(move |db| {
        let keys = db.keys_where(|k| glob_match(&pattern, k));
        let weight: usize = keys.iter().map(|k| k.len() + 16).sum();
        if weight > db.reply_budget() {
            db.exceed_budget();
            return Reply::Null.into();
        }
        bulks(keys).into()
    }))
}

/// What a `SCAN` asks for.
#[derive(Debug, PartialEq, Eq)]
struct ScanArgs {
    cursor: u64,
    /// `None` matches every key.
    pattern: Option<Vec<u8>>,
    count: usize,
    /// Whether to return the keys found (false for a `TYPE` other than
    /// string).
    keep: bool,
}

/// Reads `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`, with
/// Redis's errors.
fn scan_args(args: &[Vec<u8>]) -> Result<ScanArgs, Action> {
    // Redis reads the cursor with strtoul: digits only, any size that fits.
    let cursor = match std::str::from_utf8(&args[1]).map(str::parse::<u64>) {
        Ok(Ok(c)) if !args[1].starts_with(b"+") => c,
        _ if args[1].is_empty() => 0,
        _ => return Err(error("ERR invalid cursor")),
    };
    let mut scan = ScanArgs {
        cursor,
        pattern: None,
        count: 10,
        keep: true,
    };
    let mut i = 2;
    while i < args.len() {
        let option = args[i].to_ascii_lowercase();
        let Some(value) = args.get(i + 1) else {
            return Err(syntax_error());
        };
        match option.as_slice() {
            b"count" => match parse_i64(value) {
                Some(c) if c >= 1 => scan.count = usize::try_from(c).unwrap_or(usize::MAX),
                Some(_) => return Err(syntax_error()),
                None => return Err(not_an_integer()),
            },
            // Exactly `*` matches everything: no need to test each key.
            b"match" => scan.pattern = (value.as_slice() != b"*").then(|| value.clone()),
            b"type" => scan.keep = value.eq_ignore_ascii_case(b"string"),
            _ => return Err(syntax_error()),
        }
        i += 2;
    }
    Ok(scan)
}

/// `SCAN`: `[next cursor, [keys]]`.
fn scan(call: Call<'_>) -> Action {
    let scan = match scan_args(&call.args) {
        Ok(scan) => scan,
        Err(refusal) => return refusal,
    };
    Action::Store(Box::new(move |db| {
        let wanted = |k: &[u8]| scan.pattern.as_deref().is_none_or(|p| glob_match(p, k));
        let (next, keys) = db.scan(scan.cursor, scan.count, wanted);
        let keys = if scan.keep { keys } else { Vec::new() };
        Reply::Array(vec![
            Reply::Bulk(next.to_string().into_bytes()),
            bulks(keys),
        ])
        .into()
    }))
}

/// `DBSIZE`: the number of live keys.
fn dbsize(_call: Call<'_>) -> Action {
    Action::Store(Box::new(|db| {
        Reply::Integer(i64::try_from(db.len()).unwrap_or(i64::MAX)).into()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::cmd::testing::{bulk_of, err, request, session, Fake};

    fn parsed(args: &[&[u8]]) -> Result<ScanArgs, Reply> {
        let args: Vec<Vec<u8>> = request(args).args;
        scan_args(&args).map_err(|refusal| match refusal {
            Action::Reply(r) => r,
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn scan_options() {
        assert_eq!(
            parsed(&[b"SCAN", b"0"]),
            Ok(ScanArgs {
                cursor: 0,
                pattern: None,
                count: 10,
                keep: true
            })
        );
        assert_eq!(
            parsed(&[
                b"scan",
                b"18446744073709551615",
                b"match",
                b"k*",
                b"COUNT",
                b"100",
                b"type",
                b"hash"
            ]),
            Ok(ScanArgs {
                cursor: u64::MAX,
                pattern: Some(b"k*".to_vec()),
                count: 100,
                keep: false
            })
        );
        assert!(matches!(
            parsed(&[b"scan", b"0", b"MATCH", b"*"]),
            Ok(ScanArgs { pattern: None, .. })
        ));
        for (args, text) in [
            (&[&b"scan"[..], b"x"][..], "ERR invalid cursor"),
            (&[b"scan", b"-1"], "ERR invalid cursor"),
            (&[b"scan", b"18446744073709551616"], "ERR invalid cursor"),
            (&[b"scan", b"0", b"count", b"0"], "ERR syntax error"),
            (
                &[b"scan", b"0", b"count", b"x"],
                "ERR value is not an integer or out of range",
            ),
            (&[b"scan", b"0", b"match"], "ERR syntax error"),
            (&[b"scan", b"0", b"limit", b"3"], "ERR syntax error"),
        ] {
            assert_eq!(parsed(args), Err(err(text)), "{args:?}");
        }
    }

    #[test]
    fn flushdb_and_flushall_delete_every_key() {
        let mut fake = Fake::default();
        let s = &mut session();
        fake.run(s, &[b"MSET", b"a", b"1", b"b", b"2"]);
        assert_eq!(fake.run(s, &[b"FLUSHDB"]), Reply::ok());
        assert_eq!(fake.run(s, &[b"DBSIZE"]), Reply::Integer(0));
        fake.run(s, &[b"SET", b"c", b"3"]);
        assert_eq!(fake.run(s, &[b"flushall", b"async"]), Reply::ok());
        assert_eq!(fake.run(s, &[b"GET", b"c"]), Reply::Null);
        assert_eq!(
            fake.run(s, &[b"FLUSHALL", b"LATER"]),
            Reply::Error("ERR syntax error".into())
        );
    }

    #[test]
    fn type_and_memory_usage() {
        let mut fake = Fake::default();
        let s = &mut session();
        assert_eq!(fake.run(s, &[b"TYPE", b"k"]), Reply::Simple("none".into()));
        assert_eq!(fake.run(s, &[b"MEMORY", b"USAGE", b"k"]), Reply::Null);
        fake.run(s, &[b"SET", b"k", b"12345"]);
        assert_eq!(
            fake.run(s, &[b"type", b"k"]),
            Reply::Simple("string".into())
        );
        assert_eq!(
            fake.run(s, &[b"memory", b"usage", b"k", b"SAMPLES", b"0"]),
            Reply::Integer((1 + 5 + PER_KEY_OVERHEAD) as i64)
        );
        assert_eq!(
            fake.run(s, &[b"memory", b"usage", b"k", b"SAMPLES"]),
            err("ERR syntax error")
        );
        assert_eq!(
            fake.run(s, &[b"memory", b"usage", b"k", b"SAMPLES", b"x"]),
            err("ERR value is not an integer or out of range")
        );
        fake.run(s, &[b"DEL", b"k"]);
        assert_eq!(fake.run(s, &[b"TYPE", b"k"]), Reply::Simple("none".into()));
    }

    #[test]
    fn a_scan_returns_the_keys_unless_another_type_is_asked_for() {
        let mut fake = Fake::default();
        let s = &mut session();
        fake.run(s, &[b"SET", b"a", b"1"]);
        assert_eq!(
            fake.run(s, &[b"SCAN", b"0"]),
            Reply::Array(vec![bulk_of(b"0"), Reply::Array(vec![bulk_of(b"a")])])
        );
        assert_eq!(
            fake.run(s, &[b"SCAN", b"0", b"TYPE", b"hash"]),
            Reply::Array(vec![bulk_of(b"0"), Reply::Array(Vec::new())])
        );
    }
}
