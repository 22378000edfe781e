//! One znode as stored, and how its owner field and `Stat` are interpreted
//! (reference D.3, D.4).

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
///
/// Memory (issue 4: 1M znodes in 250 MiB): the node's own name and its data
/// share one allocation (`body`), and the parent indexes its children by
/// that name rather than keeping a second copy as a map key, so a leaf costs
/// two heap blocks (the `Arc`'d node and its body) plus one pointer in its
/// parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// `header ‖ name ‖ data`: the header is a LEB128 varint of
    /// `name_len << 1 | data_is_null` (null data is distinct from empty,
    /// behaviour 9). A boxed slice, not `Bytes`: smaller, and it never
    /// shares a network buffer.
    body: Box<[u8]>,
    pub acl: AclList,
    pub meta: NodeMeta,
    pub children: Children,
}

impl Default for Node {
    /// The unnamed root with null data.
    fn default() -> Self {
        Node::new("", None, Vec::new().into(), NodeMeta::default())
    }
}

/// Appends `v` as a LEB128 varint.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 varint: (value, bytes used). `body` is only ever built by
/// [`encode_body`], so a short read cannot happen; it would read as 0.
fn get_varint(body: &[u8]) -> (u64, usize) {
    let mut v = 0u64;
    for (i, b) in body.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return (v, i + 1);
        }
    }
    (0, body.len())
}

fn encode_body(name: &[u8], data: Option<&[u8]>) -> Box<[u8]> {
    let data_len = data.map_or(0, <[u8]>::len);
    let mut out = Vec::with_capacity(10 + name.len() + data_len);
    put_varint(
        &mut out,
        (name.len() as u64) << 1 | u64::from(data.is_none()),
    );
    out.extend_from_slice(name);
    out.extend_from_slice(data.unwrap_or_default());
    out.into_boxed_slice()
}

impl Node {
    pub fn new(name: &str, data: Option<&[u8]>, acl: AclList, meta: NodeMeta) -> Node {
        Node {
            body: encode_body(name.as_bytes(), data),
            acl,
            meta,
            children: Children::default(),
        }
    }

    /// (name length, data is null, header length).
    fn header(&self) -> (usize, bool, usize) {
        let (h, used) = get_varint(&self.body);
        ((h >> 1) as usize, h & 1 == 1, used)
    }

    fn name_bytes(&self) -> &[u8] {
        let (len, _, at) = self.header();
        self.body.get(at..at + len).unwrap_or_default()
    }

    /// The last component of the node's path (`""` for the root).
    pub fn name(&self) -> &str {
        // Always valid: built from a `&str` in `Node::new`.
        std::str::from_utf8(self.name_bytes()).unwrap_or_default()
    }

    /// `None` is null data (behaviour 9).
    pub fn data(&self) -> Option<&[u8]> {
        let (len, null, at) = self.header();
        if null {
            None
        } else {
            Some(self.body.get(at + len..).unwrap_or_default())
        }
    }

    pub fn set_data(&mut self, data: Option<&[u8]>) {
        self.body = encode_body(self.name_bytes(), data);
    }

    pub fn data_len(&self) -> usize {
        self.data().map_or(0, <[u8]>::len)
    }
    pub fn data_bytes(&self) -> Option<Bytes> {
        self.data().map(Bytes::copy_from_slice)
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

/// Most children one chunk holds. Inserting shifts at most this many
/// pointers, so a parent with a million children (a flat namespace, as the
/// load generator builds) still inserts in O(log n + CHUNK).
const CHUNK: usize = 512;

/// Children in name order, split into sorted chunks: a two-level sorted
/// vector. Eight bytes per child plus slack, against ≈ 48 for a
/// `BTreeMap<Box<str>, Arc<Node>>` with its separate key allocation.
#[derive(Debug, Clone, Default)]
struct ChildChunks {
    len: usize,
    /// Non-empty chunks; every name in chunk `i` sorts before chunk `i + 1`.
    chunks: Vec<Vec<Arc<Node>>>,
}

impl ChildChunks {
    /// The chunk that holds `name` or should receive it, and the position
    /// in it: `Ok` if present, `Err` the insertion point.
    fn locate(&self, name: &[u8]) -> (usize, Result<usize, usize>) {
        let ci = self
            .chunks
            .partition_point(|c| c.last().is_some_and(|n| n.name_bytes() < name))
            .min(self.chunks.len().saturating_sub(1));
        let pos = match self.chunks.get(ci) {
            Some(c) => c.binary_search_by(|n| n.name_bytes().cmp(name)),
            None => Err(0),
        };
        (ci, pos)
    }
}

/// A node's children by name, sorted. Absent (one null pointer) when empty:
/// most znodes are leaves.
#[derive(Debug, Clone, Default)]
pub(crate) struct Children(Option<Box<ChildChunks>>);

impl PartialEq for Children {
    /// By content: the chunk boundaries depend on insertion history.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.values().zip(other.values()).all(|(a, b)| a == b)
    }
}
impl Eq for Children {}

impl Children {
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |c| c.len)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn get(&self, name: &str) -> Option<&Arc<Node>> {
        let c = self.0.as_ref()?;
        match c.locate(name.as_bytes()) {
            (ci, Ok(i)) => c.chunks.get(ci)?.get(i),
            _ => None,
        }
    }
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Arc<Node>> {
        let c = self.0.as_mut()?;
        match c.locate(name.as_bytes()) {
            (ci, Ok(i)) => c.chunks.get_mut(ci)?.get_mut(i),
            _ => None,
        }
    }
    /// Inserts `node` under its own name, returning the node it replaces.
    pub fn insert(&mut self, node: Arc<Node>) -> Option<Arc<Node>> {
        let c = self.0.get_or_insert_with(Box::default);
        let (ci, pos) = c.locate(node.name_bytes());
        let at = match pos {
            Ok(i) => {
                let slot = c.chunks.get_mut(ci)?.get_mut(i)?;
                return Some(std::mem::replace(slot, node));
            }
            Err(at) => at,
        };
        c.len += 1;
        let n_chunks = c.chunks.len();
        let Some(chunk) = c.chunks.get_mut(ci) else {
            c.chunks.push(vec![node]);
            return None;
        };
        if chunk.len() < CHUNK {
            chunk.insert(at, node);
        } else if ci + 1 == n_chunks && at == chunk.len() {
            // Appending past the last name (sequential nodes): start a new
            // chunk rather than leave two half-full ones behind.
            c.chunks.push(vec![node]);
        } else {
            let mut tail = chunk.split_off(CHUNK / 2);
            if at <= CHUNK / 2 {
                chunk.insert(at, node);
            } else {
                tail.insert(at - CHUNK / 2, node);
            }
            c.chunks.insert(ci + 1, tail);
        }
        None
    }
    pub fn remove(&mut self, name: &str) -> Option<Arc<Node>> {
        let c = self.0.as_mut()?;
        let (ci, Ok(i)) = c.locate(name.as_bytes()) else {
            return None;
        };
        let chunk = c.chunks.get_mut(ci)?;
        let removed = chunk.remove(i);
        c.len -= 1;
        if chunk.is_empty() {
            c.chunks.remove(ci);
        } else if chunk.len() < CHUNK / 8 && ci > 0 {
            // Fold a nearly empty chunk into its predecessor when it fits,
            // so deletes do not leave a trail of tiny chunks.
            let small_len = chunk.len();
            if c.chunks
                .get(ci - 1)
                .is_some_and(|p| p.len() + small_len <= CHUNK)
            {
                let small = c.chunks.remove(ci);
                if let Some(prev) = c.chunks.get_mut(ci - 1) {
                    prev.extend(small);
                }
            }
        }
        if c.len == 0 {
            self.0 = None;
        }
        Some(removed)
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.values().map(|n| n.name())
    }
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Arc<Node>> + '_ {
        self.0
            .iter()
            .flat_map(|c| c.chunks.iter().flat_map(|chunk| chunk.iter()))
    }
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&str, &Arc<Node>)> + '_ {
        self.values().map(|n| (n.name(), n))
    }
    pub fn into_values(self) -> impl Iterator<Item = Arc<Node>> {
        self.0
            .into_iter()
            .flat_map(|c| c.chunks.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn leaf(name: &str) -> Arc<Node> {
        Arc::new(Node::new(
            name,
            None,
            Vec::new().into(),
            NodeMeta::default(),
        ))
    }

    #[test]
    fn name_and_data_share_one_body() {
        let mut n = Node::new(
            "c0001",
            Some(b"hello"),
            Vec::new().into(),
            NodeMeta::default(),
        );
        assert_eq!(n.name(), "c0001");
        assert_eq!(n.data(), Some(&b"hello"[..]));
        n.set_data(None);
        assert_eq!((n.name(), n.data(), n.data_len()), ("c0001", None, 0));
        n.set_data(Some(b""));
        assert_eq!(n.data(), Some(&b""[..]));
        // A name longer than one varint byte covers.
        let long = "x".repeat(300);
        let n = Node::new(&long, Some(b"d"), Vec::new().into(), NodeMeta::default());
        assert_eq!((n.name(), n.data()), (long.as_str(), Some(&b"d"[..])));
        assert_eq!(Node::default().name(), "");
        assert_eq!(Node::default().data(), None);
    }

    #[test]
    fn chunked_children_match_a_sorted_set() {
        // Many more children than one chunk, inserted in a scattered order
        // (k1, k10, k100, … sort apart), then half removed.
        let mut c = Children::default();
        let mut model = BTreeSet::new();
        let mut x: u64 = 7;
        for _ in 0..5000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let name = format!("k{}", (x >> 33) % 3000);
            let fresh = model.insert(name.clone());
            assert_eq!(c.insert(leaf(&name)).is_none(), fresh, "{name}");
        }
        for i in 0..3000 {
            let name = format!("k{i}");
            if i % 3 != 0 {
                assert_eq!(c.remove(&name).is_some(), model.remove(&name), "{name}");
            }
        }
        assert_eq!(c.len(), model.len());
        assert!(c.keys().eq(model.iter().map(String::as_str)));
        assert!(c
            .iter()
            .rev()
            .map(|(k, _)| k)
            .eq(model.iter().rev().map(String::as_str)));
        for i in 0..3000 {
            let name = format!("k{i}");
            assert_eq!(c.get(&name).is_some(), model.contains(&name), "{name}");
            assert_eq!(
                c.get_mut(&name).map(|n| n.name().to_owned()),
                model.get(&name).cloned()
            );
        }
        let chunks = c.0.as_ref().map_or(0, |c| c.chunks.len());
        assert!(
            chunks > 1
                && c.0
                    .as_ref()
                    .is_some_and(|c| c.chunks.iter().all(|v| !v.is_empty() && v.len() <= CHUNK))
        );
        for name in model.clone() {
            assert!(c.remove(&name).is_some());
        }
        assert!(c.0.is_none());
    }

    #[test]
    fn sequential_appends_fill_whole_chunks() {
        let mut c = Children::default();
        for i in 0..(CHUNK * 3) {
            c.insert(leaf(&format!("n{i:06}")));
        }
        let sizes: Vec<usize> =
            c.0.as_ref()
                .map(|c| c.chunks.iter().map(Vec::len).collect())
                .unwrap_or_default();
        assert_eq!(sizes, vec![CHUNK; 3]);
    }

    #[test]
    fn equality_ignores_chunk_boundaries() {
        let mut a = Children::default();
        let mut b = Children::default();
        for i in 0..(CHUNK * 2) {
            a.insert(leaf(&format!("n{i:06}")));
        }
        for i in (0..(CHUNK * 2)).rev() {
            b.insert(leaf(&format!("n{i:06}")));
        }
        assert_eq!(a, b);
        b.remove("n000000");
        assert_ne!(a, b);
    }

    #[test]
    fn leaves_are_compact() {
        // Layout guard for the memory budget (1M znodes in 250 MiB).
        assert!(
            std::mem::size_of::<Node>() <= 104,
            "{}",
            std::mem::size_of::<Node>()
        );
        let mut c = Children::default();
        assert!(c.insert(leaf("b")).is_none());
        assert!(c.insert(leaf("a")).is_none());
        assert_eq!(c.keys().collect::<Vec<_>>(), vec!["a", "b"]);
        assert!(c.remove("a").is_some());
        assert!(c.remove("b").is_some());
        assert_eq!(c, Children::default());
        assert!(c.0.is_none());
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
