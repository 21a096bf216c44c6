//! `CLUSTER MYID|NODES|INFO|SLOTS|SHARDS|MEET|FORGET|HELP`, `READONLY`,
//! `READWRITE`, `ASKING` and `NETDB.LEAVE`: the
//! member list in Redis Cluster's formats, as far as they fit a cluster
//! of equal nodes, and the commands that change it; and
//! `CLUSTER KEYSLOT|COUNTKEYSINSLOT|GETKEYSINSLOT`: key slots as Redis
//! Cluster computes them ([`crate::placement::slot`]), and this node's
//! keys in a slot.
//!
//! Every node holds all the data, so `CLUSTER NODES` shows every member
//! as a master holding all 16384 slots (`0-16383`), `CLUSTER SLOTS` and
//! `CLUSTER SHARDS` show the node asked as the master of every slot and
//! every other member that is up as a replica (so a cluster client
//! sends every key to the node it asked), `READONLY`, `READWRITE` and
//! `ASKING` change nothing, and `CLUSTER INFO` counts every member that
//! is not gone in `cluster_size`. netdb routes
//! no slots (a client in cluster mode would be redirected by nothing), so
//! `INFO`'s `cluster_enabled` stays 0. With sharding (`--replicas`),
//! `CLUSTER SLOTS`, `SHARDS`, `NODES` and `INFO` show the layout instead
//! ([`sharded_slots`]) and `cluster_enabled` is 1.
//! The member list's commands are answered on the I/O thread from the
//! list and never append store ops; `KEYSLOT` needs nothing but its
//! argument; the other two read the store (and never write it).

use crate::membership::{Health, MemberView, Membership, State};
use crate::placement::{key_slot, SLOTS};
use crate::redis::cmd::introspection::{container, help_entry};
use crate::redis::command::{
    arg, bulks, error, not_an_integer, parse_i64, Action, Call, Command, Docs, NodeQuery,
};
use crate::redis::resp::Reply;
use crate::routing::Placed;
use std::time::Instant;

/// What this group's docs say unless an entry says otherwise.
const DOCS: Docs = Docs::in_group("cluster");

/// The cluster commands' entries.
pub const COMMANDS: &[Command] = &[
    Command {
        docs: Docs {
            summary: "A container for Redis Cluster commands",
            since: "3.0.0",
            ..DOCS
        },
        subcommands: &[
            Command {
                flags: &["loading", "stale"],
                acl: &["@slow"],
                docs: Docs {
                    summary: "Returns the ID of a node",
                    since: "3.0.0",
                    ..DOCS
                },
                ..Command::new("cluster|myid", 2, myid)
            },
            Command {
                flags: &["loading", "stale"],
                acl: &["@slow"],
                docs: Docs {
                    summary: "Returns the cluster configuration for a node",
                    since: "3.0.0",
                    ..DOCS
                },
                ..Command::new("cluster|nodes", 2, nodes)
            },
            Command {
                flags: &["loading", "stale"],
                acl: &["@slow"],
                docs: Docs {
                    summary: "Returns information about the state of a node",
                    since: "3.0.0",
                    ..DOCS
                },
                ..Command::new("cluster|info", 2, info)
            },
            Command {
                flags: &["admin", "stale", "no_async_loading"],
                acl: &["@admin", "@slow", "@dangerous"],
                docs: Docs {
                    summary: "Forces a node to handshake with another node",
                    since: "3.0.0",
                    args: &[arg("ip", "string"), arg("port", "integer")],
                    ..DOCS
                },
                ..Command::new("cluster|meet", 4, meet)
            },
            Command {
                flags: &["admin", "stale", "no_async_loading"],
                acl: &["@admin", "@slow", "@dangerous"],
                docs: Docs {
                    summary: "Removes a node from the nodes table",
                    since: "3.0.0",
                    args: &[arg("node-id", "string")],
                    ..DOCS
                },
                ..Command::new("cluster|forget", 3, forget)
            },
            Command {
                flags: &["loading", "stale"],
                acl: &["@slow"],
                docs: Docs {
                    summary: "Returns the mapping of cluster slots to nodes",
                    since: "3.0.0",
                    ..DOCS
                },
                ..Command::new("cluster|slots", 2, slots)
            },
            Command {
                flags: &["loading", "stale"],
                acl: &["@slow"],
                docs: Docs {
                    summary: "Returns the mapping of cluster slots to shards",
                    since: "7.0.0",
                    ..DOCS
                },
                ..Command::new("cluster|shards", 2, shards)
            },
            Command {
                flags: &["stale"],
                acl: &["@slow"],
                docs: Docs {
                    summary: "Returns the hash slot of the specified key",
                    since: "3.0.0",
                    args: &[arg("key", "string")],
                    ..DOCS
                },
                ..Command::new("cluster|keyslot", 3, keyslot)
            },
            Command {
                flags: &["stale"],
                acl: &["@slow"],
                docs: Docs {
                    summary: "Return the number of local keys in the specified hash slot \
                              (netdb: in the selected database)",
                    since: "3.0.0",
                    args: &[arg("slot", "integer")],
                    ..DOCS
                },
                ..Command::new("cluster|countkeysinslot", 3, countkeysinslot)
            },
            Command {
                flags: &["stale"],
                acl: &["@slow"],
                docs: Docs {
                    summary: "Return local key names in the specified hash slot \
                              (netdb: in the selected database)",
                    since: "3.0.0",
                    args: &[arg("slot", "integer"), arg("count", "integer")],
                    ..DOCS
                },
                ..Command::new("cluster|getkeysinslot", 4, getkeysinslot)
            },
            help_entry("cluster|help", "cluster", &["@slow"]),
        ],
        ..Command::new("cluster", -2, container)
    },
    Command {
        flags: &["fast", "loading", "stale"],
        acl: &["@fast", "@connection"],
        docs: Docs {
            summary: "Enables read-only queries for a connection to a Redis Cluster replica node \
                      (netdb: every node serves reads and writes; accepted)",
            since: "3.0.0",
            ..DOCS
        },
        ..Command::new("readonly", 1, ok)
    },
    Command {
        flags: &["fast", "loading", "stale"],
        acl: &["@fast", "@connection"],
        docs: Docs {
            summary: "Enables read-write queries for a connection to a Redis Cluster replica node \
                      (netdb: accepted)",
            since: "3.0.0",
            ..DOCS
        },
        ..Command::new("readwrite", 1, ok)
    },
    Command {
        flags: &["fast"],
        acl: &["@fast", "@connection"],
        docs: Docs {
            summary: "Signals that a cluster client is following an -ASK redirect \
                      (netdb: never redirects; accepted)",
            since: "3.0.0",
            ..DOCS
        },
        ..Command::new("asking", 1, ok)
    },
    Command {
        flags: &["admin", "noscript"],
        acl: &["@admin", "@slow", "@dangerous"],
        docs: Docs {
            summary: "Leaves the cluster gracefully: pushes what the others lack, marks this \
                      node left, tells every member, then stops the node",
            since: env!("CARGO_PKG_VERSION"),
            group: "server",
            args: &[],
        },
        ..Command::new("netdb.leave", 1, leave)
    },
];

/// What a `CLUSTER` command (or `NETDB.LEAVE`) asks of the member list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterQuery {
    /// `CLUSTER MYID`.
    MyId,
    /// `CLUSTER NODES`.
    Nodes,
    /// `CLUSTER INFO`.
    Info,
    /// `CLUSTER SLOTS`.
    Slots,
    /// `CLUSTER SHARDS`.
    Shards,
    /// `CLUSTER MEET host port`: join the member there.
    Meet {
        /// `host:port`.
        addr: String,
    },
    /// `CLUSTER FORGET id`.
    Forget {
        /// The member id.
        id: String,
    },
    /// `NETDB.LEAVE`.
    Leave,
}

fn myid(_: Call<'_>) -> Action {
    Action::Node(NodeQuery::Cluster(ClusterQuery::MyId))
}

fn nodes(_: Call<'_>) -> Action {
    Action::Node(NodeQuery::Cluster(ClusterQuery::Nodes))
}

fn info(_: Call<'_>) -> Action {
    Action::Node(NodeQuery::Cluster(ClusterQuery::Info))
}

fn meet(call: Call<'_>) -> Action {
    let host = String::from_utf8_lossy(&call.args[2]).into_owned();
    let port = std::str::from_utf8(&call.args[3])
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
        .filter(|&p| p != 0);
    let Some(port) = port else {
        return error(format!(
            "ERR Invalid base port specified: {}",
            String::from_utf8_lossy(&call.args[3])
        ));
    };
    if host.is_empty() || host.len() > 255 || host.chars().any(|c| !c.is_ascii_graphic()) {
        return error(format!("ERR Invalid node address specified: {host}:{port}"));
    }
    let addr = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Action::Node(NodeQuery::Cluster(ClusterQuery::Meet { addr }))
}

fn slots(_: Call<'_>) -> Action {
    Action::Node(NodeQuery::Cluster(ClusterQuery::Slots))
}

fn shards(_: Call<'_>) -> Action {
    Action::Node(NodeQuery::Cluster(ClusterQuery::Shards))
}

/// `READONLY`, `READWRITE`, `ASKING`: what a cluster client sends before
/// reading from a replica or following a redirect. Every netdb node
/// serves reads and writes of every key and never redirects, so they
/// change nothing.
fn ok(_: Call<'_>) -> Action {
    Action::Reply(Reply::ok())
}

fn forget(call: Call<'_>) -> Action {
    let id = String::from_utf8_lossy(&call.args[2]).into_owned();
    Action::Node(NodeQuery::Cluster(ClusterQuery::Forget { id }))
}

fn leave(_: Call<'_>) -> Action {
    Action::Node(NodeQuery::Cluster(ClusterQuery::Leave))
}

/// `CLUSTER KEYSLOT key`: the key's slot, from its bytes alone.
fn keyslot(call: Call<'_>) -> Action {
    Action::Reply(Reply::Integer(i64::from(key_slot(&call.args[2]))))
}

/// A slot, if `slot` is one (in `0..SLOTS`).
fn checked_slot(slot: i64) -> Option<u16> {
    u16::try_from(slot).ok().filter(|&s| s < SLOTS)
}

/// `CLUSTER COUNTKEYSINSLOT slot`: how many live keys of the selected
/// database this node holds in `slot`. Redis keeps an index of keys by
/// slot; netdb has none yet, so this is a walk of every key on the store
/// thread, O(keys), like `KEYS`: fine for a tool's occasional look, not
/// for a client's every request.
fn countkeysinslot(call: Call<'_>) -> Action {
    let Some(slot) = parse_i64(&call.args[2]) else {
        return not_an_integer();
    };
    let Some(slot) = checked_slot(slot) else {
        return error("ERR Invalid slot");
    };
    Action::Store(Box::new(move |db| {
        let count = db.keys_where(|k| key_slot(k) == slot).len();
        Reply::Integer(i64::try_from(count).unwrap_or(i64::MAX)).into()
    }))
}

/// `CLUSTER GETKEYSINSLOT slot count`: up to `count` live keys of the
/// selected database in `slot`, sorted (Redis's order is its index's,
/// which netdb has not). A walk of every key on the store thread, as
/// [`countkeysinslot`].
fn getkeysinslot(call: Call<'_>) -> Action {
    // Both are read before either is checked, as Redis does.
    let (Some(slot), Some(count)) = (parse_i64(&call.args[2]), parse_i64(&call.args[3])) else {
        return not_an_integer();
    };
    let (Some(slot), Ok(count)) = (checked_slot(slot), usize::try_from(count)) else {
        return error("ERR Invalid slot or number of keys");
    };
    Action::Store(Box::new(move |db| {
        let mut keys = db.keys_where(|k| key_slot(k) == slot);
        keys.sort_unstable();
        keys.truncate(count);
        let weight: usize = keys.iter().map(|k| k.len() + 16).sum();
        if weight > db.reply_budget() {
            db.exceed_budget();
            return Reply::Null.into();
        }
        bulks(keys).into()
    }))
}

/// Answers `query` from the member list (`None`: the node has none yet,
/// as in the instant before its pushers start).
///
/// With sharding (`placed`: the layout as this node computes it), the
/// views of the slots show the layout instead: see [`sharded_slots`].
pub fn answer(
    query: &ClusterQuery,
    membership: Option<&Membership>,
    placed: Option<&Placed>,
) -> Reply {
    let Some(membership) = membership else {
        return Reply::Error("ERR the member list is not ready yet".into());
    };
    if let Some(placed) = placed {
        let views = membership.view(Instant::now());
        let shown = sharded_slots(placed, &views);
        match query {
            ClusterQuery::Slots => return sharded_slots_reply(&shown),
            ClusterQuery::Shards => return sharded_shards_reply(&shown),
            ClusterQuery::Nodes => {
                return Reply::Bulk(sharded_nodes_text(&views, &shown).into_bytes())
            }
            ClusterQuery::Info => {
                return Reply::Bulk(sharded_info_text(&views, &shown).into_bytes())
            }
            _ => {}
        }
    }
    match query {
        ClusterQuery::MyId => Reply::Bulk(membership.my_id().into_bytes()),
        ClusterQuery::Nodes => {
            Reply::Bulk(nodes_text(&membership.view(Instant::now())).into_bytes())
        }
        ClusterQuery::Info => Reply::Bulk(info_text(&membership.view(Instant::now())).into_bytes()),
        ClusterQuery::Slots => slots_reply(&membership.view(Instant::now())),
        ClusterQuery::Shards => shards_reply(&membership.view(Instant::now())),
        ClusterQuery::Meet { addr } => {
            membership.meet(addr);
            Reply::ok()
        }
        ClusterQuery::Forget { id } => match membership.forget(id) {
            Ok(()) => Reply::ok(),
            Err(why) => Reply::Error(format!("ERR {why}")),
        },
        ClusterQuery::Leave => match membership.leave() {
            Ok(()) => Reply::ok(),
            Err(why) => Reply::Error(format!("ERR {why}")),
        },
    }
}

/// A run of slots as a sharded cluster shows it: its replicas, the
/// first live one (as this node sees them) first, as its master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownRange<'a> {
    /// The run's first slot.
    pub first: u16,
    /// Its last slot (inclusive).
    pub last: u16,
    /// Its replicas' views, the master first; live ones before the others.
    pub nodes: Vec<&'a MemberView>,
    /// Whether any replica is live.
    pub live: bool,
}

/// Whether `view`'s member serves, as this node sees it: itself, or a
/// member neither suspect nor down.
fn is_live(view: &MemberView) -> bool {
    view.myself || !matches!(view.health, Some((Health::Suspect | Health::Down, _)))
}

/// The layout's ranges as `CLUSTER SLOTS`, `SHARDS`, `NODES` and `INFO`
/// show them when sharded: each range's live replicas first (the first
/// is shown as master, so a cluster client sends the range's commands to
/// it), then those that look suspect or down from here.
pub fn sharded_slots<'a>(placed: &Placed, views: &'a [MemberView]) -> Vec<ShownRange<'a>> {
    placed
        .layout
        .ranges()
        .into_iter()
        .map(|range| {
            let found: Vec<&MemberView> = range
                .replicas
                .iter()
                .filter_map(|id| views.iter().find(|v| v.member.id == *id))
                .collect();
            let mut nodes: Vec<&MemberView> =
                found.iter().copied().filter(|v| is_live(v)).collect();
            let live = !nodes.is_empty();
            nodes.extend(found.iter().copied().filter(|v| !is_live(v)));
            ShownRange {
                first: range.first,
                last: range.last,
                nodes,
                live,
            }
        })
        .collect()
}

/// A node of `CLUSTER SLOTS`: `[host, port, id, {}]`.
fn slot_node(v: &MemberView) -> Reply {
    let (host, port) = host_and_port(&v.member.addr);
    Reply::Array(vec![
        Reply::Bulk(host.as_bytes().to_vec()),
        Reply::Integer(port),
        Reply::Bulk(v.member.id.as_bytes().to_vec()),
        Reply::Map(Vec::new()),
    ])
}

/// A node of `CLUSTER SHARDS`: its id, address, name, role and health.
fn shard_node(v: &MemberView, master: bool, online: bool) -> Reply {
    let bulk = |s: &str| Reply::Bulk(s.as_bytes().to_vec());
    let (host, port) = host_and_port(&v.member.addr);
    Reply::Map(vec![
        (bulk("id"), bulk(&v.member.id)),
        (bulk("port"), Reply::Integer(port)),
        (bulk("ip"), bulk(host)),
        (bulk("endpoint"), bulk(host)),
        (bulk("hostname"), bulk(&v.member.name)),
        (
            bulk("role"),
            bulk(if master { "master" } else { "replica" }),
        ),
        (bulk("replication-offset"), Reply::Integer(0)),
        (
            bulk("health"),
            bulk(if online { "online" } else { "failed" }),
        ),
    ])
}

/// `CLUSTER SLOTS` of a sharded cluster: each range with its replicas,
/// master first.
pub fn sharded_slots_reply(shown: &[ShownRange<'_>]) -> Reply {
    Reply::Array(
        shown
            .iter()
            .filter(|r| !r.nodes.is_empty())
            .map(|r| {
                let mut range = vec![
                    Reply::Integer(i64::from(r.first)),
                    Reply::Integer(i64::from(r.last)),
                ];
                range.extend(r.nodes.iter().map(|v| slot_node(v)));
                Reply::Array(range)
            })
            .collect(),
    )
}

/// `CLUSTER SHARDS` of a sharded cluster: one shard per set of replicas
/// in the same order, with all its ranges.
pub fn sharded_shards_reply(shown: &[ShownRange<'_>]) -> Reply {
    let bulk = |s: &str| Reply::Bulk(s.as_bytes().to_vec());
    let mut shards: Vec<(Vec<&str>, Vec<Reply>, &ShownRange<'_>)> = Vec::new();
    for r in shown.iter().filter(|r| !r.nodes.is_empty()) {
        let ids: Vec<&str> = r.nodes.iter().map(|v| v.member.id.as_str()).collect();
        let bounds = [
            Reply::Integer(i64::from(r.first)),
            Reply::Integer(i64::from(r.last)),
        ];
        match shards.iter_mut().find(|(s, _, _)| *s == ids) {
            Some((_, slots, _)) => slots.extend(bounds),
            None => shards.push((ids, bounds.to_vec(), r)),
        }
    }
    Reply::Array(
        shards
            .into_iter()
            .map(|(_, slots, r)| {
                let nodes = (r.nodes.iter().enumerate())
                    .map(|(i, v)| shard_node(v, i == 0, is_live(v)))
                    .collect();
                Reply::Map(vec![
                    (bulk("slots"), Reply::Array(slots)),
                    (bulk("nodes"), Reply::Array(nodes)),
                ])
            })
            .collect(),
    )
}

/// `CLUSTER NODES` of a sharded cluster: every member that is not gone
/// as a master, with the ranges it is shown as master of (a member holds
/// other ranges as a replica too, which this format cannot say).
pub fn sharded_nodes_text(views: &[MemberView], shown: &[ShownRange<'_>]) -> String {
    let mut text = String::new();
    for line in nodes_text(views).lines() {
        let id = line.split(' ').next().unwrap_or("");
        let head = line.strip_suffix(" 0-16383").unwrap_or(line);
        let ranges: Vec<String> = shown
            .iter()
            .filter(|r| r.nodes.first().is_some_and(|v| v.member.id == id))
            .map(|r| {
                if r.first == r.last {
                    r.first.to_string()
                } else {
                    format!("{}-{}", r.first, r.last)
                }
            })
            .collect();
        text.push_str(head);
        if !ranges.is_empty() {
            text.push(' ');
            text.push_str(&ranges.join(" "));
        }
        text.push('\n');
    }
    text
}

/// `CLUSTER INFO` of a sharded cluster: the slots served by a live
/// replica are `ok`, the others `fail`, and the size counts the members
/// shown as a master.
pub fn sharded_info_text(views: &[MemberView], shown: &[ShownRange<'_>]) -> String {
    let width = |r: &ShownRange<'_>| usize::from(r.last - r.first) + 1;
    let assigned: usize = shown
        .iter()
        .filter(|r| !r.nodes.is_empty())
        .map(width)
        .sum();
    let ok: usize = shown.iter().filter(|r| r.live).map(width).sum();
    let mut masters: Vec<&str> = shown
        .iter()
        .filter(|r| r.live)
        .filter_map(|r| r.nodes.first().map(|v| v.member.id.as_str()))
        .collect();
    masters.sort_unstable();
    masters.dedup();
    let mut text = String::new();
    for line in info_text(views).lines() {
        let (key, value) = line.split_once(':').unwrap_or((line, ""));
        let value = match key {
            "cluster_state" => if ok == usize::from(SLOTS) {
                "ok"
            } else {
                "fail"
            }
            .to_owned(),
            "cluster_slots_assigned" => assigned.to_string(),
            "cluster_slots_ok" => ok.to_string(),
            "cluster_slots_fail" => (assigned - ok).to_string(),
            "cluster_size" => masters.len().to_string(),
            _ => value.to_owned(),
        };
        text.push_str(&format!("{key}:{value}\r\n"));
    }
    text
}

/// `CLUSTER NODES`: one line per member that is not gone, in Redis's
/// format: `id host:port@cport,hostname flags master ping-sent pong-recv
/// config-epoch link-state slots`. The bus port is the node's own port
/// (peers and clients share it); the hostname is the node's name; the
/// config epoch is its incarnation.
pub fn nodes_text(views: &[MemberView]) -> String {
    let mut text = String::new();
    for v in views.iter().filter(|v| !v.member.state.is_gone()) {
        let m = &v.member;
        let (_, port) = host_and_port(&m.addr);
        let mut flags = Vec::new();
        if v.myself {
            flags.push("myself");
        }
        flags.push("master");
        match v.health {
            Some((Health::Suspect, _)) => flags.push("fail?"),
            Some((Health::Down, _)) => flags.push("fail"),
            _ => {}
        }
        if m.state == State::Joining {
            flags.push("handshake");
        }
        let link = if matches!(v.health, Some((Health::Down, _))) {
            "disconnected"
        } else {
            "connected"
        };
        text.push_str(&format!(
            "{} {}@{port},{} {} - 0 0 {} {link} 0-16383\n",
            m.id,
            m.addr,
            m.name,
            flags.join(","),
            m.incarnation
        ));
    }
    text
}

/// The members a client may be sent to, this node first: itself, and
/// every other member that is up (not joining, leaving, gone or down
/// from here).
fn serving(views: &[MemberView]) -> Vec<&MemberView> {
    let mut out: Vec<&MemberView> = views.iter().filter(|v| v.myself).collect();
    out.extend(views.iter().filter(|v| {
        !v.myself && v.member.state == State::Up && !matches!(v.health, Some((Health::Down, _)))
    }));
    out
}

/// A member's `host` and port, from its `host:port` (`[v6]:port` too).
fn host_and_port(addr: &str) -> (&str, i64) {
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "0"));
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port.parse().unwrap_or(0))
}

/// `CLUSTER SLOTS`, in Redis 7's format: one range, `0` to `16383`, with
/// this node as its master and every other member that serves as a
/// replica, each as `[host, port, id, {}]` (the map of other endpoints
/// is empty). Every node holds all the data, so the node asked is as
/// good a master as any: a cluster client (redis-py's `RedisCluster`,
/// the `redis` crate's cluster client, `redis-cli -c`) sends every key to
/// the node it asked first, and any other node it fails over to answers
/// for every key too. Sharding (the layout in [`crate::placement`])
/// will show each range's own replicas here.
pub fn slots_reply(views: &[MemberView]) -> Reply {
    let mut range = vec![Reply::Integer(0), Reply::Integer(i64::from(SLOTS) - 1)];
    range.extend(serving(views).into_iter().map(slot_node));
    Reply::Array(vec![Reply::Array(range)])
}

/// `CLUSTER SHARDS`, in Redis 7's format: one shard holding every slot,
/// this node its master and every other member that serves a replica
/// (see [`slots_reply`]).
pub fn shards_reply(views: &[MemberView]) -> Reply {
    let bulk = |s: &str| Reply::Bulk(s.as_bytes().to_vec());
    let nodes = serving(views)
        .into_iter()
        .map(|v| {
            let online = !matches!(v.health, Some((Health::Down, _)));
            shard_node(v, v.myself, online)
        })
        .collect();
    Reply::Array(vec![Reply::Map(vec![
        (
            bulk("slots"),
            Reply::Array(vec![
                Reply::Integer(0),
                Reply::Integer(i64::from(SLOTS) - 1),
            ]),
        ),
        (bulk("nodes"), Reply::Array(nodes)),
    ])])
}

/// `CLUSTER INFO`, with Redis's fields: the cluster is `ok` while this
/// node knows no member down (every node holds all the data, so any
/// that answers serves every slot; a down member only holds back
/// tombstone collection until it is forgotten).
pub fn info_text(views: &[MemberView]) -> String {
    let live: Vec<&MemberView> = views.iter().filter(|v| !v.member.state.is_gone()).collect();
    let count = |h: Health| {
        live.iter()
            .filter(|v| v.health.is_some_and(|(x, _)| x == h))
            .count()
    };
    let (suspect, down) = (count(Health::Suspect), count(Health::Down));
    let epoch = views
        .iter()
        .map(|v| v.member.incarnation)
        .max()
        .unwrap_or(0);
    let my_epoch = views
        .iter()
        .find(|v| v.myself)
        .map_or(0, |v| v.member.incarnation);
    let fields = [
        (
            "cluster_state",
            if down == 0 { "ok" } else { "fail" }.to_owned(),
        ),
        ("cluster_slots_assigned", "16384".to_owned()),
        ("cluster_slots_ok", "16384".to_owned()),
        ("cluster_slots_pfail", "0".to_owned()),
        ("cluster_slots_fail", "0".to_owned()),
        ("cluster_known_nodes", live.len().to_string()),
        ("cluster_size", live.len().to_string()),
        ("cluster_current_epoch", epoch.to_string()),
        ("cluster_my_epoch", my_epoch.to_string()),
        ("netdb_members_suspect", suspect.to_string()),
        ("netdb_members_down", down.to_string()),
    ];
    fields.iter().map(|(k, v)| format!("{k}:{v}\r\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::Member;
    use crate::redis::cmd::testing::{bulk_of, err, run, session, Fake};
    use std::time::Duration;

    #[test]
    fn slots_and_shards_show_this_node_as_master_of_every_slot() {
        let views = vec![
            view(1, true, None, State::Up),
            view(2, false, Some(Health::Up), State::Up),
            view(3, false, Some(Health::Down), State::Up),
            view(4, false, Some(Health::Up), State::Joining),
        ];
        let Reply::Array(ranges) = slots_reply(&views) else {
            panic!("an array")
        };
        let [Reply::Array(range)] = &ranges[..] else {
            panic!("one range: {ranges:?}")
        };
        assert_eq!(range[..2], [Reply::Integer(0), Reply::Integer(16383)]);
        // This node, then the one other member that serves: not the down
        // one, nor the one still joining.
        let ids: Vec<&Reply> = range[2..]
            .iter()
            .map(|n| match n {
                Reply::Array(f) => &f[2],
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            ids,
            [
                &Reply::Bulk(views[0].member.id.clone().into_bytes()),
                &Reply::Bulk(views[1].member.id.clone().into_bytes())
            ]
        );
        let Reply::Array(shards) = shards_reply(&views) else {
            panic!("an array")
        };
        assert_eq!(shards.len(), 1);
        fn roles(r: &Reply, out: &mut Vec<Vec<u8>>) {
            match r {
                Reply::Array(items) => items.iter().for_each(|i| roles(i, out)),
                Reply::Map(pairs) => {
                    for (k, v) in pairs {
                        match (k, v) {
                            (Reply::Bulk(k), Reply::Bulk(v)) if k == b"role" => out.push(v.clone()),
                            _ => roles(v, out),
                        }
                    }
                }
                _ => {}
            }
        }
        let mut seen = Vec::new();
        roles(&Reply::Array(shards), &mut seen);
        assert_eq!(seen, [b"master".to_vec(), b"replica".to_vec()]);
        assert_eq!(run(&[b"READONLY"]), Reply::ok());
        assert_eq!(run(&[b"asking"]), Reply::ok());
    }

    #[test]
    fn keyslot_is_redis_clusters() {
        for (key, slot) in [
            (&b"foo"[..], 12182),
            (b"{user1000}.following", 3443),
            (b"{user1000}.followers", 3443),
            (b"", 0),
        ] {
            assert_eq!(run(&[b"CLUSTER", b"KEYSLOT", key]), Reply::Integer(slot));
        }
        assert_eq!(
            run(&[b"cluster", b"keyslot"]),
            err("ERR wrong number of arguments for 'cluster|keyslot' command")
        );
    }

    #[test]
    fn slot_arguments_are_checked_as_redis_does() {
        for (args, text) in [
            (
                &[&b"CLUSTER"[..], b"COUNTKEYSINSLOT", b"x"][..],
                "ERR value is not an integer or out of range",
            ),
            (&[b"CLUSTER", b"COUNTKEYSINSLOT", b"-1"], "ERR Invalid slot"),
            (
                &[b"CLUSTER", b"COUNTKEYSINSLOT", b"16384"],
                "ERR Invalid slot",
            ),
            (
                &[b"CLUSTER", b"COUNTKEYSINSLOT", b"99999999999999999999"],
                "ERR value is not an integer or out of range",
            ),
            (
                &[b"CLUSTER", b"GETKEYSINSLOT", b"16384", b"x"],
                "ERR value is not an integer or out of range",
            ),
            (
                &[b"CLUSTER", b"GETKEYSINSLOT", b"16384", b"1"],
                "ERR Invalid slot or number of keys",
            ),
            (
                &[b"CLUSTER", b"GETKEYSINSLOT", b"1", b"-1"],
                "ERR Invalid slot or number of keys",
            ),
            (
                &[b"CLUSTER", b"GETKEYSINSLOT", b"1"],
                "ERR wrong number of arguments for 'cluster|getkeysinslot' command",
            ),
            (
                &[b"CLUSTER", b"COUNTKEYSINSLOT", b"1", b"2"],
                "ERR wrong number of arguments for 'cluster|countkeysinslot' command",
            ),
        ] {
            assert_eq!(run(args), err(text), "{args:?}");
        }
    }

    #[test]
    fn keys_in_a_slot_are_this_databases() {
        let mut fake = Fake::default();
        let s = &mut session();
        let slot = key_slot(b"t").to_string();
        let slot = slot.as_bytes();
        fake.run(s, &[b"MSET", b"{t}3", b"c", b"{t}1", b"a", b"other", b"x"]);
        fake.run(s, &[b"SELECT", b"1"]);
        fake.run(s, &[b"SET", b"{t}2", b"b"]);
        fake.run(s, &[b"SELECT", b"0"]);
        assert_eq!(
            fake.run(s, &[b"CLUSTER", b"COUNTKEYSINSLOT", slot]),
            Reply::Integer(2)
        );
        assert_eq!(
            fake.run(s, &[b"CLUSTER", b"GETKEYSINSLOT", slot, b"10"]),
            Reply::Array(vec![bulk_of(b"{t}1"), bulk_of(b"{t}3")])
        );
        assert_eq!(
            fake.run(s, &[b"CLUSTER", b"GETKEYSINSLOT", slot, b"1"]),
            Reply::Array(vec![bulk_of(b"{t}1")])
        );
        assert_eq!(
            fake.run(s, &[b"CLUSTER", b"GETKEYSINSLOT", slot, b"0"]),
            Reply::Array(vec![])
        );
        fake.run(s, &[b"SELECT", b"1"]);
        assert_eq!(
            fake.run(s, &[b"CLUSTER", b"GETKEYSINSLOT", slot, b"10"]),
            Reply::Array(vec![bulk_of(b"{t}2")])
        );
        fake.run(s, &[b"DEL", b"{t}2"]);
        assert_eq!(
            fake.run(s, &[b"CLUSTER", b"COUNTKEYSINSLOT", slot]),
            Reply::Integer(0)
        );
    }

    fn view(n: u8, myself: bool, health: Option<Health>, state: State) -> MemberView {
        MemberView {
            member: Member {
                id: format!("{n:040x}"),
                name: format!("n{n}"),
                addr: format!("127.0.0.1:{}", 7000 + u16::from(n)),
                state,
                incarnation: u64::from(n),
            },
            myself,
            health: health.map(|h| (h, Duration::from_secs(1))),
        }
    }

    #[test]
    fn nodes_are_all_masters_of_every_slot() {
        let text = nodes_text(&[
            view(1, true, None, State::Up),
            view(2, false, Some(Health::Suspect), State::Up),
            view(3, false, Some(Health::Down), State::Up),
            view(4, false, None, State::Forgotten),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(
            lines[0],
            format!(
                "{:040x} 127.0.0.1:7001@7001,n1 myself,master - 0 0 1 connected 0-16383",
                1
            )
        );
        assert!(lines[1].contains(" master,fail? "), "{}", lines[1]);
        assert!(
            lines[2].contains(" master,fail - 0 0 3 disconnected "),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn info_counts_the_live_members() {
        let text = info_text(&[
            view(1, true, None, State::Up),
            view(2, false, Some(Health::Up), State::Up),
            view(3, false, None, State::Left),
        ]);
        assert!(text.starts_with("cluster_state:ok\r\n"), "{text}");
        assert!(text.contains("cluster_known_nodes:2\r\n"), "{text}");
        assert!(text.contains("cluster_size:2\r\n"), "{text}");
    }
}
