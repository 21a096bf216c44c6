//! Proxying (issue 14): a node of a sharded cluster (`--replicas`) answers
//! commands for keys it does not hold by forwarding them to a replica of
//! their slot. Until each node stores only its partitions, every node
//! still holds every key, so a proxied read returns the right data: these
//! tests check the mechanics (routing, order, gathering, counters,
//! failing over, refusals), not where data lives.

mod common;

use common::{eventually, info_field, redis_connection, sharded_cluster, Cluster};
use redis::{Connection, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// `n` nodes with `--replicas replicas`, each knowing every member.
fn sharded(n: usize, replicas: usize) -> Cluster {
    sharded_cluster(n, &["--replicas", &replicas.to_string()])
}

/// The ids of the replicas of `key`'s slot, from `addr`'s
/// `CLUSTER SLOTS`, master first.
fn replicas_of(addr: SocketAddr, key: &str) -> Vec<(String, i64)> {
    let mut con = redis_connection(addr);
    let slot: i64 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(&mut con)
        .expect("KEYSLOT");
    let ranges: Vec<Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query(&mut con)
        .expect("SLOTS");
    for range in ranges {
        let Value::Array(fields) = range else {
            panic!("a range")
        };
        let first: i64 = redis::from_redis_value(fields[0].clone()).expect("first");
        let last: i64 = redis::from_redis_value(fields[1].clone()).expect("last");
        if (first..=last).contains(&slot) {
            return fields[2..]
                .iter()
                .map(|n| match n {
                    Value::Array(f) => (
                        redis::from_redis_value(f[2].clone()).expect("id"),
                        redis::from_redis_value(f[1].clone()).expect("port"),
                    ),
                    other => panic!("{other:?}"),
                })
                .collect();
        }
    }
    panic!("slot {slot} in no range")
}

fn my_id(addr: SocketAddr) -> String {
    redis::cmd("CLUSTER")
        .arg("MYID")
        .query(&mut redis_connection(addr))
        .expect("MYID")
}

/// `count` keys that the node at `addr` does not hold (`held` false) or
/// holds (`held` true).
fn keys_where(addr: SocketAddr, held: bool, count: usize) -> Vec<String> {
    let me = my_id(addr);
    (0..)
        .map(|i| format!("key:{i}"))
        .filter(|k| replicas_of(addr, k).iter().any(|(id, _)| *id == me) == held)
        .take(count)
        .collect()
}

fn proxied(con: &mut Connection) -> u64 {
    info_field(con, "cluster", "netdb_proxied_commands")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_key_this_node_does_not_hold_is_served_through_it_in_order() {
    let c = sharded(3, 1);
    let addr = c.nodes[0].addr();
    let mut con = redis_connection(addr);
    assert_eq!(
        info_field(&mut con, "cluster", "cluster_enabled").as_deref(),
        Some("1")
    );
    let remote = keys_where(addr, false, 4);
    let local = keys_where(addr, true, 4);
    let before = proxied(&mut con);

    let _: () = redis::cmd("SET")
        .arg(&remote[0])
        .arg("v0")
        .query(&mut con)
        .expect("SET");
    let got: Option<String> = redis::cmd("GET")
        .arg(&remote[0])
        .query(&mut con)
        .expect("GET");
    assert_eq!(got.as_deref(), Some("v0"));
    assert!(proxied(&mut con) > before, "the counter rose");

    // A pipeline of local and forwarded commands keeps its order.
    let mut pipe = redis::pipe();
    for (i, (l, r)) in local.iter().zip(&remote).enumerate() {
        pipe.cmd("SET").arg(l).arg(i).cmd("SET").arg(r).arg(i * 10);
        pipe.cmd("INCR").arg(r).cmd("GET").arg(l).cmd("INCR").arg(l);
    }
    let replies: Vec<Value> = pipe.query(&mut con).expect("pipeline");
    let ints: Vec<String> = replies
        .iter()
        .map(|v| match v {
            Value::Okay => "OK".into(),
            Value::Int(n) => n.to_string(),
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            other => format!("{other:?}"),
        })
        .collect();
    let want: Vec<String> = (0..4)
        .flat_map(|i| {
            [
                "OK".into(),
                "OK".into(),
                (i * 10 + 1).to_string(),
                i.to_string(),
                (i + 1).to_string(),
            ]
        })
        .collect();
    assert_eq!(ints, want);

    // MGET across slots, gathered in request order; DEL and EXISTS summed.
    let keys = [&remote[1], &local[1], "missing", &remote[2], &local[2]];
    let got: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query(&mut con).expect("MGET");
    assert_eq!(
        got,
        vec![
            Some("11".into()),
            Some("2".into()),
            None,
            Some("21".into()),
            Some("3".into())
        ]
    );
    let _: () = redis::cmd("MSET")
        .arg(&remote[3])
        .arg("a")
        .arg(&local[3])
        .arg("b")
        .query(&mut con)
        .expect("MSET");
    let n: i64 = redis::cmd("EXISTS")
        .arg(&keys)
        .query(&mut con)
        .expect("EXISTS");
    assert_eq!(n, 4);
    let n: i64 = redis::cmd("DEL")
        .arg(&remote[3])
        .arg(&local[3])
        .arg(&remote[1])
        .query(&mut con)
        .expect("DEL");
    assert_eq!(n, 3);

    // Database and protocol follow the client's.
    let _: () = redis::cmd("SELECT").arg(2).query(&mut con).expect("SELECT");
    let got: Option<String> = redis::cmd("GET")
        .arg(&remote[2])
        .query(&mut con)
        .expect("GET");
    assert_eq!(got, None, "database 2 has no such key");
    let _: () = redis::cmd("SET")
        .arg(&remote[2])
        .arg("db2")
        .query(&mut con)
        .expect("SET");
    let _: () = redis::cmd("SELECT").arg(0).query(&mut con).expect("SELECT");
    let got: Option<String> = redis::cmd("GET")
        .arg(&remote[2])
        .query(&mut con)
        .expect("GET");
    assert_eq!(got.as_deref(), Some("21"));
}

#[test]
fn commands_whose_keys_are_apart_are_crossslot_and_transactions_go_whole() {
    let c = sharded(3, 1);
    let addr = c.nodes[0].addr();
    let mut con = redis_connection(addr);
    let remote = keys_where(addr, false, 1);
    let local = keys_where(addr, true, 1);
    let err = redis::cmd("MSETNX")
        .arg(&remote[0])
        .arg(1)
        .arg(&local[0])
        .arg(2)
        .query::<i64>(&mut con)
        .expect_err("refused");
    assert_eq!(err.code(), Some("CROSSSLOT"), "{err}");

    // A transaction on keys of one other node runs there, whole.
    let tagged = |t: &str| format!("{{{}}}{t}", remote[0]);
    let (a, b) = (tagged("a"), tagged("b"));
    let (x, y): (i64, i64) = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg(&a)
        .cmd("INCRBY")
        .arg(&b)
        .arg(5)
        .query(&mut con)
        .expect("a forwarded transaction");
    assert_eq!((x, y), (1, 5));

    // Keys here and elsewhere in one transaction: CROSSSLOT, then
    // EXECABORT.
    let err = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg(&a)
        .cmd("INCR")
        .arg(&local[0])
        .query::<(i64, i64)>(&mut con)
        .expect_err("aborted");
    assert!(
        err.to_string().contains("CROSSSLOT") || err.code() == Some("EXECABORT"),
        "{err}"
    );
    let got: i64 = redis::cmd("GET").arg(&a).query(&mut con).expect("GET");
    assert_eq!(got, 1, "the aborted transaction ran nothing");
}

#[test]
fn a_dead_replica_is_passed_over_and_no_replica_is_a_clean_error() {
    let mut c = sharded(3, 2);
    let addr = c.nodes[0].addr();
    let remote = keys_where(addr, false, 1);
    let key = &remote[0];
    let mut con = redis_connection(addr);
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg("v")
        .query(&mut con)
        .expect("SET");
    // Both other nodes are the key's replicas: stop the first tried.
    let replicas = replicas_of(addr, key);
    assert_eq!(replicas.len(), 2);
    let port = |i: usize| u16::try_from(replicas[i].1).expect("a port");
    let at = |port: u16| {
        c.nodes
            .iter()
            .position(|n| n.addr().port() == port)
            .expect("a node")
    };
    let first = at(port(0));
    let second = at(port(1));
    eventually(WAIT, "the second replica to hold the key", || {
        let mut other = redis_connection(c.nodes[second].addr());
        redis::cmd("GET")
            .arg(key)
            .query::<Option<String>>(&mut other)
            .ok()
            .flatten()
            .is_some()
    });
    c.nodes[first].stop();
    let got: Option<String> = redis::cmd("GET").arg(key).query(&mut con).expect("GET");
    assert_eq!(got.as_deref(), Some("v"));
    c.nodes[second].stop();
    let started = Instant::now();
    let err = redis::cmd("GET")
        .arg(key)
        .query::<Option<String>>(&mut con)
        .expect_err("no replica");
    assert_eq!(err.code(), Some("CLUSTERDOWN"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // The connection still serves what this node holds.
    let local = keys_where(addr, true, 1);
    let _: () = redis::cmd("SET")
        .arg(&local[0])
        .arg("x")
        .query(&mut con)
        .expect("SET");
}

#[test]
fn cluster_clients_route_through_the_layout() {
    let c = sharded(3, 1);
    let addr = c.nodes[0].addr();
    let mut con = redis_connection(addr);
    let ranges: Vec<Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query(&mut con)
        .expect("SLOTS");
    assert!(ranges.len() > 1, "the layout's ranges");
    let total_proxied = || -> u64 {
        c.nodes
            .iter()
            .map(|n| proxied(&mut redis_connection(n.addr())))
            .sum()
    };
    let before = total_proxied();
    let client = redis::cluster::ClusterClient::new(vec![format!("redis://{addr}/")])
        .expect("a cluster client");
    let mut cluster_con = client.get_connection().expect("a cluster connection");
    for i in 0..30 {
        let _: () = redis::cmd("SET")
            .arg(format!("ck{i}"))
            .arg(i)
            .query(&mut cluster_con)
            .expect("SET");
    }
    for i in 0..30 {
        let got: i64 = redis::cmd("GET")
            .arg(format!("ck{i}"))
            .query(&mut cluster_con)
            .expect("GET");
        assert_eq!(got, i);
    }
    assert_eq!(
        total_proxied(),
        before,
        "the cluster client sent every command straight to a replica"
    );
    // FLUSHALL through one node empties every node.
    let _: () = redis::cmd("FLUSHALL").query(&mut con).expect("FLUSHALL");
    for node in &c.nodes {
        let mut con = redis_connection(node.addr());
        eventually(WAIT, format!("{} to be empty", node.name()), || {
            redis::cmd("DBSIZE").query::<i64>(&mut con).expect("DBSIZE") == 0
        });
    }
    if common::missing_tool("redis-cli") {
        return;
    }
    let key = &keys_where(addr, false, 1)[0];
    let out = common::redis_cli(addr, &["-c", "SET", key, "7"]);
    assert_eq!(out.trim(), "OK");
    let out = common::redis_cli(addr, &["GET", key]);
    assert_eq!(out.trim(), "7");
}

#[test]
fn the_console_serves_every_key_and_lists_the_clusters() {
    let mut c = sharded(3, 1);
    let addr = c.nodes[0].addr();
    let remote = keys_where(addr, false, 2);
    let node = &mut c.nodes[0];
    node.put(&remote[0], "far");
    assert_eq!(node.get(&remote[0]).as_deref(), Some("far"));
    let mut con = redis_connection(addr);
    assert!(proxied(&mut con) >= 2);
    let keys = node.cmd_lines("keys", 1);
    assert_eq!(keys, vec![remote[0].clone()]);
}

#[test]
fn connect_s_keys_lists_every_member_s_keys() {
    let c = sharded(3, 1);
    let addr = c.nodes[0].addr();
    let mut con = redis_connection(addr);
    let remote = keys_where(addr, false, 2);
    let local = keys_where(addr, true, 1);
    for key in remote.iter().chain(&local) {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg("v")
            .query(&mut con)
            .expect("SET");
    }
    let mut want: Vec<String> = remote.iter().chain(&local).cloned().collect();
    want.sort();
    let got: Vec<String> = redis::cmd("NETDB.KEYS")
        .arg("*")
        .query(&mut con)
        .expect("NETDB.KEYS");
    assert_eq!(got, want);
    let out = common::run(
        common::netdb_command().args(["--connect", &addr.to_string()]),
        common::Input::Bytes(b"keys\n".to_vec()),
        Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.lines().collect::<Vec<_>>(), want);
}

/// Many clients at once: the forwarding threads take their jobs
/// together, and each client still gets its own replies, in its order.
#[test]
fn concurrent_clients_each_get_their_own_replies_in_order() {
    let c = sharded(3, 1);
    let addr = c.nodes[0].addr();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::Builder::new()
                .name(format!("client-{t}"))
                .spawn(move || {
                    let mut con = redis_connection(addr);
                    for round in 0..5 {
                        let mut pipe = redis::pipe();
                        for i in 0..50 {
                            let key = format!("c{t}:{i}");
                            pipe.cmd("SET").arg(&key).arg(round * 1000 + i);
                            pipe.cmd("INCR").arg(&key);
                        }
                        let got: Vec<Value> = pipe.query(&mut con).expect("pipeline");
                        for (i, pair) in got.chunks(2).enumerate() {
                            let want = i64::try_from(round * 1000 + i + 1).expect("small");
                            assert_eq!(pair[0], Value::Okay, "client {t}");
                            assert_eq!(pair[1], Value::Int(want), "client {t} key {i}");
                        }
                    }
                })
                .expect("a client thread")
        })
        .collect();
    for thread in threads {
        thread.join().expect("a client's checks");
    }
    assert!(proxied(&mut redis_connection(addr)) > 0);
}
