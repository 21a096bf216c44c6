//! The peers file: one `host:port` per line, blank lines and `#` comments
//! ignored.
//!
//! Parsing is pure and checks only the form of each line; resolving host
//! names (which needs the network) is left to the caller, which reports a
//! failure with the same file and line. So is [`is_own_address`], the
//! static half of recognising an entry that names this node itself (the
//! other half is the handshake: see [`crate::replication::pusher`]).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// One peer line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerLine {
    /// 1-based line number in the file.
    pub line: usize,
    /// The host (name, IPv4 or bracketed IPv6 address).
    pub host: String,
    /// The port.
    pub port: u16,
}

impl PeerLine {
    /// `host:port` as written, for resolving and for display.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A line that is not `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerLineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: LineProblem,
}

/// What is wrong with a peers-file line; each holds the line's entry as
/// written (comment and spaces taken off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineProblem {
    /// More than one word on the line.
    SeveralWords(String),
    /// No `:` between a host and a port.
    NoColon(String),
    /// The port is not a number from 1 to 65535.
    BadPort {
        /// The port as written.
        port: String,
        /// The whole entry.
        entry: String,
    },
    /// Nothing before the `:`.
    NoHost(String),
}

impl fmt::Display for PeerLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineProblem::SeveralWords(entry) => {
                write!(f, "expected one host:port, found '{entry}'")
            }
            LineProblem::NoColon(entry) => write!(f, "expected host:port, found '{entry}'"),
            LineProblem::BadPort { port, entry } => {
                write!(f, "bad port '{port}' in '{entry}' (1 to 65535)")
            }
            LineProblem::NoHost(entry) => write!(f, "missing host in '{entry}'"),
        }
    }
}

impl std::error::Error for PeerLineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.reason)
    }
}

impl std::error::Error for LineProblem {}

/// Parses a peers file's text.
pub fn parse_peers(text: &str) -> Result<Vec<PeerLine>, PeerLineError> {
    let mut peers = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let entry = raw.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let fail = |reason: LineProblem| PeerLineError { line, reason };
        if entry.split_whitespace().count() > 1 {
            return Err(fail(LineProblem::SeveralWords(entry.to_owned())));
        }
        let (host, port) = entry
            .rsplit_once(':')
            .ok_or_else(|| fail(LineProblem::NoColon(entry.to_owned())))?;
        let port: u16 = port.parse().ok().filter(|&p| p != 0).ok_or_else(|| {
            fail(LineProblem::BadPort {
                port: port.to_owned(),
                entry: entry.to_owned(),
            })
        })?;
        if host.is_empty() {
            return Err(fail(LineProblem::NoHost(entry.to_owned())));
        }
        peers.push(PeerLine {
            line,
            host: host.to_owned(),
            port,
        });
    }
    Ok(peers)
}

/// Whether a connection to `peer` reaches a listener bound to `me`, as
/// far as the addresses alone tell: the same port, and an address that is
/// `me`'s own, or one the OS routes to it. IPv4-mapped IPv6 addresses
/// count as the IPv4 address they map. A connection to a wildcard address
/// (`0.0.0.0`, `[::]`) goes to the loopback address of its family; a
/// listener on the IPv4 wildcard takes every IPv4 loopback address, and
/// one on the IPv6 wildcard (dual-stack, the OS default) every loopback
/// address of either family.
///
/// What addresses alone cannot tell (this host's LAN address when bound to
/// a wildcard, a name that resolves to it) the handshake finds out.
pub fn is_own_address(peer: SocketAddr, me: SocketAddr) -> bool {
    if peer.port() != me.port() {
        return false;
    }
    let (p, m) = (peer.ip().to_canonical(), me.ip().to_canonical());
    if p == m {
        return true;
    }
    // Where a connection to `p` lands, when `p` is a wildcard.
    let lands = match p {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        other => other,
    };
    match m {
        IpAddr::V4(m) if m.is_unspecified() => lands.is_ipv4() && lands.is_loopback(),
        IpAddr::V6(m) if m.is_unspecified() => lands.is_loopback(),
        m => lands == m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_this_node_s_address_is_recognised() {
        let addr = |s: &str| s.parse::<SocketAddr>().expect(s);
        for (me, peer, own) in [
            ("127.0.0.1:7000", "127.0.0.1:7000", true),
            ("127.0.0.1:7000", "127.0.0.1:7001", false),
            ("127.0.0.1:7000", "0.0.0.0:7000", true),
            ("127.0.0.1:7000", "[::ffff:127.0.0.1]:7000", true),
            ("127.0.0.1:7000", "127.0.0.2:7000", false),
            ("127.0.0.1:7000", "[::1]:7000", false),
            ("127.0.0.1:7000", "[::]:7000", false),
            ("0.0.0.0:7000", "127.0.0.1:7000", true),
            ("0.0.0.0:7000", "127.8.9.10:7000", true),
            ("0.0.0.0:7000", "0.0.0.0:7000", true),
            ("0.0.0.0:7000", "[::ffff:127.0.0.1]:7000", true),
            ("0.0.0.0:7000", "[::1]:7000", false),
            ("0.0.0.0:7000", "10.1.2.3:7000", false),
            ("[::]:7000", "[::1]:7000", true),
            ("[::]:7000", "[::]:7000", true),
            ("[::]:7000", "0.0.0.0:7000", true),
            ("[::]:7000", "127.0.0.1:7000", true),
            ("[::]:7000", "[::1]:7001", false),
            ("[::1]:7000", "[::]:7000", true),
            ("[::1]:7000", "127.0.0.1:7000", false),
            ("10.1.2.3:7000", "10.1.2.3:7000", true),
            ("10.1.2.3:7000", "[::ffff:10.1.2.3]:7000", true),
            ("10.1.2.3:7000", "0.0.0.0:7000", false),
            ("10.1.2.3:7000", "127.0.0.1:7000", false),
        ] {
            assert_eq!(
                is_own_address(addr(peer), addr(me)),
                own,
                "{peer} for a node on {me}"
            );
        }
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let text = "# cluster\n127.0.0.1:9001\n\n  localhost:9002  # second\n[::1]:9003\n";
        let peers = parse_peers(text).expect("parses");
        let addrs: Vec<String> = peers.iter().map(PeerLine::addr).collect();
        assert_eq!(addrs, ["127.0.0.1:9001", "localhost:9002", "[::1]:9003"]);
        assert_eq!(peers[1].line, 4);
    }

    #[test]
    fn a_bad_line_is_named() {
        for (text, line) in [
            ("127.0.0.1:9001\nnonsense\n", 2),
            ("host:99999", 1),
            ("host:0", 1),
            ("\n\n:9000", 3),
            ("a:1 b:2", 1),
        ] {
            assert_eq!(parse_peers(text).expect_err(text).line, line, "{text}");
        }
    }

    #[test]
    fn a_bad_line_says_what_is_wrong() {
        for (text, shown) in [
            ("a:1 b:2", "line 1: expected one host:port, found 'a:1 b:2'"),
            ("nonsense", "line 1: expected host:port, found 'nonsense'"),
            ("h:0 # zero", "line 1: bad port '0' in 'h:0' (1 to 65535)"),
            ("\n:9000", "line 2: missing host in ':9000'"),
        ] {
            let e = parse_peers(text).expect_err(text);
            assert_eq!(e.to_string(), shown);
        }
    }
}
