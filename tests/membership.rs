//! Membership: a cluster that changes while it runs. Nodes join through
//! any member (`--join`, `CLUSTER MEET`), learn of each other by gossip,
//! see a killed member suspect and then down, leave gracefully, and a
//! dead member is forgotten so that tombstones go. Real binaries, on
//! loopback ports the OS picks.

mod common;

use common::{
    debug_digest, eventually, eventually_ok, redis_connection, temp_dir, throughout, Net, Node,
    NodeSpec, CONVERGE_TIMEOUT,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sync interval of these tests' nodes.
const SYNC_MS: u64 = 100;

/// The failure timeout of the detection tests.
const FAILURE_MS: u64 = 2000;

/// How long a member may take to learn of another: a few probe
/// intervals, generous for a loaded machine.
const LEARN_TIMEOUT: Duration = Duration::from_secs(10);

fn joining(name: &str, through: &[SocketAddr]) -> NodeSpec {
    let mut spec = NodeSpec::new(name)
        .sync_every(SYNC_MS)
        .args(&["--failure-timeout-ms", &FAILURE_MS.to_string()]);
    for addr in through {
        spec = spec.args(&["--join", &addr.to_string()]);
    }
    spec
}

fn cluster_query(addr: SocketAddr, sub: &str) -> String {
    let mut con = redis_connection(addr);
    redis::cmd("CLUSTER")
        .arg(sub)
        .query(&mut con)
        .unwrap_or_else(|e| panic!("CLUSTER {sub} on {addr}: {e}"))
}

/// `CLUSTER NODES` of the node at `addr`, one line per member.
fn cluster_nodes(addr: SocketAddr) -> Vec<String> {
    cluster_query(addr, "NODES")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The `CLUSTER NODES` line of member `name` as the node at `addr` sees
/// it.
fn line_of(addr: SocketAddr, name: &str) -> Option<String> {
    let host = format!(",{name} ");
    cluster_nodes(addr).into_iter().find(|l| l.contains(&host))
}

/// Waits until every node knows exactly the members `names`, none of
/// them still joining.
fn wait_members(nodes: &[&Node], names: &[&str]) {
    for node in nodes {
        let addr = node.addr();
        eventually_ok(
            LEARN_TIMEOUT,
            format_args!("{} to know members {names:?}", node.name()),
            || {
                let lines = cluster_nodes(addr);
                let all = names
                    .iter()
                    .all(|n| lines.iter().any(|l| l.contains(&format!(",{n} "))));
                let joined = lines.iter().all(|l| !l.contains("handshake"));
                if all && joined && lines.len() == names.len() {
                    Ok(())
                } else {
                    Err(format!("{lines:?}"))
                }
            },
        );
    }
}

/// Waits until every node has the same digest and `keys` live keys.
fn wait_same_data(nodes: &[&Node], keys: usize, within: Duration) {
    eventually_ok(
        within,
        format_args!("every node to hold {keys} keys"),
        || {
            let mut digests = Vec::new();
            for node in nodes {
                let mut con = redis_connection(node.addr());
                let size: usize = redis::cmd("DBSIZE").query(&mut con).expect("DBSIZE");
                if size != keys {
                    return Err(format!("{} has {size} keys", node.name()));
                }
                digests.push(debug_digest(&mut con));
            }
            if digests.windows(2).all(|w| w[0] == w[1]) {
                Ok(())
            } else {
                Err(format!("digests {digests:?}"))
            }
        },
    );
}

#[test]
fn a_cluster_grows_from_one_to_five_with_join_while_a_client_writes() {
    let first = joining("n1", &[]).start();
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (addr, stop, written) = (first.addr(), Arc::clone(&stop), Arc::clone(&written));
        std::thread::spawn(move || {
            let mut con = redis_connection(addr);
            while !stop.load(Ordering::SeqCst) {
                let i = written.load(Ordering::SeqCst);
                let _: () = redis::cmd("SET")
                    .arg(format!("key{i}"))
                    .arg(format!("value{i}"))
                    .query(&mut con)
                    .expect("SET");
                written.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let mut nodes = vec![first];
    for name in ["n2", "n3", "n4", "n5"] {
        // Each joins through the one before it: any member will do.
        let through = nodes.last().expect("a member").addr();
        let node = joining(name, &[through]).start();
        nodes.push(node);
        let before = written.load(Ordering::SeqCst);
        eventually(LEARN_TIMEOUT, "the writer to go on", || {
            written.load(Ordering::SeqCst) > before
        });
    }
    let refs: Vec<&Node> = nodes.iter().collect();
    let last_joined = Instant::now();
    wait_members(&refs, &["n1", "n2", "n3", "n4", "n5"]);
    // How long the last joiner took to be known (and up) everywhere,
    // from the moment it listened: quoted in the README.
    eprintln!(
        "every member knew n5 as up {:?} after it started",
        last_joined.elapsed()
    );
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("writer");
    let keys = written.load(Ordering::SeqCst);
    assert!(keys > 0);
    wait_same_data(&refs, keys, CONVERGE_TIMEOUT * 3);
    // Every member is up on every node, and the joiners are no longer
    // joining.
    for node in &nodes {
        for line in cluster_nodes(node.addr()) {
            assert!(
                !line.contains("fail") && !line.contains("handshake"),
                "{}: {line}",
                node.name()
            );
        }
    }
}

#[test]
fn a_killed_member_is_suspect_then_down_and_a_restart_brings_it_back() {
    let dirs: Vec<_> = (0..3).map(|_| temp_dir()).collect();
    let mut n1 = joining("n1", &[]).data_dir(dirs[0].path()).start();
    let n2 = joining("n2", &[n1.addr()]).data_dir(dirs[1].path()).start();
    let mut n3 = joining("n3", &[n1.addr()]).data_dir(dirs[2].path()).start();
    wait_members(&[&n1, &n2, &n3], &["n1", "n2", "n3"]);
    let n3_addr = n3.addr();
    n3.kill();
    let killed = Instant::now();
    // Seen suspect (fail?) and then down (fail) on both others, both
    // watched at once.
    let watchers = [n1.addr(), n2.addr()];
    let mut suspect_seen = [false; 2];
    let mut down_seen = [false; 2];
    eventually(
        Duration::from_millis(FAILURE_MS) * 4,
        "n1 and n2 to see n3 suspect, then down",
        || {
            for (i, addr) in watchers.iter().enumerate() {
                if down_seen[i] {
                    continue;
                }
                let line = line_of(*addr, "n3").unwrap_or_default();
                suspect_seen[i] |= line.contains("master,fail? ");
                down_seen[i] = line.contains("master,fail ");
            }
            down_seen == [true; 2]
        },
    );
    assert_eq!(suspect_seen, [true; 2], "suspect before down");
    let took = killed.elapsed();
    eprintln!("n3 was down on both others {took:?} after the kill (timeout {FAILURE_MS} ms)");
    assert!(
        took < Duration::from_millis(FAILURE_MS) * 3,
        "down after {took:?}"
    );
    // The console's status says so, and for how long.
    let lines = n1.member_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("member n3 ") && l.contains(": up, down for ")),
        "{lines:?}"
    );
    // Writes go on while it is down.
    let mut con = redis_connection(n1.addr());
    let _: () = redis::cmd("SET")
        .arg("while-down")
        .arg("yes")
        .query(&mut con)
        .expect("SET while a member is down");
    // INFO says so too.
    let info: String = redis::cmd("INFO")
        .arg("cluster")
        .query(&mut con)
        .expect("INFO");
    assert!(info.contains("cluster_enabled:0"), "{info}");
    assert!(
        info.lines()
            .any(|l| l.contains("name=n3") && l.contains("health=down")),
        "{info}"
    );
    // Restarted with its data directory and no --join, on its old
    // address: it rejoins the members it knew.
    let n3 = NodeSpec::new("n3")
        .sync_every(SYNC_MS)
        .args(&["--failure-timeout-ms", &FAILURE_MS.to_string()])
        .data_dir(dirs[2].path())
        .listen(n3_addr)
        .start();
    for node in [&n1, &n2] {
        let addr = node.addr();
        eventually(
            LEARN_TIMEOUT,
            format_args!("{} to see n3 up", node.name()),
            || {
                line_of(addr, "n3")
                    .is_some_and(|l| l.contains(" master - ") && l.contains("connected"))
                    && !line_of(addr, "n3").is_some_and(|l| l.contains("fail"))
            },
        );
    }
    wait_same_data(&[&n1, &n2, &n3], 1, CONVERGE_TIMEOUT * 3);
}

#[test]
fn a_busy_cluster_sees_no_member_down() {
    let n1 = joining("n1", &[]).start();
    let n2 = joining("n2", &[n1.addr()]).start();
    let n3 = joining("n3", &[n1.addr()]).start();
    wait_members(&[&n1, &n2, &n3], &["n1", "n2", "n3"]);
    // Two clients pipeline writes of 1 KiB values into n1 and n2 for
    // twice the failure timeout: the store threads and the pushers are
    // busy, the probes must still be answered.
    let stop = Arc::new(AtomicBool::new(false));
    let value = "x".repeat(1024);
    let writers: Vec<_> = [n1.addr(), n2.addr()]
        .into_iter()
        .enumerate()
        .map(|(w, addr)| {
            let (stop, value) = (Arc::clone(&stop), value.clone());
            std::thread::spawn(move || {
                let mut con = redis_connection(addr);
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let mut pipe = redis::pipe();
                    for _ in 0..100 {
                        pipe.cmd("SET")
                            .arg(format!("w{w}-{}", i % 5000))
                            .arg(&value);
                        i += 1;
                    }
                    let _: () = pipe.query(&mut con).expect("pipelined SETs");
                }
                i
            })
        })
        .collect();
    let until = Instant::now() + Duration::from_millis(FAILURE_MS * 2);
    let mut looked = 0;
    while Instant::now() < until {
        for node in [&n1, &n2, &n3] {
            for line in cluster_nodes(node.addr()) {
                assert!(!line.contains("master,fail "), "{}: {line}", node.name());
            }
        }
        looked += 1;
    }
    stop.store(true, Ordering::SeqCst);
    let written: u64 = writers.into_iter().map(|w| w.join().expect("writer")).sum();
    eprintln!("{written} writes, {looked} looks, no member down");
    for node in [&n1, &n2, &n3] {
        assert_eq!(node.count_stderr("is down"), 0, "{}", node.name());
    }
}

#[test]
fn only_a_node_with_the_cluster_secret_can_join() {
    let dir = temp_dir();
    let ours = common::secret_file(dir.path(), "ours", common::SECRET);
    let theirs = common::secret_file(dir.path(), "theirs", common::OTHER_SECRET);
    let with = |spec: NodeSpec, path: &std::path::Path| {
        spec.args(&["--cluster-secret-file", &path.display().to_string()])
    };
    let n1 = with(joining("n1", &[]), &ours).start();
    let n2 = with(joining("n2", &[n1.addr()]), &ours).start();
    wait_members(&[&n1, &n2], &["n1", "n2"]);
    // A node of another cluster is refused at the handshake: it is never
    // admitted, and learns nothing.
    let intruder = with(joining("n3", &[n1.addr()]), &theirs).start();
    intruder.wait_log("unreachable", LEARN_TIMEOUT);
    n1.wait_log("closed connection from", LEARN_TIMEOUT);
    for node in [&n1, &n2] {
        assert!(
            line_of(node.addr(), "n3").is_none(),
            "{} admitted n3",
            node.name()
        );
    }
    assert_eq!(
        cluster_nodes(intruder.addr()).len(),
        1,
        "n3 learned members"
    );
}

#[test]
fn a_peer_s_bad_member_list_costs_one_connection() {
    use std::io::Write;
    let mut n1 = joining("n1", &[]).start();
    let bad = netdb::membership::Member {
        id: "not forty hex digits".into(),
        name: "evil".into(),
        addr: "127.0.0.1:1".into(),
        state: netdb::membership::State::Up,
        incarnation: 0,
    };
    let gossip = common::frame_of(&common::wire::Message::Gossip {
        from: String::new(),
        digest: 1,
        members: vec![bad],
    });
    let mut stream = common::connect(n1.addr(), Duration::from_secs(5));
    stream
        .write_all(&[common::greeting("evil"), gossip].concat())
        .expect("send");
    n1.wait_log("refused member list", LEARN_TIMEOUT);
    assert_eq!(cluster_nodes(n1.addr()).len(), 1, "nothing admitted");
    n1.put("still", "here");
    assert_eq!(n1.get("still").as_deref(), Some("here"));
}

#[test]
fn cluster_meet_joins_a_running_node() {
    let n1 = joining("n1", &[]).start();
    let n2 = joining("n2", &[]).start();
    let mut con = redis_connection(n1.addr());
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut con)
        .expect("SET");
    let mut con2 = redis_connection(n2.addr());
    let ok: String = redis::cmd("CLUSTER")
        .arg("MEET")
        .arg("127.0.0.1")
        .arg(n1.addr().port())
        .query(&mut con2)
        .expect("CLUSTER MEET");
    assert_eq!(ok, "OK");
    wait_members(&[&n1, &n2], &["n1", "n2"]);
    wait_same_data(&[&n1, &n2], 1, CONVERGE_TIMEOUT * 3);
    let err = redis::cmd("CLUSTER")
        .arg("MEET")
        .arg("127.0.0.1")
        .arg("notaport")
        .query::<String>(&mut con2)
        .expect_err("a bad port");
    assert!(err.to_string().contains("Invalid base port"), "{err}");
}

#[test]
fn forgetting_a_dead_member_lets_tombstones_go() {
    let mut n1 = joining("n1", &[]).start();
    let n2 = joining("n2", &[n1.addr()]).start();
    let mut n3 = joining("n3", &[n1.addr()]).start();
    wait_members(&[&n1, &n2, &n3], &["n1", "n2", "n3"]);
    let n3_id = cluster_query(n3.addr(), "MYID");
    n1.put("doomed", "soon");
    wait_same_data(&[&n1, &n2, &n3], 1, CONVERGE_TIMEOUT * 3);
    n3.kill();
    n1.delete("doomed");
    // n3 has not acknowledged the delete: the tombstone stays.
    eventually(LEARN_TIMEOUT, "n1 to hold the tombstone", || {
        n1.status()[1] == "keys: 0 live, 1 tombstones"
    });
    let mut con = redis_connection(n1.addr());
    let ok: String = redis::cmd("CLUSTER")
        .arg("FORGET")
        .arg(&n3_id)
        .query(&mut con)
        .expect("CLUSTER FORGET");
    assert_eq!(ok, "OK");
    eventually(LEARN_TIMEOUT, "n1 to drop the tombstone", || {
        n1.status()[1] == "keys: 0 live, 0 tombstones"
    });
    // The forget spread: n2 no longer lists n3.
    wait_members(&[&n1, &n2], &["n1", "n2"]);
    let err = redis::cmd("CLUSTER")
        .arg("FORGET")
        .arg("0".repeat(40))
        .query::<String>(&mut con)
        .expect_err("an unknown id");
    assert!(err.to_string().contains("Unknown node"), "{err}");
}

#[test]
fn a_member_leaves_gracefully() {
    let n1 = joining("n1", &[]).start();
    let n2 = joining("n2", &[n1.addr()]).start();
    let mut n3 = joining("n3", &[n1.addr()]).start();
    wait_members(&[&n1, &n2, &n3], &["n1", "n2", "n3"]);
    // A write n3 makes just before it leaves goes with it.
    n3.put("last-words", "bye");
    n3.send("leave");
    let said = n3.reply();
    assert!(said.starts_with("Left the cluster"), "{said}");
    let exited = n3.wait_exit();
    assert!(exited.status.success(), "{exited}");
    wait_members(&[&n1, &n2], &["n1", "n2"]);
    wait_same_data(&[&n1, &n2], 1, CONVERGE_TIMEOUT * 3);
}

#[test]
fn a_member_leaves_from_redis() {
    let n1 = joining("n1", &[]).start();
    let mut n2 = joining("n2", &[n1.addr()]).start();
    wait_members(&[&n1, &n2], &["n1", "n2"]);
    let mut con = redis_connection(n2.addr());
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut con)
        .expect("SET");
    let ok: String = redis::cmd("NETDB.LEAVE")
        .query(&mut con)
        .expect("NETDB.LEAVE");
    assert_eq!(ok, "OK");
    // It stops by itself, as on SIGTERM.
    let exited = n2.wait_exit();
    assert!(exited.status.success(), "{exited}");
    wait_members(&[&n1], &["n1"]);
    wait_same_data(&[&n1], 1, CONVERGE_TIMEOUT);
}

#[test]
fn a_member_leaves_from_the_connect_console() {
    let n1 = joining("n1", &[]).start();
    let mut n2 = joining("n2", &[n1.addr()]).start();
    wait_members(&[&n1, &n2], &["n1", "n2"]);
    let out = common::run(
        common::netdb_command().args(["--connect", &n2.addr().to_string()]),
        common::Input::Bytes(b"leave\n".to_vec()),
        Duration::from_secs(20),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(stdout, "Left the cluster. Goodbye!\n");
    assert!(n2.wait_exit().status.success());
    wait_members(&[&n1], &["n1"]);
}

#[test]
fn a_forgotten_member_that_comes_back_with_its_data_is_refused() {
    let dir = temp_dir();
    let n1 = joining("n1", &[]).start();
    let mut n2 = joining("n2", &[n1.addr()]).data_dir(dir.path()).start();
    wait_members(&[&n1, &n2], &["n1", "n2"]);
    let n2_id = cluster_query(n2.addr(), "MYID");
    n2.kill();
    let mut con = redis_connection(n1.addr());
    let _: String = redis::cmd("CLUSTER")
        .arg("FORGET")
        .arg(&n2_id)
        .query(&mut con)
        .expect("CLUSTER FORGET");
    let back = NodeSpec::new("n2")
        .sync_every(SYNC_MS)
        .data_dir(dir.path())
        .start();
    back.wait_log("wipe its data directory", LEARN_TIMEOUT);
    n1.wait_log("refused peer 'n2'", LEARN_TIMEOUT);
    // It takes no writes either: none would reach the others.
    let mut con = redis_connection(back.addr());
    let refused = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query::<()>(&mut con)
        .expect_err("a write on a forgotten node");
    assert!(refused.to_string().contains("forgotten"), "{refused}");
}

#[test]
fn the_cluster_commands_answer_in_redis_formats() {
    let n1 = joining("n1", &[]).start();
    let n2 = joining("n2", &[n1.addr()]).start();
    wait_members(&[&n1, &n2], &["n1", "n2"]);
    let id = cluster_query(n1.addr(), "MYID");
    assert_eq!(id.len(), 40, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    for line in cluster_nodes(n1.addr()) {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 9, "{line}");
        assert_eq!(fields[0].len(), 40, "{line}");
        assert!(fields[1].contains('@'), "{line}");
        assert!(fields[2].ends_with("master"), "{line}");
        assert_eq!(fields[3], "-", "{line}");
        assert_eq!(fields[8], "0-16383", "{line}");
        assert_eq!(fields[0] == id, fields[2].starts_with("myself,"), "{line}");
    }
    let info = cluster_query(n1.addr(), "INFO");
    for want in [
        "cluster_state:ok",
        "cluster_known_nodes:2",
        "cluster_size:2",
    ] {
        assert!(info.lines().any(|l| l == want), "{want} in {info}");
    }
    let mut con = redis_connection(n1.addr());
    let count: usize = redis::cmd("COMMAND")
        .arg("COUNT")
        .query(&mut con)
        .expect("COUNT");
    let names: Vec<redis::Value> = redis::cmd("COMMAND").query(&mut con).expect("COMMAND");
    assert_eq!(count, names.len());
}

#[test]
fn a_node_is_dialed_at_the_address_it_announces() {
    let n1 = joining("n1", &[]).start();
    // n2 announces another spelling of its address: the others dial
    // that one.
    let port = common::free_addrs(1)[0].port();
    let announced = format!("localhost:{port}");
    let n2 = joining("n2", &[n1.addr()])
        .listen(SocketAddr::from(([127, 0, 0, 1], port)))
        .args(&["--announce", &announced])
        .start();
    wait_members(&[&n1, &n2], &["n1", "n2"]);
    let line = line_of(n1.addr(), "n2").expect("n2 in n1's view");
    assert!(line.contains(&format!(" {announced}@{port},n2 ")), "{line}");
    let mut con = redis_connection(n1.addr());
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut con)
        .expect("SET");
    wait_same_data(&[&n1, &n2], 1, CONVERGE_TIMEOUT * 3);
}

/// Sixteen nodes on one machine, with the default failure timeout: every
/// one joins through the first, all come to know the last as up, and a
/// write on it reaches every node (the time the join took is printed;
/// `benches/gossip.rs` measures it).
#[test]
fn sixteen_nodes_converge() {
    let spec = |name: &str, through: &[SocketAddr]| {
        let mut spec = NodeSpec::new(name).sync_every(1000);
        for addr in through {
            spec = spec.args(&["--join", &addr.to_string()]);
        }
        spec
    };
    let first = spec("n1", &[]).start();
    let seed = first.addr();
    let mut nodes = vec![first];
    for i in 2..=15 {
        nodes.push(spec(&format!("n{i}"), &[seed]).start());
    }
    let names: Vec<String> = (1..=15).map(|i| format!("n{i}")).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    wait_members(&nodes.iter().collect::<Vec<_>>(), &name_refs);
    let started = Instant::now();
    nodes.push(spec("n16", &[seed]).start());
    let mut all = name_refs.clone();
    all.push("n16");
    wait_members(&nodes.iter().collect::<Vec<_>>(), &all);
    eprintln!(
        "16 nodes: every member knew n16 as up {:?} after it started",
        started.elapsed()
    );
    let mut con = redis_connection(nodes[15].addr());
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut con)
        .expect("SET");
    wait_same_data(&nodes.iter().collect::<Vec<_>>(), 1, CONVERGE_TIMEOUT * 3);
}

/// The `last_round_bytes` of each of `addr`'s peers in `INFO netdb`: what
/// its last push round to that peer sent.
fn last_round_bytes(addr: SocketAddr) -> Vec<u64> {
    let mut con = redis_connection(addr);
    let info: String = redis::cmd("INFO")
        .arg("netdb")
        .query(&mut con)
        .expect("INFO netdb");
    info.lines()
        .filter(|l| l.starts_with("peer"))
        .filter_map(|l| {
            l.split(',')
                .find_map(|f| f.strip_prefix("last_round_bytes="))
                .map(|n| n.trim().parse().expect("a byte count"))
        })
        .collect()
}

/// A node restarted without its data writes under a new identity every
/// time, and the retired ones stay in every vector; after 100 such
/// restarts (each one's identity having written), an idle round between
/// any two nodes still carries no vector entry: a few dozen bytes, where
/// sending the vectors whole made it over two kilobytes.
#[test]
fn an_idle_round_stays_small_after_a_hundred_restarts_without_data() {
    const RESTARTS: usize = 100;
    /// Bytes an idle push round may send: the empty part, the digest and
    /// the frame, without a vector entry.
    const IDLE_ROUND_BYTES: u64 = 64;
    let mut c = common::cluster(3, SYNC_MS);
    for i in 0..RESTARTS {
        let key = format!("k{i}");
        c.nodes[2].put(&key, "v");
        let n1 = &mut c.nodes[0];
        eventually(CONVERGE_TIMEOUT, "n1 to get the write", || {
            n1.get(&key).as_deref() == Some("v")
        });
        c.nodes[2].restart();
    }
    let n3 = &mut c.nodes[2];
    let all = format!("keys: {RESTARTS} live, 0 tombstones");
    eventually(CONVERGE_TIMEOUT * 3, "the last n3 to get every key", || {
        n3.status()[1] == all
    });
    let addrs = c.addrs();
    eventually_ok(
        CONVERGE_TIMEOUT * 3,
        "idle rounds of a few dozen bytes",
        || {
            let last: Vec<u64> = addrs.iter().flat_map(|&a| last_round_bytes(a)).collect();
            if last.len() == 6 && last.iter().all(|&b| b > 0 && b <= IDLE_ROUND_BYTES) {
                Ok(())
            } else {
                Err(format!("last rounds' bytes {last:?}"))
            }
        },
    );
}

/// With the link between n1 and n3 cut both ways (nftables) and n2
/// reaching both, n1's direct probes of n3 fail, and the indirect ones
/// through n2 succeed: for twice the failure timeout neither sees the
/// other suspect or down, and a write to n1 reaches n3 through n2.
#[test]
fn a_member_cut_off_from_one_other_is_reached_indirectly() {
    let Some(net) = Net::or_skip() else { return };
    let dir = temp_dir();
    let member = |spec: NodeSpec| net.member(spec, dir.path());
    let mut n1 = member(joining("n1", &[])).start();
    let n2 = member(joining("n2", &[n1.addr()])).start();
    let n3 = member(joining("n3", &[n1.addr()])).start();
    wait_members(&[&n1, &n2, &n3], &["n1", "n2", "n3"]);
    net.cut(&n1, &n3);
    // The cut is real: n1's pusher no longer reaches n3.
    let n3_addr = n3.addr();
    eventually(LEARN_TIMEOUT, "n1 to find n3 unreachable", || {
        n1.peer_status(n3_addr).contains("unreachable")
    });
    throughout(Duration::from_millis(FAILURE_MS) * 2, |_| {
        for (watcher, watched) in [(&n1, "n3"), (&n3, "n1")] {
            let line = line_of(watcher.addr(), watched).unwrap_or_default();
            assert!(
                line.contains(" master - ") && !line.contains("fail"),
                "{} sees {watched} as {line:?}",
                watcher.name()
            );
        }
    });
    n1.put("around", "the cut");
    wait_same_data(&[&n1, &n2, &n3], 1, CONVERGE_TIMEOUT * 3);
    net.heal();
}

/// A member that joins after a delete never gets the deleted value, even
/// from a member that was down during the delete and comes back holding
/// it: the tombstone waits for the returning member and for the joiner,
/// and then goes everywhere.
#[test]
fn a_member_that_joins_after_a_delete_never_gets_the_deleted_value() {
    let dir = temp_dir();
    let mut n1 = joining("n1", &[]).start();
    let mut n2 = joining("n2", &[n1.addr()]).data_dir(dir.path()).start();
    wait_members(&[&n1, &n2], &["n1", "n2"]);
    n1.put("gone", "old value");
    n1.put("kept", "yes");
    wait_same_data(&[&n1, &n2], 2, CONVERGE_TIMEOUT * 3);
    let n2_addr = n2.addr();
    n2.kill();
    n1.delete("gone");
    let mut n3 = joining("n3", &[n1.addr()]).start();
    eventually(LEARN_TIMEOUT, "n3 to get the data", || {
        n3.get("kept").as_deref() == Some("yes")
    });
    assert_eq!(n3.get("gone"), None, "n3 got a deleted value");
    // n2 comes back with the value in its data directory.
    let mut n2 = NodeSpec::new("n2")
        .sync_every(SYNC_MS)
        .args(&["--failure-timeout-ms", &FAILURE_MS.to_string()])
        .data_dir(dir.path())
        .listen(n2_addr)
        .start();
    wait_members(&[&n1, &n2, &n3], &["n1", "n2", "n3"]);
    for node in [&mut n1, &mut n2, &mut n3] {
        let name = node.name().to_owned();
        eventually(
            CONVERGE_TIMEOUT * 3,
            format_args!("{name} to drop the tombstone, with one live key"),
            || node.status()[1] == "keys: 1 live, 0 tombstones",
        );
    }
    assert_eq!(n3.get("gone"), None, "the deleted value came back");
}

/// Members started with different `--replicas` would each drop what it
/// believes the other holds: they exchange nothing, and both say why,
/// in their logs and in `status`.
#[test]
fn members_with_different_replicas_exchange_nothing_and_say_why() {
    let mut a = NodeSpec::new("a")
        .sync_every(SYNC_MS)
        .args(&["--replicas", "2"])
        .start();
    let mut b = joining("b", &[a.addr()]).args(&["--replicas", "3"]).start();
    let why = "peer runs with --replicas 2, this node with --replicas 3";
    b.wait_log(why, LEARN_TIMEOUT);
    a.wait_log(
        "peer runs with --replicas 3, this node with --replicas 2",
        LEARN_TIMEOUT,
    );
    eventually(LEARN_TIMEOUT, "b's status names the mismatch", || {
        b.status_now().iter().any(|l| l.contains(why))
    });
    // A write on either side stays there: b's push is refused.
    b.put("only-b", "v");
    a.put("only-a", "v");
    assert_eq!(b.cmd("sync"), "Synced with 0 of 1 peers.");
    assert_eq!(a.get("only-b"), None);
    assert_eq!(b.get("only-a"), None);
}
