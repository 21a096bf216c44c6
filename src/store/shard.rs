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
        let mut doomed: Vec<u32> = (0..)
            .zip(&self.slots)
            .filter(|(_, e)| released.contains(partition_of_key(e.key())))
            .map(|(slot, _)| slot)
            .collect();
        // Highest first: removing a slot moves the last entry into it.
        doomed.sort_unstable_by(|a, b| b.cmp(a));
        for &slot in &doomed {
            self.remove(slot);
        }
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
        (released.len(), doomed.len())
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
