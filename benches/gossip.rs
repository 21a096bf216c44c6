//! Membership's own cost, from real processes (the release `netdb` binary,
//! started through the test harness on free loopback ports): for clusters
//! of 5 and 16 nodes that join through the first,
//!
//! 1. the time from the last node's start until every member lists it as
//!    up (in `CLUSTER NODES`, no longer joining);
//! 2. the gossip and probe bytes each node sends per second while idle
//!    (`netdb_gossip_bytes_sent` of `INFO cluster`, framing included, TCP
//!    and IP headers not), averaged over the nodes, with push rounds made
//!    rare (`--sync-interval-ms` of an hour) so that only gossip is
//!    counted.
//!
//! Run with `cargo bench --bench gossip`. `GOSSIP_SIZES` (default `5,16`)
//! and `GOSSIP_SECS` (default `10`, the measuring period) size it.

mod common;

use common::harness::{eventually_ok, info_field, redis_connection, Node, NodeSpec};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a cluster may take to learn a member before the bench gives up.
const LEARN_TIMEOUT: Duration = Duration::from_secs(60);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A node of the bench's clusters, joining through `seed` if given.
fn start(name: &str, seed: Option<SocketAddr>) -> Node {
    let mut spec = NodeSpec::new(name).sync_every(3_600_000);
    if let Some(seed) = seed {
        spec = spec.args(&["--join", &seed.to_string()]);
    }
    spec.start()
}

/// Waits until every node lists `n` members, none of them still joining
/// (`handshake` in `CLUSTER NODES`).
fn wait_known(nodes: &[Node], n: usize) {
    for node in nodes {
        let mut con = redis_connection(node.addr());
        eventually_ok(
            LEARN_TIMEOUT,
            format!("{} to know {n} members as up", node.name()),
            || {
                let text: String = redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query(&mut con)
                    .map_err(|e| e.to_string())?;
                let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
                if lines.len() == n && lines.iter().all(|l| !l.contains("handshake")) {
                    Ok(())
                } else {
                    Err(format!("{lines:?}"))
                }
            },
        );
    }
}

/// Gossip bytes `node` has sent since it started.
fn gossip_bytes(node: &Node) -> u64 {
    let mut con = redis_connection(node.addr());
    info_field(&mut con, "cluster", "netdb_gossip_bytes_sent")
        .and_then(|n| n.parse().ok())
        .expect("netdb_gossip_bytes_sent in INFO cluster")
}

fn main() {
    let sizes: Vec<usize> = env_or("GOSSIP_SIZES", "5,16".to_string())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let secs: u64 = env_or("GOSSIP_SECS", 10);
    println!("| nodes | last join known as up everywhere | idle gossip sent per node |");
    println!("| ---: | ---: | ---: |");
    for n in sizes.into_iter().filter(|&n| n >= 2) {
        let first = start("n1", None);
        let seed = first.addr();
        let mut nodes = vec![first];
        for i in 2..n {
            nodes.push(start(&format!("n{i}"), Some(seed)));
        }
        wait_known(&nodes, n - 1);
        let joined = Instant::now();
        nodes.push(start(&format!("n{n}"), Some(seed)));
        wait_known(&nodes, n);
        let learn = joined.elapsed();
        let before: Vec<u64> = nodes.iter().map(gossip_bytes).collect();
        let measuring = Instant::now();
        // The measuring period itself: the cluster is left idle for it.
        std::thread::sleep(Duration::from_secs(secs));
        let elapsed = measuring.elapsed().as_secs_f64();
        let after: Vec<u64> = nodes.iter().map(gossip_bytes).collect();
        let per_node = before
            .iter()
            .zip(&after)
            .map(|(b, a)| a.saturating_sub(*b) as f64 / elapsed)
            .sum::<f64>()
            / n as f64;
        println!("| {n} | {learn:.2?} | {per_node:.0} B/s |");
    }
}
