//! What reaches the disk: checksummed record framing, the log's own entry
//! types, the data directory (lock, logs, fsync policy), compaction and
//! recovery.
//!
//! | file | holds |
//! | --- | --- |
//! | [`record`] | the record framing, and reading records back over `impl Read` (pure) |
//! | [`journal`] | the files' own entry types; encoding changes, replaying them into a store (pure) |
//! | [`datadir`] | the data directory: lock, file names, [`DataDir`] tying the rest together |
//! | [`log`] | the log being written: appends, fsync policy, the `everysec` flusher |
//! | [`compaction`] | log rotation and snapshots, written by their own thread |
//! | [`recovery`] | startup: replaying the newest snapshot and the logs after it, streaming |
//! | [`error`] | why opening, logging or compacting failed |
//!
//! The on-disk format is defined here and only here: it never reuses the
//! peer protocol's types, so a change to the wire cannot silently change
//! the files. Nothing here talks to peers or clients.
//!
//! Fault injection: with the `failpoints` feature, the fail points named in
//! [`log`] and [`compaction`] are compiled in and set through the
//! `FAILPOINTS` environment variable (`name=action;...`, the `fail`
//! crate's syntax), which a node reads when it starts (the store thread's
//! `store::drop_merged`, in [`crate::engine::service`], is set the same
//! way).
//! Without the feature they compile to nothing.

pub mod compaction;
pub mod datadir;
pub mod error;
pub mod journal;
pub mod log;
pub mod record;
pub mod recovery;

pub use compaction::{CompactionStatus, LastCompaction};
pub use datadir::{DataDir, DiskSettings};
pub use log::{FsyncPolicy, LogCounts};
pub use recovery::Recovered;
