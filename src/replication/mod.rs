//! Replication between peers: the wire messages and their framing, the
//! peers file, both halves of a transfer (the pusher that sends, the
//! receiver that answers), the sync thread that starts rounds, and what
//! each node knows of its peers.
//!
//! It reaches the map only through the store thread's requests; it never
//! touches the disk or speaks Redis.

pub mod error;
pub mod frame;
pub mod peers;
pub mod sync;
pub mod wire;

pub use error::SyncError;
