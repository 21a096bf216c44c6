//! Redis client connections: one thread per connection, speaking RESP2.
//!
//! The loop reads whatever the client has sent into one buffer, decodes
//! every complete request in it ([`RequestDecoder::decode_batch`]), asks
//! [`crate::redis::command::dispatch`] about each, sends the store work of the whole
//! batch to the store thread in one request, and writes every reply of the
//! batch with one write. A client that pipelines (redis-benchmark `-P`,
//! `redis-cli --pipe`) thus costs one trip to the store thread and one
//! write per batch, not per command; a command that needs no data is
//! answered here, and replies still leave in request order.
//!
//! Limits: at most [`ClientSettings::max_clients`] connections (the next
//! one is told `-ERR max number of clients reached` and closed), requests
//! no larger than [`ClientSettings::limits`] allow, and a connection
//! silent for [`ClientSettings::idle_timeout`] is closed. Bytes that are
//! not RESP get Redis's protocol error and close that connection, after
//! the good requests before them are answered. Nothing a client sends can
//! stop the node or another connection.

use crate::durability::DiskSettings;
use crate::engine::slot::ReplySlot;
use crate::engine::{Command as StoreWork, StoreHandle};
use crate::redis::auth::ClientAuth;
use crate::redis::command::{dispatch, Action, Answer, Facts, Session, Tally};
use crate::redis::resp::{Limits, Protocol, Reply, RequestDecoder};
use crate::replication::frame::is_timeout;
use crate::replication::status::PeerTable;
use crate::status::{DiskStatus, Persistence, ServerStats, Status};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Most requests served in one batch (one store trip, one write).
pub const MAX_BATCH: usize = 1024;

/// The read buffer's size; it grows for a request larger than this and
/// shrinks back once that request is served.
const READ_BUF: usize = 64 * 1024;

/// Output kept between batches; a larger buffer is given back.
const KEEP_OUT: usize = 1024 * 1024;

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
    /// The client password, if any (see [`crate::redis::auth`]).
    pub auth: ClientAuth,
}

/// Counters for `INFO`, shared by every connection.
#[derive(Debug, Default)]
pub struct Stats {
    connected: AtomicUsize,
    total_connections: AtomicU64,
    total_commands: AtomicU64,
    rejected: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// What every client connection of a node shares.
pub struct Context {
    name: String,
    addr: SocketAddr,
    store: StoreHandle,
    settings: ClientSettings,
    facts: Facts,
    stats: Stats,
    peers: OnceLock<PeerTable>,
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
        };
        Context {
            name: name.to_owned(),
            addr,
            store,
            settings,
            facts,
            stats: Stats::default(),
            peers: OnceLock::new(),
            started: Instant::now(),
            next_id: AtomicU64::new(0),
        }
    }

    /// Gives `INFO` the peers' table, once the pushers exist.
    pub fn set_peers(&self, peers: PeerTable) {
        let _ = self.peers.set(peers);
    }

    /// The limits on client connections.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// Client connections open now.
    pub fn connected(&self) -> usize {
        self.stats.connected.load(Ordering::Relaxed)
    }

    /// The node's whole status, for `INFO` and `NETDB.STATUS`: the
    /// console's part (counts and peers, from the store thread and the
    /// pushers) and what only the client side knows.
    fn status(&self) -> crate::error::Result<Status> {
        let empty = PeerTable::default();
        let peers = self.peers.get().unwrap_or(&empty);
        let status = crate::status::gather::gather_status(
            &self.name,
            self.addr,
            &self.store,
            peers,
            Some(self.facts.persistence.clone()),
        )?;
        let s = &self.stats;
        Ok(Status {
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
        })
    }
}

/// Counts a connection as open while it lives.
struct Connected<'a>(&'a AtomicUsize);

impl Drop for Connected<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves one client connection until it closes, is idle too long, sends
/// something that is not RESP, or the node stops.
pub fn serve(mut stream: TcpStream, ctx: &Context) {
    let from = stream
        .peer_addr()
        .map_or_else(|_| "unknown".to_string(), |a| a.to_string());
    let stats = &ctx.stats;
    if stats.connected.fetch_add(1, Ordering::SeqCst) >= ctx.settings.max_clients {
        stats.connected.fetch_sub(1, Ordering::SeqCst);
        stats.rejected.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_write_timeout(Some(LINGER));
        let _ = stream.write_all(b"-ERR max number of clients reached\r\n");
        linger_close(&mut stream);
        log::warn!(
            "refused client {from}: {} clients connected, the limit",
            ctx.settings.max_clients
        );
        return;
    }
    let _open = Connected(&stats.connected);
    stats.total_connections.fetch_add(1, Ordering::Relaxed);
    let laddr = stream
        .local_addr()
        .map_or_else(|_| ctx.addr.to_string(), |a| a.to_string());
    let id = ctx.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let mut conn = Connection {
        ctx,
        session: Session::new(id, from.clone(), laddr),
        decoder: RequestDecoder::new(ctx.settings.limits),
        buf: vec![0; READ_BUF],
        start: 0,
        end: 0,
        out: Vec::with_capacity(READ_BUF),
        work: Vec::new(),
        pending: Vec::new(),
        answers: ReplySlot::new(),
        tally: Tally::default(),
    };
    let result = stream
        .set_nodelay(true)
        .and_then(|()| stream.set_read_timeout(ctx.settings.idle_timeout))
        .and_then(|()| stream.set_write_timeout(ctx.settings.idle_timeout))
        .map_err(Closed::Io)
        .and_then(|()| conn.run(&mut stream));
    match result {
        Ok(()) | Err(Closed::Quit) | Err(Closed::Idle) => {}
        Err(Closed::Io(e)) if is_quiet(&e) => {}
        Err(e) => {
            log::info!("closed client {from}: {e}");
            linger_close(&mut stream);
        }
    }
}

/// How long a connection closed by the node waits for the client to stop
/// sending.
const LINGER: Duration = Duration::from_secs(1);

/// Closes a connection whose client may still be sending, so that the
/// error just written reaches it: closing with unread bytes would make
/// the kernel reset the connection and the client could lose the reply.
/// Reads (and drops) what arrives until the client closes too, for at
/// most [`LINGER`].
fn linger_close(stream: &mut TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 64 * 1024];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

/// Errors a client causes by going away, which are not worth a log line.
fn is_quiet(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof
    )
}

/// Why a connection ended early.
#[derive(Debug)]
enum Closed {
    /// The client asked (`QUIT`).
    Quit,
    /// Silent past the idle timeout.
    Idle,
    /// It sent bytes that are not RESP (already answered).
    Protocol(String),
    /// The store thread is gone.
    Stopped,
    /// The socket failed.
    Io(io::Error),
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Closed::Quit => f.write_str("quit"),
            Closed::Idle => f.write_str("idle"),
            Closed::Protocol(e) => f.write_str(e),
            Closed::Stopped => f.write_str("node shutting down"),
            Closed::Io(e) if is_timeout(e) => f.write_str("write timed out"),
            Closed::Io(e) => write!(f, "{e}"),
        }
    }
}

/// A reply whose turn has not come: it waits behind a store reply.
enum Pending {
    Ready(Reply, Protocol),
    /// The answer to the next command of the batch's store work.
    Store(Protocol),
}

/// One client connection's state.
struct Connection<'a> {
    ctx: &'a Context,
    session: Session,
    decoder: RequestDecoder,
    /// Bytes read; `buf[start..end]` is not yet consumed.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Replies of the batch, written with one write.
    out: Vec<u8>,
    /// The batch's work for the store thread, one per data command.
    work: Vec<StoreWork<Answer>>,
    /// Replies behind the first store reply of the batch, in order.
    pending: Vec<Pending>,
    /// Where the store thread's answers arrive.
    answers: ReplySlot<Vec<Answer>>,
    tally: Tally,
}

impl Connection<'_> {
    fn run(&mut self, stream: &mut TcpStream) -> Result<(), Closed> {
        loop {
            self.make_room()?;
            let n = match stream.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => return Err(Closed::Idle),
                Err(e) => return Err(Closed::Io(e)),
            };
            self.end += n;
            self.serve_buffered(stream)?;
        }
    }

    /// Makes room to read into: drops consumed bytes from the front, or
    /// grows the buffer for a request larger than it.
    fn make_room(&mut self) -> Result<(), Closed> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > READ_BUF {
                self.buf = vec![0; READ_BUF];
            }
        }
        if self.end < self.buf.len() {
            return Ok(());
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            return Ok(());
        }
        // The decoder refuses a request over the limits before it needs
        // this much, so the buffer stops growing there.
        let limits = self.decoder.limits();
        let most = limits
            .max_request_len
            .max(limits.max_inline_len)
            .saturating_add(READ_BUF);
        if self.buf.len() >= most {
            return Err(Closed::Protocol("request over the size limit".into()));
        }
        let grown = self.buf.len().saturating_mul(2).min(most);
        self.buf.resize(grown, 0);
        Ok(())
    }

    /// Serves every complete request in the buffer, a batch at a time.
    fn serve_buffered(&mut self, stream: &mut TcpStream) -> Result<(), Closed> {
        loop {
            let batch = self
                .decoder
                .decode_batch(&self.buf[self.start..self.end], MAX_BATCH);
            self.start += batch.consumed;
            let full = batch.requests.len() == MAX_BATCH;
            let count = batch.requests.len() as u64;
            let mut quit = false;
            for request in batch.requests {
                let action = dispatch(&mut self.session, request, &self.ctx.facts);
                // Each reply in the protocol as its own command left it
                // (`HELLO 3`'s already in RESP3).
                let proto = self.session.protocol();
                match action {
                    Action::Reply(reply) => self.answer(reply),
                    Action::Store(work) => {
                        self.work.push(work);
                        self.pending.push(Pending::Store(proto));
                    }
                    Action::Close(reply) => {
                        self.answer(reply);
                        quit = true;
                        break;
                    }
                    Action::Node(query) => {
                        self.run_store_work()?;
                        let reply = match self.ctx.status() {
                            Ok(status) => query.reply(&status),
                            Err(_) => return Err(self.stopped(stream)),
                        };
                        reply.write_as(proto, &mut self.out);
                    }
                }
            }
            self.run_store_work()?;
            self.count(count);
            let error = batch.error.map(|e| {
                e.to_reply().write_to(&mut self.out);
                Closed::Protocol(format!("protocol error: {e}"))
            });
            self.write(stream)?;
            if let Some(e) = error {
                return Err(e);
            }
            if quit {
                return Err(Closed::Quit);
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Queues a reply that needs no store, in its turn.
    fn answer(&mut self, reply: Reply) {
        let proto = self.session.protocol();
        if self.pending.is_empty() {
            reply.write_as(proto, &mut self.out);
        } else {
            self.pending.push(Pending::Ready(reply, proto));
        }
    }

    /// Sends the batch's store work to the store thread in one request
    /// and writes the replies waiting on it, in order.
    fn run_store_work(&mut self) -> Result<(), Closed> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let work = std::mem::take(&mut self.work);
        let answers = if work.is_empty() {
            Vec::new()
        } else {
            self.ctx
                .store
                .run_via(&self.answers, work)
                .map_err(|_| Closed::Stopped)?
        };
        // One answer per command sent, in order (the store thread's
        // promise), and one `Pending::Store` per command sent.
        let mut answers = answers.into_iter();
        for pending in self.pending.drain(..) {
            match pending {
                Pending::Ready(reply, proto) => reply.write_as(proto, &mut self.out),
                Pending::Store(proto) => {
                    let answer = answers.next().expect("one answer per command");
                    answer.reply.write_as(proto, &mut self.out);
                    self.tally.hits += answer.tally.hits;
                    self.tally.misses += answer.tally.misses;
                }
            }
        }
        Ok(())
    }

    /// Adds the batch to the shared counters.
    fn count(&mut self, commands: u64) {
        let stats = &self.ctx.stats;
        stats.total_commands.fetch_add(commands, Ordering::Relaxed);
        if self.tally != Tally::default() {
            stats.hits.fetch_add(self.tally.hits, Ordering::Relaxed);
            stats.misses.fetch_add(self.tally.misses, Ordering::Relaxed);
            self.tally = Tally::default();
        }
    }

    fn write(&mut self, stream: &mut TcpStream) -> Result<(), Closed> {
        if self.out.is_empty() {
            return Ok(());
        }
        stream.write_all(&self.out).map_err(Closed::Io)?;
        self.out.clear();
        if self.out.capacity() > KEEP_OUT {
            self.out = Vec::with_capacity(READ_BUF);
        }
        Ok(())
    }

    /// Tells the client the node is stopping.
    fn stopped(&mut self, stream: &mut TcpStream) -> Closed {
        Reply::Error("ERR the node is shutting down".into()).write_to(&mut self.out);
        let _ = self.write(stream);
        Closed::Stopped
    }
}

/// The default idle timeout of a client connection.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// The default most client connections at once.
pub const DEFAULT_MAX_CLIENTS: usize = 1024;

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
        }),
    }
}
