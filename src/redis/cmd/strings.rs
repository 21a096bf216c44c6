//! The string commands: `GET`, `SET`, `MGET`, `MSET`. Each parses its
//! arguments here and returns the work that runs on the store thread and
//! builds its reply.
//! They must never touch the map directly: a write goes through
//! `Db::put`, so it is clocked, replicated and logged like any other.

use crate::redis::command::{
    arg, error, multiple, refused, reply_weight, shown, syntax_error, truncated, Action, Answer,
    Arg, Call, Command, Docs, KeyPositions, Tally,
};
use crate::redis::resp::Reply;

const KEY: Arg = arg("key", "key");
const VALUE: Arg = arg("value", "string");
const ONE_KEY: KeyPositions = KeyPositions::new(1, 1, 1);

/// What this group's docs say unless an entry says otherwise.
const DOCS: Docs = Docs::in_group("string");

/// The string group's entries.
pub const COMMANDS: &[Command] = &[
    Command {
        flags: &["readonly", "fast"],
        acl: &["@read", "@string", "@fast"],
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
        acl: &["@write", "@string", "@slow"],
        keys: ONE_KEY,
        docs: Docs {
            summary: "Set the string value of a key (netdb takes no options)",
            args: &[KEY, VALUE],
            ..DOCS
        },
        ..Command::new("set", -3, set)
    },
    Command {
        flags: &["readonly", "fast"],
        acl: &["@read", "@string", "@fast"],
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
        acl: &["@write", "@string", "@slow"],
        keys: KeyPositions::new(1, -1, 2),
        docs: Docs {
            summary: "Set multiple keys to multiple values",
            since: "1.0.1",
            args: &[Arg {
                multiple: true,
                parts: &[KEY, VALUE],
                ..arg("data", "block")
            }],
            ..DOCS
        },
        ..Command::new("mset", -3, mset)
    },
];

fn get(mut call: Call<'_>) -> Action {
    let key = call.args.swap_remove(1);
    Action::Store(Box::new(move |db| {
        let mut tally = Tally::default();
        let reply = value(db.get(&key), &mut tally);
        Answer { reply, tally }
    }))
}

/// `SET key value`; every option is refused rather than ignored.
fn set(call: Call<'_>) -> Action {
    let mut args = call.args;
    if let Some(option) = args.get(3) {
        let known = [
            "EX", "PX", "EXAT", "PXAT", "NX", "XX", "KEEPTTL", "GET", "PERSIST",
        ];
        let upper = String::from_utf8_lossy(option).to_ascii_uppercase();
        return if known.contains(&upper.as_str()) {
            error(format!(
                "ERR netdb does not support SET option '{}'",
                truncated(shown(option), 128)
            ))
        } else {
            syntax_error()
        };
    }
    let value = args.swap_remove(2);
    let key = args.swap_remove(1);
    Action::Store(Box::new(move |db| {
        match db.put(&key, &value) {
            Ok(()) => Reply::ok(),
            Err(e) => refused(&e),
        }
        .into()
    }))
}

fn mget(mut call: Call<'_>) -> Action {
    let keys: Vec<Vec<u8>> = call.args.drain(1..).collect();
    Action::Store(Box::new(move |db| {
        let mut tally = Tally::default();
        // A few keys can make a reply of gigabytes (one large value asked
        // for many times): stop at the connection's output limit.
        let budget = db.reply_budget();
        let mut weight = 16usize;
        let mut values = Vec::with_capacity(keys.len());
        for key in &keys {
            let v = value(db.get(key), &mut tally);
            weight = weight.saturating_add(reply_weight(&v));
            if weight > budget {
                db.exceed_budget();
                return Answer {
                    reply: Reply::Null,
                    tally,
                };
            }
            values.push(v);
        }
        Answer {
            reply: Reply::Array(values),
            tally,
        }
    }))
}

/// `MSET key value [key value ...]`: `+OK`, or the first refusal.
fn mset(mut call: Call<'_>) -> Action {
    if call.args.len().is_multiple_of(2) {
        return call.wrong_arity();
    }
    let mut pairs = Vec::with_capacity(call.args.len() / 2);
    let mut rest = call.args.drain(1..);
    while let (Some(key), Some(value)) = (rest.next(), rest.next()) {
        pairs.push((key, value));
    }
    Action::Store(Box::new(move |db| {
        let mut first_refusal = None;
        for (key, value) in &pairs {
            if let Err(e) = db.put(key, value) {
                first_refusal.get_or_insert_with(|| refused(&e));
            }
        }
        first_refusal.unwrap_or_else(Reply::ok).into()
    }))
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
    fn set_options_are_refused_not_ignored() {
        for option in [&b"EX"[..], b"px", b"NX", b"xx", b"KEEPTTL", b"GET", b"exat"] {
            let Reply::Error(text) = run(&[b"SET", b"k", b"v", option, b"10"]) else {
                panic!("an error")
            };
            assert_eq!(
                text,
                format!(
                    "ERR netdb does not support SET option '{}'",
                    String::from_utf8_lossy(option)
                )
            );
        }
        assert_eq!(
            run(&[b"SET", b"k", b"v", b"bogus"]),
            err("ERR syntax error")
        );
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
