//! The sync thread, which starts rounds.
//!
//! A round starts when the node starts, at least every interval, and
//! after each local write: that one the store thread starts itself, once
//! the write is logged (writes that arrive while a round is queued share
//! it). The thread only asks the pushers for a push; it never waits for
//! one, so a slow peer delays no round of the others.

use crate::engine::StoreHandle;
use crate::error::{Error, Result};
use crate::replication::pusher::Pushers;
use crossbeam_channel::{select, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Starts the sync thread: a round at once (a node that starts empty gets
/// its peers' data without waiting an interval), and one every `interval`
/// (which also collects tombstones), until `stop` is sent to or dropped.
pub fn spawn_ticker(
    pushers: Arc<Pushers>,
    store: StoreHandle,
    interval: Duration,
    stop: Receiver<()>,
    routing: Arc<crate::routing::Routing>,
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
                    default(wait) => {
                        next_tick = Instant::now() + interval;
                        if pushers.start_round().is_err() || store.collect_tombstones().is_err() {
                            return;
                        }
                        if routing.is_sharded()
                            && routing.stable_for() >= crate::routing::HANDOFF_AFTER_STABLE
                            && store.drop_released(routing.held(), pushers.peer_partitions()).is_err()
                        {
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
