//! Network partitions between nodes on one machine, made with nftables.
//!
//! Every node of a partition test runs under a uid of its own ([`Net::member`]
//! picks an unused high one; no user needs to exist), so each packet a node
//! sends carries its uid (`meta skuid`), and each node is known by its listen
//! port. A [`Net`] is one nftables table of the test's own (`inet` family,
//! a filter chain on the output hook, a unique name), deleted when the `Net`
//! is dropped, also when the test panics. Only traffic to 127.0.0.0/8 is
//! ever matched.
//!
//! A TCP connection between nodes A and B was opened by one of them, to the
//! other's listen port. Cutting A from B drops, in both directions:
//!
//! - A's packets to B's port (`skuid A, dport B`): everything A sends on a
//!   connection it opened to B, including a new connection's SYN;
//! - A's packets from A's port on connections B opened (`skuid A, sport A,
//!   ct mark B`): A's replies to B. The reply's destination is B's
//!   ephemeral port, which no rule could name, and A's port also serves
//!   the test's own clients and other peers: so every connection is marked
//!   with the uid of the node that opened it (`ct state new`, in a chain
//!   that exists before any node starts), and the reply is matched by that
//!   mark.
//!
//! So an established connection is cut too: neither side's segments reach
//! the other, as on a real network that fails (checked by
//! `a_partition_cuts_established_connections_both_ways_until_it_heals`,
//! and by hand with two sockets under two uids: with both rules of a pair
//! in place, data sent either way on an open connection never arrives,
//! retransmissions included). The rules of a pair only ever go in together.
//! Heal deletes the cutting rules: retransmissions and new connections go
//! through again.
//!
//! The `nft` binary used is `nft` on `PATH`, or `NETDB_TEST_NFT` if set (set
//! it to a missing path to see the tests skip).

use super::node::{netdb_bin, Node, NodeSpec};
use super::skip::{is_root, skip};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// Tables made by this process so far (each test its own).
static TABLES: AtomicU32 = AtomicU32::new(0);

/// The next uid handed to a node, from a block of this process's own so
/// that two test processes on one machine do not share uids.
fn next_uid() -> u32 {
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    NEXT.get_or_init(|| AtomicU32::new(40_000 + (std::process::id() % 500) * 200))
        .fetch_add(1, Ordering::Relaxed)
}

/// One nftables table of a test: partitions between its nodes; removed on
/// drop.
pub struct Net {
    nft: PathBuf,
    table: String,
}

impl Net {
    /// A table of the test's own, or `None` after printing why the test is
    /// skipped: not root, no `nft`, or `nft` refused the table (a kernel
    /// without nf_tables, a container without `CAP_NET_ADMIN`), or a
    /// node under another uid cannot run the netdb binary.
    pub fn or_skip() -> Option<Net> {
        match Net::new() {
            Ok(net) => Some(net),
            Err(why) => {
                skip(why);
                None
            }
        }
    }

    fn new() -> Result<Net, String> {
        if !is_root() {
            return Err("partitions need root (nodes under their own uids, nft rules)".into());
        }
        let nft = std::env::var_os("NETDB_TEST_NFT").map_or_else(|| "nft".into(), PathBuf::from);
        if let Err(e) = Command::new(&nft).arg("--version").output() {
            return Err(format!("cannot run {}: {e}", nft.display()));
        }
        // A node under a uid of its own must be able to reach the binary
        // (a checkout under a private home directory would stop it).
        let uid = next_uid();
        let probe = Command::new(netdb_bin())
            .arg("--version")
            .uid(uid)
            .gid(uid)
            .output();
        match probe {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr);
                return Err(format!("another uid cannot run netdb: {}", why.trim()));
            }
            Err(e) => return Err(format!("another uid cannot run netdb: {e}")),
        }
        let table = format!(
            "netdb_test_{}_{}",
            std::process::id(),
            TABLES.fetch_add(1, Ordering::Relaxed)
        );
        let net = Net { nft, table };
        // `marks` tags each connection with the uid of the node that opens
        // it; `cuts` holds the partition. Both exist before any node runs.
        net.nft(&format!(
            "table inet {t} {{
               chain marks {{ }}
               chain cuts {{ }}
               chain out {{
                 type filter hook output priority 0; policy accept;
                 ip daddr 127.0.0.0/8 jump marks
                 ip daddr 127.0.0.0/8 jump cuts
               }}
             }}",
            t = net.table
        ))
        .map_err(|e| format!("nft refuses a table here: {e}"))?;
        Ok(net)
    }

    /// Runs an nft script; its error output if it fails.
    fn nft(&self, script: &str) -> Result<(), String> {
        let mut child = Command::new(&self.nft)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.nft.display()))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("cannot write to nft: {e}"))?;
        drop(stdin);
        let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// `spec` running under a fresh uid of this table's: its connections
    /// are marked from the first packet on. `dir` (which holds the peers
    /// file, and the data directory if it has one) is opened to other
    /// users; its data directory is created and given to that uid.
    pub fn member(&self, spec: NodeSpec, dir: &Path) -> NodeSpec {
        let uid = next_uid();
        open_to_all(dir);
        if let Some(data) = spec.data_dir_if_any() {
            std::fs::create_dir_all(data).expect("create a data directory");
            std::os::unix::fs::chown(data, Some(uid), Some(uid)).expect("chown a data directory");
        }
        self.nft(&format!(
            "add rule inet {} marks ct state new meta skuid {uid} ct mark set {uid}",
            self.table
        ))
        .unwrap_or_else(|e| panic!("nft: {e}"));
        spec.run_as(uid)
    }

    /// Cuts every node of `nodes` off from the nodes of the other
    /// `groups` (lists of indexes into `nodes`, together naming each node
    /// once); nodes of one group still talk. Replaces any earlier split.
    pub fn split(&self, nodes: &[Node], groups: &[&[usize]]) {
        let mut named: Vec<usize> = groups.iter().flat_map(|g| g.iter().copied()).collect();
        named.sort_unstable();
        assert_eq!(
            named,
            (0..nodes.len()).collect::<Vec<_>>(),
            "the groups must name each node once"
        );
        let mut script = format!("flush chain inet {} cuts\n", self.table);
        for (ga, a_group) in groups.iter().enumerate() {
            for (gb, b_group) in groups.iter().enumerate() {
                if ga == gb {
                    continue;
                }
                for &a in a_group.iter() {
                    for &b in b_group.iter() {
                        script.push_str(&self.drops_from_to(&nodes[a], &nodes[b]));
                    }
                }
            }
        }
        self.nft(&script)
            .unwrap_or_else(|e| panic!("nft split {groups:?}: {e}\n{script}"));
    }

    /// The rules that drop what `a` sends `b`: on connections it opened
    /// to `b`, and its replies on connections `b` opened.
    fn drops_from_to(&self, a: &Node, b: &Node) -> String {
        let (ua, pa) = uid_and_port(a);
        let (ub, pb) = uid_and_port(b);
        let t = &self.table;
        format!(
            "add rule inet {t} cuts meta skuid {ua} tcp dport {pb} drop\n\
             add rule inet {t} cuts meta skuid {ua} tcp sport {pa} ct mark {ub} drop\n"
        )
    }

    /// Cuts the one link between `a` and `b`, both ways: each still talks
    /// to every other node. Replaces any earlier split or cut.
    pub fn cut(&self, a: &Node, b: &Node) {
        let script = format!(
            "flush chain inet {} cuts\n{}{}",
            self.table,
            self.drops_from_to(a, b),
            self.drops_from_to(b, a)
        );
        self.nft(&script)
            .unwrap_or_else(|e| panic!("nft cut {} from {}: {e}\n{script}", a.name(), b.name()));
    }

    /// Cuts node `i` off from all the others, which still talk.
    pub fn isolate(&self, nodes: &[Node], i: usize) {
        let others: Vec<usize> = (0..nodes.len()).filter(|&j| j != i).collect();
        self.split(nodes, &[&[i], &others]);
    }

    /// Ends every partition: all nodes talk again.
    pub fn heal(&self) {
        self.nft(&format!("flush chain inet {} cuts", self.table))
            .unwrap_or_else(|e| panic!("nft heal: {e}"));
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Err(e) = self.nft(&format!("delete table inet {}", self.table)) {
            // Never a panic in a drop (it may run during one).
            eprintln!("warning: nft table {} left behind: {e}", self.table);
        }
    }
}

/// A node's uid and listen port; panics for a node not made a member.
fn uid_and_port(node: &Node) -> (u32, u16) {
    let uid = node.spec().uid().unwrap_or_else(|| {
        panic!(
            "{} does not run under a uid of its own (start it from Net::member)",
            node.name()
        )
    });
    (uid, node.addr().port())
}

/// Lets every user read and enter `dir` (a temporary directory is private
/// to its owner), so that nodes under other uids read their peers file.
fn open_to_all(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .expect("open a test directory to other users");
}
