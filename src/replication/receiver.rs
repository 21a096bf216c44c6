//! The receiving half of the protocol: serving one incoming peer
//! connection, handed over by the listener once it has seen the peer
//! magic's first byte.
//!
//! A peer connection must open with the peer magic and a `Hello` of the
//! same protocol version (on a node with a cluster secret, the
//! authenticated handshake of [`crate::replication::auth`] first, and
//! every frame sealed after it); then it carries pushes, each merged by
//! the store thread and answered as [`crate::replication::wire`]
//! describes. Whatever
//! a connection sends that is not that (random bytes, an oversized or
//! truncated frame, a wrong magic or version, a message out of turn) is a
//! [`SyncError`] that closes that connection; the listener logs it. The
//! node, its data and its other connections go on.

use crate::engine::service::wall_clock_us;
use crate::engine::StoreHandle;
use crate::membership::Membership;
use crate::replication::anti_entropy::AntiEntropy;
use crate::replication::auth::{AuthError, ClusterSecret};
use crate::replication::clocks::hello_ahead_ms;
use crate::replication::connection::{Connection, PeerStream};
use crate::replication::error::{ProtocolError, Result, SyncError};
use crate::replication::pusher::{who_answered, Answerer};
use crate::replication::status::{instance_id, unlisted_twin_refusal, Answering, WriteRefusal};
use crate::replication::transfer::{part_bytes, report_overclaims, Merges, Parts};
use crate::replication::vectors::VectorLink;
use crate::replication::wire::{
    Done, Message, MessageKind, MessageRef, Summary, WireVv, PROTOCOL_VERSION,
};
use crate::store::PartitionSet;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Limits and timeouts for serving a peer connection.
#[derive(Debug, Clone)]
pub struct ReceiveSettings {
    /// Largest frame accepted, in bytes.
    pub max_frame: usize,
    /// Time allowed for the magic and `Hello`, and for each write.
    pub handshake_timeout: Duration,
    /// Time a connection may stay silent between pushes.
    pub idle_timeout: Duration,
    /// The peers this node's connections are answering with a transfer.
    pub answering: Arc<Answering>,
    /// The cluster secret, if the node has one: peers must prove it, and
    /// every frame carries a MAC.
    pub secret: Option<ClusterSecret>,
    /// `--max-clock-offset-ms`: a `Hello` from a clock further ahead is
    /// logged.
    pub max_clock_offset_ms: u64,
    /// The node's anti-entropy counters, shared with its pushers.
    pub anti_entropy: AntiEntropy,
    /// Set while another live node uses this node's name.
    pub refusal: WriteRefusal,
    /// The member list: gossip is merged into it, and a member it says
    /// was forgotten or left is refused.
    pub membership: Membership,
    /// Which partitions this node and its peers hold.
    pub routing: Arc<crate::routing::Routing>,
    /// How this node dials a member, for an indirect probe asked of it
    /// (`None`: it does not make them).
    pub dialing: Option<crate::replication::pusher::PushSettings>,
}

/// Serves one peer connection until it closes; `name` is this node's. A
/// clean close (between frames, or idle past the timeout) is `Ok`.
pub fn serve(
    stream: PeerStream,
    name: &str,
    store: &StoreHandle,
    settings: &ReceiveSettings,
) -> Result<()> {
    let peer_addr = stream.peer_addr();
    let addr = peer_addr
        .as_ref()
        .map_or_else(|_| "(unknown address)".to_owned(), ToString::to_string);
    let mut conn = Connection::new(stream, settings.handshake_timeout, settings.max_frame)?;
    conn.receive_magic()?;
    let hello = authenticate(&mut conn, settings.secret.as_ref())?;
    let member = match &hello {
        Message::Hello { member, .. } => member.clone(),
        _ => String::new(),
    };
    let mut vectors = VectorLink::new();
    let (peer, instance) = welcome(&mut conn, hello, name, store, settings, &mut vectors)?;
    // A node with this node's name and another instance: a twin, which
    // this node may not dial (so its pusher would not find it).
    // (An instance of 0 is a peer too old to say it.)
    if instance != 0 && who_answered((name, instance_id()), (&peer, instance)) == Answerer::Twin {
        let from = peer_addr.map_or_else(|_| addr.clone(), |a| a.ip().to_string());
        let why = unlisted_twin_refusal(name, &from);
        if !settings.refusal.is_refused() {
            log::error!("TWIN: {why}");
        }
        settings.refusal.note_unlisted_twin(why);
        return Err(ProtocolError::Twin {
            name: name.to_owned(),
        }
        .into());
    }
    conn.set_read_timeout(settings.idle_timeout)?;

    // Parts are answered with `Next` as soon as they are decoded, before
    // they are merged, so the pusher sends the next part while this node
    // merges; at most PARTS_IN_FLIGHT wait for the store thread.
    let mut merges = Merges::new(store);
    let mut warned = false;
    loop {
        let (batch, done) = match conn.receive() {
            Ok(Message::Push { batch, done }) => (batch, done),
            Ok(Message::Gossip {
                from,
                digest,
                members,
            }) => {
                let sender = if from.is_empty() { &member } else { &from };
                answer_gossip(
                    &mut conn,
                    &settings.membership,
                    sender,
                    (&from, digest, members),
                )?;
                continue;
            }
            Ok(Message::ProbeFor { target }) => {
                // SWIM's indirect probe: the asker could not reach
                // `target` itself, and this node tries for it.
                let reached = settings
                    .dialing
                    .as_ref()
                    .is_some_and(|dialing| crate::replication::prober::reach(&target, dialing));
                conn.send(&MessageRef::ProbeReply { reached })?;
                conn.flush()?;
                continue;
            }
            Ok(other) => {
                // (Gossip is left out of what was expected: it is not
                // part of a push's exchange.)
                return Err(SyncError::unexpected(&[MessageKind::Push], other.kind()));
            }
            Err(e) if e.is_idle_end() => return Ok(()),
            Err(e) => return Err(e),
        };
        // A transfer's first part fixes the partitions it is merged for.
        merges.holding(settings.routing.held());
        if !batch.entries.is_empty() {
            settings.routing.received(batch.entries.len());
            merges.add(batch)?;
        }
        let Some(mut done) = done else {
            conn.send(&MessageRef::Next)?;
            conn.flush()?;
            continue;
        };
        // Sent as changes to the pusher's previous vector.
        done.vv = vectors.apply(std::mem::take(&mut done.vv))?;
        // Before anything is sent back: has the pusher seen more of this
        // node's writer than it has issued?
        store.check_history(&peer, done.vv.clone())?;
        // Every part has arrived and, once merged, this node has seen what
        // the pusher had: only then may its vector be joined (sharded: the
        // entries of the partitions it sent that this node holds).
        // A vector entry above what this node can verify is clamped there.
        let routing = &settings.routing;
        let sent = done.sent.unwrap_or_else(PartitionSet::all);
        let over = merges.finish(done.vv.clone(), done.sent)?;
        // What the pusher serves and sent, this node now has whole.
        routing.exchange_completed(Some(&member), &sent, done.serving);
        let wanted = routing.partitions_of_peer(Some(&member), &peer, &addr);
        report_overclaims(&format!("{peer} ({addr})"), &over, &mut warned);
        let answered = answer(
            &mut conn,
            store,
            &done,
            &mut vectors,
            part_bytes(settings.max_frame),
            (&settings.answering, &peer),
            (wanted, routing),
        )?;
        // The same comparison the pusher makes with the same two
        // summaries, so both sides log a divergence (the pusher repairs).
        if done.full {
            settings.anti_entropy.repaired(&peer, "answering");
        } else if routing.is_sharded() {
            // Sharded nodes hold different data by design.
        } else {
            settings
                .anti_entropy
                .check(&peer, "answering", &answered, &done.summary());
        }
    }
}

/// The peer's first message after the magic, on a node with the cluster
/// secret `secret` or none: with one, the authenticated handshake, and then
/// the (sealed) `Hello`; without, the `Hello` itself. A peer that has a
/// secret when this node has none, or none when this node has one, is
/// told so and refused.
fn authenticate(conn: &mut Connection, secret: Option<&ClusterSecret>) -> Result<Message> {
    let first = match secret {
        Some(_) => conn.receive_handshake()?,
        None => conn.receive()?,
    };
    match (secret, first) {
        (Some(secret), Message::Challenge { version, nonce }) => {
            conn.authenticate_initiator(secret, version, nonce)?;
            conn.receive()
        }
        (Some(_), Message::Hello { .. }) => {
            conn.send(&MessageRef::SecretRequired)?;
            conn.flush()?;
            Err(AuthError::PeerHasNoSecret.into())
        }
        (Some(_), other) => Err(SyncError::unexpected(
            &[MessageKind::Challenge],
            other.kind(),
        )),
        (None, Message::Challenge { .. }) => {
            conn.send(&MessageRef::NoSecret)?;
            conn.flush()?;
            Err(AuthError::ThisNodeHasNone.into())
        }
        (None, first) => Ok(first),
    }
}

/// Takes the peer's `Hello`, answers `Welcome` (with this process's
/// instance id, by which a pusher that reached this node under its own
/// name tells itself from another node of that name, and its wall clock,
/// by which the pusher tells how far apart their clocks are), and returns
/// the peer's name and instance id if it speaks this node's protocol
/// version.
fn welcome(
    conn: &mut Connection,
    hello: Message,
    name: &str,
    store: &StoreHandle,
    settings: &ReceiveSettings,
    vectors: &mut VectorLink,
) -> Result<(String, u64)> {
    let max_clock_offset_ms = settings.max_clock_offset_ms;
    match hello {
        Message::Hello {
            version,
            name: peer,
            wall_clock_ms: theirs_ms,
            instance,
            member,
            probe,
            replicas,
        } => {
            // A member that was forgotten or left must not bring its data
            // back: it is told so, and both logs say what to do.
            if let Some(gone) = settings
                .membership
                .get(&member)
                .filter(|m| m.state.is_gone())
            {
                let why = crate::membership::live::expulsion(&gone);
                log::error!("refused peer '{peer}': {why}");
                conn.send(&MessageRef::Expelled { why: &why })?;
                conn.flush()?;
                return Err(ProtocolError::Expelled(why).into());
            }
            let now_ms = wall_clock_us() / 1000;
            if let Some(ahead) = hello_ahead_ms(theirs_ms, now_ms) {
                if ahead > max_clock_offset_ms && may_warn_about(&peer) {
                    log::warn!(
                        "CLOCK: peer '{peer}' connecting to this node has a clock at least \
                         {ahead} ms ahead of this node's, over the bound of \
                         {max_clock_offset_ms} ms (--max-clock-offset-ms)"
                    );
                }
            }
            // Answer before refusing, so the other side can say why. A
            // probe is answered without the store thread.
            let vv = if probe {
                WireVv::new()
            } else {
                store.version_vector()?
            };
            vectors.sent_whole(&vv);
            conn.send(&MessageRef::Welcome {
                version: PROTOCOL_VERSION,
                name,
                vv: &vv,
                instance: instance_id(),
                wall_clock_ms: wall_clock_us() / 1000,
                replicas: settings.routing.replicas_code(),
            })?;
            conn.flush()?;
            if version != PROTOCOL_VERSION {
                return Err(ProtocolError::Version {
                    theirs: version,
                    ours: PROTOCOL_VERSION,
                }
                .into());
            }
            let ours = settings.routing.replicas_code();
            if replicas != ours {
                let refused = ProtocolError::Replicas {
                    theirs: replicas,
                    ours,
                };
                log::error!("refused peer '{peer}': {refused}");
                return Err(refused.into());
            }
            Ok((peer, instance))
        }
        other => Err(SyncError::unexpected(&[MessageKind::Hello], other.kind())),
    }
}

/// Answers a `Gossip` (see [`crate::membership`]) from member `sender`:
/// merges its records, if it sent them, counts it as heard from, and
/// answers with this node's digest, and its whole list if the digests
/// differ. The answer names this node when the `Gossip` named its sender
/// (`from`), as a prober's first on a connection does.
fn answer_gossip(
    conn: &mut Connection,
    membership: &Membership,
    sender: &str,
    (from, digest, members): (&str, u64, Vec<crate::membership::Member>),
) -> Result<()> {
    if !members.is_empty() {
        membership
            .merge(members)
            .map_err(ProtocolError::BadMembers)?;
    }
    membership.heard_from(sender, std::time::Instant::now());
    let ours = membership.digest();
    let records = if ours == digest {
        Vec::new()
    } else {
        membership.records()
    };
    let me = if from.is_empty() {
        String::new()
    } else {
        membership.my_id()
    };
    let sent = conn.send(&MessageRef::Gossip {
        from: &me,
        digest: ours,
        members: &records,
    })?;
    membership.count_gossip(sent);
    conn.flush()
}

/// Whether to log now that `peer`'s clock is off: once a minute per peer
/// at most, since a pusher that finds a clock off connects afresh every
/// round to measure it again.
fn may_warn_about(peer: &str) -> bool {
    static LAST: Mutex<Option<HashMap<String, Instant>>> = Mutex::new(None);
    let mut last = LAST.lock();
    let last = last.get_or_insert_with(HashMap::new);
    let now = Instant::now();
    if last
        .get(peer)
        .is_some_and(|at| now.duration_since(*at) < CLOCK_WARNING_EVERY)
    {
        return false;
    }
    if last.len() >= 1024 {
        last.clear(); // names come from peers: bounded
    }
    last.insert(peer.to_owned(), now);
    true
}

/// How often [`may_warn_about`] lets a warning about one peer through.
const CLOCK_WARNING_EVERY: Duration = Duration::from_secs(60);

/// Sends the pusher every entry above its vector (every entry, in a full
/// round), then this node's vector and digest as they were when the
/// answer started, which it returns. An answer of several parts is
/// recorded in `answering` while it lasts.
fn answer(
    conn: &mut Connection,
    store: &StoreHandle,
    done: &Done,
    vectors: &mut VectorLink,
    max_part: usize,
    (answering, peer): (&Arc<Answering>, &str),
    (wanted, routing): (PartitionSet, &crate::routing::Routing),
) -> Result<Summary> {
    let since = if done.full {
        WireVv::new()
    } else {
        done.vv.clone()
    };
    let mut parts = Parts::new(store, since, max_part, wanted)?;
    let serving = routing.serving();
    let serving = (!serving.is_all()).then_some(serving);
    let mut in_progress = None;
    while let Some((batch, last)) = parts.next_part()? {
        if !last && in_progress.is_none() {
            // A resync, not a routine round: worth a line.
            log::info!("answering peer {peer} with a transfer of several parts");
            in_progress = Some(answering.begin(peer));
        }
        if !batch.entries.is_empty() {
            conn.send(&MessageRef::Pull { batch: &batch })?;
        }
    }
    let start = parts.start_summary().cloned().unwrap_or_default();
    let acked = wanted.union(&done.sent.unwrap_or_else(PartitionSet::all));
    conn.send(&MessageRef::Ack {
        // Sharded, of the partitions the pusher holds, and of those it
        // sent (it hands them off, and drops them once every holder has
        // acknowledged them whole) only.
        vv: &vectors.changes_within(&start.vv, &acked),
        digest: start.digest,
        sent: (!wanted.is_all()).then_some(wanted),
        serving,
    })?;
    conn.flush()?;
    Ok(start)
}
