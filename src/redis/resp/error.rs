//! Bytes that are not the protocol: [`ProtocolError`] and the texts Redis
//! answers them with.
//!
//! Owns the error type and its Display only; it must not parse or encode
//! anything (the decoders in [`super::request`] and [`super::reply_decoder`]
//! build these errors).

use super::reply::Reply;
use std::fmt;

/// Bytes that are not the protocol. On the server the connection is
/// answered with [`ProtocolError::to_reply`] and closed, as Redis does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// A `*<count>` line that is not a number or is over
    /// [`Limits::max_args`](super::Limits::max_args).
    InvalidMultibulkLength,
    /// A `$<len>` line that is not a number, is negative or is over
    /// [`Limits::max_bulk_len`](super::Limits::max_bulk_len).
    InvalidBulkLength,
    /// A multibulk argument that does not start with `$`.
    ExpectedDollar {
        /// The byte found instead.
        got: u8,
    },
    /// An inline line with an unclosed quote, or a closing quote followed
    /// by something other than a space.
    UnbalancedQuotes,
    /// An inline line over [`Limits::max_inline_len`](super::Limits::max_inline_len).
    TooBigInlineRequest,
    /// A `*<count>` line over [`Limits::max_inline_len`](super::Limits::max_inline_len).
    TooBigMbulkCount,
    /// A `$<len>` line over [`Limits::max_inline_len`](super::Limits::max_inline_len).
    TooBigBulkCount,
    /// A bulk argument whose announced length is not followed by `\r\n`.
    BulkNotTerminated,
    /// An inline request with more than [`Limits::max_args`](super::Limits::max_args) arguments.
    TooManyInlineArgs {
        /// The limit.
        max: usize,
    },
    /// A multibulk request over [`Limits::max_request_len`](super::Limits::max_request_len) in all.
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
