//! Placement: which members hold which keys, the groundwork for sharding
//! (issue 14).
//!
//! Keys are split into Redis Cluster's 16384 slots, computed exactly as
//! Redis does, so a cluster-mode client's routing agrees with the node's;
//! a layout maps each partition (64 slots) to the members that hold it,
//! master first, computed alike on every node from the member ids and
//! the replica count. Nothing uses a layout to move data yet: every node still holds
//! every key.
//!
//! | file | holds |
//! | --- | --- |
//! | [`slot`] | a key's slot: CRC16 of the key or its hash tag, as `CLUSTER KEYSLOT` |
//! | [`partition`] | partitions of 64 slots, the unit placed, and sets of them |
//! | [`layout`] | the layout: each partition's replicas (rendezvous weights, balanced), its ranges, and what changes between two layouts |
//! | [`routing`] | this node's view of the current layout |
//!
//! Pure: no thread, socket, file or clock, and no reading of the member
//! list itself (callers pass the ids that count), so that any node, and
//! any test, computes the same layout from the same ids.
//!
//! # What sharding builds on this, in order
//!
//! Decided; built where marked. Each step keeps every test of the one
//! before.
//!
//! 1. **Runs of slots** (built). Rendezvous hashing per slot scattered
//!    a member's slots over the whole range (about `16384 (1 - 1/M)`
//!    runs, some 2.7 MB of `CLUSTER SLOTS` at 6 members and `N` = 3), and
//!    plain rendezvous hashing over 256 partitions would leave a member
//!    over 50% off its share. So the layout places 256 partitions of 64
//!    slots (Riak's ring and Garage's partitions), each on `min(N, M)`
//!    distinct members: ranked by the same kind of weights, then
//!    balanced, deterministically, to `floor` or `ceil` of the fair
//!    share, copies and masters alike, by a least-loss flow (see
//!    [`layout`]). `CLUSTER SLOTS` lists at most 256 runs. The price is
//!    the property that no copy ever moves between two members that
//!    stayed: a join or a leave makes, as measured, at most 1.5 times
//!    the ideal copies for `N` >= 3, and up to about twice for `N` = 1
//!    at 16 members, where each member's share is small.
//! 2. **`--replicas N`, agreed.** A cluster-wide setting carried in the
//!    member list (a last-writer-wins register with the records), so
//!    every node computes the layout from the same ids and the same `N`;
//!    the layout's digest travels in the gossip digest, so two nodes that
//!    disagree see it within a probe.
//! 3. **Each node stores only its partitions**, with a version vector per
//!    partition: a push to a peer sends, partition by partition, the
//!    entries of the partitions both hold above the peer's vector for it,
//!    and an acknowledgement covers one partition, so tombstones go once
//!    every replica of their partition has them. An idle round carries
//!    the changed partitions' vectors only (see
//!    `replication::vectors`).
//! 4. **Proxying.** A command for a key this node does not hold goes to
//!    the first live replica of its slot, over a pooled client-protocol
//!    connection, and the reply is relayed; multi-key commands are split
//!    by slot and gathered. Then `CLUSTER SLOTS` shows the layout and
//!    `cluster_enabled` turns 1.
//! 5. **Handoff.** When the layout changes, the new replicas of a
//!    partition pull it from the current ones; writes go to both and
//!    reads to the old until every new replica has acknowledged the
//!    partition's vector; then the old replica drops it (its tombstones
//!    first reach the new ones, so nothing deleted comes back).
//! 6. **`--write-replicas W`**: a write is acknowledged once `W` replicas
//!    acknowledged its dot (the wait `WAIT` already does).

pub mod layout;
pub mod partition;
pub mod slot;

pub use layout::{Layout, SlotChange, SlotRange};
pub use partition::{partition_of_key, PartitionSet, PARTITIONS};
pub use slot::{key_slot, SLOTS};
