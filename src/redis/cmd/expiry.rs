//! The expiry commands: `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT`
//! (with `NX`, `XX`, `GT`, `LT`), `TTL`, `PTTL`, `EXPIRETIME`,
//! `PEXPIRETIME` and `PERSIST`, with Redis's replies and error texts; and
//! [`ExpiryArg`], the expiry options `SET`, `SETEX`, `PSETEX` and `GETEX`
//! share (see [`crate::redis::cmd::strings`]).
//!
//! An expiry is an absolute time (milliseconds since the Unix epoch) that
//! is part of the key's value: setting or clearing it is a write of the
//! value with the new expiry, clocked, replicated and logged like any
//! other, so every node holds the same expiry and a key expires on all of
//! them at the same time, to the precision of their clocks. A relative
//! expiry (`EXPIRE k 10`) is made absolute on the node that takes it, by
//! its clock. Each node's store thread turns expired values into
//! tombstones in the background (see
//! [`Store::expire_due`](crate::store::Store::expire_due)), so their
//! memory is reclaimed without their being read.

use crate::engine::Db;
use crate::redis::command::{
    arg, error, optional, parse_i64, refused, token, Action, Answer, Arg, Call, Command, Docs,
    KeyPositions,
};
use crate::redis::resp::Reply;

const KEY: Arg = arg("key", "key");
const ONE_KEY: KeyPositions = KeyPositions::new(1, 1, 1);
const READ: &[&str] = &["@keyspace", "@read", "@fast"];
const WRITE: &[&str] = &["@keyspace", "@write", "@fast"];

/// What this group's docs say unless an entry says otherwise.
const DOCS: Docs = Docs::in_group("generic");

/// `[NX | XX | GT | LT]` in `COMMAND DOCS`.
const CONDITION: Arg = optional(Arg {
    parts: &[
        token("NX", arg("nx", "pure-token")),
        token("XX", arg("xx", "pure-token")),
        token("GT", arg("gt", "pure-token")),
        token("LT", arg("lt", "pure-token")),
    ],
    ..arg("condition", "oneof")
});

/// The expiry group's entries.
pub const COMMANDS: &[Command] = &[
    Command {
        flags: &["write", "fast"],
        acl: WRITE,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Set a key's time to live in seconds",
            args: &[KEY, arg("seconds", "integer"), CONDITION],
            ..DOCS
        },
        ..Command::new("expire", -3, expire)
    },
    Command {
        flags: &["write", "fast"],
        acl: WRITE,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Set a key's time to live in milliseconds",
            since: "2.6.0",
            args: &[KEY, arg("milliseconds", "integer"), CONDITION],
            ..DOCS
        },
        ..Command::new("pexpire", -3, expire)
    },
    Command {
        flags: &["write", "fast"],
        acl: WRITE,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Set the expiration for a key as a UNIX timestamp",
            since: "1.2.0",
            args: &[KEY, arg("unix-time-seconds", "unix-time"), CONDITION],
            ..DOCS
        },
        ..Command::new("expireat", -3, expire)
    },
    Command {
        flags: &["write", "fast"],
        acl: WRITE,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
            since: "2.6.0",
            args: &[KEY, arg("unix-time-milliseconds", "unix-time"), CONDITION],
            ..DOCS
        },
        ..Command::new("pexpireat", -3, expire)
    },
    Command {
        flags: &["readonly", "fast"],
        acl: READ,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Get the time to live for a key in seconds",
            args: &[KEY],
            ..DOCS
        },
        ..Command::new("ttl", 2, ttl)
    },
    Command {
        flags: &["readonly", "fast"],
        acl: READ,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Get the time to live for a key in milliseconds",
            since: "2.6.0",
            args: &[KEY],
            ..DOCS
        },
        ..Command::new("pttl", 2, ttl)
    },
    Command {
        flags: &["readonly", "fast"],
        acl: READ,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Get the expiration Unix timestamp for a key",
            since: "7.0.0",
            args: &[KEY],
            ..DOCS
        },
        ..Command::new("expiretime", 2, ttl)
    },
    Command {
        flags: &["readonly", "fast"],
        acl: READ,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Get the expiration Unix timestamp for a key in milliseconds",
            since: "7.0.0",
            args: &[KEY],
            ..DOCS
        },
        ..Command::new("pexpiretime", 2, ttl)
    },
    Command {
        flags: &["write", "fast"],
        acl: WRITE,
        keys: ONE_KEY,
        docs: Docs {
            summary: "Remove the expiration from a key",
            since: "2.2.0",
            args: &[KEY],
            ..DOCS
        },
        ..Command::new("persist", 2, persist)
    },
];

/// An expiry as a command gives it, before it is made absolute by the
/// clock of the store thread (where the command runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryArg {
    /// This many milliseconds from now (`EX`, `PX`, `EXPIRE`, `PEXPIRE`).
    In(i64),
    /// At this many milliseconds since the Unix epoch (`EXAT`, `PXAT`,
    /// `EXPIREAT`, `PEXPIREAT`).
    At(i64),
}

impl ExpiryArg {
    /// The absolute time in milliseconds, or `None` when it overflows
    /// (Redis's `invalid expire time`). May be at or before `now_ms`, or
    /// negative: already expired.
    pub fn at(self, now_ms: u64) -> Option<i64> {
        match self {
            ExpiryArg::In(ms) => ms.checked_add(i64::try_from(now_ms).ok()?),
            ExpiryArg::At(ms) => Some(ms),
        }
    }

    /// Parses the time of `SET ... EX|PX|EXAT|PXAT`, `SETEX`, `PSETEX` and
    /// `GETEX` as Redis does: an integer, above zero, that fits in
    /// milliseconds; `name` is the command's, for the error.
    pub fn parse_positive(option: &[u8], time: &[u8], name: &str) -> Result<ExpiryArg, Action> {
        let Some(n) = parse_i64(time) else {
            return Err(error("ERR value is not an integer or out of range"));
        };
        let seconds = matches!(option, b"EX" | b"EXAT");
        if n <= 0 || (seconds && n > i64::MAX / 1000) {
            return Err(invalid_expire_time(name));
        }
        let ms = if seconds { n * 1000 } else { n };
        Ok(match option {
            b"EX" | b"PX" => ExpiryArg::In(ms),
            _ => ExpiryArg::At(ms),
        })
    }

    /// The absolute expiry for a `SET`-like command, checked as Redis does
    /// (a relative time that overflows once added to the clock is
    /// refused); `Err` is the reply.
    pub fn resolve_positive(self, now_ms: u64, name: &str) -> Result<u64, Reply> {
        match self.at(now_ms).and_then(|at| u64::try_from(at).ok()) {
            Some(at) if at > 0 => Ok(at),
            _ => Err(Reply::Error(invalid_expire_time_text(name))),
        }
    }
}

fn invalid_expire_time_text(name: &str) -> String {
    format!("ERR invalid expire time in '{name}' command")
}

/// Redis's error for an expiry that is not positive or overflows.
pub fn invalid_expire_time(name: &str) -> Action {
    error(invalid_expire_time_text(name))
}

/// `EXPIRE`'s conditions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Conditions {
    /// Only if the key has no expiry.
    nx: bool,
    /// Only if it has one.
    xx: bool,
    /// Only if the new expiry is later (no expiry counts as never).
    gt: bool,
    /// Only if the new expiry is sooner.
    lt: bool,
}

impl Conditions {
    /// Reads `[NX|XX|GT|LT]...` with Redis's errors.
    fn parse(args: &[Vec<u8>]) -> Result<Conditions, Action> {
        let mut c = Conditions::default();
        for a in args {
            match a.to_ascii_uppercase().as_slice() {
                b"NX" => c.nx = true,
                b"XX" => c.xx = true,
                b"GT" => c.gt = true,
                b"LT" => c.lt = true,
                _ => {
                    return Err(error(format!(
                        "ERR Unsupported option {}",
                        String::from_utf8_lossy(a)
                    )))
                }
            }
        }
        if c.nx && (c.xx || c.gt || c.lt) {
            return Err(error(
                "ERR NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if c.gt && c.lt {
            return Err(error(
                "ERR GT and LT options at the same time are not compatible",
            ));
        }
        Ok(c)
    }

    /// Whether a key whose expiry is `current` may get `new`.
    fn allow(self, current: Option<u64>, new: i64) -> bool {
        let current = current.map(|at| i64::try_from(at).unwrap_or(i64::MAX));
        !(self.nx && current.is_some()
            || self.xx && current.is_none()
            || self.gt && current.is_none_or(|at| new <= at)
            || self.lt && current.is_some_and(|at| new >= at))
    }
}

/// `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT key time [NX|XX|GT|LT]`:
/// 1 if the expiry was set (or the key deleted, for a time already past),
/// 0 if the key has no value or a condition said no.
fn expire(mut call: Call<'_>) -> Action {
    let name = call.command.name;
    let conditions = match Conditions::parse(&call.args[3..]) {
        Ok(c) => c,
        Err(refusal) => return refusal,
    };
    let Some(n) = parse_i64(&call.args[2]) else {
        return error("ERR value is not an integer or out of range");
    };
    let seconds = matches!(name, "expire" | "expireat");
    if seconds && !(i64::MIN / 1000..=i64::MAX / 1000).contains(&n) {
        return invalid_expire_time(name);
    }
    let ms = if seconds { n * 1000 } else { n };
    let when = if name.ends_with("at") {
        ExpiryArg::At(ms)
    } else {
        ExpiryArg::In(ms)
    };
    let key = call.args.swap_remove(1);
    Action::Store(Box::new(move |db| {
        let now = db.now_ms();
        let Some(at) = when.at(now) else {
            return Reply::Error(invalid_expire_time_text(name)).into();
        };
        let Some(value) = db.get(&key).map(<[u8]>::to_vec) else {
            return Reply::Integer(0).into();
        };
        if !conditions.allow(db.expiry(&key), at) {
            return Reply::Integer(0).into();
        }
        let written = match u64::try_from(at) {
            Ok(at) if at > now => db.put_expiring(&key, &value, Some(at)),
            // Already past: Redis deletes the key.
            _ => db.delete(&key),
        };
        match written {
            Ok(()) => Reply::Integer(1),
            Err(e) => refused(&e),
        }
        .into()
    }))
}

/// `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME key`: -2 if the key has no
/// value, -1 if it does not expire, else the time left (rounded to the
/// nearest second for `TTL`, as Redis does) or the expiry.
fn ttl(mut call: Call<'_>) -> Action {
    let name = call.command.name;
    let key = call.args.swap_remove(1);
    Action::Store(Box::new(move |db: &mut Db<'_>| {
        if db.get(&key).is_none() {
            return Reply::Integer(-2).into();
        }
        let Some(at) = db.expiry(&key) else {
            return Reply::Integer(-1).into();
        };
        let left = at.saturating_sub(db.now_ms());
        let n = match name {
            "ttl" => left.saturating_add(500) / 1000,
            "pttl" => left,
            "expiretime" => at / 1000,
            _ => at,
        };
        Reply::Integer(i64::try_from(n).unwrap_or(i64::MAX)).into()
    }))
}

/// `PERSIST key`: 1 if the key's expiry was removed, 0 if it had none (or
/// no value).
fn persist(mut call: Call<'_>) -> Action {
    let key = call.args.swap_remove(1);
    Action::Store(Box::new(move |db| -> Answer {
        let Some(value) = db.get(&key).map(<[u8]>::to_vec) else {
            return Reply::Integer(0).into();
        };
        if db.expiry(&key).is_none() {
            return Reply::Integer(0).into();
        }
        match db.put(&key, &value) {
            Ok(()) => Reply::Integer(1),
            Err(e) => refused(&e),
        }
        .into()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::cmd::testing::*;

    fn int(n: i64) -> Reply {
        Reply::Integer(n)
    }

    #[test]
    fn expire_ttl_persist() {
        let mut fake = Fake::default();
        let s = &mut session();
        assert_eq!(fake.run(s, &[b"EXPIRE", b"k", b"10"]), int(0));
        assert_eq!(fake.run(s, &[b"TTL", b"k"]), int(-2));
        fake.run(s, &[b"SET", b"k", b"v"]);
        assert_eq!(fake.run(s, &[b"TTL", b"k"]), int(-1));
        assert_eq!(fake.run(s, &[b"PERSIST", b"k"]), int(0));
        assert_eq!(fake.run(s, &[b"EXPIRE", b"k", b"100"]), int(1));
        assert_eq!(fake.run(s, &[b"TTL", b"k"]), int(100));
        let pttl = fake.run(s, &[b"PTTL", b"k"]);
        assert!(
            matches!(pttl, Reply::Integer(n) if (99_000..=100_000).contains(&n)),
            "{pttl:?}"
        );
        let at = fake.run(s, &[b"PEXPIRETIME", b"k"]);
        let Reply::Integer(at) = at else {
            panic!("{at:?}")
        };
        assert_eq!(fake.run(s, &[b"EXPIRETIME", b"k"]), int(at / 1000));
        assert_eq!(fake.run(s, &[b"PERSIST", b"k"]), int(1));
        assert_eq!(fake.run(s, &[b"TTL", b"k"]), int(-1));
        assert_eq!(fake.run(s, &[b"GET", b"k"]), Reply::Bulk(b"v".to_vec()));
    }

    #[test]
    fn rename_copy_and_move_keep_the_expiry() {
        let mut fake = Fake::default();
        let s = &mut session();
        fake.run(s, &[b"SET", b"a", b"v", b"EX", b"100"]);
        assert_eq!(fake.run(s, &[b"RENAME", b"a", b"b"]), Reply::ok());
        assert_eq!(fake.run(s, &[b"TTL", b"b"]), int(100));
        assert_eq!(fake.run(s, &[b"COPY", b"b", b"c"]), int(1));
        assert_eq!(fake.run(s, &[b"TTL", b"c"]), int(100));
        assert_eq!(fake.run(s, &[b"MOVE", b"c", b"2"]), int(1));
        fake.run(s, &[b"SELECT", b"2"]);
        assert_eq!(fake.run(s, &[b"TTL", b"c"]), int(100));
    }

    #[test]
    fn a_time_already_past_deletes_the_key() {
        let mut fake = Fake::default();
        let s = &mut session();
        fake.run(s, &[b"SET", b"k", b"v"]);
        assert_eq!(fake.run(s, &[b"EXPIREAT", b"k", b"1"]), int(1));
        assert_eq!(fake.run(s, &[b"EXISTS", b"k"]), int(0));
        fake.run(s, &[b"SET", b"k", b"v"]);
        assert_eq!(fake.run(s, &[b"PEXPIRE", b"k", b"-5"]), int(1));
        assert_eq!(fake.run(s, &[b"GET", b"k"]), Reply::Null);
    }

    #[test]
    fn conditions_as_redis_has_them() {
        let mut fake = Fake::default();
        let s = &mut session();
        fake.run(s, &[b"SET", b"k", b"v"]);
        assert_eq!(fake.run(s, &[b"EXPIRE", b"k", b"100", b"XX"]), int(0));
        // No expiry counts as never: GT never applies, LT always does.
        assert_eq!(fake.run(s, &[b"EXPIRE", b"k", b"100", b"GT"]), int(0));
        assert_eq!(fake.run(s, &[b"EXPIRE", b"k", b"100", b"NX"]), int(1));
        assert_eq!(fake.run(s, &[b"EXPIRE", b"k", b"200", b"NX"]), int(0));
        assert_eq!(fake.run(s, &[b"EXPIRE", b"k", b"50", b"GT"]), int(0));
        assert_eq!(fake.run(s, &[b"EXPIRE", b"k", b"200", b"GT"]), int(1));
        assert_eq!(fake.run(s, &[b"EXPIRE", b"k", b"300", b"LT"]), int(0));
        assert_eq!(fake.run(s, &[b"EXPIRE", b"k", b"20", b"lt", b"xx"]), int(1));
        assert_eq!(fake.run(s, &[b"TTL", b"k"]), int(20));
        assert_eq!(
            fake.run(s, &[b"EXPIRE", b"k", b"1", b"NX", b"GT"]),
            err("ERR NX and XX, GT or LT options at the same time are not compatible")
        );
        assert_eq!(
            fake.run(s, &[b"EXPIRE", b"k", b"1", b"GT", b"LT"]),
            err("ERR GT and LT options at the same time are not compatible")
        );
        assert_eq!(
            fake.run(s, &[b"EXPIRE", b"k", b"1", b"SOON"]),
            err("ERR Unsupported option SOON")
        );
        assert_eq!(
            fake.run(s, &[b"EXPIRE", b"k", b"ten"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            fake.run(s, &[b"EXPIRE", b"k", b"9223372036854775807"]),
            err("ERR invalid expire time in 'expire' command")
        );
        assert_eq!(
            fake.run(s, &[b"PEXPIRE", b"k", b"9223372036854775807"]),
            err("ERR invalid expire time in 'pexpire' command")
        );
    }
}
