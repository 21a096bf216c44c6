//! Waiting for a condition with a deadline: the one polling loop every
//! wait of the tests and benches goes through. Nothing else sleeps.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// How long a wait sleeps between two looks at its condition.
pub const POLL: Duration = Duration::from_millis(20);

/// Polls `condition` every [`POLL`] until it holds; panics after `within`,
/// naming `what` was awaited.
pub fn eventually(within: Duration, what: impl Display, mut condition: impl FnMut() -> bool) {
    eventually_ok(within, what, || if condition() { Ok(()) } else { Err("") });
}

/// Polls `check` every [`POLL`] until it gives `Ok`, and returns what it
/// gave; panics after `within`, naming `what` was awaited and what the
/// last `Err` said was seen instead.
pub fn eventually_ok<T, E: Display>(
    within: Duration,
    what: impl Display,
    check: impl FnMut() -> Result<T, E>,
) -> T {
    poll(within, POLL, what, check)
}

/// [`eventually_ok`], looking every `every`: for a bench that times how
/// long a condition takes to hold, and so looks more often.
pub fn poll<T, E: Display>(
    within: Duration,
    every: Duration,
    what: impl Display,
    mut check: impl FnMut() -> Result<T, E>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let seen = match check() {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        if Instant::now() >= deadline {
            let seen = seen.to_string();
            let seen = if seen.is_empty() {
                seen
            } else {
                format!("; last seen: {seen}")
            };
            panic!("timed out after {within:?} waiting for: {what}{seen}");
        }
        std::thread::sleep(every);
    }
}

/// Checks `check` every [`POLL`] for `period` (and at least once),
/// passing it how many checks came before: a property that must hold
/// throughout a period, which `check` asserts.
pub fn throughout(period: Duration, mut check: impl FnMut(usize)) {
    let end = Instant::now() + period;
    let mut done = 0;
    loop {
        check(done);
        done += 1;
        if Instant::now() >= end {
            return;
        }
        std::thread::sleep(POLL);
    }
}
