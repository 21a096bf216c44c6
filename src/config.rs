//! The command line, and turning it into a checked [`Config`] and a bound
//! listener. Every mistake becomes an [`Error`] that names what was wrong.

use crate::core::names::MAX_NAME_LEN;
use crate::durability::disk::{DiskSettings, FsyncPolicy};
use crate::error::{Error, Result};
use crate::replication::frame::DEFAULT_MAX_FRAME;
use crate::replication::peers::parse_peers;
use clap::Parser;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// netdb: a distributed key-value store. Each node keeps every key with a
/// vector clock and pushes its state to its peers; replicas converge, and
/// concurrent writes are resolved last-write-wins the same way everywhere.
#[derive(Debug, Parser)]
#[command(
    name = "netdb",
    version,
    about,
    long_about = None,
    override_usage = "netdb [OPTIONS] <NAME> <ADDR> [PEERS_FILE]\n       netdb --connect <ADDR>"
)]
pub struct Args {
    /// This node's name; unique in the cluster.
    #[arg(required_unless_present = "connect")]
    pub name: Option<String>,
    /// Address to listen on for peers and Redis clients, as host:port.
    #[arg(required_unless_present = "connect")]
    pub addr: Option<String>,
    /// File listing the peers, one host:port per line; without it the node
    /// runs alone.
    pub peers_file: Option<PathBuf>,
    /// How often to push to the peers, in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub sync_interval_ms: u64,
    /// Do not read commands from stdin; serve peers until killed.
    #[arg(long)]
    pub no_cli: bool,
    /// Largest peer message accepted, in bytes; values must fit in one.
    #[arg(long, default_value_t = DEFAULT_MAX_FRAME, value_name = "BYTES")]
    pub max_frame_bytes: usize,
    /// Most peer connections served at once.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_connections: usize,
    /// Directory for this node's log and snapshots [default: ./NAME].
    #[arg(long, value_name = "DIR", conflicts_with = "in_memory")]
    pub data_dir: Option<PathBuf>,
    /// Keep nothing on disk: a restart starts empty.
    #[arg(long)]
    pub in_memory: bool,
    /// When to fsync the log: always (before acknowledging a write),
    /// everysec (about one second of writes at risk), no (left to the OS).
    #[arg(long, default_value = "everysec", value_name = "POLICY")]
    pub fsync: FsyncPolicy,
    /// At startup, cut the log at a damaged record instead of refusing to
    /// start (what follows the damage is lost).
    #[arg(long)]
    pub truncate_corrupt_log: bool,
    /// Compact only once the logs hold at least this many bytes.
    #[arg(long, default_value_t = 64 * 1024 * 1024, value_name = "BYTES")]
    pub compact_min_bytes: u64,
    /// Most Redis client connections served at once.
    #[arg(long, default_value_t = crate::redis::client::DEFAULT_MAX_CLIENTS, value_name = "N")]
    pub max_clients: usize,
    /// Close a Redis client connection silent this long; 0 never does.
    #[arg(long, default_value_t = crate::redis::client::DEFAULT_IDLE_TIMEOUT.as_secs(), value_name = "SECS")]
    pub client_idle_timeout_secs: u64,
    /// Largest Redis request accepted, in bytes.
    #[arg(long, default_value_t = crate::redis::client::DEFAULT_MAX_REQUEST, value_name = "BYTES")]
    pub max_request_bytes: usize,
    /// Instead of running a node, connect to the node at host:port and
    /// read the same commands as a node's stdin (put, get, delete, keys,
    /// status, help, quit), typed or piped.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["name", "addr", "peers_file"])]
    pub connect: Option<String>,
}

/// A node's checked settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The node's name.
    pub name: String,
    /// Peers as `host:port`, this node excluded.
    pub peers: Vec<String>,
    /// Time between sync rounds.
    pub sync_interval: Duration,
    /// Largest frame accepted.
    pub max_frame: usize,
    /// Most incoming connections at once.
    pub max_connections: usize,
    /// Time allowed to open a connection to a peer.
    pub connect_timeout: Duration,
    /// Time allowed for each read or write on a peer connection.
    pub io_timeout: Duration,
    /// Time an incoming connection may stay silent.
    pub idle_timeout: Duration,
    /// Where and how to keep data on disk; `None` keeps it in memory only.
    pub disk: Option<DiskSettings>,
    /// Most Redis client connections at once.
    pub max_clients: usize,
    /// Time a Redis client connection may stay silent; `None` for ever.
    pub client_idle_timeout: Option<Duration>,
    /// Largest Redis request accepted, in bytes.
    pub max_request: usize,
}

/// Smallest `--max-frame-bytes`: a batch must always fit.
pub const MIN_MAX_FRAME: usize = 1024 * 1024;

/// Smallest `--max-request-bytes`: room for a longest key and a little.
pub const MIN_MAX_REQUEST: usize = 1024 * 1024;

impl Config {
    /// Settings with the defaults, for a node called `name` with `peers`.
    pub fn new(name: &str, peers: Vec<String>) -> Config {
        Config {
            name: name.to_owned(),
            peers,
            sync_interval: Duration::from_millis(1000),
            max_frame: DEFAULT_MAX_FRAME,
            max_connections: 256,
            connect_timeout: Duration::from_secs(1),
            io_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(120),
            disk: None,
            max_clients: crate::redis::client::DEFAULT_MAX_CLIENTS,
            client_idle_timeout: Some(crate::redis::client::DEFAULT_IDLE_TIMEOUT),
            max_request: crate::redis::client::DEFAULT_MAX_REQUEST,
        }
    }

    /// The longest value a node with these settings accepts: one that still
    /// fits a frame with the longest key and its clock.
    pub fn max_value(&self) -> usize {
        self.max_frame - crate::store::MAX_KEY_LEN - 64 * 1024
    }
}

/// Checks the command line, binds the listen address and reads the peers
/// file.
pub fn configure(args: &Args) -> Result<(Config, TcpListener)> {
    let (Some(name), Some(addr)) = (&args.name, &args.addr) else {
        return Err(Error::Config("a node needs a NAME and an ADDR".into()));
    };
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '#')
    {
        return Err(Error::Config(format!(
            "bad node name '{}': 1 to {MAX_NAME_LEN} bytes, no spaces or #",
            name.escape_debug()
        )));
    }
    if args.sync_interval_ms == 0 {
        return Err(Error::Config(
            "--sync-interval-ms must be at least 1".into(),
        ));
    }
    if args.max_frame_bytes < MIN_MAX_FRAME || args.max_frame_bytes > u32::MAX as usize {
        return Err(Error::Config(format!(
            "--max-frame-bytes must be between {MIN_MAX_FRAME} and {}",
            u32::MAX
        )));
    }
    if args.max_request_bytes < MIN_MAX_REQUEST {
        return Err(Error::Config(format!(
            "--max-request-bytes must be at least {MIN_MAX_REQUEST}"
        )));
    }
    let listen = resolve_one(addr).map_err(|reason| Error::Address {
        addr: addr.clone(),
        reason,
    })?;
    let listener = TcpListener::bind(listen).map_err(|source| Error::Bind {
        addr: addr.clone(),
        source,
    })?;
    let bound = listener.local_addr().map_err(|source| Error::Bind {
        addr: addr.clone(),
        source,
    })?;
    let peers = match &args.peers_file {
        Some(path) => read_peers(path, bound)?,
        None => Vec::new(),
    };
    let mut config = Config::new(name, peers);
    config.sync_interval = Duration::from_millis(args.sync_interval_ms);
    config.max_frame = args.max_frame_bytes;
    config.max_connections = args.max_connections.max(1);
    if !args.in_memory {
        config.disk = Some(DiskSettings {
            dir: args.data_dir.clone().unwrap_or_else(|| PathBuf::from(name)),
            fsync: args.fsync,
            truncate_corrupt: args.truncate_corrupt_log,
            compact_factor: 4,
            compact_min_bytes: args.compact_min_bytes,
            // Reading works on whole files in memory, so a record's length
            // allocates nothing; a lower --max-frame-bytes than the one a
            // record was written under must not make it look damaged.
            max_record: u32::MAX as usize,
        });
    }
    config.max_clients = args.max_clients;
    config.client_idle_timeout = (args.client_idle_timeout_secs > 0)
        .then(|| Duration::from_secs(args.client_idle_timeout_secs));
    config.max_request = args.max_request_bytes;
    Ok((config, listener))
}

fn resolve_one(addr: &str) -> std::result::Result<SocketAddr, String> {
    let mut addrs = addr
        .to_socket_addrs()
        .map_err(|e| format!("expected host:port ({e})"))?;
    addrs
        .next()
        .ok_or_else(|| "resolves to no address".to_string())
}

/// Reads and resolves the peers file, leaving out this node itself.
fn read_peers(path: &PathBuf, me: SocketAddr) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::PeersFile {
        path: path.clone(),
        source,
    })?;
    let lines = parse_peers(&text).map_err(|e| Error::PeerLine {
        path: path.clone(),
        line: e.line,
        reason: e.reason.to_string(),
    })?;
    let mut peers = Vec::new();
    for peer in lines {
        let addr = peer.addr();
        let resolved: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|e| Error::PeerLine {
                path: path.clone(),
                line: peer.line,
                reason: format!("cannot resolve '{addr}': {e}"),
            })?
            .collect();
        if resolved.iter().any(|a| is_me(*a, me)) {
            continue;
        }
        if !peers.contains(&addr) {
            peers.push(addr);
        }
    }
    Ok(peers)
}

/// Whether `peer` is this node's own listen address (a wildcard listen
/// address counts as every local address on its port).
fn is_me(peer: SocketAddr, me: SocketAddr) -> bool {
    crate::replication::peers::is_own_address(peer, me)
}
