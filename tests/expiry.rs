//! Expiry across a cluster, against the real binary: an expiry set on one
//! node holds on every node (the same absolute time), the key ends on all
//! of them, its memory is reclaimed without its being read, an expired
//! key never comes back from a node that was down with an older copy, and
//! an expiry survives `kill -9`.

mod common;

use common::{
    cluster_with, durable_cluster, eventually, info_field, redis_connection, temp_dir, throughout,
    NodeSpec, FAST_SYNC_MS,
};
use redis::Commands;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn pexpiretime(con: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME")
        .arg(key)
        .query(con)
        .expect("PEXPIRETIME")
}

fn expired_keys(con: &mut redis::Connection) -> u64 {
    info_field(con, "stats", "expired_keys")
        .expect("INFO stats has expired_keys")
        .parse()
        .expect("a number")
}

#[test]
fn an_expiry_set_on_one_node_holds_everywhere_and_ends_everywhere() {
    let cluster = cluster_with(3, FAST_SYNC_MS, &[], &["--no-cli"]);
    let mut cons: Vec<redis::Connection> = cluster
        .nodes
        .iter()
        .map(|n| redis_connection(n.addr()))
        .collect();
    // Long enough to be seen on every node first, on a loaded machine.
    let () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("PX")
        .arg(4_000)
        .query(&mut cons[0])
        .expect("SET PX");
    let mut batch = redis::pipe();
    for i in 0..500 {
        batch
            .cmd("SET")
            .arg(format!("bulk{i}"))
            .arg("v")
            .arg("PX")
            .arg(4_000);
    }
    let () = batch.query(&mut cons[1]).expect("SETs");
    let at = pexpiretime(&mut cons[0], "k");
    assert!(at > 0, "k expires: {at}");
    for (i, con) in cons.iter_mut().enumerate() {
        eventually(
            WAIT,
            format!("n{} to hold k with its expiry", i + 1),
            || pexpiretime(con, "k") == at,
        );
        // Every key, each with its expiry, counted as such.
        eventually(
            WAIT,
            format!("n{} to count 501 keys that expire", i + 1),
            || {
                info_field(con, "keyspace", "db0")
                    .is_some_and(|db0| db0.starts_with("keys=501,expires=501,"))
            },
        );
    }
    // Every node ends the key, and turns every expired value into a
    // tombstone without a read: nothing is left in the keyspace.
    for (i, con) in cons.iter_mut().enumerate() {
        eventually(WAIT, format!("k to expire on n{}", i + 1), || {
            con.get::<_, Option<String>>("k").expect("GET").is_none()
        });
    }
    for (i, con) in cons.iter_mut().enumerate() {
        eventually(WAIT, format!("n{} to expire all 501 keys", i + 1), || {
            expired_keys(con) >= 501 && info_field(con, "keyspace", "db0").is_none()
        });
        let ttl: i64 = con.ttl("k").expect("TTL");
        assert_eq!(ttl, -2);
    }
    // And it stays gone.
    throughout(Duration::from_millis(500), |_| {
        for con in cons.iter_mut() {
            assert_eq!(con.get::<_, Option<String>>("k").expect("GET"), None);
        }
    });
}

#[test]
fn an_expired_key_does_not_come_back_from_a_node_that_was_down() {
    let mut cluster = durable_cluster(3, FAST_SYNC_MS, &["--no-cli"]);
    let nodes = &mut cluster.nodes;
    let mut n1 = redis_connection(nodes[0].addr());
    let () = n1.set("k", "old").expect("SET");
    for node in nodes.iter_mut() {
        let mut con = redis_connection(node.addr());
        eventually(WAIT, format!("{} to have k", node.name()), || {
            con.get::<_, Option<String>>("k").expect("GET") == Some("old".into())
        });
    }
    // n3 goes down holding k with no expiry; k then expires on n1 and n2.
    nodes[2].kill();
    let set: i64 = n1.pexpire("k", 300).expect("PEXPIRE");
    assert_eq!(set, 1);
    for node in nodes.iter().take(2) {
        let mut con = redis_connection(node.addr());
        eventually(WAIT, format!("{} to expire k", node.name()), || {
            expired_keys(&mut con) >= 1
        });
    }
    // Back up, n3 learns the expiry (its copy is older) and drops k; no
    // node ever shows it again.
    nodes[2].restart();
    let mut n3 = redis_connection(nodes[2].addr());
    eventually(WAIT, "n3 to drop k", || {
        n3.get::<_, Option<String>>("k").expect("GET").is_none()
    });
    let mut cons: Vec<redis::Connection> =
        nodes.iter().map(|n| redis_connection(n.addr())).collect();
    throughout(Duration::from_secs(1), |_| {
        for con in cons.iter_mut() {
            assert_eq!(con.get::<_, Option<String>>("k").expect("GET"), None);
        }
    });
}

#[test]
fn an_expiry_survives_kill_9() {
    let dir = temp_dir();
    let mut node = NodeSpec::new("n1")
        .data_dir(&dir.path().join("data"))
        .args(&["--no-cli"])
        .start();
    let mut con = redis_connection(node.addr());
    let () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("EX")
        .arg(1_000)
        .query(&mut con)
        .expect("SET EX");
    let () = redis::cmd("SET")
        .arg("brief")
        .arg("v")
        .arg("PX")
        .arg(100)
        .query(&mut con)
        .expect("SET PX");
    let () = con.set("plain", "v").expect("SET");
    let at = pexpiretime(&mut con, "k");
    eventually(WAIT, "brief to expire", || expired_keys(&mut con) == 1);
    node.kill();
    node.restart();
    let mut con = redis_connection(node.addr());
    assert_eq!(pexpiretime(&mut con, "k"), at);
    assert_eq!(con.get::<_, Option<String>>("brief").expect("GET"), None);
    assert_eq!(con.ttl::<_, i64>("plain").expect("TTL"), -1);
}
