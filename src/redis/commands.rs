//! The Redis commands a client may send, from a decoded request to its
//! reply.
//!
//! [`plan`] looks at one request. A command that needs no data (`PING`,
//! `ECHO`, `SELECT`, `CLIENT`, `CONFIG GET`, `COMMAND`, `HELLO`, an error)
//! is answered at once ([`Action::Reply`]). A data command appends the
//! store [`Op`]s it needs to the batch being gathered and returns a
//! [`Finish`], which later turns the answers to those ops into the reply
//! ([`Finish::write_reply`]). The connection thread (see
//! [`crate::redis::client`]) sends the ops of a whole batch of pipelined requests
//! to the store thread in one trip, then writes the replies in request
//! order. Writes are `Op::Put` and `Op::Delete`, so a write made here is
//! clocked, replicated and logged like any other.
//!
//! The replies, and the error texts where Redis has the command, are
//! Redis's own, so client libraries and tools see what they expect.
//! Options netdb does not have (`SET ... EX`, other databases) are refused
//! with an error that says so, never ignored.
//!
//! Pure: no sockets, threads or clock. What needs the running node
//! (`INFO`) comes back as [`Action::Info`], and [`info`] builds the reply
//! from an [`InfoData`] the shell gathers.

use crate::console::line::{NodeStatus, PeerReport, PeerState};
use crate::engine::service::{Op, OpReply};
use crate::redis::glob::glob_match;
use crate::redis::resp::{Reply, Request};
use std::fmt::Write as _;

/// The Redis version netdb answers as (in `INFO` and `HELLO`): the
/// version whose commands and replies it follows.
pub const REDIS_VERSION: &str = "7.0.0";

/// What one connection remembers between its commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Unique among this node's connections (`CLIENT ID`).
    pub id: u64,
    /// Set by `CLIENT SETNAME` or `HELLO ... SETNAME`.
    pub name: Option<Vec<u8>>,
    /// The client's address.
    pub addr: String,
    /// The node's address on this connection.
    pub laddr: String,
}

impl Session {
    /// A session with no name yet.
    pub fn new(id: u64, addr: String, laddr: String) -> Session {
        Session {
            id,
            name: None,
            addr,
            laddr,
        }
    }
}

/// Settings that some commands report (`CONFIG GET`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Most client connections at once.
    pub max_clients: usize,
    /// Seconds a client may stay silent; 0 for no limit.
    pub idle_timeout_secs: u64,
    /// Largest argument accepted, in bytes.
    pub max_bulk_len: usize,
    /// Largest request accepted, in bytes.
    pub max_request_len: usize,
}

/// What to do with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this reply; the store is not needed.
    Reply(Reply),
    /// The request's ops were appended to the batch; once they have run,
    /// build its reply with this.
    Store(Finish),
    /// Send this reply, then close the connection (`QUIT`).
    Close(Reply),
    /// `INFO` with these sections (lowercase): the shell gathers an
    /// [`InfoData`] and calls [`info`].
    Info(Vec<String>),
}

/// How to build a reply from the answers to the ops a request appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// `SET`: one put, `+OK`.
    Ok,
    /// `GET`: one get, a bulk or a null.
    Value,
    /// `MGET`: this many gets, an array of bulks and nulls.
    Values(usize),
    /// `DEL`: this many (exists, delete) pairs, the number that existed.
    Deleted(usize),
    /// `EXISTS`: this many exists, the number that did.
    Existing(usize),
    /// `MSET`: this many puts, `+OK` (or the first refusal).
    AllOk(usize),
    /// `KEYS`: one keys op, an array.
    Keys,
    /// `SCAN`: one scan step, `[cursor, [keys]]`; with `keep` false (a
    /// `TYPE` other than string) the keys are dropped.
    Scan {
        /// Whether to return the keys found.
        keep: bool,
    },
    /// `DBSIZE`: one count, an integer.
    Size,
}

/// Reads that found a value and reads that did not, for `INFO`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Gets that found a value.
    pub hits: u64,
    /// Gets that found none.
    pub misses: u64,
}

impl Finish {
    /// Takes this request's answers from `replies` and appends its reply.
    pub fn write_reply(
        self,
        replies: &mut impl Iterator<Item = OpReply>,
        out: &mut Vec<u8>,
        tally: &mut Tally,
    ) {
        self.reply(replies, tally).write_to(out);
    }

    fn reply(self, replies: &mut impl Iterator<Item = OpReply>, tally: &mut Tally) -> Reply {
        let mut next = || replies.next();
        match self {
            Finish::Ok => match next() {
                Some(OpReply::Stored) => Reply::ok(),
                other => unexpected(other),
            },
            Finish::Value => value(next(), tally),
            Finish::Values(n) => Reply::Array((0..n).map(|_| value(next(), tally)).collect()),
            Finish::Deleted(n) => {
                let mut existed = 0;
                let mut error = None;
                for _ in 0..n {
                    if next() == Some(OpReply::Exists(true)) {
                        existed += 1;
                    }
                    match next() {
                        Some(OpReply::Deleted) => {}
                        other => error = error.or(Some(unexpected(other))),
                    }
                }
                error.unwrap_or(Reply::Integer(existed))
            }
            Finish::Existing(n) => {
                let mut existing = 0;
                let mut error = None;
                for _ in 0..n {
                    match next() {
                        Some(OpReply::Exists(true)) => existing += 1,
                        Some(OpReply::Exists(false)) => {}
                        other => error = error.or(Some(unexpected(other))),
                    }
                }
                error.unwrap_or(Reply::Integer(existing))
            }
            Finish::AllOk(n) => {
                let mut error = None;
                for _ in 0..n {
                    match next() {
                        Some(OpReply::Stored) => {}
                        other => error = error.or(Some(unexpected(other))),
                    }
                }
                error.unwrap_or_else(Reply::ok)
            }
            Finish::Keys => match next() {
                Some(OpReply::Keys(keys)) => bulks(keys),
                other => unexpected(other),
            },
            Finish::Scan { keep } => match next() {
                Some(OpReply::Scanned { next, keys }) => Reply::Array(vec![
                    Reply::Bulk(next.to_string().into_bytes()),
                    bulks(if keep { keys } else { Vec::new() }),
                ]),
                other => unexpected(other),
            },
            Finish::Size => match next() {
                Some(OpReply::Count(n)) => Reply::Integer(i64::try_from(n).unwrap_or(i64::MAX)),
                other => unexpected(other),
            },
        }
    }
}

fn value(reply: Option<OpReply>, tally: &mut Tally) -> Reply {
    match reply {
        Some(OpReply::Value(v)) => {
            tally.hits += 1;
            Reply::Bulk(v)
        }
        Some(OpReply::NotFound) => {
            tally.misses += 1;
            Reply::Null
        }
        other => unexpected(other),
    }
}

/// A refused write becomes its error; anything else should not happen.
fn unexpected(reply: Option<OpReply>) -> Reply {
    match reply {
        Some(OpReply::Refused(e)) => Reply::Error(format!("ERR {e}")),
        Some(other) => Reply::Error(format!("ERR internal error: unexpected {other:?}")),
        None => Reply::Error("ERR internal error: no reply from the store".into()),
    }
}

fn bulks(items: Vec<Vec<u8>>) -> Reply {
    Reply::Array(items.into_iter().map(Reply::Bulk).collect())
}

/// One argument in a command's documentation (`COMMAND DOCS`), as
/// redis-cli uses it for its hints.
#[derive(Debug)]
pub struct Arg {
    /// Its name.
    pub name: &'static str,
    /// `key`, `string`, `integer`, `pattern`, `pure-token` or `block`.
    pub kind: &'static str,
    /// The word that introduces it (`MATCH`), if any.
    pub token: Option<&'static str>,
    /// Whether it may be left out.
    pub optional: bool,
    /// Whether it may be repeated.
    pub multiple: bool,
    /// The parts of a `block`.
    pub parts: &'static [Arg],
}

const fn arg(name: &'static str, kind: &'static str) -> Arg {
    Arg {
        name,
        kind,
        token: None,
        optional: false,
        multiple: false,
        parts: &[],
    }
}

const fn optional(a: Arg) -> Arg {
    Arg {
        optional: true,
        ..a
    }
}

const fn multiple(a: Arg) -> Arg {
    Arg {
        multiple: true,
        ..a
    }
}

const fn token(token: &'static str, a: Arg) -> Arg {
    Arg {
        token: Some(token),
        ..a
    }
}

/// A command: what `COMMAND` and `COMMAND DOCS` say of it, and its arity.
#[derive(Debug)]
pub struct Spec {
    /// Lowercase; a subcommand is `container|sub`.
    pub name: &'static str,
    /// Argument count including the name; negative: at least that many.
    pub arity: i32,
    /// Redis's command flags.
    pub flags: &'static [&'static str],
    /// Position of the first key, the last key (-1: the last argument)
    /// and the step between keys; all 0 for no keys.
    pub keys: (i64, i64, i64),
    /// Redis's command group.
    pub group: &'static str,
    /// One line of help.
    pub summary: &'static str,
    /// The Redis version that introduced it.
    pub since: &'static str,
    /// Its arguments, for help.
    pub args: &'static [Arg],
    /// Its subcommands, for a container (`CLIENT`, `CONFIG`, `COMMAND`).
    pub subcommands: &'static [Spec],
}

impl Spec {
    const fn new(name: &'static str, arity: i32, group: &'static str) -> Spec {
        Spec {
            name,
            arity,
            flags: &[],
            keys: (0, 0, 0),
            group,
            summary: "",
            since: "1.0.0",
            args: &[],
            subcommands: &[],
        }
    }

    /// Whether `argc` arguments (the name included) suit the arity.
    pub fn accepts(&self, argc: usize) -> bool {
        let arity = self.arity.unsigned_abs() as usize;
        if self.arity >= 0 {
            argc == arity
        } else {
            argc >= arity
        }
    }

    /// The name after the container's, for a subcommand.
    fn short_name(&self) -> &'static str {
        self.name.split_once('|').map_or(self.name, |(_, sub)| sub)
    }
}

const KEY: Arg = arg("key", "key");
const KEYS: Arg = multiple(arg("key", "key"));
const VALUE: Arg = arg("value", "string");
const RO_FAST: &[&str] = &["readonly", "fast"];
const CONN_FLAGS: &[&str] = &["noscript", "loading", "stale", "fast", "no_auth"];

/// Every command netdb answers.
pub static COMMANDS: &[Spec] = &[
    Spec {
        flags: &["fast", "stale"],
        summary: "Ping the server",
        args: &[optional(arg("message", "string"))],
        ..Spec::new("ping", -1, "connection")
    },
    Spec {
        flags: &["fast", "stale"],
        summary: "Echo the given string",
        args: &[arg("message", "string")],
        ..Spec::new("echo", 2, "connection")
    },
    Spec {
        flags: RO_FAST,
        keys: (1, 1, 1),
        summary: "Get the value of a key",
        args: &[KEY],
        ..Spec::new("get", 2, "string")
    },
    Spec {
        flags: &["write", "denyoom"],
        keys: (1, 1, 1),
        summary: "Set the string value of a key (netdb takes no options)",
        args: &[KEY, VALUE],
        ..Spec::new("set", -3, "string")
    },
    Spec {
        flags: &["write"],
        keys: (1, -1, 1),
        summary: "Delete keys; the number that existed",
        args: &[KEYS],
        ..Spec::new("del", -2, "generic")
    },
    Spec {
        flags: RO_FAST,
        keys: (1, -1, 1),
        summary: "Determine if keys exist",
        since: "1.0.0",
        args: &[KEYS],
        ..Spec::new("exists", -2, "generic")
    },
    Spec {
        flags: RO_FAST,
        keys: (1, -1, 1),
        summary: "Get the values of all the given keys",
        args: &[KEYS],
        ..Spec::new("mget", -2, "string")
    },
    Spec {
        flags: &["write", "denyoom"],
        keys: (1, -1, 2),
        summary: "Set multiple keys to multiple values",
        since: "1.0.1",
        args: &[Arg {
            multiple: true,
            parts: &[KEY, VALUE],
            ..arg("data", "block")
        }],
        ..Spec::new("mset", -3, "string")
    },
    Spec {
        flags: &["readonly"],
        summary: "Find all keys matching the given pattern",
        args: &[arg("pattern", "pattern")],
        ..Spec::new("keys", 2, "generic")
    },
    Spec {
        flags: &["readonly"],
        summary: "Incrementally iterate the keys space",
        since: "2.8.0",
        args: &[
            arg("cursor", "integer"),
            optional(token("MATCH", arg("pattern", "pattern"))),
            optional(token("COUNT", arg("count", "integer"))),
            optional(token("TYPE", arg("type", "string"))),
        ],
        ..Spec::new("scan", -2, "generic")
    },
    Spec {
        flags: RO_FAST,
        summary: "Return the number of keys",
        ..Spec::new("dbsize", 1, "server")
    },
    Spec {
        flags: &["loading", "stale"],
        summary: "Get information and statistics about the server",
        args: &[optional(multiple(arg("section", "string")))],
        ..Spec::new("info", -1, "server")
    },
    Spec {
        flags: &["loading", "stale", "fast"],
        summary: "Change the selected database (netdb has only 0)",
        args: &[arg("index", "integer")],
        ..Spec::new("select", 2, "connection")
    },
    Spec {
        flags: CONN_FLAGS,
        summary: "Close the connection",
        ..Spec::new("quit", -1, "connection")
    },
    Spec {
        flags: CONN_FLAGS,
        summary: "Handshake with the server (netdb speaks RESP2 only)",
        since: "6.0.0",
        args: &[
            optional(arg("protover", "integer")),
            optional(token(
                "AUTH",
                Arg {
                    parts: &[arg("username", "string"), arg("password", "string")],
                    ..arg("username-password", "block")
                },
            )),
            optional(token("SETNAME", arg("clientname", "string"))),
        ],
        ..Spec::new("hello", -1, "connection")
    },
    Spec {
        flags: &["loading", "stale"],
        summary: "Get array of command details",
        since: "2.8.13",
        subcommands: &[
            Spec {
                flags: &["loading", "stale"],
                summary: "Get total number of commands",
                since: "2.8.13",
                ..Spec::new("command|count", 2, "server")
            },
            Spec {
                flags: &["loading", "stale"],
                summary: "Get array of specific command documentation",
                since: "7.0.0",
                args: &[optional(multiple(arg("command-name", "string")))],
                ..Spec::new("command|docs", -2, "server")
            },
            Spec {
                flags: &["loading", "stale"],
                summary: "Get array of specific command details",
                since: "2.8.13",
                args: &[optional(multiple(arg("command-name", "string")))],
                ..Spec::new("command|info", -2, "server")
            },
            Spec {
                flags: &["loading", "stale"],
                summary: "Get an array of command names",
                since: "7.0.0",
                ..Spec::new("command|list", -2, "server")
            },
            Spec {
                flags: &["loading", "stale"],
                summary: "Show helpful text about the different subcommands",
                since: "5.0.0",
                ..Spec::new("command|help", 2, "server")
            },
        ],
        ..Spec::new("command", -1, "server")
    },
    Spec {
        summary: "A container for server configuration commands",
        since: "2.0.0",
        subcommands: &[
            Spec {
                flags: &["admin", "noscript", "loading", "stale"],
                summary: "Get the values of configuration parameters",
                since: "2.0.0",
                args: &[multiple(arg("parameter", "pattern"))],
                ..Spec::new("config|get", -3, "server")
            },
            Spec {
                flags: &["loading", "stale"],
                summary: "Show helpful text about the different subcommands",
                since: "5.0.0",
                ..Spec::new("config|help", 2, "server")
            },
        ],
        ..Spec::new("config", -2, "server")
    },
    Spec {
        summary: "A container for client connection commands",
        since: "2.4.0",
        subcommands: &[
            Spec {
                flags: &["noscript", "loading", "stale"],
                summary: "Set the current connection name",
                since: "2.6.9",
                args: &[arg("connection-name", "string")],
                ..Spec::new("client|setname", 3, "connection")
            },
            Spec {
                flags: &["noscript", "loading", "stale"],
                summary: "Get the current connection name",
                since: "2.6.9",
                ..Spec::new("client|getname", 2, "connection")
            },
            Spec {
                flags: &["noscript", "loading", "stale"],
                summary: "Returns the client ID for the current connection",
                since: "5.0.0",
                ..Spec::new("client|id", 2, "connection")
            },
            Spec {
                flags: &["noscript", "loading", "stale"],
                summary: "Returns information about the current client connection",
                since: "6.2.0",
                ..Spec::new("client|info", 2, "connection")
            },
            Spec {
                flags: &["noscript", "loading", "stale"],
                summary: "Get the list of client connections (netdb: this one)",
                since: "2.4.0",
                ..Spec::new("client|list", -2, "connection")
            },
            Spec {
                flags: &["noscript", "loading", "stale"],
                summary: "Set client or connection specific info (accepted and ignored)",
                since: "7.2.0",
                args: &[arg("attr", "string"), arg("value", "string")],
                ..Spec::new("client|setinfo", 4, "connection")
            },
            Spec {
                flags: &["loading", "stale"],
                summary: "Show helpful text about the different subcommands",
                since: "5.0.0",
                ..Spec::new("client|help", 2, "connection")
            },
        ],
        ..Spec::new("client", -2, "connection")
    },
];

/// The command (or subcommand) named `name`, case-insensitively.
fn find<'a>(specs: &'a [Spec], name: &[u8]) -> Option<&'a Spec> {
    specs
        .iter()
        .find(|s| s.short_name().as_bytes().eq_ignore_ascii_case(name))
}

/// An argument as Redis prints it with `%s`: up to a NUL byte, lossily.
fn shown(arg: &[u8]) -> String {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
    String::from_utf8_lossy(&arg[..end]).into_owned()
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncated(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn error(text: impl Into<String>) -> Action {
    Action::Reply(Reply::Error(text.into()))
}

fn syntax_error() -> Action {
    error("ERR syntax error")
}

fn not_an_integer() -> Action {
    error("ERR value is not an integer or out of range")
}

/// Redis's text for a command it does not know.
pub fn unknown_command(args: &[Vec<u8>]) -> Reply {
    let mut listed = String::new();
    for a in args.iter().skip(1) {
        if listed.len() >= 128 {
            break;
        }
        let room = 128 - listed.len();
        let _ = write!(listed, "'{}' ", truncated(shown(a), room));
    }
    let name = args.first().map_or_else(String::new, |n| shown(n));
    Reply::Error(format!(
        "ERR unknown command '{}', with args beginning with: {listed}",
        truncated(name, 128)
    ))
}

fn wrong_arity(spec: &Spec) -> Action {
    error(format!(
        "ERR wrong number of arguments for '{}' command",
        spec.name
    ))
}

fn parse_i64(arg: &[u8]) -> Option<i64> {
    std::str::from_utf8(arg)
        .ok()
        .filter(|s| !s.starts_with('+') && !s.is_empty())
        .and_then(|s| s.parse().ok())
}

/// Decides what to do with one request: answers it, or appends its ops to
/// `ops` and says how to build its reply.
pub fn plan(session: &mut Session, request: Request, ops: &mut Vec<Op>, facts: &Facts) -> Action {
    let mut args = request.args;
    let Some(name) = args.first() else {
        // Empty requests are dropped by the decoder; answer like Redis.
        return Action::Reply(unknown_command(&[Vec::new()]));
    };
    let Some(mut spec) = find(COMMANDS, name) else {
        return Action::Reply(unknown_command(&args));
    };
    if !spec.subcommands.is_empty() && args.len() >= 2 {
        match find(spec.subcommands, &args[1]) {
            Some(sub) => spec = sub,
            None if spec.name == "command" || spec.name == "config" || spec.name == "client" => {
                return error(format!(
                    "ERR unknown subcommand '{}'. Try {} HELP.",
                    truncated(shown(&args[1]), 128),
                    spec.name.to_ascii_uppercase()
                ));
            }
            None => {}
        }
    }
    if !spec.accepts(args.len()) {
        return wrong_arity(spec);
    }
    let n = args.len();
    match spec.name {
        // Redis checks this by hand: PING's arity says "at least one".
        "ping" if n > 2 => wrong_arity(spec),
        "ping" => Action::Reply(match args.pop() {
            Some(message) if n == 2 => Reply::Bulk(message),
            _ => Reply::Simple("PONG".into()),
        }),
        "echo" => Action::Reply(Reply::Bulk(args.swap_remove(1))),
        "get" => {
            ops.push(Op::Get {
                key: args.swap_remove(1),
            });
            Action::Store(Finish::Value)
        }
        "set" => set(args, ops),
        "del" => {
            for key in args.drain(1..) {
                ops.push(Op::Exists { key: key.clone() });
                ops.push(Op::Delete { key });
            }
            Action::Store(Finish::Deleted(n - 1))
        }
        "exists" => {
            ops.extend(args.drain(1..).map(|key| Op::Exists { key }));
            Action::Store(Finish::Existing(n - 1))
        }
        "mget" => {
            ops.extend(args.drain(1..).map(|key| Op::Get { key }));
            Action::Store(Finish::Values(n - 1))
        }
        "mset" => {
            if n.is_multiple_of(2) {
                return wrong_arity(spec);
            }
            let mut rest = args.drain(1..);
            while let (Some(key), Some(value)) = (rest.next(), rest.next()) {
                ops.push(Op::Put { key, value });
            }
            Action::Store(Finish::AllOk((n - 1) / 2))
        }
        "keys" => {
            ops.push(Op::Keys {
                pattern: args.swap_remove(1),
            });
            Action::Store(Finish::Keys)
        }
        "scan" => scan(args, ops),
        "dbsize" => {
            ops.push(Op::DbSize);
            Action::Store(Finish::Size)
        }
        "info" => Action::Info(
            args[1..]
                .iter()
                .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
                .collect(),
        ),
        "select" => match parse_i64(&args[1]) {
            Some(0) => Action::Reply(Reply::ok()),
            Some(db) if i32::try_from(db).is_ok() => error("ERR DB index is out of range"),
            _ => not_an_integer(),
        },
        "quit" => Action::Close(Reply::ok()),
        "hello" => hello(session, &args),
        "command" => Action::Reply(all_command_info()),
        "command|count" => Action::Reply(Reply::Integer(COMMANDS.len() as i64)),
        "command|list" => Action::Reply(Reply::Array(
            COMMANDS
                .iter()
                .map(|s| Reply::Bulk(s.name.as_bytes().to_vec()))
                .collect(),
        )),
        "command|info" => Action::Reply(if n == 2 {
            all_command_info()
        } else {
            Reply::Array(
                args[2..]
                    .iter()
                    .map(|name| find(COMMANDS, name).map_or(Reply::NullArray, command_info))
                    .collect(),
            )
        }),
        "command|docs" => Action::Reply(command_docs(&args[2..])),
        "config|get" => Action::Reply(config_get(&args[2..], facts)),
        "client|setname" => match set_name(session, &args[2]) {
            Ok(()) => Action::Reply(Reply::ok()),
            Err(e) => Action::Reply(e),
        },
        "client|getname" => Action::Reply(session.name.clone().map_or(Reply::Null, Reply::Bulk)),
        "client|id" => Action::Reply(Reply::Integer(session.id as i64)),
        "client|info" => Action::Reply(Reply::Bulk(client_line(session, "client|info"))),
        "client|list" => Action::Reply(Reply::Bulk(client_line(session, "client|list"))),
        "client|setinfo" => Action::Reply(Reply::ok()),
        "command|help" | "config|help" | "client|help" => Action::Reply(help(spec.name)),
        // A container called with one argument failed its arity above.
        _ => Action::Reply(unknown_command(&args)),
    }
}

/// `SET key value`; every option is refused rather than ignored.
fn set(mut args: Vec<Vec<u8>>, ops: &mut Vec<Op>) -> Action {
    if let Some(option) = args.get(3) {
        let known = [
            "EX", "PX", "EXAT", "PXAT", "NX", "XX", "KEEPTTL", "GET", "PERSIST",
        ];
        let upper = String::from_utf8_lossy(option).to_ascii_uppercase();
        return if known.contains(&upper.as_str()) {
            error(format!(
                "ERR netdb does not support SET option '{}'",
                truncated(shown(option), 128)
            ))
        } else {
            syntax_error()
        };
    }
    let value = args.swap_remove(2);
    let key = args.swap_remove(1);
    ops.push(Op::Put { key, value });
    Action::Store(Finish::Ok)
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
fn scan(args: Vec<Vec<u8>>, ops: &mut Vec<Op>) -> Action {
    // Redis reads the cursor with strtoul: digits only, any size that fits.
    let cursor = match std::str::from_utf8(&args[1]).map(str::parse::<u64>) {
        Ok(Ok(c)) if !args[1].starts_with(b"+") => c,
        _ if args[1].is_empty() => 0,
        _ => return error("ERR invalid cursor"),
    };
    let mut pattern = None;
    let mut count: usize = 10;
    let mut keep = true;
    let mut i = 2;
    while i < args.len() {
        let option = args[i].to_ascii_lowercase();
        let Some(value) = args.get(i + 1) else {
            return syntax_error();
        };
        match option.as_slice() {
            b"count" => match parse_i64(value) {
                Some(c) if c >= 1 => count = usize::try_from(c).unwrap_or(usize::MAX),
                Some(_) => return syntax_error(),
                None => return not_an_integer(),
            },
            // Exactly `*` matches everything: no need to test each key.
            b"match" => pattern = (value.as_slice() != b"*").then(|| value.clone()),
            b"type" => keep = value.eq_ignore_ascii_case(b"string"),
            _ => return syntax_error(),
        }
        i += 2;
    }
    ops.push(Op::Scan {
        cursor,
        pattern,
        count,
    });
    Action::Store(Finish::Scan { keep })
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`: RESP2 only.
fn hello(session: &mut Session, args: &[Vec<u8>]) -> Action {
    let mut i = 1;
    if let Some(version) = args.get(1) {
        match parse_i64(version) {
            Some(2) => {}
            Some(_) => return error("NOPROTO unsupported protocol version"),
            None => return error("ERR Protocol version is not an integer or out of range"),
        }
        i = 2;
    }
    while i < args.len() {
        let more = args.len() - 1 - i;
        let option = args[i].to_ascii_uppercase();
        if option == b"AUTH" && more >= 2 {
            return error("WRONGPASS invalid username-password pair or user is disabled.");
        } else if option == b"SETNAME" && more >= 1 {
            if let Err(e) = set_name(session, &args[i + 1]) {
                return Action::Reply(e);
            }
            i += 2;
        } else {
            return error(format!(
                "ERR Syntax error in HELLO option '{}'",
                truncated(shown(&args[i]), 128)
            ));
        }
    }
    let text = |s: &str| Reply::Bulk(s.as_bytes().to_vec());
    Action::Reply(Reply::Array(vec![
        text("server"),
        text("redis"),
        text("version"),
        text(REDIS_VERSION),
        text("proto"),
        Reply::Integer(2),
        text("id"),
        Reply::Integer(session.id as i64),
        text("mode"),
        text("standalone"),
        text("role"),
        text("master"),
        text("modules"),
        Reply::Array(Vec::new()),
    ]))
}

/// `CLIENT SETNAME`: printable ASCII without spaces; empty unsets.
fn set_name(session: &mut Session, name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(Reply::Error(
            "ERR Client names cannot contain spaces, newlines or special characters.".into(),
        ));
    }
    session.name = (!name.is_empty()).then(|| name.to_vec());
    Ok(())
}

/// This connection as one line of `CLIENT LIST`.
fn client_line(session: &Session, cmd: &str) -> Vec<u8> {
    let name = session.name.as_deref().map(String::from_utf8_lossy);
    format!(
        "id={} addr={} laddr={} name={} db=0 flags=N multi=-1 cmd={cmd} user=default resp=2\n",
        session.id,
        session.addr,
        session.laddr,
        name.unwrap_or_default()
    )
    .into_bytes()
}

fn help(container: &str) -> Reply {
    let upper = container
        .split('|')
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    let spec = find(COMMANDS, upper.as_bytes());
    let mut lines = vec![format!(
        "{upper} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    )];
    for sub in spec.map_or(&[][..], |s| s.subcommands) {
        lines.push(sub.short_name().to_ascii_uppercase());
        lines.push(format!("    {}", sub.summary));
    }
    Reply::Array(lines.into_iter().map(Reply::Simple).collect())
}

fn statuses(items: &[&str]) -> Reply {
    Reply::Array(items.iter().map(|s| Reply::Simple((*s).into())).collect())
}

fn acl_categories(spec: &Spec) -> Vec<&'static str> {
    let mut cats = vec![match spec.group {
        "string" => "@string",
        "generic" => "@keyspace",
        "connection" => "@connection",
        _ => "@admin",
    }];
    if spec.flags.contains(&"readonly") {
        cats.push("@read");
    }
    if spec.flags.contains(&"write") {
        cats.push("@write");
    }
    cats.push(if spec.flags.contains(&"fast") {
        "@fast"
    } else {
        "@slow"
    });
    cats
}

/// A command's entry in `COMMAND`, in Redis 7's ten-element form.
fn command_info(spec: &Spec) -> Reply {
    let (first, last, step) = spec.keys;
    Reply::Array(vec![
        Reply::Bulk(spec.name.as_bytes().to_vec()),
        Reply::Integer(i64::from(spec.arity)),
        statuses(spec.flags),
        Reply::Integer(first),
        Reply::Integer(last),
        Reply::Integer(step),
        statuses(&acl_categories(spec)),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(spec.subcommands.iter().map(command_info).collect()),
    ])
}

fn all_command_info() -> Reply {
    Reply::Array(COMMANDS.iter().map(command_info).collect())
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

fn arg_doc(a: &Arg) -> Reply {
    let mut map = vec![bulk("name"), bulk(a.name), bulk("type"), bulk(a.kind)];
    if let Some(t) = a.token {
        map.extend([bulk("token"), bulk(t)]);
    }
    let mut flags = Vec::new();
    if a.optional {
        flags.push("optional");
    }
    if a.multiple {
        flags.push("multiple");
    }
    if !flags.is_empty() {
        map.extend([bulk("flags"), statuses(&flags)]);
    }
    if !a.parts.is_empty() {
        map.extend([
            bulk("arguments"),
            Reply::Array(a.parts.iter().map(arg_doc).collect()),
        ]);
    }
    Reply::Array(map)
}

/// A command's documentation map (as a flat array, RESP2's map).
fn command_doc(spec: &Spec) -> Reply {
    let mut map = vec![
        bulk("summary"),
        bulk(spec.summary),
        bulk("since"),
        bulk(spec.since),
        bulk("group"),
        bulk(spec.group),
    ];
    if !spec.args.is_empty() {
        map.extend([
            bulk("arguments"),
            Reply::Array(spec.args.iter().map(arg_doc).collect()),
        ]);
    }
    if !spec.subcommands.is_empty() {
        let mut subs = Vec::new();
        for sub in spec.subcommands {
            subs.extend([bulk(sub.name), command_doc(sub)]);
        }
        map.extend([bulk("subcommands"), Reply::Array(subs)]);
    }
    Reply::Array(map)
}

/// `COMMAND DOCS [name ...]`: name, docs, name, docs...
fn command_docs(names: &[Vec<u8>]) -> Reply {
    let mut out = Vec::new();
    for spec in COMMANDS {
        if names.is_empty()
            || names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(spec.name.as_bytes()))
        {
            out.extend([bulk(spec.name), command_doc(spec)]);
        }
    }
    Reply::Array(out)
}

/// `CONFIG GET pattern ...`: the settings whose names match, as name,
/// value pairs. Values reflect what netdb does (no snapshots, no
/// append-only file of Redis's kind, one database, no eviction).
fn config_get(patterns: &[Vec<u8>], facts: &Facts) -> Reply {
    let settings: [(&str, String); 11] = [
        ("save", String::new()),
        ("appendonly", "no".into()),
        ("maxmemory", "0".into()),
        ("maxmemory-policy", "noeviction".into()),
        ("databases", "1".into()),
        ("maxclients", facts.max_clients.to_string()),
        ("timeout", facts.idle_timeout_secs.to_string()),
        ("proto-max-bulk-len", facts.max_bulk_len.to_string()),
        (
            "client-query-buffer-limit",
            facts.max_request_len.to_string(),
        ),
        ("cluster-enabled", "no".into()),
        ("io-threads", "1".into()),
    ];
    let patterns: Vec<Vec<u8>> = patterns.iter().map(|p| p.to_ascii_lowercase()).collect();
    let mut out = Vec::new();
    for (name, value) in settings {
        if patterns.iter().any(|p| glob_match(p, name.as_bytes())) {
            out.extend([bulk(name), Reply::Bulk(value.into_bytes())]);
        }
    }
    Reply::Array(out)
}

/// What `INFO` reports, gathered by the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoData {
    /// Seconds since the node started.
    pub uptime_secs: u64,
    /// The node's process id.
    pub process_id: u32,
    /// Clients connected now.
    pub connected_clients: usize,
    /// Most clients at once.
    pub max_clients: usize,
    /// Client connections accepted since start.
    pub total_connections: u64,
    /// Client commands run since start.
    pub total_commands: u64,
    /// Client connections refused at the limit.
    pub rejected_connections: u64,
    /// Gets that found a value.
    pub keyspace_hits: u64,
    /// Gets that found none.
    pub keyspace_misses: u64,
    /// How the node keeps its data (`in-memory`).
    pub persistence: String,
    /// The node, its counts and its peers.
    pub status: NodeStatus,
}

/// The `INFO` sections, in the order they are printed.
pub const INFO_SECTIONS: [&str; 6] = [
    "server",
    "clients",
    "persistence",
    "stats",
    "keyspace",
    "netdb",
];

/// Line breaks would end an `INFO` line early.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// The `INFO` reply for the asked sections (none, `default`, `all` or
/// `everything`: all of them; unknown names are skipped, as in Redis).
pub fn info(sections: &[String], data: &InfoData) -> Reply {
    let all = sections.is_empty()
        || sections
            .iter()
            .any(|s| s == "default" || s == "all" || s == "everything");
    let mut text = String::new();
    for section in INFO_SECTIONS {
        if !all && !sections.iter().any(|s| s == section) {
            continue;
        }
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        let lines = info_section(section, data);
        let mut title = section.to_owned();
        if let Some(first) = title.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        let _ = write!(text, "# {title}\r\n");
        for (key, value) in lines {
            let _ = write!(text, "{key}:{}\r\n", one_line(&value));
        }
    }
    Reply::Bulk(text.into_bytes())
}

fn info_section(section: &str, d: &InfoData) -> Vec<(String, String)> {
    let s = &d.status;
    let pairs: Vec<(&str, String)> = match section {
        "server" => vec![
            ("redis_version", REDIS_VERSION.into()),
            ("netdb_version", env!("CARGO_PKG_VERSION").into()),
            ("redis_mode", "standalone".into()),
            ("os", std::env::consts::OS.into()),
            ("arch_bits", (usize::BITS).to_string()),
            ("multiplexing_api", "threads".into()),
            ("process_id", d.process_id.to_string()),
            (
                "tcp_port",
                s.addr
                    .rsplit_once(':')
                    .map_or("0", |(_, port)| port)
                    .to_owned(),
            ),
            ("uptime_in_seconds", d.uptime_secs.to_string()),
            ("uptime_in_days", (d.uptime_secs / 86_400).to_string()),
        ],
        "clients" => vec![
            ("connected_clients", d.connected_clients.to_string()),
            ("maxclients", d.max_clients.to_string()),
            ("blocked_clients", "0".into()),
        ],
        "persistence" => vec![
            ("loading", "0".into()),
            ("netdb_persistence", d.persistence.clone()),
            ("rdb_bgsave_in_progress", "0".into()),
            ("aof_enabled", "0".into()),
        ],
        "stats" => vec![
            (
                "total_connections_received",
                d.total_connections.to_string(),
            ),
            ("total_commands_processed", d.total_commands.to_string()),
            ("rejected_connections", d.rejected_connections.to_string()),
            ("keyspace_hits", d.keyspace_hits.to_string()),
            ("keyspace_misses", d.keyspace_misses.to_string()),
        ],
        "keyspace" if s.live > 0 => {
            vec![("db0", format!("keys={},expires=0,avg_ttl=0", s.live))]
        }
        "netdb" => {
            let mut lines: Vec<(String, String)> = [
                ("node_name", s.name.clone()),
                ("listen_addr", s.addr.clone()),
                ("live_keys", s.live.to_string()),
                ("tombstones", s.tombstones.to_string()),
                ("peers", s.peers.len().to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            for (i, p) in s.peers.iter().enumerate() {
                lines.push((format!("peer{i}"), peer_fields(p)));
                if let PeerState::Unreachable(Some(e)) = &p.state {
                    lines.push((format!("peer{i}_error"), e.clone()));
                }
            }
            return lines;
        }
        _ => Vec::new(),
    };
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn peer_fields(p: &PeerReport) -> String {
    let state = match p.state {
        PeerState::NotTried => "not_tried",
        PeerState::Reachable => "reachable",
        PeerState::Unreachable(_) => "unreachable",
    };
    let or = |v: Option<u64>, none: &str| v.map_or_else(|| none.to_owned(), |n| n.to_string());
    format!(
        "addr={},state={state},last_sync_ms_ago={},writes_behind={},last_round_bytes={},tombstones_waiting={}",
        p.addr,
        or(p.last_sync_ms_ago, "never"),
        or(p.writes_behind, "unknown"),
        p.last_round_bytes,
        p.tombstones_waiting
    )
}

/// Reads the `# netdb` section of an `INFO` reply back into the status it
/// was made from (what `netdb --connect` prints for `status`); `None` if
/// the section is missing or malformed.
pub fn parse_status(info: &str) -> Option<NodeStatus> {
    let mut fields = std::collections::HashMap::new();
    let mut in_netdb = false;
    for line in info.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(title) = line.strip_prefix("# ") {
            in_netdb = title.eq_ignore_ascii_case("netdb");
        } else if in_netdb {
            if let Some((k, v)) = line.split_once(':') {
                fields.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    let get = |k: &str| fields.get(k).cloned();
    let number = |k: &str| get(k)?.parse::<usize>().ok();
    let count = number("peers")?;
    let mut peers = Vec::with_capacity(count.min(1024));
    for i in 0..count {
        let line = get(&format!("peer{i}"))?;
        let parts: std::collections::HashMap<&str, &str> = line
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let opt = |k: &str| -> Option<Option<u64>> {
            let v = parts.get(k)?;
            Some(v.parse().ok())
        };
        peers.push(PeerReport {
            addr: (*parts.get("addr")?).to_owned(),
            state: match *parts.get("state")? {
                "not_tried" => PeerState::NotTried,
                "reachable" => PeerState::Reachable,
                "unreachable" => PeerState::Unreachable(get(&format!("peer{i}_error"))),
                _ => return None,
            },
            last_sync_ms_ago: opt("last_sync_ms_ago")?,
            writes_behind: opt("writes_behind")?,
            last_round_bytes: parts.get("last_round_bytes")?.parse().ok()?,
            tombstones_waiting: parts.get("tombstones_waiting")?.parse().ok()?,
        });
    }
    Some(NodeStatus {
        name: get("node_name")?,
        addr: get("listen_addr")?,
        live: number("live_keys")?,
        tombstones: number("tombstones")?,
        peers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn facts() -> Facts {
        Facts {
            max_clients: 100,
            idle_timeout_secs: 300,
            max_bulk_len: 1 << 20,
            max_request_len: 1 << 21,
        }
    }

    fn session() -> Session {
        Session::new(7, "127.0.0.1:5000".into(), "127.0.0.1:6379".into())
    }

    fn request(args: &[&[u8]]) -> Request {
        Request {
            args: args.iter().map(|a| a.to_vec()).collect(),
        }
    }

    /// A map standing in for the store thread, answering ops as it does.
    #[derive(Default)]
    struct Fake {
        map: BTreeMap<Vec<u8>, Vec<u8>>,
    }

    impl Fake {
        fn answer(&mut self, op: Op) -> OpReply {
            match op {
                Op::Put { key, value } => {
                    self.map.insert(key, value);
                    OpReply::Stored
                }
                Op::Get { key } => self
                    .map
                    .get(&key)
                    .map_or(OpReply::NotFound, |v| OpReply::Value(v.clone())),
                Op::Delete { key } => {
                    self.map.remove(&key);
                    OpReply::Deleted
                }
                Op::Exists { key } => OpReply::Exists(self.map.contains_key(&key)),
                Op::Keys { pattern } => OpReply::Keys(
                    self.map
                        .keys()
                        .filter(|k| glob_match(&pattern, k))
                        .cloned()
                        .collect(),
                ),
                Op::Scan { pattern, .. } => OpReply::Scanned {
                    next: 0,
                    keys: self
                        .map
                        .keys()
                        .filter(|k| pattern.as_deref().is_none_or(|p| glob_match(p, k)))
                        .cloned()
                        .collect(),
                },
                Op::DbSize => OpReply::Count(self.map.len()),
            }
        }

        /// Runs one command as a connection does; returns its action
        /// with the store's part done.
        fn run(&mut self, session: &mut Session, args: &[&[u8]]) -> Reply {
            let mut ops = Vec::new();
            match plan(session, request(args), &mut ops, &facts()) {
                Action::Reply(r) | Action::Close(r) => {
                    assert!(ops.is_empty());
                    r
                }
                Action::Store(finish) => {
                    let replies: Vec<OpReply> = ops.into_iter().map(|op| self.answer(op)).collect();
                    let mut out = Vec::new();
                    let mut replies = replies.into_iter();
                    finish.write_reply(&mut replies, &mut out, &mut Tally::default());
                    assert!(replies.next().is_none(), "every answer used");
                    match crate::redis::resp::parse_reply(&out) {
                        Ok(Some((reply, used))) if used == out.len() => reply,
                        other => panic!("bad reply bytes: {other:?}"),
                    }
                }
                Action::Info(_) => panic!("INFO is the shell's"),
            }
        }
    }

    fn run(args: &[&[u8]]) -> Reply {
        Fake::default().run(&mut session(), args)
    }

    fn err(text: &str) -> Reply {
        Reply::Error(text.into())
    }

    fn bulk_of(s: &[u8]) -> Reply {
        Reply::Bulk(s.to_vec())
    }

    #[test]
    fn connection_commands() {
        assert_eq!(run(&[b"PING"]), Reply::Simple("PONG".into()));
        assert_eq!(run(&[b"ping", b"hi"]), bulk_of(b"hi"));
        assert_eq!(run(&[b"EcHo", b"a\r\nb"]), bulk_of(b"a\r\nb"));
        assert_eq!(run(&[b"SELECT", b"0"]), Reply::ok());
        assert_eq!(run(&[b"SELECT", b"1"]), err("ERR DB index is out of range"));
        assert_eq!(
            run(&[b"SELECT", b"x"]),
            err("ERR value is not an integer or out of range")
        );
        let mut ops = Vec::new();
        assert_eq!(
            plan(&mut session(), request(&[b"quit"]), &mut ops, &facts()),
            Action::Close(Reply::ok())
        );
    }

    #[test]
    fn wrong_arity_uses_redis_text() {
        for (args, name) in [
            (&[&b"GET"[..]][..], "get"),
            (&[b"get", b"a", b"b"], "get"),
            (&[b"set", b"k"], "set"),
            (&[b"del"], "del"),
            (&[b"exists"], "exists"),
            (&[b"mget"], "mget"),
            (&[b"mset", b"k"], "mset"),
            (&[b"mset", b"k", b"v", b"k2"], "mset"),
            (&[b"keys"], "keys"),
            (&[b"scan"], "scan"),
            (&[b"dbsize", b"x"], "dbsize"),
            (&[b"echo"], "echo"),
            (&[b"ping", b"a", b"b"], "ping"),
            (&[b"select"], "select"),
            (&[b"config"], "config"),
            (&[b"config", b"get"], "config|get"),
            (&[b"client"], "client"),
            (&[b"client", b"setname"], "client|setname"),
            (&[b"command", b"count", b"x"], "command|count"),
        ] {
            assert_eq!(
                run(args),
                err(&format!(
                    "ERR wrong number of arguments for '{name}' command"
                )),
                "{args:?}"
            );
        }
    }

    #[test]
    fn unknown_commands_use_redis_text() {
        assert_eq!(
            run(&[b"foo"]),
            err("ERR unknown command 'foo', with args beginning with: ")
        );
        assert_eq!(
            run(&[b"foo", b"a", b"b c"]),
            err("ERR unknown command 'foo', with args beginning with: 'a' 'b c' ")
        );
        let long = vec![b'x'; 300];
        let Reply::Error(text) = run(&[b"foo", &long, b"more"]) else {
            panic!("an error")
        };
        assert_eq!(
            text,
            format!(
                "ERR unknown command 'foo', with args beginning with: '{}' ",
                "x".repeat(128)
            )
        );
        assert_eq!(
            run(&[b"CLIENT", b"kill"]),
            err("ERR unknown subcommand 'kill'. Try CLIENT HELP.")
        );
        assert_eq!(
            run(&[b"config", b"set", b"a", b"b"]),
            err("ERR unknown subcommand 'set'. Try CONFIG HELP.")
        );
        assert_eq!(
            run(&[b"command", b"nope"]),
            err("ERR unknown subcommand 'nope'. Try COMMAND HELP.")
        );
    }

    #[test]
    fn strings_and_keys() {
        let mut fake = Fake::default();
        let s = &mut session();
        assert_eq!(fake.run(s, &[b"GET", b"k"]), Reply::Null);
        assert_eq!(fake.run(s, &[b"SET", b"k", b"v"]), Reply::ok());
        assert_eq!(fake.run(s, &[b"get", b"k"]), bulk_of(b"v"));
        assert_eq!(fake.run(s, &[b"mset", b"a", b"1", b"b", b"2"]), Reply::ok());
        assert_eq!(
            fake.run(s, &[b"MGET", b"a", b"nope", b"b"]),
            Reply::Array(vec![bulk_of(b"1"), Reply::Null, bulk_of(b"2")])
        );
        assert_eq!(
            fake.run(s, &[b"exists", b"a", b"a", b"nope"]),
            Reply::Integer(2),
            "a key named twice counts twice, as in Redis"
        );
        assert_eq!(fake.run(s, &[b"dbsize"]), Reply::Integer(3));
        assert_eq!(
            fake.run(s, &[b"keys", b"[ab]"]),
            Reply::Array(vec![bulk_of(b"a"), bulk_of(b"b")])
        );
        assert_eq!(
            fake.run(s, &[b"del", b"a", b"nope", b"a", b"k"]),
            Reply::Integer(2)
        );
        assert_eq!(fake.run(s, &[b"dbsize"]), Reply::Integer(1));
    }

    #[test]
    fn set_options_are_refused_not_ignored() {
        for option in [&b"EX"[..], b"px", b"NX", b"xx", b"KEEPTTL", b"GET", b"exat"] {
            let Reply::Error(text) = run(&[b"SET", b"k", b"v", option, b"10"]) else {
                panic!("an error")
            };
            assert_eq!(
                text,
                format!(
                    "ERR netdb does not support SET option '{}'",
                    String::from_utf8_lossy(option)
                )
            );
        }
        assert_eq!(
            run(&[b"SET", b"k", b"v", b"bogus"]),
            err("ERR syntax error")
        );
    }

    #[test]
    fn refused_writes_become_errors() {
        let refused = OpReply::Refused(crate::store::WriteError::ValueTooLong { len: 9, max: 4 });
        let mut out = Vec::new();
        Finish::Ok.write_reply(
            &mut vec![refused.clone()].into_iter(),
            &mut out,
            &mut Tally::default(),
        );
        assert_eq!(out, b"-ERR value of 9 bytes is over the limit of 4\r\n");
        out.clear();
        Finish::AllOk(2).write_reply(
            &mut vec![OpReply::Stored, refused].into_iter(),
            &mut out,
            &mut Tally::default(),
        );
        assert!(out.starts_with(b"-ERR value of 9"));
        out.clear();
        Finish::Value.write_reply(&mut Vec::new().into_iter(), &mut out, &mut Tally::default());
        assert!(out.starts_with(b"-ERR internal error"));
    }

    #[test]
    fn gets_are_tallied() {
        let mut tally = Tally::default();
        let mut out = Vec::new();
        Finish::Values(3).write_reply(
            &mut vec![
                OpReply::Value(b"x".to_vec()),
                OpReply::NotFound,
                OpReply::Value(Vec::new()),
            ]
            .into_iter(),
            &mut out,
            &mut tally,
        );
        assert_eq!(tally, Tally { hits: 2, misses: 1 });
        assert_eq!(out, b"*3\r\n$1\r\nx\r\n$-1\r\n$0\r\n\r\n");
    }

    fn scan_op(args: &[&[u8]]) -> Result<(Op, Finish), Reply> {
        let mut ops = Vec::new();
        match plan(&mut session(), request(args), &mut ops, &facts()) {
            Action::Store(f) => Ok((ops.pop().expect("one op"), f)),
            Action::Reply(r) => Err(r),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn scan_options() {
        assert_eq!(
            scan_op(&[b"SCAN", b"0"]),
            Ok((
                Op::Scan {
                    cursor: 0,
                    pattern: None,
                    count: 10
                },
                Finish::Scan { keep: true }
            ))
        );
        assert_eq!(
            scan_op(&[
                b"scan",
                b"18446744073709551615",
                b"match",
                b"k*",
                b"COUNT",
                b"100",
                b"type",
                b"hash"
            ]),
            Ok((
                Op::Scan {
                    cursor: u64::MAX,
                    pattern: Some(b"k*".to_vec()),
                    count: 100
                },
                Finish::Scan { keep: false }
            ))
        );
        assert!(matches!(
            scan_op(&[b"scan", b"0", b"MATCH", b"*"]),
            Ok((Op::Scan { pattern: None, .. }, _))
        ));
        for (args, text) in [
            (&[&b"scan"[..], b"x"][..], "ERR invalid cursor"),
            (&[b"scan", b"-1"], "ERR invalid cursor"),
            (&[b"scan", b"18446744073709551616"], "ERR invalid cursor"),
            (&[b"scan", b"0", b"count", b"0"], "ERR syntax error"),
            (
                &[b"scan", b"0", b"count", b"x"],
                "ERR value is not an integer or out of range",
            ),
            (&[b"scan", b"0", b"match"], "ERR syntax error"),
            (&[b"scan", b"0", b"limit", b"3"], "ERR syntax error"),
        ] {
            assert_eq!(scan_op(args), Err(err(text)), "{args:?}");
        }
        let mut out = Vec::new();
        Finish::Scan { keep: true }.write_reply(
            &mut vec![OpReply::Scanned {
                next: 42,
                keys: vec![b"a".to_vec()],
            }]
            .into_iter(),
            &mut out,
            &mut Tally::default(),
        );
        assert_eq!(out, b"*2\r\n$2\r\n42\r\n*1\r\n$1\r\na\r\n");
    }

    #[test]
    fn hello_speaks_resp2_only() {
        let mut s = session();
        let mut fake = Fake::default();
        let Reply::Array(map) = fake.run(&mut s, &[b"HELLO"]) else {
            panic!("a map")
        };
        assert_eq!(map.len(), 14);
        assert_eq!(map[5], Reply::Integer(2));
        assert_eq!(map[7], Reply::Integer(7));
        assert!(matches!(
            fake.run(&mut s, &[b"hello", b"2"]),
            Reply::Array(_)
        ));
        assert_eq!(
            fake.run(&mut s, &[b"hello", b"3"]),
            err("NOPROTO unsupported protocol version")
        );
        assert_eq!(
            fake.run(&mut s, &[b"hello", b"x"]),
            err("ERR Protocol version is not an integer or out of range")
        );
        assert_eq!(
            fake.run(&mut s, &[b"hello", b"2", b"bogus"]),
            err("ERR Syntax error in HELLO option 'bogus'")
        );
        assert!(matches!(
            fake.run(&mut s, &[b"hello", b"2", b"setname", b"me"]),
            Reply::Array(_)
        ));
        assert_eq!(s.name.as_deref(), Some(&b"me"[..]));
    }

    #[test]
    fn client_commands() {
        let mut s = session();
        let mut fake = Fake::default();
        assert_eq!(fake.run(&mut s, &[b"CLIENT", b"GETNAME"]), Reply::Null);
        assert_eq!(
            fake.run(&mut s, &[b"client", b"setname", b"worker-1"]),
            Reply::ok()
        );
        assert_eq!(
            fake.run(&mut s, &[b"client", b"getname"]),
            bulk_of(b"worker-1")
        );
        assert_eq!(
            fake.run(&mut s, &[b"client", b"setname", b"a b"]),
            err("ERR Client names cannot contain spaces, newlines or special characters.")
        );
        assert_eq!(fake.run(&mut s, &[b"client", b"id"]), Reply::Integer(7));
        let Reply::Bulk(line) = fake.run(&mut s, &[b"client", b"info"]) else {
            panic!("a bulk")
        };
        let line = String::from_utf8(line).expect("text");
        assert!(line.starts_with("id=7 addr=127.0.0.1:5000 laddr=127.0.0.1:6379 name=worker-1 "));
        assert!(line.ends_with("cmd=client|info user=default resp=2\n"));
        assert_eq!(
            fake.run(&mut s, &[b"client", b"setinfo", b"lib-name", b"x"]),
            Reply::ok()
        );
        assert_eq!(fake.run(&mut s, &[b"client", b"setname", b""]), Reply::ok());
        assert_eq!(fake.run(&mut s, &[b"client", b"getname"]), Reply::Null);
        assert!(matches!(
            fake.run(&mut s, &[b"client", b"help"]),
            Reply::Array(lines) if lines.len() > 2
        ));
    }

    #[test]
    fn config_get_answers_what_benchmarks_ask() {
        assert_eq!(
            run(&[b"CONFIG", b"GET", b"save"]),
            Reply::Array(vec![bulk_of(b"save"), bulk_of(b"")])
        );
        assert_eq!(
            run(&[b"config", b"get", b"APPENDONLY"]),
            Reply::Array(vec![bulk_of(b"appendonly"), bulk_of(b"no")])
        );
        assert_eq!(
            run(&[b"config", b"get", b"maxmemory*"]),
            Reply::Array(vec![
                bulk_of(b"maxmemory"),
                bulk_of(b"0"),
                bulk_of(b"maxmemory-policy"),
                bulk_of(b"noeviction")
            ])
        );
        assert_eq!(
            run(&[b"config", b"get", b"maxclients", b"timeout"]),
            Reply::Array(vec![
                bulk_of(b"maxclients"),
                bulk_of(b"100"),
                bulk_of(b"timeout"),
                bulk_of(b"300")
            ])
        );
        assert_eq!(run(&[b"config", b"get", b"nope"]), Reply::Array(Vec::new()));
    }

    /// The checks redis-cli makes (by assertion) on a `COMMAND DOCS` map.
    fn check_doc(name: &Reply, doc: &Reply) {
        assert!(matches!(name, Reply::Bulk(_)));
        let Reply::Array(map) = doc else {
            panic!("a map")
        };
        let keys: Vec<&Reply> = map.iter().step_by(2).collect();
        for wanted in ["summary", "since", "group"] {
            assert!(
                keys.contains(&&bulk_of(wanted.as_bytes())),
                "{name:?} {wanted}"
            );
        }
        for pair in map.chunks(2) {
            if pair[0] == bulk_of(b"subcommands") {
                let Reply::Array(subs) = &pair[1] else {
                    panic!("subcommands map")
                };
                for sub in subs.chunks(2) {
                    check_doc(&sub[0], &sub[1]);
                }
            }
            if pair[0] == bulk_of(b"arguments") {
                let Reply::Array(args) = &pair[1] else {
                    panic!("arguments array")
                };
                assert!(!args.is_empty());
            }
        }
    }

    #[test]
    fn command_introspection() {
        assert_eq!(
            run(&[b"COMMAND", b"COUNT"]),
            Reply::Integer(COMMANDS.len() as i64)
        );
        let Reply::Array(all) = run(&[b"COMMAND"]) else {
            panic!("an array")
        };
        assert_eq!(all.len(), COMMANDS.len());
        let Reply::Array(get) = &all[2] else {
            panic!("an entry")
        };
        assert_eq!(get.len(), 10);
        assert_eq!(get[0], bulk_of(b"get"));
        assert_eq!(get[1], Reply::Integer(2));
        assert_eq!(get[3], Reply::Integer(1));
        let Reply::Array(docs) = run(&[b"COMMAND", b"DOCS"]) else {
            panic!("an array")
        };
        assert_eq!(docs.len(), 2 * COMMANDS.len());
        for pair in docs.chunks(2) {
            check_doc(&pair[0], &pair[1]);
        }
        let Reply::Array(one) = run(&[b"command", b"docs", b"GET", b"nope"]) else {
            panic!("an array")
        };
        assert_eq!(one.len(), 2);
        assert_eq!(
            run(&[b"command", b"info", b"get", b"nope"]),
            Reply::Array(vec![all[2].clone(), Reply::NullArray])
        );
        // Every command in the table is one `plan` knows.
        for spec in COMMANDS {
            let args: Vec<&[u8]> = std::iter::once(spec.name.as_bytes())
                .chain(std::iter::repeat_n(
                    &b"0"[..],
                    spec.arity.unsigned_abs() as usize - 1,
                ))
                .collect();
            let action = plan(&mut session(), request(&args), &mut Vec::new(), &facts());
            if let Action::Reply(Reply::Error(e)) = action {
                assert!(!e.starts_with("ERR unknown command"), "{}: {e}", spec.name);
            }
        }
    }

    fn sample_info() -> InfoData {
        InfoData {
            uptime_secs: 90_000,
            process_id: 42,
            connected_clients: 3,
            max_clients: 100,
            total_connections: 9,
            total_commands: 1000,
            rejected_connections: 1,
            keyspace_hits: 5,
            keyspace_misses: 6,
            persistence: "in-memory".into(),
            status: NodeStatus {
                name: "a".into(),
                addr: "127.0.0.1:9001".into(),
                live: 12,
                tombstones: 2,
                peers: vec![
                    PeerReport {
                        addr: "127.0.0.1:9002".into(),
                        state: PeerState::Reachable,
                        last_sync_ms_ago: Some(250),
                        writes_behind: Some(0),
                        last_round_bytes: 300,
                        tombstones_waiting: 0,
                    },
                    PeerReport {
                        addr: "127.0.0.1:9003".into(),
                        state: PeerState::Unreachable(Some(
                            "Connection refused (os error 111)".into(),
                        )),
                        last_sync_ms_ago: None,
                        writes_behind: None,
                        last_round_bytes: 0,
                        tombstones_waiting: 2,
                    },
                ],
            },
        }
    }

    #[test]
    fn info_sections() {
        let data = sample_info();
        let Reply::Bulk(all) = info(&[], &data) else {
            panic!("a bulk")
        };
        let all = String::from_utf8(all).expect("text");
        for title in [
            "# Server",
            "# Clients",
            "# Persistence",
            "# Stats",
            "# Keyspace",
            "# Netdb",
        ] {
            assert!(all.contains(&format!("{title}\r\n")), "{title}");
        }
        for line in [
            "redis_version:7.0.0",
            "tcp_port:9001",
            "uptime_in_days:1",
            "connected_clients:3",
            "netdb_persistence:in-memory",
            "total_commands_processed:1000",
            "db0:keys=12,expires=0,avg_ttl=0",
            "node_name:a",
            "peer0:addr=127.0.0.1:9002,state=reachable,last_sync_ms_ago=250,writes_behind=0,last_round_bytes=300,tombstones_waiting=0",
            "peer1_error:Connection refused (os error 111)",
        ] {
            assert!(all.contains(&format!("{line}\r\n")), "{line}");
        }
        assert!(all.contains("\r\n\r\n# Clients\r\n"), "sections apart");
        let Reply::Bulk(one) = info(&["stats".into()], &data) else {
            panic!("a bulk")
        };
        let one = String::from_utf8(one).expect("text");
        assert!(one.starts_with("# Stats\r\n"));
        assert!(!one.contains("# Server"));
        assert_eq!(info(&["nope".into()], &data), Reply::Bulk(Vec::new()));
    }

    #[test]
    fn status_reads_back_from_info() {
        let data = sample_info();
        let Reply::Bulk(text) = info(&["netdb".into()], &data) else {
            panic!("a bulk")
        };
        let text = String::from_utf8(text).expect("text");
        assert_eq!(parse_status(&text), Some(data.status.clone()));
        let mut alone = data.status.clone();
        alone.peers.clear();
        alone.live = 0;
        let Reply::Bulk(text) = info(
            &[],
            &InfoData {
                status: alone.clone(),
                ..data
            },
        ) else {
            panic!("a bulk")
        };
        let text = String::from_utf8(text).expect("text");
        assert!(!text.contains("# Keyspace\r\ndb0"));
        assert_eq!(parse_status(&text), Some(alone));
        assert_eq!(parse_status("# Server\r\nredis_version:7\r\n"), None);
    }
}
