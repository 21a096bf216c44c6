//! The Redis wire protocol, RESP2: requests in, replies out.
//!
//! Server side, [`RequestDecoder`] (or the one-shot [`parse_request`] and
//! [`parse_pipeline`]) turns the bytes a client sent into [`Request`]s, in
//! both forms Redis accepts: multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`,
//! what client libraries send) and inline (`GET k\r\n`, what a person types
//! into telnet, with redis-cli's quoting). [`Reply::write_to`] encodes the
//! answer. Client side, for `netdb --connect`: [`encode_command`] and
//! [`ReplyDecoder`] (or the one-shot [`parse_reply`]).
//!
//! Pure: it works on byte slices that the caller fills from a socket and
//! drains, and never touches a socket, a thread or the clock. It must never
//! trust a length it reads: every announced count or length is checked
//! against [`Limits`] before anything is allocated for it, memory grows
//! only with bytes that have arrived, and malformed input is a
//! [`ProtocolError`] carrying Redis's own text, never a panic.
//!
//! # Feeding a decoder
//!
//! ```text
//! loop {
//!     read from the socket, appending to buf
//!     let batch = decoder.decode_batch(&buf, 64);
//!     buf.drain(..batch.consumed);
//!     run batch.requests, write their replies
//!     if let Some(e) = batch.error { write e.to_reply(), close }
//! }
//! ```
//!
//! A decoder remembers how far into the request in progress it has parsed,
//! so a request that arrives in many reads is parsed once, not once per
//! read. In exchange the caller keeps its buffer as it was between calls,
//! only appending, and drops exactly the consumed bytes from the front.
//!
//! # Where this is stricter than Redis
//!
//! Redis skips the two bytes after a bulk argument, and the byte after the
//! `\r` of a `*`/`$` line, without looking at them; here they must be
//! `\r\n`, so a client that miscounts a length gets an error rather than a
//! desynchronised stream. Redis looks for the end of a `$` line before it
//! checks the `$`; here a wrong first byte is an error as soon as it
//! arrives. Redis has no limit on a whole request's size or an inline
//! request's argument count ([`Limits::max_request_len`] and
//! [`Limits::max_args`] are ours), so those two errors have texts of ours.

use std::fmt;

/// Redis's limit on a bulk argument (`proto-max-bulk-len`).
pub const DEFAULT_MAX_BULK_LEN: usize = 512 * 1024 * 1024;
/// Redis's limit on an inline line and on a `*`/`$` line
/// (`PROTO_INLINE_MAX_SIZE`).
pub const DEFAULT_MAX_INLINE_LEN: usize = 64 * 1024;
/// Redis's limit on the arguments of one request before version 6.2.
pub const DEFAULT_MAX_ARGS: usize = 1024 * 1024;
/// Redis's limit on a client's query buffer (`client-query-buffer-limit`).
pub const DEFAULT_MAX_REQUEST_LEN: usize = 1024 * 1024 * 1024;
/// How deeply replies may nest arrays in arrays before [`ReplyDecoder`]
/// gives up (Redis's own replies nest a handful of levels at most).
pub const MAX_REPLY_DEPTH: usize = 128;

/// How much one request may ask for. Every length a client announces is
/// checked against these before any memory is set aside for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Arguments in one request, multibulk or inline.
    pub max_args: usize,
    /// Bytes in one multibulk argument.
    pub max_bulk_len: usize,
    /// Bytes in an inline line before its `\n` (a `\r` before the `\n`
    /// counts), and in a `*<count>` or `$<len>` line before its `\r`.
    pub max_inline_len: usize,
    /// Bytes in one whole multibulk request, headers included. (An inline
    /// request is bounded by `max_inline_len` instead.)
    pub max_request_len: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_args: DEFAULT_MAX_ARGS,
            max_bulk_len: DEFAULT_MAX_BULK_LEN,
            max_inline_len: DEFAULT_MAX_INLINE_LEN,
            max_request_len: DEFAULT_MAX_REQUEST_LEN,
        }
    }
}

/// One command from a client: its arguments, the command name first.
/// Empty for a blank inline line or a `*0` request, which run nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The arguments, as sent.
    pub args: Vec<Vec<u8>>,
}

impl Request {
    /// Whether there is nothing to run (a blank line or `*0`).
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// The number of arguments, the command name included.
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// Appends the request in multibulk form, as [`encode_command`] does.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_header(b'*', self.args.len(), out);
        for arg in &self.args {
            encode_bulk(arg, out);
        }
    }
}

impl From<Vec<Vec<u8>>> for Request {
    fn from(args: Vec<Vec<u8>>) -> Request {
        Request { args }
    }
}

/// Bytes that are not the protocol. On the server the connection is
/// answered with [`ProtocolError::to_reply`] and closed, as Redis does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// A `*<count>` line that is not a number or is over
    /// [`Limits::max_args`].
    InvalidMultibulkLength,
    /// A `$<len>` line that is not a number, is negative or is over
    /// [`Limits::max_bulk_len`].
    InvalidBulkLength,
    /// A multibulk argument that does not start with `$`.
    ExpectedDollar {
        /// The byte found instead.
        got: u8,
    },
    /// An inline line with an unclosed quote, or a closing quote followed
    /// by something other than a space.
    UnbalancedQuotes,
    /// An inline line over [`Limits::max_inline_len`].
    TooBigInlineRequest,
    /// A `*<count>` line over [`Limits::max_inline_len`].
    TooBigMbulkCount,
    /// A `$<len>` line over [`Limits::max_inline_len`].
    TooBigBulkCount,
    /// A bulk argument whose announced length is not followed by `\r\n`.
    BulkNotTerminated,
    /// An inline request with more than [`Limits::max_args`] arguments.
    TooManyInlineArgs {
        /// The limit.
        max: usize,
    },
    /// A multibulk request over [`Limits::max_request_len`] in all.
    TooBigRequest {
        /// The limit.
        max: usize,
    },
    /// A reply starting with a byte that is no RESP2 type.
    UnknownReplyType {
        /// The byte found.
        got: u8,
    },
    /// A reply that is malformed in some other way.
    InvalidReply {
        /// What is wrong with it.
        why: &'static str,
    },
}

impl ProtocolError {
    /// The error reply Redis sends before closing the connection:
    /// `-ERR Protocol error: ...`.
    pub fn to_reply(&self) -> Reply {
        Reply::Error(format!("ERR {self}"))
    }
}

/// A byte as Redis's `'%c'` shows it, except that an unprintable byte is
/// written `\xHH` rather than sent raw.
struct Shown(u8);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() || self.0 == b' ' {
            write!(f, "{}", char::from(self.0))
        } else {
            write!(f, "\\x{:02x}", self.0)
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::InvalidMultibulkLength => {
                write!(f, "Protocol error: invalid multibulk length")
            }
            ProtocolError::InvalidBulkLength => write!(f, "Protocol error: invalid bulk length"),
            ProtocolError::ExpectedDollar { got } => {
                write!(f, "Protocol error: expected '$', got '{}'", Shown(*got))
            }
            ProtocolError::UnbalancedQuotes => {
                write!(f, "Protocol error: unbalanced quotes in request")
            }
            ProtocolError::TooBigInlineRequest => {
                write!(f, "Protocol error: too big inline request")
            }
            ProtocolError::TooBigMbulkCount => {
                write!(f, "Protocol error: too big mbulk count string")
            }
            ProtocolError::TooBigBulkCount => {
                write!(f, "Protocol error: too big bulk count string")
            }
            ProtocolError::BulkNotTerminated => {
                write!(f, "Protocol error: bulk data not followed by CRLF")
            }
            ProtocolError::TooManyInlineArgs { max } => {
                write!(
                    f,
                    "Protocol error: more than {max} arguments in inline request"
                )
            }
            ProtocolError::TooBigRequest { max } => {
                write!(f, "Protocol error: request over the limit of {max} bytes")
            }
            ProtocolError::UnknownReplyType { got } => {
                write!(
                    f,
                    "Protocol error, got '{}' as reply type byte",
                    Shown(*got)
                )
            }
            ProtocolError::InvalidReply { why } => write!(f, "Protocol error: {why}"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Parses Redis's decimal integers (`string2ll`): an optional `-`, then
/// digits with no leading zero (`0` alone excepted), nothing else, in range.
fn parse_int(s: &[u8]) -> Option<i64> {
    // Redis refuses 21 characters or more before looking at them.
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut value: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    let value = i128::from(value);
    i64::try_from(if negative { -value } else { value }).ok()
}

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
fn split_inline(line: &[u8], max_args: usize) -> Result<Vec<Vec<u8>>, ProtocolError> {
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

/// Parses requests out of a buffer that a socket fills, remembering how
/// far it got in the request in progress.
///
/// The contract: between calls the caller's buffer keeps its bytes and
/// only grows at the end, until a call reports bytes consumed; the caller
/// then drops exactly those bytes from the front. After an error the
/// decoder starts afresh (the connection should be closed anyway).
#[derive(Debug, Clone)]
pub struct RequestDecoder {
    limits: Limits,
    /// How much of the request in progress is parsed, from the buffer's start.
    pos: usize,
    /// The line being looked for has no terminator before this offset.
    scanned: usize,
    /// Multibulk arguments still to come; 0 when no multibulk request is
    /// in progress.
    remaining: usize,
    /// The multibulk arguments complete so far.
    args: Vec<Vec<u8>>,
    /// The length of the argument whose `$<len>` line has been read.
    bulk_len: Option<usize>,
}

/// What [`RequestDecoder::decode_batch`] found in a buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// The complete requests, in order; blank lines and `*0` are left out.
    pub requests: Vec<Request>,
    /// How many bytes the caller now drops from the front of its buffer.
    pub consumed: usize,
    /// The error that stopped parsing, if any. The requests before it are
    /// good, and Redis runs them before it sends the error and closes.
    pub error: Option<ProtocolError>,
}

impl RequestDecoder {
    /// A decoder that enforces `limits`.
    pub fn new(limits: Limits) -> RequestDecoder {
        RequestDecoder {
            limits,
            pos: 0,
            scanned: 0,
            remaining: 0,
            args: Vec::new(),
            bulk_len: None,
        }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Forgets the request in progress, for a buffer that starts afresh.
    pub fn reset(&mut self) {
        *self = RequestDecoder::new(self.limits);
    }

    /// Parses the request at the start of `buf`: `Ok(None)` while it is not
    /// all there yet (it may be cut at any byte), else the request and how
    /// many bytes it took. A blank inline line or `*0` gives an empty
    /// [`Request`], whose bytes are consumed like any other.
    pub fn decode(&mut self, buf: &[u8]) -> Result<Option<(Request, usize)>, ProtocolError> {
        if self.pos > buf.len() || self.scanned > buf.len() {
            // The caller broke the contract and dropped bytes mid-request;
            // parsing again from its buffer's start is the best guess.
            self.reset();
        }
        let result = if self.remaining > 0 {
            self.continue_multibulk(buf)
        } else {
            match buf.first() {
                None => Ok(None),
                Some(b'*') => self.start_multibulk(buf),
                Some(_) => self.inline(buf),
            }
        };
        if !matches!(result, Ok(None)) {
            self.reset();
        }
        result
    }

    /// Parses up to `max_requests` pipelined requests from the start of
    /// `buf`, by calling [`decode`](Self::decode) until the buffer runs out
    /// of complete requests, the batch is full, or the bytes are wrong.
    /// Bytes of an incomplete last request stay unconsumed (and the
    /// decoder remembers its progress in them).
    pub fn decode_batch(&mut self, buf: &[u8], max_requests: usize) -> Batch {
        let mut batch = Batch::default();
        while batch.requests.len() < max_requests {
            match self.decode(&buf[batch.consumed..]) {
                Ok(Some((request, used))) => {
                    batch.consumed += used;
                    if !request.is_empty() {
                        batch.requests.push(request);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    batch.error = Some(e);
                    break;
                }
            }
        }
        batch
    }

    /// The offset of the first `byte` in the line that starts at `start`,
    /// looking no further than a line of [`Limits::max_inline_len`] bytes
    /// can reach; `too_big` when the line is longer than that.
    fn find_in_line(
        &mut self,
        buf: &[u8],
        start: usize,
        byte: u8,
        too_big: ProtocolError,
    ) -> Result<Option<usize>, ProtocolError> {
        let reach = start
            .saturating_add(self.limits.max_inline_len)
            .saturating_add(1);
        let end = buf.len().min(reach);
        let from = self.scanned.max(start);
        if let Some(found) = buf
            .get(from..end)
            .and_then(|s| s.iter().position(|&b| b == byte))
        {
            self.scanned = 0;
            return Ok(Some(from + found));
        }
        if buf.len() >= reach {
            return Err(too_big);
        }
        self.scanned = end;
        Ok(None)
    }

    fn inline(&mut self, buf: &[u8]) -> Result<Option<(Request, usize)>, ProtocolError> {
        let Some(newline) = self.find_in_line(buf, 0, b'\n', ProtocolError::TooBigInlineRequest)?
        else {
            return Ok(None);
        };
        let line = &buf[..newline];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let args = split_inline(line, self.limits.max_args)?;
        Ok(Some((Request { args }, newline + 1)))
    }

    /// Reads a `*<count>` or `$<len>` line starting at `start` (on its type
    /// byte): the number, and the offset just after the line's `\r\n`.
    fn number_line(
        &mut self,
        buf: &[u8],
        start: usize,
        too_big: ProtocolError,
        invalid: ProtocolError,
    ) -> Result<Option<(i64, usize)>, ProtocolError> {
        let Some(cr) = self.find_in_line(buf, start, b'\r', too_big)? else {
            return Ok(None);
        };
        match buf.get(cr + 1) {
            None => {
                // Found next time straight away.
                self.scanned = cr;
                Ok(None)
            }
            Some(b'\n') => {
                let number = buf.get(start + 1..cr).and_then(parse_int).ok_or(invalid)?;
                Ok(Some((number, cr + 2)))
            }
            Some(_) => Err(invalid),
        }
    }

    fn start_multibulk(&mut self, buf: &[u8]) -> Result<Option<(Request, usize)>, ProtocolError> {
        let invalid = ProtocolError::InvalidMultibulkLength;
        let Some((count, next)) =
            self.number_line(buf, 0, ProtocolError::TooBigMbulkCount, invalid.clone())?
        else {
            return Ok(None);
        };
        if count <= 0 {
            // Redis takes `*0` and `*-1` as a request with nothing to run.
            return Ok(Some((Request::default(), next)));
        }
        let count = usize::try_from(count)
            .ok()
            .filter(|&n| n <= self.limits.max_args)
            .ok_or(invalid)?;
        self.pos = next;
        self.remaining = count;
        // Room for the arguments grows as they arrive, not as announced.
        self.args = Vec::with_capacity(count.min(64));
        self.continue_multibulk(buf)
    }

    fn continue_multibulk(
        &mut self,
        buf: &[u8],
    ) -> Result<Option<(Request, usize)>, ProtocolError> {
        while self.remaining > 0 {
            let len = match self.bulk_len {
                Some(len) => len,
                None => match self.bulk_header(buf)? {
                    Some(len) => len,
                    None => return Ok(None),
                },
            };
            let end = self.pos.saturating_add(len);
            let Some(data) = buf.get(self.pos..end) else {
                return Ok(None);
            };
            match buf.get(end..end.saturating_add(2)) {
                None => return Ok(None),
                Some(b"\r\n") => {}
                Some(_) => return Err(ProtocolError::BulkNotTerminated),
            }
            self.args.push(data.to_vec());
            self.pos = end + 2;
            self.bulk_len = None;
            self.remaining -= 1;
        }
        let request = Request {
            args: std::mem::take(&mut self.args),
        };
        Ok(Some((request, self.pos)))
    }

    /// Reads the `$<len>` line at `self.pos` and checks the length against
    /// the limits, before a byte of the argument is awaited.
    fn bulk_header(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        match buf.get(self.pos) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(&got) => return Err(ProtocolError::ExpectedDollar { got }),
        }
        let invalid = ProtocolError::InvalidBulkLength;
        let Some((len, next)) = self.number_line(
            buf,
            self.pos,
            ProtocolError::TooBigBulkCount,
            invalid.clone(),
        )?
        else {
            return Ok(None);
        };
        let len = usize::try_from(len)
            .ok()
            .filter(|&n| n <= self.limits.max_bulk_len)
            .ok_or(invalid)?;
        if next.saturating_add(len).saturating_add(2) > self.limits.max_request_len {
            return Err(ProtocolError::TooBigRequest {
                max: self.limits.max_request_len,
            });
        }
        self.pos = next;
        self.bulk_len = Some(len);
        Ok(Some(len))
    }
}

/// Parses one request from the start of `buf`, from scratch: `Ok(None)`
/// until it is all there, then the request and the bytes it took. See
/// [`RequestDecoder::decode`], which also remembers its progress between
/// calls and so suits a connection better.
pub fn parse_request(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(Request, usize)>, ProtocolError> {
    RequestDecoder::new(*limits).decode(buf)
}

/// Parses up to `max_requests` pipelined requests from the start of `buf`,
/// from scratch: [`parse_request`] in a loop, stopping at the first
/// incomplete request or error. See [`RequestDecoder::decode_batch`].
pub fn parse_pipeline(buf: &[u8], limits: &Limits, max_requests: usize) -> Batch {
    RequestDecoder::new(*limits).decode_batch(buf, max_requests)
}

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

fn encode_header(kind: u8, len: usize, out: &mut Vec<u8>) {
    out.push(kind);
    push_decimal(out, false, len as u64);
    out.extend_from_slice(b"\r\n");
}

fn encode_bulk(data: &[u8], out: &mut Vec<u8>) {
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

/// Parses replies out of a buffer that a socket fills, remembering the
/// arrays it is part-way through. Same contract as [`RequestDecoder`]:
/// between calls the buffer only grows at the end, until a reply is
/// returned; the caller then drops that many bytes from the front.
///
/// Nothing is allocated for an announced length: a bulk is copied once it
/// has all arrived, an array grows element by element. Arrays may nest
/// [`MAX_REPLY_DEPTH`] deep.
#[derive(Debug, Clone, Default)]
pub struct ReplyDecoder {
    /// How much of the reply in progress is parsed, from the buffer's start.
    pos: usize,
    /// The line being looked for has no `\r` before this offset.
    scanned: usize,
    /// Arrays being filled, outermost first: their elements so far and how
    /// many are still to come.
    open: Vec<(Vec<Reply>, usize)>,
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
                Some(&kind @ (b'+' | b'-' | b':' | b'$' | b'*')) => kind,
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
                Some(_) => {
                    return Err(ProtocolError::InvalidReply {
                        why: "line not ended by CRLF",
                    })
                }
            }
            let line = &buf[start + 1..cr];
            let mut next = cr + 2;
            let number = |why| parse_int(line).ok_or(ProtocolError::InvalidReply { why });
            let mut value = match kind {
                b'+' => Reply::Simple(String::from_utf8_lossy(line).into_owned()),
                b'-' => Reply::Error(String::from_utf8_lossy(line).into_owned()),
                b':' => Reply::Integer(number("invalid integer")?),
                b'$' => match number("invalid bulk length")? {
                    -1 => Reply::Null,
                    len => {
                        let len =
                            usize::try_from(len).map_err(|_| ProtocolError::InvalidReply {
                                why: "invalid bulk length",
                            })?;
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
                            Some(_) => {
                                return Err(ProtocolError::InvalidReply {
                                    why: "bulk data not followed by CRLF",
                                })
                            }
                        }
                        next = end + 2;
                        Reply::Bulk(data.to_vec())
                    }
                },
                b'*' => match number("invalid multibulk length")? {
                    -1 => Reply::NullArray,
                    0 => Reply::Array(Vec::new()),
                    count => {
                        let count =
                            usize::try_from(count).map_err(|_| ProtocolError::InvalidReply {
                                why: "invalid multibulk length",
                            })?;
                        if self.open.len() == MAX_REPLY_DEPTH {
                            return Err(ProtocolError::InvalidReply {
                                why: "replies nested too deeply",
                            });
                        }
                        self.open.push((Vec::with_capacity(count.min(64)), count));
                        self.pos = next;
                        continue 'element;
                    }
                },
                // Checked before the line was looked for.
                got => return Err(ProtocolError::UnknownReplyType { got }),
            };
            self.pos = next;
            while let Some((mut items, remaining)) = self.open.pop() {
                items.push(value);
                if remaining > 1 {
                    self.open.push((items, remaining - 1));
                    continue 'element;
                }
                value = Reply::Array(items);
            }
            return Ok(Some((value, self.pos)));
        }
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
    use proptest::prelude::*;

    fn args(list: &[&[u8]]) -> Request {
        Request {
            args: list.iter().map(|a| a.to_vec()).collect(),
        }
    }

    fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, ProtocolError> {
        parse_request(buf, &Limits::default())
    }

    /// The whole of `buf` as one request.
    fn one(buf: &[u8]) -> Request {
        match parse(buf) {
            Ok(Some((request, used))) => {
                assert_eq!(used, buf.len(), "{}", buf.escape_ascii());
                request
            }
            other => panic!("{}: {other:?}", buf.escape_ascii()),
        }
    }

    fn error(buf: &[u8], limits: &Limits) -> ProtocolError {
        match parse_request(buf, limits) {
            Err(e) => e,
            other => panic!("{}: expected an error, got {other:?}", buf.escape_ascii()),
        }
    }

    fn small() -> Limits {
        Limits {
            max_args: 4,
            max_bulk_len: 16,
            max_inline_len: 8,
            max_request_len: 64,
        }
    }

    fn encoded(list: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_command(list, &mut out);
        out
    }

    #[test]
    fn multibulk_requests() {
        assert_eq!(
            one(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
            args(&[b"GET", b"k"])
        );
        assert_eq!(one(b"*1\r\n$0\r\n\r\n"), args(&[b""]));
        assert_eq!(
            one(b"*1\r\n$4\r\na\r\nb\r\n"),
            args(&[b"a\r\nb"]),
            "CRLF inside a bulk is data"
        );
        let every_byte: Vec<u8> = (0..=255).collect();
        assert_eq!(
            one(&encoded(&[b"SET", &every_byte])),
            args(&[b"SET", &every_byte])
        );
    }

    #[test]
    fn empty_multibulk_requests_are_consumed_with_nothing_to_run() {
        assert_eq!(parse(b"*0\r\n"), Ok(Some((Request::default(), 4))));
        assert_eq!(parse(b"*-1\r\n"), Ok(Some((Request::default(), 5))));
        assert_eq!(parse(b"*-7\r\nPING"), Ok(Some((Request::default(), 5))));
    }

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

    /// Feeds `stream` to one decoder a byte at a time, as a socket might,
    /// draining what it consumes; returns every non-empty request.
    fn trickle(stream: &[u8], limits: Limits) -> Result<Vec<Request>, ProtocolError> {
        let mut decoder = RequestDecoder::new(limits);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for &b in stream {
            buf.push(b);
            while let Some((request, used)) = decoder.decode(&buf)? {
                buf.drain(..used);
                if !request.is_empty() {
                    got.push(request);
                }
            }
        }
        assert!(buf.is_empty(), "left over: {}", buf.escape_ascii());
        Ok(got)
    }

    #[test]
    fn a_request_cut_anywhere_waits_for_the_rest() {
        for full in [
            encoded(&[b"SET", b"key", b"a value\r\n"]),
            b"set \"a b\" 'c'\r\n".to_vec(),
            b"*0\r\n".to_vec(),
        ] {
            let whole = parse(&full);
            assert!(matches!(whole, Ok(Some((_, n))) if n == full.len()));
            for cut in 0..full.len() {
                assert_eq!(parse(&full[..cut]), Ok(None), "cut at {cut}");
            }
            let mut decoder = RequestDecoder::new(Limits::default());
            for cut in 0..full.len() {
                assert_eq!(decoder.decode(&full[..cut]), Ok(None), "cut at {cut}");
            }
            assert_eq!(decoder.decode(&full), whole);
        }
    }

    #[test]
    fn a_decoder_keeps_its_progress_between_reads() {
        let list: Vec<Vec<u8>> = (0..20_000u32).map(|n| n.to_string().into_bytes()).collect();
        let refs: Vec<&[u8]> = list.iter().map(Vec::as_slice).collect();
        let stream = encoded(&refs);
        let mut decoder = RequestDecoder::new(Limits::default());
        let half = stream.len() / 2;
        assert_eq!(decoder.decode(&stream[..half]), Ok(None));
        // The first half's arguments are parsed once and kept, not parsed
        // again on every read.
        assert!(decoder.args.len() > 5_000, "{}", decoder.args.len());
        let mut got = None;
        for end in (half..=stream.len()).step_by(1000).chain([stream.len()]) {
            if let Some(done) = decoder.decode(&stream[..end]).expect("valid") {
                got = Some(done);
                break;
            }
        }
        assert_eq!(got, Some((Request { args: list }, stream.len())));
    }

    #[test]
    fn a_pipeline_fed_a_byte_at_a_time_gives_the_same_requests() {
        let mut stream = encoded(&[b"SET", b"k", b"v"]);
        stream.extend_from_slice(b"\r\nGET k\r\n");
        stream.extend(encoded(&[b"DEL", b"k"]));
        stream.extend_from_slice(b"*0\r\nPING\n");
        let want = vec![
            args(&[b"SET", b"k", b"v"]),
            args(&[b"GET", b"k"]),
            args(&[b"DEL", b"k"]),
            args(&[b"PING"]),
        ];
        assert_eq!(trickle(&stream, Limits::default()), Ok(want.clone()));
        let batch = parse_pipeline(&stream, &Limits::default(), 100);
        assert_eq!(
            batch,
            Batch {
                requests: want,
                consumed: stream.len(),
                error: None
            }
        );
    }

    #[test]
    fn a_batch_stops_at_its_size_at_an_incomplete_request_and_at_an_error() {
        let mut stream = b"PING\r\nPING\r\nPING\r\n".to_vec();
        let limits = Limits::default();
        let batch = parse_pipeline(&stream, &limits, 2);
        assert_eq!(batch.requests.len(), 2);
        assert_eq!(batch.consumed, 12);

        stream.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$1");
        let mut decoder = RequestDecoder::new(limits);
        let batch = decoder.decode_batch(&stream, 10);
        assert_eq!((batch.requests.len(), batch.consumed), (3, 18));
        stream.drain(..batch.consumed);
        stream.extend_from_slice(b"\r\nk\r\n");
        let batch = decoder.decode_batch(&stream, 10);
        assert_eq!(batch.requests, vec![args(&[b"GET", b"k"])]);
        assert_eq!(batch.consumed, stream.len());

        let batch = parse_pipeline(b"PING\r\n*1\r\nx\r\nPING\r\n", &limits, 10);
        assert_eq!(batch.requests, vec![args(&[b"PING"])]);
        assert_eq!(batch.consumed, 6);
        assert_eq!(
            batch.error,
            Some(ProtocolError::ExpectedDollar { got: b'x' })
        );
    }

    #[test]
    fn bad_counts_and_lengths() {
        let limits = Limits::default();
        for bad in [
            &b"*abc\r\n"[..],
            b"*1x\r\n",
            b"*01\r\n",
            b"*+1\r\n",
            b"*\r\n",
            b"* 1\r\n",
            b"*-0\r\n",
            b"*99999999999999999999\r\n",
            b"*1048577\r\n",
            b"*1\rX",
        ] {
            assert_eq!(
                error(bad, &limits),
                ProtocolError::InvalidMultibulkLength,
                "{}",
                bad.escape_ascii()
            );
        }
        for bad in [
            &b"*1\r\n$-1\r\n"[..],
            b"*1\r\n$-5\r\n",
            b"*1\r\n$abc\r\n",
            b"*1\r\n$3x\r\n",
            b"*1\r\n$\r\n",
            b"*1\r\n$3\rX",
            b"*1\r\n$536870913\r\n",
        ] {
            assert_eq!(
                error(bad, &limits),
                ProtocolError::InvalidBulkLength,
                "{}",
                bad.escape_ascii()
            );
        }
    }

    #[test]
    fn a_bulk_must_start_with_a_dollar_and_end_with_crlf() {
        let limits = Limits::default();
        assert_eq!(
            error(b"*1\r\nx3\r\n", &limits),
            ProtocolError::ExpectedDollar { got: b'x' }
        );
        assert_eq!(
            error(b"*2\r\n$1\r\na\r\n:1\r\n", &limits),
            ProtocolError::ExpectedDollar { got: b':' }
        );
        assert_eq!(
            error(b"*1\r\n$3\r\nfooXY", &limits),
            ProtocolError::BulkNotTerminated
        );
        assert_eq!(
            error(b"*1\r\n$3\r\nfoo\n\r", &limits),
            ProtocolError::BulkNotTerminated
        );
    }

    #[test]
    fn limits_are_enforced_before_the_bytes_arrive() {
        let limits = small();
        // Lengths over the limits fail on their header alone.
        assert_eq!(
            error(b"*5\r\n", &limits),
            ProtocolError::InvalidMultibulkLength
        );
        assert_eq!(
            error(b"*1\r\n$17\r\n", &limits),
            ProtocolError::InvalidBulkLength
        );
        assert_eq!(
            error(
                b"*4\r\n$16\r\n0123456789abcdef\r\n$16\r\n0123456789abcdef\r\n$16\r\n",
                &limits
            ),
            ProtocolError::TooBigRequest { max: 64 }
        );
        // A huge but allowed count reserves nothing up front.
        let mut decoder = RequestDecoder::new(Limits::default());
        assert_eq!(decoder.decode(b"*1000000\r\n$1000000\r\n"), Ok(None));
        assert!(decoder.args.capacity() <= 64);
        assert_eq!(decoder.bulk_len, Some(1_000_000));
    }

    #[test]
    fn over_long_lines_are_refused_once_they_pass_the_limit() {
        let limits = small();
        // Eight bytes before the '\n' is the most an inline line may hold.
        assert_eq!(
            parse_request(b"GET 1234\n", &limits),
            Ok(Some((args(&[b"GET", b"1234"]), 9)))
        );
        assert_eq!(parse_request(b"GET 1234", &limits), Ok(None));
        assert_eq!(
            error(b"GET 12345", &limits),
            ProtocolError::TooBigInlineRequest
        );
        assert_eq!(
            error(b"GET 1234\r\n", &limits),
            ProtocolError::TooBigInlineRequest,
            "the \\r counts"
        );
        assert_eq!(
            error(b"*111111111", &limits),
            ProtocolError::TooBigMbulkCount
        );
        assert_eq!(
            error(b"*11111111", &limits),
            ProtocolError::TooBigMbulkCount
        );
        assert_eq!(parse_request(b"*1111111", &limits), Ok(None));
        assert_eq!(
            error(b"*1\r\n$111111111", &limits),
            ProtocolError::TooBigBulkCount
        );
        assert_eq!(
            error(
                b"a b c d e\n",
                &Limits {
                    max_inline_len: 64,
                    ..small()
                }
            ),
            ProtocolError::TooManyInlineArgs { max: 4 }
        );
        assert_eq!(
            parse_request(b"a b c d\n", &limits).map(|r| r.map(|(r, _)| r.len())),
            Ok(Some(4))
        );
    }

    #[test]
    fn error_texts_are_redis_texts() {
        let cases = [
            (
                ProtocolError::InvalidMultibulkLength,
                "Protocol error: invalid multibulk length",
            ),
            (
                ProtocolError::InvalidBulkLength,
                "Protocol error: invalid bulk length",
            ),
            (
                ProtocolError::ExpectedDollar { got: b'x' },
                "Protocol error: expected '$', got 'x'",
            ),
            (
                ProtocolError::ExpectedDollar { got: b'\r' },
                "Protocol error: expected '$', got '\\x0d'",
            ),
            (
                ProtocolError::UnbalancedQuotes,
                "Protocol error: unbalanced quotes in request",
            ),
            (
                ProtocolError::TooBigInlineRequest,
                "Protocol error: too big inline request",
            ),
            (
                ProtocolError::TooBigMbulkCount,
                "Protocol error: too big mbulk count string",
            ),
            (
                ProtocolError::TooBigBulkCount,
                "Protocol error: too big bulk count string",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
        assert_eq!(
            ProtocolError::UnbalancedQuotes.to_reply().to_bytes(),
            b"-ERR Protocol error: unbalanced quotes in request\r\n"
        );
    }

    fn every_kind_of_reply() -> Vec<(Reply, &'static [u8])> {
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
            parse_reply(b"%1\r\n"),
            Err(ProtocolError::UnknownReplyType { got: b'%' })
        );
        assert_eq!(parse_reply(b":12a\r\n"), invalid("invalid integer"));
        assert_eq!(parse_reply(b":\r\n"), invalid("invalid integer"));
        assert_eq!(parse_reply(b"$-2\r\n"), invalid("invalid bulk length"));
        assert_eq!(parse_reply(b"*-2\r\n"), invalid("invalid multibulk length"));
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
        assert!(decoder.open.iter().all(|(items, _)| items.capacity() <= 64));
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
        fn encoded_commands_parse_back_whatever_bytes_they_hold(
            list in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let refs: Vec<&[u8]> = list.iter().map(Vec::as_slice).collect();
            let bytes = encoded(&refs);
            let want = Request { args: list.clone() };
            prop_assert_eq!(parse(&bytes), Ok(Some((want.clone(), bytes.len()))));
            let mut again = Vec::new();
            want.encode(&mut again);
            prop_assert_eq!(&again, &bytes);
            // Split in two reads with one decoder: the same request.
            let cut = cut.index(bytes.len());
            let mut decoder = RequestDecoder::new(Limits::default());
            prop_assert_eq!(decoder.decode(&bytes[..cut]), Ok(None));
            prop_assert_eq!(decoder.decode(&bytes), Ok(Some((want, bytes.len()))));
        }

        #[test]
        fn random_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            printable in "[*$:+\\-0-9\r\n \"'\\\\xa]{0,80}",
        ) {
            for input in [&bytes[..], printable.as_bytes()] {
                let _ = parse(input);
                let _ = parse_request(input, &small());
                let _ = parse_pipeline(input, &small(), 8);
                let _ = parse_reply(input);
                let _ = trickle_quietly(input, small());
            }
        }

        #[test]
        fn replies_round_trip(reply in any_reply()) {
            let bytes = reply.to_bytes();
            prop_assert_eq!(parse_reply(&bytes), Ok(Some((reply, bytes.len()))));
        }
    }

    /// Like [`trickle`], without insisting the stream is well formed.
    fn trickle_quietly(stream: &[u8], limits: Limits) -> Result<(), ProtocolError> {
        let mut decoder = RequestDecoder::new(limits);
        let mut buf = Vec::new();
        for &b in stream {
            buf.push(b);
            while let Some((_, used)) = decoder.decode(&buf)? {
                buf.drain(..used);
            }
        }
        Ok(())
    }
}
