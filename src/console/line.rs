//! The line commands a node reads on stdin: parsing, and the quoting rules
//! for printing keys and values so that what is printed can be typed back.
//!
//! Pure: works on byte lines, never touches stdin or stdout.
//!
//! # Syntax
//!
//! A line is a command word and its arguments, separated by spaces or tabs.
//! A key is one word, or a double-quoted string. A value is the rest of the
//! line (with surrounding blanks dropped), or one double-quoted string. In a
//! quoted string, `\"`, `\\`, `\n`, `\r`, `\t`, `\0` and `\xHH` stand for the
//! byte they name, so any byte can be stored.

use std::fmt;

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `put <key> <value>`
    Put {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// `get <key>`
    Get {
        /// The key.
        key: Vec<u8>,
    },
    /// `delete <key>`
    Delete {
        /// The key.
        key: Vec<u8>,
    },
    /// `keys`: the live keys.
    Keys,
    /// `status`: node, peers, counts.
    Status,
    /// `sync`: push to every peer now.
    Sync,
    /// `help`
    Help,
    /// `quit`
    Quit,
    /// `leave`: leave the cluster gracefully, then exit.
    Leave,
    /// A blank line or a `#` comment: no reply.
    Nothing,
}

/// A line that is not a valid command; its text is the reply after
/// `Error: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// The text `help` prints.
pub const HELP: &str = "\
Commands:
  put <key> <value>   store a value (the value is the rest of the line)
  get <key>           print a value
  delete <key>        delete a key everywhere
  keys                list the live keys
  status              this node, its peers and its counts
  sync                push to every peer now
  help                this text
  quit                push once more to the peers, then exit
  leave               leave the cluster for good: hand off, tell the members, exit
Keys and values may be written in double quotes with \\\" \\\\ \\n \\r \\t \\0 \\xHH escapes.";

fn usage(cmd: &str) -> &'static str {
    match cmd {
        "put" => "usage: put <key> <value>",
        "get" => "usage: get <key>",
        "delete" => "usage: delete <key>",
        _ => "usage: see help",
    }
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_blanks(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_blank(b)).unwrap_or(s.len());
    &s[start..]
}

fn trim_end(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .rposition(|&b| !is_blank(b) && b != b'\r' && b != b'\n')
        .map_or(0, |i| i + 1);
    &s[..end]
}

/// A word or quoted string, and the text after it.
type Token<'a> = (Vec<u8>, &'a [u8]);

/// Splits off one word or quoted string; returns it and the rest.
fn take_token(s: &[u8]) -> Result<Option<Token<'_>>, String> {
    let s = skip_blanks(s);
    match s.first() {
        None => Ok(None),
        Some(b'"') => {
            let (token, used) = unquote(s)?;
            let rest = &s[used..];
            if rest.first().is_some_and(|&b| !is_blank(b)) {
                return Err("a closing quote must be followed by a space".into());
            }
            Ok(Some((token, rest)))
        }
        Some(_) => {
            let end = s.iter().position(|&b| is_blank(b)).unwrap_or(s.len());
            Ok(Some((s[..end].to_vec(), &s[end..])))
        }
    }
}

/// Decodes a quoted string at the start of `s` (which starts with `"`);
/// returns the bytes and how many input bytes the quoted string took.
fn unquote(s: &[u8]) -> Result<(Vec<u8>, usize), String> {
    let mut out = Vec::new();
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'"' => return Ok((out, i + 1)),
            b'\\' => {
                let esc = *s.get(i + 1).ok_or("unfinished escape at end of line")?;
                i += 2;
                out.push(match esc {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'0' => 0,
                    b'x' => {
                        let hex = s.get(i..i + 2).ok_or("\\x needs two hex digits")?;
                        let hex =
                            std::str::from_utf8(hex).map_err(|_| "\\x needs two hex digits")?;
                        let b =
                            u8::from_str_radix(hex, 16).map_err(|_| "\\x needs two hex digits")?;
                        i += 2;
                        b
                    }
                    other => {
                        return Err(format!("unknown escape \\{}", other.escape_ascii()));
                    }
                });
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Err("missing closing quote".into())
}

/// Parses one line (with or without its line ending).
pub fn parse_line(line: &[u8]) -> Result<Command, ParseError> {
    let line = trim_end(line);
    let body = skip_blanks(line);
    if body.is_empty() || body[0] == b'#' {
        return Ok(Command::Nothing);
    }
    let end = body.iter().position(|&b| is_blank(b)).unwrap_or(body.len());
    // Lowercased on the stack: this runs for every line of a piped load.
    let mut lower = [0u8; 8];
    let word = match lower.get_mut(..end) {
        Some(lower) => {
            lower.copy_from_slice(&body[..end]);
            lower.make_ascii_lowercase();
            std::str::from_utf8(lower).unwrap_or("")
        }
        None => "", // longer than any command
    };
    let rest = &body[end..];
    let err = |why: &str| ParseError(format!("{why} ({})", usage(word)));
    let no_more = |rest: &[u8]| -> Result<(), ParseError> {
        if skip_blanks(rest).is_empty() {
            Ok(())
        } else {
            Err(err("too many arguments"))
        }
    };
    let key_only = |rest: &[u8]| -> Result<Vec<u8>, ParseError> {
        let (key, rest) = take_token(rest)
            .map_err(|e| err(&e))?
            .ok_or_else(|| err("missing key"))?;
        no_more(rest)?;
        Ok(key)
    };
    match word {
        "put" | "set" => {
            let (key, rest) = take_token(rest)
                .map_err(|e| err(&e))?
                .ok_or_else(|| err("missing key"))?;
            let rest = skip_blanks(rest);
            let value = match rest.first() {
                None => return Err(err("missing value")),
                Some(b'"') => {
                    let (value, used) = unquote(rest).map_err(|e| err(&e))?;
                    if !skip_blanks(&rest[used..]).is_empty() {
                        return Err(err("text after the closing quote of the value"));
                    }
                    value
                }
                Some(_) => rest.to_vec(),
            };
            Ok(Command::Put { key, value })
        }
        "get" => Ok(Command::Get {
            key: key_only(rest)?,
        }),
        "delete" | "del" => Ok(Command::Delete {
            key: key_only(rest)?,
        }),
        "keys" | "status" | "sync" | "help" | "quit" | "exit" | "leave" => {
            no_more(rest).map_err(|_| ParseError(format!("{word} takes no arguments")))?;
            Ok(match word {
                "keys" => Command::Keys,
                "status" => Command::Status,
                "sync" => Command::Sync,
                "help" => Command::Help,
                "leave" => Command::Leave,
                _ => Command::Quit,
            })
        }
        _ => Err(ParseError(format!(
            "unknown command '{}' (commands: put, get, delete, keys, status, sync, help, quit)",
            body[..end].escape_ascii()
        ))),
    }
}

/// Whether `bytes` must be quoted to read back as the same value.
fn value_needs_quotes(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return true;
    };
    text.is_empty()
        || text.starts_with('"')
        || text.starts_with([' ', '\t'])
        || text.ends_with([' ', '\t'])
        || text.chars().any(char::is_control)
}

/// `bytes` in double quotes with escapes: printable UTF-8 stays as it is,
/// everything else is escaped.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\0' => out.push_str("\\0"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// How a value is printed: as it is when that reads back the same as the
/// rest of a `put` line, quoted otherwise.
pub fn display_value(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    if value_needs_quotes(bytes) {
        quote(bytes).into()
    } else {
        String::from_utf8_lossy(bytes)
    }
}

/// How a key is printed: as one word when it is one, quoted otherwise.
pub fn display_key(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    if value_needs_quotes(bytes) || bytes.iter().any(|&b| is_blank(b)) {
        quote(bytes).into()
    } else {
        String::from_utf8_lossy(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn put(key: &str, value: &str) -> Command {
        Command::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn the_value_is_the_rest_of_the_line() {
        assert_eq!(
            parse_line(b"put greeting hello world\n"),
            Ok(put("greeting", "hello world"))
        );
        assert_eq!(parse_line(b"  PUT  k   a  b  \r\n"), Ok(put("k", "a  b")));
        assert_eq!(parse_line(b"put k \"\""), Ok(put("k", "")));
        assert_eq!(
            parse_line(b"put \"a key\" \"say \\\"hi\\\"\\n\""),
            Ok(put("a key", "say \"hi\"\n"))
        );
        assert_eq!(parse_line(b"put k \\x41"), Ok(put("k", "\\x41")));
        assert_eq!(parse_line(b"put k \"\\x41\\x00\""), Ok(put("k", "A\0")));
    }

    #[test]
    fn simple_commands() {
        assert_eq!(
            parse_line(b"get k"),
            Ok(Command::Get { key: b"k".to_vec() })
        );
        assert_eq!(
            parse_line(b"delete \"a b\""),
            Ok(Command::Delete {
                key: b"a b".to_vec()
            })
        );
        assert_eq!(parse_line(b"quit"), Ok(Command::Quit));
        assert_eq!(parse_line(b""), Ok(Command::Nothing));
        assert_eq!(parse_line(b"  # a comment"), Ok(Command::Nothing));
        assert_eq!(parse_line(b"status"), Ok(Command::Status));
    }

    #[test]
    fn mistakes_say_what_and_how() {
        let cases: &[(&[u8], &str)] = &[
            (b"put", "missing key (usage: put <key> <value>)"),
            (b"put k", "missing value (usage: put <key> <value>)"),
            (b"get", "missing key (usage: get <key>)"),
            (b"get a b", "too many arguments (usage: get <key>)"),
            (
                b"put k \"open",
                "missing closing quote (usage: put <key> <value>)",
            ),
            (
                b"put k \"a\" b",
                "text after the closing quote of the value (usage: put <key> <value>)",
            ),
            (
                b"put \"k\"x v",
                "a closing quote must be followed by a space (usage: put <key> <value>)",
            ),
            (
                b"put k \"\\q\"",
                "unknown escape \\q (usage: put <key> <value>)",
            ),
            (b"keys now", "keys takes no arguments"),
        ];
        for (line, want) in cases {
            assert_eq!(
                parse_line(line),
                Err(ParseError((*want).into())),
                "{}",
                line.escape_ascii()
            );
        }
        let unknown = parse_line(b"frobnicate x").expect_err("unknown");
        assert!(unknown.0.starts_with("unknown command 'frobnicate'"));
    }

    #[test]
    fn printing_quotes_only_when_needed() {
        assert_eq!(display_value(b"hello world"), "hello world");
        assert_eq!(display_value("héllo".as_bytes()), "héllo");
        assert_eq!(display_value(b"a\nb"), "\"a\\nb\"");
        assert_eq!(display_value(b""), "\"\"");
        assert_eq!(display_value(b" pad"), "\" pad\"");
        assert_eq!(display_value(&[0xff, b'a']), "\"\\xffa\"");
        assert_eq!(display_key(b"a b"), "\"a b\"");
        assert_eq!(display_key(b"plain"), "plain");
    }

    proptest! {
        #![proptest_config(crate::proptest_config("tests/regressions/cli.txt"))]
        #[test]
        fn whatever_is_printed_reads_back_the_same(key in proptest::collection::vec(any::<u8>(), 1..20), value in proptest::collection::vec(any::<u8>(), 0..40)) {
            let line = format!("put {} {}", display_key(&key), display_value(&value));
            prop_assert_eq!(parse_line(line.as_bytes()), Ok(Command::Put { key, value }));
        }

        #[test]
        fn no_line_panics(line in proptest::collection::vec(any::<u8>(), 0..60)) {
            let _ = parse_line(&line);
        }
    }
}
