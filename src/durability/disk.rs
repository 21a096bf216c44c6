//! A node's data directory: the lock, recovery at startup, the append-only
//! log with its fsync policy, and compaction into a snapshot.
//!
//! Files in the directory:
//!
//! * `LOCK`: held (`flock`) while a node uses the directory, so a second
//!   process fails at once instead of corrupting it.
//! * `log-<gen>`: the changes the store thread applied, as
//!   [`crate::durability::journal`] records. A new one is started at every startup and
//!   at every compaction.
//! * `snapshot-<gen>`: every entry as of the start of `log-<gen>` (give or
//!   take changes that `log-<gen>` also holds). Written as
//!   `snapshot-<gen>.tmp`, fsynced, renamed, and the directory fsynced;
//!   only then are older files deleted. A crash at any point leaves either
//!   the old files or the new snapshot plus the logs after it.
//!
//! Recovery loads the newest snapshot and replays every log from its
//! generation on. A torn record at the end of a log (a crash while writing)
//! is cut off with a log line; a damaged record before the end stops
//! startup unless the user asks to truncate there.
//!
//! This module owns the files; the store thread ([`crate::engine::service`]) calls
//! it with the records [`crate::store::Store::take_journal`] hands over.

use crate::durability::journal::{is_complete, node_of, writer_of, JournalWriter, Replayer};
use crate::durability::record::{self, End};
use crate::error::{Error, Result};
use crate::store::{SnapshotCursor, Store};
use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};
use parking_lot::Mutex;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// When the log is fsynced, as Redis's `appendfsync` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Before a write is acknowledged; writes that arrive together share
    /// one fsync.
    Always,
    /// About once a second: at most about a second of acknowledged writes
    /// is lost in a power cut or kernel crash (not in a process crash).
    EverySec,
    /// Left to the operating system.
    No,
}

impl std::fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::EverySec => "everysec",
            FsyncPolicy::No => "no",
        })
    }
}

impl std::str::FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<FsyncPolicy, String> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "everysec" => Ok(FsyncPolicy::EverySec),
            "no" => Ok(FsyncPolicy::No),
            other => Err(format!("'{other}' is not one of always, everysec, no")),
        }
    }
}

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

/// The environment variable a test sets to make the process abort at a
/// named point of compaction (see `crash_point`).
pub const CRASH_AT_VAR: &str = "NETDB_TEST_CRASH_AT";

/// The environment variable a test sets to make log writes fail once the
/// current log file would pass that many bytes, as a full disk does.
pub const LOG_LIMIT_VAR: &str = "NETDB_TEST_LOG_LIMIT_BYTES";

/// Aborts the process if a test asked to crash at `point`.
fn crash_point(point: &str) {
    if std::env::var(CRASH_AT_VAR).is_ok_and(|v| v == point) {
        crate::log!("test hook: crashing at {point}");
        std::process::abort();
    }
}

fn io_error(context: String) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Disk { context, source }
}

/// Kinds of file in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Snapshot,
    Log,
}

fn file_name(kind: Kind, gen: u64) -> String {
    match kind {
        Kind::Snapshot => format!("snapshot-{gen:020}"),
        Kind::Log => format!("log-{gen:020}"),
    }
}

fn parse_name(name: &str) -> Option<(Kind, u64)> {
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

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(format!(
            "cannot fsync directory {}",
            dir.display()
        )))
}

/// An open data directory: the lock and the log being written.
pub struct DataDir {
    settings: DiskSettings,
    _lock: File,
    gen: u64,
    log: Arc<File>,
    log_len: u64,
    /// Bytes in all logs since the newest snapshot.
    logs_bytes: u64,
    /// Set when the log can no longer be trusted (a failed fsync, or a
    /// failed write that could not be cut back): writes are refused.
    broken: Arc<Mutex<Option<String>>>,
    test_limit: Option<u64>,
    /// Tells the once-a-second flusher about a new log file.
    flusher: Option<Sender<Arc<File>>>,
    compaction: Option<Compaction>,
}

/// A snapshot being written.
struct Compaction {
    cursor: SnapshotCursor,
    parts: Option<Sender<Part>>,
    done: Receiver<Result<()>>,
}

/// What the store thread hands the compaction thread.
enum Part {
    /// Records of the snapshot.
    Records(Vec<u8>),
    /// The snapshot is complete. Without it (the store thread stopped
    /// first) the file is abandoned, never renamed.
    End,
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

impl DataDir {
    /// Opens (creating if needed) and locks the directory, recovers the
    /// store of node `name` from it, and starts a new log.
    pub fn open(
        settings: DiskSettings,
        name: &str,
        new_writer: &str,
        make_store: impl FnOnce(&str) -> Store,
    ) -> Result<(DataDir, Store, Recovered)> {
        let dir = settings.dir.clone();
        fs::create_dir_all(&dir).map_err(io_error(format!(
            "cannot create data directory {}",
            dir.display()
        )))?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error(format!("cannot open {}", lock_path.display())))?;
        if let Err(e) = lock.try_lock() {
            return Err(match e {
                fs::TryLockError::WouldBlock => Error::Config(format!(
                    "data directory {} is in use by another netdb process",
                    dir.display()
                )),
                fs::TryLockError::Error(source) => Error::Disk {
                    context: format!("cannot lock {}", lock_path.display()),
                    source,
                },
            });
        }

        let mut files: Vec<(Kind, u64)> = Vec::new();
        let listing =
            fs::read_dir(&dir).map_err(io_error(format!("cannot list {}", dir.display())))?;
        for entry in listing {
            let entry = entry.map_err(io_error(format!("cannot list {}", dir.display())))?;
            let file = entry.file_name();
            let Some(file) = file.to_str() else { continue };
            if file.ends_with(".tmp") {
                // A snapshot that a crash interrupted: never renamed, so
                // never trusted.
                let _ = fs::remove_file(entry.path());
            } else if let Some(found) = parse_name(file) {
                files.push(found);
            }
        }
        files.sort_by_key(|&(kind, gen)| (gen, kind));
        let snapshot = files
            .iter()
            .filter(|(k, _)| *k == Kind::Snapshot)
            .map(|&(_, g)| g)
            .max();
        let from = snapshot.unwrap_or(0);
        let mut to_load: Vec<(Kind, u64)> =
            snapshot.map(|g| (Kind::Snapshot, g)).into_iter().collect();
        to_load.extend(files.iter().filter(|&&(k, g)| k == Kind::Log && g >= from));

        let mut owner = None;
        let mut contents = Vec::new();
        for &(kind, gen) in &to_load {
            let path = dir.join(file_name(kind, gen));
            let data =
                fs::read(&path).map_err(io_error(format!("cannot read {}", path.display())))?;
            if owner.is_none() {
                let scan = record::scan(&data, settings.max_record);
                owner = scan
                    .records
                    .first()
                    .and_then(|r| writer_of(&data[r.clone()]));
            }
            contents.push((kind, gen, path, data));
        }
        // The node goes on writing under the identity of its newest log
        // only if that log holds every write made under it (a clean stop,
        // or an fsync per write); otherwise under a new identity, so no
        // counter it may have used before the crash is used again.
        let resumable = contents
            .iter()
            .rev()
            .find(|(kind, ..)| *kind == Kind::Log)
            .and_then(|(_, _, _, data)| {
                let scan = record::scan(data, settings.max_record);
                let writer = writer_of(&data[scan.records.first()?.clone()])?;
                is_complete(data, &scan.records).then_some(writer)
            });
        let writer = resumable.unwrap_or_else(|| new_writer.to_owned());
        let owner = owner.unwrap_or_else(|| writer.clone());
        let owner = node_of(&owner);
        if owner != name {
            return Err(Error::Config(format!(
                "data directory {} holds node '{owner}', not '{name}'",
                dir.display()
            )));
        }

        let mut store = make_store(&writer);
        let mut recovered = Recovered {
            snapshot: snapshot.is_some(),
            ..Recovered::default()
        };
        let mut logs_bytes = 0;
        for (kind, _, path, data) in &contents {
            let scan = record::scan(data, settings.max_record);
            let mut replayer = Replayer::new();
            for r in &scan.records {
                replayer
                    .apply(&mut store, &data[r.clone()])
                    .map_err(|e| Error::Corrupt {
                        file: path.clone(),
                        offset: r.start - record::HEADER_LEN,
                        reason: e.to_string(),
                        hint: false,
                    })?;
            }
            if *kind == Kind::Log {
                recovered.log_records += scan.records.len();
            }
            let keep = match scan.end {
                End::Clean => data.len(),
                End::TornTail { offset } => {
                    if *kind == Kind::Snapshot {
                        return Err(Error::Corrupt {
                            file: path.clone(),
                            offset,
                            reason: "incomplete record in a snapshot".into(),
                            hint: false,
                        });
                    }
                    crate::log!(
                        "cut an incomplete record at the end of {} (offset {offset}, {} bytes): a crash while writing",
                        path.display(),
                        data.len() - offset
                    );
                    offset
                }
                End::Corrupt { offset, reason } => {
                    if !settings.truncate_corrupt || *kind == Kind::Snapshot {
                        return Err(Error::Corrupt {
                            file: path.clone(),
                            offset,
                            reason: reason.to_string(),
                            hint: *kind == Kind::Log,
                        });
                    }
                    crate::log!(
                        "truncated {} at offset {offset} ({reason}), dropping {} bytes after it as asked",
                        path.display(),
                        data.len() - offset
                    );
                    offset
                }
            };
            if keep < data.len() {
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_error(format!("cannot open {}", path.display())))?;
                f.set_len(keep as u64)
                    .and_then(|()| f.sync_all())
                    .map_err(io_error(format!("cannot truncate {}", path.display())))?;
            }
            if *kind == Kind::Log {
                logs_bytes += keep as u64;
            }
        }
        recovered.entries = store.counts().live + store.counts().tombstones;

        let gen = files.iter().map(|&(_, g)| g).max().map_or(1, |g| g + 1);
        let log = create_log(&dir, gen)?;
        let test_limit = std::env::var(LOG_LIMIT_VAR)
            .ok()
            .and_then(|v| v.parse().ok());
        let mut disk = DataDir {
            settings,
            _lock: lock,
            gen,
            log: Arc::new(log),
            log_len: 0,
            logs_bytes,
            broken: Arc::new(Mutex::new(None)),
            test_limit,
            flusher: None,
            compaction: None,
        };
        store.start_journal(
            Box::new(JournalWriter::new()),
            disk.settings.fsync == FsyncPolicy::Always,
        );
        let header = store.take_journal();
        disk.append(&header)
            .map_err(|e| Error::Config(format!("cannot start the log: {e}")))?;
        disk.sync()
            .map_err(|e| Error::Config(format!("cannot start the log: {e}")))?;
        store.commit();
        if disk.settings.fsync == FsyncPolicy::EverySec {
            disk.flusher = Some(spawn_flusher(
                Arc::clone(&disk.log),
                Arc::clone(&disk.broken),
            )?);
        }
        Ok((disk, store, recovered))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.settings.dir
    }

    /// The fsync policy.
    pub fn fsync_policy(&self) -> FsyncPolicy {
        self.settings.fsync
    }

    /// Appends records to the log (and fsyncs, with `always`). On error
    /// nothing of `bytes` counts as written: the file is cut back, or, when
    /// that fails too, the log is marked broken and refuses all writes.
    pub fn append(&mut self, bytes: &[u8]) -> std::result::Result<(), String> {
        if let Some(why) = self.broken.lock().clone() {
            return Err(why);
        }
        if bytes.is_empty() {
            return Ok(());
        }
        let over_limit = self
            .test_limit
            .is_some_and(|limit| self.log_len + bytes.len() as u64 > limit);
        let written = if over_limit {
            Err(io::Error::from_raw_os_error(28)) // ENOSPC, as a full disk
        } else {
            (&*self.log).write_all(bytes)
        };
        if let Err(e) = written {
            let why = format!("cannot write the log: {e}");
            if self.log.set_len(self.log_len).is_err() {
                self.mark_broken(format!("{why}, and cannot cut it back"));
            }
            return Err(why);
        }
        self.log_len += bytes.len() as u64;
        self.logs_bytes += bytes.len() as u64;
        if self.settings.fsync == FsyncPolicy::Always {
            self.sync()?;
        }
        Ok(())
    }

    /// Fsyncs the log. A failed fsync leaves the log untrustworthy (the
    /// kernel may have dropped the pages), so the log is marked broken.
    pub fn sync(&mut self) -> std::result::Result<(), String> {
        if let Err(e) = self.log.sync_data() {
            let why = format!("cannot fsync the log: {e}");
            self.mark_broken(why.clone());
            return Err(why);
        }
        Ok(())
    }

    fn mark_broken(&self, why: String) {
        crate::log!("{why}; refusing writes until restarted");
        *self.broken.lock() = Some(format!("{why}; restart the node"));
    }

    /// Whether a snapshot is being written.
    pub fn is_compacting(&self) -> bool {
        self.compaction.is_some()
    }

    /// Starts a compaction when the logs have grown to several times the
    /// live data: the log is rotated now, the snapshot is written part by
    /// part by [`Self::step_compaction`].
    pub fn maybe_compact(&mut self, store: &mut Store) {
        if self.compaction.is_some() || self.broken.lock().is_some() {
            return;
        }
        let threshold = (store.data_bytes() as u64)
            .saturating_mul(self.settings.compact_factor)
            .max(self.settings.compact_min_bytes);
        if self.logs_bytes <= threshold {
            return;
        }
        if let Err(e) = self.start_compaction(store) {
            crate::log!("compaction not started: {e}");
        }
    }

    fn start_compaction(&mut self, store: &mut Store) -> Result<()> {
        // Everything before the rotation must be in the old log for good.
        self.sync().map_err(Error::Config)?;
        let gen = self.gen + 1;
        let log = create_log(&self.settings.dir, gen)?;
        // The new log must start with its header before anything else goes
        // in; if it cannot, the old log goes on (with its own names).
        store.rotate_journal();
        let header = store.take_journal();
        if let Err(source) = (&log).write_all(&header).and_then(|()| log.sync_data()) {
            store.rollback();
            let path = self.settings.dir.join(file_name(Kind::Log, gen));
            let _ = fs::remove_file(&path);
            return Err(Error::Disk {
                context: format!("cannot start {}", path.display()),
                source,
            });
        }
        store.commit();
        self.gen = gen;
        self.log = Arc::new(log);
        self.log_len = header.len() as u64;
        self.logs_bytes = header.len() as u64;
        if let Some(flusher) = &self.flusher {
            let _ = flusher.send(Arc::clone(&self.log));
        }
        let (parts_tx, parts_rx) = bounded(4);
        let (done_tx, done_rx) = bounded(1);
        let dir = self.settings.dir.clone();
        std::thread::Builder::new()
            .name("netdb-compact".into())
            .spawn(move || {
                let _ = done_tx.send(write_snapshot(&dir, gen, &parts_rx));
            })
            .map_err(|source| Error::Io {
                context: "cannot start the compaction thread",
                source,
            })?;
        crate::log!("compacting: writing {}", file_name(Kind::Snapshot, gen));
        self.compaction = Some(Compaction {
            cursor: SnapshotCursor::new(Box::new(JournalWriter::new())),
            parts: Some(parts_tx),
            done: done_rx,
        });
        Ok(())
    }

    /// Encodes the next part of the snapshot being written and hands it to
    /// the compaction thread; called by the store thread between requests,
    /// so writes wait for one part at most (a few milliseconds).
    pub fn step_compaction(&mut self, store: &Store) {
        let Some(c) = self.compaction.as_mut() else {
            return;
        };
        if let Some(parts) = &c.parts {
            let complete = store.snapshot_part(&mut c.cursor, 4096);
            let mut sent = parts.send(Part::Records(c.cursor.take()));
            if complete && sent.is_ok() {
                sent = parts.send(Part::End);
            }
            if complete || sent.is_err() {
                // The thread finishes the file, or has reported why not.
                c.parts = None;
            }
            return;
        }
        match c.done.try_recv() {
            Err(TryRecvError::Empty) => {}
            Ok(Ok(())) => {
                crate::log!("compaction done");
                self.compaction = None;
            }
            Ok(Err(e)) => {
                crate::log!("compaction failed: {e}; the logs are kept");
                self.compaction = None;
            }
            Err(TryRecvError::Disconnected) => self.compaction = None,
        }
    }

    /// Writes and fsyncs what is pending, for a clean stop.
    pub fn close(&mut self) -> std::result::Result<(), String> {
        self.sync()
    }
}

fn create_log(dir: &Path, gen: u64) -> Result<File> {
    let path = dir.join(file_name(Kind::Log, gen));
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(io_error(format!("cannot create {}", path.display())))?;
    sync_dir(dir)?;
    Ok(file)
}

/// The compaction thread: writes the parts to a temporary file, makes it
/// the snapshot atomically, then deletes the files it replaces.
fn write_snapshot(dir: &Path, gen: u64, parts: &Receiver<Part>) -> Result<()> {
    let name = file_name(Kind::Snapshot, gen);
    let tmp = dir.join(format!("{name}.tmp"));
    let result = (|| {
        let mut file =
            File::create(&tmp).map_err(io_error(format!("cannot create {}", tmp.display())))?;
        let mut writer = io::BufWriter::with_capacity(1 << 20, &mut file);
        loop {
            match parts.recv() {
                Ok(Part::Records(records)) => writer
                    .write_all(&records)
                    .map_err(io_error(format!("cannot write {}", tmp.display())))?,
                Ok(Part::End) => break,
                Err(_) => {
                    return Err(Error::Config(format!(
                        "{} abandoned: the node stopped first",
                        tmp.display()
                    )))
                }
            }
        }
        writer
            .flush()
            .map_err(io_error(format!("cannot write {}", tmp.display())))?;
        drop(writer);
        file.sync_all()
            .map_err(io_error(format!("cannot fsync {}", tmp.display())))?;
        crash_point("snapshot-written");
        fs::rename(&tmp, dir.join(&name))
            .map_err(io_error(format!("cannot rename {}", tmp.display())))?;
        crash_point("snapshot-renamed");
        sync_dir(dir)?;
        crash_point("snapshot-synced");
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // The new snapshot and the logs from `gen` on hold everything: the
    // older files can go.
    let listing = fs::read_dir(dir).map_err(io_error(format!("cannot list {}", dir.display())))?;
    for entry in listing.flatten() {
        let file = entry.file_name();
        if let Some((_, g)) = file.to_str().and_then(parse_name) {
            if g < gen {
                let _ = fs::remove_file(entry.path());
                crash_point("old-file-deleted");
            }
        }
    }
    sync_dir(dir)
}

/// The `everysec` flusher: fsyncs the current log once a second.
fn spawn_flusher(log: Arc<File>, broken: Arc<Mutex<Option<String>>>) -> Result<Sender<Arc<File>>> {
    let (tx, rx) = bounded::<Arc<File>>(4);
    std::thread::Builder::new()
        .name("netdb-fsync".into())
        .spawn(move || {
            let mut log = log;
            loop {
                match rx.recv_timeout(Duration::from_secs(1)) {
                    Ok(newer) => log = newer,
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
                }
                if let Err(e) = log.sync_data() {
                    let why = format!("cannot fsync the log: {e}");
                    crate::log!("{why}; refusing writes until restarted");
                    *broken.lock() = Some(format!("{why}; restart the node"));
                    return;
                }
            }
        })
        .map_err(|source| Error::Io {
            context: "cannot start the fsync thread",
            source,
        })?;
    Ok(tx)
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
