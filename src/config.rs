//! The command line and the config file, and turning them into a checked
//! [`Config`] and a bound listener. Every mistake becomes an [`Error`] that
//! names what was wrong (and, in the config file, on which line).
//!
//! # The config file
//!
//! `--config FILE` reads settings from a TOML file. Its keys are the long
//! options' names as written on the command line (`sync-interval-ms`,
//! `in-memory`), and `name`, `listen` and `peers` for the three positional
//! arguments. Whatever the command line gives wins over the file.
//! Relative paths in the file (`peers`, `data-dir`,
//! `cluster-secret-file`, the `tls-*-file`s) are read from the
//! file's folder, so a file can name a peers file beside it.

use crate::core::hlc::DEFAULT_MAX_OFFSET_MS;
use crate::core::names::MAX_NAME_LEN;
use crate::durability::{DiskSettings, FsyncPolicy};
use crate::error::{Error, Result};
use crate::redis::auth::Password;
use crate::replication::auth::ClusterSecret;
use crate::replication::frame::DEFAULT_MAX_FRAME;
use crate::replication::peers::parse_peers;
use crate::tls::ServerTls;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use log::LevelFilter;
use serde::{Deserialize, Deserializer};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
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
    override_usage = "netdb [OPTIONS] <NAME> <ADDR> [PEERS_FILE]\n       netdb --config <FILE> [OPTIONS] [NAME] [ADDR] [PEERS_FILE]\n       netdb --connect <ADDR>"
)]
pub struct Args {
    /// This node's name; unique in the cluster.
    #[arg(required_unless_present_any = ["connect", "config"])]
    pub name: Option<String>,
    /// Address to listen on for peers and Redis clients, as host:port.
    #[arg(required_unless_present_any = ["connect", "config"])]
    pub addr: Option<String>,
    /// File listing the peers, one host:port per line; without it the node
    /// runs alone.
    pub peers_file: Option<PathBuf>,
    /// Join the cluster through the member at HOST:PORT (repeatable: any
    /// one that answers will do). A node restarted with its data
    /// directory rejoins the members it knew without it.
    #[arg(long, value_name = "HOST:PORT")]
    pub join: Vec<String>,
    /// The HOST:PORT other members dial to reach this node, when it is not
    /// the listen address (containers, NAT).
    #[arg(long, value_name = "HOST:PORT")]
    pub announce: Option<String>,
    /// A member not heard from for this long is down (suspect after
    /// half of it), in milliseconds.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub failure_timeout_ms: u64,
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
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pub client_idle_timeout_secs: u64,
    /// Threads serving Redis client connections, each a poll loop over
    /// many connections [default: the number of cores less one, at least
    /// one].
    #[arg(long, value_name = "N")]
    pub io_threads: Option<usize>,
    /// Close a Redis client whose unread replies pass this many bytes
    /// (a client that pipelines without reading; Redis's
    /// client-output-buffer-limit).
    #[arg(long, default_value_t = crate::redis::client::DEFAULT_MAX_OUTPUT, value_name = "BYTES")]
    pub max_client_output_bytes: usize,
    /// Largest Redis request accepted, in bytes.
    #[arg(long, default_value_t = crate::redis::client::DEFAULT_MAX_REQUEST, value_name = "BYTES")]
    pub max_request_bytes: usize,
    /// How many Redis databases (SELECT 0 up to N-1), 1 to 256: namespaces
    /// of the one replicated keyspace.
    #[arg(long, default_value_t = crate::engine::database::DEFAULT_DATABASES, value_name = "N")]
    pub databases: usize,
    /// Shard the keys: keep each key on N members (1 to 16), not on all.
    /// Every member must be started with the same N (see the README's
    /// "Sharding"); without it every member keeps every key.
    #[arg(long, value_name = "N")]
    pub replicas: Option<usize>,
    /// Acknowledge a Redis client's write only once W replicas of its key
    /// hold it, this node counting as one; a write that has not reached W
    /// within --write-timeout-ms is answered with a NOREPLICAS error (it
    /// stays on the replicas it reached).
    #[arg(long, default_value_t = 1, value_name = "W")]
    pub write_replicas: usize,
    /// How long a write waits for --write-replicas, in milliseconds.
    #[arg(long, default_value_t = crate::redis::client::DEFAULT_WRITE_TIMEOUT_MS, value_name = "MS")]
    pub write_timeout_ms: u64,
    /// Log Redis commands that take this many microseconds or more in the
    /// slow log (SLOWLOG GET); 0 logs every command, a negative number none.
    #[arg(
        long,
        default_value_t = 10_000,
        value_name = "US",
        allow_negative_numbers = true
    )]
    pub slowlog_log_slower_than: i64,
    /// Most entries the slow log keeps.
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub slowlog_max_len: usize,
    /// Most a clock may be off from its peers', in milliseconds: entries
    /// stamped further ahead are refused, and a node off by more refuses
    /// writes until its clock is fixed.
    #[arg(long, default_value_t = DEFAULT_MAX_OFFSET_MS, value_name = "MS")]
    pub max_clock_offset_ms: u64,
    /// Instead of running a node, connect to the node at host:port and
    /// read the same commands as a node's stdin (put, get, delete, keys,
    /// status, help, quit), typed or piped.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["name", "addr", "peers_file", "config"])]
    pub connect: Option<String>,
    /// With --connect: the node's client password (AUTH is sent first).
    /// Prefer the NETDB_PASSWORD environment variable, which other users
    /// of the machine cannot read from the process list.
    #[arg(long, value_name = "PASS", requires = "connect")]
    pub password: Option<String>,
    /// Redis clients must AUTH with this password before anything else.
    /// Prefer --requirepass-file: a command line is visible to every user
    /// of the machine.
    #[arg(long, value_name = "PASS", conflicts_with = "requirepass_file")]
    pub requirepass: Option<String>,
    /// Redis clients must AUTH with the password in this file (its
    /// contents, trimmed).
    #[arg(long, value_name = "PATH")]
    pub requirepass_file: Option<PathBuf>,
    /// yes: a node without a client password refuses Redis clients that
    /// connect from other machines, and one without a cluster secret
    /// refuses peers from other machines (loopback is always let in). no:
    /// anyone who reaches the port is let in.
    #[arg(long, default_value = "yes", value_name = "yes|no", value_parser = parse_yes_no, action = clap::ArgAction::Set)]
    pub protected_mode: bool,
    /// Read settings from this TOML file (keys as the long options, and
    /// name, listen, peers); the command line wins over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write log lines at this level and the more severe ones: error,
    /// warn, info, debug or trace [default: info, or as RUST_LOG says].
    #[arg(long, value_name = "LEVEL", value_parser = parse_log_level)]
    pub log_level: Option<LevelFilter>,
    /// The cluster secret, the same file on every node (its contents
    /// trimmed, at least 32 characters): peers prove they know it, and
    /// every peer message carries a MAC. Without it, peers are not
    /// authenticated.
    #[arg(long, value_name = "PATH")]
    pub cluster_secret_file: Option<PathBuf>,
    /// The node's TLS certificate chain (PEM): Redis clients that open
    /// with TLS are served it on the same port. Needs --tls-key-file.
    #[arg(long, value_name = "PATH")]
    pub tls_cert_file: Option<PathBuf>,
    /// The private key of --tls-cert-file (PEM).
    #[arg(long, value_name = "PATH")]
    pub tls_key_file: Option<PathBuf>,
    /// The CA (PEM) that TLS clients' certificates must be signed by; a
    /// client without a certificate is let in too. With it, peers talk
    /// TLS to each other, each showing a certificate this CA signed.
    #[arg(long, value_name = "PATH")]
    pub tls_ca_cert_file: Option<PathBuf>,
}

/// Reads the command line and, if it names one, the config file; the
/// command line wins. Usage mistakes (and `--help`) end the process the
/// way clap does, with status 2 (0); a bad config file is an [`Error`].
pub fn parse_command_line() -> Result<Args> {
    let matches = Args::command().get_matches();
    let mut args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some(path) = args.config.clone() {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::Config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        let file = parse_config_file(&text).map_err(|e| {
            Error::Config(format!(
                "config file {}, line {}: {}",
                path.display(),
                e.line,
                e.reason
            ))
        })?;
        let folder = path.parent().unwrap_or(Path::new(""));
        let rust_log_set = std::env::var_os("RUST_LOG").is_some();
        merge_config_file(&mut args, file, &matches, folder, rust_log_set)
            .map_err(|reason| Error::Config(format!("config file {}: {reason}", path.display())))?;
    }
    Ok(args)
}

/// `yes` or `no`, as Redis's settings take them.
pub fn parse_yes_no(text: &str) -> std::result::Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!("expected yes or no, not '{text}'")),
    }
}

/// A `--log-level` (or `log-level`) value.
pub fn parse_log_level(level: &str) -> std::result::Result<LevelFilter, String> {
    match level {
        "error" => Ok(LevelFilter::Error),
        "warn" => Ok(LevelFilter::Warn),
        "info" => Ok(LevelFilter::Info),
        "debug" => Ok(LevelFilter::Debug),
        "trace" => Ok(LevelFilter::Trace),
        other => Err(format!(
            "'{other}' is not one of error, warn, info, debug, trace"
        )),
    }
}

/// What a config file may hold: every option of a node's command line,
/// named as on the command line without its `--`, and the positional
/// arguments as `name`, `listen` and `peers`. Absent keys are `None`.
#[derive(Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileSettings {
    /// `NAME`.
    pub name: Option<String>,
    /// `ADDR`.
    pub listen: Option<String>,
    /// `PEERS_FILE`.
    pub peers: Option<PathBuf>,
    /// `--join` (a list).
    pub join: Option<Vec<String>>,
    /// `--announce`.
    pub announce: Option<String>,
    /// `--failure-timeout-ms`.
    pub failure_timeout_ms: Option<u64>,
    /// `--sync-interval-ms`.
    pub sync_interval_ms: Option<u64>,
    /// `--no-cli`.
    pub no_cli: Option<bool>,
    /// `--max-frame-bytes`.
    pub max_frame_bytes: Option<usize>,
    /// `--max-connections`.
    pub max_connections: Option<usize>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--in-memory`.
    pub in_memory: Option<bool>,
    /// `--fsync`.
    #[serde(default, deserialize_with = "from_text")]
    pub fsync: Option<FsyncPolicy>,
    /// `--truncate-corrupt-log`.
    pub truncate_corrupt_log: Option<bool>,
    /// `--compact-min-bytes`.
    pub compact_min_bytes: Option<u64>,
    /// `--max-clients`.
    pub max_clients: Option<usize>,
    /// `--client-idle-timeout-secs`.
    pub client_idle_timeout_secs: Option<u64>,
    /// `--max-request-bytes`.
    pub max_request_bytes: Option<usize>,
    /// `--slowlog-log-slower-than`.
    pub slowlog_log_slower_than: Option<i64>,
    /// `--slowlog-max-len`.
    pub slowlog_max_len: Option<usize>,
    /// `--io-threads`.
    pub io_threads: Option<usize>,
    /// `--max-client-output-bytes`.
    pub max_client_output_bytes: Option<usize>,
    /// `--databases`.
    pub databases: Option<usize>,
    /// `--replicas`.
    pub replicas: Option<usize>,
    /// `--write-replicas`.
    pub write_replicas: Option<usize>,
    /// `--write-timeout-ms`.
    pub write_timeout_ms: Option<u64>,
    /// `--max-clock-offset-ms`.
    pub max_clock_offset_ms: Option<u64>,
    /// `--requirepass`.
    pub requirepass: Option<String>,
    /// `--requirepass-file`.
    pub requirepass_file: Option<PathBuf>,
    /// `--protected-mode` (`"yes"` or `"no"`).
    #[serde(default, deserialize_with = "yes_no")]
    pub protected_mode: Option<bool>,
    /// `--log-level`.
    #[serde(default, deserialize_with = "log_level")]
    pub log_level: Option<LevelFilter>,
    /// `--cluster-secret-file`.
    pub cluster_secret_file: Option<PathBuf>,
    /// `--tls-cert-file`.
    pub tls_cert_file: Option<PathBuf>,
    /// `--tls-key-file`.
    pub tls_key_file: Option<PathBuf>,
    /// `--tls-ca-cert-file`.
    pub tls_ca_cert_file: Option<PathBuf>,
}

/// A string value read with `T`'s `FromStr`.
fn from_text<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

fn yes_no<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<bool>, D::Error> {
    let text = String::deserialize(d)?;
    parse_yes_no(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn log_level<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<LevelFilter>, D::Error> {
    let text = String::deserialize(d)?;
    parse_log_level(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// What is wrong in a config file, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Parses a config file's text. An unknown key, a value of the wrong type
/// and a TOML syntax error are each a [`FileError`] naming the line.
pub fn parse_config_file(text: &str) -> std::result::Result<FileSettings, FileError> {
    toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let line = text.get(..span.start).unwrap_or(text).matches('\n').count() + 1;
        let message = e.message().trim_end();
        let reason = if message.starts_with("unknown field") {
            let key = text.get(span).unwrap_or("").trim_matches(['"', '\'']);
            format!("unknown key '{key}'")
        } else {
            match key_on_line(text, line) {
                Some(key) => format!("{key}: {message}"),
                None => message.to_owned(),
            }
        };
        FileError { line, reason }
    })
}

/// The key of a `key = value` line (1-based), to name it in an error.
fn key_on_line(text: &str, line: usize) -> Option<&str> {
    let (key, _) = text.lines().nth(line - 1)?.split_once('=')?;
    let key = key.trim().trim_matches(['"', '\'']);
    (!key.is_empty() && !key.starts_with('[')).then_some(key)
}

/// Fills in from `file` what the command line (`matches`) did not give.
/// `folder` is the file's folder, which relative paths in it start from.
/// The file's `log-level` is left out while `RUST_LOG` is set: the
/// command line's `--log-level` wins over `RUST_LOG`, which wins over the
/// file. `data-dir` and `in-memory` are one choice: if the command line
/// makes it, the file's are left out.
pub fn merge_config_file(
    args: &mut Args,
    file: FileSettings,
    matches: &ArgMatches,
    folder: &Path,
    rust_log_set: bool,
) -> std::result::Result<(), String> {
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    args.name = args.name.take().or(file.name);
    args.addr = args.addr.take().or(file.listen);
    args.peers_file = args
        .peers_file
        .take()
        .or(file.peers.map(|p| folder.join(p)));
    macro_rules! fill {
        ($($field:ident),*) => {$(
            if let (false, Some(value)) = (given(stringify!($field)), file.$field) {
                args.$field = value;
            }
        )*};
    }
    // The command line's --join and --announce win over the file's.
    if args.join.is_empty() {
        args.join = file.join.unwrap_or_default();
    }
    args.announce = args.announce.take().or(file.announce);
    fill!(
        failure_timeout_ms,
        sync_interval_ms,
        no_cli,
        max_frame_bytes,
        max_connections,
        fsync,
        truncate_corrupt_log,
        compact_min_bytes,
        max_clients,
        client_idle_timeout_secs,
        max_request_bytes,
        slowlog_log_slower_than,
        slowlog_max_len,
        max_client_output_bytes,
        databases,
        protected_mode,
        max_clock_offset_ms,
        write_replicas,
        write_timeout_ms
    );
    if !given("io_threads") && file.io_threads.is_some() {
        args.io_threads = file.io_threads;
    }
    if !given("replicas") && file.replicas.is_some() {
        args.replicas = file.replicas;
    }
    if !given("data_dir") && !given("in_memory") {
        if file.in_memory == Some(true) && file.data_dir.is_some() {
            return Err("data-dir and in-memory = true cannot both be set".into());
        }
        args.data_dir = file.data_dir.map(|p| folder.join(p));
        args.in_memory = file.in_memory.unwrap_or(false);
    }
    if !given("requirepass") && !given("requirepass_file") {
        if file.requirepass.is_some() && file.requirepass_file.is_some() {
            return Err("requirepass and requirepass-file cannot both be set".into());
        }
        args.requirepass = file.requirepass;
        args.requirepass_file = file.requirepass_file.map(|p| folder.join(p));
    }
    if args.log_level.is_none() && !rust_log_set {
        args.log_level = file.log_level;
    }
    args.cluster_secret_file = args
        .cluster_secret_file
        .take()
        .or(file.cluster_secret_file.map(|p| folder.join(p)));
    args.tls_cert_file = args
        .tls_cert_file
        .take()
        .or(file.tls_cert_file.map(|p| folder.join(p)));
    args.tls_key_file = args
        .tls_key_file
        .take()
        .or(file.tls_key_file.map(|p| folder.join(p)));
    args.tls_ca_cert_file = args
        .tls_ca_cert_file
        .take()
        .or(file.tls_ca_cert_file.map(|p| folder.join(p)));
    Ok(())
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
    /// Threads serving Redis clients.
    pub io_threads: usize,
    /// Unread reply bytes past which a Redis client is closed.
    pub max_client_output: usize,
    /// How many Redis databases (`--databases`).
    pub databases: usize,
    /// Members per partition when the keys are sharded (`--replicas`);
    /// `None`: every member holds every key.
    pub replicas: Option<usize>,
    /// Replicas a Redis client's write must reach before it is
    /// acknowledged (`--write-replicas`), this node counting as one.
    pub write_replicas: usize,
    /// How long a write waits for them (`--write-timeout-ms`).
    pub write_timeout: Duration,
    /// Which Redis commands the slow log keeps, and how many.
    pub slowlog: crate::redis::client::SlowlogSettings,
    /// Most a clock may be off from its peers', in milliseconds (see
    /// [`crate::core::hlc`]).
    pub max_clock_offset_ms: u64,
    /// The password Redis clients must give; `None` for none.
    pub requirepass: Option<Password>,
    /// Whether clients and peers from other machines need a password or
    /// the cluster secret.
    pub protected_mode: bool,
    /// The cluster secret, if the node has one (its `Debug` hides it).
    pub cluster_secret: Option<ClusterSecret>,
    /// TLS for Redis clients, if the node has a certificate.
    pub tls: Option<ServerTls>,
    /// The members to join through (`--join`); they are also in `peers`.
    pub join: Vec<String>,
    /// The address other members dial (`--announce`, or the listen
    /// address).
    pub announce: String,
    /// `--failure-timeout-ms`.
    pub failure_timeout: Duration,
}

/// Smallest `--max-frame-bytes`: a batch must always fit.
pub const MIN_MAX_FRAME: usize = 1024 * 1024;

/// Largest `--max-clock-offset-ms`: a day. Clocks that far apart are
/// not one cluster's, and a larger bound would let one wrong clock stamp
/// writes that win over everyone's for longer.
pub const MAX_MAX_CLOCK_OFFSET_MS: u64 = 24 * 3600 * 1000;

/// Most `--replicas`: copies of a key beyond this buy nothing a cluster
/// of equal nodes needs, and cost every write that many pushes.
pub const MAX_REPLICAS: usize = 16;

/// Most `--io-threads`.
pub const MAX_IO_THREADS: usize = 256;

/// Smallest `--max-client-output-bytes`: room for a few replies.
pub const MIN_MAX_CLIENT_OUTPUT: usize = 64 * 1024;

/// The default number of I/O threads: one per core but one, which the
/// store thread keeps to itself; one at least. Measured on 2 cores with
/// redis-benchmark on the same machine, one loop served 50 clients a
/// quarter faster than two (SET 61k against 47k req/s, medians of three),
/// and 1,000 clients alike.
pub fn default_io_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

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
            client_idle_timeout: crate::redis::client::DEFAULT_IDLE_TIMEOUT,
            max_request: crate::redis::client::DEFAULT_MAX_REQUEST,
            io_threads: default_io_threads(),
            max_client_output: crate::redis::client::DEFAULT_MAX_OUTPUT,
            databases: crate::engine::database::DEFAULT_DATABASES,
            replicas: None,
            write_replicas: 1,
            write_timeout: Duration::from_millis(crate::redis::client::DEFAULT_WRITE_TIMEOUT_MS),
            slowlog: crate::redis::client::SlowlogSettings::default(),
            max_clock_offset_ms: DEFAULT_MAX_OFFSET_MS,
            requirepass: None,
            protected_mode: true,
            cluster_secret: None,
            tls: None,
            join: Vec::new(),
            announce: String::new(),
            failure_timeout: Duration::from_millis(5000),
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
        return Err(Error::Config(
            "a node needs a NAME and an ADDR (name and listen in a config file)".into(),
        ));
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
    if args.max_clock_offset_ms == 0 || args.max_clock_offset_ms > MAX_MAX_CLOCK_OFFSET_MS {
        return Err(Error::Config(format!(
            "--max-clock-offset-ms must be between 1 and {MAX_MAX_CLOCK_OFFSET_MS}"
        )));
    }
    if args
        .io_threads
        .is_some_and(|n| n == 0 || n > MAX_IO_THREADS)
    {
        return Err(Error::Config(format!(
            "--io-threads must be between 1 and {MAX_IO_THREADS}"
        )));
    }
    if args.max_client_output_bytes < MIN_MAX_CLIENT_OUTPUT {
        return Err(Error::Config(format!(
            "--max-client-output-bytes must be at least {MIN_MAX_CLIENT_OUTPUT}"
        )));
    }
    let max_databases = crate::engine::database::MAX_DATABASES;
    if args.replicas.is_some_and(|n| n == 0 || n > MAX_REPLICAS) {
        return Err(Error::Config(format!(
            "--replicas must be between 1 and {MAX_REPLICAS} (leave it out to keep every key on every member)"
        )));
    }
    if args.write_replicas == 0 || args.write_replicas > args.replicas.unwrap_or(MAX_REPLICAS) {
        return Err(Error::Config(match args.replicas {
            Some(n) => format!(
                "--write-replicas must be between 1 and --replicas ({n}): a write cannot reach more replicas than its key has"
            ),
            None => format!("--write-replicas must be between 1 and {MAX_REPLICAS}"),
        }));
    }
    if args.write_timeout_ms == 0 {
        return Err(Error::Config(
            "--write-timeout-ms must be at least 1".into(),
        ));
    }
    if args.databases == 0 || args.databases > max_databases {
        return Err(Error::Config(format!(
            "--databases must be between 1 and {max_databases}"
        )));
    }
    if args.max_request_bytes < MIN_MAX_REQUEST {
        return Err(Error::Config(format!(
            "--max-request-bytes must be at least {MIN_MAX_REQUEST}"
        )));
    }
    let cluster_secret = match &args.cluster_secret_file {
        Some(path) => Some(read_cluster_secret(path)?),
        None => None,
    };
    let tls = server_tls(args)?;
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
    let mut peers = match &args.peers_file {
        Some(path) => read_peers(path, bound)?,
        None => Vec::new(),
    };
    let join = checked_joins(&args.join, bound)?;
    for seed in &join {
        if !peers.contains(seed) {
            peers.push(seed.clone());
        }
    }
    if args.failure_timeout_ms < 100 {
        return Err(Error::Config(
            "--failure-timeout-ms must be at least 100".into(),
        ));
    }
    let announce = match &args.announce {
        Some(a) => {
            check_host_port(a).map_err(|why| Error::Config(format!("--announce {a}: {why}")))?;
            a.clone()
        }
        None => bound.to_string(),
    };
    let mut config = Config::new(name, peers);
    config.join = join;
    config.announce = announce;
    config.failure_timeout = Duration::from_millis(args.failure_timeout_ms);
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
    config.io_threads = args.io_threads.unwrap_or_else(default_io_threads);
    config.max_client_output = args.max_client_output_bytes;
    config.databases = args.databases;
    config.replicas = args.replicas;
    config.write_replicas = args.write_replicas;
    config.write_timeout = Duration::from_millis(args.write_timeout_ms);
    config.slowlog = crate::redis::client::SlowlogSettings {
        slower_than_us: args.slowlog_log_slower_than,
        max_len: args.slowlog_max_len,
    };
    config.max_clock_offset_ms = args.max_clock_offset_ms;
    config.requirepass = client_password(args)?;
    config.protected_mode = args.protected_mode;
    config.cluster_secret = cluster_secret;
    config.tls = tls;
    Ok((config, listener))
}

/// Checks that `addr` reads as `host:port`, with a port from 1 to 65535.
fn check_host_port(addr: &str) -> std::result::Result<(), String> {
    let lines = crate::replication::peers::parse_peers(addr).map_err(|e| e.reason.to_string())?;
    match lines.as_slice() {
        [_] if addr.len() <= crate::membership::member::MAX_ADDR_LEN => Ok(()),
        _ => Err("expected one host:port".into()),
    }
}

/// The `--join` addresses, checked, this node's own left out.
fn checked_joins(joins: &[String], bound: std::net::SocketAddr) -> Result<Vec<String>> {
    let mut seeds = Vec::new();
    for addr in joins {
        check_host_port(addr).map_err(|why| Error::Config(format!("--join {addr}: {why}")))?;
        let own = addr
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| crate::replication::peers::is_own_address(a, bound));
        if !own && !seeds.contains(addr) {
            seeds.push(addr.clone());
        }
    }
    Ok(seeds)
}

/// The client password from `--requirepass` or `--requirepass-file`
/// (trimmed). An empty `--requirepass` sets none, as in Redis; an empty
/// file is a mistake, and says so. The error never shows the password.
fn client_password(args: &Args) -> Result<Option<Password>> {
    if let Some(path) = &args.requirepass_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!(
                "cannot read --requirepass-file {}: {e}",
                path.display()
            ))
        })?;
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::Config(format!(
                "--requirepass-file {} is empty",
                path.display()
            )));
        }
        return Ok(Some(Password::new(text)));
    }
    Ok(args
        .requirepass
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(Password::new))
}

/// TLS from `--tls-cert-file`, `--tls-key-file` and `--tls-ca-cert-file`:
/// the certificate and key come together or not at all.
fn server_tls(args: &Args) -> Result<Option<ServerTls>> {
    match (&args.tls_cert_file, &args.tls_key_file) {
        (Some(cert), Some(key)) => {
            ServerTls::load(cert, key, args.tls_ca_cert_file.as_deref()).map(Some)
        }
        (None, None) if args.tls_ca_cert_file.is_some() => Err(Error::Config(
            "--tls-ca-cert-file needs --tls-cert-file and --tls-key-file".into(),
        )),
        (None, None) => Ok(None),
        (Some(_), None) => Err(Error::Config(
            "--tls-cert-file needs --tls-key-file (TLS takes both or neither)".into(),
        )),
        (None, Some(_)) => Err(Error::Config(
            "--tls-key-file needs --tls-cert-file (TLS takes both or neither)".into(),
        )),
    }
}

/// Reads the cluster secret from `path`; an unreadable file, or one that
/// holds too short a secret, is an error naming the file (never its
/// contents).
fn read_cluster_secret(path: &Path) -> Result<ClusterSecret> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Config(format!(
            "cannot read the cluster secret file {}: {e}",
            path.display()
        ))
    })?;
    ClusterSecret::from_text(&text).map_err(|e| {
        Error::Config(format!(
            "the cluster secret file {} is refused: {e}",
            path.display()
        ))
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file_error(text: &str) -> FileError {
        parse_config_file(text).expect_err("a bad config file")
    }

    #[test]
    fn a_config_file_holds_every_node_option() {
        let text = r#"
            # a node
            name = "n1"
            listen = "127.0.0.1:9001"
            peers = "peers.txt"
            join = ["127.0.0.1:9002", "127.0.0.1:9003"]
            announce = "db1.example:9001"
            failure-timeout-ms = 3000
            sync-interval-ms = 250
            no-cli = true
            max-frame-bytes = 2097152
            max-connections = 10
            data-dir = "data"
            fsync = "always"
            truncate-corrupt-log = true
            compact-min-bytes = 1000
            max-clients = 5
            client-idle-timeout-secs = 0
            max-request-bytes = 2000000
            slowlog-log-slower-than = -1
            slowlog-max-len = 7
            io-threads = 3
            max-client-output-bytes = 1000000
            databases = 4
            replicas = 3
            max-clock-offset-ms = 250
            protected-mode = "no"
            requirepass-file = "client-password"
            log-level = "debug"
            cluster-secret-file = "secret"
            tls-cert-file = "node.crt"
            tls-key-file = "node.key"
            tls-ca-cert-file = "ca.crt"
        "#;
        let file = parse_config_file(text).expect("parses");
        assert_eq!(
            file,
            FileSettings {
                name: Some("n1".into()),
                listen: Some("127.0.0.1:9001".into()),
                peers: Some("peers.txt".into()),
                join: Some(vec!["127.0.0.1:9002".into(), "127.0.0.1:9003".into()]),
                announce: Some("db1.example:9001".into()),
                failure_timeout_ms: Some(3000),
                sync_interval_ms: Some(250),
                no_cli: Some(true),
                max_frame_bytes: Some(2_097_152),
                max_connections: Some(10),
                data_dir: Some("data".into()),
                in_memory: None,
                fsync: Some(FsyncPolicy::Always),
                truncate_corrupt_log: Some(true),
                compact_min_bytes: Some(1000),
                max_clients: Some(5),
                client_idle_timeout_secs: Some(0),
                max_request_bytes: Some(2_000_000),
                slowlog_log_slower_than: Some(-1),
                slowlog_max_len: Some(7),
                io_threads: Some(3),
                max_client_output_bytes: Some(1_000_000),
                databases: Some(4),
                replicas: Some(3),
                write_replicas: None,
                write_timeout_ms: None,
                max_clock_offset_ms: Some(250),
                requirepass: None,
                requirepass_file: Some("client-password".into()),
                protected_mode: Some(false),
                log_level: Some(LevelFilter::Debug),
                cluster_secret_file: Some("secret".into()),
                tls_cert_file: Some("node.crt".into()),
                tls_key_file: Some("node.key".into()),
                tls_ca_cert_file: Some("ca.crt".into()),
            }
        );
        assert_eq!(parse_config_file(""), Ok(FileSettings::default()));
    }

    #[test]
    fn config_file_mistakes_name_the_line() {
        assert_eq!(
            file_error("name = \"n1\"\n\nbogus = 1\n"),
            FileError {
                line: 3,
                reason: "unknown key 'bogus'".into()
            }
        );
        assert_eq!(
            file_error("name = \"n1\"\n[node]\nx = 1\n"),
            FileError {
                line: 2,
                reason: "unknown key 'node'".into()
            }
        );
        let wrong = file_error("name = \"n1\"\nsync-interval-ms = \"fast\"\n");
        assert_eq!(wrong.line, 2);
        assert!(
            wrong
                .reason
                .starts_with("sync-interval-ms: invalid type: string \"fast\""),
            "{wrong:?}"
        );
        let negative = file_error("max-clients = -1\n");
        assert_eq!(negative.line, 1);
        assert!(negative.reason.starts_with("max-clients: "), "{negative:?}");
        assert_eq!(
            file_error("\nfsync = \"sometimes\"\n"),
            FileError {
                line: 2,
                reason: "fsync: 'sometimes' is not one of always, everysec, no".into()
            }
        );
        assert_eq!(
            file_error("log-level = \"loud\"\n"),
            FileError {
                line: 1,
                reason: "log-level: 'loud' is not one of error, warn, info, debug, trace".into()
            }
        );
        assert_eq!(file_error("name = \"n1\"\nlisten = \n").line, 2);
    }

    fn merged(command_line: &[&str], file: &str, rust_log_set: bool) -> Result<Args> {
        let matches = Args::command()
            .try_get_matches_from(std::iter::once("netdb").chain(command_line.iter().copied()))
            .expect("a good command line");
        let mut args = Args::from_arg_matches(&matches).expect("args");
        let file = parse_config_file(file).expect("a good file");
        merge_config_file(
            &mut args,
            file,
            &matches,
            Path::new("/etc/netdb"),
            rust_log_set,
        )
        .map_err(Error::Config)?;
        Ok(args)
    }

    #[test]
    fn the_command_line_wins_over_the_file() {
        let file = "name = \"n1\"\nlisten = \"127.0.0.1:9001\"\npeers = \"peers.txt\"\n\
                    sync-interval-ms = 250\nmax-clients = 7\nfsync = \"no\"\nlog-level = \"warn\"\n\
                    max-clock-offset-ms = 2000\n";
        let args = merged(&["--config", "f.toml"], file, false).expect("merged");
        assert_eq!(args.name.as_deref(), Some("n1"));
        assert_eq!(args.addr.as_deref(), Some("127.0.0.1:9001"));
        assert_eq!(args.peers_file, Some(PathBuf::from("/etc/netdb/peers.txt")));
        assert_eq!((args.sync_interval_ms, args.max_clients), (250, 7));
        assert_eq!(args.max_clock_offset_ms, 2000);
        assert_eq!(args.fsync, FsyncPolicy::No);
        assert_eq!(args.log_level, Some(LevelFilter::Warn));
        // Options left out everywhere keep their defaults.
        assert_eq!(args.max_connections, 256);

        let args = merged(
            &[
                "--config",
                "f.toml",
                "n2",
                "--sync-interval-ms",
                "1000",
                "--fsync",
                "always",
                "--log-level",
                "error",
            ],
            file,
            true,
        )
        .expect("merged");
        assert_eq!(args.name.as_deref(), Some("n2"));
        assert_eq!(args.addr.as_deref(), Some("127.0.0.1:9001"));
        // Given on the command line, even as the default value.
        assert_eq!(args.sync_interval_ms, 1000);
        assert_eq!(args.max_clients, 7);
        assert_eq!(args.fsync, FsyncPolicy::Always);
        assert_eq!(args.log_level, Some(LevelFilter::Error));

        // Relative to the file's folder, unless the command line has one.
        let with_secret = format!("{file}cluster-secret-file = \"s.txt\"\n");
        let args = merged(&["--config", "f.toml"], &with_secret, false).expect("merged");
        assert_eq!(
            args.cluster_secret_file,
            Some(PathBuf::from("/etc/netdb/s.txt"))
        );
        let args = merged(
            &["--config", "f.toml", "--cluster-secret-file", "mine"],
            &with_secret,
            false,
        )
        .expect("merged");
        assert_eq!(args.cluster_secret_file, Some(PathBuf::from("mine")));

        // RUST_LOG set: the file's level gives way to it.
        let args = merged(&["--config", "f.toml"], file, true).expect("merged");
        assert_eq!(args.log_level, None);
    }

    #[test]
    fn the_cluster_secret_never_shows_in_the_settings() {
        let text = "a cluster secret of more than 32 characters";
        let mut config = Config::new("n1", vec![]);
        config.cluster_secret = Some(ClusterSecret::from_text(text).expect("long"));
        let shown = format!("{config:?}");
        assert!(shown.contains("cluster_secret: Some(<secret>)"), "{shown}");
        assert!(!shown.contains(text), "{shown}");
    }

    #[test]
    fn where_data_lives_is_one_choice() {
        let file = "data-dir = \"data\"\n";
        let args = merged(&["--config", "f"], file, false).expect("merged");
        assert_eq!(args.data_dir, Some(PathBuf::from("/etc/netdb/data")));
        assert!(!args.in_memory);
        let args = merged(&["--config", "f", "--in-memory"], file, false).expect("merged");
        assert_eq!((args.data_dir, args.in_memory), (None, true));
        let args = merged(
            &["--config", "f", "--data-dir", "d"],
            "in-memory = true\n",
            false,
        )
        .expect("merged");
        assert_eq!((args.data_dir, args.in_memory), (Some("d".into()), false));
        let both = merged(
            &["--config", "f"],
            "data-dir = \"d\"\nin-memory = true\n",
            false,
        )
        .expect_err("both");
        assert_eq!(
            both.to_string(),
            "data-dir and in-memory = true cannot both be set"
        );
    }

    #[test]
    fn a_client_password_comes_from_the_line_the_file_or_a_password_file() {
        let args =
            merged(&["--config", "f"], "requirepass-file = \"pw\"\n", false).expect("merged");
        assert_eq!(args.requirepass_file, Some(PathBuf::from("/etc/netdb/pw")));
        let args = merged(
            &["--config", "f", "--requirepass", "x"],
            "requirepass-file = \"pw\"\n",
            false,
        )
        .expect("merged");
        assert_eq!(
            (args.requirepass.as_deref(), args.requirepass_file),
            (Some("x"), None),
            "the command line wins"
        );
        let both = merged(
            &["--config", "f"],
            "requirepass = \"a\"\nrequirepass-file = \"b\"\n",
            false,
        )
        .expect_err("both");
        assert_eq!(
            both.to_string(),
            "requirepass and requirepass-file cannot both be set"
        );

        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("pw");
        let with_file = |text: &str| {
            std::fs::write(&file, text).expect("write");
            let mut args = merged(&["--config", "f"], "", false).expect("merged");
            args.requirepass_file = Some(file.clone());
            client_password(&args)
        };
        let password = with_file("  s3cret\n").expect("read").expect("a password");
        assert!(password.matches(b"s3cret"));
        let empty = with_file(" \n").expect_err("empty");
        assert!(empty.to_string().contains("is empty"), "{empty}");
        let mut args = merged(&["--config", "f", "--requirepass", ""], "", false).expect("merged");
        assert!(
            client_password(&args).expect("fine").is_none(),
            "empty: none, as in Redis"
        );
        args.requirepass_file = Some(dir.path().join("missing"));
        let missing = client_password(&args).expect_err("missing");
        assert!(
            missing
                .to_string()
                .contains("cannot read --requirepass-file"),
            "{missing}"
        );
    }
}
