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

use super::database::{self, Database, DatabaseSizes};
use super::service::Service;
use crate::core::version::Stamp;
use crate::durability::{CompactionStatus, LogCounts};
use crate::error::{Error, Result};
use crate::store::batch::{Batch, Summary, WireVv};
use crate::store::PartitionSet;
use crate::store::{
    BatchError, Counts, Cursor, DataDigest, Delta, IncrementError, Overclaim, PeerLag, WriteError,
};
use crossbeam_channel::{bounded, Receiver, Sender};
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One command of a front end, run on the store thread: it reads and
/// writes through the [`Db`] and returns the front end's reply.
pub type Command<R> = Box<dyn FnOnce(&mut Db<'_>) -> R + Send>;

/// A front end's reply type: what a command's reply becomes when the
/// writes it made (or the unlogged writes it read) could not be logged,
/// and so were taken back; and how many bytes it will take on its way
/// out, so that a connection's output can be held to a limit.
pub trait Refusable: Send + 'static {
    /// The reply of a command whose writes were refused for `why`.
    fn refused(why: &WriteError) -> Self;

    /// About how many bytes the reply takes once encoded.
    fn weight(&self) -> usize {
        0
    }
}

/// The store as a [`Command`] sees it, on the store thread.
///
/// Reads do not wait for the log: a read that may have seen a write not
/// yet logged (one made earlier in the same group) marks its reply, and
/// the reply is held back until the group's log write, like a write's
/// (and refused with the writes, should that log write fail). So a
/// pipeline that mixes writes and reads from many clients costs one log
/// write (one fsync with `--fsync always`), and no client ever sees a
/// value that was then taken back.
///
/// Every key a command names is in the [`Database`] selected for it
/// (database 0 unless the connection selected another): see the
/// section "Databases" below.
pub struct Db<'a> {
    pub(super) service: &'a mut Service,
    pub(super) now_us: u64,
    /// Whether this command wrote (and so waits for the log write).
    pub(super) wrote: bool,
    /// How many bytes of reply this command may still build before its
    /// connection is over its output limit.
    pub(super) budget: usize,
    /// Set by a command that stopped building its reply at the budget.
    pub(super) over_budget: bool,
    /// The database the keys of this command are in.
    pub(super) database: Database,
    /// How long each of this command's steps took, in nanoseconds (see
    /// [`Db::step`]).
    pub(super) steps: Vec<u64>,
}

impl Db<'_> {
    /// The value of `key`, or `None` if it is absent or deleted.
    pub fn get(&mut self, key: &[u8]) -> Option<&[u8]> {
        let stored = self.stored_key(key);
        self.service.store.get(&stored)
    }

    /// The version `key` has now (who wrote it and when), or `None` if
    /// it has none: any write to the key, local or merged from a peer,
    /// gives it a new one (`WATCH`).
    pub fn version(&mut self, key: &[u8]) -> Option<(Stamp, u64)> {
        let stored = self.stored_key(key);
        self.service.store.change_mark(&stored)
    }

    /// How many bytes of reply this command may build: a command whose
    /// reply can be far larger than its request (`MGET`, `KEYS`) checks
    /// it as it goes and, past it, calls [`exceed_budget`](Self::exceed_budget)
    /// and stops, rather than build a reply its connection may not hold.
    pub fn reply_budget(&self) -> usize {
        self.budget
    }

    /// Says that this command's reply would be over its connection's
    /// output limit: the reply is dropped and the connection closed.
    pub fn exceed_budget(&mut self) {
        self.over_budget = true;
    }

    /// Runs `f` as one step of this command, timed on its own: a
    /// transaction's `EXEC` runs each queued command as a step, and the
    /// front end gets each step's duration back beside the command's
    /// own ([`Part::steps`]), to count them one by one.
    pub fn step<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let start = std::time::Instant::now();
        let out = f(self);
        let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.steps.push(nanos);
        out
    }

    /// Whether `key` has a value.
    pub fn exists(&mut self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Stores `value` under `key`: a new local write, clocked, replicated
    /// and logged.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> std::result::Result<(), WriteError> {
        self.write(key, Some(value), None)
    }

    /// Stores `value` under `key`, expiring at `expires` (milliseconds
    /// since the Unix epoch) if given: a new local write like
    /// [`put`](Self::put), the expiry part of the value.
    pub fn put_expiring(
        &mut self,
        key: &[u8],
        value: &[u8],
        expires: Option<u64>,
    ) -> std::result::Result<(), WriteError> {
        self.write(key, Some(value), expires)
    }

    /// Stores `value` under `key` keeping the key's expiry, as Redis's
    /// `APPEND`, `INCR`, `SETRANGE` and `SET ... KEEPTTL` do.
    pub fn put_keeping_expiry(
        &mut self,
        key: &[u8],
        value: &[u8],
    ) -> std::result::Result<(), WriteError> {
        let expires = self.expiry(key);
        self.put_expiring(key, value, expires)
    }

    /// Adds `by` to the integer at `key` (0 if it has no value), as a
    /// counter whose concurrent increments on other nodes all count (see
    /// [`crate::core::counter`]); the key keeps its expiry. The new value,
    /// or why Redis would refuse it.
    pub fn increment(
        &mut self,
        key: &[u8],
        by: i64,
    ) -> std::result::Result<std::result::Result<i64, IncrementError>, WriteError> {
        let stored = self.stored_key(key);
        let store = &mut self.service.store;
        let before = store.data_digest();
        let was_live = DatabaseSizes::counts_one_by_one(&stored) && store.get(&stored).is_some();
        let done = store.increment(&stored, by, self.now_us)?;
        if done.is_ok() {
            let after = store.data_digest();
            (self.service.sizes).wrote(&stored, before, after, was_live, true);
            self.wrote = true;
        }
        Ok(done)
    }

    /// When `key`'s value expires (milliseconds since the Unix epoch), or
    /// `None` if it has no value or does not expire.
    pub fn expiry(&mut self, key: &[u8]) -> Option<u64> {
        let stored = self.stored_key(key);
        self.service.store.expiry(&stored)
    }

    /// The wall clock this command runs at, in microseconds since the Unix
    /// epoch (`TIME` inside a transaction).
    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    /// The wall time expiry is judged by, in milliseconds since the Unix
    /// epoch (see [`Store::now_ms`](crate::store::Store::now_ms)).
    pub fn now_ms(&self) -> u64 {
        self.service.store.now_ms()
    }

    /// Deletes `key`: a new local write (a tombstone).
    pub fn delete(&mut self, key: &[u8]) -> std::result::Result<(), WriteError> {
        self.write(key, None, None)
    }

    /// The live keys for which `wanted` says yes, in no particular order.
    pub fn keys_where(&mut self, wanted: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
        let db = self.database;
        let mut keys = (self.service.store)
            .keys_where(|stored| database::key_in(db, stored).is_some_and(&wanted));
        keys.iter_mut().for_each(database::strip);
        keys
    }

    /// One step of a `SCAN` over the live keys (see
    /// [`Store::scan`](crate::store::Store::scan) for what a cursor
    /// guarantees): the cursor to go on from (0 when complete) and the keys
    /// for which `wanted` says yes among about `count` visited. The
    /// entries visited are those of every database, so a step in a small
    /// database may find none.
    pub fn scan(
        &mut self,
        cursor: u64,
        count: usize,
        wanted: impl Fn(&[u8]) -> bool,
    ) -> (u64, Vec<Vec<u8>>) {
        let db = self.database;
        let (next, mut keys) = (self.service.store).scan(cursor, count, |stored| {
            database::key_in(db, stored).is_some_and(&wanted)
        });
        keys.iter_mut().for_each(database::strip);
        (next, keys)
    }

    /// What a node's status needs of the store (`INFO`), now: a write
    /// earlier in the group may not be logged yet (the reply then waits
    /// for the log write, like any read).
    pub fn facts(&mut self) -> StoreFacts {
        let databases = self.database_sizes();
        // Keys that expire, by database: one look at each, and only when a
        // database other than 0 has keys (else every one is database 0's,
        // which `StoreFacts::expiring` counts already).
        let mut expiring = std::collections::BTreeMap::<Database, usize>::new();
        if databases.iter().any(|&(db, _)| db != Database::ZERO) {
            for stored in self.service.store.expiring_keys() {
                if let Some((db, _)) = database::decode(stored) {
                    *expiring.entry(db).or_default() += 1;
                }
            }
        }
        StoreFacts {
            databases,
            expiring_by_database: expiring.into_iter().collect(),
            ..self.service.facts()
        }
    }

    /// The counter of this node's latest write: every local write made
    /// before it, by any client, is at or below it (`WAIT`).
    pub fn issued(&self) -> u64 {
        self.service.store.issued()
    }

    /// For each listed peer, by index, whether it has acknowledged this
    /// node's own writes up to `counter` (`WAIT`): cheap to ask often.
    pub fn peers_with_writes_up_to(&self, counter: u64) -> Vec<bool> {
        let store = &self.service.store;
        (0..store.peer_count())
            .map(|i| store.peer_has_own_writes(i, counter))
            .collect()
    }

    /// The number of live keys in the selected database.
    pub fn len(&mut self) -> usize {
        let (live, db) = (self.service.store.counts().live, self.database);
        self.sizes().size(db, live)
    }

    /// Whether the selected database has no live key.
    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// The digest of the live data of every database (`DEBUG DIGEST`):
    /// equal on every node that holds the same keys and values.
    pub fn digest(&mut self) -> DataDigest {
        self.service.store.data_digest()
    }

    /// The digest of `key` alone (`DEBUG DIGEST-VALUE`): all zeros when it
    /// has no value.
    pub fn key_digest(&mut self, key: &[u8]) -> DataDigest {
        let stored = self.stored_key(key);
        self.service.store.key_digest(&stored)
    }
}

/// # Databases
///
/// Databases are namespaces of the one replicated keyspace (see
/// [`database`]): every key-taking method above maps its key through
/// `Db::stored_key`, and the commands never see a stored key. The
/// selected database is set for each command from its connection's at
/// the time the command was dispatched, so a pipeline or a transaction
/// that selects between commands writes each where it was meant to.
impl Db<'_> {
    /// The database this command's keys are in.
    pub fn database(&self) -> Database {
        self.database
    }

    /// Puts this command's keys in `database` from now on (a front end's
    /// selection, or `MOVE` and `COPY ... DB` reaching another database).
    pub fn select(&mut self, database: Database) {
        self.database = database;
    }

    /// Runs `f` with this command's keys in `database`, and comes back to
    /// the database it was in.
    pub fn in_database<T>(&mut self, database: Database, f: impl FnOnce(&mut Self) -> T) -> T {
        let around = self.database;
        self.database = database;
        let out = f(self);
        self.database = around;
        out
    }

    /// The key the store holds `key` under in the selected database.
    fn stored_key<'k>(&self, key: &'k [u8]) -> Cow<'k, [u8]> {
        database::encode(self.database, key)
    }

    /// A local write of `key`, with each database's count kept up to date.
    fn write(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        expires: Option<u64>,
    ) -> std::result::Result<(), WriteError> {
        let stored = self.stored_key(key);
        let store = &mut self.service.store;
        let before = store.data_digest();
        // Only a prefixed key's own count moves one by one; database 0's
        // plain keys are the total's remainder.
        let was_live = DatabaseSizes::counts_one_by_one(&stored) && store.get(&stored).is_some();
        match value {
            Some(value) => store.put_expiring(&stored, value, expires, self.now_us)?,
            None => store.delete(&stored, self.now_us)?,
        }
        let after = store.data_digest();
        (self.service.sizes).wrote(&stored, before, after, was_live, value.is_some());
        self.wrote = true;
        Ok(())
    }

    /// Each database's counts, recounted first (one walk over the keys)
    /// if the live data changed since they were last valid by something
    /// other than this thread's own writes and merges of database 0's
    /// plain keys (see [`DatabaseSizes`]).
    fn sizes(&mut self) -> &DatabaseSizes {
        let digest = self.service.store.data_digest();
        if !self.service.sizes.is_valid_for(digest) {
            let prefixed = (self.service.store).keys_where(DatabaseSizes::counts_one_by_one);
            (self.service.sizes).recount(digest, prefixed.iter().map(Vec::as_slice));
        }
        &self.service.sizes
    }

    /// Every database with live keys, and how many (`INFO keyspace`).
    pub fn database_sizes(&mut self) -> Vec<(Database, usize)> {
        let live = self.service.store.counts().live;
        self.sizes().non_empty(live)
    }

    /// Deletes every live key of the selected database (`FLUSHDB`), as a
    /// flush deletes (see [`Store::flush_delete`](crate::store::Store::flush_delete)):
    /// the versions this node holds, so writes it has not seen survive;
    /// stops at the first refused one.
    pub fn flush_database(&mut self) -> std::result::Result<(), WriteError> {
        let db = self.database;
        let keys = (self.service.store).keys_where(|stored| database::key_in(db, stored).is_some());
        self.flush_keys(&keys)
    }

    /// [`Self::flush_database`] of every database at once (`FLUSHALL`).
    pub fn delete_everything(&mut self) -> std::result::Result<(), WriteError> {
        let keys = self.service.store.keys_where(|_| true);
        self.flush_keys(&keys)
    }

    /// Flush-deletes the stored keys `keys`, then recounts the databases.
    fn flush_keys(&mut self, keys: &[Vec<u8>]) -> std::result::Result<(), WriteError> {
        let mut result = Ok(());
        for stored in keys {
            result = self.service.store.flush_delete(stored, self.now_us);
            if result.is_err() {
                break;
            }
            self.wrote = true;
        }
        let digest = self.service.store.data_digest();
        let prefixed = (self.service.store).keys_where(DatabaseSizes::counts_one_by_one);
        (self.service.sizes).recount(digest, prefixed.iter().map(Vec::as_slice));
        result
    }

    /// A live key of the selected database picked at random
    /// (`RANDOMKEY`), or `None` if it has none: the first found from a
    /// random place in the scan order. The first call builds that order
    /// (see [`Store::scan`](crate::store::Store::scan)); a database with
    /// few of the node's keys may take a walk over many others.
    pub fn random_key(&mut self) -> Option<Vec<u8>> {
        use std::hash::BuildHasher;
        if self.is_empty() {
            return None;
        }
        let db = self.database;
        let start = std::collections::hash_map::RandomState::new().hash_one(self.now_us);
        let (mut cursor, mut wrapped) = (start, false);
        loop {
            let (next, keys) =
                (self.service.store).scan(cursor, 16, |k| database::key_in(db, k).is_some());
            if let Some(mut key) = keys.into_iter().next() {
                database::strip(&mut key);
                return Some(key);
            }
            match next {
                0 if wrapped => return None,
                0 => (cursor, wrapped) = (0, true),
                next if wrapped && next >= start => return None,
                next => cursor = next,
            }
        }
    }
}

/// The commands of one connection (or of the console) in a group (one request from an I/O thread),
/// run in order, and their replies.
pub struct Part<R> {
    /// Commands not run yet, in order. The store thread runs them from
    /// the front and leaves the rest here once the replies weigh
    /// [`soft_budget`](Self::soft_budget) or more.
    pub commands: std::collections::VecDeque<Command<R>>,
    /// The replies of the commands run, in order.
    pub replies: Vec<R>,
    /// How long each command run took on the store thread, in
    /// nanoseconds, in the order of `replies` (`INFO commandstats`,
    /// `SLOWLOG`): measured by the store thread, one clock read a command,
    /// so a front end need not wrap every command to time it.
    pub durations: Vec<u64>,
    /// The durations of the steps of the commands that ran in steps
    /// ([`Db::step`]), in nanoseconds: each with the index of its
    /// command's reply in `replies`. Empty unless one did.
    pub steps: Vec<(usize, Vec<u64>)>,
    /// The replies' weight after which no further command of this part
    /// runs in this trip (the connection stops until its output drains).
    pub soft_budget: usize,
    /// The most reply bytes one command may build (the connection's
    /// output limit, less what it holds already).
    pub hard_budget: usize,
    /// Set when a command's reply would have gone over `hard_budget`:
    /// its reply is dropped, nothing after it runs, and the connection
    /// must be closed.
    pub over_budget: bool,
}

impl<R> Part<R> {
    /// A part of `commands` with no limit on its replies.
    pub fn unbounded(commands: Vec<Command<R>>) -> Part<R> {
        Part {
            durations: Vec::new(),
            steps: Vec::new(),
            commands: commands.into(),
            replies: Vec::new(),
            soft_budget: usize::MAX,
            hard_budget: usize::MAX,
            over_budget: false,
        }
    }
}

/// Where a group's parts go back once their replies may be sent: called
/// on the store thread, so it must not block (it hands them over and
/// wakes their owner).
pub type GroupDone<R> = Box<dyn FnOnce(Vec<Part<R>>) + Send>;

/// The commands of many connections in one request to the store thread:
/// an I/O thread sends every connection's ready commands in one trip.
pub(super) struct Group<R> {
    pub(super) parts: Vec<Part<R>>,
    pub(super) done: GroupDone<R>,
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
        /// The partitions the other node holds: only theirs are sent.
        wanted: PartitionSet,
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
        /// The partitions it holds.
        partitions: PartitionSet,
    },
    /// Drop the tombstones every listed peer has acknowledged.
    CollectTombstones,
    /// Drop the partitions this node holds no more whose holders have
    /// all of them (see `Store::drop_released`).
    DropReleased {
        /// The partitions this node holds now.
        held: PartitionSet,
        /// The partitions each listed peer holds now, by index.
        peers: Vec<PartitionSet>,
    },
    /// Track listed peer `peer`: a member joined.
    AddPeer {
        /// Index in the peers list.
        peer: usize,
    },
    /// Listed peer `peer` is gone: its member left or was forgotten.
    ForgetPeer {
        /// Index in the peers list.
        peer: usize,
    },
    /// This node's data went back in time (a restored backup) and a peer
    /// sent its whole state: the values that peer has seen and no longer
    /// holds were deleted meanwhile (see [`Store::drop_deleted_meanwhile`](crate::store::Store::drop_deleted_meanwhile)).
    DropDeletedMeanwhile {
        /// The peer's vector when its state was sent.
        vv: WireVv,
        /// Every key it sent.
        keys: std::collections::HashSet<Vec<u8>>,
        /// The peer, for the log.
        peer: String,
    },
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
    /// Values with an expiry (`INFO keyspace`'s `expires=`).
    pub expiring: usize,
    /// Values turned into tombstones by their expiry since the start
    /// (`expired_keys`).
    pub expired: u64,
    /// The digest of the live data.
    pub digest: DataDigest,
    /// How far each listed peer is behind, by peer index.
    pub peer_lags: Vec<PeerLag>,
    /// Whether a snapshot is being written, and how the last one ended
    /// (`None` without a data directory).
    pub compaction: Option<CompactionStatus>,
    /// How often the log was written and fsynced (`None` without a data
    /// directory).
    pub log: Option<LogCounts>,
    /// Each database with live keys and how many, in index order; empty
    /// where they were not counted (a console's status).
    pub databases: Vec<(Database, usize)>,
    /// Keys with an expiry in each database that has any; empty where not
    /// counted.
    pub expiring_by_database: Vec<(Database, usize)>,
    /// The partitions this node has data of (sharded; see
    /// `Store::partitions_with_data`).
    pub partitions_with_data: PartitionSet,
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
        let (tx, rx) = bounded(1);
        let done: GroupDone<R> = Box::new(move |mut parts: Vec<Part<R>>| {
            let _ = tx.send(parts.pop().map(|p| p.replies));
        });
        self.submit(vec![Part::unbounded(commands)], done)?;
        rx.recv().ok().flatten().ok_or(Error::Stopped)
    }

    /// Sends the commands of many parts (an I/O thread's connections) in
    /// one request, without waiting: `done` gets the parts back, with
    /// their replies, once the replies may be sent (after the log write
    /// of any write they made or saw). Each part's commands run in order;
    /// parts are served in order. If the store thread is gone, `done` is
    /// never called and this fails.
    pub fn submit<R: Refusable>(&self, parts: Vec<Part<R>>, done: GroupDone<R>) -> Result<()> {
        self.tx
            .send(Request::Run(Box::new(Group { parts, done })))
            .map_err(|_| Error::Stopped)
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
        wanted: PartitionSet,
    ) -> Result<Receiver<(Delta, Option<Summary>)>> {
        let (reply, rx) = bounded(1);
        self.tx
            .send(Request::Delta {
                since,
                cursor,
                max_bytes,
                wanted,
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
    pub fn peer_acknowledged(
        &self,
        peer: usize,
        vv: WireVv,
        partitions: PartitionSet,
    ) -> Result<()> {
        self.tx
            .send(Request::PeerAcknowledged {
                peer,
                vv,
                partitions,
            })
            .map_err(|_| Error::Stopped)
    }

    /// Tracks listed peer `peer` (a member joined), without waiting.
    pub fn add_peer(&self, peer: usize) -> Result<()> {
        self.tx
            .send(Request::AddPeer { peer })
            .map_err(|_| Error::Stopped)
    }

    /// Stops tracking listed peer `peer` (its member is gone), without
    /// waiting.
    pub fn forget_peer(&self, peer: usize) -> Result<()> {
        self.tx
            .send(Request::ForgetPeer { peer })
            .map_err(|_| Error::Stopped)
    }

    /// Asks for a tombstone collection, without waiting.
    pub fn collect_tombstones(&self) -> Result<()> {
        self.tx
            .send(Request::CollectTombstones)
            .map_err(|_| Error::Stopped)
    }

    /// Drops, without waiting, the partitions this node holds no more
    /// (it holds `held`) once their holders have all of them.
    pub fn drop_released(&self, held: PartitionSet, peers: Vec<PartitionSet>) -> Result<()> {
        self.tx
            .send(Request::DropReleased { held, peers })
            .map_err(|_| Error::Stopped)
    }

    /// After a peer sent its whole state (`keys`, with its vector `vv`) to
    /// this node, whose data went back in time: drops the values it has
    /// seen and no longer holds (see `Request::DropDeletedMeanwhile`).
    pub fn drop_deleted_meanwhile(
        &self,
        vv: WireVv,
        keys: std::collections::HashSet<Vec<u8>>,
        peer: String,
    ) -> Result<()> {
        self.tx
            .send(Request::DropDeletedMeanwhile { vv, keys, peer })
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
