//! A digest of the live data that is equal on every replica holding the
//! same keys and values, whatever order their writes and merges came in,
//! and that costs O(1) to keep up to date on every change.
//!
//! Each live key contributes a 128-bit hash of its key and value; the
//! contributions are combined with XOR, so adding and removing a key are
//! the same operation and the order of changes does not matter (Redis's
//! `DEBUG DIGEST` combines its keys the same way). Tombstones, clocks and
//! timestamps are not part of it: two replicas that show clients the same
//! data have the same digest. The hash is xxh3 with a fixed seed, never
//! the map's per-process random one, so it means the same in every
//! process. It detects honest divergence; it is no defence against a peer
//! that forges data on purpose (peers are authenticated for that).

use serde::{Deserialize, Serialize};
use std::fmt;
use xxhash_rust::xxh3::xxh3_128_with_seed;

/// The XOR of the hashes of every live key and value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Digest(u128);

impl Digest {
    /// Adds a live key with `bytes` (the key followed by the value, and
    /// by the expiry before the value when it has one), or removes it if it
    /// was in. `seed` says where the key ends and whether an expiry
    /// follows, so that ("ab", "c") and ("a", "bc") differ.
    pub fn toggle(&mut self, bytes: &[u8], seed: u64) {
        self.0 ^= xxh3_128_with_seed(bytes, seed);
    }

    /// The digest as 40 hex digits, as `DEBUG DIGEST` answers: the 128-bit
    /// sum and the low 32 bits of the live key count. All zeros for no
    /// keys, as Redis answers for an empty data set.
    pub fn to_hex(self, live_keys: usize) -> String {
        self.with_count(live_keys).to_string()
    }

    /// The digest of a data set of `live_keys` keys whose sum this is.
    pub fn with_count(self, live_keys: usize) -> DataDigest {
        DataDigest {
            sum: self.0,
            live: live_keys as u32,
        }
    }

    /// The digest of one live key (`DEBUG DIGEST-VALUE`): its contribution
    /// to the sum, and a count of one.
    pub fn of_key(bytes: &[u8], seed: u64) -> DataDigest {
        let mut one = Digest::default();
        one.toggle(bytes, seed);
        one.with_count(1)
    }
}

/// A node's digest at one instant, as `DEBUG DIGEST` shows it (40 hex
/// digits) and as peers compare it: the sum of the live keys' hashes and
/// the low 32 bits of their count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataDigest {
    /// The XOR of the hashes of every live key and value.
    pub sum: u128,
    /// The low 32 bits of the live key count.
    pub live: u32,
}

impl fmt::Display for DataDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}{:08x}", self.sum, self.live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_does_not_matter_and_removing_undoes_adding() {
        let (mut a, mut b) = (Digest::default(), Digest::default());
        a.toggle(b"k1v1", 2);
        a.toggle(b"k2v2", 2);
        b.toggle(b"k2v2", 2);
        b.toggle(b"k1v1", 2);
        assert_eq!(a, b);
        a.toggle(b"k1v1", 2);
        a.toggle(b"k2v2", 2);
        assert_eq!(a, Digest::default());
        assert_eq!(a.to_hex(0), "0".repeat(40));
    }

    #[test]
    fn where_the_key_ends_is_part_of_it() {
        let (mut a, mut b) = (Digest::default(), Digest::default());
        a.toggle(b"abc", 2);
        b.toggle(b"abc", 1);
        assert_ne!(a, b);
    }

    #[test]
    fn a_key_alone_is_its_share_of_the_sum() {
        let mut all = Digest::default();
        all.toggle(b"k1v1", 2);
        assert_eq!(Digest::of_key(b"k1v1", 2), all.with_count(1));
        assert_eq!(Digest::of_key(b"k1v1", 2).to_string().len(), 40);
    }
}
