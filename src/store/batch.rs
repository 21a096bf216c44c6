//! Versions of keys as one store hands them to another: a batch of
//! entries with its own table of writer names, and a version vector by
//! writer name. The peer protocol carries these (see
//! [`crate::replication::wire`]); the store makes and merges them, so they
//! live with the store and the replication layer depends on the store,
//! not the other way round.
//!
//! Nothing here is trusted when it comes from a peer:
//! [`Store::apply_batch`](crate::store::Store::apply_batch) checks every
//! index and length before using a batch.

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A version vector on the wire: (writer name, counter) pairs.
pub type WireVv = Vec<(String, u64)>;

/// What a node had seen and what it held, at one instant: its version
/// vector and the digest of its live data, taken together by the store
/// thread so that a peer can compare both (see
/// [`crate::replication::anti_entropy`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The version vector.
    pub vv: WireVv,
    /// The digest of the live data, or `None` when the data held is not
    /// yet what the vector says: some entry has a dot the vector does not
    /// cover (a transfer of several parts is half merged), so the digest
    /// cannot be compared with another node's at the same vector.
    pub digest: Option<super::DataDigest>,
}

/// Versions of keys with a shared table of node names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Node names; entries refer to them by index.
    pub names: Vec<String>,
    /// The versions.
    pub entries: Vec<WireEntry>,
    /// Groups of writes that one command made (a transaction, `MSET`)
    /// whose entries are in this batch: (index into `names` of the writer,
    /// first counter, last counter). The receiver keeps each in one part
    /// when it passes the writes on.
    pub groups: Vec<(u32, u64, u64)>,
}

/// One key's version on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireEntry {
    /// The key.
    pub key: Bytes,
    /// The value, or `None` for a tombstone.
    pub value: Option<Bytes>,
    /// Hybrid logical timestamp of the winning write.
    pub ts: u64,
    /// Index into [`Batch::names`] of the winning write's node.
    pub writer: u32,
    /// The vector clock: (index into [`Batch::names`], counter) pairs.
    pub clock: Vec<(u32, u64)>,
    /// When the value expires (milliseconds since the Unix epoch), if it
    /// does: part of the value, so it travels with it.
    pub expires: Option<u64>,
    /// The counter the value is the total of, if it is one.
    pub counter: Option<WireCounter>,
}

/// A counter on the wire (see [`crate::core::counter`]); writers are
/// indices into [`Batch::names`].
pub type WireCounter = crate::core::counter::Portable<u32>;

/// A byte string, encoded as one length-prefixed run of bytes (serde's
/// default for `Vec<u8>` is a sequence of single bytes, far slower).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl From<&[u8]> for Bytes {
    fn from(b: &[u8]) -> Bytes {
        Bytes(b.to_vec())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        struct BytesVisitor;
        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        d.deserialize_bytes(BytesVisitor)
    }
}
