//! Node names interned to small ids, so a clock entry costs a few bytes.
//!
//! Ids are handed out in order of first sight and are never reused or freed:
//! the set of nodes that ever wrote is small. Ids mean nothing outside this
//! process; the wire carries names.

use crate::core::clock::NodeId;
use std::collections::HashMap;

/// The longest node name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// A two-way table between node names and [`NodeId`]s.
#[derive(Debug, Default, Clone)]
pub struct Names {
    by_id: Vec<String>,
    by_name: HashMap<String, NodeId>,
}

impl Names {
    /// An empty table.
    pub fn new() -> Names {
        Names::default()
    }

    /// The id of `name`, assigning the next free one on first sight.
    pub fn intern(&mut self, name: &str) -> NodeId {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        let id = NodeId(u32::try_from(self.by_id.len()).expect("fewer than 2^32 node names"));
        self.by_id.push(name.to_owned());
        self.by_name.insert(name.to_owned(), id);
        id
    }

    /// The id of `name`, if it was ever interned.
    pub fn lookup(&self, name: &str) -> Option<NodeId> {
        self.by_name.get(name).copied()
    }

    /// The name of `id`. Ids only come from this table, so a miss is a bug.
    pub fn name(&self, id: NodeId) -> &str {
        self.by_id
            .get(id.0 as usize)
            .map(String::as_str)
            .expect("node ids are only made by this table")
    }

    /// How many names are interned.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no name is interned.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_two_way() {
        let mut names = Names::new();
        let a = names.intern("alpha");
        let b = names.intern("beta");
        assert_ne!(a, b);
        assert_eq!(names.intern("alpha"), a);
        assert_eq!(names.name(b), "beta");
        assert_eq!(names.lookup("gamma"), None);
        assert_eq!(names.len(), 2);
    }
}
