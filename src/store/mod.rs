//! The clocked map: every key's current version, local writes, the merge
//! of versions from peers, and what to send a peer that has seen a given
//! version vector.
//!
//! One [`Store`] is owned by the store thread and by nothing else, so it
//! takes no locks. It is pure: the wall clock is passed in (`now_us`,
//! microseconds since the Unix epoch) and it does no I/O.
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
use crate::core::hlc::{Hlc, WriteCounter};
use crate::core::names::{Names, MAX_NAME_LEN};
use crate::core::version::{winner, Stamp, VersionRef, Winner};
use crate::core::vv::VersionVector;
use crate::durability::journal::JournalWriter;
use crate::replication::wire::{Batch, Bytes, WireEntry, WireVv};
use hashbrown::HashTable;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::hash::{BuildHasher, RandomState};

/// The longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = u16::MAX as usize;

/// Counters at or above this are refused from peers: counters count writes
/// one by one and can never get there, and a peer that claims them would
/// make this node's own counter or timestamp saturate.
pub const MAX_COUNTER: u64 = 1 << 48;

/// Timestamps at or above this (the year 6429) are refused from peers, for
/// the same reason.
pub const MAX_TIMESTAMP: u64 = 1 << 63;

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
        }
    }
}

impl std::error::Error for WriteError {}

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
    /// The key followed by the value (nothing after the key for a tombstone).
    bytes: Box<[u8]>,
    ts: u64,
    clock: Clock,
    writer: NodeId,
    /// The key's hash (see [`Store::key_hash`]), kept so that growing the
    /// table never reads the keys again.
    hash: u32,
    key_len: u16,
    tombstone: bool,
}

/// Spreads a stored 32-bit key hash over the 64 bits the table uses (its
/// low bits pick the bucket, its top bits the tag).
fn table_hash(hash: u32) -> u64 {
    u64::from(hash).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl Entry {
    fn new(key: &[u8], value: Option<&[u8]>, clock: Clock, stamp: Stamp) -> Entry {
        let value_bytes = value.unwrap_or_default();
        let mut bytes = Vec::with_capacity(key.len() + value_bytes.len());
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(value_bytes);
        Entry {
            bytes: bytes.into_boxed_slice(),
            ts: stamp.ts,
            clock,
            writer: stamp.writer,
            hash: 0, // set when it enters the table
            key_len: u16::try_from(key.len()).expect("keys are checked against MAX_KEY_LEN"),
            tombstone: value.is_none(),
        }
    }

    fn key(&self) -> &[u8] {
        &self.bytes[..usize::from(self.key_len)]
    }

    fn value(&self) -> Option<&[u8]> {
        (!self.tombstone).then(|| &self.bytes[usize::from(self.key_len)..])
    }

    fn stamp(&self) -> Stamp {
        Stamp {
            ts: self.ts,
            writer: self.writer,
        }
    }

    /// An upper bound of the entry's encoded size on the wire (varints at
    /// their longest), without the batch's name table.
    fn wire_size_hint(&self) -> usize {
        self.bytes.len() + 15 * self.clock.dots().len() + 32
    }

    fn version(&self) -> VersionRef<'_> {
        VersionRef {
            value: self.value(),
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

/// Where a [`Store::delta`] scan stopped; pass it back to go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(Dot);

/// One part of what a peer lacks.
#[derive(Debug, Clone)]
pub struct Delta {
    /// The entries.
    pub batch: Batch,
    /// Where to go on from, or `None` when the scan is complete.
    pub next: Option<Cursor>,
}

/// How far a listed peer is behind, as far as this node knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerLag {
    /// Writes this node has seen that the peer has not acknowledged; `None`
    /// before its first acknowledgement.
    pub writes_behind: Option<u64>,
    /// Tombstones kept until this peer acknowledges them.
    pub tombstones_waiting: usize,
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
    hasher: RandomState,
    hlc: Hlc,
    counter: WriteCounter,
    vv: VersionVector,
    peer_acks: Vec<Option<VersionVector>>,
    max_value: usize,
    /// Bytes of keys and values held, tombstones included.
    data_bytes: usize,
    /// Records of the changes not yet taken for the log, when logging.
    journal: Option<JournalWriter>,
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
}

/// One change to take back, newest last.
enum Undo {
    /// An entry was added at the end of `slots`.
    Inserted,
    /// The entry in `slot` replaced this one.
    Replaced { slot: u32, old: Entry },
    /// The version vector was this before a join.
    Joined { old: VersionVector },
}

/// Progress of writing the whole store as a snapshot file.
#[derive(Debug, Default)]
pub struct SnapshotCursor {
    next_slot: usize,
    started: bool,
    out: JournalWriter,
}

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
            hasher: RandomState::new(),
            hlc: Hlc::new(),
            counter: WriteCounter::new(),
            vv: VersionVector::new(),
            peer_acks: Vec::new(),
            max_value,
            data_bytes: 0,
            journal: None,
            undo: Vec::new(),
            hold_tombstones: false,
            synced_each_write: false,
            committed_counter: 0,
        }
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

    /// The value of `key`, or `None` if it is absent or deleted.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.find(key).and_then(|s| self.slots[s as usize].value())
    }

    /// Stores `value` under `key` as a new local write.
    pub fn put(&mut self, key: &[u8], value: &[u8], now_us: u64) -> Result<(), WriteError> {
        self.write(key, Some(value), now_us)
    }

    /// Deletes `key` as a new local write: a tombstone, which replicates
    /// like a value, so the delete reaches every node and wins over the
    /// versions it has seen. Written whether or not the key is known here,
    /// since another node may hold it.
    pub fn delete(&mut self, key: &[u8], now_us: u64) -> Result<(), WriteError> {
        self.write(key, None, now_us)
    }

    fn write(&mut self, key: &[u8], value: Option<&[u8]>, now_us: u64) -> Result<(), WriteError> {
        if key.len() > MAX_KEY_LEN {
            return Err(WriteError::KeyTooLong(key.len()));
        }
        if let Some(v) = value.filter(|v| v.len() > self.max_value) {
            return Err(WriteError::ValueTooLong {
                len: v.len(),
                max: self.max_value,
            });
        }
        let dot = Dot {
            node: self.me,
            counter: self.counter.issue(),
        };
        self.vv.raise(self.me, dot.counter);
        // The timestamp is above every one this node has seen, including the
        // key's current version, so the new write also wins by timestamp.
        let stamp = Stamp {
            ts: self.hlc.tick(now_us),
            writer: self.me,
        };
        let slot = match self.find(key) {
            Some(slot) => {
                let clock = self.slots[slot as usize].clock.with(dot);
                self.replace_logged(slot, Entry::new(key, value, clock, stamp));
                slot
            }
            None => self.insert_logged(Entry::new(key, value, Clock::single(dot), stamp)),
        };
        self.log_slot(slot);
        Ok(())
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
            j.version(&self.names, e.key(), e.value(), &e.clock, e.stamp());
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
        if new.tombstone {
            self.tombstones.insert(slot);
        } else {
            self.tombstones.remove(&slot);
        }
        old
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
        unindex(&mut self.dots, &self.slots[slot as usize].clock, slot);
        self.tombstones.remove(&slot);
        self.data_bytes -= self.slots[slot as usize].bytes.len();
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
    }

    /// Merges a remote version of `key` (already in local ids); returns
    /// whether the local version changed.
    pub fn merge(&mut self, key: &[u8], value: Option<&[u8]>, clock: Clock, stamp: Stamp) -> bool {
        self.hlc.observe(stamp.ts);
        let own = clock.get(self.me);
        if own > 0 {
            self.counter.observe(own);
        }
        let Some(slot) = self.find(key) else {
            // A version whose every write this node has seen or superseded,
            // for a key it no longer holds, is one whose tombstone was
            // collected: it must not come back.
            if self.vv.covers_clock(&clock) {
                return false;
            }
            let slot = self.insert_logged(Entry::new(key, value, clock, stamp));
            self.log_slot(slot);
            return true;
        };
        let e = &self.slots[slot as usize];
        let incoming = VersionRef {
            value,
            clock: &clock,
            stamp,
        };
        match winner(&e.version(), &incoming, &self.names) {
            Winner::Left => {
                if e.clock.descends(&clock) {
                    return false;
                }
                let joined = e.clock.join(&clock);
                let same = Entry::new(e.key(), e.value(), joined, e.stamp());
                self.replace_logged(slot, same);
            }
            Winner::Right => {
                let joined = e.clock.join(&clock);
                self.replace_logged(slot, Entry::new(key, value, joined, stamp));
            }
        }
        self.log_slot(slot);
        true
    }

    /// Merges a batch from a peer. The batch is checked whole first; a bad
    /// one changes nothing.
    pub fn apply_batch(&mut self, batch: &Batch) -> Result<(), BatchError> {
        self.check_batch(batch)?;
        let ids: Vec<NodeId> = batch.names.iter().map(|n| self.names.intern(n)).collect();
        // New keys join `scan_order` after the batch, sorted: inserting them
        // into the tree in order keeps its upper levels in the cache, where
        // inserting them as they come (by hash, so at random) misses it at
        // almost every level; of merging a full transfer into an empty
        // node that was the largest part. Nothing in the loop reads
        // `scan_order` or removes an entry.
        if self.scan_order.is_some() {
            self.new_in_batch = Some(Vec::new());
        }
        for w in &batch.entries {
            let clock = Clock::from_dots(w.clock.iter().map(|&(i, counter)| Dot {
                node: ids[i as usize],
                counter,
            }));
            let stamp = Stamp {
                ts: w.ts,
                writer: ids[w.writer as usize],
            };
            self.merge(&w.key.0, w.value.as_ref().map(|v| &v.0[..]), clock, stamp);
        }
        if let (Some(mut pairs), Some(order)) = (self.new_in_batch.take(), self.scan_order.as_mut())
        {
            pairs.sort_unstable();
            order.extend(pairs);
        }
        Ok(())
    }

    fn check_batch(&self, batch: &Batch) -> Result<(), BatchError> {
        let fail = |s: String| Err(BatchError(s));
        check_names(batch.names.iter().map(String::as_str))?;
        let n = batch.names.len();
        for w in &batch.entries {
            if w.key.0.len() > MAX_KEY_LEN {
                return fail(format!("key of {} bytes", w.key.0.len()));
            }
            if let Some(v) = w.value.as_ref().filter(|v| v.0.len() > self.max_value) {
                return fail(format!("value of {} bytes", v.0.len()));
            }
            if w.writer as usize >= n || w.clock.iter().any(|&(i, _)| i as usize >= n) {
                return fail("node index out of range".into());
            }
            if w.clock.iter().all(|&(_, c)| c == 0) {
                return fail("empty clock".into());
            }
            if w.ts >= MAX_TIMESTAMP || w.clock.iter().any(|&(_, c)| c >= MAX_COUNTER) {
                return fail("timestamp or counter out of range".into());
            }
        }
        Ok(())
    }

    fn all_names(&self) -> Vec<String> {
        (0..self.names.len())
            .map(|i| self.names.name(NodeId(i as u32)).to_owned())
            .collect()
    }

    /// Wire entries use this store's ids as indices into [`Self::all_names`].
    fn to_wire(e: &Entry) -> WireEntry {
        WireEntry {
            key: Bytes::from(e.key()),
            value: e.value().map(Bytes::from),
            ts: e.ts,
            writer: e.writer.0,
            clock: e
                .clock
                .dots()
                .iter()
                .map(|d| (d.node.0, d.counter))
                .collect(),
        }
    }

    /// This node's version vector, for the wire.
    pub fn version_vector(&self) -> WireVv {
        self.vv
            .iter()
            .map(|(node, c)| (self.names.name(node).to_owned(), c))
            .collect()
    }

    /// A wire vector in local ids; writers never seen here are left out
    /// (no entry here has their dots).
    fn local_vv(&self, vv: &WireVv) -> VersionVector {
        let mut out = VersionVector::new();
        for (name, counter) in vv {
            if let Some(id) = self.names.lookup(name) {
                out.raise(id, *counter);
            }
        }
        out
    }

    /// Records that every entry of a transfer from a peer whose vector was
    /// `vv` has arrived: this node has now seen everything up to `vv`.
    pub fn join_version_vector(&mut self, vv: &WireVv) -> Result<(), BatchError> {
        check_vv(vv)?;
        let old = self.vv.clone();
        for (name, counter) in vv {
            let id = self.names.intern(name);
            self.vv.raise(id, *counter);
        }
        if self.vv != old {
            if let Some(j) = self.journal.as_mut() {
                j.joined(&self.names, &self.vv);
                self.undo.push(Undo::Joined { old });
            }
        }
        Ok(())
    }

    /// The entries a node that has seen `since` lacks, from `cursor` on, at
    /// most about `max_bytes` of them (but at least one when any is left).
    /// An entry is sent when any dot of its clock lies above `since`.
    pub fn delta(&self, since: &WireVv, cursor: Option<Cursor>, max_bytes: usize) -> Delta {
        let since = self.local_vv(since);
        let mut taken = HashSet::new();
        let mut entries = Vec::new();
        let mut size = 0;
        // The last dot looked at; `None` until the first, so a part always
        // holds at least one entry.
        let mut last: Option<Dot> = None;
        let first = cursor.map_or(0, |c| c.0.node.0);
        for n in first..self.names.len() as u32 {
            let node = NodeId(n);
            let mut from = since.get(node).saturating_add(1);
            if let Some(Cursor(at)) = cursor.filter(|c| c.0.node == node) {
                from = from.max(at.counter.saturating_add(1));
            }
            let range = Dot {
                node,
                counter: from,
            }..=Dot {
                node,
                counter: u64::MAX,
            };
            for (&dot, &slot) in self.dots.range(range) {
                if !taken.contains(&slot) {
                    let e = &self.slots[slot as usize];
                    let size_hint = e.wire_size_hint();
                    // Stop before the entry that would pass the limit, so a
                    // part stays within a frame; the next part starts at it.
                    if let Some(last) = last.filter(|_| size + size_hint > max_bytes) {
                        return Delta {
                            batch: self.batch(entries),
                            next: Some(Cursor(last)),
                        };
                    }
                    taken.insert(slot);
                    entries.push(Self::to_wire(e));
                    size += size_hint;
                }
                last = Some(dot);
            }
        }
        Delta {
            batch: self.batch(entries),
            next: None,
        }
    }

    fn batch(&self, entries: Vec<WireEntry>) -> Batch {
        Batch {
            names: if entries.is_empty() {
                Vec::new()
            } else {
                self.all_names()
            },
            entries,
        }
    }

    /// Records the version vector listed peer `peer` acknowledged, and
    /// drops the tombstones every listed peer now has. Returns how many
    /// were dropped.
    pub fn peer_acknowledged(&mut self, peer: usize, vv: &WireVv) -> Result<usize, BatchError> {
        check_vv(vv)?;
        let mut local = VersionVector::new();
        for (name, counter) in vv {
            local.raise(self.names.intern(name), *counter);
        }
        if let Some(slot) = self.peer_acks.get_mut(peer) {
            *slot = Some(local);
        }
        Ok(self.collect_tombstones())
    }

    /// Drops every tombstone that all listed peers have acknowledged (with
    /// no listed peers: every tombstone). Returns how many.
    pub fn collect_tombstones(&mut self) -> usize {
        if self.tombstones.is_empty() || self.hold_tombstones {
            return 0;
        }
        let mut floor = self.vv.clone();
        for ack in &self.peer_acks {
            match ack {
                Some(vv) => floor = floor.meet(vv),
                None => return 0,
            }
        }
        let mut doomed: Vec<u32> = self
            .tombstones
            .iter()
            .copied()
            .filter(|&s| floor.covers_clock(&self.slots[s as usize].clock))
            .collect();
        // Highest first: removing a slot moves the last entry into it, and
        // the last entry is then never one still to remove.
        doomed.sort_unstable_by(|a, b| b.cmp(a));
        for &slot in &doomed {
            self.remove(slot);
        }
        doomed.len()
    }

    /// How far listed peer `peer` is behind.
    pub fn peer_lag(&self, peer: usize) -> PeerLag {
        let Some(ack) = self.peer_acks.get(peer) else {
            return PeerLag::default();
        };
        let writes_behind = ack.as_ref().map(|ack| {
            self.vv
                .iter()
                .map(|(node, c)| c.saturating_sub(ack.get(node)))
                .sum()
        });
        let tombstones_waiting = match ack {
            None => self.tombstones.len(),
            Some(ack) => self
                .tombstones
                .iter()
                .filter(|&&s| !ack.covers_clock(&self.slots[s as usize].clock))
                .count(),
        };
        PeerLag {
            writes_behind,
            tombstones_waiting,
        }
    }

    /// Bytes of keys and values held (tombstones' keys included): the
    /// size a compacted snapshot is measured against.
    pub fn data_bytes(&self) -> usize {
        self.data_bytes
    }

    /// Starts logging: from now on every change is also encoded as a
    /// record, to be taken with [`Self::take_journal`]. Begins a file.
    /// `synced_each_write` says every write will be fsynced before it is
    /// acknowledged or leaves the node (recorded so a restart can trust the
    /// log to hold every write).
    pub fn start_journal(&mut self, synced_each_write: bool) {
        let mut j = JournalWriter::new();
        j.start_file(self.names.name(self.me), synced_each_write, &self.names);
        self.journal = Some(j);
        self.synced_each_write = synced_each_write;
    }

    /// Logs a clean stop: the last record before the final fsync.
    pub fn close_journal(&mut self) {
        if let Some(j) = self.journal.as_mut() {
            j.closed();
        }
    }

    /// The records of the changes since the last call, to be written to
    /// the log. Follow with [`Self::commit`] once written, or
    /// [`Self::rollback`] if the write failed.
    pub fn take_journal(&mut self) -> Vec<u8> {
        self.journal
            .as_mut()
            .map(JournalWriter::take)
            .unwrap_or_default()
    }

    /// Whether changes wait to be taken for the log.
    pub fn has_journal(&self) -> bool {
        self.journal.as_ref().is_some_and(|j| !j.is_empty())
    }

    /// The changes taken are in the log: forget how to take them back.
    pub fn commit(&mut self) {
        self.undo.clear();
        if let Some(j) = self.journal.as_mut() {
            j.commit();
        }
        self.committed_counter = self.counter.last();
    }

    /// The changes taken could not be logged: take them back, newest first,
    /// so the store holds only what the log holds. The node's own counter
    /// and its entry in the version vector go back too (the taken-back
    /// writes never left the node, so their counters are free again; kept,
    /// they would reach peers in the vector and make the counters the log
    /// resumes from after a restart look already seen). The timestamp
    /// stays: it only has to grow.
    pub fn rollback(&mut self) {
        if let Some(j) = self.journal.as_mut() {
            j.rollback();
        }
        while let Some(undo) = self.undo.pop() {
            match undo {
                Undo::Inserted => {
                    let last = u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 keys");
                    self.remove(last);
                }
                Undo::Replaced { slot, old } => {
                    self.replace(slot, old);
                }
                Undo::Joined { old } => self.vv = old,
            }
        }
        self.counter = WriteCounter::new();
        self.counter.observe(self.committed_counter);
        self.vv.lower(self.me, self.committed_counter);
    }

    /// Begins a new log file (the old one is closed): the records every
    /// file starts with.
    pub fn rotate_journal(&mut self) {
        if let Some(j) = self.journal.as_mut() {
            j.start_file(
                self.names.name(self.me),
                self.synced_each_write,
                &self.names,
            );
        }
    }

    /// Encodes the next `max_entries` entries of a snapshot into
    /// `cursor`'s buffer (take them with [`SnapshotCursor::take`]); returns
    /// whether the snapshot is complete. Entries changed while a snapshot is
    /// being written are also in the new log, so a snapshot need not be of
    /// one instant; but tombstones must not be collected meanwhile, since
    /// that moves entries between slots.
    pub fn snapshot_part(&self, cursor: &mut SnapshotCursor, max_entries: usize) -> bool {
        if !cursor.started {
            cursor
                .out
                .start_file(self.names.name(self.me), false, &self.names);
            cursor.out.joined(&self.names, &self.vv);
            cursor.started = true;
        }
        let end = (cursor.next_slot + max_entries).min(self.slots.len());
        for e in &self.slots[cursor.next_slot.min(end)..end] {
            cursor
                .out
                .version(&self.names, e.key(), e.value(), &e.clock, e.stamp());
        }
        cursor.next_slot = end;
        end >= self.slots.len()
    }

    /// Holds (or releases) tombstone collection, while a snapshot is being
    /// written.
    pub fn hold_tombstones(&mut self, hold: bool) {
        self.hold_tombstones = hold;
    }

    /// The id of a writer name, for replay.
    pub(crate) fn intern(&mut self, name: &str) -> NodeId {
        self.names.intern(name)
    }

    /// Sets a key's version as a log record says it was, for replay, from
    /// a file written by `file_writer` (this node, under this or an earlier
    /// identity: its writes are in the log in counter order, so the
    /// version vector covers every one up to the highest replayed).
    pub(crate) fn restore(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        clock: Clock,
        stamp: Stamp,
        file_writer: NodeId,
    ) {
        self.hlc.observe(stamp.ts);
        let own = clock.get(file_writer);
        if own > 0 {
            self.vv.raise(file_writer, own);
            if file_writer == self.me {
                self.counter.observe(own);
            }
        }
        if key.len() > MAX_KEY_LEN || clock.is_empty() {
            return;
        }
        let entry = Entry::new(key, value, clock, stamp);
        match self.find(key) {
            Some(slot) => {
                self.replace(slot, entry);
            }
            None => {
                self.insert(entry);
            }
        }
    }

    /// Joins the version vector as a log record says, for replay.
    pub(crate) fn restore_joined(&mut self, vv: &VersionVector) {
        self.vv.join(vv);
        self.counter.observe(vv.get(self.me));
    }

    /// The live keys, sorted.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = self
            .slots
            .iter()
            .filter(|e| !e.tombstone)
            .map(|e| e.key().to_vec())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// The live keys for which `wanted` says yes, in no particular order.
    pub fn keys_where(&self, wanted: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
        self.slots
            .iter()
            .filter(|e| !e.tombstone && wanted(e.key()))
            .map(|e| e.key().to_vec())
            .collect()
    }

    /// One step of an iteration over the live keys, as Redis's `SCAN` does
    /// it: visits about `count` entries from `cursor` on (0 starts) and
    /// returns the cursor to go on from (0 when the iteration is complete)
    /// and the live keys among them for which `wanted` says yes.
    ///
    /// The order is that of the keys' hashes, which are fixed for the
    /// life of the store, so the guarantee is stronger than Redis's: a key
    /// that is live from the first step of an iteration to the last is
    /// returned exactly once, whatever is written, merged, deleted or
    /// collected meanwhile; a key added or deleted meanwhile is returned at
    /// most once. A cursor means nothing to another store (each hashes with
    /// its own random seed). Keys with the same 64-bit hash are never
    /// split between two steps.
    ///
    /// The first call builds the order (a sort of every entry's hash, about
    /// a tenth of a second per million keys); later ones only walk it.
    pub fn scan(
        &mut self,
        cursor: u64,
        count: usize,
        wanted: impl Fn(&[u8]) -> bool,
    ) -> (u64, Vec<Vec<u8>>) {
        let mut keys = Vec::new();
        let mut visited = 0;
        let slots = &self.slots;
        let order = self.scan_order.get_or_insert_with(|| {
            let mut pairs: Vec<(u64, u32)> = (0..)
                .zip(slots)
                .map(|(slot, e)| (table_hash(e.hash), slot))
                .collect();
            pairs.sort_unstable();
            pairs.into_iter().collect()
        });
        let mut order = order.range((cursor, 0)..).peekable();
        while let Some(&(hash, slot)) = order.next() {
            let e = &self.slots[slot as usize];
            if !e.tombstone && wanted(e.key()) {
                keys.push(e.key().to_vec());
            }
            visited += 1;
            match order.peek() {
                None => break,
                Some(&&(next, _)) if visited >= count && next != hash => return (next, keys),
                Some(_) => {}
            }
        }
        (0, keys)
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

impl SnapshotCursor {
    /// A snapshot from the first entry.
    pub fn new() -> SnapshotCursor {
        SnapshotCursor::default()
    }

    /// The records encoded so far, leaving the buffer empty.
    pub fn take(&mut self) -> Vec<u8> {
        self.out.take()
    }
}

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

/// Checks a version vector from a peer: sane names and counters.
fn check_vv(vv: &WireVv) -> Result<(), BatchError> {
    check_names(vv.iter().map(|(n, _)| n.as_str()))?;
    if vv.iter().any(|&(_, c)| c >= MAX_COUNTER) {
        return Err(BatchError("counter out of range".into()));
    }
    Ok(())
}

fn check_names<'a>(mut names: impl Iterator<Item = &'a str>) -> Result<(), BatchError> {
    match names.find(|n| n.is_empty() || n.len() > MAX_NAME_LEN) {
        Some(n) => Err(BatchError(format!("writer name of {} bytes", n.len()))),
        None => Ok(()),
    }
}

/// A key's version in a process-independent form (see [`Store::canonical`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalEntry {
    /// The key.
    pub key: Vec<u8>,
    /// The value, `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// Timestamp of the winning write.
    pub ts: u64,
    /// Name of the winning write's writer.
    pub writer: String,
    /// The clock as (writer name, counter), sorted by name.
    pub clock: Vec<(String, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::version::Version;
    use proptest::prelude::*;

    const MAX: usize = 1 << 20;

    /// One push from `from` to `to`, message for message as a pusher and a
    /// connection thread do it, starting from `known` (what `from` knows of
    /// `to`'s vector). `cut` loses the connection at that message; `dup`
    /// delivers every part twice. Returns `to`'s acknowledged vector.
    fn exchange(
        from: &mut Store,
        to: &mut Store,
        known: &WireVv,
        cut: Option<usize>,
        dup: bool,
    ) -> Option<WireVv> {
        let mut sent = 0;
        let step = |n: &mut usize| {
            *n += 1;
            cut != Some(*n)
        };
        let from_vv = from.version_vector();
        let mut cursor = None;
        loop {
            let d = from.delta(known, cursor, 64);
            if !step(&mut sent) {
                return None;
            }
            for _ in 0..if dup { 2 } else { 1 } {
                to.apply_batch(&d.batch).expect("valid batch");
            }
            match d.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        to.join_version_vector(&from_vv).expect("valid vv");
        let to_vv = to.version_vector();
        let mut cursor = None;
        loop {
            let d = to.delta(&from_vv, cursor, 64);
            if !step(&mut sent) {
                return None;
            }
            for _ in 0..if dup { 2 } else { 1 } {
                from.apply_batch(&d.batch).expect("valid batch");
            }
            match d.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        from.join_version_vector(&to_vv).expect("valid vv");
        Some(to_vv)
    }

    /// A push over a fresh connection.
    fn push(from: &mut Store, to: &mut Store) {
        let known = to.version_vector();
        exchange(from, to, &known, None, false).expect("no loss");
    }

    #[test]
    fn put_get_delete() {
        let mut s = Store::new("a", MAX).with_peers(1);
        assert_eq!(s.get(b"k"), None);
        s.put(b"k", b"v1", 1_000).expect("put");
        assert_eq!(s.get(b"k"), Some(&b"v1"[..]));
        s.put(b"k", b"v2", 1_000).expect("put");
        assert_eq!(s.get(b"k"), Some(&b"v2"[..]));
        s.delete(b"k", 1_000).expect("delete");
        assert_eq!(s.get(b"k"), None);
        assert_eq!(
            s.counts(),
            Counts {
                live: 0,
                tombstones: 1
            }
        );
        s.put(b"k", b"", 1_000).expect("put");
        assert_eq!(s.get(b"k"), Some(&b""[..]));
        assert_eq!(
            s.counts(),
            Counts {
                live: 1,
                tombstones: 0
            }
        );
    }

    #[test]
    fn limits_are_enforced() {
        let mut s = Store::new("a", 10);
        assert_eq!(
            s.put(b"k", &[0; 11], 1),
            Err(WriteError::ValueTooLong { len: 11, max: 10 })
        );
        assert_eq!(
            s.put(&vec![0; MAX_KEY_LEN + 1], b"v", 1),
            Err(WriteError::KeyTooLong(MAX_KEY_LEN + 1))
        );
        assert_eq!(s.counts(), Counts::default());
    }

    #[test]
    fn a_delete_does_not_come_back_through_sync() {
        let (mut a, mut b) = (
            Store::new("a", MAX).with_peers(1),
            Store::new("b", MAX).with_peers(1),
        );
        a.put(b"k", b"v", 1_000).expect("put");
        push(&mut a, &mut b);
        assert_eq!(b.get(b"k"), Some(&b"v"[..]));
        b.delete(b"k", 2_000).expect("delete");
        push(&mut a, &mut b);
        push(&mut b, &mut a);
        assert_eq!(a.get(b"k"), None);
        assert_eq!(b.get(b"k"), None);
        assert_eq!(a.canonical(), b.canonical());
    }

    #[test]
    fn one_push_moves_data_both_ways() {
        let (mut a, mut b) = (Store::new("a", MAX), Store::new("b", MAX));
        a.put(b"from a", b"1", 1_000).expect("put");
        b.put(b"from b", b"2", 1_000).expect("put");
        push(&mut a, &mut b);
        assert_eq!(a.get(b"from b"), Some(&b"2"[..]));
        assert_eq!(b.get(b"from a"), Some(&b"1"[..]));
    }

    #[test]
    fn an_idle_push_sends_nothing_and_a_write_sends_one_entry() {
        let (mut a, mut b) = (Store::new("a", MAX), Store::new("b", MAX));
        for i in 0..100u8 {
            a.put(&[i], b"v", 1_000).expect("put");
        }
        push(&mut a, &mut b);
        let known = b.version_vector();
        let d = a.delta(&known, None, 1 << 20);
        assert!(d.batch.entries.is_empty() && d.next.is_none());
        a.put(&[7], b"new", 2_000).expect("put");
        let d = a.delta(&known, None, 1 << 20);
        assert_eq!(d.batch.entries.len(), 1);
        assert_eq!(d.batch.entries[0].key.0, [7]);
    }

    #[test]
    fn a_node_restarted_empty_gets_everything_back_and_its_new_write_wins() {
        let mut old_a = Store::new("a#1", MAX);
        let mut b = Store::new("b#1", MAX);
        old_a.put(b"k", b"before restart", 5_000_000).expect("put");
        old_a.put(b"other", b"kept", 5_000_000).expect("put");
        push(&mut old_a, &mut b);
        // a restarts with nothing under a new writer identity.
        let mut a = Store::new("a#2", MAX);
        a.put(b"k", b"after restart", 5_000_100).expect("put");
        push(&mut a, &mut b);
        assert_eq!(b.get(b"k"), Some(&b"after restart"[..]));
        assert_eq!(a.get(b"k"), Some(&b"after restart"[..]));
        assert_eq!(a.get(b"other"), Some(&b"kept"[..]));
    }

    #[test]
    fn tombstones_go_once_every_peer_has_them_and_never_come_back() {
        let mut a = Store::new("a", MAX).with_peers(2);
        let mut b = Store::new("b", MAX);
        let mut c = Store::new("c", MAX);
        a.put(b"k", b"v", 1_000).expect("put");
        push(&mut a, &mut b);
        push(&mut a, &mut c);
        let stale_c = c.canonical();
        a.delete(b"k", 2_000).expect("delete");
        // b acknowledges the tombstone; c has not: it stays.
        let known = b.version_vector();
        let ack = exchange(&mut a, &mut b, &known, None, false).expect("ok");
        assert_eq!(a.peer_acknowledged(0, &ack), Ok(0));
        assert_eq!(a.counts().tombstones, 1);
        assert_eq!(a.peer_lag(1).tombstones_waiting, 1);
        let known = c.version_vector();
        let ack = exchange(&mut a, &mut c, &known, None, false).expect("ok");
        assert_eq!(a.peer_acknowledged(1, &ack), Ok(1));
        assert_eq!(a.counts(), Counts::default());
        // A late copy of the old value (sent before c saw the delete) is
        // refused: a has seen that write.
        let late = &stale_c[0];
        let mut names = Names::new();
        let clock = Clock::from_dots(late.clock.iter().map(|(n, c)| Dot {
            node: names.intern(n),
            counter: *c,
        }));
        let batch = Batch {
            names: (0..names.len())
                .map(|i| names.name(NodeId(i as u32)).to_owned())
                .collect(),
            entries: vec![WireEntry {
                key: Bytes(late.key.clone()),
                value: late.value.clone().map(Bytes),
                ts: late.ts,
                writer: names.lookup(&late.writer).expect("writer").0,
                clock: clock.dots().iter().map(|d| (d.node.0, d.counter)).collect(),
            }],
        };
        a.apply_batch(&batch).expect("valid");
        assert_eq!(a.get(b"k"), None);
    }

    /// Every key a full SCAN iteration returns, stepping `count` at a time
    /// and calling `between` after each step.
    fn scan_all(
        store: &mut Store,
        count: usize,
        mut between: impl FnMut(&mut Store, usize),
    ) -> Vec<Vec<u8>> {
        let mut cursor = 0;
        let mut all = Vec::new();
        for step in 0.. {
            let (next, keys) = store.scan(cursor, count, |_| true);
            assert!(keys.len() <= count + 2, "step {step}: {} keys", keys.len());
            all.extend(keys);
            if next == 0 {
                break;
            }
            assert!(next > cursor, "the cursor moves on");
            cursor = next;
            between(store, step);
        }
        all
    }

    #[test]
    fn a_scan_returns_every_key_once_and_skips_tombstones() {
        let mut a = Store::new("a", MAX);
        assert_eq!(a.scan(0, 10, |_| true), (0, Vec::new()));
        for i in 0..100u8 {
            a.put(&[i], b"v", 1_000).expect("put");
        }
        a.delete(&[7], 1_000).expect("delete");
        for count in [1, 3, 10, 1000] {
            let mut got = scan_all(&mut a, count, |_, _| {});
            got.sort();
            let want: Vec<Vec<u8>> = (0..100u8).filter(|&i| i != 7).map(|i| vec![i]).collect();
            assert_eq!(got, want, "count {count}");
        }
        let (_, even) = a.scan(0, 1000, |k| k[0] % 2 == 0);
        assert_eq!(even.len(), 50);
        let mut listed = a.keys_where(|k| k[0] < 10);
        listed.sort();
        assert_eq!(listed.len(), 9);
    }

    #[test]
    fn keys_merged_from_batches_are_scanned_once_and_can_be_taken_back() {
        let mut b = Store::new("b", MAX);
        for i in 0..300u16 {
            b.put(&i.to_be_bytes(), b"v", 1_000).expect("put");
        }
        let mut a = Store::new("a", MAX);
        a.put(&7u16.to_be_bytes(), b"mine", 1_000).expect("put");
        // A first scan builds the order, so the batches must keep it.
        assert_eq!(
            a.scan(0, 10, |_| true),
            (0, vec![7u16.to_be_bytes().to_vec()])
        );
        let mut cursor = None;
        loop {
            // Small parts: several batches, each adding keys to scan_order.
            let d = b.delta(&a.version_vector(), cursor, 500);
            a.apply_batch(&d.batch).expect("valid batch");
            match d.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let mut got = scan_all(&mut a, 7, |_, _| {});
        got.sort();
        let want: Vec<Vec<u8>> = (0..300u16).map(|i| i.to_be_bytes().to_vec()).collect();
        assert_eq!(got, want);

        // A logged batch whose log write fails is taken back whole, its
        // keys out of scan_order too.
        let mut c = Store::new("c", MAX);
        c.start_journal(false);
        assert_eq!(c.scan(0, 10, |_| true), (0, Vec::new()));
        c.apply_batch(&b.delta(&Vec::new(), None, usize::MAX).batch)
            .expect("valid batch");
        c.rollback();
        assert_eq!(scan_all(&mut c, 10, |_, _| {}), Vec::<Vec<u8>>::new());
        assert_eq!(c.counts().live, 0);

        // A store filled before its first scan builds the order from what
        // it holds.
        let mut got = scan_all(&mut b, 9, |_, _| {});
        got.sort();
        let want: Vec<Vec<u8>> = (0..300u16).map(|i| i.to_be_bytes().to_vec()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_replayed_store_scans_every_key_once() {
        let mut a = Store::new("a#1", MAX);
        a.start_journal(false);
        for i in 0..300u16 {
            a.put(&i.to_be_bytes(), b"v", 1_000).expect("put");
        }
        a.delete(&7u16.to_be_bytes(), 1_000).expect("delete");
        a.put(&5u16.to_be_bytes(), b"again", 1_000).expect("put");
        let log = a.take_journal();
        let mut back = Store::new("a#1", MAX);
        let scan = crate::durability::record::scan(&log, MAX);
        let mut replayer = crate::durability::journal::Replayer::new();
        for body in scan.bodies(&log) {
            replayer.apply(&mut back, body).expect("replays");
        }
        for count in [1, 10, 1000] {
            let mut got = scan_all(&mut back, count, |_, _| {});
            got.sort();
            assert_eq!(got, back.keys(), "count {count}");
            assert_eq!(got.len(), 299, "count {count}");
        }
    }

    #[test]
    fn a_scan_keeps_its_guarantee_while_keys_come_and_go() {
        let mut a = Store::new("a", MAX);
        for i in 0..200u8 {
            a.put(&[i], b"v", 1_000).expect("put");
        }
        // The first 100 keys stay; the others are deleted and collected
        // (which moves entries between slots) or rewritten, and new keys
        // arrive, all while the iteration goes on.
        let got = scan_all(&mut a, 7, |store, step| {
            let victim = 100 + (step * 13 % 100) as u8;
            store.delete(&[victim], 1_000).expect("delete");
            store.collect_tombstones();
            store.put(&[1, step as u8], b"new", 1_000).expect("put");
            store
                .put(&[(step % 100) as u8], b"again", 1_000)
                .expect("put");
        });
        for i in 0..100u8 {
            let n = got.iter().filter(|k| **k == [i]).count();
            assert_eq!(n, 1, "key {i} returned {n} times");
        }
        let mut unique = got.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), got.len(), "no key twice");
    }

    #[test]
    fn delta_parts_stay_under_the_limit_and_together_hold_everything() {
        let mut a = Store::new("a", MAX);
        for i in 0..20u8 {
            a.put(&[i], &[i; 600], 1_000).expect("put");
        }
        let mut cursor = None;
        let mut keys = Vec::new();
        loop {
            let d = a.delta(&WireVv::new(), cursor, 1_500);
            let size: usize = d
                .batch
                .entries
                .iter()
                .map(|e| e.value.as_ref().map_or(0, |v| v.0.len()))
                .sum();
            assert!(size <= 1_500 && !d.batch.entries.is_empty(), "{size}");
            keys.extend(d.batch.entries.iter().map(|e| e.key.0[0]));
            match d.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys, (0..20).collect::<Vec<u8>>());
        // One entry larger than the limit still goes, alone.
        let mut b = Store::new("b", MAX);
        b.put(b"big", &[0; 5_000], 1).expect("put");
        let d = b.delta(&WireVv::new(), None, 1_500);
        assert_eq!((d.batch.entries.len(), d.next), (1, None));
    }

    #[test]
    fn removing_entries_keeps_the_others_reachable() {
        let mut a = Store::new("a", MAX);
        for i in 0..50u8 {
            a.put(&[i], &[i], 1_000).expect("put");
        }
        for i in (0..50u8).step_by(3) {
            a.delete(&[i], 1_000).expect("delete");
        }
        assert_eq!(a.collect_tombstones(), 17);
        for i in 0..50u8 {
            let want = [i];
            let want = (i % 3 != 0).then_some(&want[..]);
            assert_eq!(a.get(&[i]), want, "key {i}");
        }
        let d = a.delta(&WireVv::new(), None, 1 << 20);
        assert_eq!(d.batch.entries.len(), 33);
    }

    #[test]
    fn bad_batches_change_nothing() {
        let mut s = Store::new("a", 4);
        let good = WireEntry {
            key: Bytes(b"k".to_vec()),
            value: Some(Bytes(b"v".to_vec())),
            ts: 1,
            writer: 0,
            clock: vec![(0, 1)],
        };
        let cases = [
            WireEntry {
                writer: 1,
                ..good.clone()
            },
            WireEntry {
                clock: vec![(5, 1)],
                ..good.clone()
            },
            WireEntry {
                clock: vec![],
                ..good.clone()
            },
            WireEntry {
                value: Some(Bytes(vec![0; 5])),
                ..good.clone()
            },
        ];
        for bad in cases {
            let batch = Batch {
                names: vec!["b".into()],
                entries: vec![good.clone(), bad],
            };
            assert!(s.apply_batch(&batch).is_err());
        }
        assert!(s.canonical().is_empty());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put(usize, u8, u8),
        Delete(usize, u8),
        /// Push from .0 to .1, losing the connection at message .2 (0: no
        /// loss), duplicating parts when .3.
        Push(usize, usize, usize, bool),
        Wait(u64),
    }

    fn arb_ops() -> impl Strategy<Value = Vec<Op>> {
        let op = prop_oneof![
            4 => (0..5usize, 0u8..12, any::<u8>()).prop_map(|(n, k, v)| Op::Put(n, k, v)),
            2 => (0..5usize, 0u8..12).prop_map(|(n, k)| Op::Delete(n, k)),
            4 => (0..5usize, 0..5usize, prop_oneof![3 => Just(0usize), 1 => 1..6usize], any::<bool>())
                .prop_map(|(a, b, cut, dup)| Op::Push(a, b, cut, dup)),
            1 => (0u64..5_000).prop_map(Op::Wait),
        ];
        proptest::collection::vec(op, 1..120)
    }

    /// Replicas with the pusher's view of each peer, as the shell keeps it.
    struct Cluster {
        stores: Vec<Store>,
        /// `known[a][b]`: b's vector as a last heard it (None: reconnect).
        known: Vec<Vec<Option<WireVv>>>,
        /// Tombstones collected so far.
        collected: usize,
    }

    impl Cluster {
        fn new(n: usize) -> Cluster {
            Cluster {
                stores: (0..n)
                    .map(|i| Store::new(&format!("n{i}"), MAX).with_peers(n - 1))
                    .collect(),
                known: vec![vec![None; n]; n],
                collected: 0,
            }
        }

        /// Index of `b` in `a`'s peer list (every other node, in order).
        fn peer_index(a: usize, b: usize) -> usize {
            if b < a {
                b
            } else {
                b - 1
            }
        }

        fn push(&mut self, a: usize, b: usize, cut: Option<usize>, dup: bool) {
            if a == b {
                return;
            }
            let (lo, hi) = self.stores.split_at_mut(a.max(b));
            let (x, y) = (&mut lo[a.min(b)], &mut hi[0]);
            let (from, to) = if a < b { (x, y) } else { (y, x) };
            let known = self.known[a][b]
                .clone()
                .unwrap_or_else(|| to.version_vector());
            match exchange(from, to, &known, cut, dup) {
                Some(ack) => {
                    self.collected += from
                        .peer_acknowledged(Self::peer_index(a, b), &ack)
                        .expect("valid");
                    self.known[a][b] = Some(ack);
                }
                None => self.known[a][b] = None,
            }
        }
    }

    proptest! {
        #![proptest_config(crate::proptest_config("tests/regressions/store.txt"))]
        /// Random writes and deletes on 3 to 5 replicas with skewed clocks,
        /// random pushes with lost connections and duplicated parts, then
        /// full rounds: every replica ends identical, and every live key
        /// holds the value a reference merge of all writes picks.
        #[test]
        fn replicas_converge_to_the_merge_of_every_write(nodes in 3usize..6, ops in arb_ops()) {
            let mut cluster = Cluster::new(nodes);
            let mut reference: std::collections::BTreeMap<Vec<u8>, Version> = Default::default();
            let mut names = Names::new();
            let mut now = 1_000_000u64;
            for op in ops {
                match op {
                    Op::Put(n, ..) | Op::Delete(n, _) if n >= nodes => {}
                    Op::Put(n, k, v) => {
                        let s = &mut cluster.stores[n];
                        s.put(&[k], &[v], now + 3_000 * n as u64).expect("put");
                        record(&mut reference, &mut names, s, k);
                    }
                    Op::Delete(n, k) => {
                        let s = &mut cluster.stores[n];
                        s.delete(&[k], now + 3_000 * n as u64).expect("delete");
                        record(&mut reference, &mut names, s, k);
                    }
                    Op::Push(a, b, cut, dup) => {
                        cluster.push(a % nodes, b % nodes, (cut > 0).then_some(cut), dup);
                    }
                    Op::Wait(us) => now += us,
                }
            }
            for _ in 0..2 {
                for a in 0..nodes {
                    for b in 0..nodes {
                        cluster.push(a, b, None, false);
                    }
                }
            }
            // Values and stamps are identical everywhere. Clocks are too,
            // except that a write to a key whose tombstone its writer had
            // already collected does not carry the tombstone's dots, where a
            // replica that still held the tombstone joins them in: dots that
            // every replica has seen, so no decision differs.
            let collected = cluster.collected;
            let first = cluster.stores[0].canonical();
            for s in &cluster.stores[1..] {
                let other = s.canonical();
                if collected == 0 {
                    prop_assert_eq!(&other, &first);
                }
                let strip = |v: &[CanonicalEntry]| {
                    v.iter()
                        .map(|e| (e.key.clone(), e.value.clone(), e.ts, e.writer.clone()))
                        .collect::<Vec<_>>()
                };
                prop_assert_eq!(strip(&other), strip(&first));
            }
            let live: Vec<(Vec<u8>, Vec<u8>)> = first
                .iter()
                .filter_map(|e| e.value.clone().map(|v| (e.key.clone(), v)))
                .collect();
            let expected: Vec<(Vec<u8>, Vec<u8>)> = reference
                .iter()
                .filter_map(|(k, v)| v.value.clone().map(|v| (k.clone(), v)))
                .collect();
            prop_assert_eq!(live, expected);
        }
    }

    /// Folds the version just written to key `k` on `s` into the reference.
    fn record(
        reference: &mut std::collections::BTreeMap<Vec<u8>, Version>,
        names: &mut Names,
        s: &Store,
        k: u8,
    ) {
        let e = s
            .canonical()
            .into_iter()
            .find(|e| e.key == [k])
            .expect("just written");
        let v = Version {
            value: e.value,
            clock: Clock::from_dots(e.clock.iter().map(|(n, c)| Dot {
                node: names.intern(n),
                counter: *c,
            })),
            stamp: Stamp {
                ts: e.ts,
                writer: names.intern(&e.writer),
            },
        };
        let merged = match reference.get(&vec![k]) {
            Some(old) => old.merge(&v, names),
            None => v,
        };
        reference.insert(vec![k], merged);
    }
}
