//! A node that finds itself in its peers file, and two live nodes using
//! one name, against real binaries.
//!
//! Self: every spelling of the node's own address in its peers file is
//! skipped (by the address where that is exact, by the handshake where it
//! is not), so none becomes a peer that is never reachable and holds its
//! tombstones for ever. Twins: both refuse writes, naming the other, until
//! one goes away.
//!
//! The helpers are this file's own: small, and independent of the shared
//! ones while those change.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Rounds this often, so that detection takes a fraction of a second.
const SYNC_MS: &str = "100";
/// Longest wait for any condition.
const DEADLINE: Duration = Duration::from_secs(15);
/// Between checks of a condition.
const POLL: Duration = Duration::from_millis(50);

/// A `netdb` child with piped stdin, stdout and stderr.
struct Proc {
    name: String,
    addr: SocketAddr,
    child: Child,
    stdin: ChildStdin,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<Vec<String>>>,
}

/// Why a node did not start.
enum StartFailure {
    PortInUse,
    Other(Vec<String>),
}

impl Proc {
    /// Starts `netdb NAME LISTEN PEERS --in-memory --sync-interval-ms ..`
    /// and waits for its `listening on` line.
    fn start(name: &str, listen: SocketAddr, peers: &Path) -> Result<Proc, StartFailure> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_netdb"))
            .arg(name)
            .arg(listen.to_string())
            .arg(peers)
            .args(["--in-memory", "--sync-interval-ms", SYNC_MS])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn netdb");
        let stdin = child.stdin.take().expect("piped stdin");
        let (tx, stdout) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (sink, err) = (Arc::clone(&stderr), child.stderr.take().expect("piped"));
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("stderr lock").push(line);
            }
        });
        let mut proc = Proc {
            name: name.to_owned(),
            addr: listen,
            child,
            stdin,
            stdout,
            stderr,
        };
        let listening = format!("listening on {listen}");
        let deadline = Instant::now() + DEADLINE;
        loop {
            let lines = proc.stderr_lines();
            if lines.iter().any(|l| l.contains(&listening)) {
                return Ok(proc);
            }
            if Instant::now() >= deadline || proc.child.try_wait().ok().flatten().is_some() {
                proc.kill();
                std::thread::sleep(POLL); // let the reader take the last lines
                let lines = proc.stderr_lines();
                return Err(if lines.iter().any(|l| l.contains("port is in use")) {
                    StartFailure::PortInUse
                } else {
                    StartFailure::Other(lines)
                });
            }
            std::thread::sleep(POLL);
        }
    }

    fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().expect("stderr lock").clone()
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .expect("write to stdin");
    }

    fn read_line(&self) -> String {
        self.stdout.recv_timeout(DEADLINE).unwrap_or_else(|e| {
            panic!(
                "{}: no reply ({e}); stderr: {:?}",
                self.name,
                self.stderr_lines()
            )
        })
    }

    /// A command answered with one line.
    fn cmd(&mut self, line: &str) -> String {
        self.send(line);
        self.read_line()
    }

    /// The lines of `status`, however many peers it shows: a `get` of a
    /// key nobody writes marks their end.
    fn status(&mut self) -> Vec<String> {
        self.send("status");
        self.send("get status-ends-here");
        let mut lines = Vec::new();
        loop {
            let line = self.read_line();
            if line == "Key not found." {
                return lines;
            }
            lines.push(line);
        }
    }

    /// The lines of `status` about peers.
    fn peer_lines(&mut self) -> Vec<String> {
        let lines = self.status();
        lines
            .into_iter()
            .filter(|l| l.starts_with("peer"))
            .collect()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nothing listens on right now (the OS picks it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// Starts nodes on fresh ports: `make` gets the ports and returns, for
/// each node, its name, listen address and peers file lines. All are
/// started again on new ports if one finds its port taken.
fn start_all(n: usize, make: impl Fn(&[u16]) -> Vec<(String, SocketAddr, String)>) -> Vec<Proc> {
    let dir = tempfile::tempdir().expect("temp dir");
    for _ in 0..5 {
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut procs = Vec::new();
        for (i, (name, listen, peers)) in make(&ports).into_iter().enumerate() {
            let file = dir.path().join(format!("peers-{i}.txt"));
            std::fs::write(&file, peers).expect("write peers file");
            match Proc::start(&name, listen, &file) {
                Ok(p) => procs.push(p),
                Err(StartFailure::PortInUse) => break,
                Err(StartFailure::Other(stderr)) => panic!("{name} did not start: {stderr:?}"),
            }
        }
        if procs.len() == n {
            return procs;
        }
    }
    panic!("found a port in use five times");
}

/// Checks `condition` until it holds; panics after [`DEADLINE`] with the
/// last thing it saw.
fn eventually<T: std::fmt::Debug>(what: &str, mut condition: impl FnMut() -> (bool, T)) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (ok, seen) = condition();
        if ok {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out waiting for {what}; last saw {seen:?}");
        }
        std::thread::sleep(POLL);
    }
}

/// Writes and deletes a key on `node`, then waits until its tombstone is
/// collected: every peer it counts has acknowledged the delete.
fn assert_tombstone_collected(node: &mut Proc) {
    assert_eq!(node.cmd("put doomed v"), "Value stored.");
    assert_eq!(node.cmd("delete doomed"), "Key deleted.");
    eventually("the delete's tombstone to be collected", || {
        let status = node.status();
        let ok = status.iter().any(|l| l == "keys: 0 live, 0 tombstones");
        (ok, status)
    });
}

#[test]
fn spellings_of_the_node_s_own_address_are_not_peers() {
    let mut nodes = start_all(2, |ports| {
        let (a, b) = (ports[0], ports[1]);
        vec![
            (
                "a".into(),
                SocketAddr::from(([127, 0, 0, 1], a)),
                format!("0.0.0.0:{a}\n[::ffff:127.0.0.1]:{a}\nlocalhost:{a}\n127.0.0.1:{b}\n"),
            ),
            (
                "b".into(),
                SocketAddr::from(([127, 0, 0, 1], b)),
                format!("127.0.0.1:{a}\n"),
            ),
        ]
    });
    let b = nodes[1].addr;
    let a = &mut nodes[0];
    let peers = a.peer_lines();
    assert_eq!(peers.len(), 1, "only the real peer: {peers:?}");
    assert!(peers[0].starts_with(&format!("peer {b}: ")), "{peers:?}");
    assert_tombstone_collected(a);
}

/// A non-loopback IPv4 address of this host (the one its route out
/// uses), if it has one. Finding it sends nothing.
fn lan_address() -> Option<IpAddr> {
    ["192.0.2.1:9", "10.255.255.1:9", "8.8.8.8:53"]
        .iter()
        .find_map(|to| {
            let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
            socket.connect(to).ok()?;
            let ip = socket.local_addr().ok()?.ip();
            (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
        })
}

#[test]
fn the_lan_address_of_a_node_on_the_wildcard_is_found_to_be_itself() {
    let Some(lan) = lan_address() else {
        eprintln!("skipped: this host has no non-loopback IPv4 address");
        return;
    };
    let mut nodes = start_all(2, |ports| {
        let (a, b) = (ports[0], ports[1]);
        vec![
            (
                "a".into(),
                SocketAddr::from(([0, 0, 0, 0], a)),
                // The peers file cannot know this address is the node's
                // own: the handshake tells.
                format!("{lan}:{a}\n127.0.0.1:{b}\n"),
            ),
            (
                "b".into(),
                SocketAddr::from(([127, 0, 0, 1], b)),
                format!("127.0.0.1:{a}\n"),
            ),
        ]
    });
    let (a_port, b) = (nodes[0].addr.port(), nodes[1].addr);
    let a = &mut nodes[0];
    eventually("the node to drop its own LAN address", || {
        let peers = a.peer_lines();
        (peers.len() == 1, peers)
    });
    assert!(a.peer_lines()[0].starts_with(&format!("peer {b}: ")));
    let dropped = format!("peer {lan}:{a_port} is this node itself");
    let logged: Vec<String> = a
        .stderr_lines()
        .into_iter()
        .filter(|l| l.contains(&dropped))
        .collect();
    assert_eq!(logged.len(), 1, "one log line: {:?}", a.stderr_lines());
    assert_eq!(a.cmd("sync"), "Synced with 1 of 1 peers.");
    assert_tombstone_collected(a);
}

/// The error a twin's write gets, naming the other twin's address.
fn refusal(other: SocketAddr) -> String {
    format!(
        "writes refused: another live node at {other} uses this node's name 'twin'; \
         give one of them another name"
    )
}

#[test]
fn twins_refuse_writes_until_one_is_gone() {
    let mut nodes = start_all(2, |ports| {
        let file: String = ports.iter().map(|p| format!("127.0.0.1:{p}\n")).collect();
        ports
            .iter()
            .map(|&p| {
                (
                    "twin".into(),
                    SocketAddr::from(([127, 0, 0, 1], p)),
                    file.clone(),
                )
            })
            .collect()
    });
    let addrs = [nodes[0].addr, nodes[1].addr];
    for (i, node) in nodes.iter_mut().enumerate() {
        let other = addrs[1 - i];
        let want = format!("Error: {}", refusal(other));
        eventually("the console to refuse writes", || {
            let got = node.cmd("put k v");
            (got == want, got)
        });
        let peers = node.peer_lines();
        assert_eq!(peers.len(), 1, "{peers:?}");
        assert!(
            peers[0].starts_with(&format!(
                "peer {other}: unreachable (another live node answers with this node's name 'twin'"
            )),
            "{peers:?}"
        );
        assert!(
            node.stderr_lines()
                .iter()
                .any(|l| l.contains("TWIN: another live node at") && l.contains(&other.to_string())),
            "said so in the log: {:?}",
            node.stderr_lines()
        );
        let mut redis = redis::Client::open(format!("redis://{}/", node.addr))
            .expect("client")
            .get_connection()
            .expect("connect");
        let err = redis::cmd("SET")
            .arg("k")
            .arg("v")
            .query::<()>(&mut redis)
            .expect_err("SET refused");
        assert!(err.to_string().contains(&refusal(other)), "{err}");
    }
    // A twin found as the node starts is found in its first round.
    assert!(
        nodes.iter().any(|n| n
            .stderr_lines()
            .iter()
            .any(|l| l.contains("at startup: TWIN"))),
        "the second twin to start finds the first at startup"
    );

    nodes[1].kill();
    let survivor = &mut nodes[0];
    eventually("writes to be taken again", || {
        let got = survivor.cmd("put k v");
        (got == "Value stored.", got)
    });
    assert_eq!(survivor.cmd("get k"), "Value: v");
}
