//! One znode as stored, and how its owner field and `Stat` are interpreted
//! (reference D.3, D.4).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use zab_wire::jute::Stat;
use zab_wire::SessionId;

use crate::acl::AclList;

/// Stored owner of a container (`Long.MIN_VALUE`, reference D.4).
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// Top byte marking an extended (TTL) owner.
const EXTENDED_MASK: u64 = 0xFF00_0000_0000_0000;
/// Bits 40..56 of an extended owner: the feature type (0 = TTL).
const EXTENDED_TYPE_MASK: u64 = 0x00FF_FF00_0000_0000;
/// Largest TTL (2^40 − 1 ms, behaviour 20).
pub const MAX_TTL: i64 = 0xFF_FFFF_FFFF;

/// The stored owner of a TTL node: `0xFF00000000000000 | ttl`.
pub fn ttl_owner(ttl: i64) -> i64 {
    (EXTENDED_MASK | (ttl as u64 & MAX_TTL as u64)) as i64
}

/// What a stored `ephemeralOwner` means (`EphemeralType.get`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A plain persistent node.
    Persistent,
    /// A session ephemeral.
    Session(SessionId),
    Container,
    /// A TTL node with its TTL in ms.
    Ttl(i64),
}

impl Owner {
    pub fn of(stored: i64) -> Owner {
        let u = stored as u64;
        if stored == 0 {
            Owner::Persistent
        } else if stored == CONTAINER_OWNER {
            Owner::Container
        } else if u & EXTENDED_MASK == EXTENDED_MASK && u & EXTENDED_TYPE_MASK == 0 {
            Owner::Ttl(stored & MAX_TTL)
        } else {
            Owner::Session(SessionId(stored))
        }
    }

    /// What clients see: containers and TTL nodes show 0 (behaviour 8).
    pub fn client_visible(stored: i64) -> i64 {
        match Owner::of(stored) {
            Owner::Session(s) => s.0,
            _ => 0,
        }
    }

    pub fn session(stored: i64) -> Option<SessionId> {
        match Owner::of(stored) {
            Owner::Session(s) => Some(s),
            _ => None,
        }
    }
}

/// ZooKeeper's `StatPersisted`. `cversion` is the stored child-create
/// counter, not the client-visible cversion (reference D.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeMeta {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
}

impl NodeMeta {
    /// The client-visible `Stat` (reference D.3): cversion is derived as
    /// `2 × counter − numChildren` (behaviour 2) and the owner is hidden for
    /// containers and TTL nodes (behaviour 8).
    pub fn client_stat(&self, data_length: usize, num_children: usize) -> Stat {
        let num_children = num_children as i32;
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: self.aversion,
            ephemeral_owner: Owner::client_visible(self.ephemeral_owner),
            data_length: data_length as i32,
            num_children,
            pzxid: self.pzxid,
        }
    }
}

/// A stored znode: a trie node owning its children, kept sorted by name
/// so snapshots and listings are deterministic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// `None` is null data (behaviour 9). A boxed slice, not `Bytes`: 16
    /// bytes smaller per node, and never shares a network buffer.
    pub data: Option<Box<[u8]>>,
    pub acl: AclList,
    pub meta: NodeMeta,
    pub children: Children,
}

impl Default for Node {
    fn default() -> Self {
        Node {
            data: None,
            acl: Vec::new().into(),
            meta: NodeMeta::default(),
            children: Children::default(),
        }
    }
}

impl Node {
    pub fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.len())
    }
    pub fn data_bytes(&self) -> Option<Bytes> {
        self.data.as_deref().map(Bytes::copy_from_slice)
    }
    pub fn stat(&self) -> Stat {
        self.meta.client_stat(self.data_len(), self.children.len())
    }
}

impl Drop for Node {
    /// Iterative, so that dropping a very deep chain of nodes cannot
    /// overflow the stack.
    fn drop(&mut self) {
        let mut stack: Vec<Arc<Node>> = std::mem::take(&mut self.children).into_values().collect();
        while let Some(n) = stack.pop() {
            if let Ok(mut n) = Arc::try_unwrap(n) {
                stack.extend(std::mem::take(&mut n.children).into_values());
            }
        }
    }
}

type ChildMap = BTreeMap<Box<str>, Arc<Node>>;

/// A node's children by name, sorted. Absent (one null pointer) when empty:
/// most znodes are leaves, and an inline empty map would cost each of them
/// 16 more bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Children(Option<Box<ChildMap>>);

impl Children {
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |m| m.len())
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn get(&self, name: &str) -> Option<&Arc<Node>> {
        self.0.as_ref()?.get(name)
    }
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Arc<Node>> {
        self.0.as_mut()?.get_mut(name)
    }
    pub fn insert(&mut self, name: Box<str>, node: Arc<Node>) -> Option<Arc<Node>> {
        self.0.get_or_insert_with(Box::default).insert(name, node)
    }
    pub fn remove(&mut self, name: &str) -> Option<Arc<Node>> {
        let map = self.0.as_mut()?;
        let removed = map.remove(name);
        if map.is_empty() {
            self.0 = None;
        }
        removed
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.iter().flat_map(|m| m.keys().map(|k| &**k))
    }
    pub fn values(&self) -> impl Iterator<Item = &Arc<Node>> + '_ {
        self.0.iter().flat_map(|m| m.values())
    }
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&str, &Arc<Node>)> + '_ {
        self.0.iter().flat_map(|m| m.iter().map(|(k, v)| (&**k, v)))
    }
    pub fn into_values(self) -> impl Iterator<Item = Arc<Node>> {
        self.0.into_iter().flat_map(|m| m.into_values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_are_compact() {
        // Layout guard for the memory budget (1M znodes in 250 MiB).
        assert!(
            std::mem::size_of::<Node>() <= 104,
            "{}",
            std::mem::size_of::<Node>()
        );
        let mut c = Children::default();
        assert!(c.insert("b".into(), Arc::new(Node::default())).is_none());
        assert!(c.insert("a".into(), Arc::new(Node::default())).is_none());
        assert_eq!(c.keys().collect::<Vec<_>>(), vec!["a", "b"]);
        assert!(c.remove("a").is_some());
        assert!(c.remove("b").is_some());
        assert_eq!(c, Children::default());
    }

    #[test]
    fn owner_kinds() {
        assert_eq!(Owner::of(0), Owner::Persistent);
        assert_eq!(Owner::of(CONTAINER_OWNER), Owner::Container);
        assert_eq!(Owner::of(ttl_owner(5000)), Owner::Ttl(5000));
        assert_eq!(Owner::of(ttl_owner(MAX_TTL)), Owner::Ttl(MAX_TTL));
        assert_eq!(
            Owner::of(0x100_0000_0000_0001),
            Owner::Session(SessionId(0x100_0000_0000_0001))
        );
        assert_eq!(Owner::client_visible(CONTAINER_OWNER), 0);
        assert_eq!(Owner::client_visible(ttl_owner(1)), 0);
        assert_eq!(Owner::client_visible(42), 42);
    }

    #[test]
    fn derived_cversion() {
        // Reference D.3: /zookeeper (two built-in children, counter 0) shows -2.
        let m = NodeMeta::default();
        assert_eq!(m.client_stat(0, 2).cversion, -2);
        let m = NodeMeta {
            cversion: 2,
            ..Default::default()
        };
        // Two creates, one delete: 3.
        assert_eq!(m.client_stat(0, 1).cversion, 3);
    }
}
