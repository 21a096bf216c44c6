//! Replication between live nodes: puts and deletes reach every node,
//! conflicting writes converge to one value everywhere, and nodes that
//! crash and come back empty catch up and can write again.

mod common;

use common::{
    cluster, cluster_with, eventually, redis_connection, start_all, temp_dir, write_peers_file,
    Cluster, NodeSpec, CONVERGE_TIMEOUT, FAST_SYNC_MS, NO_SYNC_MS,
};
use std::sync::Barrier;
use std::time::{Duration, Instant};

#[test]
fn puts_reach_every_node_of_a_three_node_cluster() {
    let mut c = cluster(3, FAST_SYNC_MS);
    assert_eq!(c[0].cmd("put from-n1 one"), "Value stored.");
    assert_eq!(c[1].cmd("put from-n2 two words"), "Value stored.");
    assert_eq!(c[2].cmd("put from-n3 3"), "Value stored.");
    c.wait_all("get from-n1", "Value: one", CONVERGE_TIMEOUT);
    c.wait_all("get from-n2", "Value: two words", CONVERGE_TIMEOUT);
    c.wait_all("get from-n3", "Value: 3", CONVERGE_TIMEOUT);
    // An overwrite replicates too.
    assert_eq!(c[1].cmd("put from-n1 uno"), "Value stored.");
    c.wait_all("get from-n1", "Value: uno", CONVERGE_TIMEOUT);
    for node in &mut c.nodes {
        assert_eq!(
            node.cmd_lines("keys", 3),
            ["from-n1", "from-n2", "from-n3"],
            "{}",
            node.name()
        );
    }
}

#[test]
fn a_delete_reaches_every_node_and_never_comes_back() {
    let mut c = cluster(3, FAST_SYNC_MS);
    assert_eq!(c[0].cmd("put doomed alive"), "Value stored.");
    assert_eq!(c[0].cmd("put bystander stays"), "Value stored.");
    c.wait_all("get doomed", "Value: alive", CONVERGE_TIMEOUT);
    c.wait_all("get bystander", "Value: stays", CONVERGE_TIMEOUT);

    // Deleted on a node that did not write it.
    assert_eq!(c[2].cmd("delete doomed"), "Key deleted.");
    assert_eq!(c[2].cmd("get doomed"), "Key not found.");
    c.wait_all("get doomed", "Key not found.", CONVERGE_TIMEOUT);

    // Many more rounds, both forced (every node pushes to every peer and
    // waits for the acknowledgements) and periodic (ten intervals of
    // watching every node), and the key stays deleted everywhere.
    for _ in 0..5 {
        c.sync_all();
        c.assert_all("get doomed", "Key not found.");
        c.assert_all("get bystander", "Value: stays");
    }
    c.assert_all_for(
        "get doomed",
        "Key not found.",
        Duration::from_millis(10 * FAST_SYNC_MS),
    );
    // Every peer has acknowledged the tombstone by now, so every node has
    // dropped it: the key stays deleted without it.
    for node in &mut c.nodes {
        let name = node.name().to_owned();
        eventually(
            CONVERGE_TIMEOUT,
            format!("{name} drops the tombstone"),
            || node.status()[1] == "keys: 1 live, 0 tombstones",
        );
        assert_eq!(node.cmd_lines("keys", 1), ["bystander"], "{name}");
    }

    // A put after the delete brings the key back, everywhere.
    assert_eq!(c[1].cmd("put doomed reborn"), "Value stored.");
    c.wait_all("get doomed", "Value: reborn", CONVERGE_TIMEOUT);
    c.sync_all();
    c.assert_all("get doomed", "Value: reborn");
}

/// Waits until every node holds the same value for each of `keys`; returns
/// those values.
fn wait_identical(c: &mut Cluster, keys: &[String]) -> Vec<String> {
    let mut agreed = Vec::new();
    eventually(CONVERGE_TIMEOUT, "all nodes hold the same values", || {
        agreed.clear();
        for key in keys {
            let line = format!("get {key}");
            let first = c[0].cmd(&line);
            if c.nodes[1..].iter_mut().any(|n| n.cmd(&line) != first) {
                return false;
            }
            agreed.push(first);
        }
        true
    });
    agreed
}

#[test]
fn concurrent_conflicting_writes_end_identical_everywhere() {
    let mut c = cluster(3, FAST_SYNC_MS);
    let keys: Vec<String> = (0..20).map(|i| format!("contested-{i}")).collect();
    let start = Barrier::new(c.nodes.len());
    std::thread::scope(|s| {
        for node in &mut c.nodes {
            let (keys, start) = (&keys, &start);
            s.spawn(move || {
                start.wait();
                for (i, key) in keys.iter().enumerate() {
                    let line = format!("put {key} {}-{i}", node.name());
                    assert_eq!(node.cmd(&line), "Value stored.", "{}", node.name());
                }
            });
        }
    });
    let values = wait_identical(&mut c, &keys);
    for (i, value) in values.iter().enumerate() {
        let written: Vec<String> = ["n1", "n2", "n3"]
            .iter()
            .map(|n| format!("Value: {n}-{i}"))
            .collect();
        assert!(
            written.contains(value),
            "key {i}: {value:?} was never written"
        );
    }
    // And it stays that way over more rounds.
    c.sync_all();
    assert_eq!(wait_identical(&mut c, &keys), values);
}

#[test]
fn writes_made_with_no_sync_in_between_converge_in_one_round_of_syncs() {
    // No periodic round; writes are still pushed as they happen, so they
    // race with each other on every node.
    let mut c = cluster(3, NO_SYNC_MS);
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    for node in &mut c.nodes {
        for (i, key) in keys.iter().enumerate() {
            let line = format!("put {key} {}-{i}", node.name());
            assert_eq!(node.cmd(&line), "Value stored.", "{}", node.name());
        }
    }
    // Each node in turn pushes to both others and merges their answers:
    // after that everyone has seen every write.
    c.sync_all();
    let mut expected = Vec::new();
    for key in &keys {
        let line = format!("get {key}");
        expected.push(c[0].cmd(&line));
    }
    for node in &mut c.nodes {
        for (key, want) in keys.iter().zip(&expected) {
            assert_eq!(&node.cmd(&format!("get {key}")), want, "{}", node.name());
        }
    }
    for (i, value) in expected.iter().enumerate() {
        assert!(
            ["n1", "n2", "n3"]
                .iter()
                .any(|n| *value == format!("Value: {n}-{i}")),
            "k{i}: {value:?} was never written"
        );
    }
}

#[test]
fn of_two_concurrent_writes_the_later_one_wins() {
    let mut c = cluster(2, NO_SYNC_MS);
    assert_eq!(c[1].cmd("put k earlier"), "Value stored.");
    assert_eq!(c[1].cmd("put j later"), "Value stored.");
    // Let the wall clock move on by a few milliseconds (timestamps have
    // millisecond resolution), then write on the other node, which has not
    // seen the first writes.
    let written = Instant::now();
    eventually(Duration::from_secs(1), "5 ms pass", || {
        written.elapsed() >= Duration::from_millis(5)
    });
    assert_eq!(c[0].cmd("put k later"), "Value stored.");
    assert_eq!(c[0].cmd("put j earlier"), "Value stored.");
    assert_eq!(c[0].cmd("sync"), "Synced with 1 of 1 peers.");
    c.assert_all("get k", "Value: later");
    c.assert_all("get j", "Value: earlier");
}

#[test]
fn a_node_restarted_empty_gets_the_clusters_data_back() {
    let mut c = cluster(3, FAST_SYNC_MS);
    assert_eq!(c[0].cmd("put a from-n1"), "Value stored.");
    assert_eq!(c[1].cmd("put b from-n2"), "Value stored.");
    assert_eq!(c[2].cmd("put c from-n3"), "Value stored.");
    assert_eq!(c[2].cmd("put gone soon"), "Value stored.");
    // Deleted after n1 has seen the put (a delete concurrent with it could
    // lose to it: timestamps have millisecond resolution).
    c[0].wait_reply("get gone", "Value: soon", CONVERGE_TIMEOUT);
    assert_eq!(c[0].cmd("delete gone"), "Key deleted.");
    c.wait_all("get a", "Value: from-n1", CONVERGE_TIMEOUT);
    c.wait_all("get b", "Value: from-n2", CONVERGE_TIMEOUT);
    c.wait_all("get c", "Value: from-n3", CONVERGE_TIMEOUT);
    c.wait_all("get gone", "Key not found.", CONVERGE_TIMEOUT);

    c[2].restart();
    // Its peers push everything to it within their first rounds, including
    // what it wrote itself before the crash, and the delete.
    c[2].wait_reply("get a", "Value: from-n1", CONVERGE_TIMEOUT);
    c[2].wait_reply("get b", "Value: from-n2", CONVERGE_TIMEOUT);
    c[2].wait_reply("get c", "Value: from-n3", CONVERGE_TIMEOUT);
    let n3 = &mut c[2];
    // The tombstone is dropped once every node has acknowledged it.
    eventually(CONVERGE_TIMEOUT, "n3 holds 3 keys and no tombstone", || {
        n3.status()[1] == "keys: 3 live, 0 tombstones"
    });
    assert_eq!(n3.cmd("get gone"), "Key not found.");
    assert_eq!(n3.cmd_lines("keys", 3), ["a", "b", "c"]);
}

#[test]
fn a_restarted_node_s_new_write_wins_over_its_own_old_one() {
    let mut c = cluster(3, FAST_SYNC_MS);
    assert_eq!(c[2].cmd("put k old"), "Value stored.");
    c.wait_all("get k", "Value: old", CONVERGE_TIMEOUT);

    c[2].restart();
    // Written at once, most likely before any peer has pushed the old
    // version back to it.
    assert_eq!(c[2].cmd("put k new"), "Value stored.");
    assert_eq!(c[2].cmd("get k"), "Value: new");
    c.wait_all("get k", "Value: new", CONVERGE_TIMEOUT);
    // The old version, still held by nobody, never comes back.
    c.sync_all();
    c.assert_all_for(
        "get k",
        "Value: new",
        Duration::from_millis(5 * FAST_SYNC_MS),
    );
}

#[test]
fn a_restarted_node_s_writes_win_also_when_made_before_any_round() {
    // No periodic rounds: the restarted node writes with nothing but its
    // empty store, and only then hears of its old versions. (A node makes
    // one round as it starts, so on a loaded machine that round may land
    // before the first command: then the writes follow the old versions
    // instead, and must win all the same.)
    let mut c = cluster(3, NO_SYNC_MS);
    assert_eq!(c[2].cmd("put k old"), "Value stored.");
    assert_eq!(c[2].cmd("put doomed old"), "Value stored.");
    c.sync_all();
    c.assert_all("get k", "Value: old");
    c.assert_all("get doomed", "Value: old");

    c[2].restart();
    let before = c[2].cmd("get k");
    assert!(
        before == "Key not found." || before == "Value: old",
        "{before}"
    );
    if before != "Key not found." {
        eprintln!("note: the startup round came before the first write");
    }
    assert_eq!(c[2].cmd("put k new"), "Value stored.");
    assert_eq!(c[2].cmd("delete doomed"), "Key deleted.");
    // The peers push their old versions to n3 first, then n3 pushes.
    c.sync_all();
    c.assert_all("get k", "Value: new");
    c.assert_all("get doomed", "Key not found.");
    c.sync_all();
    c.assert_all("get k", "Value: new");
    c.assert_all("get doomed", "Key not found.");
}

/// `quit` pushes once more, and waits for the acknowledgements, before
/// the node exits. (The write starts a push of its own at once, so the
/// peer may have it before the `quit`; the final push is what the log
/// line shows either way.)
#[test]
fn quit_pushes_the_last_writes_to_the_peers_before_exiting() {
    let mut c = cluster(2, NO_SYNC_MS);
    assert_eq!(c[0].cmd("put last words"), "Value stored.");
    assert_eq!(c[0].cmd("quit"), "Goodbye!");
    assert!(c[0].wait_exit().status.success());
    assert_eq!(
        c[0].rest_of_stdout(Duration::from_secs(5)),
        Vec::<String>::new()
    );
    c[0].wait_log(
        "final push: 1 of 1 peers acknowledged",
        Duration::from_secs(5),
    );
    assert_eq!(c[1].cmd("get last"), "Value: words");
}

#[test]
fn end_of_input_pushes_the_last_writes_to_the_peers_before_exiting() {
    let mut c = cluster(3, NO_SYNC_MS);
    assert_eq!(c[0].cmd("put last words"), "Value stored.");
    c[0].close_stdin();
    assert!(c[0].wait_exit().status.success());
    // No reply and no farewell at end of input.
    assert_eq!(
        c[0].rest_of_stdout(Duration::from_secs(5)),
        Vec::<String>::new()
    );
    c[0].wait_log(
        "final push: 2 of 2 peers acknowledged",
        Duration::from_secs(5),
    );
    assert_eq!(c[1].cmd("get last"), "Value: words");
    assert_eq!(c[2].cmd("get last"), "Value: words");
}

#[test]
fn a_node_that_missed_a_delete_does_not_bring_the_key_back() {
    // A line n1 - n2 - n3 with no periodic rounds: n3 hears of n1's writes
    // only through n2, and only when someone types `sync`.
    let dir = temp_dir();
    let mut n = start_all(3, |addrs| {
        (0..3)
            .map(|i| {
                let listed: Vec<_> = match i {
                    1 => vec![addrs[0], addrs[2]],
                    _ => vec![addrs[1]],
                };
                let path = dir.path().join(format!("peers{i}.txt"));
                write_peers_file(&path, &listed);
                NodeSpec::new(&format!("n{}", i + 1))
                    .listen(addrs[i])
                    .peers(&path, listed.len())
                    .sync_every(NO_SYNC_MS)
            })
            .collect()
    });
    assert_eq!(n[0].cmd("put k v"), "Value stored.");
    assert_eq!(n[0].cmd("sync"), "Synced with 1 of 1 peers.");
    assert_eq!(n[1].cmd("sync"), "Synced with 2 of 2 peers.");
    assert_eq!(n[2].cmd("get k"), "Value: v");

    // n3 misses the delete: it reaches n2 only.
    assert_eq!(n[0].cmd("delete k"), "Key deleted.");
    assert_eq!(n[0].cmd("sync"), "Synced with 1 of 1 peers.");
    assert_eq!(n[1].cmd("get k"), "Key not found.");
    assert_eq!(n[2].cmd("get k"), "Value: v");

    // n3 pushes its stale value: n2 keeps the delete and answers with it.
    assert_eq!(n[2].cmd("sync"), "Synced with 1 of 1 peers.");
    assert_eq!(n[1].cmd("get k"), "Key not found.");
    assert_eq!(n[2].cmd("get k"), "Key not found.");
    assert_eq!(n[1].cmd("sync"), "Synced with 2 of 2 peers.");
    for node in &mut n {
        assert_eq!(node.cmd("get k"), "Key not found.", "{}", node.name());
    }
}

#[test]
fn a_node_restarted_empty_gets_a_transfer_of_many_parts_whole() {
    // The smallest frames make parts of half a MiB: 20,000 keys of 400
    // bytes are about 17 parts, more than a transfer keeps in flight.
    let frame = (1024 * 1024).to_string();
    let mut c = cluster_with(2, NO_SYNC_MS, &[], &["--max-frame-bytes", &frame]);
    let mut conn = redis_connection(c[0].addr());
    let value = "v".repeat(400);
    let mut pipe = redis::pipe();
    for batch in 0..20 {
        let mut mset = redis::cmd("MSET");
        for i in 0..1000 {
            mset.arg(format!("key:{:05}", batch * 1000 + i)).arg(&value);
        }
        pipe.add_command(mset).ignore();
    }
    pipe.query::<()>(&mut conn).expect("MSET");
    // n2 starts empty: its round at startup pulls everything from n1, and
    // n1's next round pushes what n2 has not acknowledged.
    c[1].restart();
    assert_eq!(c[0].cmd("sync"), "Synced with 1 of 1 peers.");
    let mut n2 = redis_connection(c[1].addr());
    eventually(CONVERGE_TIMEOUT * 2, "n2 holds every key", || {
        redis::cmd("DBSIZE")
            .query::<usize>(&mut n2)
            .expect("DBSIZE")
            == 20_000
    });
    for k in ["key:00000", "key:07777", "key:19999"] {
        let got: Option<String> = redis::cmd("GET").arg(k).query(&mut n2).expect("GET");
        assert_eq!(got.as_deref(), Some(value.as_str()), "{k}");
    }
    // Both nodes acknowledged the whole transfer: nothing is left behind.
    let n2_addr = c[1].addr();
    eventually(CONVERGE_TIMEOUT, "n1 sees n2 0 writes behind", || {
        c[0].peer_status(n2_addr).contains(", 0 writes behind, ")
    });
}
