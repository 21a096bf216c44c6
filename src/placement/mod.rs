//! Placement: which members hold which keys (sharding, `--replicas N`).
//!
//! Keys are split into Redis Cluster's 16384 slots, computed exactly as
//! Redis does, so a cluster-mode client's routing agrees with the node's;
//! slots are cut into 256 partitions of 64, and a layout maps each
//! partition to the `min(N, M)` members that hold it, master first,
//! computed alike on every node from the member ids and `N`.
//!
//! | file | holds |
//! | --- | --- |
//! | [`slot`] | a key's slot: CRC16 of the key or its hash tag, as `CLUSTER KEYSLOT` |
//! | [`partition`] | partitions of 64 slots, the unit placed, and sets of them; the per-partition writer names |
//! | [`layout`] | the layout: each partition's replicas (rendezvous weights, balanced), its ranges, and what changes between two layouts |
//!
//! Pure: no thread, socket, file or clock, and no reading of the member
//! list itself (callers pass the ids that count), so that any node, and
//! any test, computes the same layout from the same ids. The live side
//! (this node's view of the member list's layout, which partitions it
//! serves) is [`crate::routing`].
//!
//! # How sharding is built on it
//!
//! 1. **Runs of slots.** Rendezvous hashing per slot scattered a
//!    member's slots over the whole range (about `16384 (1 - 1/M)` runs,
//!    some 2.7 MB of `CLUSTER SLOTS` at 6 members and `N` = 3), and plain
//!    rendezvous hashing over 256 partitions would leave a member over
//!    50% off its share. So the layout places 256 partitions of 64 slots
//!    (Riak's ring and Garage's partitions), each on `min(N, M)` distinct
//!    members: ranked by the same kind of weights, then balanced,
//!    deterministically, to `floor` or `ceil` of the fair share, copies
//!    and masters alike, by a least-loss flow (see [`layout`]).
//!    `CLUSTER SLOTS` lists at most 256 runs. The price is the property
//!    that no copy ever moves between two members that stayed: a join or
//!    a leave makes, as measured, at most 1.5 times the ideal copies for
//!    `N` >= 3, and up to about twice for `N` = 1 at 16 members, where
//!    each member's share is small.
//! 2. **`--replicas N`, checked.** Every member is started with the same
//!    `N`; peers compare it in their handshake and exchange nothing when
//!    it differs (both logs and `status` say why), since two members that
//!    place keys differently would each drop what they believe the other
//!    holds. (Carrying `N` in the member list, so that it could change
//!    while the cluster runs, is not built.)
//! 3. **Each node stores and syncs only its partitions.** A sharded node
//!    writes a key of partition `p` under the writer name
//!    `{writer}/{p}` ([`partition::writer_for`]), so a version vector
//!    entry is a claim about one partition, and the protocol of full
//!    replication runs per partition unchanged: a push sends a peer the
//!    partitions it holds, says which, and the receiver joins only those
//!    partitions' entries (see `crate::store::joinable` and
//!    `store/shard.rs`).
//! 4. **Proxying** (`crate::redis::forward`, `crate::redis::route`): a
//!    command for a key this node does not serve goes to a live replica
//!    of its slot, multi-key commands split and gathered; `CLUSTER SLOTS`
//!    shows the layout and `cluster_enabled` is 1.
//! 5. **Handoff.** A member that comes to hold a partition has an empty
//!    vector for it, so the holders send it whole; it serves the
//!    partition once a holder that serves it has completed an exchange
//!    with it ([`crate::routing::Routing::synced`]). A member that no
//!    longer holds it drops it once every holder has acknowledged all of
//!    it and the layout has been still for a while
//!    (`Store::drop_released`).
//! 6. **`--write-replicas W`** (not built): a write acknowledged once `W`
//!    replicas hold it. The counting is there: `WAIT` on a sharded node
//!    counts the replicas of the latest write's partition that have it.

pub mod layout;
pub mod partition;
pub mod slot;

pub use layout::{Layout, SlotChange, SlotRange};
pub use partition::{partition_of_key, PartitionSet, PARTITIONS};
pub use slot::{key_slot, SLOTS};
