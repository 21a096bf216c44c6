//! A client connection's replies on their way out: a queue of byte
//! chunks, written with vectored writes as far as the socket takes them.
//!
//! Small replies are encoded into the last chunk, so a pipeline's
//! replies leave in one write. A large value (a bulk of
//! [`SHARE_MIN`] bytes or more) is not copied again: the bytes the store
//! thread handed out become a chunk of their own, between the header
//! and the line end encoded around them. So a value is copied once on its
//! way from the map to the socket.
//!
//! No sockets here: [`Output::write_to`] takes any [`Write`], and says how
//! much went out.

use crate::redis::resp::{Protocol, Reply};
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

/// A bulk at least this long travels as a chunk of its own.
pub const SHARE_MIN: usize = 16 * 1024;

/// Most chunks handed to one vectored write.
const MAX_SLICES: usize = 64;

/// A chunk that small replies are encoded into is given up once it is
/// this long, so no chunk grows far past the bytes it holds.
const CHUNK: usize = 64 * 1024;

/// The queue of bytes still to write.
#[derive(Debug, Default)]
pub struct Output {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already written.
    written: usize,
    /// Bytes queued and not written.
    len: usize,
    /// Whether the back chunk takes more small replies (a shared value's
    /// chunk does not).
    open_tail: bool,
}

impl Output {
    /// An empty queue; it allocates nothing until a reply comes.
    pub fn new() -> Output {
        Output::default()
    }

    /// Bytes queued and not yet written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is waiting to be written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues `reply`, encoded in RESP2. The bytes of a large bulk are
    /// moved into the queue, not copied.
    pub fn push_reply(&mut self, reply: Reply) {
        self.push_reply_as(reply, Protocol::Resp2);
    }

    /// Queues `reply`, encoded in `proto` (see [`Reply::write_as`]). The
    /// bytes of a large bulk are moved into the queue, not copied.
    pub fn push_reply_as(&mut self, reply: Reply, proto: Protocol) {
        match reply {
            Reply::Bulk(data) if data.len() >= SHARE_MIN => {
                self.push_bytes(format!("${}\r\n", data.len()).as_bytes());
                self.push_chunk(data);
                self.push_bytes(b"\r\n");
            }
            Reply::Array(items) if items.iter().any(is_large_bulk) => {
                self.push_bytes(format!("*{}\r\n", items.len()).as_bytes());
                for item in items {
                    self.push_reply_as(item, proto);
                }
            }
            other => {
                let tail = self.tail();
                let before = tail.len();
                other.write_as(proto, tail);
                let added = tail.len() - before;
                self.len += added;
            }
        }
    }

    /// Queues bytes already encoded.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        self.tail().extend_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Writes as much as `to` takes without blocking; returns how many
    /// bytes went out. `WouldBlock` (or a timeout) ends the attempt with
    /// what was written so far; any other error is returned.
    pub fn write_to(&mut self, to: &mut impl Write) -> io::Result<usize> {
        let mut total = 0;
        while self.len > 0 {
            let result = {
                let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(MAX_SLICES);
                for (i, chunk) in self.chunks.iter().take(MAX_SLICES).enumerate() {
                    let from = if i == 0 { self.written } else { 0 };
                    if from < chunk.len() {
                        slices.push(IoSlice::new(&chunk[from..]));
                    }
                }
                to.write_vectored(&slices)
            };
            match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    total += n;
                    self.consume(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(total)
                }
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// Drops `n` written bytes from the front.
    fn consume(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.len() - self.written;
            if n < left {
                self.written += n;
                return;
            }
            n -= left;
            self.written = 0;
            self.chunks.pop_front();
        }
        if self.len == 0 {
            // An idle connection keeps no buffer.
            self.chunks = VecDeque::new();
            self.written = 0;
            self.open_tail = false;
        }
    }

    /// The chunk small replies go into.
    fn tail(&mut self) -> &mut Vec<u8> {
        let reusable = self.open_tail && self.chunks.back().is_some_and(|c| c.len() < CHUNK);
        if !reusable {
            self.chunks.push_back(Vec::with_capacity(256));
            self.open_tail = true;
        }
        self.chunks.back_mut().expect("a chunk was just pushed")
    }

    /// Queues a large value as a chunk of its own.
    fn push_chunk(&mut self, data: Vec<u8>) {
        self.len += data.len();
        self.chunks.push_back(data);
        self.open_tail = false;
    }
}

fn is_large_bulk(reply: &Reply) -> bool {
    matches!(reply, Reply::Bulk(d) if d.len() >= SHARE_MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `step` bytes per call and then says
    /// `WouldBlock` every other call.
    struct Trickle {
        got: Vec<u8>,
        step: usize,
        block: bool,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.block = !self.block;
            if self.block {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.step);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn replies() -> Vec<Reply> {
        vec![
            Reply::ok(),
            Reply::Bulk(vec![7; SHARE_MIN + 3]),
            Reply::Integer(-12),
            Reply::Array(vec![
                Reply::Null,
                Reply::Bulk(vec![1; SHARE_MIN * 2]),
                Reply::Bulk(b"small".to_vec()),
            ]),
            Reply::Bulk(b"x".to_vec()),
        ]
    }

    #[test]
    fn the_bytes_out_are_the_replies_encoded_in_order_whatever_the_socket_takes() {
        for step in [1, 7, 100, 5000, 1 << 20] {
            let mut expected = Vec::new();
            for r in replies() {
                r.write_to(&mut expected);
            }
            let mut out = Output::new();
            for r in replies() {
                out.push_reply(r);
            }
            assert_eq!(out.len(), expected.len());
            let mut to = Trickle {
                got: Vec::new(),
                step,
                block: false,
            };
            let mut rounds = 0;
            while !out.is_empty() {
                out.write_to(&mut to).expect("written");
                // Replies queued between writes land after the rest.
                if rounds == 3 {
                    out.push_reply(Reply::ok());
                    expected.extend_from_slice(b"+OK\r\n");
                }
                rounds += 1;
            }
            assert_eq!(to.got, expected, "step {step}");
        }
    }

    #[test]
    fn a_drained_queue_holds_no_buffer() {
        let mut out = Output::new();
        out.push_reply(Reply::Bulk(vec![0; 100_000]));
        let mut sink = Vec::new();
        out.write_to(&mut sink).expect("written");
        assert!(out.is_empty());
        assert_eq!(out.chunks.capacity(), 0);
    }
}
