//! The store's side of logging: every change is handed to a
//! [`ChangeLog`] (the durability layer's encoder) and remembered in an
//! undo list, so a group whose log write fails can be taken back whole.
//! Also snapshots (the whole map, in parts) and replay (setting versions
//! as the log says, without logging them again).
//!
//! The store never sees a file: the durability layer implements
//! [`ChangeLog`] and writes what it encodes.

use super::*;

/// Where the store hands every change while logging: the encoder of the
/// log's records, which the durability layer implements. Calls arrive in
/// the order the changes were made; [`take`](Self::take) hands the encoded
/// bytes to be written, and [`commit`](Self::commit) or
/// [`rollback`](Self::rollback) says whether they reached the log.
pub trait ChangeLog: Send {
    /// Begins a new file: the writer identity, whether each write is
    /// fsynced before it is acknowledged, and every name known so far.
    fn start_file(&mut self, writer: &str, synced_each_write: bool, names: &Names);
    /// A key's whole version after a change.
    fn version(&mut self, names: &Names, key: &[u8], version: &VersionRef<'_>);
    /// The node's version vector after a join.
    fn joined(&mut self, names: &Names, vv: &VersionVector);
    /// A clean stop: the last record of a log.
    fn closed(&mut self);
    /// The bytes taken reached the log.
    fn commit(&mut self);
    /// The bytes taken did not reach the log.
    fn rollback(&mut self);
    /// The bytes encoded since the last call.
    fn take(&mut self) -> Vec<u8>;
    /// Whether nothing is waiting to be taken.
    fn is_empty(&self) -> bool;
}

/// One change to take back, newest last.
pub(super) enum Undo {
    /// An entry was added at the end of `slots`.
    Inserted,
    /// The entry in `slot` replaced this one.
    Replaced { slot: u32, old: Entry },
    /// The version vector was this before a join.
    Joined { old: VersionVector },
}

/// Progress of writing the whole store as a snapshot file.
pub struct SnapshotCursor {
    next_slot: usize,
    started: bool,
    out: Box<dyn ChangeLog>,
}

impl SnapshotCursor {
    /// A snapshot from the first entry, encoded by `out`.
    pub fn new(out: Box<dyn ChangeLog>) -> SnapshotCursor {
        SnapshotCursor {
            next_slot: 0,
            started: false,
            out,
        }
    }

    /// The records encoded so far, leaving the buffer empty.
    pub fn take(&mut self) -> Vec<u8> {
        self.out.take()
    }
}

impl Store {
    /// Starts logging: from now on every change is also handed to `log`,
    /// to be taken with [`Self::take_journal`]. Begins a file.
    /// `synced_each_write` says every write will be fsynced before it is
    /// acknowledged or leaves the node (recorded so a restart can trust the
    /// log to hold every write).
    pub fn start_journal(&mut self, mut log: Box<dyn ChangeLog>, synced_each_write: bool) {
        let j = &mut log;
        j.start_file(self.names.name(self.me), synced_each_write, &self.names);
        self.journal = Some(log);
        self.synced_each_write = synced_each_write;
        self.resumed_at = self.counter.last();
    }

    /// Logs a clean stop: the last record before the final fsync.
    pub fn close_journal(&mut self) {
        if let Some(j) = self.journal.as_mut() {
            j.closed();
        }
    }

    /// The records of the changes since the last call, to be written to
    /// the log. Follow with [`Self::commit`] once written, or
    /// [`Self::rollback`] if the write failed.
    pub fn take_journal(&mut self) -> Vec<u8> {
        self.journal.as_mut().map(|j| j.take()).unwrap_or_default()
    }

    /// Whether changes wait to be taken for the log.
    pub fn has_journal(&self) -> bool {
        self.journal.as_ref().is_some_and(|j| !j.is_empty())
    }

    /// The changes taken are in the log: forget how to take them back.
    pub fn commit(&mut self) {
        self.undo.clear();
        if let Some(j) = self.journal.as_mut() {
            j.commit();
        }
        self.committed_counter = self.counter.last();
    }

    /// The changes taken could not be logged: take them back, newest first,
    /// so the store holds only what the log holds. The node's own counter
    /// and its entry in the version vector go back too (the taken-back
    /// writes never left the node, so their counters are free again; kept,
    /// they would reach peers in the vector and make the counters the log
    /// resumes from after a restart look already seen). The timestamp
    /// stays: it only has to grow.
    pub fn rollback(&mut self) {
        if let Some(j) = self.journal.as_mut() {
            j.rollback();
        }
        while let Some(undo) = self.undo.pop() {
            match undo {
                Undo::Inserted => {
                    let last = u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 keys");
                    self.remove(last);
                }
                Undo::Replaced { slot, old } => {
                    self.replace(slot, old);
                }
                Undo::Joined { old } => self.vv = old,
            }
        }
        self.counter = WriteCounter::new();
        self.counter.observe(self.committed_counter);
        // The taken-back writes' groups: their counters will be issued again.
        let committed = self.committed_counter;
        let mine: Vec<NodeId> = self.my_ids();
        self.groups
            .retain(|first, _| !mine.contains(&first.node) || first.counter <= committed);
        for id in mine {
            self.vv.lower(id, committed);
        }
        self.run = None;
    }

    /// Begins a new log file (the old one is closed): the records every
    /// file starts with.
    pub fn rotate_journal(&mut self) {
        if let Some(j) = self.journal.as_mut() {
            j.start_file(
                self.names.name(self.me),
                self.synced_each_write,
                &self.names,
            );
        }
    }

    /// Encodes the next `max_entries` entries of a snapshot into
    /// `cursor`'s buffer (take them with [`SnapshotCursor::take`]); returns
    /// whether the snapshot is complete. Entries changed while a snapshot is
    /// being written are also in the new log, so a snapshot need not be of
    /// one instant; but tombstones must not be collected meanwhile, since
    /// that moves entries between slots.
    pub fn snapshot_part(&self, cursor: &mut SnapshotCursor, max_entries: usize) -> bool {
        if !cursor.started {
            cursor
                .out
                .start_file(self.names.name(self.me), false, &self.names);
            cursor.out.joined(&self.names, &self.vv);
            cursor.started = true;
        }
        let end = (cursor.next_slot + max_entries).min(self.slots.len());
        for e in &self.slots[cursor.next_slot.min(end)..end] {
            let counter = e.counter();
            cursor
                .out
                .version(&self.names, e.key(), &e.version(counter.as_ref()));
        }
        cursor.next_slot = end;
        end >= self.slots.len()
    }

    /// Sets a key's version as a log record says it was, for replay, from
    /// a file written by `file_writer` (this node, under this or an earlier
    /// identity: its writes are in the log in counter order, so the
    /// version vector covers every one up to the highest replayed).
    pub(crate) fn restore(&mut self, key: &[u8], v: VersionRef<'_>, file_writer: NodeId) {
        let (clock, stamp) = (v.clock, v.stamp);
        self.hlc.observe(stamp.ts);
        for d in clock.dots() {
            if d.node == file_writer || (self.sharded && self.is_name_of(d.node, file_writer)) {
                self.vv.raise(d.node, d.counter);
                if file_writer == self.me {
                    self.adopt_if_mine(d.node);
                    self.counter.observe(d.counter);
                }
            }
        }
        if key.len() > MAX_KEY_LEN || clock.is_empty() {
            return;
        }
        let entry = Entry::build(key, v.value, v.expires, v.counter, clock.clone(), stamp);
        match self.find(key) {
            Some(slot) => {
                self.replace(slot, entry);
            }
            None => {
                self.insert(entry);
            }
        }
    }

    /// Joins the version vector as a log record says, for replay.
    pub(crate) fn restore_joined(&mut self, vv: &VersionVector) {
        self.vv.join(vv);
        let ids: Vec<NodeId> = vv.iter().map(|(id, _)| id).collect();
        for id in ids {
            self.adopt_if_mine(id);
        }
        self.counter.observe(self.own_vv_counter());
    }
}
