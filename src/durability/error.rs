//! Why a data directory could not be opened, written or compacted: one
//! error enum per kind of operation, since their callers handle them
//! apart (a failed open stops the node, a failed log write refuses one
//! group of writes, a failed compaction keeps the logs).
//!
//! Each prints as one line naming the file; [`std::error::Error::source`]
//! gives the OS error or the damage underneath.

use crate::durability::journal::ReplayError;
use crate::durability::record::CorruptReason;
use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// What was being done to a file when the OS refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOp {
    /// Creating the data directory.
    CreateDir,
    /// Listing the data directory.
    List,
    /// Opening an existing file.
    Open,
    /// Creating a file.
    Create,
    /// Taking the directory's lock.
    Lock,
    /// Reading a file.
    Read,
    /// Writing a file.
    Write,
    /// Fsyncing a file.
    Fsync,
    /// Fsyncing the directory.
    FsyncDir,
    /// Cutting a file at a damaged record.
    Truncate,
    /// Renaming a snapshot into place.
    Rename,
    /// Writing a new log's first records.
    StartLog,
}

impl fmt::Display for FileOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileOp::CreateDir => "cannot create data directory",
            FileOp::List => "cannot list",
            FileOp::Open => "cannot open",
            FileOp::Create => "cannot create",
            FileOp::Lock => "cannot lock",
            FileOp::Read => "cannot read",
            FileOp::Write => "cannot write",
            FileOp::Fsync => "cannot fsync",
            FileOp::FsyncDir => "cannot fsync directory",
            FileOp::Truncate => "cannot truncate",
            FileOp::Rename => "cannot rename",
            FileOp::StartLog => "cannot start",
        })
    }
}

/// A file of the data directory could not be read or written.
#[derive(Debug)]
pub struct FileError {
    /// What was being done.
    pub op: FileOp,
    /// The file (or the directory).
    pub path: PathBuf,
    /// The OS error.
    pub source: io::Error,
}

impl FileError {
    /// A `map_err` adapter: the OS error `source`, met doing `op` to `path`.
    pub fn at(op: FileOp, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> FileError {
        let path = path.into();
        move |source| FileError { op, path, source }
    }

    /// What was being done, naming the file, without the OS error.
    pub fn context(&self) -> String {
        format!("{} {}", self.op, self.path.display())
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.op, self.path.display(), self.source)
    }
}

impl StdError for FileError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.source)
    }
}

/// Why the log refused an append, a sync or a close. Cheap to clone, so
/// a broken log can give every later write the error that broke it.
#[derive(Debug, Clone)]
pub enum LogError {
    /// The write failed; the log was cut back, so nothing of it counts.
    Write {
        /// The OS error.
        source: Arc<io::Error>,
    },
    /// The write failed and the log could not be cut back to before it.
    WriteNotCutBack {
        /// The OS error of the write.
        source: Arc<io::Error>,
    },
    /// An fsync failed: the kernel may have dropped the pages.
    Fsync {
        /// The OS error.
        source: Arc<io::Error>,
    },
    /// An earlier failure left the log untrustworthy: it refuses writes
    /// until the node restarts.
    Broken {
        /// The failure.
        cause: Box<LogError>,
    },
}

impl LogError {
    /// The error that broke the log, as every later write reports it.
    pub fn broken(cause: LogError) -> LogError {
        match cause {
            LogError::Broken { .. } => cause,
            cause => LogError::Broken {
                cause: Box::new(cause),
            },
        }
    }
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Write { source } => write!(f, "cannot write the log: {source}"),
            LogError::WriteNotCutBack { source } => {
                write!(f, "cannot write the log: {source}, and cannot cut it back")
            }
            LogError::Fsync { source } => write!(f, "cannot fsync the log: {source}"),
            LogError::Broken { cause } => write!(f, "{cause}; restart the node"),
        }
    }
}

impl StdError for LogError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            LogError::Write { source }
            | LogError::WriteNotCutBack { source }
            | LogError::Fsync { source } => Some(&**source),
            LogError::Broken { cause } => Some(&**cause),
        }
    }
}

/// What is wrong with a file that recovery cannot read past.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// A record is damaged (with more data after it).
    Record(CorruptReason),
    /// A record's checksum is right but it cannot be replayed.
    Replay(ReplayError),
    /// A snapshot ends in an unfinished record: snapshots are renamed into
    /// place only once complete, so this is damage, not a crash.
    TornSnapshot,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::Record(reason) => write!(f, "{reason}"),
            Damage::Replay(e) => write!(f, "{e}"),
            Damage::TornSnapshot => write!(f, "incomplete record in a snapshot"),
        }
    }
}

impl StdError for Damage {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Damage::Record(reason) => Some(reason),
            Damage::Replay(e) => Some(e),
            Damage::TornSnapshot => None,
        }
    }
}

/// Why a data directory could not be opened and recovered.
#[derive(Debug)]
pub enum OpenError {
    /// A file could not be read or written.
    File(FileError),
    /// Another process holds the directory's lock.
    InUse {
        /// The directory.
        dir: PathBuf,
    },
    /// The directory holds another node's data.
    OtherNode {
        /// The directory.
        dir: PathBuf,
        /// The node its files belong to.
        found: String,
        /// The node being started.
        expected: String,
    },
    /// A file holds a record recovery cannot read past.
    Corrupt {
        /// The file.
        file: PathBuf,
        /// Byte offset of the damaged record.
        offset: usize,
        /// What is wrong.
        damage: Damage,
        /// Whether `--truncate-corrupt-log` would let the node start.
        truncatable: bool,
    },
    /// The new log could not be started.
    StartLog(LogError),
    /// The fsync thread could not be started.
    Thread(io::Error),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::File(e) => write!(f, "{e}"),
            OpenError::InUse { dir } => write!(
                f,
                "data directory {} is in use by another netdb process",
                dir.display()
            ),
            OpenError::OtherNode {
                dir,
                found,
                expected,
            } => write!(
                f,
                "data directory {} holds node '{found}', not '{expected}'",
                dir.display()
            ),
            OpenError::Corrupt {
                file,
                offset,
                damage,
                truncatable,
            } => {
                write!(
                    f,
                    "{} is damaged at offset {offset}: {damage}",
                    file.display()
                )?;
                if *truncatable {
                    write!(
                        f,
                        " (start with --truncate-corrupt-log to cut the log there, losing what follows)"
                    )?;
                }
                Ok(())
            }
            OpenError::StartLog(e) => write!(f, "cannot start the log: {e}"),
            OpenError::Thread(e) => write!(f, "cannot start the fsync thread: {e}"),
        }
    }
}

impl StdError for OpenError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            OpenError::File(e) => Some(e),
            OpenError::Corrupt { damage, .. } => Some(damage),
            OpenError::StartLog(e) => Some(e),
            OpenError::Thread(e) => Some(e),
            OpenError::InUse { .. } | OpenError::OtherNode { .. } => None,
        }
    }
}

impl From<FileError> for OpenError {
    fn from(e: FileError) -> OpenError {
        OpenError::File(e)
    }
}

/// The node's startup error for a data directory that cannot be opened:
/// the same words, in the crate's [`crate::error::Error`].
impl From<OpenError> for crate::error::Error {
    fn from(e: OpenError) -> crate::error::Error {
        use crate::error::Error;
        match e {
            OpenError::File(e) => Error::Disk {
                context: e.context(),
                source: e.source,
            },
            OpenError::Corrupt {
                file,
                offset,
                damage,
                truncatable,
            } => Error::Corrupt {
                file,
                offset,
                reason: damage.to_string(),
                hint: truncatable,
            },
            OpenError::Thread(source) => Error::Io {
                context: "cannot start the fsync thread",
                source,
            },
            e
            @ (OpenError::InUse { .. } | OpenError::OtherNode { .. } | OpenError::StartLog(_)) => {
                Error::Config(e.to_string())
            }
        }
    }
}

/// Why a compaction did not finish; the logs it would have replaced are
/// kept, so nothing is lost.
#[derive(Debug)]
pub enum CompactionError {
    /// A file could not be written.
    File(FileError),
    /// The old log could not be fsynced before the rotation.
    Log(LogError),
    /// The node stopped before the snapshot was complete.
    Abandoned {
        /// The unfinished snapshot (deleted).
        tmp: PathBuf,
    },
    /// The compaction thread could not be started.
    Thread(io::Error),
}

impl fmt::Display for CompactionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompactionError::File(e) => write!(f, "{e}"),
            CompactionError::Log(e) => write!(f, "{e}"),
            CompactionError::Abandoned { tmp } => {
                write!(f, "{} abandoned: the node stopped first", tmp.display())
            }
            CompactionError::Thread(e) => write!(f, "cannot start the compaction thread: {e}"),
        }
    }
}

impl StdError for CompactionError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            CompactionError::File(e) => Some(e),
            CompactionError::Log(e) => Some(e),
            CompactionError::Thread(e) => Some(e),
            CompactionError::Abandoned { .. } => None,
        }
    }
}

impl From<FileError> for CompactionError {
    fn from(e: FileError) -> CompactionError {
        CompactionError::File(e)
    }
}

impl From<LogError> for CompactionError {
    fn from(e: LogError) -> CompactionError {
        CompactionError::Log(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enospc() -> Arc<io::Error> {
        Arc::new(io::Error::from_raw_os_error(28))
    }

    #[test]
    fn a_broken_log_says_why_and_keeps_the_cause_as_its_source() {
        let cause = LogError::Fsync { source: enospc() };
        let broken = LogError::broken(cause.clone());
        assert!(broken.to_string().starts_with("cannot fsync the log: "));
        assert!(broken.to_string().ends_with("; restart the node"));
        let source = broken.source().expect("the cause");
        assert_eq!(source.to_string(), cause.to_string());
        assert!(source.source().is_some(), "the OS error under the cause");
        // Breaking a broken log does not say it twice.
        assert_eq!(
            LogError::broken(broken.clone()).to_string(),
            broken.to_string()
        );
    }

    #[test]
    fn startup_errors_keep_their_words() {
        let file = FileError {
            op: FileOp::Read,
            path: "/d/log-1".into(),
            source: io::Error::from_raw_os_error(5),
        };
        assert_eq!(file.context(), "cannot read /d/log-1");
        let corrupt = OpenError::Corrupt {
            file: "/d/log-1".into(),
            offset: 12,
            damage: Damage::Record(CorruptReason::BadChecksum),
            truncatable: true,
        };
        let words = corrupt.to_string();
        assert_eq!(
            crate::error::Error::from(corrupt).to_string(),
            words,
            "the node's error reads as the data directory's"
        );
        assert!(words.starts_with("/d/log-1 is damaged at offset 12: checksum mismatch (start with --truncate-corrupt-log"));
    }
}
