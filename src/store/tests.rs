//! Tests of the store as a whole: local writes, transfers between
//! stores, tombstones, SCAN, and random replicas converging.

use super::*;
use crate::core::version::Version;
use proptest::prelude::*;

const MAX: usize = 1 << 20;

/// A wall time later than every write of these tests (about 35 years
/// since the epoch, in microseconds): batches applied at it are never
/// ahead of the clock.
const LATER_US: u64 = 1 << 50;

/// One push from `from` to `to`, message for message as a pusher and a
/// connection thread do it, starting from `known` (what `from` knows of
/// `to`'s vector). `cut` loses the connection at that message; `dup`
/// delivers every part twice. Returns `to`'s acknowledged vector.
fn exchange(
    from: &mut Store,
    to: &mut Store,
    known: &WireVv,
    cut: Option<usize>,
    dup: bool,
) -> Option<WireVv> {
    let mut sent = 0;
    let step = |n: &mut usize| {
        *n += 1;
        cut != Some(*n)
    };
    let from_vv = from.version_vector();
    let mut cursor = None;
    loop {
        let d = from.delta(known, cursor, 64);
        if !step(&mut sent) {
            return None;
        }
        for _ in 0..if dup { 2 } else { 1 } {
            to.apply_batch(&d.batch, LATER_US).expect("valid batch");
        }
        match d.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    to.join_version_vector(&from_vv).expect("valid vv");
    let to_vv = to.version_vector();
    let mut cursor = None;
    loop {
        let d = to.delta(&from_vv, cursor, 64);
        if !step(&mut sent) {
            return None;
        }
        for _ in 0..if dup { 2 } else { 1 } {
            from.apply_batch(&d.batch, LATER_US).expect("valid batch");
        }
        match d.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    from.join_version_vector(&to_vv).expect("valid vv");
    Some(to_vv)
}

/// A push over a fresh connection.
fn push(from: &mut Store, to: &mut Store) {
    let known = to.version_vector();
    exchange(from, to, &known, None, false).expect("no loss");
}

#[test]
fn put_get_delete() {
    let mut s = Store::new("a", MAX).with_peers(1);
    assert_eq!(s.get(b"k"), None);
    s.put(b"k", b"v1", 1_000).expect("put");
    assert_eq!(s.get(b"k"), Some(&b"v1"[..]));
    s.put(b"k", b"v2", 1_000).expect("put");
    assert_eq!(s.get(b"k"), Some(&b"v2"[..]));
    s.delete(b"k", 1_000).expect("delete");
    assert_eq!(s.get(b"k"), None);
    assert_eq!(
        s.counts(),
        Counts {
            live: 0,
            tombstones: 1
        }
    );
    s.put(b"k", b"", 1_000).expect("put");
    assert_eq!(s.get(b"k"), Some(&b""[..]));
    assert_eq!(
        s.counts(),
        Counts {
            live: 1,
            tombstones: 0
        }
    );
}

/// A flush deletes what the flushing node held, and a write it had not
/// seen survives: one made on another node before the flush in real
/// time, to a key the flush deleted, and one to a key it never had.
/// A write to the old version that the flushing node had seen, made
/// before that version, loses as it would have to the version.
#[test]
fn a_flush_deletes_what_its_node_held_and_writes_it_had_not_seen_survive() {
    let mut a = Store::new("a", MAX).with_peers(1);
    let mut b = Store::new("b", MAX).with_peers(1);
    a.put(b"seen", b"1", 1_000).expect("put");
    a.put(b"changed", b"1", 1_000).expect("put");
    push(&mut a, &mut b);
    // On b, unseen by a: a new value of a key a holds, and a new key.
    b.put(b"changed", b"2", 2_000).expect("put");
    b.put(b"fresh", b"1", 2_000).expect("put");
    // a flushes at a later time than those writes.
    for key in a.keys_where(|_| true) {
        a.flush_delete(&key, 3_000).expect("flush");
    }
    assert_eq!(a.counts().live, 0);
    push(&mut a, &mut b);
    for s in [&a, &b] {
        assert_eq!(s.get(b"seen"), None);
        assert_eq!(s.get(b"changed"), Some(&b"2"[..]));
        assert_eq!(s.get(b"fresh"), Some(&b"1"[..]));
    }
    // A plain delete at the same moment would have taken b's value too.
    let mut c = Store::new("c", MAX).with_peers(1);
    let mut d = Store::new("d", MAX).with_peers(1);
    c.put(b"changed", b"1", 1_000).expect("put");
    push(&mut c, &mut d);
    d.put(b"changed", b"2", 2_000).expect("put");
    c.delete(b"changed", 3_000).expect("delete");
    push(&mut c, &mut d);
    assert_eq!(d.get(b"changed"), None);
}

#[test]
fn limits_are_enforced() {
    let mut s = Store::new("a", 10);
    assert_eq!(
        s.put(b"k", &[0; 11], 1),
        Err(WriteError::ValueTooLong { len: 11, max: 10 })
    );
    assert_eq!(
        s.put(&vec![0; MAX_KEY_LEN + 1], b"v", 1),
        Err(WriteError::KeyTooLong(MAX_KEY_LEN + 1))
    );
    assert_eq!(s.counts(), Counts::default());
}

#[test]
fn a_delete_does_not_come_back_through_sync() {
    let (mut a, mut b) = (
        Store::new("a", MAX).with_peers(1),
        Store::new("b", MAX).with_peers(1),
    );
    a.put(b"k", b"v", 1_000).expect("put");
    push(&mut a, &mut b);
    assert_eq!(b.get(b"k"), Some(&b"v"[..]));
    b.delete(b"k", 2_000).expect("delete");
    push(&mut a, &mut b);
    push(&mut b, &mut a);
    assert_eq!(a.get(b"k"), None);
    assert_eq!(b.get(b"k"), None);
    assert_eq!(a.canonical(), b.canonical());
}

#[test]
fn one_push_moves_data_both_ways() {
    let (mut a, mut b) = (Store::new("a", MAX), Store::new("b", MAX));
    a.put(b"from a", b"1", 1_000).expect("put");
    b.put(b"from b", b"2", 1_000).expect("put");
    push(&mut a, &mut b);
    assert_eq!(a.get(b"from b"), Some(&b"2"[..]));
    assert_eq!(b.get(b"from a"), Some(&b"1"[..]));
}

#[test]
fn an_idle_push_sends_nothing_and_a_write_sends_one_entry() {
    let (mut a, mut b) = (Store::new("a", MAX), Store::new("b", MAX));
    for i in 0..100u8 {
        a.put(&[i], b"v", 1_000).expect("put");
    }
    push(&mut a, &mut b);
    let known = b.version_vector();
    let d = a.delta(&known, None, 1 << 20);
    assert!(d.batch.entries.is_empty() && d.next.is_none());
    a.put(&[7], b"new", 2_000).expect("put");
    let d = a.delta(&known, None, 1 << 20);
    assert_eq!(d.batch.entries.len(), 1);
    assert_eq!(d.batch.entries[0].key.0, [7]);
}

#[test]
fn a_node_restarted_empty_gets_everything_back_and_its_new_write_wins() {
    let mut old_a = Store::new("a#1", MAX);
    let mut b = Store::new("b#1", MAX);
    old_a.put(b"k", b"before restart", 5_000_000).expect("put");
    old_a.put(b"other", b"kept", 5_000_000).expect("put");
    push(&mut old_a, &mut b);
    // a restarts with nothing under a new writer identity.
    let mut a = Store::new("a#2", MAX);
    a.put(b"k", b"after restart", 5_000_100).expect("put");
    push(&mut a, &mut b);
    assert_eq!(b.get(b"k"), Some(&b"after restart"[..]));
    assert_eq!(a.get(b"k"), Some(&b"after restart"[..]));
    assert_eq!(a.get(b"other"), Some(&b"kept"[..]));
}

#[test]
fn tombstones_go_once_every_peer_has_them_and_never_come_back() {
    let mut a = Store::new("a", MAX).with_peers(2);
    let mut b = Store::new("b", MAX);
    let mut c = Store::new("c", MAX);
    a.put(b"k", b"v", 1_000).expect("put");
    push(&mut a, &mut b);
    push(&mut a, &mut c);
    let stale_c = c.canonical();
    a.delete(b"k", 2_000).expect("delete");
    // b acknowledges the tombstone; c has not: it stays.
    let known = b.version_vector();
    let ack = exchange(&mut a, &mut b, &known, None, false).expect("ok");
    assert_eq!(a.peer_acknowledged(0, &ack), Ok(0));
    assert_eq!(a.counts().tombstones, 1);
    assert_eq!(a.peer_lag(1).tombstones_waiting, 1);
    let known = c.version_vector();
    let ack = exchange(&mut a, &mut c, &known, None, false).expect("ok");
    assert_eq!(a.peer_acknowledged(1, &ack), Ok(1));
    assert_eq!(a.counts(), Counts::default());
    // A late copy of the old value (sent before c saw the delete) is
    // refused: a has seen that write.
    let late = &stale_c[0];
    let mut names = Names::new();
    let clock = Clock::from_dots(late.clock.iter().map(|(n, c)| Dot {
        node: names.intern(n),
        counter: *c,
    }));
    let batch = Batch {
        groups: Vec::new(),
        names: (0..names.len())
            .map(|i| names.name(NodeId(i as u32)).to_owned())
            .collect(),
        entries: vec![WireEntry {
            key: Bytes(late.key.clone()),
            value: late.value.clone().map(Bytes),
            ts: late.ts,
            writer: names.lookup(&late.writer).expect("writer").0,
            clock: clock.dots().iter().map(|d| (d.node.0, d.counter)).collect(),
            expires: None,
            counter: None,
        }],
    };
    a.apply_batch(&batch, LATER_US).expect("valid");
    assert_eq!(a.get(b"k"), None);
}

/// Every key a full SCAN iteration returns, stepping `count` at a time
/// and calling `between` after each step.
fn scan_all(
    store: &mut Store,
    count: usize,
    mut between: impl FnMut(&mut Store, usize),
) -> Vec<Vec<u8>> {
    let mut cursor = 0;
    let mut all = Vec::new();
    for step in 0.. {
        let (next, keys) = store.scan(cursor, count, |_| true);
        assert!(keys.len() <= count + 2, "step {step}: {} keys", keys.len());
        all.extend(keys);
        if next == 0 {
            break;
        }
        assert!(next > cursor, "the cursor moves on");
        cursor = next;
        between(store, step);
    }
    all
}

#[test]
fn a_scan_returns_every_key_once_and_skips_tombstones() {
    let mut a = Store::new("a", MAX);
    assert_eq!(a.scan(0, 10, |_| true), (0, Vec::new()));
    for i in 0..100u8 {
        a.put(&[i], b"v", 1_000).expect("put");
    }
    a.delete(&[7], 1_000).expect("delete");
    for count in [1, 3, 10, 1000] {
        let mut got = scan_all(&mut a, count, |_, _| {});
        got.sort();
        let want: Vec<Vec<u8>> = (0..100u8).filter(|&i| i != 7).map(|i| vec![i]).collect();
        assert_eq!(got, want, "count {count}");
    }
    let (_, even) = a.scan(0, 1000, |k| k[0] % 2 == 0);
    assert_eq!(even.len(), 50);
    let mut listed = a.keys_where(|k| k[0] < 10);
    listed.sort();
    assert_eq!(listed.len(), 9);
}

#[test]
fn keys_merged_from_batches_are_scanned_once_and_can_be_taken_back() {
    let mut b = Store::new("b", MAX);
    for i in 0..300u16 {
        b.put(&i.to_be_bytes(), b"v", 1_000).expect("put");
    }
    let mut a = Store::new("a", MAX);
    a.put(&7u16.to_be_bytes(), b"mine", 1_000).expect("put");
    // A first scan builds the order, so the batches must keep it.
    assert_eq!(
        a.scan(0, 10, |_| true),
        (0, vec![7u16.to_be_bytes().to_vec()])
    );
    let mut cursor = None;
    loop {
        // Small parts: several batches, each adding keys to scan_order.
        let d = b.delta(&a.version_vector(), cursor, 500);
        a.apply_batch(&d.batch, LATER_US).expect("valid batch");
        match d.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut got = scan_all(&mut a, 7, |_, _| {});
    got.sort();
    let want: Vec<Vec<u8>> = (0..300u16).map(|i| i.to_be_bytes().to_vec()).collect();
    assert_eq!(got, want);

    // A logged batch whose log write fails is taken back whole, its
    // keys out of scan_order too.
    let mut c = Store::new("c", MAX);
    c.start_journal(
        Box::new(crate::durability::journal::JournalWriter::new()),
        false,
    );
    assert_eq!(c.scan(0, 10, |_| true), (0, Vec::new()));
    c.apply_batch(&b.delta(&Vec::new(), None, usize::MAX).batch, LATER_US)
        .expect("valid batch");
    c.rollback();
    assert_eq!(scan_all(&mut c, 10, |_, _| {}), Vec::<Vec<u8>>::new());
    assert_eq!(c.counts().live, 0);

    // A store filled before its first scan builds the order from what
    // it holds.
    let mut got = scan_all(&mut b, 9, |_, _| {});
    got.sort();
    let want: Vec<Vec<u8>> = (0..300u16).map(|i| i.to_be_bytes().to_vec()).collect();
    assert_eq!(got, want);
}

#[test]
fn a_replayed_store_scans_every_key_once() {
    let mut a = Store::new("a#1", MAX);
    a.start_journal(
        Box::new(crate::durability::journal::JournalWriter::new()),
        false,
    );
    for i in 0..300u16 {
        a.put(&i.to_be_bytes(), b"v", 1_000).expect("put");
    }
    a.delete(&7u16.to_be_bytes(), 1_000).expect("delete");
    a.put(&5u16.to_be_bytes(), b"again", 1_000).expect("put");
    let log = a.take_journal();
    let mut back = Store::new("a#1", MAX);
    let scan = crate::durability::record::scan(&log, MAX);
    let mut replayer = crate::durability::journal::Replayer::new();
    for body in scan.bodies(&log) {
        replayer.apply(&mut back, body).expect("replays");
    }
    for count in [1, 10, 1000] {
        let mut got = scan_all(&mut back, count, |_, _| {});
        got.sort();
        assert_eq!(got, back.keys(), "count {count}");
        assert_eq!(got.len(), 299, "count {count}");
    }
}

#[test]
fn a_scan_keeps_its_guarantee_while_keys_come_and_go() {
    let mut a = Store::new("a", MAX);
    for i in 0..200u8 {
        a.put(&[i], b"v", 1_000).expect("put");
    }
    // The first 100 keys stay; the others are deleted and collected
    // (which moves entries between slots) or rewritten, and new keys
    // arrive, all while the iteration goes on.
    let got = scan_all(&mut a, 7, |store, step| {
        let victim = 100 + (step * 13 % 100) as u8;
        store.delete(&[victim], 1_000).expect("delete");
        store.collect_tombstones();
        store.put(&[1, step as u8], b"new", 1_000).expect("put");
        store
            .put(&[(step % 100) as u8], b"again", 1_000)
            .expect("put");
    });
    for i in 0..100u8 {
        let n = got.iter().filter(|k| **k == [i]).count();
        assert_eq!(n, 1, "key {i} returned {n} times");
    }
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), got.len(), "no key twice");
}

#[test]
fn delta_parts_stay_under_the_limit_and_together_hold_everything() {
    let mut a = Store::new("a", MAX);
    for i in 0..20u8 {
        a.put(&[i], &[i; 600], 1_000).expect("put");
    }
    let mut cursor = None;
    let mut keys = Vec::new();
    loop {
        let d = a.delta(&WireVv::new(), cursor, 1_500);
        let size: usize = d
            .batch
            .entries
            .iter()
            .map(|e| e.value.as_ref().map_or(0, |v| v.0.len()))
            .sum();
        assert!(size <= 1_500 && !d.batch.entries.is_empty(), "{size}");
        keys.extend(d.batch.entries.iter().map(|e| e.key.0[0]));
        match d.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys, (0..20).collect::<Vec<u8>>());
    // One entry larger than the limit still goes, alone.
    let mut b = Store::new("b", MAX);
    b.put(b"big", &[0; 5_000], 1).expect("put");
    let d = b.delta(&WireVv::new(), None, 1_500);
    assert_eq!((d.batch.entries.len(), d.next), (1, None));
}

#[test]
fn removing_entries_keeps_the_others_reachable() {
    let mut a = Store::new("a", MAX);
    for i in 0..50u8 {
        a.put(&[i], &[i], 1_000).expect("put");
    }
    for i in (0..50u8).step_by(3) {
        a.delete(&[i], 1_000).expect("delete");
    }
    assert_eq!(a.collect_tombstones(), 17);
    for i in 0..50u8 {
        let want = [i];
        let want = (i % 3 != 0).then_some(&want[..]);
        assert_eq!(a.get(&[i]), want, "key {i}");
    }
    let d = a.delta(&WireVv::new(), None, 1 << 20);
    assert_eq!(d.batch.entries.len(), 33);
}

#[test]
fn bad_batches_change_nothing() {
    let mut s = Store::new("a", 4);
    let good = WireEntry {
        key: Bytes(b"k".to_vec()),
        value: Some(Bytes(b"v".to_vec())),
        ts: 1,
        writer: 0,
        clock: vec![(0, 1)],
        expires: None,
        counter: None,
    };
    let cases = [
        WireEntry {
            writer: 1,
            ..good.clone()
        },
        WireEntry {
            clock: vec![(5, 1)],
            ..good.clone()
        },
        WireEntry {
            clock: vec![],
            ..good.clone()
        },
        WireEntry {
            value: Some(Bytes(vec![0; 5])),
            ..good.clone()
        },
    ];
    for bad in cases {
        let batch = Batch {
            groups: Vec::new(),
            names: vec!["b".into()],
            entries: vec![good.clone(), bad],
        };
        assert!(s.apply_batch(&batch, LATER_US).is_err());
    }
    assert!(s.canonical().is_empty());
}

#[test]
fn a_batch_stamped_further_ahead_than_the_bound_is_refused_whole() {
    let now_us = 1_700_000_000_000_000;
    let now_ms = now_us / 1000;
    let mut s = Store::new("a", MAX).with_max_clock_offset_ms(500);
    let entry = |key: &[u8], ahead_ms: u64| WireEntry {
        key: Bytes(key.to_vec()),
        value: Some(Bytes(b"v".to_vec())),
        ts: (now_ms + ahead_ms) << 16,
        writer: 0,
        clock: vec![(0, 1)],
        expires: None,
        counter: None,
    };
    let batch = |entries| Batch {
        groups: Vec::new(),
        names: vec!["b".into()],
        entries,
    };
    // An hour ahead, behind a good entry: nothing of the batch is merged.
    let bad = batch(vec![entry(b"good", 0), entry(b"far", 3_600_000)]);
    assert_eq!(
        s.apply_batch(&bad, now_us),
        Err(BatchError(
            "an entry stamped 3600000 ms ahead of this node's clock, over the bound of 500 ms"
                .into()
        ))
    );
    assert!(s.canonical().is_empty());
    // The same batch once the wall clock has caught up is fine.
    let later = now_us + 3_600_000_000;
    s.apply_batch(&bad, later).expect("no longer ahead");
    assert_eq!(s.get(b"far"), Some(&b"v"[..]));

    // At the bound exactly, accepted; and this node can still write after
    // following it, within the bound of its own clock.
    let mut s = Store::new("a", MAX).with_max_clock_offset_ms(500);
    s.apply_batch(&batch(vec![entry(b"k", 500)]), now_us)
        .expect("at the bound");
    s.apply_batch(&batch(vec![entry(b"k2", 501)]), now_us)
        .expect_err("past it");
    s.put(b"k", b"mine", now_us).expect("room left");
    assert_eq!(s.get(b"k"), Some(&b"mine"[..]), "the later write wins");
}

#[test]
fn a_write_the_clock_has_no_room_for_is_refused_and_uses_no_counter() {
    let mut s = Store::new("a", MAX).with_max_clock_offset_ms(500);
    // Ahead of a wall clock that went back by a second since.
    s.put(b"k", b"v1", 10_000_000).expect("put");
    let vv = s.version_vector();
    let e = s.put(b"k", b"v2", 9_000_000).expect_err("no room");
    assert!(matches!(e, WriteError::Refused(_)), "{e:?}");
    assert!(e.to_string().contains("ahead of its wall clock"), "{e}");
    assert_eq!((s.get(b"k"), s.version_vector()), (Some(&b"v1"[..]), vv));
    // Past the year 6429: refused even alone, saying why.
    let e = s.put(b"k", b"v3", u64::MAX).expect_err("out of range");
    assert!(e.to_string().contains("past the year 6429"), "{e}");
    s.put(b"k", b"v4", 10_000_000).expect("the clock is back");
}

/// Expiries in the random runs are this many ms after the epoch and up,
/// past the wall time batches are merged at ([`LATER_US`]), so that they
/// expire only when a run says.
const EXPIRY_BASE_MS: u64 = LATER_US / 1000 + 1;

/// The wall time, after [`EXPIRY_BASE_MS`], at which a random run ends.
const EXPIRY_END_MS: u64 = 5_000;

#[derive(Debug, Clone)]
enum Op {
    Put(usize, u8, u8),
    /// An increment by .2.
    Incr(usize, u8, i64),
    /// A put expiring this many ms after [`EXPIRY_BASE_MS`].
    PutExpiring(usize, u8, u8, u64),
    /// The node's wall clock reaches this many ms after
    /// [`EXPIRY_BASE_MS`] and it turns what expired into tombstones.
    Expire(usize, u64),
    Delete(usize, u8),
    /// `FLUSHALL`: every key the node holds, flush-deleted.
    Flush(usize),
    /// A put of .2 as decimal text, a value counters count on.
    PutInt(usize, u8, i8),
    /// `EXPIRE` (this many ms after [`EXPIRY_BASE_MS`]) or `PERSIST` (None).
    SetExpiry(usize, u8, Option<u64>),
    /// Push from .0 to .1, losing the connection at message .2 (0: no
    /// loss), duplicating parts when .3.
    Push(usize, usize, usize, bool),
    Wait(u64),
}

fn arb_ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => (0..5usize, 0u8..12, any::<u8>()).prop_map(|(n, k, v)| Op::Put(n, k, v)),
        2 => (0..5usize, 0u8..12).prop_map(|(n, k)| Op::Delete(n, k)),
        1 => (0..5usize).prop_map(Op::Flush),
        2 => (0..5usize, 0u8..12, any::<u8>(), 1..8_000u64)
            .prop_map(|(n, k, v, ms)| Op::PutExpiring(n, k, v, ms)),
        1 => (0..5usize, 0..EXPIRY_END_MS).prop_map(|(n, ms)| Op::Expire(n, ms)),
        3 => (0..5usize, 0u8..12, -5i64..6).prop_map(|(n, k, by)| Op::Incr(n, k, by)),
        1 => (0..5usize, 0u8..12, any::<i8>()).prop_map(|(n, k, v)| Op::PutInt(n, k, v)),
        1 => (0..5usize, 0u8..12, proptest::option::of(1..8_000u64))
            .prop_map(|(n, k, ms)| Op::SetExpiry(n, k, ms)),
        4 => (0..5usize, 0..5usize, prop_oneof![3 => Just(0usize), 1 => 1..6usize], any::<bool>())
            .prop_map(|(a, b, cut, dup)| Op::Push(a, b, cut, dup)),
        1 => (0u64..5_000).prop_map(Op::Wait),
    ];
    proptest::collection::vec(op, 1..120)
}

/// Replicas with the pusher's view of each peer, as the shell keeps it.
struct Cluster {
    stores: Vec<Store>,
    /// `known[a][b]`: b's vector as a last heard it (None: reconnect).
    known: Vec<Vec<Option<WireVv>>>,
    /// Tombstones collected so far.
    collected: usize,
}

impl Cluster {
    fn new(n: usize) -> Cluster {
        Cluster {
            stores: (0..n)
                // Expiry is judged at times far ahead of the writes' clocks
                // (see `EXPIRY_BASE_MS`), and a node that judged a time
                // passed stamps its later writes after it: no bound on how
                // far ahead a peer's stamps may be here.
                .map(|i| {
                    Store::new(&format!("n{i}"), MAX)
                        .with_peers(n - 1)
                        .with_max_clock_offset_ms(1 << 44)
                })
                .collect(),
            known: vec![vec![None; n]; n],
            collected: 0,
        }
    }

    /// Index of `b` in `a`'s peer list (every other node, in order).
    fn peer_index(a: usize, b: usize) -> usize {
        if b < a {
            b
        } else {
            b - 1
        }
    }

    fn push(&mut self, a: usize, b: usize, cut: Option<usize>, dup: bool) {
        if a == b {
            return;
        }
        let (lo, hi) = self.stores.split_at_mut(a.max(b));
        let (x, y) = (&mut lo[a.min(b)], &mut hi[0]);
        let (from, to) = if a < b { (x, y) } else { (y, x) };
        let known = self.known[a][b]
            .clone()
            .unwrap_or_else(|| to.version_vector());
        match exchange(from, to, &known, cut, dup) {
            Some(ack) => {
                self.collected += from
                    .peer_acknowledged(Self::peer_index(a, b), &ack)
                    .expect("valid");
                self.known[a][b] = Some(ack);
            }
            None => self.known[a][b] = None,
        }
    }
}

proptest! {
    #![proptest_config(crate::proptest_config("tests/regressions/store.txt"))]
    /// Random writes and deletes on 3 to 5 replicas with skewed clocks,
    /// random pushes with lost connections and duplicated parts, then
    /// full rounds: every replica ends identical, and every live key
    /// holds the value a reference merge of all writes picks.
    #[test]
    ///
    /// Some values expire; nodes turn expired values into tombstones at
    /// different times, and those meet the values they replaced: in the
    /// end every replica reads what the reference reads at the same time.
    fn replicas_converge_to_the_merge_of_every_write(nodes in 3usize..6, ops in arb_ops()) {
        let mut cluster = Cluster::new(nodes);
        let mut reference: std::collections::BTreeMap<Vec<u8>, Version> = Default::default();
        let mut names = Names::new();
        let mut now = 1_000_000u64;
        for op in ops {
            match op {
                Op::Put(n, ..)
                | Op::Delete(n, _)
                | Op::Flush(n)
                | Op::PutExpiring(n, ..)
                | Op::Expire(n, _)
                | Op::Incr(n, ..)
                | Op::PutInt(n, ..)
                | Op::SetExpiry(n, ..)
                    if n >= nodes => {}
                Op::PutInt(n, k, v) => {
                    let s = &mut cluster.stores[n];
                    s.put(&[k], v.to_string().as_bytes(), now + 3_000 * n as u64).expect("put");
                    record(&mut reference, &mut names, s, k);
                }
                Op::SetExpiry(n, k, ms) => {
                    let s = &mut cluster.stores[n];
                    let at = ms.map(|ms| EXPIRY_BASE_MS + ms);
                    // What `EXPIRE` and `PERSIST` do: write the live value
                    // again with the new expiry.
                    let live = s.get(&[k]).map(<[u8]>::to_vec);
                    if let Some(v) = live {
                        s.put_expiring(&[k], &v, at, now + 3_000 * n as u64).expect("expiry");
                        record(&mut reference, &mut names, s, k);
                    }
                }
                Op::Incr(n, k, by) => {
                    let s = &mut cluster.stores[n];
                    if let Ok(Ok(_)) = s.increment(&[k], by, now + 3_000 * n as u64) {
                        record(&mut reference, &mut names, s, k);
                    }
                }
                Op::PutExpiring(n, k, v, ms) => {
                    let s = &mut cluster.stores[n];
                    let at = Some(EXPIRY_BASE_MS + ms);
                    s.put_expiring(&[k], &[v], at, now + 3_000 * n as u64).expect("put");
                    record(&mut reference, &mut names, s, k);
                }
                Op::Expire(n, ms) => {
                    let s = &mut cluster.stores[n];
                    s.set_now((EXPIRY_BASE_MS + ms) * 1000);
                    s.expire_due(usize::MAX);
                }
                Op::Put(n, k, v) => {
                    let s = &mut cluster.stores[n];
                    s.put(&[k], &[v], now + 3_000 * n as u64).expect("put");
                    record(&mut reference, &mut names, s, k);
                }
                Op::Delete(n, k) => {
                    let s = &mut cluster.stores[n];
                    s.delete(&[k], now + 3_000 * n as u64).expect("delete");
                    record(&mut reference, &mut names, s, k);
                }
                Op::Flush(n) => {
                    let s = &mut cluster.stores[n];
                    for key in s.keys_where(|_| true) {
                        s.flush_delete(&key, now + 3_000 * n as u64).expect("flush");
                        record(&mut reference, &mut names, s, key[0]);
                    }
                }
                Op::Push(a, b, cut, dup) => {
                    cluster.push(a % nodes, b % nodes, (cut > 0).then_some(cut), dup);
                }
                Op::Wait(us) => now += us,
            }
        }
        for _ in 0..2 {
            for a in 0..nodes {
                for b in 0..nodes {
                    cluster.push(a, b, None, false);
                }
            }
        }
        let end_ms = EXPIRY_BASE_MS + EXPIRY_END_MS;
        for s in &mut cluster.stores {
            s.set_now(end_ms * 1000);
            s.expire_due(usize::MAX);
        }
        for _ in 0..2 {
            for a in 0..nodes {
                for b in 0..nodes {
                    cluster.push(a, b, None, false);
                }
            }
        }
        // Values and stamps are identical everywhere. Clocks are too,
        // except that a write to a key whose tombstone its writer had
        // already collected does not carry the tombstone's dots, where a
        // replica that still held the tombstone joins them in: dots that
        // every replica has seen, so no decision differs.
        let collected = cluster.collected;
        // A counter's expired base shows as the tombstone it reads as: one
        // node may hold the value, another only its tombstone (they read
        // alike, and every write to come treats them alike; see
        // `join_base` in `core/counter.rs`).
        let settle = |mut v: Vec<CanonicalEntry>| {
            for e in &mut v {
                if let Some(c) = e.counter.as_mut() {
                    if let Some(b) = c.base.as_mut() {
                        if b.expires.is_some_and(|at| at <= end_ms) {
                            b.value = None;
                        }
                    }
                }
            }
            v
        };
        let first = settle(cluster.stores[0].canonical());
        for s in &cluster.stores[1..] {
            let other = settle(s.canonical());
            if collected == 0 {
                prop_assert_eq!(&other, &first);
            }
            let strip = |v: &[CanonicalEntry]| {
                v.iter()
                    .map(|e| (e.key.clone(), e.value.clone(), e.ts, e.writer.clone()))
                    .collect::<Vec<_>>()
            };
            prop_assert_eq!(strip(&other), strip(&first));
        }
        let live: Vec<(Vec<u8>, Vec<u8>)> = first
            .iter()
            .filter_map(|e| e.value.clone().map(|v| (e.key.clone(), v)))
            .collect();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = reference
            .iter()
            .filter_map(|(k, v)| {
                let value = match &v.counter {
                    Some(c) => c.view(end_ms).value,
                    None => v.value.clone().filter(|_| v.expires.is_none_or(|at| at > end_ms)),
                };
                value.map(|v| (k.clone(), v))
            })
            .collect();
        for s in &cluster.stores {
            let read: Vec<(Vec<u8>, Vec<u8>)> = (0..12u8)
                .filter_map(|k| s.get(&[k]).map(|v| (vec![k], v.to_vec())))
                .collect();
            prop_assert_eq!(&read, &expected);
        }
        prop_assert_eq!(live, expected);
    }
}

/// Folds the version just written to key `k` on `s` into the reference.
fn record(
    reference: &mut std::collections::BTreeMap<Vec<u8>, Version>,
    names: &mut Names,
    s: &Store,
    k: u8,
) {
    let e = s
        .canonical()
        .into_iter()
        .find(|e| e.key == [k])
        .expect("just written");
    let v = Version {
        value: e.value,
        clock: Clock::from_dots(e.clock.iter().map(|(n, c)| Dot {
            node: names.intern(n),
            counter: *c,
        })),
        stamp: Stamp {
            ts: e.ts,
            writer: names.intern(&e.writer),
        },
        expires: e.expires,
        counter: e.counter.and_then(|c| {
            c.to_counter(|w| Ok::<_, std::convert::Infallible>(names.intern(w)))
                .unwrap_or_else(|never| match never {})
        }),
    };
    let merged = match reference.get(&vec![k]) {
        Some(old) => old.merge(&v, names),
        None => v,
    };
    reference.insert(vec![k], merged);
}

#[test]
fn the_digest_follows_writes_deletes_and_a_rollback() {
    let mut a = Store::new("a#1", MAX);
    assert_eq!(a.digest(), "0".repeat(40));
    a.start_journal(
        Box::new(crate::durability::journal::JournalWriter::new()),
        false,
    );
    a.put(b"k", b"v", 1_000).expect("put");
    let _ = a.take_journal();
    a.commit();
    let one = a.digest();
    assert_ne!(one, "0".repeat(40));
    a.put(b"k", b"other", 2_000).expect("put");
    a.put(b"k2", b"v", 2_000).expect("put");
    assert_ne!(a.digest(), one);
    a.rollback();
    assert_eq!(a.digest(), one);
    a.delete(b"k", 3_000).expect("delete");
    assert_eq!(a.digest(), "0".repeat(40));
    // The same data in another store, written in another order, under
    // another writer: the same digest.
    let mut b = Store::new("b#1", MAX);
    b.put(b"k2", b"v", 1).expect("put");
    b.put(b"k", b"v", 1).expect("put");
    a.put(b"k", b"v", 4_000).expect("put");
    a.put(b"k2", b"v", 4_000).expect("put");
    assert_eq!(a.digest(), b.digest());
}

#[test]
fn a_repair_brings_back_what_the_vector_claims_and_the_data_lacks() {
    let mut a = Store::new("a#1", MAX);
    a.put(b"k", b"v", 1_000).expect("put");
    let mut b = Store::new("b#1", MAX);
    let lost = a.delta(&Vec::new(), None, 1 << 20).batch;
    // b's vector says it has a's write without the entry (a peer cannot
    // make it join that: it is as a log replayed after a lost write
    // leaves it): the vectors are even, the data is not, and only the
    // digests show it.
    let mut claimed = VersionVector::new();
    claimed.raise(b.names.intern("a#1"), 1);
    b.restore_joined(&claimed);
    assert_eq!(b.summary().vv, a.summary().vv);
    assert_ne!(b.summary().digest, a.summary().digest);
    // A normal merge refuses it (it looks like a collected tombstone's
    // key coming back); a repair's takes it.
    b.apply_batch(&lost, LATER_US).expect("valid");
    assert_eq!(b.get(b"k"), None);
    b.apply_repair_batch(&lost, LATER_US).expect("valid");
    assert_eq!(b.get(b"k"), Some(&b"v"[..]));
    assert_eq!(b.summary(), a.summary());
}

#[test]
fn a_digest_is_not_taken_while_the_data_is_ahead_of_the_vector() {
    let mut a = Store::new("a#1", MAX);
    a.put(b"k", b"v", 1_000).expect("put");
    let mut b = Store::new("b#1", MAX);
    // A part merged, the transfer's vector not joined yet.
    b.apply_batch(&a.delta(&Vec::new(), None, 1 << 20).batch, LATER_US)
        .expect("valid");
    assert_eq!(b.summary().digest, None);
    b.join_version_vector(&a.version_vector())
        .expect("valid vv");
    assert_eq!(b.summary().digest, Some(a.data_digest()));
}

/// A batch from writer `writer` of one entry for `key`, at `counter`.
fn entry_from(writer: &str, key: &str, counter: u64) -> Batch {
    Batch {
        groups: Vec::new(),
        names: vec![writer.into()],
        entries: vec![WireEntry {
            key: Bytes(key.as_bytes().to_vec()),
            value: Some(Bytes(b"v".to_vec())),
            ts: 1_000,
            writer: 0,
            clock: vec![(0, counter)],
            expires: None,
            counter: None,
        }],
    }
}

#[test]
fn a_vector_is_joined_only_up_to_what_this_node_can_verify() {
    let mut a = Store::new("a#1", MAX);
    a.apply_batch(&entry_from("x#1", "k", 3), LATER_US)
        .expect("valid");
    // x at 3 is shown by the entry; x at 2^48-1 and y out of nowhere are
    // not: clamped, named, not joined (y's name is not even kept).
    let claim: WireVv = vec![("x#1".into(), MAX_COUNTER - 1), ("y#1".into(), 5)];
    let over = a.join_version_vector(&claim).expect("valid vv");
    assert_eq!(
        over,
        vec![
            Overclaim {
                writer: "x#1".into(),
                claimed: MAX_COUNTER - 1,
                allowed: 3
            },
            Overclaim {
                writer: "y#1".into(),
                claimed: 5,
                allowed: 0
            },
        ]
    );
    assert_eq!(a.version_vector(), vec![("x#1".to_owned(), 3)]);
    assert_eq!(a.names.lookup("y#1"), None);
    // x's next write still merges: the vector does not claim it.
    a.apply_batch(&entry_from("x#1", "next", 4), LATER_US)
        .expect("valid");
    assert_eq!(a.get(b"next"), Some(&b"v"[..]));
    // A claim within what this node knows is joined and names nothing.
    assert_eq!(a.join_version_vector(&vec![("x#1".into(), 4)]), Ok(vec![]));
    assert_eq!(a.version_vector(), vec![("x#1".to_owned(), 4)]);
}

#[test]
fn a_vector_covering_collected_tombstones_is_taken_up_to_this_nodes_own() {
    // c relays x's writes; x's last one was a delete whose tombstone is
    // gone everywhere, so no entry shows x at 2 any more. b saw it (its
    // vector says so): c's claim of x at 2 is taken in full there.
    let mut b = Store::new("b#1", MAX);
    b.apply_batch(&entry_from("x#1", "k", 2), LATER_US)
        .expect("valid");
    b.join_version_vector(&vec![("x#1".into(), 2)])
        .expect("valid");
    b.delete(b"k", 2_000).expect("delete");
    b.collect_tombstones();
    assert_eq!(b.counts(), Counts::default());
    assert_eq!(b.join_version_vector(&vec![("x#1".into(), 2)]), Ok(vec![]));
    // A node that never saw x clamps it (and names it), and misses
    // nothing: x's writes it lacks exist nowhere.
    let mut fresh = Store::new("f#1", MAX);
    let over = fresh
        .join_version_vector(&vec![("x#1".into(), 2)])
        .expect("valid");
    assert_eq!(over.len(), 1);
    assert!(fresh.version_vector().is_empty());
}

#[test]
fn an_acknowledgement_above_what_was_shown_collects_nothing_early() {
    let mut a = Store::new("a#1", MAX).with_peers(1);
    a.put(b"k", b"v", 1_000).expect("put");
    // The round starts: a's vector then is what the peer can have.
    let sent = Shown::from_vv(&a.version_vector());
    a.delete(b"k", 2_000).expect("delete");
    // The peer acknowledges everything, far ahead.
    let forged: WireVv = vec![("a#1".into(), MAX_COUNTER - 1)];
    let (acked, over) = sent.clamp(&forged);
    assert_eq!(acked, vec![("a#1".to_owned(), 1)]);
    assert_eq!(over.len(), 1);
    assert_eq!(a.peer_acknowledged(0, &acked), Ok(0));
    assert_eq!(a.counts().tombstones, 1);
    // Unclamped, the store bounds it by its own vector: still nothing
    // above what a holds, and nothing of a writer it never saw.
    assert_eq!(a.peer_acknowledged(0, &vec![("zz#1".into(), 9)]), Ok(0));
    assert_eq!(a.names.lookup("zz#1"), None);
    // Once the peer shows it has the delete (its answer holds it), the
    // tombstone may go.
    let mut shown = sent.clone();
    shown.add(&a.delta(&Vec::new(), None, 1 << 20).batch);
    let (acked, over) = shown.clamp(&vec![("a#1".into(), 2)]);
    assert!(over.is_empty());
    assert_eq!(a.peer_acknowledged(0, &acked), Ok(1));
}

/// A batch of one entry whose clock names `n` writers, none known.
fn batch_of_new_names(prefix: &str, n: usize) -> Batch {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    Batch {
        groups: Vec::new(),
        entries: vec![WireEntry {
            key: Bytes(format!("{prefix}-key").into_bytes()),
            value: Some(Bytes(b"v".to_vec())),
            ts: 1_000,
            writer: 0,
            clock: (0..n as u32).map(|i| (i, 1)).collect(),
            expires: None,
            counter: None,
        }],
        names,
    }
}

#[test]
fn a_batch_with_too_many_new_names_is_refused_whole() {
    let mut a = Store::new("a#1", MAX);
    let before = a.names.len();
    let mut too_many = batch_of_new_names("w", MAX_NEW_NAMES_PER_BATCH + 1);
    // Two entries: one alone may name more (see the test below).
    let mut second = too_many.entries[0].clone();
    second.key = Bytes(b"w-key-2".to_vec());
    too_many.entries.push(second);
    assert_eq!(
        a.apply_batch(&too_many, LATER_US),
        Err(BatchError(format!(
            "{} writer names new to this node, over the limit of {MAX_NEW_NAMES_PER_BATCH} per batch",
            MAX_NEW_NAMES_PER_BATCH + 1
        )))
    );
    assert_eq!(a.names.len(), before);
    assert_eq!(a.counts(), Counts::default());
    // Up to the limit is taken.
    let at_limit = batch_of_new_names("w", MAX_NEW_NAMES_PER_BATCH);
    a.apply_batch(&at_limit, LATER_US).expect("valid");
    assert_eq!(a.names.len(), before + MAX_NEW_NAMES_PER_BATCH);
}

/// A node whose keys were written by more writers than a peer takes new
/// names in one batch (over a thousand identities, as restarts without
/// data leave behind) still brings an empty node everything: its parts
/// name at most that many writers each.
#[test]
fn a_full_transfer_names_no_more_writers_a_part_than_a_peer_takes() {
    let mut a = Store::new("a#1", MAX).with_peers(1);
    let writers = MAX_NEW_NAMES_PER_BATCH + 500;
    for chunk in (0..writers).collect::<Vec<_>>().chunks(500) {
        let batch = Batch {
            groups: Vec::new(),
            names: chunk.iter().map(|i| format!("w{i}#1")).collect(),
            entries: (0..chunk.len() as u32)
                .map(|j| WireEntry {
                    key: Bytes(format!("key{}", chunk[j as usize]).into_bytes()),
                    value: Some(Bytes(b"v".to_vec())),
                    ts: 1_000,
                    writer: j,
                    clock: vec![(j, 1)],
                    expires: None,
                    counter: None,
                })
                .collect(),
        };
        a.apply_batch(&batch, LATER_US).expect("under the limit");
    }
    let mut b = Store::new("b#1", MAX).with_peers(1);
    let since = b.version_vector();
    let mut cursor = None;
    let mut parts = 0;
    loop {
        let d = a.delta(&since, cursor, 1 << 20);
        b.apply_batch(&d.batch, LATER_US)
            .expect("no part brings too many new names");
        parts += 1;
        match d.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert!(parts >= 2, "{parts} parts");
    assert_eq!(b.counts().live, writers);
}

/// A key that more writers wrote in turn than a batch may bring new
/// names has a clock naming them all: alone in its batch it is taken, so
/// it still reaches a node that started empty.
#[test]
fn one_entry_naming_more_writers_than_a_batch_may_bring_is_taken_alone() {
    let mut a = Store::new("a#1", MAX);
    let one = batch_of_new_names("w", MAX_NEW_NAMES_PER_BATCH + 100);
    a.apply_batch(&one, LATER_US)
        .expect("one entry alone may name them all");
    assert_eq!(a.get(b"w-key"), Some(&b"v"[..]));
}

#[test]
fn names_a_batch_lists_but_no_entry_uses_are_not_kept() {
    let mut a = Store::new("a#1", MAX);
    let before = a.names.len();
    let mut batch = entry_from("x#1", "k", 1);
    batch.names.extend((0..5000).map(|i| format!("unused{i}")));
    a.apply_batch(&batch, LATER_US).expect("valid");
    assert_eq!(a.names.len(), before + 1);
}

#[test]
fn no_batch_takes_a_node_past_the_names_limit() {
    let mut a = Store::new("a#1", MAX);
    let mut i = 0;
    while a.names.len() + MAX_NEW_NAMES_PER_BATCH <= MAX_NAMES {
        a.apply_batch(
            &batch_of_new_names(&format!("g{i}-"), MAX_NEW_NAMES_PER_BATCH),
            LATER_US,
        )
        .expect("under the limit");
        i += 1;
    }
    let room = MAX_NAMES - a.names.len();
    let over = batch_of_new_names("last-", room + 1);
    let err = a.apply_batch(&over, LATER_US).expect_err("over the limit");
    assert!(err.0.contains("over the limit of 65536"), "{err}");
    a.apply_batch(&batch_of_new_names("last-", room), LATER_US)
        .expect("up to the limit");
    assert_eq!(a.names.len(), MAX_NAMES);
}

#[test]
fn clamping_keeps_claims_within_the_bound_and_drops_zeroes() {
    let claim: WireVv = vec![("a".into(), 5), ("b".into(), 9), ("c".into(), 1)];
    let (kept, over) = clamp_vv(&claim, |w| match w {
        "a" => 7,
        "b" => 4,
        _ => 0,
    });
    assert_eq!(kept, vec![("a".to_owned(), 5), ("b".to_owned(), 4)]);
    assert_eq!(
        over.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
        vec![
            "vector claims writer 'b' at 9, above anything shown (at most 4); clamped",
            "vector claims writer 'c' at 1, above anything shown (at most 0); clamped",
        ]
    );
}

#[test]
fn an_expired_value_reads_as_absent_then_becomes_a_tombstone_with_its_clock() {
    let mut a = Store::new("a", MAX).with_peers(1);
    a.put_expiring(b"k", b"v", Some(5_000), 1_000_000)
        .expect("put");
    a.put(b"plain", b"v", 1_000_000).expect("put");
    assert_eq!(
        (a.get(b"k"), a.expiry(b"k")),
        (Some(&b"v"[..]), Some(5_000))
    );
    assert_eq!((a.expiring_count(), a.next_expiry()), (1, Some(5_000)));
    let before = a.canonical();
    a.set_now(5_000_000);
    assert_eq!((a.get(b"k"), a.expiry(b"k")), (None, None));
    assert_eq!(a.keys(), vec![b"plain".to_vec()]);
    assert_eq!(a.expire_due(10), 1);
    assert_eq!((a.expiring_count(), a.expired_count()), (0, 1));
    assert_eq!(
        a.counts(),
        Counts {
            live: 1,
            tombstones: 1
        }
    );
    let after = a.canonical();
    let k = |c: &[CanonicalEntry]| c.iter().find(|e| e.key == b"k").cloned().expect("k");
    assert_eq!(k(&after).value, None);
    assert_eq!(
        (k(&after).clock, k(&after).ts, k(&after).writer),
        (k(&before).clock, k(&before).ts, k(&before).writer)
    );
}

#[test]
fn an_expired_value_never_comes_back_from_a_copy_that_still_holds_it() {
    let mut a = Store::new("a", MAX).with_peers(1);
    let mut b = Store::new("b", MAX).with_peers(1);
    a.put_expiring(b"k", b"v", Some(LATER_US / 1000 + 10), 1_000_000)
        .expect("put");
    push(&mut a, &mut b);
    let stale = a.delta(&Vec::new(), None, MAX).batch;
    // a's clock passes the expiry; b's has not yet.
    a.set_now(LATER_US + 20_000);
    a.expire_due(10);
    // b's copy of the value, sent again (a repair, a reconnect): a keeps
    // its tombstone, and a's tombstone wins on b.
    a.apply_repair_batch(&stale, LATER_US).expect("valid");
    assert_eq!((a.get(b"k"), a.counts().tombstones), (None, 1));
    let tombstone = a.delta(&Vec::new(), None, MAX).batch;
    b.apply_repair_batch(&tombstone, LATER_US).expect("valid");
    assert_eq!((b.get(b"k"), b.counts().tombstones), (None, 1));
    assert_eq!(a.digest(), b.digest());
    // Once b acknowledged it, a collects it; the old copy stays out.
    let ack = b.version_vector();
    assert_eq!(a.peer_acknowledged(0, &ack), Ok(1));
    a.apply_repair_batch(&stale, LATER_US).expect("valid");
    assert_eq!((a.get(b"k"), a.counts()), (None, Counts::default()));
}

#[test]
fn expiries_follow_entries_that_move_between_slots() {
    let mut a = Store::new("a", MAX).with_peers(1);
    let mut b = Store::new("b", MAX).with_peers(1);
    a.put(b"first", b"v", 1_000_000).expect("put");
    a.put_expiring(b"last", b"v", Some(LATER_US / 1000 + 10), 1_000_000)
        .expect("put");
    a.delete(b"first", 2_000_000).expect("delete");
    push(&mut a, &mut b);
    // Collecting `first`'s tombstone moves `last` into its slot.
    assert_eq!(a.peer_acknowledged(0, &b.version_vector()), Ok(1));
    assert_eq!(a.expiry(b"last"), Some(LATER_US / 1000 + 10));
    a.set_now(LATER_US + 20_000);
    assert_eq!(a.expire_due(10), 1);
    assert_eq!((a.get(b"last"), a.expiring_count()), (None, 0));
}

/// Every part of a transfer from `from` to a node that has seen nothing,
/// in parts of about `max_bytes`.
fn parts_of(from: &Store, max_bytes: usize) -> Vec<Batch> {
    let mut parts = Vec::new();
    let mut cursor = None;
    loop {
        let d = from.delta(&Vec::new(), cursor, max_bytes);
        parts.push(d.batch);
        match d.next {
            Some(c) => cursor = Some(c),
            None => return parts,
        }
    }
}

/// The parts (by index) holding keys that start with `prefix`, and how
/// many such keys each holds.
fn parts_holding(parts: &[Batch], prefix: u8) -> Vec<(usize, usize)> {
    parts
        .iter()
        .enumerate()
        .map(|(i, b)| (i, b.entries.iter().filter(|e| e.key.0[0] == prefix).count()))
        .filter(|&(_, n)| n > 0)
        .collect()
}

/// `n` writes of 100-byte values to keys `prefix`0, `prefix`1 ... made as
/// one command's.
fn group_of_writes(s: &mut Store, prefix: u8, n: u8, now_us: u64) {
    let first = s.issued() + 1;
    for i in 0..n {
        s.put(&[prefix, i], &[i; 100], now_us).expect("put");
    }
    s.note_group(first, s.issued());
}

/// A command of more writes than a peer lets a group span (a `FLUSHALL`
/// of over a million keys) is sent as single writes, not as a group the
/// peer would refuse, with every batch holding it, for good.
#[test]
fn a_command_of_more_writes_than_a_group_may_span_still_replicates() {
    let mut a = Store::new("a", MAX).with_peers(1);
    let first = a.issued() + 1;
    for i in 0..3u8 {
        a.put(&[b'k', i], b"v", 1_000).expect("put");
    }
    // As the store thread notes the writes of one huge command.
    a.note_group(first, first + MAX_GROUP_SPAN + 1);
    let mut b = Store::new("b", MAX).with_peers(1);
    let d = a.delta(&b.version_vector(), None, 1 << 20);
    assert!(d.batch.groups.is_empty(), "{:?}", d.batch.groups);
    b.apply_batch(&d.batch, LATER_US)
        .expect("the peer takes it");
    assert_eq!(b.get(b"k\x02"), Some(&b"v"[..]));
}

#[test]
fn the_writes_of_one_command_travel_in_one_part_and_stay_together_when_passed_on() {
    let mut a = Store::new("a", MAX).with_peers(2);
    a.put(b"before", &[0; 100], 1_000).expect("put");
    group_of_writes(&mut a, b'g', 20, 2_000);
    a.put(b"after", &[1; 100], 3_000).expect("put");
    // Parts of about two entries: the group stretches one part.
    let parts = parts_of(&a, 300);
    assert_eq!(parts_holding(&parts, b'g').len(), 1, "{parts:?}");
    assert_eq!(parts_holding(&parts, b'g')[0].1, 20);
    let (at, _) = parts_holding(&parts, b'g')[0];
    assert_eq!(parts[at].groups.len(), 1);
    // A node that received it passes it on whole too.
    let mut b = Store::new("b", MAX).with_peers(2);
    for p in &parts {
        b.apply_batch(p, LATER_US).expect("valid");
    }
    b.join_version_vector(&a.version_vector()).expect("join");
    let passed_on = parts_of(&b, 300);
    assert_eq!(
        parts_holding(&passed_on, b'g'),
        vec![(parts_holding(&passed_on, b'g')[0].0, 20)]
    );
    // Once both peers have it, the group is forgotten.
    let vv = b.version_vector();
    a.peer_acknowledged(0, &vv).expect("ack");
    assert!(!a.groups.is_empty());
    a.peer_acknowledged(1, &vv).expect("ack");
    assert!(a.groups.is_empty(), "{:?}", a.groups);
}

#[test]
fn a_group_too_large_for_a_stretched_part_starts_a_part_of_its_own() {
    let mut a = Store::new("a", MAX).with_peers(1);
    a.put(b"before", &[0; 100], 1_000).expect("put");
    group_of_writes(&mut a, b'g', 60, 2_000);
    let parts = parts_of(&a, 300);
    // The first part ends before the group; the group takes the next
    // parts, each as large as a part may stretch.
    assert_eq!(parts[0].entries.len(), 1, "{:?}", parts[0]);
    assert_eq!(parts[0].entries[0].key.0, b"before");
    let holding = parts_holding(&parts, b'g');
    assert!(holding.len() > 1 && holding[0].1 > 20, "{holding:?}");
    assert_eq!(holding.iter().map(|&(_, n)| n).sum::<usize>(), 60);
}

#[test]
fn a_taken_back_groups_counters_are_not_kept_as_a_group() {
    let mut a = Store::new("a#1", MAX).with_peers(1);
    a.start_journal(
        Box::new(crate::durability::journal::JournalWriter::new()),
        false,
    );
    a.put(b"k", b"v", 1_000).expect("put");
    a.take_journal();
    a.commit();
    group_of_writes(&mut a, b'g', 3, 2_000);
    assert_eq!(a.groups.len(), 1);
    a.take_journal();
    a.rollback();
    assert!(a.groups.is_empty());
}

#[test]
fn a_node_behind_drops_the_values_a_peer_deleted_meanwhile_and_only_those() {
    let mut a = Store::new("a", MAX).with_peers(1);
    let mut b = Store::new("b", MAX).with_peers(1);
    a.put(b"deleted", b"old", 1_000).expect("put");
    a.put(b"kept", b"v", 1_000).expect("put");
    push(&mut a, &mut b);
    // b deletes one and collects the tombstone; a (restored) still holds
    // both, and makes a write b has not seen.
    b.delete(b"deleted", 2_000).expect("delete");
    assert_eq!(b.peer_acknowledged(0, &b.version_vector()), Ok(1));
    a.put(b"new", b"n", 3_000).expect("put");
    let keys: HashSet<Vec<u8>> = b.canonical().into_iter().map(|e| e.key).collect();
    assert_eq!(a.drop_deleted_meanwhile(&b.version_vector(), &keys), 1);
    assert_eq!(a.get(b"deleted"), None);
    assert_eq!(a.get(b"kept"), Some(&b"v"[..]));
    assert_eq!(a.get(b"new"), Some(&b"n"[..]));
}
