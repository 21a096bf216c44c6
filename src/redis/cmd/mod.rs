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
//! | [`netdb`] | `NETDB.STATUS`: the status for machines, and its decoding; `NETDB.PROXY` (a member's forwarding connection) and `NETDB.KEYS` (the cluster's keys) |
//! | [`debug`] | `DEBUG DIGEST`, `DEBUG DIGEST-VALUE`, `DEBUG HELP` |
//! | [`cluster`] | `CLUSTER MYID`, `CLUSTER NODES`, `CLUSTER INFO`, `CLUSTER SLOTS`, `CLUSTER SHARDS`, `CLUSTER MEET`, `CLUSTER FORGET`, `CLUSTER HELP`, `CLUSTER KEYSLOT`, `CLUSTER COUNTKEYSINSLOT`, `CLUSTER GETKEYSINSLOT`, `READONLY`, `READWRITE`, `ASKING`, `NETDB.LEAVE` |
//!
//! Handlers never touch the map, the disk or a socket: a data command
//! appends store ops, a command about the node asks the shell for its
//! status ([`crate::redis::command::Action::Node`]).

use crate::redis::command::Command;
use std::collections::HashMap;
use std::sync::OnceLock;

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

/// The top-level command named `name`, case-insensitively: looked up in
/// an index of the table, made at first use, since this is on every
/// request's path (a walk of the table cost about 2.5% of the node's CPU
/// under pipelined `INCR`s). As the walk did, the first entry of a name
/// wins.
pub fn find(name: &[u8]) -> Option<&'static Command> {
    static INDEX: OnceLock<HashMap<Vec<u8>, &'static Command>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut index = HashMap::new();
        for command in all() {
            let key = command.short_name().to_ascii_lowercase().into_bytes();
            index.entry(key).or_insert(command);
        }
        index
    });
    let mut lower = [0u8; LONGEST_NAME];
    let lower = lower.get_mut(..name.len())?;
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    index.get(&lower[..]).copied()
}

/// Longer than any command's name: a longer one is no command.
const LONGEST_NAME: usize = 64;

/// How many top-level commands there are (`COMMAND COUNT`).
pub fn count() -> usize {
    GROUPS.iter().map(|group| group.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::command::find_in;

    #[test]
    fn the_index_finds_what_a_walk_of_the_table_finds() {
        for command in all() {
            let name = command.name.as_bytes();
            let walked = GROUPS.iter().find_map(|group| find_in(group, name));
            for asked in [name.to_vec(), name.to_ascii_uppercase()] {
                let found = find(&asked).map(std::ptr::from_ref);
                assert_eq!(found, walked.map(std::ptr::from_ref), "{}", command.name);
            }
            assert!(name.len() <= LONGEST_NAME, "{}", command.name);
        }
        assert!(find(b"nope").is_none());
        assert!(find(b"").is_none());
        assert!(find(&[b'g'; LONGEST_NAME + 1]).is_none());
        assert!(
            find(b"config|get").is_none(),
            "subcommands are not top-level"
        );
        assert!(find(b"GeT").is_some_and(|c| c.name == "get"));
    }
}
