//! `netdb --connect ADDR`: the line CLI of a node's stdin, run against a
//! node elsewhere over the Redis protocol.
//!
//! Lines are parsed with [`parse_line`], exactly as the node's own console
//! parses them, and sent as Redis commands: `put` as `SET`, `get` as
//! `GET`, `delete` as `DEL`, `keys` as `NETDB.KEYS *` (the cluster's keys), `status` as `NETDB.STATUS`
//! (a structured reply, decoded into the same [`crate::status::Status`] the console
//! prints; no `INFO` text is parsed).
//! The replies are printed as the console prints them (`Value stored.`,
//! `Value: ...`, `Key not found.`, `Key deleted.`, `Error: ...`), so a
//! script gives the same output piped into either.
//!
//! With a password (`--password`, or `NETDB_PASSWORD` in the
//! environment, read by `main`), `AUTH` is sent before anything else, and
//! a refusal ends the run with the node's reason.
//!
//! Like the console, it pipelines: data commands already buffered go out
//! together and their replies are read back in order. A sender thread
//! writes while this thread reads replies, so a long pipeline can never
//! fill both directions of the socket and stall.

use crate::console::line::{display_key, display_value, parse_line, Command, HELP};
use crate::error::{Error, Result};
use crate::redis::cmd::netdb::decode_status;
use crate::redis::resp::{encode_command, Reply, ReplyDecoder};
use crate::replication::frame::is_timeout;
use crate::status::format_status;
use crossbeam_channel::{bounded, Sender};
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::thread::JoinHandle;
use std::time::Duration;

/// Most commands sent before their replies are read.
pub const MAX_BATCH: usize = 1024;

/// Time allowed to connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Time allowed for a reply to start arriving.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// What a line sent to the node is waiting for, or a reply known already.
enum Slot {
    Put,
    Get,
    Delete,
    Text(String),
}

/// The connection to the node: a sender thread writes, this side reads.
struct Remote {
    addr: String,
    reader: TcpStream,
    sender: Option<Sender<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
    buf: Vec<u8>,
    start: usize,
    decoder: ReplyDecoder,
}

/// Runs the line CLI against the node at `addr`, authenticating with
/// `password` first if given, until `quit` or the end of input.
pub fn run(
    addr: &str,
    password: Option<&str>,
    input: impl Read,
    mut out: impl Write,
    interactive: bool,
) -> Result<()> {
    let mut remote = Remote::connect(addr)?;
    if let Some(password) = password {
        match remote.call(&[b"AUTH", password.as_bytes()])? {
            Reply::Simple(_) => {}
            Reply::Error(e) => return Err(remote.lost(format!("AUTH refused: {e}"))),
            other => return Err(remote.lost(format!("AUTH: unexpected reply {other:?}"))),
        }
    }
    let mut input = BufReader::with_capacity(256 * 1024, input);
    let mut slots: Vec<Slot> = Vec::new();
    let mut request = Vec::new();
    let mut line = Vec::new();
    let result = loop {
        let prompt = interactive && slots.is_empty();
        if !super::next_line(&mut input, &mut out, prompt, &mut line)? {
            break remote.answer(&mut slots, &mut request, &mut out);
        }
        match parse_line(&line) {
            Ok(Command::Nothing) => {}
            Ok(Command::Put { key, value }) => {
                encode_command(&[b"SET", &key, &value], &mut request);
                slots.push(Slot::Put);
            }
            Ok(Command::Get { key }) => {
                encode_command(&[b"GET", &key], &mut request);
                slots.push(Slot::Get);
            }
            Ok(Command::Delete { key }) => {
                encode_command(&[b"DEL", &key], &mut request);
                slots.push(Slot::Delete);
            }
            Err(e) => slots.push(Slot::Text(format!("Error: {e}"))),
            Ok(other) => {
                remote.answer(&mut slots, &mut request, &mut out)?;
                let text = match other {
                    Command::Quit => {
                        writeln!(out, "Goodbye!").map_err(Error::io("cannot write to stdout"))?;
                        // The node answers +OK and closes; neither matters now.
                        let _ = remote.call(&[b"QUIT"]);
                        break Ok(());
                    }
                    Command::Help => HELP.to_string(),
                    Command::Leave => {
                        // The node answers once it has left, then stops.
                        match remote.call(&[b"NETDB.LEAVE"])? {
                            Reply::Error(e) => format!("Error: {e}"),
                            _ => {
                                writeln!(out, "Left the cluster. Goodbye!")
                                    .map_err(Error::io("cannot write to stdout"))?;
                                break Ok(());
                            }
                        }
                    }
                    // The cluster's keys (a sharded node gathers them
                    // from every member).
                    Command::Keys => keys_text(remote.call(&[b"NETDB.KEYS", b"*"])?),
                    Command::Status => status_text(remote.call(&[b"NETDB.STATUS"])?),
                    Command::Sync => "Error: sync is not available over --connect \
                                      (the node pushes to its peers after every write)"
                        .to_string(),
                    _ => String::new(),
                };
                writeln!(out, "{text}").map_err(Error::io("cannot write to stdout"))?;
            }
        }
        let more_waiting = input.buffer().contains(&b'\n');
        if !more_waiting || slots.len() >= MAX_BATCH {
            remote.answer(&mut slots, &mut request, &mut out)?;
        }
        if !more_waiting {
            out.flush().map_err(Error::io("cannot write to stdout"))?;
        }
    };
    out.flush().map_err(Error::io("cannot write to stdout"))?;
    remote.close();
    result
}

/// `KEYS *` as the console prints its key list: sorted, one a line.
fn keys_text(reply: Reply) -> String {
    let Reply::Array(items) = reply else {
        return unexpected(reply);
    };
    let mut keys: Vec<Vec<u8>> = items
        .into_iter()
        .filter_map(|r| match r {
            Reply::Bulk(k) => Some(k),
            _ => None,
        })
        .collect();
    if keys.is_empty() {
        return "(no keys)".to_string();
    }
    keys.sort_unstable();
    keys.iter()
        .map(|k| display_key(k).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `NETDB.STATUS` as the console prints its `status`.
fn status_text(reply: Reply) -> String {
    if let Reply::Error(_) = reply {
        return unexpected(reply);
    }
    match decode_status(reply) {
        Ok(status) => format_status(&status),
        Err(e) => format!("Error: the node's NETDB.STATUS reply is malformed: {e}"),
    }
}

/// An error reply as the console prints a refusal (`Error: ...`, without
/// Redis's `ERR` code), or a reply that makes no sense here.
fn unexpected(reply: Reply) -> String {
    match reply {
        Reply::Error(e) => format!("Error: {}", e.strip_prefix("ERR ").unwrap_or(&e)),
        other => format!("Error: unexpected reply {other:?}"),
    }
}

/// The console's text for the reply to a data command.
fn slot_text(slot: &Slot, reply: Reply) -> String {
    match (slot, reply) {
        (Slot::Put, Reply::Simple(s)) if s == "OK" => "Value stored.".to_string(),
        (Slot::Get, Reply::Bulk(v)) => format!("Value: {}", display_value(&v)),
        (Slot::Get, Reply::Null) => "Key not found.".to_string(),
        (Slot::Delete, Reply::Integer(_)) => "Key deleted.".to_string(),
        (_, other) => unexpected(other),
    }
}

impl Remote {
    fn connect(addr: &str) -> Result<Remote> {
        let fail = |reason: String| Error::Connect {
            addr: addr.to_owned(),
            reason,
        };
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| fail(format!("expected host:port ({e})")))?
            .collect();
        let mut last = "resolves to no address".to_string();
        let mut stream = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = format!("cannot connect: {e}"),
            }
        }
        let stream = stream.ok_or_else(|| fail(last))?;
        let setup = |s: &TcpStream| -> std::io::Result<TcpStream> {
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(REPLY_TIMEOUT))?;
            s.try_clone()
        };
        let writer = setup(&stream).map_err(|e| fail(e.to_string()))?;
        let (tx, rx) = bounded::<Vec<u8>>(4);
        let thread = std::thread::Builder::new()
            .name("netdb-connect-send".into())
            .spawn(move || {
                let mut writer = writer;
                for bytes in rx {
                    if writer.write_all(&bytes).is_err() {
                        // The reader sees the connection fail and says why.
                        let _ = writer.shutdown(Shutdown::Both);
                        return;
                    }
                }
            })
            .map_err(Error::io("cannot start the sender thread"))?;
        Ok(Remote {
            addr: addr.to_owned(),
            reader: stream,
            sender: Some(tx),
            thread: Some(thread),
            buf: Vec::new(),
            start: 0,
            decoder: ReplyDecoder::new(),
        })
    }

    fn lost(&self, reason: impl Into<String>) -> Error {
        Error::Connect {
            addr: self.addr.clone(),
            reason: reason.into(),
        }
    }

    fn send(&self, bytes: Vec<u8>) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.sender
            .as_ref()
            .and_then(|tx| tx.send(bytes).ok())
            .ok_or_else(|| self.lost("the connection failed"))
    }

    /// The next reply from the node.
    fn read_reply(&mut self) -> Result<Reply> {
        loop {
            match self.decoder.decode(&self.buf[self.start..]) {
                Ok(Some((reply, used))) => {
                    self.start += used;
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(e) => return Err(self.lost(e.to_string())),
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let have = self.buf.len();
            self.buf.resize(have + 64 * 1024, 0);
            let read = self.reader.read(&mut self.buf[have..]);
            self.buf.truncate(have + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) => return Err(self.lost("the node closed the connection")),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => return Err(self.lost("no reply (timed out)")),
                Err(e) => return Err(self.lost(e.to_string())),
            }
        }
    }

    /// Sends one command and waits for its reply.
    fn call(&mut self, args: &[&[u8]]) -> Result<Reply> {
        let mut bytes = Vec::new();
        encode_command(args, &mut bytes);
        self.send(bytes)?;
        self.read_reply()
    }

    /// Sends the batch and prints every slot's text in order.
    fn answer(
        &mut self,
        slots: &mut Vec<Slot>,
        request: &mut Vec<u8>,
        out: &mut impl Write,
    ) -> Result<()> {
        self.send(std::mem::take(request))?;
        for slot in slots.drain(..) {
            let text = match slot {
                Slot::Text(t) => t,
                slot => {
                    let reply = self.read_reply()?;
                    slot_text(&slot, reply)
                }
            };
            out.write_all(text.as_bytes())
                .and_then(|()| out.write_all(b"\n"))
                .map_err(Error::io("cannot write to stdout"))?;
        }
        Ok(())
    }

    /// Stops the sender after what it holds is written.
    fn close(&mut self) {
        self.sender.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = self.reader.shutdown(Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_print_as_the_console_prints_them() {
        let text = |slot, reply| slot_text(&slot, reply);
        assert_eq!(text(Slot::Put, Reply::ok()), "Value stored.");
        assert_eq!(
            text(Slot::Get, Reply::Bulk(b"two words".to_vec())),
            "Value: two words"
        );
        assert_eq!(
            text(Slot::Get, Reply::Bulk(b"a\nb".to_vec())),
            "Value: \"a\\nb\""
        );
        assert_eq!(text(Slot::Get, Reply::Null), "Key not found.");
        assert_eq!(text(Slot::Delete, Reply::Integer(0)), "Key deleted.");
        assert_eq!(
            text(
                Slot::Put,
                Reply::Error("ERR value of 9 bytes is over the limit of 4".into())
            ),
            "Error: value of 9 bytes is over the limit of 4"
        );
        assert_eq!(keys_text(Reply::Array(Vec::new())), "(no keys)");
        assert_eq!(
            keys_text(Reply::Array(vec![
                Reply::Bulk(b"b".to_vec()),
                Reply::Bulk(b"a key".to_vec()),
            ])),
            "\"a key\"\nb"
        );
        assert_eq!(
            status_text(crate::redis::cmd::netdb::encode_status(
                &crate::status::tests::sample()
            )),
            format_status(&crate::status::tests::sample())
        );
        assert_eq!(
            status_text(Reply::Error("ERR unknown command 'NETDB.STATUS'".into())),
            "Error: unknown command 'NETDB.STATUS'"
        );
        assert!(status_text(Reply::Integer(1)).starts_with("Error: the node's NETDB.STATUS"));
    }
}
