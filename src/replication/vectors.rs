//! Version vectors on one connection, sent as what changed since the last
//! one each way (pure).
//!
//! A node's vector names every writer that ever wrote in the cluster: one
//! entry per node, and one more each time a node restarts without its data
//! or renews its identity (see `store/identity.rs`). The retired names
//! stay: the keys their writers wrote carry their dots, and a vector that
//! left them out would say the node lacks those writes. So after 100
//! restarts a vector is a hundred entries (a few kilobytes), and sent whole
//! it would be most of every idle round.
//!
//! Both ends of a connection see the same frames in the same order, so
//! after the `Welcome` (which carries the answering node's whole vector)
//! each side keeps the last vector it sent and the last one it received on
//! that connection, and `Push`'s last part and `Ack` carry only the
//! entries that differ from the sender's previous one: changed counters,
//! new writers, and writers gone from the vector (sent as 0). An idle round
//! then carries no entry at all, and a busy one only the writers that
//! wrote, however many identities the cluster has retired. A connection
//! that fails is dropped by both sides, and its vectors with it; a new one
//! starts from a whole `Welcome` again.
//!
//! This is what folds retired identities away on the wire, without
//! deciding when every member covers one: a retired writer's counter never
//! moves again, so it is never sent again on a live connection. The names
//! stay in memory (a few dozen bytes each, in the vector and in the clocks
//! of the keys they wrote, which keep every writer that wrote them); the README's
//! *Limitations* says so.

use crate::replication::error::{ProtocolError, Result};
use crate::store::batch::WireVv;
use crate::store::{within, PartitionSet};
use std::collections::BTreeMap;

/// Most writers a vector on one connection may name: a peer whose changes
/// would make it longer is refused (its names are otherwise bounded only
/// per frame, and changes accumulate).
pub const MAX_WRITERS: usize = 65_536;

/// The last vector sent and the last received on one connection.
#[derive(Debug, Default, Clone)]
pub struct VectorLink {
    sent: BTreeMap<String, u64>,
    received: BTreeMap<String, u64>,
}

impl VectorLink {
    /// A fresh connection's: nothing sent or received yet.
    pub fn new() -> VectorLink {
        VectorLink::default()
    }

    /// Records `vv` as sent whole (this side's `Welcome`).
    pub fn sent_whole(&mut self, vv: &WireVv) {
        self.sent = whole(vv);
    }

    /// Records `vv` as received whole (the peer's `Welcome`).
    pub fn received_whole(&mut self, vv: &WireVv) {
        self.received = whole(vv);
    }

    /// [`VectorLink::changes`] of `vv`'s entries for the partitions
    /// `parts` only (sharded, a peer is told of the partitions it deals
    /// in); all of it when `parts` is every partition.
    pub fn changes_within(&mut self, vv: &WireVv, parts: &PartitionSet) -> WireVv {
        if parts.is_all() {
            self.changes(vv)
        } else {
            self.changes(&within(vv, parts))
        }
    }

    /// What to send for `vv`: its entries that differ from the last vector
    /// sent on this connection, and 0 for writers it no longer names.
    /// Records `vv` as sent.
    pub fn changes(&mut self, vv: &WireVv) -> WireVv {
        // Names borrowed: an unchanged vector (every idle round's) copies
        // none, and `sent` is updated by the changes alone.
        let mut now: BTreeMap<&str, u64> = BTreeMap::new();
        for (name, c) in vv.iter().filter(|(_, c)| *c > 0) {
            let at = now.entry(name.as_str()).or_insert(0);
            *at = (*at).max(*c);
        }
        let mut out: WireVv = now
            .iter()
            .filter(|&(name, c)| self.sent.get(*name) != Some(c))
            .map(|(&name, &c)| (name.to_owned(), c))
            .collect();
        out.extend(
            self.sent
                .keys()
                .filter(|name| !now.contains_key(name.as_str()))
                .map(|name| (name.clone(), 0)),
        );
        for (name, c) in &out {
            if *c == 0 {
                self.sent.remove(name);
            } else {
                self.sent.insert(name.clone(), *c);
            }
        }
        out
    }

    /// The whole vector the peer sent as `changes` (see [`Self::changes`]),
    /// which it records as received: the previous one with the changes
    /// applied, writers at 0 left out. A peer whose vector would name more
    /// than [`MAX_WRITERS`] writers is refused.
    pub fn apply(&mut self, changes: WireVv) -> Result<WireVv> {
        for (name, c) in changes {
            if c == 0 {
                self.received.remove(&name);
            } else {
                self.received.insert(name, c);
            }
        }
        if self.received.len() > MAX_WRITERS {
            return Err(ProtocolError::LongVector(self.received.len()).into());
        }
        Ok(self
            .received
            .iter()
            .map(|(name, &c)| (name.clone(), c))
            .collect())
    }
}

/// `vv` as a map, without entries at 0 (which say nothing), the highest
/// counter kept where a name appears twice.
fn whole(vv: &WireVv) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (name, c) in vv {
        if *c > 0 {
            let at = out.entry(name.clone()).or_insert(0);
            *at = (*at).max(*c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vv(entries: &[(&str, u64)]) -> WireVv {
        entries.iter().map(|&(n, c)| (n.to_owned(), c)).collect()
    }

    #[test]
    fn an_unchanged_vector_is_sent_as_nothing() {
        let (mut a, mut b) = (VectorLink::new(), VectorLink::new());
        let first = vv(&[("n1#1", 4), ("n1#2", 9), ("n2#1", 3)]);
        a.sent_whole(&first);
        b.received_whole(&first);
        let again = a.changes(&first);
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(
            whole(&b.apply(again).expect("a short vector")),
            whole(&first)
        );
    }

    #[test]
    fn only_the_writers_that_moved_are_sent() {
        let (mut a, mut b) = (VectorLink::new(), VectorLink::new());
        let first = vv(&[("old#1", 4), ("old#2", 9), ("n2#1", 3)]);
        a.sent_whole(&first);
        b.received_whole(&first);
        let next = vv(&[("old#1", 4), ("old#2", 9), ("n2#1", 5), ("n3#1", 1)]);
        let sent = a.changes(&next);
        assert_eq!(sent, vv(&[("n2#1", 5), ("n3#1", 1)]));
        assert_eq!(whole(&b.apply(sent).expect("a short vector")), whole(&next));
    }

    #[test]
    fn a_vector_longer_than_the_limit_is_refused() {
        let mut b = VectorLink::new();
        let many: WireVv = (0..=MAX_WRITERS).map(|i| (format!("w{i}"), 1)).collect();
        assert!(b.apply(many).is_err());
    }

    proptest! {
        /// Whatever vectors one side sends in turn (counters going up,
        /// down, writers coming and going), the other side rebuilds each
        /// one exactly.
        #[test]
        fn the_receiver_rebuilds_every_vector(
            first in prop::collection::vec((0u8..12, 0u64..6), 0..12),
            rounds in prop::collection::vec(prop::collection::vec((0u8..12, 0u64..6), 0..12), 1..8),
        ) {
            let named = |e: &Vec<(u8, u64)>| -> WireVv {
                e.iter().map(|&(n, c)| (format!("w{n}"), c)).collect()
            };
            let (mut a, mut b) = (VectorLink::new(), VectorLink::new());
            let first = named(&first);
            a.sent_whole(&first);
            b.received_whole(&first);
            for round in &rounds {
                let now = named(round);
                let got = b.apply(a.changes(&now)).expect("a short vector");
                prop_assert_eq!(whole(&got), whole(&now));
            }
        }
    }
}
