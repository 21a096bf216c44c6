//! Pushing to the peers: one pusher thread per peer and a sync thread that
//! starts rounds.
//!
//! A round starts when the node starts, soon after a local write (the store thread pokes the sync
//! thread; writes that arrive together share one round) and at least every
//! interval. In a round each pusher sends its peer every entry above the
//! peer's last acknowledged version vector, in bounded parts, and merges
//! what the peer sends back (see [`crate::replication::wire`] for the exchange). An idle
//! round costs two small vectors.
//!
//! Each pusher owns its peer's connection (kept open, re-opened after a
//! failure) and has timeouts on connect, read and write, so a peer that is
//! down, slow or silent delays only its own pusher. A pusher still busy
//! when more rounds start serves them all with one push.

use crate::engine::service::StoreHandle;
use crate::error::{Error, Result};
use crate::replication::frame::{read_frame, write_frame, FrameError};
use crate::replication::wire::{Batch, Message, MessageRef, WireVv, MAGIC, PROTOCOL_VERSION};
use crate::store::{BatchError, Delta};
use crossbeam_channel::{
    bounded, select, Receiver, SendTimeoutError, Sender, TryRecvError, TrySendError,
};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io::{BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Largest part of a transfer, in bytes, when frames allow it.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// The part size for a node whose largest frame is `max_frame`: half of it
/// at most, which leaves room for the name table (a single entry may take
/// more, and always fits: values are limited to fit a frame alone).
pub fn part_bytes(max_frame: usize) -> usize {
    CHUNK_BYTES.min(max_frame / 2)
}

/// Most parts of one transfer in flight: parts a pusher sends ahead of
/// the peer's `Next` for the first of them, and parts a receiver has handed
/// to its store thread without having seen them merged. So the sender's
/// store thread, the encoding, the network, the decoding and the
/// receiver's store thread all work at once, while a transfer holds at
/// most a few parts of [`CHUNK_BYTES`] in memory on each side.
pub const PARTS_IN_FLIGHT: usize = 4;

/// The parts of a transfer to a node that has seen `since`, each gathered
/// by the store thread while the caller sends the one before.
pub struct Parts<'a> {
    store: &'a StoreHandle,
    since: WireVv,
    max_bytes: usize,
    next: Option<Receiver<(Delta, Option<WireVv>)>>,
    start_vv: Option<WireVv>,
}

impl<'a> Parts<'a> {
    /// Asks for the first part.
    pub fn new(store: &'a StoreHandle, since: WireVv, max_bytes: usize) -> Result<Parts<'a>> {
        let next = Some(store.delta_later(since.clone(), None, max_bytes)?);
        Ok(Parts {
            store,
            since,
            max_bytes,
            next,
            start_vv: None,
        })
    }

    /// The next part and whether it is the last, or `None` after the
    /// last; asks for the part after it before returning.
    pub fn next_part(&mut self) -> Result<Option<(Batch, bool)>> {
        let Some(rx) = self.next.take() else {
            return Ok(None);
        };
        let (delta, vv) = rx.recv().map_err(|_| Error::Stopped)?;
        if self.start_vv.is_none() {
            self.start_vv = vv;
        }
        if let Some(cursor) = delta.next {
            self.next = Some(self.store.delta_later(
                self.since.clone(),
                Some(cursor),
                self.max_bytes,
            )?);
        }
        Ok(Some((delta.batch, delta.next.is_none())))
    }

    /// This node's version vector when the transfer started (known once
    /// the first part has been taken).
    pub fn start_vv(&self) -> Option<&WireVv> {
        self.start_vv.as_ref()
    }
}

/// The parts of an incoming transfer handed to the store thread and not
/// yet seen merged, oldest first. The next part is decoded while the store
/// thread merges this one; [`Merges::finish`] waits for all of them, so a
/// version vector is joined or acknowledged only once everything it
/// covers is merged (and logged, when logging).
///
/// The newest part is held back until the next arrives or the transfer
/// ends, so that the last part and the vector's join go to the store
/// thread as one request: one log group, one fsync with `--fsync
/// always`, where two requests would cost two.
pub struct Merges<'a> {
    store: &'a StoreHandle,
    pending: VecDeque<Receiver<std::result::Result<(), BatchError>>>,
    held: Option<Batch>,
}

impl<'a> Merges<'a> {
    /// No merges in flight.
    pub fn new(store: &'a StoreHandle) -> Merges<'a> {
        Merges {
            store,
            pending: VecDeque::new(),
            held: None,
        }
    }

    /// Takes the next part of the transfer, and hands the one before it to
    /// the store thread. Merges already done are checked first, and with
    /// [`PARTS_IN_FLIGHT`] pending the oldest is waited for; an invalid
    /// part seen there is the error.
    pub fn add(&mut self, batch: Batch) -> Result<std::result::Result<(), BatchError>> {
        let Some(batch) = self.held.replace(batch) else {
            return Ok(Ok(()));
        };
        while let Some(oldest) = self.pending.front() {
            let result = if self.pending.len() >= PARTS_IN_FLIGHT {
                oldest.recv().map_err(|_| Error::Stopped)?
            } else {
                match oldest.try_recv() {
                    Ok(result) => result,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return Err(Error::Stopped),
                }
            };
            self.pending.pop_front();
            if result.is_err() {
                return Ok(result);
            }
        }
        self.pending.push_back(self.store.apply_later(batch)?);
        Ok(Ok(()))
    }

    /// Ends a transfer from a peer whose vector was `vv`: waits until every
    /// part handed over is merged, then merges the last part and joins
    /// `vv`, only if every part was valid.
    pub fn finish(&mut self, vv: WireVv) -> Result<std::result::Result<(), BatchError>> {
        while let Some(oldest) = self.pending.pop_front() {
            let result = oldest.recv().map_err(|_| Error::Stopped)?;
            if result.is_err() {
                return Ok(result);
            }
        }
        let last = self.held.take().unwrap_or_default();
        self.store.apply_and_join(last, vv)
    }
}

/// The peers (by name) this node is answering with a transfer of several
/// parts right now, shared by the peer connections that answer and the
/// pushers.
///
/// A node that starts empty pulls everything from its peers in its first
/// round, and those peers' own rounds, coming meanwhile, would push it the
/// same data again: a second full transfer, as large as the first, into a
/// node still busy merging the first. So a pusher whose peer is pulling
/// such a transfer from this node leaves that round to the pull (see
/// `Pusher::exchange`).
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

/// Timeouts and limits for outgoing pushes.
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for each read and write.
    pub io_timeout: Duration,
    /// Largest frame accepted in an answer.
    pub max_frame: usize,
    /// The peers this node's connections are answering with a transfer.
    pub answering: Arc<Answering>,
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
    /// Why the last push failed.
    pub last_error: Option<String>,
    /// Bytes sent in the last successful round.
    pub last_round_bytes: usize,
}

/// The status of every peer, shared by the pushers (writers) and the CLI.
pub type PeerTable = Arc<Mutex<Vec<PeerStatus>>>;

/// A request for one push; `done` hears whether the peer acknowledged.
struct Job {
    done: Option<Sender<bool>>,
}

/// The pushers of a node: a way to start a round.
pub struct Pushers {
    jobs: Vec<Sender<Job>>,
    table: PeerTable,
}

impl Pushers {
    /// Starts one pusher thread per peer address; peer `i` is listed peer
    /// `i` of the store.
    pub fn spawn(
        name: &str,
        peers: Vec<String>,
        store: StoreHandle,
        settings: PushSettings,
    ) -> Result<(Pushers, Vec<JoinHandle<()>>)> {
        let table: PeerTable = Arc::new(Mutex::new(
            peers
                .iter()
                .map(|addr| PeerStatus {
                    addr: addr.clone(),
                    reachable: None,
                    last_sync: None,
                    last_error: None,
                    last_round_bytes: 0,
                })
                .collect(),
        ));
        let mut jobs = Vec::new();
        let mut threads = Vec::new();
        for (index, addr) in peers.into_iter().enumerate() {
            let (tx, rx) = bounded(8);
            let pusher = Pusher {
                index,
                addr: addr.clone(),
                name: name.to_owned(),
                store: store.clone(),
                table: Arc::clone(&table),
                settings: settings.clone(),
                conn: None,
                left_to_pull: false,
            };
            let thread = std::thread::Builder::new()
                .name(format!("netdb-push-{addr}"))
                .spawn(move || pusher.run(rx))
                .map_err(|source| Error::Io {
                    context: "cannot start a pusher thread",
                    source,
                })?;
            jobs.push(tx);
            threads.push(thread);
        }
        Ok((Pushers { jobs, table }, threads))
    }

    /// The shared peer status table.
    pub fn table(&self) -> PeerTable {
        Arc::clone(&self.table)
    }

    /// How many peers there are.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether there are no peers.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Asks every pusher for a push, unless it has one queued already (a
    /// queued push sends everything this one would).
    fn start_round(&self) -> Result<()> {
        for jobs in &self.jobs {
            match jobs.try_send(Job { done: None }) {
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => return Err(Error::Stopped),
            }
        }
        Ok(())
    }

    /// Pushes to every peer now and waits up to `timeout` for their
    /// acknowledgements; returns how many acknowledged. Unlike a periodic
    /// round, this waits for room in a busy pusher's queue: the caller
    /// wants this push's answer.
    pub fn sync_now(&self, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        let (tx, rx) = bounded(self.jobs.len().max(1));
        let mut started = 0;
        for jobs in &self.jobs {
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
}

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

/// An open, greeted connection to a peer.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
    /// The peer's name, from its `Welcome`.
    peer_name: String,
    /// The peer's version vector as last acknowledged on this connection.
    peer_vv: WireVv,
}

/// The thread that pushes to one peer.
struct Pusher {
    index: usize,
    addr: String,
    name: String,
    store: StoreHandle,
    table: PeerTable,
    settings: PushSettings,
    conn: Option<Conn>,
    /// Whether the last round was left to the peer's pull (logged once).
    left_to_pull: bool,
}

/// Why a push failed, as shown in `status` and the log.
type PushError = String;

impl Pusher {
    fn run(mut self, jobs: Receiver<Job>) {
        while let Ok(first) = jobs.recv() {
            // Rounds that queued up while this push was busy are all served
            // by the next push, which sends everything they would have.
            let mut waiting: Vec<Sender<bool>> = first.done.into_iter().collect();
            while let Ok(more) = jobs.try_recv() {
                waiting.extend(more.done);
            }
            // A push someone waits for (`sync`, the last push at `quit`)
            // is made in full.
            let ok = self.push_with_retry(waiting.is_empty());
            for done in waiting {
                let _ = done.send(ok);
            }
        }
    }

    /// Pushes; a failure on a reused connection (which the peer may have
    /// closed while idle) is retried once on a fresh one.
    fn push_with_retry(&mut self, may_leave_to_pull: bool) -> bool {
        let reused = self.conn.is_some();
        let mut result = self.push(may_leave_to_pull);
        if result.is_err() && reused {
            result = self.push(may_leave_to_pull);
        }
        let mut table = self.table.lock();
        let status = &mut table[self.index];
        let was = status.reachable;
        match &result {
            Ok(bytes) => {
                status.reachable = Some(true);
                status.last_sync = Some(SystemTime::now());
                status.last_error = None;
                status.last_round_bytes = *bytes;
                if was != Some(true) {
                    crate::log!("peer {} is reachable", self.addr);
                }
            }
            Err(e) => {
                status.reachable = Some(false);
                status.last_error = Some(e.clone());
                if was != Some(false) {
                    crate::log!("peer {} is unreachable: {e}", self.addr);
                }
            }
        }
        result.is_ok()
    }

    /// One push; returns the bytes sent. On error the connection is
    /// dropped; so it is after a round left to the peer's pull, whose
    /// vector it no longer knows.
    fn push(&mut self, may_leave_to_pull: bool) -> std::result::Result<usize, PushError> {
        if self.conn.is_none() {
            self.conn = Some(self.connect()?);
        }
        let mut conn = self.conn.take().expect("connected just above");
        let sent = self.exchange(&mut conn, may_leave_to_pull)?;
        let left = sent.is_none();
        if left && !self.left_to_pull {
            crate::log!(
                "peer {} is pulling a transfer from this node; rounds leave it to that",
                self.addr
            );
        }
        self.left_to_pull = left;
        if let Some(sent) = sent {
            self.conn = Some(conn);
            return Ok(sent);
        }
        Ok(0)
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
    fn exchange(
        &self,
        conn: &mut Conn,
        may_leave_to_pull: bool,
    ) -> std::result::Result<Option<usize>, PushError> {
        let stopped = |e: Error| e.to_string();
        let frame = |e: FrameError| e.to_string();
        let mut sent = 0;
        let since = conn.peer_vv.clone();
        let max_part = part_bytes(self.settings.max_frame);
        let mut parts = Parts::new(&self.store, since, max_part).map_err(stopped)?;
        // Parts sent whose `Next` has not come back yet.
        let mut unanswered = 0;
        while let Some((batch, last)) = parts.next_part().map_err(stopped)? {
            if may_leave_to_pull
                && sent == 0
                && !last
                && self.settings.answering.is_answering(&conn.peer_name)
            {
                return Ok(None);
            }
            let done = if last { parts.start_vv() } else { None };
            sent += write_frame(
                &mut conn.writer,
                &MessageRef::Push {
                    batch: &batch,
                    done,
                },
            )
            .map_err(frame)?;
            conn.writer.flush().map_err(|e| frame(e.into()))?;
            if last {
                break;
            }
            unanswered += 1;
            if unanswered == PARTS_IN_FLIGHT {
                self.expect_next(conn)?;
                unanswered -= 1;
            }
        }
        for _ in 0..unanswered {
            self.expect_next(conn)?;
        }
        let mut merges = Merges::new(&self.store);
        loop {
            match read_frame(&mut conn.reader, self.settings.max_frame).map_err(frame)? {
                Message::Pull { batch } => {
                    merges
                        .add(batch)
                        .map_err(stopped)?
                        .map_err(|e| e.to_string())?;
                }
                Message::Ack { vv } => {
                    // The peer's vector covers what it sent: join it only
                    // once all of that is merged.
                    merges
                        .finish(vv.clone())
                        .map_err(stopped)?
                        .map_err(|e| e.to_string())?;
                    self.store
                        .peer_acknowledged(self.index, vv.clone())
                        .map_err(stopped)?;
                    conn.peer_vv = vv;
                    return Ok(Some(sent));
                }
                other => return Err(format!("expected Pull or Ack, got {}", other.kind())),
            }
        }
    }

    fn expect_next(&self, conn: &mut Conn) -> std::result::Result<(), PushError> {
        match read_frame(&mut conn.reader, self.settings.max_frame).map_err(|e| e.to_string())? {
            Message::Next => Ok(()),
            other => Err(format!("expected Next, got {}", other.kind())),
        }
    }

    fn connect(&self) -> std::result::Result<Conn, PushError> {
        let addrs: Vec<SocketAddr> = self
            .addr
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve: {e}"))?
            .collect();
        let mut last = String::from("no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.settings.connect_timeout) {
                Ok(stream) => return self.greet(stream).map_err(|e| e.to_string()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }

    fn greet(&self, stream: TcpStream) -> std::result::Result<Conn, FrameError> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(self.settings.io_timeout))?;
        stream.set_write_timeout(Some(self.settings.io_timeout))?;
        let mut reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
        let mut writer = BufWriter::with_capacity(64 * 1024, stream);
        writer.write_all(&MAGIC)?;
        write_frame(
            &mut writer,
            &MessageRef::Hello {
                version: PROTOCOL_VERSION,
                name: &self.name,
            },
        )?;
        writer.flush()?;
        match read_frame(&mut reader, self.settings.max_frame)? {
            Message::Welcome { version, .. } if version != PROTOCOL_VERSION => {
                Err(protocol(format!(
                    "peer speaks protocol version {version}, this node speaks {PROTOCOL_VERSION}"
                )))
            }
            Message::Welcome { name, .. } if name == self.name => Err(protocol(format!(
                "peer answers with this node's own name '{name}'"
            ))),
            Message::Welcome { vv, name, .. } => Ok(Conn {
                reader,
                writer,
                peer_name: name,
                peer_vv: vv,
            }),
            other => Err(protocol(format!(
                "peer answered Hello with {}",
                other.kind()
            ))),
        }
    }
}

fn protocol(why: String) -> FrameError {
    FrameError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, why))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
