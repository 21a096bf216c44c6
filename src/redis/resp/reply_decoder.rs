//! Replies in, the client side (`netdb --connect`, the tests):
//! [`ReplyDecoder`] turns the bytes a node sent back into [`Reply`]s, in
//! RESP2 or RESP3 (the `_`, `,`, `#`, `(`, `=`, `!`, `%`, `~` and `>`
//! types; a push is read as an array).
//!
//! Owns reply parsing only; it must not encode (see [`super::reply`]).

use super::error::ProtocolError;
use super::reply::Reply;
use super::request::parse_int;

/// How deeply replies may nest arrays in arrays before [`ReplyDecoder`]
/// gives up (Redis's own replies nest a handful of levels at most).
pub const MAX_REPLY_DEPTH: usize = 128;

/// What an aggregate being filled becomes once complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Array,
    Set,
    /// Its items are names and values, alternately.
    Map,
}

/// Parses replies out of a buffer that a socket fills, remembering the
/// aggregates it is part-way through. Same contract as
/// [`RequestDecoder`](super::RequestDecoder):
/// between calls the buffer only grows at the end, until a reply is
/// returned; the caller then drops that many bytes from the front.
///
/// Nothing is allocated for an announced length: a bulk is copied once it
/// has all arrived, an aggregate grows element by element. Aggregates may
/// nest [`MAX_REPLY_DEPTH`] deep.
#[derive(Debug, Clone, Default)]
pub struct ReplyDecoder {
    /// How much of the reply in progress is parsed, from the buffer's start.
    pos: usize,
    /// The line being looked for has no `\r` before this offset.
    scanned: usize,
    /// Aggregates being filled, outermost first: their kind, their
    /// elements so far and how many are still to come.
    open: Vec<(Aggregate, Vec<Reply>, usize)>,
}

fn invalid(why: &'static str) -> ProtocolError {
    ProtocolError::InvalidReply { why }
}

impl ReplyDecoder {
    /// A decoder with nothing in progress.
    pub fn new() -> ReplyDecoder {
        ReplyDecoder::default()
    }

    /// Forgets the reply in progress.
    pub fn reset(&mut self) {
        *self = ReplyDecoder::default();
    }

    /// Parses the reply at the start of `buf`: `Ok(None)` while it is not
    /// all there yet, else the reply and how many bytes it took.
    pub fn decode(&mut self, buf: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
        if self.pos > buf.len() || self.scanned > buf.len() {
            self.reset();
        }
        let result = self.parse(buf);
        if !matches!(result, Ok(None)) {
            self.reset();
        }
        result
    }

    fn parse(&mut self, buf: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
        'element: loop {
            let start = self.pos;
            let kind = match buf.get(start) {
                None => return Ok(None),
                Some(
                    &kind @ (b'+' | b'-' | b':' | b'$' | b'*' | b'_' | b',' | b'#' | b'(' | b'='
                    | b'!' | b'%' | b'~' | b'>'),
                ) => kind,
                Some(&got) => return Err(ProtocolError::UnknownReplyType { got }),
            };
            let from = self.scanned.max(start);
            let Some(cr) = buf
                .get(from..)
                .and_then(|rest| rest.iter().position(|&b| b == b'\r'))
                .map(|i| from + i)
            else {
                self.scanned = buf.len();
                return Ok(None);
            };
            match buf.get(cr + 1) {
                None => {
                    self.scanned = cr;
                    return Ok(None);
                }
                Some(b'\n') => self.scanned = 0,
                Some(_) => return Err(invalid("line not ended by CRLF")),
            }
            let line = &buf[start + 1..cr];
            let mut next = cr + 2;
            let number = |why| parse_int(line).ok_or(invalid(why));
            let text = || String::from_utf8_lossy(line).into_owned();
            let mut value = match kind {
                b'+' => Reply::Simple(text()),
                b'-' => Reply::Error(text()),
                b':' => Reply::Integer(number("invalid integer")?),
                b'_' if line.is_empty() => Reply::Null,
                b'_' => return Err(invalid("invalid null")),
                b'#' => match line {
                    b"t" => Reply::Boolean(true),
                    b"f" => Reply::Boolean(false),
                    _ => return Err(invalid("invalid boolean")),
                },
                b',' => Reply::Double(parse_double(line).ok_or(invalid("invalid double"))?),
                b'(' if !line.is_empty()
                    && line
                        .strip_prefix(b"-")
                        .unwrap_or(line)
                        .iter()
                        .all(u8::is_ascii_digit) =>
                {
                    Reply::BigNumber(text())
                }
                b'(' => return Err(invalid("invalid big number")),
                b'$' | b'=' | b'!' => match number("invalid bulk length")? {
                    -1 if kind == b'$' => Reply::Null,
                    len => {
                        let len =
                            usize::try_from(len).map_err(|_| invalid("invalid bulk length"))?;
                        let Some(end) = next.checked_add(len) else {
                            return Ok(None);
                        };
                        // The header is read again next time; it is short.
                        let Some(data) = buf.get(next..end) else {
                            return Ok(None);
                        };
                        match buf.get(end..end.saturating_add(2)) {
                            None => return Ok(None),
                            Some(b"\r\n") => {}
                            Some(_) => return Err(invalid("bulk data not followed by CRLF")),
                        }
                        next = end + 2;
                        match kind {
                            b'$' => Reply::Bulk(data.to_vec()),
                            b'!' => Reply::Error(String::from_utf8_lossy(data).into_owned()),
                            _ => match data {
                                [a, b, c, b':', text @ ..] => Reply::Verbatim {
                                    format: String::from_utf8_lossy(&[*a, *b, *c]).into_owned(),
                                    text: text.to_vec(),
                                },
                                _ => return Err(invalid("invalid verbatim string")),
                            },
                        }
                    }
                },
                b'*' | b'%' | b'~' | b'>' => match number("invalid multibulk length")? {
                    -1 if kind == b'*' => Reply::NullArray,
                    count => {
                        let count = usize::try_from(count)
                            .map_err(|_| invalid("invalid multibulk length"))?;
                        let (aggregate, items) = match kind {
                            b'%' => (
                                Aggregate::Map,
                                count
                                    .checked_mul(2)
                                    .ok_or(invalid("invalid multibulk length"))?,
                            ),
                            b'~' => (Aggregate::Set, count),
                            _ => (Aggregate::Array, count),
                        };
                        if items == 0 {
                            finish(aggregate, Vec::new())
                        } else {
                            if self.open.len() == MAX_REPLY_DEPTH {
                                return Err(invalid("replies nested too deeply"));
                            }
                            self.open
                                .push((aggregate, Vec::with_capacity(items.min(64)), items));
                            self.pos = next;
                            continue 'element;
                        }
                    }
                },
                // Checked before the line was looked for.
                got => return Err(ProtocolError::UnknownReplyType { got }),
            };
            self.pos = next;
            while let Some((aggregate, mut items, remaining)) = self.open.pop() {
                items.push(value);
                if remaining > 1 {
                    self.open.push((aggregate, items, remaining - 1));
                    continue 'element;
                }
                value = finish(aggregate, items);
            }
            return Ok(Some((value, self.pos)));
        }
    }
}

/// A complete aggregate as a reply.
fn finish(aggregate: Aggregate, items: Vec<Reply>) -> Reply {
    match aggregate {
        Aggregate::Array => Reply::Array(items),
        Aggregate::Set => Reply::Set(items),
        Aggregate::Map => {
            let mut pairs = Vec::with_capacity(items.len() / 2);
            let mut items = items.into_iter();
            while let (Some(name), Some(value)) = (items.next(), items.next()) {
                pairs.push((name, value));
            }
            Reply::Map(pairs)
        }
    }
}

/// A RESP3 double: `inf`, `-inf`, `nan` or a decimal.
fn parse_double(line: &[u8]) -> Option<f64> {
    match line {
        b"inf" => Some(f64::INFINITY),
        b"-inf" => Some(f64::NEG_INFINITY),
        b"nan" => Some(f64::NAN),
        _ => std::str::from_utf8(line).ok()?.parse().ok(),
    }
}

/// Parses one reply from the start of `buf`, from scratch: `Ok(None)` until
/// it is all there, then the reply and the bytes it took. See
/// [`ReplyDecoder`], which remembers its progress between calls.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
    ReplyDecoder::new().decode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::resp::reply::tests::every_kind_of_reply;
    use proptest::prelude::*;

    #[test]
    fn replies_fed_a_byte_at_a_time() {
        let mut stream = Vec::new();
        let want: Vec<Reply> = every_kind_of_reply().into_iter().map(|(r, _)| r).collect();
        for reply in &want {
            reply.write_to(&mut stream);
        }
        let mut decoder = ReplyDecoder::new();
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for &b in &stream {
            buf.push(b);
            while let Some((reply, used)) = decoder.decode(&buf).expect("valid") {
                buf.drain(..used);
                got.push(reply);
            }
        }
        assert_eq!(got, want);
        assert!(buf.is_empty());
    }

    #[test]
    fn malformed_replies() {
        let invalid = |why| Err(ProtocolError::InvalidReply { why });
        assert_eq!(
            parse_reply(b"|1\r\n"),
            Err(ProtocolError::UnknownReplyType { got: b'|' })
        );
        assert_eq!(parse_reply(b":12a\r\n"), invalid("invalid integer"));
        assert_eq!(parse_reply(b":\r\n"), invalid("invalid integer"));
        assert_eq!(parse_reply(b"$-2\r\n"), invalid("invalid bulk length"));
        assert_eq!(parse_reply(b"*-2\r\n"), invalid("invalid multibulk length"));
        assert_eq!(parse_reply(b"%-1\r\n"), invalid("invalid multibulk length"));
        assert_eq!(parse_reply(b"_x\r\n"), invalid("invalid null"));
        assert_eq!(parse_reply(b"#x\r\n"), invalid("invalid boolean"));
        assert_eq!(parse_reply(b",1.5x\r\n"), invalid("invalid double"));
        assert_eq!(parse_reply(b"(12a\r\n"), invalid("invalid big number"));
        assert_eq!(
            parse_reply(b"=2\r\nab\r\n"),
            invalid("invalid verbatim string")
        );
        assert_eq!(
            parse_reply(b"!5\r\nERR x\r\n"),
            Ok(Some((Reply::Error("ERR x".into()), 11)))
        );
        assert_eq!(
            parse_reply(b">2\r\n+a\r\n:1\r\n"),
            Ok(Some((
                Reply::Array(vec![Reply::Simple("a".into()), Reply::Integer(1)]),
                12
            )))
        );
        assert_eq!(parse_reply(b"+OK\rX"), invalid("line not ended by CRLF"));
        assert_eq!(
            parse_reply(b"\r\n"),
            Err(ProtocolError::UnknownReplyType { got: b'\r' })
        );
        assert_eq!(
            parse_reply(b"$3\r\nfooXY"),
            invalid("bulk data not followed by CRLF")
        );
        assert_eq!(
            parse_reply(b"*1\r\n*1\r\n&\r\n"),
            Err(ProtocolError::UnknownReplyType { got: b'&' })
        );
        let deep = b"*1\r\n".repeat(MAX_REPLY_DEPTH + 1);
        assert_eq!(parse_reply(&deep), invalid("replies nested too deeply"));
        let mut ok_deep = b"*1\r\n".repeat(MAX_REPLY_DEPTH);
        ok_deep.extend_from_slice(b":1\r\n");
        assert!(matches!(parse_reply(&ok_deep), Ok(Some(_))));
    }

    #[test]
    fn a_huge_announced_reply_reserves_nothing() {
        let mut decoder = ReplyDecoder::new();
        assert_eq!(decoder.decode(b"*2147483647\r\n$2147483647\r\n"), Ok(None));
        assert!(decoder
            .open
            .iter()
            .all(|(_, items, _)| items.capacity() <= 64));
    }

    fn any_reply() -> impl Strategy<Value = Reply> {
        let text = "[^\r\n]{0,12}";
        let leaf = prop_oneof![
            text.prop_map(Reply::Simple),
            text.prop_map(Reply::Error),
            any::<i64>().prop_map(Reply::Integer),
            proptest::collection::vec(any::<u8>(), 0..24).prop_map(Reply::Bulk),
            Just(Reply::Null),
            Just(Reply::NullArray),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            proptest::collection::vec(inner, 0..6).prop_map(Reply::Array)
        })
    }

    proptest! {
        #![proptest_config(crate::proptest_config("tests/regressions/resp.txt"))]

        #[test]
        fn replies_round_trip(reply in any_reply()) {
            let bytes = reply.to_bytes();
            prop_assert_eq!(parse_reply(&bytes), Ok(Some((reply, bytes.len()))));
        }
    }
}
