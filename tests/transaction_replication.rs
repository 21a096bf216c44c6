//! A transaction's writes reach a peer together, against the real binary:
//! a `MULTI`/`EXEC` (and an `MSET`) whose writes take several parts of a
//! transfer is seen on the peer wholly or not at all, at every instant.

mod common;

use common::{cluster_with, eventually, redis_connection, FAST_SYNC_MS};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

/// Keys of one transaction, and a value each: 120 of 20 KB, about 2.4 MB,
/// over two of the 1 MiB parts a transfer is cut into.
const KEYS: usize = 120;

fn keys(prefix: &str) -> Vec<String> {
    (0..KEYS).map(|i| format!("{prefix}:{i}")).collect()
}

/// Watches `keys` on `con` until all are there, checking at every look
/// that either none or all of them are.
fn all_or_nothing(con: &mut redis::Connection, keys: &[String]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(keys)
            .query(con)
            .expect("MGET on the peer");
        let present = values.iter().filter(|v| v.is_some()).count();
        assert!(
            present == 0 || present == keys.len(),
            "the peer shows {present} of the transaction's {} writes",
            keys.len()
        );
        if present == keys.len() {
            return;
        }
        assert!(Instant::now() < deadline, "the writes never arrived");
    }
}

#[test]
fn a_transaction_and_an_mset_are_seen_on_a_peer_wholly_or_not_at_all() {
    let cluster = cluster_with(2, FAST_SYNC_MS, &[], &["--no-cli"]);
    let mut a = redis_connection(cluster.nodes[0].addr());
    let mut b = redis_connection(cluster.nodes[1].addr());
    let value = vec![b'x'; 20_000];
    // Both nodes up and talking first.
    let () = redis::cmd("SET")
        .arg("ready")
        .arg(1)
        .query(&mut a)
        .expect("SET");
    eventually(WAIT, "n2 to have the first write", || {
        redis::cmd("EXISTS")
            .arg("ready")
            .query::<i64>(&mut b)
            .expect("EXISTS")
            == 1
    });

    let tx = keys("tx");
    let mut pipe = redis::pipe();
    pipe.atomic();
    for k in &tx {
        pipe.cmd("SET").arg(k).arg(&value).ignore();
    }
    let () = pipe.query(&mut a).expect("MULTI/EXEC");
    all_or_nothing(&mut b, &tx);

    let mset = keys("mset");
    let mut cmd = redis::cmd("MSET");
    for k in &mset {
        cmd.arg(k).arg(&value);
    }
    let () = cmd.query(&mut a).expect("MSET");
    all_or_nothing(&mut b, &mset);
}
