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
//!
//! On a node with TLS, a connection that opens with a ClientHello (0x16)
//! is told apart the same way once its handshake is over, by its first
//! byte of plaintext. A peer over TLS must have shown a client certificate
//! that the CA signed; with peer TLS (a CA), a peer from another machine
//! must come over TLS: plain TCP stays allowed from loopback only.

use crate::engine::StoreHandle;
use crate::error::{Error, Result};
use crate::ioloop::{IoThreads, PeerHandoff};
use crate::redis::client::is_loopback;
use crate::replication::anti_entropy::AntiEntropy;
use crate::replication::auth::ClusterSecret;
use crate::replication::connection::PeerStream;
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
    /// Peers talk TLS (the node has a certificate, its key and a CA):
    /// plain TCP peers from other machines are refused.
    pub peer_tls: bool,
    /// Set while another live node uses this node's name.
    pub refusal: crate::replication::status::WriteRefusal,
    /// The member list.
    pub membership: crate::membership::Membership,
    /// Which partitions this node and its peers hold.
    pub routing: Arc<crate::routing::Routing>,
    /// How this node dials a member (for indirect probes).
    pub dialing: Option<crate::replication::pusher::PushSettings>,
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
            refusal: self.refusal.clone(),
            membership: self.membership.clone(),
            routing: Arc::clone(&self.routing),
            dialing: self.dialing.clone(),
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

/// What serves a connection that opened with the peer magic (in plain
/// TCP, or inside TLS): a thread of its own running [`receiver::serve`],
/// at most [`ServerSettings::max_connections`] at once (more are closed at
/// once, with a log line). A TLS peer without a verified client
/// certificate is refused, and so is a plain TCP peer from another
/// machine when peers talk TLS; each with a line naming its address.
pub fn peer_handoff(name: String, store: StoreHandle, settings: &ServerSettings) -> PeerHandoff {
    let receiving = settings.receive_settings();
    let max_peers = settings.max_connections;
    let loopback_only = settings.protected_mode && settings.secret.is_none();
    let peer_tls = settings.peer_tls;
    let open = Arc::new(AtomicUsize::new(0));
    Arc::new(move |stream: PeerStream| {
        let peer_addr = stream.peer_addr();
        let from = (peer_addr.as_ref()).map_or_else(|_| "unknown".to_string(), ToString::to_string);
        let from_loopback = peer_addr.is_ok_and(|a| is_loopback(&a));
        if stream.is_tls() && !stream.has_verified_client_certificate() {
            let why = if peer_tls {
                "it showed no client certificate (a peer must show one signed by \
                 --tls-ca-cert-file)"
            } else {
                "this node has no --tls-ca-cert-file to check a peer's certificate against"
            };
            return log::warn!("refused TLS peer connection from {from}: {why}");
        }
        if peer_tls && !stream.is_tls() && !from_loopback {
            return log::warn!(
                "refused peer connection from {from}: plain TCP, and not from loopback; \
                 with --tls-ca-cert-file, peers on other machines must use TLS (give every \
                 node --tls-cert-file, --tls-key-file and --tls-ca-cert-file)"
            );
        }
        if loopback_only && !from_loopback {
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
