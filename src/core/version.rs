//! A key's version (value or tombstone, vector clock, timestamp) and the
//! rule that merges two versions of the same key.
//!
//! # The merge rule
//!
//! * Where one clock descends the other, the descendant wins: it was written
//!   by a node that had seen the other.
//! * A version that counts (see [`crate::core::counter`]) merges with
//!   any other version of its key by the counter's join: the later base,
//!   each writer's latest count, and the counts begun after the base.
//!   A plain version is a counter with its own write as base and nothing
//!   counted, so where neither counts this is the rule below.
//! * Where the clocks are concurrent (or equal), the winner is the larger
//!   `(timestamp, writer name)` pair; on a full tie the tombstone, then the
//!   larger value, then the later expiry, so the choice is total. The write
//!   rules never produce a full tie but one: a version whose expiry has
//!   passed becomes a tombstone on each node with its clock and stamp
//!   unchanged (see [`crate::store`]), and that tombstone must win over the
//!   expired value it replaced, wherever the two meet.
//! * A value's expiry (`expires`, milliseconds since the Unix epoch) is part
//!   of the value: a write that sets or clears it is a write like any other,
//!   so it replicates and converges with the value.
//! * The merged clock is the join of both clocks, whichever value won, so the
//!   result has seen every write either side had seen.
//!
//! # Laws
//!
//! The merge is commutative, associative and idempotent, so replicas that
//! have seen the same writes hold the same version whatever order syncs came
//! in. With expiry the laws hold for what the versions read as once their
//! time has passed: a node that turned an expired value into a tombstone
//! and one that still holds the value (its clock is behind, or it has not
//! run its expiry yet) may keep either after a merge, since the clock
//! joined into the value can make it look newer than the tombstone; both
//! read as absent, and the value becomes the same tombstone when that node
//! expires it, which every node does. The laws hold for versions made by the write rules of this crate,
//! where a write's timestamp is above the timestamp of every version its
//! writer had seen (see [`crate::core::hlc`]): there "descends" and "larger
//! timestamp" never disagree. The property tests below check the laws on
//! versions produced by simulated nodes.
//!
//! This module is pure: it compares and joins, nothing else.

use crate::core::clock::{Causality, Clock, NodeId};
use crate::core::counter::Counter;
use crate::core::names::Names;
use std::cmp::Ordering;

/// Who made the winning write, and when: the last-write-wins key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// Hybrid logical timestamp of the write (see [`crate::core::hlc`]).
    pub ts: u64,
    /// The node that made the write.
    pub writer: NodeId,
}

/// A borrowed view of a version, as the store keeps it.
#[derive(Clone, Copy, Debug)]
pub struct VersionRef<'a> {
    /// The value, or `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// When the value expires (milliseconds since the Unix epoch), if it
    /// does. A tombstone an expiry left keeps it (the counts it ended, see
    /// [`crate::core::counter`], are told by it); a delete has none.
    pub expires: Option<u64>,
    /// Every write this version has seen.
    pub clock: &'a Clock,
    /// The write that produced the value.
    pub stamp: Stamp,
    /// The counter the value is the total of, for a key `INCR` and its
    /// kin made a counter.
    pub counter: Option<&'a Counter>,
}

/// Which of two versions the merge keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Winner {
    /// The first argument.
    Left,
    /// The second argument.
    Right,
}

/// Orders two stamps: timestamp, then writer name.
pub fn stamp_order(a: Stamp, b: Stamp, names: &Names) -> Ordering {
    a.ts.cmp(&b.ts)
        .then_with(|| names.name(a.writer).cmp(names.name(b.writer)))
}

/// Orders two versions for last-write-wins: stamp, then a tombstone above
/// any value (an expired value's tombstone wins over it), then value, then
/// expiry.
fn lww_order(a: &VersionRef, b: &VersionRef, names: &Names) -> Ordering {
    stamp_order(a.stamp, b.stamp, names)
        .then_with(|| b.value.is_some().cmp(&a.value.is_some()))
        .then_with(|| a.value.cmp(&b.value))
        .then_with(|| a.expires.cmp(&b.expires))
}

/// Which value the merge of `a` and `b` keeps; the merged clock is always
/// `a.clock.join(b.clock)`.
pub fn winner(a: &VersionRef, b: &VersionRef, names: &Names) -> Winner {
    match a.clock.compare(b.clock) {
        Causality::Descends => Winner::Left,
        Causality::IsDescendedBy => Winner::Right,
        Causality::Equal | Causality::Concurrent => match lww_order(a, b, names) {
            Ordering::Less => Winner::Right,
            Ordering::Equal | Ordering::Greater => Winner::Left,
        },
    }
}

/// What merging an incoming version into a held one does to the held one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Merged {
    /// Nothing: the held version has already seen every write of the
    /// incoming one (their clocks are equal, or the held one descends it).
    Unchanged,
    /// The held value stays, with this clock: the join of both.
    KeepsValue(Clock),
    /// The incoming value replaces the held one, with this clock: the
    /// join of both.
    TakesIncoming(Clock),
    /// One of them counts: the counters' join replaces the held version,
    /// with the join of both clocks. Where nothing in the join counts, it
    /// is a plain version (its base).
    Joined {
        /// The join of both clocks.
        clock: Clock,
        /// The join of both counters.
        counter: Counter,
    },
}

/// The merge of an incoming version into a held version of the same key:
/// the one merge rule, used by the store for every version a peer sends
/// and by [`Version::merge`], on which the laws are tested.
pub fn merge(held: &VersionRef, incoming: &VersionRef, names: &Names) -> Merged {
    if held.counter.is_some() || incoming.counter.is_some() {
        let of = |v: &VersionRef| {
            v.counter
                .cloned()
                .unwrap_or_else(|| Counter::of_plain(v.value, v.expires, v.stamp))
        };
        let mine = of(held);
        let joined = mine.join(&of(incoming), names);
        if joined == mine && held.clock.has_seen_all_of(incoming.clock) {
            return Merged::Unchanged;
        }
        return Merged::Joined {
            clock: held.clock.join(incoming.clock),
            counter: joined,
        };
    }
    match winner(held, incoming, names) {
        Winner::Left if held.clock.has_seen_all_of(incoming.clock) => Merged::Unchanged,
        Winner::Left => Merged::KeepsValue(held.clock.join(incoming.clock)),
        Winner::Right => Merged::TakesIncoming(held.clock.join(incoming.clock)),
    }
}

/// An owned version: the unit the merge laws speak of.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    /// The value, or `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// When the value expires, if it does (see [`VersionRef::expires`]).
    pub expires: Option<u64>,
    /// The counter the value is the total of, if it is one.
    pub counter: Option<Counter>,
    /// Every write this version has seen.
    pub clock: Clock,
    /// The write that produced the value.
    pub stamp: Stamp,
}

impl Version {
    /// A borrowed view.
    pub fn as_ref(&self) -> VersionRef<'_> {
        VersionRef {
            value: self.value.as_deref(),
            expires: self.expires,
            counter: self.counter.as_ref(),
            clock: &self.clock,
            stamp: self.stamp,
        }
    }

    /// The merge of two versions of one key (see the module doc): what
    /// [`merge`] makes of `self` when `other` arrives.
    pub fn merge(&self, other: &Version, names: &Names) -> Version {
        match merge(&self.as_ref(), &other.as_ref(), names) {
            Merged::Unchanged => self.clone(),
            Merged::KeepsValue(clock) => Version {
                clock,
                ..self.clone()
            },
            Merged::TakesIncoming(clock) => Version {
                clock,
                ..other.clone()
            },
            Merged::Joined { clock, counter } => Version::counting(counter, clock, 0, names),
        }
    }

    /// The version a counter makes, read at `now_ms`: a plain version where
    /// nothing counts.
    pub fn counting(counter: Counter, clock: Clock, now_ms: u64, names: &Names) -> Version {
        if counter.is_plain() {
            let expires = counter.expires();
            let base = counter.base.expect("a plain counter has a base");
            return Version {
                expires,
                value: base.value,
                counter: None,
                clock,
                stamp: base.stamp,
            };
        }
        let view = counter.view(now_ms);
        Version {
            value: view.value,
            expires: view.expires,
            stamp: counter.stamp(names),
            counter: Some(counter),
            clock,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::clock::Dot;
    use crate::core::hlc::{Hlc, WriteCounter};
    use proptest::prelude::*;

    /// A simulated node holding one key: it writes with the real stamping
    /// rules and merges what it receives.
    struct SimNode {
        id: NodeId,
        hlc: Hlc,
        counter: WriteCounter,
        held: Option<Version>,
    }

    impl SimNode {
        fn write(&mut self, value: Option<Vec<u8>>, expires: Option<u64>, now_us: u64) -> Version {
            let counter = self.counter.issue();
            let ts = self.hlc.tick(now_us).expect("skews are within the bound");
            let base = self
                .held
                .as_ref()
                .map(|v| v.clock.clone())
                .unwrap_or_default();
            let v = Version {
                expires: expires.filter(|_| value.is_some()),
                value,
                counter: None,
                clock: base.with(Dot {
                    node: self.id,
                    counter,
                }),
                stamp: Stamp {
                    ts,
                    writer: self.id,
                },
            };
            self.held = Some(v.clone());
            v
        }

        /// An increment by `by`, as the store makes one: on top of the
        /// version held (a plain one is the counter's base); `None` where
        /// the store refuses it (not an integer, overflow).
        fn incr(&mut self, by: i64, now_us: u64, names: &Names) -> Option<Version> {
            let mut counter = match &self.held {
                Some(v) => v
                    .counter
                    .clone()
                    .unwrap_or_else(|| Counter::of_plain(v.value.as_deref(), v.expires, v.stamp)),
                None => Counter::empty(),
            };
            let dot = self.counter.issue();
            let ts = self.hlc.tick(now_us).expect("skews are within the bound");
            let stamp = Stamp {
                ts,
                writer: self.id,
            };
            counter.add(self.id, by, stamp, now_us / 1000, names).ok()?;
            let clock = self
                .held
                .as_ref()
                .map(|v| v.clock.clone())
                .unwrap_or_default()
                .with(Dot {
                    node: self.id,
                    counter: dot,
                });
            let v = Version::counting(counter, clock, now_us / 1000, names);
            self.held = Some(v.clone());
            Some(v)
        }

        /// What the store does to a value whose expiry has passed: a
        /// tombstone with the same clock and stamp; a counter is read anew
        /// (its state stays).
        fn expire(&mut self, now_ms: u64) -> Option<Version> {
            let held = self.held.as_mut()?;
            if held.expires.is_some_and(|at| at <= now_ms) {
                match held.counter.as_ref() {
                    Some(c) => {
                        let view = c.view(now_ms);
                        held.value = view.value;
                        held.expires = view.expires;
                    }
                    None => held.value = None,
                }
                return Some(held.clone());
            }
            None
        }

        fn receive(&mut self, v: &Version, names: &Names) {
            self.hlc.observe(v.stamp.ts);
            self.held = Some(match &self.held {
                Some(mine) => mine.merge(v, names),
                None => v.clone(),
            });
        }
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// Node writes (a value when `Some`, a tombstone when `None`), with a
        /// wall clock skewed per node, and an expiry this many ms ahead
        /// when `Some`.
        Write(usize, Option<u8>, Option<u64>),
        /// Node turns its value into a tombstone if its expiry has passed.
        Expire(usize),
        /// Node increments its value by this much.
        Incr(usize, i64),
        /// Node `.0` sends what it holds to node `.1`.
        Send(usize, usize),
        /// Wall time moves on.
        Wait(u64),
    }

    fn arb_steps() -> impl Strategy<Value = Vec<Step>> {
        let step = prop_oneof![
            (
                0usize..3,
                proptest::option::of(any::<u8>()),
                // Expiries up to 64 ms ahead: some pass before a run ends
                // (those are compared as what they read as), some outlive
                // it (compared exactly).
                proptest::option::of(0u64..64)
            )
                .prop_map(|(n, v, e)| Step::Write(n, v, e)),
            (0usize..3).prop_map(Step::Expire),
            (0usize..3, -3i64..4).prop_map(|(n, by)| Step::Incr(n, by)),
            (0usize..3, -3i64..4).prop_map(|(n, by)| Step::Incr(n, by)),
            (0usize..3, 0usize..3).prop_map(|(a, b)| Step::Send(a, b)),
            (0u64..3000).prop_map(Step::Wait),
        ];
        proptest::collection::vec(step, 1..30)
    }

    /// Every version the simulated nodes produce, held or written, and a
    /// wall time (ms) past every node's clock.
    fn produced(steps: &[Step]) -> (Names, Vec<Version>, u64) {
        let mut names = Names::new();
        // Skewed wall clocks: node 2 lags node 0 by 5 ms.
        let skew = [5_000u64, 2_000, 0];
        let mut nodes = sim_nodes(&mut names, ["n0", "n1", "n2"]);
        let mut now = 1_000_000u64;
        let mut out = Vec::new();
        for step in steps {
            match *step {
                Step::Write(n, v, e) => {
                    let expires = e.map(|ms| now / 1000 + ms);
                    out.push(nodes[n].write(v.map(|b| vec![b]), expires, now + skew[n]));
                }
                Step::Expire(n) => out.extend(nodes[n].expire((now + skew[n]) / 1000)),
                Step::Incr(n, by) => out.extend(nodes[n].incr(by, now + skew[n], &names)),
                Step::Send(a, b) => {
                    if let Some(v) = nodes[a].held.clone() {
                        nodes[b].receive(&v, &names);
                        out.extend(nodes[b].held.clone());
                    }
                }
                Step::Wait(us) => now += us,
            }
        }
        (names, out, (now + skew[0]) / 1000)
    }

    /// `c` with a base that has expired at `now_ms` shown as the tombstone
    /// it reads as: a node that saw the value
    /// and one that saw only its tombstone hold either, alike in every
    /// read and every write to come (see `join_base` in `counter.rs`).
    fn settled(c: &Counter, now_ms: u64) -> Counter {
        let mut c = c.clone();
        if c.expires().is_some_and(|at| at <= now_ms) {
            if let Some(b) = c.base.as_mut() {
                b.value = None;
            }
        }
        c
    }

    /// What `v` reads as at `now_ms`: a tombstone with its clock and stamp
    /// once its value has expired, as every node's store turns it.
    fn as_read_at(v: Version, now_ms: u64) -> Version {
        if let Some(c) = &v.counter {
            let view = c.view(now_ms);
            return Version {
                value: view.value,
                expires: view.expires,
                counter: Some(settled(c, now_ms)),
                ..v
            };
        }
        if v.expires.is_some_and(|at| at <= now_ms) {
            Version { value: None, ..v }
        } else {
            v
        }
    }

    proptest! {
        #![proptest_config(crate::proptest_config("tests/regressions/version.txt"))]
        #[test]
        fn merge_is_commutative_associative_idempotent(steps in arb_steps()) {
            let (names, pool, end_ms) = produced(&steps);
            let read = |v: Version| as_read_at(v, end_ms);
            for a in &pool {
                prop_assert_eq!(a.merge(a, &names), a.clone());
                for b in &pool {
                    prop_assert_eq!(read(a.merge(b, &names)), read(b.merge(a, &names)));
                    for c in pool.iter().take(8) {
                        prop_assert_eq!(
                            read(a.merge(b, &names).merge(c, &names)),
                            read(a.merge(&b.merge(c, &names), &names))
                        );
                    }
                }
            }
        }
    }

    fn version(
        names: &mut Names,
        writer: &str,
        ts: u64,
        dots: &[(&str, u64)],
        value: &str,
    ) -> Version {
        let clock = Clock::from_dots(dots.iter().map(|&(n, c)| Dot {
            node: names.intern(n),
            counter: c,
        }));
        Version {
            value: Some(value.as_bytes().to_vec()),
            expires: None,
            counter: None,
            clock,
            stamp: Stamp {
                ts,
                writer: names.intern(writer),
            },
        }
    }

    #[test]
    fn the_descendant_wins_even_with_a_smaller_timestamp() {
        let mut names = Names::new();
        let old = version(&mut names, "a", 50, &[("a", 1)], "old");
        let new = version(&mut names, "b", 10, &[("a", 1), ("b", 1)], "new");
        assert_eq!(old.merge(&new, &names).value.as_deref(), Some(&b"new"[..]));
        assert_eq!(new.merge(&old, &names).value.as_deref(), Some(&b"new"[..]));
    }

    /// Simulated nodes of these names, holding nothing.
    fn sim_nodes(names: &mut Names, of: [&str; 3]) -> Vec<SimNode> {
        of.iter()
            .map(|n| SimNode {
                id: names.intern(n),
                hlc: Hlc::new(),
                counter: WriteCounter::new(),
                held: None,
            })
            .collect()
    }

    /// Three simulated nodes.
    fn three_nodes(names: &mut Names) -> Vec<SimNode> {
        sim_nodes(names, ["a", "b", "c"])
    }

    fn total(v: &Version) -> Option<i64> {
        std::str::from_utf8(v.value.as_deref()?).ok()?.parse().ok()
    }

    #[test]
    fn concurrent_increments_on_different_nodes_all_count() {
        let mut names = Names::new();
        let mut n = three_nodes(&mut names);
        // From nothing, on all three at once.
        let a = n[0].incr(5, 1_000_000, &names).expect("incr");
        let b = n[1].incr(3, 1_001_000, &names).expect("incr");
        let c = n[2].incr(-1, 1_002_000, &names).expect("incr");
        let all = a.merge(&b, &names).merge(&c, &names);
        assert_eq!(total(&all), Some(7));
        assert_eq!(all, c.merge(&a, &names).merge(&b, &names));
        // From a value all had seen, again at once, twice on one node.
        let set = n[0].write(Some(b"10".to_vec()), None, 2_000_000);
        for node in &mut n[1..] {
            node.receive(&set, &names);
        }
        n[0].incr(1, 3_000_000, &names);
        let a = n[0].incr(1, 3_001_000, &names).expect("incr");
        let b = n[1].incr(10, 3_000_000, &names).expect("incr");
        assert_eq!(total(&a.merge(&b, &names)), Some(22));
        assert_eq!(total(&b.merge(&a, &names)), Some(22));
    }

    #[test]
    fn a_set_replaces_the_increments_begun_before_it_and_keeps_those_begun_after() {
        let mut names = Names::new();
        let mut n = three_nodes(&mut names);
        let a = n[0].incr(5, 1_000_000, &names).expect("incr");
        n[1].receive(&a, &names);
        n[2].receive(&a, &names);
        // b saw a's increments: its SET replaces them.
        let set = n[1].write(Some(b"100".to_vec()), None, 2_000_000);
        assert_eq!(total(&a.merge(&set, &names)), Some(100));
        // c, not having seen the SET, increments later than it: kept on
        // top. a, before it: replaced.
        let c = n[2].incr(1, 2_500_000, &names).expect("incr");
        assert_eq!(total(&c.merge(&set, &names)), Some(101));
        assert_eq!(total(&set.merge(&c, &names)), Some(101));
        let early = n[0].incr(7, 1_500_000, &names).expect("incr");
        assert_eq!(total(&set.merge(&early, &names)), Some(100));
        // A DEL replaces what began before it; what begins after it counts
        // from nothing.
        let all = set.merge(&c, &names);
        n[1].receive(&all, &names);
        let del = n[1].write(None, None, 3_000_000);
        let after = n[1].incr(2, 3_001_000, &names).expect("incr");
        assert_eq!(total(&after), Some(2));
        assert_eq!(total(&after.merge(&all, &names)), Some(2));
        assert_eq!(total(&all.merge(&del, &names)), None);
        assert_eq!(total(&del.merge(&c, &names)), None);
    }

    #[test]
    fn an_expired_values_tombstone_wins_over_it_with_the_same_clock() {
        let mut names = Names::new();
        let mut value = version(&mut names, "a", 50, &[("a", 1)], "v");
        value.expires = Some(1_000);
        let expired = Version {
            value: None,
            ..value.clone()
        };
        assert_eq!(value.merge(&expired, &names), expired);
        assert_eq!(expired.merge(&value, &names), expired);
    }

    #[test]
    fn concurrent_writes_go_to_the_larger_timestamp_then_name_and_join_clocks() {
        let mut names = Names::new();
        let a = version(&mut names, "a", 20, &[("a", 1)], "from a");
        let b = version(&mut names, "b", 10, &[("b", 1)], "from b");
        let m = a.merge(&b, &names);
        assert_eq!(m.value.as_deref(), Some(&b"from a"[..]));
        assert_eq!(m.clock, a.clock.join(&b.clock));
        // Same timestamp: the larger node name wins.
        let b_same = version(&mut names, "b", 20, &[("b", 1)], "from b");
        assert_eq!(
            a.merge(&b_same, &names).value.as_deref(),
            Some(&b"from b"[..])
        );
    }
}
