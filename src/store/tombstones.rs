//! Tombstones and the acknowledgements that let them go: a delete is
//! kept as a tombstone until every listed peer has acknowledged a version
//! vector that covers it, then dropped. Also how far each peer is behind.
//!
//! The listed peers follow the member list (see [`crate::membership`]):
//! a member that joins is added (and holds back every tombstone until it
//! acknowledges it), and one that leaves or is forgotten is gone and holds
//! back nothing. A member that is down still holds them back: removing it
//! is what `CLUSTER FORGET` is for.

use super::*;

/// How far a listed peer is behind, as far as this node knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerLag {
    /// Writes this node has seen that the peer has not acknowledged; `None`
    /// before its first acknowledgement.
    pub writes_behind: Option<u64>,
    /// Tombstones kept until this peer acknowledges them.
    pub tombstones_waiting: usize,
}

impl Store {
    /// Records the version vector listed peer `peer` acknowledged, and
    /// drops the tombstones every listed peer now has. Returns how many
    /// were dropped.
    ///
    /// The caller bounds `vv` by what the peer can have (see
    /// `store/bounds.rs`); here it is also bounded by what this node can
    /// verify, and writers this node never saw are left out: they cover no
    /// tombstone here, and their names would be kept for nothing.
    pub fn peer_acknowledged(&mut self, peer: usize, vv: &WireVv) -> Result<usize, BatchError> {
        check_vv(vv)?;
        let (vv, _) = self.clamp_to_verifiable(vv);
        let mut local = VersionVector::new();
        for (name, counter) in &vv {
            if let Some(id) = self.names.lookup(name) {
                local.raise(id, *counter);
            }
        }
        if let Some(slot) = self.peer_acks.get_mut(peer) {
            if !self.gone_peers.contains(&peer) {
                *slot = Some(local);
            }
        }
        self.collect_groups();
        Ok(self.collect_tombstones())
    }

    /// Tracks listed peer `peer` from now on (a member that joined), if
    /// it is not tracked yet: nothing it has not acknowledged is
    /// collected.
    pub fn add_peer(&mut self, peer: usize) {
        if self.peer_acks.len() <= peer {
            self.peer_acks.resize(peer + 1, None);
        }
    }

    /// Listed peer `peer` is gone (its member left or was forgotten): its
    /// acknowledgements hold back no tombstone any more. Collects what
    /// that frees; returns how many tombstones went.
    pub fn forget_peer(&mut self, peer: usize) -> usize {
        if peer < self.peer_acks.len() {
            self.gone_peers.insert(peer);
            self.peer_acks[peer] = None;
        }
        self.collect_groups();
        self.collect_tombstones()
    }

    /// The acknowledgements of the peers that are not gone.
    fn counted_acks(&self) -> impl Iterator<Item = &Option<VersionVector>> {
        self.peer_acks
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.gone_peers.contains(i))
            .map(|(_, ack)| ack)
    }

    /// Drops the groups (see [`Store::note_group`]) every listed peer has
    /// acknowledged whole: no part will carry them again.
    fn collect_groups(&mut self) {
        if self.groups.is_empty() {
            return;
        }
        if self.counted_acks().next().is_none() {
            // No peer left to pass a group on to.
            self.groups.clear();
            return;
        }
        if self.sharded {
            // A group is in one partition: the peers that hold it are
            // the ones it waits for.
            let groups = std::mem::take(&mut self.groups);
            self.groups = groups
                .into_iter()
                .filter(|(first, last)| {
                    !self.covered_by_holders(Dot {
                        node: first.node,
                        counter: *last,
                    })
                })
                .collect();
            return;
        }
        let Some(floor) = self.ack_floor(None) else {
            return;
        };
        self.groups.retain(|first, last| {
            !floor.covers(Dot {
                node: first.node,
                counter: *last,
            })
        });
    }

    /// Sharded: drops every tombstone whose every dot each listed peer
    /// holding its partition has acknowledged (a peer that holds none of
    /// it never will, and need not). Only once the layout has been still
    /// for a while, with the peers' partitions as it says now (see
    /// [`Store::drop_released`]): a member that has just come to hold the
    /// partition counts, so a value deleted here cannot come back to it
    /// from a member that still has the value and no tombstone. Returns
    /// how many went.
    pub fn collect_tombstones_of_holders(&mut self) -> usize {
        if !self.sharded || self.tombstones.is_empty() || self.hold_tombstones {
            return 0;
        }
        // By writer id: its partition's holders' acknowledgements met (a
        // name from before sharding: every peer's), computed once.
        let peers: Vec<usize> = (0..self.peer_acks.len())
            .filter(|i| !self.gone_peers.contains(i))
            .collect();
        let floors: Vec<Option<u64>> = (0..self.names.len() as u32)
            .map(|n| {
                let node = NodeId(n);
                peers
                    .iter()
                    .filter(|&&i| self.concerns(node, &self.peer_partitions(i)))
                    .map(|&i| self.peer_acks[i].as_ref().map(|a| a.get(node)))
                    .try_fold(u64::MAX, |floor, ack| ack.map(|a| floor.min(a)))
            })
            .collect();
        let doomed: Vec<u32> = self
            .tombstones
            .iter()
            .copied()
            .filter(|&s| {
                let e = &self.slots[s as usize];
                self.vv.covers_clock(&e.clock)
                    && e.clock.dots().iter().all(|d| {
                        floors
                            .get(d.node.0 as usize)
                            .copied()
                            .flatten()
                            .is_some_and(|floor| floor >= d.counter)
                    })
            })
            .collect();
        self.remove_all(doomed)
    }

    /// Whether every listed peer that holds the partition of `dot`'s
    /// writer has acknowledged it.
    fn covered_by_holders(&self, dot: Dot) -> bool {
        self.peer_acks
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.gone_peers.contains(i))
            .filter(|(i, _)| self.concerns(dot.node, &self.peer_partitions(*i)))
            .all(|(_, ack)| ack.as_ref().is_some_and(|a| a.covers(dot)))
    }

    /// What every listed peer has acknowledged (met with `start`, if
    /// given): `None` while one has acknowledged nothing yet, or when no
    /// peer is listed and there is no `start`.
    fn ack_floor(&self, start: Option<VersionVector>) -> Option<VersionVector> {
        let mut floor = start;
        for ack in self.counted_acks() {
            let vv = ack.as_ref()?;
            floor = Some(match floor {
                Some(f) => f.meet(vv),
                None => vv.clone(),
            });
        }
        floor
    }

    /// Drops every tombstone that all listed peers have acknowledged (with
    /// no listed peers: every tombstone). Returns how many.
    pub fn collect_tombstones(&mut self) -> usize {
        if self.tombstones.is_empty() || self.hold_tombstones {
            return 0;
        }
        let Some(floor) = self.ack_floor(Some(self.vv.clone())) else {
            return 0;
        };
        let doomed: Vec<u32> = self
            .tombstones
            .iter()
            .copied()
            .filter(|&s| floor.covers_clock(&self.slots[s as usize].clock))
            .collect();
        self.remove_all(doomed)
    }

    /// Whether listed peer `peer` has acknowledged this node's own writes
    /// up to counter `counter` (`WAIT`). Sharded, a peer has them when it
    /// has acknowledged those of the partitions it holds, and holds the
    /// partition of the write at `counter` when that is the latest: a
    /// peer that holds none of it is no replica of it.
    pub fn peer_has_own_writes(&self, peer: usize, counter: u64) -> bool {
        if self.sharded {
            let latest = self.run.filter(|&(_, _, last)| last == counter);
            let parts = self.peer_partitions(peer);
            if latest.is_some_and(|(node, _, _)| !self.concerns(node, &parts)) {
                return false;
            }
        }
        !self.gone_peers.contains(&peer)
            && self
                .peer_acks
                .get(peer)
                .and_then(Option::as_ref)
                .is_some_and(|ack| {
                    let parts = self.peer_partitions(peer);
                    self.my_ids()
                        .into_iter()
                        .filter(|&id| self.concerns(id, &parts))
                        .all(|id| ack.get(id) >= counter.min(self.vv.get(id)))
                })
    }

    /// How far listed peer `peer` is behind.
    pub fn peer_lag(&self, peer: usize) -> PeerLag {
        let Some(ack) = self.peer_acks.get(peer) else {
            return PeerLag::default();
        };
        if self.gone_peers.contains(&peer) {
            return PeerLag::default();
        }
        // Only what the peer holds counts: a peer holding some partitions
        // never sees the writes of the others.
        let parts = self.peer_partitions(peer);
        let writes_behind = ack.as_ref().map(|ack| {
            self.vv
                .iter()
                .filter(|&(node, _)| self.concerns(node, &parts))
                .map(|(node, c)| c.saturating_sub(ack.get(node)))
                .sum()
        });
        let held = |s: &u32| parts.holds_key(self.slots[*s as usize].key());
        let tombstones_waiting = match ack {
            None => self.tombstones.iter().filter(|s| held(s)).count(),
            Some(ack) => self
                .tombstones
                .iter()
                .filter(|s| held(s))
                .filter(|&&s| !ack.covers_clock(&self.slots[s as usize].clock))
                .count(),
        };
        PeerLag {
            writes_behind,
            tombstones_waiting,
        }
    }

    /// Holds (or releases) tombstone collection, while a snapshot is being
    /// written.
    pub fn hold_tombstones(&mut self, hold: bool) {
        self.hold_tombstones = hold;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_wait_for_every_member_until_one_is_gone() {
        let mut s = Store::new("a", 1024).with_peers(1);
        s.put(b"k", b"v", 1_000).expect("put");
        s.delete(b"k", 2_000).expect("delete");
        // A member joins: it holds the tombstone back too.
        s.add_peer(1);
        s.add_peer(1); // twice is once
        assert_eq!(s.peer_count(), 2);
        let all = s.version_vector();
        assert_eq!(s.peer_acknowledged(0, &all), Ok(0), "peer 1 has not");
        assert_eq!(s.counts().tombstones, 1);
        // Peer 1 is forgotten: nothing waits on it any more.
        assert_eq!(s.forget_peer(1), 1);
        assert_eq!(s.counts().tombstones, 0);
        assert!(!s.peer_has_own_writes(1, 0), "a gone peer has nothing");
        assert_eq!(s.peer_lag(1), PeerLag::default());
        // Its later acknowledgements count for nothing.
        s.delete(b"k2", 3_000).expect("delete");
        assert_eq!(s.peer_acknowledged(1, &s.version_vector()), Ok(0));
        assert_eq!(s.counts().tombstones, 1, "peer 0 has not seen k2's delete");
    }
}
