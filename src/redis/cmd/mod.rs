//! The command table: every command netdb answers, one file per group.
//!
//! Each file holds its commands' entries ([`Command`]: name, arity,
//! flags, key positions, ACL categories, docs, handler) and their
//! handlers; a data command's handler returns the work that runs on the
//! store thread and builds its reply
//! ([`Action::Store`](crate::redis::command::Action::Store)). Adding a
//! command to a group is adding its entry and handler to that group's file; a new
//! group is one more line in [`GROUPS`].
//!
//! | file | commands |
//! | --- | --- |
//! | [`connection`] | `PING`, `ECHO`, `SELECT`, `QUIT`, `AUTH`, `HELLO`, `CLIENT ...` |
//! | [`strings`] | `GET`, `SET`, `SETNX`, `SETEX`, `PSETEX`, `GETSET`, `GETDEL`, `GETEX`, `MGET`, `MSET`, `MSETNX`, `APPEND`, `STRLEN`, `GETRANGE`, `SETRANGE`, `INCR`, `DECR`, `INCRBY`, `DECRBY`, `INCRBYFLOAT` |
//! | [`keys`] | `DEL`, `UNLINK`, `EXISTS`, `TOUCH`, `TYPE`, `KEYS`, `SCAN`, `RANDOMKEY`, `DBSIZE`, `RENAME`, `RENAMENX`, `COPY`, `MOVE`, `SWAPDB`, `FLUSHDB`, `FLUSHALL`, `MEMORY USAGE` |
//! | [`expiry`] | `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT`, `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME`, `PERSIST` |
//! | [`transactions`] | `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH` |
//! | [`server`] | `CONFIG GET`, `CONFIG RESETSTAT`, `CONFIG HELP`, `TIME`, `SLOWLOG ...`, `WAIT` |
//! | [`info`] | `INFO`, rendered from the node's [`crate::status::Status`] |
//! | [`introspection`] | `COMMAND ...` (`GETKEYS` from the key positions), generated from the table |
//! | [`netdb`] | `NETDB.STATUS`: the status for machines, and its decoding |
//! | [`debug`] | `DEBUG DIGEST`, `DEBUG DIGEST-VALUE`, `DEBUG HELP` |
//! | [`cluster`] | `CLUSTER MYID`, `CLUSTER NODES`, `CLUSTER INFO`, `CLUSTER MEET`, `CLUSTER FORGET`, `CLUSTER HELP`, `NETDB.LEAVE` |
//!
//! Handlers never touch the map, the disk or a socket: a data command
//! appends store ops, a command about the node asks the shell for its
//! status ([`crate::redis::command::Action::Node`]).

use crate::redis::command::{find_in, Command};

pub mod cluster;
pub mod connection;
pub mod debug;
pub mod expiry;
pub mod info;
pub mod introspection;
pub mod keys;
pub mod netdb;
pub mod server;
pub mod strings;
#[cfg(test)]
pub(crate) mod testing;
pub mod transactions;

/// Every command netdb answers, group by group.
pub static GROUPS: &[&[Command]] = &[
    connection::COMMANDS,
    strings::COMMANDS,
    keys::COMMANDS,
    expiry::COMMANDS,
    transactions::COMMANDS,
    server::COMMANDS,
    info::COMMANDS,
    introspection::COMMANDS,
    netdb::COMMANDS,
    debug::COMMANDS,
    cluster::COMMANDS,
];

/// Every top-level command, in table order.
pub fn all() -> impl Iterator<Item = &'static Command> {
    GROUPS.iter().flat_map(|group| group.iter())
}

/// The top-level command named `name`, case-insensitively.
pub fn find(name: &[u8]) -> Option<&'static Command> {
    GROUPS.iter().find_map(|group| find_in(group, name))
}

/// How many top-level commands there are (`COMMAND COUNT`).
pub fn count() -> usize {
    GROUPS.iter().map(|group| group.len()).sum()
}
