//! A reply slot that one thread reuses for every request it makes of the
//! store thread.
//!
//! A Redis client connection asks the store thread something once per
//! batch and waits for the answer, typically a few microseconds. A channel
//! made for each call allocates each time, and a channel's blocking
//! receive sleeps after a handful of yields, so that under load most
//! answers have to wake their connection thread with a system call from
//! the one store thread, which every client is waiting on. A [`ReplySlot`]
//! is made once per connection; each request carries an [`Answer`] into
//! it, and the waiting thread yields its core (to the store thread and the
//! other connections) up to [`YIELDS`] times, looking for the answer after
//! each, before it sleeps until the answer (or the answer being dropped
//! unsent) wakes it.
//!
//! A slot serves one request at a time, and only the thread that made it
//! may wait on it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, Thread};

/// How many times a waiter yields its core before it sleeps.
pub const YIELDS: u32 = 128;

enum State<T> {
    /// No answer yet.
    Waiting,
    /// The answer, not yet taken.
    Ready(T),
    /// The answer was dropped unsent: the store thread is gone.
    Dropped,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// The thread that waits on the slot.
    waiter: Thread,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // The lock guards a plain enum: a panic elsewhere cannot leave it
        // half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn finish(&self, state: State<T>) {
        *self.lock() = state;
        self.waiter.unpark();
    }
}

/// The receiving half: made once, waited on once per request.
pub struct ReplySlot<T> {
    shared: Arc<Shared<T>>,
}

/// The sending half for one request: [`Answer::send`] fills the slot;
/// dropping it unsent wakes the waiter with nothing.
pub struct Answer<T> {
    shared: Option<Arc<Shared<T>>>,
}

impl<T> ReplySlot<T> {
    /// A slot that the current thread will wait on.
    pub fn new() -> ReplySlot<T> {
        ReplySlot {
            shared: Arc::new(Shared {
                state: Mutex::new(State::Waiting),
                waiter: thread::current(),
            }),
        }
    }

    /// The sending half for the next request. Call [`wait`](Self::wait)
    /// before asking for another.
    pub fn answer(&self) -> Answer<T> {
        *self.shared.lock() = State::Waiting;
        Answer {
            shared: Some(Arc::clone(&self.shared)),
        }
    }

    /// Waits until the answer arrives; `None` if it was dropped unsent.
    pub fn wait(&self) -> Option<T> {
        debug_assert_eq!(thread::current().id(), self.shared.waiter.id());
        let mut yields = 0;
        loop {
            // Taken in a statement of its own, so that the lock is
            // released before yielding or parking.
            let state = std::mem::replace(&mut *self.shared.lock(), State::Waiting);
            match state {
                State::Ready(value) => return Some(value),
                State::Dropped => return None,
                State::Waiting if yields < YIELDS => {
                    yields += 1;
                    thread::yield_now();
                }
                // Parking may end early (an unpark left over from an
                // earlier answer, or a spurious wake-up): look again.
                State::Waiting => thread::park(),
            }
        }
    }
}

impl<T> Default for ReplySlot<T> {
    fn default() -> ReplySlot<T> {
        ReplySlot::new()
    }
}

impl<T> Answer<T> {
    /// Fills the slot and wakes its waiter.
    pub fn send(mut self, value: T) {
        if let Some(shared) = self.shared.take() {
            shared.finish(State::Ready(value));
        }
    }
}

impl<T> Drop for Answer<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.finish(State::Dropped);
        }
    }
}

impl<T> std::fmt::Debug for Answer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Answer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_answer_sent_before_the_wait_is_there() {
        let slot = ReplySlot::new();
        slot.answer().send(7);
        assert_eq!(slot.wait(), Some(7));
    }

    #[test]
    fn the_waiter_wakes_for_an_answer_from_another_thread() {
        let slot = ReplySlot::new();
        for i in 0..100 {
            let answer = slot.answer();
            let sender = thread::spawn(move || {
                // Half the answers come after the waiter has gone to sleep.
                if i % 2 == 0 {
                    thread::sleep(Duration::from_millis(1));
                }
                answer.send(i);
            });
            assert_eq!(slot.wait(), Some(i));
            sender.join().expect("sender");
        }
    }

    #[test]
    fn a_dropped_answer_wakes_the_waiter_with_nothing() {
        let slot: ReplySlot<u32> = ReplySlot::new();
        let answer = slot.answer();
        let dropper = thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            drop(answer);
        });
        assert_eq!(slot.wait(), None);
        dropper.join().expect("dropper");
    }

    #[test]
    fn a_slot_is_reused_after_a_dropped_answer() {
        let slot = ReplySlot::new();
        drop(slot.answer());
        assert_eq!(slot.wait(), None);
        slot.answer().send("again");
        assert_eq!(slot.wait(), Some("again"));
    }
}
