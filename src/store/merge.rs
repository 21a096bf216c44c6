//! Merging versions from peers into the map: a batch is checked whole,
//! then each version goes through the one merge rule of
//! [`crate::core::version`].
//!
//! A batch that fails its checks changes nothing. What a peer sends is
//! never trusted: names, counters, timestamps and sizes are bounded here.

use super::*;
use crate::core::hlc::{ahead_ms, timestamp_of_millis};
use crate::core::version::{merge, Merged};

/// Checks a version vector from a peer: sane names and counters. How far
/// ahead its entries may be is bounded where it is used (see
/// `store/bounds.rs`).
pub(super) fn check_vv(vv: &WireVv) -> Result<(), BatchError> {
    check_names(vv.iter().map(|(n, _)| n.as_str()))?;
    if vv.iter().any(|&(_, c)| c >= MAX_COUNTER) {
        return Err(BatchError("counter out of range".into()));
    }
    Ok(())
}

pub(super) fn check_names<'a>(mut names: impl Iterator<Item = &'a str>) -> Result<(), BatchError> {
    match names.find(|n| n.is_empty() || n.len() > MAX_NAME_LEN) {
        Some(n) => Err(BatchError(format!("writer name of {} bytes", n.len()))),
        None => Ok(()),
    }
}

impl Store {
    /// Merges a remote version of `key` (already in local ids); returns
    /// whether the local version changed.
    pub fn merge(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        expires: Option<u64>,
        counter: Option<&Counter>,
        clock: Clock,
        stamp: Stamp,
    ) -> bool {
        // A counter's value, expiry and stamp are what its state reads as
        // here and now, whatever the peer said they were.
        let view;
        let (value, expires, stamp) = match counter {
            Some(c) => {
                view = c.view(self.now_ms);
                (view.value.as_deref(), view.expires, c.stamp(&self.names))
            }
            None => (value, expires, stamp),
        };
        self.hlc.observe(stamp.ts);
        // A tombstone an expiry left says its node judged that time passed:
        // this node's counts begin after it too (see
        // `crate::core::counter`), even where its own clock is behind and
        // it collects the tombstone before reaching that time.
        let judged = match counter {
            Some(c) => c
                .expires()
                .filter(|_| c.base.as_ref().is_some_and(|b| b.value.is_none())),
            None => expires.filter(|_| value.is_none()),
        };
        if let Some(at) = judged {
            self.hlc.observe(timestamp_of_millis(at));
        }
        let own = self.own_counter_in(&clock);
        if own > 0 {
            self.counter.observe(own);
        }
        let Some(slot) = self.find(key) else {
            // A version whose every write this node has seen or superseded,
            // for a key it no longer holds, is one whose tombstone was
            // collected: it must not come back.
            // A repair takes a value it lacks even so (see
            // `apply_repair_batch`), but not one that has expired: that is
            // a version this node turned into a tombstone and collected.
            let expired = expires.is_some_and(|at| at <= self.now_ms);
            if self.vv.covers_clock(&clock) && !(self.repairing && value.is_some() && !expired) {
                return false;
            }
            let entry = Entry::build(key, value, expires, counter, clock, stamp);
            let slot = self.insert_logged(entry);
            self.log_slot(slot);
            return true;
        };
        let e = &self.slots[slot as usize];
        let incoming = VersionRef {
            value,
            expires,
            counter,
            clock: &clock,
            stamp,
        };
        let held = e.counter();
        match merge(&e.version(held.as_ref()), &incoming, &self.names) {
            Merged::Unchanged => return false,
            Merged::KeepsValue(clock) => {
                let same = e.rebuilt(clock, e.stamp());
                self.replace_logged(slot, same);
            }
            Merged::TakesIncoming(clock) => {
                let entry = Entry::build(key, value, expires, counter, clock, stamp);
                self.replace_logged(slot, entry);
            }
            Merged::Joined { clock, counter } => {
                let entry = self.counting_entry(key, counter, clock);
                self.replace_logged(slot, entry);
            }
        }
        self.log_slot(slot);
        true
    }

    /// Merges a batch from a peer, received at wall time `now_us`. The
    /// batch is checked whole first; a bad one changes nothing. An entry
    /// stamped further ahead of `now_us` than the clock's bound makes the
    /// batch bad: this node's clock would follow it, and its next writes
    /// would carry a timestamp its peers refuse.
    pub fn apply_batch(&mut self, batch: &Batch, now_us: u64) -> Result<(), BatchError> {
        self.check_batch(batch, now_us)?;
        self.set_now(now_us);
        // Only names the entries use are taken: a name listed and unused
        // would cost memory for good and say nothing.
        let mut ids = vec![NodeId(u32::MAX); batch.names.len()];
        for i in bounds::used_names(batch) {
            ids[i] = self.names.intern(&batch.names[i]);
        }
        // New keys join `scan_order` after the batch, sorted: inserting them
        // into the tree in order keeps its upper levels in the cache, where
        // inserting them as they come (by hash, so at random) misses it at
        // almost every level; of merging a full transfer into an empty
        // node that was the largest part. Nothing in the loop reads
        // `scan_order` or removes an entry.
        if self.scan_order.is_some() {
            self.new_in_batch = Some(Vec::new());
        }
        for w in &batch.entries {
            let clock = Clock::from_dots(w.clock.iter().map(|&(i, counter)| Dot {
                node: ids[i as usize],
                counter,
            }));
            let stamp = Stamp {
                ts: w.ts,
                writer: ids[w.writer as usize],
            };
            let value = w.value.as_ref().map(|v| &v.0[..]);
            let counter = match &w.counter {
                None => None,
                Some(c) => c
                    .to_counter(|&i| Ok::<_, std::convert::Infallible>(ids[i as usize]))
                    .unwrap_or_else(|never| match never {}),
            };
            self.merge(&w.key.0, value, w.expires, counter.as_ref(), clock, stamp);
        }
        if let (Some(mut pairs), Some(order)) = (self.new_in_batch.take(), self.scan_order.as_mut())
        {
            pairs.sort_unstable();
            order.extend(pairs);
        }
        // Groups it carries stay whole when this node passes them on. A
        // node with no listed peers passes nothing on.
        if !self.peer_acks.is_empty() {
            for &(i, first, last) in &batch.groups {
                let node = ids[i as usize];
                if node.0 != u32::MAX {
                    self.groups.insert(
                        Dot {
                            node,
                            counter: first,
                        },
                        last,
                    );
                }
            }
        }
        Ok(())
    }

    /// Merges a batch that answers a repair (a full exchange after the
    /// digests showed this node and a peer diverged although their vectors
    /// were equal): like [`Self::apply_batch`], except that a value for a
    /// key not held is taken even where this node's vector covers its
    /// clock. Normally that is a version whose tombstone was collected,
    /// which must not come back; in a repair it is what this node lost
    /// while believing it had it (and a peer holding it live is reason
    /// enough to hold it too: then both agree).
    pub fn apply_repair_batch(&mut self, batch: &Batch, now_us: u64) -> Result<(), BatchError> {
        self.repairing = true;
        let result = self.apply_batch(batch, now_us);
        self.repairing = false;
        result
    }

    fn check_batch(&self, batch: &Batch, now_us: u64) -> Result<(), BatchError> {
        let fail = |s: String| Err(BatchError(s));
        check_names(batch.names.iter().map(String::as_str))?;
        let n = batch.names.len();
        for w in &batch.entries {
            if w.key.0.len() > MAX_KEY_LEN {
                return fail(format!("key of {} bytes", w.key.0.len()));
            }
            if let Some(v) = w.value.as_ref().filter(|v| v.0.len() > self.max_value) {
                return fail(format!("value of {} bytes", v.0.len()));
            }
            if w.writer as usize >= n
                || w.clock.iter().any(|&(i, _)| i as usize >= n)
                || w.counter
                    .iter()
                    .flat_map(|c| c.writers())
                    .any(|&i| i as usize >= n)
            {
                return fail("node index out of range".into());
            }
            // An expiry's tombstone moves this node's clock to its time (see
            // `merge`): no further ahead than a stamp may be.
            let judged = match &w.counter {
                Some(c) => c
                    .base
                    .as_ref()
                    .filter(|b| b.value.is_none())
                    .and_then(|b| b.expires),
                None => w.expires.filter(|_| w.value.is_none()),
            };
            if judged.is_some_and(|at| {
                at >= MAX_TIMESTAMP >> 16
                    || ahead_ms(timestamp_of_millis(at), now_us) > self.hlc.max_offset_ms()
            }) {
                return fail("an expired tombstone from the future".into());
            }
            if let Some(c) = &w.counter {
                // The value a counter reads as is worked out here from its
                // state; the state's own sizes and stamps are bounded like
                // an entry's.
                let base_value = c.base.as_ref().and_then(|b| b.value.as_ref());
                if base_value.is_some_and(|v| v.len() > self.max_value) {
                    return fail(format!(
                        "counter base of {} bytes",
                        base_value.map_or(0, Vec::len)
                    ));
                }
                if c.counts.len() > n {
                    return fail("more counts than writers".into());
                }
                let stamps = (c.base.iter().map(|b| b.ts)).chain(c.counts.iter().map(|c| c.began));
                for ts in stamps {
                    if ts >= MAX_TIMESTAMP || ahead_ms(ts, now_us) > self.hlc.max_offset_ms() {
                        return fail("a counter stamped out of range".into());
                    }
                }
            }
            if w.clock.iter().all(|&(_, c)| c == 0) {
                return fail("empty clock".into());
            }
            if w.ts >= MAX_TIMESTAMP || w.clock.iter().any(|&(_, c)| c >= MAX_COUNTER) {
                return fail("timestamp or counter out of range".into());
            }
            let ahead = ahead_ms(w.ts, now_us);
            let bound = self.hlc.max_offset_ms();
            if ahead > bound {
                return fail(format!(
                    "an entry stamped {ahead} ms ahead of this node's clock, \
                     over the bound of {bound} ms"
                ));
            }
        }
        // A group starts at or below a counter the batch's entries have
        // of its writer and spans at most MAX_GROUP_SPAN counters (so a peer
        // cannot make this node keep groups no acknowledgement will cover
        // soon), at most one per entry.
        if batch.groups.len() > batch.entries.len() {
            return fail("more groups than entries".into());
        }
        // The highest counter of each writer the entries have, in one pass.
        let mut highests: Vec<Option<u64>> = Vec::new();
        if !batch.groups.is_empty() {
            highests = vec![None; batch.names.len()];
            for &(j, c) in batch.entries.iter().flat_map(|w| &w.clock) {
                if let Some(h) = highests.get_mut(j as usize) {
                    *h = Some(h.map_or(c, |h| h.max(c)));
                }
            }
        }
        for &(i, first, last) in &batch.groups {
            let highest = highests.get(i as usize).copied().flatten();
            if first > last
                || last - first > MAX_GROUP_SPAN
                || last >= MAX_COUNTER
                || highest.is_none_or(|h| first > h)
            {
                return fail("a group of writes the batch does not hold".into());
            }
        }
        self.check_new_names(batch)
    }
}
