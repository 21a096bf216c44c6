//! This node's own writer identity: noticing that peers have seen more of
//! it than this node has issued, and going on under a fresh one.
//!
//! A node's data directory can go back in time (a backup put back, a copy
//! of another directory, a disk rolled back). It then resumes writing
//! under the identity its files name, from the counter they hold, while
//! its peers already hold dots above that counter for other writes: they
//! would take each new write for one they have, and drop it. Detection
//! is pure: [`Store::is_behind`] compares a peer's version vector with
//! what this node has issued, and [`Store::renew_identity`] switches to a
//! new writer name and re-issues the writes made under the old one since
//! the start. The shell asks when a peer's vector first arrives (see
//! `engine::service`) and makes the full rounds that bring back what the
//! old identity's lost writes were overwritten with.

use super::*;

/// A peer has seen more of this node's writer than this node can account
/// for (see [`Store::is_behind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behind {
    /// The counter of this node's writer in the peer's vector.
    pub peer_has: u64,
    /// The highest counter of that writer this node can have shown any
    /// peer: what its files held at the start, or what it has sent since.
    pub issued: u64,
}

impl Store {
    /// Whether `peer_vv` (a peer's version vector) holds a counter of this
    /// node's current writer above any this node has shown: its files
    /// held counters up to the one it resumed from, and it has sent peers
    /// counters up to [`Self::delta`]'s last call; a peer can honestly
    /// know no more. A higher one was issued by this writer in a past
    /// this node's data no longer holds, for writes it may not have, so
    /// the counters it has issued since the start, and would issue next,
    /// may name other writes on the peer.
    ///
    /// Asking when a peer's vector first arrives (the handshake, and the
    /// end of a peer's push, before this node sends it anything) is
    /// enough: the data directory goes back only while the node is
    /// stopped, and until this node sends its first part nothing of its
    /// new counters has left it, so the comparison with what its files
    /// held is exact. What can happen before it, writes between the start
    /// and the first exchange, is covered by [`Self::renew_identity`]'s
    /// re-issue. A peer that knows the lost counters but is not reachable
    /// until after this node has shown others as many counters of its own
    /// is not caught: the README's backup section says to start a
    /// restored node while its peers are up.
    pub fn is_behind(&self, peer_vv: &WireVv) -> Option<Behind> {
        let mine = self.writer();
        let peer_has = peer_vv
            .iter()
            .filter(|(name, _)| crate::placement::partition::base_writer(name) == mine)
            .map(|&(_, c)| c)
            .max()?;
        let issued = self.resumed_at.max(self.shown.get());
        (peer_has > issued).then_some(Behind { peer_has, issued })
    }

    /// After this node's data went back in time (see [`Self::is_behind`]),
    /// with the whole state of a peer at hand (`keys`, every key it holds,
    /// and `vv`, its vector then): turns into tombstones the values this
    /// node holds whose every write the peer has seen, but which the peer
    /// does not hold. The peer deleted them meanwhile and, once every node
    /// had the delete, dropped the tombstone, so no round could ever tell
    /// this node; without this, the deleted value would live on here for
    /// good. The tombstone keeps the value's clock, like an expiry's (see
    /// [`Self::expire_due`]). Only for a node whose data went back in
    /// time: on any other, a value the peer lacks is one the peer lost,
    /// which a repair brings back to it. Returns how many.
    pub fn drop_deleted_meanwhile(&mut self, vv: &WireVv, keys: &HashSet<Vec<u8>>) -> usize {
        let seen = self.local_vv(vv);
        let stale: Vec<u32> = (0..)
            .zip(&self.slots)
            .filter(|(_, e)| !e.tombstone && seen.covers_clock(&e.clock) && !keys.contains(e.key()))
            .map(|(slot, _)| slot)
            .collect();
        for &slot in &stale {
            self.tombstone_in_place(slot);
        }
        stale.len()
    }

    /// Goes on under `new_writer` (the node's name with a new epoch), from
    /// counter 1, and re-issues every key whose current version this node
    /// wrote under the old identity since it started: its value (or
    /// tombstone) again, as a new local write with a new dot and a new
    /// timestamp, so it reaches peers that hold the old counter for
    /// another write, and wins as a later write would. The old dots above
    /// what the files held are dropped from those keys' clocks, since on
    /// peers they name other writes. When logging, the records begin a new
    /// file (the caller starts it: see [`ChangeLog::start_file`]), so a
    /// restart goes on under the new identity. Returns how many keys were
    /// re-issued.
    pub fn renew_identity(&mut self, new_writer: &str, now_us: u64) -> usize {
        let old = self.me;
        let old_ids = self.my_ids();
        let floor = self.resumed_at;
        self.me = self.names.intern(new_writer);
        for id in std::mem::take(&mut self.part_ids).into_iter().flatten() {
            self.mine[id.0 as usize] = false;
        }
        self.run = None;
        self.counter = WriteCounter::new();
        self.committed_counter = 0;
        self.resumed_at = 0;
        self.shown.set(0);
        self.rotate_journal();
        let mut slots: Vec<(u32, NodeId)> = Vec::new();
        for &id in &old_ids {
            let above = Dot {
                node: id,
                counter: floor.saturating_add(1),
            }..=Dot {
                node: id,
                counter: u64::MAX,
            };
            slots.extend(
                self.dots
                    .range(above)
                    .map(|(_, &s)| (s, id))
                    .filter(|&(s, id)| self.slots[s as usize].writer == id),
            );
        }
        let _ = old;
        slots.sort_unstable();
        slots.dedup();
        for &(slot, id) in &slots {
            self.reissue(slot, id, floor, now_us);
        }
        slots.len()
    }

    /// Writes the version in `slot` again under this node's identity,
    /// without `old`'s dots above `floor`.
    fn reissue(&mut self, slot: u32, old: NodeId, floor: u64, now_us: u64) {
        let previous_ts = self.slots[slot as usize].ts;
        // A clock that refuses to tick (off from its peers) must not lose
        // the write: its new dot alone makes it later than what it saw.
        let ts = self.hlc.tick(now_us).unwrap_or(previous_ts);
        let key = self.slots[slot as usize].key().to_vec();
        let node = self.writer_id(&key);
        let dot = Dot {
            node,
            counter: self.counter.issue(),
        };
        self.vv.raise(node, dot.counter);
        let e = &self.slots[slot as usize];
        let kept = e
            .clock
            .dots()
            .iter()
            .copied()
            .filter(|d| d.node != old || d.counter <= floor);
        let clock = Clock::from_dots(kept).with(dot);
        let stamp = Stamp { ts, writer: node };
        let entry = e.rebuilt(clock, stamp);
        self.replace_logged(slot, entry);
        self.log_slot(slot);
    }

    /// Records that this node's counters up to the last issued may have
    /// reached a peer (see [`Self::is_behind`]).
    pub(super) fn note_shown(&self) {
        self.shown.set(self.shown.get().max(self.counter.last()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::durability::journal::{writer_of, JournalWriter};
    use crate::durability::record;

    const MAX: usize = 1 << 20;
    /// Later than every write here, so no batch is ahead of the clock.
    const LATER_US: u64 = 1 << 50;

    /// Everything `from` holds, merged into `to` (a full round's half).
    fn send_all(from: &Store, to: &mut Store, repair: bool) {
        let d = from.delta(&WireVv::new(), None, usize::MAX);
        if repair {
            to.apply_repair_batch(&d.batch, LATER_US).expect("valid");
        } else {
            to.apply_batch(&d.batch, LATER_US).expect("valid");
        }
        to.join_version_vector(&from.version_vector())
            .expect("valid");
    }

    fn logging(store: &mut Store) {
        store.start_journal(Box::new(JournalWriter::new()), true);
        let _ = store.take_journal();
        store.commit();
    }

    fn clock_of(store: &Store, key: &[u8]) -> Vec<(String, u64)> {
        let entries = store.canonical();
        let e = entries.iter().find(|e| e.key == key).expect("held");
        e.clock.clone()
    }

    /// `a#1` wrote `k` (the backup is taken here), then deleted it, and
    /// peer `b` holds the delete. The restored store resumes at counter
    /// 1 and writes `new` at once: counter 2, the delete's on `b`.
    fn restored_and_peer() -> (Store, Store) {
        let mut before = Store::new("a#1", MAX);
        before.put(b"k", b"old", 1_000).expect("put");
        before.delete(b"k", 2_000).expect("delete");
        let mut b = Store::new("b#1", MAX);
        send_all(&before, &mut b, false);

        let mut restored = Store::new("a#1", MAX);
        restored.put(b"k", b"old", 1_000).expect("put");
        logging(&mut restored);
        restored.put(b"new", b"x", 3_000).expect("put");
        (restored, b)
    }

    #[test]
    fn a_peer_that_has_seen_more_of_this_writer_than_it_issued_is_noticed() {
        let (restored, b) = restored_and_peer();
        assert_eq!(
            restored.is_behind(&b.version_vector()),
            Some(Behind {
                peer_has: 2,
                issued: 1
            })
        );
        assert_eq!(restored.is_behind(&vec![("a#1".into(), 1)]), None);
        assert_eq!(restored.is_behind(&vec![("a#0".into(), 9)]), None);
        assert_eq!(restored.is_behind(&WireVv::new()), None);
    }

    #[test]
    fn counters_a_node_sent_its_peers_are_not_mistaken_for_lost_ones() {
        let mut a = Store::new("a#1", MAX);
        logging(&mut a);
        a.put(b"k", b"v", 1_000).expect("put");
        let mut b = Store::new("b#1", MAX);
        send_all(&a, &mut b, false);
        a.put(b"k2", b"v", 2_000).expect("put");
        assert_eq!(a.is_behind(&b.version_vector()), None);
    }

    #[test]
    fn a_new_identity_reissues_the_writes_since_the_start_and_both_converge() {
        let (mut restored, mut b) = restored_and_peer();
        // The old identity's records go to its own log first.
        let _ = restored.take_journal();
        restored.commit();

        assert_eq!(restored.renew_identity("a#2", 4_000), 1, "only `new`");
        assert_eq!(restored.writer(), "a#2");
        assert_eq!(clock_of(&restored, b"new"), vec![("a#2".to_string(), 1)]);
        assert_eq!(clock_of(&restored, b"k"), vec![("a#1".to_string(), 1)]);
        assert_eq!(restored.is_behind(&b.version_vector()), None);

        // The new identity's records begin a file of their own.
        let log = restored.take_journal();
        let first = record::scan(&log, MAX).records[0].clone();
        assert_eq!(writer_of(&log[first]).as_deref(), Some("a#2"));

        // The full round after a new identity brings back the delete,
        // which a normal round would not: the restored vector claims
        // `a#1:2` already.
        send_all(&restored, &mut b, false);
        send_all(&b, &mut restored, true);
        assert_eq!(b.get(b"new"), Some(&b"x"[..]));
        assert_eq!(restored.get(b"k"), None);
        assert_eq!(restored.digest(), b.digest());
        restored.put(b"later", b"y", 5_000).expect("put");
        assert!(restored.version_vector().contains(&("a#2".into(), 2)));
    }
}
