//! The listener thread and one thread per incoming connection, from a
//! peer or from a Redis client.
//!
//! Peers and clients share the node's address; the first byte tells them
//! apart. A peer opens with [`MAGIC`], whose first byte (0xF0) never
//! starts a RESP request or an inline command; anything else, or silence
//! until the handshake timeout (a client may connect and wait, a peer
//! never does), is a client, served by [`crate::redis::client`].
//!
//! A peer connection must open with the peer magic and a `Hello` of the
//! same protocol version; then it carries pushes, each merged by the store
//! thread and answered as [`crate::replication::wire`] describes. Whatever a connection
//! sends that is not that (random bytes, an oversized or truncated frame, a
//! wrong magic or version, silence past the timeout) closes that connection
//! with one log line. The node, its data and its other connections go on.

use crate::engine::service::StoreHandle;
use crate::error::{Error, Result};
use crate::redis::client;
use crate::replication::frame::{is_timeout, read_frame, read_magic, write_frame, FrameError};
use crate::replication::sync::{part_bytes, Answering, Merges, Parts};
use crate::replication::wire::{Message, MessageRef, WireVv, MAGIC, PROTOCOL_VERSION};
use crate::store::BatchError;
use std::io::{BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Limits for incoming connections.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Largest frame accepted, in bytes.
    pub max_frame: usize,
    /// Most peer connections served at once; more are closed at once.
    pub max_connections: usize,
    /// Time allowed for the magic and `Hello`.
    pub handshake_timeout: Duration,
    /// Time a connection may stay silent between pushes.
    pub idle_timeout: Duration,
    /// The peers this node's connections are answering with a transfer.
    pub answering: Arc<Answering>,
}

/// Starts the listener thread. It stops after `shutdown` is set, at the
/// next connection (the node connects to itself to wake it). Client
/// connections are served with `clients`.
pub fn spawn_listener(
    listener: TcpListener,
    name: String,
    store: StoreHandle,
    settings: ServerSettings,
    shutdown: Arc<AtomicBool>,
    clients: Arc<client::Context>,
) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("netdb-listen".into())
        .spawn(move || accept_loop(listener, &name, &store, &settings, &shutdown, &clients))
        .map_err(|source| Error::Io {
            context: "cannot start the listener thread",
            source,
        })
}

/// Decrements the open-connection count when a connection thread ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_loop(
    listener: TcpListener,
    name: &str,
    store: &StoreHandle,
    settings: &ServerSettings,
    shutdown: &AtomicBool,
    clients: &Arc<client::Context>,
) {
    // Every connection holds a slot while its first byte is awaited; then
    // a peer also holds a peer slot, and a client is counted by `clients`.
    let open = Arc::new(AtomicUsize::new(0));
    let max_open = settings
        .max_connections
        .saturating_add(clients.settings().max_clients)
        .saturating_add(1);
    let peers = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if shutdown.load(Ordering::SeqCst) {
            break;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off a little
                // rather than spin.
                crate::log!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let from = stream
            .peer_addr()
            .map_or_else(|_| "unknown".to_string(), |a| a.to_string());
        if open.fetch_add(1, Ordering::SeqCst) >= max_open {
            open.fetch_sub(1, Ordering::SeqCst);
            crate::log!("refused connection from {from}: {max_open} connections open, the limit");
            continue;
        }
        let slot = Slot(Arc::clone(&open));
        let (name, store, settings) = (name.to_owned(), store.clone(), settings.clone());
        let (peers, clients) = (Arc::clone(&peers), Arc::clone(clients));
        let spawned = std::thread::Builder::new()
            .name(format!("netdb-conn-{from}"))
            .spawn(move || {
                let _slot = slot;
                match first_byte(&stream, settings.handshake_timeout) {
                    Ok(Some(byte)) if byte == MAGIC[0] => {}
                    Ok(Some(_)) => return client::serve(stream, &clients),
                    Err(e) if is_timeout(&e) => return client::serve(stream, &clients),
                    Ok(None) => return,
                    Err(e) => return crate::log!("closed connection from {from}: {e}"),
                }
                if peers.fetch_add(1, Ordering::SeqCst) >= settings.max_connections {
                    peers.fetch_sub(1, Ordering::SeqCst);
                    return crate::log!(
                        "refused peer connection from {from}: {} peers connected, the limit",
                        settings.max_connections
                    );
                }
                let _peer_slot = Slot(peers);
                if let Err(e) = serve_peer(stream, &name, &store, &settings) {
                    crate::log!("closed connection from {from}: {e}");
                }
            });
        if let Err(e) = spawned {
            crate::log!("cannot start a connection thread: {e}");
        }
    }
}

/// The first byte the other side sends, without taking it off the
/// stream; `None` if it closed first.
fn first_byte(stream: &TcpStream, timeout: Duration) -> std::io::Result<Option<u8>> {
    stream.set_read_timeout(Some(timeout))?;
    let mut byte = [0u8; 1];
    loop {
        match stream.peek(&mut byte) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(byte[0])),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Why a connection was closed.
#[derive(Debug)]
enum ConnError {
    Frame(FrameError),
    Protocol(String),
    Stopped,
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Frame(e) => write!(f, "{e}"),
            ConnError::Protocol(why) => write!(f, "{why}"),
            ConnError::Stopped => write!(f, "node shutting down"),
        }
    }
}

impl From<FrameError> for ConnError {
    fn from(e: FrameError) -> ConnError {
        ConnError::Frame(e)
    }
}

impl From<std::io::Error> for ConnError {
    fn from(e: std::io::Error) -> ConnError {
        ConnError::Frame(FrameError::Io(e))
    }
}

/// Serves one peer connection until it closes. A clean close (between
/// frames, or idle past the timeout) is `Ok`.
fn serve_peer(
    stream: TcpStream,
    name: &str,
    store: &StoreHandle,
    settings: &ServerSettings,
) -> std::result::Result<(), ConnError> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(settings.handshake_timeout))?;
    stream.set_write_timeout(Some(settings.handshake_timeout))?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
    let mut writer = BufWriter::with_capacity(64 * 1024, stream);

    read_magic(&mut reader)?;
    let peer = match read_frame(&mut reader, settings.max_frame)? {
        Message::Hello {
            version,
            name: peer,
        } => {
            // Answer before refusing, so the other side can say why.
            let vv = store.version_vector().map_err(|_| ConnError::Stopped)?;
            write_frame(
                &mut writer,
                &MessageRef::Welcome {
                    version: PROTOCOL_VERSION,
                    name,
                    vv: &vv,
                },
            )?;
            writer.flush()?;
            if version != PROTOCOL_VERSION {
                return Err(ConnError::Protocol(format!(
                    "peer speaks protocol version {version}, this node speaks {PROTOCOL_VERSION}"
                )));
            }
            peer
        }
        other => return Err(unexpected(&other, "Hello")),
    };
    writer
        .get_ref()
        .set_read_timeout(Some(settings.idle_timeout))?;

    // Parts are answered with `Next` as soon as they are decoded, before
    // they are merged, so the pusher sends the next part while this node
    // merges; at most PARTS_IN_FLIGHT wait for the store thread.
    let mut merges = Merges::new(store);
    loop {
        let (batch, done) = match read_frame(&mut reader, settings.max_frame) {
            Ok(Message::Push { batch, done }) => (batch, done),
            Ok(other) => return Err(unexpected(&other, "Push")),
            Err(FrameError::Closed) => return Ok(()),
            Err(FrameError::Io(e)) if is_timeout(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if !batch.entries.is_empty() {
            invalid(merges.add(batch))?;
        }
        let Some(pusher_vv) = done else {
            write_frame(&mut writer, &MessageRef::Next)?;
            writer.flush()?;
            continue;
        };
        // Every part has arrived and, once merged, this node has seen what
        // the pusher had: only then may its vector be joined.
        invalid(merges.finish(pusher_vv.clone()))?;
        answer(
            &mut writer,
            store,
            pusher_vv,
            part_bytes(settings.max_frame),
            (&settings.answering, &peer),
        )?;
    }
}

/// Sends the pusher every entry above its vector, then this node's vector
/// as it was when the answer started. An answer of several parts is
/// recorded in `answering` while it lasts.
fn answer(
    writer: &mut BufWriter<TcpStream>,
    store: &StoreHandle,
    pusher_vv: WireVv,
    max_part: usize,
    (answering, peer): (&Arc<Answering>, &str),
) -> std::result::Result<(), ConnError> {
    let mut parts = Parts::new(store, pusher_vv, max_part).map_err(|_| ConnError::Stopped)?;
    let mut in_progress = None;
    while let Some((batch, last)) = parts.next_part().map_err(|_| ConnError::Stopped)? {
        if !last && in_progress.is_none() {
            in_progress = Some(answering.begin(peer));
        }
        if !batch.entries.is_empty() {
            write_frame(writer, &MessageRef::Pull { batch: &batch })?;
        }
    }
    let vv = parts.start_vv().cloned().unwrap_or_default();
    write_frame(writer, &MessageRef::Ack { vv: &vv })?;
    writer.flush()?;
    Ok(())
}

/// A refused batch or vector closes the connection.
fn invalid(
    result: Result<std::result::Result<(), BatchError>>,
) -> std::result::Result<(), ConnError> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ConnError::Protocol(e.to_string())),
        Err(_) => Err(ConnError::Stopped),
    }
}

fn unexpected(msg: &Message, wanted: &str) -> ConnError {
    ConnError::Protocol(format!("expected {wanted}, got {}", msg.kind()))
}

/// Wakes a listener blocked in `accept` (used at shutdown).
pub fn wake(addr: SocketAddr) {
    let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
}
