//! The keyspace commands: `DEL`, `EXISTS`, `KEYS`, `SCAN`, `DBSIZE`. Each
//! appends its store ops and builds its reply from their answers (its
//! [`Finish`] arm, here as `*_reply`).
//! They must never touch the map directly: a delete is an `Op::Delete`,
//! so it is clocked, replicated and logged like any other write.

use crate::engine::service::{Op, OpReply};
use crate::redis::command::{
    arg, bulks, error, multiple, not_an_integer, optional, parse_i64, syntax_error, token,
    unexpected, Action, Call, Command, Docs, Finish, KeyPositions,
};
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
];

fn del(mut call: Call<'_>) -> Action {
    let n = call.args.len() - 1;
    for key in call.args.drain(1..) {
        call.ops.push(Op::Exists { key: key.clone() });
        call.ops.push(Op::Delete { key });
    }
    Action::Store(Finish::Deleted(n))
}

/// `DEL`'s reply: how many of the keys existed.
pub(crate) fn del_reply(next: &mut dyn FnMut() -> Option<OpReply>, n: usize) -> Reply {
    let mut existed = 0;
    let mut error = None;
    for _ in 0..n {
        if next() == Some(OpReply::Exists(true)) {
            existed += 1;
        }
        match next() {
            Some(OpReply::Deleted) => {}
            other => error = error.or(Some(unexpected(other))),
        }
    }
    error.unwrap_or(Reply::Integer(existed))
}

fn exists(mut call: Call<'_>) -> Action {
    let n = call.args.len() - 1;
    call.ops
        .extend(call.args.drain(1..).map(|key| Op::Exists { key }));
    Action::Store(Finish::Existing(n))
}

/// `EXISTS`'s reply: how many of the keys (counted as often as named)
/// exist.
pub(crate) fn exists_reply(next: &mut dyn FnMut() -> Option<OpReply>, n: usize) -> Reply {
    let mut existing = 0;
    let mut error = None;
    for _ in 0..n {
        match next() {
            Some(OpReply::Exists(true)) => existing += 1,
            Some(OpReply::Exists(false)) => {}
            other => error = error.or(Some(unexpected(other))),
        }
    }
    error.unwrap_or(Reply::Integer(existing))
}

fn keys(mut call: Call<'_>) -> Action {
    call.ops.push(Op::Keys {
        pattern: call.args.swap_remove(1),
    });
    Action::Store(Finish::Keys)
}

/// `KEYS`'s reply: the matching keys.
pub(crate) fn keys_reply(next: &mut dyn FnMut() -> Option<OpReply>) -> Reply {
    match next() {
        Some(OpReply::Keys(keys)) => bulks(keys),
        other => unexpected(other),
    }
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
fn scan(call: Call<'_>) -> Action {
    let args = &call.args;
    // Redis reads the cursor with strtoul: digits only, any size that fits.
    let cursor = match std::str::from_utf8(&args[1]).map(str::parse::<u64>) {
        Ok(Ok(c)) if !args[1].starts_with(b"+") => c,
        _ if args[1].is_empty() => 0,
        _ => return error("ERR invalid cursor"),
    };
    let mut pattern = None;
    let mut count: usize = 10;
    let mut keep = true;
    let mut i = 2;
    while i < args.len() {
        let option = args[i].to_ascii_lowercase();
        let Some(value) = args.get(i + 1) else {
            return syntax_error();
        };
        match option.as_slice() {
            b"count" => match parse_i64(value) {
                Some(c) if c >= 1 => count = usize::try_from(c).unwrap_or(usize::MAX),
                Some(_) => return syntax_error(),
                None => return not_an_integer(),
            },
            // Exactly `*` matches everything: no need to test each key.
            b"match" => pattern = (value.as_slice() != b"*").then(|| value.clone()),
            b"type" => keep = value.eq_ignore_ascii_case(b"string"),
            _ => return syntax_error(),
        }
        i += 2;
    }
    call.ops.push(Op::Scan {
        cursor,
        pattern,
        count,
    });
    Action::Store(Finish::Scan { keep })
}

/// `SCAN`'s reply: `[next cursor, [keys]]`, the keys dropped unless
/// `keep`.
pub(crate) fn scan_reply(next: &mut dyn FnMut() -> Option<OpReply>, keep: bool) -> Reply {
    match next() {
        Some(OpReply::Scanned { next, keys }) => Reply::Array(vec![
            Reply::Bulk(next.to_string().into_bytes()),
            bulks(if keep { keys } else { Vec::new() }),
        ]),
        other => unexpected(other),
    }
}

fn dbsize(call: Call<'_>) -> Action {
    call.ops.push(Op::DbSize);
    Action::Store(Finish::Size)
}

/// `DBSIZE`'s reply: the number of live keys.
pub(crate) fn dbsize_reply(next: &mut dyn FnMut() -> Option<OpReply>) -> Reply {
    match next() {
        Some(OpReply::Count(n)) => Reply::Integer(i64::try_from(n).unwrap_or(i64::MAX)),
        other => unexpected(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::cmd::testing::{err, facts, request, session};
    use crate::redis::command::{dispatch, Tally};

    fn scan_op(args: &[&[u8]]) -> Result<(Op, Finish), Reply> {
        let mut ops = Vec::new();
        match dispatch(&mut session(), request(args), &mut ops, &facts()) {
            Action::Store(f) => Ok((ops.pop().expect("one op"), f)),
            Action::Reply(r) => Err(r),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn scan_options() {
        assert_eq!(
            scan_op(&[b"SCAN", b"0"]),
            Ok((
                Op::Scan {
                    cursor: 0,
                    pattern: None,
                    count: 10
                },
                Finish::Scan { keep: true }
            ))
        );
        assert_eq!(
            scan_op(&[
                b"scan",
                b"18446744073709551615",
                b"match",
                b"k*",
                b"COUNT",
                b"100",
                b"type",
                b"hash"
            ]),
            Ok((
                Op::Scan {
                    cursor: u64::MAX,
                    pattern: Some(b"k*".to_vec()),
                    count: 100
                },
                Finish::Scan { keep: false }
            ))
        );
        assert!(matches!(
            scan_op(&[b"scan", b"0", b"MATCH", b"*"]),
            Ok((Op::Scan { pattern: None, .. }, _))
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
            assert_eq!(scan_op(args), Err(err(text)), "{args:?}");
        }
        let mut out = Vec::new();
        Finish::Scan { keep: true }.write_reply(
            &mut vec![OpReply::Scanned {
                next: 42,
                keys: vec![b"a".to_vec()],
            }]
            .into_iter(),
            &mut out,
            &mut Tally::default(),
        );
        assert_eq!(out, b"*2\r\n$2\r\n42\r\n*1\r\n$1\r\na\r\n");
    }
}
