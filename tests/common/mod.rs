//! Helpers shared by the integration tests: running `netdb` binaries as
//! child processes and talking to them over stdin/stdout, small clusters of
//! them on ephemeral ports, and waiting for conditions with a deadline.
//!
//! Nothing here sleeps as an assertion: every wait is for a condition, and
//! every wait has a deadline that ends in a panic saying what was awaited.
//! Every child is killed when its [`Node`] is dropped, so a failing test
//! leaves no process behind.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::ffi::OsString;
use std::fmt::Display;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a node may take to print its `listening on` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a command may take to answer. `sync` waits up to 5 s for its
/// peers, so this is comfortably above that.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long replication between live nodes may take in the tests, with a
/// sync interval of [`FAST_SYNC_MS`]. Generous for a loaded machine, and
/// still well under the 5 s I/O timeout of a stuck peer.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(4);

/// The sync interval most tests use, in milliseconds.
pub const FAST_SYNC_MS: u64 = 100;

/// A sync interval long enough that no periodic round happens during a
/// test: only `sync`, `quit` and end of input push.
pub const NO_SYNC_MS: u64 = 600_000;

/// Polls between checks of a condition.
const POLL: Duration = Duration::from_millis(20);

/// The path of the `netdb` binary built for these tests.
pub fn netdb_bin() -> &'static str {
    env!("CARGO_BIN_EXE_netdb")
}

/// Polls `condition` until it holds; panics after `within`, naming `what`.
pub fn eventually(within: Duration, what: impl Display, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    loop {
        if condition() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {within:?} waiting for: {what}");
        }
        std::thread::sleep(POLL);
    }
}

/// Picks a port nothing listens on right now, by binding port 0 and letting
/// the listener go. Another process may take it before it is used; callers
/// that bind it retry with a new one when it is taken.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// A loopback address with no listener behind it (a dead peer).
pub fn dead_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Lines a child wrote to stderr, collected by a thread so the child never
/// blocks on a full pipe.
#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    closed: bool,
}

#[derive(Default)]
struct Log {
    state: Mutex<LogState>,
    grew: Condvar,
}

impl Log {
    /// Starts the thread that reads `from` into a new log.
    fn collect(from: impl Read + Send + 'static, thread_name: String) -> Arc<Log> {
        let log = Arc::new(Log::default());
        let sink = Arc::clone(&log);
        let end = Arc::clone(&log);
        for_each_line(
            from,
            thread_name,
            move |text| {
                let mut state = sink.state.lock().expect("log lock");
                state.lines.push(text);
                sink.grew.notify_all();
                true
            },
            move || {
                end.state.lock().expect("log lock").closed = true;
                end.grew.notify_all();
            },
        );
        log
    }

    fn lines(&self) -> Vec<String> {
        self.state.lock().expect("log lock").lines.clone()
    }

    /// Waits until a line satisfies `wanted` (returns it), or the stream
    /// closes or `within` passes (returns `None`).
    fn wait_for(&self, within: Duration, mut wanted: impl FnMut(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + within;
        let mut state = self.state.lock().expect("log lock");
        let mut seen = 0;
        loop {
            if let Some(line) = state.lines[seen..].iter().find(|l| wanted(l)) {
                return Some(line.clone());
            }
            seen = state.lines.len();
            let now = Instant::now();
            if state.closed || now >= deadline {
                return None;
            }
            state = self
                .grew
                .wait_timeout(state, deadline - now)
                .expect("log lock")
                .0;
        }
    }

    /// Waits until the stream closes (the process is gone), at most `within`.
    fn wait_closed(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut state = self.state.lock().expect("log lock");
        while !state.closed {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self
                .grew
                .wait_timeout(state, deadline - now)
                .expect("log lock")
                .0;
        }
        true
    }
}

/// Starts the thread that turns a child's stdout into a channel of lines;
/// the channel disconnects at end of output.
fn collect_stdout(from: impl Read + Send + 'static, thread_name: String) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    for_each_line(from, thread_name, move |text| tx.send(text).is_ok(), || {});
    rx
}

/// Starts a thread that hands each line of `from` (without its line end)
/// to `each` until the stream ends or `each` returns false, then runs
/// `at_end`.
fn for_each_line(
    from: impl Read + Send + 'static,
    thread_name: String,
    mut each: impl FnMut(String) -> bool + Send + 'static,
    at_end: impl FnOnce() + Send + 'static,
) {
    std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || {
            let mut reader = BufReader::new(from);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line)
                            .trim_end_matches(['\n', '\r'])
                            .to_owned();
                        if !each(text) {
                            break;
                        }
                    }
                }
            }
            drop(each);
            at_end();
        })
        .expect("start a reader thread");
}

/// How a node failed to start.
#[derive(Debug)]
pub struct StartError {
    /// It said its port is taken (worth a retry on another port).
    pub port_in_use: bool,
    /// What it printed on stderr.
    pub stderr: Vec<String>,
}

/// What it takes to start (and restart) a node.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// The node's name.
    pub name: String,
    /// Its listen address.
    pub addr: SocketAddr,
    /// The peers file, if any.
    pub peers_file: Option<PathBuf>,
    /// How many peers the file lists besides this node.
    pub peer_count: usize,
    /// Further command-line arguments.
    pub extra_args: Vec<String>,
}

impl NodeSpec {
    /// A node with no peers file and no options.
    pub fn alone(name: &str, addr: SocketAddr) -> NodeSpec {
        NodeSpec {
            name: name.to_owned(),
            addr,
            peers_file: None,
            peer_count: 0,
            extra_args: Vec::new(),
        }
    }

    /// The command-line arguments.
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![self.name.clone().into(), self.addr.to_string().into()];
        if let Some(p) = &self.peers_file {
            args.push(p.clone().into());
        }
        args.extend(self.extra_args.iter().map(OsString::from));
        in_memory_unless_told(&mut args);
        args
    }
}

/// A running `netdb` child with piped stdin, stdout and stderr.
pub struct Node {
    /// How it was started.
    pub spec: NodeSpec,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Arc<Log>,
}

impl Node {
    /// Starts a node and waits for its `listening on` line.
    pub fn start(spec: NodeSpec) -> Result<Node, StartError> {
        let mut child = Command::new(netdb_bin())
            .args(spec.args())
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn netdb");
        let stdin = child.stdin.take();
        let stdout = collect_stdout(
            child.stdout.take().expect("piped stdout"),
            format!("{}-stdout", spec.name),
        );
        let stderr = Log::collect(
            child.stderr.take().expect("piped stderr"),
            format!("{}-stderr", spec.name),
        );
        let mut node = Node {
            spec,
            child,
            stdin,
            stdout,
            stderr,
        };
        let listening = format!("listening on {}", node.spec.addr);
        if node
            .stderr
            .wait_for(START_TIMEOUT, |l| l.contains(&listening))
            .is_some()
        {
            return Ok(node);
        }
        // It exited (or hung): collect what it said and report.
        let _ = node.child.kill();
        let _ = node.child.wait();
        node.stderr.wait_closed(Duration::from_secs(2));
        let stderr = node.stderr.lines();
        Err(StartError {
            port_in_use: stderr.iter().any(|l| l.contains("port is in use")),
            stderr,
        })
    }

    /// A node alone on a fresh port (retrying if the port is taken).
    pub fn alone(name: &str, extra_args: &[&str]) -> Node {
        start_with_retry(|| {
            let mut spec = NodeSpec::alone(name, SocketAddr::from(([127, 0, 0, 1], free_port())));
            spec.extra_args = extra_args.iter().map(|s| s.to_string()).collect();
            spec
        })
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The node's listen address.
    pub fn addr(&self) -> SocketAddr {
        self.spec.addr
    }

    /// Writes one line to the node's stdin.
    pub fn send(&mut self, line: &str) {
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        self.send_raw(&bytes);
    }

    /// Writes raw bytes to the node's stdin (no newline added).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let name = self.spec.name.clone();
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("{name}: stdin already closed"));
        stdin
            .write_all(bytes)
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{name}: cannot write to stdin: {e}"));
    }

    /// Reads the next line of stdout, panicking after `within`.
    pub fn read_line(&mut self, within: Duration) -> String {
        match self.stdout.recv_timeout(within) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!(
                "{}: no line on stdout within {within:?}; stderr:\n{}",
                self.spec.name,
                self.stderr_text()
            ),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "{}: stdout closed while a line was expected; stderr:\n{}",
                self.spec.name,
                self.stderr_text()
            ),
        }
    }

    /// Runs a command that answers with one line, and returns that line.
    pub fn cmd(&mut self, line: &str) -> String {
        self.cmd_lines(line, 1).remove(0)
    }

    /// Runs a command that answers with `n` lines, and returns them.
    pub fn cmd_lines(&mut self, line: &str, n: usize) -> Vec<String> {
        self.send(line);
        let deadline = Instant::now() + REPLY_TIMEOUT;
        (0..n)
            .map(|_| self.read_line(deadline.saturating_duration_since(Instant::now())))
            .collect()
    }

    /// The lines of `status`: the node, the counts, and one per peer.
    pub fn status(&mut self) -> Vec<String> {
        let n = 2 + self.spec.peer_count.max(1);
        self.cmd_lines("status", n)
    }

    /// The status line of the peer at `addr`.
    pub fn peer_status(&mut self, addr: SocketAddr) -> String {
        let prefix = format!("peer {addr}: ");
        let status = self.status();
        status
            .iter()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("{}: no line for {addr} in status {status:?}", self.name()))
            .clone()
    }

    /// Asks `line` until the answer is `want`; panics with the last answer
    /// after `within`.
    pub fn wait_reply(&mut self, line: &str, want: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let got = self.cmd(line);
            if got == want {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: `{line}` still answers {got:?} after {within:?}, wanted {want:?}",
                    self.spec.name
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Everything the node has written to stderr so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lines()
    }

    fn stderr_text(&self) -> String {
        self.stderr.lines().join("\n")
    }

    /// Waits for a stderr line containing `text`; returns it.
    pub fn wait_log(&self, text: &str, within: Duration) -> String {
        self.stderr
            .wait_for(within, |l| l.contains(text))
            .unwrap_or_else(|| {
                panic!(
                    "{}: no stderr line containing {text:?} within {within:?}; stderr:\n{}",
                    self.spec.name,
                    self.stderr_text()
                )
            })
    }

    /// Closes stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits for the process to exit; panics after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: still running {within:?} after it should have exited; stderr:\n{}",
                    self.spec.name,
                    self.stderr_text()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until stdout is closed and returns any lines left on it.
    pub fn rest_of_stdout(&mut self, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut rest = Vec::new();
        loop {
            match self
                .stdout
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => rest.push(line),
                Err(RecvTimeoutError::Disconnected) => return rest,
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "{}: stdout still open after {within:?} (got {rest:?})",
                        self.spec.name
                    )
                }
            }
        }
    }

    /// The lines already on stdout that no command has read, without
    /// waiting for more.
    pub fn rest_of_stdout_now(&mut self) -> Vec<String> {
        self.stdout.try_iter().collect()
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the node and starts it again, empty, with the same name,
    /// address and peers file.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match Node::start(self.spec.clone()) {
                Ok(fresh) => {
                    // The old one's reader threads end with its pipes.
                    *self = fresh;
                    return;
                }
                Err(e) if e.port_in_use && Instant::now() < deadline => {
                    std::thread::sleep(POLL);
                }
                Err(e) => panic!(
                    "{}: restart on {} failed: {:?}",
                    self.spec.name, self.spec.addr, e.stderr
                ),
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a node from specs made by `make` (a new port each time), retrying
/// a few times when the port turns out to be taken.
fn start_with_retry(mut make: impl FnMut() -> NodeSpec) -> Node {
    let mut last = None;
    for _ in 0..5 {
        match Node::start(make()) {
            Ok(node) => return node,
            Err(e) if e.port_in_use => last = Some(e),
            Err(e) => panic!("netdb failed to start: {:?}", e.stderr),
        }
    }
    panic!("netdb found its port in use five times: {last:?}");
}

/// Nodes that list each other as peers, and the directory with their peers
/// file.
pub struct Cluster {
    /// The nodes, named `n1`, `n2`, ...
    pub nodes: Vec<Node>,
    /// Holds the peers file; removed on drop.
    pub dir: tempfile::TempDir,
    /// The peers file every node was started with.
    pub peers_file: PathBuf,
}

impl Cluster {
    /// The nodes' listen addresses, in order.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(Node::addr).collect()
    }

    /// Waits until every node answers `line` with `want`.
    pub fn wait_all(&mut self, line: &str, want: &str, within: Duration) {
        let deadline = Instant::now() + within;
        for node in &mut self.nodes {
            node.wait_reply(
                line,
                want,
                deadline.saturating_duration_since(Instant::now()),
            );
        }
    }

    /// Asserts that every node answers `line` with `want` right now.
    pub fn assert_all(&mut self, line: &str, want: &str) {
        for node in &mut self.nodes {
            assert_eq!(node.cmd(line), want, "{}: `{line}`", node.name());
        }
    }

    /// Asks every node `line` over and over for `period`, asserting the
    /// answer is `want` each time: a property that must hold across the
    /// sync rounds of that period.
    pub fn assert_all_for(&mut self, line: &str, want: &str, period: Duration) {
        let end = Instant::now() + period;
        let mut asked = 0;
        while Instant::now() < end || asked == 0 {
            for node in &mut self.nodes {
                assert_eq!(
                    node.cmd(line),
                    want,
                    "{}: `{line}` after {asked} checks",
                    node.name()
                );
            }
            asked += 1;
            std::thread::sleep(POLL);
        }
    }

    /// One full sync round by hand: every node in turn pushes to all its
    /// peers and waits for every acknowledgement.
    pub fn sync_all(&mut self) {
        for node in &mut self.nodes {
            let want = format!("Synced with {0} of {0} peers.", node.spec.peer_count);
            let got = node.cmd("sync");
            assert_eq!(
                got,
                want,
                "{}: `sync`; its stderr:\n{}",
                node.name(),
                node.stderr_text()
            );
        }
    }
}

impl std::ops::Index<usize> for Cluster {
    type Output = Node;
    fn index(&self, i: usize) -> &Node {
        &self.nodes[i]
    }
}

impl std::ops::IndexMut<usize> for Cluster {
    fn index_mut(&mut self, i: usize) -> &mut Node {
        &mut self.nodes[i]
    }
}

/// Writes a peers file listing `addrs`, with a comment and a blank line as
/// a human would.
pub fn write_peers_file(path: &Path, addrs: &[SocketAddr]) {
    let mut text = String::from("# netdb test cluster\n\n");
    for a in addrs {
        text.push_str(&format!("{a}\n"));
    }
    std::fs::write(path, text).expect("write the peers file");
}

/// `n` nodes syncing every `interval_ms`, each listing all the others.
pub fn cluster(n: usize, interval_ms: u64) -> Cluster {
    cluster_with(n, interval_ms, &[])
}

/// Like [`cluster`], with `extra_peers` (dead or hostile addresses) also in
/// the peers file.
pub fn cluster_with(n: usize, interval_ms: u64, extra_peers: &[SocketAddr]) -> Cluster {
    cluster_with_args(n, interval_ms, extra_peers, &[])
}

/// Like [`cluster_with`], with `args` added to every node's command line.
pub fn cluster_with_args(
    n: usize,
    interval_ms: u64,
    extra_peers: &[SocketAddr],
    args: &[&str],
) -> Cluster {
    let dir = tempfile::tempdir().expect("make a temp dir");
    let peers_file = dir.path().join("peers.txt");
    let nodes = start_all(n, |addrs| {
        let mut listed = addrs.to_vec();
        listed.extend_from_slice(extra_peers);
        write_peers_file(&peers_file, &listed);
        addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| NodeSpec {
                name: format!("n{}", i + 1),
                addr: *addr,
                peers_file: Some(peers_file.clone()),
                peer_count: listed.len() - 1,
                extra_args: ["--sync-interval-ms", &interval_ms.to_string()]
                    .iter()
                    .chain(args)
                    .map(|s| s.to_string())
                    .collect(),
            })
            .collect()
    });
    Cluster {
        nodes,
        dir,
        peers_file,
    }
}

/// Starts `n` nodes on fresh loopback ports with the specs `make` builds
/// from those addresses (it may write peers files), retrying the whole set
/// on new ports when one turns out to be taken.
pub fn start_all(n: usize, mut make: impl FnMut(&[SocketAddr]) -> Vec<NodeSpec>) -> Vec<Node> {
    let mut last = Vec::new();
    for _ in 0..5 {
        let addrs: Vec<SocketAddr> = (0..n)
            .map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())))
            .collect();
        let mut nodes = Vec::new();
        for spec in make(&addrs) {
            let name = spec.name.clone();
            match Node::start(spec) {
                Ok(node) => nodes.push(node),
                Err(e) if e.port_in_use => {
                    last = e.stderr;
                    break;
                }
                Err(e) => panic!("{name} failed to start: {:?}", e.stderr),
            }
        }
        if nodes.len() == n {
            return nodes;
        }
    }
    panic!("could not start the nodes: ports kept being taken; last error {last:?}");
}

/// How a `netdb` run that was left to finish ended.
pub struct Finished {
    /// Exit status.
    pub status: ExitStatus,
    /// stdout lines.
    pub stdout: Vec<String>,
    /// stderr lines.
    pub stderr: Vec<String>,
}

/// Nodes in these tests keep nothing on disk unless a test gives them a
/// data directory: a default `./NAME` directory would outlive the test.
fn in_memory_unless_told(args: &mut Vec<OsString>) {
    if !args.iter().any(|a| a == "--data-dir" || a == "--in-memory") {
        args.push("--in-memory".into());
    }
}

/// Runs `netdb` with `args`, stdin from `stdin` (or empty), to completion.
pub fn run_netdb(args: &[OsString], stdin: Option<std::fs::File>, within: Duration) -> Finished {
    let mut args = args.to_vec();
    in_memory_unless_told(&mut args);
    let mut child = Command::new(netdb_bin())
        .args(&args)
        .env("RUST_BACKTRACE", "1")
        .stdin(stdin.map_or_else(Stdio::null, Stdio::from))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn netdb");
    let out = Log::collect(child.stdout.take().expect("piped"), "run-stdout".into());
    let err = Log::collect(child.stderr.take().expect("piped"), "run-stderr".into());
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "netdb {args:?} still running after {within:?}; stderr: {:?}",
                err.lines()
            );
        }
        std::thread::sleep(POLL);
    };
    assert!(out.wait_closed(Duration::from_secs(5)), "stdout not closed");
    assert!(err.wait_closed(Duration::from_secs(5)), "stderr not closed");
    Finished {
        status,
        stdout: out.lines(),
        stderr: err.lines(),
    }
}

/// A peer that accepts connections and never says a word: every push to it
/// waits for the full I/O timeout. Stops accepting on drop.
pub struct Blackhole {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Blackhole {
    /// Starts accepting on a fresh loopback port.
    pub fn start() -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the blackhole");
        listener
            .set_nonblocking(true)
            .expect("nonblocking blackhole");
        let addr = listener.local_addr().expect("blackhole address");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("blackhole".into())
            .spawn(move || {
                let mut held: Vec<TcpStream> = Vec::new();
                while !flag.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => held.push(stream),
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
            .expect("start the blackhole thread");
        Blackhole {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A small deterministic generator for test data; tests print its seed so a
/// failure can be replayed.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `NETDB_TEST_SEED` or the clock; prints the seed.
    pub fn from_env_or_clock(test: &str) -> Rng {
        let seed = std::env::var("NETDB_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("{test}: seed {seed} (replay with NETDB_TEST_SEED={seed})");
        Rng(seed | 1)
    }

    /// The next 64 random bits (xorshift64*).
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
