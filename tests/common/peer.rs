//! Speaking the peer protocol to a node from outside, as a peer would (or
//! as a bad one would), and peers that never answer.

use super::frame::{read_frame, write_frame, DEFAULT_MAX_FRAME};
use super::wire::{Message, WireVv, MAGIC, PROTOCOL_VERSION};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// `message` as the bytes of one frame.
pub fn frame_of(message: &Message) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_frame(&mut bytes, message).expect("encode a message");
    bytes
}

/// What a peer called `name` opens a connection with: the magic and a
/// Hello of this protocol version.
pub fn greeting(name: &str) -> Vec<u8> {
    let hello = Message::Hello {
        version: PROTOCOL_VERSION,
        name: name.into(),
    };
    [&MAGIC[..], &frame_of(&hello)].concat()
}

/// Reads the node's answer to the last part of a push: any Pulls, then
/// its Ack, whose version vector it returns.
pub fn read_until_ack(from: &mut impl Read) -> Result<WireVv, String> {
    loop {
        match read_frame(from, DEFAULT_MAX_FRAME).map_err(|e| e.to_string())? {
            Message::Pull { .. } => {}
            Message::Ack { vv, .. } => return Ok(vv),
            other => return Err(format!("expected Pull or Ack, got {}", other.kind())),
        }
    }
}

/// A peer that accepts connections and never says a word: every push to it
/// waits for the full I/O timeout. Stops accepting on drop.
pub struct Blackhole {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Blackhole {
    /// Starts accepting on a fresh loopback port.
    pub fn start() -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the blackhole");
        listener
            .set_nonblocking(true)
            .expect("nonblocking blackhole");
        let addr = listener.local_addr().expect("blackhole address");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("blackhole".into())
            .spawn(move || {
                let mut held: Vec<TcpStream> = Vec::new();
                while !flag.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => held.push(stream),
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
            .expect("start the blackhole thread");
        Blackhole {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
