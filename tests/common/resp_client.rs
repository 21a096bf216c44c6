//! Talking Redis (RESP) to a node, or to redis-server: through the Redis
//! client library, or over a raw socket for bytes no library would send.

use super::ports::connect;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a RESP reply may take: a pipeline of fifty 1000-key MSETs on
/// a busy machine, or a request the node refuses to finish reading.
pub const RESP_TIMEOUT: Duration = Duration::from_secs(30);

/// The `redis://` URL of `addr`.
pub fn redis_url(addr: SocketAddr) -> String {
    format!("redis://{addr}/")
}

/// A Redis client library connection to `addr`, with [`RESP_TIMEOUT`] on
/// every reply.
pub fn redis_connection(addr: SocketAddr) -> redis::Connection {
    let con = redis::Client::open(redis_url(addr))
        .and_then(|client| client.get_connection_with_timeout(RESP_TIMEOUT))
        .unwrap_or_else(|e| panic!("a Redis connection to {addr}: {e}"));
    con.set_read_timeout(Some(RESP_TIMEOUT))
        .and_then(|()| con.set_write_timeout(Some(RESP_TIMEOUT)))
        .expect("set RESP timeouts");
    con
}

/// `DEBUG DIGEST`: the node's 40-hex-digit digest of its live data.
pub fn debug_digest(con: &mut redis::Connection) -> String {
    redis::cmd("DEBUG")
        .arg("DIGEST")
        .query(con)
        .expect("DEBUG DIGEST")
}

/// The value of field `name` in `INFO section`, if the node gives it.
pub fn info_field(con: &mut redis::Connection, section: &str, name: &str) -> Option<String> {
    let info: String = redis::cmd("INFO").arg(section).query(con).expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::to_owned)
}

/// A raw socket to `addr`, with [`RESP_TIMEOUT`] on reads and writes.
pub fn raw(addr: SocketAddr) -> TcpStream {
    connect(addr, RESP_TIMEOUT)
}

/// Reads until `want` bytes have arrived (or the stream ends).
pub fn read_n(stream: &mut TcpStream, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    while got.len() < want {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read after {} bytes: {e}", got.len()),
        }
    }
    got
}

/// Reads until the other side closes.
pub fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    stream.read_to_end(&mut got).expect("read until closed");
    got
}

/// Runs `redis-cli` with `args` against `addr` and returns its stdout,
/// asserting it exited 0 (its stderr says why if not). Callers skip first
/// where the machine has no redis-cli (`missing_tool`).
pub fn redis_cli(addr: SocketAddr, args: &[&str]) -> String {
    let out = super::process::run(
        std::process::Command::new("redis-cli")
            .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
            .args(args),
        super::process::Input::Null,
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "redis-cli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
