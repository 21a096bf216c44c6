//! What the log and snapshot files hold, and the pure halves of writing and
//! reading them: encoding changes into checksummed records, and replaying
//! records into a [`Store`].
//!
//! Every file (log or snapshot) is a sequence of [`crate::durability::record`] records
//! whose bodies are postcard-encoded [`Change`]s. A file starts with
//! [`Change::Writer`] (whose data this is) and defines each writer name with
//! [`Change::Name`] before the first record that uses its id. A
//! [`Change::Version`] holds a key's whole version after a change, so
//! replay just sets it: replaying a record twice, or a record older than
//! the version already loaded followed by the newer ones, ends in the same
//! state. That is what lets a snapshot be written while writes go on.
//!
//! No files here: [`crate::durability::log`], [`crate::durability::compaction`]
//! and [`crate::durability::recovery`] write and read them.

use crate::core::clock::{Clock, Dot, NodeId};
use crate::core::counter::Portable;
use crate::core::names::Names;
use crate::core::version::{Stamp, VersionRef};
use crate::core::vv::VersionVector;
use crate::durability::record;
use crate::store::{ChangeLog, Store};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// One record's body, as read back: it borrows its bytes and names from
/// the record.
///
/// These types are the disk format's own: they must never be shared with
/// the peer protocol, whose changes would then silently change the files.
/// Fields are encoded in the order written, so never reorder them
/// (`a_logged_version_has_fixed_bytes` pins the encoding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change<'a> {
    /// First record of every file: the writer identity of the node.
    Writer {
        /// The writer name (node name and epoch).
        name: &'a str,
    },
    /// Gives the writer id used by later records of this file a name.
    Name {
        /// The id within this file.
        id: u32,
        /// The writer name.
        name: &'a str,
    },
    /// A key's version after a change (ids are this file's).
    #[serde(borrow)]
    Version(Entry<'a>),
    /// The node's version vector was joined with this one.
    Joined {
        /// (writer id, counter) pairs.
        vv: Vec<(u32, u64)>,
    },
    /// The node stopped cleanly: everything before this record reached
    /// the disk (the last record of a log).
    Closed,
    /// Every write in this file was fsynced before it was acknowledged or
    /// sent to a peer (`--fsync always`), so a crash lost none of them.
    SyncedEachWrite,
    /// A key's version after a change, whose value expires: [`Self::Version`]
    /// with the expiry. A variant of its own, added last, so that a
    /// version without one is written as before and files written before
    /// expiry existed read as they did.
    ExpiringVersion {
        /// The version.
        #[serde(borrow)]
        entry: Entry<'a>,
        /// When the value expires (milliseconds since the Unix epoch).
        expires: u64,
    },
    /// A key's version after a change, whose value is a counter's total
    /// (see [`crate::core::counter`]), with its expiry if it has one.
    CounterVersion {
        /// The version.
        #[serde(borrow)]
        entry: Entry<'a>,
        /// When the value expires, if it does.
        expires: Option<u64>,
        /// The counter.
        counter: FileCounter,
    },
}

/// A counter in a file (writers are the file's ids).
pub type FileCounter = Portable<u32>;

/// A key's version in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry<'a> {
    /// The key.
    #[serde(borrow)]
    pub key: Bytes<'a>,
    /// The value, or `None` for a tombstone.
    #[serde(borrow)]
    pub value: Option<Bytes<'a>>,
    /// Hybrid logical timestamp of the winning write.
    pub ts: u64,
    /// This file's id of the winning write's writer.
    pub writer: u32,
    /// The vector clock: (this file's writer id, counter) pairs.
    pub clock: Vec<(u32, u64)>,
}

/// A byte string, encoded as one length-prefixed run of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes<'a>(pub &'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Bytes<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes<'a>, D::Error> {
        <&[u8]>::deserialize(d).map(Bytes)
    }
}

/// [`Change`] as the store logs it, borrowing the store's own data. Same
/// variants, same order: it encodes to the same bytes.
#[derive(Serialize)]
enum ChangeRef<'a> {
    Writer {
        name: &'a str,
    },
    Name {
        id: u32,
        name: &'a str,
    },
    Version(EntryRef<'a>),
    Joined {
        vv: DotsRef<'a>,
    },
    Closed,
    SyncedEachWrite,
    ExpiringVersion {
        entry: EntryRef<'a>,
        expires: u64,
    },
    CounterVersion {
        entry: EntryRef<'a>,
        expires: Option<u64>,
        counter: FileCounter,
    },
}

/// [`Entry`] as the store logs it.
#[derive(Serialize)]
struct EntryRef<'a> {
    key: Bytes<'a>,
    value: Option<Bytes<'a>>,
    ts: u64,
    writer: u32,
    clock: DotsRef<'a>,
}

/// Dots, encoded like `Vec<(u32, u64)>`.
struct DotsRef<'a>(&'a [Dot]);

impl Serialize for DotsRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for d in self.0 {
            seq.serialize_element(&(d.node.0, d.counter))?;
        }
        seq.end()
    }
}

/// Encodes changes into the records of one file.
#[derive(Debug, Default)]
pub struct JournalWriter {
    buf: Vec<u8>,
    names_written: usize,
    /// `names_written` as of the last commit: the names the log really
    /// holds, since a refused group's records never reach it.
    names_committed: usize,
    scratch: Vec<u8>,
}

impl JournalWriter {
    /// A writer with nothing buffered.
    pub fn new() -> JournalWriter {
        JournalWriter::default()
    }

    fn emit(&mut self, change: &ChangeRef) {
        self.scratch.clear();
        // Encoding into a Vec cannot fail.
        let body = postcard::to_extend(change, std::mem::take(&mut self.scratch))
            .expect("encoding into a Vec cannot fail");
        // Bodies are bounded by the key and value limits, far below the
        // record format's own limit.
        record::encode(&body, u32::MAX as usize, &mut self.buf)
            .expect("a change is smaller than the record limit");
        self.scratch = body;
    }

    fn define_names(&mut self, names: &Names) {
        while self.names_written < names.len() {
            let id = self.names_written as u32;
            self.emit(&ChangeRef::Name {
                id,
                name: names.name(NodeId(id)),
            });
            self.names_written += 1;
        }
    }
}

/// The log's encoder is what the store hands its changes to: a file starts
/// with the writer identity, whether each write is fsynced, and every
/// known name; each name is defined before the first record that uses it.
impl ChangeLog for JournalWriter {
    fn start_file(&mut self, writer: &str, synced_each_write: bool, names: &Names) {
        self.names_written = 0;
        self.emit(&ChangeRef::Writer { name: writer });
        if synced_each_write {
            self.emit(&ChangeRef::SyncedEachWrite);
        }
        self.define_names(names);
    }

    fn version(&mut self, names: &Names, key: &[u8], v: &VersionRef<'_>) {
        self.define_names(names);
        let entry = EntryRef {
            key: Bytes(key),
            value: v.value.map(Bytes),
            ts: v.stamp.ts,
            writer: v.stamp.writer.0,
            clock: DotsRef(v.clock.dots()),
        };
        match (v.counter, v.expires) {
            (Some(c), expires) => self.emit(&ChangeRef::CounterVersion {
                entry,
                expires,
                counter: c.to_portable(|w| w.0),
            }),
            (None, None) => self.emit(&ChangeRef::Version(entry)),
            (None, Some(expires)) => self.emit(&ChangeRef::ExpiringVersion { entry, expires }),
        }
    }

    fn joined(&mut self, names: &Names, vv: &VersionVector) {
        self.define_names(names);
        let dots: Vec<Dot> = vv
            .iter()
            .map(|(node, counter)| Dot { node, counter })
            .collect();
        self.emit(&ChangeRef::Joined { vv: DotsRef(&dots) });
    }

    fn closed(&mut self) {
        self.emit(&ChangeRef::Closed);
    }

    fn commit(&mut self) {
        self.names_committed = self.names_written;
    }

    /// Names the refused records defined will be defined again before
    /// their next use.
    fn rollback(&mut self) {
        self.names_written = self.names_committed;
        self.buf.clear();
    }

    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Why a file could not be replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayError {
    /// A record's checksum is right but its body is not a change.
    Undecodable(String),
    /// A record uses a writer id no `Name` record defined.
    UnknownId(u32),
    /// The file does not start with a `Writer` record.
    NoWriter,
    /// The file belongs to another writer.
    OtherWriter {
        /// The writer the file names.
        found: String,
        /// The writer being recovered.
        expected: String,
    },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Undecodable(e) => write!(f, "undecodable record: {e}"),
            ReplayError::UnknownId(id) => write!(f, "record uses undefined writer id {id}"),
            ReplayError::NoWriter => write!(f, "file does not start with a writer record"),
            ReplayError::OtherWriter { found, expected } => {
                write!(f, "file belongs to writer '{found}', not '{expected}'")
            }
        }
    }
}

impl std::error::Error for ReplayError {}

/// The node a writer name belongs to: the part before the epoch.
pub fn node_of(writer: &str) -> &str {
    writer.rsplit_once('#').map_or(writer, |(node, _)| node)
}

/// The writer a file belongs to: the name in its first record.
pub fn writer_of(first_body: &[u8]) -> Option<String> {
    match postcard::from_bytes(first_body) {
        Ok(Change::Writer { name }) => Some(name.to_owned()),
        _ => None,
    }
}

/// Whether a record body says that every write of its file was fsynced
/// (it is one of the first two records of such a file).
pub fn is_synced_each_write(body: &[u8]) -> bool {
    matches!(postcard::from_bytes(body), Ok(Change::SyncedEachWrite))
}

/// Replays the records of one file into a store, in order.
#[derive(Debug, Default)]
pub struct Replayer {
    ids: Vec<Option<NodeId>>,
    /// The writer identity the file was written under (an earlier identity
    /// of the same node, or the store's own).
    writer: Option<NodeId>,
    /// Records applied so far.
    applied: usize,
    /// One of the first two records said every write was fsynced.
    synced_each_write: bool,
    /// The last record applied was [`Change::Closed`].
    ends_closed: bool,
}

impl Replayer {
    /// A replayer for a new file.
    pub fn new() -> Replayer {
        Replayer::default()
    }

    fn id(&self, id: u32) -> Result<NodeId, ReplayError> {
        self.ids
            .get(id as usize)
            .copied()
            .flatten()
            .ok_or(ReplayError::UnknownId(id))
    }

    /// Whether the log applied so far holds every write its writer made
    /// while it was written: the writer stopped cleanly (the last record
    /// is [`Change::Closed`]), or fsynced each write (one of the first two
    /// is [`Change::SyncedEachWrite`]). Only then may a restarted node go
    /// on writing under that identity; otherwise writes it acknowledged or
    /// sent to peers may be missing, and reusing their counters would make
    /// new writes look old.
    pub fn is_complete(&self) -> bool {
        self.ends_closed || self.synced_each_write
    }

    /// Applies one record body.
    pub fn apply(&mut self, store: &mut Store, body: &[u8]) -> Result<(), ReplayError> {
        let change: Change =
            postcard::from_bytes(body).map_err(|e| ReplayError::Undecodable(e.to_string()))?;
        self.ends_closed = change == Change::Closed;
        if self.applied < 2 && change == Change::SyncedEachWrite {
            self.synced_each_write = true;
        }
        self.applied += 1;
        match change {
            Change::Writer { name } => {
                if node_of(name) != node_of(store.writer()) {
                    return Err(ReplayError::OtherWriter {
                        found: name.to_owned(),
                        expected: store.writer().to_owned(),
                    });
                }
                self.writer = Some(store.intern(name));
            }
            _ if self.writer.is_none() => return Err(ReplayError::NoWriter),
            Change::Closed | Change::SyncedEachWrite => {}
            Change::Name { id, name } => {
                let i = id as usize;
                // A file defines its ids in order (0, 1, 2 ... and again
                // after a refused group), so an id past the next one is
                // damage; allowing a gap would let each small record set
                // aside room for the whole gap.
                if i > self.ids.len() {
                    return Err(ReplayError::UnknownId(id));
                }
                if self.ids.len() <= i {
                    self.ids.resize(i + 1, None);
                }
                self.ids[i] = Some(store.intern(name));
            }
            Change::Version(w) => self.restore_entry(store, &w, None, None)?,
            Change::ExpiringVersion { entry, expires } => {
                self.restore_entry(store, &entry, Some(expires), None)?;
            }
            Change::CounterVersion {
                entry,
                expires,
                counter,
            } => self.restore_entry(store, &entry, expires, Some(&counter))?,
            Change::Joined { vv } => {
                let mut joined = VersionVector::new();
                for (id, counter) in vv {
                    joined.raise(self.id(id)?, counter);
                }
                store.restore_joined(&joined);
            }
        }
        Ok(())
    }

    /// Sets a key's version as a record says.
    fn restore_entry(
        &self,
        store: &mut Store,
        w: &Entry<'_>,
        expires: Option<u64>,
        counter: Option<&FileCounter>,
    ) -> Result<(), ReplayError> {
        let counter = match counter {
            None => None,
            Some(c) => c.to_counter(|&id| self.id(id))?,
        };
        {
            let mut dots = Vec::with_capacity(w.clock.len());
            for &(id, counter) in &w.clock {
                dots.push(Dot {
                    node: self.id(id)?,
                    counter,
                });
            }
            let stamp = Stamp {
                ts: w.ts,
                writer: self.id(w.writer)?,
            };
            let version = VersionRef {
                value: w.value.map(|v| v.0),
                expires,
                counter: counter.as_ref(),
                clock: &Clock::from_dots(dots),
                stamp,
            };
            store.restore(w.key.0, version, self.writer.expect("checked above"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::wire::{self, Batch, WireEntry};

    const MAX: usize = 1 << 20;

    /// Replays whole files (as bytes) into a fresh store of `writer`.
    fn replay(writer: &str, files: &[&[u8]]) -> Store {
        let mut store = Store::new(writer, MAX);
        for data in files {
            let scan = record::scan(data, MAX);
            assert_eq!(scan.end, record::End::Clean);
            let mut r = Replayer::new();
            for range in &scan.records {
                r.apply(&mut store, &data[range.clone()]).expect("replays");
            }
        }
        store
    }

    fn logging(writer: &str) -> Store {
        let mut s = Store::new(writer, MAX);
        s.start_journal(Box::new(JournalWriter::new()), false);
        s
    }

    #[test]
    fn expiries_and_expired_values_replay() {
        let mut a = logging("a#1");
        a.put_expiring(b"soon", b"v", Some(5), 1_000).expect("put");
        a.put_expiring(b"later", b"v", Some(1_000_000), 1_000)
            .expect("put");
        a.put(b"never", b"v", 2_000).expect("put");
        a.set_now(10_000);
        assert_eq!(a.expire_due(10), 1);
        let log = a.take_journal();
        a.commit();
        let back = replay("a#1", &[&log]);
        assert_eq!(back.canonical(), a.canonical());
        assert_eq!(back.expiry(b"later"), Some(1_000_000));
        assert_eq!(back.get(b"soon"), None);
        assert_eq!(back.counts().tombstones, 1);
    }

    #[test]
    fn a_log_replays_into_the_same_store() {
        let mut a = logging("a#1");
        let mut b = Store::new("b#1", MAX);
        a.put(b"k1", b"v1", 1_000).expect("put");
        a.put(b"k2", b"v2", 2_000).expect("put");
        a.delete(b"k1", 3_000).expect("delete");
        b.put(b"k3", b"from b", 4_000).expect("put");
        let d = b.delta(&Vec::new(), None, MAX);
        a.apply_batch(&d.batch, u64::MAX).expect("merge");
        a.join_version_vector(&b.version_vector()).expect("join");
        let log = a.take_journal();
        a.commit();
        let back = replay("a#1", &[&log]);
        assert_eq!(back.canonical(), a.canonical());
        assert_eq!(back.version_vector(), a.version_vector());
        // Counters resume above every one used: a new write does not reuse.
        let mut back = back;
        back.put(b"k4", b"v", 5_000).expect("put");
        assert!(back
            .version_vector()
            .iter()
            .any(|(n, c)| n == "a#1" && *c == 4));
    }

    #[test]
    fn a_rolled_back_group_leaves_the_store_as_it_was() {
        let mut a = logging("a#1");
        a.put(b"keep", b"1", 1_000).expect("put");
        a.put(b"change", b"old", 1_000).expect("put");
        let _ = a.take_journal();
        a.commit();
        let before = a.canonical();
        a.put(b"change", b"new", 2_000).expect("put");
        a.put(b"added", b"x", 2_000).expect("put");
        a.delete(b"keep", 2_000).expect("delete");
        let batch = Batch {
            groups: Vec::new(),
            names: vec!["z#1".into()],
            entries: vec![WireEntry {
                key: wire::Bytes(b"merged".to_vec()),
                value: Some(wire::Bytes(b"m".to_vec())),
                ts: 9,
                writer: 0,
                clock: vec![(0, 1)],
                expires: None,
                counter: None,
            }],
        };
        a.apply_batch(&batch, u64::MAX).expect("merge");
        a.join_version_vector(&vec![("z#1".into(), 1)])
            .expect("join");
        let _ = a.take_journal();
        a.rollback();
        assert_eq!(a.canonical(), before);
        // The join is taken back; the node's own counter is not (a gap in
        // its counters is harmless).
        assert!(!a.version_vector().iter().any(|(n, _)| n == "z#1"));
        assert_eq!(a.get(b"change"), Some(&b"old"[..]));
        assert_eq!(a.get(b"added"), None);
    }

    #[test]
    fn a_snapshot_taken_while_writes_go_on_plus_the_new_log_replays_exactly() {
        let mut a = logging("a#1");
        for i in 0..100u8 {
            a.put(&[i], &[i], 1_000).expect("put");
        }
        let _ = a.take_journal();
        a.commit();
        // Rotation: a new log, and a snapshot written part by part while
        // the store keeps changing.
        a.rotate_journal();
        let mut cursor = SnapshotCursorHandle(crate::store::SnapshotCursor::new(Box::new(
            JournalWriter::new(),
        )));
        let mut snapshot = Vec::new();
        let mut i = 0u8;
        loop {
            let done = a.snapshot_part(&mut cursor.0, 7);
            snapshot.extend(cursor.0.take());
            a.put(&[i], b"changed", 2_000).expect("put");
            a.delete(&[99 - i], 2_000).expect("delete");
            a.put(&[200u8.wrapping_add(i)], b"new", 2_000).expect("put");
            i += 1;
            if done {
                break;
            }
        }
        let log = a.take_journal();
        a.commit();
        let back = replay("a#1", &[&snapshot, &log]);
        assert_eq!(back.canonical(), a.canonical());
    }

    struct SnapshotCursorHandle(crate::store::SnapshotCursor);

    #[test]
    fn a_log_is_complete_after_a_clean_stop_or_with_an_fsync_per_write() {
        let complete = |synced: bool, close: bool| {
            let mut a = Store::new("a#1", MAX);
            a.start_journal(Box::new(JournalWriter::new()), synced);
            a.put(b"k", b"v", 1).expect("put");
            if close {
                a.close_journal();
            }
            let log = a.take_journal();
            let mut replayer = Replayer::new();
            let mut back = Store::new("a#2", MAX);
            for body in record::scan(&log, MAX).bodies(&log) {
                replayer.apply(&mut back, body).expect("replays");
            }
            replayer.is_complete()
        };
        assert!(!complete(false, false));
        assert!(complete(false, true));
        assert!(complete(true, false));
    }

    #[test]
    fn a_new_identity_replays_the_old_one_s_writes_and_knows_it_has_them() {
        let mut old = logging("a#1");
        old.put(b"k1", b"v1", 1_000).expect("put");
        old.put(b"k2", b"v2", 1_000).expect("put");
        let log = old.take_journal();
        let mut new = replay("a#2", &[&log]);
        assert_eq!(new.get(b"k2"), Some(&b"v2"[..]));
        let vv = new.version_vector();
        assert!(vv.contains(&("a#1".to_string(), 2)), "{vv:?}");
        // New writes go under the new identity, from counter 1.
        new.put(b"k1", b"again", 2_000).expect("put");
        assert!(new.version_vector().contains(&("a#2".to_string(), 1)));
        // A peer's entry above what the old identity logged is still
        // wanted: it may be a write the crash lost.
        let d = old.delta(&new.version_vector(), None, MAX);
        assert!(d.batch.entries.is_empty());
        old.put(b"lost", b"x", 1_500).expect("put");
        let d = old.delta(&new.version_vector(), None, MAX);
        assert_eq!(d.batch.entries.len(), 1);
    }

    #[test]
    fn another_writer_s_files_are_refused() {
        let mut a = logging("a#1");
        a.put(b"k", b"v", 1).expect("put");
        let log = a.take_journal();
        let mut other = Store::new("b#1", MAX);
        let scan = record::scan(&log, MAX);
        let first = &log[scan.records[0].clone()];
        assert_eq!(writer_of(first).as_deref(), Some("a#1"));
        assert!(matches!(
            Replayer::new().apply(&mut other, first),
            Err(ReplayError::OtherWriter { .. })
        ));
    }

    #[test]
    fn a_name_defined_out_of_order_is_refused() {
        let body = |change: &Change| postcard::to_stdvec(change).expect("encodes");
        let mut store = Store::new("a#1", MAX);
        let mut r = Replayer::new();
        r.apply(&mut store, &body(&Change::Writer { name: "a#1" }))
            .expect("the writer");
        r.apply(&mut store, &body(&Change::Name { id: 0, name: "a#1" }))
            .expect("the first id");
        r.apply(&mut store, &body(&Change::Name { id: 0, name: "a#1" }))
            .expect("an id defined again");
        assert_eq!(
            r.apply(&mut store, &body(&Change::Name { id: 2, name: "b#1" })),
            Err(ReplayError::UnknownId(2)),
            "id 1 is next, not 2"
        );
    }

    /// The bytes a key's version is logged as, with the records naming
    /// its writers: a change here makes existing data directories
    /// unreadable, so it must be a deliberate format change, never a side
    /// effect of changing a type.
    /// Writers `a#1` and `b#1` (ids 0 and 1), and the clock
    /// `[(a#1, 3), (b#1, 9)]`.
    fn two_writers() -> (Names, Clock) {
        let mut names = Names::new();
        let a = names.intern("a#1");
        let b = names.intern("b#1");
        let clock = Clock::from_dots([
            Dot {
                node: a,
                counter: 3,
            },
            Dot {
                node: b,
                counter: 9,
            },
        ]);
        (names, clock)
    }

    #[test]
    fn a_logged_version_has_fixed_bytes() {
        let (names, clock) = two_writers();
        let mut writer = JournalWriter::new();
        writer.version(
            &names,
            b"k",
            &VersionRef {
                value: Some(b"v"),
                expires: None,
                counter: None,
                clock: &clock,
                stamp: Stamp {
                    ts: 77,
                    writer: NodeId(1),
                },
            },
        );
        #[rustfmt::skip]
        const LOGGED: [u8; 61] = [
            // Name { id: 0, name: "a#1" }
            0x06, 0x00, 0x00, 0x00, 0xc0, 0x80, 0x2f, 0x04, 0xa4, 0x0b, 0x49, 0xce,
            0x01, 0x00, 0x03, 0x61, 0x23, 0x31,
            // Name { id: 1, name: "b#1" }
            0x06, 0x00, 0x00, 0x00, 0xc0, 0x80, 0x2f, 0x04, 0x4d, 0x9c, 0x6f, 0xf1,
            0x01, 0x01, 0x03, 0x62, 0x23, 0x31,
            // Version: key "k", value "v", ts 77, writer 1, clock [(0, 3), (1, 9)]
            0x0d, 0x00, 0x00, 0x00, 0xc1, 0x07, 0x2e, 0xd3, 0x70, 0xea, 0x3f, 0xe3,
            0x02, 0x01, 0x6b, 0x01, 0x01, 0x76, 0x4d, 0x01, 0x02, 0x00, 0x03, 0x01, 0x09,
        ];
        assert_eq!(writer.take(), LOGGED);
    }

    #[test]
    fn changes_as_logged_encode_like_changes_as_read() {
        let (_, clock) = two_writers();
        let by_ref = |c: &ChangeRef| postcard::to_stdvec(c).expect("encodes");
        let owned = |c: &Change| postcard::to_stdvec(c).expect("encodes");
        assert_eq!(
            by_ref(&ChangeRef::ExpiringVersion {
                entry: EntryRef {
                    key: Bytes(b"k"),
                    value: Some(Bytes(b"v")),
                    ts: 77,
                    writer: 1,
                    clock: DotsRef(clock.dots()),
                },
                expires: 1_700_000_000_000,
            }),
            owned(&Change::ExpiringVersion {
                entry: Entry {
                    key: Bytes(b"k"),
                    value: Some(Bytes(b"v")),
                    ts: 77,
                    writer: 1,
                    clock: vec![(0, 3), (1, 9)],
                },
                expires: 1_700_000_000_000,
            })
        );
        assert_eq!(
            by_ref(&ChangeRef::Version(EntryRef {
                key: Bytes(b"k"),
                value: Some(Bytes(b"v")),
                ts: 77,
                writer: 1,
                clock: DotsRef(clock.dots()),
            })),
            owned(&Change::Version(Entry {
                key: Bytes(b"k"),
                value: Some(Bytes(b"v")),
                ts: 77,
                writer: 1,
                clock: vec![(0, 3), (1, 9)],
            }))
        );
        assert_eq!(
            by_ref(&ChangeRef::Joined {
                vv: DotsRef(clock.dots())
            }),
            owned(&Change::Joined {
                vv: vec![(0, 3), (1, 9)]
            })
        );
        assert_eq!(
            by_ref(&ChangeRef::Name { id: 4, name: "x" }),
            owned(&Change::Name { id: 4, name: "x" })
        );
        assert_eq!(
            by_ref(&ChangeRef::Writer { name: "x" }),
            owned(&Change::Writer { name: "x" })
        );
        assert_eq!(by_ref(&ChangeRef::Closed), owned(&Change::Closed));
        assert_eq!(
            by_ref(&ChangeRef::SyncedEachWrite),
            owned(&Change::SyncedEachWrite)
        );
    }
}
