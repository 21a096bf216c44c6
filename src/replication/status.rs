//! What a node knows of its peers: how each one's last push went, as
//! `status` shows it, how far each one's clock is from this node's, which
//! entries turned out to be this node itself or
//! another live node using its name (and so whether it must refuse
//! writes), and which peers are pulling a transfer from this node right
//! now.
//!
//! The pushers write the table and the console and Redis `INFO` read it;
//! the store reads the [`WriteRefusal`]; the receivers record who they are
//! answering and the pushers ask. The clock is passed in: nothing here
//! reads it.

use crate::replication::anti_entropy::AntiEntropy;
use crate::replication::clocks::{clock_refusal, ClockOffset};
use crate::replication::error::SyncError;
use parking_lot::{Mutex, MutexGuard};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// This process's instance id: 64 random bits, drawn once, sent in every
/// `Welcome`. A peer that answers with this node's name and this id is
/// this node itself; with this node's name and another id, it is another
/// live node using the same name.
pub fn instance_id() -> u64 {
    static ID: OnceLock<u64> = OnceLock::new();
    *ID.get_or_init(|| {
        // std's RandomState is keyed from the OS's random source; the
        // process id only keeps two ids apart should that ever repeat.
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.finish()
    })
}

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
    /// Whether the address turned out to reach this node itself: such an
    /// entry is no peer, so `status` leaves it out and it holds back no
    /// tombstone.
    pub is_self: bool,
    /// Whether another live node using this node's name answers at the
    /// address: while one does, this node refuses writes.
    pub is_twin: bool,
    /// How far its clock is from this node's, as last measured on
    /// connecting; `None` until then, and after it could not be reached.
    pub clock: Option<ClockOffset>,
    /// Whether the last successful round ran over TLS.
    pub tls: bool,
    /// The member it is, once known (see [`crate::membership`]).
    pub member: Option<String>,
    /// Whether the entry was retired: its member is gone, or another
    /// entry reaches the same member. A retired entry also has `is_self`
    /// set, so that everything that leaves this node itself out (`status`,
    /// `WAIT`, the clock's vote) leaves it out too.
    pub retired: bool,
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
            is_self: false,
            is_twin: false,
            clock: None,
            tls: false,
            member: None,
            retired: false,
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
        let text = why.to_string();
        // A peer that was down and now fails authentication (the secret,
        // or a TLS certificate) is worth a line of its own: it says what
        // to fix.
        let became = self.reachable != Some(false)
            || (says_what_to_fix(why) && self.last_error.as_deref() != Some(&text));
        self.reachable = Some(false);
        self.last_error = Some(text);
        became
    }
}

/// Whether a failure says what to fix (a secret, a certificate), and so is
/// worth a line of its own even while the peer is known unreachable.
fn says_what_to_fix(why: &SyncError) -> bool {
    match why {
        SyncError::Auth(_) => true,
        SyncError::Io { source, .. } => source.get_ref().is_some_and(|e| e.is::<rustls::Error>()),
        _ => false,
    }
}

/// The status of every peer (by its index in the peers file, less this
/// node's own entries), shared by the pushers (writers), the console and
/// `INFO`; and the [`WriteRefusal`] that follows from it.
#[derive(Debug, Clone, Default)]
pub struct PeerTable {
    peers: Arc<Mutex<Vec<PeerStatus>>>,
    refusal: WriteRefusal,
    /// This node's name, for the refusal's text.
    name: Arc<str>,
    /// `--max-clock-offset-ms`.
    max_clock_offset_ms: u64,
    /// The anti-entropy counters, for `status`.
    anti_entropy: AntiEntropy,
    /// The member list, for `status`, `INFO` and `CLUSTER`.
    membership: Option<crate::membership::Membership>,
    /// Which partitions this node holds, for `status` and `INFO`.
    routing: Option<Arc<crate::routing::Routing>>,
}

impl PeerTable {
    /// A table of peers not tried yet, for the node called `name`, that
    /// sets `refusal` while another live node uses that name.
    pub fn new(name: &str, addrs: &[String], refusal: WriteRefusal) -> PeerTable {
        PeerTable {
            peers: Arc::new(Mutex::new(
                addrs.iter().map(|a| PeerStatus::new(a)).collect(),
            )),
            refusal,
            name: name.into(),
            max_clock_offset_ms: crate::core::hlc::DEFAULT_MAX_OFFSET_MS,
            anti_entropy: AntiEntropy::default(),
            membership: None,
            routing: None,
        }
    }

    /// The table, with the node's routing.
    pub fn with_routing(mut self, routing: Arc<crate::routing::Routing>) -> PeerTable {
        self.routing = Some(routing);
        self
    }

    /// The node's routing (none in a table made for a test).
    pub fn routing(&self) -> Option<&Arc<crate::routing::Routing>> {
        self.routing.as_ref()
    }

    /// The table, with the node's member list.
    pub fn with_membership(mut self, membership: crate::membership::Membership) -> PeerTable {
        self.membership = Some(membership);
        self
    }

    /// The node's member list (none in a table made for a test).
    pub fn membership(&self) -> Option<&crate::membership::Membership> {
        self.membership.as_ref()
    }

    /// Adds an entry for `addr`, of member `member` if known; its index
    /// is the table's length before.
    pub fn add_peer(&self, addr: &str, member: Option<&str>) {
        let mut entry = PeerStatus::new(addr);
        entry.member = member.map(str::to_owned);
        self.lock().push(entry);
    }

    /// Entry `index` is member `id`. `false` if another entry that is not
    /// retired is that member already: this one is then a second way to
    /// it, for the caller to retire.
    pub fn bind(&self, index: usize, id: &str) -> bool {
        let mut peers = self.lock();
        let elsewhere = peers
            .iter()
            .enumerate()
            .any(|(i, p)| i != index && !p.retired && p.member.as_deref() == Some(id));
        let Some(p) = peers.get_mut(index) else {
            return true;
        };
        if p.member.as_deref() == Some(id) {
            return true;
        }
        if elsewhere {
            return false;
        }
        p.member = Some(id.to_owned());
        true
    }

    /// Entry `index` is no longer known to be any member (its member is
    /// gone; whatever answers there next is bound anew).
    pub fn unbind(&self, index: usize) {
        if let Some(p) = self.lock().get_mut(index) {
            p.member = None;
        }
    }

    /// Retires entry `index` (see [`PeerStatus::retired`]).
    pub fn retire(&self, index: usize) {
        let mut peers = self.lock();
        if let Some(p) = peers.get_mut(index) {
            p.retired = true;
            p.is_self = true;
            p.is_twin = false;
            p.clock = None;
        }
        self.refusal.set(self.refusal_reason(&peers));
    }

    /// The member entry `index` is, if known.
    pub fn member_of(&self, index: usize) -> Option<String> {
        self.lock().get(index).and_then(|p| p.member.clone())
    }

    /// The entry, not retired, of member `id`.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.lock()
            .iter()
            .position(|p| !p.retired && p.member.as_deref() == Some(id))
    }

    /// An entry, not retired and of no known member yet, for `addr`: one
    /// spelled the same, or (resolving both) naming the same socket
    /// address, as `localhost:7001` does `127.0.0.1:7001`.
    pub fn unbound_at(&self, addr: &str) -> Option<usize> {
        use std::net::ToSocketAddrs;
        let unbound: Vec<(usize, String)> = self
            .lock()
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.retired && !p.is_self && p.member.is_none())
            .map(|(i, p)| (i, p.addr.clone()))
            .collect();
        if let Some((i, _)) = unbound.iter().find(|(_, a)| a == addr) {
            return Some(*i);
        }
        let resolve = |a: &str| -> Vec<std::net::SocketAddr> {
            a.to_socket_addrs()
                .map(Iterator::collect)
                .unwrap_or_default()
        };
        let wanted = resolve(addr);
        unbound
            .into_iter()
            .find(|(_, a)| resolve(a).iter().any(|s| wanted.contains(s)))
            .map(|(i, _)| i)
    }

    /// Takes clocks further apart than `ms` as off (see
    /// [`crate::replication::clocks`]).
    pub fn with_max_clock_offset_ms(mut self, ms: u64) -> PeerTable {
        self.max_clock_offset_ms = ms;
        self
    }

    /// The bound on clock offsets, in milliseconds.
    pub fn max_clock_offset_ms(&self) -> u64 {
        self.max_clock_offset_ms
    }

    /// The table, with `anti_entropy` as the counters `status` shows.
    pub fn with_anti_entropy(mut self, anti_entropy: AntiEntropy) -> PeerTable {
        self.anti_entropy = anti_entropy;
        self
    }

    /// The node's anti-entropy counters.
    pub fn anti_entropy(&self) -> &AntiEntropy {
        &self.anti_entropy
    }

    /// The entries, locked.
    pub fn lock(&self) -> MutexGuard<'_, Vec<PeerStatus>> {
        self.peers.lock()
    }

    /// The address of another live node using this node's name, if one
    /// answers now (the first, if several do).
    pub fn twin(&self) -> Option<String> {
        self.lock()
            .iter()
            .find(|p| p.is_twin)
            .map(|p| p.addr.clone())
    }

    /// Whether entry `index` turned out to be this node itself.
    pub fn is_self(&self, index: usize) -> bool {
        self.lock().get(index).is_some_and(|p| p.is_self)
    }

    /// How many entries are peers (not this node itself).
    pub fn peer_count(&self) -> usize {
        self.lock().iter().filter(|p| !p.is_self).count()
    }

    /// Records that entry `index` is this node itself.
    pub fn record_self(&self, index: usize) {
        if let Some(p) = self.lock().get_mut(index) {
            p.is_self = true;
            p.reachable = None;
            p.last_error = None;
        }
    }

    /// Records whether another live node using this node's name answers at
    /// entry `index`, and refuses or allows writes to match; returns
    /// whether that changed.
    pub fn record_twin(&self, index: usize, is_twin: bool) -> bool {
        let mut peers = self.lock();
        let Some(p) = peers.get_mut(index) else {
            return false;
        };
        let changed = p.is_twin != is_twin;
        p.is_twin = is_twin;
        self.refusal.set(self.refusal_reason(&peers));
        changed
    }

    /// Records how far entry `index`'s clock is from this node's (`None`:
    /// not known, as after it could not be reached), and refuses or allows
    /// writes to match; returns whether the peer's clock was off before
    /// and whether it is now.
    pub fn record_clock(&self, index: usize, clock: Option<ClockOffset>) -> (bool, bool) {
        let bound = self.max_clock_offset_ms;
        let mut peers = self.lock();
        let Some(p) = peers.get_mut(index) else {
            return (false, false);
        };
        let is_off = |c: &Option<ClockOffset>| c.is_some_and(|c| c.exceeds(bound));
        let was = is_off(&p.clock);
        p.clock = clock;
        let now = is_off(&p.clock);
        self.refusal.set(self.refusal_reason(&peers));
        (was, now)
    }

    /// Whether entry `index`'s clock was off by more than the bound when
    /// last measured.
    pub fn is_clock_off(&self, index: usize) -> bool {
        let bound = self.max_clock_offset_ms;
        self.lock()
            .get(index)
            .and_then(|p| p.clock)
            .is_some_and(|c| c.exceeds(bound))
    }

    /// Why this node must refuse writes, given its peers: another live
    /// node using its name, or a clock off from most of its peers'.
    fn refusal_reason(&self, peers: &[PeerStatus]) -> Option<String> {
        match peers.iter().find(|p| p.is_twin) {
            Some(twin) => Some(twin_refusal(&self.name, &twin.addr)),
            None => self.clock_refusal_of(peers),
        }
    }

    /// Why this node's clock makes it refuse writes, if it does: off by
    /// more than the bound from most of its peers.
    pub fn clock_refusal(&self) -> Option<String> {
        self.clock_refusal_of(&self.lock())
    }

    fn clock_refusal_of(&self, peers: &[PeerStatus]) -> Option<String> {
        let counted: Vec<&PeerStatus> = peers.iter().filter(|p| !p.is_self && !p.is_twin).collect();
        let measured: Vec<(&str, ClockOffset)> = counted
            .iter()
            .filter_map(|p| Some((p.addr.as_str(), p.clock?)))
            .collect();
        clock_refusal(&measured, counted.len(), self.max_clock_offset_ms)
    }

    /// The refusal this table sets.
    pub fn refusal(&self) -> &WriteRefusal {
        &self.refusal
    }
}

/// Why writes are refused while another live node at `addr` uses this
/// node's name `name`.
pub fn twin_refusal(name: &str, addr: &str) -> String {
    format!(
        "writes refused: another live node at {addr} uses this node's name '{name}'; \
         give one of them another name"
    )
}

/// Why writes are refused while a live node connecting from `from` (an
/// address this node does not dial, so only the connection's source is
/// known) uses this node's name `name`.
pub fn unlisted_twin_refusal(name: &str, from: &str) -> String {
    format!(
        "writes refused: another live node, connecting from {from}, uses this node's name \
         '{name}'; give one of them another name"
    )
}

/// Whether this node must refuse local writes now, and why: set by the
/// pushers while another live node uses this node's name or this node's
/// clock is off from most of its peers' (see
/// [`crate::replication::clocks`]), read by the
/// store on every write (one atomic load while writes are allowed).
#[derive(Debug, Clone, Default)]
pub struct WriteRefusal {
    refused: Arc<AtomicBool>,
    why: Arc<Mutex<Option<String>>>,
    /// Set while a twin that this node does not dial has connected to it
    /// lately (see [`Self::note_unlisted_twin`]).
    twin_lately: Arc<AtomicBool>,
    /// That twin's refusal text and when it last connected.
    twin: Arc<Mutex<Option<(String, Instant)>>>,
}

/// How long a twin that only connects to this node (this node does not
/// list it) keeps this node's writes refused after its last connection: a
/// live one connects every sync round.
pub const UNLISTED_TWIN_QUIET: Duration = Duration::from_secs(10);

impl WriteRefusal {
    /// Why writes are refused, or `None` while they are allowed.
    pub fn why(&self) -> Option<String> {
        if self.refused.load(Ordering::Acquire) {
            return self.why.lock().clone();
        }
        if !self.twin_lately.load(Ordering::Acquire) {
            return None;
        }
        let mut twin = self.twin.lock();
        match twin.as_ref() {
            Some((why, at)) if at.elapsed() < UNLISTED_TWIN_QUIET => Some(why.clone()),
            _ => {
                *twin = None;
                self.twin_lately.store(false, Ordering::Release);
                None
            }
        }
    }

    /// Whether writes are refused now.
    pub fn is_refused(&self) -> bool {
        self.why().is_some()
    }

    /// A node using this node's name connected to it (one this node does
    /// not dial, or whose address reaches it another way): writes are
    /// refused, for `why`, until it has not connected for
    /// [`UNLISTED_TWIN_QUIET`].
    pub fn note_unlisted_twin(&self, why: String) {
        *self.twin.lock() = Some((why, Instant::now()));
        self.twin_lately.store(true, Ordering::Release);
    }

    fn set(&self, why: Option<String>) {
        let mut held = self.why.lock();
        self.refused.store(why.is_some(), Ordering::Release);
        *held = why;
    }
}

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
    fn a_twin_refuses_writes_until_it_is_gone() {
        let refusal = WriteRefusal::default();
        let addrs = ["h:1".to_string(), "h:2".to_string()];
        let table = PeerTable::new("n", &addrs, refusal.clone());
        assert_eq!((table.twin(), refusal.why()), (None, None));
        assert!(table.record_twin(1, true), "news");
        assert!(!table.record_twin(1, true), "no news");
        assert_eq!(table.twin().as_deref(), Some("h:2"));
        let why = refusal.why().expect("refused");
        assert!(why.contains("another live node at h:2"), "{why}");
        assert!(why.contains("'n'"), "{why}");
        assert!(table.record_twin(0, true));
        assert!(table.record_twin(1, false));
        assert!(refusal.why().expect("h:1 still").contains("h:1"));
        assert!(table.record_twin(0, false));
        assert_eq!((table.twin(), refusal.why()), (None, None));
        assert!(!refusal.is_refused());
    }

    #[test]
    fn an_entry_that_is_this_node_is_no_peer() {
        let addrs = ["h:1".to_string(), "h:2".to_string()];
        let table = PeerTable::new("n", &addrs, WriteRefusal::default());
        table.lock()[1].record_failure(&SyncError::Hangup);
        table.record_self(1);
        assert!(table.is_self(1) && !table.is_self(0));
        assert_eq!(table.peer_count(), 1);
        assert_eq!(table.lock()[1].reachable, None, "not shown as unreachable");
    }

    #[test]
    fn a_clock_off_from_the_only_peer_refuses_writes_until_it_is_back() {
        let refusal = WriteRefusal::default();
        let addrs = ["h:1".to_string()];
        let table = PeerTable::new("n", &addrs, refusal.clone()).with_max_clock_offset_ms(500);
        let off = ClockOffset {
            offset_ms: 7_200_000,
            uncertainty_ms: 1,
        };
        let fine = ClockOffset {
            offset_ms: -20,
            uncertainty_ms: 1,
        };
        assert_eq!(table.record_clock(0, Some(off)), (false, true));
        assert!(table.is_clock_off(0));
        let why = refusal.why().expect("refused");
        assert!(why.contains("off by more than 500 ms"), "{why}");
        assert!(
            why.contains("peer h:1: its clock is 7200000 ms ahead"),
            "{why}"
        );
        // A twin's refusal says so first; the clock's comes back after.
        table.record_twin(0, true);
        assert!(refusal.why().expect("twin").contains("another live node"));
        table.record_twin(0, false);
        assert!(refusal.why().expect("clock").contains("clock"));
        assert_eq!(table.record_clock(0, Some(fine)), (true, false));
        assert_eq!(refusal.why(), None);
        // Not reachable: its clock is not known, and counts for nothing.
        table.record_clock(0, Some(off));
        table.record_clock(0, None);
        assert_eq!(refusal.why(), None);
    }

    #[test]
    fn the_instance_id_is_drawn_once() {
        assert_eq!(instance_id(), instance_id());
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

    #[test]
    fn a_refused_certificate_is_news_even_while_unreachable() {
        let mut peer = PeerStatus::new("h:1");
        let refused = || {
            let e = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
            SyncError::from(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        };
        assert!(peer.record_failure(&SyncError::Hangup), "first failure");
        assert!(peer.record_failure(&refused()), "now a certificate");
        assert!(!peer.record_failure(&refused()), "the same again");
        assert!(peer
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("certificate")));
    }
}
