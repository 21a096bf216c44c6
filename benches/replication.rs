//! Replication numbers from real processes: the release `netdb` binary and
//! `redis-server`, started through the test harness (`tests/common`) on
//! free loopback ports and stopped (killed and reaped) when the bench ends
//! or fails.
//!
//! 1. Replication latency under a steady write load: for sampled writes,
//!    the time from the write's reply to the value being readable on each
//!    other node (a `GET` poll over RESP, one connection per node); a
//!    3-node netdb cluster (default settings, `--in-memory`) beside a Redis
//!    primary with replicas (`--replicaof`) under the same load.
//! 2. Bytes a pusher sends its peer in one round (`last_round_bytes` of
//!    `INFO netdb`) by key count and by writes in the round.
//! 3. Full resync: an empty node started beside a peer holding many keys,
//!    timed until its `DBSIZE` shows them all.
//!
//! Run with `cargo bench --bench replication` (a few minutes). Sizes come
//! from the environment, so a quick run is possible:
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `REPL_TABLES` | `1,2,3` | which tables to print |
//! | `REPL_SECS` | `10` | seconds of sampling per system in table 1 |
//! | `REPL_RATE` | `5000` | background writes per second in table 1 |
//! | `REPL_SAMPLE_MS` | `20` | one sampled write every this many ms |
//! | `REPL_REDIS_REPLICAS` | `2` | Redis replicas in table 1 |
//! | `REPL_KEYS` | `10000,100000,1000000` | key counts of table 2 |
//! | `REPL_WRITES` | `0,10,1000` | writes per round in table 2 |
//! | `REPL_FULL_KEYS` | `1000000` | keys of the full resync (table 3) |
//! | `REPL_REPS` | `3` | repetitions (medians) in tables 2 and 3 |
//! | `REPL_TLS` | `no` | `both`: each binary also runs with TLS between its nodes (a CA and a node certificate made for the run), labelled `+tls`, side by side as with `REPL_SECRET`; `yes`: only with it |
//! | `REPL_SECRET` | `no` | `both`: each binary also runs with a cluster secret (`--cluster-secret-file`), labelled `+secret`, side by side (every other binary with the secret first); `yes`: only with one |
//!
//! Keys are 10 bytes (`key:000042`) and values 100 bytes, as in the other
//! benches.

mod common;

use common::harness::{
    eventually, netdb_bin, on_free_ports, poll, redis_connection, start_all, temp_dir,
    write_peers_file, Node, NodeSpec, PortTaken, Process, Rng, Stream, START_TIMEOUT,
};
use common::VALUE_LEN;
use redis::Connection;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Keys the background load of table 1 writes to.
const LOAD_KEYS: u64 = 10_000;

/// Longest wait for one sampled write to show up on a node.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(5);

type Res<T> = std::result::Result<T, String>;

fn main() {
    let result = run();
    if let Some(path) = SECRET_FILE.get() {
        let _ = std::fs::remove_file(path);
    }
    if let Some(dir) = TLS_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
    if let Err(e) = result {
        eprintln!("replication bench failed: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let tables = env_list("REPL_TABLES", &[1, 2, 3]);
    let tmp = temp_dir();
    println!("netdb replication bench");
    for (label, bin) in binaries() {
        println!("binary {label}: {}", bin.display());
    }
    println!("{}", machine_notes());
    if tables.contains(&1) {
        latency_table(tmp.path())?;
    }
    if tables.contains(&2) {
        bytes_table(tmp.path())?;
    }
    if tables.contains(&3) {
        resync_table(tmp.path())?;
    }
    println!("\n{}", machine_notes());
    Ok(())
}

// ---------------------------------------------------------------- settings

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .split(',')
            .filter_map(|s| s.trim().replace('_', "").parse().ok())
            .collect(),
        Err(_) => default.to_vec(),
    }
}

fn machine_notes() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!(
        "machine: {} cores, load average {}",
        thread::available_parallelism().map_or(0, |n| n.get()),
        load.join(" ")
    )
}

// --------------------------------------------------------------- processes

/// The netdb binaries to measure, by label: `REPL_NETDB_BINS` as
/// `label=path,label=path` (to compare two builds side by side in one
/// run), or the one cargo built.
fn binaries() -> Vec<(String, PathBuf)> {
    let bins = match std::env::var("REPL_NETDB_BINS") {
        Ok(list) => list
            .split(',')
            .filter_map(|item| item.split_once('='))
            .map(|(label, path)| (label.trim().to_owned(), PathBuf::from(path.trim())))
            .collect(),
        Err(_) => vec![("netdb".to_owned(), netdb_bin())],
    };
    let bins = with_variant(bins, "REPL_SECRET", SECRET_LABEL);
    with_variant(bins, "REPL_TLS", TLS_LABEL)
}

/// `bins`, each also (`both`) or only (`yes`) labelled with `label`, as the
/// variable `var` says.
fn with_variant(bins: Vec<(String, PathBuf)>, var: &str, label: &str) -> Vec<(String, PathBuf)> {
    let mode = std::env::var(var).unwrap_or_default();
    bins.into_iter()
        .enumerate()
        .flat_map(|(i, (name, bin))| {
            let with = (format!("{name}{label}"), bin.clone());
            match mode.as_str() {
                // Every other binary runs with the variant first, so an
                // effect of running second does not count as its cost.
                "both" if i % 2 == 1 => vec![with, (name, bin)],
                "both" => vec![(name, bin), with],
                "yes" => vec![with],
                _ => vec![(name, bin)],
            }
        })
        .collect()
}

/// What ends the label of a binary run with TLS between its nodes; its
/// nodes' names carry it too.
const TLS_LABEL: &str = "+tls";

/// The directory of the CA and node certificate of the nodes labelled
/// [`TLS_LABEL`], made once; removed when the bench ends.
static TLS_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The TLS options of a node labelled [`TLS_LABEL`]: a CA and a node
/// certificate for 127.0.0.1 it signed, made on first use.
fn tls_args() -> Vec<String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let dir = TLS_DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!(
            "netdb-replication-bench-{}.tls",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("make the certificates' directory");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "netdb bench CA");
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, ca_key);
        let node = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("node params");
        let node_key = KeyPair::generate().expect("node key");
        let node_cert = node
            .signed_by(&node_key, &issuer)
            .expect("node certificate");
        std::fs::write(dir.join("ca.crt"), ca_cert.pem()).expect("write ca.crt");
        std::fs::write(dir.join("node.crt"), node_cert.pem()).expect("write node.crt");
        std::fs::write(dir.join("node.key"), node_key.serialize_pem()).expect("write node.key");
        dir
    });
    let path = |f: &str| dir.join(f).display().to_string();
    vec![
        "--tls-cert-file".into(),
        path("node.crt"),
        "--tls-key-file".into(),
        path("node.key"),
        "--tls-ca-cert-file".into(),
        path("ca.crt"),
    ]
}

/// What ends the label of a binary run with a cluster secret; its nodes'
/// names carry it too.
const SECRET_LABEL: &str = "+secret";

/// The cluster secret file of the nodes labelled [`SECRET_LABEL`],
/// written once; removed when the bench ends.
static SECRET_FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// [`SECRET_FILE`], written on first use.
fn secret_file() -> &'static Path {
    SECRET_FILE.get_or_init(|| {
        let path = std::env::temp_dir().join(format!(
            "netdb-replication-bench-{}.secret",
            std::process::id()
        ));
        std::fs::write(&path, "replication bench cluster secret, 0123456789\n")
            .expect("write the bench's secret file");
        path
    })
}

/// `Err` naming `name` if it is no longer `running`.
fn check_alive(running: bool, name: &str) -> Res<()> {
    if running {
        Ok(())
    } else {
        Err(format!("{name} exited"))
    }
}

/// netdb nodes called `names`, of the binary `bin`, listing each other
/// (in memory, no console, default settings), on free loopback ports.
fn start_netdb(bin: &Path, dir: &Path, names: &[String]) -> Vec<Node> {
    start_all(names.len(), |addrs| {
        let peers = dir.join(format!("{}.peers", names[0]));
        write_peers_file(&peers, addrs);
        names
            .iter()
            .zip(addrs)
            .map(|(name, &addr)| netdb_spec(bin, name, addr, &peers, addrs.len() - 1))
            .collect()
    })
}

/// A netdb node of the binary `bin` on `addr` with the peers file `peers`
/// (in memory, no console, default settings).
/// A node whose name carries [`SECRET_LABEL`] has the cluster secret;
/// one whose name carries [`TLS_LABEL`] talks TLS to its peers.
fn netdb_spec(bin: &Path, name: &str, addr: SocketAddr, peers: &Path, count: usize) -> NodeSpec {
    let mut spec = NodeSpec::new(name)
        .bin(bin)
        .listen(addr)
        .peers(peers, count)
        .args(&["--no-cli", "--in-memory"]);
    if name.contains(TLS_LABEL) {
        let tls = tls_args();
        let tls: Vec<&str> = tls.iter().map(String::as_str).collect();
        spec = spec.args(&tls);
    }
    if !name.contains(SECRET_LABEL) {
        return spec;
    }
    let file = secret_file().to_str().expect("a UTF-8 temporary path");
    spec.args(&["--cluster-secret-file", file])
}

/// redis-servers without persistence on free loopback ports, each ready
/// to accept connections: a primary and `replicas` replicas of it. Returns
/// them and their addresses, the primary first.
fn start_redis(dir: &Path, replicas: usize) -> (Vec<Process>, Vec<SocketAddr>) {
    on_free_ports(1 + replicas, |addrs| {
        let procs = (0..addrs.len())
            .map(|i| {
                let name = match i {
                    0 => "redis-primary".to_string(),
                    _ => format!("redis-replica{}", i - 1),
                };
                let primary = (i > 0).then_some(addrs[0]);
                redis_server(dir, &name, addrs[i], primary)
            })
            .collect::<Result<_, _>>()?;
        Ok((procs, addrs.to_vec()))
    })
}

/// A redis-server on `addr`, a replica of `primary` if given, once it
/// accepts connections; `Err` if its port was taken.
fn redis_server(
    dir: &Path,
    name: &str,
    addr: SocketAddr,
    primary: Option<SocketAddr>,
) -> Result<Process, PortTaken> {
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &addr.port().to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        // Its log on stderr, where the harness collects it.
        .args(["--logfile", "/dev/stderr"]);
    if let Some(p) = primary {
        cmd.args(["--replicaof", "127.0.0.1", &p.port().to_string()]);
    }
    let mut redis = Process::spawn(name, &mut cmd);
    let ready = redis.wait_line(Stream::Stderr, START_TIMEOUT, |l| {
        l.contains("Ready to accept connections")
    });
    if ready.is_some() {
        return Ok(redis);
    }
    let exited = redis.kill();
    if exited.port_in_use() {
        return Err(PortTaken {
            stderr: exited.stderr,
        });
    }
    panic!("{name} did not start: {exited}");
}

fn key(i: u64) -> String {
    format!("key:{i:06}")
}

fn value(tag: u64) -> Vec<u8> {
    let mut v = format!("{tag:020}").into_bytes();
    v.resize(VALUE_LEN, b'v');
    v
}

fn dbsize(c: &mut Connection) -> Res<usize> {
    redis::cmd("DBSIZE")
        .query(c)
        .map_err(|e| format!("DBSIZE: {e}"))
}

/// Writes keys `from..to` with MSETs of 1000 pairs, pipelined.
fn fill(c: &mut Connection, from: u64, to: u64) -> Res<()> {
    let v = value(0);
    let mut pipe = redis::pipe();
    let mut queued = 0;
    let mut i = from;
    while i < to {
        let end = (i + 1000).min(to);
        let mut cmd = redis::cmd("MSET");
        for k in i..end {
            cmd.arg(key(k)).arg(&v[..]);
        }
        pipe.add_command(cmd).ignore();
        queued += 1;
        i = end;
        if queued == 50 || i == to {
            pipe.query::<()>(c).map_err(|e| format!("MSET: {e}"))?;
            pipe = redis::pipe();
            queued = 0;
        }
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

// ---------------------------------------------------------------- table 1

/// Where a sampled write goes, and the nodes it is read back from.
type Target = (SocketAddr, Vec<SocketAddr>);

/// Latencies of one system: milliseconds from a sampled write's reply to
/// its value on one other node, one number per (write, other node).
struct Latencies {
    ms: Vec<f64>,
    missed: usize,
    load_rate: f64,
}

/// Runs the load and the sampler. `load` take the background writes (one
/// writer thread each); sample `i` is written to `targets[i % n].0` and
/// polled on every address of `targets[i % n].1`.
fn measure_latency(load: &[SocketAddr], targets: &[Target]) -> Res<Latencies> {
    let secs = env_usize("REPL_SECS", 10) as f64;
    let rate = env_usize("REPL_RATE", 5000) as f64;
    let sample_every = Duration::from_millis(env_usize("REPL_SAMPLE_MS", 20) as u64);
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let per_thread = rate / load.len() as f64;
    let mut writers = Vec::new();
    for (t, &addr) in load.iter().enumerate() {
        let mut c = redis_connection(addr);
        let (stop, written) = (Arc::clone(&stop), Arc::clone(&written));
        writers.push(thread::spawn(move || -> Res<()> {
            let period = Duration::from_secs_f64(1.0 / per_thread);
            let mut start = Instant::now();
            let mut rng = Rng::from_seed(t as u64);
            let mut n: u32 = 0;
            while !stop.load(Ordering::Relaxed) {
                let due = start + period * n;
                let now = Instant::now();
                if due > now {
                    thread::sleep(due - now);
                } else if now - due > period * 20 {
                    // Fell behind (the machine is busy): go on at the rate
                    // from here rather than catch up in a burst.
                    start = now - period * n;
                }
                let x = rng.next_u64();
                redis::cmd("SET")
                    .arg(format!("load:{:05}", x % LOAD_KEYS))
                    .arg(&value(x)[..])
                    .query::<()>(&mut c)
                    .map_err(|e| format!("SET: {e}"))?;
                written.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            Ok(())
        }));
    }
    // Warm up before sampling.
    thread::sleep(Duration::from_secs(1));
    let mut conns: HashMap<SocketAddr, Connection> = HashMap::new();
    let mut readers: HashMap<SocketAddr, Connection> = HashMap::new();
    for (w, rs) in targets {
        conns.entry(*w).or_insert_with(|| redis_connection(*w));
        for r in rs {
            readers.entry(*r).or_insert_with(|| redis_connection(*r));
        }
    }
    let (w0, t0) = (written.load(Ordering::Relaxed), Instant::now());
    let end = t0 + Duration::from_secs_f64(secs);
    let mut ms = Vec::new();
    let mut missed = 0;
    let mut i: u64 = 0;
    let tag = std::process::id() as u64 * 1_000_000;
    while Instant::now() < end {
        let next = Instant::now() + sample_every;
        let (w, rs) = &targets[i as usize % targets.len()];
        let k = format!("sample:{i:06}");
        let v = value(tag + i);
        let c = conns.get_mut(w).expect("connected above");
        redis::cmd("SET")
            .arg(&k)
            .arg(&v[..])
            .query::<()>(c)
            .map_err(|e| format!("SET: {e}"))?;
        let replied = Instant::now();
        let mut pending: Vec<SocketAddr> = rs.clone();
        while !pending.is_empty() {
            if replied.elapsed() > SAMPLE_TIMEOUT {
                missed += pending.len();
                break;
            }
            let mut still = Vec::new();
            for r in pending {
                let rc = readers.get_mut(&r).expect("connected above");
                let got: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&k)
                    .query(rc)
                    .map_err(|e| format!("GET: {e}"))?;
                if got.as_deref() == Some(&v[..]) {
                    ms.push(replied.elapsed().as_secs_f64() * 1e3);
                } else {
                    still.push(r);
                }
            }
            pending = still;
        }
        i += 1;
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        }
    }
    let load_rate = (written.load(Ordering::Relaxed) - w0) as f64 / t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join()
            .map_err(|_| "a load thread panicked".to_string())??;
    }
    ms.sort_by(f64::total_cmp);
    Ok(Latencies {
        ms,
        missed,
        load_rate,
    })
}

fn latency_table(tmp: &Path) -> Res<()> {
    let dir = tmp.join("latency");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    println!(
        "\n## 1. Replication latency: write reply to value readable on another node\n\
         load {} writes/s (REPL_RATE), sampling {} s (REPL_SECS), one sample every {} ms",
        env_usize("REPL_RATE", 5000),
        env_usize("REPL_SECS", 10),
        env_usize("REPL_SAMPLE_MS", 20)
    );

    let mut rows = Vec::new();
    for (label, bin) in binaries() {
        let names: Vec<String> = (0..3).map(|i| format!("{label}-node{i}")).collect();
        let mut nodes = start_netdb(&bin, &dir, &names);
        let addrs: Vec<SocketAddr> = nodes.iter().map(Node::addr).collect();
        let targets: Vec<Target> = addrs
            .iter()
            .map(|&w| (w, addrs.iter().copied().filter(|&r| r != w).collect()))
            .collect();
        let result = measure_latency(&addrs, &targets);
        for n in &mut nodes {
            check_alive(n.is_running(), n.name())?;
        }
        rows.push((format!("{label}, 3 nodes"), result?));
    }

    let replicas = env_usize("REPL_REDIS_REPLICAS", 2).max(1);
    let redis = {
        let (mut procs, addrs) = start_redis(&dir, replicas);
        for &a in &addrs[1..] {
            wait_replica_up(a);
        }
        // Three writer threads, as for netdb, all on the primary.
        let load = [addrs[0]; 3];
        let result = measure_latency(&load, &[(addrs[0], addrs[1..].to_vec())]);
        for p in &mut procs {
            check_alive(p.is_running(), p.name())?;
        }
        result?
    };

    let row = |name: &str, l: &Latencies| {
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {} | {} | {:.0} |",
            percentile(&l.ms, 50.0),
            percentile(&l.ms, 99.0),
            l.ms.last().copied().unwrap_or(f64::NAN),
            l.ms.len(),
            l.missed,
            l.load_rate
        )
    };
    println!("\n| system | p50 ms | p99 ms | max ms | samples | missed | load writes/s |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (name, l) in &rows {
        row(name, l);
    }
    row(&format!("redis, primary + {replicas} replicas"), &redis);
    for (name, l) in &rows {
        println!(
            "| {} / redis | {:.1}x | {:.1}x | | | | |",
            name.split(',').next().unwrap_or_default(),
            percentile(&l.ms, 50.0) / percentile(&redis.ms, 50.0),
            percentile(&l.ms, 99.0) / percentile(&redis.ms, 99.0)
        );
    }
    println!(
        "(one sample per sampled write and other node; targets for netdb: p50 < 1 ms, p99 < 5 ms)"
    );
    Ok(())
}

/// Waits until the replica on `addr` has linked to its primary.
fn wait_replica_up(addr: SocketAddr) {
    let mut c = redis_connection(addr);
    eventually(
        Duration::from_secs(15),
        format_args!("the replica on {addr} to link to its primary"),
        || {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut c)
                .expect("INFO replication");
            info.contains("master_link_status:up")
        },
    );
}

// ---------------------------------------------------------------- table 2

/// What `INFO netdb` says of one peer.
#[derive(Debug, Clone, Copy)]
struct PeerInfo {
    last_sync_ms_ago: Option<u64>,
    writes_behind: Option<u64>,
    last_round_bytes: u64,
}

fn peer_info(c: &mut Connection, peer: usize) -> Res<PeerInfo> {
    let info: String = redis::cmd("INFO")
        .arg("netdb")
        .query(c)
        .map_err(|e| format!("INFO: {e}"))?;
    let line = info
        .lines()
        .find_map(|l| l.strip_prefix(&format!("peer{peer}:")))
        .ok_or_else(|| format!("no peer{peer} in INFO netdb: {info}"))?;
    let fields: HashMap<&str, &str> = line.split(',').filter_map(|f| f.split_once('=')).collect();
    let num = |k: &str| fields.get(k).and_then(|v| v.trim().parse::<u64>().ok());
    Ok(PeerInfo {
        last_sync_ms_ago: num("last_sync_ms_ago"),
        writes_behind: num("writes_behind"),
        last_round_bytes: num("last_round_bytes").ok_or("no last_round_bytes")?,
    })
}

/// Waits for a round to peer 0 that ended after `after` and left it
/// nothing behind; returns the largest `last_round_bytes` seen in the
/// 20 ms after it (a later idle round may overwrite the number).
fn round_bytes_after(c: &mut Connection, after: Instant) -> Res<u64> {
    let round = poll(
        Duration::from_secs(30),
        Duration::from_millis(1),
        "a round after the writes",
        || {
            let asked = Instant::now();
            let p = peer_info(c, 0)?;
            let synced_after = p.last_sync_ms_ago.is_some_and(|ago| {
                asked
                    .checked_sub(Duration::from_millis(ago + 1))
                    .is_some_and(|t| t > after)
            });
            if synced_after && p.writes_behind == Some(0) {
                Ok(p)
            } else {
                Err(format!("{p:?}"))
            }
        },
    );
    let mut most = round.last_round_bytes;
    let until = Instant::now() + Duration::from_millis(20);
    while Instant::now() < until {
        thread::sleep(Duration::from_millis(2));
        most = most.max(peer_info(c, 0)?.last_round_bytes);
    }
    Ok(most)
}

/// Waits until `c`'s DBSIZE is `n`, looking every `every`.
fn wait_dbsize(c: &mut Connection, n: usize, within: Duration, every: Duration) {
    poll(within, every, format_args!("DBSIZE {n}"), || {
        match dbsize(c) {
            Ok(got) if got == n => Ok(()),
            Ok(got) => Err(format!("DBSIZE {got}")),
            Err(e) => Err(e),
        }
    });
}

fn bytes_table(tmp: &Path) -> Res<()> {
    let dir = tmp.join("bytes");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut counts = env_list("REPL_KEYS", &[10_000, 100_000, 1_000_000]);
    counts.sort_unstable();
    let writes = env_list("REPL_WRITES", &[0, 10, 1000]);
    let reps = env_usize("REPL_REPS", 3).max(1);
    println!(
        "\n## 2. Bytes node A sends peer B in one round (last_round_bytes), 2 nodes\n\
         default sync interval (1000 ms); the W writes of a round are one MSET on A;\n\
         median of {reps} rounds per cell"
    );
    for (label, bin) in binaries() {
        println!("\n{label}:");
        bytes_rows(&bin, &dir, &label, &counts, &writes, reps)?;
    }
    Ok(())
}

fn bytes_rows(
    bin: &Path,
    dir: &Path,
    label: &str,
    counts: &[usize],
    writes: &[usize],
    reps: usize,
) -> Res<()> {
    let mut nodes = start_netdb(bin, dir, &[format!("{label}-a"), format!("{label}-b")]);
    let mut ca = redis_connection(nodes[0].addr());
    let mut cb = redis_connection(nodes[1].addr());
    let mut header = String::from("| keys |");
    let mut rule = String::from("| --- |");
    for w in writes {
        header += &format!(" {w} writes/round |");
        rule += " --- |";
    }
    println!("\n{header}\n{rule}");
    let mut held = 0u64;
    let mut tag = 1u64;
    for &n in counts {
        fill(&mut ca, held, n as u64)?;
        held = held.max(n as u64);
        wait_dbsize(
            &mut cb,
            held as usize,
            Duration::from_secs(120),
            Duration::from_millis(10),
        );
        // The fill's last round may still be in flight: let it end.
        round_bytes_after(&mut ca, Instant::now())?;
        let mut line = format!("| {n} |");
        for &w in writes {
            let mut samples = Vec::new();
            for _ in 0..reps {
                let before = Instant::now();
                if w > 0 {
                    let mut cmd = redis::cmd("MSET");
                    let v = value(tag);
                    tag += 1;
                    for j in 0..w as u64 {
                        // Spread over the keys held, each key once.
                        cmd.arg(key(j * held / w as u64)).arg(&v[..]);
                    }
                    cmd.query::<()>(&mut ca).map_err(|e| format!("MSET: {e}"))?;
                }
                samples.push(round_bytes_after(&mut ca, before)? as f64);
            }
            line += &format!(" {:.0} |", median(samples));
        }
        println!("{line}");
    }
    for n in &mut nodes {
        check_alive(n.is_running(), n.name())?;
    }
    Ok(())
}

// ---------------------------------------------------------------- table 3

fn resync_table(tmp: &Path) -> Res<()> {
    let dir = tmp.join("resync");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let n = env_usize("REPL_FULL_KEYS", 1_000_000);
    let reps = env_usize("REPL_REPS", 3).max(1);
    println!(
        "\n## 3. Full resync: an empty node started beside a peer holding {n} keys\n\
         (10-byte keys, 100-byte values; default settings, --in-memory): time from\n\
         starting it until DBSIZE shows every key"
    );
    // One full node per binary, each filled once; the empty nodes of the
    // binaries take turns, so a change in the machine's load hits all.
    let mut pairs = Vec::new();
    for (label, bin) in binaries() {
        // The peers file lists the full node and the place of the empty
        // ones, which take turns on it.
        let peers = dir.join(format!("{label}.peers"));
        let mut empty_at = None;
        let full = start_all(2, |addrs| {
            write_peers_file(&peers, addrs);
            empty_at = Some(addrs[1]);
            vec![netdb_spec(
                &bin,
                &format!("{label}-full"),
                addrs[0],
                &peers,
                1,
            )]
        })
        .remove(0);
        let empty_at = empty_at.expect("an address for the empty nodes");
        let mut c = redis_connection(full.addr());
        let filling = Instant::now();
        fill(&mut c, 0, n as u64)?;
        wait_dbsize(
            &mut c,
            n,
            Duration::from_secs(60),
            Duration::from_millis(10),
        );
        println!(
            "({label}: filled in {:.1} s)",
            filling.elapsed().as_secs_f64()
        );
        pairs.push((label, bin, peers, empty_at, full, Vec::new()));
    }
    for rep in 0..reps {
        for (label, bin, peers, empty_at, full, times) in &mut pairs {
            let started = Instant::now();
            let name = format!("{label}-empty{rep}");
            let mut empty = netdb_spec(bin, &name, *empty_at, peers, 1).start();
            let mut ce = redis_connection(empty.addr());
            // Looked at often: the time until it holds them is the result.
            wait_dbsize(
                &mut ce,
                n,
                Duration::from_secs(120),
                Duration::from_millis(2),
            );
            let took = started.elapsed().as_secs_f64();
            let cpu = empty.cpu_secs().unwrap_or(f64::NAN);
            check_alive(empty.is_running(), empty.name())?;
            check_alive(full.is_running(), full.name())?;
            drop(empty);
            println!("{label} run {}: {took:.3} s, {cpu:.2} s CPU", rep + 1);
            times.push((took, cpu));
        }
    }
    println!("\n| binary | keys | median s | runs s | median CPU s of the new node |");
    println!("| --- | --- | --- | --- | --- |");
    for (label, _, _, _, _, times) in pairs {
        let runs: Vec<String> = times.iter().map(|t| format!("{:.3}", t.0)).collect();
        println!(
            "| {label} | {n} | {:.3} | {} | {:.2} |",
            median(times.iter().map(|t| t.0).collect()),
            runs.join(", "),
            median(times.iter().map(|t| t.1).collect())
        );
    }
    println!("(target: under 1 s; CPU time from /proc, 10 ms ticks)");
    Ok(())
}
