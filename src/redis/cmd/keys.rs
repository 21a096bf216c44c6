//! The keyspace commands: `DEL`, `UNLINK`, `EXISTS`, `TOUCH`, `TYPE`,
//! `KEYS`, `SCAN`, `RANDOMKEY`, `DBSIZE`, `RENAME`, `RENAMENX`, `COPY`,
//! `MOVE`, `SWAPDB` (refused), `FLUSHDB`/`FLUSHALL`, and `MEMORY USAGE`
//! (an estimate of what a key costs). Each parses its arguments here and
//! returns the work that runs on the store thread and builds its reply.
//!
//! Every key is in the connection's selected database: the
//! [`Db`] maps keys into it, so only the commands that reach another
//! database (`MOVE`, `COPY ... DB`, `FLUSHALL`) say anything about
//! databases. A rename, a copy or a move is a put and (for the first and
//! last) a delete, made together on this node and replicated as two
//! writes.
//!
//! They must never touch the map directly: a delete goes through
//! `Db::delete`, so it is clocked, replicated and logged like any other
//! write.

use crate::engine::{Database, Db};
use crate::redis::cmd::introspection::{container, help_entry};
use crate::redis::command::{
    arg, bulks, error, multiple, not_an_integer, optional, parse_i64, refused, syntax_error, token,
    Action, Answer, Arg, Call, Command, Docs, Facts, KeyPositions, Tally,
};
use crate::redis::glob::glob_match;
use crate::redis::resp::Reply;
use crate::store::WriteError;

const ALL_KEYS: KeyPositions = KeyPositions::new(1, -1, 1);

/// What this group's docs say unless an entry says otherwise.
const DOCS: Docs = Docs::in_group("generic");

/// `[ASYNC | SYNC]` of FLUSHDB and FLUSHALL in `COMMAND DOCS`.
const FLUSH_TYPE: Arg = optional(Arg {
    parts: &[
        token("ASYNC", arg("async", "pure-token")),
        token("SYNC", arg("sync", "pure-token")),
    ],
    ..arg("flush-type", "oneof")
});

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
        flags: &["write", "fast"],
        acl: &["@keyspace", "@write", "@fast"],
        keys: ALL_KEYS,
        docs: Docs {
            summary: "Delete keys (netdb: the same as DEL); the number that existed",
            since: "4.0.0",
            args: &[multiple(arg("key", "key"))],
            ..DOCS
        },
        ..Command::new("unlink", -2, del)
    },
    Command {
        flags: &["readonly", "fast"],
        acl: &["@keyspace", "@read", "@fast"],
        keys: ALL_KEYS,
        docs: Docs {
            summary: "Count the keys that exist (netdb keeps no access times)",
            since: "3.2.1",
            args: &[multiple(arg("key", "key"))],
            ..DOCS
        },
        ..Command::new("touch", -2, exists)
    },
    Command {
        flags: &["readonly"],
        acl: &["@keyspace", "@read", "@slow"],
        docs: Docs {
            summary: "Return a random key from the keyspace",
            ..DOCS
        },
        ..Command::new("randomkey", 1, randomkey)
    },
    Command {
        flags: &["write"],
        acl: &["@keyspace", "@write", "@slow"],
        keys: KeyPositions::new(1, 2, 1),
        docs: Docs {
            summary: "Rename a key (netdb: a put of the new key and a delete of the old)",
            args: &[arg("key", "key"), arg("newkey", "key")],
            ..DOCS
        },
        ..Command::new("rename", 3, rename)
    },
    Command {
        flags: &["write", "fast"],
        acl: &["@keyspace", "@write", "@fast"],
        keys: KeyPositions::new(1, 2, 1),
        docs: Docs {
            summary: "Rename a key, only if the new key does not exist (on this node)",
            args: &[arg("key", "key"), arg("newkey", "key")],
            ..DOCS
        },
        ..Command::new("renamenx", 3, renamenx)
    },
    Command {
        flags: &["write"],
        acl: &["@keyspace", "@write", "@slow"],
        keys: KeyPositions::new(1, 2, 1),
        docs: Docs {
            summary: "Copy a key",
            since: "6.2.0",
            args: &[
                arg("source", "key"),
                arg("destination", "key"),
                optional(token("DB", arg("destination-db", "integer"))),
                optional(token("REPLACE", arg("replace", "pure-token"))),
            ],
            ..DOCS
        },
        ..Command::new("copy", -3, copy)
    },
    Command {
        flags: &["write", "fast"],
        acl: &["@keyspace", "@write", "@fast"],
        keys: KeyPositions::new(1, 1, 1),
        docs: Docs {
            summary: "Move a key to another database",
            args: &[arg("key", "key"), arg("db", "integer")],
            ..DOCS
        },
        ..Command::new("move", 3, move_key)
    },
    Command {
        flags: &["write", "fast"],
        acl: &["@keyspace", "@write", "@fast", "@dangerous"],
        docs: Docs {
            summary: "Swaps two databases (netdb: refused, see the README)",
            since: "4.0.0",
            group: "server",
            args: &[arg("index1", "integer"), arg("index2", "integer")],
        },
        ..Command::new("swapdb", 3, swapdb)
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
            summary: "Return the number of keys in the selected database",
            group: "server",
            ..DOCS
        },
        ..Command::new("dbsize", 1, dbsize)
    },
    Command {
        flags: &["write"],
        acl: &["@keyspace", "@write", "@slow", "@dangerous"],
        docs: Docs {
            summary: "Delete every key of the selected database (netdb: one delete per \
                      key, replicated to every node like any delete; ASYNC and SYNC are the \
                      same)",
            group: "server",
            args: &[FLUSH_TYPE],
            ..DOCS
        },
        ..Command::new("flushdb", -1, flush)
    },
    Command {
        flags: &["write"],
        acl: &["@keyspace", "@write", "@slow", "@dangerous"],
        docs: Docs {
            summary: "Delete every key of every database (as FLUSHDB)",
            group: "server",
            args: &[FLUSH_TYPE],
            ..DOCS
        },
        ..Command::new("flushall", -1, flushall)
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

/// `FLUSHDB [ASYNC|SYNC]`: a delete of every live key of the selected
/// database, in one store command (nothing comes between), each delete
/// clocked, logged and replicated, so the whole cluster is emptied of
/// what this node held, as a Redis primary's flush empties its replicas.
/// Each deletes the version this node held, not the key (see
/// [`crate::store::Store::flush_delete`]): a write made meanwhile on
/// another node, which this node had not seen, survives.
fn flush(call: Call<'_>) -> Action {
    if let Err(refusal) = flush_mode(&call.args) {
        return refusal;
    }
    Action::Store(Box::new(|db| match db.flush_database() {
        Ok(()) => Reply::ok().into(),
        Err(e) => refused(&e).into(),
    }))
}

/// `FLUSHALL [ASYNC|SYNC]`: [`flush`] of every database at once.
fn flushall(call: Call<'_>) -> Action {
    if let Err(refusal) = flush_mode(&call.args) {
        return refusal;
    }
    Action::Store(Box::new(|db| match db.delete_everything() {
        Ok(()) => Reply::ok().into(),
        Err(e) => refused(&e).into(),
    }))
}

/// Checks a flush's `ASYNC` or `SYNC` (the same thing here).
fn flush_mode(args: &[Vec<u8>]) -> Result<(), Action> {
    match args.get(1).map(|a| a.to_ascii_uppercase()) {
        None => Ok(()),
        Some(mode) if args.len() == 2 && (mode == b"ASYNC" || mode == b"SYNC") => Ok(()),
        Some(_) => Err(syntax_error()),
    }
}

/// `RANDOMKEY`: a key of the selected database, or null.
fn randomkey(_: Call<'_>) -> Action {
    Action::Store(Box::new(|db| {
        db.random_key().map_or(Reply::Null, Reply::Bulk).into()
    }))
}

/// `RENAME key newkey`.
fn rename(call: Call<'_>) -> Action {
    rename_as(call, false)
}

/// `RENAMENX key newkey`: only if `newkey` does not exist (here, now).
fn renamenx(call: Call<'_>) -> Action {
    rename_as(call, true)
}

/// A rename, refused (`RENAMENX`: 0) when `newkey` exists if `nx`. In a
/// multi-master store it is a put of the new key and a delete of the
/// old: a write of the old key on another node that this node has not
/// seen survives the delete, as with any concurrent delete.
fn rename_as(mut call: Call<'_>, nx: bool) -> Action {
    let to = call.args.swap_remove(2);
    let from = call.args.swap_remove(1);
    Action::Store(Box::new(move |db| {
        let Some(value) = db.get(&from).map(<[u8]>::to_vec) else {
            return Reply::Error("ERR no such key".into()).into();
        };
        let done = if nx { Reply::Integer(1) } else { Reply::ok() };
        if from == to {
            return if nx { Reply::Integer(0) } else { done }.into();
        }
        if nx && db.exists(&to) {
            return Reply::Integer(0).into();
        }
        let expires = db.expiry(&from);
        match (db.put_expiring(&to, &value, expires)).and_then(|()| db.delete(&from)) {
            Ok(()) => done.into(),
            Err(e) => refused(&e).into(),
        }
    }))
}

/// Writes `value` under `key` in database `to`, expiring at `expires` if
/// given (a key keeps its expiry when renamed, copied or moved, as in
/// Redis), and comes back to the database the command is in.
fn copy_value(
    db: &mut Db<'_>,
    value: &[u8],
    expires: Option<u64>,
    to: Database,
    key: &[u8],
) -> Result<(), WriteError> {
    db.in_database(to, |db| db.put_expiring(key, value, expires))
}

/// Whether `key` exists in database `to`.
fn exists_in(db: &mut Db<'_>, to: Database, key: &[u8]) -> bool {
    db.in_database(to, |db| db.exists(key))
}

/// A database index argument, with Redis's errors.
fn database_arg(arg: &[u8], facts: &Facts) -> Result<Database, Action> {
    match parse_i64(arg).filter(|&i| i32::try_from(i).is_ok()) {
        None => Err(not_an_integer()),
        Some(i) => Database::checked(i, facts.databases)
            .ok_or_else(|| error("ERR DB index is out of range")),
    }
}

const SAME_OBJECT: &str = "ERR source and destination objects are the same";

/// `COPY source destination [DB destination-db] [REPLACE]`: 1 if copied,
/// 0 if the source does not exist or the destination does (without
/// `REPLACE`).
fn copy(call: Call<'_>) -> Action {
    let mut to_db = None;
    let mut replace = false;
    let mut i = 3;
    while i < call.args.len() {
        let option = call.args[i].to_ascii_uppercase();
        if option == b"REPLACE" {
            replace = true;
            i += 1;
        } else if option == b"DB" && i + 1 < call.args.len() {
            match parse_i64(&call.args[i + 1]).filter(|&n| i32::try_from(n).is_ok()) {
                Some(n) => to_db = Some(n),
                None => return not_an_integer(),
            }
            i += 2;
        } else {
            return syntax_error();
        }
    }
    let here = call.session.database();
    let to = match to_db {
        None => here,
        Some(n) => match Database::checked(n, call.facts.databases) {
            Some(to) => to,
            None => return error("ERR DB index is out of range"),
        },
    };
    let (from, dest) = (call.args[1].clone(), call.args[2].clone());
    if from == dest && to == here {
        return error(SAME_OBJECT);
    }
    Action::Store(Box::new(move |db| {
        let Some(value) = db.get(&from).map(<[u8]>::to_vec) else {
            return Reply::Integer(0).into();
        };
        if !replace && exists_in(db, to, &dest) {
            return Reply::Integer(0).into();
        }
        let expires = db.expiry(&from);
        match copy_value(db, &value, expires, to, &dest) {
            Ok(()) => Reply::Integer(1).into(),
            Err(e) => refused(&e).into(),
        }
    }))
}

/// `MOVE key db`: 1 if moved, 0 if the key does not exist here or does
/// there. A put there and a delete here, replicated as two writes.
fn move_key(call: Call<'_>) -> Action {
    let to = match database_arg(&call.args[2], call.facts) {
        Ok(to) => to,
        Err(refusal) => return refusal,
    };
    if to == call.session.database() {
        return error(SAME_OBJECT);
    }
    let key = call.args[1].clone();
    Action::Store(Box::new(move |db| {
        let Some(value) = db.get(&key).map(<[u8]>::to_vec) else {
            return Reply::Integer(0).into();
        };
        if exists_in(db, to, &key) {
            return Reply::Integer(0).into();
        }
        let expires = db.expiry(&key);
        match copy_value(db, &value, expires, to, &key).and_then(|()| db.delete(&key)) {
            Ok(()) => Reply::Integer(1).into(),
            Err(e) => refused(&e).into(),
        }
    }))
}

/// `SWAPDB`: refused. Databases are namespaces of one replicated
/// keyspace; swapping two would rewrite every key of both as separate
/// writes, which other nodes would apply one by one (never at once), and
/// a write made meanwhile on another node would land in the wrong one.
fn swapdb(call: Call<'_>) -> Action {
    for index in &call.args[1..] {
        if let Err(refusal) = database_arg(index, call.facts) {
            return refusal;
        }
    }
    error(
        "ERR SWAPDB is not supported by netdb: its databases share one replicated keyspace, \
         and a swap would be a rewrite of every key of both, which other nodes could not see \
         at once",
    )
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

/// `DBSIZE`: the number of live keys of the selected database: O(1),
/// unless a peer's keys of a database other than 0 were merged since the
/// last count, which then walks the keys once (see
/// [`DatabaseSizes`](crate::engine::database::DatabaseSizes)).
fn dbsize(_call: Call<'_>) -> Action {
    Action::Store(Box::new(|db| {
        Reply::Integer(i64::try_from(db.len()).unwrap_or(i64::MAX)).into()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::cmd::testing::{bulk_of, err, request, session, Fake};
    use crate::redis::command::Session;

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

    fn ints(n: i64) -> Reply {
        Reply::Integer(n)
    }

    /// The keys a `KEYS *` finds, sorted.
    fn sorted_keys(fake: &mut Fake, s: &mut Session) -> Vec<Reply> {
        let Reply::Array(mut keys) = fake.run(s, &[b"KEYS", b"*"]) else {
            panic!("an array")
        };
        keys.sort_by_key(|k| format!("{k:?}"));
        keys
    }

    #[test]
    fn each_database_has_its_own_keys() {
        let mut fake = Fake::default();
        let (s0, s3) = (&mut session(), &mut session());
        fake.run(s3, &[b"SELECT", b"3"]);
        fake.run(s0, &[b"MSET", b"a", b"0", b"b", b"0", b"\xFFraw", b"0"]);
        fake.run(s3, &[b"MSET", b"a", b"3", b"c", b"3"]);
        assert_eq!(fake.run(s0, &[b"GET", b"a"]), bulk_of(b"0"));
        assert_eq!(fake.run(s3, &[b"GET", b"a"]), bulk_of(b"3"));
        assert_eq!(fake.run(s3, &[b"GET", b"b"]), Reply::Null);
        assert_eq!(fake.run(s0, &[b"DBSIZE"]), ints(3));
        assert_eq!(fake.run(s3, &[b"DBSIZE"]), ints(2));
        assert_eq!(fake.run(s3, &[b"EXISTS", b"a", b"b", b"c", b"c"]), ints(3));
        assert_eq!(fake.run(s3, &[b"TOUCH", b"a", b"b"]), ints(1));
        assert_eq!(
            sorted_keys(&mut fake, s0),
            vec![bulk_of(b"\xFFraw"), bulk_of(b"a"), bulk_of(b"b")]
        );
        assert_eq!(
            sorted_keys(&mut fake, s3),
            vec![bulk_of(b"a"), bulk_of(b"c")]
        );
        let Reply::Array(scan) = fake.run(s3, &[b"SCAN", b"0", b"COUNT", b"1000"]) else {
            panic!("an array")
        };
        let Reply::Array(found) = &scan[1] else {
            panic!("keys")
        };
        assert_eq!(found.len(), 2);
        assert!(found.contains(&bulk_of(b"a")) && found.contains(&bulk_of(b"c")));
        assert_eq!(fake.run(s3, &[b"UNLINK", b"a", b"zz"]), ints(1));
        assert_eq!(fake.run(s0, &[b"GET", b"a"]), bulk_of(b"0"));
        // FLUSHDB empties the selected database only; FLUSHALL every one.
        fake.run(s3, &[b"SET", b"a", b"3"]);
        assert_eq!(fake.run(s3, &[b"FLUSHDB"]), Reply::ok());
        assert_eq!(fake.run(s3, &[b"DBSIZE"]), ints(0));
        assert_eq!(fake.run(s0, &[b"DBSIZE"]), ints(3));
        fake.run(s3, &[b"SET", b"a", b"3"]);
        assert_eq!(fake.run(s0, &[b"FLUSHALL", b"SYNC"]), Reply::ok());
        assert_eq!(fake.run(s0, &[b"DBSIZE"]), ints(0));
        assert_eq!(fake.run(s3, &[b"DBSIZE"]), ints(0));
        assert_eq!(fake.run(s3, &[b"GET", b"a"]), Reply::Null);
    }

    #[test]
    fn a_pipeline_writes_each_command_where_it_was_sent() {
        let mut fake = Fake::default();
        let s = &mut session();
        let replies = fake.pipeline(
            s,
            &[
                &[b"SELECT", b"1"],
                &[b"SET", b"a", b"1"],
                &[b"SELECT", b"2"],
                &[b"SET", b"a", b"2"],
                &[b"SELECT", b"0"],
                &[b"SET", b"a", b"0"],
            ],
        );
        assert!(replies.iter().all(|r| *r == Reply::ok()), "{replies:?}");
        for (db, value) in [(&b"0"[..], &b"0"[..]), (b"1", b"1"), (b"2", b"2")] {
            fake.run(s, &[b"SELECT", db]);
            assert_eq!(fake.run(s, &[b"GET", b"a"]), bulk_of(value));
            assert_eq!(fake.run(s, &[b"DBSIZE"]), ints(1));
        }
    }

    #[test]
    fn a_transaction_selects_as_it_runs() {
        let mut fake = Fake::default();
        let s = &mut session();
        for args in [
            &[&b"MULTI"[..]][..],
            &[b"SET", b"a", b"0"],
            &[b"SELECT", b"1"],
            &[b"SET", b"a", b"1"],
            &[b"SELECT", b"0"],
            &[b"GET", b"a"],
        ] {
            fake.run(s, args);
        }
        assert_eq!(
            fake.run(s, &[b"EXEC"]),
            Reply::Array(vec![
                Reply::ok(),
                Reply::ok(),
                Reply::ok(),
                Reply::ok(),
                bulk_of(b"0")
            ])
        );
        fake.run(s, &[b"SELECT", b"1"]);
        assert_eq!(fake.run(s, &[b"GET", b"a"]), bulk_of(b"1"));
        // A transaction sent from database 1 runs there.
        fake.run(s, &[b"MULTI"]);
        fake.run(s, &[b"INCR", b"n"]);
        fake.run(s, &[b"SELECT", b"0"]);
        fake.run(s, &[b"INCR", b"n"]);
        fake.run(s, &[b"INCR", b"n"]);
        fake.run(s, &[b"EXEC"]);
        assert_eq!(fake.run(s, &[b"GET", b"n"]), bulk_of(b"2"));
        fake.run(s, &[b"SELECT", b"1"]);
        assert_eq!(fake.run(s, &[b"GET", b"n"]), bulk_of(b"1"));
    }

    #[test]
    fn rename_and_renamenx() {
        let mut fake = Fake::default();
        let s = &mut session();
        assert_eq!(
            fake.run(s, &[b"RENAME", b"a", b"b"]),
            err("ERR no such key")
        );
        assert_eq!(
            fake.run(s, &[b"RENAMENX", b"a", b"b"]),
            err("ERR no such key")
        );
        fake.run(s, &[b"SET", b"a", b"1"]);
        assert_eq!(fake.run(s, &[b"RENAME", b"a", b"a"]), Reply::ok());
        assert_eq!(fake.run(s, &[b"RENAMENX", b"a", b"a"]), ints(0));
        assert_eq!(fake.run(s, &[b"RENAME", b"a", b"b"]), Reply::ok());
        assert_eq!(fake.run(s, &[b"GET", b"a"]), Reply::Null);
        assert_eq!(fake.run(s, &[b"GET", b"b"]), bulk_of(b"1"));
        fake.run(s, &[b"SET", b"c", b"2"]);
        assert_eq!(fake.run(s, &[b"RENAMENX", b"b", b"c"]), ints(0));
        assert_eq!(fake.run(s, &[b"RENAME", b"b", b"c"]), Reply::ok());
        assert_eq!(fake.run(s, &[b"GET", b"c"]), bulk_of(b"1"));
        assert_eq!(fake.run(s, &[b"RENAMENX", b"c", b"d"]), ints(1));
        assert_eq!(fake.run(s, &[b"DBSIZE"]), ints(1));
        // In another database, there.
        fake.run(s, &[b"SELECT", b"5"]);
        fake.run(s, &[b"SET", b"x", b"5"]);
        assert_eq!(fake.run(s, &[b"RENAME", b"x", b"y"]), Reply::ok());
        assert_eq!(sorted_keys(&mut fake, s), vec![bulk_of(b"y")]);
    }

    #[test]
    fn copy_within_and_across_databases() {
        let mut fake = Fake::default();
        let s = &mut session();
        assert_eq!(fake.run(s, &[b"COPY", b"a", b"b"]), ints(0));
        fake.run(s, &[b"SET", b"a", b"1"]);
        assert_eq!(fake.run(s, &[b"COPY", b"a", b"b"]), ints(1));
        assert_eq!(fake.run(s, &[b"GET", b"b"]), bulk_of(b"1"));
        fake.run(s, &[b"SET", b"a", b"2"]);
        assert_eq!(fake.run(s, &[b"COPY", b"a", b"b"]), ints(0));
        assert_eq!(fake.run(s, &[b"copy", b"a", b"b", b"replace"]), ints(1));
        assert_eq!(fake.run(s, &[b"GET", b"b"]), bulk_of(b"2"));
        assert_eq!(fake.run(s, &[b"COPY", b"a", b"a", b"DB", b"4"]), ints(1));
        assert_eq!(
            fake.run(s, &[b"COPY", b"a", b"a"]),
            err("ERR source and destination objects are the same")
        );
        assert_eq!(
            fake.run(s, &[b"COPY", b"a", b"a", b"DB", b"0"]),
            err("ERR source and destination objects are the same")
        );
        assert_eq!(
            fake.run(s, &[b"COPY", b"a", b"b", b"DB", b"16"]),
            err("ERR DB index is out of range")
        );
        assert_eq!(
            fake.run(s, &[b"COPY", b"a", b"b", b"DB", b"x"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            fake.run(s, &[b"COPY", b"a", b"b", b"DB"]),
            err("ERR syntax error")
        );
        assert_eq!(
            fake.run(s, &[b"COPY", b"a", b"b", b"NOW"]),
            err("ERR syntax error")
        );
        fake.run(s, &[b"SELECT", b"4"]);
        assert_eq!(fake.run(s, &[b"GET", b"a"]), bulk_of(b"2"));
        assert_eq!(fake.run(s, &[b"DBSIZE"]), ints(1));
    }

    #[test]
    fn move_puts_a_key_in_another_database() {
        let mut fake = Fake::default();
        let s = &mut session();
        assert_eq!(fake.run(s, &[b"MOVE", b"k", b"1"]), ints(0));
        fake.run(s, &[b"SET", b"k", b"v"]);
        assert_eq!(
            fake.run(s, &[b"MOVE", b"k", b"0"]),
            err("ERR source and destination objects are the same")
        );
        assert_eq!(
            fake.run(s, &[b"MOVE", b"k", b"16"]),
            err("ERR DB index is out of range")
        );
        assert_eq!(
            fake.run(s, &[b"MOVE", b"k", b"one"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(fake.run(s, &[b"MOVE", b"k", b"1"]), ints(1));
        assert_eq!(fake.run(s, &[b"GET", b"k"]), Reply::Null);
        fake.run(s, &[b"SET", b"k", b"again"]);
        assert_eq!(
            fake.run(s, &[b"MOVE", b"k", b"1"]),
            ints(0),
            "there already"
        );
        fake.run(s, &[b"SELECT", b"1"]);
        assert_eq!(fake.run(s, &[b"GET", b"k"]), bulk_of(b"v"));
        assert_eq!(fake.run(s, &[b"MOVE", b"k", b"0"]), ints(0));
        assert_eq!(fake.run(s, &[b"MOVE", b"k", b"2"]), ints(1));
        assert_eq!(fake.run(s, &[b"DBSIZE"]), ints(0));
    }

    #[test]
    fn randomkey_picks_from_the_selected_database() {
        let mut fake = Fake::default();
        let s = &mut session();
        assert_eq!(fake.run(s, &[b"RANDOMKEY"]), Reply::Null);
        for i in 0..50 {
            let key = format!("zero-{i}");
            fake.run(s, &[b"SET", key.as_bytes(), b"v"]);
        }
        fake.run(s, &[b"SELECT", b"7"]);
        assert_eq!(fake.run(s, &[b"RANDOMKEY"]), Reply::Null);
        fake.run(s, &[b"SET", b"only", b"v"]);
        for _ in 0..20 {
            assert_eq!(fake.run(s, &[b"RANDOMKEY"]), bulk_of(b"only"));
        }
        fake.run(s, &[b"SELECT", b"0"]);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let Reply::Bulk(key) = fake.run(s, &[b"RANDOMKEY"]) else {
                panic!("a key")
            };
            assert!(key.starts_with(b"zero-"), "{key:?}");
            seen.insert(key);
        }
        assert!(seen.len() > 1, "always the same key: {seen:?}");
    }

    #[test]
    fn swapdb_is_refused_and_says_why() {
        let Reply::Error(text) = crate::redis::cmd::testing::run(&[b"SWAPDB", b"0", b"1"]) else {
            panic!("an error")
        };
        assert!(
            text.starts_with("ERR SWAPDB is not supported by netdb"),
            "{text}"
        );
        assert_eq!(
            crate::redis::cmd::testing::run(&[b"SWAPDB", b"0", b"99"]),
            err("ERR DB index is out of range")
        );
    }
}
