//! Pushing this node's state to its peers: one pusher thread per peer and a
//! sync thread that starts a round every interval.
//!
//! A round takes one snapshot from the store thread and hands it to every
//! pusher. Each pusher owns its peer's connection (kept open and re-opened
//! after a failure), sends the snapshot in bounded batches and merges what
//! each answer carries back. Pushers work in parallel and with timeouts on
//! connect, read and write, so a peer that is down, slow or silent delays
//! only its own pusher; a pusher still busy when the next round starts
//! simply misses that round.

use crate::error::{Error, Result};
use crate::frame::{read_frame, write_frame, FrameError};
use crate::service::StoreHandle;
use crate::wire::{Batch, Message, MessageRef, MAGIC, PROTOCOL_VERSION};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use parking_lot::Mutex;
use std::io::{BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Target size of one pushed batch, in bytes.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// Timeouts and limits for outgoing pushes.
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for each read and write.
    pub io_timeout: Duration,
    /// Largest frame accepted in an answer.
    pub max_frame: usize,
}

/// What `status` shows of one peer.
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

/// One round's work for a pusher.
struct Job {
    batches: Arc<Vec<Batch>>,
    /// Told whether the push was acknowledged, when someone waits.
    done: Option<Sender<bool>>,
}

/// The pushers of a node: a way to start a round.
pub struct Pushers {
    jobs: Vec<Sender<Job>>,
    table: PeerTable,
    store: StoreHandle,
}

impl Pushers {
    /// Starts one pusher thread per peer address.
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
            let (tx, rx) = bounded(4);
            let pusher = Pusher {
                index,
                addr: addr.clone(),
                name: name.to_owned(),
                store: store.clone(),
                table: Arc::clone(&table),
                settings: settings.clone(),
                conn: None,
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
        Ok((Pushers { jobs, table, store }, threads))
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

    /// Starts a round: one snapshot, handed to every pusher that is free.
    /// With `done`, each pusher that took the job reports there whether its
    /// peer acknowledged; returns how many took it.
    fn start_round(&self, done: Option<&Sender<bool>>) -> Result<usize> {
        if self.jobs.is_empty() {
            return Ok(0);
        }
        let batches = Arc::new(self.store.snapshot(CHUNK_BYTES)?);
        let mut started = 0;
        for jobs in &self.jobs {
            let job = Job {
                batches: Arc::clone(&batches),
                done: done.cloned(),
            };
            match jobs.try_send(job) {
                Ok(()) => started += 1,
                Err(TrySendError::Full(_)) => {} // still busy with earlier rounds
                Err(TrySendError::Disconnected(_)) => return Err(Error::Stopped),
            }
        }
        Ok(started)
    }

    /// Pushes to every peer now and waits up to `timeout` for their
    /// acknowledgements; returns how many acknowledged.
    pub fn sync_now(&self, timeout: Duration) -> Result<usize> {
        let (tx, rx) = bounded(self.jobs.len().max(1));
        let started = self.start_round(Some(&tx))?;
        drop(tx);
        let deadline = Instant::now() + timeout;
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

/// Starts the sync thread: a round every `interval`, until `stop` is
/// dropped or sent to.
pub fn spawn_ticker(
    pushers: Arc<Pushers>,
    interval: Duration,
    stop: Receiver<()>,
) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("netdb-sync".into())
        .spawn(move || loop {
            match stop.recv_timeout(interval) {
                Err(RecvTimeoutError::Timeout) => {
                    if pushers.start_round(None).is_err() {
                        return;
                    }
                }
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
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
}

impl Pusher {
    fn run(mut self, jobs: Receiver<Job>) {
        while let Ok(first) = jobs.recv() {
            // Rounds that queued up while this peer was slow are served by
            // one push of the newest snapshot.
            let mut waiting: Vec<Sender<bool>> = first.done.into_iter().collect();
            let mut batches = first.batches;
            while let Ok(more) = jobs.try_recv() {
                waiting.extend(more.done);
                batches = more.batches;
            }
            let ok = self.push_with_retry(&batches);
            for done in waiting {
                let _ = done.send(ok);
            }
        }
    }

    /// Pushes; a failure on a reused connection (which the peer may have
    /// closed while idle) is retried once on a fresh one.
    fn push_with_retry(&mut self, batches: &[Batch]) -> bool {
        let reused = self.conn.is_some();
        let mut result = self.push(batches);
        if result.is_err() && reused {
            result = self.push(batches);
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

    /// One push of every batch; returns the bytes sent. On error the
    /// connection is dropped.
    fn push(&mut self, batches: &[Batch]) -> std::result::Result<usize, String> {
        let result = self.try_push(batches);
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    fn try_push(&mut self, batches: &[Batch]) -> std::result::Result<usize, String> {
        if self.conn.is_none() {
            self.conn = Some(self.connect()?);
        }
        let conn = self.conn.as_mut().expect("connected just above");
        let mut sent = 0;
        for batch in batches {
            sent += write_frame(&mut conn.writer, &MessageRef::Push { batch })
                .map_err(|e| e.to_string())?;
            conn.writer
                .flush()
                .map_err(|e| FrameError::Io(e).to_string())?;
            match read_frame(&mut conn.reader, self.settings.max_frame) {
                Ok(Message::Ack { newer }) => {
                    if !newer.entries.is_empty() {
                        self.store.apply_later(newer).map_err(|e| e.to_string())?;
                    }
                }
                Ok(_) => return Err("peer answered a push with something other than Ack".into()),
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(sent)
    }

    fn connect(&self) -> std::result::Result<Conn, String> {
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
        let mut conn = Conn {
            reader: BufReader::with_capacity(64 * 1024, stream.try_clone()?),
            writer: BufWriter::with_capacity(64 * 1024, stream),
        };
        conn.writer.write_all(&MAGIC)?;
        write_frame(
            &mut conn.writer,
            &MessageRef::Hello {
                version: PROTOCOL_VERSION,
                name: &self.name,
            },
        )?;
        conn.writer.flush()?;
        match read_frame(&mut conn.reader, self.settings.max_frame)? {
            Message::Hello { version, .. } if version != PROTOCOL_VERSION => {
                Err(protocol(format!(
                    "peer speaks protocol version {version}, this node speaks {PROTOCOL_VERSION}"
                )))
            }
            Message::Hello { name, .. } if name == self.name => Err(protocol(format!(
                "peer answers with this node's own name '{name}'"
            ))),
            Message::Hello { .. } => Ok(conn),
            _ => Err(protocol("peer did not answer with Hello".into())),
        }
    }
}

fn protocol(why: String) -> FrameError {
    FrameError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, why))
}
