//! Clusters: nodes `n1`, `n2` ... on reserved loopback ports, each
//! listing all of them in one peers file, and checks that run over every
//! node.

use super::disk::temp_dir;
use super::node::{start_all, write_peers_file, Node, NodeSpec};
use super::output::show;
use super::wait::{eventually_ok, throughout};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long replication between live in-memory nodes may take, with a
/// sync interval of [`FAST_SYNC_MS`]. Generous for a loaded machine, and
/// still under the 5 s I/O timeout of a stuck peer: a test that sees its
/// writes arrive in time knows no round waited on a stuck connection.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(4);

/// How long nodes that fsync every write may take to agree, syncing every
/// [`FAST_SYNC_MS`] on a busy machine.
pub const DISK_CONVERGE_TIMEOUT: Duration = Duration::from_secs(15);

/// The sync interval most tests use, in milliseconds.
pub const FAST_SYNC_MS: u64 = 100;

/// A sync interval long enough that no periodic round happens during a
/// test: only writes, `sync`, `quit` and end of input push.
pub const NO_SYNC_MS: u64 = 600_000;

/// Nodes that list each other as peers, and the directory with their peers
/// file (and their data, if they keep any).
pub struct Cluster {
    /// The nodes, `n1`, `n2` ... in order.
    pub nodes: Vec<Node>,
    /// Holds the peers file; removed on drop.
    pub dir: tempfile::TempDir,
    /// The peers file every node was started with.
    pub peers_file: PathBuf,
}

/// `n` in-memory nodes syncing every `interval_ms`.
pub fn cluster(n: usize, interval_ms: u64) -> Cluster {
    cluster_with(n, interval_ms, &[], &[])
}

/// [`cluster`], with `extra_peers` (dead or hostile addresses) also in the
/// peers file and `args` on every node's command line.
pub fn cluster_with(
    n: usize,
    interval_ms: u64,
    extra_peers: &[SocketAddr],
    args: &[&str],
) -> Cluster {
    Cluster::start(n, extra_peers, |_, spec, _| {
        spec.sync_every(interval_ms).args(args)
    })
}

/// [`cluster_with`] `args`, sharded (`args` has `--replicas`): returns
/// once the members know each other (see [`wait_cluster_ok`]).
pub fn sharded_cluster(n: usize, args: &[&str]) -> Cluster {
    let c = cluster_with(n, FAST_SYNC_MS, &[], args);
    wait_cluster_ok(&c.nodes.iter().collect::<Vec<_>>());
    c
}

/// Waits until each of `nodes` knows exactly `nodes` as members, all up
/// and none still joining, and says `cluster_state:ok` (what a cluster
/// client waits for).
pub fn wait_cluster_ok(nodes: &[&Node]) {
    let names: Vec<&str> = nodes.iter().map(|n| n.name()).collect();
    for node in nodes {
        let addr = node.addr();
        eventually_ok(
            Duration::from_secs(10),
            format_args!("{} to know members {names:?}", node.name()),
            || {
                let mut con = super::resp_client::redis_connection(addr);
                let text: String = redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query(&mut con)
                    .map_err(|e| e.to_string())?;
                let lines: Vec<&str> = text.lines().collect();
                let all = names
                    .iter()
                    .all(|n| lines.iter().any(|l| l.contains(&format!(",{n} "))));
                let settled = lines
                    .iter()
                    .all(|l| !l.contains("handshake") && !l.contains("fail"));
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut con)
                    .map_err(|e| e.to_string())?;
                let ok = info.lines().any(|l| l == "cluster_state:ok");
                if all && settled && lines.len() == names.len() && ok {
                    Ok(())
                } else {
                    Err(format!("{lines:?}, cluster_state:ok {ok}"))
                }
            },
        );
    }
}

/// [`cluster`] of nodes that keep their data in a directory each (in the
/// cluster's), so a killed node restarts from its data; `args` go on every
/// command line.
pub fn durable_cluster(n: usize, interval_ms: u64, args: &[&str]) -> Cluster {
    Cluster::start(n, &[], |_, spec, dir| {
        on_disk(spec, dir).sync_every(interval_ms).args(args)
    })
}

/// `spec` keeping its data in a directory named after it in `dir`.
pub fn on_disk(spec: NodeSpec, dir: &Path) -> NodeSpec {
    let data = dir.join(spec.name());
    spec.data_dir(&data)
}

impl Cluster {
    /// Starts `n` nodes on fresh loopback ports, listing each other and
    /// `extra_peers` in one peers file; node `i` is started from
    /// `node(i, spec, dir)`, where `spec` names it, gives its address and
    /// its peers, and `dir` is the cluster's directory.
    pub fn start(
        n: usize,
        extra_peers: &[SocketAddr],
        mut node: impl FnMut(usize, NodeSpec, &Path) -> NodeSpec,
    ) -> Cluster {
        let dir = temp_dir();
        let peers_file = dir.path().join("peers.txt");
        let nodes = start_all(n, |addrs| {
            let mut listed = addrs.to_vec();
            listed.extend_from_slice(extra_peers);
            write_peers_file(&peers_file, &listed);
            addrs
                .iter()
                .enumerate()
                .map(|(i, addr)| {
                    let spec = NodeSpec::new(&format!("n{}", i + 1))
                        .listen(*addr)
                        .peers(&peers_file, listed.len() - 1);
                    node(i, spec, dir.path())
                })
                .collect()
        });
        Cluster {
            nodes,
            dir,
            peers_file,
        }
    }

    /// The nodes' listen addresses, in order.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(Node::addr).collect()
    }

    /// Waits until every node answers `line` with `want`.
    pub fn wait_all(&mut self, line: &str, want: &str, within: Duration) {
        let deadline = Instant::now() + within;
        for node in &mut self.nodes {
            node.wait_reply(
                line,
                want,
                deadline.saturating_duration_since(Instant::now()),
            );
        }
    }

    /// Asserts that every node answers `line` with `want` right now.
    pub fn assert_all(&mut self, line: &str, want: &str) {
        for node in &mut self.nodes {
            assert_eq!(node.cmd(line), want, "{}: `{line}`", node.name());
        }
    }

    /// Asks every node `line` over and over for `period`, asserting the
    /// answer is `want` each time: a property that must hold across the
    /// sync rounds of that period.
    pub fn assert_all_for(&mut self, line: &str, want: &str, period: Duration) {
        throughout(period, |asked| {
            for node in &mut self.nodes {
                assert_eq!(
                    node.cmd(line),
                    want,
                    "{}: `{line}` after {asked} checks",
                    node.name()
                );
            }
        });
    }

    /// One full sync round by hand: every node in turn pushes to all its
    /// peers and waits for every acknowledgement.
    pub fn sync_all(&mut self) {
        for node in &mut self.nodes {
            let peers = node.spec().peer_count();
            let want = format!("Synced with {peers} of {peers} peers.");
            let got = node.cmd("sync");
            assert_eq!(
                got,
                want,
                "{}: `sync`\n{}",
                node.name(),
                show(&node.stderr_lines())
            );
        }
    }

    /// Waits until nodes `a` and `b` hold the same values for `keys`;
    /// returns them.
    pub fn converge(
        &mut self,
        a: usize,
        b: usize,
        keys: &[String],
        within: Duration,
    ) -> Vec<Option<String>> {
        eventually_ok(
            within,
            format_args!("nodes {a} and {b} to converge"),
            || {
                let va = self.nodes[a].get_all(keys);
                let vb = self.nodes[b].get_all(keys);
                if va == vb {
                    Ok(va)
                } else {
                    Err(format!("\n{va:?}\n{vb:?}"))
                }
            },
        )
    }
}

impl std::ops::Index<usize> for Cluster {
    type Output = Node;
    fn index(&self, i: usize) -> &Node {
        &self.nodes[i]
    }
}

impl std::ops::IndexMut<usize> for Cluster {
    fn index_mut(&mut self, i: usize) -> &mut Node {
        &mut self.nodes[i]
    }
}
