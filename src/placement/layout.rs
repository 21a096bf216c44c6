//! The layout: which members hold each slot, computed from the member
//! ids alone (pure: no clock, no I/O).
//!
//! # The algorithm: rendezvous hashing per slot
//!
//! Every member gets a weight for every slot, and a slot's replicas are
//! the `N` members of highest weight, highest first; the first is the
//! slot's master (the member shown as its master, and later the one that
//! answers for it). This is rendezvous, or highest-random-weight,
//! hashing (Thaler and Ravishankar, 1996), chosen over a ring of virtual
//! nodes and over an assignment table for what it gives for free:
//!
//! - **Deterministic.** A weight depends only on a member's id and the
//!   slot, so every node that knows the same member set computes the
//!   same layout, in whatever order it learnt the members: nothing is
//!   negotiated, stored or gossiped, and two nodes can tell they agree by
//!   comparing [`Layout::digest`]s.
//! - **Distinct replicas.** A slot's `N` members are `N` different
//!   entries of the member set: never two copies on one member.
//! - **Minimal movement.** A member that joins takes, in each slot where
//!   its weight ranks among the top `N`, the place of the slot's last
//!   replica, and nothing else changes: every copy that moves, moves to
//!   it. A member that leaves hands each of its slots to the next member
//!   in that slot's ranking, and nothing else changes. That is the least
//!   any layout could move while staying balanced.
//! - **Balanced by the law of large numbers.** With independent weights a
//!   slot's replica set is a uniformly random `N`-subset of the members,
//!   so each member holds Binomial(16384, N/M) slots: with 16384 slots
//!   the spread is a few percent, which needs no correction (a correction
//!   such as bounded loads would give up the minimal movement above).
//!
//! A member's weight for slot `s` is `mix(xxh3_64(id) ^ (s + 1) * φ)`,
//! where `φ` is the odd constant 0x9e3779b97f4a7c15 and `mix` the
//! splitmix64 finalizer: xxh3 (already the crate's stable hash, see
//! `store/digest.rs`) is specified byte for byte, and the rest is
//! wrapping 64-bit arithmetic, so the weights are the same on every
//! platform and build (never std's `DefaultHasher`, whose output may
//! change between releases). The id is hashed once per layout; a weight
//! is then a handful of multiplications, so a layout of `M` members
//! costs `16384 * M` of them (about 3 ms a layout in a release build,
//! on average over the measurement's layouts of 1 to 17 members) and
//! takes `32 KiB * min(N, M)` of memory.
//!
//! # Measured
//!
//! Over 200 random sets of member ids for each `M` in 1..=16 and `N` in
//! 1..=5 (`measure_balance_and_movement` below, run with `--ignored`):
//!
//! - **Balance**: the slots a member holds were within 11.9% of the
//!   ideal `min(N, M) * 16384 / M` in the worst case seen (`M` = 14,
//!   `N` = 1, ideal 1170); the spread shrinks as a member's share grows:
//!   within 3.3% for 3 members and `N` = 1, 4.4% for 16 members and
//!   `N` = 5, exact when `N >= M`. Masters alone spread as `N` = 1 does.
//!   That is the binomial's own spread (its standard deviation is 3% of
//!   1024 for 16 members and `N` = 1), so the weights show no bias. The
//!   property test allows 20%.
//! - **Movement**: the copies a join or a leave creates (pairs of a slot
//!   and a member that holds it in the new layout and not in the old)
//!   were at most 1.09 times the ideal: the newcomer's fair share of the
//!   new layout on a join; on a leave the leaver's fair share of the old
//!   one (or none when every member held every slot). No copy ever moved
//!   between two members that stayed. The property test allows 1.5
//!   times.

use crate::membership::member::MAX_MEMBERS;
use crate::placement::slot::SLOTS;
use std::ops::RangeInclusive;
use xxhash_rust::xxh3::xxh3_64;

/// The version of the algorithm: part of every [`Layout::digest`], so
/// two nodes that compute layouts differently never look as if they
/// agreed. Raise it with any change to the weights or their order.
pub const ALGORITHM: u8 = 1;

/// Most members a layout takes: the member list's own bound (a member
/// index is stored in 16 bits).
pub const MAX_LAYOUT_MEMBERS: usize = MAX_MEMBERS;
const _: () = assert!(MAX_LAYOUT_MEMBERS <= u16::MAX as usize + 1);

/// Which members hold each slot, and in what order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The member ids, sorted and distinct.
    members: Vec<String>,
    /// Replicas per slot: `min(N, members)`.
    width: usize,
    /// For each slot in turn, `width` indices into `members`, master
    /// first.
    table: Vec<u16>,
    /// See [`Layout::digest`].
    digest: u64,
}

/// A maximal run of consecutive slots with the same replicas in the same
/// order (what `CLUSTER SLOTS` lists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRange<'a> {
    /// The run's first slot.
    pub first: u16,
    /// The run's last slot (inclusive).
    pub last: u16,
    /// The members that hold it, master first.
    pub replicas: Vec<&'a str>,
}

/// A slot whose replicas differ between two layouts (see
/// [`Layout::changes_to`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotChange<'a> {
    /// The slot.
    pub slot: u16,
    /// Its replicas in the old layout, master first.
    pub before: Vec<&'a str>,
    /// Its replicas in the new layout, master first.
    pub after: Vec<&'a str>,
}

impl SlotChange<'_> {
    /// The members that hold the slot after and did not before: the ones
    /// it must be copied to.
    pub fn gained(&self) -> impl Iterator<Item = &str> + '_ {
        self.after
            .iter()
            .copied()
            .filter(|m| !self.before.contains(m))
    }

    /// The members that held the slot before and do not after.
    pub fn lost(&self) -> impl Iterator<Item = &str> + '_ {
        self.before
            .iter()
            .copied()
            .filter(|m| !self.after.contains(m))
    }

    /// Whether the slot's master is another member (or none) after.
    pub fn is_new_master(&self) -> bool {
        self.before.first() != self.after.first()
    }
}

impl Layout {
    /// The layout of the members with ids `members` (duplicates count
    /// once; the order does not matter), with `replicas` members per slot,
    /// or every member if `None` or `Some(0)` (full replication, as netdb
    /// has today). A slot has `min(replicas, members)` replicas: none if
    /// there are no members.
    ///
    /// # Panics
    ///
    /// With more than [`MAX_LAYOUT_MEMBERS`] distinct ids, which the
    /// member list never holds.
    pub fn new<I, S>(members: I, replicas: Option<usize>) -> Layout
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut members: Vec<String> = members
            .into_iter()
            .map(|id| id.as_ref().to_owned())
            .collect();
        members.sort_unstable();
        members.dedup();
        assert!(
            members.len() <= MAX_LAYOUT_MEMBERS,
            "a layout of {} members: the member list holds at most {MAX_LAYOUT_MEMBERS}",
            members.len()
        );
        let width = match replicas {
            None | Some(0) => members.len(),
            Some(n) => n.min(members.len()),
        };
        let keys: Vec<u64> = members.iter().map(|id| xxh3_64(id.as_bytes())).collect();
        let mut table = Vec::with_capacity(usize::from(SLOTS) * width);
        let mut ranked: Vec<(u64, u16)> = Vec::with_capacity(members.len());
        // Highest weight first; equal weights (two ids with one xxh3, as
        // good as never) by id, so the order is total.
        let order = |a: &(u64, u16), b: &(u64, u16)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
        for slot in 0..SLOTS {
            if width == 0 {
                break;
            }
            ranked.clear();
            ranked.extend((0u16..).zip(&keys).map(|(i, &key)| (weight(key, slot), i)));
            if width < ranked.len() {
                ranked.select_nth_unstable_by(width - 1, order);
            }
            let top = &mut ranked[..width];
            top.sort_unstable_by(order);
            table.extend(top.iter().map(|&(_, i)| i));
        }
        let digest = digest_of(&members, width, &table);
        Layout {
            members,
            width,
            table,
            digest,
        }
    }

    /// The member ids, sorted.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// How many members hold each slot: `min(N, members)`.
    pub fn replicas(&self) -> usize {
        self.width
    }

    /// The members that hold `slot`, master first (none for a slot out
    /// of range or a layout without members).
    pub fn replicas_of(&self, slot: u16) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.row(slot)
            .iter()
            .map(|&i| self.members[usize::from(i)].as_str())
    }

    /// The member shown as `slot`'s master.
    pub fn master_of(&self, slot: u16) -> Option<&str> {
        self.replicas_of(slot).next()
    }

    /// Whether `member` holds `slot` (as master or not).
    pub fn holds(&self, member: &str, slot: u16) -> bool {
        self.index_of(member)
            .is_some_and(|i| self.row(slot).contains(&i))
    }

    /// How many slots `member` holds.
    pub fn slot_count_of(&self, member: &str) -> usize {
        self.index_of(member)
            .map_or(0, |i| self.table.iter().filter(|&&x| x == i).count())
    }

    /// The runs of consecutive slots `member` holds, in slot order.
    pub fn ranges_of(&self, member: &str) -> Vec<RangeInclusive<u16>> {
        match self.index_of(member) {
            Some(i) => runs(|slot| self.row(slot).contains(&i)),
            None => Vec::new(),
        }
    }

    /// The runs of consecutive slots whose master is `member`.
    pub fn master_ranges_of(&self, member: &str) -> Vec<RangeInclusive<u16>> {
        match self.index_of(member) {
            Some(i) => runs(|slot| self.row(slot).first() == Some(&i)),
            None => Vec::new(),
        }
    }

    /// Every slot, as maximal runs with the same replicas in the same
    /// order, in slot order (none for a layout without members).
    pub fn ranges(&self) -> Vec<SlotRange<'_>> {
        let mut ranges: Vec<SlotRange<'_>> = Vec::new();
        if self.width == 0 {
            return ranges;
        }
        let mut first = 0;
        for slot in 1..=SLOTS {
            if slot == SLOTS || self.row(slot) != self.row(first) {
                ranges.push(SlotRange {
                    first,
                    last: slot - 1,
                    replicas: self.replicas_of(first).collect(),
                });
                first = slot;
            }
        }
        ranges
    }

    /// A 64-bit digest of the layout: the algorithm's version, the
    /// members and every slot's replicas. Nodes with equal digests
    /// computed the same layout (but for a 64-bit collision): a version
    /// to compare, and to say in a handoff which layout it is for.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The slots whose replicas (or their order) differ in `next`, in
    /// slot order: what a handoff from this layout to `next` has to
    /// move ([`SlotChange::gained`]) and drop ([`SlotChange::lost`]).
    pub fn changes_to<'a>(&'a self, next: &'a Layout) -> Vec<SlotChange<'a>> {
        (0..SLOTS)
            .filter_map(|slot| {
                let before: Vec<&str> = self.replicas_of(slot).collect();
                let after: Vec<&str> = next.replicas_of(slot).collect();
                (before != after).then_some(SlotChange {
                    slot,
                    before,
                    after,
                })
            })
            .collect()
    }

    /// `slot`'s member indices, master first.
    fn row(&self, slot: u16) -> &[u16] {
        let start = usize::from(slot) * self.width;
        self.table.get(start..start + self.width).unwrap_or(&[])
    }

    /// The index of `member` in [`Self::members`].
    fn index_of(&self, member: &str) -> Option<u16> {
        let i = self
            .members
            .binary_search_by(|m| m.as_str().cmp(member))
            .ok()?;
        u16::try_from(i).ok()
    }
}

/// The weight of the member whose id hashes to `key` for `slot`: the
/// splitmix64 finalizer of the key mixed with the slot.
fn weight(key: u64, slot: u16) -> u64 {
    let mut z = key ^ (u64::from(slot) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xxh3 of the algorithm's version, the width, the ids (each ended by a
/// newline, which no id holds) and the table, in little-endian bytes.
fn digest_of(members: &[String], width: usize, table: &[u16]) -> u64 {
    let mut bytes = vec![ALGORITHM];
    bytes.extend_from_slice(&(width as u64).to_le_bytes());
    for id in members {
        bytes.extend_from_slice(id.as_bytes());
        bytes.push(b'\n');
    }
    for &i in table {
        bytes.extend_from_slice(&i.to_le_bytes());
    }
    xxh3_64(&bytes)
}

/// The maximal runs of consecutive slots for which `held` says yes.
fn runs(held: impl Fn(u16) -> bool) -> Vec<RangeInclusive<u16>> {
    let mut runs = Vec::new();
    let mut start = None;
    for slot in 0..SLOTS {
        match (held(slot), start) {
            (true, None) => start = Some(slot),
            (false, Some(first)) => {
                runs.push(first..=slot - 1);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(first) = start {
        runs.push(first..=SLOTS - 1);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// A member id made of `n`: 40 hex digits, as the member list's.
    fn id(n: u128) -> String {
        format!("{:040x}", n)
    }

    /// `count` member ids drawn from `seed` (xxh3 of the seed and index).
    fn ids(seed: u64, count: usize) -> Vec<String> {
        (0..count as u64)
            .map(|i| {
                let bytes = [seed.to_le_bytes(), i.to_le_bytes()].concat();
                id(xxhash_rust::xxh3::xxh3_128(&bytes))
            })
            .collect()
    }

    /// The ideal number of slots per member: `min(n, m) * SLOTS / m`.
    fn ideal(members: usize, n: usize) -> f64 {
        (n.min(members) * usize::from(SLOTS)) as f64 / members as f64
    }

    /// The largest relative distance from [`ideal`] of any member's count
    /// of slots, and of master slots.
    fn imbalance(layout: &Layout, n: usize) -> (f64, f64) {
        let m = layout.members().len();
        let (held, mastered) = (ideal(m, n), ideal(m, 1));
        let mut worst = (0.0f64, 0.0f64);
        for member in layout.members() {
            let count = layout.slot_count_of(member) as f64;
            let masters: usize = (layout.master_ranges_of(member).into_iter())
                .map(|r| r.len())
                .sum();
            worst.0 = worst.0.max((count - held).abs() / held);
            worst.1 = worst.1.max((masters as f64 - mastered).abs() / mastered);
        }
        worst
    }

    /// The copies a change of layout creates: (slot, member) pairs held in
    /// `to` and not in `from`.
    fn copies_made(from: &Layout, to: &Layout) -> usize {
        from.changes_to(to).iter().map(|c| c.gained().count()).sum()
    }

    /// What `copies_made` would be at best when `newcomer` joins the
    /// `m` members of `before`: its fair share of the new layout.
    fn ideal_join(m: usize, n: usize) -> f64 {
        ideal(m + 1, n)
    }

    /// ... and when one of `m` members leaves: its fair share of the old
    /// layout is re-homed, one copy per slot it held, unless every
    /// member held every slot (then nothing needs a new copy).
    fn ideal_leave(m: usize, n: usize) -> f64 {
        if n >= m {
            0.0
        } else {
            ideal(m, n)
        }
    }

    #[test]
    fn no_members_hold_nothing() {
        let layout = Layout::new(Vec::<String>::new(), Some(3));
        assert_eq!(layout.replicas(), 0);
        assert_eq!(layout.replicas_of(0).count(), 0);
        assert_eq!(layout.master_of(5), None);
        assert!(layout.ranges().is_empty());
        assert!(layout.changes_to(&layout).is_empty());
    }

    #[test]
    fn one_member_holds_everything() {
        let me = id(1);
        let layout = Layout::new([&me], Some(3));
        assert_eq!(layout.replicas(), 1);
        assert_eq!(layout.ranges_of(&me), vec![0..=SLOTS - 1]);
        assert_eq!(layout.master_ranges_of(&me), vec![0..=SLOTS - 1]);
        assert_eq!(
            layout.ranges(),
            vec![SlotRange {
                first: 0,
                last: SLOTS - 1,
                replicas: vec![me.as_str()]
            }]
        );
        assert!(layout.holds(&me, SLOTS - 1));
        assert!(!layout.holds(&me, SLOTS), "no such slot");
        assert!(!layout.holds(&id(2), 0), "no such member");
        assert_eq!(layout.replicas_of(SLOTS).count(), 0);
    }

    #[test]
    fn none_and_zero_mean_every_member() {
        let members = ids(7, 5);
        let all = Layout::new(&members, None);
        assert_eq!(all, Layout::new(&members, Some(0)));
        assert_eq!(all, Layout::new(&members, Some(5)));
        assert_eq!(all, Layout::new(&members, Some(9)));
        assert_eq!(all.replicas(), 5);
        assert_ne!(all.digest(), Layout::new(&members, Some(4)).digest());
    }

    #[test]
    fn ranges_cover_every_slot_once_and_agree_with_replicas_of() {
        let members = ids(3, 4);
        let layout = Layout::new(&members, Some(2));
        let ranges = layout.ranges();
        assert_eq!(ranges[0].first, 0);
        assert_eq!(ranges.last().map(|r| r.last), Some(SLOTS - 1));
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].last + 1, pair[1].first);
            assert_ne!(pair[0].replicas, pair[1].replicas, "maximal runs");
        }
        for range in &ranges {
            for slot in range.first..=range.last {
                let replicas: Vec<&str> = layout.replicas_of(slot).collect();
                assert_eq!(replicas, range.replicas);
            }
        }
        for member in &members {
            let from_ranges: usize = layout.ranges_of(member).iter().map(|r| r.len()).sum();
            assert_eq!(from_ranges, layout.slot_count_of(member));
            for r in layout.ranges_of(member) {
                assert!(r.clone().all(|slot| layout.holds(member, slot)));
                assert!(*r.start() == 0 || !layout.holds(member, r.start() - 1));
                assert!(*r.end() == SLOTS - 1 || !layout.holds(member, r.end() + 1));
            }
        }
    }

    /// The weights and the digest are fixed: a change of either is a new
    /// [`ALGORITHM`], since nodes of two builds must compute the same
    /// layout.
    #[test]
    fn the_algorithm_is_pinned() {
        // splitmix64's first output from seed 0.
        assert_eq!(weight(0, 0), 0xe220_a839_7b1d_cdaf);
        let layout = Layout::new([id(1), id(2), id(3)], Some(2));
        let masters: Vec<&str> = (0..4).filter_map(|s| layout.master_of(s)).collect();
        assert_eq!(
            masters,
            PINNED_MASTERS
                .map(id)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        );
        assert_eq!(layout.digest(), PINNED_DIGEST);
    }

    const PINNED_MASTERS: [u128; 4] = [2, 2, 3, 2];
    const PINNED_DIGEST: u64 = 10_944_248_984_940_326_680;

    #[test]
    fn changes_name_what_moves() {
        let members = ids(11, 3);
        let before = Layout::new(&members[..2], Some(1));
        let after = Layout::new(&members, Some(1));
        let changes = before.changes_to(&after);
        assert!(!changes.is_empty());
        for change in &changes {
            assert!(change.is_new_master());
            assert_eq!(
                change.gained().collect::<Vec<_>>(),
                vec![members[2].as_str()]
            );
            assert_eq!(change.lost().count(), 1);
            assert_eq!(after.master_of(change.slot), Some(members[2].as_str()));
        }
        assert_eq!(changes.len(), after.slot_count_of(&members[2]));
        assert!(after.changes_to(&after).is_empty());
    }

    /// Prints the worst balance and movement over many random member sets
    /// (the numbers in the module doc). Slow in a debug build:
    /// `cargo test --release --lib measure_balance -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn measure_balance_and_movement() {
        const SETS: u64 = 200;
        println!("M N worst-held worst-master worst-join worst-leave");
        for m in 1..=16usize {
            for n in 1..=5usize {
                let mut worst = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
                for seed in 0..SETS {
                    let all = ids(seed * 100 + m as u64, m + 1);
                    let layout = Layout::new(&all[..m], Some(n));
                    let (held, mastered) = imbalance(&layout, n);
                    let grown = Layout::new(&all, Some(n));
                    let join = copies_made(&layout, &grown) as f64 / ideal_join(m, n);
                    worst.0 = worst.0.max(held);
                    worst.1 = worst.1.max(mastered);
                    worst.2 = worst.2.max(join);
                    if m > 1 {
                        let shrunk = Layout::new(&all[1..m], Some(n));
                        let made = copies_made(&layout, &shrunk) as f64;
                        let leave = if n >= m {
                            made
                        } else {
                            made / ideal_leave(m, n)
                        };
                        worst.3 = worst.3.max(leave);
                    }
                }
                println!(
                    "{m} {n} {:.3} {:.3} {:.3} {:.3}",
                    worst.0, worst.1, worst.2, worst.3
                );
            }
        }
    }

    /// Up to 16 member ids (distinct, in no particular order) and a
    /// replica count of 1 to 5.
    fn membership() -> impl Strategy<Value = (Vec<String>, usize)> {
        (
            proptest::collection::btree_set(any::<u128>(), 1..=16)
                .prop_map(|set| set.into_iter().map(id).collect::<Vec<_>>())
                .prop_shuffle(),
            1..=5usize,
        )
    }

    proptest! {
        // A layout of 16 members is about a million weights in a debug
        // build: fewer cases than the default 256.
        #![proptest_config(proptest::test_runner::Config {
            cases: 48,
            ..crate::proptest_config("tests/regressions/placement_layout.txt")
        })]

        /// The same members in any order, or named twice, give the same
        /// layout; and each slot has `min(N, M)` distinct replicas.
        #[test]
        fn deterministic_and_distinct((members, n) in membership(), rotate in 0..16usize) {
            let layout = Layout::new(&members, Some(n));
            let mut other = members.clone();
            other.rotate_left(rotate % members.len());
            other.push(members[0].clone());
            let again = Layout::new(other.iter().rev(), Some(n));
            prop_assert_eq!(layout.digest(), again.digest());
            prop_assert_eq!(&layout, &again);
            prop_assert_eq!(layout.replicas(), n.min(members.len()));
            for slot in 0..SLOTS {
                let replicas: BTreeSet<&str> = layout.replicas_of(slot).collect();
                prop_assert_eq!(replicas.len(), n.min(members.len()), "slot {}", slot);
            }
        }

        /// Each member holds within 20% of `min(N, M) * 16384 / M` slots,
        /// and is master of within 20% of `16384 / M`.
        #[test]
        fn balanced((members, n) in membership()) {
            let layout = Layout::new(&members, Some(n));
            let (held, mastered) = imbalance(&layout, n);
            prop_assert!(held <= 0.20, "held {:.3} off", held);
            prop_assert!(mastered <= 0.20, "mastered {:.3} off", mastered);
        }

        /// A member that joins: every new copy is on it, no other slot
        /// changes, and the copies made (pairs of slot and member held
        /// after and not before) are within 1.5 times its fair share of
        /// the new layout, `min(N, M+1) * 16384 / (M+1)`.
        #[test]
        fn a_join_moves_little((members, n) in membership(), newcomer in any::<u128>()) {
            let newcomer = id(newcomer);
            prop_assume!(!members.contains(&newcomer));
            let before = Layout::new(&members, Some(n));
            let after = Layout::new(members.iter().chain([&newcomer]), Some(n));
            for change in before.changes_to(&after) {
                prop_assert_eq!(change.gained().collect::<Vec<_>>(), vec![newcomer.as_str()]);
                let stayed: Vec<&str> = change.after.iter().copied().filter(|&m| m != newcomer).collect();
                prop_assert!(change.before.starts_with(&stayed), "{:?}", change);
            }
            let made = copies_made(&before, &after) as f64;
            let ideal = ideal_join(members.len(), n);
            prop_assert_eq!(made, after.slot_count_of(&newcomer) as f64);
            prop_assert!(made <= 1.5 * ideal, "{} copies for an ideal {}", made, ideal);
        }

        /// A member that leaves: only the slots it held change, each gets
        /// at most one new copy, and the copies made are within 1.5 times
        /// its fair share of the old layout (none when every member held
        /// every slot).
        #[test]
        fn a_leave_moves_little((members, n) in membership(), leaver in 0..16usize) {
            prop_assume!(members.len() > 1);
            let leaver = &members[leaver % members.len()];
            let before = Layout::new(&members, Some(n));
            let after = Layout::new(members.iter().filter(|&m| m != leaver), Some(n));
            for change in before.changes_to(&after) {
                prop_assert_eq!(change.lost().collect::<Vec<_>>(), vec![leaver.as_str()]);
                prop_assert!(change.gained().count() <= 1);
                let stayed: Vec<&str> = change.before.iter().copied().filter(|m| m != leaver).collect();
                prop_assert!(change.after.starts_with(&stayed), "{:?}", change);
            }
            let made = copies_made(&before, &after) as f64;
            let ideal = ideal_leave(members.len(), n);
            prop_assert!(made <= 1.5 * ideal, "{} copies for an ideal {}", made, ideal);
        }

        /// With `N >= M` every member holds every slot, as without `N`.
        #[test]
        fn enough_replicas_is_full_replication(
            members in proptest::collection::btree_set(any::<u128>(), 1..=5),
            more in 0..3usize,
        ) {
            let members: Vec<String> = members.into_iter().map(id).collect();
            let n = members.len() + more;
            let layout = Layout::new(&members, Some(n));
            prop_assert_eq!(&layout, &Layout::new(&members, None));
            for member in &members {
                prop_assert_eq!(layout.ranges_of(member), vec![0..=SLOTS - 1]);
            }
        }
    }
}
