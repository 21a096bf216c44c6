//! The digest that proves replicas equal, against real nodes: `DEBUG
//! DIGEST` and the console's `digest:` line agree and are equal on nodes
//! that converged; and a node that silently lost a merged entry (so that
//! the version vectors say the nodes are even while the data is not) is
//! found by the digest comparison of the periodic rounds, logged, counted
//! and repaired.
//!
//! The repair test drives the store thread's fail point
//! `store::drop_merged` through `FAILPOINTS`: it runs with `cargo test
//! --features failpoints` and is ignored without it.

mod common;

use common::{
    cluster, cluster_with, debug_digest, eventually, info_field, redis_connection, NodeSpec,
    CONVERGE_TIMEOUT, FAST_SYNC_MS,
};
use redis::Commands;
use std::time::Duration;

/// How long a repair may take: a round to find the divergence, one to
/// repair it, one to see it repaired, on a busy machine.
const REPAIR_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn converged_nodes_report_equal_digests_by_redis_and_console() {
    let mut c = cluster(2, FAST_SYNC_MS);
    let mut a = redis_connection(c[0].addr());
    let mut b = redis_connection(c[1].addr());
    assert_eq!(debug_digest(&mut a), "0".repeat(40), "empty: all zeros");
    assert_eq!(c[0].digest(), "0".repeat(40));

    let () = a.set("from-a", "1").expect("set");
    let () = b.set("from-b", "2").expect("set");
    let () = a.set("both", "a's").expect("set");
    let () = b.set("both", "b's").expect("set");
    let () = b.set("gone", "x").expect("set");
    let _: i64 = b.del("gone").expect("del");

    eventually(CONVERGE_TIMEOUT, "equal digests on n1 and n2", || {
        let (da, db) = (debug_digest(&mut a), debug_digest(&mut b));
        da == db && da.ends_with("00000003")
    });
    let digest = debug_digest(&mut a);
    assert_ne!(digest, "0".repeat(40));
    // The console and INFO show the same digest.
    assert_eq!(c[0].digest(), digest);
    assert_eq!(c[1].digest(), digest);
    assert_eq!(
        info_field(&mut b, "netdb", "netdb_digest").as_deref(),
        Some(digest.as_str())
    );
    // Honest convergence is no mismatch.
    for con in [&mut a, &mut b] {
        assert_eq!(
            info_field(con, "netdb", "netdb_digest_mismatches").as_deref(),
            Some("0")
        );
        assert_eq!(
            info_field(con, "netdb", "netdb_repairs").as_deref(),
            Some("0")
        );
    }
    // Each key's own digest: zeros for a key without a value.
    let each: Vec<String> = redis::cmd("DEBUG")
        .arg("DIGEST-VALUE")
        .arg("both")
        .arg("gone")
        .query(&mut a)
        .expect("DEBUG DIGEST-VALUE");
    assert_eq!(each.len(), 2);
    assert_ne!(each[0], "0".repeat(40));
    assert_eq!(each[1], "0".repeat(40));
}

#[test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs --features failpoints")]
fn a_silently_lost_merge_is_found_logged_counted_and_repaired() {
    // n2 drops the next entry it merges, yet joins the vector of the
    // transfer that brought it: the vectors say the nodes are even, the
    // data is not.
    let mut c = common::Cluster::start(2, &[], |i, spec: NodeSpec, _| {
        let spec = spec.sync_every(FAST_SYNC_MS);
        if i == 1 {
            spec.env("FAILPOINTS", "store::drop_merged=1*return")
        } else {
            spec
        }
    });
    let mut a = redis_connection(c[0].addr());
    let mut b = redis_connection(c[1].addr());
    let () = a.set("lost", "once").expect("set");

    let on_n1 = c[0].wait_log("DIGEST MISMATCH with peer n2", REPAIR_TIMEOUT);
    assert!(on_n1.contains(" ERROR [n1] "), "{on_n1}");
    let on_n2 = c[1].wait_log("DIGEST MISMATCH with peer n1", REPAIR_TIMEOUT);
    assert!(on_n2.contains(" ERROR [n2] "), "{on_n2}");
    // The line names both digests: n1's is the one with the key.
    eventually(REPAIR_TIMEOUT, "the digests to be equal again", || {
        debug_digest(&mut a) == debug_digest(&mut b)
    });
    let digest = debug_digest(&mut a);
    assert!(on_n1.contains(&format!("digest here {digest}")), "{on_n1}");
    assert!(on_n2.contains(&format!("there {digest}")), "{on_n2}");
    assert_eq!(
        b.get::<_, Option<String>>("lost").expect("get"),
        Some("once".into())
    );
    let count = |con: &mut redis::Connection, field: &str| -> u64 {
        info_field(con, "netdb", field)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("INFO netdb has no number {field}"))
    };
    for (name, con) in [("n1", &mut a), ("n2", &mut b)] {
        assert!(count(con, "netdb_digest_mismatches") >= 1, "{name}");
        eventually(REPAIR_TIMEOUT, format!("{name} to count a repair"), || {
            count(con, "netdb_repairs") >= 1
        });
    }
    assert!(
        c[0].count_stderr("full exchange with peer n2 done") >= 1,
        "n1 logs its repair"
    );

    // Repaired for good: rounds made now find nothing more.
    let before = (
        count(&mut a, "netdb_digest_mismatches"),
        count(&mut b, "netdb_digest_mismatches"),
    );
    for node in [0, 1, 0, 1] {
        assert_eq!(c[node].cmd("sync"), "Synced with 1 of 1 peers.");
    }
    assert_eq!(
        (
            count(&mut a, "netdb_digest_mismatches"),
            count(&mut b, "netdb_digest_mismatches"),
        ),
        before
    );
    assert_eq!(c[0].digest(), c[1].digest());
    assert_eq!(c[0].digest(), digest);
}

#[test]
fn nodes_without_the_fail_point_never_repair() {
    // Writes on both sides while rounds run: vectors differ, transfers
    // overlap, and still no divergence is ever claimed.
    let c = cluster_with(2, 20, &[], &["--no-cli"]);
    let mut a = redis_connection(c[0].addr());
    let mut b = redis_connection(c[1].addr());
    for i in 0..300 {
        let key = format!("k{}", i % 50);
        let () = a.set(&key, format!("a{i}")).expect("set");
        let () = b.set(&key, format!("b{i}")).expect("set");
    }
    eventually(CONVERGE_TIMEOUT, "equal digests", || {
        debug_digest(&mut a) == debug_digest(&mut b)
    });
    for con in [&mut a, &mut b] {
        assert_eq!(
            info_field(con, "netdb", "netdb_digest_mismatches").as_deref(),
            Some("0")
        );
    }
}
