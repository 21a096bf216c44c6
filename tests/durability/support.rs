//! Helpers for the durability tests: `netdb` nodes as child processes with
//! a data directory, spoken to over stdin/stdout; clusters on reserved
//! ports; the files of a data directory; a seeded random generator.
//!
//! Self-contained on purpose (the shared `tests/common` is written
//! separately). Nothing here sleeps as an assertion: every wait is for a
//! condition and ends, at its deadline, in a panic that says what was
//! awaited and what the node printed on stderr. Every child is killed when
//! its [`Node`] is dropped.

// The test file uses most, not all, of these helpers.
#![allow(dead_code)]

use std::fmt::Display;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a node may take to print its `listening on` line (a debug
/// build on a busy two-core machine).
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long one command may take to answer.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a node may take to exit once told to (or once it must have).
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long two live nodes syncing every [`FAST_SYNC_MS`] may take to
/// agree.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(15);

/// The sync interval of cluster tests, in milliseconds.
pub const FAST_SYNC_MS: u64 = 100;

/// Time between two checks of a condition.
const POLL: Duration = Duration::from_millis(10);

/// How many times a cluster is started on fresh ports when one was taken.
const PORT_ATTEMPTS: usize = 5;

/// Polls `condition` until it holds; panics after `within`, naming `what`.
pub fn eventually(within: Duration, what: impl Display, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for: {what}"
        );
        std::thread::sleep(POLL);
    }
}

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("netdb-durable-")
        .tempdir()
        .expect("create a temporary directory")
}

/// A port nothing listens on right now: bind port 0, let it go. Another
/// process may take it first; starting a node on it then fails with "port
/// is in use", and the caller retries with a new one.
pub fn reserve_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// A small, seeded pseudo-random generator (splitmix64): tests print the
/// seed, and `NETDB_TEST_SEED=<seed>` replays a run.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `NETDB_TEST_SEED`, or from the clock; prints
    /// the seed, naming `test`.
    pub fn seeded(test: &str) -> Rng {
        let seed = match std::env::var("NETDB_TEST_SEED") {
            Ok(s) => s.parse().expect("NETDB_TEST_SEED is a u64"),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
        };
        eprintln!("{test}: seed {seed} (replay with NETDB_TEST_SEED={seed})");
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Lines a child wrote on stderr, shared with the thread reading them.
#[derive(Default)]
struct Lines {
    state: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

impl Lines {
    fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Lines> {
        let lines = Arc::new(Lines::default());
        let shared = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                shared.state.lock().expect("stderr lines").0.push(line);
                shared.changed.notify_all();
            }
            shared.state.lock().expect("stderr lines").1 = true;
            shared.changed.notify_all();
        });
        lines
    }

    fn snapshot(&self) -> Vec<String> {
        self.state.lock().expect("stderr lines").0.clone()
    }

    /// Waits (at most `within`) until the stream is closed.
    fn wait_closed(&self, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut state = self.state.lock().expect("stderr lines");
        while !state.1 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self.changed.wait_timeout(state, left).expect("wait").0;
        }
        state.0.clone()
    }

    /// Waits at most `within` for a line matching `pred`; returns it.
    fn wait_for(&self, within: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + within;
        let mut state = self.state.lock().expect("stderr lines");
        loop {
            if let Some(line) = state.0.iter().find(|l| pred(l)) {
                return Some(line.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || state.1 {
                return None;
            }
            state = self
                .changed
                .wait_timeout(state, left.min(POLL * 5))
                .expect("wait")
                .0;
        }
    }
}

/// Formats stderr lines for a panic message.
pub fn show(lines: &[String]) -> String {
    let mut out = String::from("--- node stderr ---\n");
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str("-------------------");
    out
}

/// Panics if a node panicked (it must fail with a message, never a panic).
pub fn assert_no_panic(lines: &[String]) {
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("panicked") || l.contains("RUST_BACKTRACE")),
        "the node panicked\n{}",
        show(lines)
    );
}

/// How to start a node.
#[derive(Clone, Debug)]
pub struct Opts {
    name: String,
    addr: String,
    dir: Option<PathBuf>,
    cwd: Option<PathBuf>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Opts {
    /// A node called `name` keeping its data in `dir`, on an ephemeral
    /// port.
    pub fn new(name: &str, dir: &Path) -> Opts {
        Opts {
            name: name.into(),
            addr: "127.0.0.1:0".into(),
            dir: Some(dir.to_owned()),
            cwd: None,
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// A node called `name` started with `--in-memory` in working
    /// directory `cwd` (where the default data directory would go).
    pub fn in_memory(name: &str, cwd: &Path) -> Opts {
        Opts {
            name: name.into(),
            addr: "127.0.0.1:0".into(),
            dir: None,
            cwd: Some(cwd.to_owned()),
            args: vec!["--in-memory".into()],
            env: Vec::new(),
        }
    }

    /// Adds command-line arguments.
    pub fn args(mut self, args: &[&str]) -> Opts {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Sets `--fsync`.
    pub fn fsync(self, policy: &str) -> Opts {
        self.args(&["--fsync", policy])
    }

    /// Sets an environment variable of the node.
    pub fn env(mut self, key: &str, value: &str) -> Opts {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Unsets an environment variable set with [`Self::env`].
    pub fn without_env(mut self, key: &str) -> Opts {
        self.env.retain(|(k, _)| k != key);
        self
    }

    /// Listens on `addr` instead of an ephemeral port.
    pub fn addr(mut self, addr: &str) -> Opts {
        self.addr = addr.into();
        self
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.dir.as_deref().expect("a node with a data directory")
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_netdb"));
        cmd.arg(&self.name).arg(&self.addr);
        if let Some(dir) = &self.dir {
            cmd.arg("--data-dir").arg(dir);
        }
        cmd.args(&self.args)
            .env_remove("FAILPOINTS")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        cmd
    }

    /// Starts the node and waits until it listens; panics if it exits
    /// instead.
    pub fn start(&self) -> Node {
        self.try_start()
            .unwrap_or_else(|e| panic!("node {} did not start: {e}", self.name))
    }

    /// Starts the node and waits until it listens, or returns how it
    /// exited.
    pub fn try_start(&self) -> Result<Node, Exited> {
        let mut child = self.command().spawn().expect("spawn netdb");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = Lines::collect(child.stderr.take().expect("piped stderr"));
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut node = Node {
            name: self.name.clone(),
            child,
            stdin,
            replies,
            stderr,
            addr: None,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(line) = node
                .stderr
                .wait_for(POLL * 5, |l| l.contains("listening on "))
            {
                let addr = line
                    .split("listening on ")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| panic!("cannot parse the address in '{line}'"));
                node.addr = Some(addr);
                return Ok(node);
            }
            if let Some(status) = node.child.try_wait().expect("try_wait") {
                let stderr = node.stderr.wait_closed(EXIT_TIMEOUT);
                return Err(Exited { status, stderr });
            }
            assert!(
                Instant::now() < deadline,
                "node {} neither listened nor exited within {START_TIMEOUT:?}\n{}",
                self.name,
                show(&node.stderr.snapshot())
            );
        }
    }

    /// Like [`Self::start`], but retries while the port is in use (a
    /// restarted cluster member must get its old port back).
    pub fn start_retrying_port(&self) -> Node {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.try_start() {
                Ok(node) => return node,
                Err(e) if e.port_in_use() && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("node {} did not start: {e}", self.name),
            }
        }
    }
}

/// A node that exited: its status and everything it wrote on stderr.
#[derive(Debug)]
pub struct Exited {
    /// How it ended.
    pub status: ExitStatus,
    /// Its stderr, line by line.
    pub stderr: Vec<String>,
}

impl Exited {
    /// Whether it failed because its listen port was taken.
    pub fn port_in_use(&self) -> bool {
        self.stderr.iter().any(|l| l.contains("port is in use"))
    }
}

impl Display for Exited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exited with {}\n{}", self.status, show(&self.stderr))
    }
}

/// What came out of a node's stdout next.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// A reply line.
    Line(String),
    /// stdout closed: the node is gone.
    Closed,
}

/// A running `netdb` child process.
pub struct Node {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    replies: Receiver<String>,
    stderr: Arc<Lines>,
    addr: Option<SocketAddr>,
}

impl Node {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr.expect("a started node")
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it has written on stderr so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.snapshot()
    }

    /// Waits for a stderr line containing `text`; returns it.
    pub fn wait_stderr(&self, text: &str) -> String {
        self.stderr
            .wait_for(REPLY_TIMEOUT, |l| l.contains(text))
            .unwrap_or_else(|| {
                panic!(
                    "node {} never logged '{text}'\n{}",
                    self.name,
                    show(&self.stderr())
                )
            })
    }

    /// Hands over its stdin, for a test that writes from another thread.
    pub fn take_stdin(&mut self) -> ChildStdin {
        self.stdin.take().expect("stdin not taken yet")
    }

    /// Writes one command line without waiting for its reply; false if
    /// the node is gone (its stdin is closed).
    pub fn try_send(&mut self, line: &str) -> bool {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(format!("{line}\n").as_bytes()).is_ok()
    }

    /// Writes one command line without waiting for its reply.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        if let Err(e) = stdin.write_all(format!("{line}\n").as_bytes()) {
            panic!(
                "cannot write '{line}' to node {}: {e}\n{}",
                self.name,
                show(&self.stderr())
            );
        }
    }

    /// Writes several command lines with one write, so that the node reads
    /// them together and runs them as one batch.
    pub fn send_batch(&mut self, lines: &[&str]) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let stdin = self.stdin.as_mut().expect("stdin still open");
        if let Err(e) = stdin.write_all(text.as_bytes()) {
            panic!(
                "cannot write to node {}: {e}\n{}",
                self.name,
                show(&self.stderr())
            );
        }
    }

    /// The next stdout line, or `Closed`; panics after `REPLY_TIMEOUT`.
    pub fn next_reply(&mut self) -> Reply {
        match self.replies.recv_timeout(REPLY_TIMEOUT) {
            Ok(line) => Reply::Line(line),
            Err(RecvTimeoutError::Disconnected) => Reply::Closed,
            Err(RecvTimeoutError::Timeout) => panic!(
                "node {} gave no reply within {REPLY_TIMEOUT:?}\n{}",
                self.name,
                show(&self.stderr())
            ),
        }
    }

    /// The next reply line; panics if stdout closed.
    pub fn reply(&mut self) -> String {
        match self.next_reply() {
            Reply::Line(line) => line,
            Reply::Closed => panic!(
                "node {} closed stdout while a reply was due\n{}",
                self.name,
                show(&self.stderr.wait_closed(EXIT_TIMEOUT))
            ),
        }
    }

    /// Runs one command and returns its one-line reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(line);
        self.reply()
    }

    /// `put key value`, which must be stored.
    pub fn put(&mut self, key: &str, value: &str) {
        let reply = self.cmd(&format!("put {key} {value}"));
        assert_eq!(
            reply, "Value stored.",
            "put {key} {value} on node {}",
            self.name
        );
    }

    /// `delete key`, which must succeed.
    pub fn delete(&mut self, key: &str) {
        let reply = self.cmd(&format!("delete {key}"));
        assert_eq!(reply, "Key deleted.", "delete {key} on node {}", self.name);
    }

    /// `get key`: the value, or `None` when the key is not found.
    pub fn get(&mut self, key: &str) -> Option<String> {
        let reply = self.cmd(&format!("get {key}"));
        parse_get(&reply, key)
    }

    /// `get` of every key in `keys` (sent together): each value or `None`.
    pub fn get_all(&mut self, keys: &[String]) -> Vec<Option<String>> {
        for k in keys {
            self.send(&format!("get {k}"));
        }
        keys.iter().map(|k| parse_get(&self.reply(), k)).collect()
    }

    /// `status`: its reply, `lines` lines long (two, and one per peer).
    pub fn status(&mut self, lines: usize) -> Vec<String> {
        self.send("status");
        (0..lines).map(|_| self.reply()).collect()
    }

    /// How many stderr lines so far contain `text`.
    pub fn count_stderr(&self, text: &str) -> usize {
        self.stderr().iter().filter(|l| l.contains(text)).count()
    }

    /// Sends SIGKILL and reaps the process; returns its stderr.
    pub fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for a killed node");
        assert_eq!(
            status.signal(),
            Some(9),
            "node {} was expected to die of SIGKILL, but {status}\n{}",
            self.name,
            show(&self.stderr())
        );
        self.stderr.wait_closed(EXIT_TIMEOUT)
    }

    /// Closes stdin (end of input: a clean stop) and waits for the exit.
    pub fn stop(mut self) -> Exited {
        self.stdin.take();
        self.wait_exit()
    }

    /// Waits (at most `EXIT_TIMEOUT`) for the process to end by itself.
    pub fn wait_exit(mut self) -> Exited {
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let stderr = self.stderr.wait_closed(EXIT_TIMEOUT);
                return Exited { status, stderr };
            }
            assert!(
                Instant::now() < deadline,
                "node {} did not exit within {EXIT_TIMEOUT:?}\n{}",
                self.name,
                show(&self.stderr())
            );
            std::thread::sleep(POLL);
        }
    }

    /// Sends SIGTERM (with the `kill` command, so the tests need no
    /// unsafe code) and waits for the exit.
    pub fn terminate(self) -> Exited {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
        self.wait_exit()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a `get` reply: `Value: v` or `Key not found.`.
pub fn parse_get(reply: &str, key: &str) -> Option<String> {
    if reply == "Key not found." {
        return None;
    }
    match reply.strip_prefix("Value: ") {
        Some(v) => Some(v.to_owned()),
        None => panic!("unexpected reply to get {key}: '{reply}'"),
    }
}

/// Nodes that list each other as peers, each with its own data directory,
/// on reserved ports (started again on fresh ones if a port was taken).
pub struct Cluster {
    /// The nodes that are running (`None` while one is down).
    pub nodes: Vec<Option<Node>>,
    opts: Vec<Opts>,
    _peers_dir: TempDir,
    _dirs: Vec<TempDir>,
}

impl Cluster {
    /// Starts `n` nodes `n0`, `n1`... with `extra` arguments and a fast
    /// sync interval.
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        Cluster::start_with(n, extra, |_, opts| opts)
    }

    /// [`Self::start`], with node `i` started as `customize(i, opts)`.
    pub fn start_with(
        n: usize,
        extra: &[&str],
        customize: impl Fn(usize, Opts) -> Opts,
    ) -> Cluster {
        let peers_dir = temp_dir();
        let peers = peers_dir.path().join("peers");
        let dirs: Vec<TempDir> = (0..n).map(|_| temp_dir()).collect();
        for _ in 0..PORT_ATTEMPTS {
            let ports: Vec<u16> = (0..n).map(|_| reserve_port()).collect();
            let list: String = ports.iter().map(|p| format!("127.0.0.1:{p}\n")).collect();
            std::fs::write(&peers, list).expect("write the peers file");
            let interval = FAST_SYNC_MS.to_string();
            let opts: Vec<Opts> = (0..n)
                .map(|i| {
                    let mut args = vec![
                        peers.to_str().expect("utf-8 temp path"),
                        "--sync-interval-ms",
                        &interval,
                    ];
                    args.extend_from_slice(extra);
                    let opts = Opts::new(&format!("n{i}"), dirs[i].path())
                        .addr(&format!("127.0.0.1:{}", ports[i]))
                        .args(&args);
                    customize(i, opts)
                })
                .collect();
            let mut nodes = Vec::new();
            let mut taken = false;
            for o in &opts {
                match o.try_start() {
                    Ok(node) => nodes.push(Some(node)),
                    Err(e) if e.port_in_use() => {
                        taken = true;
                        break;
                    }
                    Err(e) => panic!("cluster node did not start: {e}"),
                }
            }
            if !taken {
                return Cluster {
                    nodes,
                    opts,
                    _peers_dir: peers_dir,
                    _dirs: dirs,
                };
            }
        }
        panic!("no free ports after {PORT_ATTEMPTS} attempts");
    }

    /// The options node `i` is started with.
    pub fn opts_of(&self, i: usize) -> Opts {
        self.opts[i].clone()
    }

    /// The data directory of node `i`.
    pub fn dir(&self, i: usize) -> &Path {
        self.opts[i].dir()
    }

    /// Node `i`, which must be running.
    pub fn node(&mut self, i: usize) -> &mut Node {
        self.nodes[i].as_mut().expect("node is running")
    }

    /// Kills node `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].take().expect("node is running").kill();
    }

    /// Starts node `i` again on its port with its data directory.
    pub fn restart(&mut self, i: usize) -> &mut Node {
        assert!(self.nodes[i].is_none(), "node {i} is still running");
        self.nodes[i] = Some(self.opts[i].start_retrying_port());
        self.node(i)
    }

    /// Starts node `i` again on its port with its data directory, with
    /// its options changed by `change` from now on.
    pub fn restart_with(&mut self, i: usize, change: impl FnOnce(Opts) -> Opts) -> &mut Node {
        self.opts[i] = change(self.opts[i].clone());
        self.restart(i)
    }

    /// Waits until nodes `a` and `b` hold the same values for `keys`;
    /// returns them.
    pub fn converge(&mut self, a: usize, b: usize, keys: &[String]) -> Vec<Option<String>> {
        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        loop {
            let va = self.node(a).get_all(keys);
            let vb = self.node(b).get_all(keys);
            if va == vb {
                return va;
            }
            assert!(
                Instant::now() < deadline,
                "nodes {a} and {b} did not converge within {CONVERGE_TIMEOUT:?}:\n{va:?}\n{vb:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The kinds of file in a data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `snapshot-<gen>`
    Snapshot,
    /// `log-<gen>`
    Log,
}

/// The `log-<gen>` and `snapshot-<gen>` files of `dir`, by generation.
pub fn data_files(dir: &Path) -> Vec<(u64, Kind, PathBuf)> {
    let mut files: Vec<(u64, Kind, PathBuf)> = file_names(dir)
        .into_iter()
        .filter_map(|name| {
            let (kind, gen) = if let Some(g) = name.strip_prefix("log-") {
                (Kind::Log, g)
            } else {
                (Kind::Snapshot, name.strip_prefix("snapshot-")?)
            };
            let gen = gen.parse().ok()?;
            Some((gen, kind, dir.join(&name)))
        })
        .collect();
    files.sort();
    files
}

/// Every file name in `dir`, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list the data directory")
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .into_string()
                .expect("utf-8 file name")
        })
        .collect();
    names.sort();
    names
}

/// The newest `log-<gen>` of `dir`.
pub fn last_log(dir: &Path) -> (u64, PathBuf) {
    data_files(dir)
        .into_iter()
        .filter(|(_, k, _)| *k == Kind::Log)
        .map(|(g, _, p)| (g, p))
        .next_back()
        .expect("a log file")
}

/// The highest generation of any log or snapshot in `dir`.
pub fn max_gen(dir: &Path) -> u64 {
    data_files(dir)
        .iter()
        .map(|(g, _, _)| *g)
        .max()
        .unwrap_or(0)
}

/// Whole records of a log's bytes, as ranges including the header; panics
/// if the bytes do not end with a whole record.
pub fn record_spans(data: &[u8]) -> Vec<std::ops::Range<usize>> {
    let scan = netdb::durability::record::scan(data, usize::MAX);
    assert_eq!(
        scan.end,
        netdb::durability::record::End::Clean,
        "a clean log"
    );
    scan.records
        .into_iter()
        .map(|r| r.start - netdb::durability::record::HEADER_LEN..r.end)
        .collect()
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
