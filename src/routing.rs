//! Routing: the layout of the member list as it is now, and what it means
//! for this node: which partitions it holds, which it serves, and where a
//! key it does not serve is served. The shell's side of
//! [`crate::placement`] (which is pure): it reads the live member list
//! and the failure detector's view of each member.
//!
//! One [`Routing`] per node, shared by every thread that asks (the I/O
//! threads that proxy, the pushers that filter, the store thread's work).
//! The layout is computed again only when the member list's digest
//! changes, so asking costs a lock and a lookup. Without `--replicas`
//! every member holds every partition and nothing is routed.

use crate::membership::{Health, Member, Membership, State};
use crate::placement::layout::Layout;
use crate::placement::partition::PartitionSet;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The layout, and this node's view of it, for one version of the list.
#[derive(Debug)]
pub struct Placed {
    /// The layout.
    pub layout: Layout,
    /// The records it was computed from.
    pub members: Vec<Member>,
    /// This node's member id.
    pub me: String,
    /// The partitions this node holds.
    pub held: PartitionSet,
    /// By member id, the partitions each member of the layout holds:
    /// computed once, asked for every peer at every write and exchange.
    by_member: HashMap<String, PartitionSet>,
}

impl Placed {
    fn new(layout: Layout, members: Vec<Member>, me: String) -> Placed {
        let by_member: HashMap<String, PartitionSet> = (layout.members().iter())
            .map(|id| (id.clone(), layout.partitions_of(id)))
            .collect();
        let held = by_member
            .get(&me)
            .copied()
            .unwrap_or_else(PartitionSet::none);
        Placed {
            layout,
            members,
            me,
            held,
            by_member,
        }
    }

    /// The partitions member `id` holds.
    pub fn partitions_of(&self, id: &str) -> PartitionSet {
        self.by_member
            .get(id)
            .copied()
            .unwrap_or_else(PartitionSet::none)
    }

    /// The partitions the members other than this node hold.
    fn others(&self) -> PartitionSet {
        (self.by_member.iter())
            .filter(|(id, _)| **id != self.me)
            .fold(PartitionSet::none(), |acc, (_, parts)| acc.union(parts))
    }

    /// The record of member `id`.
    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }
}

/// The members that take part in the layout: every member that is not
/// gone and not leaving (a leaving member hands its partitions off).
pub fn placed_ids(records: &[Member]) -> Vec<&str> {
    records
        .iter()
        .filter(|m| !m.state.is_gone() && m.state != State::Leaving)
        .map(|m| m.id.as_str())
        .collect()
}

/// Whether `layout` places exactly the members `ids` (in any order).
fn same_members(layout: &Layout, ids: &[&str]) -> bool {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    ids.iter()
        .copied()
        .eq(layout.members().iter().map(String::as_str))
}

/// How often [`Routing::placed`] looks at the member list again.
pub const RELOOK_EVERY: Duration = Duration::from_millis(20);

/// How long the layout must have stayed the same before a node drops a
/// partition it no longer holds: members learn a change by gossip within
/// a few probe intervals, and two members with different views could
/// otherwise each drop a partition trusting the other to keep it.
pub const HANDOFF_AFTER_STABLE: Duration = Duration::from_secs(5);

/// The layout as last computed, and of which member list.
struct Cached {
    placed: Arc<Placed>,
    /// The list's digest it was computed from.
    digest: u64,
    /// When the list was last found to have that digest.
    looked_at: Instant,
}

/// What has happened since the layout last changed.
struct SinceChange {
    /// When it changed (or the node started).
    at: Instant,
    /// By member id, the partitions of this node's that each member has
    /// sent it whole in an exchange completed since.
    exchanged: HashMap<String, PartitionSet>,
    /// Keys received since while partitions were still arriving
    /// (progress for `status`).
    arrived: u64,
}

impl SinceChange {
    fn now() -> SinceChange {
        SinceChange {
            at: Instant::now(),
            exchanged: HashMap::new(),
            arrived: 0,
        }
    }
}

/// The node's routing: see the module doc.
///
/// # Partitions that move here
///
/// A partition this node comes to hold (a member joined or left, or the
/// node started) is empty here until a peer that holds it sends it: it
/// is *gaining* until one exchange with another holder of it has
/// completed since, and meanwhile this node does not serve it (commands
/// for its keys go to another holder, as for a partition it does not
/// hold), so no read sees it half there. A partition no other member
/// holds is served at once: there is nothing to wait for.
///
/// The one exchange is with a holder that serves the partition itself,
/// or, when none does (the cluster has just formed or restarted whole, or
/// every holder of the partition changed: a handoff with `--replicas 1`),
/// with every other live member: each pushes to this node what it has of
/// the partitions this node holds, so once each has completed a push
/// since the layout changed, this node has what any of them had.
pub struct Routing {
    replicas: Option<usize>,
    membership: Option<Membership>,
    placed: Mutex<Option<Cached>>,
    /// The held partitions that are not gaining any more.
    ready: Mutex<PartitionSet>,
    since_change: Mutex<SinceChange>,
    /// Whether this node, while it knows no other member, serves what it
    /// holds: not one that joins a cluster (`--join`), which has nothing
    /// until the members it joins send it.
    alone_serves: bool,
}

impl std::fmt::Debug for Routing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routing")
            .field("replicas", &self.replicas)
            .finish_non_exhaustive()
    }
}

impl Routing {
    /// Full replication: every node holds every key.
    pub fn full() -> Routing {
        Routing {
            replicas: None,
            membership: None,
            placed: Mutex::new(None),
            ready: Mutex::new(PartitionSet::all()),
            since_change: Mutex::new(SinceChange::now()),
            alone_serves: true,
        }
    }

    /// Routing over `membership` with `replicas` members per partition
    /// (`--replicas`); `None` is full replication. `joining`: the node
    /// joins a cluster (`--join`), and serves nothing before a member
    /// sent it what it holds.
    pub fn new(membership: Membership, replicas: Option<usize>, joining: bool) -> Routing {
        Routing {
            replicas: replicas.filter(|&n| n > 0),
            membership: Some(membership),
            placed: Mutex::new(None),
            ready: Mutex::new(PartitionSet::none()),
            since_change: Mutex::new(SinceChange::now()),
            alone_serves: !joining,
        }
    }

    /// `--replicas`, when the cluster is sharded.
    pub fn replicas(&self) -> Option<usize> {
        self.replicas
    }

    /// `--replicas` as peers compare it in their handshake: 0 when not
    /// sharded.
    pub fn replicas_code(&self) -> u16 {
        self.replicas
            .map_or(0, |n| u16::try_from(n).unwrap_or(u16::MAX))
    }

    /// Whether keys are placed on some members only (`--replicas`).
    pub fn is_sharded(&self) -> bool {
        self.replicas.is_some() && self.membership.is_some()
    }

    /// The layout of the member list as it is now; `None` when not
    /// sharded.
    ///
    /// Every command of a sharded node asks, so the list is looked at
    /// again (its digest hashes every record) at most every
    /// [`RELOOK_EVERY`]: a change reaches this node by gossip anyway,
    /// a probe interval or more after it was made. A new list whose
    /// placed members are the same (a record's state, address or
    /// incarnation changed) keeps the layout: only a join, a leave or a
    /// forget computes it again.
    pub fn placed(&self) -> Option<Arc<Placed>> {
        let membership = self.membership.as_ref().filter(|_| self.is_sharded())?;
        let now = Instant::now();
        let mut cached = self.placed.lock();
        if let Some(c) = cached.as_mut() {
            if now.duration_since(c.looked_at) < RELOOK_EVERY {
                return Some(Arc::clone(&c.placed));
            }
            c.looked_at = now;
        }
        let digest = membership.digest();
        if let Some(c) = cached.as_ref().filter(|c| c.digest == digest) {
            return Some(Arc::clone(&c.placed));
        }
        let members = membership.records();
        let me = membership.my_id();
        let ids = placed_ids(&members);
        let layout = match cached.as_ref().map(|c| &c.placed.layout) {
            Some(layout) if same_members(layout, &ids) => layout.clone(),
            _ => Layout::new(ids, self.replicas),
        };
        let placed = Placed::new(layout, members, me);
        // What this node held before stays ready; what no other member
        // holds is ready at once; the rest is gaining.
        let others = placed.others();
        let mut ready = self.ready.lock();
        let before = cached
            .as_ref()
            .map_or(PartitionSet::none(), |c| c.placed.held);
        let alone = placed.layout.members().len() <= 1;
        let unshared = if alone && !self.alone_serves {
            PartitionSet::none()
        } else {
            placed.held.minus(&others)
        };
        *ready = ready
            .intersection(&before)
            .union(&unshared)
            .intersection(&placed.held);
        let gaining = placed.held.minus(&ready).len();
        drop(ready);
        if cached
            .as_ref()
            .is_none_or(|c| c.placed.layout.digest() != placed.layout.digest())
        {
            *self.since_change.lock() = SinceChange::now();
            log::info!(
                "layout of {} members: this node holds {} partitions, {gaining} of them \
                 still to arrive",
                placed.layout.members().len(),
                placed.held.len()
            );
        }
        let placed = Arc::new(placed);
        *cached = Some(Cached {
            placed: Arc::clone(&placed),
            digest,
            looked_at: now,
        });
        Some(placed)
    }

    /// How long the layout has stayed as it is: a partition is handed
    /// off (dropped here) only once views of the member list had time to
    /// agree (see [`HANDOFF_AFTER_STABLE`]).
    pub fn stable_for(&self) -> Duration {
        let _ = self.placed();
        self.since_change.lock().at.elapsed()
    }

    /// An exchange completed in which the peer with member id `id` (if
    /// known) sent this node what it has of `sent`, serving `serving` of
    /// it (`None`: all): a partition still gaining is ready once a peer
    /// that serves it has sent it, or once every other live member has
    /// sent it since the layout changed (see [`Routing`]).
    pub fn exchange_completed(
        &self,
        id: Option<&str>,
        sent: &PartitionSet,
        serving: Option<PartitionSet>,
    ) {
        let Some(placed) = self.placed() else {
            return;
        };
        let served = sent.intersection(&serving.unwrap_or_else(PartitionSet::all));
        let gaining = {
            let mut ready = self.ready.lock();
            *ready = ready.union(&served.intersection(&placed.held));
            placed.held.minus(&ready)
        };
        let Some(id) = id.filter(|_| !gaining.is_empty()) else {
            return;
        };
        let mut since = self.since_change.lock();
        let had = since
            .exchanged
            .entry(id.to_owned())
            .or_insert_with(PartitionSet::none);
        *had = had.union(&sent.intersection(&placed.held));
        let membership = self
            .membership
            .as_ref()
            .expect("sharded means a member list");
        let now = Instant::now();
        let mut covered = gaining;
        for member in &placed.members {
            if member.id == placed.me || member.state.is_gone() {
                continue;
            }
            // A member down or suspect sends what it has when it is back.
            if !matches!(membership.health(&member.id, now), Some((Health::Up, _))) {
                continue;
            }
            let none = PartitionSet::none();
            covered = covered.intersection(since.exchanged.get(&member.id).unwrap_or(&none));
        }
        drop(since);
        if !covered.is_empty() {
            let mut ready = self.ready.lock();
            *ready = ready.union(&covered);
        }
    }

    /// A peer sent `keys` entries: counted while partitions are still
    /// arriving.
    pub fn received(&self, keys: usize) {
        if keys > 0 && self.is_sharded() && !self.gaining().is_empty() {
            self.since_change.lock().arrived += keys as u64;
        }
    }

    /// The keys received while partitions were arriving since the layout
    /// last changed, and how long ago it changed: how a rebalance
    /// progresses. (No ETA: the senders stream what this node lacks, and
    /// none knows how much that is before it is sent.)
    pub fn arrival(&self) -> (u64, Duration) {
        let since = self.since_change.lock();
        (since.arrived, since.at.elapsed())
    }

    /// The partitions this node serves: held and not gaining (all of
    /// them when not sharded).
    pub fn serving(&self) -> PartitionSet {
        let held = self.held();
        if held.is_all() {
            return held;
        }
        self.ready.lock().intersection(&held)
    }

    /// The partitions this node holds and is still gaining.
    pub fn gaining(&self) -> PartitionSet {
        let held = self.held();
        held.minus(&self.ready.lock())
    }

    /// The partitions this node holds: all of them when not sharded.
    pub fn held(&self) -> PartitionSet {
        self.placed().map_or_else(PartitionSet::all, |p| p.held)
    }

    /// The partitions member `id` holds: all of them when not sharded.
    pub fn partitions_of(&self, id: &str) -> PartitionSet {
        self.placed()
            .map_or_else(PartitionSet::all, |p| p.partitions_of(id))
    }

    /// The partitions of the peer with member id `id` (when known), else
    /// of the member named `name` or at `addr`: what to send it. All of
    /// them when not sharded, or for a peer not in the list (it takes
    /// only what it holds, see `crate::store::joinable`).
    pub fn partitions_of_peer(&self, id: Option<&str>, name: &str, addr: &str) -> PartitionSet {
        let Some(placed) = self.placed() else {
            return PartitionSet::all();
        };
        let member = placed
            .members
            .iter()
            .filter(|m| !m.state.is_gone())
            .find(|m| id.is_some_and(|id| id == m.id))
            .or_else(|| {
                placed
                    .members
                    .iter()
                    .filter(|m| !m.state.is_gone())
                    .find(|m| m.name == name || m.addr == addr)
            });
        match member {
            Some(m) => placed.partitions_of(&m.id),
            None => PartitionSet::all(),
        }
    }

    /// Whether this node holds `key`'s partition.
    pub fn holds_key(&self, key: &[u8]) -> bool {
        self.held().holds_key(key)
    }

    /// Whether this node serves `key`: it holds its partition, and is
    /// not still gaining it.
    pub fn serves_key(&self, key: &[u8]) -> bool {
        self.serving().holds_key(key)
    }

    /// Where to send a command for `slot` that this node does not serve:
    /// the addresses of the slot's other replicas, master first, those
    /// that look up before the others (a suspect or down one last, in
    /// case this node's view is wrong). Empty when this node serves the
    /// slot (holds it and is not gaining it) or the cluster is not
    /// sharded.
    pub fn targets(&self, slot: u16) -> Vec<String> {
        let Some(placed) = self.placed() else {
            return Vec::new();
        };
        let p = crate::placement::partition::partition_of_slot(slot);
        if self.serving().contains(p) {
            return Vec::new();
        }
        let membership = self
            .membership
            .as_ref()
            .expect("sharded means a member list");
        let now = Instant::now();
        let mut up = Vec::new();
        let mut rest = Vec::new();
        for id in placed.layout.replicas_of(slot) {
            if id == placed.me {
                continue;
            }
            let Some(member) = placed.member(id) else {
                continue;
            };
            match membership.health(id, now) {
                Some((Health::Up, _)) | None => up.push(member.addr.clone()),
                Some(_) => rest.push(member.addr.clone()),
            }
        }
        up.extend(rest);
        up
    }
}
