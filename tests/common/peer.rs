//! Speaking the peer protocol to a node from outside, as a peer would (or
//! as a bad one would); peers that never answer; and other ways to reach
//! a node that its address does not give away; a peer that answers
//! every push with a forged acknowledgement.

use super::frame::{read_frame, write_frame, DEFAULT_MAX_FRAME};
use super::wire::{Message, WireVv, MAGIC, PROTOCOL_VERSION};
use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `message` as the bytes of one frame.
pub fn frame_of(message: &Message) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_frame(&mut bytes, message).expect("encode a message");
    bytes
}

/// This machine's wall clock, in milliseconds since the Unix epoch, as a
/// peer says it in Hello and Welcome.
pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis() as u64
}

/// What a peer called `name` opens a connection with: the magic and a
/// Hello of this protocol version.
pub fn greeting(name: &str) -> Vec<u8> {
    let hello = Message::Hello {
        version: PROTOCOL_VERSION,
        name: name.into(),
        wall_clock_ms: wall_clock_ms(),
        instance: 1,
        member: String::new(),
        probe: false,
        replicas: 0,
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

/// A thread that accepts connections on a fresh loopback port and hands
/// each to its handler, until dropped; then the handler is dropped too,
/// and with it whatever it kept of the connections.
struct Acceptor {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    /// Starts accepting on `127.0.0.1:0` in a thread called `name`.
    fn start(name: &str, mut handle: impl FnMut(TcpStream) + Send + 'static) -> Acceptor {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("bind the {name}'s port: {e}"));
        let addr = listener.local_addr().expect("a bound listener's address");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        // A blocking accept; drop sets the flag and connects once to wake
        // it, so the thread ends without polling.
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        handle(stream);
                    }
                }
            })
            .unwrap_or_else(|e| panic!("start the {name} thread: {e}"));
        Acceptor {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept; the thread sees the flag and ends.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A peer that accepts connections and never says a word: every push to it
/// waits for the full I/O timeout. Stops accepting, and closes what it
/// accepted, on drop.
pub struct Blackhole(Acceptor);

impl Blackhole {
    /// Starts accepting on a fresh loopback port.
    pub fn start() -> Blackhole {
        let mut held: Vec<TcpStream> = Vec::new();
        Blackhole(Acceptor::start("blackhole", move |stream| {
            held.push(stream)
        }))
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.0.addr
    }
}

/// A second loopback address for a node: each connection to it is
/// forwarded, both ways, to the node's own address. Listed in the node's
/// own peers file, it is an entry that reaches the node itself but that
/// no check of addresses can recognise (another port), so only the
/// handshake can tell. Stops accepting, and closes every forwarded
/// connection, on drop.
pub struct Forwarder(Acceptor);

impl Forwarder {
    /// Starts forwarding a fresh loopback port to `target`, which need not
    /// listen yet: each accepted connection connects to it then, and is
    /// closed if it cannot.
    pub fn start(target: SocketAddr) -> Forwarder {
        let mut links = Links::default();
        Forwarder(Acceptor::start("forwarder", move |client| {
            // A failed connect drops `client`: the connection is closed,
            // as the target's refusal would close it.
            if let Ok(server) = TcpStream::connect(target) {
                links.add(client, server);
            }
        }))
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.0.addr
    }
}

/// The forwarded connections of a [`Forwarder`]. Dropping it closes
/// every one and waits for their threads.
#[derive(Default)]
struct Links(Vec<Link>);

/// One forwarded connection: its two sockets, and the two threads copying
/// between them.
struct Link {
    sockets: [Arc<TcpStream>; 2],
    pumps: [JoinHandle<()>; 2],
}

impl Links {
    /// Copies `a` to `b` and `b` to `a` until each side has closed.
    fn add(&mut self, a: TcpStream, b: TcpStream) {
        self.0
            .retain(|link| !link.pumps.iter().all(JoinHandle::is_finished));
        let (a, b) = (Arc::new(a), Arc::new(b));
        self.0.push(Link {
            pumps: [
                pump(Arc::clone(&a), Arc::clone(&b)),
                pump(Arc::clone(&b), Arc::clone(&a)),
            ],
            sockets: [a, b],
        });
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        for link in self.0.drain(..) {
            for socket in &link.sockets {
                let _ = socket.shutdown(Shutdown::Both);
            }
            for pump in link.pumps {
                let _ = pump.join();
            }
        }
    }
}

/// A thread copying `from` to `to` until `from` ends or either fails; then
/// it ends `to`'s writing, as `from`'s sender did, so the other side sees
/// the end too.
fn pump(from: Arc<TcpStream>, to: Arc<TcpStream>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("forwarder-pump".into())
        .spawn(move || {
            let _ = std::io::copy(&mut &*from, &mut &*to);
            let _ = to.shutdown(Shutdown::Write);
        })
        .expect("start a forwarder pump")
}

/// A peer that a node pushes to, and that answers every push, after a
/// Welcome with an empty vector, with a forged `Ack`: every writer it
/// has heard of on the connection (in the entries and vectors pushed to
/// it) at `claim`, having merged nothing. Counts the Acks it sent. Stops
/// accepting on drop; connections it serves end with the node's.
pub struct ForgedAcker {
    acceptor: Acceptor,
    acks: Arc<AtomicUsize>,
}

impl ForgedAcker {
    /// Starts on a fresh loopback port, answering as `name`.
    pub fn start(name: &str, claim: u64) -> ForgedAcker {
        let acks = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&acks);
        let name = name.to_owned();
        let acceptor = Acceptor::start("forged-acker", move |stream| {
            let (name, count) = (name.clone(), Arc::clone(&count));
            std::thread::Builder::new()
                .name("forged-acker-conn".into())
                .spawn(move || {
                    let _ = serve_forged(stream, &name, claim, &count);
                })
                .expect("start a forged acker connection thread");
        });
        ForgedAcker { acceptor, acks }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.acceptor.addr
    }

    /// How many Acks it has sent.
    pub fn acks(&self) -> usize {
        self.acks.load(Ordering::SeqCst)
    }
}

/// Serves one pusher as [`ForgedAcker`] does, until it hangs up.
fn serve_forged(
    mut stream: TcpStream,
    name: &str,
    claim: u64,
    count: &AtomicUsize,
) -> Result<(), String> {
    use std::io::Write;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut magic = [0u8; 4];
    stream.read_exact(&mut magic).map_err(|e| e.to_string())?;
    match read_frame(&mut stream, DEFAULT_MAX_FRAME).map_err(|e| e.to_string())? {
        Message::Hello { .. } => {}
        other => return Err(format!("expected Hello, got {}", other.kind())),
    }
    let welcome = Message::Welcome {
        version: PROTOCOL_VERSION,
        name: name.into(),
        vv: Vec::new(),
        instance: 0x5eed,
        wall_clock_ms: wall_clock_ms(),
        replicas: 0,
    };
    stream
        .write_all(&frame_of(&welcome))
        .map_err(|e| e.to_string())?;
    let mut heard: Vec<String> = Vec::new();
    loop {
        let reply = match read_frame(&mut stream, DEFAULT_MAX_FRAME).map_err(|e| e.to_string())? {
            Message::Push { batch, done } => {
                batch.names.iter().for_each(|n| hear(&mut heard, n));
                match done {
                    None => Message::Next,
                    Some(done) => {
                        done.vv.iter().for_each(|(n, _)| hear(&mut heard, n));
                        Message::Ack {
                            vv: heard.iter().map(|n| (n.clone(), claim)).collect(),
                            digest: None,
                            sent: None,
                            serving: None,
                        }
                    }
                }
            }
            other => return Err(format!("expected Push, got {}", other.kind())),
        };
        stream
            .write_all(&frame_of(&reply))
            .map_err(|e| e.to_string())?;
        if matches!(reply, Message::Ack { .. }) {
            count.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Adds `name` to `heard` unless it is there.
fn hear(heard: &mut Vec<String>, name: &str) {
    if !heard.iter().any(|h| h == name) {
        heard.push(name.to_owned());
    }
}
