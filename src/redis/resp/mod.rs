//! The Redis wire protocol, RESP2 and RESP3: requests in, replies out.
//!
//! Server side, [`RequestDecoder`] (or the one-shot [`parse_request`] and
//! [`parse_pipeline`]) turns the bytes a client sent into [`Request`]s, in
//! both forms Redis accepts: multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`,
//! what client libraries send) and inline (`GET k\r\n`, what a person types
//! into telnet, with redis-cli's quoting); requests look the same in both
//! protocols. [`Reply::write_as`] encodes the answer for the connection's
//! [`Protocol`] ([`Reply::write_to`]: RESP2). Client side, for `netdb --connect`: [`encode_command`] and
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
//!
//! # Files
//!
//! | file | owns |
//! | --- | --- |
//! | `request.rs` | [`Limits`], [`Request`], [`RequestDecoder`]: the server side's parsing |
//! | `inline.rs` | splitting an inline line into arguments |
//! | `reply.rs` | [`Reply`], [`Protocol`] and the encoding; [`encode_command`] |
//! | `reply_decoder.rs` | [`ReplyDecoder`]: the client side's parsing |
//! | `error.rs` | [`ProtocolError`] and Redis's texts for it |
//!
//! This module must not know any command: what a request means is
//! [`crate::redis::command`]'s business.

mod error;
mod inline;
mod reply;
mod reply_decoder;
mod request;

pub use error::ProtocolError;
pub use reply::{double_text, encode_command, Protocol, Reply};
pub use reply_decoder::{parse_reply, ReplyDecoder, MAX_REPLY_DEPTH};
pub use request::{
    parse_int, parse_pipeline, parse_request, Batch, Limits, Request, RequestDecoder,
    DEFAULT_MAX_ARGS, DEFAULT_MAX_BULK_LEN, DEFAULT_MAX_INLINE_LEN, DEFAULT_MAX_REQUEST_LEN,
};
