//! Replies out: [`Reply`] and its RESP2 encoding, and
//! [`encode_command`], a request as a client sends it.
//!
//! Owns encoding only; it must not parse (see [`super::request`] and
//! [`super::reply_decoder`]).

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`: a short status line.
    Simple(String),
    /// `-ERR ...`: the text after the `-`, error code first.
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$3\r\nfoo`: any bytes.
    Bulk(Vec<u8>),
    /// `$-1`: no value (GET of a missing key).
    Null,
    /// `*2\r\n...`: a list of replies.
    Array(Vec<Reply>),
    /// `*-1`: no list (a timed-out blocking pop).
    NullArray,
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Reply {
        Reply::Simple("OK".into())
    }

    /// Appends the reply in RESP2. A `\r` or `\n` inside a simple string or
    /// error would end its line early, so each is written as a space, as
    /// Redis does for error texts.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Simple(text) => encode_line(b'+', text, out),
            Reply::Error(text) => encode_line(b'-', text, out),
            Reply::Integer(n) => {
                out.push(b':');
                push_decimal(out, *n < 0, n.unsigned_abs());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Bulk(data) => encode_bulk(data, out),
            Reply::Null => out.extend_from_slice(b"$-1\r\n"),
            Reply::Array(items) => {
                encode_header(b'*', items.len(), out);
                for item in items {
                    item.write_to(out);
                }
            }
            Reply::NullArray => out.extend_from_slice(b"*-1\r\n"),
        }
    }

    /// The reply in RESP2, as [`write_to`](Self::write_to) writes it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }
}

fn push_decimal(out: &mut Vec<u8>, negative: bool, mut magnitude: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

pub(super) fn encode_header(kind: u8, len: usize, out: &mut Vec<u8>) {
    out.push(kind);
    push_decimal(out, false, len as u64);
    out.extend_from_slice(b"\r\n");
}

pub(super) fn encode_bulk(data: &[u8], out: &mut Vec<u8>) {
    encode_header(b'$', data.len(), out);
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn encode_line(kind: u8, text: &str, out: &mut Vec<u8>) {
    out.push(kind);
    out.extend(
        text.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// Appends a command in multibulk form, the form every Redis client sends:
/// `*<n>\r\n` then `$<len>\r\n<arg>\r\n` per argument. Any bytes may be in
/// an argument.
pub fn encode_command(args: &[&[u8]], out: &mut Vec<u8>) {
    encode_header(b'*', args.len(), out);
    for arg in args {
        encode_bulk(arg, out);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::redis::resp::parse_reply;

    pub(crate) fn every_kind_of_reply() -> Vec<(Reply, &'static [u8])> {
        vec![
            (Reply::ok(), b"+OK\r\n"),
            (
                Reply::Error("ERR unknown command 'x'".into()),
                b"-ERR unknown command 'x'\r\n",
            ),
            (Reply::Integer(0), b":0\r\n"),
            (Reply::Integer(-42), b":-42\r\n"),
            (Reply::Integer(i64::MAX), b":9223372036854775807\r\n"),
            (Reply::Integer(i64::MIN), b":-9223372036854775808\r\n"),
            (Reply::Bulk(b"foo".to_vec()), b"$3\r\nfoo\r\n"),
            (Reply::Bulk(Vec::new()), b"$0\r\n\r\n"),
            (Reply::Bulk(b"a\r\nb".to_vec()), b"$4\r\na\r\nb\r\n"),
            (Reply::Null, b"$-1\r\n"),
            (Reply::NullArray, b"*-1\r\n"),
            (Reply::Array(Vec::new()), b"*0\r\n"),
            (
                Reply::Array(vec![
                    Reply::Bulk(b"k".to_vec()),
                    Reply::Null,
                    Reply::Array(vec![Reply::Integer(1), Reply::NullArray]),
                    Reply::Array(Vec::new()),
                    Reply::Simple("x".into()),
                ]),
                b"*5\r\n$1\r\nk\r\n$-1\r\n*2\r\n:1\r\n*-1\r\n*0\r\n+x\r\n",
            ),
        ]
    }

    #[test]
    fn every_reply_encodes_as_redis_does_and_parses_back() {
        for (reply, bytes) in every_kind_of_reply() {
            assert_eq!(reply.to_bytes(), bytes, "{reply:?}");
            assert_eq!(
                parse_reply(bytes),
                Ok(Some((reply.clone(), bytes.len()))),
                "{reply:?}"
            );
            for cut in 0..bytes.len() {
                assert_eq!(
                    parse_reply(&bytes[..cut]),
                    Ok(None),
                    "{reply:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn line_breaks_cannot_escape_a_status_or_error_line() {
        assert_eq!(
            Reply::Error("ERR bad\r\nthing\n".into()).to_bytes(),
            b"-ERR bad  thing \r\n"
        );
        assert_eq!(Reply::Simple("a\rb".into()).to_bytes(), b"+a b\r\n");
    }
}
