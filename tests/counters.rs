//! Counters that converge, against the real binary: `INCR` and its kin
//! made at once on several nodes all count, across a partition too; a
//! `SET` or `DEL` that saw increments replaces them; increments made after
//! it count on top of it.

mod common;

use common::{cluster_with, eventually_ok, redis_connection, Cluster, Net, FAST_SYNC_MS};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// Waits until every node of `cluster` reads `expected` at `key`.
fn all_read(cluster: &Cluster, key: &str, expected: Option<&str>) {
    for node in &cluster.nodes {
        let mut con = redis_connection(node.addr());
        eventually_ok(
            WAIT,
            format!("{} to read {key} as {expected:?}", node.name()),
            || {
                let got: Option<String> = redis::cmd("GET")
                    .arg(key)
                    .query(&mut con)
                    .map_err(|e| e.to_string())?;
                if got.as_deref() == expected {
                    Ok(())
                } else {
                    Err(format!("{got:?}"))
                }
            },
        );
    }
}

/// Runs `per_node` increments of `key` on every node at once, each node
/// adding its own step (INCR, INCRBY 3, DECR...); returns the sum of them
/// all, checking each reply is an integer.
fn increment_everywhere(cluster: &Cluster, key: &str, per_node: i64) -> i64 {
    let steps = [1i64, 3, -1, 7, 2];
    std::thread::scope(|s| {
        let handles: Vec<_> = cluster
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let addr = node.addr();
                let step = steps[i % steps.len()];
                s.spawn(move || {
                    let mut con = redis_connection(addr);
                    for _ in 0..per_node {
                        let cmd = match step {
                            1 => redis::cmd("INCR").arg(key).clone(),
                            -1 => redis::cmd("DECR").arg(key).clone(),
                            n if n < 0 => redis::cmd("DECRBY").arg(key).arg(-n).clone(),
                            n => redis::cmd("INCRBY").arg(key).arg(n).clone(),
                        };
                        let _: i64 = cmd.query(&mut con).expect("an increment");
                    }
                    step * per_node
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a writer"))
            .sum()
    })
}

#[test]
fn increments_made_at_once_on_three_nodes_all_count() {
    let cluster = cluster_with(3, FAST_SYNC_MS, &[], &["--no-cli"]);
    // A key no node has: each begins counting from nothing, at once.
    let total = increment_everywhere(&cluster, "hits", 300);
    all_read(&cluster, "hits", Some(&total.to_string()));
    // Again on top of the converged value, with a time to live that
    // increments keep.
    let mut a = redis_connection(cluster.nodes[0].addr());
    let () = redis::cmd("EXPIRE")
        .arg("hits")
        .arg(1000)
        .query(&mut a)
        .map(|_: i64| ())
        .expect("EXPIRE");
    let base: i64 = redis::cmd("GET").arg("hits").query(&mut a).expect("GET");
    // `EXPIRE` writes the value again, as a new base: counts a node began
    // before it are replaced by it. So each node starts counting again
    // only once it has the `EXPIRE` (it shows the time to live).
    for node in &cluster.nodes {
        let mut con = redis_connection(node.addr());
        eventually_ok(WAIT, format!("{} to have the EXPIRE", node.name()), || {
            let ttl: i64 = redis::cmd("TTL")
                .arg("hits")
                .query(&mut con)
                .map_err(|e| e.to_string())?;
            if ttl > 0 {
                Ok(())
            } else {
                Err(format!("TTL {ttl}"))
            }
        });
    }
    all_read(&cluster, "hits", Some(&base.to_string()));
    let more = increment_everywhere(&cluster, "hits", 200);
    all_read(&cluster, "hits", Some(&(base + more).to_string()));
    for node in &cluster.nodes {
        let mut con = redis_connection(node.addr());
        let ttl: i64 = redis::cmd("TTL").arg("hits").query(&mut con).expect("TTL");
        assert!(
            (1..=1000).contains(&ttl),
            "{} lost the TTL: {ttl}",
            node.name()
        );
    }
}

#[test]
fn a_set_or_del_that_saw_increments_replaces_them_and_later_ones_count_on_top() {
    let cluster = cluster_with(3, FAST_SYNC_MS, &[], &["--no-cli"]);
    let total = increment_everywhere(&cluster, "c", 50);
    all_read(&cluster, "c", Some(&total.to_string()));
    let mut a = redis_connection(cluster.nodes[0].addr());
    let () = redis::cmd("SET")
        .arg("c")
        .arg(100)
        .query(&mut a)
        .expect("SET");
    all_read(&cluster, "c", Some("100"));
    // Every node has the SET (it reads 100 and has no other write pending),
    // so the counts begun from here are later than it.
    let more = increment_everywhere(&cluster, "c", 40);
    all_read(&cluster, "c", Some(&(100 + more).to_string()));
    let deleted: i64 = redis::cmd("DEL").arg("c").query(&mut a).expect("DEL");
    assert_eq!(deleted, 1);
    all_read(&cluster, "c", None);
    let after = increment_everywhere(&cluster, "c", 30);
    all_read(&cluster, "c", Some(&after.to_string()));
    // A value that is no integer is refused as Redis refuses it.
    let () = redis::cmd("SET")
        .arg("c")
        .arg("text")
        .query(&mut a)
        .expect("SET");
    let err = redis::cmd("INCR")
        .arg("c")
        .query::<i64>(&mut a)
        .expect_err("INCR of text");
    assert!(
        err.to_string()
            .contains("value is not an integer or out of range"),
        "{err}"
    );
}

#[test]
fn increments_on_both_sides_of_a_partition_all_count_once_it_heals() {
    let Some(net) = Net::or_skip() else { return };
    let cluster = Cluster::start(3, &[], |_, spec, dir| {
        net.member(spec.sync_every(FAST_SYNC_MS).args(&["--no-cli"]), dir)
    });
    let start = increment_everywhere(&cluster, "p", 20);
    all_read(&cluster, "p", Some(&start.to_string()));
    net.split(&cluster.nodes, &[&[0], &[1, 2]]);
    // Each side counts on its own, and sees only its own increments.
    let during = increment_everywhere(&cluster, "p", 100);
    let mut lone = redis_connection(cluster.nodes[0].addr());
    let alone: i64 = redis::cmd("GET").arg("p").query(&mut lone).expect("GET");
    assert_eq!(
        alone,
        start + 100,
        "node 0 saw increments across the partition"
    );
    net.heal();
    all_read(&cluster, "p", Some(&(start + during).to_string()));
}
