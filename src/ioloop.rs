//! The I/O threads: a few poll loops (`--io-threads`, one per core but
//! the store thread's by default) that serve every Redis client connection of the node, and
//! tell new connections that turn out to be peers from clients.
//!
//! Each loop owns its connections' nonblocking sockets and waits on them
//! with one `mio` poll (epoll). In one turn it reads what every ready
//! connection sent, decodes and dispatches the complete requests
//! ([`ClientConn`]), and sends the store work of **all** of them to the
//! store thread as one request: many clients' commands cost one channel
//! trip and one wake-up of the store thread, and share one log write. A
//! loop has one such group at the store thread at a time: what its
//! connections send meanwhile is read and decoded, and goes in the next
//! group, so the busier the node, the more commands a trip carries. The
//! store thread hands the answers back through a channel, and wakes the
//! loop with its [`Waker`] only if it sleeps in its poll (a loop that is
//! awake looks at its answers before it polls again); the loop queues
//! each connection's replies in request order and writes them as far as
//! each socket takes them. No spinning: a loop sleeps in the poll until
//! a socket or an answer is ready (or a deadline is due).
//!
//! Nothing in a loop blocks. Deadlines are state, looked at when due:
//! the idle timeout (`--client-idle-timeout-secs`, none by default, as
//! Redis's `timeout 0`), the short wait for the first byte of a
//! connection over `--max-clients` (a peer may still be let in), and the
//! linger after a protocol error. Memory per connection is bounded by the
//! client's output limit and the request limit (see
//! [`crate::redis::client`]); an idle connection holds no buffer, only
//! its state (a few hundred bytes).
//!
//! Peers keep a thread each ([`crate::replication::receiver`]): a node
//! has few of them, their transfers are long and streamed, and a
//! blocking thread per peer keeps that code simple. A connection whose
//! first byte is the peer magic leaves the loop for one.
//!
//! A connection whose first byte is 0x16 (a TLS ClientHello) on a node
//! with a certificate runs its TLS handshake in the loop, nonblocking;
//! then its first byte of plaintext tells, as above, a peer (the magic:
//! it leaves for a peer thread with its TLS layer, see
//! [`crate::listener`]) from a Redis client over TLS, whose socket's
//! bytes go through its TLS layer ([`crate::tls`]) on their way to and
//! from the same [`ClientConn`]. Whether a client is over the limit or
//! kept out by protected mode is decided then, so a peer never is.
//! Without a certificate a ClientHello is a plaintext client like any
//! other (and gets a protocol error).

use crate::engine::{GroupDone, Part};
use crate::error::{Error, Result};
use crate::redis::client::{is_loopback, ClientConn, Close, Context, DENIED};
use crate::redis::command::Answer;
use crate::replication::connection::PeerStream;
use crate::replication::wire::MAGIC;
use crate::tls::{self, ReadOutcome, ServerTls, TlsClient};
use crossbeam_channel::{unbounded, Receiver, Sender};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use rustls::ServerConnection;
use std::io::{self, BufRead, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What takes a connection that opened with the peer magic (in plain TCP
/// or inside TLS): it gets the socket in blocking mode, with its TLS
/// layer if any, and serves it on a thread of its own.
pub type PeerHandoff = Arc<dyn Fn(PeerStream) + Send + Sync>;

/// How long a connection over `--max-clients` may take to show that it is
/// a peer (a peer sends the magic as soon as it connects) before it is
/// told the limit is reached and closed.
pub const OVER_LIMIT_SNIFF: Duration = Duration::from_millis(250);

/// [`OVER_LIMIT_SNIFF`] for a connection that opened with a ClientHello:
/// a peer shows the magic only after the TLS handshake, a round trip or
/// two later.
pub const OVER_LIMIT_TLS_SNIFF: Duration = Duration::from_secs(1);

/// What a connection over `--max-clients` is told.
const MAX_CLIENTS_REACHED: &[u8] = b"-ERR max number of clients reached\r\n";

/// How long a connection closed by the node waits for the client to stop
/// sending, so that the error just written reaches it: closing with
/// unread bytes would make the kernel reset the connection, and the
/// client could lose the reply.
const LINGER: Duration = Duration::from_secs(1);

/// How often deadlines are looked at, at most.
const SWEEP: Duration = Duration::from_millis(100);

/// Reads from one connection per turn, so a client that sends without
/// pause cannot keep its loop from the others.
const READS_PER_TURN: usize = 4;

/// Bytes read at once, into the loop's one read buffer.
const READ_BUF: usize = 64 * 1024;

const WAKER: Token = Token(usize::MAX);

/// The first byte of a TLS record of the handshake: a ClientHello.
const TLS_HANDSHAKE: u8 = 0x16;

/// The running I/O threads.
pub struct IoThreads {
    loops: Vec<LoopHandle>,
    next: AtomicUsize,
    stop: Arc<AtomicBool>,
    threads: parking_lot::Mutex<Vec<JoinHandle<()>>>,
}

struct LoopHandle {
    incoming: Sender<TcpStream>,
    waker: Arc<Waker>,
}

impl IoThreads {
    /// Starts `count` I/O threads serving the clients of `clients`, over
    /// TLS too if `tls` is given; connections that open with the peer
    /// magic go to `peers`.
    pub fn spawn(
        count: usize,
        clients: Arc<Context>,
        tls: Option<ServerTls>,
        peers: PeerHandoff,
    ) -> Result<IoThreads> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut loops = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        for i in 0..count.max(1) {
            let poll = Poll::new().map_err(Error::io("cannot create a poll"))?;
            let waker = Arc::new(
                Waker::new(poll.registry(), WAKER).map_err(Error::io("cannot create a waker"))?,
            );
            let (incoming_tx, incoming) = unbounded();
            let (done_tx, done) = unbounded();
            let (forwarded_tx, forwarded) = unbounded();
            let io = Loop {
                poll,
                bell: Arc::new(Doorbell {
                    waker: Arc::clone(&waker),
                    asleep: AtomicBool::new(false),
                }),
                incoming,
                done,
                done_tx,
                forwarded,
                forwarded_tx,
                conns: Vec::new(),
                free: Vec::new(),
                next_serial: 0,
                clients: Arc::clone(&clients),
                tls: tls.clone(),
                peers: Arc::clone(&peers),
                stop: Arc::clone(&stop),
                scratch: vec![0; READ_BUF],
                again: Vec::new(),
                timed: 0,
                waiters: Vec::new(),
                in_flight: false,
                held: Vec::new(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("netdb-io-{i}"))
                .spawn(move || io.run())
                .map_err(Error::io("cannot start an I/O thread"))?;
            loops.push(LoopHandle {
                incoming: incoming_tx,
                waker,
            });
            threads.push(thread);
        }
        Ok(IoThreads {
            loops,
            next: AtomicUsize::new(0),
            stop,
            threads: parking_lot::Mutex::new(threads),
        })
    }

    /// Gives a newly accepted connection to a loop (in turn).
    pub fn hand_off(&self, stream: TcpStream) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.loops.len();
        let handle = &self.loops[i];
        if handle.incoming.send(stream).is_ok() {
            let _ = handle.waker.wake();
        }
    }

    /// Stops every loop, closing its connections, and waits for them.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        for handle in &self.loops {
            let _ = handle.waker.wake();
        }
        for thread in self.threads.lock().drain(..) {
            let _ = thread.join();
        }
    }
}

/// The answers of one group, back from the store thread: for each part,
/// the connection (slot and serial) it belongs to. `None` when the store
/// thread is gone.
struct Finished {
    conns: Vec<(usize, u64)>,
    parts: Option<Vec<Part<Answer>>>,
}

/// How the store thread wakes a loop for its answers: only when the
/// loop sleeps in its poll. A loop that is awake looks at its answers
/// before it polls again, so the answers that come while it works (most,
/// under load) cost no write to its waker and no spurious wake-up.
struct Doorbell {
    waker: Arc<Waker>,
    /// Set while the loop is in (or about to enter) a poll that may sleep.
    asleep: AtomicBool,
}

impl Doorbell {
    /// Wakes the loop if it may be asleep; called after the answers are
    /// on its channel.
    fn ring(&self) {
        // Pairs with the fence in `Loop::sleep`: either the loop sees the
        // answers before it sleeps, or this sees that it sleeps.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.asleep.load(Ordering::SeqCst) {
            let _ = self.waker.wake();
        }
    }
}

/// Sends a group's answers back to its loop and wakes it; dropped unsent
/// (the store thread stopped first), it sends word of that instead.
struct Reply {
    conns: Vec<(usize, u64)>,
    tx: Sender<Finished>,
    bell: Arc<Doorbell>,
    sent: bool,
}

impl Reply {
    fn send(mut self, parts: Option<Vec<Part<Answer>>>) {
        self.sent = true;
        let conns = std::mem::take(&mut self.conns);
        if self.tx.send(Finished { conns, parts }).is_ok() {
            self.bell.ring();
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if !self.sent {
            let conns = std::mem::take(&mut self.conns);
            if self.tx.send(Finished { conns, parts: None }).is_ok() {
                self.bell.ring();
            }
        }
    }
}

/// The replies of one connection's forwarding job, back from a
/// forwarding thread (see [`crate::redis::forward`]).
struct Forwarded {
    owner: (usize, u64),
    replies: Vec<crate::redis::resp::Reply>,
}

/// What a connection is, so far.
enum State {
    /// No byte yet: a peer's first is the magic. `admitted` says it is
    /// counted as a client already; one over `--max-clients` is not, and
    /// has until `deadline` to show it is a peer.
    Sniffing {
        admitted: bool,
        deadline: Option<Instant>,
    },
    /// Opened with a ClientHello: the TLS handshake runs until the first
    /// byte of plaintext says whether it is a peer or a client. As for
    /// [`State::Sniffing`], `admitted` says it is counted as a client, and
    /// one that is not has until `deadline` to show it is a peer.
    TlsOpening {
        tls: Box<ServerConnection>,
        admitted: bool,
        deadline: Option<Instant>,
    },
    /// A Redis client.
    Client(Box<ClientConn>),
    /// A Redis client over TLS.
    Tls(Box<TlsClient>),
    /// Closed by the node after an error: what the client still sends is
    /// read and dropped until it closes too, or `deadline`.
    Lingering { deadline: Instant },
}

impl State {
    /// The client's protocol state, plaintext or TLS.
    fn client(&self) -> Option<&ClientConn> {
        match self {
            State::Client(client) => Some(client),
            State::Tls(tls) => Some(&tls.client),
            _ => None,
        }
    }

    /// [`State::client`], to change.
    fn client_mut(&mut self) -> Option<&mut ClientConn> {
        match self {
            State::Client(client) => Some(client),
            State::Tls(tls) => Some(&mut tls.client),
            _ => None,
        }
    }

    /// The TLS layer, if the connection has one.
    fn tls_mut(&mut self) -> Option<&mut ServerConnection> {
        match self {
            State::Tls(tls) => Some(&mut tls.tls),
            State::TlsOpening { tls, .. } => Some(tls),
            _ => None,
        }
    }

    /// Whether the connection counts as a client (`connected_clients`,
    /// `--max-clients`).
    fn is_counted(&self) -> bool {
        matches!(
            self,
            State::Client(_)
                | State::Tls(_)
                | State::Sniffing { admitted: true, .. }
                | State::TlsOpening { admitted: true, .. }
        )
    }
}

struct Conn {
    serial: u64,
    stream: TcpStream,
    from: String,
    state: State,
    /// The socket may have bytes to read (readiness is edge-triggered:
    /// it stays set until a read says `WouldBlock`).
    readable: bool,
    /// The socket may take more bytes.
    writable: bool,
    /// The client has closed its side (what it sent before is still read).
    hup: bool,
    /// When the client last sent or took bytes, for the idle timeout.
    active: Instant,
}

impl Conn {
    fn is_timed(&self) -> bool {
        matches!(
            self.state,
            State::Lingering { .. }
                | State::Sniffing {
                    deadline: Some(_),
                    ..
                }
                | State::TlsOpening {
                    deadline: Some(_),
                    ..
                }
        )
    }
}

struct Loop {
    poll: Poll,
    bell: Arc<Doorbell>,
    incoming: Receiver<TcpStream>,
    done: Receiver<Finished>,
    done_tx: Sender<Finished>,
    /// Forwarded commands' replies, which the forwarding threads send
    /// like the store thread its answers, ringing the same doorbell.
    forwarded: Receiver<Forwarded>,
    forwarded_tx: Sender<Forwarded>,
    /// Connections by slot; a slot's token is its index.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    next_serial: u64,
    clients: Arc<Context>,
    /// TLS for clients that open with a ClientHello, if the node has a
    /// certificate.
    tls: Option<ServerTls>,
    peers: PeerHandoff,
    stop: Arc<AtomicBool>,
    /// The one read buffer: bytes go from it to a connection's decoder,
    /// and only a request cut short is copied into the connection.
    scratch: Vec<u8>,
    /// Connections to serve next turn without waiting for readiness.
    again: Vec<usize>,
    /// Connections with a deadline of their own.
    timed: usize,
    /// Client connections blocked on a `WAIT` that will ask again (see
    /// [`ClientConn::recheck_at`]).
    waiters: Vec<usize>,
    /// Whether this loop's group is at the store thread. One at a time:
    /// what connections send meanwhile waits for its answers and goes in
    /// the next group, so the busier the store thread, the more commands
    /// each trip carries, and the fewer wake-ups each command costs.
    in_flight: bool,
    /// Connections with store work to send once the group at the store
    /// thread is back.
    held: Vec<usize>,
}

impl Loop {
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut touched: Vec<usize> = Vec::new();
        let mut next_sweep = Instant::now() + SWEEP;
        loop {
            let timeout = if !self.again.is_empty() {
                Some(Duration::ZERO)
            } else if let Some(at) = self.next_recheck() {
                Some(at.saturating_duration_since(Instant::now()).min(SWEEP))
            } else if self.timed > 0 || self.clients.settings().idle_timeout.is_some() {
                Some(next_sweep.saturating_duration_since(Instant::now()))
            } else {
                None
            };
            let polled = self.sleep(&mut events, timeout);
            if let Err(e) = polled {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::error!("I/O thread: poll failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                }
                continue;
            }
            touched.append(&mut self.again);
            self.due_rechecks(&mut touched);
            for event in &events {
                if event.token() == WAKER {
                    continue;
                }
                let idx = event.token().0;
                if let Some(Some(conn)) = self.conns.get_mut(idx) {
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        conn.readable = true;
                    }
                    if event.is_read_closed() || event.is_error() {
                        conn.hup = true;
                    }
                    if event.is_writable() || event.is_write_closed() || event.is_error() {
                        conn.writable = true;
                    }
                    touched.push(idx);
                }
            }
            if self.stop.load(Ordering::SeqCst) {
                self.close_all();
                return;
            }
            while let Ok(stream) = self.incoming.try_recv() {
                if let Some(idx) = self.add(stream) {
                    touched.push(idx);
                }
            }
            while let Ok(finished) = self.done.try_recv() {
                self.in_flight = false;
                self.finish(finished, &mut touched);
            }
            while let Ok(Forwarded { owner, replies }) = self.forwarded.try_recv() {
                let (idx, serial) = owner;
                if let Some(Some(conn)) = self.conns.get_mut(idx) {
                    if conn.serial == serial {
                        if let Some(client) = conn.state.client_mut() {
                            client.forwarded(replies);
                            touched.push(idx);
                        }
                    }
                }
            }
            if !self.in_flight {
                touched.append(&mut self.held);
            }
            touched.sort_unstable();
            touched.dedup();
            let mut turn = Turn {
                parts: Vec::new(),
                owners: Vec::new(),
                forwards: Vec::new(),
                hold: self.in_flight,
                held: std::mem::take(&mut self.held),
            };
            for &idx in &touched {
                self.serve(idx, &mut turn);
            }
            self.note_waiters(&touched);
            touched.clear();
            self.held = turn.held;
            for (owner, items) in std::mem::take(&mut turn.forwards) {
                self.forward(owner, items);
            }
            if !turn.parts.is_empty() {
                self.submit(turn.parts, turn.owners);
            }
            let now = Instant::now();
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + SWEEP;
            }
        }
    }

    /// Polls for readiness, for up to `timeout` (`None`: until something
    /// is ready); with the doorbell set for the store thread while the
    /// poll may sleep.
    fn sleep(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        if timeout == Some(Duration::ZERO) {
            return self.poll.poll(events, timeout);
        }
        self.bell.asleep.store(true, Ordering::SeqCst);
        // Pairs with the fence in `Doorbell::ring`.
        std::sync::atomic::fence(Ordering::SeqCst);
        let timeout = if self.done.is_empty() && self.forwarded.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        let polled = self.poll.poll(events, timeout);
        self.bell.asleep.store(false, Ordering::SeqCst);
        polled
    }

    /// Registers a new connection; `None` if it could not be.
    fn add(&mut self, stream: TcpStream) -> Option<usize> {
        let from = stream
            .peer_addr()
            .map_or_else(|_| "unknown".to_string(), |a| a.to_string());
        if let Err(e) = stream.set_nonblocking(true) {
            log::warn!("closed connection from {from}: {e}");
            return None;
        }
        let _ = stream.set_nodelay(true);
        let idx = match self.free.pop() {
            Some(idx) => idx,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        let registered = self.poll.registry().register(
            &mut SourceFd(&stream.as_raw_fd()),
            Token(idx),
            Interest::READABLE | Interest::WRITABLE,
        );
        if let Err(e) = registered {
            log::warn!("closed connection from {from}: cannot watch it: {e}");
            self.free.push(idx);
            return None;
        }
        let admitted = self.clients.admit();
        let deadline = (!admitted).then(|| Instant::now() + OVER_LIMIT_SNIFF);
        self.next_serial += 1;
        let conn = Conn {
            serial: self.next_serial,
            stream,
            from,
            state: State::Sniffing { admitted, deadline },
            readable: true,
            writable: true,
            hup: false,
            active: Instant::now(),
        };
        if conn.is_timed() {
            self.timed += 1;
        }
        self.conns[idx] = Some(conn);
        Some(idx)
    }

    /// Hands the answers of a group to their connections.
    fn finish(&mut self, finished: Finished, touched: &mut Vec<usize>) {
        let Finished { conns, parts } = finished;
        let mut parts = parts.map(Vec::into_iter);
        for (idx, serial) in conns {
            let part = parts.as_mut().and_then(Iterator::next);
            let Some(Some(conn)) = self.conns.get_mut(idx) else {
                continue;
            };
            if conn.serial != serial {
                continue;
            }
            if let Some(client) = conn.state.client_mut() {
                match part {
                    Some(part) => client.complete(part),
                    None => client.store_gone(),
                }
                touched.push(idx);
            }
        }
    }

    /// Sends a turn's store work to the store thread, in one request.
    fn submit(&mut self, group: Vec<Part<Answer>>, owners: Vec<(usize, u64)>) {
        self.in_flight = true;
        let reply = Reply {
            conns: owners,
            tx: self.done_tx.clone(),
            bell: Arc::clone(&self.bell),
            sent: false,
        };
        let done: GroupDone<Answer> = Box::new(move |parts| reply.send(Some(parts)));
        // If the store thread is gone, `done` is dropped, and the reply's
        // drop tells the connections.
        let _ = self.clients.store().submit(group, done);
    }

    /// Hands a connection's forwarded commands to the forwarder; their
    /// replies come back on this loop's channel, with a ring of its
    /// doorbell.
    fn forward(&mut self, owner: (usize, u64), items: Vec<crate::redis::forward::Item>) {
        let tx = self.forwarded_tx.clone();
        let bell = Arc::clone(&self.bell);
        let done: crate::redis::forward::Done = Box::new(move |replies| {
            if tx.send(Forwarded { owner, replies }).is_ok() {
                bell.ring();
            }
        });
        match self.clients.forwarder() {
            Some(forwarder) => forwarder.submit(items, done),
            None => done(
                items
                    .iter()
                    .map(|_| crate::redis::resp::Reply::Error("ERR no forwarder".into()))
                    .collect(),
            ),
        }
    }

    /// Serves one connection after readiness or answers.
    fn serve(&mut self, idx: usize, turn: &mut Turn) {
        let Some(Some(conn)) = self.conns.get_mut(idx) else {
            return;
        };
        match &conn.state {
            State::Sniffing { .. } => {
                if let Some(close) = self.sniff(idx) {
                    return self.close(idx, close);
                }
            }
            State::Lingering { .. } => return self.linger(idx),
            State::TlsOpening { .. } | State::Client(_) | State::Tls(_) => {}
        }
        if let Some(Some(Conn {
            state: State::TlsOpening { .. },
            ..
        })) = self.conns.get(idx)
        {
            self.open_tls(idx);
        }
        let Some(Some(conn)) = self.conns.get_mut(idx) else {
            return;
        };
        let Conn {
            serial,
            stream,
            state,
            readable,
            writable,
            active,
            hup,
            ..
        } = conn;
        let client = match state {
            State::Client(client) => client,
            State::Tls(_) => return self.serve_tls(idx, turn),
            _ => return,
        };
        // Write first: replies out make room for more requests.
        if let Err(e) = write_out(stream, writable, active, client) {
            return self.close_io(idx, &e);
        }
        let mut reads = 0;
        while *readable && client.wants_input() {
            if reads == READS_PER_TURN {
                self.again.push(idx);
                break;
            }
            match stream.read(&mut self.scratch) {
                Ok(0) => {
                    *readable = false;
                    client.end_of_input();
                }
                Ok(n) => {
                    reads += 1;
                    *active = Instant::now();
                    client.ingest(&self.scratch[..n]);
                    // A short read emptied the socket's buffer: with
                    // edge-triggered readiness, bytes that arrive later
                    // raise a new event, so no read is spent to hear
                    // `WouldBlock` (unless the client closed its side:
                    // that end is read, not signalled again).
                    if n < self.scratch.len() && !*hup {
                        *readable = false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => *readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.close_io(idx, &e),
            }
        }
        // Reading stopped while the connection held decoded requests, and
        // the socket has more: read it next turn, since its readiness
        // (edge-triggered) will not be signalled again.
        if take_work(client, (idx, *serial), turn) || (*readable && client.wants_input()) {
            self.again.push(idx);
        }
        if let Err(e) = write_out(stream, writable, active, client) {
            return self.close_io(idx, &e);
        }
        if let Some(close) = client.finished() {
            self.close(idx, close);
        }
    }

    /// Serves one TLS client connection: as [`Loop::serve`], with the
    /// connection's TLS layer between its socket and its [`ClientConn`].
    fn serve_tls(&mut self, idx: usize, turn: &mut Turn) {
        let Some(Some(conn)) = self.conns.get_mut(idx) else {
            return;
        };
        let Conn {
            serial,
            stream,
            state,
            readable,
            writable,
            active,
            ..
        } = conn;
        let State::Tls(tls_client) = state else {
            return;
        };
        {
            let TlsClient { tls, client, .. } = &mut **tls_client;
            if let Err(e) =
                tls::write_out(stream, tls, client, writable, || *active = Instant::now())
            {
                return self.close_io(idx, &e);
            }
        }
        let read = tls::read_in(
            stream,
            tls_client,
            &mut self.scratch,
            readable,
            READS_PER_TURN,
            || *active = Instant::now(),
        );
        let TlsClient { tls, client } = &mut **tls_client;
        match read {
            Ok(ReadOutcome::Again) => self.again.push(idx),
            Ok(ReadOutcome::Waiting) => {}
            Err(tls::Failure::Io(e)) => return self.close_io(idx, &e),
            Err(failure @ tls::Failure::Tls(_)) => {
                // The alert that says why, if the socket takes it.
                tls::flush_on_close(stream, tls);
                log::info!("closed TLS client {}: {failure}", conn.from);
                return self.drop_conn(idx);
            }
        }
        // As for plain connections; rustls may also hold decrypted bytes
        // that reading left behind when the connection stopped taking
        // them, and no event will say so.
        let stalled = !client.wants_input();
        if take_work(client, (idx, *serial), turn) || (stalled && client.wants_input()) {
            self.again.push(idx);
        }
        if let Err(e) = tls::write_out(stream, tls, client, writable, || *active = Instant::now()) {
            return self.close_io(idx, &e);
        }
        // Records rustls still holds go out before the connection closes.
        if tls.wants_write() {
            return;
        }
        if let Some(close) = client.finished() {
            self.close(idx, close);
        }
    }

    /// Looks at a new connection's first byte: the peer magic sends it to
    /// a peer thread; anything else makes it a client (or, over the
    /// limit, refuses it). Returns why to close it, if it should be.
    fn sniff(&mut self, idx: usize) -> Option<Close> {
        let conn = self.conns[idx].as_mut()?;
        let State::Sniffing { admitted, .. } = conn.state else {
            return None;
        };
        if !conn.readable {
            return None;
        }
        let mut first = [0u8; 1];
        let byte = match conn.stream.peek(&mut first) {
            Ok(0) => return Some(Close::Done),
            Ok(_) => first[0],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                conn.readable = false;
                return None;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                self.again.push(idx);
                return None;
            }
            Err(_) => return Some(Close::Done),
        };
        if byte == MAGIC[0] {
            self.hand_to_peer(idx, None);
            return None;
        }
        if let Some(tls) = self.tls.as_ref().filter(|_| byte == TLS_HANDSHAKE) {
            let tls = match tls.accept() {
                Ok(tls) => Box::new(tls),
                Err(e) => {
                    log::warn!("closed TLS client {}: {e}", conn.from);
                    return Some(Close::Done);
                }
            };
            let deadline = (!admitted).then(|| Instant::now() + OVER_LIMIT_TLS_SNIFF);
            let state = State::TlsOpening {
                tls,
                admitted,
                deadline,
            };
            self.set_state(idx, state);
            return None;
        }
        if !admitted {
            self.refuse(idx, None);
            return None;
        }
        if self.is_kept_out(idx) {
            self.deny(idx);
            return None;
        }
        self.become_client(idx, None);
        None
    }

    /// Whether protected mode keeps the client at `idx` out: the node has
    /// no client password, and it is not from loopback.
    fn is_kept_out(&self, idx: usize) -> bool {
        self.clients.settings().loopback_only()
            && !self.conns[idx]
                .as_ref()
                .is_some_and(|c| c.stream.peer_addr().is_ok_and(|a| is_loopback(&a)))
    }

    /// Runs the TLS handshake of a connection that opened with a
    /// ClientHello, nonblocking, until its first byte of plaintext, which
    /// says what it is, as [`Loop::sniff`] does for plain TCP: the peer
    /// magic sends it to a peer thread with its TLS layer; anything else
    /// makes it a client over TLS (or refuses it: over the limit, or kept
    /// out by protected mode, told so over TLS).
    fn open_tls(&mut self, idx: usize) {
        let Some(Some(conn)) = self.conns.get_mut(idx) else {
            return;
        };
        let Conn {
            stream,
            state,
            readable,
            writable,
            active,
            from,
            ..
        } = conn;
        let State::TlsOpening { tls, .. } = state else {
            return;
        };
        let mut reads = 0;
        let first = loop {
            if let Err(e) = tls::send_records(stream, tls, writable) {
                return self.close_io(idx, &e);
            }
            if !tls.is_handshaking() {
                match tls.reader().fill_buf() {
                    Ok(bytes) if !bytes.is_empty() => break bytes[0],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // Closed before a byte of plaintext.
                    _ => return self.drop_conn(idx),
                }
            }
            if !*readable {
                return;
            }
            if reads == READS_PER_TURN {
                self.again.push(idx);
                return;
            }
            match tls.read_tls(stream) {
                Ok(0) => return self.drop_conn(idx),
                Ok(_) => {
                    reads += 1;
                    *active = Instant::now();
                    if let Err(e) = tls.process_new_packets() {
                        // The alert that says why, if the socket takes it.
                        tls::flush_on_close(stream, tls);
                        log::info!("closed TLS client {from}: {}", tls::Failure::Tls(e));
                        return self.drop_conn(idx);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => *readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.close_io(idx, &e),
            }
        };
        let Some((tls, admitted)) = self.take_tls(idx) else {
            return;
        };
        if first == MAGIC[0] {
            self.hand_to_peer(idx, Some(tls));
        } else if !admitted {
            self.refuse(idx, Some(tls));
        } else if self.is_kept_out(idx) {
            self.deny_tls(idx, tls);
        } else {
            self.become_client(idx, Some(tls));
        }
    }

    /// Takes the TLS layer out of a connection still opening, and whether
    /// it was admitted; the connection stays sniffing, counted and timed
    /// as before, until the caller decides what it is.
    fn take_tls(&mut self, idx: usize) -> Option<(Box<ServerConnection>, bool)> {
        let conn = self.conns[idx].as_mut()?;
        let State::TlsOpening {
            admitted, deadline, ..
        } = conn.state
        else {
            return None;
        };
        let sniffing = State::Sniffing { admitted, deadline };
        match std::mem::replace(&mut conn.state, sniffing) {
            State::TlsOpening { tls, .. } => Some((tls, admitted)),
            _ => None,
        }
    }

    /// Makes a sniffed connection a client (it is counted already), over
    /// TLS if `tls` is its TLS layer.
    fn become_client(&mut self, idx: usize, tls: Option<Box<ServerConnection>>) {
        let Some(conn) = self.conns[idx].as_mut() else {
            return;
        };
        let laddr = conn
            .stream
            .local_addr()
            .map_or_else(|_| String::new(), |a| a.to_string());
        let mut client = ClientConn::new(Arc::clone(&self.clients), conn.from.clone(), laddr);
        client.set_fd(i64::from(conn.stream.as_raw_fd()));
        let state = match tls {
            Some(tls) => State::Tls(Box::new(TlsClient { tls: *tls, client })),
            None => State::Client(Box::new(client)),
        };
        self.set_state(idx, state);
    }

    /// Gives a connection that opened with the peer magic to a peer
    /// thread, with its TLS layer if it came over TLS.
    fn hand_to_peer(&mut self, idx: usize, tls: Option<Box<ServerConnection>>) {
        let Some(conn) = self.take(idx) else {
            return;
        };
        if conn.state.is_counted() {
            self.clients.release();
        }
        let _ = self
            .poll
            .registry()
            .deregister(&mut SourceFd(&conn.stream.as_raw_fd()));
        if let Err(e) = conn.stream.set_nonblocking(false) {
            log::warn!("closed connection from {}: {e}", conn.from);
            return;
        }
        (self.peers)(match tls {
            Some(tls) => PeerStream::accepted(*tls, conn.stream),
            None => PeerStream::Plain(conn.stream),
        });
    }

    /// Tells a connection over `--max-clients` so (over TLS if `tls` is
    /// its TLS layer), and closes it.
    fn refuse(&mut self, idx: usize, tls: Option<Box<ServerConnection>>) {
        let max = self.clients.settings().max_clients;
        self.clients.count_rejected();
        if let Some(conn) = self.conns[idx].as_mut() {
            log::warn!(
                "refused client {}: {max} clients connected, the limit",
                conn.from
            );
            match tls {
                Some(mut tls) => {
                    let _ = tls.writer().write_all(MAX_CLIENTS_REACHED);
                    tls.send_close_notify();
                    tls::flush_on_close(&mut conn.stream, &mut tls);
                }
                None => {
                    let _ = conn.stream.write(MAX_CLIENTS_REACHED);
                }
            }
        }
        self.start_linger(idx);
    }

    /// Tells a client from another machine that protected mode keeps it
    /// out, and closes it.
    fn deny(&mut self, idx: usize) {
        self.clients.count_rejected();
        if let Some(conn) = self.conns[idx].as_mut() {
            log::warn!(
                "refused client {}: protected mode (no client password, and not from loopback)",
                conn.from
            );
            let _ = conn.stream.write(DENIED);
        }
        self.start_linger(idx);
    }

    /// Protected mode for a client that opened with TLS (its handshake
    /// is over): told why over TLS, then closed.
    fn deny_tls(&mut self, idx: usize, tls: Box<ServerConnection>) {
        self.clients.count_rejected();
        let Some(conn) = self.conns[idx].as_ref() else {
            return;
        };
        log::warn!(
            "refused TLS client {}: protected mode (no client password, and not from loopback)",
            conn.from
        );
        self.become_client(idx, Some(tls));
        if let Some(Conn {
            state: State::Tls(tls_client),
            ..
        }) = self.conns[idx].as_mut()
        {
            tls_client.client.refuse(DENIED);
        }
    }

    /// Half-closes a connection the node is done with and waits (a little)
    /// for the client to close its side.
    fn start_linger(&mut self, idx: usize) {
        let Some(conn) = self.conns[idx].as_mut() else {
            return;
        };
        if let Some(tls) = conn.state.tls_mut() {
            tls.send_close_notify();
            tls::flush_on_close(&mut conn.stream, tls);
        }
        let _ = conn.stream.shutdown(std::net::Shutdown::Write);
        if conn.state.is_counted() {
            self.clients.release();
        }
        self.set_state(
            idx,
            State::Lingering {
                deadline: Instant::now() + LINGER,
            },
        );
        self.again.push(idx);
    }

    /// Reads and drops what a lingering connection sends, until it closes.
    fn linger(&mut self, idx: usize) {
        let Some(conn) = self.conns[idx].as_mut() else {
            return;
        };
        let mut reads = 0;
        while conn.readable {
            match conn.stream.read(&mut self.scratch) {
                Ok(0) => return self.drop_conn(idx),
                Ok(_) => {
                    reads += 1;
                    if reads == READS_PER_TURN {
                        self.again.push(idx);
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => conn.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.drop_conn(idx),
            }
        }
    }

    /// Closes a connection for `why`, with a log line where the reason is
    /// worth one.
    fn close(&mut self, idx: usize, why: Close) {
        let Some(conn) = self.conns[idx].as_ref() else {
            return;
        };
        match &why {
            Close::Done | Close::Stopped => {}
            Close::Refused => return self.start_linger(idx),
            Close::Protocol(e) => {
                log::info!("closed client {}: {e}", conn.from);
                return self.start_linger(idx);
            }
            Close::OutputLimit(_) => log::warn!("closed client {}: {why}", conn.from),
        }
        self.drop_conn(idx);
    }

    /// Closes a connection whose socket failed.
    fn close_io(&mut self, idx: usize, e: &io::Error) {
        if let Some(conn) = self.conns[idx].as_ref() {
            if !matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionAborted
            ) {
                log::info!("closed client {}: {e}", conn.from);
            }
        }
        self.drop_conn(idx);
    }

    /// Forgets a connection and closes its socket.
    fn drop_conn(&mut self, idx: usize) {
        let Some(mut conn) = self.take(idx) else {
            return;
        };
        if let Some(tls) = conn.state.tls_mut() {
            if !tls.is_handshaking() {
                tls.send_close_notify();
            }
            tls::flush_on_close(&mut conn.stream, tls);
        }
        if conn.state.is_counted() {
            self.clients.release();
        }
        let _ = self
            .poll
            .registry()
            .deregister(&mut SourceFd(&conn.stream.as_raw_fd()));
    }

    /// Takes a connection out of its slot.
    fn take(&mut self, idx: usize) -> Option<Conn> {
        let conn = self.conns.get_mut(idx)?.take()?;
        if conn.is_timed() {
            self.timed -= 1;
        }
        self.free.push(idx);
        Some(conn)
    }

    fn set_state(&mut self, idx: usize, state: State) {
        let Some(conn) = self.conns[idx].as_mut() else {
            return;
        };
        let was = conn.is_timed();
        conn.state = state;
        match (was, conn.is_timed()) {
            (false, true) => self.timed += 1,
            (true, false) => self.timed -= 1,
            _ => {}
        }
    }

    /// The soonest time a blocked `WAIT` asks again, if any does.
    fn next_recheck(&self) -> Option<Instant> {
        self.waiters
            .iter()
            .filter_map(|&idx| self.client_of(idx)?.recheck_at())
            .min()
    }

    /// Adds the connections whose `WAIT` asks again by now to `touched`
    /// (serving them sends the question), and forgets those no longer
    /// blocked.
    fn due_rechecks(&mut self, touched: &mut Vec<usize>) {
        if self.waiters.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut waiters = std::mem::take(&mut self.waiters);
        waiters.retain(
            |&idx| match self.client_of(idx).and_then(ClientConn::recheck_at) {
                Some(at) if at <= now => {
                    touched.push(idx);
                    false
                }
                Some(_) => true,
                None => false,
            },
        );
        self.waiters = waiters;
    }

    /// Remembers which of the connections just served wait to ask again.
    fn note_waiters(&mut self, served: &[usize]) {
        for &idx in served {
            let waits = self
                .client_of(idx)
                .is_some_and(|c| c.recheck_at().is_some());
            if waits && !self.waiters.contains(&idx) {
                self.waiters.push(idx);
            }
        }
    }

    /// The client of connection `idx`, if it is one.
    fn client_of(&self, idx: usize) -> Option<&ClientConn> {
        self.conns.get(idx)?.as_ref()?.state.client()
    }

    /// Acts on the deadlines that are due.
    fn sweep(&mut self, now: Instant) {
        let idle = self.clients.settings().idle_timeout;
        for idx in 0..self.conns.len() {
            let Some(conn) = self.conns[idx].as_ref() else {
                continue;
            };
            match &conn.state {
                State::Sniffing {
                    deadline: Some(d), ..
                } if *d <= now => self.refuse(idx, None),
                State::TlsOpening {
                    deadline: Some(d), ..
                } if *d <= now => {
                    let tls = self.take_tls(idx).map(|(tls, _)| tls);
                    self.refuse(idx, tls);
                }
                State::Lingering { deadline } if *deadline <= now => self.drop_conn(idx),
                // A client waiting for nothing, or one connected that never
                // sent a byte.
                state
                    if state.is_counted()
                        && state.client().is_none_or(ClientConn::is_idle)
                        && idle.is_some_and(|t| now.duration_since(conn.active) >= t) =>
                {
                    log::debug!("closed client {}: idle", conn.from);
                    self.drop_conn(idx);
                }
                _ => {}
            }
        }
    }

    /// Closes every connection: the node is stopping.
    fn close_all(&mut self) {
        for idx in 0..self.conns.len() {
            self.drop_conn(idx);
        }
    }
}

/// The store work gathered in one turn of a loop.
struct Turn {
    /// The parts of the group to send, one per connection with work.
    parts: Vec<Part<Answer>>,
    /// For each part, its connection's slot and serial.
    owners: Vec<(usize, u64)>,
    /// Connections' commands to forward (whatever the store group does).
    forwards: Vec<((usize, u64), Vec<crate::redis::forward::Item>)>,
    /// The loop's group is at the store thread: work waits for its
    /// answers (see [`Loop::held`]).
    hold: bool,
    /// Connections whose work waits for the group at the store thread.
    held: Vec<usize>,
}

/// Decodes what the client has buffered, if it can take it, and adds
/// its store work to the turn's group, `owner` being its slot and serial;
/// or, while the loop's group is at the store thread, notes that the
/// connection is to be served once it is back. Returns whether the
/// connection must be served again next turn because requests it could
/// decode now are buffered: a batch answered on this thread (`PING`s, a
/// long `MULTI`'s `QUEUED`s) left more behind, and neither a store
/// answer nor a readiness event would bring it back, since the client
/// sends nothing more until it has its replies.
#[must_use]
fn take_work(client: &mut ClientConn, owner: (usize, u64), turn: &mut Turn) -> bool {
    client.resume();
    if let Some(items) = client.take_forwards() {
        turn.forwards.push((owner, items));
    }
    if turn.hold {
        if client.has_work() {
            turn.held.push(owner.0);
            return false;
        }
    } else if let Some(part) = client.take_work() {
        turn.parts.push(part);
        turn.owners.push(owner);
    }
    client.can_decode_more()
}

/// Writes what the client has queued, as far as the socket takes it.
fn write_out(
    stream: &mut TcpStream,
    writable: &mut bool,
    active: &mut Instant,
    client: &mut ClientConn,
) -> io::Result<()> {
    if !*writable || client.output().is_empty() {
        return Ok(());
    }
    if client.output().write_to(stream)? > 0 {
        *active = Instant::now();
    }
    if !client.output().is_empty() {
        *writable = false;
    }
    Ok(())
}
