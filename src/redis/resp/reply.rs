//! Replies out: [`Reply`] and its encoding in RESP2 or RESP3
//! ([`Protocol`]), and [`encode_command`], a request as a client sends it.
//!
//! A reply is built once, in the richest type Redis 7 uses for it (a map,
//! a set, a verbatim string ...), and encoded for the connection's
//! protocol when it is written: RESP3 has a byte for each type, RESP2
//! gets the fallback Redis itself sends (a map as a flat array, a double
//! as a bulk string, a boolean as an integer).
//!
//! Owns encoding only; it must not parse (see [`super::request`] and
//! [`super::reply_decoder`]).

/// The protocol a connection speaks: RESP2 until `HELLO 3`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Protocol {
    /// RESP2, every connection's protocol at the start.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

impl Protocol {
    /// The version number `HELLO` takes and answers with.
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// A reply, in the type Redis 7 gives it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`: a short status line.
    Simple(String),
    /// `-ERR ...`: the text after the `-`, error code first.
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$3\r\nfoo`: any bytes.
    Bulk(Vec<u8>),
    /// No value (GET of a missing key): `$-1` in RESP2, `_` in RESP3.
    Null,
    /// `*2\r\n...`: a list of replies.
    Array(Vec<Reply>),
    /// No list (an EXEC whose watched keys changed): `*-1` in RESP2, `_`
    /// in RESP3.
    NullArray,
    /// Name, value pairs (`HELLO`, `CONFIG GET`): `%` in RESP3, a flat
    /// array in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// Unordered distinct items (`COMMAND INFO`'s flags): `~` in RESP3, an
    /// array in RESP2.
    Set(Vec<Reply>),
    /// A floating point number: `,` in RESP3, a bulk string in RESP2.
    Double(f64),
    /// `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    Boolean(bool),
    /// Text for people (`INFO`, `CLIENT INFO`) with its three-letter
    /// format (`txt`): `=` in RESP3, a bulk string in RESP2.
    Verbatim {
        /// `txt` or `mkd`.
        format: String,
        /// The text.
        text: Vec<u8>,
    },
    /// An integer of any size, as decimal digits: `(` in RESP3, a bulk
    /// string in RESP2.
    BigNumber(String),
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Reply {
        Reply::Simple("OK".into())
    }

    /// Text for people, as `INFO` sends it.
    pub fn text(text: impl Into<Vec<u8>>) -> Reply {
        Reply::Verbatim {
            format: "txt".into(),
            text: text.into(),
        }
    }

    /// A map from `(name, value)` pairs whose names are text.
    pub fn map_of<'a>(pairs: impl IntoIterator<Item = (&'a str, Reply)>) -> Reply {
        Reply::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Reply::Bulk(k.as_bytes().to_vec()), v))
                .collect(),
        )
    }

    /// Appends the reply in RESP2. A `\r` or `\n` inside a simple string or
    /// error would end its line early, so each is written as a space, as
    /// Redis does for error texts.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        self.write_as(Protocol::Resp2, out);
    }

    /// Appends the reply in `proto`: RESP3's own types on a RESP3
    /// connection, Redis's RESP2 fallbacks otherwise.
    pub fn write_as(&self, proto: Protocol, out: &mut Vec<u8>) {
        let resp3 = proto == Protocol::Resp3;
        match self {
            Reply::Simple(text) => encode_line(b'+', text, out),
            Reply::Error(text) => encode_line(b'-', text, out),
            Reply::Integer(n) => {
                out.push(b':');
                push_decimal(out, *n < 0, n.unsigned_abs());
                out.extend_from_slice(b"\r\n");
            }
            Reply::Bulk(data) => encode_bulk(data, out),
            Reply::Null if resp3 => out.extend_from_slice(b"_\r\n"),
            Reply::Null => out.extend_from_slice(b"$-1\r\n"),
            Reply::Array(items) => encode_items(b'*', items, proto, out),
            Reply::NullArray if resp3 => out.extend_from_slice(b"_\r\n"),
            Reply::NullArray => out.extend_from_slice(b"*-1\r\n"),
            Reply::Map(pairs) => {
                if resp3 {
                    encode_header(b'%', pairs.len(), out);
                } else {
                    encode_header(b'*', pairs.len() * 2, out);
                }
                for (name, value) in pairs {
                    name.write_as(proto, out);
                    value.write_as(proto, out);
                }
            }
            Reply::Set(items) => encode_items(if resp3 { b'~' } else { b'*' }, items, proto, out),
            Reply::Double(x) => {
                let text = double_text(*x);
                if resp3 {
                    encode_line(b',', &text, out);
                } else {
                    encode_bulk(text.as_bytes(), out);
                }
            }
            Reply::Boolean(b) if resp3 => {
                out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
            }
            Reply::Boolean(b) => Reply::Integer(i64::from(*b)).write_as(proto, out),
            Reply::Verbatim { format, text } if resp3 => {
                // The format is three bytes and a colon, counted in the length.
                let mut head = [b' '; 3];
                for (slot, b) in head.iter_mut().zip(format.bytes()) {
                    *slot = b;
                }
                encode_header(b'=', text.len() + 4, out);
                out.extend_from_slice(&head);
                out.push(b':');
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Verbatim { text, .. } => encode_bulk(text, out),
            Reply::BigNumber(digits) if resp3 => encode_line(b'(', digits, out),
            Reply::BigNumber(digits) => encode_bulk(digits.as_bytes(), out),
        }
    }

    /// The reply in RESP2, as [`write_to`](Self::write_to) writes it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// The reply in `proto`, as [`write_as`](Self::write_as) writes it.
    pub fn to_bytes_as(&self, proto: Protocol) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_as(proto, &mut out);
        out
    }
}

/// A double as Redis writes one: `inf`, `-inf`, `nan`, or the shortest
/// decimal that reads back as the same number.
pub fn double_text(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{x}")
    }
}

fn encode_items(kind: u8, items: &[Reply], proto: Protocol, out: &mut Vec<u8>) {
    encode_header(kind, items.len(), out);
    for item in items {
        item.write_as(proto, out);
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

    /// Each reply in RESP3 and in Redis's RESP2 fallback.
    pub(crate) fn resp3_kinds() -> Vec<(Reply, &'static [u8], &'static [u8])> {
        let bulk = |s: &str| Reply::Bulk(s.as_bytes().to_vec());
        vec![
            (Reply::Null, b"_\r\n", b"$-1\r\n"),
            (Reply::NullArray, b"_\r\n", b"*-1\r\n"),
            (
                Reply::map_of([
                    ("proto", Reply::Integer(3)),
                    ("modules", Reply::Array(vec![])),
                ]),
                b"%2\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n",
                b"*4\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n",
            ),
            (
                Reply::Set(vec![Reply::Simple("fast".into())]),
                b"~1\r\n+fast\r\n",
                b"*1\r\n+fast\r\n",
            ),
            (Reply::Double(1.5), b",1.5\r\n", b"$3\r\n1.5\r\n"),
            (Reply::Double(f64::INFINITY), b",inf\r\n", b"$3\r\ninf\r\n"),
            (Reply::Double(-3.0), b",-3\r\n", b"$2\r\n-3\r\n"),
            (Reply::Boolean(true), b"#t\r\n", b":1\r\n"),
            (Reply::Boolean(false), b"#f\r\n", b":0\r\n"),
            (
                Reply::text("a\r\nb"),
                b"=8\r\ntxt:a\r\nb\r\n",
                b"$4\r\na\r\nb\r\n",
            ),
            (
                Reply::BigNumber("-123456789012345678901234567890".into()),
                b"(-123456789012345678901234567890\r\n",
                b"$31\r\n-123456789012345678901234567890\r\n",
            ),
            (
                Reply::Array(vec![
                    Reply::Null,
                    Reply::Map(vec![(bulk("k"), Reply::Null)]),
                ]),
                b"*2\r\n_\r\n%1\r\n$1\r\nk\r\n_\r\n",
                b"*2\r\n$-1\r\n*2\r\n$1\r\nk\r\n$-1\r\n",
            ),
        ]
    }

    #[test]
    fn resp3_types_encode_as_redis_does_in_both_protocols() {
        for (reply, resp3, resp2) in resp3_kinds() {
            assert_eq!(reply.to_bytes_as(Protocol::Resp3), resp3, "{reply:?}");
            assert_eq!(reply.to_bytes_as(Protocol::Resp2), resp2, "{reply:?}");
            assert_eq!(reply.to_bytes(), resp2, "{reply:?}");
        }
        // RESP2's own kinds are the same bytes in RESP3.
        for (reply, bytes) in every_kind_of_reply() {
            if !matches!(reply, Reply::Null | Reply::NullArray | Reply::Array(_)) {
                assert_eq!(reply.to_bytes_as(Protocol::Resp3), bytes, "{reply:?}");
            }
        }
    }

    #[test]
    fn resp3_replies_parse_back() {
        for (reply, resp3, _) in resp3_kinds() {
            let want = match &reply {
                // `_` does not say which null it was.
                Reply::NullArray => Reply::Null,
                other => other.clone(),
            };
            assert_eq!(
                parse_reply(resp3),
                Ok(Some((want, resp3.len()))),
                "{reply:?}"
            );
            for cut in 0..resp3.len() {
                assert_eq!(
                    parse_reply(&resp3[..cut]),
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
