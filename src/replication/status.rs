//! What a node knows of its peers: how each one's last push went, as
//! `status` shows it, and which peers are pulling a transfer from this
//! node right now.
//!
//! The pushers write the table and the console and Redis `INFO` read it;
//! the receivers record who they are answering and the pushers ask. The
//! clock is passed in: nothing here reads it.

use crate::replication::error::SyncError;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::SystemTime;

/// What `status` shows of one peer's connection.
#[derive(Debug, Clone)]
pub struct PeerStatus {
    /// The peer as written in the peers file.
    pub addr: String,
    /// Whether the last push succeeded; `None` before the first try.
    pub reachable: Option<bool>,
    /// When a push last succeeded.
    pub last_sync: Option<SystemTime>,
    /// Why the last push failed, as shown.
    pub last_error: Option<String>,
    /// Bytes sent in the last successful round.
    pub last_round_bytes: usize,
}

impl PeerStatus {
    /// A peer not tried yet.
    pub fn new(addr: &str) -> PeerStatus {
        PeerStatus {
            addr: addr.to_owned(),
            reachable: None,
            last_sync: None,
            last_error: None,
            last_round_bytes: 0,
        }
    }

    /// Records a push that sent `bytes` and was acknowledged at `now`;
    /// returns whether the peer was not known reachable before.
    pub fn record_sync(&mut self, bytes: usize, now: SystemTime) -> bool {
        let became = self.reachable != Some(true);
        self.reachable = Some(true);
        self.last_sync = Some(now);
        self.last_error = None;
        self.last_round_bytes = bytes;
        became
    }

    /// Records a push that failed; returns whether the peer was not known
    /// unreachable before.
    pub fn record_failure(&mut self, why: &SyncError) -> bool {
        let became = self.reachable != Some(false);
        self.reachable = Some(false);
        self.last_error = Some(why.to_string());
        became
    }
}

/// The status of every peer, shared by the pushers (writers) and the CLI.
pub type PeerTable = Arc<Mutex<Vec<PeerStatus>>>;

/// The peers (by name) this node is answering with a transfer of several
/// parts right now, shared by the receivers that answer and the pushers.
///
/// A node that starts empty pulls everything from its peers in its first
/// round, and those peers' own rounds, coming meanwhile, would push it the
/// same data again: a second full transfer, as large as the first, into a
/// node still busy merging the first. So a pusher whose peer is pulling
/// such a transfer from this node leaves that round to the pull.
#[derive(Debug, Default)]
pub struct Answering {
    peers: Mutex<Vec<String>>,
}

impl Answering {
    /// Records that `peer` is being answered until the guard is dropped.
    pub fn begin(self: &Arc<Self>, peer: &str) -> AnsweringGuard {
        self.peers.lock().push(peer.to_owned());
        AnsweringGuard {
            answering: Arc::clone(self),
            peer: peer.to_owned(),
        }
    }

    /// Whether `peer` is being answered with a transfer now.
    pub fn is_answering(&self, peer: &str) -> bool {
        self.peers.lock().iter().any(|p| p == peer)
    }
}

/// Ends one [`Answering::begin`] when dropped.
pub struct AnsweringGuard {
    answering: Arc<Answering>,
    peer: String,
}

impl Drop for AnsweringGuard {
    fn drop(&mut self) {
        let mut peers = self.answering.peers.lock();
        if let Some(i) = peers.iter().position(|p| *p == self.peer) {
            peers.swap_remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_peer_is_answering_while_one_of_its_guards_lives() {
        let answering = Arc::new(Answering::default());
        assert!(!answering.is_answering("b"));
        let first = answering.begin("b");
        let second = answering.begin("b");
        let other = answering.begin("c");
        assert!(answering.is_answering("b"));
        drop(first);
        assert!(answering.is_answering("b"), "one answer to b goes on");
        drop(second);
        assert!(!answering.is_answering("b"));
        assert!(answering.is_answering("c"));
        drop(other);
        assert!(!answering.is_answering("c"));
    }

    #[test]
    fn only_a_change_of_reachability_is_news() {
        let mut peer = PeerStatus::new("h:1");
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(9);
        assert!(peer.record_failure(&SyncError::Hangup), "first failure");
        assert!(!peer.record_failure(&SyncError::Stopped), "still failing");
        assert_eq!(peer.last_error.as_deref(), Some("node shutting down"));
        assert!(peer.record_sync(7, at), "back");
        assert!(!peer.record_sync(8, at), "still reachable");
        assert_eq!(peer.last_error, None);
        assert_eq!((peer.last_sync, peer.last_round_bytes), (Some(at), 8));
    }
}
