//! Durability of a node's data directory, tested on the `netdb` binary:
//! acknowledged writes survive `kill -9` at random moments and crashes at
//! every step of compaction; a torn tail is cut and damage in the middle
//! stops startup; a full disk refuses writes without lying; the directory
//! lock, clean stops on signals, rejoining a cluster after a restart, and
//! `--in-memory`.
//!
//! Random tests print their seed; `NETDB_TEST_SEED=<seed>` replays one.
//!
//! The crash and full-disk tests drive the node's fail points through
//! `FAILPOINTS`: they run with `cargo test --features failpoints` and are
//! ignored without it.
//!
//! Tests marked `#[ignore = "netdb bug: ..."]` fail on known bugs; run
//! them with `cargo test --test durability -- --ignored`.

mod common;

use common::record::HEADER_LEN;
use common::{
    assert_no_panic, contains, data_files, durable_cluster, eventually, file_names, last_log,
    max_gen, on_disk, record_spans, show, temp_dir, Cluster, Kind, Node, NodeSpec, Rng,
    DISK_CONVERGE_TIMEOUT, FAST_SYNC_MS, REPLY_TIMEOUT,
};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Keys `prefix00`, `prefix01`... .
fn keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:02}")).collect()
}

/// The values a node holds for a list of keys (`None`: not found).
type State = Vec<Option<String>>;

/// One write of the random crash test.
#[derive(Clone, Debug)]
enum Change {
    Put(usize, String),
    Delete(usize),
}

impl Change {
    fn key(&self) -> usize {
        match self {
            Change::Put(k, _) | Change::Delete(k) => *k,
        }
    }

    /// The key's value once this change is applied.
    fn after(&self) -> Option<String> {
        match self {
            Change::Put(_, v) => Some(v.clone()),
            Change::Delete(_) => None,
        }
    }

    fn line(&self, keys: &[String]) -> String {
        match self {
            Change::Put(k, v) => format!("put {} {v}\n", keys[*k]),
            Change::Delete(k) => format!("delete {}\n", keys[*k]),
        }
    }

    fn reply(&self) -> &'static str {
        match self {
            Change::Put(..) => "Value stored.",
            Change::Delete(_) => "Key deleted.",
        }
    }
}

fn apply(state: &State, changes: &[Change]) -> State {
    let mut state = state.clone();
    for c in changes {
        state[c.key()] = c.after();
    }
    state
}

/// A session's writes, cut short by `kill -9`: what the node held before,
/// the changes in the order they were sent, how many were acknowledged
/// (the replies come in order, so that is a prefix) and how many were
/// written to its stdin.
struct Session {
    before: State,
    changes: Vec<Change>,
    acked: usize,
    sent: usize,
}

impl Session {
    /// Checks what a restarted node holds against what was acknowledged.
    fn check(&self, found: &State, keys: &[String], context: &str) {
        let acked = apply(&self.before, &self.changes[..self.acked]);
        let unacked = &self.changes[self.acked..self.sent];
        for (k, key) in keys.iter().enumerate() {
            // The last acknowledged value, or one written after it.
            let mut allowed = vec![acked[k].clone()];
            allowed.extend(unacked.iter().filter(|c| c.key() == k).map(Change::after));
            assert!(
                allowed.contains(&found[k]),
                "{context}: key {key} holds {:?}, but only {allowed:?} may be there \
                 ({} of {} writes acknowledged)",
                found[k],
                self.acked,
                self.sent
            );
        }
        // Stronger: records are logged in the order of the writes, so what
        // survives is the result of some prefix of them.
        let prefix =
            (self.acked..=self.sent).any(|n| apply(&self.before, &self.changes[..n]) == *found);
        assert!(
            prefix,
            "{context}: the recovered state is no prefix of the writes \
             ({} of {} acknowledged): {found:?}",
            self.acked, self.sent
        );
    }
}

#[test]
fn acknowledged_writes_survive_kill_9_with_fsync_always() {
    let dir = temp_dir();
    let opts = NodeSpec::new("k9").data_dir(dir.path()).fsync("always");
    let names = keys("key", 20);
    let mut node = opts.start();
    for (i, k) in names.iter().enumerate() {
        node.put(k, &format!("first{i}"));
    }
    for k in &names[..5] {
        node.delete(k);
    }
    for (i, k) in names.iter().enumerate().skip(15) {
        node.put(k, &format!("second{i}"));
    }
    node.kill();

    let mut node = opts.start();
    let found = node.get_all(&names);
    for (i, value) in found.iter().enumerate() {
        let expected = match i {
            0..5 => None,
            5..15 => Some(format!("first{i}")),
            _ => Some(format!("second{i}")),
        };
        assert_eq!(value, &expected, "key {} after kill -9", names[i]);
    }
    node.wait_log("20 entries loaded", REPLY_TIMEOUT);
}

/// 30 sessions on one data directory, each killed with SIGKILL at a random
/// moment while writes are in flight; each restart must hold every
/// acknowledged write. A small `--compact-min-bytes` makes compactions
/// frequent, so some kills land in the middle of one.
#[test]
fn acknowledged_writes_survive_kill_9_at_random_moments() {
    const SESSIONS: usize = 30;
    let mut rng = Rng::seeded("acknowledged_writes_survive_kill_9_at_random_moments");
    let dir = temp_dir();
    let opts = NodeSpec::new("crashy")
        .data_dir(dir.path())
        .fsync("always")
        .args(&["--compact-min-bytes", "4096"]);
    let names = keys("key", 12);
    let mut previous: Option<Session> = None;
    let mut compactions = 0;
    for session in 0..=SESSIONS {
        let mut node = opts.start();
        let found = node.get_all(&names);
        match &previous {
            None => assert!(
                found.iter().all(Option::is_none),
                "a new directory is empty"
            ),
            Some(p) => p.check(
                &found,
                &names,
                &format!("restart after session {}", session - 1),
            ),
        }
        if session == SESSIONS {
            break;
        }

        // Writes go in from another thread, at most `window` ahead of the
        // replies read; the node is killed once `kill_after` replies are in.
        let window = 1 + rng.below(48);
        let kill_after = rng.below(200);
        let changes: Vec<Change> = (0..kill_after + window)
            .map(|i| {
                let k = rng.below(names.len());
                if rng.percent(20) {
                    Change::Delete(k)
                } else {
                    Change::Put(k, format!("s{session}w{i}"))
                }
            })
            .collect();
        let lines: Vec<String> = changes.iter().map(|c| c.line(&names)).collect();
        let acked = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut stdin = node.take_stdin();
        let writer = {
            let (acked, stop) = (Arc::clone(&acked), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut sent = 0;
                for line in &lines {
                    while sent >= acked.load(Ordering::SeqCst) + window {
                        if stop.load(Ordering::SeqCst) {
                            return (sent, stdin);
                        }
                        std::thread::sleep(Duration::from_micros(100));
                    }
                    if stdin.write_all(line.as_bytes()).is_err() {
                        break;
                    }
                    sent += 1;
                }
                (sent, stdin)
            })
        };
        for (i, change) in changes.iter().enumerate().take(kill_after) {
            match node.next_reply() {
                Some(reply) => assert_eq!(
                    reply,
                    change.reply(),
                    "session {session}, write {i}: {change:?}\n{}",
                    show(&node.stderr_lines())
                ),
                None => panic!(
                    "session {session}: the node stopped answering\n{}",
                    show(&node.stderr_lines())
                ),
            }
            acked.store(i + 1, Ordering::SeqCst);
        }
        let stderr = node.kill().stderr;
        assert_no_panic(&stderr);
        compactions += stderr.iter().filter(|l| l.contains("compacting:")).count();
        stop.store(true, Ordering::SeqCst);
        let (sent, stdin) = writer.join().expect("writer thread");
        drop(stdin);
        eprintln!(
            "session {session}: window {window}, killed after {kill_after} replies, \
             {} writes in flight, files {:?}",
            sent - kill_after,
            file_names(dir.path())
        );
        previous = Some(Session {
            before: found,
            changes,
            acked: kill_after,
            sent,
        });
    }
    assert!(
        compactions > 0,
        "no session compacted: the test misses that case"
    );
}

/// The fail points of compaction at which the node aborts when set to
/// `return`.
const CRASH_POINTS: [&str; 4] = [
    "compaction::snapshot_written",
    "compaction::snapshot_renamed",
    "compaction::snapshot_synced",
    "compaction::old_file_deleted",
];

/// Puts `value<n>` values to `keys` round robin until the node dies (a
/// crash hook) or `stop_when` holds; returns the last acknowledged value of
/// each key and the write that was in flight when the node died, if any.
fn write_until(
    node: &mut Node,
    keys: &[String],
    tag: &str,
    stop_when: impl Fn(&Node) -> bool,
) -> (BTreeMap<String, String>, Option<(String, String)>) {
    let mut acked = BTreeMap::new();
    let padding = "x".repeat(100);
    for n in 0..5000 {
        if stop_when(node) {
            return (acked, None);
        }
        let key = &keys[n % keys.len()];
        let value = format!("{tag}{n}{padding}");
        if !node.try_send(&format!("put {key} {value}")) {
            return (acked, None); // it died before this write
        }
        match node.next_reply() {
            Some(reply) => assert_eq!(reply, "Value stored.", "put {key}"),
            None => return (acked, Some((key.clone(), value))),
        }
        acked.insert(key.clone(), value);
    }
    panic!(
        "5000 writes and no compaction\n{}",
        show(&node.stderr_lines())
    );
}

#[test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs --features failpoints")]
fn a_crash_at_each_point_of_compaction_loses_nothing() {
    let old_keys = keys("old", 10);
    let new_keys = keys("new", 20);
    for point in CRASH_POINTS {
        let dir = temp_dir();
        let opts = NodeSpec::new("compactor")
            .data_dir(dir.path())
            .fsync("always")
            .args(&["--compact-min-bytes", "4096"]);

        // A first session leaves a log with values and a tombstone.
        let mut node = opts.start();
        for (i, k) in old_keys.iter().enumerate() {
            node.put(k, &format!("old{i}"));
        }
        node.delete(&old_keys[0]);
        assert!(node.stop().status.success());

        // The second one writes until compaction crashes it.
        let mut node = opts
            .clone()
            .env("FAILPOINTS", &format!("{point}=return"))
            .start();
        let (acked, in_flight) = write_until(&mut node, &new_keys, "v", |_| false);
        let exited = node.wait_exit();
        assert_eq!(
            exited.signal(),
            Some(6),
            "{point}: the node should abort\n{}",
            show(&exited.stderr)
        );
        assert!(
            exited
                .stderr
                .iter()
                .any(|l| l.contains(&format!("fail point {point}: aborting"))),
            "{point}: the hook did not fire\n{}",
            show(&exited.stderr)
        );
        let before = file_names(dir.path());
        let snapshots = data_files(dir.path())
            .iter()
            .filter(|(_, k, _)| *k == Kind::Snapshot)
            .count();
        let tmp = before.iter().filter(|n| n.ends_with(".tmp")).count();
        let logs_before = data_files(dir.path())
            .iter()
            .filter(|(_, k, _)| *k == Kind::Log)
            .count();
        // The crash left the directory in the state the point names.
        match point {
            "compaction::snapshot_written" => {
                assert!(tmp == 1 && snapshots == 0, "{point}: {before:?}")
            }
            "compaction::old_file_deleted" => {
                assert!(
                    tmp == 0 && snapshots == 1 && logs_before == 2,
                    "{point}: {before:?}"
                )
            }
            _ => assert!(
                tmp == 0 && snapshots == 1 && logs_before == 3,
                "{point}: {before:?}"
            ),
        }
        let gen_before = max_gen(dir.path());

        let mut node = opts.start();
        let after = file_names(dir.path());
        assert!(
            !after.iter().any(|n| n.ends_with(".tmp")),
            "{point}: a .tmp file is left after startup: {after:?}"
        );
        assert!(
            last_log(dir.path()).0 > gen_before,
            "{point}: no new log after startup: {before:?} -> {after:?}"
        );
        let check = |node: &mut Node, when: &str| {
            let found = node.get_all(&old_keys);
            for (i, v) in found.iter().enumerate() {
                let expected = (i > 0).then(|| format!("old{i}"));
                assert_eq!(v, &expected, "{point}, {when}: key {}", old_keys[i]);
            }
            let found = node.get_all(&new_keys);
            let mut survived = BTreeMap::new();
            for (k, v) in new_keys.iter().zip(found) {
                let in_flight = in_flight
                    .as_ref()
                    .filter(|(key, _)| key == k)
                    .map(|(_, v)| v.clone());
                assert!(
                    v.as_ref() == acked.get(k) || (in_flight.is_some() && v == in_flight),
                    "{point}, {when}: key {k} holds {v:?}, acknowledged {:?}",
                    acked.get(k)
                );
                if let Some(v) = v {
                    survived.insert(k.clone(), v);
                }
            }
            survived
        };
        let mut expected = check(&mut node, "after the crash");

        // The recovered directory compacts (to the end) and recovers again.
        let (more, _) = write_until(&mut node, &new_keys[..5], "again", |n| {
            n.stderr_lines()
                .iter()
                .any(|l| l.contains("compaction done"))
        });
        expected.extend(more);
        assert!(node.stop().status.success());
        let mut node = opts.start();
        check_values(
            &mut node,
            &expected,
            &format!("{point}, after a full compaction"),
        );
        let found = node.get_all(&old_keys);
        assert_eq!(found[0], None, "{point}: the tombstone survived compaction");
        assert_eq!(found[9].as_deref(), Some("old9"), "{point}");
    }
}

/// Checks that `node` holds each key of `expected` with its value.
fn check_values(node: &mut Node, expected: &BTreeMap<String, String>, context: &str) {
    let names: Vec<String> = expected.keys().cloned().collect();
    let found = node.get_all(&names);
    for (k, v) in names.iter().zip(found) {
        assert_eq!(v.as_ref(), expected.get(k), "{context}: key {k}");
    }
}

/// Makes the bytes to append to a log, from the log's bytes.
type MakeTail = fn(&[u8], &mut Rng) -> Vec<u8>;

#[test]
fn a_torn_tail_is_cut_and_what_precedes_it_is_kept() {
    let mut rng = Rng::seeded("a_torn_tail_is_cut_and_what_precedes_it_is_kept");
    let dir = temp_dir();
    let opts = NodeSpec::new("torn").data_dir(dir.path()).fsync("always");
    let mut expected = BTreeMap::new();
    let mut node = opts.start();
    for i in 0..10 {
        node.put(&format!("t{i}"), &format!("value{i}"));
        expected.insert(format!("t{i}"), format!("value{i}"));
    }
    node.delete("t3");
    expected.remove("t3");
    assert!(node.stop().status.success());

    let tails: [(&str, MakeTail); 4] = [
        ("the first 5 bytes of a record", |log, _| {
            let last = record_spans(log).pop().expect("a record");
            log[last][..5].to_vec()
        }),
        ("a record without its last 3 bytes", |log, _| {
            let last = record_spans(log).pop().expect("a record");
            log[last.start..last.end - 3].to_vec()
        }),
        ("random bytes shorter than a header", |_, rng| {
            let n = 1 + rng.below(HEADER_LEN - 1);
            rng.bytes(n)
        }),
        ("a cut header followed by zeros", |log, _| {
            let mut tail = log[..5].to_vec();
            tail.resize(5 + 4096, 0);
            tail
        }),
    ];
    for (n, (what, make_tail)) in tails.iter().enumerate() {
        let (_, path) = last_log(dir.path());
        let log = std::fs::read(&path).expect("read the log");
        let tail = make_tail(&log, &mut rng);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&tail))
            .expect("append the tail");

        let mut node = opts.start();
        let file = path.file_name().expect("file name").to_string_lossy();
        let line = node.wait_log("cut an incomplete record", REPLY_TIMEOUT);
        assert!(
            line.contains(&*file) && line.contains(&format!("offset {}", log.len())),
            "{what}: the log line should name {file} and offset {}: {line}",
            log.len()
        );
        assert_eq!(
            std::fs::metadata(&path).expect("stat the log").len(),
            log.len() as u64,
            "{what}: the file is cut back to its last whole record"
        );
        check_values(&mut node, &expected, what);
        assert_eq!(node.get("t3"), None, "{what}: a deleted key stays deleted");
        // A write after the restart goes into the next round's torn log.
        node.put(&format!("after{n}"), "x");
        expected.insert(format!("after{n}"), "x".into());
        let exited = node.stop();
        assert!(exited.status.success(), "{what}: {exited}");
    }
}

#[test]
fn damage_in_the_middle_of_a_log_stops_startup_unless_asked_to_truncate() {
    let dir = temp_dir();
    let opts = NodeSpec::new("damaged")
        .data_dir(dir.path())
        .fsync("always");
    let names = keys("m", 20);
    let mut node = opts.start();
    for (i, k) in names.iter().enumerate() {
        node.put(k, &format!("value-{i}"));
    }
    assert!(node.stop().status.success());

    let (_, path) = last_log(dir.path());
    let file = path.file_name().expect("file name").to_string_lossy();
    let original = std::fs::read(&path).expect("read the log");
    let spans = record_spans(&original);
    let damaged = spans
        .iter()
        .position(|r| contains(&original[r.clone()], b"value-10"))
        .expect("the record of m10");
    assert!(damaged + 1 < spans.len(), "records follow the damaged one");
    let span = spans[damaged].clone();
    let body_middle = span.start + HEADER_LEN + (span.len() - 12) / 2;

    for (what, at, reason) in [
        (
            "a flipped byte in a length",
            span.start + 1,
            "bad record header",
        ),
        ("a flipped byte in a body", body_middle, "checksum mismatch"),
    ] {
        let mut bad = original.clone();
        bad[at] ^= 0x40;
        std::fs::write(&path, &bad).expect("damage the log");
        let exited = opts
            .try_start()
            .err()
            .unwrap_or_else(|| panic!("{what}: the node started on a damaged log"));
        assert_eq!(exited.status.code(), Some(1), "{what}: {exited}");
        assert_no_panic(&exited.stderr);
        assert_eq!(
            exited.stderr.len(),
            1,
            "{what}: one line\n{}",
            show(&exited.stderr)
        );
        let line = &exited.stderr[0];
        for part in [
            &*file,
            &format!("offset {}", span.start),
            reason,
            "--truncate-corrupt-log",
        ] {
            assert!(line.contains(part), "{what}: '{part}' missing from: {line}");
        }
        assert_eq!(
            std::fs::read(&path).expect("read the log"),
            bad,
            "{what}: a refused startup leaves the log as it was"
        );
    }

    // Asked to, the node cuts the log at the damage and starts.
    let mut node = opts.clone().args(&["--truncate-corrupt-log"]).start();
    let line = node.wait_log("truncated", REPLY_TIMEOUT);
    assert!(
        line.contains(&*file) && line.contains(&format!("offset {}", span.start)),
        "{line}"
    );
    let found = node.get_all(&names);
    for (i, v) in found.iter().enumerate() {
        let expected = (i < 10).then(|| format!("value-{i}"));
        assert_eq!(v, &expected, "key {} after truncating", names[i]);
    }
    assert!(node.stop().status.success());
    assert_eq!(
        std::fs::metadata(&path).expect("stat").len(),
        span.start as u64
    );
    // The cut log is whole now: a plain start works.
    let mut node = opts.start();
    assert_eq!(node.get("m09").as_deref(), Some("value-9"));
    assert_eq!(node.get("m10"), None);
}

#[test]
fn a_restarted_node_s_new_writes_win_over_its_old_ones() {
    let dir = temp_dir();
    let opts = NodeSpec::new("again").data_dir(dir.path()).fsync("always");
    let mut node = opts.start();
    node.put("k", "old");
    node.put("gone", "old");
    node.kill();

    let mut node = opts.start();
    assert_eq!(node.get("k").as_deref(), Some("old"));
    node.put("k", "new");
    node.delete("gone");
    assert_eq!(node.get("k").as_deref(), Some("new"));
    assert_eq!(node.get("gone"), None);
    node.kill();

    // Replaying both logs, the newer writes still win.
    let mut node = opts.start();
    assert_eq!(node.get("k").as_deref(), Some("new"));
    assert_eq!(node.get("gone"), None);
}

#[test]
fn a_restarted_node_s_new_writes_win_at_its_peer() {
    let mut cluster = durable_cluster(2, FAST_SYNC_MS, &["--fsync", "always"]);
    let names = vec!["k".to_string(), "other".to_string()];
    cluster[0].put("k", "old");
    cluster[0].put("other", "old");
    let seen = cluster.converge(0, 1, &names, DISK_CONVERGE_TIMEOUT);
    assert_eq!(seen[0].as_deref(), Some("old"));

    cluster[0].kill();
    let node = cluster[0].restart();
    node.put("k", "new");
    node.delete("other");
    let seen = cluster.converge(0, 1, &names, DISK_CONVERGE_TIMEOUT);
    assert_eq!(seen, vec![Some("new".to_string()), None]);
}

/// The `FAILPOINTS` setting that makes log appends fail as a full disk
/// does once the log file would pass `bytes`.
fn full_disk_at(bytes: u64) -> String {
    format!("log::append=return({bytes})")
}

#[test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs --features failpoints")]
fn a_full_disk_refuses_writes_without_lying() {
    let dir = temp_dir();
    let opts = NodeSpec::new("full").data_dir(dir.path()).fsync("always");
    let limit = 4000;
    let mut node = opts.clone().env("FAILPOINTS", &full_disk_at(limit)).start();
    let value = |i: usize| format!("v{i}-{}", "y".repeat(60));
    let (stored, refused) = fill_log(&mut node, value);
    assert!(stored.len() > 5, "some writes fit: {stored:?}");
    // No lie: the refused value is not there.
    assert_eq!(node.get(&refused), None, "the refused put is not readable");
    // An overwrite at least as large is refused too, and changes nothing.
    let reply = node.cmd(&format!("put {} {}", stored[0], "z".repeat(80)));
    assert!(reply.starts_with("Error: not stored: "), "{reply}");
    assert_eq!(node.get(&stored[0]), Some(value(0)));
    let (_, path) = last_log(dir.path());
    let log = std::fs::read(&path).expect("read the log");
    assert!(
        log.len() as u64 <= limit,
        "the log holds {} bytes, over the {limit} limit",
        log.len()
    );
    let refused_value = value(stored.len());
    assert!(
        !contains(&log, refused_value.as_bytes()),
        "the refused value was left in the log"
    );
    assert_no_panic(&node.kill().stderr);

    // After a restart (with room on the disk) the refused writes are not
    // there either, and everything stored is.
    let mut node = opts.start();
    assert_eq!(node.get(&refused), None);
    let found = node.get_all(&stored);
    for (i, v) in found.into_iter().enumerate() {
        assert_eq!(v, Some(value(i)), "key {}", stored[i]);
    }
    node.put(&refused, "now");
    assert_eq!(node.get(&refused).as_deref(), Some("now"));
}

/// Fills the log of `node` (started with a small
/// [`full_disk_at`]) with puts of `value(i)` to `f000`,
/// `f001`...; returns the keys stored and the key of the refused put.
fn fill_log(node: &mut Node, value: impl Fn(usize) -> String) -> (Vec<String>, String) {
    let mut stored = Vec::new();
    loop {
        let i = stored.len();
        assert!(i < 1000, "1000 writes and the log never filled");
        let key = format!("f{i:03}");
        let reply = node.cmd(&format!("put {key} {}", value(i)));
        if reply == "Value stored." {
            stored.push(key);
            continue;
        }
        assert!(
            reply.starts_with("Error: not stored: "),
            "put {key}: {reply}"
        );
        return (stored, key);
    }
}

/// A `get` in the same batch as a refused put must not return the value
/// that was not stored: it read after that write, so it waits for the
/// group's log write and, when that fails, is not answered.
#[test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs --features failpoints")]
fn a_read_in_the_same_batch_as_a_refused_write_does_not_see_it() {
    let dir = temp_dir();
    let mut node = NodeSpec::new("dirty")
        .data_dir(dir.path())
        .fsync("always")
        .env("FAILPOINTS", &full_disk_at(2000))
        .start();
    let value = |i: usize| format!("v{i}-{}", "y".repeat(60));
    let (stored, refused) = fill_log(&mut node, value);
    let big = "z".repeat(100);
    let put_refused = format!("put {refused} {big}");
    let get_refused = format!("get {refused}");
    let put_stored = format!("put {} {big}", stored[0]);
    let get_stored = format!("get {}", stored[0]);
    node.send_lines(&[&put_refused, &get_refused, &put_stored, &get_stored]);
    let replies: Vec<String> = (0..4).map(|_| node.reply()).collect();
    assert!(replies[0].starts_with("Error: not stored: "), "{replies:?}");
    assert!(replies[2].starts_with("Error: not stored: "), "{replies:?}");
    assert!(
        replies[1].starts_with("Error: not answered: "),
        "a get after a refused put returned the value that was not stored: {replies:?}"
    );
    assert!(
        replies[3].starts_with("Error: not answered: "),
        "a get after a refused overwrite returned the value that was not stored: {replies:?}"
    );
    // Once the group is over, the read is answered from what was logged.
    node.send_lines(&[&get_refused, &get_stored]);
    assert_eq!(node.reply(), "Key not found.");
    assert_eq!(node.reply(), format!("Value: {}", value(0)));
}

#[test]
fn a_data_dir_of_another_node_is_refused() {
    let dir = temp_dir();
    let mut node = NodeSpec::new("alice").data_dir(dir.path()).start();
    node.put("k", "v");
    assert!(node.stop().status.success());

    let exited = NodeSpec::new("bob")
        .data_dir(dir.path())
        .try_start()
        .err()
        .expect("bob must not start on alice's directory");
    assert_eq!(exited.status.code(), Some(1), "{exited}");
    assert_no_panic(&exited.stderr);
    assert!(
        exited.stderr.iter().any(|l| l.contains("'alice'")),
        "the message should name the directory's node\n{}",
        show(&exited.stderr)
    );
    let mut node = NodeSpec::new("alice").data_dir(dir.path()).start();
    assert_eq!(node.get("k").as_deref(), Some("v"));
}

/// A node restarted with a smaller `--max-frame-bytes` finds a record
/// over the new limit: nothing is damaged, so it must not call the log
/// damaged nor advise `--truncate-corrupt-log` (which would throw that
/// record and everything after it away).
#[test]
fn a_record_over_a_lowered_frame_limit_is_not_called_damage() {
    let dir = temp_dir();
    let opts = NodeSpec::new("framed").data_dir(dir.path());
    let mut node = opts.start();
    node.put("big", &"b".repeat(1_100_000));
    node.put("small", "s");
    assert!(node.stop().status.success());

    let lowered = opts.clone().args(&["--max-frame-bytes", "1048576"]);
    match lowered.try_start() {
        Ok(mut node) => {
            assert_eq!(node.get("small").as_deref(), Some("s"));
            assert_eq!(node.get("big").map(|v| v.len()), Some(1_100_000));
        }
        Err(exited) => {
            assert_no_panic(&exited.stderr);
            let text = exited.stderr.join("\n");
            assert!(
                !text.contains("--truncate-corrupt-log") && text.contains("--max-frame-bytes"),
                "the node should point at --max-frame-bytes, not at truncating\n{}",
                show(&exited.stderr)
            );
        }
    }
}

#[test]
fn a_second_process_on_the_same_data_dir_fails_at_once() {
    let dir = temp_dir();
    let opts = NodeSpec::new("owner").data_dir(dir.path()).fsync("always");
    let mut first = opts.start();
    first.put("k", "v");

    let started = Instant::now();
    let exited = opts
        .try_start()
        .err()
        .expect("a second node on the same directory must not start");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the second node took {:?} to fail",
        started.elapsed()
    );
    assert_eq!(exited.status.code(), Some(1), "{exited}");
    assert_no_panic(&exited.stderr);
    assert!(
        exited
            .stderr
            .iter()
            .any(|l| l.contains("in use") && l.contains(&*dir.path().to_string_lossy())),
        "the message should say the directory is in use\n{}",
        show(&exited.stderr)
    );

    // The first node is unharmed, and the lock goes with it.
    first.put("k2", "v2");
    assert_eq!(first.get("k").as_deref(), Some("v"));
    assert!(first.stop().status.success());
    let mut second = opts.start();
    assert_eq!(second.get("k2").as_deref(), Some("v2"));
}

#[test]
fn sigterm_and_sigint_stop_cleanly_and_keep_everything_with_fsync_no() {
    for signal in ["TERM", "INT"] {
        let dir = temp_dir();
        let opts = NodeSpec::new("signalled").data_dir(dir.path()).fsync("no");
        let names = keys("s", 50);
        let mut node = opts.start();
        for (i, k) in names.iter().enumerate() {
            node.send(&format!("put {k} v{i}"));
        }
        for k in &names {
            assert_eq!(node.reply(), "Value stored.", "put {k}");
        }
        let exited = if signal == "TERM" {
            node.terminate()
        } else {
            node.signal("INT");
            node.wait_exit()
        };
        assert_eq!(exited.status.code(), Some(0), "SIG{signal}: {exited}");
        assert!(
            exited
                .stderr
                .iter()
                .any(|l| l.contains(&format!("SIG{signal}: stopping"))),
            "{}",
            show(&exited.stderr)
        );

        let mut node = opts.start();
        let found = node.get_all(&names);
        for (i, v) in found.into_iter().enumerate() {
            assert_eq!(v, Some(format!("v{i}")), "SIG{signal}: key {}", names[i]);
        }
    }
}

#[test]
fn a_restarted_node_rejoins_and_converges_with_a_peer_that_moved_on() {
    let mut cluster = durable_cluster(2, FAST_SYNC_MS, &["--fsync", "always"]);
    let names = keys("r", 30);
    let mut expected: State = vec![None; names.len()];
    // Both nodes write; the second one's writes must survive its crash.
    for i in 0..names.len() {
        let (node, value) = (i % 2, format!("first{i}"));
        cluster[node].put(&names[i], &value);
        expected[i] = Some(value);
    }
    assert_eq!(
        cluster.converge(0, 1, &names, DISK_CONVERGE_TIMEOUT),
        expected
    );

    cluster[1].kill();
    // While n2 is down, n1 overwrites, deletes and adds.
    for i in 0..names.len() {
        match i % 3 {
            0 => {
                cluster[0].put(&names[i], &format!("moved{i}"));
                expected[i] = Some(format!("moved{i}"));
            }
            1 => {
                cluster[0].delete(&names[i]);
                expected[i] = None;
            }
            _ => {}
        }
    }
    let extra = keys("extra", 5);
    for k in &extra {
        cluster[0].put(k, "added");
    }

    let node = cluster[1].restart();
    node.wait_log("entries loaded", REPLY_TIMEOUT);
    assert_eq!(
        cluster.converge(0, 1, &names, DISK_CONVERGE_TIMEOUT),
        expected
    );
    assert_eq!(
        cluster.converge(0, 1, &extra, DISK_CONVERGE_TIMEOUT),
        vec![Some("added".to_string()); extra.len()]
    );

    // The restarted node's own new writes reach the peer as well.
    cluster[1].put(&names[0], "back");
    cluster[1].put(&names[1], "back");
    expected[0] = Some("back".into());
    expected[1] = Some("back".into());
    assert_eq!(
        cluster.converge(0, 1, &names, DISK_CONVERGE_TIMEOUT),
        expected
    );
}

#[test]
fn in_memory_writes_no_files() {
    let cwd = temp_dir();
    let opts = NodeSpec::new("volatile")
        .args(&["--in-memory"])
        .cwd(cwd.path());
    let mut node = opts.start();
    for i in 0..20 {
        node.put(&format!("k{i}"), "v");
    }
    node.delete("k0");
    assert_eq!(node.get("k1").as_deref(), Some("v"));
    let exited = node.stop();
    assert!(exited.status.success(), "{exited}");
    assert_eq!(file_names(cwd.path()), Vec::<String>::new(), "no files");

    // Nothing was kept: a restart starts empty.
    let mut node = opts.start();
    assert_eq!(node.get("k1"), None);
    assert!(node.stop().status.success());
    assert_eq!(file_names(cwd.path()), Vec::<String>::new(), "no files");
}

/// A node whose last own write was a delete, whose tombstone both nodes
/// collected before a compaction, restarts from that snapshot: its next
/// write must still reach its peer.
///
/// The snapshot holds that write's counter only in its version vector (no
/// entry carries it any more). If recovery does not move the write counter
/// above it, the next write reuses a counter the peer has already seen,
/// and the peer never takes the write.
#[test]
fn a_node_restarted_from_a_snapshot_does_not_reuse_its_write_counters() {
    let mut cluster = durable_cluster(
        2,
        FAST_SYNC_MS,
        &["--fsync", "always", "--compact-min-bytes", "4096"],
    );
    let n1 = &mut cluster[0];
    n1.put("x", "1");
    n1.put("k", "v");
    n1.delete("k");
    // Both nodes have it: the tombstone is collected.
    eventually(
        DISK_CONVERGE_TIMEOUT,
        "n1 collects the tombstone of k",
        || cluster[0].status()[1] == "keys: 1 live, 0 tombstones",
    );
    // Writes of n2, merged and logged by n1, make n1 compact; n1 itself
    // writes nothing more.
    let compactions = cluster[0].count_stderr("compaction done");
    let padding = "p".repeat(100);
    for i in 0.. {
        assert!(i < 1000, "n1 never compacted");
        if cluster[0].count_stderr("compaction done") > compactions {
            break;
        }
        let n2 = &mut cluster[1];
        n2.put("hot", &format!("{i}{padding}"));
        assert_eq!(n2.cmd("sync"), "Synced with 1 of 1 peers.");
    }
    cluster[0].kill();
    cluster[0].restart().put("fresh", "after-restart");
    cluster[1].wait_reply("get fresh", "Value: after-restart", DISK_CONVERGE_TIMEOUT);
}

/// A write refused for a full disk is taken back; after a restart the
/// node's next write must still reach its peer, which synced with the
/// node in between.
///
/// The refused write's counter stays in the node's version vector, which
/// the peer learns on the next push; the counter was never logged, so the
/// restarted node issues it again and the peer takes the new write for
/// one it has seen.
#[test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs --features failpoints")]
fn a_write_refused_for_a_full_disk_does_not_hide_later_writes_from_peers() {
    let mut cluster = Cluster::start(2, &[], |i, spec, dir| {
        let spec = on_disk(spec, dir).sync_every(FAST_SYNC_MS).fsync("always");
        if i == 0 {
            spec.env("FAILPOINTS", &full_disk_at(2000))
        } else {
            spec
        }
    });
    let n1 = &mut cluster[0];
    let value = "f".repeat(60);
    for i in 0.. {
        assert!(i < 1000, "the log never filled");
        let reply = n1.cmd(&format!("put f{i} {value}"));
        if reply.starts_with("Error: not stored: ") {
            break;
        }
        assert_eq!(reply, "Value stored.");
    }
    // A push: the peer learns the node's version vector.
    n1.cmd("sync");
    cluster[0].kill();
    cluster[0]
        .restart_with(|spec| spec.without_env("FAILPOINTS"))
        .put("fresh", "after-restart");
    cluster[1].wait_reply("get fresh", "Value: after-restart", DISK_CONVERGE_TIMEOUT);
}

/// SIGTERM while writes stream in, `rounds` times: every write the node
/// acknowledged, before or after the signal, is there after a restart.
/// With `exit_0`, the node must also exit with status 0.
fn sigterm_during_writes(test: &str, rounds: usize, exit_0: bool) {
    let mut rng = Rng::seeded(test);
    for round in 0..rounds {
        let dir = temp_dir();
        let opts = NodeSpec::new("stream").data_dir(dir.path()).fsync("no");
        let mut node = opts.start();
        let mut stdin = node.take_stdin();
        let acked = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (acked, stop) = (Arc::clone(&acked), Arc::clone(&stop));
            std::thread::spawn(move || {
                for i in 0..100_000 {
                    while i >= acked.load(Ordering::SeqCst) + 32 {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        std::thread::sleep(Duration::from_micros(100));
                    }
                    if writeln!(stdin, "put w{i:05} v{i}").is_err() {
                        return;
                    }
                }
                panic!("the node never stopped reading");
            })
        };
        let signal_after = 1 + rng.below(300);
        let mut count = 0;
        loop {
            if count == signal_after {
                node.signal("TERM");
            }
            match node.next_reply() {
                Some(reply) => {
                    assert_eq!(reply, "Value stored.", "round {round}, put w{count:05}");
                    count += 1;
                    acked.store(count, Ordering::SeqCst);
                }
                None => break,
            }
        }
        assert!(
            count >= signal_after,
            "round {round}: stdout closed before the signal"
        );
        let exited = node.wait_exit();
        stop.store(true, Ordering::SeqCst);
        writer.join().expect("writer thread");
        assert_no_panic(&exited.stderr);
        let context =
            format!("round {round}: SIGTERM after {signal_after} replies ({count} in all)");
        assert!(
            exited.status.code().is_some(),
            "{context}: the node died of a signal: {exited}"
        );
        if exit_0 {
            assert_eq!(exited.status.code(), Some(0), "{context}: {exited}");
        }

        let mut node = opts.start();
        let names: Vec<String> = (0..count).map(|i| format!("w{i:05}")).collect();
        let found = node.get_all(&names);
        for (i, v) in found.into_iter().enumerate() {
            assert_eq!(v, Some(format!("v{i}")), "{context}: w{i:05}");
        }
    }
}

#[test]
fn sigterm_during_writes_keeps_every_acknowledged_write() {
    sigterm_during_writes(
        "sigterm_during_writes_keeps_every_acknowledged_write",
        5,
        false,
    );
}

#[test]
fn sigterm_during_writes_exits_0() {
    sigterm_during_writes("sigterm_during_writes_exits_0", 50, true);
}

/// A group refused for a full disk may be the one that first named a peer
/// in the current log; a later, smaller group that uses that peer's id
/// fits. The log must still be readable at the next startup.
#[test]
#[cfg_attr(not(feature = "failpoints"), ignore = "needs --features failpoints")]
fn a_refused_group_that_named_a_peer_leaves_the_log_readable() {
    let mut cluster = durable_cluster(2, FAST_SYNC_MS, &["--fsync", "always"]);
    // The header every log starts with (writer and names), before n1 has
    // heard of any other writer.
    let header = std::fs::metadata(last_log(cluster[0].spec().dir()).1)
        .expect("stat the log")
        .len();
    cluster[0].kill();
    // Room for the tombstone and the record naming n2, not for the put.
    cluster[0].restart_with(|spec| spec.env("FAILPOINTS", &full_disk_at(header + 110)));
    // n2's first write is too large for n1's log: refused, with the record
    // that names n2.
    cluster[1].put("big", &"b".repeat(500));
    cluster[0].wait_log("the writes of this group are refused", REPLY_TIMEOUT);
    // Its tombstone is small enough.
    cluster[1].delete("big");
    // n1 holding the tombstone shows; so does n2 seeing n1 acknowledge it,
    // which can come first: once both have it, n1 may collect it at once.
    eventually(DISK_CONVERGE_TIMEOUT, "n1 takes the tombstone", || {
        cluster[0].status()[1] == "keys: 0 live, 1 tombstones"
            || cluster[1].status()[2].contains(", 0 writes behind,")
    });
    cluster[0].kill();
    let opts = cluster[0].spec().clone().without_env("FAILPOINTS");
    match opts.try_start() {
        Ok(mut node) => assert_eq!(node.get("big"), None),
        Err(e) => {
            let truncating = opts.args(&["--truncate-corrupt-log"]).try_start();
            panic!(
                "n1 cannot restart: {e}\nwith --truncate-corrupt-log: {}",
                match truncating {
                    Ok(_) => "it starts".to_string(),
                    Err(e) => e.to_string(),
                }
            );
        }
    }
}

/// A peer killed with SIGKILL again and again, at random moments while
/// the other node writes and pushes to it, converges in the end and keeps
/// every write it acknowledged. The nodes write disjoint keys, so the
/// expected values do not depend on last-write-wins.
#[test]
fn a_peer_killed_again_and_again_while_syncing_converges_and_keeps_its_writes() {
    let mut rng =
        Rng::seeded("a_peer_killed_again_and_again_while_syncing_converges_and_keeps_its_writes");
    let mut cluster = durable_cluster(2, FAST_SYNC_MS, &["--fsync", "always"]);
    let names = keys("c", 40);
    let mut expected: State = vec![None; names.len()];
    let (mine, theirs) = (0..30, 30..40);
    let mut writes = 0;
    let mut write = |cluster: &mut Cluster, node: usize, keys: std::ops::Range<usize>, n: usize| {
        let node = &mut cluster[node];
        let mut changes = Vec::new();
        for _ in 0..n {
            writes += 1;
            let k = keys.start + rng.below(keys.len());
            if rng.percent(20) {
                node.send(&format!("delete {}", names[k]));
                changes.push((k, None));
            } else {
                node.send(&format!("put {} w{writes}", names[k]));
                changes.push((k, Some(format!("w{writes}"))));
            }
        }
        for (k, value) in changes {
            let reply = node.reply();
            let ok = if value.is_some() {
                "Value stored."
            } else {
                "Key deleted."
            };
            assert_eq!(reply, ok, "write to {}", names[k]);
            expected[k] = value;
        }
        rng.below(150)
    };
    for _ in 0..5 {
        write(&mut cluster, 1, theirs.clone(), 5);
        let pause = write(&mut cluster, 0, mine.clone(), 50);
        // A random moment of the pushes that the burst started.
        std::thread::sleep(Duration::from_millis(pause as u64));
        cluster[1].kill();
        write(&mut cluster, 0, mine.clone(), 20);
        cluster[1].restart();
    }
    let found = cluster.converge(0, 1, &names, DISK_CONVERGE_TIMEOUT);
    assert_eq!(found, expected);
}
