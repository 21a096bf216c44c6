//! The clocked map: every key's current version, local writes, and the
//! merge of versions from peers.
//!
//! One [`Store`] is owned by the store thread and by nothing else, so it
//! takes no locks. It is pure: the wall clock is passed in (`now_us`,
//! microseconds since the Unix epoch) and it does no I/O.
//!
//! # Memory
//!
//! Each key is one [`Entry`] in a swiss table (56 bytes plus one control
//! byte per slot) and one heap block holding the key and the value together.
//! A clock with a single writer is stored inline; only keys written by
//! several nodes allocate for their clock. The README's table gives the
//! measured bytes per key.

use crate::clock::{Clock, Dot, NodeId};
use crate::hlc::{Hlc, WriteCounter};
use crate::names::{Names, MAX_NAME_LEN};
use crate::version::{winner, Stamp, VersionRef, Winner};
use crate::wire::{Batch, Bytes, WireEntry};
use hashbrown::HashTable;
use std::fmt;
use std::hash::{BuildHasher, RandomState};

/// The longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = u16::MAX as usize;

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
    /// The key followed by the value (empty after the key for a tombstone).
    bytes: Box<[u8]>,
    ts: u64,
    clock: Clock,
    writer: NodeId,
    key_len: u16,
    tombstone: bool,
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

    fn version(&self) -> VersionRef<'_> {
        VersionRef {
            value: self.value(),
            clock: &self.clock,
            stamp: self.stamp(),
        }
    }
}

/// What merging one remote version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeOutcome {
    /// The local version changed (value or clock).
    pub changed: bool,
    /// The local version has seen a write the remote one had not, so the
    /// sender should get the local version back.
    pub sender_lacks: bool,
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
    table: HashTable<Entry>,
    hasher: RandomState,
    hlc: Hlc,
    counter: WriteCounter,
    counts: Counts,
    max_value: usize,
}

impl Store {
    /// An empty store for the node called `name`, refusing values longer
    /// than `max_value` bytes.
    pub fn new(name: &str, max_value: usize) -> Store {
        let mut names = Names::new();
        let me = names.intern(name);
        Store {
            me,
            names,
            table: HashTable::new(),
            hasher: RandomState::new(),
            hlc: Hlc::new(),
            counter: WriteCounter::new(),
            counts: Counts::default(),
            max_value,
        }
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        self.names.name(self.me)
    }

    /// Key and tombstone counts.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The value of `key`, or `None` if it is absent or deleted.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let hash = self.hasher.hash_one(key);
        self.table
            .find(hash, |e| e.key() == key)
            .and_then(Entry::value)
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
            counter: self.counter.next(now_us),
        };
        // The timestamp is above every one this node has seen, including the
        // key's current version, so the new write also wins by timestamp.
        let stamp = Stamp {
            ts: self.hlc.tick(now_us),
            writer: self.me,
        };
        let hash = self.hasher.hash_one(key);
        match self.table.find_mut(hash, |e| e.key() == key) {
            Some(e) => {
                let clock = e.clock.with(dot);
                Self::count(&mut self.counts, e.tombstone, -1);
                *e = Entry::new(key, value, clock, stamp);
            }
            None => {
                let hasher = &self.hasher;
                self.table.insert_unique(
                    hash,
                    Entry::new(key, value, Clock::single(dot), stamp),
                    |e| hasher.hash_one(e.key()),
                );
            }
        }
        Self::count(&mut self.counts, value.is_none(), 1);
        Ok(())
    }

    fn count(counts: &mut Counts, tombstone: bool, delta: isize) {
        let slot = if tombstone {
            &mut counts.tombstones
        } else {
            &mut counts.live
        };
        *slot = slot.wrapping_add_signed(delta);
    }

    /// Merges a remote version of `key` (already translated to local ids).
    pub fn merge(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        clock: Clock,
        stamp: Stamp,
    ) -> MergeOutcome {
        self.hlc.observe(stamp.ts);
        let own = clock.get(self.me);
        if own > 0 {
            self.counter.observe(own);
        }
        let hash = self.hasher.hash_one(key);
        let Some(e) = self.table.find_mut(hash, |e| e.key() == key) else {
            let hasher = &self.hasher;
            self.table
                .insert_unique(hash, Entry::new(key, value, clock, stamp), |e| {
                    hasher.hash_one(e.key())
                });
            Self::count(&mut self.counts, value.is_none(), 1);
            return MergeOutcome {
                changed: true,
                sender_lacks: false,
            };
        };
        let sender_lacks = !clock.descends(&e.clock);
        let incoming = VersionRef {
            value,
            clock: &clock,
            stamp,
        };
        match winner(&e.version(), &incoming, &self.names) {
            Winner::Left => {
                let changed = !e.clock.descends(&clock);
                if changed {
                    e.clock = e.clock.join(&clock);
                }
                MergeOutcome {
                    changed,
                    sender_lacks,
                }
            }
            Winner::Right => {
                let joined = e.clock.join(&clock);
                Self::count(&mut self.counts, e.tombstone, -1);
                *e = Entry::new(key, value, joined, stamp);
                Self::count(&mut self.counts, value.is_none(), 1);
                MergeOutcome {
                    changed: true,
                    sender_lacks,
                }
            }
        }
    }

    /// Merges a batch from a peer and returns, as a batch, this node's
    /// version of every pushed key that has seen something the pushed
    /// version had not. The batch is checked whole first; a bad one changes
    /// nothing.
    pub fn apply_batch(&mut self, batch: &Batch) -> Result<Batch, BatchError> {
        self.check_batch(batch)?;
        let ids: Vec<NodeId> = batch.names.iter().map(|n| self.names.intern(n)).collect();
        let mut lacking = Vec::new();
        for w in &batch.entries {
            let clock = Clock::from_dots(w.clock.iter().map(|&(i, counter)| Dot {
                node: ids[i as usize],
                counter,
            }));
            let stamp = Stamp {
                ts: w.ts,
                writer: ids[w.writer as usize],
            };
            let outcome = self.merge(&w.key.0, w.value.as_ref().map(|v| &v.0[..]), clock, stamp);
            if outcome.sender_lacks {
                lacking.push(&w.key.0[..]);
            }
        }
        Ok(self.export_keys(lacking))
    }

    fn check_batch(&self, batch: &Batch) -> Result<(), BatchError> {
        let fail = |s: String| Err(BatchError(s));
        if let Some(n) = batch
            .names
            .iter()
            .find(|n| n.is_empty() || n.len() > MAX_NAME_LEN)
        {
            return fail(format!("node name of {} bytes", n.len()));
        }
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
        }
        Ok(())
    }

    /// The versions of `keys` (those present), as a batch.
    fn export_keys<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> Batch {
        let entries = keys
            .into_iter()
            .filter_map(|k| {
                self.table
                    .find(self.hasher.hash_one(k), |e| e.key() == k)
                    .map(Self::to_wire)
            })
            .collect();
        Batch {
            names: self.all_names(),
            entries,
        }
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

    /// Every version in the store, cut into batches of about `chunk_bytes`
    /// each (at least one entry per batch), for a full sync.
    pub fn snapshot(&self, chunk_bytes: usize) -> Vec<Batch> {
        let names = self.all_names();
        let mut batches = Vec::new();
        let mut current = Vec::new();
        let mut size = 0;
        for e in self.table.iter() {
            let w = Self::to_wire(e);
            size += w.encoded_size_hint();
            current.push(w);
            if size >= chunk_bytes {
                batches.push(Batch {
                    names: names.clone(),
                    entries: std::mem::take(&mut current),
                });
                size = 0;
            }
        }
        if !current.is_empty() {
            batches.push(Batch {
                names,
                entries: current,
            });
        }
        batches
    }

    /// The live keys, sorted.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = self
            .table
            .iter()
            .filter(|e| !e.tombstone)
            .map(|e| e.key().to_vec())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Every key's version, with node names instead of ids, sorted by key:
    /// a form that two stores can be compared in.
    pub fn canonical(&self) -> Vec<CanonicalEntry> {
        let mut out: Vec<CanonicalEntry> = self
            .table
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

/// A key's version in a process-independent form (see [`Store::canonical`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalEntry {
    /// The key.
    pub key: Vec<u8>,
    /// The value, `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// Timestamp of the winning write.
    pub ts: u64,
    /// Name of the winning write's node.
    pub writer: String,
    /// The clock as (node name, counter), sorted by name.
    pub clock: Vec<(String, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: usize = 1 << 20;

    /// A full push from `from` to `to`, with the answer merged back, as a
    /// sync round does it.
    fn push(from: &mut Store, to: &mut Store) {
        for batch in from.snapshot(256) {
            let back = to.apply_batch(&batch).expect("valid batch");
            from.apply_batch(&back).expect("valid answer");
        }
    }

    #[test]
    fn put_get_delete() {
        let mut s = Store::new("a", MAX);
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
        let (mut a, mut b) = (Store::new("a", MAX), Store::new("b", MAX));
        a.put(b"k", b"v", 1_000).expect("put");
        push(&mut a, &mut b);
        assert_eq!(b.get(b"k"), Some(&b"v"[..]));
        b.delete(b"k", 2_000).expect("delete");
        // a still has the old value and pushes it: the tombstone descends it.
        push(&mut a, &mut b);
        push(&mut b, &mut a);
        assert_eq!(a.get(b"k"), None);
        assert_eq!(b.get(b"k"), None);
        assert_eq!(a.canonical(), b.canonical());
    }

    #[test]
    fn the_answer_to_a_push_carries_what_the_pusher_lacks() {
        let (mut a, mut b) = (Store::new("a", MAX), Store::new("b", MAX));
        a.put(b"k", b"old", 1_000).expect("put");
        push(&mut a, &mut b);
        b.put(b"k", b"new", 2_000).expect("put");
        push(&mut a, &mut b); // one push, both ways
        assert_eq!(a.get(b"k"), Some(&b"new"[..]));
    }

    #[test]
    fn a_restarted_node_s_new_write_wins_over_its_old_ones() {
        let mut old_a = Store::new("a", MAX);
        let mut b = Store::new("b", MAX);
        old_a.put(b"k", b"before restart", 5_000_000).expect("put");
        push(&mut old_a, &mut b);
        // a restarts with nothing, a moment later.
        let mut a = Store::new("a", MAX);
        a.put(b"k", b"after restart", 5_000_100).expect("put");
        push(&mut a, &mut b);
        push(&mut b, &mut a);
        assert_eq!(b.get(b"k"), Some(&b"after restart"[..]));
        assert_eq!(a.get(b"k"), Some(&b"after restart"[..]));
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
        Push(usize, usize),
        Wait(u64),
    }

    fn arb_ops(nodes: usize) -> impl Strategy<Value = Vec<Op>> {
        let op = prop_oneof![
            4 => (0..nodes, 0u8..8, any::<u8>()).prop_map(|(n, k, v)| Op::Put(n, k, v)),
            2 => (0..nodes, 0u8..8).prop_map(|(n, k)| Op::Delete(n, k)),
            3 => (0..nodes, 0..nodes).prop_map(|(a, b)| Op::Push(a, b)),
            1 => (0u64..5_000).prop_map(Op::Wait),
        ];
        proptest::collection::vec(op, 1..80)
    }

    fn pair(stores: &mut [Store], a: usize, b: usize) -> Option<(&mut Store, &mut Store)> {
        if a == b {
            return None;
        }
        let (lo, hi) = stores.split_at_mut(a.max(b));
        let (x, y) = (&mut lo[a.min(b)], &mut hi[0]);
        Some(if a < b { (x, y) } else { (y, x) })
    }

    proptest! {
        /// Random writes on simulated replicas with skewed clocks, synced in
        /// random order, then fully: every replica ends identical, and each
        /// key holds the write a reference merge of all writes picks.
        #[test]
        fn replicas_converge_whatever_the_sync_order(nodes in 2usize..5, ops in arb_ops(4)) {
            let mut stores: Vec<Store> = (0..nodes).map(|i| Store::new(&format!("n{i}"), MAX)).collect();
            let mut now = 1_000_000u64;
            for op in ops {
                match op {
                    Op::Put(n, k, v) => {
                        let n = n % nodes;
                        let skew = 3_000 * n as u64;
                        stores[n].put(&[k], &[v], now + skew).expect("put");
                    }
                    Op::Delete(n, k) => {
                        let n = n % nodes;
                        stores[n].delete(&[k], now + 3_000 * n as u64).expect("delete");
                    }
                    Op::Push(a, b) => {
                        if let Some((x, y)) = pair(&mut stores, a % nodes, b % nodes) {
                            push(x, y);
                        }
                    }
                    Op::Wait(us) => now += us,
                }
            }
            for _ in 0..2 {
                for a in 0..nodes {
                    for b in 0..nodes {
                        if let Some((x, y)) = pair(&mut stores, a, b) {
                            push(x, y);
                        }
                    }
                }
            }
            let first = stores[0].canonical();
            for s in &stores[1..] {
                prop_assert_eq!(&s.canonical(), &first);
            }
        }
    }
}
