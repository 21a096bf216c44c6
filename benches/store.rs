//! The clocked map alone, with a million keys in it (10-byte keys, 100-byte
//! values): local writes, reads, and merges of a peer's batch.
//!
//! Every store and batch is built before the timed loop. Stores that a bench
//! grows are rebuilt (outside the timing) before they outgrow their table,
//! so each measurement is of a store of one to 1.7 million keys and no
//! table resize; `put/fill_empty` is the one that does include resizes.
//!
//! Run with `cargo bench --bench store`: under a minute on two idle cores.

mod common;

use common::store::Store;
use common::transfer::CHUNK_BYTES;
use common::wire::{self, Batch};
use common::{empty, filled, full_transfer, key, shuffled, KEYS, MERGE_US, NOW_US, VALUE};
use criterion::{
    black_box, criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput,
};
use std::time::{Duration, Instant};

/// How many keys a grown store may gain before it is rebuilt: a million
/// keys sit in a table of 2^21 slots that holds 1,835,008 before it resizes.
const MAX_ADDED: usize = 700_000;

/// A store of [`KEYS`] keys that benches add new keys to.
struct Growing {
    store: Store,
    added: usize,
}

impl Growing {
    fn new() -> Growing {
        Growing {
            store: filled("a", KEYS),
            added: 0,
        }
    }

    /// Makes room for `n` more keys, rebuilding the store if needed; returns
    /// the index of the first new key. Call outside the timing.
    fn reserve(&mut self, n: usize) -> usize {
        assert!(n <= MAX_ADDED, "asked for {n} new keys at once");
        if self.added + n > MAX_ADDED {
            *self = Growing::new();
        }
        let first = self.added;
        self.added += n;
        first
    }
}

fn put(c: &mut Criterion) {
    let mut group = c.benchmark_group("put");
    group.throughput(Throughput::Elements(1));

    let mut growing = Growing::new();
    let mut now = NOW_US;
    group.bench_function("new_key/1M", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            // At most MAX_ADDED keys per rebuild: long runs come in parts.
            let mut left = iters as usize;
            while left > 0 {
                let n = left.min(MAX_ADDED);
                let first = growing.reserve(n);
                let keys: Vec<[u8; 10]> = (first..first + n).map(|i| key(b"new:", i)).collect();
                now += 1;
                let start = Instant::now();
                for k in &keys {
                    growing.store.put(k, &VALUE, now).expect("within limits");
                }
                elapsed += start.elapsed();
                left -= n;
            }
            elapsed
        })
    });
    drop(growing);

    let mut store = filled("a", KEYS);
    let keys: Vec<[u8; 10]> = shuffled(KEYS, 1)
        .into_iter()
        .map(|i| key(b"key:", i))
        .collect();
    let mut next = 0;
    group.bench_function("overwrite/1M", |b| {
        b.iter(|| {
            next = (next + 1) % keys.len();
            store
                .put(&keys[next], &VALUE, NOW_US)
                .expect("within limits")
        })
    });
    drop(store);

    // Filling an empty store: includes every table resize on the way.
    group.throughput(Throughput::Elements(KEYS as u64));
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("fill_empty/1M", |b| {
        b.iter_batched(
            || empty("a"),
            |mut store| {
                for i in 0..KEYS {
                    store
                        .put(&key(b"key:", i), &VALUE, NOW_US)
                        .expect("within limits");
                }
                store
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn get(c: &mut Criterion) {
    let mut group = c.benchmark_group("get");
    group.throughput(Throughput::Elements(1));
    let store = filled("a", KEYS);
    let order = shuffled(KEYS, 2);
    let hits: Vec<[u8; 10]> = order.iter().map(|&i| key(b"key:", i)).collect();
    let misses: Vec<[u8; 10]> = order.iter().map(|&i| key(b"nop:", i)).collect();
    for (name, keys) in [("hit/1M", &hits), ("miss/1M", &misses)] {
        let mut next = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                next = (next + 1) % keys.len();
                black_box(store.get(&keys[next]));
            })
        });
    }
    group.finish();
}

/// Batches as node `b` would push them: `b` holds [`KEYS`] keys and cuts its
/// whole store into sync-sized parts, as for an empty peer.
fn pushed_by_b() -> Vec<Batch> {
    full_transfer(&filled("b", KEYS))
}

/// `batch` as it would be after its writer rewrote every key once more,
/// `generation` times: each clock counter and timestamp moved up.
fn rewritten(batch: &Batch, generation: u64) -> Batch {
    let mut batch = batch.clone();
    for e in &mut batch.entries {
        e.ts += generation;
        for (_, counter) in &mut e.clock {
            *counter += generation;
        }
    }
    batch
}

/// A batch of `n` keys `a` has never seen, starting at `first`, written by
/// `c` (name index 0), one write each.
fn unseen(first: usize, n: usize) -> Batch {
    Batch {
        groups: Vec::new(),
        names: vec!["c".into()],
        entries: (first..first + n)
            .map(|i| wire::WireEntry {
                key: wire::Bytes(key(b"new:", i).to_vec()),
                value: Some(wire::Bytes(VALUE.to_vec())),
                ts: (NOW_US / 1000) << 16,
                writer: 0,
                clock: vec![(0, 1 + i as u64)],
                expires: None,
                counter: None,
            })
            .collect(),
    }
}

fn merge(c: &mut Criterion) {
    let mut group = c.benchmark_group("merge");
    let batches = pushed_by_b();
    let per_batch = batches[0].entries.len();
    eprintln!(
        "merge: {} batches of about {CHUNK_BYTES} bytes, {per_batch} keys each",
        batches.len()
    );
    group.throughput(Throughput::Elements(per_batch as u64));

    // `a` holds b's million keys, as after a first full sync.
    let mut a = empty("a");
    for batch in &batches {
        a.apply_batch(batch, MERGE_US).expect("valid batch");
    }

    // Steady state: a sync round pushes versions the receiver already has.
    let mut next = 0;
    group.bench_function("known/1M", |b| {
        b.iter(|| {
            next = (next + 1) % batches.len();
            a.apply_batch(&batches[next], MERGE_US)
                .expect("valid batch")
        })
    });

    // b wrote the keys again: every pushed version descends a's.
    let mut generation = 0;
    group.bench_function("newer/1M", |b| {
        b.iter_batched(
            || {
                generation += 1;
                let i = generation as usize % batches.len();
                rewritten(&batches[i], generation)
            },
            |batch| a.apply_batch(&batch, MERGE_US).expect("valid batch"),
            BatchSize::LargeInput,
        )
    });
    drop(a);

    // Keys a has never seen: the store grows by one batch per iteration.
    let mut growing = Growing::new();
    group.bench_function("unseen/1M", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let batch = unseen(growing.reserve(per_batch), per_batch);
                let start = Instant::now();
                growing
                    .store
                    .apply_batch(&batch, MERGE_US)
                    .expect("valid batch");
                elapsed += start.elapsed();
            }
            elapsed
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = put, get, merge
}
criterion_main!(benches);
