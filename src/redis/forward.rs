//! The forwarder: sends commands this node does not serve to a node that
//! does, over pooled Redis-protocol connections, and hands the replies
//! back (proxying, issue 14).
//!
//! The I/O threads must never block on another node, so a connection's
//! forwarded commands leave as one [`Job`] on a channel to a few
//! forwarding threads (plain blocking threads: no async runtime in
//! netdb). A thread takes the jobs queued (many clients' at once, as the
//! store thread takes a group), runs their parts, each job's in order,
//! pipelining each target's parts on one connection, and calls each
//! job's `done` with one reply per part; the I/O thread's `done` puts them on its channel and
//! wakes its loop, the way store answers come back. The console, on the
//! main thread, waits for its answers instead ([`Forwarder::run`]).
//!
//! Each part goes to the first of its targets that answers: a target
//! that cannot be reached, or fails mid-exchange, is dropped for the
//! parts still unanswered, which go to the next replica; when none is
//! left the part's reply is a `CLUSTERDOWN` error naming its slot. A
//! part whose reply was lost may so have run twice (at least once, as
//! any client retry).
//!
//! A forwarding connection first authenticates with this node's own
//! client password (so the members of a sharded cluster share one), then
//! sends `NETDB.PROXY`: the node that takes it serves every command that
//! comes on it locally, so a command is forwarded once at most, even
//! while two nodes' views of the layout differ. Before each part it
//! switches the connection to the part's protocol (`HELLO 2|3`) and
//! database (`SELECT`) if they differ, so the reply is the one the
//! client's own connection would get. TLS toward members when the node
//! dials its peers with TLS; plain TCP otherwise. Every socket has
//! connect, read and write timeouts (`--connect-timeout`,
//! `--io-timeout`).

use crate::engine::Database;
use crate::error::{Error, Result};
use crate::redis::resp::{encode_command, Protocol, Reply, ReplyDecoder};
use crate::redis::route::Remote;
use crate::replication::connection::{dial_tls, PeerStream};
use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::Mutex;
use rustls::ClientConfig;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The command that marks a connection as a forwarding one: what comes
/// on it is served where it arrives, never forwarded again.
pub const PROXY_MARK: &[u8] = b"NETDB.PROXY";

/// Most jobs a forwarding thread runs together.
const MAX_GROUP: usize = 64;

/// Most parts written before their replies are read.
const CHUNK: usize = 64;

/// Most idle connections kept per target.
const POOL_PER_TARGET: usize = 16;

/// How a node reaches the others to forward.
#[derive(Clone)]
pub struct ForwardSettings {
    /// How long a connection may take to open.
    pub connect_timeout: Duration,
    /// How long a read or a write may wait.
    pub io_timeout: Duration,
    /// This node's client password, given to the others.
    pub password: Option<String>,
    /// TLS toward members, when peers talk TLS.
    pub tls: Option<Arc<ClientConfig>>,
}

impl std::fmt::Debug for ForwardSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardSettings")
            .field("connect_timeout", &self.connect_timeout)
            .field("io_timeout", &self.io_timeout)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// One part to forward, with the client's connection state it must run
/// in.
#[derive(Debug, Clone)]
pub struct Item {
    /// Where and what.
    pub remote: Remote,
    /// The client's database.
    pub db: Database,
    /// The client's protocol.
    pub protocol: Protocol,
}

/// What is called with a job's replies, one per item, in order.
pub type Done = Box<dyn FnOnce(Vec<Reply>) + Send>;

/// A connection's forwarded parts, and where their replies go.
pub struct Job {
    items: Vec<Item>,
    done: Done,
}

struct Shared {
    settings: ForwardSettings,
    pool: Mutex<HashMap<String, Vec<ProxyConn>>>,
    forwarded: AtomicU64,
}

/// The forwarding threads and their pool: see the module doc.
pub struct Forwarder {
    jobs: Mutex<Option<Sender<Job>>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

impl Forwarder {
    /// Starts `threads` forwarding threads.
    pub fn spawn(threads: usize, settings: ForwardSettings) -> Result<Forwarder> {
        let (tx, rx) = unbounded::<Job>();
        let shared = Arc::new(Shared {
            settings,
            pool: Mutex::new(HashMap::new()),
            forwarded: AtomicU64::new(0),
        });
        for i in 0..threads.max(1) {
            let rx: Receiver<Job> = rx.clone();
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("netdb-forward-{i}"))
                .spawn(move || {
                    while let Ok(first) = rx.recv() {
                        // The jobs queued meanwhile go with it: their
                        // parts for one target share one pipelined
                        // exchange, as the store thread's group does.
                        let mut jobs = vec![first];
                        while jobs.len() < MAX_GROUP {
                            match rx.try_recv() {
                                Ok(job) => jobs.push(job),
                                Err(_) => break,
                            }
                        }
                        run_group(&shared, jobs);
                    }
                })
                .map_err(Error::io("cannot start a forwarding thread"))?;
        }
        Ok(Forwarder {
            jobs: Mutex::new(Some(tx)),
            shared,
        })
    }

    /// Forwards `items`; `done` gets their replies, on a forwarding
    /// thread (or here, with errors, once the forwarder is stopped).
    pub fn submit(&self, items: Vec<Item>, done: Done) {
        self.shared
            .forwarded
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        let job = Job { items, done };
        let sent = match self.jobs.lock().as_ref() {
            Some(tx) => tx.send(job).map_err(|e| e.into_inner()),
            None => Err(job),
        };
        if let Err(job) = sent {
            let replies = job.items.iter().map(|_| stopping()).collect();
            (job.done)(replies);
        }
    }

    /// Forwards `items` and waits for their replies (the console).
    pub fn run(&self, items: Vec<Item>) -> Vec<Reply> {
        let count = items.len();
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.submit(
            items,
            Box::new(move |replies| {
                let _ = tx.send(replies);
            }),
        );
        rx.recv()
            .unwrap_or_else(|_| (0..count).map(|_| stopping()).collect())
    }

    /// Parts forwarded since the start (`INFO`'s
    /// `netdb_proxied_commands`).
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::Relaxed)
    }

    /// Stops taking jobs: the threads end once the queued ones are done.
    pub fn stop(&self) {
        self.jobs.lock().take();
    }
}

fn stopping() -> Reply {
    Reply::Error("ERR the node is shutting down".into())
}

/// The reply of a part that no target answered.
fn unanswered(remote: &Remote, why: &str) -> Reply {
    match remote.slot {
        Some(slot) => Reply::Error(format!(
            "CLUSTERDOWN The cluster is down: no replica of slot {slot} answered ({why})"
        )),
        None => Reply::Error(format!(
            "CLUSTERDOWN {} did not answer ({why})",
            remote.targets.join(", ")
        )),
    }
}

/// Runs the items of several jobs as one (each job's stay in their
/// order, on one connection per target), and hands each job its replies.
fn run_group(shared: &Shared, jobs: Vec<Job>) {
    let mut items = Vec::new();
    let mut ends = Vec::with_capacity(jobs.len());
    let mut dones = Vec::with_capacity(jobs.len());
    for job in jobs {
        items.extend(job.items);
        ends.push(items.len());
        dones.push(job.done);
    }
    let mut replies = execute(shared, &items).into_iter();
    let mut start = 0;
    for (end, done) in ends.into_iter().zip(dones) {
        done(replies.by_ref().take(end - start).collect());
        start = end;
    }
}

/// Runs a job's items: one reply each, in order.
fn execute(shared: &Shared, items: &[Item]) -> Vec<Reply> {
    let mut replies: Vec<Option<Reply>> = vec![None; items.len()];
    let mut attempt = vec![0usize; items.len()];
    let mut last_error: Vec<String> = vec!["no replica known".into(); items.len()];
    loop {
        // The unanswered items, by the target each tries next, in order.
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if replies[i].is_some() {
                continue;
            }
            match item.remote.targets.get(attempt[i]) {
                None => replies[i] = Some(unanswered(&item.remote, &last_error[i])),
                Some(target) => match groups.iter_mut().find(|(t, _)| t == target) {
                    Some((_, idxs)) => idxs.push(i),
                    None => groups.push((target.clone(), vec![i])),
                },
            }
        }
        if groups.is_empty() {
            break;
        }
        for (target, idxs) in groups {
            let group: Vec<&Item> = idxs.iter().map(|&i| &items[i]).collect();
            let (got, failure) = exchange_with(shared, &target, &group);
            let answered = got.len();
            for (k, reply) in got.into_iter().enumerate() {
                replies[idxs[k]] = Some(reply);
            }
            if let Some(why) = failure {
                log::warn!("forwarding to {target}: {why}");
                for &i in &idxs[answered..] {
                    attempt[i] += 1;
                    last_error[i] = format!("{target}: {why}");
                }
            }
        }
    }
    replies
        .into_iter()
        .map(|r| r.unwrap_or_else(stopping))
        .collect()
}

/// Runs `items` on `target`: a pooled connection if there is one (and a
/// fresh one if that turns out stale before any reply), else a new one.
/// Returns the replies read, in order, and why the rest were not.
fn exchange_with(shared: &Shared, target: &str, items: &[&Item]) -> (Vec<Reply>, Option<String>) {
    let pooled = shared.pool.lock().get_mut(target).and_then(Vec::pop);
    if let Some(mut conn) = pooled {
        let (got, failure) = conn.exchange(items);
        match failure {
            None => {
                give_back(shared, target, conn);
                return (got, None);
            }
            // A connection idle in the pool may have been closed by the
            // other side: try a fresh one before giving up on the target.
            // Only then: after a timeout the other side may have run the
            // commands (an INCR must not run twice).
            Some(e) if got.is_empty() && e.found_closed() => {}
            Some(e) => return (got, Some(e.to_string())),
        }
    }
    let mut conn = match ProxyConn::dial(&shared.settings, target) {
        Ok(conn) => conn,
        Err(e) => return (Vec::new(), Some(e.to_string())),
    };
    let (got, failure) = conn.exchange(items);
    match failure {
        None => {
            give_back(shared, target, conn);
            (got, None)
        }
        Some(e) => (got, Some(e.to_string())),
    }
}

fn give_back(shared: &Shared, target: &str, conn: ProxyConn) {
    let mut pool = shared.pool.lock();
    let idle = pool.entry(target.to_owned()).or_default();
    if idle.len() < POOL_PER_TARGET {
        idle.push(conn);
    }
}

/// Why an exchange failed, as a log line and an error reply say it.
#[derive(Debug)]
enum ExchangeError {
    Io(io::Error),
    Protocol(String),
}

impl std::fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExchangeError::Io(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                f.write_str("timed out")
            }
            ExchangeError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                f.write_str("connection closed")
            }
            ExchangeError::Io(e) => write!(f, "{e}"),
            ExchangeError::Protocol(e) => write!(f, "{e}"),
        }
    }
}

impl ExchangeError {
    /// Whether the other side had closed the connection (so it ran
    /// nothing sent on it): end of stream, reset, or a broken pipe.
    fn found_closed(&self) -> bool {
        matches!(
            self,
            ExchangeError::Io(e) if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            )
        )
    }
}

impl From<io::Error> for ExchangeError {
    fn from(e: io::Error) -> ExchangeError {
        ExchangeError::Io(e)
    }
}

/// One connection to another node, in the state its last command left
/// it.
struct ProxyConn {
    stream: PeerStream,
    input: Vec<u8>,
    decoder: ReplyDecoder,
    /// `None` once a part may have changed it (a forwarded transaction
    /// may `SELECT`): the next part sets it again.
    protocol: Option<Protocol>,
    db: Option<Database>,
}

impl ProxyConn {
    /// Opens a forwarding connection to `addr`: authenticated, marked.
    fn dial(
        settings: &ForwardSettings,
        addr: &str,
    ) -> std::result::Result<ProxyConn, ExchangeError> {
        let sockaddr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| ExchangeError::Protocol(format!("{addr} resolves to no address")))?;
        let tcp = TcpStream::connect_timeout(&sockaddr, settings.connect_timeout)?;
        tcp.set_read_timeout(Some(settings.io_timeout))?;
        tcp.set_write_timeout(Some(settings.io_timeout))?;
        let _ = tcp.set_nodelay(true);
        let stream = match &settings.tls {
            Some(config) => PeerStream::dialed(
                dial_tls(config, addr).map_err(ExchangeError::Protocol)?,
                tcp,
            ),
            None => PeerStream::Plain(tcp),
        };
        let mut conn = ProxyConn {
            stream,
            input: Vec::new(),
            decoder: ReplyDecoder::new(),
            protocol: Some(Protocol::Resp2),
            db: Some(Database::ZERO),
        };
        let mut out = Vec::new();
        let mut expected = 1;
        if let Some(password) = &settings.password {
            encode_command(&[b"AUTH", password.as_bytes()], &mut out);
            expected += 1;
        }
        encode_command(&[PROXY_MARK], &mut out);
        conn.stream.write_all(&out)?;
        conn.stream.flush()?;
        for _ in 0..expected {
            if let Reply::Error(e) = conn.read_reply()? {
                return Err(ExchangeError::Protocol(format!("refused: {e}")));
            }
        }
        Ok(conn)
    }

    /// Runs `items` in chunks: each chunk is written whole, then its
    /// replies read, so neither side's buffers fill with the other
    /// waiting.
    fn exchange(&mut self, items: &[&Item]) -> (Vec<Reply>, Option<ExchangeError>) {
        let mut got = Vec::with_capacity(items.len());
        for chunk in items.chunks(CHUNK) {
            let (replies, failure) = self.exchange_chunk(chunk);
            got.extend(replies);
            if failure.is_some() {
                return (got, failure);
            }
        }
        (got, None)
    }

    /// Sends every item (each after what switches the connection to its
    /// protocol and database), then reads their replies.
    fn exchange_chunk(&mut self, items: &[&Item]) -> (Vec<Reply>, Option<ExchangeError>) {
        let mut out = Vec::new();
        // For each item: how many replies to skip before its commands'.
        let mut skips = Vec::with_capacity(items.len());
        for item in items {
            let mut skip = 0;
            if Some(item.protocol) != self.protocol {
                let version: &[u8] = match item.protocol {
                    Protocol::Resp2 => b"2",
                    Protocol::Resp3 => b"3",
                };
                encode_command(&[b"HELLO", version], &mut out);
                self.protocol = Some(item.protocol);
                skip += 1;
            }
            if Some(item.db) != self.db {
                let index = item.db.index().to_string();
                encode_command(&[b"SELECT", index.as_bytes()], &mut out);
                self.db = Some(item.db);
                skip += 1;
            }
            for command in &item.remote.commands {
                let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
                encode_command(&args, &mut out);
            }
            if item.remote.commands.len() > 1 {
                self.protocol = None;
                self.db = None;
            }
            skips.push(skip);
        }
        if let Err(e) = self
            .stream
            .write_all(&out)
            .and_then(|()| self.stream.flush())
        {
            return (Vec::new(), Some(e.into()));
        }
        let mut got = Vec::with_capacity(items.len());
        for (item, skip) in items.iter().zip(skips) {
            let mut first_error = None;
            let mut last = Reply::Null;
            for k in 0..skip + item.remote.commands.len() {
                match self.read_reply() {
                    Ok(reply) => {
                        if k < skip && matches!(reply, Reply::Error(_)) {
                            first_error.get_or_insert(reply);
                        } else {
                            last = reply;
                        }
                    }
                    Err(e) => return (got, Some(e)),
                }
            }
            if first_error.is_some() {
                // The connection is not in the state it should be.
                return (
                    got,
                    Some(ExchangeError::Protocol(format!("{first_error:?}"))),
                );
            }
            got.push(last);
        }
        (got, None)
    }

    /// Reads one reply.
    fn read_reply(&mut self) -> std::result::Result<Reply, ExchangeError> {
        loop {
            match self.decoder.decode(&self.input) {
                Ok(Some((reply, used))) => {
                    self.input.drain(..used);
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(e) => return Err(ExchangeError::Protocol(format!("bad reply: {e}"))),
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
            self.input.extend_from_slice(&chunk[..n]);
        }
    }
}
