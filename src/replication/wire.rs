//! The peer protocol's messages: what one node says to another.
//!
//! A connection opens with [`MAGIC`] (four raw bytes, sent by the side that
//! connects) and then carries frames (see [`crate::replication::frame`]), each one
//! postcard-encoded [`Message`]. One sync round from a pusher to a peer:
//!
//! ```text
//! pusher                                   peer
//!   MAGIC, Hello{version, name,  ───>                 (new connection only)
//!         wall_clock_ms}
//!                                <───  Welcome{version, name, vv, instance,
//!                                              wall_clock_ms}
//!   Push{batch, done: None}      ───>                 (zero or more parts)
//!                                <───  Next
//!   Push{batch, done: Some(Done{vv, digest, full})}  ───>   (the last part)
//!                                <───  Pull{batch}    (zero or more)
//!                                <───  Ack{vv, digest}
//! ```
//!
//! A probe connection (see [`crate::replication::prober`]) opens the same
//! way, with `Hello{probe: true}` (answered with an empty vector, without
//! the store thread), and then carries only membership:
//!
//! ```text
//! prober                                   peer
//!   Gossip{from, digest, members: []}  ───>   (every probe interval)
//!                                <───  Gossip{from, digest, members}
//!                                      (the whole list if the digests differ)
//!   Gossip{.., members: whole list}  ───>   (if the prober's still differs)
//!                                <───  Gossip{..}
//!   ProbeFor{target}             ───>   (after a failed probe of target)
//!                                <───  ProbeReply{reached}
//! ```
//!
//! A member that was forgotten or left gets `Expelled{why}` instead of a
//! `Welcome`, on either kind of connection.
//!
//! In a cluster with a secret, `Challenge`, `Proof` and `Confirm` come
//! before the `Hello`, and every frame from the `Hello` on carries a MAC:
//! see [`crate::replication::auth`].
//!
//! The pusher sends every entry with a dot above the peer's version vector
//! (from `Welcome`, or the last `Ack`), and its own vector at the start of
//! the transfer; the peer merges, joins that vector into its own, and
//! answers with every entry above the pusher's vector, then its own vector.
//! So one round moves data both ways. After the `Welcome`, each vector is
//! sent as what changed since the sender's previous one on the connection
//! (see [`crate::replication::vectors`]), so an idle round carries no
//! vector entry at all, however many writers the cluster has had. Each side's digest travels with its vector, so both can tell
//! equal vectors with different data (see
//! [`crate::replication::anti_entropy`]); a `full` round, which repairs
//! that, sends everything and asks for everything back.
//!
//! Versions cross the wire with writer *names*, not this process's ids: each
//! [`Batch`] has its own name table and its entries point into it by index.
//!
//! Nothing in this module is trusted: [`crate::store::Store::apply_batch`]
//! checks every index and length before using a batch.

use crate::placement::PartitionSet;
use crate::replication::auth::{Nonce, Tag};
pub use crate::store::batch::{Batch, Bytes, Summary, WireEntry, WireVv};
pub use crate::store::DataDigest;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// The first bytes of every peer connection. The first byte is not
/// printable ASCII, so a client protocol (which starts with text) can never
/// be mistaken for a peer.
pub const MAGIC: [u8; 4] = [0xF0, b'N', b'D', b'B'];

/// The peer protocol version this build speaks; a peer with another version
/// is refused at the handshake.
///
/// Version 2 added `instance` and `wall_clock_ms` to `Welcome` and
/// `wall_clock_ms` to `Hello`. Version 1 nodes decode a version 2
/// `Welcome` (the new fields are last, and postcard leaves trailing bytes
/// alone) and see the version; a version 2 node reads a version 1 `Hello`
/// (its missing clock read as 0, "not said") and refuses it by its
/// version too.
///
/// Version 3 added the digests to `Push`'s last part ([`Done`]) and to
/// `Ack`, and full rounds.
///
/// Version 4 added the authenticated handshake (`Challenge`, `Proof`,
/// `Confirm`, `ProofRefused`, `NoSecret`, `SecretRequired`) and MAC'd
/// frames, for clusters with a secret (see [`crate::replication::auth`]).
///
/// Version 5 added a value's expiry to every entry
/// ([`WireEntry::expires`](crate::store::batch::WireEntry::expires)), the
/// groups of writes one command made (`Batch::groups`), and the sender's
/// instance id to `Hello`.
///
/// Version 6 added membership: the sender's member id and whether the
/// connection is a probe to `Hello`, and the `Gossip`, `Expelled`,
/// `ProbeFor` and `ProbeReply` messages (see [`crate::membership`]); and a
/// counter's state to every entry
/// ([`WireEntry::counter`](crate::store::batch::WireEntry::counter)), and
/// an expiry to the tombstone an expiry left. (Both landed in one release:
/// one number.)
///
/// Version 7 sends the vectors of `Push`'s last part and of `Ack` as the
/// entries that changed since the sender's previous vector on the same
/// connection (see [`crate::replication::vectors`]); `Welcome`'s is still
/// whole.
///
/// Version 8 added the partitions a transfer carried to `Push`'s last
/// part and to `Ack` (`sent`; `None`: every partition), for sharded
/// clusters: the receiving side joins only those partitions' entries of
/// the sender's vector (see `crate::store::joinable`).
pub const PROTOCOL_VERSION: u16 = 8;

/// What the last part of a push says besides its entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// The pusher's version vector when the transfer started, as the
    /// entries that changed since its previous one on this connection
    /// (see [`crate::replication::vectors`]).
    pub vv: WireVv,
    /// The pusher's digest at that instant (`None`: not comparable then,
    /// see [`Summary::digest`]).
    pub digest: Option<DataDigest>,
    /// A repair: the push held everything, and the answer must too (as if
    /// the pusher's vector were empty).
    pub full: bool,
    /// The partitions the push carried (`None`: all of them): of its
    /// vector, only these partitions' writers may be joined.
    pub sent: Option<PartitionSet>,
    /// The partitions the pusher serves (holds and has received whole;
    /// `None`: all of them): what the receiver, once it has merged the
    /// push, holds whole too (see `crate::routing::Routing::synced`).
    pub serving: Option<PartitionSet>,
}

/// [`Done`] by reference.
#[derive(Debug, Clone, Copy, Serialize)]
#[allow(missing_docs)]
pub struct DoneRef<'a> {
    pub vv: &'a WireVv,
    pub digest: Option<DataDigest>,
    pub full: bool,
    pub sent: Option<PartitionSet>,
    pub serving: Option<PartitionSet>,
}

impl Done {
    /// The pusher's vector and digest.
    pub fn summary(&self) -> Summary {
        Summary {
            vv: self.vv.clone(),
            digest: self.digest,
        }
    }
}

/// A sender's wall clock, read as 0 ("not said") when a `Hello` of
/// version 1 ends before it: so the version is what refuses that peer,
/// with a message saying so, not a decoding error.
fn clock_or_unsaid<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(u64::deserialize(d).unwrap_or(0))
}

/// A field a `Hello` before version 6 ends before, read as its default
/// ("not said"), so the version is what refuses that peer.
fn or_unsaid<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(T::deserialize(d).unwrap_or_default())
}

/// A message between peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// First message of the connecting side.
    Hello {
        /// The sender's [`PROTOCOL_VERSION`].
        version: u16,
        /// The sender's node name.
        name: String,
        /// The sender's wall clock when it sent this, in milliseconds
        /// since the Unix epoch (0: not said), so the receiver can tell a
        /// peer whose clock is off from its own.
        #[serde(deserialize_with = "clock_or_unsaid")]
        wall_clock_ms: u64,
        /// The sender's process instance id (0: not said, from a version
        /// before 5): with `name`, it lets the receiver tell a twin (another
        /// live node with its name) from itself reached another way.
        #[serde(deserialize_with = "clock_or_unsaid")]
        instance: u64,
        /// The sender's member id (see [`crate::membership`]; empty: not
        /// said): a member that was forgotten or left is refused here.
        #[serde(deserialize_with = "or_unsaid")]
        member: String,
        /// A probe connection: it carries only `Gossip`, and its
        /// `Welcome` an empty vector, so that answering it never waits
        /// for the store thread.
        #[serde(deserialize_with = "or_unsaid")]
        probe: bool,
        /// The sender's `--replicas` (0: not sharded): peers that place
        /// keys differently exchange nothing.
        #[serde(deserialize_with = "or_unsaid")]
        replicas: u16,
    },
    /// The answer to [`Message::Hello`].
    Welcome {
        /// The sender's [`PROTOCOL_VERSION`].
        version: u16,
        /// The sender's node name.
        name: String,
        /// The sender's version vector: what the pusher need not send.
        vv: WireVv,
        /// The sender's process instance id (see
        /// [`crate::replication::status::instance_id`]): with `name`, it
        /// tells the pusher whether it reached itself or another node
        /// using its name.
        instance: u64,
        /// The sender's wall clock when it sent this, in milliseconds
        /// since the Unix epoch: with the time its `Hello` took to be
        /// answered, the pusher tells how far the two clocks are apart.
        wall_clock_ms: u64,
        /// The sender's `--replicas` (0: not sharded).
        #[serde(deserialize_with = "or_unsaid")]
        replicas: u16,
    },
    /// Entries for the receiver to merge: one part of a push.
    Push {
        /// The entries.
        batch: Batch,
        /// On the last part: the pusher's version vector and digest when
        /// the transfer started, and whether this is a full round.
        done: Option<Done>,
    },
    /// The answer to a part of a push that is not the last.
    Next,
    /// Entries the pusher lacks, after the last part of a push.
    Pull {
        /// The entries.
        batch: Batch,
    },
    /// Ends the answer to a push: the receiver's version vector and
    /// digest when it started answering.
    Ack {
        /// The version vector, as the entries that changed since this
        /// side's previous one on this connection (its `Welcome`'s or last
        /// `Ack`'s; see [`crate::replication::vectors`]).
        vv: WireVv,
        /// The digest at that instant (`None`: not comparable then).
        digest: Option<DataDigest>,
        /// The partitions the answer carried (`None`: all of them).
        sent: Option<PartitionSet>,
        /// The partitions the answering node serves (`None`: all).
        serving: Option<PartitionSet>,
    },
    /// First message of the connecting side when it has a cluster secret
    /// (instead of `Hello`, which follows the proofs).
    Challenge {
        /// The sender's [`PROTOCOL_VERSION`].
        version: u16,
        /// The initiator's fresh nonce.
        nonce: Nonce,
    },
    /// The answer to [`Message::Challenge`] of a node with a secret: its
    /// nonce and its proof, given first.
    Proof {
        /// The sender's [`PROTOCOL_VERSION`].
        version: u16,
        /// The responder's fresh nonce.
        nonce: Nonce,
        /// The responder's proof of the secret.
        proof: Tag,
    },
    /// The initiator's proof, once the responder's has checked.
    Confirm {
        /// The initiator's proof of the secret.
        proof: Tag,
    },
    /// The initiator's answer to a [`Message::Proof`] that did not check:
    /// the secrets differ. The connection closes.
    ProofRefused,
    /// The answer of a node without a secret to a `Challenge`. The
    /// connection closes.
    NoSecret,
    /// The answer of a node with a secret to a `Hello`. The connection
    /// closes.
    SecretRequired,
    /// Membership gossip, both ways (see [`crate::membership`]): a probe
    /// sends its digest with no records; the answer has the answerer's
    /// digest, and its whole list when the digests differ.
    Gossip {
        /// The sender's member id, in the first `Gossip` of a probe
        /// connection and in the answer to it; empty in the others (the
        /// answerer knows the prober from its `Hello`, and the prober
        /// the answerer from that first answer).
        from: String,
        /// The digest of the sender's list.
        digest: u64,
        /// The sender's whole list, or nothing.
        members: Vec<crate::membership::Member>,
    },
    /// The answer to the `Hello` of a member that was forgotten or left:
    /// it must not bring its data back. The connection closes.
    Expelled {
        /// What it must do, as its log should say.
        why: String,
    },
    /// On a probe connection: probe member `target` for the sender,
    /// whose own probe of it failed (SWIM's indirect probe).
    ProbeFor {
        /// The member id to probe.
        target: String,
    },
    /// The answer to [`Message::ProbeFor`].
    ProbeReply {
        /// Whether the target answered.
        reached: bool,
    },
}

impl Message {
    /// Which message this is, for saying what was expected instead.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Hello { .. } => MessageKind::Hello,
            Message::Welcome { .. } => MessageKind::Welcome,
            Message::Push { .. } => MessageKind::Push,
            Message::Next => MessageKind::Next,
            Message::Pull { .. } => MessageKind::Pull,
            Message::Ack { .. } => MessageKind::Ack,
            Message::Challenge { .. } => MessageKind::Challenge,
            Message::Proof { .. } => MessageKind::Proof,
            Message::Confirm { .. } => MessageKind::Confirm,
            Message::ProofRefused => MessageKind::ProofRefused,
            Message::NoSecret => MessageKind::NoSecret,
            Message::SecretRequired => MessageKind::SecretRequired,
            Message::Gossip { .. } => MessageKind::Gossip,
            Message::Expelled { .. } => MessageKind::Expelled,
            Message::ProbeFor { .. } => MessageKind::ProbeFor,
            Message::ProbeReply { .. } => MessageKind::ProbeReply,
        }
    }
}

/// The kinds of [`Message`], without their fields; shown by their names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum MessageKind {
    Hello,
    Welcome,
    Push,
    Next,
    Pull,
    Ack,
    Challenge,
    Proof,
    Confirm,
    ProofRefused,
    NoSecret,
    SecretRequired,
    Gossip,
    Expelled,
    ProbeFor,
    ProbeReply,
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// [`Message`] by reference, for sending without copying a batch. The
/// variants are in the same order with the same fields, so both encode to
/// the same bytes (a test checks it).
#[derive(Debug, Clone, Copy, Serialize)]
#[allow(missing_docs)]
pub enum MessageRef<'a> {
    Hello {
        version: u16,
        name: &'a str,
        wall_clock_ms: u64,
        instance: u64,
        member: &'a str,
        probe: bool,
        replicas: u16,
    },
    Welcome {
        version: u16,
        name: &'a str,
        vv: &'a WireVv,
        instance: u64,
        wall_clock_ms: u64,
        replicas: u16,
    },
    Push {
        batch: &'a Batch,
        done: Option<DoneRef<'a>>,
    },
    Next,
    Pull {
        batch: &'a Batch,
    },
    Ack {
        vv: &'a WireVv,
        digest: Option<DataDigest>,
        sent: Option<PartitionSet>,
        serving: Option<PartitionSet>,
    },
    Challenge {
        version: u16,
        nonce: Nonce,
    },
    Proof {
        version: u16,
        nonce: Nonce,
        proof: Tag,
    },
    Confirm {
        proof: Tag,
    },
    ProofRefused,
    NoSecret,
    SecretRequired,
    Gossip {
        from: &'a str,
        digest: u64,
        members: &'a [crate::membership::Member],
    },
    Expelled {
        why: &'a str,
    },
    ProbeFor {
        target: &'a str,
    },
    ProbeReply {
        reached: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_postcard() {
        let msg = Message::Push {
            done: None,
            batch: Batch {
                groups: Vec::new(),
                names: vec!["n1".into(), "n2".into()],
                entries: vec![WireEntry {
                    key: Bytes(b"k".to_vec()),
                    value: Some(Bytes((0..=255).collect())),
                    ts: 42,
                    writer: 1,
                    clock: vec![(0, 3), (1, 9)],
                    expires: None,
                    counter: None,
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
            groups: Vec::new(),
            names: vec!["n".into()],
            entries: vec![],
        };
        let vv: WireVv = vec![("n".into(), 7)];
        let pairs = [
            (
                Message::Hello {
                    version: 3,
                    name: "x".into(),
                    wall_clock_ms: 1_700_000_000_123,
                    instance: 42,
                    member: String::new(),
                    probe: false,
                    replicas: 0,
                },
                MessageRef::Hello {
                    version: 3,
                    name: "x",
                    wall_clock_ms: 1_700_000_000_123,
                    instance: 42,
                    member: "",
                    probe: false,
                    replicas: 0,
                },
            ),
            (
                Message::Welcome {
                    version: 3,
                    name: "x".into(),
                    vv: vv.clone(),
                    instance: u64::MAX,
                    wall_clock_ms: u64::MAX,
                    replicas: 3,
                },
                MessageRef::Welcome {
                    version: 3,
                    name: "x",
                    vv: &vv,
                    instance: u64::MAX,
                    wall_clock_ms: u64::MAX,
                    replicas: 3,
                },
            ),
            (
                Message::Push {
                    batch: batch.clone(),
                    done: Some(Done {
                        vv: vv.clone(),
                        digest: Some(DataDigest { sum: 9, live: 1 }),
                        full: true,
                        sent: Some([1u16, 200].into_iter().collect()),
                        serving: None,
                    }),
                },
                MessageRef::Push {
                    batch: &batch,
                    done: Some(DoneRef {
                        vv: &vv,
                        digest: Some(DataDigest { sum: 9, live: 1 }),
                        full: true,
                        sent: Some([1u16, 200].into_iter().collect()),
                        serving: None,
                    }),
                },
            ),
            (
                Message::Push {
                    batch: batch.clone(),
                    done: None,
                },
                MessageRef::Push {
                    batch: &batch,
                    done: None,
                },
            ),
            (Message::Next, MessageRef::Next),
            (
                Message::Pull {
                    batch: batch.clone(),
                },
                MessageRef::Pull { batch: &batch },
            ),
            (
                Message::Ack {
                    vv: vv.clone(),
                    digest: None,
                    sent: None,
                    serving: Some([3u16].into_iter().collect()),
                },
                MessageRef::Ack {
                    vv: &vv,
                    digest: None,
                    sent: None,
                    serving: Some([3u16].into_iter().collect()),
                },
            ),
            (
                Message::Challenge {
                    version: 4,
                    nonce: [1; 32],
                },
                MessageRef::Challenge {
                    version: 4,
                    nonce: [1; 32],
                },
            ),
            (
                Message::Proof {
                    version: 4,
                    nonce: [2; 32],
                    proof: [3; 32],
                },
                MessageRef::Proof {
                    version: 4,
                    nonce: [2; 32],
                    proof: [3; 32],
                },
            ),
            (
                Message::Confirm { proof: [4; 32] },
                MessageRef::Confirm { proof: [4; 32] },
            ),
            (Message::ProofRefused, MessageRef::ProofRefused),
            (Message::NoSecret, MessageRef::NoSecret),
            (Message::SecretRequired, MessageRef::SecretRequired),
        ];
        for (owned, borrowed) in pairs {
            assert_eq!(
                postcard::to_stdvec(&owned).expect("encodes"),
                postcard::to_stdvec(&borrowed).expect("encodes"),
                "{owned:?}"
            );
        }
    }

    #[test]
    fn a_version_1_node_reads_the_version_of_a_version_2_welcome() {
        // Version 1's messages, up to its Welcome, which had no instance.
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        enum V1 {
            Hello {
                version: u16,
                name: String,
            },
            Welcome {
                version: u16,
                name: String,
                vv: WireVv,
            },
        }
        let bytes = postcard::to_stdvec(&MessageRef::Welcome {
            version: PROTOCOL_VERSION,
            name: "n",
            vv: &vec![("n".into(), 1)],
            instance: 7,
            wall_clock_ms: 1_700_000_000_000,
            replicas: 0,
        })
        .expect("encodes");
        match postcard::from_bytes::<V1>(&bytes).expect("decodes") {
            V1::Welcome { version, .. } => assert_eq!(version, PROTOCOL_VERSION),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_version_1_hello_is_read_with_its_clock_unsaid() {
        // Version 1's Hello: no wall clock.
        #[derive(Serialize)]
        enum V1 {
            Hello { version: u16, name: String },
        }
        let bytes = postcard::to_stdvec(&V1::Hello {
            version: 1,
            name: "old".into(),
        })
        .expect("encodes");
        assert_eq!(
            postcard::from_bytes::<Message>(&bytes).expect("decodes"),
            Message::Hello {
                version: 1,
                name: "old".into(),
                wall_clock_ms: 0,
                instance: 0,
                member: String::new(),
                probe: false,
                replicas: 0,
            }
        );
    }

    #[test]
    fn the_clocks_in_hello_and_welcome_come_through() {
        for msg in [
            Message::Hello {
                version: PROTOCOL_VERSION,
                name: "a".into(),
                wall_clock_ms: 1_700_000_000_456,
                instance: 7,
                member: String::new(),
                probe: false,
                replicas: 0,
            },
            Message::Welcome {
                version: PROTOCOL_VERSION,
                name: "b".into(),
                vv: vec![("b".into(), 3)],
                instance: 9,
                wall_clock_ms: 1_700_000_000_789,
                replicas: 0,
            },
        ] {
            let bytes = postcard::to_stdvec(&msg).expect("encodes");
            assert_eq!(
                postcard::from_bytes::<Message>(&bytes).expect("decodes"),
                msg
            );
        }
    }

    #[test]
    fn an_idle_probe_is_a_few_bytes() {
        // After the first exchange on a probe connection, neither side
        // names itself: a probe and its answer are a digest each.
        let idle = postcard::to_stdvec(&MessageRef::Gossip {
            from: "",
            digest: u64::MAX,
            members: &[],
        })
        .expect("encodes");
        assert!(idle.len() <= 14, "{} bytes", idle.len());
    }

    #[test]
    fn bytes_are_encoded_as_one_run() {
        let encoded = postcard::to_stdvec(&Bytes(vec![7; 100])).expect("encodes");
        // One length byte and the bytes themselves.
        assert_eq!(encoded.len(), 101);
    }
}
