//! The peer protocol's messages: what one node says to another.
//!
//! A connection opens with [`MAGIC`] (four raw bytes, sent by the side that
//! connects) and then carries frames (see [`crate::frame`]), each one
//! postcard-encoded [`Message`]. Both sides first send [`Message::Hello`]
//! with the protocol version and their node name; then the connecting side
//! sends [`Message::Push`] batches and the other side answers each with one
//! [`Message::Ack`] that carries back the versions the pusher lacks.
//!
//! Versions cross the wire with node *names*, not this process's ids: each
//! [`Batch`] has its own name table and its entries point into it by index.
//!
//! Nothing in this module is trusted: [`crate::store::Store::apply_batch`]
//! checks every index and length before using a batch.

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The first bytes of every peer connection. The first byte is not
/// printable ASCII, so a client protocol (which starts with text) can never
/// be mistaken for a peer.
pub const MAGIC: [u8; 4] = [0xF0, b'N', b'D', b'B'];

/// The peer protocol version this build speaks; a peer with another version
/// is refused at the handshake.
pub const PROTOCOL_VERSION: u16 = 1;

/// A message between peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// First message on a connection, from both sides.
    Hello {
        /// The sender's [`PROTOCOL_VERSION`].
        version: u16,
        /// The sender's node name.
        name: String,
    },
    /// Versions for the receiver to merge; one of the chunks of a sync round.
    Push {
        /// The versions.
        batch: Batch,
    },
    /// The answer to a [`Message::Push`]: merged.
    Ack {
        /// For each pushed key where the receiver's merged version has seen
        /// something the pushed one had not, the receiver's version, so one
        /// round moves data both ways.
        newer: Batch,
    },
}

/// [`Message`] by reference, for sending without copying a batch. The
/// variants are in the same order with the same fields, so both encode to
/// the same bytes (a test checks it).
#[derive(Debug, Clone, Copy, Serialize)]
pub enum MessageRef<'a> {
    /// See [`Message::Hello`].
    Hello {
        /// See [`Message::Hello`].
        version: u16,
        /// See [`Message::Hello`].
        name: &'a str,
    },
    /// See [`Message::Push`].
    Push {
        /// See [`Message::Push`].
        batch: &'a Batch,
    },
    /// See [`Message::Ack`].
    Ack {
        /// See [`Message::Ack`].
        newer: &'a Batch,
    },
}

/// Versions of keys with a shared table of node names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Node names; entries refer to them by index.
    pub names: Vec<String>,
    /// The versions.
    pub entries: Vec<WireEntry>,
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
}

impl WireEntry {
    /// A rough size in bytes once encoded, to cut batches to a size.
    pub fn encoded_size_hint(&self) -> usize {
        let value = self.value.as_ref().map_or(0, |v| v.0.len());
        self.key.0.len() + value + 12 * self.clock.len() + 16
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_postcard() {
        let msg = Message::Push {
            batch: Batch {
                names: vec!["n1".into(), "n2".into()],
                entries: vec![WireEntry {
                    key: Bytes(b"k".to_vec()),
                    value: Some(Bytes((0..=255).collect())),
                    ts: 42,
                    writer: 1,
                    clock: vec![(0, 3), (1, 9)],
                }],
            },
        };
        let bytes = postcard::to_stdvec(&msg).expect("encodes");
        let back: Message = postcard::from_bytes(&bytes).expect("decodes");
        assert_eq!(back, msg);
    }

    #[test]
    fn a_message_by_reference_encodes_like_the_owned_one() {
        let batch = Batch {
            names: vec!["n".into()],
            entries: vec![],
        };
        let owned = |m: &Message| postcard::to_stdvec(m).expect("encodes");
        let borrowed = |m: &MessageRef| postcard::to_stdvec(m).expect("encodes");
        assert_eq!(
            owned(&Message::Hello {
                version: 3,
                name: "x".into()
            }),
            borrowed(&MessageRef::Hello {
                version: 3,
                name: "x"
            })
        );
        assert_eq!(
            owned(&Message::Push {
                batch: batch.clone()
            }),
            borrowed(&MessageRef::Push { batch: &batch })
        );
        assert_eq!(
            owned(&Message::Ack {
                newer: batch.clone()
            }),
            borrowed(&MessageRef::Ack { newer: &batch })
        );
    }

    #[test]
    fn bytes_are_encoded_as_one_run() {
        let encoded = postcard::to_stdvec(&Bytes(vec![7; 100])).expect("encodes");
        // One length byte and the bytes themselves.
        assert_eq!(encoded.len(), 101);
    }
}
