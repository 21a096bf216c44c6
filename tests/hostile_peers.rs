//! Whatever arrives on the peer port that is not a well-behaved peer costs
//! one closed connection and one log line: after each kind of garbage the
//! node still answers on stdin and still replicates with its real peer.

mod common;

use common::frame::read_frame;
use common::store::{MAX_COUNTER, MAX_NEW_NAMES_PER_BATCH};
use common::wire::WireVv;
use common::wire::{Batch, Bytes, Done, Message, WireEntry, MAGIC, PROTOCOL_VERSION};
use common::{
    assert_no_panic, cluster, cluster_with, eventually, frame_of, greeting, read_until_ack,
    wall_clock_ms, Cluster, ForgedAcker, Node, Rng, CONVERGE_TIMEOUT, FAST_SYNC_MS,
};
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// How long the node may take to log a closed connection.
const LOG_TIMEOUT: Duration = Duration::from_secs(4);

/// Connects to `to` and returns the stream and the address the node sees
/// it from (the one its log line names).
fn connect(to: SocketAddr) -> (TcpStream, SocketAddr) {
    let stream = common::connect(to, Duration::from_secs(5));
    let local = stream.local_addr().expect("local address");
    (stream, local)
}

/// Sends `bytes`, closes the sending side, and returns the address the
/// node sees the connection from.
fn send_and_close(to: SocketAddr, bytes: &[u8]) -> SocketAddr {
    let (mut stream, local) = connect(to);
    stream.write_all(bytes).expect("send");
    stream.flush().expect("flush");
    let _ = stream.shutdown(Shutdown::Write);
    local
}

/// Opens a connection with a valid greeting and reads the node's Hello.
fn greeted(to: SocketAddr, node_name: &str) -> (TcpStream, SocketAddr) {
    let (mut stream, local) = connect(to);
    stream
        .write_all(&greeting("intruder"))
        .expect("send greeting");
    let reply = read_frame(&mut stream, 1 << 20).expect("the node answers Hello");
    assert!(
        matches!(&reply, Message::Welcome { version, name, .. }
            if *version == PROTOCOL_VERSION && name == node_name),
        "{reply:?}"
    );
    (stream, local)
}

/// Reads what the node sends until it closes the connection (within the
/// log deadline); returns the bytes.
fn wait_closed(stream: &mut TcpStream) -> Vec<u8> {
    stream
        .set_read_timeout(Some(LOG_TIMEOUT))
        .expect("set a read timeout");
    let mut got = Vec::new();
    let _ = std::io::Read::read_to_end(stream, &mut got);
    got
}

/// Waits for n1's log line about closing the connection from `from`.
fn assert_closed(c: &Cluster, from: SocketAddr, reason: &str) {
    let want = format!(" [n1] closed connection from {from}: {reason}");
    let line = c[0].wait_log(&format!("closed connection from {from}: "), LOG_TIMEOUT);
    assert!(line.ends_with(&want), "{line}");
}

/// n1 answers on stdin and replicates both ways with n2; `tag` keeps the
/// keys of several checks apart.
fn assert_healthy(c: &mut Cluster, tag: &str) {
    assert_eq!(c[0].cmd(&format!("put {tag}-1 one")), "Value stored.");
    assert_eq!(c[0].cmd(&format!("get {tag}-1")), "Value: one");
    c[1].wait_reply(&format!("get {tag}-1"), "Value: one", CONVERGE_TIMEOUT);
    assert_eq!(c[1].cmd(&format!("put {tag}-2 two")), "Value stored.");
    c[0].wait_reply(&format!("get {tag}-2"), "Value: two", CONVERGE_TIMEOUT);
    assert_no_panic(&c[0].stderr_lines());
}

#[test]
fn random_bytes() {
    let mut c = cluster(2, FAST_SYNC_MS);
    let mut rng = Rng::seeded("random_bytes");
    for round in 0..3 {
        let mut garbage = rng.bytes(4096);
        if garbage[0] == MAGIC[0] {
            garbage[0] ^= 0xFF; // not the magic, by construction
        }
        // Not the peer magic, so the node takes it for a Redis client: the
        // bytes are a protocol error or unknown commands, and either way the
        // node closes the connection and goes on.
        let (mut stream, _) = connect(c[0].addr());
        stream.write_all(&garbage).expect("send");
        let _ = stream.shutdown(Shutdown::Write);
        wait_closed(&mut stream);
        assert_healthy(&mut c, &format!("random-{round}"));
    }
}

#[test]
fn wrong_magic() {
    let mut c = cluster(2, FAST_SYNC_MS);
    // Text is taken for a Redis inline command, and answered as one.
    let (mut stream, _) = connect(c[0].addr());
    stream.write_all(b"NDB1 hello there\r\n").expect("send");
    let _ = stream.shutdown(Shutdown::Write);
    let reply = wait_closed(&mut stream);
    assert!(
        reply.starts_with(b"-ERR unknown command 'NDB1'"),
        "{}",
        reply.escape_ascii()
    );
    assert_healthy(&mut c, "magic");
}

#[test]
fn a_4_gib_length_prefix() {
    let mut c = cluster(2, FAST_SYNC_MS);
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&u32::MAX.to_be_bytes());
    bytes.extend_from_slice(b"and then very little");
    // Left open: the length alone must be refused, without waiting for the
    // body and without allocating for it.
    let (mut stream, from) = connect(c[0].addr());
    stream.write_all(&bytes).expect("send");
    assert_closed(
        &c,
        from,
        "frame of 4294967295 bytes is over the limit of 67108864",
    );
    assert_healthy(&mut c, "huge");
    drop(stream);
}

#[test]
fn a_length_prefix_over_the_limit_set_on_the_command_line() {
    let mut n1 = Node::alone("n1", &["--max-frame-bytes", "1048576"]);
    let mut bytes = greeting("intruder");
    bytes.extend_from_slice(&(1_048_577u32).to_be_bytes());
    let (mut stream, from) = connect(n1.addr());
    stream.write_all(&bytes).expect("send");
    let line = n1.wait_log(&format!("closed connection from {from}: "), LOG_TIMEOUT);
    assert!(
        line.ends_with(&format!(
            " [n1] closed connection from {from}: frame of 1048577 bytes is over the limit of 1048576"
        )),
        "{line}"
    );
    assert_eq!(n1.cmd("put k v"), "Value stored.");
    assert_eq!(n1.cmd("get k"), "Value: v");
}

#[test]
fn a_truncated_frame() {
    let mut c = cluster(2, FAST_SYNC_MS);
    // The magic, then a Hello cut short, then the end of the stream.
    let hello = greeting("intruder");
    let from = send_and_close(c[0].addr(), &hello[..hello.len() - 3]);
    assert_closed(&c, from, "unexpected end of file");
    assert_healthy(&mut c, "cut-hello");

    // A Push cut short after a valid greeting.
    let (mut stream, from) = greeted(c[0].addr(), "n1");
    let push = last_push(one_entry("cut", "n9", 0, 0));
    stream.write_all(&push[..push.len() / 2]).expect("send");
    stream.shutdown(Shutdown::Write).expect("shutdown");
    assert_closed(&c, from, "unexpected end of file");
    assert_healthy(&mut c, "cut-push");
    assert_eq!(c[0].cmd("get cut"), "Key not found.");
}

#[test]
fn a_hello_of_another_protocol_version() {
    let mut c = cluster(2, FAST_SYNC_MS);
    let (mut stream, from) = connect(c[0].addr());
    let hello = frame_of(&Message::Hello {
        version: 99,
        name: "future".into(),
        wall_clock_ms: wall_clock_ms(),
        instance: 1,
        member: String::new(),
        probe: false,
        replicas: 0,
    });
    stream
        .write_all(&[&MAGIC[..], &hello].concat())
        .expect("send");
    // The node says which version it speaks before it hangs up.
    let reply = read_frame(&mut stream, 1 << 20).expect("the node answers Hello");
    assert!(
        matches!(&reply, Message::Welcome { version, name, .. }
            if *version == PROTOCOL_VERSION && name == "n1"),
        "{reply:?}"
    );
    assert_closed(
        &c,
        from,
        &format!("peer speaks protocol version 99, this node speaks {PROTOCOL_VERSION}"),
    );
    assert_healthy(&mut c, "version");
}

#[test]
fn messages_out_of_order() {
    let mut c = cluster(2, FAST_SYNC_MS);
    // A Push where the Hello should be.
    let push = frame_of(&Message::Push {
        batch: Batch::default(),
        done: None,
    });
    let from = send_and_close(c[0].addr(), &[&MAGIC[..], &push].concat());
    assert_closed(&c, from, "expected Hello, got Push");
    assert_healthy(&mut c, "push-first");

    // An Ack where a Push should be.
    let (mut stream, from) = greeted(c[0].addr(), "n1");
    let ack = frame_of(&Message::Ack {
        vv: Vec::new(),
        digest: None,
        sent: None,
        serving: None,
    });
    stream.write_all(&ack).expect("send");
    assert_closed(&c, from, "expected Push, got Ack");
    assert_healthy(&mut c, "ack");
}

#[test]
fn an_undecodable_frame_after_a_valid_greeting() {
    let mut c = cluster(2, FAST_SYNC_MS);
    let (mut stream, from) = greeted(c[0].addr(), "n1");
    let mut bytes = 5u32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0xEE; 5]);
    stream.write_all(&bytes).expect("send");
    let line = c[0].wait_log(&format!("closed connection from {from}: "), LOG_TIMEOUT);
    assert!(
        line.contains(&format!(
            " [n1] closed connection from {from}: undecodable message: "
        )),
        "{line}"
    );
    assert_healthy(&mut c, "undecodable");
}

/// The frame of a push's last part carrying `batch`, from a pusher that
/// holds nothing else.
fn last_push(batch: Batch) -> Vec<u8> {
    frame_of(&Message::Push {
        batch,
        done: Some(Done {
            vv: Vec::new(),
            digest: None,
            full: false,
            sent: None,
            serving: None,
        }),
    })
}

/// A batch of one version of `key` written by `writer`.
fn one_entry(key: &str, writer: &str, writer_index: u32, clock_index: u32) -> Batch {
    Batch {
        groups: Vec::new(),
        names: vec![writer.into()],
        entries: vec![WireEntry {
            key: Bytes(key.as_bytes().to_vec()),
            value: Some(Bytes(b"injected".to_vec())),
            ts: 1,
            writer: writer_index,
            clock: vec![(clock_index, 1)],
            expires: None,
            counter: None,
        }],
    }
}

#[test]
fn a_push_with_an_invalid_batch_changes_nothing() {
    let mut c = cluster(2, FAST_SYNC_MS);
    for (i, batch) in [
        one_entry("bad", "n9", 7, 0), // writer out of range
        one_entry("bad", "n9", 0, 7), // clock entry out of range
    ]
    .into_iter()
    .enumerate()
    {
        let (mut stream, from) = greeted(c[0].addr(), "n1");
        stream.write_all(&last_push(batch)).expect("send");
        assert_closed(&c, from, "invalid batch: node index out of range");
        assert_eq!(c[0].cmd("get bad"), "Key not found.");
        assert_healthy(&mut c, &format!("invalid-{i}"));
    }
    // A valid push from a stranger is merged and acknowledged, on the same
    // kind of connection: the checks above were about the batch.
    let (mut stream, _) = greeted(c[0].addr(), "n1");
    stream
        .write_all(&last_push(one_entry("good", "n9", 0, 0)))
        .expect("send");
    // The node answers with what the pusher lacks (Pulls), then its Ack.
    read_until_ack(&mut stream).expect("Pulls, then an Ack");
    assert_eq!(c[0].cmd("get good"), "Value: injected");
    c[1].wait_reply("get good", "Value: injected", CONVERGE_TIMEOUT);
}

#[test]
fn fifty_idle_connections() {
    let mut c = cluster(2, FAST_SYNC_MS);
    let idle: Vec<(TcpStream, SocketAddr)> = (0..50).map(|_| connect(c[0].addr())).collect();
    // While they sit there, the node works and replicates both ways.
    assert_healthy(&mut c, "idle");
    // They hang up without a word: nothing to report, nothing left behind.
    drop(idle);
    assert_healthy(&mut c, "after-idle");
}

#[test]
fn a_push_with_saturated_clocks_does_not_stop_later_writes_from_replicating() {
    let mut c = cluster(2, FAST_SYNC_MS);
    // A well-formed batch carrying a version that claims n1 has already
    // made write number u64::MAX, at the end of time. No honest peer can
    // send it: it is refused, the connection closed.
    let (mut stream, from) = greeted(c[0].addr(), "n1");
    let batch = Batch {
        groups: Vec::new(),
        names: vec!["n1".into()],
        entries: vec![WireEntry {
            key: Bytes(b"poison".to_vec()),
            value: Some(Bytes(b"x".to_vec())),
            ts: u64::MAX,
            writer: 0,
            clock: vec![(0, u64::MAX)],
            expires: None,
            counter: None,
        }],
    };
    stream.write_all(&last_push(batch)).expect("send");
    assert_closed(&c, from, "invalid batch: timestamp or counter out of range");
    drop(stream);

    // Two writes in a row on n1: the second must reach n2.
    assert_eq!(c[0].cmd("put k b"), "Value stored.");
    c[1].wait_reply("get k", "Value: b", CONVERGE_TIMEOUT);
    assert_eq!(c[0].cmd("put k a"), "Value stored.");
    assert_eq!(c[0].cmd("get k"), "Value: a");
    c[1].wait_reply("get k", "Value: a", CONVERGE_TIMEOUT);
}

#[test]
fn peer_connections_over_the_limit_are_refused_and_logged() {
    let mut n1 = Node::alone("n1", &["--max-connections", "3"]);
    let name = n1.name().to_owned();
    let peers: Vec<(TcpStream, SocketAddr)> = (0..3).map(|_| greeted(n1.addr(), &name)).collect();
    // Three peers are served; the fourth is turned away once it shows it
    // is a peer.
    let (mut extra, from) = connect(n1.addr());
    extra
        .write_all(&greeting("intruder"))
        .expect("send greeting");
    let line = n1.wait_log(&format!("peer connection from {from}"), LOG_TIMEOUT);
    assert!(
        line.ends_with(&format!(
            " [n1] refused peer connection from {from}: 3 peers connected, the limit"
        )),
        "{line}"
    );
    wait_closed(&mut extra);
    assert_eq!(n1.cmd("put k v"), "Value stored.");
    // Once they hang up, a peer gets in again.
    drop(peers);
    eventually(LOG_TIMEOUT, "a greeting is answered again", || {
        let (mut stream, _) = connect(n1.addr());
        stream
            .write_all(&greeting("intruder"))
            .expect("send greeting");
        matches!(read_frame(&mut stream, 1 << 20), Ok(Message::Welcome { name: n, .. }) if n == name)
    });
}

/// The highest counter any honest writer could be at: no write ever
/// issued one.
const FAR_AHEAD: u64 = MAX_COUNTER - 1;

/// The vector in the node's Welcome to a new connection.
fn welcome_vv(to: SocketAddr) -> WireVv {
    let (mut stream, _) = connect(to);
    stream
        .write_all(&greeting("intruder"))
        .expect("send greeting");
    match read_frame(&mut stream, 1 << 20).expect("the node answers Hello") {
        Message::Welcome { vv, .. } => vv,
        other => panic!("expected Welcome, got {other:?}"),
    }
}

/// The writer name of `node_name` in `vv`.
fn writer_of(vv: &WireVv, node_name: &str) -> String {
    let prefix = format!("{node_name}#");
    vv.iter()
        .map(|(w, _)| w.clone())
        .find(|w| w.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no writer of {node_name} in {vv:?}"))
}

#[test]
fn a_vector_claiming_a_writer_far_ahead_is_not_joined_and_its_writes_still_replicate() {
    let mut c = cluster(2, FAST_SYNC_MS);
    assert_eq!(c[1].cmd("put before one"), "Value stored.");
    c[0].wait_reply("get before", "Value: one", CONVERGE_TIMEOUT);
    let n2 = writer_of(&welcome_vv(c[1].addr()), "n2");

    // A push whose vector says n2 has made 2^48-1 writes, with nothing to
    // show for it. Joined, it would make n1 believe it holds n2's next
    // writes, so n2 would never send them.
    let (mut stream, from) = greeted(c[0].addr(), "n1");
    let forged = frame_of(&Message::Push {
        batch: Batch::default(),
        done: Some(Done {
            vv: vec![(n2.clone(), FAR_AHEAD)],
            digest: None,
            full: false,
            sent: None,
            serving: None,
        }),
    });
    stream.write_all(&forged).expect("send");
    read_until_ack(&mut stream).expect("Pulls, then an Ack");
    let claimed = welcome_vv(c[0].addr());
    assert!(
        claimed.iter().all(|(_, counter)| *counter < 1000),
        "n1's vector took the claim: {claimed:?}"
    );
    drop(stream);

    // n2's next writes reach n1.
    for i in 0..3 {
        assert_eq!(c[1].cmd(&format!("put after{i} v{i}")), "Value stored.");
        c[0].wait_reply(
            &format!("get after{i}"),
            &format!("Value: v{i}"),
            CONVERGE_TIMEOUT,
        );
    }
    assert_healthy(&mut c, "far-ahead");
    // The claim is named, with the peer and its address.
    let line = c[0].wait_log(
        &format!("peer intruder ({from}): vector claims"),
        LOG_TIMEOUT,
    );
    assert!(
        line.contains(&format!(
            "protocol: peer intruder ({from}): vector claims writer '{n2}' at {FAR_AHEAD}, \
             above anything shown"
        )),
        "{line}"
    );
}

/// The `keys: ... tombstones` line of a node's status.
fn keys_line(node: &mut Node) -> String {
    node.status_now()
        .into_iter()
        .find(|l| l.contains(" tombstones"))
        .expect("a keys line in status")
}

#[test]
fn a_forged_ack_claiming_everything_collects_no_tombstone_early() {
    // Both nodes list the forger, which acknowledges every writer it has
    // heard of at 2^48-1 without merging a thing.
    let forger = ForgedAcker::start("forger", FAR_AHEAD);
    let mut c = cluster_with(2, FAST_SYNC_MS, &[forger.addr()], &[]);
    assert_eq!(c[0].cmd("put k v"), "Value stored.");
    c[1].wait_reply("get k", "Value: v", CONVERGE_TIMEOUT);
    let acked = forger.acks();
    eventually(CONVERGE_TIMEOUT, "several forged Acks", || {
        forger.acks() >= acked + 6
    });
    // Deletes still reach the real peer: nobody took the forged vector
    // for its own, so n1 still knows what n2 lacks.
    c[0].delete("k");
    c[1].wait_reply("get k", "Key not found.", CONVERGE_TIMEOUT);
    assert_healthy(&mut c, "forged-ack");

    // With n2 gone, a new tombstone on n1 is one a real peer has not
    // acknowledged: however many forged Acks come, it stays.
    drop(c.nodes.remove(1));
    assert_eq!(c[0].cmd("put gone v"), "Value stored.");
    c[0].delete("gone");
    let acked = forger.acks();
    eventually(CONVERGE_TIMEOUT, "more forged Acks", || {
        forger.acks() >= acked + 5
    });
    let line = keys_line(&mut c[0]);
    assert!(line.contains(", 1 tombstones"), "{line}");
    assert!(
        c[0].count_stderr("above anything shown") > 0,
        "the forged Ack is logged"
    );
}

#[test]
fn a_batch_with_thousands_of_new_writer_names_is_refused_and_leaves_nothing() {
    let mut c = cluster(2, FAST_SYNC_MS);
    assert_eq!(c[0].cmd("put held v"), "Value stored.");
    let n = 2_000;
    let names: Vec<String> = (0..n).map(|i| format!("forged#{i}")).collect();
    // Two entries: a batch of one may name more writers (a key that many
    // identities wrote in turn), bounded only by the node's total.
    let entry = |key: &[u8]| WireEntry {
        key: Bytes(key.to_vec()),
        value: Some(Bytes(b"x".to_vec())),
        ts: 1,
        writer: 0,
        clock: (0..n as u32).map(|i| (i, 1)).collect(),
        expires: None,
        counter: None,
    };
    let batch = Batch {
        groups: Vec::new(),
        entries: vec![entry(b"many"), entry(b"more")],
        names,
    };
    let (mut stream, from) = greeted(c[0].addr(), "n1");
    stream.write_all(&last_push(batch)).expect("send");
    assert_closed(
        &c,
        from,
        &format!(
            "invalid batch: {n} writer names new to this node, over the limit of \
             {MAX_NEW_NAMES_PER_BATCH} per batch"
        ),
    );
    assert_eq!(c[0].cmd("get many"), "Key not found.");
    // Not one of the names was kept: a pusher that lacks everything is
    // sent n1's whole name table, and it holds no forged name.
    let (mut stream, _) = greeted(c[0].addr(), "n1");
    stream
        .write_all(&last_push(Batch::default()))
        .expect("send");
    let mut sent_names = Vec::new();
    loop {
        match read_frame(&mut stream, 1 << 26).expect("Pulls, then an Ack") {
            Message::Pull { batch } => sent_names.extend(batch.names),
            Message::Ack { .. } => break,
            other => panic!("expected Pull or Ack, got {other:?}"),
        }
    }
    assert!(!sent_names.is_empty(), "n1 sent its entries");
    assert!(
        sent_names.iter().all(|n| !n.starts_with("forged")),
        "{} names sent, some forged",
        sent_names.len()
    );
    assert_healthy(&mut c, "many-names");
}
