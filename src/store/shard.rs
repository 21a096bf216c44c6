//! Sharding in the store: per-partition writer names, and what a peer
//! that holds only some partitions is sent, acknowledges and lags by.
//!
//! With `--replicas`, each node holds only some partitions (see
//! [`crate::placement`]), so a version vector entry for a writer can no
//! longer say "every write of this writer up to here": a peer holding
//! partitions 1 and 2 has seen none of the writer's writes to partition 3
//! and never will. So a sharded node writes a key of partition `p` under
//! the writer name `{writer}/{p}` ([`writer_for`]): every dot of such a
//! name lies in one partition, the vector's entry for it is a claim about
//! that partition alone, and the whole replication protocol (vectors,
//! deltas, joins, acknowledgements) works per partition with no change
//! to its form. A transfer names the partitions it carried, and only
//! their names' entries are joined (see `crate::replication::transfer`).
//!
//! The node's own counter stays one sequence across its names, so the
//! dots of one command are still consecutive when they fall in one
//! partition (a group, see [`Store::note_group`]).

use super::*;
use crate::placement::partition::{partition_of_key, partition_of_writer, writer_for, PARTITIONS};

impl Store {
    /// Makes local writes go under per-partition writer names (a node
    /// with `--replicas`).
    pub fn sharded(mut self) -> Store {
        self.sharded = true;
        self
    }

    /// Whether local writes go under per-partition writer names.
    pub fn is_sharded(&self) -> bool {
        self.sharded
    }

    /// The id of the writer a local write of `key` goes under: the node's
    /// own, or, sharded, its name for the key's partition.
    pub(super) fn writer_id(&mut self, key: &[u8]) -> NodeId {
        if !self.sharded {
            return self.me;
        }
        let p = usize::from(partition_of_key(key));
        self.written_parts.insert(p as u16);
        if self.part_ids.len() < PARTITIONS {
            self.part_ids.resize(PARTITIONS, None);
        }
        if let Some(id) = self.part_ids[p] {
            return id;
        }
        let name = writer_for(self.names.name(self.me), p as u16);
        let id = self.names.intern(&name);
        self.part_ids[p] = Some(id);
        self.mark_mine(id);
        id
    }

    /// The partitions this node wrote to since the last call (every one
    /// when not sharded): the peers that hold none of them have nothing
    /// new to be pushed.
    pub fn take_written_partitions(&mut self) -> PartitionSet {
        if !self.sharded {
            return PartitionSet::all();
        }
        std::mem::replace(&mut self.written_parts, PartitionSet::none())
    }

    /// Remembers that `id` is one of this node's current writer names.
    pub(super) fn mark_mine(&mut self, id: NodeId) {
        let i = id.0 as usize;
        if self.mine.len() <= i {
            self.mine.resize(i + 1, false);
        }
        self.mine[i] = true;
    }

    /// Whether `node` is this node's current writer or one of its
    /// per-partition names.
    pub(super) fn is_mine(&self, node: NodeId) -> bool {
        node == self.me || self.mine.get(node.0 as usize).copied().unwrap_or(false)
    }

    /// This node's current writer names: its own and the per-partition
    /// ones it has written under.
    pub(super) fn my_ids(&self) -> Vec<NodeId> {
        std::iter::once(self.me)
            .chain(self.part_ids.iter().flatten().copied())
            .collect()
    }

    /// The highest counter of this node's current names in `clock`.
    pub(super) fn own_counter_in(&self, clock: &Clock) -> u64 {
        clock
            .dots()
            .iter()
            .filter(|d| self.is_mine(d.node))
            .map(|d| d.counter)
            .max()
            .unwrap_or(0)
    }

    /// Whether `node` is `base` or one of its per-partition names
    /// (replay: a file's writer wrote under both).
    pub(super) fn is_name_of(&self, node: NodeId, base: NodeId) -> bool {
        if node == base {
            return true;
        }
        let name = self.names.name(node);
        partition_of_writer(name).is_some()
            && name
                .rsplit_once('/')
                .is_some_and(|(b, _)| b == self.names.name(base))
    }

    /// Adopts `id` as one of this node's per-partition names, if it is
    /// one (replay of a file written under this identity).
    pub(super) fn adopt_if_mine(&mut self, id: NodeId) {
        if id == self.me || !self.is_name_of(id, self.me) {
            return;
        }
        if let Some(p) = partition_of_writer(self.names.name(id)) {
            if self.part_ids.len() < PARTITIONS {
                self.part_ids.resize(PARTITIONS, None);
            }
            self.part_ids[usize::from(p)] = Some(id);
            self.mark_mine(id);
        }
    }

    /// The highest counter of this node's current names in its vector.
    pub(super) fn own_vv_counter(&self) -> u64 {
        self.my_ids()
            .into_iter()
            .map(|id| self.vv.get(id))
            .max()
            .unwrap_or(0)
    }

    /// The partitions this node has data of: those whose writers' vector
    /// entries are above zero (every partition when not sharded).
    pub fn partitions_with_data(&self) -> PartitionSet {
        if !self.sharded {
            return PartitionSet::all();
        }
        self.vv
            .iter()
            .filter(|&(_, c)| c > 0)
            .filter_map(|(node, _)| partition_of_writer(self.names.name(node)))
            .collect()
    }

    /// Tells the store which partitions listed peer `peer` holds: its lag
    /// and the groups it holds back count only those.
    pub fn set_peer_partitions(&mut self, peer: usize, partitions: PartitionSet) {
        if self.peer_parts.len() <= peer {
            self.peer_parts.resize(peer + 1, PartitionSet::all());
        }
        self.peer_parts[peer] = partitions;
    }

    /// The partitions listed peer `peer` holds, as last told.
    pub(super) fn peer_partitions(&self, peer: usize) -> PartitionSet {
        self.peer_parts
            .get(peer)
            .copied()
            .unwrap_or_else(PartitionSet::all)
    }

    /// Whether writer `node`'s writes concern a peer holding `partitions`:
    /// a per-partition name whose partition it holds, or any other name
    /// (a name from before sharding may have written anywhere).
    pub(super) fn concerns(&self, node: NodeId, partitions: &PartitionSet) -> bool {
        partitions.is_all()
            || partition_of_writer(self.names.name(node)).is_none_or(|p| partitions.contains(p))
    }
}

impl Store {
    /// Drops the data of the partitions this node holds no more (not in
    /// `held`) that every listed peer holding them has acknowledged
    /// whole: the end of a handoff. A partition is dropped only when at
    /// least one peer holds it and each peer that does (or whose
    /// partitions are not known yet) has acknowledged, for every writer
    /// of the partition, all this node has of it; so nothing this node
    /// holds is lost with it. Its entries go (tombstones included, which
    /// the holders have) and its writers' vector entries fall to zero:
    /// were it to hold the partition again, it would be sent the
    /// partition whole. The drop is not logged: after a restart the log
    /// brings the data back with the vector entries that cover it, and
    /// the next drop takes it again. Not while a snapshot is written
    /// (entries would move between slots). Returns how many partitions
    /// and entries went.
    pub fn drop_released(&mut self, held: &PartitionSet) -> (usize, usize) {
        if !self.sharded || self.hold_tombstones || held.is_all() {
            return (0, 0);
        }
        let mut names: Vec<(NodeId, u16, u64)> = Vec::new();
        for (node, c) in self.vv.iter() {
            if c == 0 {
                continue;
            }
            if let Some(p) = partition_of_writer(self.names.name(node)) {
                if !held.contains(p) {
                    names.push((node, p, c));
                }
            }
        }
        if names.is_empty() {
            return (0, 0);
        }
        let candidates: PartitionSet = names.iter().map(|&(_, p, _)| p).collect();
        let mut released = PartitionSet::none();
        for p in candidates.iter() {
            let mut holders = 0;
            let all_acked = (0..self.peer_acks.len())
                .filter(|i| !self.gone_peers.contains(i))
                .filter(|&i| self.peer_partitions(i).contains(p))
                .all(|i| {
                    holders += 1;
                    self.peer_acks[i].as_ref().is_some_and(|ack| {
                        names
                            .iter()
                            .filter(|&&(_, q, _)| q == p)
                            .all(|&(node, _, c)| ack.get(node) >= c)
                    })
                });
            if all_acked && holders > 0 {
                released.insert(p);
            }
        }
        if released.is_empty() {
            return (0, 0);
        }
        let doomed: Vec<u32> = (0..)
            .zip(&self.slots)
            .filter(|(_, e)| released.contains(partition_of_key(e.key())))
            .map(|(slot, _)| slot)
            .collect();
        let dropped = self.remove_all(doomed);
        for &(node, p, _) in &names {
            if released.contains(p) {
                self.vv.lower(node, 0);
            }
        }
        let gone = |node: NodeId| {
            partition_of_writer(self.names.name(node)).is_some_and(|p| released.contains(p))
        };
        let groups = std::mem::take(&mut self.groups);
        self.groups = groups.into_iter().filter(|(d, _)| !gone(d.node)).collect();
        (released.len(), dropped)
    }
}

/// Keeps the entries of `vv` that a node holding `held` may join from a
/// transfer that carried the partitions `sent`: per-partition names of a
/// partition in both, and other names only when the transfer carried
/// every partition the node holds.
pub fn joinable(vv: &WireVv, sent: &PartitionSet, held: &PartitionSet) -> WireVv {
    if sent.is_all() && held.is_all() {
        return vv.clone();
    }
    let both = sent.intersection(held);
    let whole = held.minus(sent).is_empty();
    vv.iter()
        .filter(|(name, _)| match partition_of_writer(name) {
            Some(p) => both.contains(p),
            None => whole,
        })
        .cloned()
        .collect()
}

/// Keeps the entries of `vv` for the partitions `parts` (and names from
/// before sharding): what a peer holding `parts` says that concerns it.
pub fn within(vv: &WireVv, parts: &PartitionSet) -> WireVv {
    if parts.is_all() {
        return vv.clone();
    }
    vv.iter()
        .filter(|(name, _)| partition_of_writer(name).is_none_or(|p| parts.contains(p)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::partition::partition_of_key;

    /// Later than every write here, so no batch is ahead of the clock.
    const LATER_US: u64 = 1 << 50;

    /// A key of partition `p`, found by trying.
    fn key_in(p: u16, nth: usize) -> Vec<u8> {
        (0..)
            .map(|i| format!("k{i}").into_bytes())
            .filter(|k| partition_of_key(k) == p)
            .nth(nth)
            .expect("some key falls in every partition")
    }

    fn names_of(vv: &WireVv) -> Vec<&str> {
        vv.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn sharded_writes_go_under_the_name_of_their_partition() {
        let mut s = Store::new("a#1", 1024).sharded();
        let (k3, k9) = (key_in(3, 0), key_in(9, 0));
        s.put(&k3, b"v", 1_000).expect("put");
        s.put(&k9, b"v", 2_000).expect("put");
        s.put(&key_in(3, 1), b"v", 3_000).expect("put");
        let vv = s.version_vector();
        assert!(names_of(&vv).contains(&"a#1/3"), "{vv:?}");
        assert!(names_of(&vv).contains(&"a#1/9"), "{vv:?}");
        // One counter across the names: no dot repeats.
        assert_eq!(vv.iter().map(|(_, c)| *c).max(), Some(3));
        // Unsharded, the name stays the node's own.
        let mut plain = Store::new("b#1", 1024);
        plain.put(&k3, b"v", 1_000).expect("put");
        assert_eq!(names_of(&plain.version_vector()), vec!["b#1"]);
    }

    #[test]
    fn a_delta_for_a_peer_holds_only_its_partitions() {
        let mut a = Store::new("a#1", 1024).sharded();
        for p in 0..8 {
            a.put(&key_in(p, 0), b"v", 1_000 + u64::from(p))
                .expect("put");
        }
        let wanted: PartitionSet = [1, 5].into_iter().collect();
        let d = a.delta_for(&WireVv::new(), None, usize::MAX, &wanted);
        let mut parts: Vec<u16> = d
            .batch
            .entries
            .iter()
            .map(|e| partition_of_key(&e.key.0))
            .collect();
        parts.sort_unstable();
        assert_eq!(parts, vec![1, 5]);
        // The batch names only the writers its entries use.
        assert_eq!(d.batch.names.len(), 2, "{:?}", d.batch.names);
    }

    #[test]
    fn only_the_partitions_a_transfer_carried_and_the_node_holds_are_joined() {
        let vv: WireVv = vec![
            ("a#1/1".into(), 5),
            ("a#1/2".into(), 6),
            ("a#1/3".into(), 7),
            ("old".into(), 9),
        ];
        let sent: PartitionSet = [1, 2].into_iter().collect();
        let held: PartitionSet = [2, 3].into_iter().collect();
        assert_eq!(names_of(&joinable(&vv, &sent, &held)), vec!["a#1/2"]);
        // A name from before sharding only when the transfer carried all
        // the node holds.
        let all_held: PartitionSet = [1, 2].into_iter().collect();
        assert_eq!(
            names_of(&joinable(&vv, &sent, &all_held)),
            vec!["a#1/1", "a#1/2", "old"]
        );
        let everything = PartitionSet::all();
        assert_eq!(joinable(&vv, &everything, &everything), vv);
        assert_eq!(names_of(&within(&vv, &held)), vec!["a#1/2", "a#1/3", "old"]);
    }

    #[test]
    fn a_node_that_holds_some_partitions_converges_on_those_from_two_writers() {
        // a and b hold everything; c holds partitions 1 and 2 only.
        let mut a = Store::new("a#1", 1024).sharded();
        let mut b = Store::new("b#1", 1024).sharded();
        let mut c = Store::new("c#1", 1024).sharded();
        let c_holds: PartitionSet = [1, 2].into_iter().collect();
        for p in 0..4 {
            a.put(&key_in(p, 0), b"from a", 1_000).expect("put");
            b.put(&key_in(p, 1), b"from b", 2_000).expect("put");
        }
        // a -> b, whole.
        let d = a.delta(&WireVv::new(), None, usize::MAX);
        b.apply_batch(&d.batch, LATER_US).expect("valid");
        b.join_version_vector(&a.version_vector()).expect("join");
        // b -> c: b's and a's writes of c's partitions, and b's vector
        // joined for those partitions only.
        let d = b.delta_for(&c.version_vector(), None, usize::MAX, &c_holds);
        c.apply_batch(&d.batch, LATER_US).expect("valid");
        let j = joinable(&b.version_vector(), &c_holds, &c_holds);
        c.join_version_vector(&j).expect("join");
        assert_eq!(c.counts().live, 4);
        // A later write of a to partition 1 reaches c from a directly:
        // c's vector is not ahead of what it holds.
        a.put(&key_in(1, 2), b"later", 3_000).expect("put");
        let d = a.delta_for(&c.version_vector(), None, usize::MAX, &c_holds);
        assert_eq!(d.batch.entries.len(), 1, "only the new write");
        c.apply_batch(&d.batch, LATER_US).expect("valid");
        assert_eq!(c.get(&key_in(1, 2)), Some(&b"later"[..]));
        // Nothing of partitions 0 and 3 ever reached c.
        assert!(c.get(&key_in(0, 0)).is_none() && c.get(&key_in(3, 1)).is_none());
    }

    #[test]
    fn a_partition_is_dropped_only_once_every_holder_has_it_all() {
        let mut a = Store::new("a#1", 1024).sharded().with_peers(2);
        let (k1, k2) = (key_in(1, 0), key_in(2, 0));
        a.put(&k1, b"v", 1_000).expect("put");
        a.put(&k2, b"v", 2_000).expect("put");
        let held: PartitionSet = [2].into_iter().collect();
        let p1: PartitionSet = [1].into_iter().collect();
        a.set_peer_partitions(0, p1);
        a.set_peer_partitions(1, p1);
        // No holder has acknowledged yet: nothing goes.
        assert_eq!(a.drop_released(&held), (0, 0));
        a.peer_acknowledged(0, &a.version_vector()).expect("ack");
        // One of the two holders: still nothing.
        assert_eq!(a.drop_released(&held), (0, 0));
        a.peer_acknowledged(1, &a.version_vector()).expect("ack");
        assert_eq!(a.drop_released(&held), (1, 1));
        assert!(a.get(&k1).is_none());
        assert_eq!(a.get(&k2), Some(&b"v"[..]));
        // Its writer's entry fell to zero: were it held again, it would
        // be sent whole.
        let entry = |name: &str| {
            a.version_vector()
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, c)| *c)
        };
        assert_eq!(entry("a#1/1"), 0);
        assert!(entry("a#1/2") > 0);
        // A partition no peer holds is never dropped.
        let mut lone = Store::new("z#1", 1024).sharded().with_peers(1);
        lone.set_peer_partitions(0, PartitionSet::none());
        lone.put(&k1, b"v", 1_000).expect("put");
        assert_eq!(lone.drop_released(&held), (0, 0));
    }

    #[test]
    fn a_command_is_a_group_only_within_one_partition() {
        let mut s = Store::new("a#1", 1024).sharded().with_peers(1);
        let first = s.issued() + 1;
        s.put(&key_in(4, 0), b"v", 1_000).expect("put");
        s.put(&key_in(4, 1), b"v", 2_000).expect("put");
        s.note_group(first, s.issued());
        assert_eq!(s.groups.len(), 1);
        let first = s.issued() + 1;
        s.put(&key_in(4, 2), b"v", 3_000).expect("put");
        s.put(&key_in(6, 0), b"v", 4_000).expect("put");
        s.note_group(first, s.issued());
        assert_eq!(s.groups.len(), 1, "a command across partitions is no group");
    }
    #[test]
    fn wait_counts_the_peers_that_hold_the_latest_write() {
        let mut a = Store::new("a#1", 1024).sharded().with_peers(2);
        let k = key_in(7, 0);
        a.set_peer_partitions(0, [7].into_iter().collect());
        a.set_peer_partitions(1, [8].into_iter().collect());
        a.put(&k, b"v", 1_000).expect("put");
        let c = a.issued();
        assert!(!a.peer_has_own_writes(0, c), "nothing acknowledged yet");
        let vv = a.version_vector();
        a.peer_acknowledged(0, &vv).expect("ack");
        a.peer_acknowledged(1, &vv).expect("ack");
        assert!(a.peer_has_own_writes(0, c));
        assert!(!a.peer_has_own_writes(1, c), "no replica of the write");
    }
    #[test]
    fn a_tombstone_waits_for_the_holders_of_its_partition_only() {
        let mut a = Store::new("a#1", 1024).sharded().with_peers(2);
        let k = key_in(5, 0);
        a.set_peer_partitions(0, [5].into_iter().collect());
        a.set_peer_partitions(1, [6].into_iter().collect());
        a.put(&k, b"v", 1_000).expect("put");
        a.delete(&k, 2_000).expect("delete");
        assert_eq!(
            a.collect_tombstones_of_holders(),
            0,
            "its holder has not got it"
        );
        let vv = a.version_vector();
        // What peer 1 acknowledges is what concerns it: none of partition 5.
        let p6: PartitionSet = [6].into_iter().collect();
        a.peer_acknowledged(1, &within(&vv, &p6)).expect("ack");
        assert_eq!(
            a.collect_tombstones_of_holders(),
            0,
            "peer 1 holds none of it"
        );
        a.peer_acknowledged(0, &vv).expect("ack");
        assert_eq!(a.collect_tombstones_of_holders(), 1);
        assert_eq!(a.counts().tombstones, 0);
        // Unsharded, this collection does nothing (the usual one does).
        let mut plain = Store::new("b#1", 1024).with_peers(1);
        plain.put(&k, b"v", 1_000).expect("put");
        plain.delete(&k, 2_000).expect("delete");
        assert_eq!(plain.collect_tombstones_of_holders(), 0);
    }
}
