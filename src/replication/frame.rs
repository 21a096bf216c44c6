//! Framing of peer messages over any byte stream.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of
//! postcard-encoded [`Message`]. The length is checked against a maximum
//! before anything is read, and the buffer grows only with bytes that
//! actually arrive, so a peer that announces 4 GiB and sends nothing costs
//! nothing. Works over `impl Read` / `impl Write`: no sockets here.
//!
//! A sealed frame (after an authenticated handshake, see
//! [`crate::replication::auth`]) carries a MAC of [`TAG_LEN`] bytes after
//! its payload, counted in its length; the MAC is checked before the
//! payload is decoded.

use crate::replication::auth::{FrameMac, TAG_LEN};
use crate::replication::wire::{Message, MAGIC};
use serde::Serialize;
use std::fmt;
use std::io::{self, Read, Write};

/// The default largest frame, in bytes.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024 * 1024;

/// What can go wrong reading or writing a frame.
#[derive(Debug)]
pub enum FrameError {
    /// The stream failed (including a read or write timeout).
    Io(io::Error),
    /// The stream ended cleanly between frames.
    Closed,
    /// A frame announced more bytes than allowed.
    TooLarge {
        /// Announced length.
        len: u64,
        /// Largest allowed.
        max: usize,
    },
    /// The payload is not a valid message.
    Decode(postcard::Error),
    /// The connection did not start with [`MAGIC`].
    BadMagic([u8; 4]),
    /// A sealed frame's MAC does not check.
    BadMac,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Io(e) if is_timeout(e) => write!(f, "timed out"),
            FrameError::Io(e) => write!(f, "{e}"),
            FrameError::Closed => write!(f, "connection closed"),
            FrameError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes is over the limit of {max}")
            }
            FrameError::Decode(e) => write!(f, "undecodable message: {e}"),
            FrameError::BadMagic(m) => write!(f, "not a netdb peer (first bytes {m:02x?})"),
            FrameError::BadMac => write!(f, "a frame's MAC does not match"),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> FrameError {
        FrameError::Io(e)
    }
}

/// Whether an I/O error is a socket timeout (on Unix a timed-out read shows
/// up as `WouldBlock`, elsewhere as `TimedOut`).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Encodes `msg` (a [`Message`] or [`crate::replication::wire::MessageRef`]) into one
/// frame and writes it; returns the bytes written. The caller flushes.
pub fn write_frame(w: &mut impl Write, msg: &impl Serialize) -> Result<usize, FrameError> {
    // Sized first, then encoded straight into the writer: no body buffer.
    let size = postcard::serialize_with_flavor(msg, postcard::ser_flavors::Size::default())
        .map_err(FrameError::Decode)?;
    let len = frame_len(size)?;
    w.write_all(&len.to_be_bytes())?;
    let mut out = KeepError {
        inner: w,
        error: None,
    };
    if let Err(e) = postcard::to_io(msg, &mut out) {
        // postcard reports a failed write as a full buffer: give the
        // writer's own error (a timeout, say) instead.
        return Err(match out.error {
            Some(io) => FrameError::Io(io),
            None => FrameError::Decode(e),
        });
    }
    Ok(size + 4)
}

/// [`write_frame`], sealed with the next MAC of `mac`. The payload is
/// encoded whole first, so the MAC takes it in one pass rather than a
/// call per field (a million small calls in a full transfer).
pub fn write_sealed_frame(
    w: &mut impl Write,
    msg: &impl Serialize,
    mac: &mut FrameMac,
) -> Result<usize, FrameError> {
    let payload = postcard::to_stdvec(msg).map_err(FrameError::Decode)?;
    let tag = mac.tag(&payload);
    let total = payload.len() + TAG_LEN;
    w.write_all(&frame_len(total)?.to_be_bytes())?;
    w.write_all(&payload)?;
    w.write_all(&tag)?;
    Ok(total + 4)
}

/// A frame's length prefix for `size` bytes after it.
fn frame_len(size: usize) -> Result<u32, FrameError> {
    u32::try_from(size).map_err(|_| FrameError::TooLarge {
        len: size as u64,
        max: u32::MAX as usize,
    })
}

/// A writer that keeps the first error of the writer it wraps.
struct KeepError<'a, W> {
    inner: &'a mut W,
    error: Option<io::Error>,
}

impl<W: Write> Write for KeepError<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).map_err(|e| {
            let kind = e.kind();
            self.error.get_or_insert(e);
            io::Error::from(kind)
        })
    }

    // postcard flushes when it is done: a write the flush makes (of a
    // buffered writer) can fail as well as any other.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().map_err(|e| {
            let kind = e.kind();
            self.error.get_or_insert(e);
            io::Error::from(kind)
        })
    }
}

/// Reads one frame and decodes it. `Closed` when the stream ends before the
/// first byte of a frame; a stream that ends inside a frame is an I/O error.
pub fn read_frame(r: &mut impl Read, max: usize) -> Result<Message, FrameError> {
    let body = read_body(r, max)?;
    postcard::from_bytes(&body).map_err(FrameError::Decode)
}

/// [`read_frame`] for a sealed frame: its MAC, the next of `mac`, is
/// checked before its payload (of at most `max` bytes) is decoded.
pub fn read_sealed_frame(
    r: &mut impl Read,
    max: usize,
    mac: &mut FrameMac,
) -> Result<Message, FrameError> {
    let body = read_body(r, max.saturating_add(TAG_LEN))?;
    let Some(split) = body.len().checked_sub(TAG_LEN) else {
        mac.next_frame(); // counted all the same: the connection is done
        return Err(FrameError::BadMac);
    };
    let (payload, tag) = body.split_at(split);
    if !mac.check(payload, tag) {
        return Err(FrameError::BadMac);
    }
    postcard::from_bytes(payload).map_err(FrameError::Decode)
}

/// Reads one frame's length and then its body of at most `max` bytes.
fn read_body(r: &mut impl Read, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_be_bytes(len);
    if len as usize > max {
        return Err(FrameError::TooLarge {
            len: u64::from(len),
            max,
        });
    }
    // Grow with what arrives rather than trusting the announced length.
    let mut body = Vec::with_capacity((len as usize).min(64 * 1024));
    r.take(u64::from(len)).read_to_end(&mut body)?;
    if body.len() != len as usize {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
    }
    Ok(body)
}

/// Reads the connection preamble and checks it is [`MAGIC`].
pub fn read_magic(r: &mut impl Read) -> Result<(), FrameError> {
    let mut got = [0u8; 4];
    r.read_exact(&mut got).map_err(|e| match e.kind() {
        // read_exact says "failed to fill whole buffer": say what happened.
        io::ErrorKind::UnexpectedEof => FrameError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed before the handshake",
        )),
        _ => FrameError::Io(e),
    })?;
    if got == MAGIC {
        Ok(())
    } else {
        Err(FrameError::BadMagic(got))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::wire::{Batch, Bytes, WireEntry};

    fn sample() -> Message {
        Message::Push {
            done: None,
            batch: Batch {
                groups: Vec::new(),
                names: vec!["a".into()],
                entries: vec![WireEntry {
                    key: Bytes(b"key".to_vec()),
                    value: None,
                    ts: 1,
                    writer: 0,
                    clock: vec![(0, 1)],
                    expires: None,
                    counter: None,
                }],
            },
        }
    }

    #[test]
    fn frames_round_trip_back_to_back() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &sample()).expect("writes");
        write_frame(
            &mut buf,
            &Message::Hello {
                version: 1,
                name: "n".into(),
                wall_clock_ms: 1,
                instance: 1,
                member: String::new(),
                probe: false,
                replicas: 0,
            },
        )
        .expect("writes");
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r, 1024).expect("first"), sample());
        assert!(matches!(
            read_frame(&mut r, 1024).expect("second"),
            Message::Hello { .. }
        ));
        assert!(matches!(read_frame(&mut r, 1024), Err(FrameError::Closed)));
    }

    #[test]
    fn an_oversized_length_is_refused_before_reading_the_body() {
        let mut r = &[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3][..];
        match read_frame(&mut r, 1 << 20) {
            Err(FrameError::TooLarge { len, .. }) => assert_eq!(len, u64::from(u32::MAX)),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn every_truncation_is_an_error_not_a_message() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &sample()).expect("writes");
        for cut in 1..buf.len() {
            let mut r = &buf[..cut];
            assert!(
                matches!(read_frame(&mut r, 1024), Err(FrameError::Io(_))),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_failing_writer_s_own_error_comes_back() {
        /// Takes the length prefix, then times out.
        struct Refuses(usize);
        impl Write for Refuses {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.0 >= 4 {
                    return Err(io::Error::from(io::ErrorKind::WouldBlock));
                }
                let n = buf.len().min(4 - self.0);
                self.0 += n;
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        match write_frame(&mut Refuses(0), &sample()) {
            Err(FrameError::Io(e)) => assert!(is_timeout(&e)),
            other => panic!("expected the writer's error, got {other:?}"),
        }
    }

    #[test]
    fn a_failing_flush_s_own_error_comes_back() {
        /// Takes every byte, and fails to flush them (as a buffered
        /// writer over a TLS stream whose handshake failed).
        struct FailsToFlush;
        impl Write for FailsToFlush {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bad certificate",
                ))
            }
        }
        match write_frame(&mut FailsToFlush, &sample()) {
            Err(FrameError::Io(e)) => assert_eq!(e.to_string(), "bad certificate"),
            other => panic!("expected the writer's error, got {other:?}"),
        }
    }

    /// Both ends' MACs of one direction of a connection.
    fn sealing() -> (FrameMac, FrameMac) {
        use crate::replication::auth::{ClusterSecret, Handshake, Role};
        let secret = ClusterSecret::from_text(&"s".repeat(32)).expect("long");
        let hs = Handshake {
            version: 4,
            initiator: [1; 32],
            responder: [2; 32],
        };
        (
            hs.session(&secret, Role::Initiator).sending,
            hs.session(&secret, Role::Responder).receiving,
        )
    }

    #[test]
    fn sealed_frames_round_trip_and_carry_their_mac() {
        let (mut out, mut back) = sealing();
        let mut buf = Vec::new();
        let n = write_sealed_frame(&mut buf, &sample(), &mut out).expect("writes");
        let plain = write_frame(&mut Vec::new(), &sample()).expect("writes");
        assert_eq!((n, buf.len()), (plain + TAG_LEN, plain + TAG_LEN));
        write_sealed_frame(&mut buf, &Message::Next, &mut out).expect("writes");
        let mut r = &buf[..];
        assert_eq!(
            read_sealed_frame(&mut r, 1024, &mut back).expect("first"),
            sample()
        );
        assert_eq!(
            read_sealed_frame(&mut r, 1024, &mut back).expect("second"),
            Message::Next
        );
    }

    #[test]
    fn a_sealed_frame_altered_anywhere_is_refused_before_decoding() {
        let (mut out, _) = sealing();
        let mut buf = Vec::new();
        write_sealed_frame(&mut buf, &sample(), &mut out).expect("writes");
        // Every byte after the length: payload and MAC.
        for i in 4..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x01;
            let (_, mut back) = sealing();
            assert!(
                matches!(
                    read_sealed_frame(&mut &bad[..], 1024, &mut back),
                    Err(FrameError::BadMac)
                ),
                "byte {i}"
            );
        }
        // Too short to hold a MAC at all.
        let mut short = 3u32.to_be_bytes().to_vec();
        short.extend_from_slice(&[0; 3]);
        let (_, mut back) = sealing();
        assert!(matches!(
            read_sealed_frame(&mut &short[..], 1024, &mut back),
            Err(FrameError::BadMac)
        ));
        // A plain frame where a sealed one is due.
        let mut unsealed = Vec::new();
        write_frame(&mut unsealed, &sample()).expect("writes");
        let (_, mut back) = sealing();
        assert!(matches!(
            read_sealed_frame(&mut &unsealed[..], 1024, &mut back),
            Err(FrameError::BadMac)
        ));
    }

    #[test]
    fn sealed_frames_out_of_order_are_refused() {
        let (mut out, _) = sealing();
        let (mut first, mut second) = (Vec::new(), Vec::new());
        write_sealed_frame(&mut first, &sample(), &mut out).expect("writes");
        write_sealed_frame(&mut second, &Message::Next, &mut out).expect("writes");
        let (_, mut back) = sealing();
        assert!(matches!(
            read_sealed_frame(&mut &second[..], 1024, &mut back),
            Err(FrameError::BadMac)
        ));
        // Replayed.
        let (_, mut back) = sealing();
        let twice = [&first[..], &first[..]].concat();
        let mut r = &twice[..];
        assert!(read_sealed_frame(&mut r, 1024, &mut back).is_ok());
        assert!(matches!(
            read_sealed_frame(&mut r, 1024, &mut back),
            Err(FrameError::BadMac)
        ));
    }

    #[test]
    fn garbage_payload_is_a_decode_error() {
        let mut buf = 5u32.to_be_bytes().to_vec();
        buf.extend_from_slice(&[0xEE; 5]);
        assert!(matches!(
            read_frame(&mut &buf[..], 1024),
            Err(FrameError::Decode(_))
        ));
    }

    #[test]
    fn magic_is_checked() {
        assert!(read_magic(&mut &MAGIC[..]).is_ok());
        assert!(matches!(
            read_magic(&mut &b"*1\r\n"[..]),
            Err(FrameError::BadMagic(_))
        ));
    }
}
