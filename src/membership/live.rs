//! The member list a running node shares between its threads: the
//! prober and receiver threads merge what gossip brings, the pushers
//! follow it, `CLUSTER` commands and `status` read it. A change is saved
//! to the members file (with a data directory) and then announced to the
//! hook the node installs (which adds and retires pushers), outside the
//! lock.

use crate::membership::detector::{Health, Liveness};
use crate::membership::file::{self, Saved};
use crate::membership::member::{Member, Members, State, ID_LEN, MAX_MEMBERS};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Called after every change of the list.
pub type ChangeHook = Box<dyn Fn() + Send + Sync>;

/// What leaving the cluster does, installed by the node: hand off, mark
/// this node left, tell the others, stop.
pub type LeaveHook = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The shared member list (cheap to clone: one `Arc`).
#[derive(Clone)]
pub struct Membership {
    inner: Arc<Mutex<Inner>>,
    hook: Arc<OnceLock<ChangeHook>>,
    leave: Arc<OnceLock<LeaveHook>>,
    timeout: Duration,
    /// Bytes of `Gossip` frames this node has sent (probes and answers),
    /// for `INFO`.
    gossip_sent: Arc<AtomicU64>,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("Membership")
            .field("me", &inner.me)
            .field("members", &inner.list.len())
            .finish()
    }
}

struct Inner {
    me: String,
    list: Members,
    dir: Option<PathBuf>,
    health: HashMap<String, Liveness>,
    /// Why this node may no longer take part, once it knows it was
    /// forgotten or left.
    expelled: Option<String>,
    /// Addresses `CLUSTER MEET` asked to join through, for the pushers to
    /// take.
    meets: Vec<String>,
}

/// A member as `status`, `INFO` and `CLUSTER NODES` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// The record.
    pub member: Member,
    /// Whether it is this node.
    pub myself: bool,
    /// How it looks from here (`None` for this node and gone members),
    /// and for how long it has looked so.
    pub health: Option<(Health, Duration)>,
}

/// A fresh member id: 40 hex digits from the OS's random source.
pub fn fresh_id() -> String {
    let mut bytes = [0u8; ID_LEN / 2];
    if getrandom::fill(&mut bytes).is_err() {
        // No random source: the time and process id still keep ids apart.
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        let h = xxhash_rust::xxh3::xxh3_128(seed.as_bytes()).to_le_bytes();
        bytes[..16].copy_from_slice(&h);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Membership {
    /// The list of node `name`, which others dial at `addr`: read from
    /// the members file in `dir` if there is one (the node rejoins the
    /// members it knew), else a list of this node alone under a fresh id,
    /// `joining` if it is to join through others. `timeout` is
    /// `--failure-timeout-ms`.
    pub fn load(
        name: &str,
        addr: &str,
        dir: Option<PathBuf>,
        joining: bool,
        timeout: Duration,
    ) -> Result<Membership, String> {
        let saved = match &dir {
            Some(dir) => file::read(dir)?,
            None => None,
        };
        let (me, mut list) = match saved {
            Some(saved) => {
                let mut list = Members::new();
                list.merge(saved.members);
                (saved.me, list)
            }
            None => (fresh_id(), Members::new()),
        };
        let mut expelled = None;
        match list.get(&me).cloned() {
            None => {
                let state = if joining { State::Joining } else { State::Up };
                list.merge_one(Member {
                    id: me.clone(),
                    name: name.to_owned(),
                    addr: addr.to_owned(),
                    state,
                    incarnation: 0,
                });
            }
            Some(held) if held.state.is_gone() => expelled = Some(expulsion(&held)),
            Some(held) => {
                // Back, perhaps at another address or under another name:
                // a higher incarnation says so over what others hold.
                let state = if held.state == State::Leaving {
                    State::Up
                } else {
                    held.state
                };
                if held.addr != addr || held.name != name || state != held.state {
                    list.merge_one(Member {
                        name: name.to_owned(),
                        addr: addr.to_owned(),
                        state,
                        incarnation: held.incarnation + 1,
                        ..held
                    });
                }
            }
        }
        let membership = Membership {
            inner: Arc::new(Mutex::new(Inner {
                me,
                list,
                dir,
                health: HashMap::new(),
                expelled,
                meets: Vec::new(),
            })),
            hook: Arc::default(),
            leave: Arc::default(),
            timeout,
            gossip_sent: Arc::default(),
        };
        membership.save(&membership.inner.lock());
        Ok(membership)
    }

    /// Installs the hook called after each change (once).
    pub fn on_change(&self, hook: ChangeHook) {
        let _ = self.hook.set(hook);
    }

    /// Installs what [`Self::leave`] does (once).
    pub fn on_leave(&self, hook: LeaveHook) {
        let _ = self.leave.set(hook);
    }

    /// Leaves the cluster (`NETDB.LEAVE`), through the node's hook.
    pub fn leave(&self) -> Result<(), String> {
        match self.leave.get() {
            Some(leave) => leave(),
            None => Err("this node cannot leave from here".into()),
        }
    }

    /// `CLUSTER MEET`: join the member at `addr` (as `--join` would).
    pub fn meet(&self, addr: &str) {
        self.inner.lock().meets.push(addr.to_owned());
        self.changed();
    }

    /// The addresses `CLUSTER MEET` asked for since the last call.
    pub fn take_meets(&self) -> Vec<String> {
        std::mem::take(&mut self.inner.lock().meets)
    }

    /// Counts `bytes` of gossip sent.
    pub fn count_gossip(&self, bytes: usize) {
        self.gossip_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Bytes of gossip (probes and their answers) sent since the start.
    pub fn gossip_sent(&self) -> u64 {
        self.gossip_sent.load(Ordering::Relaxed)
    }

    /// `--failure-timeout-ms`.
    pub fn failure_timeout(&self) -> Duration {
        self.timeout
    }

    /// This node's id.
    pub fn my_id(&self) -> String {
        self.inner.lock().me.clone()
    }

    /// This node's record.
    pub fn me(&self) -> Member {
        let inner = self.inner.lock();
        inner
            .list
            .get(&inner.me)
            .cloned()
            .expect("a node's list always holds its own record")
    }

    /// The digest of the list (see [`Members::digest`]).
    pub fn digest(&self) -> u64 {
        self.inner.lock().list.digest()
    }

    /// Every record.
    pub fn records(&self) -> Vec<Member> {
        self.inner.lock().list.to_vec()
    }

    /// The record of member `id`.
    pub fn get(&self, id: &str) -> Option<Member> {
        self.inner.lock().list.get(id).cloned()
    }

    /// The other members that are not gone: those a node pushes to.
    pub fn others(&self) -> Vec<Member> {
        let inner = self.inner.lock();
        inner
            .list
            .iter()
            .filter(|m| m.id != inner.me && !m.state.is_gone())
            .cloned()
            .collect()
    }

    /// Why this node may no longer take part, if it was forgotten or
    /// left (see the README's "Membership").
    pub fn expelled(&self) -> Option<String> {
        self.inner.lock().expelled.clone()
    }

    /// A peer refused this node as forgotten or left, for `why`: it stops
    /// taking part. Logged once.
    pub fn expel(&self, why: &str) {
        let mut inner = self.inner.lock();
        if inner.expelled.is_none() {
            log::error!("{why}");
            inner.expelled = Some(why.to_owned());
        }
    }

    /// Merges records from a peer; returns whether the list changed.
    /// Refuses a list of more than [`MAX_MEMBERS`] or with a bad record
    /// (nothing of it is merged).
    pub fn merge(&self, records: Vec<Member>) -> Result<bool, String> {
        if records.len() > MAX_MEMBERS {
            return Err(format!(
                "a member list of {} records (most {MAX_MEMBERS})",
                records.len()
            ));
        }
        for r in &records {
            r.check().map_err(|e| e.to_string())?;
        }
        let changed = {
            let mut inner = self.inner.lock();
            let mut changed = inner.list.merge(records);
            if inner.list.len() > MAX_MEMBERS {
                log::warn!("the member list holds {} records", inner.list.len());
            }
            changed |= self.defend(&mut inner);
            if changed {
                self.save(&inner);
            }
            changed
        };
        if changed {
            self.changed();
        }
        Ok(changed)
    }

    /// After a merge: what this node says of itself wins (SWIM's
    /// refutation). A record of its id at a higher incarnation with
    /// another address or name is outbid; one that says it is gone
    /// expels it. A live record of another id under this node's name is
    /// an earlier run of this node that kept no data (names are unique
    /// in a cluster: a live twin is refused by the handshake), and is
    /// forgotten, so that it holds back no tombstone.
    fn defend(&self, inner: &mut Inner) -> bool {
        let Some(mine) = inner.list.get(&inner.me).cloned() else {
            return false;
        };
        if mine.state.is_gone() {
            if inner.expelled.is_none() {
                let why = expulsion(&mine);
                log::error!("{why}");
                inner.expelled = Some(why);
            }
            return false;
        }
        let stale: Vec<Member> = inner
            .list
            .iter()
            .filter(|m| m.id != mine.id && m.name == mine.name && !m.state.is_gone())
            .cloned()
            .collect();
        let mut changed = false;
        for old in stale {
            log::info!(
                "member {} ({}) was an earlier run of this node: forgotten",
                old.id,
                old.addr
            );
            changed |= inner.list.merge_one(Member {
                state: State::Forgotten,
                ..old
            });
        }
        changed
    }

    /// Sets this node's own state (raising nothing: a later state wins at
    /// the same incarnation); returns whether it changed.
    pub fn set_my_state(&self, state: State) -> bool {
        let changed = {
            let mut inner = self.inner.lock();
            let Some(mine) = inner.list.get(&inner.me).cloned() else {
                return false;
            };
            let changed = inner.list.merge_one(Member { state, ..mine });
            if changed {
                self.save(&inner);
            }
            changed
        };
        if changed {
            self.changed();
        }
        changed
    }

    /// `CLUSTER FORGET id`: the member is gone for good. This node
    /// cannot forget itself.
    pub fn forget(&self, id: &str) -> Result<(), String> {
        {
            let mut inner = self.inner.lock();
            if id == inner.me {
                return Err("I tried hard but I can't forget myself...".into());
            }
            let Some(held) = inner.list.get(id).cloned() else {
                return Err(format!("Unknown node {id}"));
            };
            if held.state == State::Forgotten {
                return Ok(());
            }
            inner.list.merge_one(Member {
                state: State::Forgotten,
                ..held
            });
            inner.health.remove(id);
            self.save(&inner);
        }
        self.changed();
        Ok(())
    }

    /// Member `id` was heard from at `now` (a probe answered, or its
    /// probe or gossip came in).
    pub fn heard_from(&self, id: &str, now: Instant) {
        let mut inner = self.inner.lock();
        if inner.list.get(id).is_some_and(|m| !m.state.is_gone()) {
            inner
                .health
                .entry(id.to_owned())
                .or_insert_with(|| Liveness::new(now))
                .heard(now);
        }
    }

    /// A probe of member `id` failed.
    pub fn probe_failed(&self, id: &str, now: Instant) {
        let mut inner = self.inner.lock();
        inner
            .health
            .entry(id.to_owned())
            .or_insert_with(|| Liveness::new(now))
            .probe_failed();
    }

    /// Starts watching member `id` from `now` (a pusher was added for
    /// it).
    pub fn watch(&self, id: &str, now: Instant) {
        let mut inner = self.inner.lock();
        inner
            .health
            .entry(id.to_owned())
            .or_insert_with(|| Liveness::new(now));
    }

    /// How member `id` looks at `now`; logs a change. `None` for this node
    /// and members not watched.
    pub fn health(&self, id: &str, now: Instant) -> Option<(Health, Duration)> {
        let mut inner = self.inner.lock();
        let name = inner.list.get(id).map(|m| m.name.clone());
        let liveness = inner.health.get_mut(id)?;
        let (old, (health, since)) = liveness.update(now, self.timeout);
        if let Some(old) = old {
            let name = name.unwrap_or_default();
            match health {
                Health::Up => log::info!("member {name} ({id}) is up again (was {})", old.as_str()),
                Health::Suspect => log::warn!("member {name} ({id}) is suspect"),
                Health::Down => log::warn!(
                    "member {name} ({id}) is down: not heard from for {} ms",
                    self.timeout.as_millis()
                ),
            }
        }
        Some((health, now.saturating_duration_since(since)))
    }

    /// Every member as shown, this node first.
    pub fn view(&self, now: Instant) -> Vec<MemberView> {
        let (me, records) = {
            let inner = self.inner.lock();
            (inner.me.clone(), inner.list.to_vec())
        };
        let mut views: Vec<MemberView> = records
            .into_iter()
            .map(|member| {
                let myself = member.id == me;
                let health = if myself || member.state.is_gone() {
                    None
                } else {
                    self.health(&member.id, now)
                };
                MemberView {
                    member,
                    myself,
                    health,
                }
            })
            .collect();
        views.sort_by_key(|v| !v.myself);
        views
    }

    /// Saves the list, if the node has a data directory. A failure is
    /// logged: the list in memory goes on, and gossip brings it back
    /// after a restart.
    fn save(&self, inner: &Inner) {
        let Some(dir) = &inner.dir else { return };
        let saved = Saved {
            me: inner.me.clone(),
            members: inner.list.to_vec(),
        };
        if let Err(e) = file::write(dir, &saved) {
            log::error!(
                "cannot save the member list in {}: {e}",
                dir.join(file::FILE_NAME).display()
            );
        }
    }

    fn changed(&self) {
        if let Some(hook) = self.hook.get() {
            hook();
        }
    }
}

/// What a node that was forgotten or left is told, in its log and in its
/// peer's.
pub fn expulsion(record: &Member) -> String {
    format!(
        "member {} ({}) is {} by the cluster: its data may bring back what was deleted since, \
         so it is refused; wipe its data directory and start it again with --join to rejoin \
         as a new member",
        record.name,
        record.id,
        if record.state == State::Left {
            "marked left"
        } else {
            "forgotten"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solo(name: &str) -> Membership {
        Membership::load(name, "127.0.0.1:1", None, false, Duration::from_secs(5)).expect("list")
    }

    #[test]
    fn a_forgotten_node_learns_it_and_is_expelled() {
        let a = solo("a");
        let b = solo("b");
        b.merge(a.records()).expect("merged");
        b.forget(&a.my_id()).expect("forgotten");
        assert!(a.expelled().is_none());
        a.merge(b.records()).expect("merged");
        assert!(a.expelled().is_some_and(|why| why.contains("forgotten")));
        assert!(b.forget(&b.my_id()).is_err());
    }

    #[test]
    fn a_list_from_a_peer_is_checked_before_anything_is_merged() {
        let a = solo("a");
        let b = solo("b");
        let mut records = b.records();
        records.push(Member {
            id: "not an id".into(),
            ..b.me()
        });
        assert!(a.merge(records).is_err());
        assert_eq!(a.records().len(), 1, "nothing of it merged");
        let many: Vec<Member> = (0..=MAX_MEMBERS)
            .map(|i| Member {
                id: format!("{i:040x}"),
                ..b.me()
            })
            .collect();
        assert!(a.merge(many).is_err());
        assert_eq!(a.records().len(), 1);
    }

    #[test]
    fn an_earlier_run_under_this_name_is_forgotten() {
        let old = solo("a");
        let new = solo("a");
        assert!(new.merge(old.records()).expect("merged"));
        assert_eq!(
            new.get(&old.my_id()).map(|m| m.state),
            Some(State::Forgotten)
        );
        assert!(new.others().is_empty());
    }

    #[test]
    fn a_restart_from_the_file_keeps_the_id() {
        let dir = tempfile::tempdir().expect("temp dir");
        let timeout = Duration::from_secs(5);
        let first = Membership::load("a", "127.0.0.1:1", Some(dir.path().into()), true, timeout)
            .expect("list");
        assert_eq!(first.me().state, State::Joining);
        let again = Membership::load("a", "127.0.0.1:2", Some(dir.path().into()), false, timeout)
            .expect("list");
        assert_eq!(again.my_id(), first.my_id());
        assert_eq!(
            (again.me().addr.as_str(), again.me().incarnation),
            ("127.0.0.1:2", 1)
        );
    }
}
