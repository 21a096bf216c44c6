//! Clocks against real binaries: one far-future timestamp from a peer must
//! never make a node's later writes unreplicable, and a node whose clock
//! is hours off from its peers' says so and refuses writes until its
//! clock is fixed.

mod common;

use common::wire::{Batch, Bytes, Done, Message, WireEntry};
use common::{
    cluster, eventually, frame_of, greeting, redis_connection, wall_clock_ms, Cluster, Faketime,
    CONVERGE_TIMEOUT, FAST_SYNC_MS,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a node may take to log a closed connection.
const LOG_TIMEOUT: Duration = Duration::from_secs(4);

/// How long nodes may take to measure each other's clocks and act on it:
/// a few rounds, on a busy machine.
const CLOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// A peer connection to `to`, greeted as peer `intruder`; returns it and
/// the address the node sees it from.
fn greeted(to: SocketAddr) -> (TcpStream, SocketAddr) {
    let mut stream = common::connect(to, Duration::from_secs(5));
    let from = stream.local_addr().expect("local address");
    stream
        .write_all(&greeting("intruder"))
        .expect("send greeting");
    // The Welcome, skipped whole: what it says is not what is tested.
    let mut len = [0; 4];
    stream.read_exact(&mut len).expect("the node answers Hello");
    let mut welcome = vec![0; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut welcome).expect("a whole Welcome");
    (stream, from)
}

/// The last part of a push holding one version of `key`, stamped `ts`.
fn push_stamped(key: &str, ts: u64) -> Vec<u8> {
    frame_of(&Message::Push {
        batch: Batch {
            groups: Vec::new(),
            names: vec!["n9".into()],
            entries: vec![WireEntry {
                key: Bytes(key.as_bytes().to_vec()),
                value: Some(Bytes(b"from the future".to_vec())),
                ts,
                writer: 0,
                clock: vec![(0, 1)],
                expires: None,
                counter: None,
            }],
        },
        done: Some(Done {
            vv: Vec::new(),
            digest: None,
            full: false,
            sent: None,
            serving: None,
        }),
    })
}

/// n1's writes reach n2, twice in a row (the second is stamped after
/// the first, so it shows n1's clock still stamps what peers take).
fn assert_writes_replicate(c: &mut Cluster, tag: &str) {
    for value in ["one", "two"] {
        assert_eq!(c[0].cmd(&format!("put {tag} {value}")), "Value stored.");
        c[1].wait_reply(
            &format!("get {tag}"),
            &format!("Value: {value}"),
            CONVERGE_TIMEOUT,
        );
    }
}

#[test]
fn an_entry_stamped_far_ahead_is_refused_and_later_writes_still_replicate() {
    let mut c = cluster(2, FAST_SYNC_MS);
    let hour_ahead = (wall_clock_ms() + 3_600_000) << 16;
    // An hour ahead, and the largest timestamp peers used to accept, after
    // which a node's next write was stamped one peers refuse, for ever.
    for (i, ts) in [hour_ahead, (1 << 63) - 1].into_iter().enumerate() {
        let key = format!("forged-{i}");
        let (mut stream, from) = greeted(c[0].addr());
        stream.write_all(&push_stamped(&key, ts)).expect("send");
        let prefix = format!("closed connection from {from}: invalid batch: an entry stamped ");
        let line = c[0].wait_log(&prefix, LOG_TIMEOUT);
        let ahead: u64 = line
            .split(&prefix)
            .nth(1)
            .and_then(|rest| {
                rest.strip_suffix(" ms ahead of this node's clock, over the bound of 500 ms")
            })
            .and_then(|ms| ms.parse().ok())
            .unwrap_or_else(|| panic!("no offset in ms in {line:?}"));
        if i == 0 {
            assert!((3_590_000..=3_600_000).contains(&ahead), "{line}");
        }
        assert_eq!(
            c[0].count_stderr(&format!("closed connection from {from}")),
            1
        );
        // The connection is closed: nothing but its end comes back.
        stream
            .set_read_timeout(Some(LOG_TIMEOUT))
            .expect("read timeout");
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).expect("closed by the node");
        assert!(rest.is_empty(), "no answer to a refused push: {rest:?}");
        assert_eq!(c[0].cmd(&format!("get {key}")), "Key not found.");
        assert_writes_replicate(&mut c, &format!("after-{i}"));
    }
}

#[test]
fn a_node_two_hours_ahead_refuses_writes_until_its_clock_is_fixed() {
    let Some(ft) = Faketime::or_skip() else {
        return;
    };
    // n3's clock is two hours ahead of n1's and n2's, which agree.
    let mut c = Cluster::start(3, &[], |i, spec, _| {
        let spec = spec.sync_every(FAST_SYNC_MS);
        if i == 2 {
            ft.skew(spec, "+2h")
        } else {
            spec
        }
    });
    let n3 = c[2].addr();

    // n3 sees both peers two hours behind it, says so at error, and
    // refuses writes: on the console, over Redis, in status and INFO.
    let refusal = c[2].wait_log("writes refused: this node's clock is off", CLOCK_TIMEOUT);
    assert!(refusal.contains(" ERROR "), "{refusal}");
    for peer in [c[0].addr(), c[1].addr()] {
        let line = c[2].wait_log(&format!("CLOCK: peer {peer} is off"), CLOCK_TIMEOUT);
        assert!(line.contains(" ERROR "), "{line}");
        assert!(line.contains("ms behind this node's"), "{line}");
    }
    eventually(CLOCK_TIMEOUT, "n3 refusing writes for both peers", || {
        c[2].cmd("put k skewed").contains("from 2 of its 2 peers")
    });
    let reply = c[2].cmd("put k skewed");
    assert!(
        reply.starts_with("Error: writes refused: this node's clock is off by more than 500 ms"),
        "{reply}"
    );
    let status = c[2].status_now();
    assert!(
        status
            .iter()
            .any(|l| l.starts_with("writes refused: this node's clock")),
        "{status:?}"
    );
    let off_peers = status
        .iter()
        .filter(|l| l.starts_with("peer ") && l.contains("CLOCK OFF: its clock is "))
        .count();
    assert_eq!(off_peers, 2, "{status:?}");
    let mut redis = redis_connection(n3);
    let refused = redis::cmd("SET")
        .arg("r")
        .arg("1")
        .query::<()>(&mut redis)
        .expect_err("refused over Redis");
    assert!(refused.to_string().contains("writes refused"), "{refused}");
    let info: String = redis::cmd("INFO")
        .arg("netdb")
        .query(&mut redis)
        .expect("INFO");
    for line in [
        "clock_off_peers:2",
        "writes_refused:1",
        "max_clock_offset_ms:500",
    ] {
        assert!(info.contains(line), "{line}: {info}");
    }
    drop(redis);

    // n1 and n2 see n3 two hours ahead, say so, and (agreeing with each
    // other, a majority) keep taking writes.
    for i in 0..2 {
        let line = c[i].wait_log(&format!("CLOCK: peer {n3} is off"), CLOCK_TIMEOUT);
        assert!(line.contains("ms ahead of this node's"), "{line}");
        eventually(CLOCK_TIMEOUT, "n3's line to say its clock is off", || {
            c[i].peer_status(n3).contains("CLOCK OFF: its clock is 72")
        });
    }
    eventually(CLOCK_TIMEOUT, "n1 taking writes", || {
        c[0].cmd("put k good") == "Value stored."
    });
    c[1].wait_reply("get k", "Value: good", CONVERGE_TIMEOUT);

    // n3 restarted with the machine's clock: it takes writes, and the
    // cluster converges both ways.
    c[2].restart_with(Faketime::unskew);
    eventually(CLOCK_TIMEOUT, "n3 taking writes", || {
        c[2].cmd("put from-n3 fixed") == "Value stored."
    });
    c.wait_all("get k", "Value: good", CONVERGE_TIMEOUT);
    c.wait_all("get from-n3", "Value: fixed", CONVERGE_TIMEOUT);
    assert_eq!(c[0].cmd("put k last"), "Value stored.");
    c.wait_all("get k", "Value: last", CONVERGE_TIMEOUT);
    for i in 0..2 {
        eventually(CLOCK_TIMEOUT, "n3's clock back within the bound", || {
            !c[i].peer_status(n3).contains("CLOCK OFF")
        });
    }
    let status = c[2].status_now();
    assert!(
        !status.iter().any(|l| l.starts_with("writes refused")),
        "{status:?}"
    );
}
