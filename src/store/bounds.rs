//! Bounds on what a peer may claim: how far ahead of anything it has shown
//! a version vector may say a writer is, and how many writer names it may
//! bring.
//!
//! A peer is authenticated but may still be buggy or forged; what it sends
//! must cost at most one refused message, never lasting damage. Two kinds
//! of claim could do lasting damage and are bounded here:
//!
//! * A **version vector entry** (a `Push`'s last part, an `Ack`, a
//!   `Welcome`) says "I have seen every write of writer X up to N". Joined
//!   into this node's vector, a false N makes this node believe it holds
//!   X's next writes, so nobody sends them to it again; as an
//!   acknowledgement, it lets a tombstone go before the peer has it.
//!
//!   **The rule**: a claim for writer X is taken only up to what this node
//!   can verify X reached: the higher of this node's own vector entry for
//!   X and the highest dot of X it holds (which includes every dot the
//!   peer showed in the entries it sent on this connection, merged before
//!   the vector is looked at). An acknowledgement is bounded more tightly
//!   still, by what this node had when it sent its part of the round (its
//!   vector at the start of the transfer) and what the peer showed in its
//!   answer: a peer cannot have a tombstone this node wrote after the round
//!   began unless it sent it back. A claim above the bound is clamped,
//!   never joined, and named in a log line with the peer's address.
//!
//!   It is clamped rather than refused because an honest peer can claim
//!   more than it can show: the dots of tombstones it collected are gone
//!   from every entry, yet its vector still covers them. A node that has
//!   not seen those tombstones (one that started empty, or that the peer
//!   does not list) cannot tell that claim from a forged one; refusing it
//!   would stop replication to that node for good, while clamping costs
//!   only a vector entry that lags (the writes behind it no longer exist
//!   anywhere, so nothing is missing).
//!
//! * **Writer names**: every name is kept for the life of the process, and
//!   every vector and batch carries them all. A batch of several entries
//!   may bring at most [`MAX_NEW_NAMES_PER_BATCH`] names new to this node
//!   (a batch of one, as many as its clock names), and a node holds at
//!   most [`MAX_NAMES`]; a batch over either is refused whole. Names a
//!   batch lists but none of its entries uses are not taken at all.

use super::*;
use std::collections::HashMap;

/// Most writer names new to this node that one batch from a peer may
/// bring (only names its entries use count). A part of a transfer is at
/// most a megabyte, and names at most this many writers however many the
/// sender knows ([`Store::delta`] cuts it there), so an honest one never
/// brings more: a batch of thousands of new names is a forged or broken
/// one.
pub const MAX_NEW_NAMES_PER_BATCH: usize = 1024;

/// Most writer names a node holds. Each costs memory for the life of the
/// process and bytes in every vector and batch this node sends; past this
/// a peer's batch that would add one is refused (this node's own names are
/// always taken).
pub const MAX_NAMES: usize = 65_536;

/// A vector entry claimed above what this node can verify: clamped to
/// `allowed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overclaim {
    /// The writer's name.
    pub writer: String,
    /// The counter claimed.
    pub claimed: u64,
    /// The most that was taken.
    pub allowed: u64,
}

impl fmt::Display for Overclaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "vector claims writer '{}' at {}, above anything shown (at most {}); clamped",
            self.writer, self.claimed, self.allowed
        )
    }
}

/// `claim` with each entry lowered to `bound` of its writer (entries left
/// at zero are dropped), and the entries that were lowered.
pub fn clamp_vv(claim: &WireVv, bound: impl Fn(&str) -> u64) -> (WireVv, Vec<Overclaim>) {
    let mut kept = WireVv::new();
    let mut over = Vec::new();
    for (writer, claimed) in claim {
        let allowed = bound(writer);
        if *claimed > allowed {
            over.push(Overclaim {
                writer: writer.clone(),
                claimed: *claimed,
                allowed,
            });
        }
        let taken = (*claimed).min(allowed);
        if taken > 0 {
            kept.push((writer.clone(), taken));
        }
    }
    (kept, over)
}

/// The highest counter of each writer seen in the batches of one
/// transfer, and in a vector this node vouches for: what a peer's
/// acknowledgement may claim.
#[derive(Debug, Clone, Default)]
pub struct Shown(HashMap<String, u64>);

impl Shown {
    /// Starts from a vector this node vouches for (its own).
    pub fn from_vv(vv: &WireVv) -> Shown {
        let mut shown = Shown::default();
        for (writer, counter) in vv {
            shown.raise(writer, *counter);
        }
        shown
    }

    /// Adds the dots of every entry in `batch`; indices out of range are
    /// skipped (the store refuses that batch anyway).
    pub fn add(&mut self, batch: &Batch) {
        for e in &batch.entries {
            for &(i, counter) in &e.clock {
                if let Some(name) = batch.names.get(i as usize) {
                    self.raise(name, counter);
                }
            }
        }
    }

    fn raise(&mut self, writer: &str, counter: u64) {
        match self.0.get_mut(writer) {
            Some(c) => *c = (*c).max(counter),
            None => {
                self.0.insert(writer.to_owned(), counter);
            }
        }
    }

    /// The highest counter of `writer` seen, 0 if none.
    pub fn get(&self, writer: &str) -> u64 {
        self.0.get(writer).copied().unwrap_or(0)
    }

    /// `claim` clamped to what was shown (see [`clamp_vv`]).
    pub fn clamp(&self, claim: &WireVv) -> (WireVv, Vec<Overclaim>) {
        clamp_vv(claim, |w| self.get(w))
    }
}

impl Store {
    /// The highest counter of `writer` this node can vouch that it
    /// reached: its own vector's entry, or the highest dot of it held.
    pub(super) fn verifiable(&self, writer: &str) -> u64 {
        let Some(node) = self.names.lookup(writer) else {
            return 0;
        };
        let held = self
            .dots
            .range(
                Dot { node, counter: 0 }..=Dot {
                    node,
                    counter: u64::MAX,
                },
            )
            .next_back()
            .map_or(0, |(dot, _)| dot.counter);
        self.vv.get(node).max(held)
    }

    /// `claim` clamped to what this node can verify (see the module doc).
    pub fn clamp_to_verifiable(&self, claim: &WireVv) -> (WireVv, Vec<Overclaim>) {
        clamp_vv(claim, |w| self.verifiable(w))
    }

    /// Refuses a batch that would bring more new writer names than allowed
    /// (only names its entries use count). A batch of one entry may bring
    /// more: a key that over a thousand identities wrote in turn has a
    /// clock naming them all, and a sender can cut no finer than an entry
    /// (such a key would otherwise never reach a node that started empty);
    /// [`MAX_NAMES`] still bounds them all.
    pub(super) fn check_new_names(&self, batch: &Batch) -> Result<(), BatchError> {
        let used = used_names(batch);
        let new = used
            .iter()
            .filter(|&&i| self.names.lookup(&batch.names[i]).is_none())
            .count();
        if new > MAX_NEW_NAMES_PER_BATCH && batch.entries.len() > 1 {
            return Err(BatchError(format!(
                "{new} writer names new to this node, over the limit of \
                 {MAX_NEW_NAMES_PER_BATCH} per batch"
            )));
        }
        let total = self.names.len() + new;
        if new > 0 && total > MAX_NAMES {
            return Err(BatchError(format!(
                "{new} new writer names would make {total}, over the limit of {MAX_NAMES}"
            )));
        }
        Ok(())
    }
}

/// The indices into `batch.names` that its entries use, each once, in
/// order. Indices must have been checked to be in range.
pub(super) fn used_names(batch: &Batch) -> Vec<usize> {
    let mut used = vec![false; batch.names.len()];
    for e in &batch.entries {
        used[e.writer as usize] = true;
        for &(i, _) in &e.clock {
            used[i as usize] = true;
        }
        for &i in e.counter.iter().flat_map(|c| c.writers()) {
            used[i as usize] = true;
        }
    }
    (0..used.len()).filter(|&i| used[i]).collect()
}
