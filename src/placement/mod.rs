//! Placement: which members hold which keys, the groundwork for sharding
//! (issue 14).
//!
//! Keys are split into Redis Cluster's 16384 slots, computed exactly as
//! Redis does, so a cluster-mode client's routing agrees with the node's;
//! a layout maps each slot to the members that hold it, master first,
//! computed alike on every node from the member ids and the replica
//! count. Nothing uses a layout to move data yet: every node still holds
//! every key.
//!
//! | file | holds |
//! | --- | --- |
//! | [`slot`] | a key's slot: CRC16 of the key or its hash tag, as `CLUSTER KEYSLOT` |
//! | [`layout`] | the layout: rendezvous hashing of each slot over the members, its ranges, and what changes between two layouts |
//!
//! Pure: no thread, socket, file or clock, and no reading of the member
//! list itself (callers pass the ids that count), so that any node, and
//! any test, computes the same layout from the same ids.

pub mod layout;
pub mod slot;

pub use layout::{Layout, SlotChange, SlotRange};
pub use slot::{key_slot, SLOTS};
