//! What a peer lacks: the dot index turned into bounded parts of a
//! transfer, and this node's version vector (what it has seen of each
//! writer), in the names the wire uses.

use super::*;

/// How many times its target size a part may grow to hold the writes of
/// one command whole (see [`Store::delta`]); the part size is chosen so
/// that a part this large still fits a frame (see
/// `crate::replication::transfer::part_bytes`).
pub const GROUP_STRETCH: usize = 16;

/// Where a [`Store::delta`] scan stopped; pass it back to go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(Dot);

/// One part of what a peer lacks.
#[derive(Debug, Clone)]
pub struct Delta {
    /// The entries.
    pub batch: Batch,
    /// Where to go on from, or `None` when the scan is complete.
    pub next: Option<Cursor>,
}

impl Store {
    /// Wire entries index the batch's own name table, which holds only
    /// the names its entries and groups use (`table`, see [`NameTable`]).
    fn to_wire(e: &Entry, table: &mut NameTable) -> WireEntry {
        WireEntry {
            key: Bytes::from(e.key()),
            value: e.value().map(Bytes::from),
            ts: e.ts,
            writer: table.index(e.writer),
            expires: e.expires(),
            counter: e.counter().map(|c| c.to_portable(|w| table.index(w))),
            clock: e
                .clock
                .dots()
                .iter()
                .map(|d| (table.index(d.node), d.counter))
                .collect(),
        }
    }

    /// This node's version vector, for the wire.
    pub fn version_vector(&self) -> WireVv {
        self.vv
            .iter()
            .map(|(node, c)| (self.names.name(node).to_owned(), c))
            .collect()
    }

    /// The version vector and the digest of the live data, now (see
    /// [`Summary`]).
    pub fn summary(&self) -> Summary {
        self.note_shown();
        Summary {
            vv: self.version_vector(),
            digest: self.holds_only_covered_dots().then(|| self.data_digest()),
        }
    }

    /// Whether every dot of every entry held is covered by this node's
    /// vector: then the data held is exactly what merging every write the
    /// vector covers gives, the same on every node at that vector. One
    /// look at the highest dot held of each writer.
    fn holds_only_covered_dots(&self) -> bool {
        (0..self.names.len() as u32).all(|n| {
            let node = NodeId(n);
            let highest = self
                .dots
                .range(
                    Dot { node, counter: 0 }..=Dot {
                        node,
                        counter: u64::MAX,
                    },
                )
                .next_back();
            highest.is_none_or(|(dot, _)| self.vv.covers(*dot))
        })
    }

    /// A wire vector in local ids; writers never seen here are left out
    /// (no entry here has their dots).
    pub(super) fn local_vv(&self, vv: &WireVv) -> VersionVector {
        let mut out = VersionVector::new();
        for (name, counter) in vv {
            if let Some(id) = self.names.lookup(name) {
                out.raise(id, *counter);
            }
        }
        out
    }

    /// Records that every entry of a transfer from a peer whose vector was
    /// `vv` has arrived: this node has now seen everything up to `vv`, as
    /// far as it can verify (see `store/bounds.rs`). Returns the entries
    /// of `vv` above that, which were clamped, for the caller to log.
    pub fn join_version_vector(&mut self, vv: &WireVv) -> Result<Vec<Overclaim>, BatchError> {
        check_vv(vv)?;
        let (vv, over) = self.clamp_to_verifiable(vv);
        self.join_checked(&vv);
        Ok(over)
    }

    /// Joins `vv` whole, as if this node held everything it covers: what
    /// the fail point `store::drop_merged` needs to make a node believe it
    /// holds an entry it lost (a peer cannot make it do that).
    #[cfg(feature = "failpoints")]
    pub fn join_version_vector_unbounded(&mut self, vv: &WireVv) -> Result<(), BatchError> {
        check_vv(vv)?;
        self.join_checked(vv);
        Ok(())
    }

    fn join_checked(&mut self, vv: &WireVv) {
        let old = self.vv.clone();
        for (name, counter) in vv {
            let id = self.names.intern(name);
            self.vv.raise(id, *counter);
        }
        if self.vv != old {
            if let Some(j) = self.journal.as_mut() {
                j.joined(&self.names, &self.vv);
                self.undo.push(Undo::Joined { old });
            }
        }
    }

    /// The entries a node that has seen `since` lacks, from `cursor` on, at
    /// most about `max_bytes` of them (but at least one when any is left).
    /// An entry is sent when any dot of its clock lies above `since`.
    ///
    /// The writes of one command (a group, see [`Store::note_group`]) go in
    /// one part, so the peer, which merges a part at once, applies all of
    /// them or none: a part grows past `max_bytes` to hold a group whole,
    /// up to [`GROUP_STRETCH`] times `max_bytes`; a group larger than that
    /// starts a part of its own and is split only where it must be.
    pub fn delta(&self, since: &WireVv, cursor: Option<Cursor>, max_bytes: usize) -> Delta {
        self.delta_for(since, cursor, max_bytes, &PartitionSet::all())
    }

    /// [`Self::delta`] for a peer that holds the partitions `wanted`
    /// only: the entries of other partitions are left out, and so are
    /// the per-partition writers of other partitions, whose dots are not
    /// even looked at.
    pub fn delta_for(
        &self,
        since: &WireVv,
        cursor: Option<Cursor>,
        max_bytes: usize,
        wanted: &PartitionSet,
    ) -> Delta {
        self.note_shown();
        let mut table = NameTable::new(self.names.len());
        let since = self.local_vv(since);
        let mut taken = HashSet::new();
        let mut entries: Vec<WireEntry> = Vec::new();
        // The slots of `entries`, in order, so a part can be cut back.
        let mut slots: Vec<u32> = Vec::new();
        let mut groups: Vec<(Dot, u64)> = Vec::new();
        let mut size = 0;
        // The last dot looked at; `None` until the first, so a part always
        // holds at least one entry.
        let mut last: Option<Dot> = None;
        // Where the group being gathered started: its first dot, and the
        // part as it was before it (its entry count, its last dot).
        let mut open: Option<(Dot, usize, Option<Dot>)> = None;
        // The writers the part's entries name, and how many: a peer takes
        // at most MAX_NEW_NAMES_PER_BATCH names new to it in one batch, and
        // to a node that starts empty every name is new.
        let mut named = vec![false; self.names.len()];
        let mut names_used = 0;
        let first = cursor.map_or(0, |c| c.0.node.0);
        for n in first..self.names.len() as u32 {
            let node = NodeId(n);
            if !self.concerns(node, wanted) {
                continue;
            }
            // A name from before sharding wrote in every partition: its
            // entries are sorted out one by one.
            let by_key = !wanted.is_all()
                && crate::placement::partition::partition_of_writer(self.names.name(node))
                    .is_none();
            let mut from = since.get(node).saturating_add(1);
            if let Some(Cursor(at)) = cursor.filter(|c| c.0.node == node) {
                from = from.max(at.counter.saturating_add(1));
            }
            let range = Dot {
                node,
                counter: from,
            }..=Dot {
                node,
                counter: u64::MAX,
            };
            for (&dot, &slot) in self.dots.range(range) {
                match self.group_of(dot) {
                    Some((first, end)) if open.is_none_or(|o| o.0 != first) => {
                        open = Some((first, entries.len(), last));
                        groups.push((first, end));
                    }
                    Some(_) => {}
                    None => open = None,
                }
                if !taken.contains(&slot)
                    && (!by_key || wanted.holds_key(self.slots[slot as usize].key()))
                {
                    let e = &self.slots[slot as usize];
                    let size_hint = e.wire_size_hint();
                    let new_names = e.writers().filter(|w| !named[w.0 as usize]).count();
                    let names_over = names_used + new_names > MAX_NEW_NAMES_PER_BATCH;
                    // Stop before the entry that would pass the limit, so a
                    // part stays within a frame; the next part starts at it.
                    // The names' limit is a peer's, and no group stretches it.
                    if let Some(cut) = last.filter(|_| size + size_hint > max_bytes || names_over) {
                        let stretched = !names_over
                            && size + size_hint <= max_bytes.saturating_mul(GROUP_STRETCH);
                        match open {
                            // Inside a group that may stretch the part: go on.
                            Some(_) if stretched => {}
                            // A group too large for one part, begun after
                            // other entries: cut before it, to send it from
                            // the start of the next part.
                            Some((_, len, Some(before))) if len > 0 => {
                                for s in slots.drain(len..) {
                                    taken.remove(&s);
                                }
                                entries.truncate(len);
                                groups.pop();
                                return Delta {
                                    batch: self.batch(entries, &groups, &mut table),
                                    next: Some(Cursor(before)),
                                };
                            }
                            _ => {
                                return Delta {
                                    batch: self.batch(entries, &groups, &mut table),
                                    next: Some(Cursor(cut)),
                                };
                            }
                        }
                    }
                    for w in e.writers() {
                        let seen = &mut named[w.0 as usize];
                        names_used += usize::from(!*seen);
                        *seen = true;
                    }
                    taken.insert(slot);
                    slots.push(slot);
                    entries.push(Self::to_wire(e, &mut table));
                    size += size_hint;
                }
                last = Some(dot);
            }
        }
        Delta {
            batch: self.batch(entries, &groups, &mut table),
            next: None,
        }
    }

    fn batch(
        &self,
        entries: Vec<WireEntry>,
        groups: &[(Dot, u64)],
        table: &mut NameTable,
    ) -> Batch {
        let groups = groups
            .iter()
            .map(|&(first, last)| (table.index(first.node), first.counter, last))
            .collect();
        Batch {
            groups,
            names: if entries.is_empty() {
                Vec::new()
            } else {
                table
                    .used
                    .iter()
                    .map(|&id| self.names.name(id).to_owned())
                    .collect()
            },
            entries,
        }
    }
}

/// The names one batch uses, in order of first use: a batch carries only
/// those (a sharded node knows a name per writer and partition, hundreds
/// per node, of which a small batch uses a few).
pub(super) struct NameTable {
    /// By local id: its index in the batch's table, or `u32::MAX`.
    index: Vec<u32>,
    /// The local ids, in table order.
    used: Vec<NodeId>,
}

impl NameTable {
    fn new(names: usize) -> NameTable {
        NameTable {
            index: vec![u32::MAX; names],
            used: Vec::new(),
        }
    }

    /// The table index of local id `id`, added on first use.
    fn index(&mut self, id: NodeId) -> u32 {
        let slot = &mut self.index[id.0 as usize];
        if *slot == u32::MAX {
            *slot = self.used.len() as u32;
            self.used.push(id);
        }
        *slot
    }
}
