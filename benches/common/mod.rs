//! Data shared by the benches: keys, values, filled stores and a seeded
//! shuffle, all made outside the timed loops; and the test harness
//! (`tests/common`), through which the benches that run real processes
//! start them, and through which every bench reaches the netdb library.
//!
//! Lives in `benches/common/mod.rs` (not `benches/common.rs`) so cargo does
//! not take it for a bench of its own.

// Each bench uses its own part of this module.
#![allow(dead_code)]

#[path = "../../tests/common/mod.rs"]
pub mod harness;

// The library's modules, as the harness names them (one place to change
// when they move).
#[allow(unused_imports)]
pub use harness::{frame, store, transfer, wire};

use criterion::Criterion;
use harness::config::Config;
use harness::Rng;
use std::time::Duration;
use store::Store;

/// Keys in the stores the benches run against.
pub const KEYS: usize = 1_000_000;

/// A fixed wall clock (µs since the epoch) for the stores' writes: the
/// stores' own clocks still make every write's stamp unique.
pub const NOW_US: u64 = 1_700_000_000_000_000;

/// The wall clock at which the benches merge batches: an hour after
/// [`NOW_US`], so no entry is ever ahead of the receiving clock.
pub const MERGE_US: u64 = NOW_US + 3_600_000_000;

/// Bytes in every value.
pub const VALUE_LEN: usize = 100;

/// The value every write stores.
pub const VALUE: [u8; VALUE_LEN] = [b'v'; VALUE_LEN];

/// `prefix` and `i` in six digits: a 10-byte key for `i` below a million.
pub fn key(prefix: &[u8; 4], i: usize) -> [u8; 10] {
    assert!(i < 1_000_000, "keys have six digits");
    let mut k = [b'0'; 10];
    k[..4].copy_from_slice(prefix);
    let mut n = i;
    for digit in k[4..].iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
    k
}

/// The value limit a node with default settings uses.
pub fn max_value() -> usize {
    Config::new("bench", Vec::new()).max_value()
}

/// An empty store for the node `name`.
pub fn empty(name: &str) -> Store {
    Store::new(name, max_value())
}

/// A store of node `name` holding `n` keys `key:000000`, `key:000001`, ...
/// written locally.
pub fn filled(name: &str, n: usize) -> Store {
    let mut store = empty(name);
    for i in 0..n {
        store
            .put(&key(b"key:", i), &VALUE, NOW_US)
            .expect("bench keys and values are within the limits");
    }
    store
}

/// Everything `store` holds, in the parts a full transfer to an empty node
/// sends (what [`Store::delta`] gives for an empty version vector).
pub fn full_transfer(store: &Store) -> Vec<wire::Batch> {
    let mut parts = Vec::new();
    let mut cursor = None;
    loop {
        let part = store.delta(&Vec::new(), cursor, transfer::CHUNK_BYTES);
        parts.push(part.batch);
        match part.next {
            Some(next) => cursor = Some(next),
            None => return parts,
        }
    }
}

/// `0..n` in a random order fixed by `seed`, so lookups miss the cache
/// the way a real workload does.
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    Rng::from_seed(seed).shuffle(&mut order);
    order
}

/// Criterion settings that keep a bench file to a few minutes on two
/// busy cores: few samples, short warm-up and measurement.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}
