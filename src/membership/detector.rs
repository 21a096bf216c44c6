//! Failure detection, the pure half: from when a member was last heard
//! from and whether its last probe failed, how it looks now (pure: the
//! time is passed in).
//!
//! Each node probes every other member directly, every
//! [`probe_interval`] (a small `Gossip` exchange answered by the peer's
//! connection thread, never by its store thread, so a busy store does
//! not make a node look dead); a probe that fails is retried through up
//! to three other members (SWIM's indirect probe), and one of them
//! reaching it counts as hearing from it. A probe or a gossip that
//! comes in counts as hearing from its sender too. A member not heard from for half of
//! `--failure-timeout-ms`, or whose last probe failed, is *suspect*; one
//! not heard from for the whole timeout is *down*. Suspicion is local:
//! each node judges for itself and nothing of it is gossiped, so a
//! member need not refute anything, and one slow link makes one node
//! suspect, not the whole cluster.

use std::time::{Duration, Instant};

/// How a member looks to this node now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Heard from lately.
    Up,
    /// Its last probe failed, or it has been silent for half the timeout.
    Suspect,
    /// Silent for the whole timeout.
    Down,
}

impl Health {
    /// Its name, as `status` and `INFO` show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Suspect => "suspect",
            Health::Down => "down",
        }
    }
}

/// How often each member is probed, for a failure timeout of `timeout`:
/// five probes fit in it, at most one a second, at least one every 50 ms.
pub fn probe_interval(timeout: Duration) -> Duration {
    (timeout / 5).clamp(Duration::from_millis(50), Duration::from_secs(1))
}

/// What this node has heard of one member.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    /// When it was last heard from (or first known, before that).
    pub last_heard: Instant,
    /// Whether the last probe of it failed.
    pub failing: bool,
    /// The health last reported, and since when.
    pub shown: (Health, Instant),
}

impl Liveness {
    /// A member first known at `now`: given the benefit of the doubt.
    pub fn new(now: Instant) -> Liveness {
        Liveness {
            last_heard: now,
            failing: false,
            shown: (Health::Up, now),
        }
    }

    /// It was heard from at `now`.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = self.last_heard.max(now);
        self.failing = false;
    }

    /// A probe of it failed.
    pub fn probe_failed(&mut self) {
        self.failing = true;
    }

    /// How it looks at `now`, with `timeout` the failure timeout.
    pub fn health(&self, now: Instant, timeout: Duration) -> Health {
        let silent = now.saturating_duration_since(self.last_heard);
        if silent >= timeout {
            Health::Down
        } else if self.failing || silent >= timeout / 2 {
            Health::Suspect
        } else {
            Health::Up
        }
    }

    /// Updates the health shown to the one at `now`; returns the old one
    /// if it changed (for a log line), and the new one with since when.
    pub fn update(
        &mut self,
        now: Instant,
        timeout: Duration,
    ) -> (Option<Health>, (Health, Instant)) {
        let health = self.health(now, timeout);
        let old = self.shown.0;
        if health != old {
            self.shown = (health, now);
            return (Some(old), self.shown);
        }
        (None, self.shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_makes_a_member_suspect_then_down() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(5);
        let mut l = Liveness::new(t0);
        assert_eq!(l.health(t0 + Duration::from_secs(1), timeout), Health::Up);
        assert_eq!(
            l.health(t0 + Duration::from_millis(2500), timeout),
            Health::Suspect
        );
        assert_eq!(l.health(t0 + Duration::from_secs(5), timeout), Health::Down);
        l.heard(t0 + Duration::from_secs(5));
        assert_eq!(l.health(t0 + Duration::from_secs(5), timeout), Health::Up);
    }

    #[test]
    fn a_failed_probe_is_suspicion_not_death() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(5);
        let mut l = Liveness::new(t0);
        l.probe_failed();
        assert_eq!(l.health(t0, timeout), Health::Suspect);
        let (old, (now, _)) = l.update(t0, timeout);
        assert_eq!((old, now), (Some(Health::Up), Health::Suspect));
        assert_eq!(l.update(t0, timeout).0, None, "no news");
        l.heard(t0 + Duration::from_millis(10));
        assert_eq!(
            l.health(t0 + Duration::from_millis(10), timeout),
            Health::Up
        );
    }

    #[test]
    fn probes_fit_in_the_timeout() {
        assert_eq!(
            probe_interval(Duration::from_secs(5)),
            Duration::from_secs(1)
        );
        assert_eq!(
            probe_interval(Duration::from_secs(1)),
            Duration::from_millis(200)
        );
        assert_eq!(
            probe_interval(Duration::from_millis(10)),
            Duration::from_millis(50)
        );
    }
}
