//! The log being written: appending the store thread's records, the fsync
//! policy, and the `everysec` flusher thread.
//!
//! It owns one open log file at a time and the knowledge of whether it can
//! still be trusted. It never reads a log back (that is
//! [`crate::durability::recovery`]), never decides when to start a new one
//! (that is [`crate::durability::compaction`]), and never touches
//! snapshots.
//!
//! Fail point (with the `failpoints` feature, set through `FAILPOINTS`):
//! `log::append` makes appends fail with `ENOSPC`, as a full disk does:
//! `return` fails every one, `return(N)` those that would take the log
//! file past `N` bytes.

use crate::durability::datadir::{file_name, sync_dir, Kind};
use crate::durability::error::{FileError, FileOp, LogError};
use crossbeam_channel::{bounded, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
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

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::EverySec => "everysec",
            FsyncPolicy::No => "no",
        })
    }
}

/// A word that names no [`FsyncPolicy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPolicy(pub String);

impl fmt::Display for UnknownPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' is not one of always, everysec, no", self.0)
    }
}

impl std::error::Error for UnknownPolicy {}

impl std::str::FromStr for FsyncPolicy {
    type Err = UnknownPolicy;
    fn from_str(s: &str) -> Result<FsyncPolicy, UnknownPolicy> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "everysec" => Ok(FsyncPolicy::EverySec),
            "no" => Ok(FsyncPolicy::No),
            other => Err(UnknownPolicy(other.to_owned())),
        }
    }
}

/// Set when the log can no longer be trusted (a failed fsync, or a failed
/// write that could not be cut back); shared with the flusher thread.
type Broken = Arc<Mutex<Option<LogError>>>;

/// How many times the log was written and fsynced since the node
/// started (`INFO`'s `netdb_log_writes` and `netdb_log_fsyncs`): shows
/// that a group of writes from many clients costs one write and, with
/// `--fsync always`, one fsync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogCounts {
    /// Appends of a group's records.
    pub writes: u64,
    /// Fsyncs of the log file (the `everysec` flusher's included).
    pub fsyncs: u64,
}

/// The counters behind [`LogCounts`], shared with the flusher thread.
#[derive(Debug, Default)]
struct Counters {
    writes: AtomicU64,
    fsyncs: AtomicU64,
}

/// The log file being written.
pub(crate) struct Log {
    counters: Arc<Counters>,
    gen: u64,
    file: Arc<File>,
    /// Bytes in this file.
    len: u64,
    /// Bytes in all logs since the newest snapshot.
    since_snapshot: u64,
    policy: FsyncPolicy,
    broken: Broken,
    /// Tells the once-a-second flusher about a new log file.
    flusher: Option<Sender<Arc<File>>>,
}

impl Log {
    /// Creates the empty log `gen` in `dir`; the logs before it hold
    /// `since_snapshot` bytes.
    pub(crate) fn create(
        dir: &Path,
        gen: u64,
        policy: FsyncPolicy,
        since_snapshot: u64,
    ) -> Result<Log, FileError> {
        Ok(Log {
            gen,
            file: Arc::new(create_file(dir, gen)?),
            len: 0,
            since_snapshot,
            policy,
            broken: Arc::new(Mutex::new(None)),
            flusher: None,
            counters: Arc::default(),
        })
    }

    /// How many times the log was written and fsynced.
    pub(crate) fn counts(&self) -> LogCounts {
        LogCounts {
            writes: self.counters.writes.load(Ordering::Relaxed),
            fsyncs: self.counters.fsyncs.load(Ordering::Relaxed),
        }
    }

    /// The log's generation (its file name's number).
    pub(crate) fn gen(&self) -> u64 {
        self.gen
    }

    /// Bytes in all logs since the newest snapshot.
    pub(crate) fn since_snapshot(&self) -> u64 {
        self.since_snapshot
    }

    /// The fsync policy.
    pub(crate) fn policy(&self) -> FsyncPolicy {
        self.policy
    }

    /// Whether the log refuses writes until the node restarts.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken.lock().is_some()
    }

    /// Starts the flusher thread if the policy is `everysec`.
    pub(crate) fn start_flusher(&mut self) -> io::Result<()> {
        if self.policy == FsyncPolicy::EverySec {
            self.flusher = Some(spawn_flusher(
                Arc::clone(&self.file),
                Arc::clone(&self.broken),
                Arc::clone(&self.counters),
            )?);
        }
        Ok(())
    }

    /// Appends records (and fsyncs, with `always`). On error nothing of
    /// `bytes` counts as written: the file is cut back, or, when that fails
    /// too, the log is marked broken and refuses all writes.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<(), LogError> {
        if let Some(broken) = self.broken.lock().clone() {
            return Err(broken);
        }
        if bytes.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.write(bytes) {
            let source = Arc::new(e);
            if self.file.set_len(self.len).is_err() {
                self.mark_broken(LogError::WriteNotCutBack {
                    source: Arc::clone(&source),
                });
            }
            return Err(LogError::Write { source });
        }
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        self.len += bytes.len() as u64;
        self.since_snapshot += bytes.len() as u64;
        if self.policy == FsyncPolicy::Always {
            self.sync()?;
        }
        Ok(())
    }

    /// Writes `bytes` at the end of the file.
    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        fail::fail_point!("log::append", |full_at: Option<String>| {
            let fits = full_at
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| self.len + bytes.len() as u64 <= n);
            if fits {
                (&*self.file).write_all(bytes)
            } else {
                Err(io::Error::from_raw_os_error(28)) // ENOSPC
            }
        });
        (&*self.file).write_all(bytes)
    }

    /// Fsyncs the log. A failed fsync leaves the log untrustworthy (the
    /// kernel may have dropped the pages), so the log is marked broken.
    pub(crate) fn sync(&mut self) -> Result<(), LogError> {
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.file.sync_data() {
            let failure = LogError::Fsync {
                source: Arc::new(e),
            };
            self.mark_broken(failure.clone());
            return Err(failure);
        }
        Ok(())
    }

    fn mark_broken(&self, cause: LogError) {
        mark_broken(&self.broken, cause);
    }

    /// Goes on in the next log file, `gen`, whose first `len` bytes (its
    /// header) are written and fsynced; the logs before it are covered by
    /// a snapshot.
    pub(crate) fn rotate(&mut self, gen: u64, file: File, len: u64) {
        self.gen = gen;
        self.file = Arc::new(file);
        self.len = len;
        self.since_snapshot = len;
        if let Some(flusher) = &self.flusher {
            let _ = flusher.send(Arc::clone(&self.file));
        }
    }
}

fn mark_broken(broken: &Broken, cause: LogError) {
    ::log::error!("{cause}; refusing writes until restarted");
    *broken.lock() = Some(LogError::broken(cause));
}

/// Creates the empty log file `gen` in `dir`, and makes its name durable.
pub(crate) fn create_file(dir: &Path, gen: u64) -> Result<File, FileError> {
    let path = dir.join(file_name(Kind::Log, gen));
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(FileError::at(FileOp::Create, path))?;
    sync_dir(dir)?;
    Ok(file)
}

/// The `everysec` flusher: fsyncs the current log once a second.
fn spawn_flusher(
    log: Arc<File>,
    broken: Broken,
    counters: Arc<Counters>,
) -> io::Result<Sender<Arc<File>>> {
    let (tx, rx) = bounded::<Arc<File>>(4);
    std::thread::Builder::new()
        .name("netdb-fsync".into())
        .spawn(move || {
            let mut log = log;
            loop {
                match rx.recv_timeout(Duration::from_secs(1)) {
                    Ok(newer) => log = newer,
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                counters.fsyncs.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = log.sync_data() {
                    let source = Arc::new(e);
                    mark_broken(&broken, LogError::Fsync { source });
                    return;
                }
            }
        })?;
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_policies_parse_as_they_print() {
        for policy in [FsyncPolicy::Always, FsyncPolicy::EverySec, FsyncPolicy::No] {
            assert_eq!(policy.to_string().parse(), Ok(policy));
        }
        assert_eq!(
            "sometimes"
                .parse::<FsyncPolicy>()
                .map_err(|e| e.to_string()),
            Err("'sometimes' is not one of always, everysec, no".to_string())
        );
    }

    #[test]
    fn appends_count_their_bytes_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut log = Log::create(dir.path(), 7, FsyncPolicy::Always, 100).expect("create");
        log.append(b"abc").expect("append");
        log.append(b"").expect("nothing to append");
        log.append(b"de").expect("append");
        assert_eq!((log.len, log.since_snapshot), (5, 105));
        let written = std::fs::read(dir.path().join(file_name(Kind::Log, 7))).expect("read");
        assert_eq!(written, b"abcde");
        assert!(!log.is_broken());
    }
}
