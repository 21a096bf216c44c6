//! The connection commands: `PING`, `ECHO`, `SELECT`, `QUIT`, `RESET`,
//! `AUTH`, `HELLO` and `CLIENT ...`. They answer from the connection's
//! [`Session`] and the node's [`Facts`] alone (`AUTH` checks the password
//! in [`crate::redis::auth`]) and must never append store ops.

use crate::engine::Database;
use crate::redis::cmd::introspection::{container, help_entry};
use crate::redis::command::{
    arg, error, not_an_integer, optional, parse_i64, shown, syntax_error, token, truncated, Action,
    Arg, Call, Command, Docs, Facts, Session, REDIS_VERSION,
};
use crate::redis::resp::{Protocol, Reply};

const FAST: &[&str] = &["@fast", "@connection"];
const HANDSHAKE: &[&str] = &[
    "noscript",
    "loading",
    "stale",
    "fast",
    "no_auth",
    "allow_busy",
];
const CLIENT_FLAGS: &[&str] = &["noscript", "loading", "stale"];
const CLIENT_ACL: &[&str] = &["@slow", "@connection"];

/// What this group's docs say unless an entry says otherwise.
const DOCS: Docs = Docs::in_group("connection");

/// The connection group's entries.
pub const COMMANDS: &[Command] = &[
    Command {
        flags: &["fast"],
        acl: FAST,
        docs: Docs {
            summary: "Ping the server",
            args: &[optional(arg("message", "string"))],
            ..DOCS
        },
        ..Command::new("ping", -1, ping)
    },
    Command {
        flags: &["loading", "stale", "fast"],
        acl: FAST,
        docs: Docs {
            summary: "Echo the given string",
            args: &[arg("message", "string")],
            ..DOCS
        },
        ..Command::new("echo", 2, echo)
    },
    Command {
        flags: &["loading", "stale", "fast"],
        acl: FAST,
        docs: Docs {
            summary: "Change the selected database for the current connection",
            args: &[arg("index", "integer")],
            ..DOCS
        },
        ..Command::new("select", 2, select)
    },
    Command {
        flags: HANDSHAKE,
        acl: FAST,
        docs: Docs {
            summary: "Close the connection",
            ..DOCS
        },
        ..Command::new("quit", -1, quit)
    },
    Command {
        flags: HANDSHAKE,
        acl: FAST,
        docs: Docs {
            summary: "Reset the connection",
            since: "6.2.0",
            ..DOCS
        },
        ..Command::new("reset", 1, reset)
    },
    Command {
        flags: HANDSHAKE,
        acl: FAST,
        docs: Docs {
            summary: "Authenticate to the server",
            args: &[
                optional(arg("username", "string")),
                arg("password", "string"),
            ],
            ..DOCS
        },
        ..Command::new("auth", -2, auth)
    },
    Command {
        flags: HANDSHAKE,
        acl: FAST,
        docs: Docs {
            summary: "Handshake with the server: the protocol (2 or 3), a password, a name",
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
            ..DOCS
        },
        ..Command::new("hello", -1, hello)
    },
    Command {
        acl: &["@slow"],
        docs: Docs {
            summary: "A container for client connection commands",
            since: "2.4.0",
            ..DOCS
        },
        subcommands: &[
            Command {
                flags: CLIENT_FLAGS,
                acl: CLIENT_ACL,
                docs: Docs {
                    summary: "Set the current connection name",
                    since: "2.6.9",
                    args: &[arg("connection-name", "string")],
                    ..DOCS
                },
                ..Command::new("client|setname", 3, client_setname)
            },
            Command {
                flags: CLIENT_FLAGS,
                acl: CLIENT_ACL,
                docs: Docs {
                    summary: "Get the current connection name",
                    since: "2.6.9",
                    ..DOCS
                },
                ..Command::new("client|getname", 2, client_getname)
            },
            Command {
                flags: CLIENT_FLAGS,
                acl: CLIENT_ACL,
                docs: Docs {
                    summary: "Returns the client ID for the current connection",
                    since: "5.0.0",
                    ..DOCS
                },
                ..Command::new("client|id", 2, client_id)
            },
            Command {
                flags: CLIENT_FLAGS,
                acl: CLIENT_ACL,
                docs: Docs {
                    summary: "Returns information about the current client connection",
                    since: "6.2.0",
                    ..DOCS
                },
                ..Command::new("client|info", 2, client_info)
            },
            Command {
                flags: &["admin", "noscript", "loading", "stale"],
                acl: &["@admin", "@slow", "@dangerous", "@connection"],
                docs: Docs {
                    summary: "Get the list of client connections (netdb: this one)",
                    since: "2.4.0",
                    ..DOCS
                },
                ..Command::new("client|list", -2, client_info)
            },
            Command {
                flags: CLIENT_FLAGS,
                acl: CLIENT_ACL,
                docs: Docs {
                    summary: "Set client or connection specific info",
                    since: "7.2.0",
                    args: &[arg("attr", "string"), arg("value", "string")],
                    ..DOCS
                },
                ..Command::new("client|setinfo", 4, client_setinfo)
            },
            help_entry("client|help", "connection", CLIENT_ACL),
        ],
        ..Command::new("client", -2, container)
    },
];

fn ping(call: Call<'_>) -> Action {
    let n = call.args.len();
    // Redis checks this by hand: PING's arity says "at least one".
    if n > 2 {
        return call.wrong_arity();
    }
    let mut args = call.args;
    Action::Reply(match args.pop() {
        Some(message) if n == 2 => Reply::Bulk(message),
        _ => Reply::Simple("PONG".into()),
    })
}

fn echo(mut call: Call<'_>) -> Action {
    Action::Reply(Reply::Bulk(call.args.swap_remove(1)))
}

/// `SELECT index`: the connection's later commands use database `index`
/// (0 up to one less than `--databases`).
fn select(call: Call<'_>) -> Action {
    match parse_i64(&call.args[1]) {
        Some(index) => match Database::checked(index, call.facts.databases) {
            Some(db) => {
                call.session.select(db);
                Action::Reply(Reply::ok())
            }
            None => error("ERR DB index is out of range"),
        },
        None => not_an_integer(),
    }
}

fn quit(_: Call<'_>) -> Action {
    Action::Close(Reply::ok())
}

/// `RESET`: the connection back as it was when it connected (see
/// [`Session::reset`]), answering `+RESET`, even inside `MULTI`, as
/// Redis does; node-redis sends it to clean a pooled connection, and
/// redis-py's `reset()`. The watched keys are forgotten on the store
/// thread, in order with the work sent before, as `UNWATCH` does.
fn reset(call: Call<'_>) -> Action {
    call.session.reset();
    let watched = call.session.watched().clone();
    Action::Store(Box::new(move |_| {
        watched.lock().clear();
        Reply::Simple("RESET".into()).into()
    }))
}

/// `AUTH [username] password`.
fn auth(call: Call<'_>) -> Action {
    let (user, pass) = match call.args.as_slice() {
        [_, pass] => (None, pass),
        [_, user, pass] => (Some(user.as_slice()), pass),
        _ => return syntax_error(),
    };
    Action::Reply(match authenticate(call.session, call.facts, user, pass) {
        Ok(()) => Reply::ok(),
        Err(refusal) => refusal,
    })
}

/// Checks a password and marks the session authenticated if it is right.
fn authenticate(
    session: &mut Session,
    facts: &Facts,
    user: Option<&[u8]>,
    pass: &[u8],
) -> Result<(), Reply> {
    facts
        .auth
        .check(user, pass)
        .map_err(|denied| Reply::Error(denied.text().into()))?;
    session.set_authenticated();
    Ok(())
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`: switches the
/// connection to RESP2 or RESP3, authenticates, names it, and answers
/// with the server's facts as a map (in the protocol just chosen). Every
/// option is checked before any takes effect, as in Redis.
fn hello(call: Call<'_>) -> Action {
    let (args, session, facts) = (&call.args, call.session, call.facts);
    let mut protocol = session.protocol();
    if let Some(version) = args.get(1) {
        protocol = match parse_i64(version) {
            Some(2) => Protocol::Resp2,
            Some(3) => Protocol::Resp3,
            Some(_) => return error("NOPROTO unsupported protocol version"),
            None => return error("ERR Protocol version is not an integer or out of range"),
        };
    }
    let mut credentials = None;
    let mut name = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let option = args[i].to_ascii_uppercase();
        if option == b"AUTH" && more >= 2 {
            credentials = Some((&args[i + 1], &args[i + 2]));
            i += 3;
        } else if option == b"SETNAME" && more >= 1 {
            name = Some(&args[i + 1]);
            i += 2;
        } else {
            return error(format!(
                "ERR Syntax error in HELLO option '{}'",
                truncated(shown(&args[i]), 128)
            ));
        }
    }
    match credentials {
        Some((user, pass)) => {
            if let Err(refusal) = authenticate(session, facts, Some(user), pass) {
                return Action::Reply(refusal);
            }
        }
        None if facts.auth.is_required() && !session.is_authenticated() => {
            return error(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise \
                 the HELLO AUTH <user> <pass> option can be used to authenticate the client and \
                 select the RESP protocol version at the same time",
            )
        }
        None => {}
    }
    if let Some(name) = name {
        if let Err(e) = check_name(name) {
            return Action::Reply(e);
        }
        session.name = (!name.is_empty()).then(|| name.to_vec());
    }
    session.set_protocol(protocol);
    let text = |s: &str| Reply::Bulk(s.as_bytes().to_vec());
    Action::Reply(Reply::map_of([
        ("server", text("redis")),
        ("version", text(REDIS_VERSION)),
        ("proto", Reply::Integer(protocol.version())),
        ("id", Reply::Integer(session.id as i64)),
        ("mode", text("standalone")),
        ("role", text("master")),
        ("modules", Reply::Array(Vec::new())),
    ]))
}

fn client_setname(call: Call<'_>) -> Action {
    match set_name(call.session, &call.args[2]) {
        Ok(()) => Action::Reply(Reply::ok()),
        Err(e) => Action::Reply(e),
    }
}

fn client_getname(call: Call<'_>) -> Action {
    Action::Reply(call.session.name.clone().map_or(Reply::Null, Reply::Bulk))
}

fn client_id(call: Call<'_>) -> Action {
    Action::Reply(Reply::Integer(call.session.id as i64))
}

/// `CLIENT INFO`, and `CLIENT LIST`: this connection's line, as text.
fn client_info(call: Call<'_>) -> Action {
    Action::Reply(Reply::text(client_line(call.session, call.command.name)))
}

/// `CLIENT SETINFO LIB-NAME|LIB-VER value`: what library the client is
/// and its version, shown by `CLIENT INFO` and `CLIENT LIST`; an empty
/// value clears it. Redis 7.2's checks and texts.
fn client_setinfo(call: Call<'_>) -> Action {
    let (attr, value) = (&call.args[2], &call.args[3]);
    let slot = match attr.to_ascii_lowercase().as_slice() {
        b"lib-name" => &mut call.session.lib_name,
        b"lib-ver" => &mut call.session.lib_ver,
        _ => {
            return error(format!(
                "ERR Unrecognized option '{}'",
                truncated(shown(attr), 128)
            ))
        }
    };
    if value.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return error(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            shown(attr)
        ));
    }
    *slot = (!value.is_empty()).then(|| value.clone());
    Action::Reply(Reply::ok())
}

/// `CLIENT SETNAME`: printable ASCII without spaces; empty unsets.
fn set_name(session: &mut Session, name: &[u8]) -> Result<(), Reply> {
    check_name(name)?;
    session.name = (!name.is_empty()).then(|| name.to_vec());
    Ok(())
}

/// A connection name is printable ASCII without spaces.
fn check_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(Reply::Error(
            "ERR Client names cannot contain spaces, newlines or special characters.".into(),
        ));
    }
    Ok(())
}

/// This connection as one line of `CLIENT LIST`, with every field of
/// Redis 7.2's line in its order, so that libraries that parse the line
/// into numbers (node-redis's `clientInfo`, redis-py's `client_info`) find
/// each one. The buffer and memory fields netdb does not measure per
/// connection are 0; `idle` is 0 because the connection asking is the one
/// shown, and it is running a command.
fn client_line(session: &Session, cmd: &str) -> Vec<u8> {
    let text = |v: &Option<Vec<u8>>| {
        String::from_utf8_lossy(v.as_deref().unwrap_or_default()).into_owned()
    };
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle=0 flags={} db={} sub=0 psub=0 ssub=0 \
         multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 \
         tot-mem=0 events=r cmd={cmd} user=default redir=-1 resp={} lib-name={} lib-ver={}\n",
        session.id,
        session.addr,
        session.laddr,
        session.fd,
        text(&session.name),
        session.age_secs,
        if session.in_transaction() { "x" } else { "N" },
        session.database().index(),
        session.queued().map_or(-1, |n| n as i64),
        session.protocol().version(),
        text(&session.lib_name),
        text(&session.lib_ver),
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::cmd::testing::{
        bulk_of, err, facts, facts_with_password, request, run, session, Fake,
    };
    use crate::redis::command::dispatch;

    #[test]
    fn connection_commands() {
        assert_eq!(run(&[b"PING"]), Reply::Simple("PONG".into()));
        assert_eq!(run(&[b"ping", b"hi"]), bulk_of(b"hi"));
        assert_eq!(run(&[b"EcHo", b"a\r\nb"]), bulk_of(b"a\r\nb"));
        assert_eq!(run(&[b"SELECT", b"0"]), Reply::ok());
        assert_eq!(run(&[b"SELECT", b"1"]), Reply::ok());
        assert_eq!(
            run(&[b"SELECT", b"16"]),
            err("ERR DB index is out of range")
        );
        assert_eq!(
            run(&[b"SELECT", b"x"]),
            err("ERR value is not an integer or out of range")
        );
        let quit = dispatch(&mut session(), request(&[b"quit"]), &facts());
        assert!(
            matches!(&quit, Action::Close(r) if *r == Reply::ok()),
            "{quit:?}"
        );
    }

    #[test]
    fn select_takes_every_database_the_node_has() {
        let mut fake = Fake::default();
        let s = &mut session();
        assert_eq!(fake.run(s, &[b"SET", b"k", b"zero"]), Reply::ok());
        assert_eq!(fake.run(s, &[b"SELECT", b"15"]), Reply::ok());
        assert_eq!(s.database().index(), 15);
        assert_eq!(fake.run(s, &[b"GET", b"k"]), Reply::Null);
        for bad in [&b"16"[..], b"-1", b"4294967296"] {
            assert_eq!(
                fake.run(s, &[b"SELECT", bad]),
                err("ERR DB index is out of range"),
                "{bad:?}"
            );
        }
        assert_eq!(s.database().index(), 15, "a refused SELECT changes nothing");
        let Reply::Bulk(line) = fake.run(s, &[b"CLIENT", b"INFO"]) else {
            panic!("a bulk")
        };
        assert!(String::from_utf8_lossy(&line).contains(" db=15 "));
        assert_eq!(fake.run(s, &[b"SELECT", b"0"]), Reply::ok());
        assert_eq!(fake.run(s, &[b"GET", b"k"]), bulk_of(b"zero"));
        let one = Facts {
            databases: 1,
            ..facts()
        };
        assert_eq!(
            fake.run_with(s, &[b"SELECT", b"1"], &one),
            err("ERR DB index is out of range")
        );
    }

    /// `RESET` leaves the connection as a new one, as Redis 6.2+ does:
    /// node-redis sends it to clean a pooled connection.
    #[test]
    fn reset_leaves_the_connection_as_new() {
        let facts = facts_with_password("hunter2");
        let mut fake = Fake::default();
        let (s, other) = (&mut session(), &mut session());
        let mut run = |s: &mut Session, args: &[&[u8]]| fake.run_with(s, args, &facts);
        run(
            s,
            &[
                b"HELLO", b"3", b"AUTH", b"default", b"hunter2", b"SETNAME", b"w",
            ],
        );
        run(s, &[b"CLIENT", b"SETINFO", b"LIB-NAME", b"node-redis"]);
        run(s, &[b"SELECT", b"2"]);
        run(s, &[b"SET", b"k", b"two"]);
        run(s, &[b"WATCH", b"k"]);
        run(s, &[b"MULTI"]);
        run(s, &[b"SET", b"k", b"queued"]);
        // Not queued: RESET runs inside MULTI too.
        assert_eq!(run(s, &[b"RESET"]), Reply::Simple("RESET".into()));
        assert_eq!(s.protocol(), Protocol::Resp2);
        assert_eq!(s.database().index(), 0);
        assert_eq!(s.name, None);
        assert!(!s.in_transaction());
        assert_eq!(s.lib_name.as_deref(), Some(&b"node-redis"[..]));
        assert_eq!(
            run(s, &[b"GET", b"k"]),
            err("NOAUTH Authentication required.")
        );
        assert_eq!(run(s, &[b"AUTH", b"hunter2"]), Reply::ok());
        assert_eq!(run(s, &[b"GET", b"k"]), Reply::Null, "database 0");
        // The watch is gone: another client's write does not abort.
        run(other, &[b"AUTH", b"hunter2"]);
        run(other, &[b"SELECT", b"2"]);
        run(other, &[b"SET", b"k", b"other"]);
        run(s, &[b"SELECT", b"2"]);
        run(s, &[b"MULTI"]);
        run(s, &[b"GET", b"k"]);
        assert_eq!(run(s, &[b"EXEC"]), Reply::Array(vec![bulk_of(b"other")]));
        assert_eq!(
            run(s, &[b"RESET", b"x"]),
            err("ERR wrong number of arguments for 'reset' command")
        );
    }

    #[test]
    fn quit_closes() {
        let quit = dispatch(&mut session(), request(&[b"quit"]), &facts());
        assert!(
            matches!(&quit, Action::Close(r) if *r == Reply::ok()),
            "{quit:?}"
        );
    }

    /// The fields of a `HELLO` reply, read back from either protocol.
    fn hello_fields(reply: Reply) -> Vec<(String, Reply)> {
        let pairs = match reply {
            Reply::Map(pairs) => pairs,
            Reply::Array(items) => items
                .chunks(2)
                .map(|p| (p[0].clone(), p[1].clone()))
                .collect(),
            other => panic!("a map: {other:?}"),
        };
        pairs
            .into_iter()
            .map(|(k, v)| match k {
                Reply::Bulk(k) => (String::from_utf8(k).expect("text"), v),
                other => panic!("a name: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn hello_switches_between_resp2_and_resp3() {
        let mut s = session();
        let mut fake = Fake::default();
        // RESP2: a flat array of 14.
        let Reply::Array(flat) = fake.run(&mut s, &[b"HELLO"]) else {
            panic!("an array")
        };
        assert_eq!(flat.len(), 14);
        assert_eq!(s.protocol(), Protocol::Resp2);
        // HELLO 3 answers in RESP3 already: a map.
        let Reply::Map(map) = fake.run(&mut s, &[b"hello", b"3"]) else {
            panic!("a RESP3 map")
        };
        assert_eq!(s.protocol(), Protocol::Resp3);
        let fields = hello_fields(Reply::Map(map));
        let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["server", "version", "proto", "id", "mode", "role", "modules"]
        );
        assert_eq!(fields[1].1, bulk_of(REDIS_VERSION.as_bytes()));
        assert_eq!(fields[2].1, Reply::Integer(3));
        assert_eq!(fields[3].1, Reply::Integer(7));
        assert_eq!(fields[6].1, Reply::Array(Vec::new()));
        // Nulls are RESP3's now.
        assert_eq!(fake.run(&mut s, &[b"GET", b"nope"]), Reply::Null);
        assert_eq!(
            dispatch_reply(&mut s, &[b"CLIENT", b"GETNAME"]).to_bytes_as(s.protocol()),
            b"_\r\n"
        );
        // A bad version changes nothing.
        assert_eq!(
            fake.run(&mut s, &[b"hello", b"4"]),
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
        assert_eq!(
            fake.run(&mut s, &[b"hello", b"2", b"setname", b"a b"]),
            err("ERR Client names cannot contain spaces, newlines or special characters.")
        );
        assert_eq!(s.protocol(), Protocol::Resp3, "refused: no switch");
        let fields = hello_fields(fake.run(&mut s, &[b"hello", b"2", b"setname", b"me"]));
        assert_eq!(fields[2].1, Reply::Integer(2));
        assert_eq!(s.protocol(), Protocol::Resp2);
        assert_eq!(s.name.as_deref(), Some(&b"me"[..]));
    }

    /// The reply a command gets without the store.
    fn dispatch_reply(s: &mut Session, args: &[&[u8]]) -> Reply {
        match dispatch(s, request(args), &facts()) {
            Action::Reply(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn without_auth_only_auth_hello_and_quit_run() {
        let facts = facts_with_password("hunter2");
        let mut s = session();
        let mut fake = Fake::default();
        let mut run = |s: &mut Session, args: &[&[u8]]| fake.run_with(s, args, &facts);
        let noauth = err("NOAUTH Authentication required.");
        assert_eq!(run(&mut s, &[b"GET", b"k"]), noauth);
        assert_eq!(run(&mut s, &[b"PING"]), noauth);
        assert_eq!(run(&mut s, &[b"CONFIG", b"GET", b"requirepass"]), noauth);
        // Unknown commands and wrong arities are told first, as in Redis.
        assert_eq!(
            run(&mut s, &[b"NOPE"]),
            err("ERR unknown command 'NOPE', with args beginning with: ")
        );
        assert!(matches!(
            run(&mut s, &[b"HELLO", b"3"]),
            Reply::Error(e) if e.starts_with("NOAUTH HELLO must be called with the client already authenticated")
        ));
        let wrong = err("WRONGPASS invalid username-password pair or user is disabled.");
        assert_eq!(run(&mut s, &[b"AUTH", b"hunter3"]), wrong);
        assert_eq!(run(&mut s, &[b"AUTH", b"admin", b"hunter2"]), wrong);
        assert_eq!(
            run(&mut s, &[b"HELLO", b"3", b"AUTH", b"default", b"nope"]),
            wrong
        );
        assert_eq!(
            s.protocol(),
            Protocol::Resp2,
            "a refused HELLO switches nothing"
        );
        assert_eq!(
            run(&mut s, &[b"AUTH", b"a", b"b", b"c"]),
            err("ERR syntax error")
        );
        assert_eq!(facts.auth.denied(), 3);
        assert!(!s.is_authenticated());
        assert_eq!(run(&mut s, &[b"AUTH", b"hunter2"]), Reply::ok());
        assert_eq!(run(&mut s, &[b"PING"]), Reply::Simple("PONG".into()));
        // An authenticated client may read the password, as in Redis.
        assert_eq!(
            run(&mut s, &[b"CONFIG", b"GET", b"requirepass"]),
            Reply::Array(vec![bulk_of(b"requirepass"), bulk_of(b"hunter2")])
        );
        // HELLO with AUTH authenticates and switches at once.
        let mut other = session();
        let mut run = |s: &mut Session, args: &[&[u8]]| fake.run_with(s, args, &facts);
        assert!(matches!(
            run(
                &mut other,
                &[b"HELLO", b"3", b"AUTH", b"default", b"hunter2", b"SETNAME", b"w"]
            ),
            Reply::Map(_)
        ));
        assert!(other.is_authenticated());
        assert_eq!(other.protocol(), Protocol::Resp3);
        assert_eq!(
            run(&mut other, &[b"AUTH", b"default", b"hunter2"]),
            Reply::ok()
        );
        // QUIT needs no password.
        let quit = dispatch(&mut session(), request(&[b"QUIT"]), &facts);
        assert!(matches!(quit, Action::Close(_)), "{quit:?}");
    }

    #[test]
    fn auth_without_a_password_set_is_refused_as_redis_does() {
        let mut s = session();
        assert_eq!(
            dispatch_reply(&mut s, &[b"AUTH", b"x"]),
            err(
                "ERR AUTH <password> called without any password configured for the default \
                 user. Are you sure your configuration is correct?"
            )
        );
        assert_eq!(
            dispatch_reply(&mut s, &[b"AUTH", b"default", b"x"]),
            Reply::ok()
        );
        assert_eq!(
            dispatch_reply(&mut s, &[b"AUTH", b"other", b"x"]),
            err("WRONGPASS invalid username-password pair or user is disabled.")
        );
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
        assert_eq!(
            line,
            "id=7 addr=127.0.0.1:5000 laddr=127.0.0.1:6379 fd=-1 name=worker-1 age=0 idle=0 \
             flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 \
             multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=client|info \
             user=default redir=-1 resp=2 lib-name= lib-ver=\n"
        );
        fake.run(&mut s, &[b"HELLO", b"3"]);
        let Reply::Verbatim { format, text } = fake.run(&mut s, &[b"client", b"info"]) else {
            panic!("text")
        };
        assert_eq!(format, "txt");
        assert!(String::from_utf8_lossy(&text).contains(" resp=3 "));
        fake.run(&mut s, &[b"HELLO", b"2"]);
        assert_eq!(fake.run(&mut s, &[b"client", b"setname", b""]), Reply::ok());
        assert_eq!(fake.run(&mut s, &[b"client", b"getname"]), Reply::Null);
        assert!(matches!(
            fake.run(&mut s, &[b"client", b"help"]),
            Reply::Array(lines) if lines.len() > 2
        ));
    }

    /// Every field of Redis's `CLIENT INFO` line is there, so a library
    /// that reads one as a number (node-redis's `clientInfo().age`) gets
    /// a number; `CLIENT SETINFO` shows in it, checked as Redis checks it.
    #[test]
    fn client_info_has_redis_fields_and_the_library_set() {
        let mut s = session();
        let mut fake = Fake::default();
        s.fd = 12;
        s.age_secs = 42;
        for (attr, value) in [(&b"LIB-NAME"[..], &b"redis-py"[..]), (b"lib-ver", b"8.1.0")] {
            assert_eq!(
                fake.run(&mut s, &[b"client", b"setinfo", attr, value]),
                Reply::ok()
            );
        }
        assert_eq!(
            fake.run(&mut s, &[b"client", b"setinfo", b"lib-name", b"a b"]),
            err("ERR lib-name cannot contain spaces, newlines or special characters.")
        );
        assert_eq!(
            fake.run(&mut s, &[b"client", b"setinfo", b"lib-color", b"red"]),
            err("ERR Unrecognized option 'lib-color'")
        );
        let Reply::Bulk(line) = fake.run(&mut s, &[b"client", b"list"]) else {
            panic!("a bulk")
        };
        let line = String::from_utf8(line).expect("text");
        let fields: Vec<(&str, &str)> = line
            .trim_end()
            .split(' ')
            .map(|f| f.split_once('=').expect("name=value"))
            .collect();
        let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "id",
                "addr",
                "laddr",
                "fd",
                "name",
                "age",
                "idle",
                "flags",
                "db",
                "sub",
                "psub",
                "ssub",
                "multi",
                "qbuf",
                "qbuf-free",
                "argv-mem",
                "multi-mem",
                "rbs",
                "rbp",
                "obl",
                "oll",
                "omem",
                "tot-mem",
                "events",
                "cmd",
                "user",
                "redir",
                "resp",
                "lib-name",
                "lib-ver"
            ]
        );
        let field = |name| fields.iter().find(|(n, _)| *n == name).expect(name).1;
        assert_eq!(field("fd"), "12");
        assert_eq!(field("age"), "42");
        assert_eq!(field("cmd"), "client|list");
        assert_eq!(field("lib-name"), "redis-py");
        assert_eq!(field("lib-ver"), "8.1.0");
        // An empty value clears it; the refused one above changed nothing.
        assert_eq!(
            fake.run(&mut s, &[b"client", b"setinfo", b"lib-ver", b""]),
            Reply::ok()
        );
        assert_eq!(s.lib_ver, None);
        assert_eq!(s.lib_name.as_deref(), Some(&b"redis-py"[..]));
    }
}
