//! Errors that stop a node from starting or running. Each prints as one
//! line that says what went wrong and with what (file, line, address).

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why the node cannot start or go on.
#[derive(Debug)]
pub enum Error {
    /// A command-line value is wrong.
    Config(String),
    /// The listen address could not be resolved or parsed.
    Address {
        /// As given.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The listen address could not be bound.
    Bind {
        /// As given.
        addr: String,
        /// The OS error.
        source: io::Error,
    },
    /// The peers file could not be read.
    PeersFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A line of the peers file is wrong.
    PeerLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A thread could not be started, or stdin/stdout failed.
    Io {
        /// What was being done.
        context: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// A file of the data directory could not be read or written.
    Disk {
        /// What was being done, naming the file.
        context: String,
        /// The OS error.
        source: io::Error,
    },
    /// A file of the data directory holds a damaged record.
    Corrupt {
        /// The file.
        file: PathBuf,
        /// Byte offset of the damaged record.
        offset: usize,
        /// What is wrong.
        reason: String,
        /// Whether `--truncate-corrupt-log` would let the node start.
        hint: bool,
    },
    /// The store thread is gone (the node is shutting down).
    Stopped,
    /// `--connect`: the node could not be reached, or the connection to
    /// it failed.
    Connect {
        /// The node, as given.
        addr: String,
        /// What went wrong.
        reason: String,
    },
}

impl Error {
    /// Wraps an I/O error with what was being done, for `map_err`.
    pub fn io(context: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { context, source }
    }
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(msg) => write!(f, "{msg}"),
            Error::Address { addr, reason } => write!(f, "bad address '{addr}': {reason}"),
            Error::Bind { addr, source } if source.kind() == io::ErrorKind::AddrInUse => {
                write!(f, "cannot listen on {addr}: the port is in use")
            }
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::PeersFile { path, source } => {
                write!(f, "cannot read peers file {}: {source}", path.display())
            }
            Error::PeerLine { path, line, reason } => {
                write!(f, "peers file {}, line {line}: {reason}", path.display())
            }
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Disk { context, source } => write!(f, "{context}: {source}"),
            Error::Corrupt {
                file,
                offset,
                reason,
                hint,
            } => {
                write!(
                    f,
                    "{} is damaged at offset {offset}: {reason}",
                    file.display()
                )?;
                if *hint {
                    write!(
                        f,
                        " (start with --truncate-corrupt-log to cut the log there, losing what follows)"
                    )?;
                }
                Ok(())
            }
            Error::Stopped => write!(f, "the node is shutting down"),
            Error::Connect { addr, reason } => write!(f, "node {addr}: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Bind { source, .. }
            | Error::PeersFile { source, .. }
            | Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
