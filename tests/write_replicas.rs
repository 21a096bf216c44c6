//! `--write-replicas W` (issue 14): a Redis client's write is
//! acknowledged only once W replicas of its key hold it, this node
//! counting as one; one that cannot reach W in `--write-timeout-ms` is
//! answered with a `NOREPLICAS` error and stays on the replicas it
//! reached.

mod common;

use common::{redis_connection, sharded_cluster, Cluster, Node};
use std::collections::BTreeSet;

/// Three nodes, each key on two of them, a write acknowledged once both
/// have it (or refused after `timeout_ms`).
fn cluster(timeout_ms: u64) -> Cluster {
    let timeout = timeout_ms.to_string();
    sharded_cluster(
        3,
        &[
            "--replicas",
            "2",
            "--write-replicas",
            "2",
            "--write-timeout-ms",
            &timeout,
        ],
    )
}

/// The nodes whose own data holds `key` (`KEYS` answers for the node's
/// own data on a sharded cluster, as in Redis Cluster).
fn holders(nodes: &[Node], key: &str) -> BTreeSet<String> {
    nodes
        .iter()
        .filter(|n| {
            let found: Vec<String> = redis::cmd("KEYS")
                .arg(key)
                .query(&mut redis_connection(n.addr()))
                .expect("KEYS");
            !found.is_empty()
        })
        .map(|n| n.name().to_owned())
        .collect()
}

/// Every acknowledged write is already on both replicas of its key when
/// the client reads the acknowledgement, whichever node took it.
#[test]
fn an_acknowledged_write_is_on_w_replicas_already() {
    let c = cluster(5_000);
    let mut cons: Vec<_> = c.nodes.iter().map(|n| redis_connection(n.addr())).collect();
    for i in 0..60 {
        let key = format!("w:{i}");
        let through = i % cons.len();
        let ok: String = redis::cmd("SET")
            .arg(&key)
            .arg(i)
            .query(&mut cons[through])
            .expect("SET");
        assert_eq!(ok, "OK");
        let on = holders(&c.nodes, &key);
        assert_eq!(
            on.len(),
            2,
            "{key}, written through n{}, is on {on:?}",
            through + 1
        );
    }
    // A transaction's writes too.
    let mut con = redis_connection(c.nodes[0].addr());
    let (a, b): (String, i64) = redis::pipe()
        .atomic()
        .set("{t}a", "1")
        .incr("{t}b", 1)
        .query(&mut con)
        .expect("MULTI/EXEC");
    assert_eq!((a.as_str(), b), ("OK", 1));
    assert_eq!(holders(&c.nodes, "{t}b").len(), 2);
}

/// With one node killed, a write to a key it is a replica of is refused
/// with `NOREPLICAS` once the timeout passes, yet stays on the live
/// replica (and is read back); a write to a key whose replicas are both
/// up is acknowledged as before.
#[test]
fn a_write_short_of_w_replicas_is_a_noreplicas_error_and_stays() {
    let mut c = cluster(400);
    let mut con = redis_connection(c.nodes[0].addr());
    let keys: Vec<String> = (0..30).map(|i| format!("k:{i}")).collect();
    for k in &keys {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg("before")
            .query(&mut con)
            .expect("SET");
    }
    let with_n3: Vec<&String> = keys
        .iter()
        .filter(|k| holders(&c.nodes, k).contains("n3"))
        .collect();
    let without_n3: Vec<&String> = keys
        .iter()
        .filter(|k| !holders(&c.nodes, k).contains("n3"))
        .collect();
    assert!(
        !with_n3.is_empty() && !without_n3.is_empty(),
        "30 keys all on one side"
    );
    c.nodes[2].kill();

    for k in with_n3.iter().take(3) {
        let refused = redis::cmd("SET")
            .arg(*k)
            .arg("after")
            .query::<String>(&mut con)
            .expect_err("n3 is down");
        assert_eq!(refused.code(), Some("NOREPLICAS"), "{refused}");
        assert!(
            refused.to_string().contains("reached 1 of the 2 replicas"),
            "{refused}"
        );
        let value: String = redis::cmd("GET").arg(*k).query(&mut con).expect("GET");
        assert_eq!(
            value, "after",
            "{k}: the refused write stays on the live replica"
        );
    }
    for k in without_n3.iter().take(3) {
        let ok: String = redis::cmd("SET")
            .arg(*k)
            .arg("after")
            .query(&mut con)
            .expect("both replicas are up");
        assert_eq!(ok, "OK");
    }
    // The connection still works, in order, after refusals.
    let pong: String = redis::cmd("PING").query(&mut con).expect("PING");
    assert_eq!(pong, "PONG");
}
