//! Sync costs what changed: an idle round sends two small vectors whatever
//! the data set's size, a write is pushed as it happens rather than at the
//! next round, a node that was down receives only what it missed, and
//! tombstones are dropped once every listed peer has them (and only then).
//!
//! Costs are counted in bytes from `status`, never timed.

mod common;

use common::{
    cluster, durable_cluster, eventually, eventually_ok, Cluster, Node, FAST_SYNC_MS, NO_SYNC_MS,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What one peer line of `status` says.
#[derive(Debug, Clone, PartialEq)]
struct PeerLine {
    reachable: bool,
    /// Seconds since the last successful push, to a tenth.
    last_sync_ago: Option<f64>,
    writes_behind: Option<u64>,
    bytes_last_round: usize,
    tombstones_waiting: usize,
}

/// Parses `peer ADDR: STATE, last sync X s ago|never synced, N writes
/// behind|nothing acknowledged yet, N bytes sent last round, N tombstones
/// waiting on it`.
fn parse_peer_line(line: &str) -> PeerLine {
    // Split from the right: the reason a peer is unreachable may hold ", ".
    let mut fields: Vec<&str> = line
        .split_once(": ")
        .unwrap_or_else(|| panic!("no `: ` in peer line {line:?}"))
        .1
        .rsplitn(5, ", ")
        .collect();
    fields.reverse();
    assert_eq!(fields.len(), 5, "peer line {line:?}");
    let number = |field: &str, suffix: &str| -> u64 {
        field
            .strip_suffix(suffix)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{field:?} is not `N{suffix}` in {line:?}"))
    };
    PeerLine {
        reachable: fields[0] == "reachable",
        last_sync_ago: fields[1]
            .strip_prefix("last sync ")
            .and_then(|f| f.strip_suffix(" s ago"))
            .map(|s| s.parse().unwrap_or_else(|_| panic!("bad time in {line:?}"))),
        writes_behind: (fields[2] != "nothing acknowledged yet")
            .then(|| number(fields[2], " writes behind")),
        bytes_last_round: number(fields[3], " bytes sent last round") as usize,
        tombstones_waiting: number(fields[4], " tombstones waiting on it") as usize,
    }
}

/// The peer line for `addr` in `node`'s status, parsed.
fn peer(node: &mut Node, addr: SocketAddr) -> PeerLine {
    parse_peer_line(&node.peer_status(addr))
}

/// `(live, tombstones)` from `node`'s status.
fn counts(node: &mut Node) -> (usize, usize) {
    let line = node.status().remove(1);
    let parse = || -> Option<(usize, usize)> {
        let rest = line.strip_prefix("keys: ")?;
        let (live, rest) = rest.split_once(" live, ")?;
        let tombstones = rest.strip_suffix(" tombstones")?;
        Some((live.parse().ok()?, tombstones.parse().ok()?))
    };
    parse().unwrap_or_else(|| panic!("{}: bad counts line {line:?}", node.name()))
}

/// Waits until `node` holds `live` keys and `tombstones` tombstones;
/// panics after `within` with the counts it last showed.
fn wait_counts(node: &mut Node, live: usize, tombstones: usize, within: Duration) {
    let name = node.name().to_owned();
    eventually_ok(
        within,
        format_args!("{name} to hold {live} live keys and {tombstones} tombstones"),
        || match counts(node) {
            (l, t) if (l, t) == (live, tombstones) => Ok(()),
            (l, t) => Err(format!("{l} live keys and {t} tombstones")),
        },
    );
}

/// Sends `lines` to `node` in one write and checks every reply is `reply`:
/// thousands of commands cost one pipe write, not one round trip each.
fn pipe(node: &mut Node, lines: &[String], reply: &str) {
    node.send_lines(lines);
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, line) in lines.iter().enumerate() {
        let got = node.read_line(deadline.saturating_duration_since(Instant::now()));
        assert_eq!(got, reply, "{}: reply {i} to {line:?}", node.name());
    }
}

/// Watches every pair `(node i, peer addr)` in `pairs` until each has
/// completed `rounds` rounds after this call, and calls `check` with every
/// peer line read once the pair's first such round is over. A round is
/// seen completing when the peer's `last sync` time jumps back; rounds of
/// a pusher never overlap, so one that completes after this call started
/// after every round that completed before it.
fn watch_rounds(
    c: &mut Cluster,
    pairs: &[(usize, SocketAddr)],
    rounds: usize,
    within: Duration,
    mut check: impl FnMut(&mut Node, SocketAddr, &PeerLine),
) {
    let mut seen = vec![0; pairs.len()];
    let mut last_ago: Vec<Option<f64>> = vec![None; pairs.len()];
    eventually(
        within,
        format_args!("{rounds} rounds on each of {pairs:?}"),
        || {
            for (k, &(i, addr)) in pairs.iter().enumerate() {
                let line = peer(&mut c.nodes[i], addr);
                if let (Some(before), Some(now)) = (last_ago[k], line.last_sync_ago) {
                    if now < before {
                        seen[k] += 1;
                    }
                }
                last_ago[k] = line.last_sync_ago;
                if seen[k] > 0 {
                    check(&mut c.nodes[i], addr, &line);
                }
            }
            seen.iter().all(|&s| s >= rounds)
        },
    );
}

/// Every `(node, peer)` pair of a cluster.
fn all_pairs(c: &Cluster) -> Vec<(usize, SocketAddr)> {
    let addrs = c.addrs();
    let mut pairs = Vec::new();
    for i in 0..addrs.len() {
        for &addr in &addrs {
            if addr != addrs[i] {
                pairs.push((i, addr));
            }
        }
    }
    pairs
}

#[test]
fn an_idle_round_with_100k_keys_sends_under_1_kb_per_peer() {
    const KEYS: usize = 100_000;
    // Rounds far enough apart that each one shows in `last sync`.
    let mut c = cluster(3, 300);
    let puts: Vec<String> = (0..KEYS).map(|i| format!("put key-{i:06} v{i}")).collect();
    pipe(&mut c[0], &puts, "Value stored.");
    for node in &mut c.nodes {
        wait_counts(node, KEYS, 0, Duration::from_secs(30));
    }
    // Every peer has acknowledged everything, so whatever round comes next
    // has nothing to send.
    let pairs = all_pairs(&c);
    eventually(
        Duration::from_secs(10),
        "every peer 0 writes behind",
        || {
            pairs.iter().all(|&(i, addr)| {
                let line = peer(&mut c.nodes[i], addr);
                line.reachable && line.writes_behind == Some(0)
            })
        },
    );
    let mut largest = 0;
    let mut checked = 0;
    watch_rounds(
        &mut c,
        &pairs,
        3,
        Duration::from_secs(20),
        |node, addr, line| {
            assert!(
                line.reachable && line.writes_behind == Some(0),
                "{}: peer {addr} fell behind while idle: {line:?}",
                node.name()
            );
            largest = largest.max(line.bytes_last_round);
            checked += 1;
            assert!(
                line.bytes_last_round < 1024,
                "{}: an idle round to {addr} with {KEYS} keys sent {} bytes",
                node.name(),
                line.bytes_last_round
            );
        },
    );
    eprintln!("largest idle round: {largest} bytes ({checked} peer lines read)");
}

#[test]
fn a_write_reaches_the_peers_without_waiting_for_a_round() {
    // No periodic round during the test: only the push a write starts can
    // deliver it in time.
    let mut c = cluster(3, NO_SYNC_MS);
    // Every node is up and every pusher has met its peers.
    c.sync_all();
    let within = Duration::from_secs(10);

    assert_eq!(c[0].cmd("put pushed from-n1"), "Value stored.");
    c.wait_all("get pushed", "Value: from-n1", within);
    assert_eq!(c[1].cmd("put pushed from-n2"), "Value stored.");
    c.wait_all("get pushed", "Value: from-n2", within);
    assert_eq!(c[2].cmd("delete pushed"), "Key deleted.");
    c.wait_all("get pushed", "Key not found.", within);

    // A burst shares pushes; the last write of it still goes out.
    let burst: Vec<String> = (0..1000).map(|i| format!("put burst-{i:04} {i}")).collect();
    pipe(&mut c[1], &burst, "Value stored.");
    c.wait_all("get burst-0999", "Value: 999", within);
    for node in &mut c.nodes {
        let name = node.name().to_owned();
        eventually(within, format_args!("{name} holds the burst"), || {
            counts(node).0 == burst.len()
        });
    }
}

/// The bytes of a data set's keys and values: what any transfer of all of
/// it must carry at least.
fn payload(data: &[(String, String)]) -> usize {
    data.iter().map(|(k, v)| k.len() + v.len()).sum()
}

#[test]
fn a_node_that_was_down_receives_only_the_writes_it_missed() {
    const OLD: usize = 20_000;
    const MISSED_EACH: usize = 5_000;
    // No periodic round: every transfer below is one `sync`, so the bytes
    // its pushers report are all that was sent to the restarted node.
    let mut c = durable_cluster(3, NO_SYNC_MS, &[]);
    let n3 = c.addrs()[2];

    let old: Vec<(String, String)> = (0..OLD)
        .map(|i| (format!("key-{i:05}"), format!("{i:05}-{}", "o".repeat(194))))
        .collect();
    let puts: Vec<String> = old.iter().map(|(k, v)| format!("put {k} {v}")).collect();
    pipe(&mut c[0], &puts, "Value stored.");
    c.sync_all();
    for node in &mut c.nodes {
        assert_eq!(counts(node), (OLD, 0), "{}", node.name());
    }

    c[2].kill();
    // The writes it misses: n1 overwrites old keys, n2 adds new ones.
    let overwrites: Vec<(String, String)> = (0..MISSED_EACH)
        .map(|i| (format!("key-{i:05}"), format!("new{i}")))
        .collect();
    let added: Vec<(String, String)> = (0..MISSED_EACH)
        .map(|i| (format!("added-{i:05}"), format!("a{i}")))
        .collect();
    let put_lines = |data: &[(String, String)]| -> Vec<String> {
        data.iter().map(|(k, v)| format!("put {k} {v}")).collect()
    };
    pipe(&mut c[0], &put_lines(&overwrites), "Value stored.");
    pipe(&mut c[1], &put_lines(&added), "Value stored.");
    // n1 and n2 exchange what each wrote; n3 is down.
    assert_eq!(c[0].cmd("sync"), "Synced with 1 of 2 peers.");
    assert_eq!(c[1].cmd("sync"), "Synced with 1 of 2 peers.");
    let total = OLD + MISSED_EACH;
    for node in &mut c.nodes[..2] {
        assert_eq!(counts(node), (total, 0), "{}", node.name());
    }

    c[2].restart();
    c[2].wait_log(&format!("{OLD} entries loaded"), Duration::from_secs(10));
    assert_eq!(counts(&mut c[2]), (OLD, 0), "n3 restarted from its data");

    // n1 pushes n3 everything n3 lacks, its own writes and n2's alike.
    assert_eq!(c[0].cmd("sync"), "Synced with 2 of 2 peers.");
    assert_eq!(counts(&mut c[2]), (total, 0), "n3 after n1's push");
    // n2 has nothing left to send it.
    assert_eq!(c[1].cmd("sync"), "Synced with 2 of 2 peers.");
    let from_n1 = peer(&mut c[0], n3).bytes_last_round;
    let from_n2 = peer(&mut c[1], n3).bytes_last_round;
    for (key, value) in overwrites.iter().chain(&added).step_by(997) {
        assert_eq!(c[2].cmd(&format!("get {key}")), format!("Value: {value}"));
    }
    assert_eq!(
        c[2].cmd(&format!("get {}", old[OLD - 1].0)),
        format!("Value: {}", old[OLD - 1].1)
    );

    let missed = payload(&overwrites) + payload(&added);
    let whole = payload(&old[MISSED_EACH..]) + missed;
    eprintln!(
        "catch-up: {from_n1} + {from_n2} bytes sent; missed writes carry {missed} bytes, \
         the whole data set {whole}"
    );
    assert!(
        from_n1 >= missed,
        "n1 sent {from_n1} bytes, less than the {missed} bytes of the missed writes: \
         the catch-up was not that push"
    );
    assert!(
        from_n1 + from_n2 < whole / 4,
        "catching up sent {from_n1} + {from_n2} bytes, not far below the {whole} bytes \
         of the whole data set: it was not incremental"
    );
    assert!(
        from_n2 < 1024,
        "n2 sent {from_n2} bytes with nothing to send"
    );
}

#[test]
fn tombstones_disappear_once_every_peer_has_them() {
    let mut c = cluster(3, FAST_SYNC_MS);
    let keys: Vec<String> = (0..30).map(|i| format!("doomed-{i:02}")).collect();
    for (i, key) in keys.iter().enumerate() {
        let line = format!("put {key} v{i}");
        assert_eq!(c[i % 3].cmd(&line), "Value stored.");
    }
    assert_eq!(c[0].cmd("put bystander stays"), "Value stored.");
    for node in &mut c.nodes {
        wait_counts(node, keys.len() + 1, 0, Duration::from_secs(10));
    }

    // Each key deleted on a node that did not write it.
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(c[(i + 1) % 3].cmd(&format!("delete {key}")), "Key deleted.");
    }
    for node in &mut c.nodes {
        wait_counts(node, 1, 0, Duration::from_secs(10));
    }
    let pairs = all_pairs(&c);
    for &(i, addr) in &pairs {
        let line = peer(&mut c[i], addr);
        assert_eq!(line.tombstones_waiting, 0, "{}: {addr}", c[i].name());
    }
    // Without their tombstones the keys stay deleted, round after round.
    for _ in 0..3 {
        c.sync_all();
        for key in &keys {
            c.assert_all(&format!("get {key}"), "Key not found.");
        }
        c.assert_all("get bystander", "Value: stays");
    }
    for node in &mut c.nodes {
        assert_eq!(counts(node), (1, 0), "{}", node.name());
    }
}

#[test]
fn tombstones_wait_for_a_peer_that_is_down_and_the_key_stays_deleted() {
    // Rounds far enough apart that each one shows in `last sync`.
    let mut c = durable_cluster(3, 200, &[]);
    let addrs = c.addrs();
    let keys: Vec<String> = (0..10).map(|i| format!("doomed-{i}")).collect();
    for key in &keys {
        assert_eq!(c[0].cmd(&format!("put {key} old")), "Value stored.");
    }
    assert_eq!(c[0].cmd("put bystander stays"), "Value stored.");
    let all = keys.len() + 1;
    for node in &mut c.nodes {
        wait_counts(node, all, 0, Duration::from_secs(10));
    }

    c[2].kill();
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(c[i % 2].cmd(&format!("delete {key}")), "Key deleted.");
    }
    for node in &mut c.nodes[..2] {
        wait_counts(node, 1, keys.len(), Duration::from_secs(10));
    }
    // Round after round between the live nodes, both keep every tombstone
    // for the dead peer, and none for the live one.
    let live_pairs = [(0, addrs[1]), (1, addrs[0])];
    watch_rounds(
        &mut c,
        &live_pairs,
        3,
        Duration::from_secs(20),
        |node, other, line| {
            let name = node.name().to_owned();
            assert!(line.reachable, "{name}: {other} {line:?}");
            assert_eq!(line.tombstones_waiting, 0, "{name}: live peer {other}");
            assert_eq!(counts(node), (1, keys.len()), "{name} while n3 is down");
            let dead = peer(node, addrs[2]);
            assert!(!dead.reachable, "{name}: n3 {dead:?}");
            assert_eq!(dead.tombstones_waiting, keys.len(), "{name}: dead n3");
        },
    );

    // n3 comes back from its data, still holding the old values.
    c[2].restart();
    c[2].wait_log(&format!("{all} entries loaded"), Duration::from_secs(10));
    // The deletes win everywhere: the old values never come back.
    eventually(Duration::from_secs(10), "n3 learns of the deletes", || {
        for node in &mut c.nodes[..2] {
            for key in &keys {
                assert_eq!(node.cmd(&format!("get {key}")), "Key not found.");
            }
        }
        keys.iter()
            .all(|key| c[2].cmd(&format!("get {key}")) == "Key not found.")
    });
    // Every peer has them now: the tombstones go.
    for node in &mut c.nodes {
        wait_counts(node, 1, 0, Duration::from_secs(10));
    }
    c.sync_all();
    for key in &keys {
        c.assert_all(&format!("get {key}"), "Key not found.");
    }
    c.assert_all("get bystander", "Value: stays");
}

/// A node that restarts empty pulls everything from its peer in its first
/// round; the peer's own round, coming while that pull goes on, must not
/// push it all a second time, and a write made meanwhile still arrives.
#[test]
fn a_peer_does_not_push_a_second_copy_to_a_node_pulling_everything() {
    const KEYS: usize = 300_000;
    // No periodic rounds: the peer's rounds below come from its writes.
    let mut c = cluster(2, NO_SYNC_MS);
    c[1].kill();
    let puts: Vec<String> = (0..KEYS).map(|i| format!("put k{i:06} v{i}")).collect();
    pipe(&mut c[0], &puts, "Value stored.");

    // n2 comes back empty (in memory) and pulls the 300k keys from n1:
    // n1 says so when its answer starts. (Watching n2's count instead
    // races: n1 may have sent its last part while n2 still merges.)
    c[1].restart();
    c[0].wait_log("answering peer n2 with a transfer", Duration::from_secs(30));
    // A write on n1 starts a round of n1's to n2 while the pull goes on.
    assert_eq!(c[0].cmd("put during pull"), "Value stored.");
    c[0].wait_log(
        "is pulling a transfer from this node",
        Duration::from_secs(10),
    );

    // The pull may bring the write made during it too: its parts are
    // gathered as they go.
    eventually(Duration::from_secs(60), "n2 holding every key", || {
        counts(&mut c[1]).0 >= KEYS
    });
    // A write made during the pull that the pull did not bring goes with
    // n1's next round.
    assert_eq!(c[0].cmd("put after pull"), "Value stored.");
    c.wait_all("get during", "Value: pull", Duration::from_secs(10));
    c.wait_all("get after", "Value: pull", Duration::from_secs(10));
    wait_counts(&mut c[1], KEYS + 2, 0, Duration::from_secs(10));
}
