//! Clusters with a secret, and a peer that speaks the authenticated
//! handshake from outside (with the right secret or a wrong one) and lets
//! a test send what it likes after it: sealed frames, altered ones,
//! frames out of order, or a whole recorded session again.
//!
//! The MACs are computed with netdb's own `auth` module; what a test
//! checks is what the node does with them.

use super::auth::{fresh_nonce, ClusterSecret, FrameMac, Handshake, Role, Session};
use super::frame::{read_frame, read_sealed_frame, write_frame, write_sealed_frame};
use super::peer::wall_clock_ms;
use super::wire::{Batch, Bytes, Done, Message, WireEntry, MAGIC, PROTOCOL_VERSION};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The secret the tests' clusters share.
pub const SECRET: &str = "netdb test cluster secret: 0123456789abcdef";

/// Another secret, as long: a node of another cluster.
pub const OTHER_SECRET: &str = "another cluster's secret: fedcba9876543210";

/// Writes `text` to a file called `name` in `dir`; returns its path.
pub fn secret_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a secret file");
    path
}

/// The frame limit the test peer takes.
const MAX_FRAME: usize = 64 << 20;

/// A push of one entry: `key` = `value` by the writer `writer`, stamped
/// just after now, so it wins over any earlier write of the key.
pub fn overwriting_push(key: &str, value: &str, writer: &str) -> Message {
    Message::Push {
        batch: Batch {
            groups: Vec::new(),
            names: vec![writer.into()],
            entries: vec![WireEntry {
                key: Bytes(key.as_bytes().to_vec()),
                value: Some(Bytes(value.as_bytes().to_vec())),
                ts: (wall_clock_ms() + 1) << 16,
                writer: 0,
                clock: vec![(0, 1)],
                expires: None,
                counter: None,
            }],
        },
        done: Some(Done {
            vv: vec![(writer.into(), 1)],
            digest: None,
            full: false,
            sent: None,
            serving: None,
        }),
    }
}

/// A peer from outside, connected to a node and through the handshake
/// (or as far as the node let it go). Every byte it sent is kept, so a
/// test can send them again on another connection.
pub struct AuthedPeer {
    /// The connection.
    pub stream: TcpStream,
    /// What this side sent, in order.
    pub sent: Vec<u8>,
    session: Option<Session>,
}

impl AuthedPeer {
    /// Connects to `addr`, sends the magic and a `Challenge`, and reads
    /// the node's `Proof`; whether that proof checks under `secret` or not,
    /// it answers with its own proof under `secret` (an attacker would) and
    /// takes the session keys from it. Then it sends a sealed `Hello` as
    /// `name`. `Err` if the node did not answer with a `Proof`.
    pub fn connect(addr: SocketAddr, secret: &str, name: &str) -> Result<AuthedPeer, String> {
        let secret = ClusterSecret::from_text(secret).map_err(|e| e.to_string())?;
        let stream = super::connect(addr, Duration::from_secs(5));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut peer = AuthedPeer {
            stream,
            sent: Vec::new(),
            session: None,
        };
        let initiator = fresh_nonce().map_err(|e| e.to_string())?;
        let mut opening = MAGIC.to_vec();
        write_frame(
            &mut opening,
            &Message::Challenge {
                version: PROTOCOL_VERSION,
                nonce: initiator,
            },
        )
        .map_err(|e| e.to_string())?;
        peer.send_raw(&opening)?;
        let responder = match peer.receive()? {
            Message::Proof { nonce, .. } => nonce,
            other => return Err(format!("expected Proof, got {}", other.kind())),
        };
        let handshake = Handshake {
            version: PROTOCOL_VERSION,
            initiator,
            responder,
        };
        let mut confirm = Vec::new();
        write_frame(
            &mut confirm,
            &Message::Confirm {
                proof: handshake.proof(&secret, Role::Initiator),
            },
        )
        .map_err(|e| e.to_string())?;
        peer.send_raw(&confirm)?;
        peer.session = Some(handshake.session(&secret, Role::Initiator));
        let hello = peer.sealed(&Message::Hello {
            version: PROTOCOL_VERSION,
            name: name.into(),
            wall_clock_ms: wall_clock_ms(),
            instance: 1,
            member: String::new(),
            probe: false,
            replicas: 0,
        });
        peer.send_raw(&hello)?;
        Ok(peer)
    }

    /// `message` as the next sealed frame of this session (counted: the
    /// next one sealed comes after it).
    pub fn sealed(&mut self, message: &Message) -> Vec<u8> {
        let session = self.session.as_mut().expect("a session");
        let mut frame = Vec::new();
        write_sealed_frame(&mut frame, message, &mut session.sending).expect("encode a frame");
        frame
    }

    /// This session's sending MAC, for sealing frames elsewhere.
    pub fn sending_mac(&self) -> FrameMac {
        self.session.as_ref().expect("a session").sending.clone()
    }

    /// Sends `bytes` as they are; `Err` if the node has closed.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.sent.extend_from_slice(bytes);
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|e| e.to_string())
    }

    /// The node's next message (sealed once the session has begun).
    pub fn receive(&mut self) -> Result<Message, String> {
        match &mut self.session {
            Some(session) => read_sealed_frame(&mut self.stream, MAX_FRAME, &mut session.receiving),
            None => read_frame(&mut self.stream, MAX_FRAME),
        }
        .map_err(|e| e.to_string())
    }

    /// Reads the node's `Welcome`, returning its name.
    pub fn welcome(&mut self) -> Result<String, String> {
        match self.receive()? {
            Message::Welcome { name, .. } => Ok(name),
            other => Err(format!("expected Welcome, got {}", other.kind())),
        }
    }

    /// Reads the node's answer to a last push part up to its `Ack`.
    pub fn until_ack(&mut self) -> Result<(), String> {
        loop {
            match self.receive()? {
                Message::Pull { .. } => {}
                Message::Ack { .. } => return Ok(()),
                other => return Err(format!("expected Pull or Ack, got {}", other.kind())),
            }
        }
    }

    /// The address the node sees this connection from.
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("a local address")
    }

    /// Waits (up to the read timeout) for the node to close the
    /// connection; returns what it sent meanwhile. Panics if it stays open.
    pub fn wait_closed(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        match std::io::Read::read_to_end(&mut self.stream, &mut rest) {
            Ok(_) => rest,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => rest,
            Err(e) => panic!("the node did not close the connection: {e}"),
        }
    }
}
