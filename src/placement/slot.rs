//! Key slots, exactly as Redis Cluster computes them (pure).
//!
//! A key's slot is the CRC16 of the key (the XMODEM variant: polynomial
//! 0x1021, initial value 0, no reflection, the one Redis's `crc16.c`
//! implements) modulo [`SLOTS`]. Only the key's hash tag is hashed when
//! it has one: the bytes between its first `{` and the first `}` after
//! it, if there is at least one byte between them. So `{user1000}.a` and
//! `{user1000}.b` share a slot, while `foo{}{bar}` hashes as a whole
//! (its first `{` is followed at once by `}`).
//!
//! A client in cluster mode computes the same, so the slot must never
//! depend on anything but the key's bytes: no seed, no database.

use crc::{Crc, CRC_16_XMODEM};

/// How many slots the key space is split into, as in Redis Cluster.
pub const SLOTS: u16 = 16384;

/// The CRC16 Redis Cluster hashes keys with; its table is built at
/// compile time.
const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_XMODEM);

/// The slot of `key`: the CRC16 of its hash tag (see [`hash_tag`]), or of
/// the whole key if it has none, modulo [`SLOTS`] (`CLUSTER KEYSLOT`).
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = hash_tag(key).unwrap_or(key);
    // SLOTS is a power of two: the mask is the modulo, as in Redis.
    CRC16.checksum(hashed) & (SLOTS - 1)
}

/// The hash tag of `key`: the bytes between its first `{` and the first
/// `}` after that, if there are any; `None` if the key has no `{`, no
/// `}` after it, or nothing between the two.
pub fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let after = &key[open + 1..];
    let close = after.iter().position(|&b| b == b'}')?;
    (close > 0).then(|| &after[..close])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Slots as Redis 7.0.15 answered `CLUSTER KEYSLOT` for each key.
    const FROM_REDIS: &[(&[u8], u16)] = &[
        (b"foo", 12182),
        (b"bar", 5061),
        (b"{user1000}.following", 3443),
        (b"{user1000}.followers", 3443),
        (b"foo{}{bar}", 8363),
        (b"foo{{bar}}zap", 4015),
        (b"foo{bar}{zap}", 5061),
        (b"", 0),
        (b"123456789", 12739),
        (b"{}", 15257),
        (b"{", 4092),
        (b"}", 12090),
        (b"a{b", 13340),
        (b"x}{y}", 12222),
    ];

    #[test]
    fn slots_are_those_redis_answers() {
        for &(key, slot) in FROM_REDIS {
            assert_eq!(key_slot(key), slot, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn the_crc_is_xmodem() {
        // The catalogue's check value for CRC-16/XMODEM.
        assert_eq!(CRC16.checksum(b"123456789"), 0x31c3);
    }

    #[test]
    fn hash_tags() {
        assert_eq!(hash_tag(b"{user1000}.following"), Some(&b"user1000"[..]));
        assert_eq!(hash_tag(b"foo{}{bar}"), None, "an empty first tag");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), Some(&b"{bar"[..]));
        assert_eq!(hash_tag(b"foo{bar}{zap}"), Some(&b"bar"[..]));
        assert_eq!(hash_tag(b"x}{y}"), Some(&b"y"[..]));
        assert_eq!(hash_tag(b"a{b"), None);
        assert_eq!(hash_tag(b"plain"), None);
        assert_eq!(hash_tag(b""), None);
    }

    proptest! {
        #![proptest_config(crate::proptest_config("tests/regressions/placement_slot.txt"))]

        /// Whatever surrounds a tag, the key lands in the tag's slot.
        #[test]
        fn a_tagged_key_is_in_its_tags_slot(
            before in proptest::collection::vec(any::<u8>().prop_filter("no brace", |&b| b != b'{'), 0..8),
            tag in proptest::collection::vec(any::<u8>().prop_filter("no brace", |&b| b != b'}'), 1..8),
            after in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let key = [&before[..], b"{", &tag, b"}", &after].concat();
            prop_assert_eq!(key_slot(&key), key_slot(&tag));
            prop_assert!(key_slot(&key) < SLOTS);
        }
    }
}
