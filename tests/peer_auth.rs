//! Peer authentication against the real binary: nodes that share the
//! cluster secret replicate; a node with another secret, or none, is
//! refused by both sides; and a peer from outside that does not know the
//! secret, replays a recorded handshake, or alters, reorders or splices
//! the frames of a session gets its connection closed, with one log line,
//! and changes nothing on any node.

mod common;

use common::wire::{Batch, Message};
use common::{
    eventually, frame_of, greeting, overwriting_push, secret_file, temp_dir, AuthedPeer, Cluster,
    Node, NodeSpec, CONVERGE_TIMEOUT, FAST_SYNC_MS, OTHER_SECRET, SECRET,
};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// How long a node may take to log a closed connection.
const LOG_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a test watches that a key stays as it was.
const UNCHANGED_FOR: Duration = Duration::from_millis(600);

/// `n` nodes syncing fast, node `i` with the secret `secrets[i]` (`None`:
/// no secret); the secret files live in the cluster's folder.
fn cluster_of(secrets: &[Option<&str>]) -> Cluster {
    Cluster::start(secrets.len(), &[], |i, spec, dir| {
        let spec = spec.sync_every(FAST_SYNC_MS);
        match secrets[i] {
            Some(text) => with_secret(spec, dir, text),
            None => spec,
        }
    })
}

/// `spec` with a secret file holding `text`, written in `dir`.
fn with_secret(spec: NodeSpec, dir: &Path, text: &str) -> NodeSpec {
    let path = secret_file(dir, &format!("{}.secret", spec.name()), text);
    let path = path.to_str().expect("a UTF-8 path").to_owned();
    spec.args(&["--cluster-secret-file", &path])
}

/// Three nodes with the same secret, holding `target` = `original` on all.
fn secret_cluster_with_target() -> Cluster {
    let mut c = cluster_of(&[Some(SECRET); 3]);
    assert_eq!(c[0].cmd("put target original"), "Value stored.");
    c.wait_all("get target", "Value: original", CONVERGE_TIMEOUT);
    c
}

/// Every node of `c` keeps `target` = `original` for a while, and none
/// has panicked.
fn assert_target_unchanged(c: &mut Cluster) {
    c.assert_all_for("get target", "Value: original", UNCHANGED_FOR);
    for node in &c.nodes {
        common::assert_no_panic(&node.stderr_lines());
    }
}

/// Waits for `node`'s one log line about closing the connection from
/// `from`, and checks it names `cause`.
fn assert_closed(node: &Node, from: std::net::SocketAddr, cause: &str) {
    let line = node.wait_log(&format!("closed connection from {from}: "), LOG_TIMEOUT);
    assert!(line.contains(cause), "{line}");
    assert_eq!(
        node.count_stderr(&format!("connection from {from}")),
        1,
        "one line"
    );
}

#[test]
fn three_nodes_with_one_secret_replicate() {
    let mut c = cluster_of(&[Some(SECRET); 3]);
    assert_eq!(c[0].cmd("put a 1"), "Value stored.");
    assert_eq!(c[2].cmd("put b 2"), "Value stored.");
    c.wait_all("get a", "Value: 1", CONVERGE_TIMEOUT);
    c.wait_all("get b", "Value: 2", CONVERGE_TIMEOUT);
    c.sync_all();
    for node in &c.nodes {
        let log = node.stderr_lines();
        assert!(
            !log.iter().any(|l| l.contains("authentication failed")),
            "{}: {log:?}",
            node.name()
        );
        // The secret itself is never logged.
        assert!(!log.iter().any(|l| l.contains(SECRET)), "{log:?}");
    }
    // Nor shown by the status.
    let status = c[0].status().join("\n");
    assert!(!status.contains(SECRET), "{status}");
}

/// Both nodes of `c` (which do not share a secret) have refused each
/// other, each as pusher (`pushing`) and as receiver (`receiving`), and
/// neither has the other's write.
fn assert_refused_both_ways(c: &mut Cluster, pushing: [&str; 2], receiving: [&str; 2]) {
    assert_eq!(c[0].cmd("put from-1 x"), "Value stored.");
    assert_eq!(c[1].cmd("put from-2 y"), "Value stored.");
    for i in 0..2 {
        let peer = c[1 - i].addr();
        c[i].wait_log(
            &format!("peer {peer} is unreachable: {}", pushing[i]),
            LOG_TIMEOUT,
        );
        let node = &c[i];
        eventually(
            LOG_TIMEOUT,
            format_args!("{} to log {}", node.name(), receiving[i]),
            || {
                node.stderr_lines()
                    .iter()
                    .any(|l| l.contains("closed connection from ") && l.contains(receiving[i]))
            },
        );
    }
    assert_eq!(c[0].cmd("sync"), "Synced with 0 of 1 peers.");
    assert_eq!(c[1].cmd("sync"), "Synced with 0 of 1 peers.");
    assert_eq!(c[0].cmd("get from-2"), "Key not found.");
    assert_eq!(c[1].cmd("get from-1"), "Key not found.");
}

#[test]
fn a_node_with_another_secret_is_refused_both_ways() {
    let mut c = cluster_of(&[Some(SECRET), Some(OTHER_SECRET)]);
    // Each pusher finds the other's proof wrong; each receiver hears that
    // its own proof was refused.
    let refused = "authentication failed (the peer refused this node's proof";
    assert_refused_both_ways(
        &mut c,
        ["authentication failed (bad proof)"; 2],
        [refused; 2],
    );
}

#[test]
fn a_node_without_a_secret_and_one_with_refuse_each_other() {
    let mut c = cluster_of(&[Some(SECRET), None]);
    let has_none = "authentication failed (the peer has no cluster secret; this node has one)";
    let this_has_none = "authentication failed (the peer has a cluster secret; this node has none";
    assert_refused_both_ways(&mut c, [has_none, this_has_none], [has_none, this_has_none]);
}

#[test]
fn a_forged_hello_and_push_without_the_secret_change_nothing() {
    let mut c = secret_cluster_with_target();
    for i in 0..3 {
        // Today's attack on a node without a secret: the magic, a Hello
        // with a made-up name and a Push that overwrites a key.
        let mut stream = common::connect(c[i].addr(), Duration::from_secs(5));
        let from = stream.local_addr().expect("local address");
        let attack = [
            greeting("intruder"),
            frame_of(&overwriting_push("target", "forged", "intruder")),
        ]
        .concat();
        stream.write_all(&attack).expect("send");
        stream
            .set_read_timeout(Some(LOG_TIMEOUT))
            .expect("set a read timeout");
        // The node's answer says it wants a secret, and nothing else: no
        // name, no vector, no data.
        let answer = common::frame::read_frame(&mut stream, 1 << 20).expect("an answer");
        assert_eq!(answer, Message::SecretRequired);
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut stream, &mut rest).expect("closed");
        assert!(rest.is_empty(), "{rest:?}");
        assert_closed(&c[i], from, "the peer has no cluster secret");
    }
    assert_target_unchanged(&mut c);
}

#[test]
fn a_peer_with_a_wrong_secret_learns_nothing_and_changes_nothing() {
    let mut c = secret_cluster_with_target();
    // It answers the node's proof with one of its own secret, then sends
    // a Hello and a Push sealed under that secret.
    let mut peer = AuthedPeer::connect(c[0].addr(), OTHER_SECRET, "intruder").expect("proof");
    let push = peer.sealed(&overwriting_push("target", "forged", "intruder"));
    let _ = peer.send_raw(&push);
    assert!(peer.wait_closed().is_empty(), "the node sent more");
    assert_closed(
        &c[0],
        peer.local_addr(),
        "authentication failed (bad proof)",
    );
    assert_target_unchanged(&mut c);
}

#[test]
fn a_handshake_replayed_on_a_new_connection_is_refused() {
    let dir = temp_dir();
    let start = |name: &str| {
        let spec = with_secret(NodeSpec::new(name), dir.path(), SECRET);
        spec.sync_every(FAST_SYNC_MS).start()
    };
    let (recorded, mut target) = (start("n1"), start("n2"));
    // A real session with n1 that writes a key, recorded.
    let mut peer = AuthedPeer::connect(recorded.addr(), SECRET, "writer").expect("proof");
    assert_eq!(peer.welcome().expect("Welcome"), "n1");
    let push = peer.sealed(&overwriting_push("replayed", "yes", "writer"));
    peer.send_raw(&push).expect("send");
    peer.until_ack().expect("Ack");
    let transcript = std::mem::take(&mut peer.sent);
    drop(peer);
    // The same bytes to n2, which shares the secret: its nonce is new, so
    // the recorded proof does not check.
    let mut replay = common::connect(target.addr(), Duration::from_secs(5));
    let from = replay.local_addr().expect("local address");
    replay.write_all(&transcript).expect("send");
    replay
        .set_read_timeout(Some(LOG_TIMEOUT))
        .expect("set a read timeout");
    let answer = common::frame::read_frame(&mut replay, 1 << 20).expect("its Proof");
    assert!(matches!(answer, Message::Proof { .. }), "{answer:?}");
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut replay, &mut rest).expect("closed");
    assert!(rest.is_empty(), "the node sent more: {rest:?}");
    assert_closed(&target, from, "authentication failed (bad proof)");
    assert_eq!(target.cmd("get replayed"), "Key not found.");
    drop(recorded);
    throughout_not_found(&mut target, "replayed");
}

/// `node` answers that `key` is not found, again and again for a while.
fn throughout_not_found(node: &mut Node, key: &str) {
    common::throughout(UNCHANGED_FOR, |_| {
        assert_eq!(node.cmd(&format!("get {key}")), "Key not found.");
    });
}

/// A session with `node` that has reached the point where data may move:
/// both proofs, the sealed Hello and the node's Welcome.
fn session(node: &Node) -> AuthedPeer {
    let mut peer = AuthedPeer::connect(node.addr(), SECRET, "member").expect("proof");
    assert_eq!(peer.welcome().expect("Welcome"), node.name());
    peer
}

#[test]
fn a_session_with_one_flipped_byte_is_refused() {
    let mut c = secret_cluster_with_target();
    let mut peer = session(&c[1]);
    let mut push = peer.sealed(&overwriting_push("target", "forged", "member"));
    let middle = push.len() / 2;
    push[middle] ^= 0x01;
    let _ = peer.send_raw(&push);
    assert!(peer.wait_closed().is_empty(), "the node sent more");
    assert_closed(
        &c[1],
        peer.local_addr(),
        "authentication failed (a frame's MAC does not match",
    );
    assert_target_unchanged(&mut c);

    // The same push, unaltered, is taken: what failed was the MAC.
    let mut peer = session(&c[1]);
    let push = peer.sealed(&overwriting_push("control", "taken", "member"));
    peer.send_raw(&push).expect("send");
    peer.until_ack().expect("Ack");
    c.wait_all("get control", "Value: taken", CONVERGE_TIMEOUT);
}

#[test]
fn frames_of_a_session_out_of_order_are_refused() {
    let mut c = secret_cluster_with_target();
    let mut peer = session(&c[2]);
    // Two parts of one push: a first with nothing in it, then the last,
    // which overwrites; sent the other way round.
    let first = peer.sealed(&Message::Push {
        batch: Batch::default(),
        done: None,
    });
    let last = peer.sealed(&overwriting_push("target", "forged", "member"));
    let _ = peer.send_raw(&[last, first].concat());
    assert!(peer.wait_closed().is_empty(), "the node sent more");
    assert_closed(
        &c[2],
        peer.local_addr(),
        "authentication failed (a frame's MAC does not match",
    );
    assert_target_unchanged(&mut c);

    // A frame sent twice: the second is a replay.
    let mut peer = session(&c[2]);
    let push = peer.sealed(&overwriting_push("twice", "once", "member"));
    peer.send_raw(&push).expect("send");
    peer.until_ack().expect("Ack");
    c[2].wait_reply("get twice", "Value: once", CONVERGE_TIMEOUT);
    assert_eq!(c[2].cmd("del twice"), "Key deleted.");
    let _ = peer.send_raw(&push);
    peer.wait_closed();
    assert_closed(
        &c[2],
        peer.local_addr(),
        "authentication failed (a frame's MAC does not match",
    );
    throughout_not_found(&mut c[2], "twice");
}

#[test]
fn a_frame_spliced_in_from_another_connection_is_refused() {
    let mut c = secret_cluster_with_target();
    let mut donor = session(&c[0]);
    let mut victim = session(&c[0]);
    // The donor's frame at the same place in its own session as it takes
    // in the victim's: only the connection differs.
    let spliced = donor.sealed(&overwriting_push("target", "forged", "member"));
    let _ = victim.send_raw(&spliced);
    assert!(victim.wait_closed().is_empty(), "the node sent more");
    assert_closed(
        &c[0],
        victim.local_addr(),
        "authentication failed (a frame's MAC does not match",
    );
    drop(donor);
    assert_target_unchanged(&mut c);
}

#[test]
fn before_its_proof_a_peer_may_send_only_small_frames() {
    let mut c = secret_cluster_with_target();
    // A length that the node takes from a member (64 MiB is the default
    // limit) but not from a party that has proved nothing yet.
    let mut stream = common::connect(c[0].addr(), Duration::from_secs(5));
    let from = stream.local_addr().expect("local address");
    let mut opening = common::wire::MAGIC.to_vec();
    opening.extend_from_slice(&(1u32 << 20).to_be_bytes());
    stream.write_all(&opening).expect("send");
    assert_closed(
        &c[0],
        from,
        "frame of 1048576 bytes is over the limit of 4096",
    );
    assert_target_unchanged(&mut c);
}

#[test]
fn a_secret_file_that_is_missing_empty_or_short_stops_the_start() {
    let dir = temp_dir();
    let missing = dir.path().join("missing");
    let empty = secret_file(dir.path(), "empty", " \n");
    let short = secret_file(dir.path(), "short", &format!("{}\n", "s".repeat(31)));
    let cases = [
        (&missing, "cannot read the cluster secret file"),
        (&empty, "is refused: it is empty"),
        (
            &short,
            "is refused: it holds 31 characters; a cluster secret needs at least 32",
        ),
    ];
    for (path, want) in cases {
        let done = common::run_netdb(
            &[
                "n1".as_ref(),
                "127.0.0.1:0".as_ref(),
                "--cluster-secret-file".as_ref(),
                path.as_os_str(),
            ],
            common::Input::Null,
            Duration::from_secs(20),
        );
        assert_eq!(done.stderr.len(), 1, "{:?}", done.stderr);
        assert!(
            done.stderr[0].starts_with("netdb: error: "),
            "{:?}",
            done.stderr
        );
        assert!(done.stderr[0].contains(want), "{:?}", done.stderr);
        assert_eq!(done.status.code(), Some(1));
        common::assert_no_panic(&done.stderr);
    }
    // Its contents are never shown, even when refused.
    let done = common::run_netdb(
        &[
            "n1".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--cluster-secret-file".as_ref(),
            short.as_os_str(),
        ],
        common::Input::Null,
        Duration::from_secs(20),
    );
    assert!(!done.stderr[0].contains("sss"), "{:?}", done.stderr);
}

#[test]
fn a_secret_in_the_config_file_is_read_beside_it() {
    let dir = temp_dir();
    secret_file(dir.path(), "cluster.secret", &format!("{SECRET}\n"));
    let config = dir.path().join("n1.toml");
    std::fs::write(
        &config,
        "name = \"n1\"\nlisten = \"127.0.0.1:0\"\ncluster-secret-file = \"cluster.secret\"\n",
    )
    .expect("write the config file");
    let mut node = NodeSpec::new("n1")
        .args(&["--config", config.to_str().expect("UTF-8")])
        .start();
    let mut peer = AuthedPeer::connect(node.addr(), SECRET, "member").expect("proof");
    assert_eq!(peer.welcome().expect("Welcome"), "n1");
    eventually(LOG_TIMEOUT, "the node to answer", || {
        node.cmd("get nothing") == "Key not found."
    });
}
