//! Where a command runs when the cluster is sharded: here, on the
//! replicas of another slot (forwarded whole), split by slot and gathered
//! (`MGET`, `MSET`, `DEL`, `UNLINK`, `EXISTS`, `TOUCH`), fanned out to
//! every member (`FLUSHALL`, `FLUSHDB`), or refused with Redis Cluster's
//! `CROSSSLOT` (another multi-key command whose keys are not all on one
//! node's set of replicas).
//!
//! Pure: the caller says where each slot is served ([`Place`]) and runs
//! the plan; [`Plan::gather`] puts the parts' replies back together as
//! the one reply the client expects. Key positions come from the command
//! table ([`Command::keys`]), so a new command is routed by its entry.

use crate::placement::key_slot;
use crate::redis::command::Command;
use crate::redis::resp::Reply;

/// Redis Cluster's reply to a command whose keys are not served together.
pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// Where a slot is served, as the node sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// This node holds it.
    Here,
    /// Its replicas' addresses, the one to try first first (see
    /// [`crate::routing::Routing::targets`]).
    There(Vec<String>),
}

impl Place {
    /// Whether two places are the same set of nodes (the order of a
    /// slot's targets follows health, not identity).
    pub fn same_as(&self, other: &Place) -> bool {
        match (self, other) {
            (Place::Here, Place::Here) => true,
            (Place::There(a), Place::There(b)) => {
                let (mut a, mut b) = (a.clone(), b.clone());
                a.sort_unstable();
                b.sort_unstable();
                a == b
            }
            _ => false,
        }
    }
}

/// A command, or part of one, to run on another node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// The slot it is for, for the error that names it when no replica
    /// answers; `None` for a fan-out to one member.
    pub slot: Option<u16>,
    /// Where to send it, in order of preference.
    pub targets: Vec<String>,
    /// The commands, sent in order on one connection; the last one's
    /// reply is the part's reply (a forwarded transaction is `MULTI`, its
    /// commands, `EXEC`).
    pub commands: Vec<Vec<Vec<u8>>>,
}

/// How the parts' replies make the client's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// One remote part: its reply as it is.
    Whole,
    /// `MGET`: for each key in the request's order, its part and its
    /// place in that part's array.
    Mget(Vec<(usize, usize)>),
    /// `DEL`, `UNLINK`, `EXISTS`, `TOUCH`: the parts' integers added.
    Sum,
    /// `MSET`: `OK` once every part said so.
    AllOk,
    /// `FLUSHALL`/`FLUSHDB`: the local reply, unless a member did not
    /// flush (the members' addresses, in remote-part order).
    Everywhere(Vec<String>),
    /// `NETDB.KEYS`: the parts' keys, each once, sorted; an error naming
    /// the members that did not answer.
    Union(Vec<String>),
}

/// What to do with a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// Run it here, as without sharding.
    Here,
    /// Answer it with this error at once.
    Refuse(Reply),
    /// Run `local` here (if any) and `remote` elsewhere, then gather.
    Routed {
        /// The arguments of the part to run here.
        local: Option<Vec<Vec<u8>>>,
        /// The parts to forward.
        remote: Vec<Remote>,
        /// How to gather them; part 0 is the local one when there is one,
        /// then the remote ones in order.
        plan: Plan,
    },
}

/// The indices of `command`'s key arguments in `args`, from its entry's
/// key positions (as `COMMAND GETKEYS` reads them).
pub fn key_indices(command: &Command, args: &[Vec<u8>]) -> Vec<usize> {
    let keys = command.keys;
    if keys.first <= 0 || keys.step <= 0 {
        return Vec::new();
    }
    let argc = i64::try_from(args.len()).unwrap_or(i64::MAX);
    let last = if keys.last < 0 {
        argc + keys.last
    } else {
        keys.last.min(argc - 1)
    };
    let mut out = Vec::new();
    let mut i = keys.first;
    while i <= last && i < argc {
        out.push(usize::try_from(i).unwrap_or(usize::MAX));
        i += keys.step;
    }
    out
}

/// Whether `command` is split by slot and gathered rather than refused
/// when its keys are served apart.
fn splits(command: &Command) -> Option<Plan> {
    match command.name {
        "mget" => Some(Plan::Mget(Vec::new())),
        "del" | "unlink" | "exists" | "touch" => Some(Plan::Sum),
        "mset" => Some(Plan::AllOk),
        _ => None,
    }
}

/// Where the keys of `args` are served, together: `None` when they are
/// not all on one place (or there are none).
pub fn common_place(
    command: &Command,
    args: &[Vec<u8>],
    place: &impl Fn(u16) -> Place,
) -> Option<Result<(u16, Place), ()>> {
    let mut common: Option<(u16, Place)> = None;
    for i in key_indices(command, args) {
        let slot = key_slot(&args[i]);
        let here = place(slot);
        match &common {
            None => common = Some((slot, here)),
            Some((_, p)) if p.same_as(&here) => {}
            Some(_) => return Some(Err(())),
        }
    }
    common.map(Ok)
}

/// Where `command` (called with `args`, its arity already checked) runs,
/// given where each slot is served. `members` are the other members'
/// addresses, for the commands that reach every node.
pub fn route(
    command: &Command,
    args: &[Vec<u8>],
    place: &impl Fn(u16) -> Place,
    members: &[String],
) -> Route {
    if matches!(command.name, "flushall" | "flushdb" | "netdb.keys") {
        if members.is_empty() {
            return Route::Here;
        }
        return Route::Routed {
            local: Some(args.to_vec()),
            remote: members
                .iter()
                .map(|m| Remote {
                    slot: None,
                    targets: vec![m.clone()],
                    commands: vec![args.to_vec()],
                })
                .collect(),
            plan: if command.name == "netdb.keys" {
                Plan::Union(members.to_vec())
            } else {
                Plan::Everywhere(members.to_vec())
            },
        };
    }
    let (slot, there) = match common_place(command, args, place) {
        None | Some(Ok((_, Place::Here))) => return Route::Here,
        Some(Ok((slot, Place::There(targets)))) => (slot, targets),
        Some(Err(())) => match splits(command) {
            Some(plan) => return split(command, args, place, plan),
            None => return Route::Refuse(Reply::Error(CROSSSLOT.into())),
        },
    };
    Route::Routed {
        local: None,
        remote: vec![Remote {
            slot: Some(slot),
            targets: there,
            commands: vec![args.to_vec()],
        }],
        plan: Plan::Whole,
    }
}

/// Splits a multi-key command whose keys are served apart into one part
/// per place (the local one first), each the command with its own keys
/// (and, for `MSET`, their values) in the request's order.
fn split(command: &Command, args: &[Vec<u8>], place: &impl Fn(u16) -> Place, plan: Plan) -> Route {
    let step = usize::try_from(command.keys.step).unwrap_or(1).max(1);
    let name = &args[0];
    // (place, first slot, arguments)
    let mut parts: Vec<(Place, u16, Vec<Vec<u8>>)> = Vec::new();
    let mut order = Vec::new();
    for i in key_indices(command, args) {
        let slot = key_slot(&args[i]);
        let p = place(slot);
        let at = match parts.iter().position(|(q, _, _)| q.same_as(&p)) {
            Some(at) => at,
            None => {
                parts.push((p, slot, vec![name.clone()]));
                parts.len() - 1
            }
        };
        let unit = &args[i..(i + step).min(args.len())];
        let part = &mut parts[at].2;
        order.push((at, (part.len() - 1) / step));
        part.extend(unit.iter().cloned());
    }
    // The local part first: renumber so that it is part 0.
    let local_at = parts.iter().position(|(p, _, _)| *p == Place::Here);
    let renumber = |at: usize| match local_at {
        Some(l) if at == l => 0,
        Some(l) if at < l => at + 1,
        _ => at,
    };
    let plan = match plan {
        Plan::Mget(_) => Plan::Mget(order.iter().map(|&(at, i)| (renumber(at), i)).collect()),
        other => other,
    };
    let mut local = None;
    let mut remote = Vec::new();
    for (p, slot, part) in parts {
        match p {
            Place::Here => local = Some(part),
            Place::There(targets) => remote.push(Remote {
                slot: Some(slot),
                targets,
                commands: vec![part],
            }),
        }
    }
    Route::Routed {
        local,
        remote,
        plan,
    }
}

/// The members whose part is an error, with it, for an error reply.
fn failed_members(members: &[String], parts: &[Reply]) -> String {
    members
        .iter()
        .zip(parts)
        .filter_map(|(m, r)| match r {
            Reply::Error(e) => Some(format!("{m} ({e})")),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Plan {
    /// The client's reply from the parts' replies (the local one first,
    /// if there is one): the first error among them, for a command whose
    /// parts must all succeed.
    pub fn gather(&self, mut parts: Vec<Reply>, has_local: bool) -> Reply {
        match self {
            Plan::Whole => parts.pop().unwrap_or(Reply::Null),
            Plan::Union(members) => {
                let failed = failed_members(members, &parts[usize::from(has_local)..]);
                if !failed.is_empty() {
                    return Reply::Error(format!("CLUSTERDOWN {failed} did not answer"));
                }
                let mut keys: Vec<Vec<u8>> = parts
                    .into_iter()
                    .flat_map(|r| match r {
                        Reply::Array(items) | Reply::Set(items) => items,
                        _ => Vec::new(),
                    })
                    .filter_map(|r| match r {
                        Reply::Bulk(k) => Some(k),
                        _ => None,
                    })
                    .collect();
                keys.sort_unstable();
                keys.dedup();
                Reply::Array(keys.into_iter().map(Reply::Bulk).collect())
            }
            Plan::Everywhere(members) => {
                let local = if has_local && !parts.is_empty() {
                    parts.remove(0)
                } else {
                    Reply::ok()
                };
                if let Reply::Error(_) = local {
                    return local;
                }
                let failed = failed_members(members, &parts);
                if failed.is_empty() {
                    local
                } else {
                    Reply::Error(format!("CLUSTERDOWN flushed here, but not on {failed}"))
                }
            }
            _ => {
                if let Some(e) = parts.iter().find(|r| matches!(r, Reply::Error(_))) {
                    return e.clone();
                }
                match self {
                    Plan::Sum => Reply::Integer(
                        parts
                            .iter()
                            .map(|r| match r {
                                Reply::Integer(n) => *n,
                                _ => 0,
                            })
                            .sum(),
                    ),
                    Plan::AllOk => Reply::ok(),
                    Plan::Mget(order) => {
                        let mut arrays: Vec<Vec<Reply>> = parts
                            .into_iter()
                            .map(|r| match r {
                                Reply::Array(items) | Reply::Set(items) => items,
                                _ => Vec::new(),
                            })
                            .collect();
                        Reply::Array(
                            order
                                .iter()
                                .map(|&(part, i)| {
                                    arrays
                                        .get_mut(part)
                                        .and_then(|a| a.get_mut(i))
                                        .map_or(Reply::Null, |r| std::mem::replace(r, Reply::Null))
                                })
                                .collect(),
                        )
                    }
                    Plan::Whole | Plan::Everywhere(_) | Plan::Union(_) => Reply::Null,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::cmd;

    fn args(words: &[&str]) -> Vec<Vec<u8>> {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    fn command(name: &str) -> &'static Command {
        cmd::find(name.as_bytes()).expect("in the table")
    }

    /// Keys whose slot is even are here; odd ones on "b:1".
    fn place(slot: u16) -> Place {
        if slot.is_multiple_of(2) {
            Place::Here
        } else {
            Place::There(vec!["b:1".into()])
        }
    }

    /// Keys with slots of each kind: (here, there).
    fn keys() -> (Vec<String>, Vec<String>) {
        let (mut here, mut there) = (Vec::new(), Vec::new());
        for i in 0..40 {
            let k = format!("k{i}");
            if key_slot(k.as_bytes()).is_multiple_of(2) {
                here.push(k);
            } else {
                there.push(k);
            }
        }
        (here, there)
    }

    #[test]
    fn one_key_commands_run_where_their_slot_is() {
        let (here, there) = keys();
        assert_eq!(
            route(command("get"), &args(&["GET", &here[0]]), &place, &[]),
            Route::Here
        );
        let a = args(&["SET", &there[0], "v"]);
        let Route::Routed {
            local,
            remote,
            plan,
        } = route(command("set"), &a, &place, &[])
        else {
            panic!("routed")
        };
        assert_eq!((local, plan), (None, Plan::Whole));
        assert_eq!(remote.len(), 1);
        assert_eq!(remote[0].commands, vec![a]);
        assert_eq!(remote[0].targets, vec!["b:1".to_owned()]);
        assert_eq!(
            route(command("ping"), &args(&["PING"]), &place, &[]),
            Route::Here
        );
    }

    #[test]
    fn mget_is_split_and_gathered_in_request_order() {
        let (here, there) = keys();
        let a = args(&["MGET", &there[0], &here[0], &there[1], &here[1]]);
        let Route::Routed {
            local,
            remote,
            plan,
        } = route(command("mget"), &a, &place, &[])
        else {
            panic!("routed")
        };
        assert_eq!(local, Some(args(&["MGET", &here[0], &here[1]])));
        assert_eq!(
            remote[0].commands,
            vec![args(&["MGET", &there[0], &there[1]])]
        );
        let bulk = |s: &str| Reply::Bulk(s.as_bytes().to_vec());
        let reply = plan.gather(
            vec![
                Reply::Array(vec![bulk("h0"), Reply::Null]),
                Reply::Array(vec![bulk("t0"), bulk("t1")]),
            ],
            true,
        );
        assert_eq!(
            reply,
            Reply::Array(vec![bulk("t0"), bulk("h0"), bulk("t1"), Reply::Null])
        );
        let down = Reply::Error("CLUSTERDOWN".into());
        assert_eq!(
            plan.gather(vec![Reply::Array(vec![]), down.clone()], true),
            down
        );
    }

    #[test]
    fn mset_keeps_values_with_their_keys_and_counts_are_summed() {
        let (here, there) = keys();
        let a = args(&["MSET", &here[0], "1", &there[0], "2", &here[1], "3"]);
        let Route::Routed {
            local,
            remote,
            plan,
        } = route(command("mset"), &a, &place, &[])
        else {
            panic!("routed")
        };
        assert_eq!(local, Some(args(&["MSET", &here[0], "1", &here[1], "3"])));
        assert_eq!(remote[0].commands, vec![args(&["MSET", &there[0], "2"])]);
        assert_eq!(
            plan.gather(vec![Reply::ok(), Reply::ok()], true),
            Reply::ok()
        );
        let a = args(&["DEL", &here[0], &there[0], &there[1]]);
        let Route::Routed { plan, .. } = route(command("del"), &a, &place, &[]) else {
            panic!("routed")
        };
        assert_eq!(
            plan.gather(vec![Reply::Integer(1), Reply::Integer(2)], true),
            Reply::Integer(3)
        );
    }

    #[test]
    fn other_multi_key_commands_across_places_are_crossslot() {
        let (here, there) = keys();
        for a in [
            args(&["MSETNX", &here[0], "1", &there[0], "2"]),
            args(&["RENAME", &here[0], &there[0]]),
        ] {
            let c = command(std::str::from_utf8(&a[0]).expect("name"));
            assert_eq!(
                route(c, &a, &place, &[]),
                Route::Refuse(Reply::Error(CROSSSLOT.into()))
            );
        }
        // All on one other place: forwarded whole.
        let a = args(&["RENAME", &there[0], &there[1]]);
        assert!(matches!(
            route(command("rename"), &a, &place, &[]),
            Route::Routed {
                plan: Plan::Whole,
                ..
            }
        ));
    }

    #[test]
    fn flushall_reaches_every_member() {
        let a = args(&["FLUSHALL"]);
        assert_eq!(route(command("flushall"), &a, &place, &[]), Route::Here);
        let members = vec!["b:1".to_owned(), "c:1".to_owned()];
        let Route::Routed {
            local,
            remote,
            plan,
        } = route(command("flushall"), &a, &place, &members)
        else {
            panic!("routed")
        };
        assert_eq!(local, Some(a));
        assert_eq!(remote.len(), 2);
        assert_eq!(
            plan.gather(vec![Reply::ok(), Reply::ok(), Reply::ok()], true),
            Reply::ok()
        );
        let Reply::Error(e) = plan.gather(
            vec![
                Reply::ok(),
                Reply::ok(),
                Reply::Error("CLUSTERDOWN x".into()),
            ],
            true,
        ) else {
            panic!("an error")
        };
        assert!(e.contains("c:1"), "{e}");
    }
}
