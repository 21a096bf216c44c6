//! The peers file: one `host:port` per line, blank lines and `#` comments
//! ignored.
//!
//! Parsing is pure and checks only the form of each line; resolving host
//! names (which needs the network) is left to the caller, which reports a
//! failure with the same file and line.

use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;

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
