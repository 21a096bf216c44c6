//! Faults against real nodes: network partitions (nftables, each node under
//! a uid of its own: see `common/net.rs`), kill -9 inside a partition, and
//! wall clocks an hour off (libfaketime: see `common/clock.rs`).
//!
//! What must hold, whatever the schedule: once the nodes can talk again,
//! every node holds the same value for every key within seconds, and that
//! value is the last acknowledged write in real time (the test makes one
//! write at a time, so that order is known), as long as clocks are right.
//! With a clock off, netdb promises convergence and causality (a write made
//! after seeing another wins over it), not real-time order between writes
//! that did not see each other: see [`concurrent_writes`].
//!
//! Partition tests need root and `nft`; skew tests need libfaketime
//! (`.ci/run` installs both). Where they cannot run they print a
//! `skipped:` line and return. Random tests print their seed; replay one
//! with `NETDB_TEST_SEED=<seed>`.

mod common;

use common::{
    clock_offset_secs, eventually, on_disk, poll, temp_dir, Cluster, Faketime, Net, Node, Rng,
    CONVERGE_TIMEOUT, DISK_CONVERGE_TIMEOUT, FAST_SYNC_MS, NO_SYNC_MS,
};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long nodes may take to agree once a partition heals: a pusher
/// blocked on a connection cut mid-exchange waits out its 5 s I/O timeout
/// before it connects again, then a round follows.
const HEAL_TIMEOUT: Duration = Duration::from_secs(12);

/// Every way to split three nodes, all of them together included.
const SPLITS: [&[&[usize]]; 5] = [
    &[&[0, 1, 2]],
    &[&[0], &[1, 2]],
    &[&[1], &[0, 2]],
    &[&[2], &[0, 1]],
    &[&[0], &[1], &[2]],
];

/// Puts and deletes on random nodes, one at a time, and the value each key
/// must end with: its last acknowledged write.
struct Workload {
    keys: Vec<String>,
    expected: Vec<Option<String>>,
    writes: usize,
    /// The node of the last write, and when it was acknowledged.
    last: Option<(usize, Instant)>,
}

impl Workload {
    fn new(prefix: &str, keys: usize) -> Workload {
        Workload {
            keys: (0..keys).map(|i| format!("{prefix}{i}")).collect(),
            expected: vec![None; keys],
            writes: 0,
            last: None,
        }
    }

    /// `count` writes (a quarter of them deletes) on random keys, in
    /// bursts on random nodes of `on`.
    fn run(&mut self, rng: &mut Rng, nodes: &mut [Node], on: &[usize], count: usize) {
        let mut done = 0;
        while done < count {
            let n = on[rng.below(on.len())];
            self.apart_from_last(n);
            for _ in 0..(1 + rng.below(5)).min(count - done) {
                let k = rng.below(self.keys.len());
                if rng.percent(25) {
                    nodes[n].delete(&self.keys[k]);
                    self.expected[k] = None;
                } else {
                    let value = format!("{}-w{}", nodes[n].name(), self.writes);
                    nodes[n].put(&self.keys[k], &value);
                    self.expected[k] = Some(value);
                }
                self.writes += 1;
                done += 1;
            }
            self.last = Some((n, Instant::now()));
        }
    }

    /// Waits until 2 ms have passed since the last write, if it was on
    /// another node than `n`. Timestamps have millisecond resolution and
    /// two concurrent writes in one millisecond are ordered by node name:
    /// real-time order decides only between writes a millisecond apart.
    fn apart_from_last(&self, n: usize) {
        if let Some((m, at)) = self.last {
            if m != n {
                poll(
                    Duration::from_secs(1),
                    Duration::from_millis(1),
                    "2 ms",
                    || {
                        (at.elapsed() >= Duration::from_millis(2))
                            .then_some(())
                            .ok_or("")
                    },
                );
            }
        }
    }

    /// Waits until every node holds the same value for every key, then
    /// asserts that it is the last write; returns how long agreement took.
    fn converge(&self, nodes: &mut [Node], within: Duration, context: &str) -> Duration {
        let start = Instant::now();
        let agreed = agree(nodes, &self.keys, within, context);
        let took = start.elapsed();
        for (i, (got, want)) in agreed.iter().zip(&self.expected).enumerate() {
            assert_eq!(
                got, want,
                "{context}: every node holds {got:?} for {}, but the last acknowledged write was {want:?}",
                self.keys[i]
            );
        }
        // And the replicas' digests of all their data agree too: nothing
        // outside the keys looked at differs.
        common::eventually_ok(
            within,
            format_args!("{context}: every node to show the same digest"),
            || {
                let first = nodes[0].digest();
                for node in &mut nodes[1..] {
                    let other = node.digest();
                    if other != first {
                        return Err(format!("n1 {first}, {} {other}", node.name()));
                    }
                }
                Ok(())
            },
        );
        took
    }
}

/// Waits until every node holds the same values for `keys`; returns them.
fn agree(
    nodes: &mut [Node],
    keys: &[String],
    within: Duration,
    context: &str,
) -> Vec<Option<String>> {
    common::eventually_ok(
        within,
        format_args!("{context}: every node to hold the same values"),
        || {
            let first = nodes[0].get_all(keys);
            for node in &mut nodes[1..] {
                let other = node.get_all(keys);
                if other != first {
                    return Err(format!("\nn1: {first:?}\n{}: {other:?}", node.name()));
                }
            }
            Ok(first)
        },
    )
}

#[test]
fn a_partition_cuts_established_connections_both_ways_until_it_heals() {
    let Some(net) = Net::or_skip() else { return };
    // No periodic rounds: only `sync` and writes push.
    let mut c = Cluster::start(2, &[], |_, spec, dir| {
        net.member(spec.sync_every(NO_SYNC_MS), dir)
    });
    // Each node opens its connection to the other.
    c.sync_all();
    net.split(&c.nodes, &[&[0], &[1]]);
    c[0].put("during", "partition");
    // Both established connections are cut: neither push is answered.
    let (a, b) = c.nodes.split_at_mut(1);
    std::thread::scope(|s| {
        for node in [&mut a[0], &mut b[0]] {
            s.spawn(move || {
                assert_eq!(
                    node.cmd("sync"),
                    "Synced with 0 of 1 peers.",
                    "{}",
                    node.name()
                );
            });
        }
    });
    assert_eq!(c[1].get("during"), None, "the write crossed the partition");

    net.heal();
    for node in &mut c.nodes {
        let name = node.name().to_owned();
        common::eventually(HEAL_TIMEOUT, format!("{name} to sync again"), || {
            node.cmd("sync") == "Synced with 1 of 1 peers."
        });
    }
    assert_eq!(c[1].get("during").as_deref(), Some("partition"));
}

#[test]
fn random_partition_schedules_converge_on_the_last_write_once_healed() {
    let Some(net) = Net::or_skip() else { return };
    let mut rng = Rng::seeded("random_partition_schedules");
    let mut c = Cluster::start(3, &[], |_, spec, dir| {
        net.member(spec.sync_every(FAST_SYNC_MS), dir)
    });
    let mut w = Workload::new("p", 16);
    for round in 0..3 {
        let mut schedule = Vec::new();
        for phase in 0..4 {
            let groups = SPLITS[rng.below(SPLITS.len())];
            schedule.push(groups);
            net.split(&c.nodes, groups);
            // A canary from each side, one after the other: the last one
            // written would win on every node it reached, so each node
            // holding its own side's canary shows the split is real, not a
            // test passing because nothing was ever cut.
            let canary = format!("canary-{round}-{phase}");
            for group in groups {
                c[group[0]].put(&canary, &format!("{group:?}"));
            }
            w.run(&mut rng, &mut c.nodes, &[0, 1, 2], 20);
            for group in groups {
                for &n in group.iter() {
                    let name = c[n].name().to_owned();
                    common::eventually_ok(
                        CONVERGE_TIMEOUT,
                        format_args!("{name} to hold its side's canary in split {groups:?}"),
                        || match c[n].get(&canary) {
                            Some(v) if v == format!("{group:?}") => Ok(()),
                            other => Err(format!("{other:?}")),
                        },
                    );
                }
            }
        }
        net.heal();
        let context = format!("round {round}, schedule {schedule:?}");
        let took = w.converge(&mut c.nodes, HEAL_TIMEOUT, &context);
        eprintln!("{context}: all nodes hold the last writes {took:?} after healing");
    }
}

#[test]
fn a_node_killed_inside_a_partition_loses_nothing_acknowledged() {
    let Some(net) = Net::or_skip() else { return };
    let mut rng = Rng::seeded("killed_inside_a_partition");
    let mut c = Cluster::start(3, &[], |_, spec, dir| {
        let spec = on_disk(spec, dir).fsync("always").sync_every(FAST_SYNC_MS);
        net.member(spec, dir)
    });
    let mut w = Workload::new("d", 12);
    let all = [0, 1, 2];
    w.run(&mut rng, &mut c.nodes, &all, 15);
    net.isolate(&c.nodes, 0);
    w.run(&mut rng, &mut c.nodes, &all, 30);
    // The lone node crashes and comes back, still cut off, and writes on.
    c[0].kill();
    c[0].restart();
    w.run(&mut rng, &mut c.nodes, &all, 15);
    // So does one of the other side.
    c[1].kill();
    c[1].restart();
    w.run(&mut rng, &mut c.nodes, &all, 15);
    net.heal();
    let took = w.converge(&mut c.nodes, DISK_CONVERGE_TIMEOUT, "after the kills");
    eprintln!("all nodes hold the last writes {took:?} after healing");
}

/// A cluster of three whose first node's wall clock is off as `faketime`
/// says (checked: about `offset_secs` ahead of the true time), all of them
/// under `net` if given. Their clock-offset bound is raised past the skew,
/// so that the skewed node keeps taking writes: these tests are about
/// causality and convergence under skew (the refusal at the default bound
/// has its own tests, in tests/clocks.rs).
fn skewed_cluster(ft: &Faketime, faketime: &str, offset_secs: i64, net: Option<&Net>) -> Cluster {
    let bound_ms = (offset_secs.unsigned_abs() + 600) * 1000;
    let c = Cluster::start(3, &[], |i, spec, dir| {
        let spec = spec
            .sync_every(FAST_SYNC_MS)
            .args(&["--max-clock-offset-ms", &bound_ms.to_string()]);
        let spec = if i == 0 {
            ft.skew(spec, faketime)
        } else {
            spec
        };
        match net {
            Some(net) => net.member(spec, dir),
            None => spec,
        }
    });
    let off = clock_offset_secs(&c[0]);
    assert!(
        (off - offset_secs).abs() < 120,
        "n1's clock is {off} s off, not about {offset_secs} s: libfaketime did not take"
    );
    c
}

/// Each key written by one node after another, every write made once all
/// nodes hold the key's previous write, so each has seen it: the last one
/// wins everywhere, whichever node's clock is off and by how much.
fn writes_that_saw_another_win(faketime: &str, offset_secs: i64) {
    let Some(ft) = Faketime::or_skip() else {
        return;
    };
    let mut rng = Rng::seeded(&format!("writes_that_saw_another_win {faketime}"));
    let mut c = skewed_cluster(&ft, faketime, offset_secs, None);
    let mut w = Workload::new("s", 6);
    let mut writer: Vec<usize> = (0..w.keys.len()).map(|_| rng.below(3)).collect();
    for step in 0..6 {
        for (k, key) in w.keys.iter().enumerate() {
            // Always another node than the key's last writer, so that every
            // write crosses from a skewed clock to a true one or back.
            writer[k] = (writer[k] + 1 + rng.below(2)) % 3;
            let node = &mut c.nodes[writer[k]];
            if step > 0 && rng.percent(25) {
                node.delete(key);
                w.expected[k] = None;
            } else {
                let value = format!("{}-step{step}", node.name());
                node.put(key, &value);
                w.expected[k] = Some(value);
            }
        }
        w.converge(&mut c.nodes, 2 * CONVERGE_TIMEOUT, &format!("step {step}"));
    }
}

#[test]
fn writes_that_saw_another_win_with_a_clock_an_hour_ahead() {
    writes_that_saw_another_win("+1h", 3600);
}

#[test]
fn writes_that_saw_another_win_with_a_clock_an_hour_behind() {
    writes_that_saw_another_win("-1h", -3600);
}

/// Writes on both sides of a partition, the skewed node alone on its side,
/// alternating in real time; then healing.
///
/// What netdb promises here is convergence and causality, not real-time
/// order: concurrent writes are ordered by their timestamps, which come
/// from the writer's wall clock. So with `+1h` the skewed node's writes win
/// over every concurrent write made within the hour, also those made after
/// them in real time; with `-1h` they lose to every concurrent one. The
/// test prints which won and asserts that all nodes agree, on one of the
/// two writes, and that a write made after the merge wins everywhere.
fn concurrent_writes(faketime: &str, offset_secs: i64) {
    let Some(ft) = Faketime::or_skip() else {
        return;
    };
    let Some(net) = Net::or_skip() else { return };
    let mut c = skewed_cluster(&ft, faketime, offset_secs, Some(&net));
    let keys: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
    net.isolate(&c.nodes, 0);
    let mut w = Workload::new("unused", 0);
    for (i, key) in keys.iter().enumerate() {
        // Even keys: the skewed node writes first; odd keys: second.
        let order = if i % 2 == 0 {
            [0, 1 + i % 4 / 2]
        } else {
            [1 + i % 4 / 2, 0]
        };
        for n in order {
            w.apart_from_last(n);
            let value = format!("{}-{key}", c[n].name());
            c[n].put(key, &value);
            w.last = Some((n, Instant::now()));
        }
    }
    net.heal();
    let agreed = agree(&mut c.nodes, &keys, HEAL_TIMEOUT, "after healing");
    let mut skewed_won = 0;
    for (key, value) in keys.iter().zip(&agreed) {
        let value = value
            .as_deref()
            .unwrap_or_else(|| panic!("{key} lost both writes"));
        assert!(value.ends_with(&format!("-{key}")), "{key}: {value:?}");
        skewed_won += usize::from(value.starts_with("n1-"));
    }
    eprintln!(
        "clock {faketime}: the skewed node's write won {skewed_won} of {} concurrent pairs",
        keys.len()
    );
    // Causality after the merge: a write that saw the winner wins, made on
    // the side that lost or on the skewed node.
    for (i, key) in keys.iter().enumerate() {
        let n = i % 3;
        c[n].put(key, &format!("after-{i}"));
    }
    let agreed = agree(
        &mut c.nodes,
        &keys,
        2 * CONVERGE_TIMEOUT,
        "after the causal writes",
    );
    for (i, value) in agreed.iter().enumerate() {
        assert_eq!(
            value.as_deref(),
            Some(format!("after-{i}").as_str()),
            "{}",
            keys[i]
        );
    }
}

#[test]
fn concurrent_writes_converge_with_a_clock_an_hour_ahead() {
    concurrent_writes("+1h", 3600);
}

#[test]
fn concurrent_writes_converge_with_a_clock_an_hour_behind() {
    concurrent_writes("-1h", -3600);
}

/// Copies the files of data directory `from` into `to` (created), as a
/// backup would.
fn copy_data_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("list the data directory") {
        let entry = entry.expect("directory entry");
        if entry.file_type().expect("file type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy a data file");
        }
    }
}

/// Two nodes on disk; n1 writes `k`, is backed up, deletes `k` (which n2
/// gets), and is then restored from the backup and restarted, and writes
/// `new` at once, before it has heard from its peer: under its old
/// identity it would reuse the delete's counter, and the peer would take
/// it for the delete it already holds.
fn restored_from_a_backup() -> Cluster {
    restored_from_a_backup_after(false)
}

/// [`restored_from_a_backup`]; with `collected`, both nodes have dropped
/// the delete's tombstone before n1 is restored, so no node has any trace
/// of the delete but its vector.
fn restored_from_a_backup_after(collected: bool) -> Cluster {
    let mut c = Cluster::start(2, &[], |_, spec, dir| {
        on_disk(spec, dir).fsync("always").sync_every(FAST_SYNC_MS)
    });
    c[0].put("k", "old");
    c.wait_all("get k", "Value: old", DISK_CONVERGE_TIMEOUT);
    c[0].stop();
    let backup = temp_dir();
    let dir = c[0].spec().dir().to_owned();
    copy_data_dir(&dir, backup.path());
    c[0].restart();
    c[0].delete("k");
    c.wait_all("get k", "Key not found.", DISK_CONVERGE_TIMEOUT);
    if collected {
        for node in c.nodes.iter_mut() {
            let name = node.name().to_owned();
            eventually(
                DISK_CONVERGE_TIMEOUT,
                format!("{name} to drop the tombstone"),
                || {
                    node.status_now()
                        .iter()
                        .any(|l| l.contains(" 0 tombstones"))
                },
            );
        }
    }
    c[0].stop();
    std::fs::remove_dir_all(&dir).expect("remove the data directory");
    copy_data_dir(backup.path(), &dir);
    c[0].restart();
    c[0].put("new", "x");
    c
}

#[test]
fn a_node_restored_from_a_backup_takes_a_new_identity_and_its_writes_replicate() {
    let mut c = restored_from_a_backup();
    c.wait_all("get new", "Value: x", DISK_CONVERGE_TIMEOUT);
    c[1].put("back", "y");
    c.wait_all("get back", "Value: y", DISK_CONVERGE_TIMEOUT);
    // It said why, naming the peer and both counters.
    let line = c[0].wait_log("IDENTITY", DISK_CONVERGE_TIMEOUT);
    assert!(
        line.contains("ERROR") || line.contains("error"),
        "at error level: {line}"
    );
    assert!(
        line.contains("up to counter 2") && line.contains("only up to 1"),
        "{line}"
    );
    // A restart goes on under the new identity: no new alarm, and its
    // writes still reach the peer.
    c[0].stop();
    c[0].restart();
    c[0].put("after", "z");
    c.wait_all("get after", "Value: z", DISK_CONVERGE_TIMEOUT);
    assert_eq!(c[0].count_stderr("IDENTITY"), 0);
}

#[test]
fn a_delete_made_after_the_backup_stays_deleted_on_the_restored_node() {
    let mut c = restored_from_a_backup_after(true);
    c.wait_all("get k", "Key not found.", DISK_CONVERGE_TIMEOUT);
    c[0].wait_log(
        "had deleted while this node's data was behind",
        DISK_CONVERGE_TIMEOUT,
    );
    // And stays so: the digests agree, the value never comes back.
    c.wait_all("get new", "Value: x", DISK_CONVERGE_TIMEOUT);
    let digest = c[1].digest();
    eventually(DISK_CONVERGE_TIMEOUT, "n1's digest to equal n2's", || {
        c[0].digest() == digest
    });
    c.assert_all_for("get k", "Key not found.", Duration::from_millis(500));
}

#[test]
fn a_clock_far_in_the_future_neither_freezes_nor_poisons_the_cluster() {
    let Some(ft) = Faketime::or_skip() else {
        return;
    };
    let mut c = Cluster::start(3, &[], |i, spec, _| {
        let spec = spec.sync_every(FAST_SYNC_MS);
        if i == 0 {
            ft.skew(spec, "@6500-01-01 00:00:00")
        } else {
            spec
        }
    });
    assert!(
        clock_offset_secs(&c[0]) > 4000 * 365 * 86_400,
        "n1's clock is not in year 6500: libfaketime did not take"
    );
    let reply = c[0].cmd("put far x");
    assert!(
        reply.starts_with("Error:") && reply.contains("clock"),
        "a write on a node whose clock is far off: {reply:?}"
    );
    c[1].put("near", "y");
    c[2].wait_reply("get near", "Value: y", CONVERGE_TIMEOUT);
    c[0].restart_with(Faketime::unskew);
    c[0].put("after", "z");
    c.wait_all("get after", "Value: z", 2 * CONVERGE_TIMEOUT);
    c.wait_all("get near", "Value: y", 2 * CONVERGE_TIMEOUT);
    c.wait_all("get far", "Key not found.", 2 * CONVERGE_TIMEOUT);
}

/// `FLUSHALL` on one side of a partition removes everything that node
/// held, on every node once it heals, and the writes the other side made
/// meanwhile (which the flushing node had not seen) survive: a new key,
/// and a new value of a key the flush deleted, though both were made
/// before the flush in real time.
#[test]
fn a_flushall_keeps_the_writes_its_node_had_not_seen() {
    let Some(net) = Net::or_skip() else { return };
    let mut c = Cluster::start(2, &[], |_, spec, dir| {
        net.member(spec.sync_every(FAST_SYNC_MS), dir)
    });
    c[0].put("old", "1");
    c[0].put("changed", "1");
    c.wait_all("get changed", "Value: 1", CONVERGE_TIMEOUT);
    net.split(&c.nodes, &[&[0], &[1]]);
    c[1].put("changed", "2");
    c[1].put("fresh", "1");
    let mut con = common::redis_connection(c[0].addr());
    let ok: String = redis::cmd("FLUSHALL").query(&mut con).expect("FLUSHALL");
    assert_eq!(ok, "OK");
    // The split is real: n1's flush has not reached n2.
    assert_eq!(c[1].get("old").as_deref(), Some("1"));
    net.heal();
    for node in &mut c.nodes {
        let name = node.name().to_owned();
        eventually(
            HEAL_TIMEOUT,
            format!("{name} to hold n2's writes only"),
            || {
                node.get("old").is_none()
                    && node.get("changed").as_deref() == Some("2")
                    && node.get("fresh").as_deref() == Some("1")
            },
        );
    }
}
