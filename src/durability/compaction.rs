//! Compaction: rotating the log and writing a snapshot of the store beside
//! it, part by part, so the logs before it can be deleted.
//!
//! The store thread encodes the parts between requests; the compaction
//! thread writes them to `snapshot-<gen>.tmp`, fsyncs it, renames it into
//! place, fsyncs the directory, and only then deletes the older files. It
//! never writes to a log (the new log's header aside, written before any
//! record goes in) and never reads a file back.
//!
//! Fail points (with the `failpoints` feature, set through `FAILPOINTS`),
//! each aborting the process when set to `return`, as a crash there would:
//!
//! * `compaction::snapshot_written`: the `.tmp` file is written and
//!   fsynced, not renamed;
//! * `compaction::snapshot_renamed`: renamed, the directory not fsynced;
//! * `compaction::snapshot_synced`: the directory fsynced, no old file
//!   deleted;
//! * `compaction::old_file_deleted`: right after the first older file is
//!   deleted.

use crate::durability::datadir::{file_name, parse_name, sync_dir, Kind};
use crate::durability::error::{CompactionError, FileError, FileOp};
use crate::durability::journal::JournalWriter;
use crate::durability::log::{self, Log};
use crate::store::{SnapshotCursor, Store};
use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Moves `log` to a new file that begins with the records `store` has
/// waiting (a new file's header, see [`Store::rotate_journal`], and any
/// after it); returns its generation. If they cannot be written, they are
/// taken back and the old log goes on.
pub(crate) fn start_log(
    dir: &Path,
    log: &mut Log,
    store: &mut Store,
) -> Result<u64, CompactionError> {
    // Everything before the rotation must be in the old log for good.
    log.sync()?;
    let gen = log.gen() + 1;
    let file = log::create_file(dir, gen)?;
    // The new log must start with its header before anything else goes
    // in; if it cannot, the old log goes on (with its own names).
    let header = store.take_journal();
    if let Err(source) = (&file).write_all(&header).and_then(|()| file.sync_data()) {
        store.rollback();
        let path = dir.join(file_name(Kind::Log, gen));
        let _ = fs::remove_file(&path);
        return Err(FileError {
            op: FileOp::StartLog,
            path,
            source,
        }
        .into());
    }
    store.commit();
    log.rotate(gen, file, header.len() as u64);
    Ok(gen)
}

/// A snapshot being written.
pub(crate) struct Compaction {
    cursor: SnapshotCursor,
    parts: Option<Sender<Part>>,
    done: Receiver<Result<(), CompactionError>>,
}

/// What the store thread hands the compaction thread.
enum Part {
    /// Records of the snapshot.
    Records(Vec<u8>),
    /// The snapshot is complete. Without it (the store thread stopped
    /// first) the file is abandoned, never renamed.
    End,
}

impl Compaction {
    /// Rotates `log` to a new file and starts the thread that writes the
    /// snapshot of `store` as of that moment.
    pub(crate) fn start(
        dir: &Path,
        log: &mut Log,
        store: &mut Store,
    ) -> Result<Compaction, CompactionError> {
        store.rotate_journal();
        let gen = start_log(dir, log, store)?;
        let (parts_tx, parts_rx) = bounded(4);
        let (done_tx, done_rx) = bounded(1);
        let dir = dir.to_owned();
        std::thread::Builder::new()
            .name("netdb-compact".into())
            .spawn(move || {
                let _ = done_tx.send(write_snapshot(&dir, gen, &parts_rx));
            })
            .map_err(CompactionError::Thread)?;
        ::log::info!("compacting: writing {}", file_name(Kind::Snapshot, gen));
        Ok(Compaction {
            cursor: SnapshotCursor::new(Box::new(JournalWriter::new())),
            parts: Some(parts_tx),
            done: done_rx,
        })
    }

    /// Encodes the next part of the snapshot and hands it to the
    /// compaction thread, or, once all are handed over, looks for its
    /// outcome; returns, once the compaction is over, whether it wrote
    /// the snapshot.
    pub(crate) fn step(&mut self, store: &Store) -> Option<bool> {
        if let Some(parts) = &self.parts {
            let complete = store.snapshot_part(&mut self.cursor, 4096);
            let mut sent = parts.send(Part::Records(self.cursor.take()));
            if complete && sent.is_ok() {
                sent = parts.send(Part::End);
            }
            if complete || sent.is_err() {
                // The thread finishes the file, or has reported why not.
                self.parts = None;
            }
            return None;
        }
        match self.done.try_recv() {
            Err(TryRecvError::Empty) => None,
            Ok(Ok(())) => {
                ::log::info!("compaction done");
                Some(true)
            }
            Ok(Err(e)) => {
                ::log::warn!("compaction failed: {e}; the logs are kept");
                Some(false)
            }
            Err(TryRecvError::Disconnected) => {
                ::log::warn!("compaction thread ended without a word; the logs are kept");
                Some(false)
            }
        }
    }
}

/// How far compaction has got, as `INFO` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionStatus {
    /// Whether a snapshot is being written now.
    pub in_progress: bool,
    /// The last compaction that ended, if any has since the start.
    pub last: Option<LastCompaction>,
}

/// How the last compaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastCompaction {
    /// When it ended, in seconds since the Unix epoch.
    pub ended_unix_secs: u64,
    /// Whether the snapshot was written (else the logs were kept).
    pub ok: bool,
}

/// The compaction thread: writes the parts to a temporary file, makes it
/// the snapshot atomically, then deletes the files it replaces.
fn write_snapshot(dir: &Path, gen: u64, parts: &Receiver<Part>) -> Result<(), CompactionError> {
    let name = file_name(Kind::Snapshot, gen);
    let tmp = dir.join(format!("{name}.tmp"));
    let result = (|| {
        let mut file = File::create(&tmp).map_err(FileError::at(FileOp::Create, &tmp))?;
        let mut writer = io::BufWriter::with_capacity(1 << 20, &mut file);
        loop {
            match parts.recv() {
                Ok(Part::Records(records)) => writer
                    .write_all(&records)
                    .map_err(FileError::at(FileOp::Write, &tmp))?,
                Ok(Part::End) => break,
                Err(_) => return Err(CompactionError::Abandoned { tmp: tmp.clone() }),
            }
        }
        writer.flush().map_err(FileError::at(FileOp::Write, &tmp))?;
        drop(writer);
        file.sync_all()
            .map_err(FileError::at(FileOp::Fsync, &tmp))?;
        fail::fail_point!("compaction::snapshot_written", |_| crash(
            "compaction::snapshot_written"
        ));
        fs::rename(&tmp, dir.join(&name)).map_err(FileError::at(FileOp::Rename, &tmp))?;
        fail::fail_point!("compaction::snapshot_renamed", |_| crash(
            "compaction::snapshot_renamed"
        ));
        sync_dir(dir)?;
        fail::fail_point!("compaction::snapshot_synced", |_| crash(
            "compaction::snapshot_synced"
        ));
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // The new snapshot and the logs from `gen` on hold everything: the
    // older files can go.
    let listing = fs::read_dir(dir).map_err(FileError::at(FileOp::List, dir))?;
    for entry in listing.flatten() {
        let file = entry.file_name();
        if let Some((_, g)) = file.to_str().and_then(parse_name) {
            if g < gen {
                let _ = fs::remove_file(entry.path());
                fail::fail_point!("compaction::old_file_deleted", |_| crash(
                    "compaction::old_file_deleted"
                ));
            }
        }
    }
    Ok(sync_dir(dir)?)
}

/// Aborts the process, as a crash at fail point `point` would.
#[cfg(feature = "failpoints")]
fn crash<T>(point: &str) -> T {
    ::log::error!("fail point {point}: aborting");
    std::process::abort()
}
