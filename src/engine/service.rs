//! The store thread: the one owner of the [`Store`], serving requests that
//! arrive on one channel from the CLI, the peer connections and the sync
//! thread.
//!
//! Requests carry their own reply channel. Client writes come in batches
//! (one request for many commands) so a fast client costs one channel trip
//! per batch, not per command. The thread reads the wall clock once per
//! request and passes it into the store; it ends when every sender is gone.

use crate::durability::DataDir;
use crate::engine::slot::{Answer, ReplySlot};
use crate::error::{Error, Result};
use crate::redis::glob::glob_match;
use crate::replication::wire::{Batch, WireVv};
use crate::store::{BatchError, Counts, Cursor, Delta, PeerLag, Store, WriteError};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};
use std::ops::ControlFlow;
use std::time::{Duration, Instant};
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
    /// The live keys that match a glob pattern (see [`crate::redis::glob`]), in
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
        reply: Answer<Vec<OpReply>>,
    },
    /// Merge a batch from a peer and, when it is valid and `join` is
    /// given, record that a transfer from a peer whose vector was `join`
    /// is complete: both in one log group, so one fsync.
    Apply {
        /// The versions.
        batch: Batch,
        /// The peer's vector at the start of the transfer, when this is
        /// its last part.
        join: Option<WireVv>,
        /// Whether the batch and the vector were valid.
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
    /// Write and fsync what is pending, then stop serving.
    Stop {
        /// Whether the final fsync succeeded.
        reply: Sender<std::result::Result<(), String>>,
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
        self.ops_via(&ReplySlot::new(), ops)
    }

    /// [`ops`](Self::ops) with the answer coming through `slot`, which a
    /// client connection makes once and reuses for every batch.
    pub fn ops_via(&self, slot: &ReplySlot<Vec<OpReply>>, ops: Vec<Op>) -> Result<Vec<OpReply>> {
        let reply = slot.answer();
        self.tx
            .send(Request::Ops { ops, reply })
            .map_err(|_| Error::Stopped)?;
        slot.wait().ok_or(Error::Stopped)
    }

    /// Hands a peer's batch to the store thread without waiting for it;
    /// the returned channel hears whether the batch was valid once it is
    /// merged (and logged, when logging). Requests from one thread are
    /// served in the order sent.
    pub fn apply_later(
        &self,
        batch: Batch,
    ) -> Result<Receiver<std::result::Result<(), BatchError>>> {
        let (reply, rx) = bounded(1);
        self.tx
            .send(Request::Apply {
                batch,
                join: None,
                reply,
            })
            .map_err(|_| Error::Stopped)?;
        Ok(rx)
    }

    /// Merges the last part of a transfer from a peer whose vector was
    /// `vv` (every earlier part merged already), and records the transfer
    /// as complete, in one log group.
    pub fn apply_and_join(
        &self,
        batch: Batch,
        vv: WireVv,
    ) -> Result<std::result::Result<(), BatchError>> {
        self.call(|reply| Request::Apply {
            batch,
            join: Some(vv),
            reply,
        })
    }

    /// One part of what a node that has seen `since` lacks (at the start
    /// of a transfer, when `cursor` is `None`, also this node's vector),
    /// without waiting for it: the part arrives on the returned channel, so
    /// the caller can send one part while the store thread gathers the
    /// next.
    pub fn delta_later(
        &self,
        since: WireVv,
        cursor: Option<Cursor>,
        max_bytes: usize,
    ) -> Result<Receiver<(Delta, Option<WireVv>)>> {
        let (reply, rx) = bounded(1);
        self.tx
            .send(Request::Delta {
                since,
                cursor,
                max_bytes,
                reply,
            })
            .map_err(|_| Error::Stopped)?;
        Ok(rx)
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

    /// Writes and fsyncs everything pending and stops the store thread:
    /// the last step of a clean stop. Later calls fail with `Stopped`.
    pub fn stop(&self) -> Result<std::result::Result<(), String>> {
        self.call(|reply| Request::Stop { reply })
    }
}

/// Microseconds since the Unix epoch (0 if the clock is before it).
pub fn wall_clock_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Most requests served before their log records are written together.
pub const MAX_GROUP: usize = 256;

/// Starts the store thread; it runs until every [`StoreHandle`] is dropped
/// or [`StoreHandle::stop`] is called. After each group of requests with a
/// local write it pokes `written` (never blocking), so the sync thread can
/// push soon. With a data directory, every change is logged before it is
/// acknowledged (see `Service`).
pub fn spawn(
    store: Store,
    disk: Option<DataDir>,
    written: Sender<()>,
) -> Result<(StoreHandle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = bounded(QUEUE_DEPTH);
    let service = Service {
        store,
        disk,
        pending: Vec::new(),
        wrote: false,
        written,
    };
    let thread = std::thread::Builder::new()
        .name("netdb-store".into())
        .spawn(move || service.run(&rx))
        .map_err(|source| Error::Io {
            context: "cannot start the store thread",
            source,
        })?;
    Ok((StoreHandle { tx }, thread))
}

/// Answers a data command that only reads (the data: a first `SCAN` builds
/// its index).
fn read_op(store: &mut Store, op: Op) -> OpReply {
    match op {
        Op::Get { key } => match store.get(&key) {
            Some(v) => OpReply::Value(v.to_vec()),
            None => OpReply::NotFound,
        },
        Op::Exists { key } => OpReply::Exists(store.get(&key).is_some()),
        Op::Keys { pattern } => OpReply::Keys(store.keys_where(|k| glob_match(&pattern, k))),
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
        Op::Put { .. } | Op::Delete { .. } => {
            unreachable!("writes are applied by the caller, never passed here")
        }
    }
}

/// Turns the acknowledgements of writes that were taken back into errors.
fn refuse_writes(replies: &mut [OpReply], why: &str) {
    for r in replies {
        if matches!(r, OpReply::Stored | OpReply::Deleted) {
            *r = OpReply::Refused(WriteError::NotLogged(why.to_owned()));
        }
    }
}

/// How long the store thread keeps looking for a request, yielding its
/// core between looks, before it sleeps on an empty channel.
const IDLE_POLL: Duration = Duration::from_micros(100);

/// The next request; `None` once every sender is gone.
///
/// A client that waits for each answer before it sends its next request
/// comes back tens of microseconds later. Were the store thread asleep by
/// then, every request would pay for waking it (a system call by the
/// sender, and the scheduler's latency) on top of waking the connection
/// thread. So it first looks for a request for [`IDLE_POLL`], yielding
/// its core to any other thread that can run between looks.
fn next_request(rx: &Receiver<Request>) -> Option<Request> {
    let deadline = Instant::now() + IDLE_POLL;
    loop {
        match rx.try_recv() {
            Ok(request) => return Some(request),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if Instant::now() < deadline => {
                std::thread::yield_now();
            }
            Err(TryRecvError::Empty) => return rx.recv().ok(),
        }
    }
}

/// A reply held back until the log records of its changes are written.
enum Deferred {
    Ops {
        reply: Answer<Vec<OpReply>>,
        replies: Vec<OpReply>,
    },
    Unit {
        reply: Sender<std::result::Result<(), BatchError>>,
        result: std::result::Result<(), BatchError>,
    },
}

/// The store thread's state.
///
/// Requests are served in groups: everything waiting in the channel (up to
/// [`MAX_GROUP`]) is applied, then the group's log records are written
/// with one write (and one fsync with `--fsync always`), and only then are
/// the replies of the changing requests sent. So concurrent writers share
/// an fsync, and no write is acknowledged before it is logged. If the log
/// write fails, the group's changes are taken back and their requests get
/// an error. Anything that sends data to a peer first waits for the
/// group's log write, so a peer never holds what this node failed to log.
struct Service {
    store: Store,
    disk: Option<DataDir>,
    pending: Vec<Deferred>,
    wrote: bool,
    written: Sender<()>,
}

impl Service {
    fn run(mut self, rx: &Receiver<Request>) {
        loop {
            let compacting = self.disk.as_ref().is_some_and(DataDir::is_compacting);
            let first = if compacting {
                match rx.recv_timeout(Duration::from_millis(1)) {
                    Ok(r) => Some(r),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match next_request(rx) {
                    Some(r) => Some(r),
                    None => break,
                }
            };
            if let Some(request) = first {
                if self.serve(request).is_break() {
                    return;
                }
                for _ in 1..MAX_GROUP {
                    match rx.try_recv() {
                        Ok(request) => {
                            if self.serve(request).is_break() {
                                return;
                            }
                        }
                        Err(_) => break,
                    }
                }
            }
            self.flush();
            if let Some(disk) = self.disk.as_mut() {
                disk.maybe_compact(&mut self.store);
                disk.step_compaction(&self.store);
                self.store.hold_tombstones(disk.is_compacting());
            }
        }
        self.store.close_journal();
        self.flush();
        if let Some(disk) = self.disk.as_mut() {
            let _ = disk.close();
        }
    }

    /// Flushes the group if it has records not yet in the log; returns why
    /// the log write failed, if it did.
    fn settle(&mut self) -> Option<String> {
        if self.store.has_journal() {
            self.flush()
        } else {
            None
        }
    }

    /// Writes the group's log records and sends its held-back replies;
    /// returns why the log write failed, if it did (the group's changes are
    /// then taken back and its requests refused).
    fn flush(&mut self) -> Option<String> {
        let failure = match self.disk.as_mut() {
            Some(disk) if self.store.has_journal() => {
                let records = self.store.take_journal();
                match disk.append(&records) {
                    Ok(()) => {
                        self.store.commit();
                        None
                    }
                    Err(e) => {
                        let why = e.to_string();
                        crate::log!("{why}; the writes of this group are refused");
                        self.store.rollback();
                        Some(why)
                    }
                }
            }
            _ => None,
        };
        for deferred in self.pending.drain(..) {
            match deferred {
                Deferred::Ops { reply, mut replies } => {
                    if let Some(why) = &failure {
                        refuse_writes(&mut replies, why);
                    }
                    reply.send(replies);
                }
                Deferred::Unit { reply, result } => {
                    let result = match &failure {
                        Some(why) => Err(BatchError(format!("not logged: {why}"))),
                        None => result,
                    };
                    let _ = reply.send(result);
                }
            }
        }
        if std::mem::take(&mut self.wrote) && failure.is_none() {
            // Full means a poke is already waiting; gone means no sync thread.
            if let Err(TrySendError::Disconnected(())) = self.written.try_send(()) {}
        }
        failure
    }

    /// Serves one request; `Break` after a stop.
    fn serve(&mut self, request: Request) -> ControlFlow<()> {
        let store = &mut self.store;
        match request {
            Request::Ops { ops, reply } => {
                let now = wall_clock_us();
                let mut wrote = false;
                let mut replies = Vec::with_capacity(ops.len());
                for op in ops {
                    let answer = match op {
                        Op::Put { key, value } => match self.store.put(&key, &value, now) {
                            Ok(()) => {
                                wrote = true;
                                OpReply::Stored
                            }
                            Err(e) => OpReply::Refused(e),
                        },
                        Op::Delete { key } => match self.store.delete(&key, now) {
                            Ok(()) => {
                                wrote = true;
                                OpReply::Deleted
                            }
                            Err(e) => OpReply::Refused(e),
                        },
                        read => {
                            // A read sees only what is in the log: were the
                            // pending records refused, it would have seen a
                            // write that never happened.
                            if let Some(why) = self.settle() {
                                refuse_writes(&mut replies, &why);
                            }
                            read_op(&mut self.store, read)
                        }
                    };
                    replies.push(answer);
                }
                if wrote {
                    self.wrote = true;
                    self.pending.push(Deferred::Ops { reply, replies });
                } else {
                    reply.send(replies);
                }
            }
            Request::Apply { batch, join, reply } => {
                let mut result = store.apply_batch(&batch);
                if let (Ok(()), Some(vv)) = (&result, join) {
                    result = store.join_version_vector(&vv);
                }
                self.pending.push(Deferred::Unit { reply, result });
            }
            Request::Delta {
                since,
                cursor,
                max_bytes,
                reply,
            } => {
                // What leaves for a peer must be in the log first.
                self.flush();
                let store = &self.store;
                let vv = cursor.is_none().then(|| store.version_vector());
                let _ = reply.send((store.delta(&since, cursor, max_bytes), vv));
            }
            Request::VersionVector { reply } => {
                self.flush();
                let _ = reply.send(self.store.version_vector());
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
                self.settle();
                let _ = reply.send(self.store.keys());
            }
            Request::Counts { reply } => {
                self.settle();
                let _ = reply.send(self.store.counts());
            }
            Request::Stop { reply } => {
                self.store.close_journal();
                self.flush();
                let result = self
                    .disk
                    .as_mut()
                    .map_or(Ok(()), |d| d.close().map_err(|e| e.to_string()));
                let _ = reply.send(result);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}
