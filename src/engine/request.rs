//! The vocabulary every other thread uses to talk to the store thread:
//! one `Request` per thing asked, each carrying its own typed reply
//! channel, and the [`StoreHandle`] that sends them.
//!
//! Front ends (Redis connections, the console) send their commands as
//! [`Command`]s: closures that run on the store thread against a [`Db`]
//! and produce the front end's own reply type, so no caller matches
//! replies to requests by position. A batch of commands from one
//! connection is one request, so a pipelining client costs one channel
//! trip per batch, not per command.
//!
//! Nothing here touches a socket or parses a protocol.

use super::service::Service;
use super::slot::{Answer, ReplySlot};
use crate::core::version::Stamp;
use crate::durability::CompactionStatus;
use crate::error::{Error, Result};
use crate::store::batch::{Batch, Summary, WireVv};
use crate::store::{BatchError, Counts, Cursor, DataDigest, Delta, Overclaim, PeerLag, WriteError};
use crossbeam_channel::{bounded, Receiver, Sender};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One command of a front end, run on the store thread: it reads and
/// writes through the [`Db`] and returns the front end's reply.
pub type Command<R> = Box<dyn FnOnce(&mut Db<'_>) -> R + Send>;

/// A front end's reply type: what a command's reply becomes when the
/// writes it made could not be logged, and so were taken back.
pub trait Refusable: Send + 'static {
    /// The reply of a command whose writes were refused for `why`.
    fn refused(why: &WriteError) -> Self;
}

/// The store as a [`Command`] sees it, on the store thread.
///
/// A read sees only what is in the log: before the first read after
/// writes not yet logged, the group's records are written (were they
/// refused, the read would have seen a write that never happened).
pub struct Db<'a> {
    pub(super) service: &'a mut Service,
    pub(super) now_us: u64,
    /// Whether this command wrote (and so waits for the log write).
    pub(super) wrote: bool,
    /// Why the log write forced by a read failed, if it did.
    pub(super) refused: Option<WriteError>,
}

impl Db<'_> {
    fn settle(&mut self) {
        if let Some(why) = self.service.settle() {
            self.refused.get_or_insert(WriteError::NotLogged(why));
        }
    }

    /// The value of `key`, or `None` if it is absent or deleted.
    pub fn get(&mut self, key: &[u8]) -> Option<&[u8]> {
        self.settle();
        self.service.store.get(key)
    }

    /// The version `key` has now (who wrote it and when), or `None` if
    /// it has none: any write to the key, local or merged from a peer,
    /// gives it a new one (`WATCH`).
    pub fn version(&mut self, key: &[u8]) -> Option<Stamp> {
        self.settle();
        self.service.store.stamp(key)
    }

    /// Whether `key` has a value.
    pub fn exists(&mut self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Stores `value` under `key`: a new local write, clocked, replicated
    /// and logged.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> std::result::Result<(), WriteError> {
        self.service.store.put(key, value, self.now_us)?;
        self.wrote = true;
        Ok(())
    }

    /// Deletes `key`: a new local write (a tombstone).
    pub fn delete(&mut self, key: &[u8]) -> std::result::Result<(), WriteError> {
        self.service.store.delete(key, self.now_us)?;
        self.wrote = true;
        Ok(())
    }

    /// The live keys for which `wanted` says yes, in no particular order.
    pub fn keys_where(&mut self, wanted: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
        self.settle();
        self.service.store.keys_where(wanted)
    }

    /// One step of a `SCAN` over the live keys (see
    /// [`Store::scan`](crate::store::Store::scan) for what a cursor
    /// guarantees): the cursor to go on from (0 when complete) and the keys
    /// for which `wanted` says yes among about `count` visited.
    pub fn scan(
        &mut self,
        cursor: u64,
        count: usize,
        wanted: impl Fn(&[u8]) -> bool,
    ) -> (u64, Vec<Vec<u8>>) {
        self.settle();
        self.service.store.scan(cursor, count, wanted)
    }

    /// The number of live keys.
    pub fn len(&mut self) -> usize {
        self.settle();
        self.service.store.counts().live
    }

    /// Whether no key is live.
    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// The digest of the live data (`DEBUG DIGEST`): equal on every node
    /// that holds the same keys and values.
    pub fn digest(&mut self) -> DataDigest {
        self.settle();
        self.service.store.data_digest()
    }

    /// The digest of `key` alone (`DEBUG DIGEST-VALUE`): all zeros when it
    /// has no value.
    pub fn key_digest(&mut self, key: &[u8]) -> DataDigest {
        self.settle();
        self.service.store.key_digest(key)
    }
}

/// A front end's batch of commands with the slot its replies go to.
pub(super) struct Batched<R> {
    pub(super) commands: Vec<Command<R>>,
    pub(super) reply: Answer<Vec<R>>,
}

/// A batch with its reply type erased, so that one request variant
/// carries every front end's batches.
pub(super) trait Work: Send {
    /// Runs the commands on the store thread; the replies are sent, or
    /// held back until the batch's writes are logged.
    fn run(self: Box<Self>, service: &mut Service);
}

/// A request to the store thread.
pub(super) enum Request {
    /// Run a front end's commands in order (see [`Command`]).
    Run(Box<dyn Work>),
    /// Merge a batch from a peer and, when it is valid and `join` is
    /// given, record that a transfer from a peer whose vector was `join`
    /// is complete: both in one log group, so one fsync.
    Apply {
        /// The versions.
        batch: Batch,
        /// The peer's vector at the start of the transfer, when this is
        /// its last part.
        join: Option<WireVv>,
        /// Whether this is the answer to a repair, whose values for keys
        /// not held are taken even where the vector covers their clocks
        /// (see [`Store::apply_repair_batch`](crate::store::Store::apply_repair_batch)).
        repair: bool,
        /// Whether the batch and the vector were valid.
        reply: Sender<std::result::Result<Vec<Overclaim>, BatchError>>,
    },
    /// One part of what a node that has seen `since` lacks.
    Delta {
        /// The other node's version vector.
        since: WireVv,
        /// Where the previous part stopped; `None` starts a transfer.
        cursor: Option<Cursor>,
        /// Target part size.
        max_bytes: usize,
        /// The part, and at the start of a transfer this node's vector
        /// and digest as they were when the part was gathered.
        reply: Sender<(Delta, Option<Summary>)>,
    },
    /// A peer's version vector as it first arrives: if the peer has seen
    /// more of this node's writer than this node has issued, go on under a
    /// new identity (see [`Store::is_behind`](crate::store::Store::is_behind)).
    CheckHistory {
        /// Who sent it, for the log line.
        peer: String,
        /// Its vector.
        vv: WireVv,
        /// Whether this node took a new identity.
        reply: Sender<bool>,
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
    /// What `status`, `INFO` and `NETDB.STATUS` need of the store, at
    /// one instant.
    Facts {
        /// Where they go.
        reply: Sender<StoreFacts>,
    },
    /// The live keys, sorted.
    Keys {
        /// Where they go.
        reply: Sender<Vec<Vec<u8>>>,
    },
    /// Write and fsync what is pending, then stop serving.
    Stop {
        /// Whether the final fsync succeeded.
        reply: Sender<std::result::Result<(), String>>,
    },
}

/// What a node's status needs of the store (see [`StoreHandle::facts`]).
#[derive(Debug, Clone)]
pub struct StoreFacts {
    /// Key and tombstone counts.
    pub counts: Counts,
    /// The digest of the live data.
    pub digest: DataDigest,
    /// How far each listed peer is behind, by peer index.
    pub peer_lags: Vec<PeerLag>,
    /// Whether a snapshot is being written, and how the last one ended
    /// (`None` without a data directory).
    pub compaction: Option<CompactionStatus>,
}

/// A cloneable way to talk to the store thread.
#[derive(Clone)]
pub struct StoreHandle {
    pub(super) tx: Sender<Request>,
    /// How many times this node has taken a new writer identity; pushers
    /// make a full round after each (see [`StoreHandle::check_history`]).
    pub(super) renewals: Arc<AtomicU64>,
}

impl StoreHandle {
    fn call<T>(&self, make: impl FnOnce(Sender<T>) -> Request) -> Result<T> {
        let (tx, rx) = bounded(1);
        self.tx.send(make(tx)).map_err(|_| Error::Stopped)?;
        rx.recv().map_err(|_| Error::Stopped)
    }

    /// Runs a front end's commands in order, in one trip to the store
    /// thread, and returns their replies in the same order.
    pub fn run<R: Refusable>(&self, commands: Vec<Command<R>>) -> Result<Vec<R>> {
        self.run_via(&ReplySlot::new(), commands)
    }

    /// [`run`](Self::run) with the answer coming through `slot`, which a
    /// client connection makes once and reuses for every batch.
    pub fn run_via<R: Refusable>(
        &self,
        slot: &ReplySlot<Vec<R>>,
        commands: Vec<Command<R>>,
    ) -> Result<Vec<R>> {
        let reply = slot.answer();
        self.tx
            .send(Request::Run(Box::new(Batched { commands, reply })))
            .map_err(|_| Error::Stopped)?;
        slot.wait().ok_or(Error::Stopped)
    }

    /// Hands a peer's batch to the store thread without waiting for it;
    /// the returned channel hears whether the batch was valid once it is
    /// merged (and logged, when logging). Requests from one thread are
    /// served in the order sent.
    /// With `repair`, it is merged as a repair's
    /// ([`Store::apply_repair_batch`](crate::store::Store::apply_repair_batch)).
    pub fn apply_later(
        &self,
        batch: Batch,
        repair: bool,
    ) -> Result<Receiver<std::result::Result<Vec<Overclaim>, BatchError>>> {
        let (reply, rx) = bounded(1);
        self.tx
            .send(Request::Apply {
                batch,
                join: None,
                repair,
                reply,
            })
            .map_err(|_| Error::Stopped)?;
        Ok(rx)
    }

    /// Merges the last part of a transfer from a peer whose vector was
    /// `vv` (every earlier part merged already), and records the transfer
    /// as complete, in one log group. The entries of `vv` above what this
    /// node can verify are not joined; they are returned, for the caller
    /// to log.
    pub fn apply_and_join(
        &self,
        batch: Batch,
        vv: WireVv,
        repair: bool,
    ) -> Result<std::result::Result<Vec<Overclaim>, BatchError>> {
        self.call(|reply| Request::Apply {
            batch,
            join: Some(vv),
            repair,
            reply,
        })
    }

    /// One part of what a node that has seen `since` lacks (at the start
    /// of a transfer, when `cursor` is `None`, also this node's vector and
    /// digest),
    /// without waiting for it: the part arrives on the returned channel, so
    /// the caller can send one part while the store thread gathers the
    /// next.
    pub fn delta_later(
        &self,
        since: WireVv,
        cursor: Option<Cursor>,
        max_bytes: usize,
    ) -> Result<Receiver<(Delta, Option<Summary>)>> {
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

    /// Checks a peer's version vector as it first arrives (at the
    /// handshake, or at the end of the peer's push, before anything is
    /// sent back): if the peer has seen more of this node's writer than
    /// this node has issued (its data went back in time), this node goes
    /// on under a new identity, logged at error level. Returns whether it
    /// did.
    pub fn check_history(&self, peer: &str, vv: WireVv) -> Result<bool> {
        self.call(|reply| Request::CheckHistory {
            peer: peer.to_owned(),
            vv,
            reply,
        })
    }

    /// How many times this node has taken a new identity since it
    /// started. After each, every pusher makes one full round with its
    /// peer: the old identity's vector may claim writes this node lost
    /// (a normal round would never send them), and any transfer under
    /// way may have been made against that vector.
    pub fn renewals(&self) -> u64 {
        self.renewals.load(Ordering::SeqCst)
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

    /// What a node's status needs of the store, in one trip and taken at
    /// one instant (so the counts, the digest and the lags agree).
    pub fn facts(&self) -> Result<StoreFacts> {
        self.call(|reply| Request::Facts { reply })
    }

    /// The live keys, sorted.
    pub fn keys(&self) -> Result<Vec<Vec<u8>>> {
        self.call(|reply| Request::Keys { reply })
    }

    /// Writes and fsyncs everything pending and stops the store thread:
    /// the last step of a clean stop. Later calls fail with `Stopped`.
    pub fn stop(&self) -> Result<std::result::Result<(), String>> {
        self.call(|reply| Request::Stop { reply })
    }
}
