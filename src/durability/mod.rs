//! What reaches the disk: checksummed record framing, the log's own entry
//! types, the data directory (lock, logs, fsync policy), compaction and
//! recovery.
//!
//! The on-disk format is defined here and only here: it never reuses the
//! peer protocol's types, so a change to the wire cannot silently change
//! the files. Nothing here talks to peers or clients.

pub mod disk;
pub mod journal;
pub mod record;
