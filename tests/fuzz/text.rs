//! Text a person writes: console lines (stdin, or piped in), the config
//! file and the peers file. The files are read as UTF-8 before they are
//! parsed, so their checks see text; other bytes become U+FFFD first.

use super::harness::Target;
use super::mutate::{self, Source};
use crate::rng::Rng;
use netdb::config::parse_config_file;
use netdb::console::line::{display_key, display_value, parse_line, quote, Command};
use netdb::replication::peers::parse_peers;

/// A console line: parsing, and the quoting that prints keys and values
/// so that they can be typed back.
pub const CONSOLE_LINE: Target = Target {
    name: "console_line",
    short_inputs: 5_000,
    generate: |rng| {
        mutate::input(
            rng,
            &Source {
                valid: &console_line,
                tokens: &[
                    b"\"", b"\\", b"\\x", b"\\0", b" ", b"\t", b"\r", b"\n", b"#", b"put ",
                    b"get ", b"\\\"",
                ],
            },
        )
    },
    check: check_console_line,
    max_live: |len| 16 * len + 4096,
};

fn console_line(rng: &mut Rng) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "put", "set", "get", "delete", "del", "keys", "status", "sync", "help", "quit", "exit",
        "PUT", "Get", "#", "putt",
    ];
    let mut line = WORDS[rng.below(WORDS.len())].as_bytes().to_vec();
    for _ in 0..rng.below(4) {
        line.push(if rng.percent(80) { b' ' } else { b'\t' });
        let word = mutate::some_bytes(rng, 10);
        if rng.percent(40) {
            line.extend_from_slice(quote(&word).as_bytes());
        } else {
            line.extend(word.iter().filter(|&&b| b != b' ' && b != b'\t'));
        }
    }
    if rng.percent(50) {
        line.push(b'\n');
    }
    line
}

/// Parses a line; a command with a key or a value, printed back as the
/// console prints it, must parse to the same command.
fn check_console_line(input: &[u8]) {
    let Ok(command) = parse_line(input) else {
        return;
    };
    let again = match &command {
        Command::Put { key, value } => {
            format!("put {} {}", display_key(key), display_value(value))
        }
        Command::Get { key } => format!("get {}", display_key(key)),
        Command::Delete { key } => format!("delete {}", quote(key)),
        _ => return,
    };
    assert_eq!(
        parse_line(again.as_bytes()),
        Ok(command),
        "printed back as {again:?}"
    );
}

/// The config file (TOML).
pub const CONFIG_FILE: Target = Target {
    name: "config_file",
    short_inputs: 3_000,
    generate: |rng| {
        mutate::input(
            rng,
            &Source {
                valid: &config_file,
                tokens: &[
                    b"=",
                    b"[",
                    b"]",
                    b"{",
                    b"}",
                    b"\"",
                    b"'",
                    b"\"\"\"",
                    b"'''",
                    b"\n",
                    b"#",
                    b",",
                    b".",
                    b"\\u",
                    b"\\",
                    b"[[",
                    b"]]",
                    b"1979-05-27T07:32:00Z",
                    b"inf",
                    b"nan",
                    b"0x",
                    b"_",
                ],
            },
        )
    },
    check: check_config_file,
    // The TOML parser builds a document of the whole text before it is
    // read into the settings.
    max_live: |len| 256 * len + 256 * 1024,
};

fn config_file(rng: &mut Rng) -> Vec<u8> {
    const KEYS: &[&str] = &[
        "name",
        "listen",
        "peers",
        "sync-interval-ms",
        "no-cli",
        "max-frame-bytes",
        "max-connections",
        "data-dir",
        "in-memory",
        "fsync",
        "truncate-corrupt-log",
        "compact-min-bytes",
        "max-clients",
        "client-idle-timeout-secs",
        "max-request-bytes",
        "io-threads",
        "max-client-output-bytes",
        "max-clock-offset-ms",
        "log-level",
        "unknown",
    ];
    let mut out = String::new();
    for _ in 0..rng.below(6) {
        let key = KEYS[rng.below(KEYS.len())];
        let value = match rng.below(9) {
            0 => format!("{}", rng.next_u64() >> rng.below(64)),
            1 => ["true", "false"][rng.below(2)].to_owned(),
            2 => format!(
                "\"{}\"",
                ["always", "every-second", "never", "debug", "x"][rng.below(5)]
            ),
            3 => "\"127.0.0.1:7000\"".to_owned(),
            4 => format!("'{}'", "a\\b"),
            5 => "-1".to_owned(),
            6 => "1.5".to_owned(),
            7 => {
                // Nested arrays and tables, sometimes very deep.
                let depth = if rng.percent(5) {
                    5000
                } else {
                    1 + rng.below(4)
                };
                let mut v = String::new();
                for _ in 0..depth {
                    v.push_str(if rng.percent(50) { "[" } else { "{a=" });
                }
                v
            }
            _ => "\"\"\"\nmulti\nline\"\"\"".to_owned(),
        };
        if rng.percent(10) {
            out.push_str("[table]\n");
        }
        out.push_str(&format!("{key} = {value}"));
        if rng.percent(20) {
            out.push_str(" # a comment");
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// Parses a config file; an error names a line of the file.
fn check_config_file(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    if let Err(e) = parse_config_file(&text) {
        let lines = text.matches('\n').count() + 1;
        assert!(
            (1..=lines).contains(&e.line),
            "line {} of {lines}: {}",
            e.line,
            e.reason
        );
    }
}

/// The peers file.
pub const PEERS_FILE: Target = Target {
    name: "peers_file",
    short_inputs: 5_000,
    generate: |rng| {
        mutate::input(
            rng,
            &Source {
                valid: &peers_file,
                tokens: &[
                    b":",
                    b"#",
                    b"\n",
                    b"\r\n",
                    b" ",
                    b"[",
                    b"]",
                    b"[::1]:7000",
                    b"0",
                ],
            },
        )
    },
    check: check_peers_file,
    // A four-byte line (`0:1\n`) is a 40-byte peer and its host, in a
    // vector that doubles; the check parses twice.
    max_live: |len| 64 * len + 4096,
};

fn peers_file(rng: &mut Rng) -> Vec<u8> {
    let mut out = String::new();
    for _ in 0..rng.below(5) {
        match rng.below(6) {
            0 => out.push_str("# a comment"),
            1 => {}
            2 => out.push_str(&format!("[::1]:{}", rng.below(70000))),
            3 => out.push_str(&format!(
                "  node-{}.example:{}  # peer",
                rng.below(9),
                rng.below(70000)
            )),
            _ => out.push_str(&format!("127.0.0.{}:{}", rng.below(256), rng.below(70000))),
        }
        out.push_str(if rng.percent(80) { "\n" } else { "\r\n" });
    }
    out.into_bytes()
}

/// Parses a peers file; the peers found, written one per line, must
/// parse to the same peers.
fn check_peers_file(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let Ok(peers) = parse_peers(&text) else {
        return;
    };
    let lines = text.lines().count();
    let mut written = String::new();
    for p in &peers {
        assert!(p.line >= 1 && p.line <= lines && p.port != 0 && !p.host.is_empty());
        written.push_str(&p.addr());
        written.push('\n');
    }
    let again = parse_peers(&written).expect("peers written back parse");
    assert_eq!(
        again.iter().map(|p| (&p.host, p.port)).collect::<Vec<_>>(),
        peers.iter().map(|p| (&p.host, p.port)).collect::<Vec<_>>()
    );
}
