//! What a node knows of its peers' clocks: how far each one is off from
//! its own, measured at the handshake, and whether that makes this
//! node's own clock the suspect one, whose writes must be refused.
//!
//! Timestamps are bounded by `--max-clock-offset-ms` (see
//! [`crate::core::hlc`]): a node refuses entries stamped further ahead of
//! its clock than the bound. Two nodes whose clocks are further apart than
//! that cannot both take writes: the one ahead stamps writes the other
//! refuses, the one behind refuses the other's. So a node whose clock is
//! off by more than the bound from a strict majority of its peers refuses
//! local writes until it is not (CockroachDB's rule: with one peer both
//! nodes refuse, since neither can tell whose clock is wrong; with more,
//! only the odd one out does). The majority is of all its peers, not of
//! those measured so far: a node that has measured only the odd one out
//! (the first to answer after a start, say) must not refuse writes for it.
//!
//! Measuring: the pusher reads its wall clock when it sends `Hello` and
//! when the `Welcome` arrives, and the `Welcome` carries the peer's wall
//! clock. The peer read it somewhere in between, so its offset is known to
//! within half the round trip; only an offset certainly over the bound
//! counts. A receiver sees only the sender's clock in `Hello`, with an
//! unknown delay: it can tell a sender certainly ahead, no more.
//!
//! Pure: the clocks are passed in.

/// How far a peer's clock is from this node's, as measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockOffset {
    /// The peer's clock minus this node's, in milliseconds (positive: the
    /// peer is ahead).
    pub offset_ms: i64,
    /// How wrong `offset_ms` may be either way: half the round trip.
    pub uncertainty_ms: u64,
}

impl ClockOffset {
    /// The offset measured by a handshake: `sent_ms` and `received_ms` are
    /// this node's wall clock when its `Hello` left and when the `Welcome`
    /// came, `theirs_ms` the peer's wall clock in that `Welcome`.
    pub fn measure(sent_ms: u64, received_ms: u64, theirs_ms: u64) -> ClockOffset {
        let received_ms = received_ms.max(sent_ms);
        let round_trip = received_ms - sent_ms;
        let midpoint = i128::from(sent_ms) + i128::from(round_trip / 2);
        let offset = (i128::from(theirs_ms) - midpoint).clamp(i64::MIN.into(), i64::MAX.into());
        ClockOffset {
            offset_ms: offset as i64,
            uncertainty_ms: round_trip.div_ceil(2),
        }
    }

    /// Whether the clocks are certainly further apart than `bound_ms`,
    /// whatever the round trip hid.
    pub fn exceeds(&self, bound_ms: u64) -> bool {
        self.offset_ms.unsigned_abs() > bound_ms.saturating_add(self.uncertainty_ms)
    }

    /// The offset in words: "its clock is 7200000 ms ahead of this node's".
    pub fn describe(&self) -> String {
        let side = if self.offset_ms >= 0 {
            "ahead of"
        } else {
            "behind"
        };
        format!(
            "its clock is {} ms {side} this node's (±{} ms)",
            self.offset_ms.unsigned_abs(),
            self.uncertainty_ms
        )
    }
}

/// How far a sender whose `Hello` said `theirs_ms` is certainly ahead of
/// this node, whose clock read `received_ms` when it came: the message
/// took some time, so the sender is at least this much ahead. `None` when
/// it is not (or its clock was not said, a 0).
pub fn hello_ahead_ms(theirs_ms: u64, received_ms: u64) -> Option<u64> {
    (theirs_ms != 0 && theirs_ms > received_ms).then(|| theirs_ms - received_ms)
}

/// Why this node refuses writes, given the measured offsets of its peers
/// (address and offset, peers not measured left out), how many peers it
/// has in all, and the bound: off by more than the bound from a strict
/// majority of all its peers. `None` while it is not.
pub fn clock_refusal(
    measured: &[(&str, ClockOffset)],
    peers: usize,
    bound_ms: u64,
) -> Option<String> {
    let off: Vec<&(&str, ClockOffset)> = measured
        .iter()
        .filter(|(_, offset)| offset.exceeds(bound_ms))
        .collect();
    if off.len() * 2 <= peers.max(measured.len()) {
        return None;
    }
    let which: Vec<String> = off
        .iter()
        .map(|(addr, offset)| format!("peer {addr}: {}", offset.describe()))
        .collect();
    Some(format!(
        "writes refused: this node's clock is off by more than {bound_ms} ms \
         (--max-clock-offset-ms) from {} of its {} peers ({}); \
         fix the clock",
        off.len(),
        peers.max(measured.len()),
        which.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_is_measured_to_within_half_the_round_trip() {
        // Hello at 1000, Welcome back at 1010; the peer read 1005 + 2h.
        let o = ClockOffset::measure(1000, 1010, 7_201_005);
        assert_eq!((o.offset_ms, o.uncertainty_ms), (7_200_000, 5));
        assert!(o.exceeds(500));
        assert_eq!(
            o.describe(),
            "its clock is 7200000 ms ahead of this node's (±5 ms)"
        );
        let behind = ClockOffset::measure(7_201_000, 7_201_000, 1000);
        assert_eq!(behind.offset_ms, -7_200_000);
        assert!(behind.describe().contains("7200000 ms behind this node's"));
        // A wall clock that stepped back between the two reads.
        let o = ClockOffset::measure(1000, 900, 1000);
        assert_eq!((o.offset_ms, o.uncertainty_ms), (0, 0));
    }

    #[test]
    fn only_an_offset_certainly_over_the_bound_counts() {
        let at = |offset_ms, uncertainty_ms| ClockOffset {
            offset_ms,
            uncertainty_ms,
        };
        assert!(!at(500, 0).exceeds(500));
        assert!(at(501, 0).exceeds(500));
        assert!(at(-501, 0).exceeds(500));
        // A slow round trip could hide 100 ms either way.
        assert!(!at(600, 100).exceeds(500));
        assert!(at(601, 100).exceeds(500));
    }

    #[test]
    fn a_sender_is_certainly_ahead_only_by_what_its_hello_shows() {
        assert_eq!(hello_ahead_ms(5_000, 1_000), Some(4_000));
        assert_eq!(hello_ahead_ms(1_000, 5_000), None, "or late");
        assert_eq!(hello_ahead_ms(0, 5_000), None, "not said");
    }

    #[test]
    fn writes_are_refused_when_off_from_a_strict_majority_of_peers() {
        let ok = ClockOffset {
            offset_ms: 3,
            uncertainty_ms: 1,
        };
        let off = ClockOffset {
            offset_ms: -7_200_000,
            uncertainty_ms: 1,
        };
        assert_eq!(clock_refusal(&[], 0, 500), None, "alone: nothing to go by");
        // One peer: neither side can tell whose clock is wrong.
        let why = clock_refusal(&[("b:1", off)], 1, 500).expect("refused");
        assert_eq!(
            why,
            "writes refused: this node's clock is off by more than 500 ms \
             (--max-clock-offset-ms) from 1 of its 1 peers \
             (peer b:1: its clock is 7200000 ms behind this node's (±1 ms)); fix the clock"
        );
        // Three nodes, one clock off: the two that agree take writes.
        assert_eq!(clock_refusal(&[("b:1", off), ("c:1", ok)], 2, 500), None);
        assert!(clock_refusal(&[("b:1", off), ("c:1", off)], 2, 500).is_some());
        assert_eq!(clock_refusal(&[("b:1", ok)], 2, 500), None);
        // Of two peers only the odd one out measured yet (just after a
        // start): not a majority of the peers.
        assert_eq!(clock_refusal(&[("b:1", off)], 2, 500), None);
    }
}
