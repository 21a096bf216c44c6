//! The store thread: the one owner of the [`Store`](crate::store::Store),
//! the vocabulary in which every other thread talks to it, and the group
//! commit that logs each group of changes before it is acknowledged.
//!
//! Nothing outside this folder holds a `Store` while the node runs. It may
//! not touch sockets or parse any protocol: front ends turn their commands
//! into requests first.

pub mod database;
pub mod request;
pub mod service;

pub use database::Database;
pub use request::{Command, Db, GroupDone, Part, Refusable, StoreFacts, StoreHandle};
