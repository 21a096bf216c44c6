//! Helpers for the Redis-protocol tests: nodes as child processes of the
//! built binary on ephemeral ports, and waiting for a condition.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a node may take to start.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Ports the OS says are free now: each was bound on 127.0.0.1:0 and
/// released, all at once so they differ.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("bound").port())
        .collect()
}

/// Waits until `condition` holds, polling; panics with `what` at the
/// deadline.
pub fn eventually(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A node running as a child process; killed when dropped.
pub struct Node {
    pub name: String,
    pub addr: SocketAddr,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    /// Its data directory; `None` for a node in memory.
    pub data_dir: Option<std::path::PathBuf>,
    _dir: tempfile::TempDir,
}

impl Node {
    /// Starts node `name` on `port` with `peers` (ports) and extra flags,
    /// in memory, and waits for its `listening on` line.
    pub fn start(name: &str, port: u16, peers: &[u16], flags: &[&str]) -> Node {
        Node::spawn(name, port, peers, flags, false)
    }

    /// A node alone with a data directory (in its temporary folder).
    pub fn on_disk(flags: &[&str]) -> Node {
        Node::spawn("solo", free_ports(1)[0], &[], flags, true)
    }

    fn spawn(name: &str, port: u16, peers: &[u16], flags: &[&str], on_disk: bool) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = on_disk.then(|| dir.path().join("data"));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_netdb"));
        cmd.arg(name).arg(addr.to_string());
        if !peers.is_empty() {
            let file = dir.path().join("peers");
            let text: String = peers.iter().map(|p| format!("127.0.0.1:{p}\n")).collect();
            std::fs::write(&file, text).expect("write peers file");
            cmd.arg(&file);
        }
        match &data_dir {
            Some(d) => cmd.arg("--data-dir").arg(d),
            None => cmd.arg("--in-memory"),
        };
        cmd.args(["--no-cli", "--sync-interval-ms", "100"])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start netdb");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
                lines.lock().expect("log lock").push(line);
            }
        });
        let node = Node {
            name: name.to_owned(),
            addr,
            child,
            log,
            data_dir,
            _dir: dir,
        };
        if rx.recv_timeout(START_TIMEOUT).is_err() {
            panic!("node {name} did not start: {:?}", node.log());
        }
        node
    }

    /// Starts `n` nodes that list each other as peers.
    pub fn cluster(n: usize, flags: &[&str]) -> Vec<Node> {
        let ports = free_ports(n);
        (0..n)
            .map(|i| {
                let others: Vec<u16> = ports
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, &p)| p)
                    .collect();
                Node::start(&format!("n{i}"), ports[i], &others, flags)
            })
            .collect()
    }

    /// A node alone.
    pub fn alone(flags: &[&str]) -> Node {
        Node::start("solo", free_ports(1)[0], &[], flags)
    }

    /// Its stderr so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }

    /// `redis://` URL of the node.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
