//! What the command tests share: a session, settings, and a store thread
//! to run the commands' work on.

use crate::engine::service;
use crate::engine::StoreHandle;
use crate::redis::auth::{ClientAuth, Password};
use crate::redis::command::{dispatch, Action, Facts, Tally};
use crate::redis::resp::{Reply, Request};
use crate::status::Persistence;
use crate::store::Store;

pub(crate) fn facts() -> Facts {
    Facts {
        max_clients: 100,
        idle_timeout_secs: 300,
        max_bulk_len: 1 << 20,
        max_request_len: 1 << 21,
        persistence: Persistence::InMemory,
        auth: ClientAuth::default(),
        databases: crate::engine::database::DEFAULT_DATABASES,
        slowlog_slower_than: 10_000,
        slowlog_max_len: 128,
    }
}

/// [`facts`] with a client password.
pub(crate) fn facts_with_password(password: &str) -> Facts {
    Facts {
        auth: ClientAuth::new(Some(Password::new(password))),
        ..facts()
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

/// A store thread of its own (in memory, no peers), which runs the
/// commands' work as a node's does.
pub(crate) struct Fake {
    store: StoreHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    tally: Tally,
}

impl Default for Fake {
    fn default() -> Fake {
        Fake::with_max_value(1 << 20)
    }
}

impl Fake {
    /// A store refusing values over `max_value` bytes.
    pub(crate) fn with_max_value(max_value: usize) -> Fake {
        let (store, thread) =
            service::spawn(Store::new("test#1", max_value), None, Box::new(|_| {}))
                .expect("store thread");
        Fake {
            store,
            thread: Some(thread),
            tally: Tally::default(),
        }
    }

    /// The hits and misses of every read so far.
    pub(crate) fn tally(&self) -> Tally {
        self.tally
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
        let reply = match dispatch(session, request(args), facts) {
            Action::Reply(r) | Action::Close(r) => r,
            Action::Store(work) => {
                let mut answers = self.store.run(vec![work]).expect("store thread");
                let answer = answers.pop().expect("one answer per command");
                self.tally.add(answer.tally);
                answer.reply
            }
            Action::Node(_) => panic!("INFO and NETDB.STATUS are the shell's"),
        };
        // Through the bytes a client reads, in the session's protocol, as
        // a connection sends it.
        let out = reply.to_bytes_as(session.protocol());
        match crate::redis::resp::parse_reply(&out) {
            Ok(Some((reply, used))) if used == out.len() => reply,
            other => panic!("bad reply bytes: {other:?}"),
        }
    }
}

impl Fake {
    /// Dispatches every command first, as a connection does with a
    /// pipeline, then runs their store work in one trip; the replies in
    /// order.
    pub(crate) fn pipeline(
        &mut self,
        session: &mut crate::redis::command::Session,
        commands: &[&[&[u8]]],
    ) -> Vec<Reply> {
        let mut replies: Vec<Option<Reply>> = Vec::new();
        let mut work = Vec::new();
        for args in commands {
            match dispatch(session, request(args), &facts()) {
                Action::Reply(r) | Action::Close(r) => replies.push(Some(r)),
                Action::Store(w) => {
                    work.push(w);
                    replies.push(None);
                }
                Action::Node(_) => panic!("INFO and NETDB.STATUS are the shell's"),
            }
        }
        let mut answers = self.store.run(work).expect("store thread").into_iter();
        replies
            .into_iter()
            .map(|r| r.unwrap_or_else(|| answers.next().expect("one answer per work").reply))
            .collect()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.store.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
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
