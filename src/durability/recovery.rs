//! Recovery at startup: the newest snapshot and every log after it,
//! replayed into a new store.
//!
//! Each file is read once, record by record, so memory holds one record
//! besides the store. A torn record at the end of a log (a crash while
//! writing) is cut off with a log line; a damaged record before the end
//! stops startup unless the user asks to truncate there. Only the first
//! records of a file and the bytes at its very end are read before that,
//! to learn whose data it is and under which identity to go on.
//!
//! It reads and cuts files; it never writes a record, never creates or
//! deletes a file (the directory listing, lock and `.tmp` clean-up are
//! [`crate::durability::datadir`]'s), and never starts a log.

use crate::durability::datadir::{DiskSettings, Kind};
use crate::durability::error::{Damage, FileError, FileOp, OpenError};
use crate::durability::journal::{
    is_synced_each_write, node_of, writer_of, JournalWriter, Replayer,
};
use crate::durability::record::{End, Item, Reader};
use crate::store::{ChangeLog, Store};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A data file to recover from.
#[derive(Debug, Clone)]
pub(crate) struct DataFile {
    /// Snapshot or log.
    pub(crate) kind: Kind,
    /// Its generation.
    pub(crate) gen: u64,
    /// Where it is.
    pub(crate) path: PathBuf,
}

/// What recovery found, for the startup log line.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Keys and tombstones loaded.
    pub entries: usize,
    /// Records replayed from logs.
    pub log_records: usize,
    /// Whether a snapshot was loaded.
    pub snapshot: bool,
}

/// Recovers the store of node `name` from `files` (every data file of
/// `dir`, oldest first): the newest snapshot and the logs from its
/// generation on. Returns the store, what was found, and the bytes the
/// logs hold.
///
/// The node goes on writing under the identity of its newest log only if
/// that log holds every write made under it (a clean stop, or an fsync per
/// write; see [`Replayer::is_complete`]); otherwise under `new_writer`, so
/// no counter it may have used before the crash is used again. The store
/// must be made under that identity before anything is replayed, but
/// whether the log is complete shows only at its end; so its first
/// records and its last bytes are read to guess, and in the rare case the
/// guess was wrong (a clean stop followed by zeros, say) everything is
/// replayed again into a store of the right identity.
pub(crate) fn recover(
    dir: &Path,
    files: &[DataFile],
    settings: &DiskSettings,
    name: &str,
    new_writer: &str,
    make_store: impl Fn(&str) -> Store,
) -> Result<(Store, Recovered, u64), OpenError> {
    let snapshot = files.iter().rfind(|f| f.kind == Kind::Snapshot);
    let from = snapshot.map_or(0, |f| f.gen);
    let to_load: Vec<&DataFile> = snapshot
        .into_iter()
        .chain(
            files
                .iter()
                .filter(|f| f.kind == Kind::Log && f.gen >= from),
        )
        .collect();
    let max = settings.max_record;
    let owner = match to_load.first() {
        Some(first) => peek(first, max)?.writer,
        None => None,
    };
    let newest_log = match to_load.iter().rfind(|f| f.kind == Kind::Log) {
        Some(log) => Some(peek(log, max)?),
        None => None,
    };
    let check_owner = |writer: &str| {
        let owner = node_of(owner.as_deref().unwrap_or(writer));
        if owner == name {
            Ok(())
        } else {
            Err(OpenError::OtherNode {
                dir: dir.to_owned(),
                found: owner.to_owned(),
                expected: name.to_owned(),
            })
        }
    };

    let writer_if = |complete: bool| {
        let log = newest_log.as_ref().filter(|_| complete);
        log.and_then(|log| log.writer.clone())
            .unwrap_or_else(|| new_writer.to_owned())
    };
    let guess = newest_log.as_ref().is_some_and(|log| log.looks_complete);
    let writer = writer_if(guess);
    check_owner(&writer)?;
    let mut store = make_store(&writer);
    let mut replayed = replay(&to_load, settings, &mut store)?;
    let right = writer_if(replayed.newest_log_complete);
    if right != writer {
        check_owner(&right)?;
        store = make_store(&right);
        replayed = replay(&to_load, settings, &mut store)?;
    }
    let recovered = Recovered {
        entries: store.counts().live + store.counts().tombstones,
        log_records: replayed.log_records,
        snapshot: snapshot.is_some(),
    };
    Ok((store, recovered, replayed.logs_bytes))
}

/// What the start and the end of a file say, read before replaying it.
struct Peek {
    /// The writer its first record names.
    writer: Option<String>,
    /// Whether it looks like a log that holds every write of its writer:
    /// one of its first two records says each write was fsynced, or it
    /// ends with the record a clean stop writes last.
    looks_complete: bool,
}

fn peek(file: &DataFile, max_record: usize) -> Result<Peek, OpenError> {
    let read_error = || FileError::at(FileOp::Read, &file.path);
    let mut f = File::open(&file.path).map_err(read_error())?;
    let mut reader = Reader::new(BufReader::with_capacity(4096, &mut f), max_record);
    let mut writer = None;
    let mut synced_each_write = false;
    for i in 0..2 {
        let Item::Record { body, .. } = reader.next().map_err(read_error())? else {
            break;
        };
        if i == 0 {
            writer = writer_of(body);
        }
        synced_each_write |= is_synced_each_write(body);
    }
    drop(reader);
    let closed = closed_record();
    let len = f.metadata().map_err(read_error())?.len();
    let mut tail = vec![0; closed.len()];
    let ends_closed = len >= closed.len() as u64
        && f.seek(SeekFrom::End(-(closed.len() as i64)))
            .and_then(|_| f.read_exact(&mut tail))
            .map_err(read_error())
            .map(|()| tail == closed)?;
    Ok(Peek {
        writer,
        looks_complete: synced_each_write || ends_closed,
    })
}

/// The record a clean stop ends a log with.
fn closed_record() -> Vec<u8> {
    let mut writer = JournalWriter::new();
    writer.closed();
    writer.take()
}

/// What replaying the files found.
struct Replayed {
    /// Records replayed from logs.
    log_records: usize,
    /// Bytes the logs hold (after any cut).
    logs_bytes: u64,
    /// Whether the newest log holds every write of its writer.
    newest_log_complete: bool,
}

/// Replays `files` into `store`, in order, cutting a torn tail (and, if
/// asked, a damaged log) where the good records end.
fn replay(
    files: &[&DataFile],
    settings: &DiskSettings,
    store: &mut Store,
) -> Result<Replayed, OpenError> {
    let mut replayed = Replayed {
        log_records: 0,
        logs_bytes: 0,
        newest_log_complete: false,
    };
    for file in files {
        let path = &file.path;
        let read_error = || FileError::at(FileOp::Read, path);
        let f = File::open(path).map_err(read_error())?;
        let len = f.metadata().map_err(read_error())?.len();
        let mut reader = Reader::new(BufReader::with_capacity(1 << 16, f), settings.max_record);
        let mut replayer = Replayer::new();
        let end = loop {
            match reader.next().map_err(read_error())? {
                Item::Record { offset, body } => {
                    replayer
                        .apply(store, body)
                        .map_err(|e| OpenError::Corrupt {
                            file: path.clone(),
                            offset,
                            damage: Damage::Replay(e),
                            truncatable: false,
                        })?;
                    if file.kind == Kind::Log {
                        replayed.log_records += 1;
                    }
                }
                Item::End(end) => break end,
            }
        };
        let keep = good_length(file, len, end, settings.truncate_corrupt)?;
        if keep < len {
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(FileError::at(FileOp::Open, path))?;
            f.set_len(keep)
                .and_then(|()| f.sync_all())
                .map_err(FileError::at(FileOp::Truncate, path))?;
        }
        if file.kind == Kind::Log {
            replayed.logs_bytes += keep;
            replayed.newest_log_complete = replayer.is_complete();
        }
    }
    Ok(replayed)
}

/// How much of `file` (`len` bytes, its good records ending as `end`
/// says) to keep: all of it, up to a torn tail, or up to a damaged record
/// if the user asked to truncate there. Damage anywhere else, or in a
/// snapshot at all, is an error.
fn good_length(
    file: &DataFile,
    len: u64,
    end: End,
    truncate_corrupt: bool,
) -> Result<u64, OpenError> {
    let path = &file.path;
    let is_log = file.kind == Kind::Log;
    let offset = match end {
        End::Clean => return Ok(len),
        End::TornTail { offset } if !is_log => {
            return Err(OpenError::Corrupt {
                file: path.clone(),
                offset,
                damage: Damage::TornSnapshot,
                truncatable: false,
            })
        }
        End::TornTail { offset } => {
            ::log::warn!(
                "cut an incomplete record at the end of {} (offset {offset}, {} bytes): a crash while writing",
                path.display(),
                len - offset as u64
            );
            offset
        }
        End::Corrupt { offset, reason } if !truncate_corrupt || !is_log => {
            return Err(OpenError::Corrupt {
                file: path.clone(),
                offset,
                damage: Damage::Record(reason),
                truncatable: is_log,
            })
        }
        End::Corrupt { offset, reason } => {
            ::log::warn!(
                "truncated {} at offset {offset} ({reason}), dropping {} bytes after it as asked",
                path.display(),
                len - offset as u64
            );
            offset
        }
    };
    Ok(offset as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::durability::datadir::file_name;
    use crate::durability::log::FsyncPolicy;

    const MAX: usize = 1 << 20;

    fn settings(dir: &Path) -> DiskSettings {
        DiskSettings {
            dir: dir.to_owned(),
            fsync: FsyncPolicy::No,
            truncate_corrupt: false,
            compact_factor: 2,
            compact_min_bytes: 0,
            max_record: MAX,
        }
    }

    /// Writes a log of writer `a#1` holding one put, stopped cleanly or
    /// not, with `zeros` zero bytes after it; returns it as a data file.
    fn write_log(dir: &Path, closed: bool, zeros: usize) -> DataFile {
        let mut store = Store::new("a#1", MAX);
        store.start_journal(Box::new(JournalWriter::new()), false);
        store.put(b"k", b"v", 1_000).expect("put");
        if closed {
            store.close_journal();
        }
        let mut bytes = store.take_journal();
        bytes.resize(bytes.len() + zeros, 0);
        let path = dir.join(file_name(Kind::Log, 1));
        std::fs::write(&path, bytes).expect("write the log");
        DataFile {
            kind: Kind::Log,
            gen: 1,
            path,
        }
    }

    fn recover_writer(dir: &Path, file: DataFile) -> (String, Recovered) {
        let (store, recovered, _) = recover(dir, &[file], &settings(dir), "a", "a#2", |w| {
            Store::new(w, MAX)
        })
        .expect("recovers");
        assert_eq!(store.get(b"k"), Some(&b"v"[..]));
        (store.writer().to_owned(), recovered)
    }

    #[test]
    fn a_cleanly_stopped_log_is_resumed_and_a_crashed_one_is_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (writer, recovered) = recover_writer(dir.path(), write_log(dir.path(), true, 0));
        assert_eq!(writer, "a#1");
        assert_eq!(recovered.log_records, 4);
        let dir = tempfile::tempdir().expect("temp dir");
        let (writer, _) = recover_writer(dir.path(), write_log(dir.path(), false, 0));
        assert_eq!(writer, "a#2");
    }

    /// A node that took a new identity while running (its data had gone
    /// back in time) began a new log under it: a restart goes on under the
    /// new identity, from the counter it had reached.
    #[test]
    fn a_restart_after_a_new_identity_goes_on_under_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = Store::new("a#1", MAX);
        store.start_journal(Box::new(JournalWriter::new()), true);
        store.put(b"k", b"v", 1_000).expect("put");
        let old_log = store.take_journal();
        store.commit();
        assert_eq!(store.renew_identity("a#2", 2_000), 1);
        let new_log = store.take_journal();
        let mut files = Vec::new();
        for (gen, bytes) in [(1, old_log), (2, new_log)] {
            let path = dir.path().join(file_name(Kind::Log, gen));
            std::fs::write(&path, bytes).expect("write the log");
            files.push(DataFile {
                kind: Kind::Log,
                gen,
                path,
            });
        }
        let (mut back, _, _) =
            recover(dir.path(), &files, &settings(dir.path()), "a", "a#3", |w| {
                Store::new(w, MAX)
            })
            .expect("recovers");
        assert_eq!(back.writer(), "a#2");
        assert_eq!(back.get(b"k"), Some(&b"v"[..]));
        back.put(b"k2", b"w", 3_000).expect("put");
        let vv = back.version_vector();
        assert!(vv.contains(&("a#2".to_string(), 2)), "{vv:?}");
    }

    /// Zeros after the last record hide it from the guess made from the
    /// file's last bytes; the replay finds it and starts over.
    #[test]
    fn a_clean_stop_followed_by_zeros_is_still_resumed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = write_log(dir.path(), true, 100);
        let path = file.path.clone();
        let (writer, recovered) = recover_writer(dir.path(), file);
        assert_eq!(writer, "a#1");
        assert_eq!(recovered.log_records, 4, "counted once, in the replay kept");
        let cut = std::fs::read(path).expect("read the log");
        assert!(cut.ends_with(&closed_record()), "the zeros are cut");
    }
}
