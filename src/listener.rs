//! The listener thread: accepts connections, holds them to their limits,
//! and hands each one to a thread that serves a peer or a Redis client.
//!
//! Peers and clients share the node's address; the first byte tells them
//! apart. A peer opens with [`MAGIC`], whose first byte (0xF0) never
//! starts a RESP request or an inline command, and is served by
//! [`crate::replication::receiver`]; anything else, or silence until the
//! handshake timeout (a client may connect and wait, a peer never does),
//! is a client, served by [`crate::redis::client`]. Whatever ends a
//! connection is logged here in one line that names the other side and
//! the cause.

use crate::engine::StoreHandle;
use crate::error::{Error, Result};
use crate::redis::client;
use crate::replication::anti_entropy::AntiEntropy;
use crate::replication::frame::is_timeout;
use crate::replication::receiver::{self, ReceiveSettings};
use crate::replication::status::Answering;
use crate::replication::wire::MAGIC;
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
    /// `--max-clock-offset-ms`.
    pub max_clock_offset_ms: u64,
    /// The node's anti-entropy counters, shared with its pushers.
    pub anti_entropy: AntiEntropy,
}

impl ServerSettings {
    /// What a peer connection's receiver needs of these.
    fn receive_settings(&self) -> ReceiveSettings {
        ReceiveSettings {
            max_frame: self.max_frame,
            handshake_timeout: self.handshake_timeout,
            idle_timeout: self.idle_timeout,
            answering: Arc::clone(&self.answering),
            max_clock_offset_ms: self.max_clock_offset_ms,
            anti_entropy: self.anti_entropy.clone(),
        }
    }
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
    let receiving = settings.receive_settings();
    for conn in listener.incoming() {
        if shutdown.load(Ordering::SeqCst) {
            break;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: back off a little
                // rather than spin.
                log::error!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let from = stream
            .peer_addr()
            .map_or_else(|_| "unknown".to_string(), |a| a.to_string());
        if open.fetch_add(1, Ordering::SeqCst) >= max_open {
            open.fetch_sub(1, Ordering::SeqCst);
            log::warn!("refused connection from {from}: {max_open} connections open, the limit");
            continue;
        }
        let slot = Slot(Arc::clone(&open));
        let (name, store, receiving) = (name.to_owned(), store.clone(), receiving.clone());
        let (handshake_timeout, max_peers) = (settings.handshake_timeout, settings.max_connections);
        let (peers, clients) = (Arc::clone(&peers), Arc::clone(clients));
        let shown = from.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("netdb-conn-{from}"))
            .spawn(move || {
                let _slot = slot;
                match first_byte(&stream, handshake_timeout) {
                    Ok(Some(byte)) if byte == MAGIC[0] => {}
                    Ok(Some(_)) => return client::serve(stream, &clients),
                    Err(e) if is_timeout(&e) => return client::serve(stream, &clients),
                    Ok(None) => return,
                    Err(e) => return log::warn!("closed connection from {from}: {e}"),
                }
                if peers.fetch_add(1, Ordering::SeqCst) >= max_peers {
                    peers.fetch_sub(1, Ordering::SeqCst);
                    return log::warn!(
                        "refused peer connection from {from}: {max_peers} peers connected, the limit"
                    );
                }
                let _peer_slot = Slot(peers);
                if let Err(e) = receiver::serve(stream, &name, &store, &receiving) {
                    log::warn!("closed connection from {from}: {e}");
                }
            });
        if let Err(e) = spawned {
            log::error!("closed connection from {shown}: cannot start its thread: {e}");
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

/// Wakes a listener blocked in `accept` (used at shutdown).
pub fn wake(addr: SocketAddr) {
    let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
}
