//! Transactions: `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`, as Redis
//! has them.
//!
//! After `MULTI`, [`dispatch`](crate::redis::command::dispatch) checks
//! each command (known, right arity, allowed) and queues it, answering
//! `+QUEUED`; a refused one dooms the transaction, and `EXEC` then
//! answers `EXECABORT`. `EXEC` runs every queued command's handler and
//! sends their store work as **one** closure: it runs whole on the store
//! thread, so no other client's command, and no peer's merge, comes
//! between two commands of a transaction on this node. Its writes are
//! made one after another in that closure, so they reach the log in one
//! group (one fsync) and are pushed to peers like any other writes.
//!
//! `WATCH` records each key's version (who wrote it and when:
//! [`Db::version`](crate::engine::Db::version)) on the store thread;
//! `EXEC` compares them there, before running anything, and answers a
//! null array if any changed, whether by a client of this node or by a
//! merge from a peer. A write made on another node that has not arrived
//! yet is not seen: `WATCH` decides on this node, like everything here
//! (see the README on what atomicity means in a multi-master store).
//!
//! What runs where: a queued command whose answer needs no store (`PING`,
//! `CLIENT SETNAME`) is answered, and changes the session, when `EXEC`
//! is dispatched; if the watched keys then turn out to have changed, its
//! reply is dropped with the rest but its change to the session stays.
//! `INFO` and `NETDB.STATUS` need the running node, not the store, so
//! inside a transaction they answer an error in their place.
//!
//! Must never touch the map directly: queued commands run through
//! [`crate::engine::Db`] like any other.

use crate::engine::Db;
use crate::redis::command::{
    arg, error, lookup, multiple, run, Action, Answer, Call, Command, Docs, KeyPositions,
    NodeQuery, Tally, Transaction, WatchedKey,
};
use crate::redis::resp::Reply;
use std::collections::hash_map::Entry;

const FLAGS: &[&str] = &["noscript", "loading", "stale", "fast", "allow_busy"];
const ACL: &[&str] = &["@fast", "@transaction"];

/// What this group's docs say unless an entry says otherwise.
const DOCS: Docs = Docs {
    since: "1.2.0",
    ..Docs::in_group("transactions")
};

/// The transaction group's entries.
pub const COMMANDS: &[Command] = &[
    Command {
        flags: FLAGS,
        acl: ACL,
        docs: Docs {
            summary: "Mark the start of a transaction block",
            ..DOCS
        },
        ..Command::new("multi", 1, multi)
    },
    Command {
        flags: &["noscript", "loading", "stale", "skip_slowlog"],
        acl: &["@slow", "@transaction"],
        docs: Docs {
            summary: "Execute all commands issued after MULTI, as one step on this node",
            ..DOCS
        },
        ..Command::new("exec", 1, exec)
    },
    Command {
        flags: FLAGS,
        acl: ACL,
        docs: Docs {
            summary: "Discard all commands issued after MULTI",
            since: "2.0.0",
            ..DOCS
        },
        ..Command::new("discard", 1, discard)
    },
    Command {
        flags: FLAGS,
        acl: ACL,
        keys: KeyPositions::new(1, -1, 1),
        docs: Docs {
            summary: "Watch the given keys (on this node) to determine execution of the \
                      MULTI/EXEC block",
            since: "2.2.0",
            args: &[multiple(arg("key", "key"))],
            ..DOCS
        },
        ..Command::new("watch", -2, watch)
    },
    Command {
        flags: FLAGS,
        acl: ACL,
        docs: Docs {
            summary: "Forget about all watched keys",
            since: "2.2.0",
            ..DOCS
        },
        ..Command::new("unwatch", 1, unwatch)
    },
];

fn multi(call: Call<'_>) -> Action {
    let transaction = call.session.transaction_mut();
    if transaction.is_some() {
        return error("ERR MULTI calls can not be nested");
    }
    *transaction = Some(Transaction::default());
    Action::Reply(Reply::ok())
}

/// `DISCARD`: drops the queue and the watched keys.
fn discard(call: Call<'_>) -> Action {
    if call.session.transaction_mut().take().is_none() {
        return error("ERR DISCARD without MULTI");
    }
    unwatch(call)
}

/// `WATCH key ...`: each key's version, taken on the store thread.
fn watch(mut call: Call<'_>) -> Action {
    if call.session.in_transaction() {
        return error("ERR WATCH inside MULTI is not allowed");
    }
    let keys: Vec<Vec<u8>> = call.args.drain(1..).collect();
    let watched = call.session.watched().clone();
    Action::Store(Box::new(move |db| {
        let mut watched = watched.lock();
        let here = db.database();
        for key in keys {
            // A key watched twice keeps the version it had first.
            if let Entry::Vacant(entry) = watched.entry((here, key)) {
                let key = &entry.key().1;
                let seen = WatchedKey {
                    version: db.version(key),
                    live: db.exists(key),
                };
                entry.insert(seen);
            }
        }
        Reply::ok().into()
    }))
}

/// `UNWATCH`, on the store thread, so it comes after the `WATCH`es
/// before it.
fn unwatch(call: Call<'_>) -> Action {
    let watched = call.session.watched().clone();
    Action::Store(Box::new(move |_| {
        watched.lock().clear();
        Reply::ok().into()
    }))
}

/// One queued command's part of an `EXEC`.
enum Step {
    /// Answered without the store.
    Ready(Reply),
    /// Runs on the store thread.
    Work(crate::engine::Command<Answer>),
}

/// `EXEC`: every queued command, as one piece of store work.
fn exec(call: Call<'_>) -> Action {
    let (session, facts) = (call.session, call.facts);
    let Some(transaction) = session.transaction_mut().take() else {
        return error("ERR EXEC without MULTI");
    };
    let watched = session.watched().clone();
    if transaction.failed {
        watched.lock().clear();
        return error("EXECABORT Transaction discarded because of previous errors.");
    }
    let mut steps = Vec::with_capacity(transaction.queued.len());
    for request in transaction.queued {
        // Checked when queued; the table does not change.
        let step = match lookup(&request.args) {
            Err(refusal) => Step::Ready(refusal),
            Ok(command) => match run(command, request.args, session, facts) {
                Action::Reply(reply) | Action::Close(reply) => Step::Ready(reply),
                Action::Store(work) => Step::Work(work),
                // The store thread's clock, read when the transaction runs.
                Action::Node(NodeQuery::Time) => Step::Work(Box::new(|db: &mut Db<'_>| {
                    crate::redis::cmd::server::time_reply(db.now_us()).into()
                })),
                Action::Node(_) => Step::Ready(Reply::Error(format!(
                    "ERR {} cannot run inside a transaction on netdb",
                    command.name.to_ascii_uppercase()
                ))),
            },
        };
        steps.push(step);
    }
    Action::Store(Box::new(move |db: &mut Db<'_>| {
        let watched = std::mem::take(&mut *watched.lock());
        // Each key in the database it was watched in: written since, or
        // expired since (Redis 7 counts that too).
        let changed = watched.iter().any(|((database, key), seen)| {
            db.in_database(*database, |db| {
                db.version(key) != seen.version || (seen.live && !db.exists(key))
            })
        });
        if changed {
            return Reply::NullArray.into();
        }
        let mut tally = Tally::default();
        // Each queued command a step, timed on its own, so that it is
        // counted on its own (`INFO commandstats`), as in Redis.
        let replies = steps
            .into_iter()
            .map(|step| {
                db.step(|db| match step {
                    Step::Ready(reply) => reply,
                    Step::Work(work) => {
                        let answer = work(db);
                        tally.add(answer.tally);
                        answer.reply
                    }
                })
            })
            .collect();
        Answer {
            reply: Reply::Array(replies),
            tally,
        }
    }))
}

#[cfg(test)]
mod tests {
    use crate::redis::cmd::testing::{bulk_of, err, facts, session, Fake};
    use crate::redis::command::{Facts, Session};
    use crate::redis::resp::Reply;

    fn queued() -> Reply {
        Reply::Simple("QUEUED".into())
    }

    #[test]
    fn a_transaction_queues_then_runs_everything_in_order() {
        let mut fake = Fake::default();
        let s = &mut session();
        assert_eq!(fake.run(s, &[b"MULTI"]), Reply::ok());
        assert_eq!(fake.run(s, &[b"SET", b"k", b"1"]), queued());
        assert_eq!(fake.run(s, &[b"INCR", b"k"]), queued());
        assert_eq!(fake.run(s, &[b"PING"]), queued());
        assert_eq!(fake.run(s, &[b"GET", b"k"]), queued());
        assert_eq!(fake.run(s, &[b"INCR", b"nope-not-a-number-yet"]), queued());
        assert_eq!(fake.run(s, &[b"APPEND", b"k", b"x"]), queued());
        assert_eq!(fake.run(s, &[b"INCR", b"k"]), queued());
        assert_eq!(
            fake.run(s, &[b"EXEC"]),
            Reply::Array(vec![
                Reply::ok(),
                Reply::Integer(2),
                Reply::Simple("PONG".into()),
                bulk_of(b"2"),
                Reply::Integer(1),
                Reply::Integer(2),
                err("ERR value is not an integer or out of range"),
            ]),
            "a command that fails at EXEC fails alone, as in Redis"
        );
        assert_eq!(fake.run(s, &[b"GET", b"k"]), bulk_of(b"2x"));
        assert_eq!(fake.run(s, &[b"EXEC"]), err("ERR EXEC without MULTI"));
    }

    #[test]
    fn a_queuing_error_aborts_the_whole_transaction() {
        let mut fake = Fake::default();
        let s = &mut session();
        fake.run(s, &[b"MULTI"]);
        assert_eq!(fake.run(s, &[b"SET", b"k", b"v"]), queued());
        assert_eq!(
            fake.run(s, &[b"GET"]),
            err("ERR wrong number of arguments for 'get' command")
        );
        assert_eq!(
            fake.run(s, &[b"NOPE"]),
            err("ERR unknown command 'NOPE', with args beginning with: ")
        );
        assert_eq!(
            fake.run(s, &[b"MULTI"]),
            err("ERR MULTI calls can not be nested")
        );
        assert_eq!(
            fake.run(s, &[b"WATCH", b"k"]),
            err("ERR WATCH inside MULTI is not allowed")
        );
        assert_eq!(
            fake.run(s, &[b"EXEC"]),
            err("EXECABORT Transaction discarded because of previous errors.")
        );
        assert_eq!(fake.run(s, &[b"GET", b"k"]), Reply::Null, "nothing ran");
    }

    #[test]
    fn discard_drops_the_queue() {
        let mut fake = Fake::default();
        let s = &mut session();
        assert_eq!(fake.run(s, &[b"DISCARD"]), err("ERR DISCARD without MULTI"));
        fake.run(s, &[b"MULTI"]);
        fake.run(s, &[b"SET", b"k", b"v"]);
        assert_eq!(fake.run(s, &[b"DISCARD"]), Reply::ok());
        assert_eq!(fake.run(s, &[b"GET", b"k"]), Reply::Null);
        fake.run(s, &[b"MULTI"]);
        assert_eq!(fake.run(s, &[b"EXEC"]), Reply::Array(Vec::new()));
    }

    #[test]
    fn time_runs_inside_a_transaction() {
        let mut fake = Fake::default();
        let s = &mut session();
        fake.run(s, &[b"MULTI"]);
        assert_eq!(fake.run(s, &[b"TIME"]), Reply::Simple("QUEUED".into()));
        let Reply::Array(replies) = fake.run(s, &[b"EXEC"]) else {
            panic!("EXEC answers an array");
        };
        assert!(
            matches!(&replies[..], [Reply::Array(t)] if t.len() == 2),
            "{replies:?}"
        );
    }

    #[test]
    fn a_watched_key_is_checked_in_the_database_it_was_watched_in() {
        let mut fake = Fake::default();
        let (mine, other) = (&mut session(), &mut session());
        fake.run(mine, &[b"SELECT", b"1"]);
        fake.run(mine, &[b"WATCH", b"k"]);
        fake.run(mine, &[b"SELECT", b"2"]);
        // The same name in another database: not the watched key.
        fake.run(other, &[b"SELECT", b"2"]);
        fake.run(other, &[b"SET", b"k", b"x"]);
        fake.run(mine, &[b"MULTI"]);
        fake.run(mine, &[b"SET", b"j", b"1"]);
        assert_eq!(fake.run(mine, &[b"EXEC"]), Reply::Array(vec![Reply::ok()]));
        // The watched key itself.
        fake.run(mine, &[b"SELECT", b"1"]);
        fake.run(mine, &[b"WATCH", b"k"]);
        fake.run(mine, &[b"SELECT", b"2"]);
        fake.run(other, &[b"SELECT", b"1"]);
        fake.run(other, &[b"SET", b"k", b"y"]);
        fake.run(mine, &[b"MULTI"]);
        fake.run(mine, &[b"SET", b"j", b"2"]);
        assert_eq!(fake.run(mine, &[b"EXEC"]), Reply::NullArray);
    }

    #[test]
    fn exec_fails_when_a_watched_key_changed() {
        let mut fake = Fake::default();
        let (mine, other) = (&mut session(), &mut session());
        fake.run(mine, &[b"SET", b"k", b"1"]);
        assert_eq!(fake.run(mine, &[b"WATCH", b"k", b"absent"]), Reply::ok());
        // Another client writes the same value: still a change.
        fake.run(other, &[b"SET", b"k", b"1"]);
        fake.run(mine, &[b"MULTI"]);
        fake.run(mine, &[b"SET", b"k", b"2"]);
        assert_eq!(fake.run(mine, &[b"EXEC"]), Reply::NullArray);
        assert_eq!(fake.run(mine, &[b"GET", b"k"]), bulk_of(b"1"));
        // EXEC forgot the watched keys: the next one runs.
        fake.run(mine, &[b"MULTI"]);
        fake.run(mine, &[b"SET", b"k", b"2"]);
        assert_eq!(fake.run(mine, &[b"EXEC"]), Reply::Array(vec![Reply::ok()]));
        // A key unchanged since WATCH lets EXEC run; one created since does not.
        fake.run(mine, &[b"WATCH", b"k", b"absent"]);
        fake.run(mine, &[b"MULTI"]);
        fake.run(mine, &[b"GET", b"k"]);
        assert_eq!(
            fake.run(mine, &[b"EXEC"]),
            Reply::Array(vec![bulk_of(b"2")])
        );
        fake.run(mine, &[b"WATCH", b"absent"]);
        fake.run(other, &[b"SET", b"absent", b"now"]);
        fake.run(mine, &[b"MULTI"]);
        fake.run(mine, &[b"GET", b"k"]);
        assert_eq!(fake.run(mine, &[b"EXEC"]), Reply::NullArray);
        // UNWATCH forgets them.
        fake.run(mine, &[b"WATCH", b"k"]);
        fake.run(other, &[b"DEL", b"k"]);
        assert_eq!(fake.run(mine, &[b"UNWATCH"]), Reply::ok());
        fake.run(mine, &[b"MULTI"]);
        fake.run(mine, &[b"GET", b"k"]);
        assert_eq!(fake.run(mine, &[b"EXEC"]), Reply::Array(vec![Reply::Null]));
    }

    /// As in Redis 7, a watched key that expires before `EXEC` aborts the
    /// transaction, though expiring writes nothing (an optimistic lock
    /// whose lease ran out must not commit); a key already gone when
    /// watched does not.
    #[test]
    fn exec_fails_when_a_watched_key_expired() {
        let mut fake = Fake::default();
        let s = &mut session();
        fake.run(s, &[b"SET", b"lease", b"mine", b"PX", b"100"]);
        fake.run(s, &[b"SET", b"gone", b"x", b"PX", b"1"]);
        assert_eq!(fake.run(s, &[b"WATCH", b"lease"]), Reply::ok());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while fake.run(s, &[b"GET", b"lease"]) != Reply::Null {
            assert!(std::time::Instant::now() < deadline, "the lease expires");
        }
        fake.run(s, &[b"MULTI"]);
        fake.run(s, &[b"SET", b"done", b"1"]);
        assert_eq!(fake.run(s, &[b"EXEC"]), Reply::NullArray);
        assert_eq!(fake.run(s, &[b"GET", b"done"]), Reply::Null);
        assert_eq!(fake.run(s, &[b"GET", b"gone"]), Reply::Null);
        fake.run(s, &[b"WATCH", b"gone"]);
        fake.run(s, &[b"MULTI"]);
        fake.run(s, &[b"SET", b"done", b"1"]);
        assert_eq!(fake.run(s, &[b"EXEC"]), Reply::Array(vec![Reply::ok()]));
    }

    #[test]
    fn a_queue_is_bounded_like_one_request() {
        let mut fake = Fake::default();
        let s = &mut session();
        let small = Facts {
            max_request_len: 10,
            ..facts()
        };
        let mut run = |s: &mut Session, args: &[&[u8]]| fake.run_with(s, args, &small);
        run(s, &[b"MULTI"]);
        assert_eq!(run(s, &[b"SET", b"k", b"12345"]), queued());
        assert_eq!(
            run(s, &[b"SET", b"k", b"1"]),
            err("ERR a transaction's queued commands are over the limit of 10 bytes")
        );
        assert_eq!(
            run(s, &[b"EXEC"]),
            err("EXECABORT Transaction discarded because of previous errors.")
        );
    }

    #[test]
    fn info_inside_a_transaction_is_answered_with_an_error() {
        let mut fake = Fake::default();
        let s = &mut session();
        fake.run(s, &[b"MULTI"]);
        fake.run(s, &[b"INFO"]);
        assert_eq!(
            fake.run(s, &[b"EXEC"]),
            Reply::Array(vec![err(
                "ERR INFO cannot run inside a transaction on netdb"
            )])
        );
    }
}
