//! The sync thread, which starts rounds.
//!
//! A round starts when the node starts, soon after a local write (the
//! store thread pokes the sync thread; writes that arrive together share
//! one round) and at least every interval. The thread only asks the
//! pushers for a push; it never waits for one, so a slow peer delays no
//! round of the others.

use crate::engine::StoreHandle;
use crate::error::{Error, Result};
use crate::replication::pusher::Pushers;
use crossbeam_channel::{select, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Starts the sync thread: a round at once (a node that starts empty gets
/// its peers' data without waiting an interval), a round soon after each
/// poke on `written`, and one every `interval` (which also collects
/// tombstones), until `stop` is sent to or dropped.
pub fn spawn_ticker(
    pushers: Arc<Pushers>,
    store: StoreHandle,
    interval: Duration,
    written: Receiver<()>,
    stop: Receiver<()>,
) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("netdb-sync".into())
        .spawn(move || {
            let mut next_tick = Instant::now() + interval;
            if pushers.start_round().is_err() {
                return;
            }
            loop {
                let wait = next_tick.saturating_duration_since(Instant::now());
                select! {
                    recv(stop) -> _ => return,
                    recv(written) -> poke => {
                        if poke.is_err() || pushers.start_round().is_err() {
                            return;
                        }
                    }
                    default(wait) => {
                        next_tick = Instant::now() + interval;
                        if pushers.start_round().is_err() || store.collect_tombstones().is_err() {
                            return;
                        }
                    }
                }
            }
        })
        .map_err(|source| Error::Io {
            context: "cannot start the sync thread",
            source,
        })
}
