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
//! * The **counter** is the writer's entry in vector clocks and version
//!   vectors: 1, 2, 3, ... per writer, so the gap between two counters is a
//!   number of writes. A counter must never repeat under one writer, also
//!   across a restart that lost all data: a repeated counter would make a
//!   new write look like an old one. So a node that starts without its data
//!   writes under a new writer identity (see [`crate::store::Store::new`]),
//!   and a writer that learns of a higher counter under its own identity
//!   moves above it.

/// Bits of a timestamp that hold the logical count.
const LOGICAL_BITS: u32 = 16;

/// A hybrid logical clock.
#[derive(Debug, Default, Clone)]
pub struct Hlc {
    last: u64,
}

impl Hlc {
    /// A clock that has seen nothing.
    pub fn new() -> Hlc {
        Hlc::default()
    }

    /// A fresh timestamp for a local write at wall time `now_us`: above every
    /// timestamp this clock has issued or observed.
    pub fn tick(&mut self, now_us: u64) -> u64 {
        let physical = (now_us / 1000).min(u64::MAX >> LOGICAL_BITS) << LOGICAL_BITS;
        self.last = self.last.saturating_add(1).max(physical);
        self.last
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
        let a = hlc.tick(5_000_000);
        let b = hlc.tick(5_000_000);
        let c = hlc.tick(1_000_000);
        assert!(a < b && b < c);
        assert_eq!(timestamp_millis(a), 5_000);
    }

    #[test]
    fn a_lagging_node_stamps_above_what_it_has_seen() {
        let mut fast = Hlc::new();
        let seen = fast.tick(9_000_000_000);
        let mut slow = Hlc::new();
        slow.observe(seen);
        assert!(slow.tick(1_000_000) > seen);
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
