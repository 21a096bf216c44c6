//! Listing the keys: `KEYS` (a filter over every entry) and `SCAN`, whose
//! order (the keys' hashes) is built on the first scan and kept from then
//! on, so that a store never scanned pays nothing for it.

use super::*;

impl Store {
    /// The live keys, sorted.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = self
            .slots
            .iter()
            .filter(|e| e.live_value(self.now_ms).is_some())
            .map(|e| e.key().to_vec())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// The live keys for which `wanted` says yes, in no particular order.
    pub fn keys_where(&self, wanted: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
        self.slots
            .iter()
            .filter(|e| e.live_value(self.now_ms).is_some() && wanted(e.key()))
            .map(|e| e.key().to_vec())
            .collect()
    }

    /// One step of an iteration over the live keys, as Redis's `SCAN` does
    /// it: visits about `count` entries from `cursor` on (0 starts) and
    /// returns the cursor to go on from (0 when the iteration is complete)
    /// and the live keys among them for which `wanted` says yes.
    ///
    /// The order is that of the keys' hashes, which are fixed for the
    /// life of the store, so the guarantee is stronger than Redis's: a key
    /// that is live from the first step of an iteration to the last is
    /// returned exactly once, whatever is written, merged, deleted or
    /// collected meanwhile; a key added or deleted meanwhile is returned at
    /// most once. A cursor means nothing to another store (each hashes with
    /// its own random seed). Keys with the same 64-bit hash are never
    /// split between two steps.
    ///
    /// The first call builds the order (a sort of every entry's hash, about
    /// a tenth of a second per million keys); later ones only walk it.
    pub fn scan(
        &mut self,
        cursor: u64,
        count: usize,
        wanted: impl Fn(&[u8]) -> bool,
    ) -> (u64, Vec<Vec<u8>>) {
        let mut keys = Vec::new();
        let mut visited = 0;
        let slots = &self.slots;
        let order = self.scan_order.get_or_insert_with(|| {
            let mut pairs: Vec<(u64, u32)> = (0..)
                .zip(slots)
                .map(|(slot, e)| (table_hash(e.hash), slot))
                .collect();
            pairs.sort_unstable();
            pairs.into_iter().collect()
        });
        let mut order = order.range((cursor, 0)..).peekable();
        while let Some(&(hash, slot)) = order.next() {
            let e = &self.slots[slot as usize];
            if e.live_value(self.now_ms).is_some() && wanted(e.key()) {
                keys.push(e.key().to_vec());
            }
            visited += 1;
            match order.peek() {
                None => break,
                Some(&&(next, _)) if visited >= count && next != hash => return (next, keys),
                Some(_) => {}
            }
        }
        (0, keys)
    }
}
