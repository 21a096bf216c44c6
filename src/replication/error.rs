//! Why a sync connection failed: one error type for both halves of the
//! protocol, the pusher and the receiver.
//!
//! Each variant names the cause a log line or `status` shows: the socket
//! (timed out, reset, refused, closed), a frame (oversized, undecodable),
//! the peer breaking the protocol or failing authentication, the store refusing what the peer sent,
//! or this node stopping. A cause that ends a connection costs that
//! connection and one log line, nothing more. Pure: no I/O here.

use crate::replication::auth::AuthError;
use crate::replication::frame::{is_timeout, FrameError};
use crate::replication::wire::MessageKind;
use crate::store::BatchError;
use std::fmt;
use std::io;

/// Result with [`SyncError`].
pub type Result<T> = std::result::Result<T, SyncError>;

/// Why an exchange with a peer failed.
#[derive(Debug)]
pub enum SyncError {
    /// The peer's address could not be resolved.
    Resolve(io::Error),
    /// The peer's address resolved to nothing.
    NoAddress,
    /// The socket failed: connecting, reading or writing.
    Io {
        /// What happened, told apart for the log and for callers.
        cause: IoCause,
        /// The OS error.
        source: io::Error,
    },
    /// The peer closed the connection cleanly, between two messages.
    Hangup,
    /// A frame announced more bytes than this node accepts.
    Oversized {
        /// The announced length.
        len: u64,
        /// The largest accepted.
        max: usize,
    },
    /// A frame's payload is not a valid message (or, never in practice, a
    /// message could not be encoded).
    Undecodable(postcard::Error),
    /// The peer broke the protocol.
    Protocol(ProtocolError),
    /// The peer failed authentication, or the two sides disagree on
    /// having a cluster secret.
    Auth(AuthError),
    /// The store refused a batch or a version vector from the peer.
    RefusedBatch(BatchError),
    /// The store thread is gone: the node is shutting down.
    Stopped,
}

/// What kind of socket failure an [`SyncError::Io`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoCause {
    /// A connect, read or write took longer than its timeout.
    Timeout,
    /// The peer reset the connection.
    Reset,
    /// Nobody listens at the peer's address.
    Refused,
    /// The connection ended in the middle of a message, or broke while
    /// this node was writing.
    Closed,
    /// Anything else the OS reports.
    Other,
}

impl IoCause {
    /// The cause of an OS error. A timed-out read shows up as `WouldBlock`
    /// on Unix and as `TimedOut` elsewhere: both are a timeout.
    pub fn of(e: &io::Error) -> IoCause {
        match e.kind() {
            _ if is_timeout(e) => IoCause::Timeout,
            io::ErrorKind::ConnectionReset => IoCause::Reset,
            io::ErrorKind::ConnectionRefused => IoCause::Refused,
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted => IoCause::Closed,
            _ => IoCause::Other,
        }
    }
}

/// How a peer broke the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The connection did not open with the peer magic.
    BadMagic([u8; 4]),
    /// A message came where the exchange was at another step.
    Unexpected {
        /// The messages the exchange was waiting for.
        expected: &'static [MessageKind],
        /// The message that came.
        got: MessageKind,
    },
    /// The peer speaks another protocol version.
    Version {
        /// The peer's version.
        theirs: u16,
        /// This node's version.
        ours: u16,
    },
    /// The peer answered with this node's own name and instance id: the
    /// address reaches this node itself.
    Myself,
    /// The peer answered with this node's own name but another instance
    /// id: another live node uses this node's name.
    Twin {
        /// The name both use.
        name: String,
    },
    /// The member was forgotten or left: it must not bring its data
    /// back (see [`crate::membership`]); says what to do.
    Expelled(String),
    /// The peer sent a member list that was refused.
    BadMembers(String),
    /// The peer's version vector on this connection would name this many
    /// writers, over [`crate::replication::vectors::MAX_WRITERS`].
    LongVector(usize),
    /// The peer places keys with another `--replicas` (0: not sharded):
    /// the two would disagree on who holds what, so they exchange
    /// nothing.
    Replicas {
        /// The peer's.
        theirs: u16,
        /// This node's.
        ours: u16,
    },
}

impl SyncError {
    /// A message came where one of `expected` should have.
    pub fn unexpected(expected: &'static [MessageKind], got: MessageKind) -> SyncError {
        SyncError::Protocol(ProtocolError::Unexpected { expected, got })
    }

    /// Whether the connection ended the way an idle one may: closed
    /// between messages, or silent past the read timeout.
    pub fn is_idle_end(&self) -> bool {
        matches!(
            self,
            SyncError::Hangup
                | SyncError::Io {
                    cause: IoCause::Timeout,
                    ..
                }
        )
    }
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncError::Resolve(e) => write!(f, "cannot resolve: {e}"),
            SyncError::NoAddress => write!(f, "resolves to no address"),
            SyncError::Io {
                cause: IoCause::Timeout,
                ..
            } => write!(f, "timed out"),
            // The OS's text names the rest: "Connection refused",
            // "Connection reset by peer", "unexpected end of file".
            SyncError::Io { source, .. } => write!(f, "{source}"),
            SyncError::Hangup => write!(f, "connection closed"),
            SyncError::Oversized { len, max } => {
                write!(f, "frame of {len} bytes is over the limit of {max}")
            }
            SyncError::Undecodable(e) => write!(f, "undecodable message: {e}"),
            SyncError::Protocol(e) => write!(f, "{e}"),
            SyncError::Auth(e) => write!(f, "{e}"),
            SyncError::RefusedBatch(e) => write!(f, "{e}"),
            SyncError::Stopped => write!(f, "node shutting down"),
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::BadMagic(m) => write!(f, "not a netdb peer (first bytes {m:02x?})"),
            ProtocolError::Unexpected { expected, got } => {
                write!(f, "expected ")?;
                for (i, kind) in expected.iter().enumerate() {
                    if i > 0 {
                        write!(f, " or ")?;
                    }
                    write!(f, "{kind}")?;
                }
                write!(f, ", got {got}")
            }
            ProtocolError::Version { theirs, ours } => {
                write!(
                    f,
                    "peer speaks protocol version {theirs}, this node speaks {ours}"
                )
            }
            ProtocolError::Replicas { theirs, ours } => {
                let show = |n: &u16| match n {
                    0 => "no --replicas (every member holds every key)".to_string(),
                    n => format!("--replicas {n}"),
                };
                write!(
                    f,
                    "peer runs with {}, this node with {}: they would disagree on which \
                     members hold which keys, so they exchange nothing until every member \
                     runs with the same setting",
                    show(theirs),
                    show(ours)
                )
            }
            ProtocolError::Myself => write!(f, "the address reaches this node itself"),
            ProtocolError::Twin { name } => write!(
                f,
                "another live node answers with this node's name '{name}'; \
                 this node refuses writes while it runs"
            ),
            ProtocolError::Expelled(why) => write!(f, "{why}"),
            ProtocolError::BadMembers(why) => write!(f, "refused member list: {why}"),
            ProtocolError::LongVector(n) => write!(
                f,
                "a version vector of {n} writers, over the limit of {}",
                crate::replication::vectors::MAX_WRITERS
            ),
        }
    }
}

impl std::error::Error for SyncError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SyncError::Resolve(e) | SyncError::Io { source: e, .. } => Some(e),
            SyncError::Undecodable(e) => Some(e),
            SyncError::Protocol(e) => Some(e),
            SyncError::Auth(e) => Some(e),
            SyncError::RefusedBatch(e) => Some(e),
            SyncError::NoAddress
            | SyncError::Hangup
            | SyncError::Oversized { .. }
            | SyncError::Stopped => None,
        }
    }
}

impl std::error::Error for ProtocolError {}

impl From<io::Error> for SyncError {
    fn from(source: io::Error) -> SyncError {
        SyncError::Io {
            cause: IoCause::of(&source),
            source,
        }
    }
}

impl From<FrameError> for SyncError {
    fn from(e: FrameError) -> SyncError {
        match e {
            FrameError::Io(e) => e.into(),
            FrameError::Closed => SyncError::Hangup,
            FrameError::TooLarge { len, max } => SyncError::Oversized { len, max },
            FrameError::Decode(e) => SyncError::Undecodable(e),
            FrameError::BadMagic(m) => SyncError::Protocol(ProtocolError::BadMagic(m)),
            FrameError::BadMac => SyncError::Auth(AuthError::BadFrame),
        }
    }
}

impl From<AuthError> for SyncError {
    fn from(e: AuthError) -> SyncError {
        SyncError::Auth(e)
    }
}

impl From<ProtocolError> for SyncError {
    fn from(e: ProtocolError) -> SyncError {
        SyncError::Protocol(e)
    }
}

impl From<BatchError> for SyncError {
    fn from(e: BatchError) -> SyncError {
        SyncError::RefusedBatch(e)
    }
}

/// The store handle's requests on the sync path fail only when the store
/// thread is gone.
impl From<crate::error::Error> for SyncError {
    fn from(_: crate::error::Error) -> SyncError {
        SyncError::Stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn socket_errors_are_told_apart_by_cause() {
        for (kind, cause) in [
            (io::ErrorKind::WouldBlock, IoCause::Timeout),
            (io::ErrorKind::TimedOut, IoCause::Timeout),
            (io::ErrorKind::ConnectionReset, IoCause::Reset),
            (io::ErrorKind::ConnectionRefused, IoCause::Refused),
            (io::ErrorKind::UnexpectedEof, IoCause::Closed),
            (io::ErrorKind::BrokenPipe, IoCause::Closed),
            (io::ErrorKind::PermissionDenied, IoCause::Other),
        ] {
            match SyncError::from(io::Error::from(kind)) {
                SyncError::Io { cause: got, .. } => assert_eq!(got, cause, "{kind:?}"),
                other => panic!("{kind:?} became {other:?}"),
            }
        }
    }

    #[test]
    fn frame_errors_keep_their_cause() {
        assert!(matches!(
            SyncError::from(FrameError::Closed),
            SyncError::Hangup
        ));
        assert!(matches!(
            SyncError::from(FrameError::Io(io::ErrorKind::WouldBlock.into())),
            SyncError::Io {
                cause: IoCause::Timeout,
                ..
            }
        ));
        assert!(matches!(
            SyncError::from(FrameError::TooLarge { len: 9, max: 8 }),
            SyncError::Oversized { len: 9, max: 8 }
        ));
        assert!(matches!(
            SyncError::from(FrameError::BadMagic(*b"*1\r\n")),
            SyncError::Protocol(ProtocolError::BadMagic(_))
        ));
    }

    #[test]
    fn an_unexpected_message_names_what_was_expected() {
        let e = SyncError::unexpected(&[MessageKind::Pull, MessageKind::Ack], MessageKind::Next);
        assert_eq!(e.to_string(), "expected Pull or Ack, got Next");
        assert!(e.source().is_some(), "the protocol error is the source");
        let e = SyncError::unexpected(&[MessageKind::Hello], MessageKind::Push);
        assert_eq!(e.to_string(), "expected Hello, got Push");
    }

    #[test]
    fn only_silence_and_a_clean_close_end_an_idle_connection() {
        assert!(SyncError::Hangup.is_idle_end());
        assert!(SyncError::from(io::Error::from(io::ErrorKind::TimedOut)).is_idle_end());
        assert!(!SyncError::from(io::Error::from(io::ErrorKind::UnexpectedEof)).is_idle_end());
        assert!(!SyncError::Stopped.is_idle_end());
    }

    #[test]
    fn a_refused_batch_keeps_the_store_s_reason() {
        let e = SyncError::from(BatchError("node index out of range".into()));
        assert_eq!(e.to_string(), "invalid batch: node index out of range");
        assert!(e.source().is_some());
    }
}
