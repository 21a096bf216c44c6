//! Redis's numbered databases as namespaces of the one replicated
//! keyspace.
//!
//! netdb has one store, one set of clocks, one log and one replication
//! stream. A database is not a second map: it is a prefix on the stored
//! key, so every write in every database is clocked, logged, replicated,
//! merged and tombstoned exactly as before, and a peer needs to know
//! nothing about databases to carry them.
//!
//! The stored key for database `d` and a client's key `k` is:
//!
//! - `k` itself when `d` is 0 and `k` does not start with the byte `0xFF`,
//!   so the data of a node that predates databases, the console and
//!   anything else that reads raw store keys see database 0 unchanged;
//! - otherwise `[0xFF, d] ++ k`.
//!
//! Decoding is unique: a stored key not starting with `0xFF` is database
//! 0's; one starting with `0xFF` names its database in its second byte.
//! A stored key that no encoding produces (the lone `[0xFF]`, or
//! `[0xFF, 0]` before a key not starting with `0xFF`) is in no database:
//! no client sees it. Only raw bytes written before databases existed
//! could be such a key; a key of those days that starts with `[0xFF, d]`
//! for another `d` now shows in database `d`.
//! A stored key is at most [`MAX_KEY_LEN`](crate::store::MAX_KEY_LEN)
//! bytes, so a key in a database other than 0 (or one starting with
//! `0xFF`) may be two bytes shorter than one in database 0.
//!
//! [`DatabaseSizes`] counts each database's live keys, kept up to date by
//! the store thread's own writes and recounted after anything else (a
//! merge from a peer) changed the live data.
//!
//! Pure: no thread, socket, file or clock.

use crate::store::DataDigest;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The first byte of every stored key outside database 0's plain keys.
pub const MARK: u8 = 0xFF;

/// How many databases a node has unless `--databases` says otherwise, as
/// in Redis.
pub const DEFAULT_DATABASES: usize = 16;

/// The most databases a node can have: the database is one byte of the
/// stored key.
pub const MAX_DATABASES: usize = 256;

/// A database's index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Database(u8);

impl Database {
    /// Database 0, every connection's until it selects another.
    pub const ZERO: Database = Database(0);

    /// Database `index`.
    pub const fn new(index: u8) -> Database {
        Database(index)
    }

    /// Database `index` if a node with `count` databases has it.
    pub fn checked(index: i64, count: usize) -> Option<Database> {
        usize::try_from(index)
            .ok()
            .filter(|&i| i < count.min(MAX_DATABASES))
            .and_then(|i| u8::try_from(i).ok())
            .map(Database)
    }

    /// Its index.
    pub const fn index(self) -> u8 {
        self.0
    }

    /// Whether it is database 0.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "db{}", self.0)
    }
}

/// Whether `stored` has the two-byte prefix (and so is not one of
/// database 0's plain keys).
fn is_prefixed(stored: &[u8]) -> bool {
    stored.first() == Some(&MARK)
}

/// The stored key for `key` in `db`: `key` itself, borrowed, for a plain
/// key of database 0.
pub fn encode(db: Database, key: &[u8]) -> Cow<'_, [u8]> {
    if db.is_zero() && !is_prefixed(key) {
        return Cow::Borrowed(key);
    }
    let mut stored = Vec::with_capacity(key.len() + 2);
    stored.extend_from_slice(&[MARK, db.0]);
    stored.extend_from_slice(key);
    Cow::Owned(stored)
}

/// The database and client key a stored key stands for; `None` for a
/// stored key that no encoding produces (the lone `[0xFF]`, and
/// `[0xFF, 0] ++ k` for a `k` not starting with `0xFF`, which is stored as
/// `k` itself): such a key is in no database.
pub fn decode(stored: &[u8]) -> Option<(Database, &[u8])> {
    match stored {
        [MARK, 0, key @ ..] if !is_prefixed(key) => None,
        [MARK, db, key @ ..] => Some((Database(*db), key)),
        [MARK] => None,
        key => Some((Database::ZERO, key)),
    }
}

/// The client key `stored` stands for if it is in `db`.
pub fn key_in(db: Database, stored: &[u8]) -> Option<&[u8]> {
    match decode(stored) {
        Some((d, key)) if d == db => Some(key),
        _ => None,
    }
}

/// Turns a stored key known to be in some database into its client key,
/// in place (the inverse of [`encode`] once the database is known).
pub fn strip(stored: &mut Vec<u8>) {
    if is_prefixed(stored) {
        stored.drain(..2.min(stored.len()));
    }
}

/// How many live keys each database holds, valid for one state of the
/// live data (named by its [`DataDigest`], which changes with every key
/// that becomes live or stops being live, locally or by a merge).
///
/// Only prefixed keys are counted one by one; database 0's count is the
/// store's live count less the others', so a node whose clients use
/// database 0 alone answers `DBSIZE` in O(1) (its count of prefixed keys
/// stays zero). The store thread reports its own writes
/// ([`DatabaseSizes::wrote`]) and its merges of peers' batches
/// ([`DatabaseSizes::merged`]), which keep the counts valid as long as no
/// merged key is prefixed. Anything else that changes the live data (a
/// merge of another database's keys, a log write taken back, a change
/// nobody reported) leaves them stale, since the digest then differs,
/// and the next question recounts them in one walk over the keys
/// ([`DatabaseSizes::recount`]): correctness never depends on every
/// change being reported, only the cost does.
#[derive(Debug, Clone, Default)]
pub struct DatabaseSizes {
    /// The live data the counts are for; `None` before the first count.
    valid_for: Option<DataDigest>,
    /// Live prefixed keys by database (database 0's prefixed keys
    /// included), only the databases that have some.
    prefixed: BTreeMap<u8, usize>,
    /// Live keys in no database (see [`decode`]).
    nowhere: usize,
}

impl DatabaseSizes {
    /// Whether the counts are for the live data whose digest is `digest`.
    pub fn is_valid_for(&self, digest: DataDigest) -> bool {
        self.valid_for == Some(digest)
    }

    /// Counts again from every live stored key, for the live data whose
    /// digest is `digest`.
    pub fn recount<'k>(&mut self, digest: DataDigest, live: impl IntoIterator<Item = &'k [u8]>) {
        self.prefixed.clear();
        self.nowhere = 0;
        for stored in live {
            self.add(stored, 1);
        }
        self.valid_for = Some(digest);
    }

    /// Counts the prefixed key `stored` `delta` more times.
    fn add(&mut self, stored: &[u8], delta: isize) {
        if !is_prefixed(stored) {
            return;
        }
        let Some((db, _)) = decode(stored) else {
            self.nowhere = self.nowhere.saturating_add_signed(delta);
            return;
        };
        let count = self.prefixed.entry(db.0).or_default();
        *count = count.saturating_add_signed(delta);
        if *count == 0 {
            self.prefixed.remove(&db.0);
        }
    }

    /// A local write of `stored` took the live data from digest `before`
    /// to `after`, and the key from live (`was_live`) to `is_live`. The
    /// counts stay valid if they were valid before.
    pub fn wrote(
        &mut self,
        stored: &[u8],
        before: DataDigest,
        after: DataDigest,
        was_live: bool,
        is_live: bool,
    ) {
        if !self.is_valid_for(before) {
            return;
        }
        self.add(stored, isize::from(is_live) - isize::from(was_live));
        self.valid_for = Some(after);
    }

    /// A merge of a peer's versions of the stored keys `keys` took the
    /// live data from digest `before` to `after`. A merge of database
    /// 0's plain keys alone moves no count but database 0's remainder, so
    /// the counts stay valid if they were; one with any prefixed key
    /// leaves them to be recounted.
    pub fn merged<'k>(
        &mut self,
        mut keys: impl Iterator<Item = &'k [u8]>,
        before: DataDigest,
        after: DataDigest,
    ) {
        if self.is_valid_for(before) && !keys.any(is_prefixed) {
            self.valid_for = Some(after);
        }
    }

    /// Whether the count of `stored`'s database can change when `stored`
    /// is written, other than through database 0's share of the total:
    /// only then must a write say whether the key was live before.
    pub fn counts_one_by_one(stored: &[u8]) -> bool {
        is_prefixed(stored)
    }

    /// The live keys of `db`, given the store's count of all live keys.
    /// The counts must be valid.
    pub fn size(&self, db: Database, live: usize) -> usize {
        let prefixed = |d: u8| self.prefixed.get(&d).copied().unwrap_or(0);
        if db.is_zero() {
            let elsewhere: usize = self
                .prefixed
                .iter()
                .filter(|(&d, _)| d != 0)
                .map(|(_, &n)| n)
                .sum();
            live.saturating_sub(elsewhere + self.nowhere)
        } else {
            prefixed(db.0)
        }
    }

    /// Every database with live keys and how many, in index order. The
    /// counts must be valid.
    pub fn non_empty(&self, live: usize) -> Vec<(Database, usize)> {
        let mut dbs: Vec<u8> = self.prefixed.keys().copied().collect();
        if !dbs.contains(&0) {
            dbs.insert(0, 0);
        }
        dbs.into_iter()
            .map(|d| (Database(d), self.size(Database(d), live)))
            .filter(|&(_, n)| n > 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn db(i: u8) -> Database {
        Database::new(i)
    }

    #[test]
    fn database_0s_plain_keys_are_stored_as_they_are() {
        assert!(matches!(encode(db(0), b"key"), Cow::Borrowed(b"key")));
        assert!(matches!(encode(db(0), b""), Cow::Borrowed(b"")));
        assert_eq!(&*encode(db(0), b"\xFFk"), b"\xFF\x00\xFFk");
        assert_eq!(&*encode(db(3), b"key"), b"\xFF\x03key");
        assert_eq!(&*encode(db(255), b""), b"\xFF\xFF");
    }

    #[test]
    fn decoding_names_the_database() {
        assert_eq!(decode(b"key"), Some((db(0), &b"key"[..])));
        assert_eq!(decode(b""), Some((db(0), &b""[..])));
        assert_eq!(decode(b"\xFF\x03key"), Some((db(3), &b"key"[..])));
        assert_eq!(decode(b"\xFF\x00\xFF"), Some((db(0), &b"\xFF"[..])));
        assert_eq!(decode(b"\xFF"), None);
        assert_eq!(decode(b"\xFF\x00"), None, "stored as the empty key");
        assert_eq!(decode(b"\xFF\x00a"), None, "stored as a");
        assert_eq!(key_in(db(3), b"\xFF\x03k"), Some(&b"k"[..]));
        assert_eq!(key_in(db(0), b"\xFF\x03k"), None);
        assert_eq!(key_in(db(3), b"k"), None);
        let mut stored = b"\xFF\x07abc".to_vec();
        strip(&mut stored);
        assert_eq!(stored, b"abc");
        let mut plain = b"abc".to_vec();
        strip(&mut plain);
        assert_eq!(plain, b"abc");
    }

    #[test]
    fn only_existing_databases_are_checked_in() {
        assert_eq!(Database::checked(0, 16), Some(db(0)));
        assert_eq!(Database::checked(15, 16), Some(db(15)));
        assert_eq!(Database::checked(16, 16), None);
        assert_eq!(Database::checked(-1, 16), None);
        assert_eq!(Database::checked(255, 256), Some(db(255)));
        assert_eq!(Database::checked(256, 1000), None);
        assert_eq!(Database::checked(0, 1), Some(db(0)));
    }

    #[test]
    fn sizes_follow_local_writes_and_know_when_they_are_stale() {
        let d = |n: usize| crate::store::Digest::default().with_count(n);
        let mut sizes = DatabaseSizes::default();
        assert!(!sizes.is_valid_for(d(0)));
        let keys: [&[u8]; 6] = [
            b"a",
            b"b",
            b"\xFF\x00\xFFz",
            b"\xFF\x02x",
            b"\xFF",
            b"\xFF\x00a",
        ];
        sizes.recount(d(1), keys);
        assert_eq!(sizes.size(db(0), 6), 3);
        assert_eq!(sizes.size(db(2), 6), 1);
        assert_eq!(sizes.size(db(1), 6), 0);
        assert_eq!(sizes.non_empty(6), vec![(db(0), 3), (db(2), 1)]);
        // A write of database 2's key, live before, now deleted.
        sizes.wrote(b"\xFF\x02x", d(1), d(2), true, false);
        assert!(sizes.is_valid_for(d(2)));
        assert_eq!(sizes.non_empty(5), vec![(db(0), 3)]);
        // A plain key: only the digest moves.
        sizes.wrote(b"c", d(2), d(3), false, true);
        assert_eq!(sizes.size(db(0), 6), 4);
        // A merge of plain keys keeps them; one of another database's
        // keys leaves them stale.
        let plain: [&[u8]; 2] = [b"p", b"q"];
        sizes.merged(plain.into_iter(), d(3), d(4));
        assert!(sizes.is_valid_for(d(4)));
        let mixed: [&[u8]; 2] = [b"p", b"\xFF\x01r"];
        sizes.merged(mixed.into_iter(), d(4), d(5));
        assert!(!sizes.is_valid_for(d(5)));
        // A write reported against another state leaves them stale.
        sizes.recount(d(5), []);
        sizes.wrote(b"\xFF\x05y", d(9), d(10), false, true);
        assert!(!sizes.is_valid_for(d(10)));
    }

    fn any_key() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..6),
            proptest::collection::vec(prop_oneof![Just(0xFFu8), Just(0u8), any::<u8>()], 0..6),
        ]
    }

    proptest! {
        #[test]
        fn encoding_round_trips(d in any::<u8>(), key in any_key()) {
            let stored = encode(db(d), &key);
            prop_assert_eq!(decode(&stored), Some((db(d), &key[..])));
            let mut owned = stored.into_owned();
            strip(&mut owned);
            prop_assert_eq!(owned, key);
        }

        #[test]
        fn different_keys_never_share_a_stored_key(
            a in (any::<u8>(), any_key()),
            b in (any::<u8>(), any_key()),
        ) {
            if a != b {
                prop_assert_ne!(encode(db(a.0), &a.1), encode(db(b.0), &b.1));
            }
        }

        #[test]
        fn a_stored_key_decodes_to_what_encodes_to_it_or_to_nothing(stored in any_key()) {
            match decode(&stored) {
                Some((d, key)) => prop_assert_eq!(&*encode(d, key), &stored[..]),
                // No encoding gives it: only [0xFF], or [0xFF, 0] before
                // a key stored plain.
                None => prop_assert!(
                    stored == [MARK] || (stored.starts_with(&[MARK, 0]) && !is_prefixed(&stored[2..]))
                ),
            }
        }
    }
}
