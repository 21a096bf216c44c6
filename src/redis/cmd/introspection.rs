//! `COMMAND` and its subcommands, and every container's `HELP`: all
//! generated from the table ([`super::all`]), never written by hand. Must
//! never append store ops.

use crate::redis::command::{
    arg, error, lookup_traced, multiple, optional, slots, syntax_error, token, unknown_command,
    Action, Arg, Call, Command, Docs,
};
use crate::redis::glob::glob_match;
use crate::redis::resp::Reply;

const FLAGS: &[&str] = &["loading", "stale"];
const ACL: &[&str] = &["@slow", "@connection"];

/// What this group's docs say unless an entry says otherwise.
const DOCS: Docs = Docs::in_group("server");

/// `COMMAND`'s entry.
pub const COMMANDS: &[Command] = &[Command {
    flags: FLAGS,
    acl: ACL,
    docs: Docs {
        summary: "Get array of command details",
        since: "2.8.13",
        ..DOCS
    },
    subcommands: &[
        Command {
            flags: FLAGS,
            acl: ACL,
            docs: Docs {
                summary: "Get total number of commands",
                since: "2.8.13",
                ..DOCS
            },
            ..Command::new("command|count", 2, count)
        },
        Command {
            flags: FLAGS,
            acl: ACL,
            docs: Docs {
                summary: "Get array of specific command documentation",
                since: "7.0.0",
                args: &[optional(multiple(arg("command-name", "string")))],
                ..DOCS
            },
            ..Command::new("command|docs", -2, docs_of)
        },
        Command {
            flags: FLAGS,
            acl: ACL,
            docs: Docs {
                summary: "Get array of specific command details",
                since: "2.8.13",
                args: &[optional(multiple(arg("command-name", "string")))],
                ..DOCS
            },
            ..Command::new("command|info", -2, info_of)
        },
        Command {
            flags: FLAGS,
            acl: ACL,
            docs: Docs {
                summary: "Get an array of command names",
                since: "7.0.0",
                args: &[optional(token(
                    "FILTERBY",
                    Arg {
                        parts: &[
                            token("MODULE", arg("module-name", "string")),
                            token("ACLCAT", arg("category", "string")),
                            token("PATTERN", arg("pattern", "pattern")),
                        ],
                        ..arg("filterby", "oneof")
                    },
                ))],
                ..DOCS
            },
            ..Command::new("command|list", -2, list)
        },
        Command {
            flags: FLAGS,
            acl: ACL,
            docs: Docs {
                summary: "Extract keys given a full Redis command",
                since: "2.8.13",
                args: &[
                    arg("command", "string"),
                    optional(multiple(arg("arg", "string"))),
                ],
                ..DOCS
            },
            ..Command::new("command|getkeys", -4, getkeys)
        },
        help_entry("command|help", "server", ACL),
    ],
    ..Command::new("command", -1, all_info)
}];

/// `COMMAND`: every command's details.
fn all_info(_: Call<'_>) -> Action {
    Action::Reply(all_command_info())
}

fn count(_: Call<'_>) -> Action {
    Action::Reply(Reply::Integer(
        i64::try_from(super::count()).unwrap_or(i64::MAX),
    ))
}

/// `COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN
/// pattern]`: every command's and subcommand's name, as Redis lists them
/// (netdb has no modules, so a module filter finds none).
fn list(call: Call<'_>) -> Action {
    let wanted: Box<dyn Fn(&Command) -> bool> = match &call.args[2..] {
        [] => Box::new(|_| true),
        [by, kind, value] if by.eq_ignore_ascii_case(b"filterby") => {
            let value = value.to_ascii_lowercase();
            if kind.eq_ignore_ascii_case(b"module") {
                Box::new(|_| false)
            } else if kind.eq_ignore_ascii_case(b"aclcat") {
                Box::new(move |c| {
                    c.acl
                        .iter()
                        .any(|cat| cat.trim_start_matches('@').as_bytes() == value.as_slice())
                })
            } else if kind.eq_ignore_ascii_case(b"pattern") {
                Box::new(move |c| glob_match(&value, c.name.as_bytes()))
            } else {
                return syntax_error();
            }
        }
        _ => return syntax_error(),
    };
    Action::Reply(Reply::Array(
        slots()
            .iter()
            .filter(|c| wanted(c))
            .map(|c| bulk(c.name))
            .collect(),
    ))
}

/// `COMMAND GETKEYS command [arg ...]`: the keys among a full command's
/// arguments, from its entry's key positions.
fn getkeys(call: Call<'_>) -> Action {
    let args = &call.args[2..];
    let command = match lookup_traced(args) {
        Ok(command) => command,
        Err((None, _)) => return error("ERR Invalid command specified"),
        Err((Some(_), _)) => return error("ERR Invalid number of arguments specified for command"),
    };
    let keys = command.keys;
    if keys.first <= 0 {
        return error("ERR The command has no key arguments");
    }
    let argc = i64::try_from(args.len()).unwrap_or(i64::MAX);
    let last = if keys.last < 0 {
        argc + keys.last
    } else {
        keys.last.min(argc - 1)
    };
    let step = keys.step.max(1);
    let found: Vec<Reply> = (keys.first..=last)
        .step_by(usize::try_from(step).unwrap_or(1))
        .filter_map(|i| usize::try_from(i).ok().and_then(|i| args.get(i)))
        .map(|k| Reply::Bulk(k.clone()))
        .collect();
    if found.is_empty() {
        return error("ERR Invalid arguments specified for command");
    }
    Action::Reply(Reply::Array(found))
}

/// `COMMAND INFO [name ...]`: each named command's details, or a null
/// (`$-1` in RESP2, as Redis 7 sends) for a name netdb does not know;
/// all of them without names.
fn info_of(call: Call<'_>) -> Action {
    Action::Reply(if call.args.len() == 2 {
        all_command_info()
    } else {
        Reply::Array(
            call.args[2..]
                .iter()
                .map(|name| super::find(name).map_or(Reply::Null, command_info))
                .collect(),
        )
    })
}

/// `COMMAND DOCS [name ...]`: a map from each name to its docs.
fn docs_of(call: Call<'_>) -> Action {
    let names = &call.args[2..];
    let mut out = Vec::new();
    for command in super::all() {
        if names.is_empty()
            || names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(command.name.as_bytes()))
        {
            out.push((command.name, command_doc(command)));
        }
    }
    Action::Reply(Reply::map_of(out))
}

/// A container's `HELP` subcommand, named `name` (`container|help`).
pub(crate) const fn help_entry(
    name: &'static str,
    group: &'static str,
    acl: &'static [&'static str],
) -> Command {
    Command {
        flags: FLAGS,
        acl,
        docs: Docs {
            summary: "Show helpful text about the different subcommands",
            since: "5.0.0",
            ..Docs::in_group(group)
        },
        ..Command::new(name, 2, help)
    }
}

/// A container called without a subcommand fails its arity first, so
/// this only answers if the table is wrong.
pub(crate) fn container(call: Call<'_>) -> Action {
    Action::Reply(unknown_command(&call.args))
}

/// `<CONTAINER> HELP`: its subcommands and their summaries.
pub(crate) fn help(call: Call<'_>) -> Action {
    let container = call.command.name.split('|').next().unwrap_or("");
    let upper = container.to_ascii_uppercase();
    let mut lines = vec![format!(
        "{upper} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    )];
    let subcommands = super::find(container.as_bytes()).map_or(&[][..], |c| c.subcommands);
    for sub in subcommands {
        lines.push(sub.short_name().to_ascii_uppercase());
        lines.push(format!("    {}", sub.docs.summary));
    }
    Action::Reply(Reply::Array(lines.into_iter().map(Reply::Simple).collect()))
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

/// Status lines as a set, as Redis 7 sends flags and categories.
fn statuses(items: &[&str]) -> Reply {
    Reply::Set(items.iter().map(|s| Reply::Simple((*s).into())).collect())
}

/// A command's entry in `COMMAND`, in Redis 7's ten-element form (no
/// tips, no key specifications); its flags, categories, tips, key
/// specifications and subcommands are sets, as in Redis 7.
fn command_info(command: &Command) -> Reply {
    let keys = command.keys;
    Reply::Array(vec![
        bulk(command.name),
        Reply::Integer(i64::from(command.arity)),
        statuses(command.flags),
        Reply::Integer(keys.first),
        Reply::Integer(keys.last),
        Reply::Integer(keys.step),
        statuses(command.acl),
        Reply::Set(Vec::new()),
        Reply::Set(Vec::new()),
        Reply::Set(command.subcommands.iter().map(command_info).collect()),
    ])
}

fn all_command_info() -> Reply {
    Reply::Array(super::all().map(command_info).collect())
}

fn arg_doc(a: &Arg) -> Reply {
    let mut map = vec![("name", bulk(a.name)), ("type", bulk(a.kind))];
    if let Some(t) = a.token {
        map.push(("token", bulk(t)));
    }
    let mut flags = Vec::new();
    if a.optional {
        flags.push("optional");
    }
    if a.multiple {
        flags.push("multiple");
    }
    if !flags.is_empty() {
        map.push(("flags", statuses(&flags)));
    }
    if !a.parts.is_empty() {
        map.push((
            "arguments",
            Reply::Array(a.parts.iter().map(arg_doc).collect()),
        ));
    }
    Reply::map_of(map)
}

/// A command's documentation map.
fn command_doc(command: &Command) -> Reply {
    let docs = &command.docs;
    let mut map = vec![
        ("summary", bulk(docs.summary)),
        ("since", bulk(docs.since)),
        ("group", bulk(docs.group)),
    ];
    if !docs.args.is_empty() {
        map.push((
            "arguments",
            Reply::Array(docs.args.iter().map(arg_doc).collect()),
        ));
    }
    if !command.subcommands.is_empty() {
        map.push((
            "subcommands",
            Reply::map_of(
                command
                    .subcommands
                    .iter()
                    .map(|sub| (sub.name, command_doc(sub))),
            ),
        ));
    }
    Reply::map_of(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::cmd::testing::{bulk_of, err, facts, request, run, session};
    use crate::redis::command::{dispatch, Action};

    /// The checks redis-cli makes (by assertion) on a `COMMAND DOCS` map,
    /// and ours: every entry has a summary and a group.
    fn check_doc(name: &Reply, doc: &Reply) {
        assert!(matches!(name, Reply::Bulk(_)));
        let Reply::Array(map) = doc else {
            panic!("a map")
        };
        for pair in map.chunks(2) {
            if ["summary", "since", "group"]
                .iter()
                .any(|k| pair[0] == bulk_of(k.as_bytes()))
            {
                assert!(
                    matches!(&pair[1], Reply::Bulk(v) if !v.is_empty()),
                    "{name:?} {:?}",
                    pair[0]
                );
            }
        }
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
                for a in args {
                    check_arg(name, a);
                }
            }
        }
    }

    /// What redis-cli 7.0 reads of an argument without checking (it
    /// crashed on a `oneof` with no `arguments`): a name, a type it
    /// knows, the parts of a `oneof` or `block`, flags as statuses.
    fn check_arg(command: &Reply, arg: &Reply) {
        let Reply::Array(map) = arg else {
            panic!("{command:?}: an argument is a map")
        };
        let field = |k: &str| {
            map.chunks(2)
                .find(|pair| pair[0] == bulk_of(k.as_bytes()))
                .map(|pair| &pair[1])
        };
        assert!(
            matches!(field("name"), Some(Reply::Bulk(_))),
            "{command:?}: {arg:?} has no name"
        );
        let Some(Reply::Bulk(kind)) = field("type") else {
            panic!("{command:?}: {arg:?} has no type")
        };
        let kind = String::from_utf8_lossy(kind);
        let known = [
            "key",
            "string",
            "integer",
            "double",
            "pattern",
            "unix-time",
            "token",
            "pure-token",
            "oneof",
            "block",
        ];
        assert!(known.contains(&&*kind), "{command:?}: type {kind}");
        if kind == "oneof" || kind == "block" {
            let Some(Reply::Array(parts)) = field("arguments") else {
                panic!("{command:?}: a {kind} without arguments: {arg:?}")
            };
            assert!(!parts.is_empty(), "{command:?}: an empty {kind}");
            for part in parts {
                check_arg(command, part);
            }
        }
        if let Some(flags) = field("flags") {
            let (Reply::Set(flags) | Reply::Array(flags)) = flags else {
                panic!("{command:?}: flags are a set")
            };
            assert!(flags.iter().all(|f| matches!(f, Reply::Simple(_))));
        }
    }

    /// `COMMAND INFO name`'s one entry.
    fn info(name: &[u8]) -> Vec<Reply> {
        let Reply::Array(mut one) = run(&[b"command", b"info", name]) else {
            panic!("an array")
        };
        let Some(Reply::Array(entry)) = one.pop() else {
            panic!("an entry")
        };
        entry
    }

    #[test]
    fn command_introspection_comes_from_the_table() {
        let n = crate::redis::cmd::count();
        assert_eq!(run(&[b"COMMAND", b"COUNT"]), Reply::Integer(n as i64));
        let Reply::Array(all) = run(&[b"COMMAND"]) else {
            panic!("an array")
        };
        assert_eq!(all.len(), n);
        let get = info(b"GET");
        assert_eq!(get.len(), 10);
        assert_eq!(get[0], bulk_of(b"get"));
        assert_eq!(get[1], Reply::Integer(2));
        assert_eq!(get[3], Reply::Integer(1));
        let Reply::Array(docs) = run(&[b"COMMAND", b"DOCS"]) else {
            panic!("an array")
        };
        assert_eq!(docs.len(), 2 * n);
        for pair in docs.chunks(2) {
            check_doc(&pair[0], &pair[1]);
        }
        let Reply::Array(one) = run(&[b"command", b"docs", b"GET", b"nope"]) else {
            panic!("an array")
        };
        assert_eq!(one.len(), 2);
        assert_eq!(
            run(&[b"command", b"info", b"get", b"nope"]),
            Reply::Array(vec![Reply::Array(get), Reply::Null])
        );
        let Reply::Array(names) = run(&[b"command", b"list"]) else {
            panic!("an array")
        };
        assert_eq!(names.len(), slots().len(), "subcommands too, as in Redis");
        assert!(names.contains(&bulk_of(b"netdb.status")));
        assert!(names.contains(&bulk_of(b"config|get")));
        // Every entry's handler runs: none falls through to "unknown".
        for command in crate::redis::cmd::all() {
            let args: Vec<&[u8]> = std::iter::once(command.name.as_bytes())
                .chain(std::iter::repeat_n(
                    &b"0"[..],
                    command.arity.unsigned_abs() as usize - 1,
                ))
                .collect();
            let action = dispatch(&mut session(), request(&args), &facts());
            if let Action::Reply(Reply::Error(e)) = action {
                assert!(
                    !e.starts_with("ERR unknown command"),
                    "{}: {e}",
                    command.name
                );
            }
        }
    }

    #[test]
    fn command_list_filters_as_redis_does() {
        let names = |args: &[&[u8]]| match run(args) {
            Reply::Array(names) => names,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            names(&[b"command", b"list", b"filterby", b"pattern", b"config*"]),
            ["config", "config|get", "config|resetstat", "config|help"]
                .iter()
                .map(|n| bulk_of(n.as_bytes()))
                .collect::<Vec<_>>()
        );
        let connection = names(&[b"command", b"list", b"FILTERBY", b"ACLCAT", b"connection"]);
        assert!(connection.contains(&bulk_of(b"ping")));
        assert!(!connection.contains(&bulk_of(b"get")));
        assert!(names(&[b"command", b"list", b"filterby", b"module", b"x"]).is_empty());
        for bad in [
            &[&b"command"[..], b"list", b"filterby", b"nope", b"x"][..],
            &[b"command", b"list", b"foo"],
        ] {
            assert_eq!(run(bad), err("ERR syntax error"));
        }
    }

    #[test]
    fn command_getkeys_reads_the_key_positions() {
        let keys = |args: &[&[u8]]| run(args);
        let bulks = |items: &[&[u8]]| Reply::Array(items.iter().map(|k| bulk_of(k)).collect());
        assert_eq!(
            keys(&[b"command", b"getkeys", b"GET", b"k"]),
            bulks(&[b"k"])
        );
        assert_eq!(
            keys(&[b"command", b"getkeys", b"mset", b"a", b"1", b"b", b"2"]),
            bulks(&[b"a", b"b"])
        );
        assert_eq!(
            keys(&[b"command", b"getkeys", b"del", b"a", b"b", b"c"]),
            bulks(&[b"a", b"b", b"c"])
        );
        assert_eq!(
            keys(&[b"command", b"getkeys", b"ping", b"x"]),
            err("ERR The command has no key arguments")
        );
        assert_eq!(
            keys(&[b"command", b"getkeys", b"nope", b"x"]),
            err("ERR Invalid command specified")
        );
        assert_eq!(
            keys(&[b"command", b"getkeys", b"get", b"a", b"b"]),
            err("ERR Invalid number of arguments specified for command")
        );
        assert_eq!(
            keys(&[b"command", b"getkeys", b"get"]),
            err("ERR wrong number of arguments for 'command|getkeys' command")
        );
    }

    /// What redis-server 7.0 says in `COMMAND INFO` of each command netdb
    /// has: arity, flags, first key, last key, step, ACL categories.
    #[test]
    fn command_info_matches_redis() {
        type Want = (
            &'static str,
            i64,
            &'static [&'static str],
            [i64; 3],
            &'static [&'static str],
        );
        let want: &[Want] = &[
            ("ping", -1, &["fast"], [0, 0, 0], &["@fast", "@connection"]),
            (
                "get",
                2,
                &["readonly", "fast"],
                [1, 1, 1],
                &["@read", "@string", "@fast"],
            ),
            (
                "set",
                -3,
                &["write", "denyoom"],
                [1, 1, 1],
                &["@write", "@string", "@slow"],
            ),
            (
                "del",
                -2,
                &["write"],
                [1, -1, 1],
                &["@keyspace", "@write", "@slow"],
            ),
            (
                "exists",
                -2,
                &["readonly", "fast"],
                [1, -1, 1],
                &["@keyspace", "@read", "@fast"],
            ),
            (
                "mget",
                -2,
                &["readonly", "fast"],
                [1, -1, 1],
                &["@read", "@string", "@fast"],
            ),
            (
                "mset",
                -3,
                &["write", "denyoom"],
                [1, -1, 2],
                &["@write", "@string", "@slow"],
            ),
            (
                "keys",
                2,
                &["readonly"],
                [0, 0, 0],
                &["@keyspace", "@read", "@slow", "@dangerous"],
            ),
            (
                "scan",
                -2,
                &["readonly"],
                [0, 0, 0],
                &["@keyspace", "@read", "@slow"],
            ),
            (
                "dbsize",
                1,
                &["readonly", "fast"],
                [0, 0, 0],
                &["@keyspace", "@read", "@fast"],
            ),
            (
                "info",
                -1,
                &["loading", "stale"],
                [0, 0, 0],
                &["@slow", "@dangerous"],
            ),
            ("config", -2, &[], [0, 0, 0], &["@slow"]),
            (
                "time",
                1,
                &["loading", "stale", "fast"],
                [0, 0, 0],
                &["@fast"],
            ),
            (
                "wait",
                3,
                &["noscript"],
                [0, 0, 0],
                &["@slow", "@connection"],
            ),
            ("slowlog", -2, &[], [0, 0, 0], &["@slow"]),
            ("client", -2, &[], [0, 0, 0], &["@slow"]),
        ];
        let statuses = |items: &[&str]| {
            Reply::Array(items.iter().map(|s| Reply::Simple((*s).into())).collect())
        };
        for (name, arity, flags, [first, last, step], acl) in want {
            let got = info(name.as_bytes());
            assert_eq!(got[1], Reply::Integer(*arity), "{name}");
            assert_eq!(got[2], statuses(flags), "{name}");
            assert_eq!(
                got[3..6],
                [
                    Reply::Integer(*first),
                    Reply::Integer(*last),
                    Reply::Integer(*step)
                ],
                "{name}"
            );
            assert_eq!(got[6], statuses(acl), "{name}");
        }
    }
}
