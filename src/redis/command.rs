//! One command, one entry: what a [`Command`] is, and [`dispatch`], which
//! runs a request through the table ([`crate::redis::cmd`]) once.
//!
//! A [`Command`] holds everything about a command: its name, arity,
//! flags, key positions, ACL categories, documentation and handler.
//! `COMMAND`, `COMMAND INFO`, `COMMAND DOCS` and the arity errors are all
//! generated from it, so adding a command is adding an entry (and its
//! handler) to one file of [`crate::redis::cmd`].
//!
//! [`dispatch`] finds the request's entry case-insensitively (and its
//! subcommand's, for a container such as `CLIENT`), checks the argument
//! count against the entry's arity with Redis's texts, and runs the
//! handler. A handler answers at once ([`Action::Reply`]), or returns the
//! work to run on the store thread ([`Action::Store`]): a closure that
//! reads and writes through the store thread's
//! [`Db`](crate::engine::Db) and builds its own [`Answer`], so no reply is
//! ever matched to its request by position. The I/O thread
//! ([`crate::redis::client`]) sends the work of a whole batch of pipelined
//! requests to the store thread in one trip, then writes the replies in
//! request order. Writes go through `Db::put` and `Db::delete`, so a write
//! made here is clocked, replicated and logged like any other. What needs the
//! running node (`INFO`, `NETDB.STATUS`, `TIME`, `SLOWLOG`, `WAIT`,
//! `CONFIG RESETSTAT`) comes back as [`Action::Node`]: the shell answers
//! it, gathering a [`Status`] for [`NodeQuery::reply`] where one is needed.
//!
//! [`dispatch_traced`] also says which entry ran or was refused
//! ([`Outcome`]), and [`slot_of`] gives each entry its place in the
//! per-command counters (`INFO commandstats`), which the shell keeps.
//!
//! The replies, and the error texts where Redis has the command, are
//! Redis's own, so client libraries and tools see what they expect.
//! Options netdb does not have are refused with an error that says so,
//! never ignored.
//!
//! Pure: no sockets, threads or clock, and no command of its own: every
//! command lives in [`crate::redis::cmd`].

use crate::core::version::Stamp;
use crate::engine::{Command as StoreWork, Database, Refusable};
use crate::redis::auth::ClientAuth;
use crate::redis::cmd;
use crate::redis::resp::{Protocol, Reply, Request};
use crate::status::activity::Activity;
use crate::status::{Persistence, Status};
use crate::store::WriteError;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

/// The Redis version netdb answers as (in `INFO` and `HELLO`): the
/// version whose commands and replies it follows.
pub const REDIS_VERSION: &str = "7.0.0";

/// What one connection remembers between its commands.
///
/// A clone shares the original's watched keys (the store thread fills
/// them in, see `Watched`).
#[derive(Debug, Clone)]
pub struct Session {
    /// Unique among this node's connections (`CLIENT ID`).
    pub id: u64,
    /// Set by `CLIENT SETNAME` or `HELLO ... SETNAME`.
    pub name: Option<Vec<u8>>,
    /// The client's address.
    pub addr: String,
    /// The node's address on this connection.
    pub laddr: String,
    /// The connection's file descriptor (`CLIENT INFO`'s `fd`); -1 where
    /// there is none, as for Redis's internal clients.
    pub fd: i64,
    /// Whole seconds since the connection was accepted, as of the command
    /// being dispatched (`CLIENT INFO`'s `age`): the shell, which reads
    /// the clock, sets it before each dispatch.
    pub age_secs: u64,
    /// The client library's name and version, as `CLIENT SETINFO`
    /// gave them.
    pub lib_name: Option<Vec<u8>>,
    /// See `lib_name`.
    pub lib_ver: Option<Vec<u8>>,
    /// Whether this is another member's forwarding connection
    /// (`NETDB.PROXY`): its commands are served here, never forwarded.
    pub proxied: bool,
    /// RESP2 until `HELLO 3`.
    protocol: Protocol,
    /// Whether `AUTH` (or `HELLO ... AUTH`) succeeded; only asked when
    /// the node has a password.
    authenticated: bool,
    /// The commands queued since `MULTI`, while one is open.
    transaction: Option<Transaction>,
    /// The keys `WATCH`ed, with the versions they had.
    watched: Watched,
    /// The database selected (`SELECT`), 0 to begin with.
    database: Database,
    /// Whether this connection has ever selected a database other than
    /// 0: from then on each piece of its store work carries the database
    /// it was dispatched in (see [`run`]). A connection that never does
    /// pays nothing for databases: its work runs in database 0, the
    /// store thread's default.
    selected_other: bool,
}

/// The commands of an open `MULTI`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Transaction {
    /// In order, checked (known command, right arity) as they came.
    pub(crate) queued: Vec<Request>,
    /// Whether a command was refused while queuing: `EXEC` then refuses
    /// the whole transaction.
    pub(crate) failed: bool,
    /// The queued arguments' bytes, held to [`Facts::max_request_len`].
    pub(crate) bytes: usize,
}

/// The keys a connection watches and what each was when watched.
/// Shared with the work that runs on the store thread: `WATCH` fills it
/// in there, and `EXEC` compares and empties it there, so pipelined
/// `WATCH`, `MULTI` ... `EXEC` see each other in order.
/// A map, so that watching many keys, or one key many times, costs one
/// lookup per key.
pub(crate) type Watched = Arc<Mutex<HashMap<(crate::engine::Database, Vec<u8>), WatchedKey>>>;

/// A watched key as `WATCH` found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WatchedKey {
    /// Its version (`None`: no version at all); any write gives a new one.
    pub(crate) version: Option<(Stamp, u64)>,
    /// Whether it had a live value: one that expires before `EXEC` aborts
    /// the transaction, as in Redis 7, though expiring is no write.
    pub(crate) live: bool,
}

impl Session {
    /// A session with no name yet, speaking RESP2, not authenticated, in
    /// no transaction.
    pub fn new(id: u64, addr: String, laddr: String) -> Session {
        Session {
            id,
            name: None,
            addr,
            laddr,
            fd: -1,
            age_secs: 0,
            lib_name: None,
            lib_ver: None,
            proxied: false,
            protocol: Protocol::Resp2,
            authenticated: false,
            transaction: None,
            watched: Watched::default(),
            database: Database::ZERO,
            selected_other: false,
        }
    }

    /// Selects database `db`: the commands dispatched from now on read
    /// and write its keys.
    pub fn select(&mut self, db: Database) {
        self.database = db;
        self.selected_other |= !db.is_zero();
    }

    /// The database selected.
    pub fn database(&self) -> Database {
        self.database
    }

    /// The protocol this connection's replies are encoded in
    /// ([`Reply::write_as`]). `HELLO 3` changes it, and `HELLO`'s own
    /// reply is already in the new one: encode each reply with the
    /// protocol as it is right after that reply's own [`dispatch`].
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    pub(crate) fn set_protocol(&mut self, protocol: Protocol) {
        self.protocol = protocol;
    }

    /// Whether this connection has authenticated.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    pub(crate) fn set_authenticated(&mut self) {
        self.authenticated = true;
    }

    /// Whether a `MULTI` is open.
    pub fn in_transaction(&self) -> bool {
        self.transaction.is_some()
    }

    /// How many commands are queued, while a `MULTI` is open.
    pub fn queued(&self) -> Option<usize> {
        self.transaction.as_ref().map(|t| t.queued.len())
    }

    pub(crate) fn transaction_mut(&mut self) -> &mut Option<Transaction> {
        &mut self.transaction
    }

    pub(crate) fn watched(&self) -> &Watched {
        &self.watched
    }

    /// `RESET`: the connection as it was when it connected, as Redis
    /// 6.2+ leaves it: no transaction, database 0, RESP2, no name, and
    /// not authenticated (which only matters with a password). The
    /// library's name and version stay, as in Redis: the same library
    /// is still behind the connection. The watched keys are the
    /// caller's to forget, on the store thread, after the work already
    /// sent there.
    pub(crate) fn reset(&mut self) {
        self.transaction = None;
        self.database = Database::ZERO;
        self.protocol = Protocol::Resp2;
        self.name = None;
        self.authenticated = false;
    }
}

/// Settings that some commands report (`CONFIG GET`), and the client
/// password every connection checks.
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
    /// How the node keeps its data.
    pub persistence: Persistence,
    /// The client password, if any, and the failed attempts' count.
    pub auth: ClientAuth,
    /// How many databases there are (`--databases`): `SELECT` takes 0 up
    /// to one less.
    pub databases: usize,
    /// `--slowlog-log-slower-than`, in microseconds; negative: off.
    pub slowlog_slower_than: i64,
    /// `--slowlog-max-len`.
    pub slowlog_max_len: usize,
}

/// What to do with one request.
pub enum Action {
    /// Send this reply; the store is not needed.
    Reply(Reply),
    /// Run this on the store thread, with the rest of the batch; its
    /// answer is the reply.
    Store(StoreWork<Answer>),
    /// Send this reply, then close the connection (`QUIT`).
    Close(Reply),
    /// The reply needs the running node's status: the shell gathers a
    /// [`Status`] and calls [`NodeQuery::reply`].
    Node(NodeQuery),
}

/// A command answered by the shell, from what only the running node
/// knows: its [`Status`], its clock, its counters and slow log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeQuery {
    /// `INFO` with these sections (lowercase).
    Info {
        /// The sections asked for.
        sections: Vec<String>,
        /// Failed `AUTH` attempts when it was asked
        /// (`acl_access_denied_auth`).
        denied_auth: u64,
    },
    /// `NETDB.STATUS`.
    Status,
    /// `TIME`: the node's wall clock.
    Time,
    /// `SLOWLOG GET|LEN|RESET`.
    Slowlog(SlowlogQuery),
    /// `CONFIG RESETSTAT`: the counters back to zero.
    ResetStat,
    /// `WAIT numreplicas timeout`: how many peers have acknowledged this
    /// node's writes up to the one before it (so this client's too); the
    /// connection blocks until there are enough (see
    /// [`crate::redis::client`]), its own store work asking.
    Wait {
        /// The peers the client asked for.
        replicas: i64,
        /// How long to wait for them, in milliseconds; 0: for ever.
        timeout_ms: u64,
    },
    /// `CLUSTER ...` and `NETDB.LEAVE`: the member list.
    Cluster(cmd::cluster::ClusterQuery),
}

/// What `SLOWLOG` asks of the slow log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowlogQuery {
    /// The newest `count` entries; all for `None`.
    Get {
        /// How many.
        count: Option<usize>,
    },
    /// How many entries there are.
    Len,
    /// Empty it.
    Reset,
}

impl NodeQuery {
    /// Whether the answer is the status, taken on the store thread at one
    /// instant. `WAIT` has store work of its own; the others are answered
    /// on the I/O thread.
    pub fn needs_store(&self) -> bool {
        matches!(self, NodeQuery::Info { .. } | NodeQuery::Status)
    }

    /// The reply of `INFO` or `NETDB.STATUS`, from the node's status and
    /// the client side's counters; `None` for the other queries.
    pub fn reply(&self, status: &Status, activity: &Activity) -> Option<Reply> {
        match self {
            NodeQuery::Info {
                sections,
                denied_auth,
            } => Some(cmd::info::info(sections, status, activity, *denied_auth)),
            NodeQuery::Status => Some(cmd::netdb::encode_status(status)),
            _ => None,
        }
    }
}

/// Reads that found a value and reads that did not, for `INFO`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Gets that found a value.
    pub hits: u64,
    /// Gets that found none.
    pub misses: u64,
}

impl Tally {
    /// Counts `other`'s reads too.
    pub fn add(&mut self, other: Tally) {
        self.hits += other.hits;
        self.misses += other.misses;
    }
}

impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Reply(r) => f.debug_tuple("Reply").field(r).finish(),
            Action::Store(_) => f.write_str("Store(..)"),
            Action::Close(r) => f.debug_tuple("Close").field(r).finish(),
            Action::Node(q) => f.debug_tuple("Node").field(q).finish(),
        }
    }
}

/// What a data command's work on the store thread answers: its reply, and
/// what its reads found (for `INFO`'s `keyspace_hits` and
/// `keyspace_misses`).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The reply to the client.
    pub reply: Reply,
    /// Reads that found a value and reads that did not.
    pub tally: Tally,
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Answer {
        Answer {
            reply,
            tally: Tally::default(),
        }
    }
}

impl Refusable for Answer {
    fn refused(why: &WriteError) -> Answer {
        refused(why).into()
    }

    fn weight(&self) -> usize {
        reply_weight(&self.reply)
    }
}

/// A reply's size on the wire, near enough to hold a connection to its
/// output limit.
pub fn reply_weight(reply: &Reply) -> usize {
    match reply {
        Reply::Bulk(data) => data.len() + 16,
        Reply::Array(items) | Reply::Set(items) => {
            16 + items.iter().map(reply_weight).sum::<usize>()
        }
        Reply::Map(pairs) => {
            16 + pairs
                .iter()
                .map(|(k, v)| reply_weight(k) + reply_weight(v))
                .sum::<usize>()
        }
        Reply::Verbatim { text, .. } => text.len() + 20,
        Reply::Simple(text) | Reply::Error(text) | Reply::BigNumber(text) => text.len() + 3,
        _ => 16,
    }
}

/// A refused write's reply.
pub(crate) fn refused(why: &WriteError) -> Reply {
    Reply::Error(format!("ERR {why}"))
}

/// An array of bulks.
pub(crate) fn bulks(items: Vec<Vec<u8>>) -> Reply {
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

/// A required argument named `name` of `kind`.
pub const fn arg(name: &'static str, kind: &'static str) -> Arg {
    Arg {
        name,
        kind,
        token: None,
        optional: false,
        multiple: false,
        parts: &[],
    }
}

/// `a`, which may be left out.
pub const fn optional(a: Arg) -> Arg {
    Arg {
        optional: true,
        ..a
    }
}

/// `a`, which may be repeated.
pub const fn multiple(a: Arg) -> Arg {
    Arg {
        multiple: true,
        ..a
    }
}

/// `a`, introduced by the word `token`.
pub const fn token(token: &'static str, a: Arg) -> Arg {
    Arg {
        token: Some(token),
        ..a
    }
}

/// Where a command's keys are among its arguments, as `COMMAND INFO`
/// reports them (the name is argument 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPositions {
    /// The first key; 0 for a command without keys.
    pub first: i64,
    /// The last key; -1 for the last argument.
    pub last: i64,
    /// The step from one key to the next.
    pub step: i64,
}

impl KeyPositions {
    /// Keys from `first` to `last` (-1: the last argument), `step` apart.
    pub const fn new(first: i64, last: i64, step: i64) -> KeyPositions {
        KeyPositions { first, last, step }
    }
}

/// No keys.
pub const NO_KEYS: KeyPositions = KeyPositions::new(0, 0, 0);

/// What `COMMAND DOCS` says of a command.
#[derive(Debug)]
pub struct Docs {
    /// One line of help.
    pub summary: &'static str,
    /// The Redis version that introduced it (netdb's own, for a netdb
    /// command).
    pub since: &'static str,
    /// Redis's command group.
    pub group: &'static str,
    /// Its arguments, for redis-cli's hints.
    pub args: &'static [Arg],
}

impl Docs {
    /// Docs in `group` with nothing else said yet, for entries to fill in
    /// with `..Docs::in_group(...)`.
    pub const fn in_group(group: &'static str) -> Docs {
        Docs {
            summary: "",
            since: "1.0.0",
            group,
            args: &[],
        }
    }
}

/// A request on its way to its handler.
pub struct Call<'a> {
    /// The entry that matched (the subcommand's, for a container).
    pub command: &'static Command,
    /// The arguments, the command name first; their count suits the arity.
    pub args: Vec<Vec<u8>>,
    /// The connection's state.
    pub session: &'a mut Session,
    /// Settings some commands report.
    pub facts: &'a Facts,
}

impl Call<'_> {
    /// Redis's error for a wrong argument count, for a handler that checks
    /// more than the arity says (`PING`, `MSET`).
    pub fn wrong_arity(&self) -> Action {
        wrong_arity(self.command)
    }
}

/// What runs a command.
pub type Handler = fn(Call<'_>) -> Action;

/// A command: everything about it, in one entry of the table.
#[derive(Debug)]
pub struct Command {
    /// Lowercase; a subcommand is `container|sub`.
    pub name: &'static str,
    /// Argument count including the name; negative: at least that many.
    pub arity: i32,
    /// Redis's command flags.
    pub flags: &'static [&'static str],
    /// Redis's ACL categories, in Redis's order.
    pub acl: &'static [&'static str],
    /// Where its keys are.
    pub keys: KeyPositions,
    /// Its documentation.
    pub docs: Docs,
    /// What runs it.
    pub run: Handler,
    /// Its subcommands, for a container (`CLIENT`, `CONFIG`, `COMMAND`).
    pub subcommands: &'static [Command],
}

impl Command {
    /// A command with no flags, keys, docs or subcommands, for entries to
    /// fill in with `..Command::new(...)`.
    pub const fn new(name: &'static str, arity: i32, run: Handler) -> Command {
        Command {
            name,
            arity,
            flags: &[],
            acl: &[],
            keys: NO_KEYS,
            docs: Docs::in_group(""),
            run,
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
    pub fn short_name(&self) -> &'static str {
        self.name.split_once('|').map_or(self.name, |(_, sub)| sub)
    }
}

impl std::fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("command", &self.command.name)
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

/// The entry among `commands` named `name`, case-insensitively.
pub fn find_in(commands: &'static [Command], name: &[u8]) -> Option<&'static Command> {
    // The short name is the entry's name after its `|`, if any: compared
    // as the tail of the name, so that the lookup on every request's path
    // does not search each entry's name for the `|`.
    commands.iter().find(|c| {
        let full = c.name.as_bytes();
        full.len() >= name.len()
            && full[full.len() - name.len()..].eq_ignore_ascii_case(name)
            && (full.len() == name.len() || full[full.len() - name.len() - 1] == b'|')
            && c.short_name().len() == name.len()
    })
}

/// What [`dispatch_traced`] did with a request, for the counters
/// (`INFO commandstats`).
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    /// No such command (or subcommand).
    Unknown,
    /// The command was refused before its handler (wrong arity, not
    /// authenticated, no such database, a transaction too large).
    Rejected(&'static Command),
    /// Queued inside `MULTI`; it runs as part of `EXEC`.
    Queued(&'static Command),
    /// Its handler ran.
    Ran(&'static Command),
}

/// Runs one request: finds its entry, checks its arity and that the
/// connection may run it (authenticated, when the node has a password),
/// then queues it (inside `MULTI`) or calls its handler, which answers it
/// or says what to run on the store thread.
pub fn dispatch(session: &mut Session, request: Request, facts: &Facts) -> Action {
    dispatch_traced(session, request, facts).1
}

/// [`dispatch`], also saying which command it was and whether it ran.
pub fn dispatch_traced(
    session: &mut Session,
    request: Request,
    facts: &Facts,
) -> (Outcome, Action) {
    let command = match lookup_traced(&request.args) {
        Ok(command) => command,
        Err((command, refusal)) => {
            let outcome = command.map_or(Outcome::Unknown, Outcome::Rejected);
            return (outcome, refuse(session, refusal));
        }
    };
    let rejected = |session: &mut Session, text: String| {
        (
            Outcome::Rejected(command),
            refuse(session, Reply::Error(text)),
        )
    };
    if facts.auth.is_required() && !session.authenticated && !command.flags.contains(&"no_auth") {
        return rejected(session, "NOAUTH Authentication required.".into());
    }
    if let Some(transaction) = &mut session.transaction {
        if !runs_inside_multi(command) {
            // A queue is held until EXEC: bounded like one request, so a
            // client cannot grow it without limit.
            let bytes = request.args.iter().map(Vec::len).sum::<usize>();
            let total = transaction.bytes.saturating_add(bytes);
            if total > facts.max_request_len {
                let max = facts.max_request_len;
                return rejected(
                    session,
                    format!(
                        "ERR a transaction's queued commands are over the limit of {max} bytes"
                    ),
                );
            }
            transaction.bytes = total;
            transaction.queued.push(request);
            return (
                Outcome::Queued(command),
                Action::Reply(Reply::Simple("QUEUED".into())),
            );
        }
    }
    (
        Outcome::Ran(command),
        run(command, request.args, session, facts),
    )
}

/// Calls `command`'s handler: the request has passed every check.
///
/// Its store work, if any, runs in the database selected when the
/// handler was called: a `SELECT` later in the same pipeline, or queued
/// later in the same transaction, does not move it. (The database is
/// taken before the handler runs, so an `EXEC` whose queue selects runs
/// its watch check in the database it was sent in, and each queued
/// command in its own.)
pub(crate) fn run(
    command: &'static Command,
    args: Vec<Vec<u8>>,
    session: &mut Session,
    facts: &Facts,
) -> Action {
    let database = session.database;
    let action = (command.run)(Call {
        command,
        args,
        session,
        facts,
    });
    match action {
        // Work is set to its database only once the connection has left
        // database 0, so that the many clients that never do pay nothing.
        Action::Store(work) if session.selected_other => Action::Store(in_database(database, work)),
        action => action,
    }
}

/// `work`, run in `database` (and the database it found put back after,
/// for the work of an `EXEC` around it).
fn in_database(database: Database, work: StoreWork<Answer>) -> StoreWork<Answer> {
    Box::new(move |db| db.in_database(database, work))
}

/// The entry for `args` (the subcommand's, for a container), with its
/// arity checked; or Redis's error.
pub(crate) fn lookup(args: &[Vec<u8>]) -> Result<&'static Command, Reply> {
    lookup_traced(args).map_err(|(_, reply)| reply)
}

/// [`lookup`], with the entry found when only its arity is wrong.
pub(crate) fn lookup_traced(
    args: &[Vec<u8>],
) -> Result<&'static Command, (Option<&'static Command>, Reply)> {
    let Some(name) = args.first() else {
        // Empty requests are dropped by the decoder; answer like Redis.
        return Err((None, unknown_command(&[Vec::new()])));
    };
    let Some(mut command) = cmd::find(name) else {
        return Err((None, unknown_command(args)));
    };
    if !command.subcommands.is_empty() && args.len() >= 2 {
        match find_in(command.subcommands, &args[1]) {
            Some(sub) => command = sub,
            None => {
                return Err((
                    None,
                    Reply::Error(format!(
                        "ERR unknown subcommand '{}'. Try {} HELP.",
                        truncated(shown(&args[1]), 128),
                        command.name.to_ascii_uppercase()
                    )),
                ))
            }
        }
    }
    if !command.accepts(args.len()) {
        return Err((Some(command), wrong_arity_reply(command)));
    }
    Ok(command)
}

/// Every command and subcommand of the table, each once, in a fixed
/// order: a command's place here is its slot in the per-command
/// counters ([`slot_of`]).
pub fn slots() -> &'static [&'static Command] {
    &slot_table().commands
}

/// The slot of `command`, an entry of the table ([`slots`]); `None` for
/// a command that is not one.
///
/// Found from the entry's address among the table's slices, so it costs
/// a few comparisons and no hashing on every command's path.
pub fn slot_of(command: &'static Command) -> Option<usize> {
    let addr = std::ptr::from_ref(command) as usize;
    let size = std::mem::size_of::<Command>();
    slot_table()
        .ranges
        .iter()
        .find(|(start, len, _)| addr >= *start && addr < start + len * size)
        .map(|(start, _, base)| base + (addr - start) / size)
}

/// The table flattened, and where each of its slices starts in it.
struct SlotTable {
    commands: Vec<&'static Command>,
    /// Per slice of the table: its address, its length, its first slot.
    ranges: Vec<(usize, usize, usize)>,
}

fn slot_table() -> &'static SlotTable {
    static TABLE: OnceLock<SlotTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        fn add(table: &mut SlotTable, slice: &'static [Command]) {
            table
                .ranges
                .push((slice.as_ptr() as usize, slice.len(), table.commands.len()));
            table.commands.extend(slice.iter());
            for command in slice {
                if !command.subcommands.is_empty() {
                    add(table, command.subcommands);
                }
            }
        }
        let mut table = SlotTable {
            commands: Vec::new(),
            ranges: Vec::new(),
        };
        for group in cmd::GROUPS {
            add(&mut table, group);
        }
        table
    })
}

/// The commands that run at once inside `MULTI` rather than being queued,
/// as in Redis.
fn runs_inside_multi(command: &Command) -> bool {
    matches!(
        command.name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// A request refused before its handler: inside `MULTI`, the refusal
/// also dooms the transaction (`EXEC` answers `EXECABORT`).
fn refuse(session: &mut Session, reply: Reply) -> Action {
    if let Some(transaction) = &mut session.transaction {
        transaction.failed = true;
    }
    Action::Reply(reply)
}

/// An argument as Redis prints it with `%s`: up to a NUL byte, lossily.
pub(crate) fn shown(arg: &[u8]) -> String {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
    String::from_utf8_lossy(&arg[..end]).into_owned()
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub(crate) fn truncated(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// An error reply.
pub(crate) fn error(text: impl Into<String>) -> Action {
    Action::Reply(Reply::Error(text.into()))
}

/// Redis's `ERR syntax error`.
pub(crate) fn syntax_error() -> Action {
    error("ERR syntax error")
}

/// Redis's error for an argument that should be an integer.
pub(crate) fn not_an_integer() -> Action {
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

fn wrong_arity(command: &Command) -> Action {
    Action::Reply(wrong_arity_reply(command))
}

fn wrong_arity_reply(command: &Command) -> Reply {
    Reply::Error(format!(
        "ERR wrong number of arguments for '{}' command",
        command.name
    ))
}

/// A decimal integer as Redis reads one from an argument.
pub(crate) fn parse_i64(arg: &[u8]) -> Option<i64> {
    std::str::from_utf8(arg)
        .ok()
        .filter(|s| !s.starts_with('+') && !s.is_empty())
        .and_then(|s| s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::cmd::testing::{err, facts, request, run, session};

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
            (&[b"netdb.status", b"x"], "netdb.status"),
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
    fn every_command_has_its_own_slot() {
        let all = slots();
        assert!(all.len() > cmd::count(), "subcommands have slots too");
        for (i, command) in all.iter().enumerate() {
            assert_eq!(slot_of(command), Some(i), "{}", command.name);
        }
        let names: std::collections::HashSet<&str> = all.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), all.len(), "one slot per name");
        let get = cmd::find(b"GET").expect("get");
        assert_eq!(all[slot_of(get).expect("a slot")].name, "get");
        let outside = Command::new("nope", 1, |_| Action::Reply(Reply::ok()));
        let outside: &'static Command = Box::leak(Box::new(outside));
        assert_eq!(slot_of(outside), None);
    }

    #[test]
    fn dispatch_says_what_ran_and_what_was_refused() {
        let name = |outcome: Outcome| match outcome {
            Outcome::Unknown => "?".to_owned(),
            Outcome::Rejected(c) => format!("rejected {}", c.name),
            Outcome::Queued(c) => format!("queued {}", c.name),
            Outcome::Ran(c) => format!("ran {}", c.name),
        };
        let mut s = session();
        let mut go = |args: &[&[u8]]| name(dispatch_traced(&mut s, request(args), &facts()).0);
        assert_eq!(go(&[b"PING"]), "ran ping");
        assert_eq!(go(&[b"nope"]), "?");
        assert_eq!(go(&[b"config", b"nope"]), "?");
        assert_eq!(go(&[b"get"]), "rejected get");
        assert_eq!(go(&[b"config", b"get"]), "rejected config|get");
        assert_eq!(go(&[b"config", b"resetstat"]), "ran config|resetstat");
        assert_eq!(go(&[b"MULTI"]), "ran multi");
        assert_eq!(go(&[b"get", b"k"]), "queued get");
        assert_eq!(go(&[b"exec"]), "ran exec");
        let locked = crate::redis::cmd::testing::facts_with_password("pw");
        let (outcome, _) = dispatch_traced(&mut session(), request(&[b"get", b"k"]), &locked);
        assert_eq!(name(outcome), "rejected get");
    }

    #[test]
    fn node_queries_are_left_to_the_shell() {
        let info = dispatch(
            &mut session(),
            request(&[b"INFO", b"Stats", b"netdb"]),
            &facts(),
        );
        assert!(
            matches!(&info, Action::Node(NodeQuery::Info { sections, .. }) if sections == &["stats", "netdb"]),
            "{info:?}"
        );
        let status = dispatch(&mut session(), request(&[b"netdb.STATUS"]), &facts());
        assert!(
            matches!(status, Action::Node(NodeQuery::Status)),
            "{status:?}"
        );
    }
}
