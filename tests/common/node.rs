//! A `netdb` node as a child process: how to start it ([`NodeSpec`]) and
//! the peers file it reads ([`write_peers_file`]), and the running
//! [`Node`], spoken to over stdin and stdout like a person at its console,
//! watched through its log on stderr, stopped cleanly or killed, and
//! started again from the same spec. Also `netdb` runs that are left to
//! finish ([`run_netdb`]).

use super::output::show;
use super::ports::{on_free_ports, PortTaken};
use super::process::{lines, run, Exited, Input, Process, Stream, EXIT_TIMEOUT};
use super::wait::eventually_ok;
use std::ffi::{OsStr, OsString};
use std::fmt::Display;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus};
use std::time::{Duration, Instant};

/// How long a node may take to print its `listening on` line (a debug
/// build on a busy two-core machine).
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a command may take to answer. `sync` waits up to 5 s for its
/// peers, so this is comfortably above that.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(15);

/// The fail points of the binary (built with `--features failpoints`): a
/// node gets them only when its spec sets them, never from the environment
/// the tests run in.
const TEST_HOOKS: [&str; 1] = ["FAILPOINTS"];

/// The path of the `netdb` binary cargo built for these tests or benches.
pub fn netdb_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_netdb"))
}

/// A command running the `netdb` binary at `bin`, with backtraces on (a
/// panic must show) and no test hook from the environment.
fn command(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("RUST_BACKTRACE", "1");
    for hook in TEST_HOOKS {
        cmd.env_remove(hook);
    }
    cmd
}

/// A command running the `netdb` binary built for these tests.
pub fn netdb_command() -> Command {
    command(&netdb_bin())
}

/// Panics if `stderr` shows a panic: a node must fail with a message.
pub fn assert_no_panic(stderr: &[String]) {
    assert!(
        !stderr
            .iter()
            .any(|l| { l.contains("panicked") || l.to_ascii_lowercase().contains("backtrace") }),
        "the process panicked\n{}",
        show(stderr)
    );
}

/// Writes a peers file listing `entries` (addresses, or any `host:port`
/// as a person may spell it), with a comment and a blank line as a person
/// would.
pub fn write_peers_file(path: &Path, entries: &[impl Display]) {
    let mut text = String::from("# netdb test cluster\n\n");
    for entry in entries {
        text.push_str(&format!("{entry}\n"));
    }
    std::fs::write(path, text).expect("write the peers file");
}

/// How to start a node: its name and address, peers file, data
/// directory, options and environment.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    name: String,
    addr: SocketAddr,
    peers_file: Option<PathBuf>,
    peer_count: usize,
    data_dir: Option<PathBuf>,
    cwd: Option<PathBuf>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    bin: PathBuf,
    uid: Option<u32>,
}

impl NodeSpec {
    /// A node called `name` on a port the OS picks (`127.0.0.1:0`), with
    /// no peers and no data directory (`--in-memory`, unless told
    /// otherwise: a default `./NAME` directory would outlive the test).
    pub fn new(name: &str) -> NodeSpec {
        NodeSpec {
            name: name.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            peers_file: None,
            peer_count: 0,
            data_dir: None,
            cwd: None,
            args: Vec::new(),
            env: Vec::new(),
            bin: netdb_bin(),
            uid: None,
        }
    }

    /// Listens on `addr`.
    pub fn listen(mut self, addr: SocketAddr) -> NodeSpec {
        self.addr = addr;
        self
    }

    /// Reads its peers from `file`, which lists `count` peers besides
    /// this node (so `status` answers with `3 + count` lines).
    pub fn peers(mut self, file: &Path, count: usize) -> NodeSpec {
        self.peers_file = Some(file.to_owned());
        self.peer_count = count;
        self
    }

    /// Reads its peers from a file of its own, written in `dir` and named
    /// after its port, that lists `entries` (addresses, or any `host:port`
    /// as a person may spell it), of which it counts `count` as peers when
    /// it starts (the others spell its own address, and it skips them).
    /// Set its address first.
    pub fn peers_listing(self, dir: &Path, entries: &[impl Display], count: usize) -> NodeSpec {
        assert_ne!(
            self.addr.port(),
            0,
            "{}: a peers file named after the port wants a reserved port",
            self.name
        );
        let file = dir.join(format!("peers-{}.txt", self.addr.port()));
        write_peers_file(&file, entries);
        self.peers(&file, count)
    }

    /// Keeps its data in `dir` (`--data-dir`).
    pub fn data_dir(mut self, dir: &Path) -> NodeSpec {
        self.data_dir = Some(dir.to_owned());
        self
    }

    /// Runs in working directory `dir` (where a default data directory
    /// would go).
    pub fn cwd(mut self, dir: &Path) -> NodeSpec {
        self.cwd = Some(dir.to_owned());
        self
    }

    /// Adds command-line arguments.
    pub fn args(mut self, args: &[&str]) -> NodeSpec {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Syncs every `ms` milliseconds (`--sync-interval-ms`).
    pub fn sync_every(self, ms: u64) -> NodeSpec {
        self.args(&["--sync-interval-ms", &ms.to_string()])
    }

    /// Sets `--fsync`.
    pub fn fsync(self, policy: &str) -> NodeSpec {
        self.args(&["--fsync", policy])
    }

    /// Sets an environment variable of the node (a test hook).
    pub fn env(mut self, key: &str, value: &str) -> NodeSpec {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Unsets an environment variable set with [`Self::env`].
    pub fn without_env(mut self, key: &str) -> NodeSpec {
        self.env.retain(|(k, _)| k != key);
        self
    }

    /// Runs the `netdb` binary at `bin` instead of the one cargo built (a
    /// bench comparing two builds).
    pub fn bin(mut self, bin: &Path) -> NodeSpec {
        self.bin = bin.to_owned();
        self
    }

    /// Runs as user and group `uid` (the test must be root): its sockets
    /// are then told apart from every other node's by `meta skuid`, which
    /// is how [`super::Net`] cuts it off. Its data directory, if any, must
    /// belong to that uid.
    pub fn run_as(mut self, uid: u32) -> NodeSpec {
        self.uid = Some(uid);
        self
    }

    /// The uid it runs as, if not the test's own.
    pub fn uid(&self) -> Option<u32> {
        self.uid
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many peers its peers file lists besides itself.
    pub fn peer_count(&self) -> usize {
        self.peer_count
    }

    /// Its data directory; panics if it keeps its data in memory.
    pub fn dir(&self) -> &Path {
        self.data_dir
            .as_deref()
            .unwrap_or_else(|| panic!("{} has no data directory", self.name))
    }

    /// Its data directory, if it keeps one.
    pub fn data_dir_if_any(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// The command-line arguments.
    fn command_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![self.name.clone().into(), self.addr.to_string().into()];
        if let Some(file) = &self.peers_file {
            args.push(file.into());
        }
        if let Some(dir) = &self.data_dir {
            args.extend(["--data-dir".into(), dir.into()]);
        }
        args.extend(self.args.iter().map(OsString::from));
        in_memory_unless_told(&mut args);
        args
    }

    /// Starts the node and waits until it listens, or returns how it
    /// exited instead; panics if it does neither in [`START_TIMEOUT`].
    pub fn try_start(&self) -> Result<Node, Exited> {
        let mut cmd = command(&self.bin);
        cmd.args(self.command_args())
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        if let Some(uid) = self.uid {
            // Dropping root this way also drops its supplementary groups.
            cmd.uid(uid).gid(uid);
        }
        let mut process = Process::spawn(&self.name, &mut cmd);
        let listening = process.wait_line(Stream::Stderr, START_TIMEOUT, |l| {
            l.contains("listening on ")
        });
        let Some(line) = listening else {
            if process.stderr_closed() {
                return Err(process.wait_exit(EXIT_TIMEOUT));
            }
            let stderr = process.kill().stderr;
            panic!(
                "{} neither listened nor exited within {START_TIMEOUT:?}\n{}",
                self.name,
                show(&stderr)
            );
        };
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Ok(Node {
            spec: self.clone(),
            addr,
            process,
        })
    }

    /// Starts the node and waits until it listens; panics if it exits
    /// instead. While its port is taken (a node restarted on its old port
    /// that another process took meanwhile) it tries again, for at most
    /// [`START_TIMEOUT`].
    pub fn start(&self) -> Node {
        eventually_ok(
            START_TIMEOUT,
            format_args!("{} to start while its port is taken", self.name),
            || match self.try_start() {
                Err(e) if e.port_in_use() => Err(e),
                Err(e) => panic!("{} did not start: {e}", self.name),
                started => started,
            },
        )
    }

    /// Starts the node once; `Err` if its port was taken.
    fn start_unless_port_taken(&self) -> Result<Node, PortTaken> {
        match self.try_start() {
            Ok(node) => Ok(node),
            Err(e) if e.port_in_use() => Err(PortTaken { stderr: e.stderr }),
            Err(e) => panic!("{} did not start: {e}", self.name),
        }
    }
}

/// Nodes keep nothing on disk unless told: a default `./NAME` directory
/// would outlive the test.
fn in_memory_unless_told(args: &mut Vec<OsString>) {
    if !args.iter().any(|a| a == "--data-dir" || a == "--in-memory") {
        args.push("--in-memory".into());
    }
}

/// Starts `n` nodes on fresh loopback ports, with the specs `make` builds
/// from those addresses (it may write peers files), again on new ports
/// when one turns out to be taken.
pub fn start_all(n: usize, mut make: impl FnMut(&[SocketAddr]) -> Vec<NodeSpec>) -> Vec<Node> {
    on_free_ports(n, |addrs| {
        make(addrs)
            .iter()
            .map(NodeSpec::start_unless_port_taken)
            .collect()
    })
}

/// A running `netdb` child, killed when dropped.
pub struct Node {
    spec: NodeSpec,
    addr: SocketAddr,
    process: Process,
}

/// A node alone, named `solo`, serving Redis clients only (no console),
/// with `args`.
pub fn solo(args: &[&str]) -> Node {
    NodeSpec::new("solo")
        .args(&["--no-cli"])
        .sync_every(super::FAST_SYNC_MS)
        .args(args)
        .start()
}

impl Node {
    /// A node called `name` alone (no peers, in memory) with `args`.
    pub fn alone(name: &str, args: &[&str]) -> Node {
        NodeSpec::new(name).args(args).start()
    }

    /// How it was started.
    pub fn spec(&self) -> &NodeSpec {
        &self.spec
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Writes raw bytes to its stdin (no newline added); false if it no
    /// longer reads them.
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> bool {
        self.process.write(bytes).is_ok()
    }

    /// Writes raw bytes to its stdin (no newline added).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        if let Err(e) = self.process.write(bytes) {
            panic!(
                "cannot write to {}'s stdin: {e}\n{}",
                self.name(),
                show(&self.stderr_lines())
            );
        }
    }

    /// Writes one command line without waiting for its reply.
    pub fn send(&mut self, line: &str) {
        self.send_lines(&[line]);
    }

    /// Writes one command line; false if it no longer reads (it died).
    pub fn try_send(&mut self, line: &str) -> bool {
        self.try_send_raw(format!("{line}\n").as_bytes())
    }

    /// Writes command lines with one write, so that the node reads them
    /// together: thousands of commands cost one pipe write, not one round
    /// trip each.
    pub fn send_lines(&mut self, lines: &[impl AsRef<str>]) {
        let mut text = String::with_capacity(lines.iter().map(|l| l.as_ref().len() + 1).sum());
        for line in lines {
            text.push_str(line.as_ref());
            text.push('\n');
        }
        self.send_raw(text.as_bytes());
    }

    /// Hands over its stdin, for a test that writes from another thread.
    pub fn take_stdin(&mut self) -> ChildStdin {
        self.process.take_stdin()
    }

    /// Closes its stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.process.close_stdin();
    }

    /// The next stdout line, or `None` if stdout closed (the node is
    /// gone); panics after [`REPLY_TIMEOUT`].
    pub fn next_reply(&mut self) -> Option<String> {
        self.process.next_line(REPLY_TIMEOUT)
    }

    /// The next stdout line; panics if none comes within `within`.
    pub fn read_line(&mut self, within: Duration) -> String {
        self.process.next_line(within).unwrap_or_else(|| {
            panic!(
                "{} closed stdout while a line was due\n{}",
                self.name(),
                show(&self.process.final_stderr())
            )
        })
    }

    /// The next reply line; panics if none comes within [`REPLY_TIMEOUT`].
    pub fn reply(&mut self) -> String {
        self.read_line(REPLY_TIMEOUT)
    }

    /// Runs a command that answers with one line, and returns that line.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(line);
        self.reply()
    }

    /// Runs a command that answers with `n` lines, and returns them.
    pub fn cmd_lines(&mut self, line: &str, n: usize) -> Vec<String> {
        self.send(line);
        let deadline = Instant::now() + REPLY_TIMEOUT;
        (0..n)
            .map(|_| self.read_line(deadline.saturating_duration_since(Instant::now())))
            .collect()
    }

    /// `put key value`, which must be stored.
    pub fn put(&mut self, key: &str, value: &str) {
        let reply = self.cmd(&format!("put {key} {value}"));
        assert_eq!(
            reply,
            "Value stored.",
            "put {key} {value} on {}",
            self.name()
        );
    }

    /// `delete key`, which must succeed.
    pub fn delete(&mut self, key: &str) {
        let reply = self.cmd(&format!("delete {key}"));
        assert_eq!(reply, "Key deleted.", "delete {key} on {}", self.name());
    }

    /// `get key`: the value, or `None` when the key is not found.
    pub fn get(&mut self, key: &str) -> Option<String> {
        let reply = self.cmd(&format!("get {key}"));
        parse_get(&reply, key)
    }

    /// `get` of every key in `keys` (sent together): each value or `None`.
    pub fn get_all(&mut self, keys: &[String]) -> Vec<Option<String>> {
        let gets: Vec<String> = keys.iter().map(|k| format!("get {k}")).collect();
        self.send_lines(&gets);
        keys.iter().map(|k| parse_get(&self.reply(), k)).collect()
    }

    /// The lines of `status`: the node, the counts, one per peer (or
    /// `peers: none`), and the digest.
    ///
    /// The `member ...` lines (see [`Self::member_lines`]) are left out,
    /// so that the others keep their places.
    pub fn status(&mut self) -> Vec<String> {
        let n = 3 + self.spec.peer_count.max(1);
        let mut lines = self.cmd_lines("status", n);
        // The member lines come before the digest, which ends the status.
        while !lines.last().is_some_and(|l| l.starts_with("digest: ")) {
            lines.push(self.reply());
        }
        lines.retain(|l| !l.starts_with("member "));
        lines
    }

    /// The `member ...` lines of `status`: every member as this node sees
    /// it, itself first.
    pub fn member_lines(&mut self) -> Vec<String> {
        let mut lines = self.status_now();
        lines.retain(|l| l.starts_with("member "));
        lines
    }

    /// The lines of `status`, however many peers it shows right now (an
    /// entry found to be the node itself drops out as it runs, so the
    /// count its spec gives may not hold): a `get` of a key no test
    /// writes, sent with it, marks their end.
    pub fn status_now(&mut self) -> Vec<String> {
        self.send_lines(&["status", "get status-ends-here"]);
        let mut lines = Vec::new();
        loop {
            match self.reply() {
                end if end == "Key not found." => return lines,
                line => lines.push(line),
            }
        }
    }

    /// The `peer ...` lines of [`Self::status_now`]: the peers it counts
    /// right now.
    pub fn peer_lines(&mut self) -> Vec<String> {
        let mut lines = self.status_now();
        lines.retain(|l| l.starts_with("peer "));
        lines
    }

    /// The digest `status` shows (its `digest: ` line).
    pub fn digest(&mut self) -> String {
        let status = self.status_now();
        status
            .iter()
            .find_map(|l| l.strip_prefix("digest: "))
            .unwrap_or_else(|| panic!("{}: no digest line in status {status:?}", self.name()))
            .to_owned()
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
        let name = self.name().to_owned();
        eventually_ok(
            within,
            format_args!("{name}: `{line}` to answer {want:?}"),
            || match self.cmd(line) {
                got if got == want => Ok(()),
                got => Err(format!("{got:?}")),
            },
        );
    }

    /// Everything it has written to stderr so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.process.stderr_lines()
    }

    /// How many stderr lines so far contain `text`.
    pub fn count_stderr(&self, text: &str) -> usize {
        self.stderr_lines()
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }

    /// Waits for a stderr line containing `text`; returns it.
    pub fn wait_log(&self, text: &str, within: Duration) -> String {
        self.process
            .wait_line(Stream::Stderr, within, |l| l.contains(text))
            .unwrap_or_else(|| {
                panic!(
                    "{}: no stderr line containing {text:?} within {within:?}\n{}",
                    self.name(),
                    show(&self.stderr_lines())
                )
            })
    }

    /// Waits until stdout is closed and returns the lines left on it.
    pub fn rest_of_stdout(&mut self, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut rest = Vec::new();
        while let Some(line) = self
            .process
            .next_line(deadline.saturating_duration_since(Instant::now()))
        {
            rest.push(line);
        }
        rest
    }

    /// The lines already on stdout that no command has read, without
    /// waiting for more.
    pub fn rest_of_stdout_now(&mut self) -> Vec<String> {
        self.process.unread_lines()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// CPU time it has used so far (see [`Process::cpu_secs`]).
    pub fn cpu_secs(&self) -> Option<f64> {
        self.process.cpu_secs()
    }

    /// Waits for the process to end by itself; panics after
    /// [`EXIT_TIMEOUT`].
    pub fn wait_exit(&mut self) -> Exited {
        self.process.wait_exit(EXIT_TIMEOUT)
    }

    /// Closes stdin (end of input: a clean stop) and waits for the exit.
    pub fn stop(&mut self) -> Exited {
        self.close_stdin();
        self.wait_exit()
    }

    /// Sends the signal `name` (`TERM`, `INT` ...), without waiting.
    pub fn signal(&self, name: &str) {
        self.process.signal(name);
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> Exited {
        self.signal("TERM");
        self.wait_exit()
    }

    /// Kills the process with SIGKILL, as a crash would, and reaps it;
    /// panics if it had ended some other way before.
    pub fn kill(&mut self) -> Exited {
        let exited = self.process.kill();
        assert_eq!(
            exited.signal(),
            Some(9),
            "{} was expected to die of SIGKILL, but {exited}",
            self.name()
        );
        exited
    }

    /// Kills the node (if it still runs) and starts it again from its
    /// spec: same name, address, peers and data directory.
    pub fn restart(&mut self) -> &mut Node {
        self.restart_with(|spec| spec)
    }

    /// [`Self::restart`], with its spec changed by `change` from now on.
    pub fn restart_with(&mut self, change: impl FnOnce(NodeSpec) -> NodeSpec) -> &mut Node {
        self.process.kill();
        let mut spec = change(self.spec.clone());
        if spec.addr.port() == 0 {
            // Its peers, and the test, know it by the port it got.
            spec.addr = self.addr;
        }
        *self = spec.start();
        self
    }
}

/// Reads a `get` reply: `Value: v` or `Key not found.`.
fn parse_get(reply: &str, key: &str) -> Option<String> {
    if reply == "Key not found." {
        return None;
    }
    match reply.strip_prefix("Value: ") {
        Some(v) => Some(v.to_owned()),
        None => panic!("unexpected reply to get {key}: {reply:?}"),
    }
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

/// Runs `netdb` with `args` (and `--in-memory`, unless told where its data
/// goes) to completion, with `input` on stdin.
pub fn run_netdb(args: &[impl AsRef<OsStr>], input: Input, within: Duration) -> Finished {
    let mut args: Vec<OsString> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    in_memory_unless_told(&mut args);
    let done = run(netdb_command().args(&args), input, within);
    Finished {
        status: done.status,
        stdout: lines(&done.stdout),
        stderr: lines(&done.stderr),
    }
}
