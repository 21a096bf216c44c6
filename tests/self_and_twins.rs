//! A node that finds itself in its peers file, and two live nodes using
//! one name, against real binaries.
//!
//! Self: every spelling of the node's own address in its peers file is
//! skipped (by the address where that is exact, by the handshake where it
//! is not), so none becomes a peer that is never reachable and holds its
//! tombstones for ever. Twins: both refuse writes, naming the other, until
//! one goes away.

mod common;

use common::{
    eventually_ok, redis_connection, start_all, temp_dir, Forwarder, Node, NodeSpec, FAST_SYNC_MS,
};
use std::fmt::Display;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Longest wait for any condition.
const DEADLINE: Duration = Duration::from_secs(15);

/// Node `name` on `addr`, syncing every [`FAST_SYNC_MS`], with a peers
/// file of its own in `dir` listing `entries`, of which it counts `peers`
/// as peers when it starts.
fn node_listing(
    dir: &Path,
    name: &str,
    addr: SocketAddr,
    entries: &[impl Display],
    peers: usize,
) -> NodeSpec {
    NodeSpec::new(name)
        .listen(addr)
        .peers_listing(dir, entries, peers)
        .sync_every(FAST_SYNC_MS)
}

/// Writes and deletes a key on `node`, then waits until its tombstone is
/// collected: every peer it counts has acknowledged the delete.
fn assert_tombstone_collected(node: &mut Node) {
    node.put("doomed", "v");
    node.delete("doomed");
    eventually_ok(DEADLINE, "the delete's tombstone to be collected", || {
        let status = node.status_now();
        if status.iter().any(|l| l == "keys: 0 live, 0 tombstones") {
            Ok(())
        } else {
            Err(format!("{status:?}"))
        }
    });
}

#[test]
fn spellings_of_the_node_s_own_address_are_not_peers() {
    let dir = temp_dir();
    let mut nodes = start_all(2, |addrs| {
        let (a, b) = (addrs[0], addrs[1]);
        let p = a.port();
        let a_lists = [
            format!("0.0.0.0:{p}"),
            format!("[::ffff:127.0.0.1]:{p}"),
            format!("localhost:{p}"),
            b.to_string(),
        ];
        vec![
            node_listing(dir.path(), "a", a, &a_lists, 1),
            node_listing(dir.path(), "b", b, &[a], 1),
        ]
    });
    let b = nodes[1].addr();
    let a = &mut nodes[0];
    let peers = a.peer_lines();
    assert_eq!(peers.len(), 1, "only the real peer: {peers:?}");
    assert!(peers[0].starts_with(&format!("peer {b}: ")), "{peers:?}");
    assert_tombstone_collected(a);
}

#[test]
fn an_entry_only_the_handshake_finds_to_be_the_node_itself_is_dropped() {
    let dir = temp_dir();
    let mut forwarder = None;
    let mut nodes = start_all(2, |addrs| {
        let (a, b) = (addrs[0], addrs[1]);
        // Another port in front of the node's own: the peers file cannot
        // know this entry is the node itself; the handshake tells.
        let itself = forwarder.insert(Forwarder::start(a)).addr();
        vec![
            node_listing(dir.path(), "a", a, &[itself, b], 2),
            node_listing(dir.path(), "b", b, &[a], 1),
        ]
    });
    let itself = forwarder.as_ref().expect("started with the nodes").addr();
    let b = nodes[1].addr();
    let a = &mut nodes[0];
    eventually_ok(
        DEADLINE,
        "the node to drop the entry that is itself",
        || {
            let peers = a.peer_lines();
            if peers.len() == 1 {
                Ok(())
            } else {
                Err(format!("{peers:?}"))
            }
        },
    );
    assert!(a.peer_lines()[0].starts_with(&format!("peer {b}: ")));
    let dropped = format!("peer {itself} is this node itself");
    assert_eq!(
        a.count_stderr(&dropped),
        1,
        "one log line: {:?}",
        a.stderr_lines()
    );
    assert_eq!(a.cmd("sync"), "Synced with 1 of 1 peers.");
    assert_tombstone_collected(a);
}

/// The error a twin's write gets, naming the other twin's address.
fn refusal(other: SocketAddr) -> String {
    format!(
        "writes refused: another live node at {other} uses this node's name 'twin'; \
         give one of them another name"
    )
}

#[test]
fn twins_refuse_writes_until_one_is_gone() {
    let dir = temp_dir();
    let mut nodes = start_all(2, |addrs| {
        addrs
            .iter()
            .map(|&addr| node_listing(dir.path(), "twin", addr, addrs, 1))
            .collect()
    });
    let addrs = [nodes[0].addr(), nodes[1].addr()];
    for (i, node) in nodes.iter_mut().enumerate() {
        let other = addrs[1 - i];
        let want = format!("Error: {}", refusal(other));
        node.wait_reply("put k v", &want, DEADLINE);
        let peers = node.peer_lines();
        assert_eq!(peers.len(), 1, "{peers:?}");
        assert!(
            peers[0].starts_with(&format!(
                "peer {other}: unreachable (another live node answers with this node's name 'twin'"
            )),
            "{peers:?}"
        );
        assert!(
            node.stderr_lines()
                .iter()
                .any(|l| l.contains("TWIN: another live node at") && l.contains(&other.to_string())),
            "said so in the log: {:?}",
            node.stderr_lines()
        );
        let mut redis = redis_connection(node.addr());
        let err = redis::cmd("SET")
            .arg("k")
            .arg("v")
            .query::<()>(&mut redis)
            .expect_err("SET refused");
        assert!(err.to_string().contains(&refusal(other)), "{err}");
    }
    // A twin found as the node starts is found in its first round.
    assert!(
        nodes.iter().any(|n| n
            .stderr_lines()
            .iter()
            .any(|l| l.contains("at startup: TWIN"))),
        "the second twin to start finds the first at startup"
    );

    nodes[1].kill();
    let survivor = &mut nodes[0];
    survivor.wait_reply("put k v", "Value stored.", DEADLINE);
    assert_eq!(survivor.get("k").as_deref(), Some("v"));
}

#[test]
fn a_twin_that_only_connects_to_this_node_is_found_too() {
    let dir = temp_dir();
    // `dialer` lists `quiet`; `quiet` lists only itself, so only the
    // twin's connections to it can tell it.
    let mut nodes = start_all(2, |addrs| {
        vec![
            node_listing(dir.path(), "twin", addrs[0], addrs, 1),
            NodeSpec::new("twin")
                .listen(addrs[1])
                .peers_listing(dir.path(), &[addrs[1]], 0)
                .sync_every(FAST_SYNC_MS),
        ]
    });
    let quiet = &mut nodes[1];
    let want = "Error: writes refused: another live node, connecting from 127.0.0.1, \
                uses this node's name 'twin'; give one of them another name";
    quiet.wait_reply("put k v", want, DEADLINE);
    assert!(
        quiet
            .stderr_lines()
            .iter()
            .any(|l| l.contains("TWIN: writes refused: another live node, connecting from")),
        "said so in the log: {:?}",
        quiet.stderr_lines()
    );
    // Once the twin is gone and has been quiet a while, writes go on.
    nodes[0].kill();
    nodes[1].wait_reply("put k v", "Value stored.", DEADLINE);
}
