//! A counter whose concurrent increments all count: the state `INCR`,
//! `DECR`, `INCRBY` and `DECRBY` leave in a key's version.
//!
//! # What it holds
//!
//! * A **base**: the latest `SET`, `DEL` or expiry of the key (the
//!   latest by stamp, as last-write-wins picks it), with its value (or
//!   none, for a delete) and its expiry; or no base, for a key that had
//!   no version when counting began.
//! * One **count** per writer that has incremented the key since that
//!   base: when the count began (the stamp of its first increment), and
//!   the sums of its increments and of its decrements. Both sums only
//!   grow; a writer whose count is dead (see below) begins a new one.
//!
//! The value is the base's integer (0 for no base, a delete, or a base
//! that has expired) plus every live count's increments less its
//! decrements.
//!
//! # The rule
//!
//! **A count counts on top of the base it began after.** A count is live
//! while it began after the base (its stamp is later): a `SET` or `DEL`
//! replaces the counts it is later than, which are the counts it had
//! seen and those begun before it that it had not; a count begun after
//! it (on another node that had not seen it yet, or after it) is kept on
//! top of it. Stamps are hybrid logical clocks, so a write made after
//! seeing another is later than it, and the rule is the same on every
//! node. That is the choice the issue leaves open ("kept on top or
//! dropped"), made by time. A node's count runs on (its sums grow) while
//! the base it began after is the one it holds, so an increment its node
//! made after a `SET` it had not seen yet, on a count begun before that
//! `SET`, goes with that count: concurrent with the `SET`, and dropped.
//! Splitting a count at a point its node never saw is what running sums
//! cannot do; per-increment records could, at a cost per increment.
//! Nothing else is lost: increments of one count, and counts begun on
//! different nodes at once, all count. `EXPIRE` and `PERSIST` are writes
//! of the value (the time to live is part of it), so they are bases too.
//!
//! Expiry belongs to the base: increments keep a key's time to live, as
//! in Redis, and a count begun before the base expires ends with it; a
//! count begun after the expiry (on a node that had already let the key
//! go) counts on top of nothing.
//!
//! # Why this state, and not epochs
//!
//! A counter begun on a key a node no longer holds (its delete or expiry
//! collected, since every node had it) must still win over that delete
//! where a peer holds it, or it would be lost there and kept here, and
//! the two would never exchange it again (each has seen the other's
//! writes). Its stamp is later than everything its node had seen, so
//! comparing counts with the base by stamp gives it the win without the
//! node remembering what it collected.
//!
//! # Laws
//!
//! The join is the base's last-write-wins join (two bases of one stamp
//! are one write, a value and the tombstone its expiry left: the
//! tombstone and the later expiry win) times each writer's latest count
//! (the later beginning, then the larger sums), less counts dead against
//! the joined base. Each factor is a semilattice and dropping dead
//! counts commutes with the join (a count dead against a base is dead
//! against every later one), so the join is commutative, associative and
//! idempotent; the property tests of [`crate::core::version`] and of the
//! store check it with every other write.
//!
//! Pure: no clock, no I/O; the time to read at is passed in.

use crate::core::clock::NodeId;
use crate::core::hlc::timestamp_millis;
use crate::core::names::Names;
use crate::core::version::{stamp_order, Stamp};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// The write a counter counts on top of: a `SET` or a `DEL` (or what an
/// expiry left of a `SET`). `EXPIRE` and `PERSIST` write the value again,
/// so they are bases too, and a key's time to live is its base's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Base {
    /// The write's stamp.
    pub stamp: Stamp,
    /// Its value, or `None` for a delete (or an expired value's tombstone).
    pub value: Option<Vec<u8>>,
    /// When the key expires (milliseconds since the Unix epoch), if it
    /// does; an expired value's tombstone keeps it.
    pub expires: Option<u64>,
}

/// One writer's increments since the base.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Count {
    /// The writer.
    pub writer: NodeId,
    /// The timestamp of its first increment; with `writer`, the stamp the
    /// count began at.
    pub began: u64,
    /// The sum of its increments.
    pub up: u64,
    /// The sum of its decrements (as a positive number).
    pub down: u64,
}

impl Count {
    fn began_stamp(&self) -> Stamp {
        Stamp {
            ts: self.began,
            writer: self.writer,
        }
    }
}

/// A counter's state (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Counter {
    /// The base, or `None` for a key that had no version.
    pub base: Option<Base>,
    /// The live counts, sorted by writer, one per writer.
    pub counts: Vec<Count>,
}

/// Why an increment was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddError {
    /// The value is not an integer (Redis's "value is not an integer or
    /// out of range").
    NotAnInteger,
    /// The result would leave the 64-bit range (Redis's "increment or
    /// decrement would overflow").
    Overflow,
}

/// What a counter reads as at some time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    /// The value, or `None` for absent.
    pub value: Option<Vec<u8>>,
    /// When that value expires, if it does.
    pub expires: Option<u64>,
}

/// The integer a value spells as Redis reads one: optional minus, digits,
/// no leading zeros or plus sign, no spaces, within 64 bits.
pub fn parse_integer(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0";
    canonical.then(|| text.parse().ok()).flatten()
}

/// The join of two bases: the later stamp's; of one stamp (one write, and
/// the tombstone its expiry left on some node), the tombstone, as for
/// plain versions: both read as expired.
fn join_base(a: &Base, b: &Base, names: &Names) -> Base {
    match stamp_order(a.stamp, b.stamp, names) {
        Ordering::Greater => a.clone(),
        Ordering::Less => b.clone(),
        Ordering::Equal => Base {
            stamp: a.stamp,
            value: match (&a.value, &b.value) {
                (Some(x), Some(y)) => Some(x.max(y).clone()),
                _ => None,
            },
            expires: a.expires.max(b.expires),
        },
    }
}

impl Counter {
    /// A plain version's state: its write is the base, nothing counted.
    pub fn of_plain(value: Option<&[u8]>, expires: Option<u64>, stamp: Stamp) -> Counter {
        Counter {
            base: Some(Base {
                stamp,
                value: value.map(<[u8]>::to_vec),
                expires,
            }),
            counts: Vec::new(),
        }
    }

    /// A counter of a key that had no version: nothing counted yet.
    pub fn empty() -> Counter {
        Counter {
            base: None,
            counts: Vec::new(),
        }
    }

    /// Whether nothing is counted: the version is its base, a plain value
    /// or tombstone.
    pub fn is_plain(&self) -> bool {
        self.counts.is_empty()
    }

    /// When the key expires, if it does.
    pub fn expires(&self) -> Option<u64> {
        self.base.as_ref().and_then(|b| b.expires)
    }

    /// Whether `count` counts against the base at all (began after it).
    fn is_live(&self, count: &Count, names: &Names) -> bool {
        self.base
            .as_ref()
            .is_none_or(|b| stamp_order(count.began_stamp(), b.stamp, names) == Ordering::Greater)
    }

    /// The join of two counters (see the module doc).
    pub fn join(&self, other: &Counter, names: &Names) -> Counter {
        let base = match (&self.base, &other.base) {
            (Some(a), Some(b)) => Some(join_base(a, b, names)),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        let mut counts = Vec::with_capacity(self.counts.len().max(other.counts.len()));
        let (mut i, mut j) = (0, 0);
        let (xs, ys) = (&self.counts, &other.counts);
        while i < xs.len() || j < ys.len() {
            let pick = match (xs.get(i), ys.get(j)) {
                (Some(x), Some(y)) if x.writer == y.writer => {
                    i += 1;
                    j += 1;
                    match x.began.cmp(&y.began) {
                        Ordering::Greater => *x,
                        Ordering::Less => *y,
                        Ordering::Equal => Count {
                            up: x.up.max(y.up),
                            down: x.down.max(y.down),
                            ..*x
                        },
                    }
                }
                (Some(x), Some(y)) if x.writer < y.writer => {
                    i += 1;
                    *x
                }
                (Some(_), Some(y)) => {
                    j += 1;
                    *y
                }
                (Some(x), None) => {
                    i += 1;
                    *x
                }
                (None, Some(y)) => {
                    j += 1;
                    *y
                }
                (None, None) => unreachable!("the loop condition"),
            };
            counts.push(pick);
        }
        let mut joined = Counter { base, counts };
        joined.counts.retain(|c| {
            joined
                .base
                .as_ref()
                .is_none_or(|b| stamp_order(c.began_stamp(), b.stamp, names) == Ordering::Greater)
        });
        joined
    }

    /// The version's stamp: the latest of the base's and the counts'
    /// beginnings. It moves when a count begins or the base changes, and
    /// a plain counter's is its base's.
    pub fn stamp(&self, names: &Names) -> Stamp {
        let mut latest = self.base.as_ref().map(|b| b.stamp);
        for s in self.counts.iter().map(Count::began_stamp) {
            latest = Some(match latest {
                Some(l) if stamp_order(l, s, names) != Ordering::Less => l,
                _ => s,
            });
        }
        latest.expect("a counter has a base or a count")
    }

    /// Whether the base is a value that has not expired at `now_ms`.
    fn base_alive(&self, now_ms: u64) -> bool {
        self.base.as_ref().is_some_and(|b| b.value.is_some())
            && self.expires().is_none_or(|at| now_ms < at)
    }

    /// Whether `count` is in the value at `now_ms`: a count begun before
    /// its base expired ends with it.
    fn counts_at(&self, count: &Count, now_ms: u64) -> bool {
        match self.expires() {
            Some(at) if now_ms >= at => timestamp_millis(count.began) >= at,
            _ => true,
        }
    }

    /// What the key reads as at `now_ms`.
    pub fn view(&self, now_ms: u64) -> View {
        let alive = self.base_alive(now_ms);
        let base = self.base.as_ref();
        let mut total: i128 = 0;
        if alive {
            let bytes = base.and_then(|b| b.value.as_deref()).expect("alive");
            match parse_integer(bytes) {
                Some(n) => total = i128::from(n),
                // A value that is no integer (a SET concurrent with
                // increments, later than the base they began after) reads
                // as itself; the counts stay, for a later base.
                None => {
                    return View {
                        value: Some(bytes.to_vec()),
                        expires: self.expires(),
                    }
                }
            }
        }
        let mut any = false;
        for c in self.counts.iter().filter(|c| self.counts_at(c, now_ms)) {
            any = true;
            total += i128::from(c.up) - i128::from(c.down);
        }
        if !alive && !any {
            return View {
                value: None,
                expires: None,
            };
        }
        // The value changes by itself at the base's expiry if the base or
        // a count begun before it is in it: that is its expiry.
        let expires = self.expires().filter(|&at| {
            at > now_ms && (alive || self.counts.iter().any(|c| timestamp_millis(c.began) < at))
        });
        View {
            value: Some(total.to_string().into_bytes()),
            expires,
        }
    }

    /// Counts `by` as `writer`'s increment made at `stamp` (a new write's,
    /// later than every stamp this node has seen) and read at `now_ms`.
    /// Returns the new value; on error the counter is unchanged.
    pub fn add(
        &mut self,
        writer: NodeId,
        by: i64,
        stamp: Stamp,
        now_ms: u64,
        names: &Names,
    ) -> Result<i64, AddError> {
        debug_assert_eq!(stamp.writer, writer);
        let current = match self.view(now_ms).value {
            None => 0,
            Some(v) => parse_integer(&v).ok_or(AddError::NotAnInteger)?,
        };
        let new = current.checked_add(by).ok_or(AddError::Overflow)?;
        let at = self.counts.binary_search_by_key(&writer, |c| c.writer);
        let extend = match at {
            Ok(i) => {
                let c = &self.counts[i];
                self.is_live(c, names) && self.counts_at(c, now_ms)
            }
            Err(_) => false,
        };
        let mut count = match (at, extend) {
            (Ok(i), true) => self.counts[i],
            _ => Count {
                writer,
                began: stamp.ts,
                up: 0,
                down: 0,
            },
        };
        let sum = if by >= 0 {
            &mut count.up
        } else {
            &mut count.down
        };
        *sum = sum
            .checked_add(by.unsigned_abs())
            .ok_or(AddError::Overflow)?;
        // An expired base is over: a count begun after it counts on top of
        // nothing, and the base stays only for the counts it ends.
        match at {
            Ok(i) => self.counts[i] = count,
            Err(i) => self.counts.insert(i, count),
        }
        Ok(new)
    }
}

/// A counter in a portable form, its writers as `W`: an index into a
/// batch's or a log's names, or a name. The wire, the log and
/// [`crate::store::Store::canonical`] carry this.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Portable<W> {
    /// The base, if any.
    pub base: Option<PortableBase<W>>,
    /// The counts.
    pub counts: Vec<PortableCount<W>>,
}

/// A [`Base`] in portable form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortableBase<W> {
    /// The timestamp of the base's stamp.
    pub ts: u64,
    /// The writer of the base's stamp.
    pub writer: W,
    /// Its value, if not a delete.
    pub value: Option<Vec<u8>>,
    /// The key's expiry, if any.
    pub expires: Option<u64>,
}

/// A [`Count`] in portable form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortableCount<W> {
    /// The writer.
    pub writer: W,
    /// When its count began.
    pub began: u64,
    /// The sum of its increments.
    pub up: u64,
    /// The sum of its decrements.
    pub down: u64,
}

impl Counter {
    /// The portable form, writers named by `f`.
    pub fn to_portable<W>(&self, mut f: impl FnMut(NodeId) -> W) -> Portable<W> {
        Portable {
            base: self.base.as_ref().map(|b| PortableBase {
                ts: b.stamp.ts,
                writer: f(b.stamp.writer),
                value: b.value.clone(),
                expires: b.expires,
            }),
            counts: self
                .counts
                .iter()
                .map(|c| PortableCount {
                    writer: f(c.writer),
                    began: c.began,
                    up: c.up,
                    down: c.down,
                })
                .collect(),
        }
    }
}

impl<W> Portable<W> {
    /// Every writer it names.
    pub fn writers(&self) -> impl Iterator<Item = &W> {
        self.base
            .iter()
            .map(|b| &b.writer)
            .chain(self.counts.iter().map(|c| &c.writer))
    }

    /// The counter, writers resolved by `f`. What comes from outside is
    /// put in order here: counts sorted by writer, a writer named twice
    /// keeping its later count. `None` for a state no write makes (no
    /// base and no count).
    pub fn to_counter<E>(
        &self,
        mut f: impl FnMut(&W) -> Result<NodeId, E>,
    ) -> Result<Option<Counter>, E> {
        let base = match &self.base {
            None => None,
            Some(b) => Some(Base {
                stamp: Stamp {
                    ts: b.ts,
                    writer: f(&b.writer)?,
                },
                value: b.value.clone(),
                expires: b.expires,
            }),
        };
        let mut counts = Vec::with_capacity(self.counts.len());
        for c in &self.counts {
            counts.push(Count {
                writer: f(&c.writer)?,
                began: c.began,
                up: c.up,
                down: c.down,
            });
        }
        counts.sort_unstable_by_key(|c| (c.writer, std::cmp::Reverse((c.began, c.up, c.down))));
        counts.dedup_by_key(|c| c.writer);
        if base.is_none() && counts.is_empty() {
            return Ok(None);
        }
        Ok(Some(Counter { base, counts }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> (Names, NodeId, NodeId, NodeId) {
        let mut n = Names::new();
        let a = n.intern("a");
        let b = n.intern("b");
        let c = n.intern("c");
        (n, a, b, c)
    }

    fn st(ts: u64, writer: NodeId) -> Stamp {
        Stamp { ts, writer }
    }

    fn read(c: &Counter, now_ms: u64) -> Option<String> {
        c.view(now_ms)
            .value
            .map(|v| String::from_utf8(v).expect("digits"))
    }

    #[test]
    fn increments_begun_at_once_on_a_new_key_all_count() {
        let (n, a, b, _) = names();
        let mut x = Counter::empty();
        let mut y = x.clone();
        assert_eq!(x.add(a, 5, st(10, a), 0, &n), Ok(5));
        assert_eq!(x.add(a, -2, st(11, a), 0, &n), Ok(3));
        assert_eq!(y.add(b, 7, st(10, b), 0, &n), Ok(7));
        let j = x.join(&y, &n);
        assert_eq!(read(&j, 0).as_deref(), Some("10"));
        assert_eq!(j, y.join(&x, &n));
        assert_eq!(j.join(&x, &n), j);
    }

    #[test]
    fn a_set_replaces_counts_begun_before_it_and_keeps_later_ones() {
        let (n, a, b, c) = names();
        let mut x = Counter::of_plain(Some(b"10"), None, st(1, a));
        x.add(a, 1, st(5, a), 0, &n).expect("adds");
        let set = Counter::of_plain(Some(b"100"), None, st(8, b));
        let mut later = x.clone();
        // c begins after the SET's time without having seen it.
        later.add(c, 3, st(9, c), 0, &n).expect("adds");
        let j = set.join(&later, &n);
        assert_eq!(read(&j, 0).as_deref(), Some("103"));
        assert_eq!(j.counts.len(), 1);
        assert_eq!(later.join(&set, &n), j);
    }

    #[test]
    fn a_counter_begun_after_a_collected_delete_wins_over_it() {
        let (n, a, b, _) = names();
        let deleted = Counter::of_plain(None, None, st(5, a));
        // b no longer holds the key: it counts from nothing, later.
        let mut fresh = Counter::empty();
        fresh.add(b, 1, st(9, b), 0, &n).expect("adds");
        assert_eq!(read(&deleted.join(&fresh, &n), 0).as_deref(), Some("1"));
        // One begun before the delete is replaced by it.
        let mut stale = Counter::empty();
        stale.add(b, 1, st(3, b), 0, &n).expect("adds");
        assert_eq!(read(&deleted.join(&stale, &n), 0), None);
    }

    #[test]
    fn counts_end_with_the_base_they_began_on_but_not_those_begun_after_it_expired() {
        let (n, a, b, _) = names();
        let ms = |m: u64| m << 16;
        let mut x = Counter::of_plain(Some(b"10"), Some(100), st(ms(10), a));
        x.add(a, 1, st(ms(20), a), 20, &n).expect("adds");
        assert_eq!(read(&x, 50).as_deref(), Some("11"));
        assert_eq!(x.view(50).expires, Some(100));
        assert_eq!(read(&x, 100), None);
        let mut y = x.clone();
        y.add(b, 5, st(ms(150), b), 150, &n).expect("adds");
        assert_eq!(read(&y, 150).as_deref(), Some("5"));
        assert_eq!(y.view(150).expires, None);
        // a's count ended with the base; a's next increment begins anew.
        y.add(a, 2, st(ms(160), a), 160, &n).expect("adds");
        assert_eq!(read(&y, 160).as_deref(), Some("7"));
        // The expired value's tombstone is the same write: joining it
        // changes nothing read.
        let tomb = Counter::of_plain(None, None, st(ms(10), a));
        assert_eq!(read(&y.join(&tomb, &n), 160).as_deref(), Some("7"));
        assert_eq!(read(&x.join(&tomb, &n), 160), None);
    }

    #[test]
    fn overflow_and_non_integers_are_refused_and_change_nothing() {
        let (n, a, _, _) = names();
        let mut c = Counter::of_plain(Some(b"9223372036854775806"), None, st(1, a));
        assert_eq!(c.add(a, 1, st(2, a), 0, &n), Ok(i64::MAX));
        let before = c.clone();
        assert_eq!(c.add(a, 1, st(3, a), 0, &n), Err(AddError::Overflow));
        assert_eq!(c, before);
        let mut s = Counter::of_plain(Some(b"abc"), None, st(1, a));
        assert_eq!(s.add(a, 1, st(2, a), 0, &n), Err(AddError::NotAnInteger));
        assert!(s.is_plain());
    }

    #[test]
    fn integers_are_read_as_redis_reads_them() {
        assert_eq!(parse_integer(b"-12"), Some(-12));
        assert_eq!(parse_integer(b"0"), Some(0));
        for bad in [
            &b"012"[..],
            b"+1",
            b" 1",
            b"-0",
            b"",
            b"1.0",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_integer(bad), None, "{bad:?}");
        }
    }
}
