//! TLS for Redis clients and between peers: the node's certificate and
//! key loaded at startup ([`ServerTls`]), and one client connection's TLS
//! layer driven nonblockingly between its socket and its [`ClientConn`]
//! ([`read_in`], [`write_out`]), for the poll loops of [`crate::ioloop`].
//!
//! With a CA (`--tls-cert-file`, `--tls-key-file` and
//! `--tls-ca-cert-file`), peers use TLS too, both ways verified (mutual
//! TLS): a node dialing a peer checks the peer's certificate against the
//! CA and the name or address it dialed, and presents its own certificate
//! as a client certificate ([`ServerTls::peer_dialing`]); a node taking a peer
//! connection over TLS requires a client certificate the CA signed
//! ([`crate::listener`] refuses one without). The connection then carries
//! the peer protocol as before, secret handshake and sealed frames
//! included: TLS adds confidentiality and a second proof of membership,
//! it does not replace the secret.
//!
//! A client that opens with a TLS record (its first byte, 0x16, starts a
//! ClientHello) gets a [`rustls::ServerConnection`] when the node has a
//! certificate; the same port serves plaintext clients and peers. With a
//! CA (`--tls-ca-cert-file`), a client may show a certificate, which must
//! then be signed by that CA; one without a certificate is let in too
//! (Redis's `tls-auth-clients optional`): the client password is what
//! keeps clients out.
//!
//! Memory stays bounded as for plaintext clients: replies leave the
//! connection's [`Output`](crate::redis::output::Output) only as far as
//! rustls takes them ([`SEND_BUFFER`]), and the socket is read only while
//! the client wants input and rustls holds no plaintext not yet taken, so
//! rustls never holds more than a record or so of either.
//!
//! Nothing here reads a clock or blocks: the socket is any nonblocking
//! `Read + Write`.

use crate::error::{Error, Result};
use crate::redis::client::ClientConn;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, ServerConnection};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

/// Most bytes of replies rustls holds (as plaintext before the handshake
/// ends, as records after) before the rest waits in the connection's
/// output, which backpressure and the output limit bound.
pub const SEND_BUFFER: usize = 64 * 1024;

/// The node's TLS settings, loaded and checked.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    /// What this node dials its peers with, when it has a CA to check
    /// them against: the CA as the only root, and the node's certificate
    /// as its client certificate.
    peers: Option<Arc<ClientConfig>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("peers_use_tls", &self.peers.is_some())
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads the certificate chain and key (PEM), and the CA that client
    /// (and peer) certificates must be signed by, if any. Every mistake
    /// is an error of one line naming the file.
    pub fn load(cert: &Path, key: &Path, ca: Option<&Path>) -> Result<ServerTls> {
        let chain = read_certs(cert, "--tls-cert-file")?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            Error::Config(format!(
                "cannot read a private key from --tls-key-file {}: {e}",
                key.display()
            ))
        })?;
        let unusable = |e: rustls::Error| {
            Error::Config(format!(
                "--tls-cert-file {} and --tls-key-file do not make a usable pair: {e}",
                cert.display()
            ))
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS: {e}")))?;
        let (builder, peers) = match ca {
            None => (builder.with_no_client_auth(), None),
            Some(ca) => {
                let roots = Arc::new(read_roots(ca)?);
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::clone(&roots),
                    Arc::clone(&provider),
                )
                .allow_unauthenticated()
                .build()
                .map_err(|e| Error::Config(format!("--tls-ca-cert-file {}: {e}", ca.display())))?;
                let peers = ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| Error::Config(format!("TLS: {e}")))?
                    .with_root_certificates(roots)
                    .with_client_auth_cert(chain.clone(), key.clone_key())
                    .map_err(unusable)?;
                (
                    builder.with_client_cert_verifier(verifier),
                    Some(Arc::new(peers)),
                )
            }
        };
        let config = builder.with_single_cert(chain, key).map_err(unusable)?;
        Ok(ServerTls {
            config: Arc::new(config),
            peers,
        })
    }

    /// Whether peers talk TLS: the node has a CA to verify them against.
    pub fn peers_use_tls(&self) -> bool {
        self.peers.is_some()
    }

    /// What this node dials its peers with, when peers talk TLS: the
    /// CA as the only root, and the node's certificate as its client
    /// certificate (see
    /// [`crate::replication::connection::dial_tls`]).
    pub fn peer_dialing(&self) -> Option<Arc<ClientConfig>> {
        self.peers.clone()
    }

    /// The TLS layer of a new client connection, its send buffer bounded.
    pub fn accept(&self) -> std::result::Result<ServerConnection, rustls::Error> {
        let mut conn = ServerConnection::new(Arc::clone(&self.config))?;
        conn.set_buffer_limit(Some(SEND_BUFFER));
        Ok(conn)
    }
}

/// The CA file `ca` as roots: every certificate in it.
fn read_roots(ca: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(ca, "--tls-ca-cert-file")? {
        roots.add(cert).map_err(|e| {
            Error::Config(format!(
                "--tls-ca-cert-file {} holds a certificate that is refused: {e}",
                ca.display()
            ))
        })?;
    }
    Ok(roots)
}

/// The certificates of the PEM file `path` (at least one), for `option`'s
/// error messages.
fn read_certs(path: &Path, option: &str) -> Result<Vec<CertificateDer<'static>>> {
    let fail = |e: &dyn std::fmt::Display| {
        Error::Config(format!("cannot read {option} {}: {e}", path.display()))
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(&e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| fail(&e))?;
    if certs.is_empty() {
        return Err(fail(&"no PEM certificate in it"));
    }
    Ok(certs)
}

/// A Redis client over TLS: its TLS layer, and its protocol state.
pub struct TlsClient {
    /// The TLS layer.
    pub tls: ServerConnection,
    /// The protocol state.
    pub client: ClientConn,
}

/// Why a TLS connection failed.
#[derive(Debug)]
pub enum Failure {
    /// The socket failed.
    Io(io::Error),
    /// The other side broke the TLS protocol (or its certificate was
    /// refused).
    Tls(rustls::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Io(e) => write!(f, "{e}"),
            Failure::Tls(e) => write!(f, "TLS error: {e}"),
        }
    }
}

/// What [`read_in`] left to do.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Nothing until the socket is readable again, or the client wants
    /// input again.
    Waiting,
    /// It read its share of the turn: serve the connection again soon.
    Again,
}

/// Moves what the client sent from the socket through `tls` into
/// `client`, while the client wants input, reading the socket at most
/// `reads` times. (A connection becomes a [`TlsClient`] only once its
/// handshake is over.) Plaintext that rustls holds already goes first,
/// so rustls is never asked to read while it holds any. `readable` is
/// the socket's readiness, cleared when a read would block; `got` is
/// told when bytes came in.
pub fn read_in(
    stream: &mut impl Read,
    conn: &mut TlsClient,
    scratch: &mut [u8],
    readable: &mut bool,
    reads: usize,
    mut got: impl FnMut(),
) -> std::result::Result<ReadOutcome, Failure> {
    let TlsClient { tls, client } = conn;
    let mut done = 0;
    loop {
        while client.wants_input() {
            match tls.reader().read(scratch) {
                Ok(0) => {
                    // close_notify: the client is done sending.
                    client.end_of_input();
                    return Ok(ReadOutcome::Waiting);
                }
                Ok(n) => client.ingest(&scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    // The socket closed without close_notify.
                    client.end_of_input();
                    return Ok(ReadOutcome::Waiting);
                }
                Err(e) => return Err(Failure::Io(e)),
            }
        }
        if !client.wants_input() || !*readable {
            return Ok(ReadOutcome::Waiting);
        }
        if done == reads {
            return Ok(ReadOutcome::Again);
        }
        match tls.read_tls(stream) {
            Ok(0) => {
                *readable = false;
                client.end_of_input();
                return Ok(ReadOutcome::Waiting);
            }
            Ok(_) => {
                done += 1;
                got();
                tls.process_new_packets().map_err(Failure::Tls)?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => *readable = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Failure::Io(e)),
        }
    }
}

/// Moves the client's replies into `tls` as far as its send buffer takes
/// them, and the records (the handshake's too) to the socket as far as
/// it takes them. `writable` is the socket's readiness, cleared when a
/// write would block; `sent` is told when bytes went out.
pub fn write_out(
    stream: &mut impl Write,
    tls: &mut ServerConnection,
    client: &mut ClientConn,
    writable: &mut bool,
    mut sent: impl FnMut(),
) -> io::Result<()> {
    loop {
        if !client.output().is_empty() {
            client.output().write_to(&mut Plaintext(tls))?;
        }
        if !tls.wants_write() || !*writable {
            return Ok(());
        }
        while tls.wants_write() {
            match tls.write_tls(stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => sent(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    *writable = false;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if client.output().is_empty() {
            return Ok(());
        }
    }
}

/// Sends the records rustls holds (of the handshake, while a connection
/// opens) as far as the socket takes them. `writable` is the socket's
/// readiness, cleared when a write would block.
pub fn send_records(
    stream: &mut impl Write,
    tls: &mut ServerConnection,
    writable: &mut bool,
) -> io::Result<()> {
    while *writable && tls.wants_write() {
        match tls.write_tls(stream) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => *writable = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends what rustls still holds (an alert, a close_notify), as far as
/// the socket takes it at once: the connection is being closed.
pub fn flush_on_close(stream: &mut impl Write, tls: &mut ServerConnection) {
    while tls.wants_write() {
        match tls.write_tls(stream) {
            Ok(n) if n > 0 => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            _ => return,
        }
    }
}

/// rustls' plaintext side as a nonblocking writer: a full send buffer is
/// `WouldBlock`, so [`Output::write_to`](crate::redis::output::Output::write_to)
/// stops there and keeps the rest.
struct Plaintext<'a>(&'a mut ServerConnection);

impl Plaintext<'_> {
    fn taken(n: usize, offered: usize) -> io::Result<usize> {
        if n == 0 && offered > 0 {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(n)
        }
    }
}

impl Write for Plaintext<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.0.writer().write(buf)?;
        Plaintext::taken(n, buf.len())
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let offered = bufs.iter().map(|b| b.len()).sum();
        let n = self.0.writer().write_vectored(bufs)?;
        Plaintext::taken(n, offered)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use std::path::PathBuf;
    use tempfile::TempDir;

    /// A CA, and a certificate for 127.0.0.1 it signed, with its key:
    /// `ca.crt`, `node.crt`, `node.key` in a directory of their own.
    fn certs() -> TempDir {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, ca_key);
        let node = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
        let node_key = KeyPair::generate().expect("node key");
        let node_cert = node.signed_by(&node_key, &issuer).expect("node cert");
        let write = |name: &str, text: String| {
            std::fs::write(dir.path().join(name), text).expect("write");
        };
        write("ca.crt", ca_cert.pem());
        write("node.crt", node_cert.pem());
        write("node.key", node_key.serialize_pem());
        dir
    }

    fn path(dir: &TempDir, name: &str) -> PathBuf {
        dir.path().join(name)
    }

    fn load_error(cert: &Path, key: &Path, ca: Option<&Path>) -> String {
        match ServerTls::load(cert, key, ca) {
            Ok(_) => panic!("loaded"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_missing_file_or_one_without_pem_is_an_error_naming_it() {
        let dir = certs();
        let (cert, key, ca) = (
            path(&dir, "node.crt"),
            path(&dir, "node.key"),
            path(&dir, "ca.crt"),
        );
        let missing = path(&dir, "missing.pem");
        let junk = path(&dir, "junk.pem");
        std::fs::write(&junk, "not PEM at all\n").expect("write");

        let e = load_error(&missing, &key, None);
        assert!(
            e.contains("--tls-cert-file") && e.contains("missing.pem"),
            "{e}"
        );
        let e = load_error(&junk, &key, None);
        assert!(
            e.contains("--tls-cert-file") && e.contains("junk.pem"),
            "{e}"
        );
        let e = load_error(&cert, &junk, None);
        assert!(
            e.contains("--tls-key-file") && e.contains("junk.pem"),
            "{e}"
        );
        let e = load_error(&cert, &key, Some(&missing));
        assert!(
            e.contains("--tls-ca-cert-file") && e.contains("missing.pem"),
            "{e}"
        );
        let e = load_error(&cert, &key, Some(&junk));
        assert!(
            e.contains("--tls-ca-cert-file") && e.contains("junk.pem"),
            "{e}"
        );
        // The key of another certificate.
        let other = certs();
        let e = load_error(&cert, &path(&other, "node.key"), Some(&ca));
        assert!(e.contains("do not make a usable pair"), "{e}");
    }

    #[test]
    fn peers_talk_tls_only_with_a_ca_to_check_them_against() {
        let dir = certs();
        let (cert, key, ca) = (
            path(&dir, "node.crt"),
            path(&dir, "node.key"),
            path(&dir, "ca.crt"),
        );
        let clients_only = ServerTls::load(&cert, &key, None).expect("loads");
        assert!(!clients_only.peers_use_tls());
        assert!(clients_only.peer_dialing().is_none());

        let mutual = ServerTls::load(&cert, &key, Some(&ca)).expect("loads");
        assert!(mutual.peers_use_tls());
        let dialing = mutual.peer_dialing().expect("a config to dial peers with");
        assert!(dialing.client_auth_cert_resolver.has_certs());
    }
}
