//! One peer connection's socket, buffered both ways, with timeouts: the
//! part the pusher and the receiver share.
//!
//! Every read and write has a timeout, so a silent or slow peer fails
//! with [`crate::replication::SyncError`] rather than blocking its thread
//! for ever. What the messages mean is up to the two halves; this only
//! moves them.

use crate::replication::error::Result;
use crate::replication::frame::{read_frame, read_magic, write_frame};
use crate::replication::wire::{Message, MessageRef, MAGIC};
use std::io::{BufReader, BufWriter, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Buffer size each way: a part of a transfer goes out in a few writes.
const BUFFER_BYTES: usize = 64 * 1024;

/// An open connection to a peer, either side.
pub struct Connection {
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
    max_frame: usize,
}

impl Connection {
    /// Wraps `stream`, with `timeout` on every read and write, taking
    /// frames of up to `max_frame` bytes.
    pub fn new(stream: TcpStream, timeout: Duration, max_frame: usize) -> Result<Connection> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Connection {
            reader: BufReader::with_capacity(BUFFER_BYTES, stream.try_clone()?),
            writer: BufWriter::with_capacity(BUFFER_BYTES, stream),
            max_frame,
        })
    }

    /// Changes the time a read may wait (the writes keep theirs).
    pub fn set_read_timeout(&self, timeout: Duration) -> Result<()> {
        Ok(self.writer.get_ref().set_read_timeout(Some(timeout))?)
    }

    /// Sends the peer magic, which opens a connection from the side that
    /// connects. The caller flushes.
    pub fn send_magic(&mut self) -> Result<()> {
        Ok(self.writer.write_all(&MAGIC)?)
    }

    /// Reads the peer magic and checks it.
    pub fn receive_magic(&mut self) -> Result<()> {
        Ok(read_magic(&mut self.reader)?)
    }

    /// Queues one message; returns its size on the wire. The caller
    /// flushes.
    pub fn send(&mut self, msg: &MessageRef<'_>) -> Result<usize> {
        Ok(write_frame(&mut self.writer, msg)?)
    }

    /// Sends what is queued.
    pub fn flush(&mut self) -> Result<()> {
        Ok(self.writer.flush()?)
    }

    /// The next message.
    pub fn receive(&mut self) -> Result<Message> {
        Ok(read_frame(&mut self.reader, self.max_frame)?)
    }
}
