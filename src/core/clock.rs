//! Vector clocks: which writes of which node a version has seen.
//!
//! A clock maps a node to the highest write counter of that node that a
//! version includes. Nodes are [`NodeId`]s, small local numbers handed out by
//! [`crate::core::names::Names`]; a clock never holds a name, so an entry costs 12
//! bytes. Ids are local to one process: anything that leaves the process
//! (the wire) translates them back to names.
//!
//! This module is pure: no I/O, no time, no allocation beyond the clock's own
//! dots.

use std::cmp::Ordering;

/// A node, as interned by [`crate::core::names::Names`]. Local to one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

/// One write: the node that made it and that node's counter for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dot {
    /// The node that made the write.
    pub node: NodeId,
    /// The node's counter for the write; counters of one node never repeat.
    pub counter: u64,
}

/// How two clocks relate causally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Causality {
    /// Both have seen exactly the same writes.
    Equal,
    /// The left clock has seen everything the right has, and more.
    Descends,
    /// The right clock has seen everything the left has, and more.
    IsDescendedBy,
    /// Each has seen a write the other has not.
    Concurrent,
}

/// A vector clock.
///
/// Most keys are written by one node, so a single dot is stored inline and
/// costs no allocation; more dots live in one boxed slice sorted by node.
/// The representation is canonical (no zero counters, one dot is always
/// `One`), so derived equality is clock equality.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Clock {
    /// Exactly one node's writes.
    One(Dot),
    /// Zero or several nodes' writes, sorted by node, no zero counters.
    Many(Box<[Dot]>),
}

impl Default for Clock {
    fn default() -> Self {
        Clock::Many(Box::new([]))
    }
}

impl Clock {
    /// The clock of a single write.
    pub fn single(dot: Dot) -> Clock {
        if dot.counter == 0 {
            return Clock::default();
        }
        Clock::One(dot)
    }

    /// Builds a clock from dots in any order; repeated nodes keep their
    /// highest counter, zero counters are dropped.
    pub fn from_dots(dots: impl IntoIterator<Item = Dot>) -> Clock {
        let mut dots = dots.into_iter().filter(|d| d.counter > 0);
        // Most clocks have one dot: no allocation for them.
        let Some(first) = dots.next() else {
            return Clock::default();
        };
        let Some(second) = dots.next() else {
            return Clock::One(first);
        };
        let mut dots: Vec<Dot> = [first, second].into_iter().chain(dots).collect();
        dots.sort_unstable();
        // After sorting, the highest counter of a node is its last dot.
        let mut out: Vec<Dot> = Vec::with_capacity(dots.len());
        for dot in dots {
            match out.last_mut() {
                Some(last) if last.node == dot.node => *last = dot,
                _ => out.push(dot),
            }
        }
        Clock::from_sorted(out)
    }

    fn from_sorted(dots: Vec<Dot>) -> Clock {
        match dots.as_slice() {
            [one] => Clock::One(*one),
            _ => Clock::Many(dots.into_boxed_slice()),
        }
    }

    /// The dots, sorted by node.
    pub fn dots(&self) -> &[Dot] {
        match self {
            Clock::One(dot) => std::slice::from_ref(dot),
            Clock::Many(dots) => dots,
        }
    }

    /// The counter this clock holds for `node` (0 when it has seen none).
    pub fn get(&self, node: NodeId) -> u64 {
        let dots = self.dots();
        match dots.binary_search_by_key(&node, |d| d.node) {
            Ok(i) => dots[i].counter,
            Err(_) => 0,
        }
    }

    /// Whether the clock has seen no write at all.
    pub fn is_empty(&self) -> bool {
        self.dots().is_empty()
    }

    /// Compares two clocks dot by dot.
    pub fn compare(&self, other: &Clock) -> Causality {
        // `self_ahead`: self has seen a write other has not; `other_ahead`
        // the reverse. Both sides are sorted by node, so one pass suffices.
        let (mut self_ahead, mut other_ahead) = (false, false);
        let (a, b) = (self.dots(), other.dots());
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let order = match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) => x.node.cmp(&y.node),
                (Some(_), None) => Ordering::Less,
                (None, _) => Ordering::Greater,
            };
            match order {
                Ordering::Less => {
                    self_ahead = true;
                    i += 1;
                }
                Ordering::Greater => {
                    other_ahead = true;
                    j += 1;
                }
                Ordering::Equal => {
                    match a[i].counter.cmp(&b[j].counter) {
                        Ordering::Greater => self_ahead = true,
                        Ordering::Less => other_ahead = true,
                        Ordering::Equal => {}
                    }
                    i += 1;
                    j += 1;
                }
            }
            if self_ahead && other_ahead {
                return Causality::Concurrent;
            }
        }
        match (self_ahead, other_ahead) {
            (false, false) => Causality::Equal,
            (true, false) => Causality::Descends,
            (false, true) => Causality::IsDescendedBy,
            (true, true) => Causality::Concurrent,
        }
    }

    /// Whether this clock has seen every write `other` has: true for equal
    /// clocks too, unlike [`Causality::Descends`], which means strictly
    /// after.
    pub fn has_seen_all_of(&self, other: &Clock) -> bool {
        matches!(self.compare(other), Causality::Equal | Causality::Descends)
    }

    /// Whether each clock has seen a write the other has not.
    pub fn is_concurrent_with(&self, other: &Clock) -> bool {
        self.compare(other) == Causality::Concurrent
    }

    /// The least clock that has seen all of both: the highest counter of each node.
    pub fn join(&self, other: &Clock) -> Clock {
        let (a, b) = (self.dots(), other.dots());
        let mut out = Vec::with_capacity(a.len().max(b.len()));
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].node.cmp(&b[j].node) {
                Ordering::Less => {
                    out.push(a[i]);
                    i += 1;
                }
                Ordering::Greater => {
                    out.push(b[j]);
                    j += 1;
                }
                Ordering::Equal => {
                    out.push(Dot {
                        node: a[i].node,
                        counter: a[i].counter.max(b[j].counter),
                    });
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        Clock::from_sorted(out)
    }

    /// This clock with `dot` recorded (the node's counter raised to it).
    pub fn with(&self, dot: Dot) -> Clock {
        self.join(&Clock::single(dot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dot(node: u32, counter: u64) -> Dot {
        Dot {
            node: NodeId(node),
            counter,
        }
    }

    fn clock(dots: &[(u32, u64)]) -> Clock {
        Clock::from_dots(dots.iter().map(|&(n, c)| dot(n, c)))
    }

    #[test]
    fn single_dot_is_stored_inline() {
        assert!(matches!(clock(&[(3, 7)]), Clock::One(_)));
        assert!(matches!(clock(&[(3, 7), (1, 2)]), Clock::Many(_)));
        assert_eq!(clock(&[(3, 0)]), Clock::default());
    }

    #[test]
    fn from_dots_keeps_the_highest_counter_per_node() {
        let c = clock(&[(2, 5), (1, 1), (2, 9), (2, 3)]);
        assert_eq!(c.dots(), &[dot(1, 1), dot(2, 9)]);
        assert_eq!(c.get(NodeId(2)), 9);
        assert_eq!(c.get(NodeId(7)), 0);
    }

    #[test]
    fn compare_names_every_relation() {
        let a = clock(&[(1, 2), (2, 1)]);
        assert_eq!(a.compare(&a.clone()), Causality::Equal);
        assert_eq!(a.compare(&clock(&[(1, 2)])), Causality::Descends);
        assert_eq!(clock(&[(1, 1)]).compare(&a), Causality::IsDescendedBy);
        assert_eq!(a.compare(&clock(&[(3, 1)])), Causality::Concurrent);
        assert_eq!(a.compare(&clock(&[(1, 1), (2, 2)])), Causality::Concurrent);
        assert!(a.has_seen_all_of(&Clock::default()));
        assert!(!Clock::default().has_seen_all_of(&a));
        assert!(a.is_concurrent_with(&clock(&[(2, 5)])));
    }

    fn arb_clock() -> impl Strategy<Value = Clock> {
        proptest::collection::vec((0u32..5, 0u64..6), 0..6)
            .prop_map(|dots| Clock::from_dots(dots.into_iter().map(|(n, c)| dot(n, c))))
    }

    proptest! {
        #![proptest_config(crate::proptest_config("tests/regressions/clock.txt"))]
        #[test]
        fn join_is_a_semilattice(a in arb_clock(), b in arb_clock(), c in arb_clock()) {
            prop_assert_eq!(a.join(&b), b.join(&a));
            prop_assert_eq!(a.join(&b).join(&c), a.join(&b.join(&c)));
            prop_assert_eq!(a.join(&a), a.clone());
            let j = a.join(&b);
            prop_assert!(j.has_seen_all_of(&a) && j.has_seen_all_of(&b));
        }

        #[test]
        fn compare_agrees_with_counters(a in arb_clock(), b in arb_clock()) {
            let a_ge = (0..5).all(|n| a.get(NodeId(n)) >= b.get(NodeId(n)));
            let b_ge = (0..5).all(|n| b.get(NodeId(n)) >= a.get(NodeId(n)));
            let expected = match (a_ge, b_ge) {
                (true, true) => Causality::Equal,
                (true, false) => Causality::Descends,
                (false, true) => Causality::IsDescendedBy,
                (false, false) => Causality::Concurrent,
            };
            prop_assert_eq!(a.compare(&b), expected);
        }
    }
}
