//! Replication between peers: the peer protocol, both of its halves, and
//! what a node knows of its peers.
//!
//! One file per part, so that a reader finds each half of an exchange
//! whole and the pure parts apart from the threads:
//!
//! | file | holds |
//! | --- | --- |
//! | [`wire`] | the messages, and the exchange they make (pure) |
//! | [`auth`] | the cluster secret, the authenticated handshake's proofs and the frames' MACs; the protocol's diagram (pure) |
//! | [`anti_entropy`] | comparing digests at the end of a round, and repairing a divergence (pure) |
//! | [`frame`] | length-prefixed framing over `Read`/`Write` (pure) |
//! | [`peers`] | parsing the peers file (pure) |
//! | [`error`] | [`SyncError`]: why an exchange failed, by cause (pure) |
//! | [`connection`] | a peer socket with timeouts, buffered, sending and receiving messages |
//! | [`vectors`] | version vectors on one connection, sent as what changed since the last (pure) |
//! | [`transfer`] | transfers in parts, both ways: gathering them to send, merging them as they come; part sizes |
//! | [`pusher`] | the sending half: one pusher thread per peer, its connection, pushes and retry |
//! | [`prober`] | probing each peer (failure detection) and gossiping the member list with it |
//! | [`receiver`] | the receiving half: an incoming peer connection's handshake, pushes and answers |
//! | [`ticker`] | the sync thread, which starts rounds |
//! | [`status`] | what each node knows of its peers: reachability for `status`, who is pulling from it |
//! | [`clocks`] | how far peers' clocks are off, and when that makes this node refuse writes (pure) |
//!
//! The listener ([`crate::listener`]) accepts connections and hands a
//! peer's to [`receiver`]; everything the protocol says is here.
//!
//! This folder reaches the map only through the store thread's requests
//! ([`crate::engine::StoreHandle`]); it never touches the disk,
//! never speaks Redis, and never accepts connections itself. A peer's
//! bytes are untrusted: a bad peer costs one closed connection and a log
//! line naming it and the cause.

pub mod anti_entropy;
pub mod auth;
pub mod clocks;
pub mod connection;
pub mod error;
pub mod frame;
pub mod peers;
pub mod prober;
pub mod pusher;
pub mod receiver;
pub mod status;
pub mod ticker;
pub mod transfer;
pub mod vectors;
pub mod wire;

pub use error::SyncError;
