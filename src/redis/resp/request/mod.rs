//! Requests in: [`RequestDecoder`] turns the bytes a client sent into
//! [`Request`]s, multibulk or inline, within [`Limits`].
//!
//! Owns the server side's parsing; it must not encode replies (that is
//! [`super::reply`]) or decode them (the client side, [`super::reply_decoder`]).

use super::error::ProtocolError;
use super::inline::split_inline;
use super::reply::{encode_bulk, encode_header};

/// Redis's limit on a bulk argument (`proto-max-bulk-len`).
pub const DEFAULT_MAX_BULK_LEN: usize = 512 * 1024 * 1024;
/// Redis's limit on an inline line and on a `*`/`$` line
/// (`PROTO_INLINE_MAX_SIZE`).
pub const DEFAULT_MAX_INLINE_LEN: usize = 64 * 1024;
/// Redis's limit on the arguments of one request before version 6.2.
pub const DEFAULT_MAX_ARGS: usize = 1024 * 1024;
/// Redis's limit on a client's query buffer (`client-query-buffer-limit`).
pub const DEFAULT_MAX_REQUEST_LEN: usize = 1024 * 1024 * 1024;

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

    /// Appends the request in multibulk form, as [`encode_command`](super::encode_command) does.
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

/// Parses Redis's decimal integers (`string2ll`): an optional `-`, then
/// digits with no leading zero (`0` alone excepted), nothing else, in range.
pub fn parse_int(s: &[u8]) -> Option<i64> {
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

#[cfg(test)]
pub(super) mod tests;
