//! Anti-entropy: peers compare the digests of their data at the end of
//! every round, and a divergence nothing else would notice is logged,
//! counted and repaired by a full exchange (Riak's active anti-entropy is
//! the model, with one digest per node instead of a hash tree).
//!
//! # When two nodes have diverged
//!
//! A round ends with four facts: the pusher's version vector and digest
//! when its transfer started, and the peer's when its answer started
//! (after it merged the push). Vectors differ all the time in normal
//! operation (writes keep arriving, a transfer is under way), and then
//! the digests differ for an honest reason, so different vectors say
//! nothing. But when both vectors are *equal*, both nodes have merged the
//! very same writes, and the merge rule (commutative, associative,
//! idempotent) gives the same data whatever the order: the digests must
//! be equal. If they are not, the replicas diverged for a reason nobody
//! foresaw (a lost write, a bug, a disk that returned other bytes), and
//! no vector will ever show it: each node believes the other has all it
//! has, so no round would ever send the difference. That, and only that,
//! is [`diverged`].
//!
//! A digest is only taken while every dot held is covered by the vector
//! (see [`Summary::digest`]): while a transfer of several parts is half
//! merged, a node holds more than its vector says, and its digest is not
//! compared.
//!
//! # The repair
//!
//! Both sides see the same four facts, so both log the divergence (at
//! error level, naming the peer and both digests) and count it. The
//! pusher repairs: its next round to that peer sends everything, as if
//! the peer's vector were empty, and asks for everything back
//! ([`crate::replication::wire::Done::full`]). What comes back is merged
//! as a repair's answer
//! ([`Store::apply_repair_batch`](crate::store::Store::apply_repair_batch)):
//! a value this node lost while its vector says it has seen it is taken
//! again. The peer repairs itself the same way, in its own pusher's next
//! round to this node, which finds the same divergence. Merging is
//! idempotent, so after both full exchanges each side holds the join of
//! both, and the digests agree. A full round does not compare (the pusher's digest predates what
//! comes back); the next round checks the repair. A divergence that a full
//! exchange cannot mend (two different values under one dot) would repair
//! every round; [`RepairPlan`] waits longer after each repair that did not
//! help, up to [`MAX_REPAIR_WAIT`] rounds.
//!
//! Pure, apart from the counters' atomics: no socket, thread or clock.

use crate::store::batch::{Summary, WireVv};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Whether two nodes' summaries show a divergence: equal version vectors
/// with different digests (see the module doc for why only that). `false`
/// when either digest was not taken.
pub fn diverged(ours: &Summary, theirs: &Summary) -> bool {
    match (ours.digest, theirs.digest) {
        (Some(a), Some(b)) => a != b && same_vector(&ours.vv, &theirs.vv),
        _ => false,
    }
}

/// Whether two wire vectors say the same, whatever their order and
/// whether a writer at 0 is listed.
pub fn same_vector(a: &WireVv, b: &WireVv) -> bool {
    fn canonical(vv: &WireVv) -> BTreeMap<&str, u64> {
        let mut out = BTreeMap::new();
        for (name, counter) in vv.iter().filter(|(_, c)| *c > 0) {
            let c = out.entry(name.as_str()).or_insert(0);
            *c = (*c).max(*counter);
        }
        out
    }
    canonical(a) == canonical(b)
}

/// The digest as `status` shows it, or a word for one not taken.
pub fn shown(summary: &Summary) -> String {
    summary
        .digest
        .map_or_else(|| "(not taken)".to_owned(), |d| d.to_string())
}

/// Most rounds a pusher waits before repairing again, after repairs that
/// did not make the digests equal.
pub const MAX_REPAIR_WAIT: u32 = 64;

/// One pusher's repair schedule for its peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairPlan {
    /// Whether a full round is owed.
    due: bool,
    /// Rounds to let pass before it.
    wait: u32,
    /// Repairs in a row that were followed by another divergence.
    in_vain: u32,
    /// Whether the last round was a full one.
    just_repaired: bool,
}

impl RepairPlan {
    /// Whether this round must be a full one; call once per round.
    pub fn full_round(&mut self) -> bool {
        if !self.due {
            return false;
        }
        if self.wait > 0 {
            self.wait -= 1;
            return false;
        }
        true
    }

    /// Records how a round ended: `full` if it was a full round, and
    /// whether it found a divergence (a full round never does).
    pub fn record(&mut self, full: bool, diverged: bool) {
        if full {
            self.due = false;
            self.just_repaired = true;
            return;
        }
        if diverged && !self.due {
            if self.just_repaired {
                self.in_vain += 1;
            }
            self.due = true;
            self.wait = match self.in_vain {
                0 => 0,
                n => 1u32
                    .checked_shl(n.min(31))
                    .unwrap_or(u32::MAX)
                    .min(MAX_REPAIR_WAIT),
            };
        } else if !diverged && !self.due {
            self.in_vain = 0;
        }
        self.just_repaired = false;
    }
}

/// The anti-entropy counts, as `INFO` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AntiEntropyCounts {
    /// Rounds (pushed or answered) that found equal vectors and different
    /// digests.
    pub mismatches: u64,
    /// Full exchanges made (pushed or answered) to repair one.
    pub repairs: u64,
}

/// The node's anti-entropy counters, shared by its pushers and receivers
/// and read by `status`.
#[derive(Debug, Clone, Default)]
pub struct AntiEntropy {
    counts: Arc<(AtomicU64, AtomicU64)>,
}

impl AntiEntropy {
    /// Compares the two summaries of a round with `peer` (which `side` of
    /// the round this node was: "pushing to" or "answering"); logs and
    /// counts a divergence. Returns whether there was one.
    pub fn check(&self, peer: &str, side: &str, ours: &Summary, theirs: &Summary) -> bool {
        if !diverged(ours, theirs) {
            return false;
        }
        self.counts.0.fetch_add(1, Ordering::Relaxed);
        log::error!(
            "DIGEST MISMATCH with peer {peer} ({side} it): both have seen the same writes \
             but hold different data (digest here {}, there {}); repairing with a full exchange",
            shown(ours),
            shown(theirs)
        );
        true
    }

    /// Counts a full exchange made with `peer`, and logs it.
    pub fn repaired(&self, peer: &str, side: &str) {
        self.counts.1.fetch_add(1, Ordering::Relaxed);
        log::warn!("full exchange with peer {peer} done ({side} it), to repair a digest mismatch");
    }

    /// The counts so far.
    pub fn counts(&self) -> AntiEntropyCounts {
        AntiEntropyCounts {
            mismatches: self.counts.0.load(Ordering::Relaxed),
            repairs: self.counts.1.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DataDigest;

    fn summary(vv: &[(&str, u64)], digest: Option<u128>) -> Summary {
        Summary {
            vv: vv.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect(),
            digest: digest.map(|sum| DataDigest { sum, live: 1 }),
        }
    }

    #[test]
    fn only_equal_vectors_with_different_digests_diverge() {
        let a = summary(&[("a", 3), ("b", 2)], Some(1));
        // The same vector in another order, a zero entry: the same.
        let same_vv_other_digest = summary(&[("c", 0), ("b", 2), ("a", 3)], Some(2));
        assert!(diverged(&a, &same_vv_other_digest));
        assert!(diverged(&same_vv_other_digest, &a));
        assert!(!diverged(&a, &summary(&[("b", 2), ("a", 3)], Some(1))));
        // Vectors differ in normal operation: no conclusion.
        assert!(!diverged(&a, &summary(&[("a", 4), ("b", 2)], Some(2))));
        assert!(!diverged(&a, &summary(&[("a", 3)], Some(2))));
        // A digest not taken (a transfer half merged): no conclusion.
        assert!(!diverged(&a, &summary(&[("a", 3), ("b", 2)], None)));
        assert!(!diverged(&summary(&[], None), &summary(&[], None)));
    }

    #[test]
    fn a_divergence_is_counted() {
        let counters = AntiEntropy::default();
        let a = summary(&[("a", 1)], Some(1));
        assert!(!counters.check("b", "pushing to", &a, &a));
        assert!(counters.check("b", "pushing to", &a, &summary(&[("a", 1)], Some(2))));
        counters.repaired("b", "pushing to");
        assert_eq!(
            counters.counts(),
            AntiEntropyCounts {
                mismatches: 1,
                repairs: 1
            }
        );
    }

    #[test]
    fn a_divergence_is_repaired_next_round_and_backs_off_when_in_vain() {
        let mut plan = RepairPlan::default();
        assert!(!plan.full_round());
        plan.record(false, false);
        assert!(!plan.full_round());
        plan.record(false, true);
        assert!(plan.full_round(), "the next round repairs");
        plan.record(true, false);
        assert!(!plan.full_round());
        plan.record(false, false);
        assert!(!plan.full_round(), "repaired: nothing owed");

        // A divergence that comes back right after each repair waits 2,
        // then 4 rounds... up to MAX_REPAIR_WAIT.
        plan.record(false, true);
        assert!(plan.full_round());
        plan.record(true, false);
        let mut waits = Vec::new();
        for _ in 0..8 {
            assert!(!plan.full_round());
            plan.record(false, true);
            let mut waited = 0;
            while !plan.full_round() {
                plan.record(false, true);
                waited += 1;
            }
            waits.push(waited);
            plan.record(true, false);
        }
        assert_eq!(waits, vec![2, 4, 8, 16, 32, 64, 64, 64]);
    }
}
