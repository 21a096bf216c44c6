//! A node's data directory: its lock, its file names, and the [`DataDir`]
//! the store thread holds, which ties the log, compaction and recovery
//! together.
//!
//! Files in the directory:
//!
//! * `LOCK`: held (`flock`) while a node uses the directory, so a second
//!   process fails at once instead of corrupting it.
//! * `log-<gen>`: the changes the store thread applied, as
//!   [`crate::durability::journal`] records. A new one is started at every
//!   startup and at every compaction.
//! * `snapshot-<gen>`: every entry as of the start of `log-<gen>` (give or
//!   take changes that `log-<gen>` also holds). Written as
//!   `snapshot-<gen>.tmp`, fsynced, renamed, and the directory fsynced;
//!   only then are older files deleted. A crash at any point leaves either
//!   the old files or the new snapshot plus the logs after it.
//!
//! This file owns the directory as a whole; writing the log, compacting
//! and recovering are each in their own file, and nothing here reads or
//! writes a record. The store thread ([`crate::engine::service`]) calls it
//! with the records [`crate::store::Store::take_journal`] hands over.

use crate::durability::compaction::{self, Compaction, CompactionStatus, LastCompaction};
use crate::durability::error::{CompactionError, FileError, FileOp, LogError, OpenError};
use crate::durability::journal::JournalWriter;
use crate::durability::log::{FsyncPolicy, Log, LogCounts};
use crate::durability::recovery::{self, DataFile, Recovered};
use crate::store::Store;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// How a data directory is used.
#[derive(Debug, Clone)]
pub struct DiskSettings {
    /// The directory.
    pub dir: PathBuf,
    /// When to fsync the log.
    pub fsync: FsyncPolicy,
    /// Cut the log at a damaged record instead of refusing to start.
    pub truncate_corrupt: bool,
    /// Compact once the logs hold this many times the live data...
    pub compact_factor: u64,
    /// ...and at least this many bytes.
    pub compact_min_bytes: u64,
    /// Largest record accepted when reading.
    pub max_record: usize,
}

/// Kinds of file in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Snapshot,
    Log,
}

/// The name of file `gen` of `kind`.
pub(crate) fn file_name(kind: Kind, gen: u64) -> String {
    match kind {
        Kind::Snapshot => format!("snapshot-{gen:020}"),
        Kind::Log => format!("log-{gen:020}"),
    }
}

/// The kind and generation a file name says, if it is a data file's.
pub(crate) fn parse_name(name: &str) -> Option<(Kind, u64)> {
    let (kind, gen) = if let Some(g) = name.strip_prefix("snapshot-") {
        (Kind::Snapshot, g)
    } else {
        (Kind::Log, name.strip_prefix("log-")?)
    };
    if gen.len() != 20 {
        return None;
    }
    Some((kind, gen.parse().ok()?))
}

/// Fsyncs the directory, making the names created or removed in it
/// durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), FileError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(FileError::at(FileOp::FsyncDir, dir))
}

/// An open data directory: the lock and the log being written.
pub struct DataDir {
    settings: DiskSettings,
    _lock: File,
    log: Log,
    compaction: Option<Compaction>,
    /// How the last compaction since the start ended.
    last_compaction: Option<LastCompaction>,
}

impl DataDir {
    /// Opens (creating if needed) and locks the directory, recovers the
    /// store of node `name` from it, and starts a new log. `make_store`
    /// makes an empty store for a writer identity (it may be called again
    /// if recovery has to start over under another identity).
    pub fn open(
        settings: DiskSettings,
        name: &str,
        new_writer: &str,
        make_store: impl Fn(&str) -> Store,
    ) -> Result<(DataDir, Store, Recovered), OpenError> {
        let dir = settings.dir.clone();
        fs::create_dir_all(&dir).map_err(FileError::at(FileOp::CreateDir, &dir))?;
        let lock = lock(&dir)?;
        let files = data_files(&dir)?;
        let (mut store, recovered, logs_bytes) =
            recovery::recover(&dir, &files, &settings, name, new_writer, make_store)?;

        let gen = files.iter().map(|f| f.gen).max().map_or(1, |g| g + 1);
        let log = Log::create(&dir, gen, settings.fsync, logs_bytes)?;
        let mut disk = DataDir {
            settings,
            _lock: lock,
            log,
            compaction: None,
            last_compaction: None,
        };
        store.start_journal(
            Box::new(JournalWriter::new()),
            disk.settings.fsync == FsyncPolicy::Always,
        );
        let header = store.take_journal();
        disk.append(&header).map_err(OpenError::StartLog)?;
        disk.sync().map_err(OpenError::StartLog)?;
        store.commit();
        disk.log.start_flusher().map_err(OpenError::Thread)?;
        Ok((disk, store, recovered))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.settings.dir
    }

    /// The fsync policy.
    pub fn fsync_policy(&self) -> FsyncPolicy {
        self.log.policy()
    }

    /// Appends records to the log (and fsyncs, with `always`). On error
    /// nothing of `bytes` counts as written: the file is cut back, or, when
    /// that fails too, the log is marked broken and refuses all writes.
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), LogError> {
        self.log.append(bytes)
    }

    /// Fsyncs the log. A failed fsync leaves the log untrustworthy (the
    /// kernel may have dropped the pages), so the log is marked broken.
    pub fn sync(&mut self) -> Result<(), LogError> {
        self.log.sync()
    }

    /// How many times the log was written and fsynced since the start.
    pub fn log_counts(&self) -> LogCounts {
        self.log.counts()
    }

    /// Whether a snapshot is being written.
    pub fn is_compacting(&self) -> bool {
        self.compaction.is_some()
    }

    /// Whether a snapshot is being written, and how the last one ended.
    pub fn compaction_status(&self) -> CompactionStatus {
        CompactionStatus {
            in_progress: self.is_compacting(),
            last: self.last_compaction,
        }
    }

    /// Starts a compaction when the logs have grown to several times the
    /// live data: the log is rotated now, the snapshot is written part by
    /// part by [`Self::step_compaction`].
    pub fn maybe_compact(&mut self, store: &mut Store) {
        if self.compaction.is_some() || self.log.is_broken() {
            return;
        }
        let threshold = (store.data_bytes() as u64)
            .saturating_mul(self.settings.compact_factor)
            .max(self.settings.compact_min_bytes);
        if self.log.since_snapshot() <= threshold {
            return;
        }
        match Compaction::start(&self.settings.dir, &mut self.log, store) {
            Ok(compaction) => self.compaction = Some(compaction),
            Err(e) => ::log::warn!("compaction not started: {e}"),
        }
    }

    /// Encodes the next part of the snapshot being written and hands it to
    /// the compaction thread; called by the store thread between requests,
    /// so writes wait for one part at most (a few milliseconds).
    pub fn step_compaction(&mut self, store: &Store) {
        if let Some(compaction) = &mut self.compaction {
            if let Some(ok) = compaction.step(store) {
                self.compaction = None;
                let ended_unix_secs = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                self.last_compaction = Some(LastCompaction {
                    ended_unix_secs,
                    ok,
                });
            }
        }
    }

    /// Moves the log to a new file that begins with the records `store`
    /// has waiting: after [`Store::renew_identity`], the new identity's
    /// header and re-issued writes, so that recovery, which goes on under
    /// the identity the newest log names, goes on under the new one. If
    /// they cannot be written they are taken back.
    pub fn start_log(&mut self, store: &mut Store) -> Result<(), CompactionError> {
        compaction::start_log(&self.settings.dir, &mut self.log, store).map(|_| ())
    }

    /// Writes and fsyncs what is pending, for a clean stop.
    pub fn close(&mut self) -> Result<(), LogError> {
        self.sync()
    }
}

/// Opens and locks the directory's `LOCK` file.
fn lock(dir: &Path) -> Result<File, OpenError> {
    let path = dir.join("LOCK");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(FileError::at(FileOp::Open, &path))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(fs::TryLockError::WouldBlock) => Err(OpenError::InUse {
            dir: dir.to_owned(),
        }),
        Err(fs::TryLockError::Error(source)) => Err(FileError {
            op: FileOp::Lock,
            path,
            source,
        }
        .into()),
    }
}

/// The data files of the directory, oldest first (a snapshot before the
/// log of the same generation). Deletes what an interrupted compaction
/// left.
fn data_files(dir: &Path) -> Result<Vec<DataFile>, FileError> {
    let listing = fs::read_dir(dir).map_err(FileError::at(FileOp::List, dir))?;
    let mut files = Vec::new();
    for entry in listing {
        let entry = entry.map_err(FileError::at(FileOp::List, dir))?;
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        if file.ends_with(".tmp") {
            // A snapshot that a crash interrupted: never renamed, so
            // never trusted.
            let _ = fs::remove_file(entry.path());
        } else if let Some((kind, gen)) = parse_name(file) {
            files.push(DataFile {
                kind,
                gen,
                path: entry.path(),
            });
        }
    }
    files.sort_by_key(|f| (f.gen, f.kind));
    Ok(files)
}

/// Configures the fail points `FAILPOINTS` names, once per process: the
/// tests' way into a running node (see the `failpoints` feature). Called
/// by [`Node::start`](crate::node::Node::start), before anything that has
/// a fail point runs.
#[cfg(feature = "failpoints")]
pub fn configure_fail_points() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // Dropping the scenario would clear the configuration; the node keeps
    // it for as long as it runs.
    ONCE.call_once(|| std::mem::forget(fail::FailScenario::setup()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_sort_by_generation() {
        for kind in [Kind::Snapshot, Kind::Log] {
            assert_eq!(parse_name(&file_name(kind, 42)), Some((kind, 42)));
        }
        assert_eq!(parse_name("log-12"), None);
        assert_eq!(parse_name("LOCK"), None);
        assert!(file_name(Kind::Log, 9) < file_name(Kind::Log, 10));
    }
}
