//! Version vectors: for each writer, the highest counter up to which a node
//! has seen every write of that writer, or something that superseded it.
//!
//! A node's version vector only grows in two ways: by its own writes, and
//! by joining the vector a peer sent at the start of a transfer once every
//! entry of that transfer has arrived. It never grows by single merged
//! entries, since those arrive in no particular order. That keeps the claim
//! "every dot at or below my vector is seen or superseded" true, which is
//! what lets a peer send only the entries whose dots lie above it.
//!
//! Pure: a vector of counters indexed by [`NodeId`].

use crate::core::clock::{Clock, Dot, NodeId};

/// A version vector over this process's [`NodeId`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionVector {
    counters: Vec<u64>,
}

impl VersionVector {
    /// The vector that has seen nothing.
    pub fn new() -> VersionVector {
        VersionVector::default()
    }

    /// The counter for `node` (0: nothing seen).
    pub fn get(&self, node: NodeId) -> u64 {
        self.counters.get(node.0 as usize).copied().unwrap_or(0)
    }

    /// Raises `node`'s counter to at least `counter`.
    pub fn raise(&mut self, node: NodeId, counter: u64) {
        let i = node.0 as usize;
        if self.counters.len() <= i {
            self.counters.resize(i + 1, 0);
        }
        self.counters[i] = self.counters[i].max(counter);
    }

    /// Lowers `node`'s counter to at most `counter` (taking back writes
    /// that never left the node).
    pub fn lower(&mut self, node: NodeId, counter: u64) {
        if let Some(c) = self.counters.get_mut(node.0 as usize) {
            *c = (*c).min(counter);
        }
    }

    /// Raises every counter to at least `other`'s.
    pub fn join(&mut self, other: &VersionVector) {
        for (node, counter) in other.iter() {
            self.raise(node, counter);
        }
    }

    /// The counter-wise minimum of two vectors.
    pub fn meet(&self, other: &VersionVector) -> VersionVector {
        VersionVector {
            counters: self
                .counters
                .iter()
                .zip(&other.counters)
                .map(|(a, b)| *a.min(b))
                .collect(),
        }
    }

    /// Whether the dot is at or below this vector.
    pub fn covers(&self, dot: Dot) -> bool {
        dot.counter <= self.get(dot.node)
    }

    /// Whether every dot of the clock is at or below this vector.
    pub fn covers_clock(&self, clock: &Clock) -> bool {
        clock.dots().iter().all(|&d| self.covers(d))
    }

    /// The non-zero counters, by node.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.counters
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| (NodeId(i as u32), c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(n: u32, c: u64) -> Dot {
        Dot {
            node: NodeId(n),
            counter: c,
        }
    }

    #[test]
    fn raise_join_meet_cover() {
        let mut a = VersionVector::new();
        a.raise(NodeId(2), 5);
        a.raise(NodeId(2), 3);
        assert_eq!(a.get(NodeId(2)), 5);
        assert_eq!(a.get(NodeId(9)), 0);
        let mut b = VersionVector::new();
        b.raise(NodeId(0), 7);
        b.raise(NodeId(2), 1);
        let m = a.meet(&b);
        assert_eq!((m.get(NodeId(0)), m.get(NodeId(2))), (0, 1));
        a.join(&b);
        assert_eq!((a.get(NodeId(0)), a.get(NodeId(2))), (7, 5));
        assert!(a.covers(dot(2, 5)) && !a.covers(dot(2, 6)));
        assert!(a.covers_clock(&Clock::from_dots([dot(0, 7), dot(2, 4)])));
        assert!(!a.covers_clock(&Clock::from_dots([dot(0, 8)])));
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            [(NodeId(0), 7), (NodeId(2), 5)]
        );
    }
}
