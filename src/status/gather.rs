//! Gathering a node's [`Status`]: the one place that asks the store
//! thread for its counts and lags and reads the pushers' table. The
//! console's `status` and the client side's `INFO` and `NETDB.STATUS`
//! all start here; the rendering is the pure part, in the parent module.

use super::{PeerReport, PeerState, Persistence, Status};
use crate::core::hlc::check_wall_clock;
use crate::engine::service::wall_clock_us;
use crate::engine::{StoreFacts, StoreHandle};
use crate::error::Result;
use crate::replication::status::{PeerStatus, PeerTable};
use crate::store::PeerLag;
use std::net::SocketAddr;
use std::time::SystemTime;

/// A node's name, counts, digest and peers, as `status` and `INFO` show
/// them, in one trip to the store thread.
pub fn gather_status(
    name: &str,
    addr: SocketAddr,
    store: &StoreHandle,
    peers: &PeerTable,
    persistence: Option<Persistence>,
) -> Result<Status> {
    let facts = store.facts()?;
    Ok(status_from_facts(name, addr, facts, peers, persistence))
}

/// A node's status from the store's `facts` (taken on the store thread,
/// at one instant) and the pushers' table.
pub fn status_from_facts(
    name: &str,
    addr: SocketAddr,
    facts: StoreFacts,
    peers: &PeerTable,
    persistence: Option<Persistence>,
) -> Status {
    let bound = peers.max_clock_offset_ms();
    // A wall clock no timestamp can hold refuses every write, alone too.
    let writes_refused = peers.refusal().why().or_else(|| {
        check_wall_clock(wall_clock_us())
            .err()
            .map(|e| e.to_string())
    });
    let anti_entropy = peers.anti_entropy().counts();
    let members = peers
        .membership()
        .map(|m| m.view(std::time::Instant::now()))
        .unwrap_or_default();
    let gossip_sent = peers.membership().map(|m| m.gossip_sent());
    let sharding = peers.routing().filter(|r| r.is_sharded()).map(|r| {
        let held = r.held();
        let (keys_arrived, age) = r.arrival();
        super::ShardingStatus {
            keys_arrived,
            layout_age_ms: u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
            replicas: r.replicas().unwrap_or(0),
            held: held.len(),
            gaining: r.gaining().len(),
            handing_off: facts.partitions_with_data.minus(&held).len(),
        }
    });
    let peers = peers.lock().clone();
    Status {
        name: name.to_owned(),
        addr: addr.to_string(),
        live: facts.counts.live,
        tombstones: facts.counts.tombstones,
        expiring: facts.expiring,
        expired: facts.expired,
        digest: Some(facts.digest),
        anti_entropy: Some(anti_entropy),
        peers: peer_reports(&peers, &facts.peer_lags, SystemTime::now(), bound),
        persistence: persistence.map(|mut p| {
            if let Persistence::Disk(disk) = &mut p {
                disk.compaction = facts.compaction;
                disk.log = facts.log;
            }
            p
        }),
        server: None,
        max_clock_offset_ms: Some(bound),
        writes_refused,
        memory_rss: resident_bytes(),
        memory_used: allocated_bytes(),
        databases: facts.databases,
        expiring_by_database: facts.expiring_by_database,
        members,
        gossip_sent,
        sharding,
    }
}

/// The bytes the allocator has handed out and not taken back
/// (jemalloc's `stats.allocated`, its statistics refreshed first): what
/// Redis reports as `used_memory`, read without a system call. `None`
/// where the statistics cannot be read. Only the `netdb` binary makes
/// jemalloc its allocator; in another process this counts jemalloc's own
/// few allocations.
pub fn allocated_bytes() -> Option<u64> {
    tikv_jemalloc_ctl::epoch::advance().ok()?;
    let allocated = tikv_jemalloc_ctl::stats::allocated::read().ok()?;
    u64::try_from(allocated).ok()
}

/// `used_memory`: what the allocator has handed out, or the resident set
/// where that cannot be read.
pub fn used_bytes() -> Option<u64> {
    allocated_bytes().or_else(resident_bytes)
}

/// This process's resident set (`VmRSS` in `/proc/self/status`), in
/// bytes; `None` where there is no such file.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

/// `VmRSS:   1234 kB` as bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kb = line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    kb.checked_mul(1024)
}

/// The peers' lines of `status`, from the pushers' table and the store's
/// lags (both by peer index); clocks further apart than `bound_ms` are
/// off.
pub fn peer_reports(
    peers: &[PeerStatus],
    lags: &[PeerLag],
    now: SystemTime,
    bound_ms: u64,
) -> Vec<PeerReport> {
    peers
        .iter()
        .zip(lags)
        .filter(|(p, _)| !p.is_self)
        .map(|(p, lag)| PeerReport {
            addr: p.addr.clone(),
            state: match (p.reachable, &p.last_error) {
                (None, _) => PeerState::NotTried,
                (Some(true), _) => PeerState::Reachable,
                (Some(false), e) => PeerState::Unreachable(e.clone()),
            },
            last_sync_ms_ago: p.last_sync.map(|t| {
                u64::try_from(now.duration_since(t).unwrap_or_default().as_millis())
                    .unwrap_or(u64::MAX)
            }),
            writes_behind: lag.writes_behind,
            last_round_bytes: p.last_round_bytes,
            tombstones_waiting: lag.tombstones_waiting,
            clock_offset_ms: p.clock.map(|c| c.offset_ms),
            clock_off: p.clock.is_some_and(|c| c.exceeds(bound_ms)),
            tls: p.tls,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read_from_proc() {
        assert_eq!(
            parse_vm_rss("Name:\tnetdb\nVmRSS:\t   2048 kB\nThreads: 3\n"),
            Some(2 << 20)
        );
        assert_eq!(parse_vm_rss("VmRSS: lots\n"), None);
        assert_eq!(parse_vm_rss(""), None);
        if cfg!(target_os = "linux") {
            assert!(resident_bytes().is_some_and(|b| b > 0));
        }
    }
}
