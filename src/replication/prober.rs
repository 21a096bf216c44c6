//! The prober: one thread per peer that probes it (the failure
//! detector's evidence, see [`crate::membership::detector`]) and gossips
//! the member list with it (see [`crate::membership`] for the exchange
//! and why it is not part of the push rounds).
//!
//! Each prober keeps a connection of its own to its peer, opened with
//! the same authenticated handshake and TLS as a pusher's and a `Hello`
//! marked as a probe, so the peer answers it on its connection thread
//! without asking its store thread for anything. Every probe interval it
//! sends `Gossip` with this node's digest; the answer is the peer's
//! digest (and its list, if they differ). A probe that fails or times
//! out (one probe interval at most) drops the connection; the next one
//! opens a new one.
//!
//! A failed direct probe is followed at once by indirect ones (SWIM):
//! up to [`INDIRECT_PROBES`] other members are asked to reach the target,
//! and one that does counts as hearing from it. Both fit well inside the
//! failure timeout (five probe intervals): a member that only this node
//! cannot reach stays up here, and is not even suspect, since it is heard
//! from within two intervals.

use crate::membership::detector::probe_interval;
use crate::membership::Health;
use crate::membership::Membership;
use crate::replication::connection::Connection;
use crate::replication::error::{ProtocolError, Result, SyncError};
use crate::replication::pusher::{dial, expelled, who_answered, Answerer, PushSettings};
use crate::replication::status::{instance_id, PeerTable};
use crate::replication::wire::{Message, MessageKind, MessageRef, PROTOCOL_VERSION};
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

/// Starts the prober of peer `index` at `addr`; it ends once `stop`'s
/// sender is dropped (or sends), the peer turns out to be this node, or
/// this node is expelled.
pub fn spawn(
    index: usize,
    addr: String,
    settings: PushSettings,
    table: PeerTable,
    stop: Receiver<()>,
) -> crate::error::Result<()> {
    std::thread::Builder::new()
        .name(format!("netdb-probe-{addr}"))
        .spawn(move || run(index, &addr, settings, &table, &stop))
        .map(|_| ())
        .map_err(|source| crate::error::Error::Io {
            context: "cannot start a prober thread",
            source,
        })
}

/// Probe settings: a direct probe may take at most one probe interval
/// (a fifth of the failure timeout), to connect and to answer each, so
/// the indirect ones that follow a failed one are heard from before the
/// member would turn suspect (half the failure timeout of silence).
fn probe_settings(settings: &PushSettings) -> PushSettings {
    let budget = probe_interval(settings.membership.failure_timeout());
    let mut probing = settings.clone();
    probing.io_timeout = probing
        .io_timeout
        .min(budget)
        .max(Duration::from_millis(10));
    probing.connect_timeout = probing
        .connect_timeout
        .min(budget)
        .max(Duration::from_millis(10));
    probing
}

/// Whether the prober was told to stop.
fn stopped(stop: &Receiver<()>) -> bool {
    !matches!(stop.try_recv(), Err(TryRecvError::Empty))
}

fn run(index: usize, addr: &str, settings: PushSettings, table: &PeerTable, stop: &Receiver<()>) {
    let settings = probe_settings(&settings);
    let membership = &settings.membership;
    let interval = probe_interval(membership.failure_timeout());
    let mut conn: Option<Probe> = None;
    while !stopped(stop) {
        let started = Instant::now();
        if membership.expelled().is_some() {
            return;
        }
        match probe(&mut conn, addr, &settings) {
            Ok(id) => {
                let now = Instant::now();
                if !table.bind(index, &id) {
                    log::info!("peer {addr} is member {id}, which another entry reaches");
                    table.retire(index);
                    return;
                }
                membership.heard_from(&id, now);
                membership.health(&id, now);
            }
            Err(SyncError::Protocol(ProtocolError::Myself)) => return,
            Err(e) => {
                conn = None;
                log::debug!("probe of {addr} failed: {e}");
                if let Some(id) = table.member_of(index) {
                    // SWIM: before suspecting it, ask others to reach it;
                    // one link down is not the member down.
                    if probe_indirectly(&id, &settings) {
                        membership.heard_from(&id, Instant::now());
                    } else {
                        membership.probe_failed(&id, Instant::now());
                    }
                    membership.health(&id, Instant::now());
                }
            }
        }
        let left = (started + interval).saturating_duration_since(Instant::now());
        if !matches!(stop.recv_timeout(left), Err(RecvTimeoutError::Timeout)) {
            return;
        }
    }
}

/// An open probe connection, and the member id of its peer once its
/// first answer said it.
struct Probe {
    conn: Connection,
    peer: Option<String>,
}

/// Opens a probe connection: the handshake, and a `Hello` marked as a
/// probe.
fn open(addr: &str, settings: &PushSettings) -> Result<Connection> {
    let mut conn = dial(addr, settings)?;
    let membership = &settings.membership;
    let me = membership.me();
    conn.send(&MessageRef::Hello {
        version: PROTOCOL_VERSION,
        name: &me.name,
        wall_clock_ms: crate::engine::service::wall_clock_us() / 1000,
        instance: instance_id(),
        member: &me.id,
        probe: true,
        replicas: settings.routing.replicas_code(),
    })?;
    conn.flush()?;
    match conn.receive()? {
        Message::Welcome { version, .. } if version != PROTOCOL_VERSION => {
            Err(ProtocolError::Version {
                theirs: version,
                ours: PROTOCOL_VERSION,
            }
            .into())
        }
        Message::Welcome { replicas, .. } if replicas != settings.routing.replicas_code() => {
            Err(ProtocolError::Replicas {
                theirs: replicas,
                ours: settings.routing.replicas_code(),
            }
            .into())
        }
        Message::Welcome { name, instance, .. } => {
            match who_answered((&me.name, instance_id()), (&name, instance)) {
                Answerer::Peer => Ok(conn),
                Answerer::Myself => Err(ProtocolError::Myself.into()),
                Answerer::Twin => Err(ProtocolError::Twin { name }.into()),
            }
        }
        Message::Expelled { why } => Err(expelled(membership, why)),
        other => Err(SyncError::unexpected(&[MessageKind::Welcome], other.kind())),
    }
}

/// One probe over `conn` (opened first if need be): sends this node's
/// digest, merges what comes back, and sends this node's list if the
/// peer still lacks some of it. Returns the peer's member id.
///
/// Only the first `Gossip` on a connection names its sender, and so has
/// the answer name the peer: the peer knows the prober from its `Hello`,
/// and an idle probe is then a digest and a few bytes each way.
fn probe(conn: &mut Option<Probe>, addr: &str, settings: &PushSettings) -> Result<String> {
    let p = match conn {
        Some(p) => p,
        None => conn.insert(Probe {
            conn: open(addr, settings)?,
            peer: None,
        }),
    };
    let membership = &settings.membership;
    let me = if p.peer.is_none() {
        membership.my_id()
    } else {
        String::new()
    };
    let (from, theirs) = exchange(&mut p.conn, membership, &me, false)?;
    if p.peer.is_none() {
        if from.is_empty() {
            return Err(
                ProtocolError::BadMembers("a probe answer that names no member".into()).into(),
            );
        }
        p.peer = Some(from);
    }
    if membership.digest() != theirs {
        exchange(&mut p.conn, membership, &me, true)?;
    }
    Ok(p.peer.clone().unwrap_or_default())
}

/// Sends `Gossip` from `me` (empty: not named again; with the whole list
/// if `full`), merges the answer's records; returns the answerer's id (as
/// the answer names it) and digest.
fn exchange(
    conn: &mut Connection,
    membership: &Membership,
    me: &str,
    full: bool,
) -> Result<(String, u64)> {
    let records = if full {
        membership.records()
    } else {
        Vec::new()
    };
    let sent = conn.send(&MessageRef::Gossip {
        from: me,
        digest: membership.digest(),
        members: &records,
    })?;
    membership.count_gossip(sent);
    conn.flush()?;
    match conn.receive()? {
        Message::Gossip {
            from,
            digest,
            members,
        } => {
            if !members.is_empty() {
                membership
                    .merge(members)
                    .map_err(ProtocolError::BadMembers)?;
            }
            Ok((from, digest))
        }
        other => Err(SyncError::unexpected(&[MessageKind::Gossip], other.kind())),
    }
}

/// How many members an indirect probe asks (SWIM's k).
pub const INDIRECT_PROBES: usize = 3;

/// Asks up to [`INDIRECT_PROBES`] other members that look up from here to
/// probe member `target`, all at once; whether one of them reached it.
/// Each is asked on a connection of its own and given half of this
/// probe's time to reach the target.
fn probe_indirectly(target: &str, settings: &PushSettings) -> bool {
    let membership = &settings.membership;
    let now = Instant::now();
    let helpers: Vec<String> = membership
        .others()
        .into_iter()
        .filter(|m| m.id != target)
        .filter(|m| matches!(membership.health(&m.id, now), Some((Health::Up, _))))
        .map(|m| m.addr)
        .take(INDIRECT_PROBES)
        .collect();
    if helpers.is_empty() {
        return false;
    }
    std::thread::scope(|scope| {
        let asks: Vec<_> = helpers
            .iter()
            .map(|helper| scope.spawn(move || ask_to_probe(helper, target, settings)))
            .collect();
        asks.into_iter()
            .any(|ask| ask.join().is_ok_and(|reached| reached.unwrap_or(false)))
    })
}

/// Asks the member at `helper` to probe member `target`.
fn ask_to_probe(helper: &str, target: &str, settings: &PushSettings) -> Result<bool> {
    let mut conn = open(helper, settings)?;
    conn.send(&MessageRef::ProbeFor { target })?;
    conn.flush()?;
    // The helper may take up to this node's probe time to try (see
    // [`reach`]), and the answer must travel back.
    conn.set_read_timeout(settings.io_timeout * 2)?;
    match conn.receive()? {
        Message::ProbeReply { reached } => Ok(reached),
        other => Err(SyncError::unexpected(
            &[MessageKind::ProbeReply],
            other.kind(),
        )),
    }
}

/// Probes member `target` for another node (its `ProbeFor`): one
/// exchange on a fresh probe connection, within half the time the asker
/// allows its own probes, so the answer reaches it in time.
pub fn reach(target: &str, settings: &PushSettings) -> bool {
    let Some(member) = settings
        .membership
        .get(target)
        .filter(|m| !m.state.is_gone())
    else {
        return false;
    };
    let mut quick = probe_settings(settings);
    quick.io_timeout /= 2;
    quick.connect_timeout /= 2;
    let mut conn = None;
    probe(&mut conn, &member.addr, &quick).is_ok()
}

/// Tells the member at `addr` this node's whole list now, once (a leave,
/// before the node exits).
pub fn tell(addr: &str, settings: &PushSettings) -> Result<()> {
    let mut conn = open(addr, settings)?;
    let membership = &settings.membership;
    exchange(&mut conn, membership, &membership.my_id(), true).map(|_| ())
}
