//! The clocked map: every key's current version, local writes, the merge
//! of versions from peers, and what to send a peer that has seen a given
//! version vector.
//!
//! One [`Store`] is owned by the store thread and by nothing else, so it
//! takes no locks. It is pure: the wall clock is passed in (`now_us`,
//! microseconds since the Unix epoch) and it does no I/O. It imports the
//! causal core and the wire's batch types, never a thread, socket, file
//! or clock, and never the durability layer (which it reaches through the
//! [`ChangeLog`] trait that layer implements).
//!
//! # Files
//!
//! | file | holds |
//! | --- | --- |
//! | `mod.rs` | the map itself: entries, the hash table, the dot index, local writes |
//! | `batch.rs` | versions as stores exchange them: batches and version vectors by name |
//! | `digest.rs` | the digest of the live data, equal on replicas that hold the same |
//! | `merge.rs` | merging a peer's batch through the one merge rule; checks on what peers send |
//! | `bounds.rs` | how far ahead a peer's vector may claim, and how many writer names it may bring |
//! | `delta.rs` | what a peer lacks, in bounded parts; the version vector |
//! | `tombstones.rs` | peer acknowledgements, tombstone collection, peer lag |
//! | `scan.rs` | `KEYS` and `SCAN` and the scan order |
//! | `shard.rs` | sharding: per-partition writer names, what a peer holding some partitions is sent and joins, handing a partition off |
//! | `identity.rs` | this node's writer identity: noticing that its data went back in time, going on under a new one |
//! | `journal.rs` | handing changes to the log, undo on a failed log write, snapshots, replay |
//!
//! # Layout
//!
//! * `slots`: every key's `Entry`, densely packed. An entry holds the key
//!   and the value in one heap block; a clock with a single writer is
//!   stored inline.
//! * `table`: a swiss table of slot numbers (4 bytes each), hashed by key.
//! * `dots`: every dot of every entry's clock, ordered by (writer, counter),
//!   to the entry's slot. "Everything this peer has not seen" is one range
//!   scan per writer above the peer's version vector.
//! * `vv`: this node's version vector (see [`crate::core::vv`]).
//! * `peer_acks`: the last version vector each listed peer acknowledged; a
//!   tombstone whose clock all of them cover is dropped.
//! * `scan_order`: every slot by its key's hash, the order [`Store::scan`]
//!   walks, which neither writes nor the removal of entries can change.
//!   Built by the first `scan` and kept from then on: a node that is never
//!   scanned (most are) pays neither its memory nor its upkeep on every
//!   new key, which was a quarter of merging a full transfer.

use crate::core::clock::{Clock, Dot, NodeId};
pub use crate::core::counter::parse_integer;
use crate::core::counter::{AddError, Counter, Portable};
use crate::core::hlc::timestamp_of_millis;
use crate::core::hlc::{Hlc, WriteCounter};
use crate::core::names::{Names, MAX_NAME_LEN};
use crate::core::version::{Stamp, Version, VersionRef};
use crate::core::vv::VersionVector;
use hashbrown::HashTable;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::hash::{BuildHasher, RandomState};

pub mod batch;
mod bounds;
mod delta;
mod digest;
mod identity;
mod journal;
mod merge;
mod scan;
mod shard;
mod tombstones;

pub use crate::placement::partition::PartitionSet;
use batch::{Batch, Bytes, Summary, WireEntry, WireVv};
pub use bounds::{clamp_vv, Overclaim, Shown, MAX_NAMES, MAX_NEW_NAMES_PER_BATCH};
pub use delta::{Cursor, Delta, GROUP_STRETCH};
pub use digest::{DataDigest, Digest};
pub use identity::Behind;
use journal::Undo;
pub use journal::{ChangeLog, SnapshotCursor};
use merge::check_vv;
pub use shard::{joinable, within};
pub use tombstones::PeerLag;

/// The longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = u16::MAX as usize;

/// Counters at or above this are refused from peers: counters count writes
/// one by one and can never get there, and a peer that claims them would
/// make this node's own counter or timestamp saturate.
pub const MAX_COUNTER: u64 = 1 << 48;

/// Timestamps at or above this (the year 6429) are refused from peers, for
/// the same reason, and never issued.
pub use crate::core::hlc::MAX_TIMESTAMP;

/// Most counters one group of writes (see [`Store::note_group`]) from a
/// peer may span.
pub const MAX_GROUP_SPAN: u64 = 1 << 20;

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The key is longer than [`MAX_KEY_LEN`].
    KeyTooLong(usize),
    /// The value is longer than the store's limit.
    ValueTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The write was applied but its log record could not be written, so
    /// it was taken back.
    NotLogged(String),
    /// A read that saw a write of its group, which then could not be
    /// logged and was taken back: it is not answered.
    ReadNotLogged(String),
    /// The node refuses local writes for now (see [`Store::with_write_gate`]).
    Refused(String),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::KeyTooLong(len) => {
                write!(f, "key of {len} bytes is over the limit of {MAX_KEY_LEN}")
            }
            WriteError::ValueTooLong { len, max } => {
                write!(f, "value of {len} bytes is over the limit of {max}")
            }
            WriteError::NotLogged(why) => write!(f, "not stored: {why}"),
            WriteError::ReadNotLogged(why) => write!(
                f,
                "not answered: a write before it could not be logged: {why}"
            ),
            WriteError::Refused(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for WriteError {}

/// Why an increment was refused, as Redis says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncrementError {
    /// The value is not a 64-bit integer.
    NotAnInteger,
    /// The result would not be one.
    Overflow,
}

/// Why a batch from a peer was refused (the whole batch is dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError(pub String);

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid batch: {}", self.0)
    }
}

impl std::error::Error for BatchError {}

/// One key and its current version.
struct Entry {
    /// The key, then (when `has_expiry`) the expiry as 8 little-endian
    /// bytes, then the value (nothing after the key for a tombstone), then
    /// (when `has_counter`) the counter's state (see [`counter_bytes`]) and
    /// its length as 4 little-endian bytes. A plain key pays nothing for
    /// either feature.
    bytes: Box<[u8]>,
    ts: u64,
    clock: Clock,
    writer: NodeId,
    /// The key's hash (see [`Store::key_hash`]), kept so that growing the
    /// table never reads the keys again.
    hash: u32,
    key_len: u16,
    tombstone: bool,
    has_expiry: bool,
    has_counter: bool,
}

/// Bytes of an expiry inside [`Entry::bytes`].
const EXPIRY_LEN: usize = 8;

/// Bytes of the length that ends a counter's state in [`Entry::bytes`].
const COUNTER_LEN_LEN: usize = 4;

/// Spreads a stored 32-bit key hash over the 64 bits the table uses (its
/// low bits pick the bucket, its top bits the tag).
fn table_hash(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl Entry {
    /// An entry whose value expires at `expires` (milliseconds since the
    /// Unix epoch), if given, and is what `counter` reads as, if given. A
    /// tombstone an expiry left keeps the expiry, and may keep a counter's
    /// state (the counts its base ended, for the joins to come).
    fn build(
        key: &[u8],
        value: Option<&[u8]>,
        expires: Option<u64>,
        counter: Option<&Counter>,
        clock: Clock,
        stamp: Stamp,
    ) -> Entry {
        let value_bytes = value.unwrap_or_default();
        let counter = counter.map(counter_bytes);
        let mut bytes = Vec::with_capacity(
            key.len()
                + value_bytes.len()
                + expires.map_or(0, |_| EXPIRY_LEN)
                + counter.as_ref().map_or(0, |c| c.len() + COUNTER_LEN_LEN),
        );
        bytes.extend_from_slice(key);
        if let Some(at) = expires {
            bytes.extend_from_slice(&at.to_le_bytes());
        }
        bytes.extend_from_slice(value_bytes);
        if let Some(c) = &counter {
            bytes.extend_from_slice(c);
            let len = u32::try_from(c.len()).expect("a counter's state is small");
            bytes.extend_from_slice(&len.to_le_bytes());
        }
        Entry {
            bytes: bytes.into_boxed_slice(),
            ts: stamp.ts,
            clock,
            writer: stamp.writer,
            hash: 0, // set when it enters the table
            key_len: u16::try_from(key.len()).expect("keys are checked against MAX_KEY_LEN"),
            tombstone: value.is_none(),
            has_expiry: expires.is_some(),
            has_counter: counter.is_some(),
        }
    }

    /// This entry with another clock and stamp (a merge that only joins
    /// clocks, a write re-issued under a new identity).
    fn rebuilt(&self, clock: Clock, stamp: Stamp) -> Entry {
        Entry {
            bytes: self.bytes.clone(),
            ts: stamp.ts,
            clock,
            writer: stamp.writer,
            hash: 0,
            key_len: self.key_len,
            tombstone: self.tombstone,
            has_expiry: self.has_expiry,
            has_counter: self.has_counter,
        }
    }

    /// Where the value ends in `bytes`.
    fn value_end(&self) -> usize {
        if !self.has_counter {
            return self.bytes.len();
        }
        let len_at = self.bytes.len() - COUNTER_LEN_LEN;
        let mut len = [0u8; COUNTER_LEN_LEN];
        len.copy_from_slice(&self.bytes[len_at..]);
        len_at - u32::from_le_bytes(len) as usize
    }

    /// The counter the value is the total of, if it is one.
    fn counter(&self) -> Option<Counter> {
        self.has_counter.then(|| {
            let end = self.bytes.len() - COUNTER_LEN_LEN;
            counter_from_bytes(&self.bytes[self.value_end()..end])
        })
    }

    /// What the digest covers: the key, the expiry and the value, but not
    /// a counter's state, whose writer ids are this node's own.
    fn digested(&self) -> &[u8] {
        &self.bytes[..self.value_end()]
    }

    fn key(&self) -> &[u8] {
        &self.bytes[..usize::from(self.key_len)]
    }

    /// Where the value starts in `bytes`.
    fn value_start(&self) -> usize {
        usize::from(self.key_len) + if self.has_expiry { EXPIRY_LEN } else { 0 }
    }

    /// The value, expired or not; `None` for a tombstone.
    fn value(&self) -> Option<&[u8]> {
        (!self.tombstone).then(|| &self.bytes[self.value_start()..self.value_end()])
    }

    /// When the value expires (milliseconds since the Unix epoch), if it
    /// does.
    fn expires(&self) -> Option<u64> {
        let start = usize::from(self.key_len);
        self.has_expiry.then(|| {
            let mut at = [0u8; EXPIRY_LEN];
            at.copy_from_slice(&self.bytes[start..start + EXPIRY_LEN]);
            u64::from_le_bytes(at)
        })
    }

    /// What the digest of the entry is seeded with: where its key ends and
    /// whether an expiry follows, so that no two entries' bytes read alike.
    fn digest_seed(&self) -> u64 {
        u64::from(self.key_len) | u64::from(self.has_expiry) << 16
    }

    /// The expiry still to come, for the store's index: a value's. A
    /// tombstone its expiry left keeps the expiry, for the counts it ended
    /// (see [`crate::core::counter`]), but has nothing left to expire.
    fn pending_expiry(&self) -> Option<u64> {
        self.expires().filter(|_| !self.tombstone)
    }

    /// Whether the value has expired at `now_ms`.
    fn has_expired(&self, now_ms: u64) -> bool {
        self.expires().is_some_and(|at| at <= now_ms)
    }

    /// The value if it has not expired at `now_ms`.
    fn live_value(&self, now_ms: u64) -> Option<&[u8]> {
        self.value().filter(|_| !self.has_expired(now_ms))
    }

    fn stamp(&self) -> Stamp {
        Stamp {
            ts: self.ts,
            writer: self.writer,
        }
    }

    /// The writers the entry names on the wire, each once: its clock's
    /// (one dot per writer) and its stamp's, which a counter's writers are
    /// among (each count's writer wrote a dot of the clock).
    fn writers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let stamp = self.writer;
        let in_clock = self.clock.dots().iter().any(|d| d.node == stamp);
        self.clock
            .dots()
            .iter()
            .map(|d| d.node)
            .chain((!in_clock).then_some(stamp))
    }

    /// An upper bound of the entry's encoded size on the wire (varints at
    /// their longest), without the batch's name table.
    fn wire_size_hint(&self) -> usize {
        self.bytes.len() + 15 * self.clock.dots().len() + 32
    }

    /// The entry as the merge rule sees it, given its counter (decoded by
    /// the caller with [`Self::counter`]).
    fn version<'a>(&'a self, counter: Option<&'a Counter>) -> VersionRef<'a> {
        VersionRef {
            value: self.value(),
            expires: self.expires(),
            counter,
            clock: &self.clock,
            stamp: self.stamp(),
        }
    }
}

/// Counts shown by `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Keys with a value.
    pub live: usize,
    /// Keys whose current version is a delete.
    pub tombstones: usize,
}

/// The clocked map of one node.
pub struct Store {
    me: NodeId,
    names: Names,
    slots: Vec<Entry>,
    table: HashTable<u32>,
    dots: BTreeMap<Dot, u32>,
    /// (hash of the key, slot) for every entry, tombstones included; `None`
    /// until the first [`Store::scan`].
    scan_order: Option<BTreeSet<(u64, u32)>>,
    /// While a batch is merged: the `scan_order` pairs of its new entries,
    /// added in order once the batch is done (see [`Store::apply_batch`]).
    new_in_batch: Option<Vec<(u64, u32)>>,
    tombstones: HashSet<u32>,
    /// Runs of one writer's consecutive counters that one command wrote
    /// (`MULTI`/`EXEC`, `MSET`, a `DEL` of many keys), by their first dot,
    /// to their last counter: [`Store::delta`] keeps each in one part, so
    /// a peer applies all of it or none. Dropped once every listed peer
    /// has acknowledged it (see `tombstones.rs`); a node with no peers
    /// keeps none.
    groups: BTreeMap<Dot, u64>,
    /// (expiry, slot) of every value that expires, soonest first: what
    /// [`Store::expire_due`] turns into tombstones.
    expiring: BTreeSet<(u64, u32)>,
    /// Values turned into tombstones by their expiry, since the start.
    expired: u64,
    /// The wall time (ms since the Unix epoch) reads judge expiry by: set
    /// by the shell with [`Store::set_now`], and by every write and merge.
    now_ms: u64,
    hasher: RandomState,
    hlc: Hlc,
    counter: WriteCounter,
    vv: VersionVector,
    peer_acks: Vec<Option<VersionVector>>,
    /// Listed peers that are gone (their member left or was forgotten):
    /// their acknowledgements hold back nothing (see `tombstones.rs`).
    gone_peers: BTreeSet<usize>,
    max_value: usize,
    /// Bytes of keys and values held, tombstones included.
    data_bytes: usize,
    /// The digest of the live keys and values, kept up to date by every
    /// change (see [`Digest`]).
    digest: Digest,
    /// Records of the changes not yet taken for the log, when logging.
    journal: Option<Box<dyn ChangeLog>>,
    /// How to take back the changes since the last [`Store::commit`], when
    /// logging: their log write may fail.
    undo: Vec<Undo>,
    /// Tombstones are not collected while set (a snapshot is being
    /// written, and collecting moves entries between slots).
    hold_tombstones: bool,
    /// Whether logged writes are fsynced one group at a time.
    synced_each_write: bool,
    /// The write counter as of the last commit to the log.
    committed_counter: u64,
    /// Asked before every local write: why the node refuses writes now.
    write_gate: Option<WriteGate>,
    /// While a repair's batch is merged (see [`Store::apply_repair_batch`]).
    repairing: bool,
    /// The write counter when logging started: what the files held of
    /// this node's identity (see [`Store::is_behind`]).
    resumed_at: u64,
    /// The highest counter of this node's identity that may have reached
    /// a peer since the start: the last one issued when a delta or a
    /// summary was last made.
    shown: Cell<u64>,
    /// Whether local writes go under per-partition writer names (see
    /// `store/shard.rs`).
    sharded: bool,
    /// This node's per-partition writer ids, by partition, once used.
    part_ids: Vec<Option<NodeId>>,
    /// The partitions this node wrote to since the last
    /// [`Store::take_written_partitions`].
    written_parts: crate::placement::partition::PartitionSet,
    /// By id: whether a name is one of this node's per-partition names.
    mine: Vec<bool>,
    /// The partitions each listed peer holds (all until told).
    peer_parts: Vec<PartitionSet>,
    /// The run of consecutive counters the latest local writes took
    /// under one writer id: (id, first, last). A group is noted only
    /// within one (see [`Store::note_group`]).
    run: Option<(NodeId, u64, u64)>,
}

/// Why local writes are refused now, or `None` while they are allowed:
/// the shell's answer (another live node uses this node's name), asked
/// before every local write.
pub type WriteGate = Box<dyn Fn() -> Option<String> + Send>;

impl Store {
    /// An empty store writing as `writer`, refusing values longer than
    /// `max_value` bytes.
    ///
    /// `writer` must never have written before with counters this store
    /// does not know: a node that starts without its data writes under a
    /// new writer name (the node name with a fresh epoch), so its new writes
    /// can neither repeat nor be mistaken for its lost ones.
    pub fn new(writer: &str, max_value: usize) -> Store {
        let mut names = Names::new();
        let me = names.intern(writer);
        Store {
            me,
            names,
            slots: Vec::new(),
            table: HashTable::new(),
            dots: BTreeMap::new(),
            scan_order: None,
            new_in_batch: None,
            tombstones: HashSet::new(),
            groups: BTreeMap::new(),
            expiring: BTreeSet::new(),
            expired: 0,
            now_ms: 0,
            hasher: RandomState::new(),
            hlc: Hlc::new(),
            counter: WriteCounter::new(),
            vv: VersionVector::new(),
            peer_acks: Vec::new(),
            gone_peers: BTreeSet::new(),
            max_value,
            data_bytes: 0,
            digest: Digest::default(),
            journal: None,
            undo: Vec::new(),
            hold_tombstones: false,
            synced_each_write: false,
            committed_counter: 0,
            write_gate: None,
            repairing: false,
            resumed_at: 0,
            shown: Cell::new(0),
            sharded: false,
            part_ids: Vec::new(),
            written_parts: crate::placement::partition::PartitionSet::none(),
            mine: Vec::new(),
            peer_parts: Vec::new(),
            run: None,
        }
    }

    /// Bounds how far ahead of the wall clock this node's timestamps may
    /// be, and those it accepts from peers, to `ms` milliseconds
    /// (`--max-clock-offset-ms`; see [`crate::core::hlc`]).
    pub fn with_max_clock_offset_ms(mut self, ms: u64) -> Store {
        self.hlc.set_max_offset_ms(ms);
        self
    }

    /// Asks `gate` before every local write, and refuses the write with
    /// [`WriteError::Refused`] when it gives a reason. Merges from peers
    /// are never refused.
    pub fn with_write_gate(mut self, gate: WriteGate) -> Store {
        self.write_gate = Some(gate);
        self
    }

    /// Tracks acknowledgements of `peers` listed peers: tombstones are kept
    /// until all of them have acknowledged a vector that covers them.
    pub fn with_peers(mut self, peers: usize) -> Store {
        self.peer_acks = vec![None; peers];
        self
    }

    /// How many listed peers are tracked.
    pub fn peer_count(&self) -> usize {
        self.peer_acks.len()
    }

    /// The name this store writes under.
    pub fn writer(&self) -> &str {
        self.names.name(self.me)
    }

    /// Key and tombstone counts.
    pub fn counts(&self) -> Counts {
        Counts {
            live: self.slots.len() - self.tombstones.len(),
            tombstones: self.tombstones.len(),
        }
    }

    /// The hash a key is stored under (keyed, so peers and clients cannot
    /// aim keys at one bucket).
    fn key_hash(&self, key: &[u8]) -> u32 {
        self.hasher.hash_one(key) as u32
    }

    fn find(&self, key: &[u8]) -> Option<u32> {
        let slots = &self.slots;
        let hash = self.key_hash(key);
        self.table
            .find(table_hash(hash), |&s| {
                let e = &slots[s as usize];
                e.hash == hash && e.key() == key
            })
            .copied()
    }

    /// Sets the wall time that reads judge expiry by (microseconds since
    /// the Unix epoch): a value whose expiry is at or before it reads as
    /// absent. It never goes back.
    pub fn set_now(&mut self, now_us: u64) {
        self.now_ms = self.now_ms.max(now_us / 1000);
    }

    /// The wall time reads judge expiry by (ms since the Unix epoch): the
    /// latest given to [`Self::set_now`] or to a write.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The value of `key`, or `None` if it is absent, deleted or expired.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.find(key)
            .and_then(|s| self.slots[s as usize].live_value(self.now_ms))
    }

    /// When the value of `key` expires (milliseconds since the Unix
    /// epoch): `None` if it has no value or the value does not expire.
    pub fn expiry(&self, key: &[u8]) -> Option<u64> {
        let e = &self.slots[self.find(key)? as usize];
        e.live_value(self.now_ms)?;
        e.expires()
    }

    /// Turns up to `limit` values whose expiry has passed (by the time of
    /// [`Self::set_now`]) into tombstones; returns how many.
    ///
    /// The tombstone keeps the value's clock and stamp: it is no new write,
    /// only what the value has become on every node by now, so it adds no
    /// dot, sends nothing to peers that hold the value (they expire it
    /// themselves), and wins over the expired value wherever the two meet
    /// (see [`crate::core::version`]). A peer that lacks the value gets the
    /// tombstone instead, and tombstone collection reclaims it like any
    /// other. The change is logged, so the memory is reclaimed for good.
    pub fn expire_due(&mut self, limit: usize) -> usize {
        let mut done = 0;
        while done < limit {
            let Some(&(at, slot)) = self.expiring.first() else {
                break;
            };
            if at > self.now_ms {
                break;
            }
            let e = &self.slots[slot as usize];
            match e.counter() {
                // A counter is read anew: its state stays whole, for the
                // joins to come; counts begun after the expiry still count.
                Some(counter) => {
                    let entry = self.counting_entry(e.key(), counter, e.clock.clone());
                    self.replace_logged(slot, entry);
                    self.log_slot(slot);
                }
                None => self.tombstone_in_place(slot),
            }
            self.expired += 1;
            done += 1;
        }
        done
    }

    /// The last counter this node issued to a write: a command that moves
    /// it by more than one wrote a group (see [`Self::note_group`]).
    pub fn issued(&self) -> u64 {
        self.counter.last()
    }

    /// Records that this node's writes `first..=last` were made by one
    /// command (a transaction, `MSET`, a flush): they go to each peer in
    /// one part. Not past [`MAX_GROUP_SPAN`] writes, which a peer refuses
    /// to hold back for: the writes of a larger command (a `FLUSHALL` of
    /// more than a million keys) travel as single writes, and a peer may
    /// apply some of them before the others.
    ///
    /// Sharded, the writes of one command go under the names of their
    /// keys' partitions: they are a group only when they all fell in one
    /// partition (as the keys of one hash tag do); the writes of a
    /// command across partitions travel as single writes.
    pub fn note_group(&mut self, first: u64, last: u64) {
        let node = match self.run {
            Some((node, from, to)) if from <= first && to >= last => node,
            _ if !self.sharded => self.me,
            _ => return,
        };
        if first < last && last - first <= MAX_GROUP_SPAN && !self.peer_acks.is_empty() {
            self.groups.insert(
                Dot {
                    node,
                    counter: first,
                },
                last,
            );
        }
    }

    /// The group `dot` is in, if any: its first dot and last counter.
    fn group_of(&self, dot: Dot) -> Option<(Dot, u64)> {
        let (&first, &last) = self.groups.range(..=dot).next_back()?;
        (first.node == dot.node && dot.counter <= last).then_some((first, last))
    }

    /// Turns the value in `slot` into a tombstone with its clock, stamp and
    /// expiry, logged: what the value has become everywhere (its expiry
    /// passed, or a peer deleted it while this node's data was behind), not
    /// a new write. The expiry stays as the time it ended at: a count begun
    /// on the value before it ends with it (see [`crate::core::counter`]).
    fn tombstone_in_place(&mut self, slot: u32) {
        let e = &self.slots[slot as usize];
        let tombstone = Entry::build(e.key(), None, e.expires(), None, e.clock.clone(), e.stamp());
        self.replace_logged(slot, tombstone);
        self.log_slot(slot);
    }

    /// The soonest expiry of a value (ms since the Unix epoch), if any
    /// value expires: when [`Self::expire_due`] next has work.
    pub fn next_expiry(&self) -> Option<u64> {
        self.expiring.first().map(|&(at, _)| at)
    }

    /// How many values have an expiry (`expires=` of `INFO keyspace`),
    /// expired ones not yet turned into tombstones included.
    pub fn expiring_count(&self) -> usize {
        self.expiring.len()
    }

    /// The keys of the values with an expiry.
    pub fn expiring_keys(&self) -> impl Iterator<Item = &[u8]> {
        self.expiring
            .iter()
            .map(|&(_, slot)| self.slots[slot as usize].key())
    }

    /// How many values their expiry turned into tombstones since the start
    /// (`expired_keys`).
    pub fn expired_count(&self) -> u64 {
        self.expired
    }

    /// Who wrote `key`'s current version (a delete included), and when:
    /// it changes with every write that replaces the version, local or
    /// merged from a peer. `None` for a key never written here (or whose
    /// tombstone is gone).
    pub fn stamp(&self, key: &[u8]) -> Option<Stamp> {
        self.find(key).map(|s| self.slots[s as usize].stamp())
    }

    /// What changes whenever `key`'s version does, local write or merge
    /// (`WATCH`): its stamp, and the sum of its clock's counters, which
    /// grows with every write the version takes in (an increment that
    /// goes on counting keeps the stamp of its count's beginning). `None`
    /// for a key never written here (or whose tombstone is gone).
    pub fn change_mark(&self, key: &[u8]) -> Option<(Stamp, u64)> {
        self.find(key).map(|s| {
            let e = &self.slots[s as usize];
            let sum = e
                .clock
                .dots()
                .iter()
                .fold(0u64, |a, d| a.wrapping_add(d.counter));
            (e.stamp(), sum)
        })
    }

    /// Stores `value` under `key` as a new local write, with no expiry.
    pub fn put(&mut self, key: &[u8], value: &[u8], now_us: u64) -> Result<(), WriteError> {
        self.write(key, Some(value), None, now_us)
    }

    /// Stores `value` under `key` as a new local write, expiring at
    /// `expires` (milliseconds since the Unix epoch) if given.
    pub fn put_expiring(
        &mut self,
        key: &[u8],
        value: &[u8],
        expires: Option<u64>,
        now_us: u64,
    ) -> Result<(), WriteError> {
        self.write(key, Some(value), expires, now_us)
    }

    /// Deletes `key` as a new local write: a tombstone, which replicates
    /// like a value, so the delete reaches every node and wins over the
    /// versions it has seen. Written whether or not the key is known here,
    /// since another node may hold it.
    pub fn delete(&mut self, key: &[u8], now_us: u64) -> Result<(), WriteError> {
        self.write(key, None, None, now_us)
    }

    /// Deletes `key` as a flush does (`FLUSHDB`, `FLUSHALL`): the delete
    /// of exactly the version this node holds, not of the key. The
    /// tombstone has a new dot (so it replicates) on the version's clock,
    /// and is stamped one tick after the version, not now: it wins over
    /// that version and over whatever that version would have won over,
    /// and loses to every write this node had not seen that is stamped
    /// later than the version. So a write made elsewhere while the flush
    /// ran survives it, even one made a moment before the flush in real
    /// time; only a write the held version would have overwritten anyway
    /// does not. A counter's stamp is its latest count's beginning, so
    /// the counts this node had seen go with it, and counts begun later
    /// elsewhere count on top of the tombstone. A key with no value here
    /// is left alone.
    ///
    /// The merge laws hold (see [`crate::core::version`]): every version
    /// that saw the tombstone was stamped after it (its writer observed
    /// the stamp), and the tombstone is stamped after every version it
    /// saw. Not the version's own stamp: a tombstone of the same stamp is
    /// what an expiry leaves, which each node makes for itself and which
    /// must keep the value's expiry; a flush's must not (a counter begun
    /// on the flushed key would end at the old expiry).
    pub fn flush_delete(&mut self, key: &[u8], now_us: u64) -> Result<(), WriteError> {
        let Some(slot) = self.find(key) else {
            return Ok(());
        };
        if self.slots[slot as usize].tombstone {
            return Ok(());
        }
        // The checks of any local write (and a tick of the clock, which
        // the tombstone does not use).
        self.begin_write(key, None, now_us)?;
        let dot = self.issue_dot(key);
        let e = &self.slots[slot as usize];
        let held = e.stamp();
        let stamp = Stamp {
            ts: held.ts.saturating_add(1),
            writer: dot.node,
        };
        let tombstone = Entry::build(key, None, None, None, e.clock.with(dot), stamp);
        self.replace_logged(slot, tombstone);
        self.log_slot(slot);
        Ok(())
    }

    /// Adds `by` to the integer `key` holds, as a local write, and makes
    /// the key a counter (see [`crate::core::counter`]): concurrent
    /// increments on other nodes all count; the key keeps its expiry. A
    /// key with no value counts from 0. Returns the new value.
    pub fn increment(
        &mut self,
        key: &[u8],
        by: i64,
        now_us: u64,
    ) -> Result<Result<i64, IncrementError>, WriteError> {
        // A count begun here is stamped no earlier than the time this node
        // judges expiry by: one begun on a key that expired here (and was
        // maybe collected) begins after that expiry on every node, even if
        // the wall clock has since stepped back (see
        // `crate::core::counter`).
        self.set_now(now_us);
        self.hlc.observe(timestamp_of_millis(self.now_ms));
        let stamp = self.begin_write(key, None, now_us)?;
        let mut counter = match self.find(key) {
            Some(slot) => {
                let e = &self.slots[slot as usize];
                e.counter()
                    .unwrap_or_else(|| Counter::of_plain(e.value(), e.expires(), e.stamp()))
            }
            None => Counter::empty(),
        };
        let writer = self.writer_id(key);
        let total = match counter.add(writer, by, stamp, self.now_ms, &self.names) {
            Ok(total) => total,
            Err(AddError::NotAnInteger) => return Ok(Err(IncrementError::NotAnInteger)),
            Err(AddError::Overflow) => return Ok(Err(IncrementError::Overflow)),
        };
        let dot = self.issue_dot(key);
        let slot = match self.find(key) {
            Some(slot) => {
                let clock = self.slots[slot as usize].clock.with(dot);
                let entry = self.counting_entry(key, counter, clock);
                self.replace_logged(slot, entry);
                slot
            }
            None => {
                let entry = self.counting_entry(key, counter, Clock::single(dot));
                self.insert_logged(entry)
            }
        };
        self.log_slot(slot);
        Ok(Ok(total))
    }

    /// The entry for `counter`'s state with `clock`, read at this store's
    /// time: a plain one where nothing counts (see [`Version::counting`]).
    fn counting_entry(&self, key: &[u8], counter: Counter, clock: Clock) -> Entry {
        let v = Version::counting(counter, clock, self.now_ms, &self.names);
        Entry::build(
            key,
            v.value.as_deref(),
            v.expires,
            v.counter.as_ref(),
            v.clock,
            v.stamp,
        )
    }

    fn write(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        expires: Option<u64>,
        now_us: u64,
    ) -> Result<(), WriteError> {
        let stamp = self.begin_write(key, value.map(<[u8]>::len), now_us)?;
        let dot = self.issue_dot(key);
        let slot = match self.find(key) {
            Some(slot) => {
                let clock = self.slots[slot as usize].clock.with(dot);
                let entry = Entry::build(key, value, expires, None, clock, stamp);
                self.replace_logged(slot, entry);
                slot
            }
            None => {
                let entry = Entry::build(key, value, expires, None, Clock::single(dot), stamp);
                self.insert_logged(entry)
            }
        };
        self.log_slot(slot);
        Ok(())
    }

    /// Checks a local write of a value of `value_len` bytes (`None`: none,
    /// or one the write works out) to `key`, and takes its stamp.
    fn begin_write(
        &mut self,
        key: &[u8],
        value_len: Option<usize>,
        now_us: u64,
    ) -> Result<Stamp, WriteError> {
        if let Some(why) = self.write_gate.as_ref().and_then(|gate| gate()) {
            return Err(WriteError::Refused(why));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(WriteError::KeyTooLong(key.len()));
        }
        if let Some(len) = value_len.filter(|&len| len > self.max_value) {
            return Err(WriteError::ValueTooLong {
                len,
                max: self.max_value,
            });
        }
        // The timestamp is above every one this node has seen, including the
        // key's current version, so the new write also wins by timestamp.
        // Taken first: a clock with no room left refuses the write before
        // it uses a counter.
        let ts = self
            .hlc
            .tick(now_us)
            .map_err(|e| WriteError::Refused(e.to_string()))?;
        self.set_now(now_us);
        Ok(Stamp {
            ts,
            writer: self.writer_id(key),
        })
    }

    /// The dot of a new local write of `key`.
    fn issue_dot(&mut self, key: &[u8]) -> Dot {
        let node = self.writer_id(key);
        let dot = Dot {
            node,
            counter: self.counter.issue(),
        };
        self.vv.raise(node, dot.counter);
        self.run = match self.run {
            Some((n, first, last)) if n == node && last + 1 == dot.counter => {
                Some((n, first, dot.counter))
            }
            _ => Some((node, dot.counter, dot.counter)),
        };
        dot
    }

    /// [`Self::insert`], remembering how to take it back when logging.
    fn insert_logged(&mut self, entry: Entry) -> u32 {
        if self.journal.is_some() {
            self.undo.push(Undo::Inserted);
        }
        self.insert(entry)
    }

    /// [`Self::replace`], remembering how to take it back when logging.
    fn replace_logged(&mut self, slot: u32, entry: Entry) {
        let old = self.replace(slot, entry);
        if self.journal.is_some() {
            self.undo.push(Undo::Replaced { slot, old });
        }
    }

    /// Logs the version in `slot`, when logging.
    fn log_slot(&mut self, slot: u32) {
        if let Some(j) = self.journal.as_mut() {
            let e = &self.slots[slot as usize];
            let counter = e.counter();
            j.version(&self.names, e.key(), &e.version(counter.as_ref()));
        }
    }

    /// Adds an entry for a key that is not in the store; returns its slot.
    fn insert(&mut self, mut entry: Entry) -> u32 {
        let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 keys");
        self.data_bytes += entry.bytes.len();
        entry.hash = self.key_hash(entry.key());
        let hash = table_hash(entry.hash);
        index(&mut self.dots, &entry.clock, slot);
        if let Some(order) = self.scan_order.as_mut() {
            match self.new_in_batch.as_mut() {
                Some(pairs) => pairs.push((hash, slot)),
                None => {
                    order.insert((hash, slot));
                }
            }
        }
        if entry.tombstone {
            self.tombstones.insert(slot);
        } else {
            self.digest.toggle(entry.digested(), entry.digest_seed());
        }
        if let Some(at) = entry.pending_expiry() {
            self.expiring.insert((at, slot));
        }
        self.slots.push(entry);
        let slots = &self.slots;
        self.table
            .insert_unique(hash, slot, |&s| table_hash(slots[s as usize].hash));
        slot
    }

    /// Puts a new version of the same key in `slot`; returns the old one.
    fn replace(&mut self, slot: u32, mut entry: Entry) -> Entry {
        entry.hash = self.slots[slot as usize].hash;
        let old = std::mem::replace(&mut self.slots[slot as usize], entry);
        let new = &self.slots[slot as usize];
        self.data_bytes = self.data_bytes + new.bytes.len() - old.bytes.len();
        unindex(&mut self.dots, &old.clock, slot);
        index(&mut self.dots, &new.clock, slot);
        // The slot is the same: an unchanged expiry is indexed already.
        let (was, is) = (old.pending_expiry(), new.pending_expiry());
        if was != is {
            if let Some(at) = was {
                self.expiring.remove(&(at, slot));
            }
            if let Some(at) = is {
                self.expiring.insert((at, slot));
            }
        }
        if new.tombstone {
            self.tombstones.insert(slot);
        } else {
            self.tombstones.remove(&slot);
        }
        // A merge that only joins clocks keeps the same bytes.
        if old.tombstone != new.tombstone || old.bytes != new.bytes {
            if !old.tombstone {
                self.digest.toggle(old.digested(), old.digest_seed());
            }
            if !new.tombstone {
                self.digest.toggle(new.digested(), new.digest_seed());
            }
        }
        old
    }

    /// Removes the entries in `slots`; returns how many.
    fn remove_all(&mut self, mut slots: Vec<u32>) -> usize {
        // Highest first: removing a slot moves the last entry into it, and
        // the last entry is then never one still to remove.
        slots.sort_unstable_by(|a, b| b.cmp(a));
        for &slot in &slots {
            self.remove(slot);
        }
        slots.len()
    }

    /// Removes the entry in `slot`, moving the last entry into its place.
    fn remove(&mut self, slot: u32) {
        let hash = table_hash(self.slots[slot as usize].hash);
        if let Ok(found) = self.table.find_entry(hash, |&s| s == slot) {
            found.remove();
        }
        if let Some(order) = self.scan_order.as_mut() {
            order.remove(&(hash, slot));
        }
        let gone = &self.slots[slot as usize];
        unindex(&mut self.dots, &gone.clock, slot);
        if let Some(at) = gone.pending_expiry() {
            self.expiring.remove(&(at, slot));
        }
        if !self.tombstones.remove(&slot) {
            self.digest.toggle(gone.digested(), gone.digest_seed());
        }
        self.data_bytes -= gone.bytes.len();
        let last = u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 keys");
        self.slots.swap_remove(slot as usize);
        if slot == last {
            return;
        }
        // The former last entry now lives in `slot`: repoint its references.
        let moved = &self.slots[slot as usize];
        let hash = table_hash(moved.hash);
        if let Some(s) = self.table.find_mut(hash, |&s| s == last) {
            *s = slot;
        }
        if let Some(order) = self.scan_order.as_mut() {
            order.remove(&(hash, last));
            order.insert((hash, slot));
        }
        for dot in moved.clock.dots() {
            if let Some(s) = self.dots.get_mut(dot).filter(|s| **s == last) {
                *s = slot;
            }
        }
        if self.tombstones.remove(&last) {
            self.tombstones.insert(slot);
        }
        if let Some(at) = moved.pending_expiry() {
            self.expiring.remove(&(at, last));
            self.expiring.insert((at, slot));
        }
    }
    /// The digest of the live data as `DEBUG DIGEST` shows it: 40 hex
    /// digits, equal on every replica that holds the same keys and values.
    pub fn digest(&self) -> String {
        self.data_digest().to_string()
    }

    /// The digest of the live data (see [`Digest`]).
    pub fn data_digest(&self) -> DataDigest {
        self.digest.with_count(self.counts().live)
    }

    /// The digest of `key` alone as `DEBUG DIGEST-VALUE` shows it: its
    /// share of [`Self::digest`], or all zeros when it has no value.
    pub fn key_digest(&self, key: &[u8]) -> DataDigest {
        match self.find(key).map(|s| &self.slots[s as usize]) {
            Some(e) if !e.tombstone => Digest::of_key(e.digested(), e.digest_seed()),
            _ => DataDigest::default(),
        }
    }

    /// Bytes of keys and values held (tombstones' keys included): the
    /// size a compacted snapshot is measured against.
    pub fn data_bytes(&self) -> usize {
        self.data_bytes
    }
    /// The id of a writer name, for replay.
    pub(crate) fn intern(&mut self, name: &str) -> NodeId {
        self.names.intern(name)
    }
    /// Every key's version, with writer names instead of ids, sorted by
    /// key: a form that two stores can be compared in.
    pub fn canonical(&self) -> Vec<CanonicalEntry> {
        let mut out: Vec<CanonicalEntry> = self
            .slots
            .iter()
            .map(|e| CanonicalEntry {
                key: e.key().to_vec(),
                value: e.value().map(<[u8]>::to_vec),
                expires: e.expires(),
                counter: e.counter().map(|c| {
                    let mut p = c.to_portable(|w| self.names.name(w).to_owned());
                    p.counts.sort_by(|x, y| x.writer.cmp(&y.writer));
                    p
                }),
                ts: e.ts,
                writer: self.names.name(e.writer).to_owned(),
                clock: {
                    let mut c: Vec<(String, u64)> = e
                        .clock
                        .dots()
                        .iter()
                        .map(|d| (self.names.name(d.node).to_owned(), d.counter))
                        .collect();
                    c.sort();
                    c
                },
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }
}

/// A counter's state as the entry keeps it: postcard of its portable form
/// with this store's ids.
fn counter_bytes(c: &Counter) -> Vec<u8> {
    postcard::to_allocvec(&c.to_portable(|w| w.0)).expect("a counter serializes")
}

/// Reads what [`counter_bytes`] wrote (the store's own bytes, so trusted).
fn counter_from_bytes(b: &[u8]) -> Counter {
    let p: Portable<u32> = postcard::from_bytes(b).expect("the store's own counter bytes");
    p.to_counter(|&w| Ok::<_, std::convert::Infallible>(NodeId(w)))
        .unwrap_or_else(|never| match never {})
        .expect("a stored counter has a base or a count")
}

/// A counter in a process-independent form (see [`Store::canonical`]):
/// writers by name, counts sorted by name.
pub type CanonicalCounter = Portable<String>;

/// Points every dot of `clock` at `slot`.
fn index(dots: &mut BTreeMap<Dot, u32>, clock: &Clock, slot: u32) {
    for &dot in clock.dots() {
        dots.insert(dot, slot);
    }
}

/// Removes the dots of `clock` that point at `slot` (a dot that a malformed
/// peer reused for another key is left to that key).
fn unindex(dots: &mut BTreeMap<Dot, u32>, clock: &Clock, slot: u32) {
    for dot in clock.dots() {
        if dots.get(dot) == Some(&slot) {
            dots.remove(dot);
        }
    }
}

/// A key's version in a process-independent form (see [`Store::canonical`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalEntry {
    /// The key.
    pub key: Vec<u8>,
    /// The value, `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// When the value expires (ms since the Unix epoch), if it does.
    pub expires: Option<u64>,
    /// The counter the value is the total of, if it is one.
    pub counter: Option<CanonicalCounter>,
    /// Timestamp of the winning write.
    pub ts: u64,
    /// Name of the winning write's writer.
    pub writer: String,
    /// The clock as (writer name, counter), sorted by name.
    pub clock: Vec<(String, u64)>,
}

#[cfg(test)]
mod tests;
