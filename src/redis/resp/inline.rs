//! Inline requests (`GET k\r\n`, what a person types into telnet):
//! splitting a line into arguments with redis-cli's quoting.
//!
//! Owns [`split_inline`] only: finding the line's end and its limits is
//! [`super::request`]'s work.

use super::error::ProtocolError;

/// The bytes C's `isspace` accepts (in the C locale).
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Where [`split_inline`] is inside a word.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quoting {
    Bare,
    Double,
    Single,
}

/// Splits an inline line into arguments the way Redis's `sdssplitargs`
/// does (and redis-cli quotes): words separated by blanks; in a word,
/// `"..."` with `\n \r \t \b \a \xHH` escapes (any other escaped byte
/// stands for itself) and `'...'` with only `\'`; a quote may open in the
/// middle of a word (`a"b c"` is `ab c`) but a closing quote must be
/// followed by a blank or the end of the line. `""` is an empty argument.
///
/// Redis splits a C string, so a NUL byte ends the line: what follows it
/// is ignored (an unclosed quote before it is still an error).
pub(super) fn split_inline(line: &[u8], max_args: usize) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_c_space(line[i]) {
            i += 1;
        }
        if i == line.len() {
            return Ok(args);
        }
        if args.len() == max_args {
            return Err(ProtocolError::TooManyInlineArgs { max: max_args });
        }
        let mut arg = Vec::new();
        let mut quoting = Quoting::Bare;
        loop {
            let Some(&c) = line.get(i) else {
                if quoting == Quoting::Bare {
                    break;
                }
                return Err(ProtocolError::UnbalancedQuotes);
            };
            let next = line.get(i + 1).copied();
            let mut closed = false;
            match quoting {
                Quoting::Bare => match c {
                    b' ' | b'\n' | b'\r' | b'\t' => {
                        i += 1;
                        break;
                    }
                    b'"' => quoting = Quoting::Double,
                    b'\'' => quoting = Quoting::Single,
                    _ => arg.push(c),
                },
                Quoting::Double => match (c, next, hex_pair(line, i + 2)) {
                    (b'\\', Some(b'x'), Some(byte)) => {
                        arg.push(byte);
                        i += 3;
                    }
                    (b'\\', Some(escaped), _) => {
                        arg.push(match escaped {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                        i += 1;
                    }
                    (b'"', _, _) => closed = true,
                    _ => arg.push(c),
                },
                Quoting::Single => match (c, next) {
                    (b'\\', Some(b'\'')) => {
                        arg.push(b'\'');
                        i += 1;
                    }
                    (b'\'', _) => closed = true,
                    _ => arg.push(c),
                },
            }
            i += 1;
            if closed {
                if next.is_some_and(|b| !is_c_space(b)) {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                break;
            }
        }
        args.push(arg);
    }
}

/// The byte written as two hex digits at `line[i..i + 2]`, if they are.
fn hex_pair(line: &[u8], i: usize) -> Option<u8> {
    let high = hex_value(*line.get(i)?)?;
    let low = hex_value(*line.get(i + 1)?)?;
    Some(high * 16 + low)
}

#[cfg(test)]
mod tests {
    use crate::redis::resp::request::tests::{args, error, one, parse};
    use crate::redis::resp::{Limits, ProtocolError, Request};

    #[test]
    fn inline_requests_split_like_redis() {
        assert_eq!(one(b"PING\r\n"), args(&[b"PING"]));
        assert_eq!(one(b"PING\n"), args(&[b"PING"]));
        assert_eq!(
            one(b"  set \t key   value  \r\n"),
            args(&[b"set", b"key", b"value"])
        );
        assert_eq!(
            one(b"set \"a key\" 'a value'\r\n"),
            args(&[b"set", b"a key", b"a value"])
        );
        assert_eq!(
            one(b"set k \"\\x41\\x7a\\n\\r\\t\\b\\a\\\\\\\"\\q\"\n"),
            args(&[b"set", b"k", b"Az\n\r\t\x08\x07\\\"q"])
        );
        assert_eq!(
            one(b"set k \"\\xZZ\\X41\"\n"),
            args(&[b"set", b"k", b"xZZX41"]),
            "a bad \\x escape is just an x"
        );
        assert_eq!(
            one(b"set k 'it\\'s \\n \"raw\"'\n"),
            args(&[b"set", b"k", b"it's \\n \"raw\""])
        );
        assert_eq!(one(b"echo \"\" ''\n"), args(&[b"echo", b"", b""]));
        assert_eq!(
            one(b"echo a\"b c\"\n"),
            args(&[b"echo", b"ab c"]),
            "a quote may open mid-word"
        );
        assert_eq!(one(b"echo \"a\"\tb\n"), args(&[b"echo", b"a", b"b"]));
        assert_eq!(one(b"a\rb\r\n"), args(&[b"a", b"b"]));
        assert_eq!(
            one(b"a\x0bb\n"),
            args(&[b"a\x0bb"]),
            "\\v only separates words before one starts"
        );
        assert_eq!(one(b"\xff\xfe x\n"), args(&[b"\xff\xfe", b"x"]));
    }

    #[test]
    fn a_nul_byte_ends_an_inline_line_as_in_redis() {
        assert_eq!(one(b"GET a\0b c\r\n"), args(&[b"GET", b"a"]));
        assert_eq!(
            error(b"GET \"a\0\"\n", &Limits::default()),
            ProtocolError::UnbalancedQuotes
        );
    }

    #[test]
    fn blank_inline_lines_are_consumed_with_nothing_to_run() {
        assert_eq!(parse(b"\r\n"), Ok(Some((Request::default(), 2))));
        assert_eq!(parse(b"\n"), Ok(Some((Request::default(), 1))));
        assert_eq!(parse(b"  \t \nPING\n"), Ok(Some((Request::default(), 5))));
    }

    #[test]
    fn unbalanced_quotes() {
        for line in [
            &b"get \"abc\n"[..],
            b"get 'abc\n",
            b"get \"a\"b\n",
            b"get 'a'b\n",
            b"echo a\"b c\"d\n",
            b"get \"abc\\\"\n",
            b"get \"abc\\\n",
        ] {
            assert_eq!(
                error(line, &Limits::default()),
                ProtocolError::UnbalancedQuotes,
                "{}",
                line.escape_ascii()
            );
        }
    }
}
