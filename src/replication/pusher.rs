//! The sending half of the protocol: one pusher thread per peer.
//!
//! The peers are the entries of the peers file and of `--join`, and, on a
//! node that follows the member list (see [`Pushers::spawn`]), every
//! member the list brings: a pusher (and a prober, see
//! [`crate::replication::prober`]) is added when a member appears and
//! retired when it is gone, and the store's acknowledgements follow (a
//! retired peer holds back no tombstone).
//!
//! In a round each pusher sends its peer every entry above the peer's last
//! acknowledged version vector, in bounded parts, and merges what the peer
//! sends back (see [`crate::replication::wire`] for the exchange). An idle
//! round costs two small vectors.
//!
//! Each pusher owns its peer's connection (kept open, re-opened after a
//! failure) and has timeouts on connect, read and write, so a peer that is
//! down, slow or silent delays only its own pusher. A pusher still busy
//! when more rounds start serves them all with one push.
//!
//! The handshake also tells who answers (see [`who_answered`]). An address
//! that reaches this node itself (a spelling of it the peers file check
//! could not know) is dropped from the peer set with one log line: its
//! pusher only acknowledges this node's own vector each round, so it holds
//! back no tombstone, and `status` leaves it out. Another live node using
//! this node's name is a twin: this node refuses writes (through the
//! [`WriteRefusal`] of the peer
//! table) until the twin has not answered for [`TWIN_GONE_ROUNDS`] rounds.
//!
//! The peer's vector in the `Welcome` is checked against what this node
//! has issued of its own writer (see [`StoreHandle::check_history`]): a
//! node whose data went back in time takes a new identity, and then every
//! pusher makes one full round, which brings back what it lost.
//!
//! The handshake also measures how far the peer's clock is from this
//! node's (see [`crate::replication::clocks`]); a clock off by more than
//! `--max-clock-offset-ms` is logged at error, and while it is, the
//! connection is opened afresh each round, so the next handshake sees
//! the clock fixed.

use crate::engine::StoreHandle;
use crate::error::Error;
use crate::membership::{Membership, State};
use crate::placement::partition::partition_of_writer;
use crate::replication::anti_entropy::{AntiEntropy, RepairPlan};
use crate::replication::auth::{AuthError, ClusterSecret};
use crate::replication::clocks::ClockOffset;
use crate::replication::connection::{dial_tls, Connection, PeerStream};
use crate::replication::error::{ProtocolError, Result, SyncError};
use crate::replication::status::{instance_id, Answering, PeerTable, WriteRefusal};
use crate::replication::transfer::{part_bytes, report_overclaims, Merges, Parts, PARTS_IN_FLIGHT};
use crate::replication::vectors::VectorLink;
use crate::replication::wire::{
    DoneRef, Message, MessageKind, MessageRef, Summary, WireVv, PROTOCOL_VERSION,
};
use crate::store::{joinable, within, PartitionSet, Shown};
use crossbeam_channel::{bounded, Receiver, SendTimeoutError, Sender, TrySendError};
use parking_lot::Mutex;
use rustls::ClientConfig;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Timeouts and limits for outgoing pushes.
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// The least time from the end of one push to the start of the next
    /// one a write starts (see [`Pusher::run`]): [`PUSH_GAP`], or none
    /// when clients wait for their writes to reach other replicas
    /// (`--write-replicas`).
    pub push_gap: Duration,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for each read and write.
    pub io_timeout: Duration,
    /// Largest frame accepted in an answer.
    pub max_frame: usize,
    /// The peers this node's connections are answering with a transfer.
    pub answering: Arc<Answering>,
    /// Set while another live node uses this node's name, or this node's
    /// clock is off from most of its peers'.
    pub refusal: WriteRefusal,
    /// `--max-clock-offset-ms`.
    pub max_clock_offset_ms: u64,
    /// Which partitions this node and its peers hold (see
    /// [`crate::routing`]).
    pub routing: Arc<crate::routing::Routing>,
    /// The node's anti-entropy counters, shared with its receivers.
    pub anti_entropy: AntiEntropy,
    /// The cluster secret (`--cluster-secret-file`): with one, every
    /// connection is authenticated and its frames sealed (see
    /// [`crate::replication::auth`]).
    pub secret: Option<ClusterSecret>,
    /// With peer TLS (a certificate, its key and a CA), what connections
    /// to peers are made with: every one is TLS, the peer's certificate
    /// checked against the CA and this node's shown (see
    /// [`crate::tls::ServerTls::peer_dialing`]).
    pub tls: Option<Arc<ClientConfig>>,
    /// The member list: what the handshake says of this node, and what
    /// the pushers follow.
    pub membership: Membership,
}

/// Rounds in a row in which a twin (another live node using this node's
/// name) must not answer before this node takes writes again: one missed
/// round may be a blip.
pub const TWIN_GONE_ROUNDS: u32 = 3;

/// Who answered a pusher's `Hello`, told by the name and instance id in
/// the `Welcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answerer {
    /// A node of another name: a peer.
    Peer,
    /// This very process: the address reaches this node.
    Myself,
    /// Another process using this node's name.
    Twin,
}

/// Who answered, given this node's name and instance id and the ones in
/// the `Welcome`.
pub fn who_answered(ours: (&str, u64), theirs: (&str, u64)) -> Answerer {
    match (ours.0 == theirs.0, ours.1 == theirs.1) {
        (false, _) => Answerer::Peer,
        (true, true) => Answerer::Myself,
        (true, false) => Answerer::Twin,
    }
}

/// A request for one push; `done` hears whether the peer acknowledged.
struct Job {
    done: Option<Sender<bool>>,
}

/// The least time from the end of one push to a peer to the start of the
/// next one a write starts, by default (see [`Pusher::run`]).
pub const PUSH_GAP: Duration = Duration::from_millis(1);

/// One peer a node pushes to: an entry of the peers file or of `--join`
/// (whose member id is learned on the first gossip), or a member the
/// list brought. Its index is its index in the peer table and in the
/// store's acknowledgements, and never changes; a retired slot (its
/// member gone, or found to be another slot's member) keeps its index
/// and has no thread.
struct Slot {
    addr: String,
    /// Made for a member the list brought (not a peers-file or `--join`
    /// address): it follows the member's announced address.
    from_list: bool,
    jobs: Option<Sender<Job>>,
    /// Dropped to stop the slot's prober (which waits on its receiver
    /// between probes, so it ends at once).
    stop: Option<Sender<()>>,
}

/// The pushers of a node, one per peer, following the member list: a way
/// to start a round, and to add and retire peers as members come and go.
pub struct Pushers {
    slots: Mutex<Vec<Slot>>,
    /// Whether the peer set follows the member list (see
    /// [`Pushers::spawn`]).
    dynamic: AtomicBool,
    table: PeerTable,
    name: String,
    store: StoreHandle,
    settings: PushSettings,
}

impl Pushers {
    /// Starts one pusher (and one prober) per peer address, and, if
    /// `dynamic`, one per member of the list that no address names; peer
    /// `i` is listed peer `i` of the store. The node installs
    /// [`Pushers::follow_members`] as the member list's change hook.
    ///
    /// A node is `dynamic` unless it was started with a peers file and no
    /// `--join`: such a node pushes to the entries of its file only, as
    /// before membership (the operator chose its peers), though it gossips
    /// and shows the members all the same. A `CLUSTER MEET` makes it
    /// dynamic.
    pub fn spawn(
        name: &str,
        peers: Vec<String>,
        dynamic: bool,
        store: StoreHandle,
        settings: PushSettings,
    ) -> crate::error::Result<Pushers> {
        let table = PeerTable::new(name, &[], settings.refusal.clone())
            .with_max_clock_offset_ms(settings.max_clock_offset_ms)
            .with_anti_entropy(settings.anti_entropy.clone())
            .with_membership(settings.membership.clone())
            .with_routing(Arc::clone(&settings.routing));
        let pushers = Pushers {
            slots: Mutex::new(Vec::new()),
            dynamic: AtomicBool::new(dynamic),
            table,
            name: name.to_owned(),
            store,
            settings,
        };
        {
            let mut slots = pushers.slots.lock();
            for addr in peers {
                pushers.add_slot(&mut slots, addr, None, false)?;
            }
        }
        pushers.follow_members();
        Ok(pushers)
    }

    /// Starts the threads of a new slot at the end of `slots`, for
    /// `member` if known. `add_to_store`: the store must start tracking
    /// it (else it does already, from `Store::with_peers`). The slot is
    /// added even if a thread cannot start (without threads), so that
    /// indexes stay those of the table and the store.
    fn add_slot(
        &self,
        slots: &mut Vec<Slot>,
        addr: String,
        member: Option<String>,
        add_to_store: bool,
    ) -> crate::error::Result<()> {
        let index = slots.len();
        if add_to_store {
            self.store.add_peer(index)?;
        }
        self.table.add_peer(&addr, member.as_deref());
        if let Some(id) = &member {
            self.settings.membership.watch(id, Instant::now());
        }
        let (tx, rx) = bounded(8);
        let (stop, stopped) = bounded(0);
        let pusher = Pusher {
            index,
            addr: addr.clone(),
            name: self.name.clone(),
            store: self.store.clone(),
            table: self.table.clone(),
            settings: self.settings.clone(),
            conn: None,
            left_to_pull: false,
            rounds: 0,
            twin_absent: 0,
            repair: RepairPlan::default(),
            renewals_seen: 0,
            last_try: None,
        };
        let started = std::thread::Builder::new()
            .name(format!("netdb-push-{addr}"))
            .spawn(move || pusher.run(rx))
            .map_err(|source| Error::Io {
                context: "cannot start a pusher thread",
                source,
            })
            .and_then(|_| {
                crate::replication::prober::spawn(
                    index,
                    addr.clone(),
                    self.settings.clone(),
                    self.table.clone(),
                    stopped,
                )
            });
        slots.push(Slot {
            addr,
            from_list: member.is_some(),
            jobs: Some(tx),
            stop: Some(stop),
        });
        if started.is_err() {
            if let Some(slot) = slots.last_mut() {
                self.retire(slot, index);
            }
        }
        started
    }

    /// Retires slot `index`: its threads end, its acknowledgements stop
    /// holding back tombstones, `status` no longer shows it.
    fn retire(&self, slot: &mut Slot, index: usize) {
        if slot.jobs.take().is_none() {
            return;
        }
        slot.stop = None;
        self.table.retire(index);
        let _ = self.store.forget_peer(index);
    }

    /// Makes the slots follow the member list: a slot for every member
    /// that is not gone (an address slot not yet bound to a member id
    /// takes the member at its address), none for a gone one. Called at
    /// the start and after every change of the list.
    pub fn follow_members(&self) {
        let membership = &self.settings.membership;
        let me = membership.my_id();
        let mut slots = self.slots.lock();
        for addr in membership.take_meets() {
            self.dynamic.store(true, Ordering::SeqCst);
            let known = self
                .table
                .lock()
                .iter()
                .any(|p| !p.retired && p.addr == addr);
            if known {
                continue;
            }
            log::info!("joining through {addr} (CLUSTER MEET)");
            if let Err(e) = self.add_slot(&mut slots, addr.clone(), None, true) {
                log::error!("cannot add a pusher for {addr}: {e}");
            }
        }
        for member in membership.records() {
            if member.id == me {
                continue;
            }
            if member.state.is_gone() {
                for (index, slot) in slots.iter_mut().enumerate() {
                    if self.table.member_of(index).as_deref() != Some(member.id.as_str()) {
                        continue;
                    }
                    if slot.from_list || self.is_dynamic() {
                        self.retire(slot, index);
                    } else {
                        // A peers-file entry of a static node stays: what
                        // answers there next (a restarted node under a new
                        // id) is bound by its next probe.
                        self.table.unbind(index);
                    }
                }
                continue;
            }
            if !self.is_dynamic() {
                // A node started with a peers file and no --join pushes to
                // the entries of its file, as before membership.
                continue;
            }
            if let Some(index) = self.table.index_of(&member.id) {
                // (An address from the peers file or --join that reaches
                // the member is as good as the one it announces.)
                let moved = slots.get(index).is_some_and(|s| s.from_list)
                    && self.table.lock()[index].addr != member.addr;
                if !moved {
                    continue;
                }
                // It came back at another address (a higher incarnation
                // says so): a slot for the new one replaces the old.
                log::info!(
                    "member {} ({}) is now at {}",
                    member.name,
                    member.id,
                    member.addr
                );
                if let Some(slot) = slots.get_mut(index) {
                    self.retire(slot, index);
                }
            }
            if let Some(index) = self.table.unbound_at(&member.addr) {
                self.table.bind(index, &member.id);
                membership.watch(&member.id, Instant::now());
                continue;
            }
            log::info!(
                "member {} ({}) at {}: pushing to it",
                member.name,
                member.id,
                member.addr
            );
            if let Err(e) = self.add_slot(&mut slots, member.addr.clone(), Some(member.id), true) {
                log::error!("cannot add a pusher for {}: {e}", member.addr);
            }
        }
    }

    /// Whether the peer set follows the member list.
    fn is_dynamic(&self) -> bool {
        self.dynamic.load(Ordering::SeqCst)
    }

    /// The member list the pushers follow.
    pub fn table_membership(&self) -> Option<&Membership> {
        Some(&self.settings.membership)
    }

    /// The shared peer status table.
    pub fn table(&self) -> PeerTable {
        self.table.clone()
    }

    /// How many peers there are (entries found to be this node are none).
    pub fn len(&self) -> usize {
        self.table.peer_count()
    }

    /// Whether there are no peers.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The job queues of the slots that have threads.
    fn queues(&self) -> Vec<(usize, Sender<Job>)> {
        let slots = self.slots.lock();
        slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, s.jobs.clone()?)))
            .collect()
    }

    /// Asks every pusher for a push, unless it has one queued already (a
    /// queued push sends everything this one would). `Stopped` once the
    /// pushers are gone.
    pub fn start_round(&self) -> Result<()> {
        self.start_round_where(|_| true)
    }

    /// [`Pushers::start_round`] for writes to the partitions `written`:
    /// only the pushers of peers that hold one of them (sharded, a peer
    /// that holds none has nothing new to be sent; it gets the periodic
    /// rounds), and of an entry that is this node.
    pub fn start_round_for(&self, written: &PartitionSet) -> Result<()> {
        if written.is_all() || !self.settings.routing.is_sharded() {
            return self.start_round();
        }
        let holds = self.peer_partitions();
        self.start_round_where(|index| {
            self.table.is_self(index)
                || holds
                    .get(index)
                    .is_none_or(|parts| !written.intersection(parts).is_empty())
        })
    }

    /// Asks the pushers of the peers `wanted` (by index) for a push.
    fn start_round_where(&self, wanted: impl Fn(usize) -> bool) -> Result<()> {
        for (index, jobs) in self.queues() {
            if !wanted(index) {
                continue;
            }
            match jobs.try_send(Job { done: None }) {
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => return Err(SyncError::Stopped),
            }
        }
        Ok(())
    }

    /// The partitions each listed peer holds in the layout as it is now,
    /// by index: none for an entry that is this node or retired, all of
    /// them for a peer whose member is not known yet (which then holds
    /// every handoff back until it is).
    pub fn peer_partitions(&self) -> Vec<PartitionSet> {
        let routing = &self.settings.routing;
        (self.table.lock().iter())
            .map(|p| {
                if p.is_self || p.retired {
                    PartitionSet::none()
                } else {
                    routing.partitions_of_peer(p.member.as_deref(), "", &p.addr)
                }
            })
            .collect()
    }

    /// Pushes to every peer now and waits up to `timeout` for their
    /// acknowledgements; returns how many acknowledged. Unlike a periodic
    /// round, this waits for room in a busy pusher's queue: the caller
    /// wants this push's answer.
    pub fn sync_now(&self, timeout: Duration) -> crate::error::Result<usize> {
        let deadline = Instant::now() + timeout;
        let queues = self.queues();
        let (tx, rx) = bounded(queues.len().max(1));
        let mut started = 0;
        for (index, jobs) in queues {
            if self.table.is_self(index) {
                continue;
            }
            let job = Job {
                done: Some(tx.clone()),
            };
            match jobs.send_deadline(job, deadline) {
                Ok(()) => started += 1,
                Err(SendTimeoutError::Timeout(_)) => {}
                Err(SendTimeoutError::Disconnected(_)) => return Err(Error::Stopped),
            }
        }
        drop(tx);
        let mut acked = 0;
        for _ in 0..started {
            match rx.recv_deadline(deadline) {
                Ok(true) => acked += 1,
                Ok(false) => {}
                Err(_) => break,
            }
        }
        Ok(acked)
    }

    /// Gossips this node's whole list to every member now, waiting at
    /// most `timeout` for each (a leave, before the node exits).
    pub fn gossip_now(&self, timeout: Duration) {
        let addrs: Vec<String> = {
            let slots = self.slots.lock();
            slots
                .iter()
                .filter(|s| s.jobs.is_some())
                .map(|s| s.addr.clone())
                .collect()
        };
        let mut settings = self.settings.clone();
        settings.io_timeout = settings.io_timeout.min(timeout);
        settings.connect_timeout = settings.connect_timeout.min(timeout);
        for addr in addrs {
            if let Err(e) = crate::replication::prober::tell(&addr, &settings) {
                log::warn!("could not tell {addr} this node leaves: {e}");
            }
        }
    }
}

impl Drop for Pushers {
    /// The probers end with the node.
    fn drop(&mut self) {
        for slot in self.slots.lock().iter_mut() {
            slot.stop = None;
        }
    }
}

/// An open, greeted connection to a peer.
struct Greeted {
    conn: Connection,
    /// The peer's name, from its `Welcome`.
    peer_name: String,
    /// The peer's version vector as last acknowledged on this connection,
    /// clamped to what this node can verify.
    peer_vv: WireVv,
    /// Whether a claim above what this node can verify was logged at warn
    /// on this connection.
    warned: bool,
    /// The peer's vector from its `Welcome` as claimed, before the clamp:
    /// what it says it has seen of this node's own writer is the evidence
    /// of a history that went back (a restored backup), and that is
    /// exactly what the clamp would hide. Believing it costs at most a new
    /// identity and a full round, never data.
    claimed_vv: WireVv,
    /// The vectors sent and received on this connection, which later ones
    /// are sent as changes to (see [`crate::replication::vectors`]).
    vectors: VectorLink,
}

/// The thread that pushes to one peer.
struct Pusher {
    index: usize,
    addr: String,
    name: String,
    store: StoreHandle,
    table: PeerTable,
    settings: PushSettings,
    conn: Option<Greeted>,
    /// Whether the last round was left to the peer's pull (logged once).
    left_to_pull: bool,
    /// Rounds made so far: a twin found in the first is found at startup.
    rounds: u64,
    /// Rounds in a row, since a twin answered, that it has not.
    twin_absent: u32,
    /// When a full round is owed to this peer, to repair a divergence.
    repair: RepairPlan,
    /// The store's count of new identities as of the last full round.
    renewals_seen: u64,
    /// When a push was last tried.
    last_try: Option<Instant>,
}

/// How often a push to a member found down is tried.
const DOWN_RETRY: Duration = Duration::from_secs(3);

/// How a round that the peer acknowledged went.
#[derive(Debug, Clone, Copy, Default)]
struct Round {
    /// Bytes sent.
    sent: usize,
    /// Whether it was a full round (a repair).
    full: bool,
    /// Whether it found the peer diverged (see
    /// [`crate::replication::anti_entropy`]).
    diverged: bool,
}

impl Pusher {
    fn run(mut self, jobs: Receiver<Job>) {
        let mut last_end: Option<Instant> = None;
        while let Ok(first) = jobs.recv() {
            // Writes coming fast are gathered for a moment: an exchange
            // costs about the same whatever it carries (its vectors), so
            // one every PUSH_GAP carries them all for less. A push someone
            // waits for goes at once.
            let gap = self.settings.push_gap;
            if first.done.is_none() && !gap.is_zero() {
                if let Some(wait) = last_end
                    .map(|end| gap.saturating_sub(end.elapsed()))
                    .filter(|w| !w.is_zero())
                {
                    std::thread::sleep(wait);
                }
            }
            // Rounds that queued up while this push was busy are all served
            // by the next push, which sends everything they would have.
            let mut waiting: Vec<Sender<bool>> = first.done.into_iter().collect();
            while let Ok(more) = jobs.try_recv() {
                waiting.extend(more.done);
            }
            // A push someone waits for (`sync`, the last push at `quit`)
            // is made in full.
            let ok = self.push_with_retry(waiting.is_empty());
            last_end = Some(Instant::now());
            for done in waiting {
                let _ = done.send(ok);
            }
        }
    }

    /// Pushes; a failure on a reused connection (which the peer may have
    /// closed while idle) is retried once on a fresh one. Records the
    /// outcome in the status table, and logs a change of reachability.
    fn push_with_retry(&mut self, may_leave_to_pull: bool) -> bool {
        if self.table.is_self(self.index) {
            return self.acknowledge_self();
        }
        let membership = self.settings.membership.clone();
        if membership.expelled().is_some() {
            return false;
        }
        // A member found down is tried once every few seconds, not at
        // every write: it delays nobody.
        if self.is_down_and_tried_lately() {
            return false;
        }
        self.last_try = Some(Instant::now());
        let reused = self.conn.is_some();
        let full = self.repair.full_round();
        let mut result = self.push(may_leave_to_pull, full);
        if result.is_err() && reused {
            result = self.push(may_leave_to_pull, full);
        }
        if let Ok(round) = &result {
            self.repair.record(round.full, round.diverged);
        }
        let result = result.map(|round| round.sent);
        let at_startup = self.rounds == 0;
        self.rounds += 1;
        if let Err(SyncError::Protocol(ProtocolError::Myself)) = result {
            self.table.record_self(self.index);
            log::info!(
                "peer {} is this node itself (it answers with this node's name and instance); \
                 dropped from the peer set",
                self.addr
            );
            return self.acknowledge_self();
        }
        self.track_twin(&result, at_startup);
        if result.is_ok() && membership.me().state == State::Joining {
            // The first round acknowledged brought this node the data.
            membership.set_my_state(State::Up);
        }
        let mut table = self.table.lock();
        let status = &mut table[self.index];
        match &result {
            Ok(bytes) => {
                // With a CA, every connection a pusher opens is TLS.
                let over_tls = self.settings.tls.is_some();
                status.tls = over_tls;
                if status.record_sync(*bytes, SystemTime::now()) {
                    let over = if over_tls { "TLS" } else { "plain TCP" };
                    log::info!("peer {} is reachable (over {over})", self.addr);
                }
            }
            Err(e) => {
                if status.record_failure(e) {
                    log::warn!("peer {} is unreachable: {e}", self.addr);
                }
            }
        }
        result.is_ok()
    }

    /// Whether the peer is a member the failure detector finds down, and
    /// a push was tried less than [`DOWN_RETRY`] ago.
    fn is_down_and_tried_lately(&self) -> bool {
        let Some(id) = self.table.member_of(self.index) else {
            return false;
        };
        let now = Instant::now();
        let down = matches!(
            self.settings.membership.health(&id, now),
            Some((crate::membership::Health::Down, _))
        );
        down && self
            .last_try
            .is_some_and(|at| now.duration_since(at) < DOWN_RETRY)
    }

    /// Notes whether a twin answered this round: refuses writes when one
    /// first does (loudly if at startup), and takes them again once it has
    /// not answered for [`TWIN_GONE_ROUNDS`] rounds in a row, or a node of
    /// another name answers at its address.
    fn track_twin(&mut self, result: &Result<usize>, at_startup: bool) {
        let twin_now = matches!(result, Err(SyncError::Protocol(ProtocolError::Twin { .. })));
        if twin_now {
            self.twin_absent = 0;
            if self.table.record_twin(self.index, true) {
                let when = if at_startup { "at startup: " } else { "" };
                log::error!(
                    "{when}TWIN: another live node at {} uses this node's name '{}'; \
                     this node refuses writes while it runs: give one of them another name",
                    self.addr,
                    self.name
                );
            }
            return;
        }
        if !self.table.lock()[self.index].is_twin {
            return;
        }
        self.twin_absent += 1;
        if result.is_ok() || self.twin_absent >= TWIN_GONE_ROUNDS {
            self.twin_absent = 0;
            self.table.record_twin(self.index, false);
            log::warn!(
                "the node at {} using this node's name is gone; this node takes writes again",
                self.addr
            );
        }
    }

    /// The round of an entry that is this node itself: it has all this
    /// node has, so it acknowledges this node's own vector, and holds back
    /// no tombstone.
    fn acknowledge_self(&self) -> bool {
        let acked = self.store.version_vector().and_then(|vv| {
            self.store
                .peer_acknowledged(self.index, vv, PartitionSet::all())
        });
        acked.is_ok()
    }

    /// One push, `full` or not; says how it went. On error the connection
    /// is dropped; so it is after a round left to the peer's pull, whose
    /// vector it no longer knows.
    fn push(&mut self, may_leave_to_pull: bool, full: bool) -> Result<Round> {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => {
                let greeted = self.connect().inspect_err(|_| self.record_clock(None))?;
                let peer = format!("{} ({})", greeted.peer_name, self.addr);
                self.store
                    .check_history(&peer, greeted.claimed_vv.clone())?;
                greeted
            }
        };
        // After this node took a new identity (here or on any connection),
        // one full round: see `StoreHandle::renewals`.
        let renewals = self.store.renewals();
        let renewed = renewals != self.renewals_seen;
        let round = self.exchange(&mut conn, may_leave_to_pull, full || renewed, renewed)?;
        if (full || renewed) && round.is_some() {
            self.renewals_seen = renewals;
        }
        let left = round.is_none();
        if left && !self.left_to_pull {
            log::info!(
                "peer {} is pulling a transfer from this node; rounds leave it to that",
                self.addr
            );
        }
        self.left_to_pull = left;
        if let Some(round) = round {
            // A clock found off is measured again by the next handshake.
            if !self.table.is_clock_off(self.index) {
                self.conn = Some(conn);
            }
            return Ok(round);
        }
        Ok(Round::default())
    }

    /// Sends what the peer lacks, merges what it sends back, records its
    /// acknowledged vector. Up to [`PARTS_IN_FLIGHT`] parts go out before
    /// the peer's `Next` for the first of them.
    ///
    /// With `may_leave_to_pull` (a round nobody waits on), a transfer of
    /// several parts to a peer that is pulling one from this node right
    /// now is not started: the pull brings the peer everything this push
    /// would, up to the writes made since it began, which the next round
    /// sends. `None` says so; nothing was sent. A push someone waits for
    /// (`sync`, the last push before exiting) is always made.
    ///
    /// A `full` round (a repair) sends everything, as if the peer's vector
    /// were empty, and asks for everything back. Any other round ends by
    /// comparing this node's vector and digest at the start with the
    /// peer's in its `Ack` (see [`crate::replication::anti_entropy`]).
    ///
    /// `renewed`: this node's data went back in time (it took a new
    /// identity), and this full round's answer, the peer's whole state,
    /// also tells it which of its values the peer deleted meanwhile (see
    /// [`StoreHandle::drop_deleted_meanwhile`]).
    fn exchange(
        &self,
        greeted: &mut Greeted,
        may_leave_to_pull: bool,
        full: bool,
        renewed: bool,
    ) -> Result<Option<Round>> {
        let conn = &mut greeted.conn;
        let mut sent = 0;
        let since = if full {
            WireVv::new()
        } else {
            greeted.peer_vv.clone()
        };
        let max_part = part_bytes(self.settings.max_frame);
        // Sharded, the peer is sent the partitions it holds, and says so.
        let routing = &self.settings.routing;
        let wanted = routing.partitions_of_peer(None, &greeted.peer_name, &self.addr);
        let carried = (!wanted.is_all()).then_some(wanted);
        let serving = routing.serving();
        let serving = (!serving.is_all()).then_some(serving);
        let mut parts = Parts::new(&self.store, since, max_part, wanted)?;
        // Parts sent whose `Next` has not come back yet.
        let mut unanswered = 0;
        while let Some((batch, last)) = parts.next_part()? {
            if may_leave_to_pull
                && !full
                && sent == 0
                && !last
                && self.settings.answering.is_answering(&greeted.peer_name)
            {
                return Ok(None);
            }
            let changes = match parts.start_summary() {
                // Sharded, the peer is told of the partitions it holds
                // only: a write elsewhere costs it nothing.
                Some(start) if last => Some((
                    greeted.vectors.changes_within(&start.vv, &wanted),
                    start.digest,
                )),
                _ => None,
            };
            let done = changes.as_ref().map(|(vv, digest)| DoneRef {
                vv,
                digest: *digest,
                full,
                sent: carried,
                serving,
            });
            sent += conn.send(&MessageRef::Push {
                batch: &batch,
                done,
            })?;
            conn.flush()?;
            if last {
                break;
            }
            unanswered += 1;
            if unanswered == PARTS_IN_FLIGHT {
                expect_next(conn)?;
                unanswered -= 1;
            }
        }
        for _ in 0..unanswered {
            expect_next(conn)?;
        }
        // What comes back from a full round repairs this node: it is taken
        // even where this node's vector claims it has seen it.
        let mut merges = Merges::for_repair(&self.store, full);
        merges.holding(routing.held());
        // Every key of the peer's whole state, when it tells this node
        // what was deleted meanwhile.
        let mut keys = (full && renewed).then(std::collections::HashSet::new);
        // What the peer can have: what this node had when it sent its part
        // (its vector then), and what the peer shows in its answer.
        let mut shown = Shown::from_vv(&parts.start_summary().cloned().unwrap_or_default().vv);
        let peer = format!("{} ({})", greeted.peer_name, self.addr);
        loop {
            match conn.receive()? {
                Message::Pull { batch } => {
                    shown.add(&batch);
                    if let Some(keys) = keys.as_mut() {
                        keys.extend(batch.entries.iter().map(|e| e.key.0.clone()));
                    }
                    self.settings.routing.received(batch.entries.len());
                    merges.add(batch)?;
                }
                Message::Ack {
                    vv,
                    digest,
                    sent: answered,
                    serving: theirs_served,
                } => {
                    let vv = greeted.vectors.apply(vv)?;
                    // Sharded, what the peer says of partitions it does
                    // not hold is no business of this exchange, nor is
                    // what it says of those this node neither holds nor
                    // has data of (handed off).
                    let mut theirs_here = within(&vv, &wanted);
                    if routing.is_sharded() {
                        let held = routing.held();
                        let ours: std::collections::HashSet<&str> = parts
                            .start_summary()
                            .map(|s| s.vv.iter())
                            .into_iter()
                            .flatten()
                            .filter(|(_, c)| *c > 0)
                            .map(|(n, _)| n.as_str())
                            .collect();
                        theirs_here.retain(|(name, _)| {
                            partition_of_writer(name).is_none_or(|p| held.contains(p))
                                || ours.contains(name.as_str())
                        });
                    }
                    // An acknowledgement covering more than that would let
                    // tombstones go before the peer has them.
                    let (acked, over) = shown.clamp(&theirs_here);
                    report_overclaims(&peer, &over, &mut greeted.warned);
                    // The peer's vector covers what it sent: join it only
                    // once all of that is merged, and only for the
                    // partitions it sent that this node holds.
                    let joinable = joinable(
                        &acked,
                        &answered.unwrap_or_else(PartitionSet::all),
                        &routing.held(),
                    );
                    merges.finish(acked.clone(), answered)?;
                    let answered = answered.unwrap_or_else(PartitionSet::all);
                    // What the peer serves and sent, this node now has whole.
                    routing.exchange_completed(
                        self.table.member_of(self.index).as_deref(),
                        &answered,
                        theirs_served,
                    );
                    if let Some(keys) = keys.take() {
                        let peer = greeted.peer_name.clone();
                        self.store.drop_deleted_meanwhile(joinable, keys, peer)?;
                    }
                    self.store
                        .peer_acknowledged(self.index, acked.clone(), wanted)?;
                    // Compared as claimed: a vector clamped to this node's
                    // own would pass for even.
                    let theirs = Summary { vv, digest };
                    let anti_entropy = &self.settings.anti_entropy;
                    let peer = &greeted.peer_name;
                    // Sharded nodes hold different data by design: their
                    // vectors and digests are not comparable.
                    let diverged = if full {
                        anti_entropy.repaired(peer, "pushing to");
                        false
                    } else if routing.is_sharded() {
                        false
                    } else {
                        parts.start_summary().is_some_and(|ours| {
                            anti_entropy.check(peer, "pushing to", ours, &theirs)
                        })
                    };
                    greeted.peer_vv = acked;
                    return Ok(Some(Round {
                        sent,
                        full,
                        diverged,
                    }));
                }
                other => {
                    return Err(SyncError::unexpected(
                        &[MessageKind::Pull, MessageKind::Ack],
                        other.kind(),
                    ))
                }
            }
        }
    }

    /// Opens a connection to the peer (see [`dial`]) and greets it.
    fn connect(&self) -> Result<Greeted> {
        self.greet(dial(&self.addr, &self.settings)?)
    }

    /// Sends the magic (and, with a cluster secret, proves it and has the
    /// peer prove it) and `Hello`; a `Welcome` of this protocol version
    /// from a node of another name makes the connection. One with this
    /// node's name is this node itself or a twin (see [`who_answered`]).
    fn greet(&self, mut conn: Connection) -> Result<Greeted> {
        let sent_ms = wall_clock_ms();
        let member = self.settings.membership.my_id();
        conn.send(&MessageRef::Hello {
            version: PROTOCOL_VERSION,
            name: &self.name,
            wall_clock_ms: sent_ms,
            instance: instance_id(),
            member: &member,
            probe: false,
            replicas: self.settings.routing.replicas_code(),
        })?;
        conn.flush()?;
        let welcome = conn.receive()?;
        let received_ms = wall_clock_ms();
        match welcome {
            Message::Welcome { version, .. } if version != PROTOCOL_VERSION => {
                Err(ProtocolError::Version {
                    theirs: version,
                    ours: PROTOCOL_VERSION,
                }
                .into())
            }
            Message::Welcome { replicas, .. }
                if replicas != self.settings.routing.replicas_code() =>
            {
                Err(ProtocolError::Replicas {
                    theirs: replicas,
                    ours: self.settings.routing.replicas_code(),
                }
                .into())
            }
            Message::Welcome {
                vv,
                name,
                instance,
                wall_clock_ms,
                ..
            } => match who_answered((&self.name, instance_id()), (&name, instance)) {
                Answerer::Peer => {
                    let offset = ClockOffset::measure(sent_ms, received_ms, wall_clock_ms);
                    self.record_clock(Some(offset));
                    // The peer's vector says what not to send it: one far
                    // ahead would keep a writer's next writes from it.
                    let (peer_vv, over) = Shown::from_vv(&self.store.version_vector()?).clamp(&vv);
                    let mut warned = false;
                    report_overclaims(&format!("{name} ({})", self.addr), &over, &mut warned);
                    let mut vectors = VectorLink::new();
                    vectors.received_whole(&vv);
                    Ok(Greeted {
                        conn,
                        peer_name: name,
                        peer_vv,
                        warned,
                        claimed_vv: vv,
                        vectors,
                    })
                }
                Answerer::Myself => Err(ProtocolError::Myself.into()),
                Answerer::Twin => Err(ProtocolError::Twin { name }.into()),
            },
            Message::SecretRequired => Err(AuthError::ThisNodeHasNone.into()),
            Message::Expelled { why } => Err(expelled(&self.settings.membership, why)),
            other => Err(SyncError::unexpected(&[MessageKind::Welcome], other.kind())),
        }
    }
}

/// What a node that a peer refused as forgotten or left does: stops
/// taking part (its pushers push nothing more) and says so once.
pub fn expelled(membership: &Membership, why: String) -> SyncError {
    membership.expel(&why);
    ProtocolError::Expelled(why).into()
}

/// Opens a connection to `addr`, trying each address its name resolves
/// to, with the magic sent and, with a cluster secret, the authenticated
/// handshake made: ready for a `Hello`. With peer TLS, the connection is
/// TLS, its certificate checked against the CA and the name in `addr`.
pub fn dial(addr: &str, settings: &PushSettings) -> Result<Connection> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(SyncError::Resolve)?
        .collect();
    let mut last = SyncError::NoAddress;
    for to in addrs {
        match TcpStream::connect_timeout(&to, settings.connect_timeout) {
            Ok(stream) => {
                let stream = secure(addr, settings, stream)?;
                let mut conn = Connection::new(stream, settings.io_timeout, settings.max_frame)?;
                conn.send_magic()?;
                if let Some(secret) = &settings.secret {
                    conn.authenticate_to_responder(secret)?;
                }
                return Ok(conn);
            }
            Err(e) => last = e.into(),
        }
    }
    Err(last)
}

/// `stream` inside TLS, if peers talk TLS; as it is otherwise.
fn secure(addr: &str, settings: &PushSettings, stream: TcpStream) -> Result<PeerStream> {
    let Some(tls) = &settings.tls else {
        return Ok(PeerStream::Plain(stream));
    };
    match dial_tls(tls, addr) {
        Ok(conn) => Ok(PeerStream::dialed(conn, stream)),
        Err(why) => Err(io::Error::new(io::ErrorKind::InvalidInput, why).into()),
    }
}

impl Pusher {
    /// Records the peer's clock offset (`None`: unknown, it could not be
    /// reached); logs a clock that goes off or comes back, and a change in
    /// whether this node refuses writes for it.
    fn record_clock(&self, offset: Option<ClockOffset>) {
        let refused_before = self.table.clock_refusal().is_some();
        let (was_off, is_off) = self.table.record_clock(self.index, offset);
        let bound = self.table.max_clock_offset_ms();
        match (was_off, is_off, offset) {
            (false, true, Some(offset)) => log::error!(
                "CLOCK: peer {} is off by more than {bound} ms (--max-clock-offset-ms): {}",
                self.addr,
                offset.describe()
            ),
            (true, false, Some(offset)) => log::info!(
                "peer {}'s clock is back within {bound} ms of this node's: {}",
                self.addr,
                offset.describe()
            ),
            _ => {}
        }
        match (refused_before, self.table.clock_refusal()) {
            (false, Some(why)) => log::error!("{why}"),
            (true, None) => {
                log::warn!("this node's clock agrees with its peers' again: it takes writes again")
            }
            _ => {}
        }
    }
}

/// This node's wall clock, in milliseconds since the Unix epoch.
fn wall_clock_ms() -> u64 {
    crate::engine::service::wall_clock_us() / 1000
}

/// Waits for the peer's `Next` for a part sent.
fn expect_next(conn: &mut Connection) -> Result<()> {
    match conn.receive()? {
        Message::Next => Ok(()),
        other => Err(SyncError::unexpected(&[MessageKind::Next], other.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_and_instance_tell_who_answered() {
        assert_eq!(who_answered(("a", 1), ("b", 1)), Answerer::Peer);
        assert_eq!(who_answered(("a", 1), ("b", 2)), Answerer::Peer);
        assert_eq!(who_answered(("a", 1), ("a", 1)), Answerer::Myself);
        assert_eq!(who_answered(("a", 1), ("a", 2)), Answerer::Twin);
    }
}
