//! Partitions: runs of [`SLOTS_PER_PARTITION`] consecutive slots, the
//! unit a layout places and a node stores, syncs and hands off (pure).
//!
//! A node's version vector is kept per partition (see the README's
//! "Sharding"): its writes to a key of partition `p` go under the writer
//! name `{writer}/{p}` ([`writer_for`]), so every dot of such a name lies
//! in one partition, and a peer that holds the partition can take the
//! vector's entry for that name as a claim about that partition alone.

use crate::placement::slot::{key_slot, SLOTS};

/// How many partitions the slots are cut into.
pub const PARTITIONS: usize = 256;

/// Slots per partition: partition `p` is slots `64 p ..= 64 p + 63`.
pub const SLOTS_PER_PARTITION: u16 = SLOTS / PARTITIONS as u16;

/// The partition of `slot`.
pub fn partition_of_slot(slot: u16) -> u16 {
    slot / SLOTS_PER_PARTITION
}

/// The partition of `key` (the partition of its slot).
pub fn partition_of_key(key: &[u8]) -> u16 {
    partition_of_slot(key_slot(key))
}

/// The writer name under which `writer` writes keys of partition `p`
/// when the cluster is sharded.
pub fn writer_for(writer: &str, p: u16) -> String {
    format!("{writer}/{p}")
}

/// The partition a writer name writes in, if it is a per-partition name
/// ([`writer_for`]): the number after the last `/` that follows the
/// name's last `#` (node names hold no `#`, so what follows it is
/// netdb's own: the epoch, then the partition).
pub fn partition_of_writer(name: &str) -> Option<u16> {
    let (_, tail) = name.rsplit_once('#')?;
    let (_, p) = tail.rsplit_once('/')?;
    let p: u16 = p.parse().ok()?;
    (usize::from(p) < PARTITIONS).then_some(p)
}

/// The writer name a per-partition name was made from (the name itself
/// for any other).
pub fn base_writer(name: &str) -> &str {
    match partition_of_writer(name) {
        Some(_) => name.rsplit_once('/').map_or(name, |(base, _)| base),
        None => name,
    }
}

/// A set of partitions.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct PartitionSet([u64; PARTITIONS / 64]);

impl PartitionSet {
    /// No partition.
    pub fn none() -> PartitionSet {
        PartitionSet::default()
    }

    /// Every partition.
    pub fn all() -> PartitionSet {
        PartitionSet([u64::MAX; PARTITIONS / 64])
    }

    /// Whether `p` is in the set.
    pub fn contains(&self, p: u16) -> bool {
        let p = usize::from(p);
        p < PARTITIONS && self.0[p / 64] & (1 << (p % 64)) != 0
    }

    /// Adds `p` (ignored when out of range).
    pub fn insert(&mut self, p: u16) {
        let p = usize::from(p);
        if p < PARTITIONS {
            self.0[p / 64] |= 1 << (p % 64);
        }
    }

    /// Removes `p`.
    pub fn remove(&mut self, p: u16) {
        let p = usize::from(p);
        if p < PARTITIONS {
            self.0[p / 64] &= !(1 << (p % 64));
        }
    }

    /// The partitions in both sets.
    pub fn intersection(&self, other: &PartitionSet) -> PartitionSet {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(other.0) {
            *a &= b;
        }
        out
    }

    /// The partitions in either set.
    pub fn union(&self, other: &PartitionSet) -> PartitionSet {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(other.0) {
            *a |= b;
        }
        out
    }

    /// The partitions in this set and not in `other`.
    pub fn minus(&self, other: &PartitionSet) -> PartitionSet {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(other.0) {
            *a &= !b;
        }
        out
    }

    /// Whether every partition is in the set.
    pub fn is_all(&self) -> bool {
        self.0.iter().all(|&w| w == u64::MAX)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    /// How many partitions the set holds.
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The partitions, in order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..PARTITIONS as u16).filter(|&p| self.contains(p))
    }

    /// Whether the set holds the partition of `key`.
    pub fn holds_key(&self, key: &[u8]) -> bool {
        self.is_all() || self.contains(partition_of_key(key))
    }
}

impl FromIterator<u16> for PartitionSet {
    fn from_iter<I: IntoIterator<Item = u16>>(iter: I) -> PartitionSet {
        let mut set = PartitionSet::none();
        for p in iter {
            set.insert(p);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cut_the_slots_evenly() {
        assert_eq!(SLOTS_PER_PARTITION, 64);
        assert_eq!(partition_of_slot(0), 0);
        assert_eq!(partition_of_slot(63), 0);
        assert_eq!(partition_of_slot(64), 1);
        assert_eq!(partition_of_slot(SLOTS - 1), PARTITIONS as u16 - 1);
    }

    #[test]
    fn per_partition_writer_names_round_trip() {
        let w = writer_for("n1#1700000000", 17);
        assert_eq!(w, "n1#1700000000/17");
        assert_eq!(partition_of_writer(&w), Some(17));
        assert_eq!(base_writer(&w), "n1#1700000000");
        // A node name may hold a '/': only what follows the '#' counts.
        assert_eq!(partition_of_writer("a/3#17"), None);
        assert_eq!(base_writer("a/3#17"), "a/3#17");
        assert_eq!(partition_of_writer("n1#5/300"), None);
        assert_eq!(partition_of_writer("n1"), None);
    }

    #[test]
    fn sets_hold_what_was_put_in() {
        let a: PartitionSet = [0, 5, 255].into_iter().collect();
        let b: PartitionSet = [5, 6].into_iter().collect();
        assert!(a.contains(255) && !a.contains(1));
        assert_eq!(a.intersection(&b).iter().collect::<Vec<_>>(), vec![5]);
        assert_eq!(a.union(&b).len(), 4);
        assert_eq!(a.minus(&b).iter().collect::<Vec<_>>(), vec![0, 255]);
        assert!(PartitionSet::all().is_all() && PartitionSet::none().is_empty());
        assert!(PartitionSet::all().holds_key(b"anything"));
    }
}
