//! The string commands: `GET`, `SET`, `MGET`, `MSET`. Each appends its
//! store ops and builds its reply from their answers (its
//! [`Finish`] arm, here as `*_reply`).
//! They must never touch the map directly: a write is an `Op::Put`, so it
//! is clocked, replicated and logged like any other.

use crate::engine::service::{Op, OpReply};
use crate::redis::command::{
    arg, error, multiple, shown, syntax_error, truncated, unexpected, Action, Arg, Call, Command,
    Docs, Finish, KeyPositions, Tally,
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
    call.ops.push(Op::Get {
        key: call.args.swap_remove(1),
    });
    Action::Store(Finish::Value)
}

/// `GET`'s reply: a bulk or a null.
pub(crate) fn get_reply(next: &mut dyn FnMut() -> Option<OpReply>, tally: &mut Tally) -> Reply {
    value(next(), tally)
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
    call.ops.push(Op::Put { key, value });
    Action::Store(Finish::Ok)
}

/// `SET`'s reply: `+OK`, or the refusal.
pub(crate) fn set_reply(next: &mut dyn FnMut() -> Option<OpReply>) -> Reply {
    match next() {
        Some(OpReply::Stored) => Reply::ok(),
        other => unexpected(other),
    }
}

fn mget(mut call: Call<'_>) -> Action {
    let n = call.args.len() - 1;
    call.ops
        .extend(call.args.drain(1..).map(|key| Op::Get { key }));
    Action::Store(Finish::Values(n))
}

/// `MGET`'s reply: an array of bulks and nulls.
pub(crate) fn mget_reply(
    next: &mut dyn FnMut() -> Option<OpReply>,
    n: usize,
    tally: &mut Tally,
) -> Reply {
    Reply::Array((0..n).map(|_| value(next(), tally)).collect())
}

fn mset(mut call: Call<'_>) -> Action {
    let n = call.args.len();
    if n.is_multiple_of(2) {
        return call.wrong_arity();
    }
    let mut rest = call.args.drain(1..);
    while let (Some(key), Some(value)) = (rest.next(), rest.next()) {
        call.ops.push(Op::Put { key, value });
    }
    Action::Store(Finish::AllOk((n - 1) / 2))
}

/// `MSET`'s reply: `+OK`, or the first refusal.
pub(crate) fn mset_reply(next: &mut dyn FnMut() -> Option<OpReply>, n: usize) -> Reply {
    let mut error = None;
    for _ in 0..n {
        match next() {
            Some(OpReply::Stored) => {}
            other => error = error.or(Some(unexpected(other))),
        }
    }
    error.unwrap_or_else(Reply::ok)
}

fn value(reply: Option<OpReply>, tally: &mut Tally) -> Reply {
    match reply {
        Some(OpReply::Value(v)) => {
            tally.hits += 1;
            Reply::Bulk(v)
        }
        Some(OpReply::NotFound) => {
            tally.misses += 1;
            Reply::Null
        }
        other => unexpected(other),
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
        let refused = OpReply::Refused(crate::store::WriteError::ValueTooLong { len: 9, max: 4 });
        let mut out = Vec::new();
        Finish::Ok.write_reply(
            &mut vec![refused.clone()].into_iter(),
            &mut out,
            &mut Tally::default(),
        );
        assert_eq!(out, b"-ERR value of 9 bytes is over the limit of 4\r\n");
        out.clear();
        Finish::AllOk(2).write_reply(
            &mut vec![OpReply::Stored, refused].into_iter(),
            &mut out,
            &mut Tally::default(),
        );
        assert!(out.starts_with(b"-ERR value of 9"));
        out.clear();
        Finish::Value.write_reply(&mut Vec::new().into_iter(), &mut out, &mut Tally::default());
        assert!(out.starts_with(b"-ERR internal error"));
    }

    #[test]
    fn gets_are_tallied() {
        let mut tally = Tally::default();
        let mut out = Vec::new();
        Finish::Values(3).write_reply(
            &mut vec![
                OpReply::Value(b"x".to_vec()),
                OpReply::NotFound,
                OpReply::Value(Vec::new()),
            ]
            .into_iter(),
            &mut out,
            &mut tally,
        );
        assert_eq!(tally, Tally { hits: 2, misses: 1 });
        assert_eq!(out, b"*3\r\n$1\r\nx\r\n$-1\r\n$0\r\n\r\n");
    }
}
