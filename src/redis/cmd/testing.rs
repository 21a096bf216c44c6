//! What the command tests share: a session, settings, and a map standing
//! in for the store thread.

use crate::engine::service::{Op, OpReply};
use crate::redis::command::{dispatch, Action, Facts, Tally};
use crate::redis::glob::glob_match;
use crate::redis::resp::{Reply, Request};
use crate::status::Persistence;
use std::collections::BTreeMap;

pub(crate) fn facts() -> Facts {
    Facts {
        max_clients: 100,
        idle_timeout_secs: 300,
        max_bulk_len: 1 << 20,
        max_request_len: 1 << 21,
        persistence: Persistence::InMemory,
    }
}

pub(crate) fn session() -> crate::redis::command::Session {
    crate::redis::command::Session::new(7, "127.0.0.1:5000".into(), "127.0.0.1:6379".into())
}

pub(crate) fn request(args: &[&[u8]]) -> Request {
    Request {
        args: args.iter().map(|a| a.to_vec()).collect(),
    }
}

/// A map standing in for the store thread, answering ops as it does.
#[derive(Default)]
pub(crate) struct Fake {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Fake {
    fn answer(&mut self, op: Op) -> OpReply {
        match op {
            Op::Put { key, value } => {
                self.map.insert(key, value);
                OpReply::Stored
            }
            Op::Get { key } => self
                .map
                .get(&key)
                .map_or(OpReply::NotFound, |v| OpReply::Value(v.clone())),
            Op::Delete { key } => {
                self.map.remove(&key);
                OpReply::Deleted
            }
            Op::Exists { key } => OpReply::Exists(self.map.contains_key(&key)),
            Op::Keys { pattern } => OpReply::Keys(
                self.map
                    .keys()
                    .filter(|k| glob_match(&pattern, k))
                    .cloned()
                    .collect(),
            ),
            Op::Scan { pattern, .. } => OpReply::Scanned {
                next: 0,
                keys: self
                    .map
                    .keys()
                    .filter(|k| pattern.as_deref().is_none_or(|p| glob_match(p, k)))
                    .cloned()
                    .collect(),
            },
            Op::DbSize => OpReply::Count(self.map.len()),
        }
    }

    /// Runs one command as a connection does, the store's part included.
    pub(crate) fn run(
        &mut self,
        session: &mut crate::redis::command::Session,
        args: &[&[u8]],
    ) -> Reply {
        self.run_with(session, args, &facts())
    }

    /// [`Fake::run`] with other settings.
    pub(crate) fn run_with(
        &mut self,
        session: &mut crate::redis::command::Session,
        args: &[&[u8]],
        facts: &Facts,
    ) -> Reply {
        let mut ops = Vec::new();
        match dispatch(session, request(args), &mut ops, facts) {
            Action::Reply(r) | Action::Close(r) => {
                assert!(ops.is_empty());
                r
            }
            Action::Store(finish) => {
                let replies: Vec<OpReply> = ops.into_iter().map(|op| self.answer(op)).collect();
                let mut out = Vec::new();
                let mut replies = replies.into_iter();
                finish.write_reply(&mut replies, &mut out, &mut Tally::default());
                assert!(replies.next().is_none(), "every answer used");
                match crate::redis::resp::parse_reply(&out) {
                    Ok(Some((reply, used))) if used == out.len() => reply,
                    other => panic!("bad reply bytes: {other:?}"),
                }
            }
            Action::Node(_) => panic!("INFO and NETDB.STATUS are the shell's"),
        }
    }
}

/// Runs one command on an empty store.
pub(crate) fn run(args: &[&[u8]]) -> Reply {
    Fake::default().run(&mut session(), args)
}

pub(crate) fn err(text: &str) -> Reply {
    Reply::Error(text.into())
}

pub(crate) fn bulk_of(s: &[u8]) -> Reply {
    Reply::Bulk(s.to_vec())
}
