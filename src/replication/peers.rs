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
    pub reason: String,
}

impl fmt::Display for PeerLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for PeerLineError {}

/// Parses a peers file's text.
pub fn parse_peers(text: &str) -> Result<Vec<PeerLine>, PeerLineError> {
    let mut peers = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let entry = raw.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let fail = |reason: String| PeerLineError { line, reason };
        if entry.split_whitespace().count() > 1 {
            return Err(fail(format!("expected one host:port, found '{entry}'")));
        }
        let (host, port) = entry
            .rsplit_once(':')
            .ok_or_else(|| fail(format!("expected host:port, found '{entry}'")))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| fail(format!("bad port '{port}' in '{entry}' (1 to 65535)")))?;
        if host.is_empty() {
            return Err(fail(format!("missing host in '{entry}'")));
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
}
