//! The string commands: `GET`, `SET` (with `NX`, `XX`, `GET` and the
//! expiry options `EX`, `PX`, `EXAT`, `PXAT`, `KEEPTTL`), `SETNX`, `SETEX`,
//! `PSETEX`, `GETSET`, `GETDEL`, `GETEX`, `MGET`, `MSET`, `MSETNX`, `APPEND`, `STRLEN`,
//! `GETRANGE`, `SETRANGE`, and the counters `INCR`, `DECR`, `INCRBY`,
//! `DECRBY`, `INCRBYFLOAT`, with Redis's replies and error texts. Each
//! parses its arguments here and returns the work that runs on the store
//! thread and builds its reply.
//!
//! A command's work runs whole on the one store thread, so a read and the
//! write it decides (`INCR`, `SETNX`, `APPEND`) cannot be split by another
//! client of the same node: each is atomic on its node. Across nodes they
//! are plain writes: two nodes that increment the same counter at once
//! each write their own sum, and the replicas converge last-write-wins on
//! one of them, so one increment is lost (a counter type whose concurrent
//! increments all count is a later change). `SETNX` and `SET NX` decide on
//! the local node only: they are no distributed lock.
//!
//! They must never touch the map directly: a write goes through
//! `Db::put` or `Db::delete`, so it is clocked, replicated and logged
//! like any other. As in Redis, `SET`, `GETSET` and `MSET` clear a key's
//! expiry, while `APPEND`, `SETRANGE` and the counters keep it (see
//! [`crate::redis::cmd::expiry`]).

use crate::engine::Db;
use crate::redis::cmd::expiry::ExpiryArg;
use crate::redis::command::{
    arg, error, multiple, not_an_integer, optional, refused, syntax_error, token, Action, Answer,
    Arg, Call, Command, Docs, KeyPositions, Tally,
};
use crate::redis::resp::{double_text, parse_int, Reply};
use crate::store::IncrementError;

const KEY: Arg = arg("key", "key");
const VALUE: Arg = arg("value", "string");
const ONE_KEY: KeyPositions = KeyPositions::new(1, 1, 1);
const READ: &[&str] = &["@read", "@string", "@fast"];
const WRITE_FAST: &[&str] = &["@write", "@string", "@fast"];
const WRITE_SLOW: &[&str] = &["@write", "@string", "@slow"];
const DENYOOM_FAST: &[&str] = &["write", "denyoom", "fast"];

/// The expiry options `SET` and `GETEX` share, in `COMMAND DOCS`.
const EX: Arg = token("EX", arg("seconds", "integer"));
const PX: Arg = token("PX", arg("milliseconds", "integer"));
const EXAT: Arg = token("EXAT", arg("unix-time-seconds", "unix-time"));
const PXAT: Arg = token("PXAT", arg("unix-time-milliseconds", "unix-time"));

/// What this group's docs say unless an entry says otherwise.
const DOCS: Docs = Docs::in_group("string");

/// Redis's error for a counter that is not an integer.
const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
/// Redis's error for a value or increment that is not a float.
const NOT_A_FLOAT: &str = "ERR value is not a valid float";

/// The string group's entries.
pub const COMMANDS: &[Command] = &[
    Command {
        flags: &["readonly", "fast"],
        acl: READ,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Get the value of a key",
            args: &[KEY],
            ..DOCS
        },
        ..Command::new("get", 2, get)
    },
    Command {
        flags: &["write", "denyoom"],
        acl: WRITE_SLOW,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Set the string value of a key",
            args: &[
                KEY,
                VALUE,
                optional(Arg {
                    parts: &[
                        token("NX", arg("nx", "pure-token")),
                        token("XX", arg("xx", "pure-token")),
                    ],
                    ..arg("condition", "oneof")
                }),
                optional(token("GET", arg("get", "pure-token"))),
                optional(Arg {
                    parts: &[
                        EX,
                        PX,
                        EXAT,
                        PXAT,
                        token("KEEPTTL", arg("keepttl", "pure-token")),
                    ],
                    ..arg("expiration", "oneof")
                }),
            ],
            ..DOCS
        },
        ..Command::new("set", -3, set)
    },
    Command {
        flags: &["write", "denyoom"],
        acl: WRITE_SLOW,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Set the value and expiration of a key",
            since: "2.0.0",
            args: &[KEY, arg("seconds", "integer"), VALUE],
            ..DOCS
        },
        ..Command::new("setex", 4, setex)
    },
    Command {
        flags: &["write", "denyoom"],
        acl: WRITE_SLOW,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Set the value and expiration in milliseconds of a key",
            since: "2.6.0",
            args: &[KEY, arg("milliseconds", "integer"), VALUE],
            ..DOCS
        },
        ..Command::new("psetex", 4, setex)
    },
    Command {
        flags: &["write", "fast"],
        acl: WRITE_FAST,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Get the value of a key and optionally set its expiration",
            since: "6.2.0",
            args: &[
                KEY,
                optional(Arg {
                    parts: &[
                        EX,
                        PX,
                        EXAT,
                        PXAT,
                        token("PERSIST", arg("persist", "pure-token")),
                    ],
                    ..arg("expiration", "oneof")
                }),
            ],
            ..DOCS
        },
        ..Command::new("getex", -2, getex)
    },
    Command {
        flags: DENYOOM_FAST,
        acl: WRITE_FAST,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Set the value of a key, only if the key does not exist",
            args: &[KEY, VALUE],
            ..DOCS
        },
        ..Command::new("setnx", 3, setnx)
    },
    Command {
        flags: DENYOOM_FAST,
        acl: WRITE_FAST,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Set the string value of a key and return its old value",
            args: &[KEY, VALUE],
            ..DOCS
        },
        ..Command::new("getset", 3, getset)
    },
    Command {
        flags: &["write", "fast"],
        acl: WRITE_FAST,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Get the value of a key and delete the key",
            since: "6.2.0",
            args: &[KEY],
            ..DOCS
        },
        ..Command::new("getdel", 2, getdel)
    },
    Command {
        flags: &["readonly", "fast"],
        acl: READ,
        keys: KeyPositions::new(1, -1, 1),
        docs: Docs {
            summary: "Get the values of all the given keys",
            args: &[multiple(KEY)],
            ..DOCS
        },
        ..Command::new("mget", -2, mget)
    },
    Command {
        flags: &["write", "denyoom"],
        acl: WRITE_SLOW,
        keys: KeyPositions::new(1, -1, 2),
        docs: Docs {
            summary: "Set multiple keys to multiple values",
            since: "1.0.1",
            args: &[PAIRS],
            ..DOCS
        },
        ..Command::new("mset", -3, mset)
    },
    Command {
        flags: &["write", "denyoom"],
        acl: WRITE_SLOW,
        keys: KeyPositions::new(1, -1, 2),
        docs: Docs {
            summary: "Set multiple keys to multiple values, only if none of the keys exist",
            since: "1.0.1",
            args: &[PAIRS],
            ..DOCS
        },
        ..Command::new("msetnx", -3, msetnx)
    },
    Command {
        flags: DENYOOM_FAST,
        acl: WRITE_FAST,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Append a value to a key",
            since: "2.0.0",
            args: &[KEY, VALUE],
            ..DOCS
        },
        ..Command::new("append", 3, append)
    },
    Command {
        flags: &["readonly", "fast"],
        acl: READ,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Get the length of the value stored in a key",
            since: "2.2.0",
            args: &[KEY],
            ..DOCS
        },
        ..Command::new("strlen", 2, strlen)
    },
    Command {
        flags: &["readonly"],
        acl: &["@read", "@string", "@slow"],
        keys: ONE_KEY,
        docs: Docs {
            summary: "Get a substring of the string stored at a key",
            since: "2.4.0",
            args: &[KEY, arg("start", "integer"), arg("end", "integer")],
            ..DOCS
        },
        ..Command::new("getrange", 4, getrange)
    },
    Command {
        flags: &["write", "denyoom"],
        acl: WRITE_SLOW,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Overwrite part of a string at key starting at the specified offset",
            since: "2.2.0",
            args: &[KEY, arg("offset", "integer"), VALUE],
            ..DOCS
        },
        ..Command::new("setrange", 4, setrange)
    },
    Command {
        flags: DENYOOM_FAST,
        acl: WRITE_FAST,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Increment the integer value of a key by one (last-write-wins across nodes)",
            args: &[KEY],
            ..DOCS
        },
        ..Command::new("incr", 2, incr)
    },
    Command {
        flags: DENYOOM_FAST,
        acl: WRITE_FAST,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Decrement the integer value of a key by one (last-write-wins across nodes)",
            args: &[KEY],
            ..DOCS
        },
        ..Command::new("decr", 2, decr)
    },
    Command {
        flags: DENYOOM_FAST,
        acl: WRITE_FAST,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Increment the integer value of a key by the given amount",
            args: &[KEY, arg("increment", "integer")],
            ..DOCS
        },
        ..Command::new("incrby", 3, incrby)
    },
    Command {
        flags: DENYOOM_FAST,
        acl: WRITE_FAST,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Decrement the integer value of a key by the given number",
            args: &[KEY, arg("decrement", "integer")],
            ..DOCS
        },
        ..Command::new("decrby", 3, decrby)
    },
    Command {
        flags: DENYOOM_FAST,
        acl: WRITE_FAST,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Increment the float value of a key by the given amount",
            since: "2.6.0",
            args: &[KEY, arg("increment", "double")],
            ..DOCS
        },
        ..Command::new("incrbyfloat", 3, incrbyfloat)
    },
];

/// `key value [key value ...]` in `COMMAND DOCS`.
const PAIRS: Arg = Arg {
    multiple: true,
    parts: &[KEY, VALUE],
    ..arg("data", "block")
};

fn get(mut call: Call<'_>) -> Action {
    let key = call.args.swap_remove(1);
    Action::Store(Box::new(move |db| {
        let mut tally = Tally::default();
        let reply = value(db.get(&key), &mut tally);
        Answer { reply, tally }
    }))
}

/// `SET`'s condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    /// Only if the key has no value.
    Nx,
    /// Only if it has one.
    Xx,
}

/// What a `SET` or `GETEX` asks of the key's expiry.
#[derive(Debug, Clone, Default, PartialEq)]
enum ExpiryOption {
    /// None (`SET`: the expiry is cleared; `GETEX`: left as it is).
    #[default]
    Unsaid,
    /// Expire then.
    At(ExpiryArg),
    /// Keep the expiry the key has (`SET ... KEEPTTL`).
    Keep,
    /// Clear it (`GETEX ... PERSIST`).
    Persist,
    /// A time Redis refuses (not an integer, not above zero): this is
    /// the reply, given once every option has been read, since a syntax
    /// error later in the command comes first (and `GETEX` of a missing
    /// key answers null whatever the time), as in Redis.
    BadTime(Reply),
}

/// What a `SET` asks for beyond the key and value.
#[derive(Debug, Clone, Default, PartialEq)]
struct SetOptions {
    condition: Option<Condition>,
    /// Answer the old value rather than `OK`.
    get: bool,
    expiry: ExpiryOption,
}

/// Reads an expiry option at `args[*i]` (moving `i` past its time) if it
/// is one `allowed` (`KEEPTTL` for `SET`, `PERSIST` for `GETEX`); `None`
/// if the word is not an expiry option. A second expiry option, or a
/// missing time, is a syntax error, as in Redis.
fn expiry_option(
    args: &[Vec<u8>],
    i: &mut usize,
    set: &mut ExpiryOption,
    allowed: &[u8],
    name: &str,
) -> Option<Result<(), Action>> {
    let option = args[*i].to_ascii_uppercase();
    let parsed = match option.as_slice() {
        b"EX" | b"PX" | b"EXAT" | b"PXAT" => {
            let Some(time) = args.get(*i + 1) else {
                return Some(Err(syntax_error()));
            };
            *i += 1;
            match ExpiryArg::parse_positive(&option, time, name) {
                Ok(at) => ExpiryOption::At(at),
                Err(Action::Reply(refusal)) => ExpiryOption::BadTime(refusal),
                Err(refusal) => return Some(Err(refusal)),
            }
        }
        o if o == allowed && o == b"KEEPTTL" => ExpiryOption::Keep,
        o if o == allowed && o == b"PERSIST" => ExpiryOption::Persist,
        _ => return None,
    };
    if *set != ExpiryOption::Unsaid {
        return Some(Err(syntax_error()));
    }
    *set = parsed;
    Some(Ok(()))
}

/// Reads `SET`'s options as Redis does (an unknown word, a missing
/// argument or two expiry options is a syntax error).
fn set_options(args: &[Vec<u8>]) -> Result<SetOptions, Action> {
    let mut options = SetOptions::default();
    let mut i = 3;
    while i < args.len() {
        let option = args[i].to_ascii_uppercase();
        match option.as_slice() {
            b"NX" | b"XX" => {
                let wanted = if option == b"NX" {
                    Condition::Nx
                } else {
                    Condition::Xx
                };
                if options.condition.is_some_and(|c| c != wanted) {
                    return Err(syntax_error());
                }
                options.condition = Some(wanted);
            }
            b"GET" => options.get = true,
            _ => match expiry_option(args, &mut i, &mut options.expiry, b"KEEPTTL", "set") {
                Some(result) => result?,
                None => return Err(syntax_error()),
            },
        }
        i += 1;
    }
    if let ExpiryOption::BadTime(refusal) = options.expiry {
        return Err(Action::Reply(refusal));
    }
    Ok(options)
}

/// Writes `value` under `key` with the expiry `option` asks for (`Unsaid`
/// clears it, as `SET` does); `Err` is the reply (an expiry that
/// overflows once made absolute).
fn put_with(
    db: &mut Db<'_>,
    key: &[u8],
    value: &[u8],
    option: ExpiryOption,
    name: &str,
) -> Result<(), Reply> {
    let written = match option {
        ExpiryOption::Unsaid | ExpiryOption::Persist => db.put(key, value),
        ExpiryOption::Keep => db.put_keeping_expiry(key, value),
        ExpiryOption::At(at) => {
            let at = at.resolve_positive(db.now_ms(), name)?;
            db.put_expiring(key, value, Some(at))
        }
        ExpiryOption::BadTime(refusal) => return Err(refusal),
    };
    written.map_err(|e| refused(&e))
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`.
fn set(call: Call<'_>) -> Action {
    let options = match set_options(&call.args) {
        Ok(options) => options,
        Err(refusal) => return refusal,
    };
    let mut args = call.args;
    args.truncate(3);
    let value = args.swap_remove(2);
    let key = args.swap_remove(1);
    Action::Store(Box::new(move |db| {
        // A plain SET neither reads nor copies the old value.
        let old = (options.get || options.condition.is_some())
            .then(|| db.get(&key).map(<[u8]>::to_vec))
            .flatten();
        let allowed = match options.condition {
            None => true,
            Some(Condition::Nx) => old.is_none(),
            Some(Condition::Xx) => old.is_some(),
        };
        if allowed {
            if let Err(reply) = put_with(db, &key, &value, options.expiry, "set") {
                return reply.into();
            }
        }
        match (options.get, allowed) {
            (true, _) => old.map_or(Reply::Null, Reply::Bulk),
            (false, true) => Reply::ok(),
            (false, false) => Reply::Null,
        }
        .into()
    }))
}

/// `SETEX key seconds value`, `PSETEX key milliseconds value`.
fn setex(mut call: Call<'_>) -> Action {
    let name = call.command.name;
    let option: &[u8] = if name == "setex" { b"EX" } else { b"PX" };
    let at = match ExpiryArg::parse_positive(option, &call.args[2], name) {
        Ok(at) => at,
        Err(refusal) => return refusal,
    };
    let value = call.args.swap_remove(3);
    let key = call.args.swap_remove(1);
    Action::Store(Box::new(move |db| {
        match put_with(db, &key, &value, ExpiryOption::At(at), name) {
            Ok(()) => Reply::ok(),
            Err(reply) => reply,
        }
        .into()
    }))
}

/// `GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]`: the value (or null),
/// its expiry changed as asked. A time already past deletes the key, as
/// in Redis.
fn getex(mut call: Call<'_>) -> Action {
    let mut option = ExpiryOption::Unsaid;
    let mut i = 2;
    while i < call.args.len() {
        match expiry_option(&call.args, &mut i, &mut option, b"PERSIST", "getex") {
            Some(Ok(())) => {}
            Some(Err(refusal)) => return refusal,
            None => return syntax_error(),
        }
        i += 1;
    }
    let key = call.args.swap_remove(1);
    Action::Store(Box::new(move |db| {
        let mut tally = Tally::default();
        let found = db.get(&key).map(<[u8]>::to_vec);
        let reply = value(found.as_deref(), &mut tally);
        let Some(found) = found else {
            return Answer { reply, tally };
        };
        let written = match option {
            ExpiryOption::Unsaid | ExpiryOption::Keep => Ok(()),
            ExpiryOption::Persist if db.expiry(&key).is_none() => Ok(()),
            ExpiryOption::Persist => db.put(&key, &found).map_err(|e| refused(&e)),
            ExpiryOption::BadTime(refusal) => Err(refusal),
            ExpiryOption::At(at) => match at.resolve_positive(db.now_ms(), "getex") {
                Ok(at) if at <= db.now_ms() => db.delete(&key).map_err(|e| refused(&e)),
                Ok(at) => db
                    .put_expiring(&key, &found, Some(at))
                    .map_err(|e| refused(&e)),
                Err(reply) => Err(reply),
            },
        };
        match written {
            Ok(()) => Answer { reply, tally },
            Err(reply) => reply.into(),
        }
    }))
}

/// `SETNX key value`: 1 if set, 0 if the key had a value.
fn setnx(mut call: Call<'_>) -> Action {
    let value = call.args.swap_remove(2);
    let key = call.args.swap_remove(1);
    Action::Store(Box::new(move |db| {
        if db.exists(&key) {
            return Reply::Integer(0).into();
        }
        match db.put(&key, &value) {
            Ok(()) => Reply::Integer(1),
            Err(e) => refused(&e),
        }
        .into()
    }))
}

/// `GETSET key value`: the old value (or null), and the new one set.
fn getset(mut call: Call<'_>) -> Action {
    let value = call.args.swap_remove(2);
    let key = call.args.swap_remove(1);
    Action::Store(Box::new(move |db| {
        let old = db.get(&key).map(<[u8]>::to_vec);
        match db.put(&key, &value) {
            Ok(()) => old.map_or(Reply::Null, Reply::Bulk),
            Err(e) => refused(&e),
        }
        .into()
    }))
}

/// `GETDEL key`: the value (or null), and the key deleted.
fn getdel(mut call: Call<'_>) -> Action {
    let key = call.args.swap_remove(1);
    Action::Store(Box::new(move |db| {
        let mut tally = Tally::default();
        let reply = value(db.get(&key), &mut tally);
        if reply != Reply::Null {
            if let Err(e) = db.delete(&key) {
                return refused(&e).into();
            }
        }
        Answer { reply, tally }
    }))
}

fn mget(mut call: Call<'_>) -> Action {
    let keys: Vec<Vec<u8>> = call.args.drain(1..).collect();
    Action::Store(Box::new(move |db| {
        let mut tally = Tally::default();
        // A few keys can make a reply of gigabytes (one large value asked
        // for many times): stop at the connection's output limit.
        let budget = db.reply_budget();
        // Weighed before anything is copied, so a reply over the limit
        // costs no memory at all.
        let mut weight = 16usize;
        for key in &keys {
            let size = db.get(key).map_or(0, <[u8]>::len);
            weight = weight.saturating_add(size + 16);
            if weight > budget {
                db.exceed_budget();
                return Answer {
                    reply: Reply::Null,
                    tally,
                };
            }
        }
        let values = keys.iter().map(|k| value(db.get(k), &mut tally)).collect();
        Answer {
            reply: Reply::Array(values),
            tally,
        }
    }))
}

/// Keys and the values to set them to.
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The key, value pairs of `MSET` and `MSETNX`, or the arity error.
fn pairs(call: &mut Call<'_>) -> Result<Pairs, Action> {
    if call.args.len().is_multiple_of(2) {
        return Err(call.wrong_arity());
    }
    let mut pairs = Vec::with_capacity(call.args.len() / 2);
    let mut rest = call.args.drain(1..);
    while let (Some(key), Some(value)) = (rest.next(), rest.next()) {
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// Writes every pair: `None`, or the first refusal.
fn put_all(db: &mut Db<'_>, pairs: &[(Vec<u8>, Vec<u8>)]) -> Option<Reply> {
    let mut first_refusal = None;
    for (key, value) in pairs {
        if let Err(e) = db.put(key, value) {
            first_refusal.get_or_insert_with(|| refused(&e));
        }
    }
    first_refusal
}

/// `MSET key value [key value ...]`: `+OK`, or the first refusal.
fn mset(mut call: Call<'_>) -> Action {
    let pairs = match pairs(&mut call) {
        Ok(pairs) => pairs,
        Err(refusal) => return refusal,
    };
    Action::Store(Box::new(move |db| {
        put_all(db, &pairs).unwrap_or_else(Reply::ok).into()
    }))
}

/// `MSETNX key value [key value ...]`: 1 if every key was set, 0 (and
/// none set) if any had a value.
fn msetnx(mut call: Call<'_>) -> Action {
    let pairs = match pairs(&mut call) {
        Ok(pairs) => pairs,
        Err(refusal) => return refusal,
    };
    Action::Store(Box::new(move |db| {
        if pairs.iter().any(|(key, _)| db.exists(key)) {
            return Reply::Integer(0).into();
        }
        put_all(db, &pairs).unwrap_or(Reply::Integer(1)).into()
    }))
}

/// `APPEND key value`: the new length.
fn append(mut call: Call<'_>) -> Action {
    let tail = call.args.swap_remove(2);
    let key = call.args.swap_remove(1);
    Action::Store(Box::new(move |db| {
        let mut value = db.get(&key).map(<[u8]>::to_vec).unwrap_or_default();
        value.extend_from_slice(&tail);
        match db.put_keeping_expiry(&key, &value) {
            Ok(()) => Reply::Integer(len_of(&value)),
            Err(e) => refused(&e),
        }
        .into()
    }))
}

/// `STRLEN key`: 0 for a key without a value.
fn strlen(mut call: Call<'_>) -> Action {
    let key = call.args.swap_remove(1);
    Action::Store(Box::new(move |db| {
        let mut tally = Tally::default();
        let len = match db.get(&key) {
            Some(v) => {
                tally.hits += 1;
                len_of(v)
            }
            None => {
                tally.misses += 1;
                0
            }
        };
        Answer {
            reply: Reply::Integer(len),
            tally,
        }
    }))
}

/// `GETRANGE key start end`: the bytes from `start` to `end` inclusive,
/// negative counting from the end, clamped as Redis clamps them.
fn getrange(mut call: Call<'_>) -> Action {
    let (Some(start), Some(end)) = (parse_int(&call.args[2]), parse_int(&call.args[3])) else {
        return not_an_integer();
    };
    let key = call.args.swap_remove(1);
    Action::Store(Box::new(move |db| {
        let mut tally = Tally::default();
        let reply = match db.get(&key) {
            Some(v) => {
                tally.hits += 1;
                Reply::Bulk(substring(v, start, end).to_vec())
            }
            None => {
                tally.misses += 1;
                Reply::Bulk(Vec::new())
            }
        };
        Answer { reply, tally }
    }))
}

/// Redis's `GETRANGE` arithmetic on a value.
fn substring(value: &[u8], start: i64, end: i64) -> &[u8] {
    let len = len_of(value);
    if start < 0 && end < 0 && start > end {
        return &[];
    }
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end }.max(0).min(len - 1);
    if start > end || len == 0 {
        return &[];
    }
    // Both lie in 0..len now.
    &value[start as usize..=end as usize]
}

/// `SETRANGE key offset value`: the new length.
fn setrange(mut call: Call<'_>) -> Action {
    let Some(offset) = parse_int(&call.args[2]) else {
        return not_an_integer();
    };
    let Ok(offset) = usize::try_from(offset) else {
        return error("ERR offset is out of range");
    };
    let patch = call.args.swap_remove(3);
    // Checked before anything is allocated for it, as Redis does.
    if !patch.is_empty() && offset.saturating_add(patch.len()) > call.facts.max_bulk_len {
        return error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    }
    let key = call.args.swap_remove(1);
    Action::Store(Box::new(move |db| {
        let old = db.get(&key);
        if patch.is_empty() {
            // Nothing to write: the length as it is, and no key made.
            return Reply::Integer(old.map_or(0, len_of)).into();
        }
        let mut value = old.map(<[u8]>::to_vec).unwrap_or_default();
        let end = offset + patch.len();
        if value.len() < end {
            value.resize(end, 0);
        }
        value[offset..end].copy_from_slice(&patch);
        match db.put_keeping_expiry(&key, &value) {
            Ok(()) => Reply::Integer(len_of(&value)),
            Err(e) => refused(&e),
        }
        .into()
    }))
}

fn incr(call: Call<'_>) -> Action {
    add_to(call, 1)
}

fn decr(call: Call<'_>) -> Action {
    add_to(call, -1)
}

fn incrby(call: Call<'_>) -> Action {
    match parse_int(&call.args[2]) {
        Some(by) => add_to(call, by),
        None => not_an_integer(),
    }
}

fn decrby(call: Call<'_>) -> Action {
    match parse_int(&call.args[2]) {
        Some(i64::MIN) => error("ERR decrement would overflow"),
        Some(by) => add_to(call, -by),
        None => not_an_integer(),
    }
}

/// Adds `by` to the integer at the call's key (0 if it has no value):
/// the new value.
fn add_to(mut call: Call<'_>, by: i64) -> Action {
    let key = call.args.swap_remove(1);
    Action::Store(Box::new(move |db| {
        match db.increment(&key, by) {
            Ok(Ok(sum)) => Reply::Integer(sum),
            Ok(Err(IncrementError::NotAnInteger)) => Reply::Error(NOT_AN_INTEGER.into()),
            Ok(Err(IncrementError::Overflow)) => {
                Reply::Error("ERR increment or decrement would overflow".into())
            }
            Err(e) => refused(&e),
        }
        .into()
    }))
}

/// `INCRBYFLOAT key increment`: the new value, as text (a bulk string in
/// RESP3 too, as Redis answers).
fn incrbyfloat(mut call: Call<'_>) -> Action {
    let Some(by) = parse_float(&call.args[2]) else {
        return error(NOT_A_FLOAT);
    };
    let key = call.args.swap_remove(1);
    Action::Store(Box::new(move |db| {
        let now = match db.get(&key) {
            None => 0.0,
            Some(v) => match parse_float(v) {
                Some(x) => x,
                None => return Reply::Error(NOT_A_FLOAT.into()).into(),
            },
        };
        let sum = now + by;
        if !sum.is_finite() {
            return Reply::Error("ERR increment would produce NaN or Infinity".into()).into();
        }
        let text = float_text(sum);
        match db.put_keeping_expiry(&key, text.as_bytes()) {
            Ok(()) => Reply::Bulk(text.into_bytes()),
            Err(e) => refused(&e),
        }
        .into()
    }))
}

/// A float as Redis reads one from a value or an argument: a decimal (or
/// `inf`), no spaces, not NaN.
fn parse_float(text: &[u8]) -> Option<f64> {
    // Redis's MAX_LONG_DOUBLE_CHARS.
    if text.is_empty() || text.len() > 5 * 1024 {
        return None;
    }
    let text = std::str::from_utf8(text).ok()?;
    if text.starts_with(|c: char| c.is_ascii_whitespace())
        || text.ends_with(|c: char| c.is_ascii_whitespace())
    {
        return None;
    }
    text.parse::<f64>().ok().filter(|x| !x.is_nan())
}

/// A float as `INCRBYFLOAT` stores it: the shortest text that reads back
/// as the same number, except that a sum one step of rounding away from
/// a 15-digit decimal is written as that decimal (so 0.1 + 0.2 is `0.3`,
/// as Redis, which adds in long doubles, writes it).
fn float_text(x: f64) -> String {
    let rounded: f64 = format!("{x:.14e}").parse().unwrap_or(x);
    let steps_apart = rounded.to_bits().abs_diff(x.to_bits());
    let x = if steps_apart <= 1 && rounded.signum() == x.signum() {
        rounded
    } else {
        x
    };
    double_text(x)
}

/// A length as a reply's integer.
fn len_of(value: &[u8]) -> i64 {
    i64::try_from(value.len()).unwrap_or(i64::MAX)
}

/// A read's reply, a bulk or a null, counted as a hit or a miss.
fn value(found: Option<&[u8]>, tally: &mut Tally) -> Reply {
    match found {
        Some(v) => {
            tally.hits += 1;
            Reply::Bulk(v.to_vec())
        }
        None => {
            tally.misses += 1;
            Reply::Null
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::cmd::testing::{bulk_of, err, run, session, Fake};

    #[test]
    fn strings_and_keys() {
        let mut fake = Fake::default();
        let s = &mut session();
        assert_eq!(fake.run(s, &[b"GET", b"k"]), Reply::Null);
        assert_eq!(fake.run(s, &[b"SET", b"k", b"v"]), Reply::ok());
        assert_eq!(fake.run(s, &[b"get", b"k"]), bulk_of(b"v"));
        assert_eq!(fake.run(s, &[b"mset", b"a", b"1", b"b", b"2"]), Reply::ok());
        assert_eq!(
            fake.run(s, &[b"MGET", b"a", b"nope", b"b"]),
            Reply::Array(vec![bulk_of(b"1"), Reply::Null, bulk_of(b"2")])
        );
        assert_eq!(
            fake.run(s, &[b"exists", b"a", b"a", b"nope"]),
            Reply::Integer(2),
            "a key named twice counts twice, as in Redis"
        );
        assert_eq!(fake.run(s, &[b"dbsize"]), Reply::Integer(3));
        assert_eq!(
            fake.run(s, &[b"keys", b"[ab]"]),
            Reply::Array(vec![bulk_of(b"a"), bulk_of(b"b")])
        );
        assert_eq!(
            fake.run(s, &[b"del", b"a", b"nope", b"a", b"k"]),
            Reply::Integer(2)
        );
        assert_eq!(fake.run(s, &[b"dbsize"]), Reply::Integer(1));
    }

    #[test]
    fn set_parses_expiry_options_as_redis_does() {
        for args in [
            &[&b"SET"[..], b"k", b"v", b"bogus"][..],
            &[b"SET", b"k", b"v", b"EX"],
            &[b"SET", b"k", b"v", b"NX", b"XX"],
            &[b"SET", b"k", b"v", b"EX", b"10", b"bogus"],
            &[b"SET", b"k", b"v", b"EX", b"10", b"PX", b"10"],
            &[b"SET", b"k", b"v", b"EX", b"10", b"KEEPTTL"],
            &[b"SET", b"k", b"v", b"PERSIST"],
            &[b"GETEX", b"k", b"EX", b"10", b"PERSIST"],
            &[b"GETEX", b"k", b"KEEPTTL"],
        ] {
            assert_eq!(run(args), err("ERR syntax error"), "{args:?}");
        }
        for (args, name) in [
            (&[&b"SET"[..], b"k", b"v", b"EX", b"0"][..], "set"),
            (&[b"SET", b"k", b"v", b"px", b"-1"], "set"),
            (&[b"SET", b"k", b"v", b"EX", b"9223372036854775807"], "set"),
            (&[b"SET", b"k", b"v", b"PX", b"9223372036854775807"], "set"),
            (&[b"SETEX", b"k", b"0", b"v"], "setex"),
            (&[b"PSETEX", b"k", b"-5", b"v"], "psetex"),
        ] {
            assert_eq!(
                run(args),
                err(&format!("ERR invalid expire time in '{name}' command")),
                "{args:?}"
            );
        }
        assert_eq!(
            run(&[b"SETEX", b"k", b"ten", b"v"]),
            err("ERR value is not an integer or out of range")
        );
    }

    #[test]
    fn expiry_is_set_kept_and_cleared_as_in_redis() {
        let mut fake = Fake::default();
        let s = &mut session();
        let ttl = |fake: &mut Fake, s: &mut _| fake.run(s, &[b"TTL", b"k"]);
        assert_eq!(
            fake.run(s, &[b"SET", b"k", b"1", b"EX", b"100"]),
            Reply::ok()
        );
        assert_eq!(ttl(&mut fake, s), Reply::Integer(100));
        // APPEND, SETRANGE, INCR and SET ... KEEPTTL keep it.
        fake.run(s, &[b"INCR", b"k"]);
        fake.run(s, &[b"APPEND", b"k", b"0"]);
        fake.run(s, &[b"SETRANGE", b"k", b"0", b"3"]);
        fake.run(s, &[b"INCRBYFLOAT", b"k", b"1"]);
        fake.run(s, &[b"SET", b"k", b"7", b"KEEPTTL"]);
        assert_eq!(ttl(&mut fake, s), Reply::Integer(100));
        // SET and GETSET clear it.
        fake.run(s, &[b"SET", b"k", b"1"]);
        assert_eq!(ttl(&mut fake, s), Reply::Integer(-1));
        assert_eq!(fake.run(s, &[b"SETEX", b"k", b"50", b"v"]), Reply::ok());
        assert_eq!(ttl(&mut fake, s), Reply::Integer(50));
        fake.run(s, &[b"GETSET", b"k", b"w"]);
        assert_eq!(ttl(&mut fake, s), Reply::Integer(-1));
        assert_eq!(fake.run(s, &[b"PSETEX", b"k", b"20000", b"v"]), Reply::ok());
        assert_eq!(ttl(&mut fake, s), Reply::Integer(20));
        // GETEX reads, and changes the expiry if asked.
        assert_eq!(fake.run(s, &[b"GETEX", b"k"]), bulk_of(b"v"));
        assert_eq!(ttl(&mut fake, s), Reply::Integer(20));
        assert_eq!(fake.run(s, &[b"GETEX", b"k", b"EX", b"30"]), bulk_of(b"v"));
        assert_eq!(ttl(&mut fake, s), Reply::Integer(30));
        assert_eq!(fake.run(s, &[b"GETEX", b"k", b"PERSIST"]), bulk_of(b"v"));
        assert_eq!(ttl(&mut fake, s), Reply::Integer(-1));
        assert_eq!(fake.run(s, &[b"GETEX", b"k", b"PXAT", b"1"]), bulk_of(b"v"));
        assert_eq!(fake.run(s, &[b"GET", b"k"]), Reply::Null);
        assert_eq!(fake.run(s, &[b"GETEX", b"k", b"EX", b"5"]), Reply::Null);
        // A time already past: the key reads as absent at once.
        assert_eq!(
            fake.run(s, &[b"SET", b"k", b"v", b"PXAT", b"1"]),
            Reply::ok()
        );
        assert_eq!(fake.run(s, &[b"GET", b"k"]), Reply::Null);
        assert_eq!(ttl(&mut fake, s), Reply::Integer(-2));
    }

    /// Redis reads every option's word before it judges a time: a syntax
    /// error later in the command comes first, and `GETEX` of a missing
    /// key answers null whatever its time (redis-py's `getex(k, px=0)`
    /// gets null from Redis, not an error).
    #[test]
    fn an_expiry_time_is_judged_after_the_options_and_the_key() {
        let mut fake = Fake::default();
        let s = &mut session();
        let not_an_integer = err("ERR value is not an integer or out of range");
        for bad in [&[b"EX", &b"x"[..]][..], &[b"PX", b"0"], &[b"EXAT", b"-1"]] {
            let mut getex: Vec<&[u8]> = vec![b"GETEX", b"missing"];
            getex.extend_from_slice(bad);
            assert_eq!(fake.run(s, &getex), Reply::Null, "{bad:?}");
        }
        fake.run(s, &[b"SET", b"k", b"v"]);
        assert_eq!(fake.run(s, &[b"GETEX", b"k", b"EX", b"x"]), not_an_integer);
        assert_eq!(
            fake.run(s, &[b"GETEX", b"k", b"EXAT", b"0"]),
            err("ERR invalid expire time in 'getex' command")
        );
        assert_eq!(
            fake.run(s, &[b"GETEX", b"k", b"PX", b"0"]),
            err("ERR invalid expire time in 'getex' command")
        );
        assert_eq!(
            fake.run(s, &[b"GETEX", b"missing", b"EX", b"x", b"BOGUS"]),
            err("ERR syntax error")
        );
        assert_eq!(
            fake.run(s, &[b"SET", b"k", b"w", b"EX", b"x", b"BOGUS"]),
            err("ERR syntax error")
        );
        assert_eq!(
            fake.run(s, &[b"SET", b"k", b"w", b"EX", b"0", b"PX", b"5"]),
            err("ERR syntax error")
        );
        assert_eq!(
            fake.run(s, &[b"SET", b"missing", b"w", b"EX", b"x"]),
            not_an_integer
        );
        assert_eq!(
            fake.run(s, &[b"SET", b"missing", b"w", b"PX", b"0", b"NX"]),
            err("ERR invalid expire time in 'set' command")
        );
        assert_eq!(
            fake.run(s, &[b"GET", b"k"]),
            bulk_of(b"v"),
            "nothing written"
        );
        assert_eq!(fake.run(s, &[b"GET", b"missing"]), Reply::Null);
    }

    #[test]
    fn set_with_conditions_and_get() {
        let mut fake = Fake::default();
        let s = &mut session();
        assert_eq!(fake.run(s, &[b"SET", b"k", b"v", b"NX"]), Reply::ok());
        assert_eq!(fake.run(s, &[b"SET", b"k", b"w", b"nx"]), Reply::Null);
        assert_eq!(
            fake.run(s, &[b"SET", b"k", b"w", b"XX", b"GET"]),
            bulk_of(b"v")
        );
        assert_eq!(fake.run(s, &[b"SET", b"n", b"x", b"XX"]), Reply::Null);
        assert_eq!(
            fake.run(s, &[b"SET", b"n", b"x", b"XX", b"GET"]),
            Reply::Null
        );
        assert_eq!(fake.run(s, &[b"GET", b"n"]), Reply::Null);
        assert_eq!(
            fake.run(s, &[b"SET", b"k", b"z", b"NX", b"GET"]),
            bulk_of(b"w"),
            "NX fails, GET still answers the old value"
        );
        assert_eq!(
            fake.run(s, &[b"SET", b"k", b"u", b"GET", b"GET"]),
            bulk_of(b"w")
        );
        assert_eq!(fake.run(s, &[b"GET", b"k"]), bulk_of(b"u"));
    }

    #[test]
    fn setnx_getset_getdel_msetnx() {
        let mut fake = Fake::default();
        let s = &mut session();
        assert_eq!(fake.run(s, &[b"SETNX", b"k", b"1"]), Reply::Integer(1));
        assert_eq!(fake.run(s, &[b"SETNX", b"k", b"2"]), Reply::Integer(0));
        assert_eq!(fake.run(s, &[b"GETSET", b"k", b"3"]), bulk_of(b"1"));
        assert_eq!(fake.run(s, &[b"GETSET", b"q", b"1"]), Reply::Null);
        assert_eq!(fake.run(s, &[b"GETDEL", b"q"]), bulk_of(b"1"));
        assert_eq!(fake.run(s, &[b"GETDEL", b"q"]), Reply::Null);
        assert_eq!(fake.run(s, &[b"EXISTS", b"q"]), Reply::Integer(0));
        assert_eq!(
            fake.run(s, &[b"MSETNX", b"a", b"1", b"k", b"2"]),
            Reply::Integer(0)
        );
        assert_eq!(fake.run(s, &[b"GET", b"a"]), Reply::Null, "none set");
        assert_eq!(
            fake.run(s, &[b"MSETNX", b"a", b"1", b"b", b"2"]),
            Reply::Integer(1)
        );
        assert_eq!(
            fake.run(s, &[b"MGET", b"a", b"b"]),
            Reply::Array(vec![bulk_of(b"1"), bulk_of(b"2")])
        );
        assert_eq!(
            fake.run(s, &[b"MSETNX", b"a", b"1", b"b"]),
            err("ERR wrong number of arguments for 'msetnx' command")
        );
    }

    #[test]
    fn append_strlen_getrange_setrange() {
        let mut fake = Fake::default();
        let s = &mut session();
        assert_eq!(fake.run(s, &[b"APPEND", b"a", b"1"]), Reply::Integer(1));
        assert_eq!(fake.run(s, &[b"APPEND", b"a", b"xyz"]), Reply::Integer(4));
        assert_eq!(fake.run(s, &[b"STRLEN", b"a"]), Reply::Integer(4));
        assert_eq!(fake.run(s, &[b"STRLEN", b"none"]), Reply::Integer(0));
        for (start, end, want) in [
            (&b"0"[..], &b"-1"[..], &b"1xyz"[..]),
            (b"-2", b"-1", b"yz"),
            (b"5", b"1", b""),
            (b"-1", b"-5", b""),
            (b"0", b"100", b"1xyz"),
            (b"-100", b"1", b"1x"),
        ] {
            assert_eq!(
                fake.run(s, &[b"GETRANGE", b"a", start, end]),
                bulk_of(want),
                "{start:?} {end:?}"
            );
        }
        assert_eq!(
            fake.run(s, &[b"GETRANGE", b"none", b"0", b"1"]),
            bulk_of(b"")
        );
        assert_eq!(
            fake.run(s, &[b"GETRANGE", b"a", b"x", b"1"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            fake.run(s, &[b"SETRANGE", b"sr", b"5", b"ab"]),
            Reply::Integer(7)
        );
        assert_eq!(fake.run(s, &[b"GET", b"sr"]), bulk_of(b"\0\0\0\0\0ab"));
        assert_eq!(
            fake.run(s, &[b"SETRANGE", b"sr", b"1", b"Z"]),
            Reply::Integer(7)
        );
        assert_eq!(fake.run(s, &[b"GET", b"sr"]), bulk_of(b"\0Z\0\0\0ab"));
        assert_eq!(
            fake.run(s, &[b"SETRANGE", b"sr", b"-1", b"ab"]),
            err("ERR offset is out of range")
        );
        assert_eq!(
            fake.run(s, &[b"SETRANGE", b"sr", b"x", b"ab"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            fake.run(s, &[b"SETRANGE", b"none", b"3", b""]),
            Reply::Integer(0)
        );
        assert_eq!(
            fake.run(s, &[b"EXISTS", b"none"]),
            Reply::Integer(0),
            "no key made"
        );
        assert_eq!(
            fake.run(s, &[b"SETRANGE", b"sr", b"0", b""]),
            Reply::Integer(7)
        );
        assert_eq!(
            fake.run(s, &[b"SETRANGE", b"sr", b"1048576", b"x"]),
            err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"),
            "over the node's largest argument, refused before anything is made"
        );
    }

    #[test]
    fn integer_counters() {
        let mut fake = Fake::default();
        let s = &mut session();
        assert_eq!(fake.run(s, &[b"INCR", b"c"]), Reply::Integer(1));
        assert_eq!(fake.run(s, &[b"INCRBY", b"c", b"10"]), Reply::Integer(11));
        assert_eq!(fake.run(s, &[b"DECR", b"c"]), Reply::Integer(10));
        assert_eq!(fake.run(s, &[b"DECRBY", b"c", b"5"]), Reply::Integer(5));
        assert_eq!(fake.run(s, &[b"DECRBY", b"c", b"-5"]), Reply::Integer(10));
        assert_eq!(fake.run(s, &[b"GET", b"c"]), bulk_of(b"10"));
        assert_eq!(
            fake.run(s, &[b"DECRBY", b"c", b"-9223372036854775808"]),
            err("ERR decrement would overflow")
        );
        for by in [&b"x"[..], b"+1", b"1.5", b" 1", b"01"] {
            assert_eq!(
                fake.run(s, &[b"INCRBY", b"c", by]),
                err("ERR value is not an integer or out of range"),
                "{by:?}"
            );
        }
        fake.run(s, &[b"SET", b"c", b"9223372036854775807"]);
        assert_eq!(
            fake.run(s, &[b"INCR", b"c"]),
            err("ERR increment or decrement would overflow")
        );
        fake.run(s, &[b"SET", b"c", b"-9223372036854775808"]);
        assert_eq!(
            fake.run(s, &[b"DECR", b"c"]),
            err("ERR increment or decrement would overflow")
        );
        for stored in [&b" 1"[..], b"007", b"1.0", b"abc", b""] {
            fake.run(s, &[b"SET", b"c", stored]);
            assert_eq!(
                fake.run(s, &[b"INCR", b"c"]),
                err("ERR value is not an integer or out of range"),
                "{stored:?}"
            );
            assert_eq!(fake.run(s, &[b"GET", b"c"]), bulk_of(stored), "unchanged");
        }
    }

    #[test]
    fn float_counters() {
        let mut fake = Fake::default();
        let s = &mut session();
        fake.run(s, &[b"SET", b"f", b"10.50"]);
        assert_eq!(
            fake.run(s, &[b"INCRBYFLOAT", b"f", b"0.1"]),
            bulk_of(b"10.6")
        );
        assert_eq!(fake.run(s, &[b"GET", b"f"]), bulk_of(b"10.6"));
        assert_eq!(fake.run(s, &[b"INCRBYFLOAT", b"new", b"3"]), bulk_of(b"3"));
        assert_eq!(
            fake.run(s, &[b"INCRBYFLOAT", b"new", b"2e2"]),
            bulk_of(b"203")
        );
        fake.run(s, &[b"SET", b"g", b"0.1"]);
        assert_eq!(
            fake.run(s, &[b"INCRBYFLOAT", b"g", b"0.2"]),
            bulk_of(b"0.3")
        );
        assert_eq!(
            fake.run(s, &[b"INCRBYFLOAT", b"big", b"1e20"]),
            bulk_of(b"100000000000000000000")
        );
        for by in [&b"x"[..], b" 1", b"nan", b""] {
            assert_eq!(
                fake.run(s, &[b"INCRBYFLOAT", b"g", by]),
                err("ERR value is not a valid float"),
                "{by:?}"
            );
        }
        assert_eq!(
            fake.run(s, &[b"INCRBYFLOAT", b"g", b"inf"]),
            err("ERR increment would produce NaN or Infinity")
        );
        fake.run(s, &[b"SET", b"h", b"abc"]);
        assert_eq!(
            fake.run(s, &[b"INCRBYFLOAT", b"h", b"1"]),
            err("ERR value is not a valid float")
        );
        // A bulk string in RESP3 too, as Redis answers.
        fake.run(s, &[b"HELLO", b"3"]);
        assert_eq!(fake.run(s, &[b"INCRBYFLOAT", b"g", b"1"]), bulk_of(b"1.3"));
    }

    #[test]
    fn refused_writes_become_errors() {
        let mut fake = Fake::with_max_value(4);
        let s = &mut session();
        assert_eq!(
            fake.run(s, &[b"SET", b"k", b"too long"]),
            err("ERR value of 8 bytes is over the limit of 4")
        );
        assert_eq!(
            fake.run(s, &[b"MSET", b"a", b"1", b"b", b"too long"]),
            err("ERR value of 8 bytes is over the limit of 4")
        );
        assert_eq!(fake.run(s, &[b"GET", b"a"]), bulk_of(b"1"));
    }

    #[test]
    fn gets_are_tallied() {
        let mut fake = Fake::default();
        let s = &mut session();
        fake.run(s, &[b"SET", b"x", b"1"]);
        fake.run(s, &[b"MGET", b"x", b"nope", b"x"]);
        fake.run(s, &[b"GET", b"nope"]);
        assert_eq!(fake.tally(), Tally { hits: 2, misses: 2 });
    }
}
