//! The store thread: the one owner of the [`Store`], serving requests that
//! arrive on one channel from the CLI, the peer connections and the sync
//! thread.
//!
//! Requests carry their own reply channel. Client writes come in batches
//! (one request for many commands) so a fast client costs one channel trip
//! per batch, not per command. The thread reads the wall clock once per
//! request and passes it into the store; it ends when every sender is gone.

use super::database::{Database, DatabaseSizes};
use super::request::{Db, Group, Refusable, Request, StoreFacts, StoreHandle, Work};
use crate::durability::journal::node_of;
use crate::durability::DataDir;
use crate::error::{Error, Result};
use crate::store::{BatchError, Overclaim, Store, WriteError};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// How many requests may wait for the store thread before senders block.
pub const QUEUE_DEPTH: usize = 1024;

/// Microseconds since the Unix epoch (0 if the clock is before it).
pub fn wall_clock_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Nanoseconds from `start` to `end`, saturating.
pub fn nanos_between(start: Instant, end: Instant) -> u64 {
    u64::try_from(end.saturating_duration_since(start).as_nanos()).unwrap_or(u64::MAX)
}

/// Most requests served before their log records are written together.
pub const MAX_GROUP: usize = 256;

/// Most expired values turned into tombstones per turn of the store
/// thread, so that a million keys expiring at once delay other requests
/// by a few milliseconds at a time, not all at once (Redis's active
/// expiry bounds its work per cycle the same way).
pub const EXPIRE_PER_TURN: usize = 2_000;

/// Longest the store thread waits for a request while values are due to
/// expire later: the latest an expired value is turned into a tombstone
/// after its time, beyond the time of the soonest one.
const EXPIRY_TICK: Duration = Duration::from_millis(100);

/// Starts the store thread; it runs until every [`StoreHandle`] is dropped
/// or [`StoreHandle::stop`] is called. After each group of requests with a
/// local write, once it is logged, it calls `written`, which must not
/// block: the node starts a push round from there, so a write goes to the
/// peers without waiting for another thread to wake and pass it on. With
/// a data directory, every change is logged before it is acknowledged
/// (see `Service`).
pub fn spawn(
    store: Store,
    disk: Option<DataDir>,
    written: OnWrite,
) -> Result<(StoreHandle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = bounded(QUEUE_DEPTH);
    let renewals = Arc::new(AtomicU64::new(0));
    let service = Service {
        store,
        disk,
        pending: Vec::new(),
        wrote: false,
        written,
        renewals: Arc::clone(&renewals),
        sizes: DatabaseSizes::default(),
        now_us: 0,
    };
    let thread = std::thread::Builder::new()
        .name("netdb-store".into())
        .spawn(move || service.run(&rx))
        .map_err(|source| Error::Io {
            context: "cannot start the store thread",
            source,
        })?;
    Ok((StoreHandle { tx, renewals }, thread))
}

/// Sends a held-back batch's replies, given why the log write failed if
/// it did.
type SendReplies = Box<dyn FnOnce(Option<&WriteError>) + Send>;

/// A reply held back until the log records of its changes are written.
enum Deferred {
    /// A front end's batch: sends its replies, the writing ones refused
    /// when given why the log write failed.
    Run(SendReplies),
    Unit {
        reply: Sender<std::result::Result<Vec<Overclaim>, BatchError>>,
        result: std::result::Result<Vec<Overclaim>, BatchError>,
    },
}

/// Called by the store thread after a group with local writes is logged,
/// with the partitions they wrote to (every one when not sharded); it
/// must not block.
pub type OnWrite = Box<dyn Fn(&crate::store::PartitionSet) + Send>;

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
pub(super) struct Service {
    pub(super) store: Store,
    disk: Option<DataDir>,
    pending: Vec<Deferred>,
    wrote: bool,
    written: OnWrite,
    /// Shared with every [`StoreHandle`]: new identities taken.
    renewals: Arc<AtomicU64>,
    /// Each database's live keys (`DBSIZE`, `INFO keyspace`).
    pub(super) sizes: DatabaseSizes,
    /// The wall clock as the request being served read it: one read a
    /// request, for its writes' stamps and its reads' expiry alike.
    now_us: u64,
}

impl Service {
    fn run(mut self, rx: &Receiver<Request>) {
        loop {
            let compacting = self.disk.as_ref().is_some_and(DataDir::is_compacting);
            let wait = if compacting {
                Some(Duration::from_millis(1))
            } else {
                self.until_next_expiry()
            };
            let first = if let Some(wait) = wait {
                match rx.recv_timeout(wait) {
                    Ok(r) => Some(r),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(r) => Some(r),
                    Err(_) => break,
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
            self.store.set_now(wall_clock_us());
            self.store.expire_due(EXPIRE_PER_TURN);
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

    /// How long to wait for a request before the next value is due to
    /// expire (at most [`EXPIRY_TICK`]), or `None` when no value expires.
    fn until_next_expiry(&self) -> Option<Duration> {
        let at = self.store.next_expiry()?;
        let now_ms = wall_clock_us() / 1000;
        Some(Duration::from_millis(at.saturating_sub(now_ms)).min(EXPIRY_TICK))
    }

    /// Flushes the group if it has records not yet in the log; returns why
    /// the log write failed, if it did.
    pub(super) fn settle(&mut self) -> Option<String> {
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
                        log::error!("{why}; the writes of this group are refused");
                        self.store.rollback();
                        Some(why)
                    }
                }
            }
            _ => None,
        };
        for deferred in self.pending.drain(..) {
            match deferred {
                Deferred::Run(send) => {
                    let refused = failure
                        .as_ref()
                        .map(|why| WriteError::NotLogged(why.clone()));
                    send(refused.as_ref());
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
            (self.written)(&self.store.take_written_partitions());
        }
        failure
    }

    /// Takes a new writer identity if `vv`, from `peer`, shows that this
    /// node's data went back in time (see
    /// [`Store::is_behind`](crate::store::Store::is_behind)); returns
    /// whether it did. The records so far go to the old identity's log;
    /// the new identity starts a new log file (so a restart goes on under
    /// it) with the re-issued writes.
    fn check_history(&mut self, peer: &str, vv: &crate::store::batch::WireVv) -> bool {
        let Some(behind) = self.store.is_behind(vv) else {
            return false;
        };
        let old = self.store.writer().to_owned();
        let now_us = wall_clock_us();
        let new_writer = format!("{}#{now_us}", node_of(&old));
        log::error!(
            "IDENTITY: peer {peer} has seen writer {old} up to counter {}, but this node \
             has issued only up to {}: its data went back in time (a backup restored, a \
             copied or rolled-back data directory); going on as {new_writer} and pulling \
             what it lacks from its peers",
            behind.peer_has,
            behind.issued,
        );
        // What the old identity wrote goes to its own log first.
        self.flush();
        let reissued = self.store.renew_identity(&new_writer, now_us);
        if let Some(disk) = self.disk.as_mut() {
            if let Err(e) = disk.start_log(&mut self.store) {
                log::error!("cannot start the log of the new identity {new_writer}: {e}");
            }
        }
        if reissued > 0 {
            log::warn!("re-issued {reissued} writes made since the start as {new_writer}");
            self.wrote = true;
        }
        self.flush();
        self.renewals.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// What a node's status needs of the store, now.
    pub(super) fn facts(&self) -> StoreFacts {
        let store = &self.store;
        StoreFacts {
            counts: store.counts(),
            expiring: store.expiring_count(),
            expired: store.expired_count(),
            digest: store.data_digest(),
            peer_lags: (0..store.peer_count()).map(|i| store.peer_lag(i)).collect(),
            compaction: self.disk.as_ref().map(DataDir::compaction_status),
            log: self.disk.as_ref().map(DataDir::log_counts),
            databases: Vec::new(),
            expiring_by_database: Vec::new(),
            partitions_with_data: store.partitions_with_data(),
        }
    }

    /// Serves one request; `Break` after a stop.
    fn serve(&mut self, request: Request) -> ControlFlow<()> {
        self.now_us = wall_clock_us();
        self.store.set_now(self.now_us);
        let store = &mut self.store;
        match request {
            Request::Run(work) => work.run(self),
            Request::Apply {
                mut batch,
                join,
                repair,
                reply,
            } => {
                let dropped = drop_merged_entry(&mut batch);
                let now_us = self.now_us;
                let before = store.data_digest();
                let applied = if repair {
                    store.apply_repair_batch(&batch, now_us)
                } else {
                    store.apply_batch(&batch, now_us)
                };
                let keys = batch.entries.iter().map(|e| e.key.0.as_slice());
                (self.sizes).merged(keys, before, store.data_digest());
                let result = match (applied, join) {
                    (Ok(()), Some(vv)) => joined_after_merge(store, &vv, dropped),
                    (applied, _) => applied.map(|()| Vec::new()),
                };
                self.pending.push(Deferred::Unit { reply, result });
            }
            Request::Delta {
                since,
                cursor,
                max_bytes,
                wanted,
                reply,
            } => {
                // What leaves for a peer must be in the log first.
                self.flush();
                let store = &self.store;
                let summary = cursor.is_none().then(|| store.summary());
                let delta = store.delta_for(&since, cursor, max_bytes, &wanted);
                let _ = reply.send((delta, summary));
            }
            Request::CheckHistory { peer, vv, reply } => {
                let renewed = self.check_history(&peer, &vv);
                let _ = reply.send(renewed);
            }
            Request::VersionVector { reply } => {
                self.flush();
                let _ = reply.send(self.store.version_vector());
            }
            Request::PeerAcknowledged {
                peer,
                vv,
                partitions,
            } => {
                store.set_peer_partitions(peer, partitions);
                if let Err(e) = store.peer_acknowledged(peer, &vv) {
                    log::warn!("ignored an acknowledgement: {e}");
                }
            }
            Request::CollectTombstones => {
                store.collect_tombstones();
            }
            Request::DropReleased { held, peers } => {
                for (i, parts) in peers.into_iter().enumerate() {
                    store.set_peer_partitions(i, parts);
                }
                let (partitions, entries) = store.drop_released(&held);
                store.collect_tombstones_of_holders();
                if partitions > 0 {
                    log::info!(
                        "handed off {partitions} partitions this node holds no more: \
                         {entries} entries dropped, every holder has them"
                    );
                }
            }
            Request::AddPeer { peer } => store.add_peer(peer),
            Request::ForgetPeer { peer } => {
                store.forget_peer(peer);
            }
            Request::DropDeletedMeanwhile { vv, keys, peer } => {
                let dropped = store.drop_deleted_meanwhile(&vv, &keys);
                if dropped > 0 {
                    log::warn!(
                        "dropped {dropped} values that peer {peer} had deleted while this \
                         node's data was behind (its data went back in time)"
                    );
                }
            }
            Request::Facts { reply } => {
                self.settle();
                let _ = reply.send(self.facts());
            }
            Request::Keys { reply } => {
                self.settle();
                let _ = reply.send(self.store.keys());
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

/// Fail point `store::drop_merged` (with the `failpoints` feature): when
/// it fires, the last entry of the next non-empty batch from a peer is
/// silently dropped before the merge, while the transfer's vector is
/// still joined, whole (see [`joined_after_merge`]). So the node believes
/// it holds what it does not: the divergence that only the digest
/// comparison of anti-entropy can find (see
/// [`crate::replication::anti_entropy`]). Says whether it fired; without
/// the feature it does nothing.
fn drop_merged_entry(batch: &mut crate::store::batch::Batch) -> bool {
    if batch.entries.is_empty() {
        return false;
    }
    #[cfg_attr(not(feature = "failpoints"), allow(unused_mut))]
    let mut drop_last = || -> bool {
        fail::fail_point!("store::drop_merged", |_| {
            if let Some(gone) = batch.entries.pop() {
                log::debug!("fail point store::drop_merged: dropped key {:?}", gone.key);
            }
            true
        });
        false
    };
    drop_last()
}

/// Joins the vector of a transfer whose parts are merged. Normally only
/// up to what this node can verify; after the fail point
/// `store::drop_merged` fired, whole, as a node that lost an entry by a
/// bug of its own would: the dropped entry's dot may be the only one that
/// showed the vector's claim.
fn joined_after_merge(
    store: &mut Store,
    vv: &crate::store::batch::WireVv,
    dropped: bool,
) -> std::result::Result<Vec<Overclaim>, BatchError> {
    #[cfg(feature = "failpoints")]
    if dropped {
        return store.join_version_vector_unbounded(vv).map(|()| Vec::new());
    }
    let _ = dropped;
    store.join_version_vector(vv)
}

/// Whether a command's reply waits for the group's log write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// It wrote nothing, and nothing unlogged was there to read.
    Clean,
    /// It wrote: refused if the log write fails.
    Wrote,
    /// It may have read a write not yet logged: not answered if the log
    /// write fails.
    Read,
}

impl<R: Refusable> Work for Group<R> {
    fn run(self: Box<Self>, service: &mut Service) {
        let Group { mut parts, done } = *self;
        let now_us = service.now_us;
        // Per part, per reply: whether it wrote or read a write not yet
        // logged, and so waits for the group's log write.
        let mut unlogged: Vec<Vec<Mark>> = Vec::with_capacity(parts.len());
        let mut wrote = false;
        // One clock read a command: each one's end is the next one's start.
        let mut clock = Instant::now();
        for part in &mut parts {
            let mut marks = Vec::with_capacity(part.commands.len());
            let mut weight = 0usize;
            while weight < part.soft_budget {
                let Some(command) = part.commands.pop_front() else {
                    break;
                };
                let mut db = Db {
                    service,
                    now_us,
                    wrote: false,
                    budget: part.hard_budget.saturating_sub(weight),
                    over_budget: false,
                    database: Database::ZERO,
                    steps: Vec::new(),
                };
                let issued = db.service.store.issued();
                let answer = command(&mut db);
                // Several writes from one command (a transaction, `MSET`)
                // reach each peer in one part.
                let now_issued = db.service.store.issued();
                if now_issued > issued + 1 {
                    db.service.store.note_group(issued + 1, now_issued);
                }
                let (did_write, over) = (db.wrote, db.over_budget);
                let steps = std::mem::take(&mut db.steps);
                let answer_weight = answer.weight();
                if over || weight.saturating_add(answer_weight) > part.hard_budget {
                    part.over_budget = true;
                    part.commands.clear();
                    wrote |= did_write;
                    break;
                }
                weight += answer_weight;
                wrote |= did_write;
                marks.push(if did_write {
                    Mark::Wrote
                } else if service.store.has_journal() {
                    Mark::Read
                } else {
                    Mark::Clean
                });
                if !steps.is_empty() {
                    part.steps.push((part.replies.len(), steps));
                }
                part.replies.push(answer);
                let ran = Instant::now();
                part.durations.push(nanos_between(clock, ran));
                clock = ran;
            }
            unlogged.push(marks);
        }
        if unlogged.iter().flatten().all(|&m| m == Mark::Clean) {
            return done(parts);
        }
        service.wrote |= wrote;
        service.pending.push(Deferred::Run(Box::new(move |failure| {
            if let Some(why) = failure {
                let read = match why {
                    WriteError::NotLogged(cause) => WriteError::ReadNotLogged(cause.clone()),
                    other => other.clone(),
                };
                for (part, marks) in parts.iter_mut().zip(&unlogged) {
                    for (reply, &mark) in part.replies.iter_mut().zip(marks) {
                        match mark {
                            Mark::Wrote => *reply = R::refused(why),
                            Mark::Read => *reply = R::refused(&read),
                            Mark::Clean => {}
                        }
                    }
                }
            }
            done(parts);
        })));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Command;

    /// A reply type for the tests: what a command saw, or why it was refused.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Done,
        Value(Option<Vec<u8>>),
        Refused(String),
    }

    impl Refusable for Seen {
        fn refused(why: &WriteError) -> Seen {
            Seen::Refused(why.to_string())
        }
    }

    #[test]
    fn a_batch_runs_in_order_and_each_command_gets_its_own_reply() {
        let (store, thread) =
            spawn(Store::new("a#1", 1 << 20), None, Box::new(|_| {})).expect("store thread");
        let commands: Vec<Command<Seen>> = vec![
            Box::new(|db| Seen::Value(db.get(b"k").map(<[u8]>::to_vec))),
            Box::new(|db| match db.put(b"k", b"v") {
                Ok(()) => Seen::Done,
                Err(e) => Seen::refused(&e),
            }),
            Box::new(|db| Seen::Value(db.get(b"k").map(<[u8]>::to_vec))),
            Box::new(|db| match db.put(b"k", &[0; (1 << 20) + 1]) {
                Ok(()) => Seen::Done,
                Err(e) => Seen::refused(&e),
            }),
        ];
        let replies = store.run(commands).expect("served");
        assert_eq!(
            replies,
            vec![
                Seen::Value(None),
                Seen::Done,
                Seen::Value(Some(b"v".to_vec())),
                Seen::Refused("value of 1048577 bytes is over the limit of 1048576".into()),
            ]
        );
        store.stop().expect("served").expect("stopped cleanly");
        thread.join().expect("store thread ends");
    }
}
