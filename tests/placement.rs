//! Key slots against the real binary: `CLUSTER KEYSLOT` answers as Redis
//! Cluster does (hash tags included), and `CLUSTER COUNTKEYSINSLOT` and
//! `CLUSTER GETKEYSINSLOT` see this node's keys of the selected database,
//! replicated ones included.

mod common;

use common::{cluster, eventually, redis_connection, solo, FAST_SYNC_MS};
use redis::{Connection, RedisResult};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// `CLUSTER <args...>`.
fn cluster_cmd<T: redis::FromRedisValue>(con: &mut Connection, args: &[&str]) -> RedisResult<T> {
    redis::cmd("CLUSTER").arg(args).query(con)
}

fn keyslot(con: &mut Connection, key: &str) -> i64 {
    cluster_cmd(con, &["KEYSLOT", key]).expect("CLUSTER KEYSLOT")
}

/// The error text of a refused `CLUSTER` command.
fn refusal(con: &mut Connection, args: &[&str]) -> String {
    match cluster_cmd::<redis::Value>(con, args) {
        Ok(v) => panic!("CLUSTER {args:?} answered {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn keyslot_hashes_the_key_or_its_tag_as_redis_cluster() {
    let node = solo(&[]);
    let mut con = redis_connection(node.addr());
    // As Redis 7.0 answers.
    for (key, slot) in [
        ("foo", 12182),
        ("bar", 5061),
        ("{user1000}.following", 3443),
        ("{user1000}.followers", 3443),
        ("foo{}{bar}", 8363),
        ("foo{{bar}}zap", 4015),
        ("foo{bar}{zap}", 5061),
        ("", 0),
    ] {
        assert_eq!(keyslot(&mut con, key), slot, "{key:?}");
    }
    let err = refusal(&mut con, &["KEYSLOT"]);
    assert!(err.contains("wrong number of arguments"), "{err}");
}

#[test]
fn keys_in_a_slot_are_the_selected_databases() {
    let node = solo(&[]);
    let mut con = redis_connection(node.addr());
    let slot = keyslot(&mut con, "user7").to_string();
    redis::cmd("MSET")
        .arg(&[
            "{user7}.b",
            "1",
            "{user7}.a",
            "2",
            "user7",
            "3",
            "other",
            "4",
        ])
        .query::<()>(&mut con)
        .expect("MSET");
    let count: i64 = cluster_cmd(&mut con, &["COUNTKEYSINSLOT", &slot]).expect("COUNT");
    assert_eq!(count, 3);
    let keys: Vec<String> = cluster_cmd(&mut con, &["GETKEYSINSLOT", &slot, "2"]).expect("GET");
    assert_eq!(keys, ["user7", "{user7}.a"], "sorted, at most count");
    let keys: Vec<String> = cluster_cmd(&mut con, &["GETKEYSINSLOT", &slot, "100"]).expect("GET");
    assert_eq!(keys, ["user7", "{user7}.a", "{user7}.b"]);

    redis::cmd("SELECT")
        .arg(3)
        .query::<()>(&mut con)
        .expect("SELECT");
    let count: i64 = cluster_cmd(&mut con, &["COUNTKEYSINSLOT", &slot]).expect("COUNT");
    assert_eq!(count, 0, "another database's keys");

    for (args, want) in [
        (&["COUNTKEYSINSLOT", "16384"][..], "Invalid slot"),
        (&["COUNTKEYSINSLOT", "-1"], "Invalid slot"),
        (&["COUNTKEYSINSLOT", "x"], "not an integer"),
        (
            &["GETKEYSINSLOT", "0", "-1"],
            "Invalid slot or number of keys",
        ),
        (
            &["GETKEYSINSLOT", "16384", "1"],
            "Invalid slot or number of keys",
        ),
        (&["GETKEYSINSLOT", "0"], "wrong number of arguments"),
    ] {
        let err = refusal(&mut con, args);
        assert!(err.contains(want), "CLUSTER {args:?}: {err}");
    }
}

#[test]
fn a_replicated_key_counts_in_its_slot() {
    let nodes = cluster(2, FAST_SYNC_MS);
    let addrs = nodes.addrs();
    let mut writer = redis_connection(addrs[0]);
    let mut reader = redis_connection(addrs[1]);
    let slot = keyslot(&mut reader, "{cart}").to_string();
    redis::cmd("MSET")
        .arg(&["{cart}:1", "a", "{cart}:2", "b"])
        .query::<()>(&mut writer)
        .expect("MSET");
    eventually(WAIT, "both keys in the slot on the other node", || {
        cluster_cmd::<i64>(&mut reader, &["COUNTKEYSINSLOT", &slot]).expect("COUNT") == 2
    });
    let keys: Vec<String> =
        cluster_cmd(&mut reader, &["GETKEYSINSLOT", &slot, "10"]).expect("GETKEYSINSLOT");
    assert_eq!(keys, ["{cart}:1", "{cart}:2"]);
}

/// The node entries of `addr`'s `CLUSTER SLOTS`, as (port, id), for its
/// one range, which must cover every slot.
fn slots_nodes(addr: std::net::SocketAddr) -> Vec<(i64, String)> {
    let mut con = redis_connection(addr);
    let ranges: Vec<redis::Value> = cluster_cmd(&mut con, &["SLOTS"]).expect("CLUSTER SLOTS");
    assert_eq!(ranges.len(), 1, "{ranges:?}");
    let redis::Value::Array(range) = &ranges[0] else {
        panic!("{ranges:?}")
    };
    assert_eq!(range[0], redis::Value::Int(0));
    assert_eq!(range[1], redis::Value::Int(16383));
    range[2..]
        .iter()
        .map(|node| {
            let (port, id): (i64, String) = match node {
                redis::Value::Array(fields) => (
                    redis::from_redis_value(fields[1].clone()).expect("a port"),
                    redis::from_redis_value(fields[2].clone()).expect("an id"),
                ),
                other => panic!("a node entry {other:?}"),
            };
            (port, id)
        })
        .collect()
}

/// `CLUSTER SLOTS` shows the node asked as the master of every slot and
/// every other member as a replica (every node holds all the data), so
/// the `redis` crate's cluster client and `redis-cli -c` work against
/// any node, and keys written through them are on every node.
#[test]
fn cluster_clients_connect_and_route_through_cluster_slots() {
    let c = cluster(3, FAST_SYNC_MS);
    let addr = c.nodes[0].addr();
    let mut con = redis_connection(addr);
    let my_id: String = cluster_cmd(&mut con, &["MYID"]).expect("CLUSTER MYID");
    let mut listed = Vec::new();
    eventually(WAIT, "n1 to list every member in CLUSTER SLOTS", || {
        listed = slots_nodes(addr);
        listed.len() == 3
    });
    assert_eq!(listed[0], (i64::from(addr.port()), my_id));
    let shards: redis::Value = cluster_cmd(&mut con, &["SHARDS"]).expect("CLUSTER SHARDS");
    assert!(
        matches!(&shards, redis::Value::Array(s) if s.len() == 1),
        "{shards:?}"
    );
    let _: () = redis::cmd("READONLY").query(&mut con).expect("READONLY");

    let client = redis::cluster::ClusterClient::new(vec![format!("redis://{addr}/")])
        .expect("a cluster client");
    let mut cluster_con = client.get_connection().expect("a cluster connection");
    for i in 0..30 {
        let _: () = redis::cmd("SET")
            .arg(format!("key{i}"))
            .arg(i)
            .query(&mut cluster_con)
            .expect("SET through the cluster client");
    }
    let got: Vec<i64> = redis::cmd("MGET")
        .arg("{t}a")
        .arg("{t}b")
        .query(&mut cluster_con)
        .map(|v: Vec<Option<i64>>| v.into_iter().map(|x| x.unwrap_or(-1)).collect())
        .expect("MGET of one slot");
    assert_eq!(got, vec![-1, -1]);
    for node in &c.nodes {
        let mut con = redis_connection(node.addr());
        eventually(WAIT, format!("{} to hold every key", node.name()), || {
            redis::cmd("DBSIZE").query::<i64>(&mut con).expect("DBSIZE") == 30
        });
    }
    if common::missing_tool("redis-cli") {
        return;
    }
    let out = common::redis_cli(addr, &["-c", "GET", "key7"]);
    assert_eq!(out.trim(), "7");
}
