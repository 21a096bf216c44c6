//! Transfers in parts, both ways: [`Parts`] gathers what goes out,
//! [`Merges`] hands what comes in to the store thread; and how large a
//! part is, and how many are in flight.
//!
//! Both halves of the protocol use both: a pusher sends `Push` parts and
//! merges the `Pull` parts of the answer; a receiver merges `Push` parts
//! and answers with `Pull` parts. A transfer never holds more than a few
//! parts in memory on either side.

use crate::engine::StoreHandle;
use crate::replication::error::{Result, SyncError};
use crate::replication::wire::{Batch, Summary, WireVv};
use crate::store::GROUP_STRETCH;
use crate::store::{BatchError, Delta, Overclaim, PartitionSet};
use crossbeam_channel::{Receiver, TryRecvError};
use std::collections::VecDeque;

/// Largest part of a transfer, in bytes, when frames allow it.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// The part size for a node whose largest frame is `max_frame`: small
/// enough that a part stretched to hold one command's writes whole
/// ([`GROUP_STRETCH`] times as large) still takes at most half a frame,
/// which leaves room for the name table (a single entry may take more, and
/// always fits: values are limited to fit a frame alone).
pub fn part_bytes(max_frame: usize) -> usize {
    CHUNK_BYTES.min(max_frame / (2 * GROUP_STRETCH))
}

/// Most parts of one transfer in flight: parts a pusher sends ahead of
/// the peer's `Next` for the first of them, and parts a receiver has handed
/// to its store thread without having seen them merged. So the sender's
/// store thread, the encoding, the network, the decoding and the
/// receiver's store thread all work at once, while a transfer holds at
/// most a few parts of [`CHUNK_BYTES`] in memory on each side.
pub const PARTS_IN_FLIGHT: usize = 4;

/// The parts of a transfer to a node that has seen `since`, each gathered
/// by the store thread while the caller sends the one before.
pub struct Parts<'a> {
    store: &'a StoreHandle,
    since: WireVv,
    max_bytes: usize,
    wanted: PartitionSet,
    next: Option<Receiver<(Delta, Option<Summary>)>>,
    start: Option<Summary>,
}

impl<'a> Parts<'a> {
    /// Asks for the first part, of the partitions `wanted` only.
    pub fn new(
        store: &'a StoreHandle,
        since: WireVv,
        max_bytes: usize,
        wanted: PartitionSet,
    ) -> Result<Parts<'a>> {
        let next = Some(store.delta_later(since.clone(), None, max_bytes, wanted)?);
        Ok(Parts {
            store,
            since,
            max_bytes,
            wanted,
            next,
            start: None,
        })
    }

    /// The next part and whether it is the last, or `None` after the
    /// last; asks for the part after it before returning.
    pub fn next_part(&mut self) -> Result<Option<(Batch, bool)>> {
        let Some(rx) = self.next.take() else {
            return Ok(None);
        };
        let (delta, summary) = rx.recv().map_err(|_| SyncError::Stopped)?;
        if self.start.is_none() {
            self.start = summary;
        }
        if let Some(cursor) = delta.next {
            self.next = Some(self.store.delta_later(
                self.since.clone(),
                Some(cursor),
                self.max_bytes,
                self.wanted,
            )?);
        }
        Ok(Some((delta.batch, delta.next.is_none())))
    }

    /// This node's version vector and digest when the transfer started
    /// (known once the first part has been taken): the digest of exactly
    /// the data the first part was gathered from.
    pub fn start_summary(&self) -> Option<&Summary> {
        self.start.as_ref()
    }
}

/// The parts of an incoming transfer handed to the store thread and not
/// yet seen merged, oldest first. The next part is decoded while the store
/// thread merges this one; [`Merges::finish`] waits for all of them, so a
/// version vector is joined or acknowledged only once everything it
/// covers is merged (and logged, when logging).
///
/// The newest part is held back until the next arrives or the transfer
/// ends, so that the last part and the vector's join go to the store
/// thread as one request: one log group, one fsync with `--fsync
/// always`, where two requests would cost two.
///
/// Sharded, a transfer is merged for the partitions this node held when
/// it began ([`Merges::holding`]): entries of others are left out (a
/// sender whose view of the layout differs may send them), and of the
/// sender's vector only those partitions' entries are joined, so the
/// vector never claims what was left out.
pub struct Merges<'a> {
    store: &'a StoreHandle,
    repair: bool,
    pending: VecDeque<Receiver<std::result::Result<Vec<Overclaim>, BatchError>>>,
    held: Option<Batch>,
    holding: PartitionSet,
}

impl<'a> Merges<'a> {
    /// No merges in flight.
    pub fn new(store: &'a StoreHandle) -> Merges<'a> {
        Merges::for_repair(store, false)
    }

    /// No merges in flight; with `repair`, the parts are merged as the
    /// answer to a repair (see
    /// [`Store::apply_repair_batch`](crate::store::Store::apply_repair_batch)).
    pub fn for_repair(store: &'a StoreHandle, repair: bool) -> Merges<'a> {
        Merges {
            store,
            repair,
            pending: VecDeque::new(),
            held: None,
            holding: PartitionSet::all(),
        }
    }

    /// Merges only the partitions `held` of the transfers that begin from
    /// now on (and joins only theirs).
    pub fn holding(&mut self, held: PartitionSet) {
        if self.pending.is_empty() && self.held.is_none() {
            self.holding = held;
        }
    }

    /// Takes the next part of the transfer, and hands the one before it to
    /// the store thread. Merges already done are checked first, and with
    /// [`PARTS_IN_FLIGHT`] pending the oldest is waited for; a part the
    /// store refused there is the error.
    pub fn add(&mut self, mut batch: Batch) -> Result<()> {
        if !self.holding.is_all() {
            let holding = self.holding;
            batch.entries.retain(|e| holding.holds_key(&e.key.0));
        }
        let Some(batch) = self.held.replace(batch) else {
            return Ok(());
        };
        while let Some(oldest) = self.pending.front() {
            let merged = if self.pending.len() >= PARTS_IN_FLIGHT {
                oldest.recv().map_err(|_| SyncError::Stopped)?
            } else {
                match oldest.try_recv() {
                    Ok(merged) => merged,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return Err(SyncError::Stopped),
                }
            };
            self.pending.pop_front();
            merged?;
        }
        self.pending
            .push_back(self.store.apply_later(batch, self.repair)?);
        Ok(())
    }

    /// Ends a transfer from a peer whose vector was `vv`: waits until every
    /// part handed over is merged, then merges the last part and joins
    /// `vv`, only if every part was valid. Returns the entries of `vv`
    /// that claimed more than this node can verify: clamped, not joined
    /// (see [`crate::store::Overclaim`]).
    pub fn finish(&mut self, vv: WireVv, sent: Option<PartitionSet>) -> Result<Vec<Overclaim>> {
        let vv =
            crate::store::joinable(&vv, &sent.unwrap_or_else(PartitionSet::all), &self.holding);
        while let Some(oldest) = self.pending.pop_front() {
            oldest.recv().map_err(|_| SyncError::Stopped)??;
        }
        let last = self.held.take().unwrap_or_default();
        Ok(self.store.apply_and_join(last, vv, self.repair)??)
    }
}

/// Logs the vector entries a peer claimed above what this node can verify
/// (clamped, not joined; see [`crate::store::Overclaim`]): at warn the
/// first time on a connection (`warned` says whether that happened), then
/// at debug, since an honest peer whose collected tombstones this node
/// never saw makes the same claim every round.
pub fn report_overclaims(peer: &str, over: &[Overclaim], warned: &mut bool) {
    for o in over {
        if *warned {
            log::debug!("protocol: peer {peer}: {o}");
        } else {
            log::warn!("protocol: peer {peer}: {o}");
        }
    }
    *warned |= !over.is_empty();
}
