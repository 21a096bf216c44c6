//! One member's record and the merge that makes the member list a CRDT
//! (pure: no clock, no I/O).
//!
//! The list is a map from member id to [`Member`]; two lists merge key by
//! key, keeping for each id the record that is greatest by
//! `Member::rank`. That order is total over every field of a record, so
//! the merge is the join of a semilattice: commutative, associative and
//! idempotent (a property test below checks all three), and lists that
//! have seen the same records are equal whatever order they saw them in.
//!
//! The order, as SWIM and memberlist have it: the higher incarnation
//! wins (only the member itself raises its own, to refute what others
//! say of it or to say it came back at another address); at the same
//! incarnation the later state wins (joining < up < leaving < left). Two
//! states end a member for good and win over any incarnation: `left`
//! (it handed off its data and went) and `forgotten` (`CLUSTER FORGET`):
//! a member that restarts with its old data can never gossip itself back
//! in, since the data it holds may bring back what was deleted while it
//! was away. A forgotten record stays in the list as a tombstone for the
//! same reason.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Most members a list may hold (forgotten ones included): a list from a
/// peer with more is refused.
pub const MAX_MEMBERS: usize = 1024;

/// Longest `host:port` a member may announce.
pub const MAX_ADDR_LEN: usize = 300;

/// A member id: 40 lowercase hex characters, as Redis's node ids.
pub const ID_LEN: usize = 40;

/// Where a member is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum State {
    /// Admitted, getting the data.
    Joining,
    /// A full member.
    Up,
    /// Handing off what others lack before it goes.
    Leaving,
    /// Gone for good, after a graceful leave.
    Left,
    /// Removed by `CLUSTER FORGET`: gone for good.
    Forgotten,
}

impl State {
    /// Whether the member is gone for good: it has no pusher, holds back
    /// no tombstone, and is never let back in under this id.
    pub fn is_gone(self) -> bool {
        matches!(self, State::Left | State::Forgotten)
    }

    /// The state's name, as `status` and the members file show it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Joining => "joining",
            State::Up => "up",
            State::Leaving => "leaving",
            State::Left => "left",
            State::Forgotten => "forgotten",
        }
    }

    /// The state named `text` (see [`Self::as_str`]).
    pub fn parse(text: &str) -> Option<State> {
        [
            State::Joining,
            State::Up,
            State::Leaving,
            State::Left,
            State::Forgotten,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// The class that wins over any incarnation: 0 for a live member, 1
    /// for `left`, 2 for `forgotten`.
    fn finality(self) -> u8 {
        match self {
            State::Left => 1,
            State::Forgotten => 2,
            _ => 0,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One member's record, as the list holds it and gossip carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Member {
    /// Its id (see [`ID_LEN`]), drawn once and kept in its data directory.
    pub id: String,
    /// Its node name.
    pub name: String,
    /// The `host:port` the others dial (`--announce`, or where it listens).
    pub addr: String,
    /// Where it is in its life.
    pub state: State,
    /// Raised only by the member itself.
    pub incarnation: u64,
}

/// Why a record from a peer was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMember(pub String);

impl fmt::Display for BadMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad member record: {}", self.0)
    }
}

impl std::error::Error for BadMember {}

/// Whether `id` has the form of a member id.
pub fn is_member_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Member {
    /// The order the merge keeps the greatest of (see the module doc).
    /// Every field is in it, so two records of one rank are equal.
    fn rank(&self) -> (u8, u64, State, &str, &str) {
        (
            self.state.finality(),
            self.incarnation,
            self.state,
            &self.addr,
            &self.name,
        )
    }

    /// Whether this record wins over `other` (of the same id) in a merge.
    pub fn supersedes(&self, other: &Member) -> bool {
        self.rank() > other.rank()
    }

    /// Checks a record that came from a peer: its sizes, and that its
    /// fields can be written in the members file and `CLUSTER NODES`.
    pub fn check(&self) -> Result<(), BadMember> {
        if !is_member_id(&self.id) {
            return Err(BadMember("an id that is not 40 hex digits".into()));
        }
        let printable = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic());
        if self.name.len() > crate::core::names::MAX_NAME_LEN
            || !self
                .name
                .chars()
                .all(|c| !c.is_whitespace() && !c.is_control())
            || self.name.is_empty()
        {
            return Err(BadMember(format!("a bad name for {}", self.id)));
        }
        if self.addr.len() > MAX_ADDR_LEN || !printable(&self.addr) || !self.addr.contains(':') {
            return Err(BadMember(format!("a bad address for {}", self.id)));
        }
        Ok(())
    }
}

/// The member list: every member ever known, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    by_id: BTreeMap<String, Member>,
}

impl Members {
    /// An empty list.
    pub fn new() -> Members {
        Members::default()
    }

    /// Merges one record; returns whether the list changed.
    pub fn merge_one(&mut self, record: Member) -> bool {
        match self.by_id.get(&record.id) {
            Some(held) if !record.supersedes(held) => false,
            _ => {
                self.by_id.insert(record.id.clone(), record);
                true
            }
        }
    }

    /// Merges every record of `other`; returns whether the list changed.
    pub fn merge(&mut self, other: impl IntoIterator<Item = Member>) -> bool {
        let mut changed = false;
        for record in other {
            changed |= self.merge_one(record);
        }
        changed
    }

    /// The record of member `id`.
    pub fn get(&self, id: &str) -> Option<&Member> {
        self.by_id.get(id)
    }

    /// Every record, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Member> {
        self.by_id.values()
    }

    /// How many records (gone members included).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// A 64-bit digest of the whole list, equal on two nodes exactly when
    /// (up to a hash collision) their lists are: what an idle gossip
    /// exchange compares. xxh3 over the records in id order.
    pub fn digest(&self) -> u64 {
        let mut bytes = Vec::with_capacity(self.by_id.len() * 80);
        for m in self.by_id.values() {
            for field in [m.id.as_bytes(), m.name.as_bytes(), m.addr.as_bytes()] {
                bytes.extend_from_slice(&(field.len() as u32).to_le_bytes());
                bytes.extend_from_slice(field);
            }
            bytes.push(m.state as u8);
            bytes.extend_from_slice(&m.incarnation.to_le_bytes());
        }
        xxhash_rust::xxh3::xxh3_64(&bytes)
    }

    /// The records as a list, for gossip.
    pub fn to_vec(&self) -> Vec<Member> {
        self.by_id.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u8) -> String {
        format!("{:040x}", n)
    }

    fn member(n: u8, state: State, incarnation: u64) -> Member {
        Member {
            id: id(n),
            name: format!("n{n}"),
            addr: format!("127.0.0.1:{}", 7000 + u16::from(n)),
            state,
            incarnation,
        }
    }

    #[test]
    fn a_higher_incarnation_wins_then_a_later_state() {
        let mut list = Members::new();
        assert!(list.merge_one(member(1, State::Up, 1)));
        assert!(!list.merge_one(member(1, State::Joining, 1)), "older state");
        assert!(list.merge_one(member(1, State::Leaving, 1)));
        assert!(list.merge_one(member(1, State::Joining, 2)), "refuted");
        assert_eq!(list.get(&id(1)).map(|m| m.state), Some(State::Joining));
    }

    #[test]
    fn a_gone_member_never_comes_back_under_its_id() {
        let mut list = Members::new();
        list.merge_one(member(1, State::Forgotten, 1));
        assert!(!list.merge_one(member(1, State::Up, 99)));
        assert!(
            !list.merge_one(member(1, State::Left, 99)),
            "forgotten wins over left"
        );
        let mut left = Members::new();
        left.merge_one(member(2, State::Left, 3));
        assert!(!left.merge_one(member(2, State::Up, 4)));
        assert!(left.merge_one(member(2, State::Forgotten, 0)));
    }

    #[test]
    fn the_digest_tells_lists_apart() {
        let mut a = Members::new();
        a.merge_one(member(1, State::Up, 0));
        let mut b = a.clone();
        assert_eq!(a.digest(), b.digest());
        b.merge_one(member(1, State::Leaving, 0));
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn records_from_peers_are_checked() {
        assert_eq!(member(1, State::Up, 0).check(), Ok(()));
        let mut bad = member(1, State::Up, 0);
        bad.id = "xyz".into();
        assert!(bad.check().is_err());
        let mut bad = member(1, State::Up, 0);
        bad.addr = "a b:1".into();
        assert!(bad.check().is_err());
        let mut bad = member(1, State::Up, 0);
        bad.name = "a b".into();
        assert!(bad.check().is_err());
    }

    fn any_member() -> impl Strategy<Value = Member> {
        (0u8..4, 0usize..5, 0u64..3, 0u16..2).prop_map(|(n, s, inc, port)| {
            let state = [
                State::Joining,
                State::Up,
                State::Leaving,
                State::Left,
                State::Forgotten,
            ][s];
            Member {
                addr: format!("127.0.0.1:{}", 7000 + port),
                ..member(n, state, inc)
            }
        })
    }

    fn list(records: &[Member]) -> Members {
        let mut m = Members::new();
        m.merge(records.iter().cloned());
        m
    }

    fn join(a: &Members, b: &Members) -> Members {
        let mut m = a.clone();
        m.merge(b.to_vec());
        m
    }

    proptest! {
        #![proptest_config(crate::proptest_config("tests/regressions/membership_merge.txt"))]

        #[test]
        fn merge_is_commutative_associative_and_idempotent(
            a in proptest::collection::vec(any_member(), 0..6),
            b in proptest::collection::vec(any_member(), 0..6),
            c in proptest::collection::vec(any_member(), 0..6),
        ) {
            let (a, b, c) = (list(&a), list(&b), list(&c));
            prop_assert_eq!(join(&a, &b), join(&b, &a));
            prop_assert_eq!(join(&join(&a, &b), &c), join(&a, &join(&b, &c)));
            prop_assert_eq!(join(&a, &a), a.clone());
            prop_assert_eq!(join(&a, &b).digest(), join(&b, &a).digest());
        }

        #[test]
        fn the_order_records_arrive_in_does_not_matter(
            mut records in proptest::collection::vec(any_member(), 0..10),
        ) {
            let forward = list(&records);
            records.reverse();
            prop_assert_eq!(forward, list(&records));
        }
    }
}
