//! Sharding (issue 14) against real binaries: with `--replicas 3` every
//! key is stored on exactly three members, the ones the layout gives its
//! slot, and is served through any member; a killed member costs no key;
//! a member joining and one leaving while a client writes lose no
//! acknowledged write and move about as few copies as they must; and
//! cluster-mode clients (`redis-cli -c`, the `redis` crate's cluster
//! client) work against the cluster.
//!
//! What a node stores is asked of the node itself: `KEYS *` and `DBSIZE`
//! answer for its own data, as in Redis Cluster, and `CLUSTER SLOTS` says
//! which members the layout gives each slot. Nodes join through the first
//! one (`--join`), as in `tests/membership.rs`, so that members can come
//! and go; all keep their data in memory.

mod common;

use common::{
    eventually, eventually_ok, missing_tool, placement::key_slot, poll, redis_cli,
    redis_connection, redis_url, wait_cluster_ok, Node, NodeSpec, Rng, RESP_TIMEOUT,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Members per partition.
const REPLICAS: usize = 3;

/// Sync interval of these tests' nodes.
const SYNC_MS: u64 = 100;

/// Failure timeout of these tests' nodes: a killed member is down after
/// this long.
const FAILURE_MS: u64 = 2000;

/// How long the data may take to be where the layout says, after writes
/// or a change of members: each partition's keys pulled by its new
/// replicas and dropped by its old ones (a debug build on two busy
/// cores).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(40);

/// How long every node may take to serve every acknowledged write (a
/// write is acknowledged once one replica holds it; the others get it by
/// sync), or to serve the keys of a killed member from the others.
const SERVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Between two looks at every node's keys: listing them is not free.
const LOOK_EVERY: Duration = Duration::from_millis(200);

/// Commands per pipelined request.
const BATCH: usize = 500;

/// How many members store each key in a cluster of `members`: the
/// layout gives a slot `--replicas` members, or all when there are
/// fewer.
fn copies(members: usize) -> usize {
    REPLICAS.min(members)
}

/// A member with `--replicas 3`, joining through `through` (the first
/// member joins none).
fn member(name: &str, through: Option<SocketAddr>) -> NodeSpec {
    let spec = NodeSpec::new(name).sync_every(SYNC_MS).args(&[
        "--replicas",
        &REPLICAS.to_string(),
        "--failure-timeout-ms",
        &FAILURE_MS.to_string(),
    ]);
    match through {
        Some(addr) => spec.args(&["--join", &addr.to_string()]),
        None => spec,
    }
}

/// `n` members, `n1` first and every other joining through it; returns
/// once each knows all of them as up.
fn start_cluster(n: usize) -> Vec<Node> {
    let first = member("n1", None).start();
    let seed = first.addr();
    let mut nodes = vec![first];
    for i in 2..=n {
        nodes.push(member(&format!("n{i}"), Some(seed)).start());
    }
    wait_cluster_ok(&nodes.iter().collect::<Vec<_>>());
    nodes
}

/// `n` keys `prefix:0` ... with values `value-0` ...
fn numbered(prefix: &str, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("{prefix}:{i}"), format!("value-{i}")))
        .collect()
}

/// SETs every pair through `addr`, pipelined.
fn set_all(addr: SocketAddr, pairs: &[(String, String)]) -> redis::RedisResult<()> {
    let mut con = redis_connection(addr);
    for chunk in pairs.chunks(BATCH) {
        let mut pipe = redis::pipe();
        for (k, v) in chunk {
            pipe.cmd("SET").arg(k).arg(v).ignore();
        }
        pipe.query::<()>(&mut con)?;
    }
    Ok(())
}

/// The values of `keys` through `addr` (GETs, pipelined).
fn get_all(addr: SocketAddr, keys: &[&str]) -> redis::RedisResult<Vec<Option<String>>> {
    let mut con = redis_connection(addr);
    let mut values = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(BATCH) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.cmd("GET").arg(*k);
        }
        values.extend(pipe.query::<Vec<Option<String>>>(&mut con)?);
    }
    Ok(values)
}

/// Waits until every node of `nodes` answers a GET of each key of `want`
/// with its value (`None`: not found).
fn wait_served(nodes: &[&Node], want: &BTreeMap<String, Option<String>>, within: Duration) {
    let keys: Vec<&str> = want.keys().map(String::as_str).collect();
    let deadline = Instant::now() + within;
    for node in nodes {
        eventually_ok(
            deadline.saturating_duration_since(Instant::now()),
            format_args!("{} to serve all {} keys", node.name(), keys.len()),
            || {
                let got = get_all(node.addr(), &keys).map_err(|e| e.to_string())?;
                let wrong: Vec<String> = keys
                    .iter()
                    .zip(&got)
                    .filter(|(k, v)| want[**k] != **v)
                    .map(|(k, v)| format!("{k}: {v:?}, want {:?}", want[*k]))
                    .collect();
                if wrong.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "{} wrong, first {:?}",
                        wrong.len(),
                        &wrong[..3.min(wrong.len())]
                    ))
                }
            },
        );
    }
}

/// `pairs` as the values a GET must find.
fn present(pairs: &[(String, String)]) -> BTreeMap<String, Option<String>> {
    pairs
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect()
}

/// The keys node at `addr` stores (its `KEYS *`, which answers for its
/// own data only) and its `DBSIZE`.
fn stored(addr: SocketAddr) -> Result<(BTreeSet<String>, usize), String> {
    let mut con = redis_connection(addr);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut con)
        .map_err(|e| format!("KEYS on {addr}: {e}"))?;
    let size: usize = redis::cmd("DBSIZE")
        .query(&mut con)
        .map_err(|e| format!("DBSIZE on {addr}: {e}"))?;
    Ok((keys.into_iter().collect(), size))
}

/// What each node stores, by node name.
type Holdings = BTreeMap<String, BTreeSet<String>>;

/// The layout as `CLUSTER SLOTS` on `addr` shows it: for each slot, the
/// ports of the members that hold it, master first.
fn slot_owners(addr: SocketAddr) -> Result<Vec<Vec<u16>>, String> {
    let mut con = redis_connection(addr);
    let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query(&mut con)
        .map_err(|e| format!("CLUSTER SLOTS on {addr}: {e}"))?;
    let mut owners = vec![Vec::new(); 16384];
    for range in ranges {
        let redis::Value::Array(fields) = range else {
            return Err(format!("a CLUSTER SLOTS range {range:?}"));
        };
        let int = |v: &redis::Value| -> Result<i64, String> {
            redis::from_redis_value(v.clone()).map_err(|e| format!("{v:?}: {e}"))
        };
        let (start, end) = (int(&fields[0])?, int(&fields[1])?);
        let mut ports = Vec::new();
        for node in &fields[2..] {
            let redis::Value::Array(node) = node else {
                return Err(format!("a CLUSTER SLOTS node {node:?}"));
            };
            ports.push(int(&node[1])? as u16);
        }
        for slot in start..=end {
            let owners = &mut owners[slot as usize];
            if !owners.is_empty() {
                return Err(format!("slot {slot} in two ranges of CLUSTER SLOTS"));
            }
            owners.clone_from(&ports);
        }
    }
    Ok(owners)
}

/// Checks that the data of `nodes` is placed as the layout says, and
/// returns what each stores: the `DBSIZE`s add up to 3 per key of `keys`;
/// each key of `keys` is on exactly 3 nodes and no node stores another;
/// every node's `CLUSTER SLOTS` is the same, covers every slot with 3
/// distinct members, names every node of `nodes` and no other; and each
/// key is stored on the very members of its slot.
fn placed(nodes: &[&Node], keys: &BTreeSet<String>) -> Result<Holdings, String> {
    let mut holdings = Holdings::new();
    let mut sizes = Vec::new();
    for node in nodes {
        let (stored, size) = stored(node.addr())?;
        if size != stored.len() {
            return Err(format!(
                "{}: DBSIZE {size}, KEYS * {} keys",
                node.name(),
                stored.len()
            ));
        }
        sizes.push((node.name(), size));
        holdings.insert(node.name().to_owned(), stored);
    }
    let copies = copies(nodes.len());
    let total: usize = sizes.iter().map(|(_, size)| size).sum();
    if total != copies * keys.len() {
        return Err(format!(
            "the DBSIZEs {sizes:?} add up to {total}, want {copies} x {} keys",
            keys.len()
        ));
    }
    let mut holders: BTreeMap<&str, Vec<u16>> = keys.iter().map(|k| (k.as_str(), vec![])).collect();
    for node in nodes {
        for key in &holdings[node.name()] {
            match holders.get_mut(key.as_str()) {
                Some(ports) => ports.push(node.addr().port()),
                None => return Err(format!("{} stores {key}, which no one wrote", node.name())),
            }
        }
    }
    let wrong: Vec<_> = holders
        .iter()
        .filter(|(_, on)| on.len() != copies)
        .collect();
    if let Some((key, on)) = wrong.first() {
        return Err(format!(
            "{} keys are not on exactly {copies} nodes, e.g. {key} on ports {on:?}",
            wrong.len()
        ));
    }
    // Compared as sets: which replica a node shows as master is its own
    // view of who is up.
    let members_of = |addr| -> Result<Vec<Vec<u16>>, String> {
        let mut owners = slot_owners(addr)?;
        owners.iter_mut().for_each(|on| on.sort_unstable());
        Ok(owners)
    };
    let owners = members_of(nodes[0].addr())?;
    for node in &nodes[1..] {
        if members_of(node.addr())? != owners {
            return Err(format!(
                "{} and {} show different CLUSTER SLOTS",
                nodes[0].name(),
                node.name()
            ));
        }
    }
    let ports: BTreeSet<u16> = nodes.iter().map(|n| n.addr().port()).collect();
    let shown: BTreeSet<u16> = owners.iter().flatten().copied().collect();
    if shown != ports {
        return Err(format!(
            "CLUSTER SLOTS shows ports {shown:?}, the members are {ports:?}"
        ));
    }
    for (slot, on) in owners.iter().enumerate() {
        let distinct: BTreeSet<u16> = on.iter().copied().collect();
        if on.len() != copies || distinct.len() != copies {
            return Err(format!("CLUSTER SLOTS gives slot {slot} to ports {on:?}"));
        }
    }
    for (key, on) in &holders {
        let want = &owners[usize::from(key_slot(key.as_bytes()))];
        let mut on = on.clone();
        on.sort_unstable();
        if on != *want {
            return Err(format!(
                "{key} is stored on ports {on:?}, CLUSTER SLOTS gives its slot to {want:?}"
            ));
        }
    }
    Ok(holdings)
}

/// Waits until [`placed`] holds; returns what each node stores.
fn wait_placed(nodes: &[&Node], keys: &BTreeSet<String>) -> Holdings {
    poll(
        SETTLE_TIMEOUT,
        LOOK_EVERY,
        format_args!("{} keys to be placed on {} nodes", keys.len(), nodes.len()),
        || placed(nodes, keys),
    )
}

/// Key copies that arrived between two looks: over the nodes of `after`,
/// the keys of `keys` each stores that it did not store `before`.
fn copies_moved(before: &Holdings, after: &Holdings, keys: &BTreeSet<String>) -> usize {
    let none = BTreeSet::new();
    after
        .iter()
        .map(|(name, now)| {
            let then = before.get(name).unwrap_or(&none);
            now.iter()
                .filter(|k| keys.contains(*k) && !then.contains(*k))
                .count()
        })
        .sum()
}

/// The keys the nodes of `holdings` store, together.
fn all_keys(holdings: &Holdings) -> BTreeSet<String> {
    holdings.values().flatten().cloned().collect()
}

/// Six members, 3,000 keys written through n1: every node serves every
/// key; each is stored on exactly three members, those `CLUSTER SLOTS`
/// gives its slot; and each member stores about its share.
#[test]
fn six_nodes_store_each_key_on_three_and_serve_every_key_through_each() {
    const KEYS: usize = 3000;
    let nodes = start_cluster(6);
    let refs: Vec<&Node> = nodes.iter().collect();
    let pairs = numbered("key", KEYS);
    set_all(nodes[0].addr(), &pairs).expect("SETs through n1");
    wait_served(&refs, &present(&pairs), SERVE_TIMEOUT);
    let keys: BTreeSet<String> = pairs.into_iter().map(|(k, _)| k).collect();
    let holdings = wait_placed(&refs, &keys);
    // Balanced: no node far from its share (half of the keys at 6 nodes
    // and 3 replicas).
    let share = copies(nodes.len()) * KEYS / nodes.len();
    for (name, held) in &holdings {
        assert!(
            held.len() > share / 2 && held.len() < share * 3 / 2,
            "{name} stores {} keys, its share is {share}",
            held.len()
        );
    }
    // INFO says where the rebalance stands: each node holds its exact
    // share of the 256 partitions (3 x 256 / 6), none still arriving.
    for node in &nodes {
        let mut con = redis_connection(node.addr());
        eventually(
            SERVE_TIMEOUT,
            format!("{} to have every partition in", node.name()),
            || {
                common::info_field(&mut con, "cluster", "netdb_partitions_arriving").as_deref()
                    == Some("0")
            },
        );
        assert_eq!(
            common::info_field(&mut con, "cluster", "netdb_partitions_held").as_deref(),
            Some("128"),
            "{}",
            node.name()
        );
    }
}

/// Six members with their keys in place; n4 killed with SIGKILL: every
/// live node still serves every key, takes a new value for each, and
/// serves the new values. Nothing moves while a member is merely down
/// (only a join, a leave or a forget changes the layout).
#[test]
fn a_killed_node_costs_no_key_and_every_key_stays_writable() {
    const KEYS: usize = 1500;
    let mut nodes = start_cluster(6);
    let pairs = numbered("key", KEYS);
    set_all(nodes[0].addr(), &pairs).expect("SETs through n1");
    let keys: BTreeSet<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
    // Every copy in place first: a write acknowledged by one replica only
    // may die with it.
    let before = wait_placed(&nodes.iter().collect::<Vec<_>>(), &keys);
    let mut killed = nodes.remove(3);
    killed.kill();
    let live: Vec<&Node> = nodes.iter().collect();
    wait_served(&live, &present(&pairs), SERVE_TIMEOUT);
    // New values, each through a different live node, every SET retried
    // until acknowledged.
    let rewritten: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.clone(), format!("new-{v}")))
        .collect();
    let mut through: Vec<Vec<(String, String)>> = vec![Vec::new(); live.len()];
    for (i, pair) in rewritten.iter().enumerate() {
        through[i % live.len()].push(pair.clone());
    }
    for (node, pairs) in live.iter().zip(&through) {
        eventually_ok(
            SERVE_TIMEOUT,
            format_args!("{} to take {} writes", node.name(), pairs.len()),
            || set_all(node.addr(), pairs).map_err(|e| e.to_string()),
        );
    }
    wait_served(&live, &present(&rewritten), SERVE_TIMEOUT);
    // Nothing moved on a member merely down: each key is still on its
    // live replicas, at least two of them.
    for node in &live {
        let (now, _) = stored(node.addr()).expect("KEYS");
        let then = &before[node.name()];
        assert!(
            now == *then,
            "{} stores {} keys it did not before n4 died, and lost {}",
            node.name(),
            now.difference(then).count(),
            then.difference(&now).count()
        );
    }
    for key in &keys {
        let on = live
            .iter()
            .filter(|n| before[n.name()].contains(key))
            .count();
        assert!(on >= copies(6) - 1, "{key} is on {on} live nodes");
    }
}

/// Six members keeping their data on disk; n3 killed with SIGKILL while
/// writes and deletes go on through n1, then restarted from its data
/// directory: every acknowledged write and delete is in place afterwards,
/// each key on exactly its three members again (n3 catching up on what
/// it missed, and serving its partitions once it has).
#[test]
fn a_member_killed_and_restarted_from_its_data_loses_nothing() {
    const KEYS: usize = 1200;
    let dir = common::temp_dir();
    let first = common::on_disk(member("n1", None), dir.path()).start();
    let seed = first.addr();
    let mut nodes = vec![first];
    for i in 2..=6 {
        nodes.push(common::on_disk(member(&format!("n{i}"), Some(seed)), dir.path()).start());
    }
    wait_cluster_ok(&nodes.iter().collect::<Vec<_>>());
    let pairs = numbered("key", KEYS);
    set_all(seed, &pairs).expect("SETs through n1");
    let keys: BTreeSet<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
    wait_placed(&nodes.iter().collect::<Vec<_>>(), &keys);

    nodes[2].kill();
    // While n3 is down: new values for a third of the keys, a third
    // deleted, and fresh keys.
    let mut want: BTreeMap<String, Option<String>> = present(&pairs);
    let mut con = redis_connection(seed);
    for (i, (k, _)) in pairs.iter().enumerate() {
        match i % 3 {
            0 => {
                let _: () = redis::cmd("SET")
                    .arg(k)
                    .arg("while-down")
                    .query(&mut con)
                    .expect("SET while n3 is down");
                want.insert(k.clone(), Some("while-down".into()));
            }
            1 => {
                let _: i64 = redis::cmd("DEL")
                    .arg(k)
                    .query(&mut con)
                    .expect("DEL while n3 is down");
                want.insert(k.clone(), None);
            }
            _ => {}
        }
    }
    let fresh = numbered("fresh", 300);
    set_all(seed, &fresh).expect("fresh SETs while n3 is down");
    want.extend(present(&fresh));

    nodes[2].restart();
    let refs: Vec<&Node> = nodes.iter().collect();
    wait_cluster_ok(&refs);
    wait_served(&refs, &want, SERVE_TIMEOUT);
    let left: BTreeSet<String> = want
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k.clone())
        .collect();
    wait_placed(&refs, &left);
}

/// A Redis connection to `addr`, or why there is none (the writer
/// retries rather than fail on a connection the cluster dropped).
fn try_connect(addr: SocketAddr) -> redis::RedisResult<redis::Connection> {
    let con = redis::Client::open(redis_url(addr))?.get_connection_with_timeout(RESP_TIMEOUT)?;
    con.set_read_timeout(Some(RESP_TIMEOUT))?;
    con.set_write_timeout(Some(RESP_TIMEOUT))?;
    Ok(con)
}

/// A client writing through one node, SET after SET, each retried until
/// acknowledged: overwrites of the keys it knows and, while allowed,
/// fresh keys. It remembers every key's last acknowledged value.
struct Writer {
    stop: mpsc::Sender<()>,
    /// Whether it may write fresh keys (off while the test counts copies,
    /// so that every key written is in place).
    fresh: Arc<AtomicBool>,
    /// Every key it has sent a SET for, acknowledged or not yet.
    sent: Arc<Mutex<BTreeSet<String>>>,
    /// Acknowledged writes so far.
    acked: Arc<AtomicUsize>,
    thread: JoinHandle<(BTreeMap<String, String>, usize)>,
}

/// Between two writes of the [`Writer`]: a steady trickle that leaves the
/// nodes most of two cores.
const WRITE_PACE: Duration = Duration::from_millis(3);

impl Writer {
    fn start(addr: SocketAddr, initial: &[(String, String)]) -> Writer {
        let (stop, stopped) = mpsc::channel();
        let fresh = Arc::new(AtomicBool::new(true));
        let sent: Arc<Mutex<BTreeSet<String>>> =
            Arc::new(Mutex::new(initial.iter().map(|(k, _)| k.clone()).collect()));
        let acked = Arc::new(AtomicUsize::new(0));
        let mut values: BTreeMap<String, String> = initial.iter().cloned().collect();
        let thread = {
            let (fresh, sent, acked) = (Arc::clone(&fresh), Arc::clone(&sent), Arc::clone(&acked));
            std::thread::Builder::new()
                .name("writer".into())
                .spawn(move || {
                    let mut rng = Rng::seeded("sharding writer");
                    let mut names: Vec<String> = values.keys().cloned().collect();
                    let mut con = None;
                    let mut errors = 0;
                    for seq in 0.. {
                        match stopped.recv_timeout(WRITE_PACE) {
                            Err(RecvTimeoutError::Timeout) => {}
                            _ => break,
                        }
                        // Whether to write a fresh key is decided, and
                        // the key noted, under the lock `pause_fresh`
                        // takes: no fresh key escapes its list.
                        let mut noted = sent.lock().expect("sent keys");
                        let key = if fresh.load(Ordering::SeqCst) && rng.percent(25) {
                            let key = format!("fresh:{seq}");
                            noted.insert(key.clone());
                            names.push(key.clone());
                            key
                        } else {
                            names[rng.below(names.len())].clone()
                        };
                        drop(noted);
                        let value = format!("written-{seq}");
                        // An unacknowledged SET may or may not have taken
                        // effect: only an acknowledged one leaves the
                        // key's value known.
                        eventually_ok(
                            SERVE_TIMEOUT,
                            format_args!("SET {key} to be acknowledged"),
                            || {
                                if con.is_none() {
                                    con = Some(try_connect(addr).inspect_err(|_| errors += 1)?);
                                }
                                let c = con.as_mut().expect("connected just now");
                                let set = redis::cmd("SET").arg(&key).arg(&value).query::<()>(c);
                                if let Err(e) = &set {
                                    errors += 1;
                                    if e.is_io_error() || e.is_connection_dropped() {
                                        con = None;
                                    }
                                }
                                set
                            },
                        );
                        values.insert(key, value);
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    (values, errors)
                })
                .expect("spawn the writer")
        };
        Writer {
            stop,
            fresh,
            sent,
            acked,
            thread,
        }
    }

    /// Waits until `n` more writes are acknowledged.
    fn wait_progress(&self, n: usize) {
        let from = self.acked.load(Ordering::SeqCst);
        eventually(SERVE_TIMEOUT, format_args!("{n} more writes"), || {
            self.acked.load(Ordering::SeqCst) >= from + n
        });
    }

    /// Stops fresh keys (overwrites go on); returns every key written.
    fn pause_fresh(&self) -> BTreeSet<String> {
        let sent = self.sent.lock().expect("sent keys");
        self.fresh.store(false, Ordering::SeqCst);
        sent.clone()
    }

    fn resume_fresh(&self) {
        self.fresh.store(true, Ordering::SeqCst);
    }

    /// Stops it; returns each key's last acknowledged value and how many
    /// SETs failed (and were retried).
    fn finish(self) -> (BTreeMap<String, String>, usize) {
        drop(self.stop);
        self.thread.join().expect("the writer failed")
    }
}

/// Six members with data, a client writing through n1 all along: n7
/// joins and, once the data has moved, n2 leaves gracefully. No
/// acknowledged write is lost, and each change moves at most 1.5 times
/// the copies it must: a join, the newcomer's share (3/7 of the keys);
/// a leave, the leaver's copies.
#[test]
fn a_join_and_a_leave_while_a_client_writes_lose_nothing_and_move_little() {
    const KEYS: usize = 2000;
    let mut nodes = start_cluster(6);
    let seed = nodes[0].addr();
    let initial = numbered("key", KEYS);
    set_all(seed, &initial).expect("SETs through n1");
    let writer = Writer::start(seed, &initial);
    writer.wait_progress(50);

    let keys = writer.pause_fresh();
    let six = wait_placed(&nodes.iter().collect::<Vec<_>>(), &keys);
    writer.resume_fresh();

    // The join, with writes going on.
    let started = Instant::now();
    nodes.push(member("n7", Some(seed)).start());
    writer.wait_progress(50);
    wait_cluster_ok(&nodes.iter().collect::<Vec<_>>());
    let keys_now = writer.pause_fresh();
    let seven = wait_placed(&nodes.iter().collect::<Vec<_>>(), &keys_now);
    let old_keys = all_keys(&six);
    let moved = copies_moved(&six, &seven, &old_keys);
    let ideal = copies(7) * old_keys.len() / 7;
    eprintln!(
        "join: {moved} of {} copies moved (ideal {ideal}) in {:?}",
        copies(7) * old_keys.len(),
        started.elapsed()
    );
    assert!(
        seven["n7"].len() * 2 > copies(7) * keys_now.len() / 7,
        "n7 stores {} keys of {}",
        seven["n7"].len(),
        keys_now.len()
    );
    assert!(
        moved * 2 <= ideal * 3,
        "a join moved {moved} copies, over 1.5 x the ideal {ideal}"
    );
    writer.resume_fresh();

    // The leave, with writes going on.
    let started = Instant::now();
    let leaver = &mut nodes[1];
    assert_eq!(leaver.name(), "n2");
    let ok: String = redis::cmd("NETDB.LEAVE")
        .query(&mut redis_connection(leaver.addr()))
        .expect("NETDB.LEAVE");
    assert_eq!(ok, "OK");
    let exited = leaver.wait_exit();
    assert!(exited.status.success(), "{exited}");
    nodes.remove(1);
    writer.wait_progress(50);
    let refs: Vec<&Node> = nodes.iter().collect();
    wait_cluster_ok(&refs);
    let keys_now = writer.pause_fresh();
    let after = wait_placed(&refs, &keys_now);
    let old_keys = all_keys(&seven);
    let ideal = seven["n2"].len();
    let moved = copies_moved(&seven, &after, &old_keys);
    eprintln!(
        "leave: {moved} copies moved (ideal {ideal}, n2's) in {:?}",
        started.elapsed()
    );
    assert!(
        moved * 2 <= ideal * 3,
        "a leave moved {moved} copies, over 1.5 x the ideal {ideal}"
    );

    let (values, errors) = writer.finish();
    eprintln!(
        "{} keys, their last acknowledged values checked; {errors} SETs were retried",
        values.len()
    );
    let want = values.into_iter().map(|(k, v)| (k, Some(v))).collect();
    wait_served(&refs, &want, SERVE_TIMEOUT);
}

/// The `redis` crate's cluster client, reading from replicas too: single
/// and multi-key commands over keys of many slots, each on the right
/// three members after.
#[test]
fn the_redis_crate_s_cluster_client_works_against_six_nodes() {
    const KEYS: usize = 600;
    let nodes = start_cluster(6);
    let refs: Vec<&Node> = nodes.iter().collect();
    #[allow(deprecated)] // its replacement takes a strategy this needs not
    let client = redis::cluster::ClusterClient::builder(vec![redis_url(nodes[2].addr())])
        .read_from_replicas()
        .connection_timeout(RESP_TIMEOUT)
        .response_timeout(RESP_TIMEOUT)
        .build()
        .expect("a cluster client");
    let mut con = client.get_connection().expect("a cluster connection");
    let pairs = numbered("cc", KEYS);
    for (k, v) in &pairs {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg(v)
            .query(&mut con)
            .unwrap_or_else(|e| panic!("SET {k}: {e}"));
    }
    // Reads from replicas may come before sync: wait for each.
    for (k, v) in &pairs {
        eventually(SERVE_TIMEOUT, format_args!("GET {k} to find {v}"), || {
            redis::cmd("GET")
                .arg(k)
                .query::<Option<String>>(&mut con)
                .ok()
                == Some(Some(v.clone()))
        });
    }
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    let want: Vec<Option<String>> = pairs.iter().map(|(_, v)| Some(v.clone())).collect();
    eventually_ok(
        SERVE_TIMEOUT,
        "MGET over many slots to find every value",
        || {
            let got: Vec<Option<String>> = redis::cmd("MGET")
                .arg(&keys)
                .query(&mut con)
                .map_err(|e| e.to_string())?;
            let wrong = got.iter().zip(&want).filter(|(g, w)| g != w).count();
            if wrong == 0 {
                Ok(())
            } else {
                Err(format!("{wrong} of {} values wrong", want.len()))
            }
        },
    );
    let deleted: usize = redis::cmd("DEL")
        .arg(&keys[..100])
        .query(&mut con)
        .expect("DEL over many slots");
    assert_eq!(deleted, 100);
    let mut expect = present(&pairs);
    for k in &keys[..100] {
        expect.insert((*k).to_owned(), None);
    }
    wait_served(&refs, &expect, SERVE_TIMEOUT);
    let left: BTreeSet<String> = keys[100..].iter().map(|k| (*k).to_owned()).collect();
    wait_placed(&refs, &left);
}

/// `redis-cli -c` through each node in turn: SETs of keys of many slots,
/// then GETs through the next node, each on the right three members
/// after, one command per run as a script calling `redis-cli -c` would.
#[test]
fn redis_cli_in_cluster_mode_works_against_six_nodes() {
    if missing_tool("redis-cli") {
        return;
    }
    const KEYS: usize = 90;
    let nodes = start_cluster(6);
    let refs: Vec<&Node> = nodes.iter().collect();
    let pairs = numbered("cli", KEYS);
    for (i, (k, v)) in pairs.iter().enumerate() {
        let node = &nodes[i % nodes.len()];
        let out = redis_cli(node.addr(), &["-c", "SET", k, v]);
        assert_eq!(out.trim(), "OK", "SET {k} through {}", node.name());
    }
    // Every write is acknowledged by one replica; a GET may reach another
    // first.
    wait_served(&refs, &present(&pairs), SERVE_TIMEOUT);
    for (i, (k, v)) in pairs.iter().enumerate() {
        let node = &nodes[(i + 1) % nodes.len()];
        let out = redis_cli(node.addr(), &["-c", "GET", k]);
        assert_eq!(out.trim(), v, "GET {k} through {}", node.name());
    }
    let keys: BTreeSet<String> = pairs.into_iter().map(|(k, _)| k).collect();
    wait_placed(&refs, &keys);
}
