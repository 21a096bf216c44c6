//! The store thread: the one owner of the [`Store`], serving requests that
//! arrive on one channel from the CLI, the peer connections and the sync
//! thread.
//!
//! Requests carry their own reply channel. Client writes come in batches
//! (one request for many commands) so a fast client costs one channel trip
//! per batch, not per command. The thread reads the wall clock once per
//! request and passes it into the store; it ends when every sender is gone.

use crate::error::{Error, Result};
use crate::store::{BatchError, Counts, Store, WriteError};
use crate::wire::Batch;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::time::{SystemTime, UNIX_EPOCH};

/// How many requests may wait for the store thread before senders block.
pub const QUEUE_DEPTH: usize = 1024;

/// A data command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Store a value.
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Read a value.
    Get {
        /// The key.
        key: Vec<u8>,
    },
    /// Delete a key.
    Delete {
        /// The key.
        key: Vec<u8>,
    },
}

/// The answer to one [`Op`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpReply {
    /// The put was applied.
    Stored,
    /// The delete was applied.
    Deleted,
    /// The key's value.
    Value(Vec<u8>),
    /// The key is absent or deleted.
    NotFound,
    /// The write was refused and changed nothing.
    Refused(WriteError),
}

/// A request to the store thread.
pub enum Request {
    /// Run data commands in order.
    Ops {
        /// The commands.
        ops: Vec<Op>,
        /// One reply per command, in order.
        reply: Sender<Vec<OpReply>>,
    },
    /// Merge a batch from a peer; the reply is what the peer lacks.
    Apply {
        /// The versions.
        batch: Batch,
        /// Where the answer goes (none: nobody waits).
        reply: Option<Sender<std::result::Result<Batch, BatchError>>>,
    },
    /// Every version, cut into batches of about `chunk_bytes`.
    Snapshot {
        /// Target batch size.
        chunk_bytes: usize,
        /// Where the batches go.
        reply: Sender<Vec<Batch>>,
    },
    /// The live keys, sorted.
    Keys {
        /// Where they go.
        reply: Sender<Vec<Vec<u8>>>,
    },
    /// Key and tombstone counts.
    Counts {
        /// Where they go.
        reply: Sender<Counts>,
    },
}

/// A cloneable way to talk to the store thread.
#[derive(Clone)]
pub struct StoreHandle {
    tx: Sender<Request>,
}

impl StoreHandle {
    fn call<T>(&self, make: impl FnOnce(Sender<T>) -> Request) -> Result<T> {
        let (tx, rx) = bounded(1);
        self.tx.send(make(tx)).map_err(|_| Error::Stopped)?;
        rx.recv().map_err(|_| Error::Stopped)
    }

    /// Runs data commands in order and returns one reply per command.
    pub fn ops(&self, ops: Vec<Op>) -> Result<Vec<OpReply>> {
        self.call(|reply| Request::Ops { ops, reply })
    }

    /// Merges a peer's batch; returns what the peer lacks.
    pub fn apply(&self, batch: Batch) -> Result<std::result::Result<Batch, BatchError>> {
        self.call(|reply| Request::Apply {
            batch,
            reply: Some(reply),
        })
    }

    /// Merges a batch without waiting for the answer.
    pub fn apply_later(&self, batch: Batch) -> Result<()> {
        self.tx
            .send(Request::Apply { batch, reply: None })
            .map_err(|_| Error::Stopped)
    }

    /// Every version, in batches of about `chunk_bytes`.
    pub fn snapshot(&self, chunk_bytes: usize) -> Result<Vec<Batch>> {
        self.call(|reply| Request::Snapshot { chunk_bytes, reply })
    }

    /// The live keys, sorted.
    pub fn keys(&self) -> Result<Vec<Vec<u8>>> {
        self.call(|reply| Request::Keys { reply })
    }

    /// Key and tombstone counts.
    pub fn counts(&self) -> Result<Counts> {
        self.call(|reply| Request::Counts { reply })
    }
}

/// Microseconds since the Unix epoch (0 if the clock is before it).
pub fn wall_clock_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Starts the store thread; it runs until every [`StoreHandle`] is dropped.
pub fn spawn(store: Store) -> Result<(StoreHandle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = bounded(QUEUE_DEPTH);
    let thread = std::thread::Builder::new()
        .name("netdb-store".into())
        .spawn(move || serve(store, rx))
        .map_err(|source| Error::Io {
            context: "cannot start the store thread",
            source,
        })?;
    Ok((StoreHandle { tx }, thread))
}

fn serve(mut store: Store, rx: Receiver<Request>) {
    for request in rx {
        handle(&mut store, request);
    }
}

/// Serves one request. A reply channel whose receiver is gone (the caller
/// gave up) is not an error.
fn handle(store: &mut Store, request: Request) {
    match request {
        Request::Ops { ops, reply } => {
            let now = wall_clock_us();
            let replies = ops
                .into_iter()
                .map(|op| match op {
                    Op::Put { key, value } => match store.put(&key, &value, now) {
                        Ok(()) => OpReply::Stored,
                        Err(e) => OpReply::Refused(e),
                    },
                    Op::Delete { key } => match store.delete(&key, now) {
                        Ok(()) => OpReply::Deleted,
                        Err(e) => OpReply::Refused(e),
                    },
                    Op::Get { key } => match store.get(&key) {
                        Some(v) => OpReply::Value(v.to_vec()),
                        None => OpReply::NotFound,
                    },
                })
                .collect();
            let _ = reply.send(replies);
        }
        Request::Apply { batch, reply } => {
            let result = store.apply_batch(&batch);
            match reply {
                Some(reply) => {
                    let _ = reply.send(result);
                }
                None => {
                    if let Err(e) = result {
                        crate::log!("dropped a batch from a peer: {e}");
                    }
                }
            }
        }
        Request::Snapshot { chunk_bytes, reply } => {
            let _ = reply.send(store.snapshot(chunk_bytes));
        }
        Request::Keys { reply } => {
            let _ = reply.send(store.keys());
        }
        Request::Counts { reply } => {
            let _ = reply.send(store.counts());
        }
    }
}
