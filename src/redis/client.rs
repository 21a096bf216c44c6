//! Redis client connections: what every connection of a node shares
//! ([`Context`]: limits, counters, the way to the store thread), and one
//! connection's state ([`ClientConn`]), which the I/O threads
//! ([`crate::ioloop`]) drive from their poll loops.
//!
//! A [`ClientConn`] is the protocol without the socket: bytes go in
//! ([`ClientConn::ingest`]), complete requests are decoded and run through
//! `dispatch`, the store work of all of them leaves as one
//! [`Part`] ([`ClientConn::take_work`]) that the I/O thread sends to the
//! store thread together with the other connections' parts, and the
//! answers come back ([`ClientConn::complete`]) to be queued, in request
//! order, on the connection's [`Output`]. A command that needs no data is
//! answered on the I/O thread, still in its turn.
//!
//! Limits, after Redis's query-buffer and client-output-buffer limits:
//! - a request larger than [`ClientSettings::limits`] allow is a protocol
//!   error (answered, then the connection is closed);
//! - a connection whose output holds [`ClientSettings::soft_output`] bytes
//!   or more is not read, and its queued commands do not run, until the
//!   client reads (backpressure): a client that pipelines without reading
//!   makes the node buffer at most about that much;
//! - a connection whose output would pass [`ClientSettings::max_output`]
//!   (one command's reply alone can: `MGET` of a large value many times)
//!   is closed, with a log line, and the reply is never built in full.

use crate::durability::DiskSettings;
use crate::engine::service::{nanos_between, wall_clock_us};
use crate::engine::StoreHandle;
use crate::engine::{Command as StoreWork, Database, Db, Part};
use crate::redis::auth::ClientAuth;
use crate::redis::cmd::server::{slowlog_reply, time_reply};
use crate::redis::command::{
    dispatch_traced, lookup, slot_of, slots, Action, Answer, Command, Facts, NodeQuery, Outcome,
    Session, SlowlogQuery, Tally,
};
use crate::redis::forward::{Forwarder, Item};
use crate::redis::output::Output;
use crate::redis::resp::Request;
use crate::redis::resp::{Limits, Protocol, Reply, RequestDecoder};
use crate::redis::route::{self, Place, Plan, Remote, Route, CROSSSLOT};
use crate::replication::status::PeerTable;
use crate::routing::Routing;
use crate::status::activity::{Activity, CommandCounters, OpsRate, Peak, SlowArgs, SlowLog};
use crate::status::gather::used_bytes;
use crate::status::{DiskStatus, Persistence, ServerStats, Status};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Most requests decoded from one connection before its work is sent.
pub const MAX_BATCH: usize = 1024;

/// The limits on client connections.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Most client connections at once.
    pub max_clients: usize,
    /// How long a connection may stay silent; `None` for ever.
    pub idle_timeout: Option<Duration>,
    /// How large a request may be.
    pub limits: Limits,
    /// How the node keeps its data (`INFO`, `CONFIG GET`); see
    /// [`persistence`].
    pub persistence: Persistence,
    /// Output past which a connection is closed
    /// (`--max-client-output-bytes`).
    pub max_output: usize,
    /// The client password, if any (see [`crate::redis::auth`]).
    pub auth: ClientAuth,
    /// `--protected-mode`: without a client password, clients from other
    /// machines are refused (Redis's `protected-mode yes`).
    pub protected_mode: bool,
    /// How many databases clients may select (`--databases`).
    pub databases: usize,
    /// `--slowlog-log-slower-than` and `--slowlog-max-len`.
    pub slowlog: SlowlogSettings,
    /// `--write-replicas` and `--write-timeout-ms`: a write's reply waits
    /// until that many replicas hold it (see [`Pending::Wait`]).
    pub write_quorum: WriteQuorum,
}

/// How long a write waits for `--write-replicas` by default: Cassandra's
/// write timeout; a replica that is up acknowledges in milliseconds.
pub const DEFAULT_WRITE_TIMEOUT_MS: u64 = 2000;

/// How many replicas a write must reach before its reply goes out, this
/// node counting as one, and for how long at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteQuorum {
    /// Replicas, this node included (`--write-replicas`); 1 answers at
    /// once.
    pub replicas: usize,
    /// How long a write's reply waits for them.
    pub timeout: Duration,
}

impl Default for WriteQuorum {
    fn default() -> WriteQuorum {
        WriteQuorum {
            replicas: 1,
            timeout: Duration::from_millis(DEFAULT_WRITE_TIMEOUT_MS),
        }
    }
}

/// Which commands the slow log keeps, and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowlogSettings {
    /// Commands taking this many microseconds or more are logged; 0 logs
    /// every command, a negative number none.
    pub slower_than_us: i64,
    /// Most entries kept.
    pub max_len: usize,
}

impl Default for SlowlogSettings {
    /// Redis's defaults: 10 ms, 128 entries.
    fn default() -> SlowlogSettings {
        SlowlogSettings {
            slower_than_us: 10_000,
            max_len: 128,
        }
    }
}

impl ClientSettings {
    /// The output at which a connection stops being read until it
    /// drains: a quarter of the limit, at most [`MAX_SOFT_OUTPUT`].
    pub fn soft_output(&self) -> usize {
        (self.max_output / 4).clamp(1, MAX_SOFT_OUTPUT)
    }

    /// Whether only clients on this machine's loopback are let in:
    /// protected mode, and no client password.
    pub fn loopback_only(&self) -> bool {
        self.protected_mode && !self.auth.is_required()
    }
}

/// The most output a connection holds before it stops being read.
pub const MAX_SOFT_OUTPUT: usize = 4 * 1024 * 1024;

/// Counters for `INFO`, shared by every connection.
#[derive(Debug, Default)]
pub struct Stats {
    connected: AtomicUsize,
    total_connections: AtomicU64,
    total_commands: AtomicU64,
    rejected: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    output_closed: AtomicU64,
    net_input: AtomicU64,
    net_output: AtomicU64,
    rate: OpsRate,
    memory_peak: Peak,
}

/// What every command's timing records into, shared by the I/O threads
/// and the store thread (where a data command's work is timed).
#[derive(Debug)]
pub struct Recorder {
    commands: CommandCounters,
    slowlog: SlowLog,
}

/// Who runs a command, as the slow log names it; shared by a
/// connection's commands on their way to the store thread, and made
/// anew when the client's name changes.
#[derive(Debug)]
struct Caller {
    recorder: Arc<Recorder>,
    addr: String,
    name: Option<Vec<u8>>,
}

impl Caller {
    /// Counts one run of the command in `slot`, which took `nanos`, and
    /// logs it if it is slow.
    fn record(&self, slot: usize, nanos: u64, args: Option<SlowArgs>) {
        let recorder = &self.recorder;
        recorder.commands.record_call(slot, nanos);
        let usec = nanos / 1000;
        if let Some(args) = args {
            if recorder.slowlog.is_slow(usec) {
                recorder
                    .slowlog
                    .offer(unix_secs(), usec, args, &self.addr, self.name.as_deref());
            }
        }
    }
}

/// The wall clock in Unix seconds.
fn unix_secs() -> u64 {
    wall_clock_us() / 1_000_000
}

/// What every client connection of a node shares.
pub struct Context {
    name: String,
    addr: SocketAddr,
    store: StoreHandle,
    settings: ClientSettings,
    facts: Facts,
    stats: Stats,
    recorder: Arc<Recorder>,
    peers: OnceLock<PeerTable>,
    routing: OnceLock<Arc<Routing>>,
    forwarder: OnceLock<Arc<Forwarder>>,
    started: Instant,
    next_id: AtomicU64,
}

impl Context {
    /// The shared state of the client connections of node `name`
    /// listening on `addr`.
    pub fn new(
        name: &str,
        addr: SocketAddr,
        store: StoreHandle,
        settings: ClientSettings,
    ) -> Context {
        let facts = Facts {
            max_clients: settings.max_clients,
            idle_timeout_secs: settings.idle_timeout.map_or(0, |t| t.as_secs()),
            max_bulk_len: settings.limits.max_bulk_len,
            max_request_len: settings.limits.max_request_len,
            persistence: settings.persistence.clone(),
            auth: settings.auth.clone(),
            databases: settings.databases,
            slowlog_slower_than: settings.slowlog.slower_than_us,
            slowlog_max_len: settings.slowlog.max_len,
        };
        let recorder = Arc::new(Recorder {
            commands: CommandCounters::new(slots().len()),
            slowlog: SlowLog::new(settings.slowlog.slower_than_us, settings.slowlog.max_len),
        });
        Context {
            name: name.to_owned(),
            addr,
            store,
            settings,
            facts,
            stats: Stats::default(),
            recorder,
            peers: OnceLock::new(),
            routing: OnceLock::new(),
            forwarder: OnceLock::new(),
            started: Instant::now(),
            next_id: AtomicU64::new(0),
        }
    }

    /// Gives `INFO` the peers' table, once the pushers exist.
    pub fn set_peers(&self, peers: PeerTable) {
        let _ = self.peers.set(peers);
    }

    /// Gives the connections the node's routing (which keys this node
    /// holds, and where the others are served), once the member list
    /// exists.
    pub fn set_routing(&self, routing: Arc<Routing>) {
        let _ = self.routing.set(routing);
    }

    /// The node's routing; `None` before it is set (a node not yet
    /// started, and unit tests), which means full replication.
    pub fn routing(&self) -> Option<&Arc<Routing>> {
        self.routing.get()
    }

    /// Gives the connections the way to forward commands for keys this
    /// node does not hold (proxying, see [`crate::redis::forward`]).
    pub fn set_forwarder(&self, forwarder: Arc<Forwarder>) {
        let _ = self.forwarder.set(forwarder);
    }

    /// The forwarder, once the node has one (a sharded node).
    pub fn forwarder(&self) -> Option<&Arc<Forwarder>> {
        self.forwarder.get()
    }

    /// Whether commands are routed: the cluster is sharded and the node
    /// can forward.
    fn routes(&self) -> Option<&Arc<Routing>> {
        self.forwarder.get()?;
        self.routing.get().filter(|r| r.is_sharded())
    }

    /// The limits on client connections.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// The way to the store thread.
    pub fn store(&self) -> &StoreHandle {
        &self.store
    }

    /// Client connections open now.
    pub fn connected(&self) -> usize {
        self.stats.connected.load(Ordering::Relaxed)
    }

    /// Counts a new client connection in, unless `max_clients` are open
    /// already (it is then counted as rejected).
    pub fn admit(&self) -> bool {
        let stats = &self.stats;
        if stats.connected.fetch_add(1, Ordering::SeqCst) >= self.settings.max_clients {
            stats.connected.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        stats.total_connections.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Counts a refused connection (`rejected_connections`).
    pub fn count_rejected(&self) {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a client connection out.
    pub fn release(&self) {
        self.stats.connected.fetch_sub(1, Ordering::SeqCst);
    }

    /// A fresh connection's id (`CLIENT ID`).
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The node's whole status, for `INFO` and `NETDB.STATUS`, from the
    /// store's facts taken on the store thread, the pushers' table, and
    /// what only the client side knows.
    fn status(&self, facts: crate::engine::StoreFacts) -> Status {
        let empty = PeerTable::default();
        let peers = self.peers.get().unwrap_or(&empty);
        let status = crate::status::gather::status_from_facts(
            &self.name,
            self.addr,
            facts,
            peers,
            Some(self.facts.persistence.clone()),
        );
        let s = &self.stats;
        Status {
            server: Some(ServerStats {
                uptime_secs: self.started.elapsed().as_secs(),
                process_id: std::process::id(),
                connected_clients: s.connected.load(Ordering::Relaxed),
                max_clients: self.settings.max_clients,
                total_connections: s.total_connections.load(Ordering::Relaxed),
                total_commands: s.total_commands.load(Ordering::Relaxed),
                rejected_connections: s.rejected.load(Ordering::Relaxed),
                keyspace_hits: s.hits.load(Ordering::Relaxed),
                keyspace_misses: s.misses.load(Ordering::Relaxed),
            }),
            ..status
        }
    }

    /// What `INFO` shows of the commands run, beside the status:
    /// `memory` is the resident memory just read, for the peak.
    fn activity(&self, memory: Option<u64>) -> Activity {
        let recorder = &self.recorder;
        let mut commands: Vec<(String, _)> = slots()
            .iter()
            .enumerate()
            .map(|(slot, c)| (c.name.to_owned(), recorder.commands.stat(slot)))
            .filter(|(_, stat)| !stat.is_zero())
            .collect();
        commands.sort_by(|a, b| a.0.cmp(&b.0));
        let mut latencies: Vec<(String, [u64; 3])> = slots()
            .iter()
            .enumerate()
            .filter_map(|(slot, c)| Some((c.name.to_owned(), recorder.commands.latency(slot)?)))
            .collect();
        latencies.sort_by(|a, b| a.0.cmp(&b.0));
        let s = &self.stats;
        Activity {
            commands,
            latencies,
            errors: recorder.commands.errors(),
            ops_per_sec: s
                .rate
                .per_sec(self.uptime_ms(), s.total_commands.load(Ordering::Relaxed)),
            net_input_bytes: s.net_input.load(Ordering::Relaxed),
            net_output_bytes: s.net_output.load(Ordering::Relaxed),
            memory_peak: memory.map(|m| s.memory_peak.see(m)),
            cluster_enabled: self.routing.get().is_some_and(|r| r.is_sharded()),
            proxied_commands: self.forwarder.get().map_or(0, |f| f.forwarded()),
        }
    }

    fn uptime_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The store work that answers a node query that needs the store: the
    /// status is gathered on the store thread, so the I/O thread never
    /// waits for it.
    fn node_work(self: &Arc<Context>, query: NodeQuery) -> StoreWork<Answer> {
        let ctx = Arc::clone(self);
        Box::new(move |db: &mut Db<'_>| {
            let facts = db.facts();
            let status = ctx.status(facts);
            let activity = ctx.activity(status.memory_used.or(status.memory_rss));
            query
                .reply(&status, &activity)
                .unwrap_or_else(|| Reply::Error("ERR not a status query".into()))
                .into()
        })
    }

    /// The store work that counts, for a `WAIT`, the peers that have
    /// acknowledged this node's own writes up to `target`: the counter of
    /// its latest write when the `WAIT` first ran (kept there by that first
    /// run, for the asks after it), so every write this client made before
    /// the `WAIT`, and none made after it by other clients.
    fn wait_work(self: &Arc<Context>, target: Arc<AtomicU64>) -> StoreWork<Answer> {
        let ctx = Arc::clone(self);
        Box::new(move |db: &mut Db<'_>| {
            let mut upto = target.load(Ordering::Relaxed);
            if upto == WAIT_TARGET_UNSET {
                upto = db.issued();
                target.store(upto, Ordering::Relaxed);
            }
            let has = db.peers_with_writes_up_to(upto);
            // A listed address that is this node itself is no peer.
            let count = ctx.peers.get().map_or(0, |table| {
                (table.lock().iter())
                    .zip(&has)
                    .filter(|(p, has)| !p.is_self && **has)
                    .count()
            });
            Reply::Integer(i64::try_from(count).unwrap_or(i64::MAX)).into()
        })
    }

    /// The reply to a node query answered on the I/O thread.
    fn answer_here(&self, query: &NodeQuery) -> Reply {
        let slowlog = &self.recorder.slowlog;
        match query {
            NodeQuery::Time => time_reply(wall_clock_us()),
            NodeQuery::Slowlog(SlowlogQuery::Get { count }) => {
                slowlog_reply(&slowlog.newest(*count))
            }
            NodeQuery::Slowlog(SlowlogQuery::Len) => {
                Reply::Integer(i64::try_from(slowlog.len()).unwrap_or(i64::MAX))
            }
            NodeQuery::Slowlog(SlowlogQuery::Reset) => {
                slowlog.reset();
                Reply::ok()
            }
            NodeQuery::ResetStat => {
                self.reset_stats();
                Reply::ok()
            }
            NodeQuery::Cluster(query) => crate::redis::cmd::cluster::answer(
                query,
                self.peers.get().and_then(PeerTable::membership),
                self.routing.get().and_then(|r| r.placed()).as_deref(),
            ),
            _ => Reply::Error("ERR this query needs the store".into()),
        }
    }

    /// `CONFIG RESETSTAT`: the counters `INFO` shows back to zero, as
    /// Redis resets them (not the slow log, not the connected clients).
    fn reset_stats(&self) {
        let s = &self.stats;
        for counter in [
            &s.total_connections,
            &s.total_commands,
            &s.rejected,
            &s.hits,
            &s.misses,
            &s.net_input,
            &s.net_output,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        s.rate.reset();
        s.memory_peak.reset(used_bytes().unwrap_or(0));
        self.recorder.commands.reset();
    }

    /// Takes a rate sample (and a memory sample for the peak) if one is
    /// due at `now`: at most every 100 ms, by whichever connection runs
    /// commands.
    fn tick(&self, now: Instant, total: u64) {
        let now_ms = u64::try_from(now.saturating_duration_since(self.started).as_millis())
            .unwrap_or(u64::MAX);
        if self.stats.rate.tick(now_ms, total) {
            if let Some(used) = used_bytes() {
                self.stats.memory_peak.see(used);
            }
        }
    }
}

/// What a client from another machine is told by a node in protected
/// mode with no client password (Redis's `-DENIED` reply, with netdb's
/// settings).
pub const DENIED: &[u8] = b"-DENIED netdb is running in protected mode because protected mode is \
enabled and no password is set for the default user. In this mode connections are only \
accepted from the loopback interface. If you want to connect from other computers, either set \
a password (--requirepass-file) and AUTH with it, or, only on a network you trust, restart the \
node with '--protected-mode no'.\r\n";

/// Whether `addr` is on this machine's loopback interface (127.0.0.0/8,
/// ::1, or either mapped into the other family).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// Why a connection is to be closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Close {
    /// The client asked (`QUIT`), or closed its side, and every reply is
    /// written: close quietly.
    Done,
    /// It sent bytes that are not RESP (already answered); the node
    /// waits a little for the client to stop sending, so that it reads
    /// the error.
    Protocol(String),
    /// Its output went over the limit: close at once.
    OutputLimit(usize),
    /// The store thread is gone: the node is stopping.
    Stopped,
    /// It was refused (its one reply says why, and the refusal is logged
    /// already): the node waits a little for the client to stop
    /// sending, as after a protocol error.
    Refused,
}

impl std::fmt::Display for Close {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Close::Done => f.write_str("closed"),
            Close::Protocol(e) => f.write_str(e),
            Close::OutputLimit(limit) => write!(
                f,
                "its replies waiting to be read passed the output limit of {limit} bytes \
                 (--max-client-output-bytes); a client that pipelines must read its replies"
            ),
            Close::Stopped => f.write_str("node shutting down"),
            Close::Refused => f.write_str("refused"),
        }
    }
}

/// A reply whose turn has not come: it waits behind a store reply.
/// Each is written in the protocol the session had right after its own
/// command's dispatch (`HELLO 3`'s own reply is already RESP3).
enum Pending {
    Ready(Reply, Protocol),
    /// The answer to the next store command of the connection, and what
    /// counting it needs (see [`Timing`]).
    Store(Protocol, Timing),
    /// The answer to a `WAIT`: the peers with every write so far, given
    /// only once there are enough of them or its time is up (see
    /// [`Blocked`]). For [`WaitFor::Write`], no reply of its own: it
    /// holds back the write's reply just before it, and turns it into a
    /// `NOREPLICAS` error if too few peers have the write in time.
    Wait(Protocol, Timing, WaitFor),
    /// An entry whose reply went out with another's: skipped.
    Gone,
    /// A command run elsewhere, all or part (sharding): its parts'
    /// replies, gathered once all are in.
    Routed(Protocol, Timing, Box<Routed>),
}

/// Who waits for peers: a client's `WAIT`, or `--write-replicas` for the
/// write just before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WaitFor {
    Client,
    Write,
}

/// A command routed to other nodes (see [`crate::redis::route`]), waiting
/// for its parts.
struct Routed {
    plan: Plan,
    /// The part run here: `None` if there is none, `Some(None)` while its
    /// store answer has not come.
    local: Option<Option<Answer>>,
    /// How many parts were forwarded.
    parts: usize,
    /// Their replies, once the forwarding job is back.
    remote: Option<Vec<Reply>>,
    /// The error the gathered reply becomes (unless it is one already):
    /// the part written here did not reach `--write-replicas` in time.
    short: Option<Reply>,
}

impl Routed {
    fn is_complete(&self) -> bool {
        !matches!(self.local, Some(None)) && self.remote.is_some()
    }
}

/// A `WAIT` not answered yet. As Redis blocks the client, the
/// connection's later store commands are held back (`ClientConn::held`)
/// until it is; meanwhile its count is asked of the store thread again
/// every [`WAIT_RECHECK`].
struct Blocked {
    /// The peers asked for.
    replicas: i64,
    /// The counter of this node's writes to wait for, set by the first
    /// run of the `WAIT`'s work.
    target: Arc<AtomicU64>,
    /// When to answer with what there is; `None`: never (timeout 0).
    deadline: Option<Instant>,
    /// When to ask again, once the last answer said too few.
    recheck_at: Option<Instant>,
    /// How many times it asked already.
    asked: u32,
}

/// A `WAIT`'s peers asked for and timeout in milliseconds.
type WaitArgs = (i64, u64);

/// A `WAIT`'s target before its first run (see `Context::wait_work`).
const WAIT_TARGET_UNSET: u64 = u64::MAX;

/// How often a `WAIT` asks again how many peers have everything, at
/// most: a peer's acknowledgement comes with a push round, so a few
/// milliseconds at most are lost to this.
pub const WAIT_RECHECK: Duration = Duration::from_millis(5);

/// When a `WAIT` that has asked `asked` times asks again: soon at first
/// (a write starts a push at once, and a peer on the same network
/// acknowledges it within a millisecond or two: what `--write-replicas`
/// waits for on every write), then every [`WAIT_RECHECK`].
fn recheck_after(asked: u32) -> Duration {
    let soon = Duration::from_micros(500).saturating_mul(1 << asked.min(4));
    soon.min(WAIT_RECHECK)
}

/// What a store command's statistics need once it has run: its slot in
/// the table (`None`: not counted), the time its handler took on this
/// thread, and its slow-log arguments. The store thread's part of its
/// time comes back with its answer
/// ([`Part::durations`](crate::engine::Part::durations)).
struct Timing {
    slot: Option<usize>,
    here: u64,
    args: Option<SlowArgs>,
    /// For an `EXEC`: the slots of the commands it runs, in order, each
    /// counted on its own as in Redis (see [`Db::step`]).
    steps: Option<Vec<Option<usize>>>,
    /// The client as it was when the command was sent (a later
    /// `CLIENT SETNAME` does not rename its slow-log entry).
    caller: Arc<Caller>,
}

impl Timing {
    fn new(slot: Option<usize>, here: u64, args: Option<SlowArgs>, caller: &Arc<Caller>) -> Timing {
        Timing {
            slot,
            here,
            args,
            steps: None,
            caller: Arc::clone(caller),
        }
    }
}

/// One client connection's protocol state, without its socket.
pub struct ClientConn {
    ctx: Arc<Context>,
    session: Session,
    decoder: RequestDecoder,
    /// Bytes received and not yet decoded (only a request cut short, or
    /// requests beyond a batch): empty, and unallocated, while idle.
    input: Vec<u8>,
    /// Whether `input` may hold complete requests not yet decoded.
    more_input: bool,
    /// Store commands decoded and not yet sent, in order.
    unrun: VecDeque<StoreWork<Answer>>,
    /// A `WAIT` not answered yet, if any.
    blocked: Option<Blocked>,
    /// Store commands decoded after a `WAIT` not answered yet: they run
    /// once it is. A `WAIT` among them has its peers and timeout beside it.
    held: VecDeque<(Option<StoreWork<Answer>>, Option<WaitArgs>)>,
    /// Replies in request order behind the first store reply still to come.
    pending: VecDeque<Pending>,
    /// Whether a part of this connection is at the store thread.
    in_flight: bool,
    /// Parts of commands to forward, decoded and not yet sent.
    outbox: Vec<Item>,
    /// Whether a forwarding job of this connection is out: like store
    /// work, one at a time, so the connection's forwarded commands run in
    /// order.
    forwarding: bool,
    /// Where the keys of the open transaction are served, once a queued
    /// command named one (sharding): the others must be served there too.
    txn_place: Option<(u16, Place)>,
    /// Whether `WATCH` ran since the last `EXEC`, `DISCARD`, `UNWATCH` or
    /// `RESET` (its keys are this node's: see [`ClientConn::try_route`]).
    watching: bool,
    /// The replies to write.
    output: Output,
    /// Set once the connection is to be closed when its output is out.
    closing: Option<Close>,
    /// The client closed its side: close once every reply is out.
    eof: bool,
    tally: Tally,
    /// Who the slow log says ran this connection's commands.
    caller: Arc<Caller>,
    /// Bytes read and reply bytes queued, not yet added to the shared
    /// counters.
    net_input: u64,
    net_output: u64,
    /// When the connection was accepted, for `CLIENT INFO`'s `age`.
    connected: Instant,
}

impl ClientConn {
    /// The state of a new connection from `addr` to the node's `laddr`.
    pub fn new(ctx: Arc<Context>, addr: String, laddr: String) -> ClientConn {
        let id = ctx.next_id();
        let decoder = RequestDecoder::new(ctx.settings.limits);
        let caller = Arc::new(Caller {
            recorder: Arc::clone(&ctx.recorder),
            addr: addr.clone(),
            name: None,
        });
        ClientConn {
            ctx,
            session: Session::new(id, addr, laddr),
            decoder,
            input: Vec::new(),
            more_input: false,
            unrun: VecDeque::new(),
            blocked: None,
            held: VecDeque::new(),
            pending: VecDeque::new(),
            in_flight: false,
            outbox: Vec::new(),
            forwarding: false,
            txn_place: None,
            watching: false,
            output: Output::new(),
            closing: None,
            eof: false,
            tally: Tally::default(),
            caller,
            net_input: 0,
            net_output: 0,
            connected: Instant::now(),
        }
    }

    /// The client's address.
    pub fn addr(&self) -> &str {
        &self.session.addr
    }

    /// The replies waiting to be written.
    pub fn output(&mut self) -> &mut Output {
        &mut self.output
    }

    /// Whether the connection should read more from its socket now: it
    /// is not closing, has nothing decoded waiting, nothing at the store
    /// thread, and its output is under the soft mark.
    pub fn wants_input(&self) -> bool {
        !self.eof && !self.more_input && self.takes_requests()
    }

    /// Whether more requests may be decoded now: not closing, nothing at
    /// the store thread or waiting to go there, output under the soft
    /// mark.
    fn takes_requests(&self) -> bool {
        self.closing.is_none()
            && !self.in_flight
            && !self.forwarding
            && self.outbox.is_empty()
            && self.unrun.is_empty()
            && self.output.len() < self.ctx.settings.soft_output()
    }

    /// Takes bytes read from the socket: decodes the complete requests
    /// among them (as many as a batch takes) and keeps the rest.
    pub fn ingest(&mut self, bytes: &[u8]) {
        self.net_input += bytes.len() as u64;
        if self.input.is_empty() {
            let used = self.decode(bytes);
            self.input.extend_from_slice(&bytes[used..]);
        } else {
            self.input.extend_from_slice(bytes);
            self.decode_buffered();
        }
        self.check_input_limit();
    }

    /// Refuses the connection: `reply` (already encoded) is its only
    /// reply, and the connection closes once it is written.
    pub fn refuse(&mut self, reply: &[u8]) {
        self.output.push_bytes(reply);
        self.closing = Some(Close::Refused);
        self.input = Vec::new();
    }

    /// The client closed its side: what it sent is still answered.
    pub fn end_of_input(&mut self) {
        self.eof = true;
    }

    /// Whether requests are buffered that could be decoded now: a batch
    /// was full and nothing holds the connection back (no store work out,
    /// output under the soft mark). The loop must then serve it again by
    /// itself: no store answer and no readiness event will.
    pub fn can_decode_more(&self) -> bool {
        self.more_input && self.takes_requests()
    }

    /// Decodes more of what is buffered, if the connection can take it.
    pub fn resume(&mut self) {
        if self.more_input && self.takes_requests() {
            self.decode_buffered();
        }
    }

    fn decode_buffered(&mut self) {
        let input = std::mem::take(&mut self.input);
        let used = self.decode(&input);
        self.input = input;
        self.input.drain(..used);
        if self.input.is_empty() && self.input.capacity() > 0 {
            // An idle connection keeps no buffer.
            self.input = Vec::new();
        }
    }

    /// A buffered request over the limits is refused by the decoder well
    /// before this; bytes past it mean the client ignores the error.
    fn check_input_limit(&mut self) {
        let limits = self.decoder.limits();
        let most = limits
            .max_request_len
            .max(limits.max_inline_len)
            .saturating_add(64 * 1024);
        if self.input.len() > most && self.closing.is_none() {
            self.closing = Some(Close::Protocol("request over the size limit".into()));
            self.input = Vec::new();
        }
    }

    /// Decodes and dispatches up to a batch of requests from `buf`;
    /// returns how many bytes they took.
    fn decode(&mut self, buf: &[u8]) -> usize {
        if self.closing.is_some() {
            return buf.len();
        }
        let batch = self.decoder.decode_batch(buf, MAX_BATCH);
        self.more_input = batch.requests.len() == MAX_BATCH;
        let count = batch.requests.len() as u64;
        let slowlog_on = self.ctx.recorder.slowlog.is_on();
        // One clock read per request: the end of one request's dispatch
        // is the start of the next one's.
        let mut started = Instant::now();
        for request in batch.requests {
            let args = slowlog_on.then(|| slow_args(&request.args));
            if let Some((command, route)) = self.try_route(&request) {
                let dispatched = Instant::now();
                let here = nanos_between(started, dispatched);
                started = dispatched;
                self.run_route(command, route, here, args);
                continue;
            }
            let mut steps = self.exec_steps(&request.args);
            // An EXEC writes if a command it runs does.
            let exec_writes = (steps.iter().flatten().flatten())
                .any(|&slot| slots()[slot].flags.contains(&"write"));
            self.session.age_secs = started.saturating_duration_since(self.connected).as_secs();
            let (outcome, action) = dispatch_traced(&mut self.session, request, &self.ctx.facts);
            let dispatched = Instant::now();
            let here = nanos_between(started, dispatched);
            started = dispatched;
            let ran = match outcome {
                Outcome::Ran(command) => {
                    if matches!(command.name, "hello" | "client|setname" | "reset") {
                        self.refresh_caller();
                    }
                    Some(command)
                }
                Outcome::Rejected(command) => {
                    if let Some(slot) = slot_of(command) {
                        self.ctx.recorder.commands.record_rejected(slot);
                    }
                    None
                }
                Outcome::Unknown | Outcome::Queued(_) => None,
            };
            let slot = ran.and_then(slot_of);
            // The slow log skips EXEC (its commands are timed as one).
            let args = args.filter(|_| ran.is_some_and(|c| !c.flags.contains(&"skip_slowlog")));
            match action {
                Action::Reply(reply) => {
                    self.record_here(slot, here, args, &reply);
                    self.answer(reply);
                }
                Action::Store(work) => {
                    self.queue(work, slot, here, args);
                    if let Some(Pending::Store(_, timing)) = self.pending.back_mut() {
                        timing.steps = steps.take();
                    }
                    if ran.is_some_and(|c| c.flags.contains(&"write")) || exec_writes {
                        self.confirm();
                    }
                }
                Action::Node(NodeQuery::Wait {
                    replicas,
                    timeout_ms,
                }) => self.wait(
                    replicas,
                    timeout_ms,
                    Timing::new(slot, here, args, &self.caller),
                    WaitFor::Client,
                ),
                Action::Node(query) if query.needs_store() => {
                    let work = self.ctx.node_work(query);
                    self.queue(work, slot, here, args);
                }
                Action::Node(query) => {
                    let reply = self.ctx.answer_here(&query);
                    self.record_here(slot, here, args, &reply);
                    self.answer(reply);
                }
                Action::Close(reply) => {
                    self.record_here(slot, here, args, &reply);
                    self.answer(reply);
                    self.closing = Some(Close::Done);
                    break;
                }
            }
        }
        let total = self
            .ctx
            .stats
            .total_commands
            .fetch_add(count, Ordering::Relaxed)
            + count;
        self.ctx.tick(started, total);
        self.count();
        if let Some(e) = batch.error {
            if self.closing.is_none() {
                let reply = e.to_reply();
                self.count_error(None, &reply);
                self.answer(reply);
                self.closing = Some(Close::Protocol(format!("protocol error: {e}")));
            }
            return buf.len();
        }
        if self.closing.is_some() {
            self.more_input = false;
            return buf.len();
        }
        batch.consumed
    }

    /// If `args` is an `EXEC` that will run its transaction: the slots of
    /// the commands queued, in order (`None` for one not in the table).
    fn exec_steps(&mut self, args: &[Vec<u8>]) -> Option<Vec<Option<usize>>> {
        if !args.first()?.eq_ignore_ascii_case(b"exec") {
            return None;
        }
        let transaction = self.session.transaction_mut().as_ref()?;
        if transaction.failed {
            return None;
        }
        let slots = transaction.queued.iter();
        Some(
            slots
                .map(|r| lookup(&r.args).ok().and_then(slot_of))
                .collect(),
        )
    }

    /// Where `request` runs when the cluster is sharded, if not simply
    /// here: `None` leaves it to [`dispatch_traced`], as without
    /// sharding (a command for this node's keys, one that names no key,
    /// a connection another member forwards on, or a request that
    /// dispatch refuses anyway).
    ///
    /// Inside `MULTI`, every queued command's keys must be served by one
    /// set of nodes, this one or another: a command whose keys are not
    /// is refused with `CROSSSLOT` and the transaction fails (`EXEC`
    /// answers `EXECABORT`, as Redis Cluster does); a transaction whose
    /// keys are all served elsewhere is forwarded whole at `EXEC`
    /// (`MULTI`, its commands, `EXEC`, on one connection). `WATCH` of a
    /// key this node does not hold is refused: a forwarded `WATCH` would
    /// only watch from `EXEC` on, which protects nothing; and keys
    /// watched here make a transaction whose keys are elsewhere
    /// `CROSSSLOT`.
    fn try_route(&mut self, request: &Request) -> Option<(&'static Command, Route)> {
        if self.session.proxied {
            return None;
        }
        let routing = Arc::clone(self.ctx.routes()?);
        let command = lookup(&request.args).ok()?;
        let facts = &self.ctx.facts;
        if facts.auth.is_required()
            && !self.session.is_authenticated()
            && !command.flags.contains(&"no_auth")
        {
            return None;
        }
        let placed = routing.placed()?;
        // A partition this node holds but is still gaining is served by
        // another holder (reads see the old replicas), unless none is
        // left to serve it.
        let serving = routing.serving();
        let place = |slot: u16| {
            if serving.contains(crate::placement::partition::partition_of_slot(slot)) {
                return Place::Here;
            }
            // Empty if the layout changed since `serving` and gave this
            // node the slot, or no other member holds it.
            let targets = routing.targets(slot);
            if targets.is_empty() {
                Place::Here
            } else {
                Place::There(targets)
            }
        };
        let args = &request.args;
        let in_transaction = self.session.in_transaction();
        let crossslot = || Route::Refuse(Reply::Error(CROSSSLOT.into()));
        match command.name {
            "multi" => {
                if !in_transaction {
                    self.txn_place = None;
                }
                None
            }
            "discard" | "reset" => {
                self.txn_place = None;
                self.watching = false;
                None
            }
            "unwatch" => {
                self.watching = false;
                None
            }
            "watch" if !in_transaction => match route::common_place(command, args, &place) {
                None | Some(Ok((_, Place::Here))) => {
                    self.watching = true;
                    None
                }
                Some(_) => Some((
                    command,
                    Route::Refuse(Reply::Error(
                        "ERR WATCH of a key this node does not hold: send the transaction to a \
                         replica of its slot (CLUSTER SLOTS), as a cluster client does"
                            .into(),
                    )),
                )),
            },
            "exec" if in_transaction => {
                let place = self.txn_place.take();
                self.watching = false;
                let failed = self
                    .session
                    .transaction_mut()
                    .as_ref()
                    .is_none_or(|t| t.failed);
                let (slot, Place::There(targets)) = place? else {
                    return None;
                };
                if failed {
                    return None;
                }
                let transaction = self.session.transaction_mut().take()?;
                // A SELECT among the queued commands changes the client's
                // database as it would here (the other node's connection
                // is set again before its next part).
                for request in &transaction.queued {
                    let args = &request.args;
                    if args.len() == 2 && args[0].eq_ignore_ascii_case(b"select") {
                        let index = crate::redis::command::parse_i64(&args[1]);
                        let databases = self.ctx.settings.databases;
                        if let Some(db) = index.and_then(|i| Database::checked(i, databases)) {
                            self.session.select(db);
                        }
                    }
                }
                let mut commands = vec![vec![b"MULTI".to_vec()]];
                commands.extend(transaction.queued.into_iter().map(|r| r.args));
                commands.push(vec![b"EXEC".to_vec()]);
                Some((
                    command,
                    Route::Routed {
                        local: None,
                        remote: vec![Remote {
                            slot: Some(slot),
                            targets,
                            commands,
                        }],
                        plan: Plan::Whole,
                    },
                ))
            }
            name if in_transaction
                && !matches!(name, "exec" | "discard" | "multi" | "watch" | "quit") =>
            {
                let fits = match route::common_place(command, args, &place) {
                    None => true,
                    Some(Err(())) => false,
                    Some(Ok((slot, here))) => match &self.txn_place {
                        None if self.watching && here != Place::Here => false,
                        None => {
                            self.txn_place = Some((slot, here));
                            true
                        }
                        Some((_, there)) => there.same_as(&here),
                    },
                };
                if fits {
                    return None;
                }
                if let Some(t) = self.session.transaction_mut().as_mut() {
                    t.failed = true;
                }
                Some((command, crossslot()))
            }
            _ if in_transaction => None,
            _ => {
                let fans_out = matches!(command.name, "flushall" | "flushdb" | "netdb.keys");
                let members: Vec<String> = if fans_out {
                    let ids = crate::routing::placed_ids(&placed.members);
                    placed
                        .members
                        .iter()
                        .filter(|m| m.id != placed.me && ids.contains(&m.id.as_str()))
                        .map(|m| m.addr.clone())
                        .collect()
                } else {
                    Vec::new()
                };
                match route::route(command, args, &place, &members) {
                    Route::Here => None,
                    other => Some((command, other)),
                }
            }
        }
    }

    /// Queues a routed command: its local part (if any) with the store
    /// work, its forwarded parts in the outbox, and its place among the
    /// replies.
    fn run_route(
        &mut self,
        command: &'static Command,
        route: Route,
        here: u64,
        args: Option<SlowArgs>,
    ) {
        let slot = slot_of(command);
        let (local, remote, plan) = match route {
            Route::Here => return,
            Route::Refuse(reply) => {
                self.record_here(slot, here, args, &reply);
                self.answer(reply);
                return;
            }
            Route::Routed {
                local,
                remote,
                plan,
            } => (local, remote, plan),
        };
        let mut stored = false;
        let local = local.map(|local_args| {
            match crate::redis::command::run(
                command,
                local_args,
                &mut self.session,
                &self.ctx.facts,
            ) {
                Action::Store(work) => {
                    if self.blocked.is_some() {
                        self.held.push_back((Some(work), None));
                    } else {
                        self.unrun.push_back(work);
                    }
                    stored = true;
                    None
                }
                Action::Reply(reply) | Action::Close(reply) => Some(reply.into()),
                Action::Node(_) => Some(Reply::Error("ERR cannot be split".into()).into()),
            }
        });
        let proto = self.session.protocol();
        let db = self.session.database();
        let parts = remote.len();
        self.outbox.extend(remote.into_iter().map(|remote| Item {
            remote,
            db,
            protocol: proto,
        }));
        let routed = Routed {
            plan,
            local,
            parts,
            remote: (parts == 0).then(Vec::new),
            short: None,
        };
        let timing = Timing::new(slot, here, args, &self.caller);
        self.pending
            .push_back(Pending::Routed(proto, timing, Box::new(routed)));
        // The forwarded parts wait for their replicas there; the part
        // written here, here.
        if stored && command.flags.contains(&"write") {
            self.confirm();
        }
        self.flush_ready();
    }

    /// The parts to forward now, if any: the I/O thread hands them to the
    /// forwarder, and their replies come back through
    /// [`ClientConn::forwarded`].
    pub fn take_forwards(&mut self) -> Option<Vec<Item>> {
        if self.forwarding || self.outbox.is_empty() || self.closing_now() {
            return None;
        }
        self.forwarding = true;
        Some(std::mem::take(&mut self.outbox))
    }

    /// Takes the replies of the forwarding job back, one per part sent,
    /// in order.
    pub fn forwarded(&mut self, replies: Vec<Reply>) {
        self.forwarding = false;
        let mut replies = replies.into_iter();
        for pending in &mut self.pending {
            if let Pending::Routed(_, _, routed) = pending {
                if routed.remote.is_none() {
                    routed.remote = Some(replies.by_ref().take(routed.parts).collect());
                }
            }
        }
        self.flush_ready();
        self.count();
        self.check_output_limit(false);
    }

    /// Writes out the replies at the front whose turn has come.
    fn flush_ready(&mut self) {
        loop {
            match self.pending.front() {
                // A write's reply waits for its replicas.
                Some(Pending::Ready(..) | Pending::Routed(..))
                    if matches!(self.pending.get(1), Some(Pending::Wait(.., WaitFor::Write))) =>
                {
                    return
                }
                Some(Pending::Gone) => {
                    self.pending.pop_front();
                    continue;
                }
                Some(Pending::Ready(..)) => {}
                Some(Pending::Routed(_, _, routed)) if routed.is_complete() => {}
                _ => return,
            }
            match self.pending.pop_front() {
                Some(Pending::Ready(reply, proto)) => self.push_out(reply, proto),
                Some(Pending::Routed(proto, timing, routed)) => {
                    let Routed {
                        plan,
                        local,
                        remote,
                        short,
                        ..
                    } = *routed;
                    let has_local = local.is_some();
                    let mut parts = Vec::new();
                    if let Some(Some(answer)) = local {
                        self.tally.add(answer.tally);
                        parts.push(answer.reply);
                    }
                    parts.extend(remote.unwrap_or_default());
                    let mut reply = plan.gather(parts, has_local);
                    if let Some(error) = short.filter(|_| !matches!(reply, Reply::Error(_))) {
                        reply = error;
                    }
                    if let Some(slot) = timing.slot {
                        timing.caller.record(slot, timing.here, timing.args);
                    }
                    self.count_error(timing.slot, &reply);
                    self.push_out(reply, proto);
                }
                _ => return,
            }
        }
    }

    fn queue(
        &mut self,
        work: StoreWork<Answer>,
        slot: Option<usize>,
        here: u64,
        args: Option<SlowArgs>,
    ) {
        let timing = Timing::new(slot, here, args, &self.caller);
        if self.blocked.is_some() {
            self.held.push_back((Some(work), None));
        } else {
            self.unrun.push_back(work);
        }
        let proto = self.session.protocol();
        self.pending.push_back(Pending::Store(proto, timing));
    }

    /// Queues a `WAIT` for `replicas` peers, for up to `timeout_ms` (0: for
    /// ever): the connection is blocked behind it (see [`Blocked`]).
    fn wait(&mut self, replicas: i64, timeout_ms: u64, timing: Timing, waits: WaitFor) {
        let proto = self.session.protocol();
        self.pending.push_back(Pending::Wait(proto, timing, waits));
        if self.blocked.is_some() {
            // Behind another WAIT: it starts when that one is answered.
            self.held.push_back((None, Some((replicas, timeout_ms))));
        } else {
            self.block(replicas, timeout_ms);
        }
    }

    /// Holds the reply of the write just queued until `quorum` replicas
    /// have it, this node one of them: a `WAIT` for the others whose own
    /// reply is not sent. As a `WAIT`, it blocks the connection's later
    /// commands (a client pipelining writes gets each acknowledged in
    /// turn), and counts the peers that hold every write this node took
    /// up to it; on a sharded node, only the replicas of the write's
    /// partition (see [`Db::peers_with_writes_up_to`]). Nothing with
    /// `--write-replicas 1`.
    fn confirm(&mut self) {
        let quorum = self.ctx.settings.write_quorum;
        if quorum.replicas <= 1 {
            return;
        }
        let others = i64::try_from(quorum.replicas - 1).unwrap_or(i64::MAX);
        let timeout_ms = u64::try_from(quorum.timeout.as_millis()).unwrap_or(u64::MAX);
        let timing = Timing::new(None, 0, None, &self.caller);
        self.wait(others, timeout_ms.max(1), timing, WaitFor::Write);
    }

    /// Blocks the connection behind a `WAIT` that starts now, and queues
    /// its first count.
    fn block(&mut self, replicas: i64, timeout_ms: u64) {
        let target = Arc::new(AtomicU64::new(WAIT_TARGET_UNSET));
        self.unrun
            .push_back(self.ctx.wait_work(Arc::clone(&target)));
        self.blocked = Some(Blocked {
            replicas,
            target,
            deadline: (timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(timeout_ms)),
            recheck_at: None,
            asked: 0,
        });
    }

    /// When the `WAIT` this connection is blocked on asks again, if it is
    /// waiting to: the I/O loop serves the connection then.
    pub fn recheck_at(&self) -> Option<Instant> {
        self.blocked.as_ref().and_then(|b| b.recheck_at)
    }

    /// Queues a reply that needs no store, in its turn.
    fn answer(&mut self, reply: Reply) {
        let proto = self.session.protocol();
        if self.pending.is_empty() {
            self.push_out(reply, proto);
        } else {
            self.pending.push_back(Pending::Ready(reply, proto));
        }
    }

    /// Puts a reply on the output, counting its bytes.
    fn push_out(&mut self, reply: Reply, proto: Protocol) {
        let before = self.output.len();
        self.output.push_reply_as(reply, proto);
        self.net_output += self.output.len().saturating_sub(before) as u64;
    }

    /// The slow log's name for this connection, after its name changed.
    /// Tells the connection its socket's file descriptor, which
    /// `CLIENT INFO` shows.
    pub fn set_fd(&mut self, fd: i64) {
        self.session.fd = fd;
    }

    fn refresh_caller(&mut self) {
        if self.caller.name != self.session.name {
            self.caller = Arc::new(Caller {
                recorder: Arc::clone(&self.ctx.recorder),
                addr: self.session.addr.clone(),
                name: self.session.name.clone(),
            });
        }
    }

    /// Records a command answered on this thread: its run (if it ran),
    /// the `nanos` it took, and its error.
    fn record_here(
        &mut self,
        slot: Option<usize>,
        nanos: u64,
        args: Option<SlowArgs>,
        reply: &Reply,
    ) {
        if let Some(slot) = slot {
            self.caller.record(slot, nanos, args);
        }
        self.count_error(slot, reply);
    }

    /// Counts the commands an `EXEC` ran, one by one, as Redis does:
    /// each a call of its own (its duration `nanos`, its step's on the
    /// store thread), and a failed one if its reply in `reply` (the
    /// `EXEC`'s array) is an error, which `errorstats` counts too.
    fn count_steps(&self, slots: &[Option<usize>], nanos: &[u64], reply: &Reply) {
        let commands = &self.ctx.recorder.commands;
        let replies = match reply {
            Reply::Array(replies) if replies.len() == slots.len() => Some(replies),
            _ => None,
        };
        for (i, (slot, &nanos)) in slots.iter().zip(nanos).enumerate() {
            if let Some(slot) = *slot {
                commands.record_call(slot, nanos);
            }
            if let Some(Reply::Error(text)) = replies.and_then(|r| r.get(i)) {
                commands.record_error(text);
                if let Some(slot) = *slot {
                    commands.record_failed(slot);
                }
            }
        }
    }

    /// Counts `reply` in `errorstats` if it is an error, and as a failed
    /// call of the command in `slot` (a command that ran).
    fn count_error(&self, slot: Option<usize>, reply: &Reply) {
        if let Reply::Error(text) = reply {
            let commands = &self.ctx.recorder.commands;
            commands.record_error(text);
            if let Some(slot) = slot {
                commands.record_failed(slot);
            }
        }
    }

    /// Whether the connection has store work to send, now or once its
    /// part at the store thread is back: commands decoded, requests
    /// buffered, or a `WAIT` that will ask again.
    pub fn has_work(&self) -> bool {
        !self.unrun.is_empty() || self.more_input || self.recheck_at().is_some()
    }

    /// The store work to send now, if any: every command decoded and not
    /// yet run, with budgets from the output it already holds.
    pub fn take_work(&mut self) -> Option<Part<Answer>> {
        if self.in_flight || self.closing_now() {
            return None;
        }
        if let Some(blocked) = self.blocked.as_mut() {
            match blocked.recheck_at {
                // The WAIT asks again, alone.
                Some(at) if at <= Instant::now() => {
                    blocked.recheck_at = None;
                    let work = self.ctx.wait_work(Arc::clone(&blocked.target));
                    self.unrun.push_front(work);
                }
                Some(_) => return None,
                None => {}
            }
        }
        if self.unrun.is_empty() {
            return None;
        }
        let settings = &self.ctx.settings;
        let held = self.output.len();
        if held >= settings.soft_output() {
            return None;
        }
        self.in_flight = true;
        Some(Part {
            commands: std::mem::take(&mut self.unrun),
            replies: Vec::new(),
            durations: Vec::new(),
            steps: Vec::new(),
            soft_budget: settings.soft_output() - held,
            hard_budget: settings.max_output.saturating_sub(held),
            over_budget: false,
        })
    }

    /// Takes a part back from the store thread: its replies go out in
    /// their turn; commands it did not run wait for the output to drain.
    pub fn complete(&mut self, part: Part<Answer>) {
        self.in_flight = false;
        let Part {
            commands,
            replies,
            durations,
            steps,
            over_budget,
            ..
        } = part;
        let mut steps = steps.into_iter().peekable();
        let mut replies = replies.into_iter().enumerate();
        let mut durations = durations.into_iter();
        // Each store answer goes to the next entry waiting for one, in
        // order; entries before it may still wait for forwarded replies,
        // so answers are kept in place and written out once their turn
        // comes (`flush_ready`).
        for at in 0..self.pending.len() {
            let pending = std::mem::replace(
                &mut self.pending[at],
                Pending::Ready(Reply::Null, Protocol::Resp2),
            );
            let (resolved, stop) = match pending {
                Pending::Ready(..) | Pending::Gone => (pending, false),
                Pending::Routed(proto, timing, mut routed) => {
                    if !matches!(routed.local, Some(None)) {
                        (Pending::Routed(proto, timing, routed), false)
                    } else if let Some((_, answer)) = replies.next() {
                        let _ = durations.next();
                        routed.local = Some(Some(answer));
                        (Pending::Routed(proto, timing, routed), false)
                    } else {
                        (Pending::Routed(proto, timing, routed), true)
                    }
                }
                Pending::Store(proto, timing) => match replies.next() {
                    Some((index, answer)) => {
                        // One duration a reply, counted or not.
                        let there = durations.next().unwrap_or(0);
                        let ran = steps.next_if(|(i, _)| *i == index).map(|(_, s)| s);
                        if let (Some(slots), Some(ran)) = (&timing.steps, ran) {
                            self.count_steps(slots, &ran, &answer.reply);
                        }
                        if let Some(slot) = timing.slot {
                            let nanos = timing.here.saturating_add(there);
                            timing.caller.record(slot, nanos, timing.args);
                        }
                        self.tally.add(answer.tally);
                        self.count_error(timing.slot, &answer.reply);
                        (Pending::Ready(answer.reply, proto), false)
                    }
                    None => (Pending::Store(proto, timing), true),
                },
                Pending::Wait(proto, timing, waits) => {
                    let Some((_, answer)) = replies.next() else {
                        self.pending[at] = Pending::Wait(proto, timing, waits);
                        break;
                    };
                    let there = durations.next().unwrap_or(0);
                    let now = Instant::now();
                    let enough = match (&answer.reply, self.blocked.as_ref()) {
                        (Reply::Integer(n), Some(b)) => {
                            *n >= b.replicas || b.deadline.is_some_and(|d| d <= now)
                        }
                        // An error, or not blocked: answer as it is.
                        _ => true,
                    };
                    if !enough {
                        if let Some(b) = self.blocked.as_mut() {
                            b.recheck_at = Some(now + recheck_after(b.asked));
                            b.asked = b.asked.saturating_add(1);
                        }
                        self.pending[at] = Pending::Wait(proto, timing, waits);
                        break;
                    }
                    if waits == WaitFor::Write {
                        let wanted = self.blocked.as_ref().map_or(0, |b| b.replicas);
                        self.unblock();
                        if let Reply::Integer(reached) = answer.reply {
                            if reached < wanted {
                                self.short_of_replicas(at, reached);
                            }
                        }
                        self.pending[at] = Pending::Gone;
                        continue;
                    }
                    if let Some(slot) = timing.slot {
                        let nanos = timing.here.saturating_add(there);
                        timing.caller.record(slot, nanos, timing.args);
                    }
                    self.count_error(timing.slot, &answer.reply);
                    self.unblock();
                    (Pending::Ready(answer.reply, proto), false)
                }
            };
            self.pending[at] = resolved;
            if stop {
                break;
            }
        }
        self.flush_ready();
        let mut commands = commands;
        commands.extend(self.unrun.drain(..));
        self.unrun = commands;
        self.count();
        self.check_output_limit(over_budget);
    }

    /// Closes the connection if its output passed the limit (or a reply
    /// was not built because it would have): nothing more runs for it.
    fn check_output_limit(&mut self, over_budget: bool) {
        let limit = self.ctx.settings.max_output;
        if over_budget || self.output.len() > limit {
            self.ctx.stats.output_closed.fetch_add(1, Ordering::Relaxed);
            self.closing = Some(Close::OutputLimit(limit));
            self.unrun.clear();
            self.held.clear();
            self.blocked = None;
            self.pending.clear();
            self.outbox.clear();
        }
    }

    /// The write whose reply is at `at - 1` reached only `peers` peers in
    /// time: its reply becomes Redis's `NOREPLICAS` error (an error stays
    /// as it is: nothing was written).
    fn short_of_replicas(&mut self, at: usize, peers: i64) {
        let quorum = self.ctx.settings.write_quorum;
        let text = format!(
            "NOREPLICAS the write reached {} of the {} replicas --write-replicas asks for \
             within {} ms; it stays on those it reached and goes on to the others when \
             they are back",
            peers.saturating_add(1),
            quorum.replicas,
            quorum.timeout.as_millis()
        );
        match at.checked_sub(1).and_then(|i| self.pending.get_mut(i)) {
            Some(Pending::Ready(Reply::Error(_), _)) => {}
            Some(Pending::Ready(reply, _)) => {
                self.ctx.recorder.commands.record_error(&text);
                *reply = Reply::Error(text);
            }
            // Counted once gathered, if it is the reply.
            Some(Pending::Routed(_, _, routed)) => routed.short = Some(Reply::Error(text)),
            _ => {}
        }
    }

    /// The `WAIT` is answered: the commands held behind it go on, up to
    /// the next `WAIT` among them, which blocks the connection again.
    fn unblock(&mut self) {
        self.blocked = None;
        while let Some((work, wait)) = self.held.pop_front() {
            self.unrun.extend(work);
            if let Some((replicas, timeout_ms)) = wait {
                self.block(replicas, timeout_ms);
                return;
            }
        }
    }

    /// The store thread is gone: every waiting command is answered so.
    pub fn store_gone(&mut self) {
        self.in_flight = false;
        self.outbox.clear();
        self.blocked = None;
        self.held.clear();
        self.unrun.clear();
        self.pending.clear();
        self.output
            .push_reply(Reply::Error("ERR the node is shutting down".into()));
        self.closing = Some(Close::Stopped);
    }

    /// Whether the connection is to be closed now, and why: it is
    /// closing, or the client has closed its side, and nothing is left to
    /// run or write (an output over the limit is dropped at once).
    pub fn finished(&self) -> Option<Close> {
        if let Some(Close::OutputLimit(limit)) = self.closing {
            return Some(Close::OutputLimit(limit));
        }
        let idle = !self.in_flight
            && !self.forwarding
            && self.pending.is_empty()
            && self.output.is_empty();
        match &self.closing {
            Some(close) if idle => Some(close.clone()),
            Some(_) => None,
            None if self.eof && idle && self.unrun.is_empty() && !self.more_input => {
                Some(Close::Done)
            }
            None => None,
        }
    }

    /// Whether the connection waits for nothing: no work at the store
    /// thread or queued for it, no reply unwritten.
    pub fn is_idle(&self) -> bool {
        !self.in_flight
            && !self.forwarding
            && self.outbox.is_empty()
            && self.unrun.is_empty()
            && self.output.is_empty()
    }

    /// Whether nothing more will be run for this connection.
    fn closing_now(&self) -> bool {
        matches!(
            self.closing,
            Some(Close::OutputLimit(_)) | Some(Close::Stopped)
        )
    }

    /// Adds the connection's reads and bytes to the shared counters.
    fn count(&mut self) {
        let stats = &self.ctx.stats;
        if self.tally != Tally::default() {
            stats.hits.fetch_add(self.tally.hits, Ordering::Relaxed);
            stats.misses.fetch_add(self.tally.misses, Ordering::Relaxed);
            self.tally = Tally::default();
        }
        if self.net_input > 0 {
            stats.net_input.fetch_add(self.net_input, Ordering::Relaxed);
            self.net_input = 0;
        }
        if self.net_output > 0 {
            stats
                .net_output
                .fetch_add(self.net_output, Ordering::Relaxed);
            self.net_output = 0;
        }
    }
}

/// What the slow log keeps of a request's arguments: passwords are
/// `(redacted)`, as Redis shows them (`AUTH`'s arguments, and the two
/// after `HELLO ... AUTH`).
fn slow_args(args: &[Vec<u8>]) -> SlowArgs {
    let name = args.first().map_or(&[][..], Vec::as_slice);
    let redacted = || b"(redacted)".to_vec();
    if name.eq_ignore_ascii_case(b"auth") {
        let mut shown = args.to_vec();
        shown.iter_mut().skip(1).for_each(|a| *a = redacted());
        return SlowArgs::of(&shown);
    }
    if name.eq_ignore_ascii_case(b"hello") {
        if let Some(at) = args.iter().position(|a| a.eq_ignore_ascii_case(b"auth")) {
            let mut shown = args.to_vec();
            shown
                .iter_mut()
                .skip(at + 1)
                .take(2)
                .for_each(|a| *a = redacted());
            return SlowArgs::of(&shown);
        }
    }
    SlowArgs::of(args)
}

/// The default idle timeout of a client connection: none, as Redis's
/// `timeout 0`. Idle connections cost no thread and a few hundred bytes,
/// and connection pools (node-redis, redis-py) keep connections open
/// between bursts; closing them under the pool makes some clients fail.
pub const DEFAULT_IDLE_TIMEOUT: Option<Duration> = None;

/// The default `--max-client-output-bytes`.
pub const DEFAULT_MAX_OUTPUT: usize = 256 * 1024 * 1024;

/// The default most client connections at once (Redis's `maxclients`).
pub const DEFAULT_MAX_CLIENTS: usize = 10_000;

/// The default largest request, in bytes.
pub const DEFAULT_MAX_REQUEST: usize = 256 * 1024 * 1024;

/// Limits for a request at most `max_request` bytes long.
pub fn limits(max_request: usize) -> Limits {
    Limits {
        max_request_len: max_request,
        max_bulk_len: max_request.min(crate::redis::resp::DEFAULT_MAX_BULK_LEN),
        ..Limits::default()
    }
}

/// How a node with these disk settings keeps its data, as `INFO` and
/// `CONFIG GET` report it: the data directory made absolute where it can
/// be (it exists by the time the clients start).
pub fn persistence(disk: Option<&DiskSettings>) -> Persistence {
    match disk {
        None => Persistence::InMemory,
        Some(d) => Persistence::Disk(DiskStatus {
            dir: std::fs::canonicalize(&d.dir)
                .unwrap_or_else(|_| d.dir.clone())
                .display()
                .to_string(),
            fsync: d.fsync,
            compaction: None,
            log: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{service, GroupDone};
    use crate::store::Store;
    use crossbeam_channel::bounded;

    fn context(max_output: usize) -> (Arc<Context>, std::thread::JoinHandle<()>) {
        context_with(max_output, SlowlogSettings::default())
    }

    fn context_with(
        max_output: usize,
        slowlog: SlowlogSettings,
    ) -> (Arc<Context>, std::thread::JoinHandle<()>) {
        let (store, thread) = service::spawn(Store::new("c#1", 1 << 22), None, Box::new(|_| {}))
            .expect("store thread");
        let settings = ClientSettings {
            max_clients: 10,
            idle_timeout: None,
            limits: limits(DEFAULT_MAX_REQUEST),
            persistence: Persistence::InMemory,
            max_output,
            auth: ClientAuth::default(),
            protected_mode: false,
            databases: crate::engine::database::DEFAULT_DATABASES,
            slowlog,
            write_quorum: WriteQuorum::default(),
        };
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("address");
        (Arc::new(Context::new("c", addr, store, settings)), thread)
    }

    /// Sends the connection's work, if any, and takes the answers back, as
    /// an I/O thread does; says whether there was work.
    fn round(conn: &mut ClientConn) -> bool {
        let Some(part) = conn.take_work() else {
            return false;
        };
        let (tx, rx) = bounded(1);
        let done: GroupDone<Answer> = Box::new(move |parts| {
            let _ = tx.send(parts);
        });
        conn.ctx.store.submit(vec![part], done).expect("sent");
        let mut parts = rx.recv().expect("answered");
        conn.complete(parts.pop().expect("one part"));
        true
    }

    fn drain(conn: &mut ClientConn) -> Vec<u8> {
        let mut out = Vec::new();
        conn.output().write_to(&mut out).expect("written");
        out
    }

    fn command(args: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        crate::redis::resp::encode_command(args, &mut out);
        out
    }

    /// The counts of the command named `name`.
    fn stat(ctx: &Context, name: &str) -> crate::status::activity::CommandStat {
        let slot = slots()
            .iter()
            .position(|c| c.name == name)
            .expect("in the table");
        ctx.recorder.commands.stat(slot)
    }

    #[test]
    fn commands_are_counted_timed_and_slow_logged() {
        let every = SlowlogSettings {
            slower_than_us: 0,
            max_len: 8,
        };
        let (ctx, _thread) = context_with(DEFAULT_MAX_OUTPUT, every);
        let mut conn = ClientConn::new(Arc::clone(&ctx), "10.0.0.1:5".into(), "b".into());
        let mut sent = Vec::new();
        for args in [
            &[&b"SET"[..], b"k", b"v"][..],
            &[b"GET", b"k"],
            &[b"GET", b"nope"],
            &[b"GET"],
            &[b"INCR", b"k"],
            &[b"nope"],
            &[b"CLIENT", b"SETNAME", b"worker"],
            &[b"AUTH", b"secret"],
            &[b"PING"],
        ] {
            sent.extend(command(args));
        }
        conn.ingest(&sent);
        while round(&mut conn) {}
        let out = drain(&mut conn);
        assert!(out.starts_with(b"+OK\r\n$1\r\nv\r\n$-1\r\n-ERR wrong number"));

        let get = stat(&ctx, "get");
        assert_eq!((get.calls, get.rejected_calls, get.failed_calls), (2, 1, 0));
        assert_eq!(stat(&ctx, "set").calls, 1);
        let incr = stat(&ctx, "incr");
        assert_eq!((incr.calls, incr.failed_calls), (1, 1));
        assert_eq!(stat(&ctx, "client|setname").calls, 1);
        assert_eq!(stat(&ctx, "auth").failed_calls, 1);
        // Arity, INCR of a non-number, the unknown command, AUTH without a
        // password: all ERR.
        assert_eq!(ctx.recorder.commands.errors(), vec![("ERR".to_owned(), 4)]);

        // Each is logged when it has run: the commands answered on the I/O
        // thread before the store's, which ran on the next round.
        let log = ctx.recorder.slowlog.newest(None);
        let shown: Vec<String> = log
            .iter()
            .map(|e| String::from_utf8_lossy(&e.args.shown().join(&b' ')).into_owned())
            .collect();
        assert_eq!(
            shown,
            [
                "INCR k",
                "GET nope",
                "GET k",
                "SET k v",
                "PING",
                "AUTH (redacted)",
                "CLIENT SETNAME worker",
            ],
            "newest first; refused and unknown commands not logged"
        );
        assert_eq!(log[4].name, b"worker");
        assert!(log[0].name.is_empty(), "named as when it was sent");
        assert_eq!(log[0].addr, "10.0.0.1:5");
        assert_eq!(ctx.recorder.slowlog.len(), 7);

        let activity = ctx.activity(None);
        assert!(activity
            .commands
            .iter()
            .any(|(n, s)| n == "get" && s.calls == 2));
        assert_eq!(activity.net_input_bytes, sent.len() as u64);
        assert_eq!(activity.net_output_bytes, out.len() as u64);
        assert_eq!(ctx.stats.total_commands.load(Ordering::Relaxed), 9);

        assert_eq!(ctx.answer_here(&NodeQuery::ResetStat), Reply::ok());
        assert!(stat(&ctx, "get").is_zero());
        assert!(ctx.recorder.commands.errors().is_empty());
        assert_eq!(ctx.stats.total_commands.load(Ordering::Relaxed), 0);
        assert_eq!(
            ctx.recorder.slowlog.len(),
            7,
            "RESETSTAT keeps the slow log"
        );
    }

    #[test]
    fn the_commands_of_a_transaction_are_counted_one_by_one() {
        let (ctx, _thread) = context(DEFAULT_MAX_OUTPUT);
        let mut conn = ClientConn::new(Arc::clone(&ctx), "a".into(), "b".into());
        let mut sent = Vec::new();
        for args in [
            &[&b"SET"[..], b"word", b"hello"][..],
            &[b"MULTI"],
            &[b"SET", b"k", b"1"],
            &[b"INCR", b"k"],
            &[b"INCR", b"word"],
            &[b"PING"],
            &[b"EXEC"],
        ] {
            sent.extend(command(args));
        }
        conn.ingest(&sent);
        while round(&mut conn) {}
        let out = String::from_utf8(drain(&mut conn)).expect("text");
        assert!(
            out.ends_with(
                "*4\r\n+OK\r\n:2\r\n-ERR value is not an integer or out of range\r\n+PONG\r\n"
            ),
            "{out}"
        );
        let calls = |name| {
            let s = stat(&ctx, name);
            (s.calls, s.failed_calls)
        };
        assert_eq!(calls("multi"), (1, 0));
        assert_eq!(calls("exec"), (1, 0));
        assert_eq!(calls("set"), (2, 0), "one before MULTI, one inside");
        assert_eq!(calls("incr"), (2, 1));
        assert_eq!(calls("ping"), (1, 0));
        assert_eq!(ctx.recorder.commands.errors(), vec![("ERR".to_owned(), 1)]);
        let activity = ctx.activity(None);
        let latency = |name: &str| {
            activity
                .latencies
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, l)| *l)
        };
        assert!(latency("incr").is_some() && latency("exec").is_some());
        assert!(latency("get").is_none(), "never ran");

        // A transaction whose watched key changed runs nothing: only the
        // EXEC counts.
        let mut other = ClientConn::new(Arc::clone(&ctx), "c".into(), "d".into());
        conn.ingest(&command(&[b"WATCH", b"k"]));
        while round(&mut conn) {}
        other.ingest(&command(&[b"SET", b"k", b"changed"]));
        while round(&mut other) {}
        let mut sent = Vec::new();
        for args in [&[&b"MULTI"[..]][..], &[b"INCR", b"k"], &[b"EXEC"]] {
            sent.extend(command(args));
        }
        conn.ingest(&sent);
        while round(&mut conn) {}
        assert!(drain(&mut conn).ends_with(b"*-1\r\n"));
        assert_eq!(calls("exec"), (2, 0));
        assert_eq!(calls("incr"), (2, 1), "the INCR did not run");
    }

    #[test]
    fn requests_cut_anywhere_are_answered_in_order() {
        let (ctx, _thread) = context(DEFAULT_MAX_OUTPUT);
        let mut conn = ClientConn::new(ctx, "a".into(), "b".into());
        let mut sent = Vec::new();
        sent.extend(command(&[b"SET", b"k", b"v1"]));
        sent.extend(command(&[b"PING"]));
        sent.extend(command(&[b"GET", b"k"]));
        sent.extend(b"ECHO hi\r\n");
        let mut out = Vec::new();
        for byte in &sent {
            conn.ingest(std::slice::from_ref(byte));
            round(&mut conn);
            out.extend(drain(&mut conn));
        }
        assert_eq!(out, b"+OK\r\n+PONG\r\n$2\r\nv1\r\n$2\r\nhi\r\n");
        assert!(conn.is_idle());
        assert_eq!(
            conn.input.capacity(),
            0,
            "an idle connection keeps no buffer"
        );
    }

    #[test]
    fn a_client_that_does_not_read_stops_being_served_at_the_soft_mark() {
        let max_output = 4 * 1024 * 1024;
        let (ctx, _thread) = context(max_output);
        let soft = ctx.settings.soft_output();
        let value = vec![b'x'; 100 * 1024];
        let mut conn = ClientConn::new(ctx, "a".into(), "b".into());
        conn.ingest(&command(&[b"SET", b"big", &value]));
        assert!(round(&mut conn));
        assert_eq!(drain(&mut conn), b"+OK\r\n");
        let gets: Vec<u8> = (0..100).flat_map(|_| command(&[b"GET", b"big"])).collect();
        conn.ingest(&gets);
        let mut replies = Vec::new();
        let mut rounds = 0;
        while round(&mut conn) || !conn.output.is_empty() {
            rounds += 1;
            // The output never holds much more than the soft mark.
            assert!(
                conn.output.len() <= soft + value.len() + 64,
                "{} bytes held",
                conn.output.len()
            );
            assert!(!conn.wants_input() || conn.output.len() < soft);
            // Nothing more runs until the client reads.
            assert!(conn.take_work().is_none() || conn.output.len() < soft);
            replies.extend(drain(&mut conn));
        }
        assert!(rounds > 1, "the 100 replies came in one round");
        let one = [&b"$102400\r\n"[..], &value, b"\r\n"].concat();
        assert_eq!(replies.len(), one.len() * 100);
        assert!(replies.chunks(one.len()).all(|r| r == one.as_slice()));
        assert!(conn.finished().is_none());
    }

    #[test]
    fn a_reply_over_the_output_limit_is_never_built_and_closes_the_connection() {
        let max_output = 1024 * 1024;
        let (ctx, _thread) = context(max_output);
        let mut conn = ClientConn::new(ctx, "a".into(), "b".into());
        conn.ingest(&command(&[b"SET", b"big", &vec![b'x'; 64 * 1024]]));
        round(&mut conn);
        drain(&mut conn);
        let mut mget: Vec<&[u8]> = vec![b"MGET"];
        mget.extend(std::iter::repeat_n(&b"big"[..], 100));
        conn.ingest(&command(&mget));
        conn.ingest(&command(&[b"PING"]));
        round(&mut conn);
        assert_eq!(conn.finished(), Some(Close::OutputLimit(max_output)));
        assert!(conn.output.len() < 1024, "the reply was built");
        assert!(conn.take_work().is_none());
    }

    #[test]
    fn a_client_that_closes_its_side_still_gets_every_reply() {
        let (ctx, _thread) = context(DEFAULT_MAX_OUTPUT);
        let mut conn = ClientConn::new(ctx, "a".into(), "b".into());
        conn.ingest(&command(&[b"SET", b"k", b"v"]));
        conn.end_of_input();
        assert_eq!(conn.finished(), None);
        round(&mut conn);
        assert_eq!(conn.finished(), None, "closed with a reply unwritten");
        assert_eq!(drain(&mut conn), b"+OK\r\n");
        assert_eq!(conn.finished(), Some(Close::Done));
    }
}
