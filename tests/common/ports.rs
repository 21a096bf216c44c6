//! Loopback ports for processes that must know their addresses before
//! they start (cluster members list each other), and connections to them.
//! A node alone needs no reserved port: it listens on `127.0.0.1:0` and
//! says which port it got.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// How many sets of fresh ports a start is tried on before giving up.
const ATTEMPTS: usize = 5;

/// A process could not start because a port picked for it was taken in
/// the meantime; worth another try on new ones.
#[derive(Debug)]
pub struct PortTaken {
    /// What the process said.
    pub stderr: Vec<String>,
}

/// `n` loopback addresses nothing listens on right now: each port was
/// bound on `127.0.0.1:0` and let go (all at once, so they differ).
/// Another process may take one before it is used: start through
/// [`on_free_ports`] to retry then.
pub fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("a bound listener's address"))
        .collect()
}

/// A loopback address with no listener behind it (a dead peer), and none
/// to come: on 127.0.0.2, where no test's node listens (they all listen on
/// 127.0.0.1), so a port that another test takes meanwhile for a node of
/// its own cannot make the dead peer answer (it would answer with that
/// node's name, a twin if the names match).
pub fn dead_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.2:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port on 127.0.0.2")
}

/// Calls `start` with `n` fresh loopback addresses until it does not
/// find one of them taken; panics after a few tries.
pub fn on_free_ports<T>(
    n: usize,
    mut start: impl FnMut(&[SocketAddr]) -> Result<T, PortTaken>,
) -> T {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        match start(&free_addrs(n)) {
            Ok(started) => return started,
            Err(taken) => last = Some(taken),
        }
    }
    panic!("ports were taken before use {ATTEMPTS} times in a row; last: {last:?}");
}

/// A TCP connection to `addr` whose reads and writes give up after
/// `timeout` (as an error: a test that waits on it fails, never hangs).
pub fn connect(addr: SocketAddr, timeout: Duration) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .expect("set socket timeouts");
    stream
}
