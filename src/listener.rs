//! The listener thread: accepts connections and hands each one to an I/O
//! thread ([`crate::ioloop`]).
//!
//! Peers and clients share the node's address; the first byte tells them
//! apart, in the I/O thread, without blocking. A peer opens with
//! [`MAGIC`](crate::replication::wire::MAGIC), whose first byte (0xF0)
//! never starts a RESP request or an inline command, and is served on a
//! thread of its own ([`peer_handoff`], [`crate::replication::receiver`]);
//! anything else is a Redis client, served by the I/O threads. Whatever
//! ends a peer connection is logged in one line that names the other side
//! and the cause.

use crate::engine::StoreHandle;
use crate::error::{Error, Result};
use crate::ioloop::{IoThreads, PeerHandoff};
use crate::redis::client::is_loopback;
use crate::replication::anti_entropy::AntiEntropy;
use crate::replication::auth::ClusterSecret;
use crate::replication::receiver::{self, ReceiveSettings};
use crate::replication::status::Answering;
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
    /// `--protected-mode`: without a cluster secret, peers from other
    /// machines are refused.
    pub protected_mode: bool,
    /// The cluster secret, if the node has one.
    pub secret: Option<ClusterSecret>,
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
            secret: self.secret.clone(),
        }
    }
}

/// Starts the listener thread. It stops after `shutdown` is set, at the
/// next connection (the node connects to itself to wake it). Each
/// accepted connection goes to an I/O thread (`io`), which tells a peer
/// from a client by its first byte.
pub fn spawn_listener(
    listener: TcpListener,
    io: Arc<IoThreads>,
    shutdown: Arc<AtomicBool>,
) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("netdb-listen".into())
        .spawn(move || accept_loop(&listener, &io, &shutdown))
        .map_err(|source| Error::Io {
            context: "cannot start the listener thread",
            source,
        })
}

fn accept_loop(listener: &TcpListener, io: &IoThreads, shutdown: &AtomicBool) {
    for conn in listener.incoming() {
        if shutdown.load(Ordering::SeqCst) {
            break;
        }
        match conn {
            Ok(stream) => io.hand_off(stream),
            Err(e) => {
                // Out of file descriptors and the like: back off a little
                // rather than spin.
                log::error!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Decrements the open peer connections when a peer thread ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What serves a connection that opened with the peer magic: a thread of
/// its own running [`receiver::serve`], at most
/// [`ServerSettings::max_connections`] at once (more are closed at once,
/// with a log line).
pub fn peer_handoff(name: String, store: StoreHandle, settings: &ServerSettings) -> PeerHandoff {
    let receiving = settings.receive_settings();
    let max_peers = settings.max_connections;
    let loopback_only = settings.protected_mode && settings.secret.is_none();
    let open = Arc::new(AtomicUsize::new(0));
    Arc::new(move |stream: TcpStream| {
        let from = stream
            .peer_addr()
            .map_or_else(|_| "unknown".to_string(), |a| a.to_string());
        if loopback_only && !stream.peer_addr().is_ok_and(|a| is_loopback(&a)) {
            return log::warn!(
                "refused peer connection from {from}: protected mode (no cluster secret, \
                 and not from loopback); give every node --cluster-secret-file, or, only on \
                 a network you trust, --protected-mode no"
            );
        }
        if open.fetch_add(1, Ordering::SeqCst) >= max_peers {
            open.fetch_sub(1, Ordering::SeqCst);
            return log::warn!(
                "refused peer connection from {from}: {max_peers} peers connected, the limit"
            );
        }
        let slot = Slot(Arc::clone(&open));
        let (name, store, receiving) = (name.clone(), store.clone(), receiving.clone());
        let shown = from.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("netdb-peer-{from}"))
            .spawn(move || {
                let _slot = slot;
                if let Err(e) = receiver::serve(stream, &name, &store, &receiving) {
                    log::warn!("closed connection from {from}: {e}");
                }
            });
        if let Err(e) = spawned {
            log::error!("closed connection from {shown}: cannot start its thread: {e}");
        }
    })
}

/// Wakes a listener blocked in `accept` (used at shutdown).
pub fn wake(addr: SocketAddr) {
    let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
}
