//! One peer connection's socket, buffered both ways, with timeouts: the
//! part the pusher and the receiver share; and, in a cluster with a
//! secret, the authenticated handshake both run on it, after which every
//! frame it moves is sealed (see [`crate::replication::auth`]).
//!
//! Every read and write has a timeout, so a silent or slow peer fails
//! with [`crate::replication::SyncError`] rather than blocking its thread
//! for ever. What the messages after the handshake mean is up to the two
//! halves; this only moves them.
//!
//! The socket is plain TCP or TLS ([`PeerStream`]); either way the same
//! protocol runs inside it. A connection belongs to one thread (a pusher
//! or a receiver), which reads and writes it in turn, never at once: its
//! reading and writing buffers share the one stream behind a lock that is
//! never contended, so a read blocked up to its timeout never holds up a
//! write of another thread (there is none).

use crate::replication::auth::{
    fresh_nonce, AuthError, ClusterSecret, Handshake, Nonce, Role, Session,
};
use crate::replication::error::{ProtocolError, Result, SyncError};
use crate::replication::frame::{
    read_frame, read_magic, read_sealed_frame, write_frame, write_sealed_frame,
};
use crate::replication::wire::{Message, MessageRef, MAGIC, PROTOCOL_VERSION};
use parking_lot::Mutex;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConnection, StreamOwned};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// Buffer size each way: a part of a transfer goes out in a few writes.
const BUFFER_BYTES: usize = 64 * 1024;

/// Largest frame taken from a peer that has not proved the secret: the
/// handshake's messages (and a `Hello`, which such a node refuses) take
/// a few hundred bytes at most.
const HANDSHAKE_MAX_FRAME: usize = 4096;

/// A peer connection's socket: blocking, plain or inside TLS.
pub enum PeerStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, taken by this node: the handshake is over (the I/O loop ran
    /// it), and rustls may hold the first bytes of the peer protocol.
    Accepted(Box<StreamOwned<ServerConnection, TcpStream>>),
    /// TLS, dialed by this node: the handshake runs on the first read or
    /// write, under the socket's timeouts.
    Dialed(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl PeerStream {
    /// A connection taken over TLS, with what rustls holds of it.
    pub fn accepted(tls: ServerConnection, stream: TcpStream) -> PeerStream {
        PeerStream::Accepted(Box::new(StreamOwned::new(tls, stream)))
    }

    /// A connection dialed over TLS, its handshake still to come.
    pub fn dialed(tls: ClientConnection, stream: TcpStream) -> PeerStream {
        PeerStream::Dialed(Box::new(StreamOwned::new(tls, stream)))
    }

    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            PeerStream::Plain(s) => s,
            PeerStream::Accepted(s) => s.get_ref(),
            PeerStream::Dialed(s) => s.get_ref(),
        }
    }

    /// The other side's address, if the socket knows it.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }

    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        !matches!(self, PeerStream::Plain(_))
    }

    /// For a connection taken over TLS: whether the other side presented
    /// a client certificate (which the handshake verified against the CA:
    /// one that does not verify fails the handshake).
    pub fn has_verified_client_certificate(&self) -> bool {
        matches!(self, PeerStream::Accepted(s) if s.conn.peer_certificates().is_some())
    }
}

impl std::fmt::Debug for PeerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            PeerStream::Plain(_) => "Plain",
            PeerStream::Accepted(_) => "Accepted",
            PeerStream::Dialed(_) => "Dialed",
        };
        f.debug_tuple(kind).field(self.tcp()).finish()
    }
}

/// The TLS layer of a connection to the peer at `addr` (`host:port`, as
/// the peers file spells it), made with `config` (see
/// [`crate::tls::ServerTls::peer_dialing`]): the peer's certificate must
/// be signed by the CA and name `host`. `Err` when `host` cannot be a
/// certificate's name.
pub fn dial_tls(
    config: &Arc<ClientConfig>,
    addr: &str,
) -> std::result::Result<ClientConnection, String> {
    let host = host_of(addr);
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| format!("{host} cannot be checked against a certificate: {e}"))?;
    ClientConnection::new(Arc::clone(config), name).map_err(|e| format!("TLS: {e}"))
}

/// The host part of `addr` (`host:port`, `[v6]:port`), brackets removed.
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

impl From<TcpStream> for PeerStream {
    fn from(stream: TcpStream) -> PeerStream {
        PeerStream::Plain(stream)
    }
}

/// A TCP end without TLS's close_notify is an end like any other: every
/// frame says its length and (with a secret) carries a MAC, so a cut
/// is noticed by the framing, not by TLS.
fn end_is_end(read: io::Result<usize>) -> io::Result<usize> {
    match read {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
        other => other,
    }
}

impl Read for PeerStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            PeerStream::Plain(s) => s.read(buf),
            PeerStream::Accepted(s) => end_is_end(s.read(buf)),
            PeerStream::Dialed(s) => end_is_end(s.read(buf)),
        }
    }
}

impl Write for PeerStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            PeerStream::Plain(s) => s.write(buf),
            PeerStream::Accepted(s) => s.write(buf),
            PeerStream::Dialed(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            PeerStream::Plain(s) => s.flush(),
            PeerStream::Accepted(s) => s.flush(),
            PeerStream::Dialed(s) => s.flush(),
        }
    }
}

/// One connection's stream, shared by its reading and its writing buffer.
/// The one thread that owns the [`Connection`] reads and writes in turn,
/// so the lock is only ever taken by it.
#[derive(Clone)]
struct Shared(Arc<Mutex<PeerStream>>);

impl Read for Shared {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.lock().read(buf)
    }
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.lock().flush()
    }
}

/// An open connection to a peer, either side.
pub struct Connection {
    reader: BufReader<Shared>,
    writer: BufWriter<Shared>,
    max_frame: usize,
    /// Set once the handshake has proved both sides: every frame from
    /// then on is sealed and checked.
    session: Option<Session>,
}

impl Connection {
    /// Wraps `stream` (a [`TcpStream`] or a [`PeerStream`]), with
    /// `timeout` on every read and write, taking frames of up to
    /// `max_frame` bytes.
    pub fn new(
        stream: impl Into<PeerStream>,
        timeout: Duration,
        max_frame: usize,
    ) -> Result<Connection> {
        let stream = stream.into();
        let tcp = stream.tcp();
        tcp.set_nonblocking(false)?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(timeout))?;
        tcp.set_write_timeout(Some(timeout))?;
        let shared = Shared(Arc::new(Mutex::new(stream)));
        Ok(Connection {
            reader: BufReader::with_capacity(BUFFER_BYTES, shared.clone()),
            writer: BufWriter::with_capacity(BUFFER_BYTES, shared),
            max_frame,
            session: None,
        })
    }

    /// Changes the time a read may wait (the writes keep theirs).
    pub fn set_read_timeout(&self, timeout: Duration) -> Result<()> {
        Ok(self
            .writer
            .get_ref()
            .0
            .lock()
            .tcp()
            .set_read_timeout(Some(timeout))?)
    }

    /// Sends the peer magic, which opens a connection from the side that
    /// connects. The caller flushes.
    pub fn send_magic(&mut self) -> Result<()> {
        Ok(self.writer.write_all(&MAGIC)?)
    }

    /// Reads the peer magic and checks it.
    pub fn receive_magic(&mut self) -> Result<()> {
        Ok(read_magic(&mut self.reader)?)
    }

    /// Queues one message (sealed, after an authenticated handshake);
    /// returns its size on the wire. The caller flushes.
    pub fn send(&mut self, msg: &MessageRef<'_>) -> Result<usize> {
        Ok(match &mut self.session {
            Some(session) => write_sealed_frame(&mut self.writer, msg, &mut session.sending)?,
            None => write_frame(&mut self.writer, msg)?,
        })
    }

    /// Sends what is queued.
    pub fn flush(&mut self) -> Result<()> {
        Ok(self.writer.flush()?)
    }

    /// The next message; after an authenticated handshake, only once its
    /// MAC has checked.
    pub fn receive(&mut self) -> Result<Message> {
        Ok(match &mut self.session {
            Some(session) => {
                read_sealed_frame(&mut self.reader, self.max_frame, &mut session.receiving)?
            }
            None => read_frame(&mut self.reader, self.max_frame)?,
        })
    }

    /// The next message of an authenticated handshake, from a peer that
    /// has not proved the secret yet: never sealed, and small.
    pub fn receive_handshake(&mut self) -> Result<Message> {
        Ok(read_frame(&mut self.reader, HANDSHAKE_MAX_FRAME)?)
    }

    /// The initiator's half of the authenticated handshake, after the
    /// magic: sends a `Challenge`, checks the responder's `Proof` and
    /// queues its own `Confirm` (the caller's `Hello` goes out with it).
    /// Every frame after it is sealed.
    pub fn authenticate_to_responder(&mut self, secret: &ClusterSecret) -> Result<()> {
        let initiator = fresh_nonce().map_err(|e| AuthError::NoRandomness(e.to_string()))?;
        self.send(&MessageRef::Challenge {
            version: PROTOCOL_VERSION,
            nonce: initiator,
        })?;
        self.flush()?;
        let (responder, proof) = match self.receive_handshake()? {
            Message::Proof {
                version,
                nonce,
                proof,
            } if version == PROTOCOL_VERSION => (nonce, proof),
            Message::Proof { version, .. } => {
                return Err(ProtocolError::Version {
                    theirs: version,
                    ours: PROTOCOL_VERSION,
                }
                .into())
            }
            Message::NoSecret => return Err(AuthError::PeerHasNoSecret.into()),
            other => return Err(out_of_turn("Proof", &other)),
        };
        let handshake = Handshake {
            version: PROTOCOL_VERSION,
            initiator,
            responder,
        };
        if !handshake.is_proof(secret, Role::Responder, &proof) {
            // Said, so the other side logs the mismatch too; it learns
            // nothing it could not tell from the close.
            self.send(&MessageRef::ProofRefused)?;
            self.flush()?;
            return Err(AuthError::BadProof.into());
        }
        self.send(&MessageRef::Confirm {
            proof: handshake.proof(secret, Role::Initiator),
        })?;
        self.session = Some(handshake.session(secret, Role::Initiator));
        Ok(())
    }

    /// The responder's half of the authenticated handshake, given the
    /// initiator's `Challenge`: answers with this node's nonce and proof,
    /// then checks the initiator's `Confirm`. Every frame after it is
    /// sealed. A `Challenge` of another version is answered all the same
    /// (so the initiator can say why), then refused.
    pub fn authenticate_initiator(
        &mut self,
        secret: &ClusterSecret,
        version: u16,
        initiator: Nonce,
    ) -> Result<()> {
        let responder = fresh_nonce().map_err(|e| AuthError::NoRandomness(e.to_string()))?;
        let handshake = Handshake {
            version: PROTOCOL_VERSION,
            initiator,
            responder,
        };
        self.send(&MessageRef::Proof {
            version: PROTOCOL_VERSION,
            nonce: responder,
            proof: handshake.proof(secret, Role::Responder),
        })?;
        self.flush()?;
        if version != PROTOCOL_VERSION {
            return Err(ProtocolError::Version {
                theirs: version,
                ours: PROTOCOL_VERSION,
            }
            .into());
        }
        match self.receive_handshake()? {
            Message::Confirm { proof } if handshake.is_proof(secret, Role::Initiator, &proof) => {
                self.session = Some(handshake.session(secret, Role::Responder));
                Ok(())
            }
            Message::Confirm { .. } => Err(AuthError::BadProof.into()),
            Message::ProofRefused => Err(AuthError::ProofRefused.into()),
            other => Err(out_of_turn("Confirm", &other)),
        }
    }
}

/// A handshake message out of turn.
fn out_of_turn(expected: &'static str, got: &Message) -> SyncError {
    AuthError::OutOfTurn {
        expected,
        got: got.kind().to_string(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_of_an_address_is_what_its_certificate_must_name() {
        assert_eq!(host_of("127.0.0.1:9001"), "127.0.0.1");
        assert_eq!(host_of("node1.example:9001"), "node1.example");
        assert_eq!(host_of("[::1]:9001"), "::1");
        assert_eq!(host_of("localhost"), "localhost");
    }

    #[test]
    fn only_a_host_a_certificate_can_name_is_dialed() {
        let roots = rustls::RootCertStore::empty();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let config = Arc::new(config);
        assert!(dial_tls(&config, "127.0.0.1:9001").is_ok());
        assert!(dial_tls(&config, "[::1]:9001").is_ok());
        assert!(dial_tls(&config, "node1.example:9001").is_ok());
        assert!(dial_tls(&config, "not a host name:9001").is_err());
    }
}
