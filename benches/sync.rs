//! A full sync's work without the network, for 100k and 1M keys (10-byte
//! keys, 100-byte values): the full delta (what an empty node is sent,
//! in parts), encoding every part as a push
//! frame, decoding the frames, and merging them into an empty store; then
//! the three together, one batch at a time, as a pusher and a receiver do
//! it (`encode_decode_merge`; the target is under one second for 1M keys).
//!
//! The encoded size of each snapshot is printed once, before its group.
//! Run with `cargo bench --bench sync`: about two minutes on two idle
//! cores (the million-key runs take ten iterations of up to a second each).

mod common;

use common::frame::{read_frame, write_frame, FrameError, DEFAULT_MAX_FRAME};
use common::store::Store;
use common::wire::{Batch, Message, MessageRef};
use common::{empty, filled, full_transfer, MERGE_US};
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use std::time::Duration;

/// Store sizes swept.
const SIZES: [usize; 2] = [100_000, 1_000_000];

/// Every batch as one push frame, back to back into `buf`; returns the
/// bytes written.
fn encode(batches: &[Batch], buf: &mut Vec<u8>) -> usize {
    batches
        .iter()
        .map(|batch| write_frame(buf, &MessageRef::Push { batch, done: None }).expect("encodes"))
        .sum()
}

/// The batches of the push frames in `bytes`.
fn decode(mut bytes: &[u8]) -> Vec<Batch> {
    let mut batches = Vec::new();
    loop {
        match read_frame(&mut bytes, DEFAULT_MAX_FRAME) {
            Ok(Message::Push { batch, .. }) => batches.push(batch),
            Ok(other) => panic!("expected a push, got {other:?}"),
            Err(FrameError::Closed) => return batches,
            Err(e) => panic!("cannot decode: {e}"),
        }
    }
}

/// Merges every batch into `store`.
fn merge(store: &mut Store, batches: &[Batch]) {
    for batch in batches {
        store.apply_batch(batch, MERGE_US).expect("valid batch");
    }
}

/// One batch at a time: encode it as a frame, decode the frame, merge it.
fn encode_decode_merge(store: &mut Store, batches: &[Batch], buf: &mut Vec<u8>) {
    for batch in batches {
        buf.clear();
        write_frame(buf, &MessageRef::Push { batch, done: None }).expect("encodes");
        match read_frame(&mut &buf[..], DEFAULT_MAX_FRAME) {
            Ok(Message::Push { batch, .. }) => {
                store.apply_batch(&batch, MERGE_US).expect("valid batch");
            }
            other => panic!("expected a push, got {other:?}"),
        }
    }
}

fn sync(c: &mut Criterion) {
    for n in SIZES {
        let source = filled("b", n);
        let batches = full_transfer(&source);
        let mut encoded = Vec::new();
        let bytes = encode(&batches, &mut encoded);
        let decoded = decode(&encoded);
        assert_eq!(decoded, batches, "frames decode to what was encoded");
        eprintln!(
            "sync {n} keys: {} batches, {bytes} bytes encoded ({:.1} bytes/key)",
            batches.len(),
            bytes as f64 / n as f64
        );

        let mut group = c.benchmark_group("sync");
        group.throughput(Throughput::Elements(n as u64));
        // One iteration of the million-key runs takes most of a second:
        // flat sampling keeps it to ten of them.
        group.sampling_mode(SamplingMode::Flat);
        group.measurement_time(Duration::from_secs(if n >= 1_000_000 { 8 } else { 3 }));

        group.bench_function(BenchmarkId::new("full_delta", n), |b| {
            b.iter_with_large_drop(|| full_transfer(&source))
        });
        // Encoding and decoding also as bytes per second.
        group.throughput(Throughput::Bytes(bytes as u64));
        let mut buf = Vec::with_capacity(encoded.len());
        group.bench_function(BenchmarkId::new("encode", n), |b| {
            b.iter(|| {
                buf.clear();
                encode(&batches, &mut buf)
            })
        });
        group.bench_function(BenchmarkId::new("decode", n), |b| {
            b.iter_with_large_drop(|| decode(&encoded))
        });
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("merge", n), |b| {
            b.iter_batched(
                || empty("a"),
                |mut store| {
                    merge(&mut store, &decoded);
                    store
                },
                BatchSize::PerIteration,
            )
        });
        group.bench_function(BenchmarkId::new("encode_decode_merge", n), |b| {
            b.iter_batched(
                || empty("a"),
                |mut store| {
                    encode_decode_merge(&mut store, &batches, &mut buf);
                    store
                },
                BatchSize::PerIteration,
            )
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = sync
}
criterion_main!(benches);
