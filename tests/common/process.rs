//! Child processes: started with every stream piped, their output
//! collected as it comes, killed and reaped when dropped so that a failing
//! test leaves nothing behind; and programs run to completion with a
//! deadline.

use super::output::{show, Line, Output};
use super::wait::eventually_ok;
use std::fmt::{self, Display};
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// How long a process may take to exit once it must, and its streams to
/// close after it has.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

/// A process that ended: how, and everything it wrote on stderr.
#[derive(Debug)]
pub struct Exited {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its stderr, line by line.
    pub stderr: Vec<String>,
}

impl Exited {
    /// Whether it failed because its listen port was taken (netdb says
    /// so in one line; redis-server in another).
    pub fn port_in_use(&self) -> bool {
        self.stderr
            .iter()
            .any(|l| l.contains("port is in use") || l.contains("Address already in use"))
    }

    /// Whether a signal ended it, and which.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }
}

impl Display for Exited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exited with {}\n{}", self.status, show(&self.stderr))
    }
}

/// A child process, killed and reaped when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running child with piped stdin, stdout and stderr.
pub struct Process {
    name: String,
    child: Reaped,
    stdin: Option<ChildStdin>,
    stdout: Arc<Output>,
    stderr: Arc<Output>,
    /// The next stdout line [`Process::next_line`] hands out.
    read: usize,
    /// Set once the child is reaped.
    exited: Option<ExitStatus>,
}

impl Process {
    /// Starts `cmd` as `name` (which names it in messages and names its
    /// reader threads).
    pub fn spawn(name: &str, cmd: &mut Command) -> Process {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        Process {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            stdout: Output::collect(stdout, format!("{name}-stdout")),
            stderr: Output::collect(stderr, format!("{name}-stderr")),
            child: Reaped(child),
            read: 0,
            exited: None,
        }
    }

    /// The name it was given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Its stdin, for a test that writes from another thread.
    pub fn take_stdin(&mut self) -> ChildStdin {
        self.stdin.take().expect("stdin not taken or closed yet")
    }

    /// Closes its stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Writes `bytes` to its stdin; an error if it no longer reads.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let name = &self.name;
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("{name}: stdin already closed"));
        stdin.write_all(bytes).and_then(|()| stdin.flush())
    }

    /// The next stdout line no one has read, waiting at most `within`;
    /// `None` if stdout ended first. Panics after `within`.
    pub fn next_line(&mut self, within: Duration) -> Option<String> {
        match self.stdout.line(self.read, within) {
            Line::Here(line) => {
                self.read += 1;
                Some(line)
            }
            Line::Closed => None,
            Line::TimedOut => panic!(
                "{}: no line on stdout within {within:?}\n{}",
                self.name,
                show(&self.stderr_lines())
            ),
        }
    }

    /// The stdout lines no one has read, without waiting for more.
    pub fn unread_lines(&mut self) -> Vec<String> {
        let rest = self.stdout.lines_from(self.read);
        self.read += rest.len();
        rest
    }

    /// Everything it has written on stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lines()
    }

    /// Everything it has written on stderr so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lines()
    }

    /// Whether its stderr has ended (it is gone, or about to be).
    pub fn stderr_closed(&self) -> bool {
        self.stderr.is_closed()
    }

    /// Its stderr once closed (waiting at most [`EXIT_TIMEOUT`]), or as far
    /// as it got.
    pub fn final_stderr(&self) -> Vec<String> {
        self.stderr.wait_closed(EXIT_TIMEOUT).0
    }

    /// Waits at most `within` for a line on `stream` that satisfies
    /// `wanted`; `None` if the stream ended or the time passed first.
    pub fn wait_line(
        &self,
        stream: Stream,
        within: Duration,
        wanted: impl FnMut(&str) -> bool,
    ) -> Option<String> {
        match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        }
        .wait_for(within, wanted)
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.try_exit().is_none()
    }

    fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.0.try_wait().expect("try_wait");
        }
        self.exited
    }

    /// How it ended, once its stderr is closed too.
    fn exited(&self, status: ExitStatus) -> Exited {
        let (stderr, closed) = self.stderr.wait_closed(EXIT_TIMEOUT);
        assert!(closed, "{}: stderr still open after it exited", self.name);
        Exited { status, stderr }
    }

    /// Waits for it to end by itself; panics after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Exited {
        let name = self.name.clone();
        let stderr = Arc::clone(&self.stderr);
        let status = eventually_ok(within, format_args!("{name} to exit"), || {
            self.try_exit().ok_or_else(|| show(&stderr.lines()))
        });
        self.exited(status)
    }

    /// Sends SIGKILL (if it still runs), reaps it, and says how it ended.
    pub fn kill(&mut self) -> Exited {
        if self.try_exit().is_none() {
            let _ = self.child.0.kill();
            self.exited = Some(self.child.0.wait().expect("wait for a killed process"));
        }
        self.exited(self.exited.expect("reaped"))
    }

    /// Sends the signal `name` (`TERM`, `INT` ...) with the `kill` command,
    /// so the tests need no unsafe code.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// CPU time (user and system) it has used so far, from `/proc` (Linux;
    /// `None` elsewhere): on a busy machine a steadier measure of the work
    /// done than the wall clock.
    pub fn cpu_secs(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        // The fields after the command name, which is in parentheses.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        // USER_HZ is 100 on Linux.
        Some(ticks / 100.0)
    }
}

/// Which output stream of a process.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    /// stdout
    Stdout,
    /// stderr
    Stderr,
}

/// What a program run to completion reads on stdin.
pub enum Input {
    /// Nothing: stdin is `/dev/null`.
    Null,
    /// A file.
    File(std::fs::File),
    /// These bytes, written by a thread of their own while the program
    /// runs, then end of input.
    Bytes(Vec<u8>),
}

/// Runs `cmd` to completion with `input` on stdin and returns its exit
/// status and output; panics (after killing it) if it runs longer than
/// `within`.
pub fn run(cmd: &mut Command, input: Input, within: Duration) -> std::process::Output {
    let mut feed = None;
    match input {
        Input::Null => cmd.stdin(Stdio::null()),
        Input::File(f) => cmd.stdin(Stdio::from(f)),
        Input::Bytes(bytes) => {
            feed = Some(bytes);
            cmd.stdin(Stdio::piped())
        }
    };
    let mut child = Reaped(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}")),
    );
    let feeder = feed.map(|bytes| {
        let mut stdin = child.0.stdin.take().expect("piped stdin");
        // A program may stop reading early (`quit`): not an error here.
        std::thread::spawn(move || drop(stdin.write_all(&bytes)))
    });
    let read_all = |mut from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = from.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = read_all(Box::new(child.0.stdout.take().expect("piped stdout")));
    let stderr = read_all(Box::new(child.0.stderr.take().expect("piped stderr")));
    let status = eventually_ok(within, format_args!("{cmd:?} to finish"), || {
        child.0.try_wait().expect("try_wait").ok_or("")
    });
    if let Some(feeder) = feeder {
        feeder.join().expect("stdin feeder");
    }
    std::process::Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// `bytes` as lines without their line ends, as [`Output`] keeps them.
pub fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| l.trim_end_matches('\r').to_owned())
        .collect()
}
