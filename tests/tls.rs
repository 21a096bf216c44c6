//! TLS for Redis clients and between peers (issue 11), against the real
//! binary: a node with a certificate serves `redis-cli --tls` and a rustls
//! client on its one port, beside plaintext clients; a broken ClientHello
//! costs only its own connection; a certificate without its key stops the
//! node at startup in one line. With a CA, peers talk TLS to each other,
//! each checking the other's certificate: a cluster converges over TLS, a
//! node with a certificate from another CA (or a TLS peer without a client
//! certificate) is refused and nothing of it is applied, a plain TCP peer
//! from loopback is still let in and one from another machine is not. The
//! certificates (a CA, and a node certificate for 127.0.0.1 it signs) are
//! made by the test with rcgen, in a temporary directory: no key is ever
//! committed.

mod common;

use common::{
    assert_no_panic, eventually, frame_of, greeting, overwriting_push, raw, read_n,
    redis_connection, rss_bytes, run_netdb, secret_file, skip, start_all, temp_dir, throughout,
    write_peers_file, Cluster, Input, Netns, Node, NodeSpec, CONVERGE_TIMEOUT, FAST_SYNC_MS,
    REPLY_TIMEOUT, SECRET,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

/// A CA and a node certificate it signed, as PEM files in a directory of
/// their own.
struct Certs {
    dir: TempDir,
}

impl Certs {
    fn new() -> Certs {
        Certs::for_hosts(&["127.0.0.1"])
    }

    /// A node certificate for `hosts` (addresses or names).
    fn for_hosts(hosts: &[&str]) -> Certs {
        let dir = temp_dir();
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "netdb test CA");
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, ca_key);
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let node = CertificateParams::new(hosts).expect("node params");
        let node_key = KeyPair::generate().expect("node key");
        let node_cert = node
            .signed_by(&node_key, &issuer)
            .expect("node certificate");
        let client = CertificateParams::new(vec!["client".to_string()]).expect("client params");
        let client_key = KeyPair::generate().expect("client key");
        let client_cert = client
            .signed_by(&client_key, &issuer)
            .expect("client certificate");
        std::fs::write(dir.path().join("client.crt"), client_cert.pem()).expect("write");
        std::fs::write(dir.path().join("client.key"), client_key.serialize_pem()).expect("write");
        std::fs::write(dir.path().join("ca.crt"), ca_cert.pem()).expect("write ca.crt");
        std::fs::write(dir.path().join("node.crt"), node_cert.pem()).expect("write node.crt");
        std::fs::write(dir.path().join("node.key"), node_key.serialize_pem())
            .expect("write node.key");
        Certs { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn ca(&self) -> PathBuf {
        self.path("ca.crt")
    }

    /// The node's TLS options.
    fn args(&self) -> Vec<String> {
        let arg = |p: PathBuf| p.display().to_string();
        vec![
            "--tls-cert-file".into(),
            arg(self.path("node.crt")),
            "--tls-key-file".into(),
            arg(self.path("node.key")),
            "--tls-ca-cert-file".into(),
            arg(self.ca()),
        ]
    }

    /// A node serving TLS with these certificates.
    fn node(&self, name: &str) -> Node {
        self.spec(name).start()
    }

    fn spec(&self, name: &str) -> NodeSpec {
        let args = self.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        NodeSpec::new(name).args(&args)
    }

    /// A rustls client's settings that trust the CA.
    fn client_config(&self) -> Arc<ClientConfig> {
        self.client_config_with(None)
    }

    /// A rustls client's settings that trust the CA and present the
    /// client certificate of `issued` (whose CA may be another).
    fn client_config_with(&self, issued: Option<&Certs>) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(self.ca()).expect("ca.crt") {
            roots.add(cert.expect("a CA certificate")).expect("added");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots);
        let config = match issued {
            None => config.with_no_client_auth(),
            Some(issued) => {
                let chain = CertificateDer::pem_file_iter(issued.path("client.crt"))
                    .expect("client.crt")
                    .collect::<Result<Vec<_>, _>>()
                    .expect("client certificate");
                let key = PrivateKeyDer::from_pem_file(issued.path("client.key")).expect("key");
                config
                    .with_client_auth_cert(chain, key)
                    .expect("client certificate and key")
            }
        };
        Arc::new(config)
    }

    /// A TLS connection to `addr`, with [`RESP_TIMEOUT`] on reads and
    /// writes.
    fn connect(&self, addr: SocketAddr) -> StreamOwned<ClientConnection, TcpStream> {
        self.connect_with(addr, self.client_config())
    }

    fn connect_with(
        &self,
        addr: SocketAddr,
        config: Arc<ClientConfig>,
    ) -> StreamOwned<ClientConnection, TcpStream> {
        let name = ServerName::try_from("127.0.0.1").expect("server name");
        let conn = ClientConnection::new(config, name).expect("client");
        StreamOwned::new(conn, raw(addr))
    }
}

/// A RESP request of `args`.
fn request(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads exactly `n` bytes.
fn read_exact(stream: &mut impl Read, n: usize) -> Vec<u8> {
    let mut got = vec![0; n];
    stream.read_exact(&mut got).expect("read the replies");
    got
}

/// `redis-cli` with TLS support, or the reason there is none.
fn redis_cli_with_tls() -> Result<(), String> {
    let out = Command::new("redis-cli")
        .args(["--tls", "--version"])
        .output()
        .map_err(|e| format!("redis-cli cannot run: {e}"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || text.contains("Unrecognized option") {
        return Err(format!("redis-cli has no TLS support: {}", text.trim()));
    }
    Ok(())
}

fn redis_cli(certs: &Certs, addr: SocketAddr, args: &[&str]) -> String {
    let ca = certs.ca();
    let out = Command::new("redis-cli")
        .args(["--tls", "--cacert"])
        .arg(&ca)
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    assert!(
        out.status.success(),
        "redis-cli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn redis_cli_speaks_tls_to_the_node() {
    if let Err(why) = redis_cli_with_tls() {
        return skip(why);
    }
    let certs = Certs::new();
    let node = certs.node("tls-cli");
    assert_eq!(redis_cli(&certs, node.addr(), &["PING"]), "PONG");
    assert_eq!(redis_cli(&certs, node.addr(), &["SET", "k", "v1"]), "OK");
    assert_eq!(redis_cli(&certs, node.addr(), &["GET", "k"]), "v1");
    assert_no_panic(&node.stderr_lines());
}

#[test]
fn a_rustls_client_gets_replies_pipelines_and_large_values() {
    let certs = Certs::new();
    let node = certs.node("tls-rustls");
    let mut tls = certs.connect(node.addr());
    tls.write_all(&request(&[b"PING"])).expect("write");
    assert_eq!(read_exact(&mut tls, 7), b"+PONG\r\n");

    // A pipeline of many requests in one write; the replies in order.
    let count = 2000;
    let mut pipeline = Vec::new();
    for i in 0..count {
        let key = format!("p{i}");
        let value = format!("value-{i}");
        pipeline.extend(request(&[b"SET", key.as_bytes(), value.as_bytes()]));
        pipeline.extend(request(&[b"GET", key.as_bytes()]));
    }
    tls.write_all(&pipeline).expect("write the pipeline");
    let mut want = Vec::new();
    for i in 0..count {
        let value = format!("value-{i}");
        want.extend_from_slice(b"+OK\r\n");
        want.extend_from_slice(format!("${}\r\n{value}\r\n", value.len()).as_bytes());
    }
    assert!(read_exact(&mut tls, want.len()) == want, "pipeline replies");

    // A 1 MiB value, both ways.
    let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    tls.write_all(&request(&[b"SET", b"big", &big]))
        .expect("write");
    assert_eq!(read_exact(&mut tls, 5), b"+OK\r\n");
    tls.write_all(&request(&[b"GET", b"big"])).expect("write");
    let mut want = format!("${}\r\n", big.len()).into_bytes();
    want.extend_from_slice(&big);
    want.extend_from_slice(b"\r\n");
    assert!(read_exact(&mut tls, want.len()) == want, "the 1 MiB value");

    // What a TLS client wrote, a plaintext client reads.
    let mut con = redis_connection(node.addr());
    let got: Vec<u8> = redis::cmd("GET").arg("big").query(&mut con).expect("GET");
    assert!(got == big);
    assert_no_panic(&node.stderr_lines());
}

/// As over plain TCP: thousands of requests the store thread has no
/// part in (`PING`s), sent in one write, are all answered, though the
/// client sends nothing more until it has its replies (the bytes wait in
/// the socket or, decrypted, in rustls, and no event says so).
#[test]
fn a_long_pipeline_of_pings_over_tls_is_answered_whole() {
    let certs = Certs::new();
    let node = certs.node("tls-pings");
    let mut tls = certs.connect(node.addr());
    let n = 5000;
    let pings = request(&[b"PING"]).repeat(n);
    tls.write_all(&pings).expect("write the PINGs");
    let want = b"+PONG\r\n".repeat(n);
    assert!(read_exact(&mut tls, want.len()) == want, "every PONG");
    assert_no_panic(&node.stderr_lines());
}

#[test]
fn a_tls_client_that_does_not_read_is_not_buffered_for() {
    let certs = Certs::new();
    let node = certs.node("tls-backpressure");
    let mut tls = certs.connect(node.addr());
    let big: Vec<u8> = (0..1 << 20).map(|i| (i % 241) as u8).collect();
    tls.write_all(&request(&[b"SET", b"big", &big]))
        .expect("write");
    assert_eq!(read_exact(&mut tls, 5), b"+OK\r\n");
    let before = rss_bytes(node.pid());
    // 100 MiB of replies asked for, none read for a while: the node
    // holds a few MiB of them, not all.
    let count = 100;
    let mut pipeline = Vec::new();
    for _ in 0..count {
        pipeline.extend(request(&[b"GET", b"big"]));
    }
    tls.write_all(&pipeline).expect("write the pipeline");
    throughout(Duration::from_secs(1), |_| {
        let grown = rss_bytes(node.pid()).saturating_sub(before);
        assert!(grown < 40 << 20, "the node grew by {grown} bytes");
    });
    let mut want = format!("${}\r\n", big.len()).into_bytes();
    want.extend_from_slice(&big);
    want.extend_from_slice(b"\r\n");
    for i in 0..count {
        assert!(read_exact(&mut tls, want.len()) == want, "reply {i}");
    }
    assert_no_panic(&node.stderr_lines());
}

#[test]
fn plaintext_and_tls_clients_share_the_port_at_once() {
    let certs = Certs::new();
    let node = certs.node("tls-mixed");
    let mut tls_clients: Vec<_> = (0..4).map(|_| certs.connect(node.addr())).collect();
    let mut plain: Vec<_> = (0..4).map(|_| raw(node.addr())).collect();
    for round in 0..50 {
        for (i, c) in tls_clients.iter_mut().enumerate() {
            let (k, v) = (format!("t{i}"), format!("{round}"));
            c.write_all(&request(&[b"SET", k.as_bytes(), v.as_bytes()]))
                .expect("write");
        }
        for (i, c) in plain.iter_mut().enumerate() {
            let (k, v) = (format!("c{i}"), format!("{round}"));
            c.write_all(&request(&[b"SET", k.as_bytes(), v.as_bytes()]))
                .expect("write");
        }
        for c in &mut tls_clients {
            assert_eq!(read_exact(c, 5), b"+OK\r\n");
        }
        for c in &mut plain {
            assert_eq!(read_n(c, 5), b"+OK\r\n");
        }
    }
    // Each side reads what the other wrote.
    let mut tls = certs.connect(node.addr());
    tls.write_all(&request(&[b"GET", b"c3"])).expect("write");
    assert_eq!(read_exact(&mut tls, 8), b"$2\r\n49\r\n");
    let mut con = redis_connection(node.addr());
    let got: String = redis::cmd("GET").arg("t2").query(&mut con).expect("GET");
    assert_eq!(got, "49");
    assert_no_panic(&node.stderr_lines());
}

#[test]
fn a_garbage_client_hello_closes_only_its_own_connection() {
    let certs = Certs::new();
    let node = certs.node("tls-garbage");
    let mut tls = certs.connect(node.addr());
    tls.write_all(&request(&[b"SET", b"k", b"before"]))
        .expect("write");
    assert_eq!(read_exact(&mut tls, 5), b"+OK\r\n");
    let mut plain = raw(node.addr());

    // A handshake record header, then bytes that are no ClientHello.
    let mut bad = raw(node.addr());
    let mut hello = vec![0x16, 0x03, 0x01, 0x00, 0x40];
    hello.extend_from_slice(&[0xAB; 0x40]);
    bad.write_all(&hello).expect("write");
    bad.set_read_timeout(Some(REPLY_TIMEOUT))
        .expect("read timeout");
    let mut rest = Vec::new();
    // The node answers with an alert at most, then closes.
    let _ = bad.read_to_end(&mut rest);
    assert!(rest.len() < 64, "the node sent {} bytes", rest.len());
    node.wait_log("closed TLS client 127.0.0.1:", REPLY_TIMEOUT);

    // The others go on.
    tls.write_all(&request(&[b"GET", b"k"])).expect("write");
    assert_eq!(read_exact(&mut tls, 12), b"$6\r\nbefore\r\n");
    plain.write_all(b"PING\r\n").expect("write");
    assert_eq!(read_n(&mut plain, 7), b"+PONG\r\n");
    assert_no_panic(&node.stderr_lines());
}

#[test]
fn a_client_trusting_another_ca_fails_the_handshake_and_the_node_logs_it() {
    let certs = Certs::new();
    let other = Certs::new();
    let node = certs.node("tls-other-ca");
    let mut tls = other.connect(node.addr());
    assert!(
        tls.write_all(b"PING\r\n")
            .and_then(|()| tls.flush())
            .is_err()
            || {
                let mut buf = [0u8; 16];
                tls.read(&mut buf).is_err()
            }
    );
    node.wait_log("closed TLS client 127.0.0.1:", REPLY_TIMEOUT);
    let mut plain = raw(node.addr());
    plain.write_all(b"PING\r\n").expect("write");
    assert_eq!(read_n(&mut plain, 7), b"+PONG\r\n");
}

#[test]
fn client_certificates_are_optional_but_must_be_signed_by_the_ca() {
    let certs = Certs::new();
    let other = Certs::new();
    let node = certs.node("tls-client-certs");
    // Signed by the node's CA: let in.
    let mut signed = certs.connect_with(node.addr(), certs.client_config_with(Some(&certs)));
    signed.write_all(b"PING\r\n").expect("write");
    assert_eq!(read_exact(&mut signed, 7), b"+PONG\r\n");
    // Signed by another CA: the handshake fails, and the node says so.
    let mut stranger = certs.connect_with(node.addr(), certs.client_config_with(Some(&other)));
    let failed = stranger
        .write_all(b"PING\r\n")
        .and_then(|()| stranger.flush())
        .and_then(|()| {
            let mut buf = [0u8; 16];
            stranger.read(&mut buf)
        });
    assert!(
        !matches!(failed, Ok(n) if n > 0),
        "a client certificate from another CA got a reply"
    );
    node.wait_log("closed TLS client 127.0.0.1:", REPLY_TIMEOUT);
    // None at all: let in (the client password is what keeps clients out).
    let mut anonymous = certs.connect(node.addr());
    anonymous.write_all(b"PING\r\n").expect("write");
    assert_eq!(read_exact(&mut anonymous, 7), b"+PONG\r\n");
    assert_no_panic(&node.stderr_lines());
}

#[test]
fn without_tls_a_client_hello_is_a_plaintext_protocol_error() {
    let node = NodeSpec::new("no-tls").start();
    let certs = Certs::new();
    let mut tls = certs.connect(node.addr());
    // The handshake fails: the node answers in RESP, not TLS.
    assert!(
        tls.write_all(b"PING\r\n")
            .and_then(|()| tls.flush())
            .is_err()
            || {
                let mut buf = [0u8; 16];
                tls.read(&mut buf).is_err()
            }
    );
    let mut plain = raw(node.addr());
    plain.write_all(b"PING\r\n").expect("write");
    assert_eq!(read_n(&mut plain, 7), b"+PONG\r\n");
}

#[test]
fn protected_mode_denies_tls_clients_from_other_machines() {
    if let Err(why) = redis_cli_with_tls() {
        return skip(why);
    }
    // Slot 5: protected_mode.rs uses 1 to 4.
    let ns = match Netns::create(5) {
        Ok(ns) => ns,
        Err(why) => return skip(why),
    };
    let certs = Certs::for_hosts(&[&ns.host_ip]);
    let listen: SocketAddr = format!("{}:0", ns.host_ip).parse().expect("address");
    let node = certs.spec("tls-guarded").listen(listen).start();
    let out = ns
        .command("redis-cli")
        .args(["--tls", "--cacert"])
        .arg(certs.ca())
        .args([
            "-h",
            &ns.host_ip,
            "-p",
            &node.addr().port().to_string(),
            "PING",
        ])
        .output()
        .expect("redis-cli runs");
    let reply =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        reply.contains("DENIED netdb is running in protected mode"),
        "a TLS client from {} got: {reply}",
        ns.inner_ip
    );
    node.wait_log("refused TLS client 192.0.2.", REPLY_TIMEOUT);
    assert_no_panic(&node.stderr_lines());
}

fn start_fails(args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"n1", &"127.0.0.1:0"];
    all.extend_from_slice(args);
    let done = run_netdb(&all, Input::Null, Duration::from_secs(20));
    assert_eq!(done.status.code(), Some(1), "stderr: {:?}", done.stderr);
    assert_eq!(done.stderr.len(), 1, "stderr: {:?}", done.stderr);
    assert_no_panic(&done.stderr);
    done.stderr[0].clone()
}

#[test]
fn a_certificate_without_its_key_and_bad_pem_fail_in_one_line() {
    let certs = Certs::new();
    let cert = certs.path("node.crt");
    let key = certs.path("node.key");
    let line = start_fails(&[&"--tls-cert-file", &cert]);
    assert_eq!(
        line,
        "netdb: error: --tls-cert-file needs --tls-key-file (TLS takes both or neither)"
    );
    let line = start_fails(&[&"--tls-key-file", &key]);
    assert!(
        line.contains("--tls-key-file needs --tls-cert-file"),
        "{line}"
    );

    let junk = certs.path("junk.pem");
    std::fs::write(&junk, "not a PEM file\n").expect("write");
    let line = start_fails(&[&"--tls-cert-file", &junk, &"--tls-key-file", &key]);
    assert!(
        line.starts_with("netdb: error: cannot read --tls-cert-file ") && line.contains("junk.pem"),
        "{line}"
    );
    let line = start_fails(&[&"--tls-cert-file", &cert, &"--tls-key-file", &junk]);
    assert!(
        line.starts_with("netdb: error: cannot read a private key from --tls-key-file "),
        "{line}"
    );
    let missing = Path::new("/nonexistent/ca.crt");
    let line = start_fails(&[
        &"--tls-cert-file",
        &cert,
        &"--tls-key-file",
        &key,
        &"--tls-ca-cert-file",
        &missing,
    ]);
    assert!(
        line.starts_with("netdb: error: cannot read --tls-ca-cert-file /nonexistent/ca.crt"),
        "{line}"
    );
    // A key that is not the certificate's.
    let other = Certs::new();
    let line = start_fails(&[
        &"--tls-cert-file",
        &cert,
        &"--tls-key-file",
        &other.path("node.key"),
    ]);
    assert!(line.contains("do not make a usable pair"), "{line}");
}

/// The options of a node with the tests' cluster secret, written in `dir`.
fn secret_args(dir: &Path) -> Vec<String> {
    let file = secret_file(dir, "cluster.secret", SECRET);
    vec!["--cluster-secret-file".into(), file.display().to_string()]
}

/// `args` as the `&str`s a [`NodeSpec`] takes.
fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Waits until `node` answers `get key` with `want`.
fn wait_value(node: &mut Node, key: &str, want: &str) {
    let name = node.name().to_owned();
    eventually(
        CONVERGE_TIMEOUT,
        format_args!("{name} to have {key} = {want}"),
        || node.get(key).as_deref() == Some(want),
    );
}

#[test]
fn a_cluster_with_tls_and_a_secret_converges_over_tls() {
    let certs = Certs::new();
    let tls = certs.args();
    let mut cluster = Cluster::start(3, &[], |_, spec, dir| {
        let secret = secret_args(dir);
        spec.sync_every(FAST_SYNC_MS)
            .args(&strs(&tls))
            .args(&strs(&secret))
    });
    cluster[0].put("from-n1", "one");
    cluster[2].put("from-n3", "three");
    for node in &mut cluster.nodes {
        wait_value(node, "from-n1", "one");
        wait_value(node, "from-n3", "three");
    }
    // Every node reached each of its peers over TLS, and none in plain TCP.
    let addrs = cluster.addrs();
    for node in &cluster.nodes {
        for addr in addrs.iter().filter(|a| **a != node.addr()) {
            node.wait_log(
                &format!("peer {addr} is reachable (over TLS)"),
                REPLY_TIMEOUT,
            );
        }
        assert_eq!(node.count_stderr("plain TCP"), 0, "{}", node.name());
        assert_eq!(node.count_stderr("refused peer"), 0, "{}", node.name());
        assert_eq!(node.count_stderr("closed TLS client"), 0, "{}", node.name());
        assert_no_panic(&node.stderr_lines());
    }
    // And its status says so.
    for node in &mut cluster.nodes {
        let name = node.name().to_owned();
        eventually(
            REPLY_TIMEOUT,
            format_args!("{name}'s status to show TLS"),
            || {
                let peers = node.peer_lines();
                peers.len() == 2 && peers.iter().all(|l| l.contains("reachable over TLS"))
            },
        );
    }
}

#[test]
fn a_node_with_a_certificate_from_another_ca_is_refused_both_ways() {
    let ours = Certs::new();
    let theirs = Certs::new();
    let dir = temp_dir();
    let secret = secret_args(dir.path());
    let mut nodes = start_all(2, |addrs| {
        let peers = dir.path().join("peers.txt");
        write_peers_file(&peers, addrs);
        [&ours, &theirs]
            .iter()
            .zip(addrs)
            .enumerate()
            .map(|(i, (certs, addr))| {
                NodeSpec::new(&format!("ca{}", i + 1))
                    .listen(*addr)
                    .peers(&peers, 1)
                    .sync_every(FAST_SYNC_MS)
                    .args(&strs(&certs.args()))
                    .args(&strs(&secret))
            })
            .collect()
    });
    nodes[0].put("k", "from-ca1");
    nodes[1].put("j", "from-ca2");
    let (a, b) = (nodes[0].addr(), nodes[1].addr());
    // Each dials the other and refuses its certificate; each, taking the
    // other's connection, sees its handshake fail.
    for (node, other) in [(&nodes[0], b), (&nodes[1], a)] {
        node.wait_log(
            &format!("peer {other} is unreachable: invalid peer certificate"),
            REPLY_TIMEOUT,
        );
        node.wait_log("closed TLS client 127.0.0.1:", REPLY_TIMEOUT);
    }
    for node in &mut nodes {
        assert_eq!(node.cmd("sync"), "Synced with 0 of 1 peers.");
    }
    assert_eq!(nodes[1].get("k"), None);
    assert_eq!(nodes[0].get("j"), None);
    for node in &nodes {
        assert_eq!(node.count_stderr("is reachable"), 0, "{}", node.name());
        assert_no_panic(&node.stderr_lines());
    }
}

/// Opens a TLS connection to `addr` with `config` and sends the peer
/// magic, a `Hello` and a push of `key`; returns the node's first answer
/// (empty: it closed the connection; `None`: the connection failed).
fn tls_peer_push(addr: SocketAddr, config: Arc<ClientConfig>, key: &str) -> Option<Vec<u8>> {
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let conn = ClientConnection::new(config, name).expect("client");
    let stream = raw(addr);
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .expect("read timeout");
    let mut tls = StreamOwned::new(conn, stream);
    let mut opening = greeting("intruder");
    opening.extend(frame_of(&overwriting_push(key, "forged", "intruder")));
    tls.write_all(&opening).and_then(|()| tls.flush()).ok()?;
    let mut got = [0u8; 256];
    let n = tls.read(&mut got).ok()?;
    Some(got[..n].to_vec())
}

#[test]
fn a_tls_peer_needs_a_client_certificate_the_ca_signed() {
    let certs = Certs::new();
    let other = Certs::new();
    // No secret: only the certificate stands between a peer and the data.
    let mut node = certs.node("tls-peer-certs");

    // No client certificate: the handshake is fine, the peer is refused.
    let got = tls_peer_push(node.addr(), certs.client_config(), "no-cert");
    assert!(got.unwrap_or_default().is_empty(), "the node answered");
    let line = node.wait_log("refused TLS peer connection from 127.0.0.1:", REPLY_TIMEOUT);
    assert!(line.contains("no client certificate"), "{line}");

    // A client certificate from another CA: the handshake fails.
    let config = certs.client_config_with(Some(&other));
    let got = tls_peer_push(node.addr(), config, "other-ca");
    assert!(got.unwrap_or_default().is_empty(), "the node answered");
    let line = node.wait_log("closed TLS client 127.0.0.1:", REPLY_TIMEOUT);
    assert!(line.contains("certificate"), "{line}");

    // A peer with a certificate the CA signed is let in, and its push
    // applied; by then, nothing of either push before it was.
    let config = certs.client_config_with(Some(&certs));
    let got = tls_peer_push(node.addr(), config, "signed").expect("a TLS connection");
    assert!(
        !got.is_empty(),
        "no Welcome for a peer with a signed certificate"
    );
    wait_value(&mut node, "signed", "forged");
    assert_eq!(node.get("no-cert"), None);
    assert_eq!(node.get("other-ca"), None);
    assert_no_panic(&node.stderr_lines());
}

#[test]
fn a_plain_tcp_peer_from_loopback_is_still_let_in() {
    // n1 has TLS and a CA; n2 has neither. n2 dials n1 in plain TCP
    // from loopback: let in. (n1 dials n2 over TLS, which n2 cannot
    // speak: that way is refused.)
    let certs = Certs::new();
    let dir = temp_dir();
    let secret = secret_args(dir.path());
    let tls = certs.args();
    let mut nodes = start_all(2, |addrs| {
        let peers = dir.path().join("peers.txt");
        write_peers_file(&peers, addrs);
        let spec = |i: usize| {
            NodeSpec::new(&format!("n{}", i + 1))
                .listen(addrs[i])
                .peers(&peers, 1)
                .sync_every(FAST_SYNC_MS)
                .args(&strs(&secret))
        };
        vec![spec(0).args(&strs(&tls)), spec(1)]
    });
    nodes[1].put("k", "plain");
    wait_value(&mut nodes[0], "k", "plain");
    let n1 = nodes[0].addr();
    nodes[1].wait_log(
        &format!("peer {n1} is reachable (over plain TCP)"),
        REPLY_TIMEOUT,
    );
    assert_eq!(nodes[0].count_stderr("refused peer connection"), 0);
    for node in &nodes {
        assert_no_panic(&node.stderr_lines());
    }
}

#[test]
fn with_peer_tls_a_plain_tcp_peer_from_another_machine_is_refused() {
    // Slot 6: protected_mode.rs uses 1 to 4, the TLS clients' test 5.
    let ns = match Netns::create(6) {
        Ok(ns) => ns,
        Err(why) => return skip(why),
    };
    let certs = Certs::for_hosts(&[&ns.host_ip]);
    let dir = temp_dir();
    let listen: SocketAddr = format!("{}:0", ns.host_ip).parse().expect("address");
    let mut node = certs
        .spec("tls-guarded-peers")
        .listen(listen)
        .args(&strs(&secret_args(dir.path())))
        .start();
    let addr = node.addr();
    // A plain TCP peer's opening from the namespace: the magic, then a
    // greeting the node must never read.
    assert_eq!(
        ns.peer_opening_answer(addr),
        "0",
        "the node answered a plain TCP peer from another machine"
    );
    let line = node.wait_log("refused peer connection from 192.0.2.", REPLY_TIMEOUT);
    assert!(line.contains("plain TCP, and not from loopback"), "{line}");
    assert_eq!(node.cmd("keys"), "(no keys)");
    assert_no_panic(&node.stderr_lines());
}

#[test]
fn over_max_clients_a_tls_client_is_told_over_tls_and_a_tls_peer_still_gets_in() {
    let certs = Certs::new();
    let mut node = certs.spec("tls-full").args(&["--max-clients", "1"]).start();
    let mut first = certs.connect(node.addr());
    first.write_all(b"PING\r\n").expect("write");
    assert_eq!(read_exact(&mut first, 7), b"+PONG\r\n");

    // The second client completes its handshake, then reads why it is
    // closed, over TLS.
    let mut second = certs.connect(node.addr());
    second.write_all(b"PING\r\n").expect("write");
    let error = b"-ERR max number of clients reached\r\n";
    assert_eq!(read_exact(&mut second, error.len()), error);
    node.wait_log("refused client 127.0.0.1:", REPLY_TIMEOUT);

    // A peer over TLS is not a client: the limit does not keep it out.
    let config = certs.client_config_with(Some(&certs));
    let got = tls_peer_push(node.addr(), config, "peer-key").expect("a TLS connection");
    assert!(
        !got.is_empty(),
        "no Welcome for a peer over the client limit"
    );
    wait_value(&mut node, "peer-key", "forged");
    first.write_all(b"PING\r\n").expect("write");
    assert_eq!(read_exact(&mut first, 7), b"+PONG\r\n");
    assert_no_panic(&node.stderr_lines());
}

#[test]
fn a_transfer_of_several_parts_crosses_peer_tls() {
    let certs = Certs::new();
    let tls = certs.args();
    let mut cluster = Cluster::start(2, &[], |_, spec, dir| {
        let secret = secret_args(dir);
        spec.sync_every(FAST_SYNC_MS)
            .args(&["--max-frame-bytes", "1048576"])
            .args(&strs(&tls))
            .args(&strs(&secret))
    });
    // n2 is down while n1 takes about 6 MiB: when n2 is back, empty, the
    // two exchange it in six parts or more at the smallest frame limit.
    cluster[1].kill();
    let keys = 40_000;
    let value = "v".repeat(150);
    let mut con = redis_connection(cluster[0].addr());
    for chunk in (0..keys).collect::<Vec<_>>().chunks(5_000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.cmd("SET").arg(format!("key-{i}")).arg(&value).ignore();
        }
        let () = pipe.query(&mut con).expect("the pipeline");
    }
    cluster[1].restart();
    let mut other = redis_connection(cluster[1].addr());
    eventually(
        Duration::from_secs(60),
        format_args!("n2 to have all {keys} keys"),
        || redis::cmd("DBSIZE").query::<usize>(&mut other).ok() == Some(keys),
    );
    cluster[0].wait_log("with a transfer of several parts", REPLY_TIMEOUT);
    let n2 = cluster[1].addr();
    cluster[0].wait_log(&format!("peer {n2} is reachable (over TLS)"), REPLY_TIMEOUT);
    for node in &cluster.nodes {
        assert_eq!(node.count_stderr("plain TCP"), 0, "{}", node.name());
        assert_no_panic(&node.stderr_lines());
    }
}

/// A sharded cluster (`--replicas 1`) whose peers talk TLS and whose
/// clients need a password: a node forwards the commands for keys it
/// does not hold over TLS, authenticated with the cluster's one client
/// password, and every key is served through every node.
#[test]
fn a_sharded_node_forwards_over_tls_with_the_client_password() {
    let certs = Certs::new();
    let tls = certs.args();
    let mut cluster = Cluster::start(3, &[], |_, spec, dir| {
        let secret = secret_args(dir);
        spec.sync_every(FAST_SYNC_MS)
            .args(&strs(&tls))
            .args(&strs(&secret))
            .args(&["--replicas", "1", "--requirepass", "one-for-all"])
    });
    for node in &mut cluster.nodes {
        let name = node.name().to_owned();
        eventually(
            CONVERGE_TIMEOUT,
            format_args!("{name} to know every member"),
            || node.member_lines().len() == 3,
        );
    }
    let keys: Vec<String> = (0..30).map(|i| format!("tls-key-{i}")).collect();
    for key in &keys {
        assert_eq!(
            cluster[0].cmd(&format!("put {key} v-{key}")),
            "Value stored."
        );
    }
    for node in &mut cluster.nodes {
        for key in &keys {
            assert_eq!(node.get(key).as_deref(), Some(format!("v-{key}").as_str()));
        }
    }
    // Some of them went through the forwarder (plain TCP for this
    // client; the forwarding itself went over TLS).
    let url = format!("redis://:one-for-all@{}/", cluster[0].addr());
    let mut con = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("a client");
    let proxied: u64 = common::info_field(&mut con, "cluster", "netdb_proxied_commands")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(proxied > 0, "nothing was forwarded");
    for node in &cluster.nodes {
        assert_eq!(node.count_stderr("forwarding to"), 0, "{}", node.name());
        assert_eq!(node.count_stderr("closed TLS client"), 0, "{}", node.name());
        assert_no_panic(&node.stderr_lines());
    }
}
