//! Membership: which nodes make the cluster, as replicated state.
//!
//! | file | holds |
//! | --- | --- |
//! | [`member`] | one member's record, the member list and its merge (a CRDT; pure) |
//! | [`detector`] | failure detection: up, suspect, down from what was heard when (pure) |
//! | [`file`](mod@file) | the members file in the data directory (parsing pure; an atomic write) |
//! | [`live`] | the list a running node shares between its threads, saved on every change |
//!
//! The threads that move it are elsewhere: the prober
//! ([`crate::replication::prober`]) probes each member and gossips, the
//! receiver answers probes and gossip, the pushers follow the list.
//!
//! # Gossip, and why on its own small messages
//!
//! Membership travels in a `Gossip` message of the peer protocol
//! ([`crate::replication::wire::Message::Gossip`]), on a probe connection
//! each node keeps to each member, not inside the push rounds. Push
//! rounds start after every write (too often to carry anything) and can
//! wait on a long transfer or a busy store thread, which must neither
//! delay membership news nor make a node look dead. A probe carries only
//! the sender's id and the 64-bit digest of its list; the full list goes
//! only when the digests differ, in the answer (the answerer's list), and
//! then once back (the prober's, if it still differs after merging). An
//! idle exchange is two frames of a few dozen bytes; with n members each
//! node makes n-1 per probe interval (a second by default).
//!
//! This folder imports no socket and starts no thread; nothing in it
//! trusts a peer's records before [`member::Member::check`].

pub mod detector;
pub mod file;
pub mod live;
pub mod member;

pub use detector::Health;
pub use live::{MemberView, Membership};
pub use member::{Member, Members, State};
