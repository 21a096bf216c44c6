//! The store thread: the one owner of the [`Store`], serving requests that
//! arrive on one channel from the CLI, the peer connections and the sync
//! thread.
//!
//! Requests carry their own reply channel. Client writes come in batches
//! (one request for many commands) so a fast client costs one channel trip
//! per batch, not per command. The thread reads the wall clock once per
//! request and passes it into the store; it ends when every sender is gone.

use crate::error::{Error, Result};
use crate::glob::glob_match;
use crate::store::{BatchError, Counts, Cursor, Delta, PeerLag, Store, WriteError};
use crate::wire::{Batch, WireVv};
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
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
    /// Whether a key has a value.
    Exists {
        /// The key.
        key: Vec<u8>,
    },
    /// The live keys that match a glob pattern (see [`crate::glob`]), in
    /// no particular order.
    Keys {
        /// The pattern.
        pattern: Vec<u8>,
    },
    /// One step of a `SCAN` over the live keys (see [`Store::scan`] for
    /// what a cursor guarantees).
    Scan {
        /// Where the previous step stopped; 0 starts.
        cursor: u64,
        /// Only keys that match this glob pattern.
        pattern: Option<Vec<u8>>,
        /// About how many entries to visit.
        count: usize,
    },
    /// The number of live keys.
    DbSize,
}

impl Op {
    /// Whether the op writes (and so is clocked, replicated and logged).
    pub fn is_write(&self) -> bool {
        matches!(self, Op::Put { .. } | Op::Delete { .. })
    }
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
    /// Whether the key has a value.
    Exists(bool),
    /// The keys that matched.
    Keys(Vec<Vec<u8>>),
    /// One step of a `SCAN`.
    Scanned {
        /// Where to go on from; 0 when the iteration is complete.
        next: u64,
        /// The keys that matched among those visited.
        keys: Vec<Vec<u8>>,
    },
    /// A number of keys.
    Count(usize),
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
    /// Merge a batch from a peer.
    Apply {
        /// The versions.
        batch: Batch,
        /// Whether the batch was valid.
        reply: Sender<std::result::Result<(), BatchError>>,
    },
    /// A transfer from a peer whose vector was `vv` is complete.
    JoinVersionVector {
        /// The peer's vector at the start of the transfer.
        vv: WireVv,
        /// Whether the vector was valid.
        reply: Sender<std::result::Result<(), BatchError>>,
    },
    /// One part of what a node that has seen `since` lacks.
    Delta {
        /// The other node's version vector.
        since: WireVv,
        /// Where the previous part stopped; `None` starts a transfer.
        cursor: Option<Cursor>,
        /// Target part size.
        max_bytes: usize,
        /// The part, and at the start of a transfer this node's vector.
        reply: Sender<(Delta, Option<WireVv>)>,
    },
    /// This node's version vector.
    VersionVector {
        /// Where it goes.
        reply: Sender<WireVv>,
    },
    /// Listed peer `peer` acknowledged `vv` (tombstones may go).
    PeerAcknowledged {
        /// Index in the peers list.
        peer: usize,
        /// Its vector.
        vv: WireVv,
    },
    /// Drop the tombstones every listed peer has acknowledged.
    CollectTombstones,
    /// How far each listed peer is behind.
    PeerLags {
        /// Where they go, by peer index.
        reply: Sender<Vec<PeerLag>>,
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

    /// Merges a peer's batch; an error means the batch was invalid.
    pub fn apply(&self, batch: Batch) -> Result<std::result::Result<(), BatchError>> {
        self.call(|reply| Request::Apply { batch, reply })
    }

    /// Records a completed transfer from a peer whose vector was `vv`.
    pub fn join_version_vector(&self, vv: WireVv) -> Result<std::result::Result<(), BatchError>> {
        self.call(|reply| Request::JoinVersionVector { vv, reply })
    }

    /// One part of what a node that has seen `since` lacks; at the start of
    /// a transfer (`cursor` is `None`) also this node's vector.
    pub fn delta(
        &self,
        since: WireVv,
        cursor: Option<Cursor>,
        max_bytes: usize,
    ) -> Result<(Delta, Option<WireVv>)> {
        self.call(|reply| Request::Delta {
            since,
            cursor,
            max_bytes,
            reply,
        })
    }

    /// This node's version vector.
    pub fn version_vector(&self) -> Result<WireVv> {
        self.call(|reply| Request::VersionVector { reply })
    }

    /// Records what listed peer `peer` acknowledged, without waiting.
    pub fn peer_acknowledged(&self, peer: usize, vv: WireVv) -> Result<()> {
        self.tx
            .send(Request::PeerAcknowledged { peer, vv })
            .map_err(|_| Error::Stopped)
    }

    /// Asks for a tombstone collection, without waiting.
    pub fn collect_tombstones(&self) -> Result<()> {
        self.tx
            .send(Request::CollectTombstones)
            .map_err(|_| Error::Stopped)
    }

    /// How far each listed peer is behind.
    pub fn peer_lags(&self) -> Result<Vec<PeerLag>> {
        self.call(|reply| Request::PeerLags { reply })
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
/// After each batch with a local write it pokes `written` (without ever
/// blocking), so the sync thread can push soon.
pub fn spawn(
    store: Store,
    written: Sender<()>,
) -> Result<(StoreHandle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = bounded(QUEUE_DEPTH);
    let thread = std::thread::Builder::new()
        .name("netdb-store".into())
        .spawn(move || serve(store, rx, written))
        .map_err(|source| Error::Io {
            context: "cannot start the store thread",
            source,
        })?;
    Ok((StoreHandle { tx }, thread))
}

fn serve(mut store: Store, rx: Receiver<Request>, written: Sender<()>) {
    for request in rx {
        if handle(&mut store, request) {
            // Full means a poke is already waiting; gone means no sync thread.
            if let Err(TrySendError::Disconnected(())) = written.try_send(()) {}
        }
    }
}

/// Serves one request; returns whether it wrote locally. A reply channel
/// whose receiver is gone (the caller gave up) is not an error.
fn handle(store: &mut Store, request: Request) -> bool {
    match request {
        Request::Ops { ops, reply } => {
            let now = wall_clock_us();
            let wrote = ops.iter().any(Op::is_write);
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
                    Op::Exists { key } => OpReply::Exists(store.get(&key).is_some()),
                    Op::Keys { pattern } => {
                        OpReply::Keys(store.keys_where(|k| glob_match(&pattern, k)))
                    }
                    Op::Scan {
                        cursor,
                        pattern,
                        count,
                    } => {
                        let (next, keys) = store.scan(cursor, count, |k| {
                            pattern.as_deref().is_none_or(|p| glob_match(p, k))
                        });
                        OpReply::Scanned { next, keys }
                    }
                    Op::DbSize => OpReply::Count(store.counts().live),
                })
                .collect();
            let _ = reply.send(replies);
            return wrote;
        }
        Request::Apply { batch, reply } => {
            let _ = reply.send(store.apply_batch(&batch));
        }
        Request::JoinVersionVector { vv, reply } => {
            let _ = reply.send(store.join_version_vector(&vv));
        }
        Request::Delta {
            since,
            cursor,
            max_bytes,
            reply,
        } => {
            let vv = cursor.is_none().then(|| store.version_vector());
            let _ = reply.send((store.delta(&since, cursor, max_bytes), vv));
        }
        Request::VersionVector { reply } => {
            let _ = reply.send(store.version_vector());
        }
        Request::PeerAcknowledged { peer, vv } => {
            if let Err(e) = store.peer_acknowledged(peer, &vv) {
                crate::log!("ignored an acknowledgement: {e}");
            }
        }
        Request::CollectTombstones => {
            store.collect_tombstones();
        }
        Request::PeerLags { reply } => {
            let n = store.peer_count();
            let _ = reply.send((0..n).map(|i| store.peer_lag(i)).collect());
        }
        Request::Keys { reply } => {
            let _ = reply.send(store.keys());
        }
        Request::Counts { reply } => {
            let _ = reply.send(store.counts());
        }
    }
    false
}
