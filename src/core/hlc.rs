//! Hybrid logical timestamps and write counters: the two numbers a node
//! stamps on each of its writes.
//!
//! Both are pure: the caller passes the wall clock in (microseconds since the
//! Unix epoch), so tests can drive time by hand.
//!
//! * The **timestamp** orders concurrent writes for last-write-wins. It is a
//!   hybrid logical clock packed in a `u64`: milliseconds in the high 48
//!   bits, a logical count in the low 16. A node that has seen a timestamp T
//!   stamps its next write above T, whatever its own wall clock says, so a
//!   write made after seeing another always sorts after it.
//!
//!   It is bounded, as production hybrid clocks are (CockroachDB's maximum
//!   clock offset is the model): a clock never issues a timestamp more
//!   than its `max_offset_ms` ahead of the wall clock, nor one at or above
//!   [`MAX_TIMESTAMP`], which peers refuse. Were it to follow a far-future
//!   timestamp (one forged entry, one node with a wrong clock), every later
//!   write would carry it, and the writes a peer refuses would be
//!   acknowledged and never replicate. So a node refuses entries stamped
//!   further ahead of its clock than the bound (see [`ahead_ms`]), and a
//!   tick that the bound leaves no room for is refused, not stretched:
//!   a write that did not sort above everything its writer had seen would
//!   break the merge's laws.
//! * The **counter** is the writer's entry in vector clocks and version
//!   vectors: 1, 2, 3, ... per writer, so the gap between two counters is a
//!   number of writes. A counter must never repeat under one writer, also
//!   across a restart that lost all data: a repeated counter would make a
//!   new write look like an old one. So a node that starts without its data
//!   writes under a new writer identity (see [`crate::store::Store::new`]),
//!   and a writer that learns of a higher counter under its own identity
//!   moves above it.

use std::fmt;

/// Bits of a timestamp that hold the logical count.
const LOGICAL_BITS: u32 = 16;

/// Timestamps at or above this (the year 6429) are refused from peers and
/// never issued: a clock that reached it could not tick above it.
pub const MAX_TIMESTAMP: u64 = 1 << 63;

/// The default bound on how far a timestamp may be ahead of the wall
/// clock, in milliseconds (`--max-clock-offset-ms`).
pub const DEFAULT_MAX_OFFSET_MS: u64 = 500;

/// Why a clock cannot issue a timestamp now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockError {
    /// The wall clock reads a time no timestamp can hold (past the year
    /// 6429): it is wrong.
    WallClockOutOfRange {
        /// The wall clock, in milliseconds since the Unix epoch.
        now_ms: u64,
    },
    /// The clock has seen a timestamp so far ahead of the wall clock that
    /// the next one would be past the bound.
    TooFarAhead {
        /// How far the last timestamp is ahead of the wall clock.
        ahead_ms: u64,
        /// The bound.
        max_offset_ms: u64,
    },
}

impl fmt::Display for ClockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockError::WallClockOutOfRange { now_ms } => write!(
                f,
                "writes refused: this node's wall clock reads {now_ms} ms since 1970, \
                 past the year 6429, which no timestamp can hold; fix the clock"
            ),
            ClockError::TooFarAhead {
                ahead_ms,
                max_offset_ms,
            } => write!(
                f,
                "writes refused: this node has seen a timestamp {ahead_ms} ms ahead of its \
                 wall clock, over the bound of {max_offset_ms} ms (--max-clock-offset-ms); \
                 writes resume once the clock catches up"
            ),
        }
    }
}

impl std::error::Error for ClockError {}

/// How many milliseconds timestamp `ts` is ahead of wall time `now_us`
/// (0 if it is not ahead).
pub fn ahead_ms(ts: u64, now_us: u64) -> u64 {
    timestamp_millis(ts).saturating_sub(now_us / 1000)
}

/// Whether a timestamp can hold wall time `now_us`: not past the year 6429.
pub fn check_wall_clock(now_us: u64) -> Result<(), ClockError> {
    let now_ms = now_us / 1000;
    if now_ms > MAX_MILLIS {
        return Err(ClockError::WallClockOutOfRange { now_ms });
    }
    Ok(())
}

/// The last millisecond a timestamp below [`MAX_TIMESTAMP`] can hold.
const MAX_MILLIS: u64 = (MAX_TIMESTAMP - 1) >> LOGICAL_BITS;

/// A hybrid logical clock, bounded (see the module doc).
#[derive(Debug, Clone)]
pub struct Hlc {
    last: u64,
    max_offset_ms: u64,
}

impl Default for Hlc {
    fn default() -> Hlc {
        Hlc {
            last: 0,
            max_offset_ms: DEFAULT_MAX_OFFSET_MS,
        }
    }
}

impl Hlc {
    /// A clock that has seen nothing, bounded by [`DEFAULT_MAX_OFFSET_MS`].
    pub fn new() -> Hlc {
        Hlc::default()
    }

    /// Bounds the clock's timestamps to `ms` ahead of the wall clock.
    pub fn set_max_offset_ms(&mut self, ms: u64) {
        self.max_offset_ms = ms;
    }

    /// The bound, in milliseconds.
    pub fn max_offset_ms(&self) -> u64 {
        self.max_offset_ms
    }

    /// A fresh timestamp for a local write at wall time `now_us`: above every
    /// timestamp this clock has issued or observed, no more than the bound
    /// ahead of `now_us`, and below [`MAX_TIMESTAMP`]. When no timestamp
    /// can be all three, the clock is unchanged and the error says why.
    pub fn tick(&mut self, now_us: u64) -> Result<u64, ClockError> {
        check_wall_clock(now_us)?;
        let now_ms = now_us / 1000;
        let physical = now_ms << LOGICAL_BITS;
        let limit_ms = now_ms.saturating_add(self.max_offset_ms).min(MAX_MILLIS);
        let limit = (limit_ms << LOGICAL_BITS) | ((1 << LOGICAL_BITS) - 1);
        let next = self.last.saturating_add(1).max(physical);
        if next > limit {
            return Err(ClockError::TooFarAhead {
                ahead_ms: ahead_ms(self.last, now_us),
                max_offset_ms: self.max_offset_ms,
            });
        }
        self.last = next;
        Ok(next)
    }

    /// Records a timestamp seen on a remote write.
    pub fn observe(&mut self, ts: u64) {
        self.last = self.last.max(ts);
    }

    /// The highest timestamp issued or observed.
    pub fn last(&self) -> u64 {
        self.last
    }
}

/// The earliest timestamp of wall-clock millisecond `ms`.
pub fn timestamp_of_millis(ms: u64) -> u64 {
    ms.min(MAX_TIMESTAMP >> LOGICAL_BITS) << LOGICAL_BITS
}

/// The wall-clock milliseconds of a timestamp (for display).
pub fn timestamp_millis(ts: u64) -> u64 {
    ts >> LOGICAL_BITS
}

/// The source of a writer's counters.
#[derive(Debug, Default, Clone)]
pub struct WriteCounter {
    last: u64,
}

impl WriteCounter {
    /// A counter that has issued nothing.
    pub fn new() -> WriteCounter {
        WriteCounter::default()
    }

    /// The counter for the next local write.
    pub fn issue(&mut self) -> u64 {
        self.last = self.last.saturating_add(1);
        self.last
    }

    /// Records that `counter` was used under this node's name (seen on a
    /// peer), so no later write reuses it or anything below it.
    pub fn observe(&mut self, counter: u64) {
        self.last = self.last.max(counter);
    }

    /// The last counter issued or observed.
    pub fn last(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_increase_even_when_the_wall_clock_stands_still_or_goes_back() {
        let mut hlc = Hlc::new();
        let a = hlc.tick(5_000_000).expect("in range");
        let b = hlc.tick(5_000_000).expect("in range");
        let c = hlc.tick(4_800_000).expect("within the bound");
        assert!(a < b && b < c);
        assert_eq!(timestamp_millis(a), 5_000);
    }

    #[test]
    fn a_lagging_node_stamps_above_what_it_has_seen() {
        let mut fast = Hlc::new();
        let seen = fast.tick(9_000_400_000).expect("in range");
        let mut slow = Hlc::new();
        slow.observe(seen);
        assert!(slow.tick(9_000_000_000).expect("400 ms behind") > seen);
    }

    #[test]
    fn a_clock_never_ticks_past_the_wall_clock_plus_the_bound() {
        let now_us = 10_000_000;
        let mut hlc = Hlc::new();
        hlc.set_max_offset_ms(500);
        // Seen: a timestamp exactly at the bound, at its last logical count.
        hlc.observe((10_500 << LOGICAL_BITS) | 0xFFFE);
        let at_bound = hlc.tick(now_us).expect("room for one more");
        assert_eq!(timestamp_millis(at_bound), 10_500);
        assert_eq!(
            hlc.tick(now_us),
            Err(ClockError::TooFarAhead {
                ahead_ms: 500,
                max_offset_ms: 500
            })
        );
        assert_eq!(hlc.last(), at_bound, "a refused tick changes nothing");
        // A millisecond later the bound has moved on.
        assert!(hlc.tick(now_us + 1000).expect("room again") > at_bound);

        // Seen: a forged timestamp at the end of time. Writes are refused
        // until the wall clock reaches it; nothing at or above
        // MAX_TIMESTAMP is ever issued.
        hlc.observe(MAX_TIMESTAMP - 1);
        let refused = hlc.tick(now_us + 2000).expect_err("far ahead");
        assert!(
            refused.to_string().contains("over the bound of 500 ms"),
            "{refused}"
        );
        let end_us = timestamp_millis(MAX_TIMESTAMP - 1) * 1000;
        assert!(hlc.tick(end_us).is_err(), "no room left at the end of time");
    }

    #[test]
    fn a_wall_clock_past_the_year_6429_issues_nothing() {
        let mut hlc = Hlc::new();
        let past_end_us = (MAX_TIMESTAMP >> LOGICAL_BITS) * 1000;
        let e = hlc.tick(past_end_us).expect_err("out of range");
        assert!(matches!(e, ClockError::WallClockOutOfRange { .. }));
        assert!(e.to_string().contains("past the year 6429"), "{e}");
        assert_eq!(hlc.last(), 0);
        // Just before it, a timestamp still fits, below MAX_TIMESTAMP.
        let last_us = past_end_us - 1000;
        let ts = hlc.tick(last_us).expect("the last millisecond");
        assert!(ts < MAX_TIMESTAMP);
    }

    #[test]
    fn how_far_ahead_a_timestamp_is() {
        let ts = 12_345 << LOGICAL_BITS | 7;
        assert_eq!(ahead_ms(ts, 12_000_000), 345);
        assert_eq!(ahead_ms(ts, 12_345_999), 0);
        assert_eq!(ahead_ms(ts, 99_000_000), 0, "behind is not ahead");
    }

    #[test]
    fn counters_count_up_and_move_above_what_they_learn() {
        let mut c = WriteCounter::new();
        assert_eq!((c.issue(), c.issue()), (1, 2));
        c.observe(10);
        assert_eq!(c.issue(), 11);
        c.observe(3);
        assert_eq!(c.issue(), 12);
    }
}
