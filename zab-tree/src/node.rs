//! One znode as stored, and how its owner field and `Stat` are interpreted
//! (reference D.3, D.4).

use std::cmp::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use triomphe::HeaderSlice;
use zab_wire::jute::Stat;
use zab_wire::SessionId;

use crate::acl::AclList;
use crate::java_hash_set::{in_java_order, table_capacity, CHILDREN_INITIAL_CAPACITY};

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

/// What a znode's allocation holds besides its bytes: its children and its
/// (interned) ACL list.
#[derive(Debug, Clone, Default)]
pub(crate) struct Head {
    children: Children,
    acl: AclList,
}

impl Drop for Head {
    /// Iterative, so that dropping a very deep chain of nodes cannot
    /// overflow the stack: a node about to be freed gives up its children
    /// first.
    fn drop(&mut self) {
        let mut stack: Vec<Node> = std::mem::take(&mut self.children)
            .into_owned_values()
            .collect();
        while let Some(mut n) = stack.pop() {
            if let Some(inner) = triomphe::Arc::get_mut(&mut n.0) {
                stack.extend(std::mem::take(&mut inner.header.children).into_owned_values());
            }
        }
    }
}

/// A stored znode: a trie node owning its children (kept sorted by name, so
/// snapshots and listings are deterministic), and a cheap handle to it:
/// cloning shares the node, writes copy it first if shared.
///
/// Memory (issue 4: 1M znodes in 250 MiB): one heap block per node holding
/// the reference count, the [`Head`] (children pointer, ACL handle) and
/// `header ‖ name ‖ meta ‖ data`. The handle is a `triomphe` fat pointer
/// (no weak count; the byte length lives in the pointer, not the block),
/// and the parent indexes its children by the name inside that block, so a
/// binary-search probe reads the name with one cache miss.
///
/// Bytes: the header is a LEB128 varint of `name_len << 1 | data_is_null`
/// (null data is distinct from empty, behaviour 9); the meta is
/// [`encode_meta`]'s varints; the data runs to the end.
#[derive(Clone)]
pub(crate) struct Node(triomphe::Arc<HeaderSlice<Head, [u8]>>);

impl Default for Node {
    /// The unnamed root with null data.
    fn default() -> Self {
        Node::new("", None, Vec::new().into(), NodeMeta::default())
    }
}

impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        self.0.slice == other.0.slice
            && self.0.header.acl == other.0.header.acl
            && self.0.header.children == other.0.header.children
    }
}
impl Eq for Node {}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name())
            .field("meta", &self.meta())
            .field("data", &self.data())
            .field("acl", self.acl())
            .field("children", &self.0.header.children)
            .finish()
    }
}

/// Longest LEB128 varint of a u64.
const MAX_VARINT: usize = 10;
/// Longest encoded [`NodeMeta`]: a presence byte and nine varints.
const MAX_META: usize = 1 + 9 * MAX_VARINT;

/// A small stack buffer that varints are written into.
struct Buf<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Buf<N> {
    fn new() -> Self {
        Buf {
            bytes: [0; N],
            len: 0,
        }
    }
    /// Appends `v` as a LEB128 varint (the callers size `N` for the most
    /// varints they write).
    fn put_varint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7F) as u8;
            v >>= 7;
            if let Some(b) = self.bytes.get_mut(self.len) {
                *b = if v == 0 { byte } else { byte | 0x80 };
            }
            self.len += 1;
            if v == 0 {
                break;
            }
        }
    }
    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Reads a LEB128 varint: (value, bytes used). The bytes are only ever
/// written by [`Buf::put_varint`], so a short read cannot happen; it would
/// read as 0.
#[inline]
fn get_varint(body: &[u8]) -> (u64, usize) {
    match body.first() {
        Some(&b) if b < 0x80 => return (u64::from(b), 1),
        _ => {}
    }
    let mut v = 0u64;
    for (i, b) in body.iter().enumerate().take(MAX_VARINT) {
        v |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return (v, i + 1);
        }
    }
    (0, body.len())
}

/// The meta in a few bytes: a presence byte, then czxid and the fields
/// that are not 0 as zigzag varints (so that any i64 — negative, huge, a
/// wrapped delta — round-trips): mzxid and pzxid as deltas from czxid, mtime
/// from ctime. A node never written since its create (the most common kind)
/// stores only czxid and ctime: 1 + 5 + 6 bytes for a real one, against 64
/// as fixed fields.
fn encode_meta(m: &NodeMeta) -> Buf<MAX_META> {
    let rest = [
        zigzag(m.mzxid.wrapping_sub(m.czxid)),
        zigzag(m.pzxid.wrapping_sub(m.czxid)),
        zigzag(m.ctime),
        zigzag(m.mtime.wrapping_sub(m.ctime)),
        zigzag(i64::from(m.version)),
        zigzag(i64::from(m.cversion)),
        zigzag(i64::from(m.aversion)),
        zigzag(m.ephemeral_owner),
    ];
    let present = rest
        .iter()
        .enumerate()
        .fold(0u64, |bits, (i, &v)| bits | u64::from(v != 0) << i);
    let mut b = Buf::new();
    b.put_varint(present);
    b.put_varint(zigzag(m.czxid));
    for v in rest {
        if v != 0 {
            b.put_varint(v);
        }
    }
    b
}

/// Reads consecutive varints.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    /// The next LEB128 varint (0 past the end: see [`get_varint`]).
    #[inline]
    fn varint(&mut self) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        while let Some(&b) = self.bytes.get(self.at) {
            self.at += 1;
            v |= u64::from(b & 0x7F) << shift;
            shift += 7;
            if b & 0x80 == 0 || shift >= 64 {
                break;
            }
        }
        v
    }
    #[inline]
    fn i64(&mut self) -> i64 {
        unzigzag(self.varint())
    }
}

/// Decodes [`encode_meta`]'s bytes at the start of `b`: (meta, bytes used).
fn decode_meta(b: &[u8]) -> (NodeMeta, usize) {
    let mut r = Reader { bytes: b, at: 0 };
    let present = r.varint();
    let czxid = r.i64();
    let mut rest = [0i64; 8];
    for (i, v) in rest.iter_mut().enumerate() {
        if present & (1 << i) != 0 {
            *v = r.i64();
        }
    }
    let [mzxid, pzxid, ctime, mtime, version, cversion, aversion, owner] = rest;
    let meta = NodeMeta {
        czxid,
        mzxid: czxid.wrapping_add(mzxid),
        pzxid: czxid.wrapping_add(pzxid),
        ctime,
        mtime: ctime.wrapping_add(mtime),
        // Encoded from i32s, so the casts are exact.
        version: version as i32,
        cversion: cversion as i32,
        aversion: aversion as i32,
        ephemeral_owner: owner,
    };
    (meta, r.at)
}

/// Where the parts of a node's bytes are.
struct Layout {
    /// Offset of the name (= length of the header varint).
    name_at: usize,
    name_len: usize,
    null: bool,
}

impl Layout {
    fn meta_at(&self) -> usize {
        self.name_at + self.name_len
    }
}

impl Node {
    pub fn new(name: &str, data: Option<&[u8]>, acl: AclList, meta: NodeMeta) -> Node {
        let head = Head {
            children: Children::default(),
            acl,
        };
        Node::build(head, name.as_bytes(), &meta, data)
    }

    fn build(head: Head, name: &[u8], meta: &NodeMeta, data: Option<&[u8]>) -> Node {
        let mut header = Buf::<MAX_VARINT>::new();
        header.put_varint((name.len() as u64) << 1 | u64::from(data.is_none()));
        let meta = encode_meta(meta);
        let parts = [
            header.as_slice(),
            name,
            meta.as_slice(),
            data.unwrap_or_default(),
        ];
        let len: usize = parts.iter().map(|p| p.len()).sum();
        // Gathered into one slice for `triomphe` to copy (a byte iterator
        // would copy byte by byte): on the stack when small, as most are.
        const STACK: usize = 512;
        if len <= STACK {
            let mut buf = [0u8; STACK];
            let mut at = 0;
            for p in parts {
                if let Some(dst) = buf.get_mut(at..at + p.len()) {
                    dst.copy_from_slice(p);
                }
                at += p.len();
            }
            Node(triomphe::Arc::from_header_and_slice(
                head,
                buf.get(..len).unwrap_or_default(),
            ))
        } else {
            Node(triomphe::Arc::from_header_and_slice(head, &parts.concat()))
        }
    }

    fn layout(&self) -> Layout {
        let (h, used) = get_varint(&self.0.slice);
        Layout {
            name_at: used,
            name_len: (h >> 1) as usize,
            null: h & 1 == 1,
        }
    }

    pub(crate) fn name_bytes(&self) -> &[u8] {
        let l = self.layout();
        self.0.slice.get(l.name_at..l.meta_at()).unwrap_or_default()
    }

    /// The last component of the node's path (`""` for the root).
    pub fn name(&self) -> &str {
        // Always valid: built from a `&str` in `Node::new`.
        std::str::from_utf8(self.name_bytes()).unwrap_or_default()
    }

    /// The meta, and the data (`None` is null data, behaviour 9).
    pub fn meta_and_data(&self) -> (NodeMeta, Option<&[u8]>) {
        let l = self.layout();
        let rest = self.0.slice.get(l.meta_at()..).unwrap_or_default();
        let (meta, used) = decode_meta(rest);
        let data = (!l.null).then(|| rest.get(used..).unwrap_or_default());
        (meta, data)
    }

    pub fn meta(&self) -> NodeMeta {
        self.meta_and_data().0
    }

    /// What this node, at `path`, adds to its tree's digest.
    pub fn digest(&self, path: &str) -> i64 {
        let (meta, data) = self.meta_and_data();
        crate::digest::node_digest(path, data, &meta)
    }

    /// The meta's czxid alone: it follows the presence bits.
    pub fn czxid(&self) -> i64 {
        let l = self.layout();
        let bytes = self.0.slice.get(l.meta_at()..).unwrap_or_default();
        let mut r = Reader { bytes, at: 0 };
        r.varint();
        r.i64()
    }

    /// `None` is null data (behaviour 9).
    pub fn data(&self) -> Option<&[u8]> {
        self.meta_and_data().1
    }

    /// The address of the node's block, to tell a copy from the original.
    #[cfg(test)]
    pub fn block_addr(&self) -> usize {
        self.0.heap_ptr() as usize
    }

    pub fn acl(&self) -> &AclList {
        &self.0.header.acl
    }

    pub fn children(&self) -> &Children {
        &self.0.header.children
    }

    /// The node's own block for writing, copied first if a snapshot (or
    /// another handle) still shares it.
    fn make_mut(&mut self) -> &mut HeaderSlice<Head, [u8]> {
        if !self.0.is_unique() {
            self.0 = triomphe::Arc::from_header_and_slice(self.0.header.clone(), &self.0.slice);
        }
        match triomphe::Arc::get_mut(&mut self.0) {
            Some(inner) => inner,
            None => unreachable!("just made unique"),
        }
    }

    pub fn children_mut(&mut self) -> &mut Children {
        &mut self.make_mut().header.children
    }

    pub fn set_acl(&mut self, acl: AclList) {
        self.make_mut().header.acl = acl;
    }

    /// Rewrites the block with `meta` and, if given, new data: in place when
    /// the block is not shared and keeps its length (the meta alone keeps
    /// its encoded length, or new data of the same nullness fills exactly
    /// what the old meta and data held); otherwise as a new block that
    /// takes over the children.
    ///
    /// In place matters for setData of same-sized values, the common case:
    /// a new block costs an allocation and freeing the old one, on every
    /// server for every write, and `locate` has just brought this block
    /// into the cache anyway.
    fn rewrite(&mut self, meta: &NodeMeta, data: Option<Option<&[u8]>>) {
        let encoded = encode_meta(meta);
        let l = self.layout();
        if self.0.is_unique() {
            let at = l.meta_at();
            // What is rewritten: the old meta alone, or the meta and the
            // data up to the end of the block; data only if its nullness
            // (kept in the header) stays.
            let (end, new) = match data {
                None => {
                    let old_meta = decode_meta(self.0.slice.get(at..).unwrap_or_default()).1;
                    (at + old_meta, Some(&[][..]))
                }
                Some(d) => (
                    self.0.slice.len(),
                    (d.is_none() == l.null).then(|| d.unwrap_or_default()),
                ),
            };
            if let Some(new) = new.filter(|n| at + encoded.len + n.len() == end) {
                if let Some(dst) = self.make_mut().slice.get_mut(at..end) {
                    let (m, d) = dst.split_at_mut(encoded.len);
                    m.copy_from_slice(encoded.as_slice());
                    d.copy_from_slice(new);
                    return;
                }
            }
        }
        let head = match triomphe::Arc::get_mut(&mut self.0) {
            // Take the children rather than clone a (possibly huge) list
            // that the old block is about to drop.
            Some(inner) => Head {
                children: std::mem::take(&mut inner.header.children),
                acl: inner.header.acl.clone(),
            },
            None => self.0.header.clone(),
        };
        let data = match data {
            Some(d) => d,
            None => self.data(),
        };
        let node = Node::build(head, self.name_bytes(), meta, data);
        *self = node;
    }

    pub fn set_meta(&mut self, meta: &NodeMeta) {
        self.rewrite(meta, None);
    }

    /// Changes the meta with `f`.
    pub fn update_meta(&mut self, f: impl FnOnce(&mut NodeMeta)) {
        let mut meta = self.meta();
        f(&mut meta);
        self.set_meta(&meta);
    }

    /// Replaces the data and the meta at once (one new block).
    pub fn set_data_and_meta(&mut self, data: Option<&[u8]>, meta: &NodeMeta) {
        self.rewrite(meta, Some(data));
    }

    #[cfg(test)]
    pub fn set_data(&mut self, data: Option<&[u8]>) {
        let meta = self.meta();
        self.set_data_and_meta(data, &meta);
    }

    pub fn data_len(&self) -> usize {
        self.data().map_or(0, <[u8]>::len)
    }
    pub fn data_bytes(&self) -> Option<Bytes> {
        self.data().map(Bytes::copy_from_slice)
    }
    pub fn stat(&self) -> Stat {
        self.data_and_stat().1
    }
    /// The data (as [`Node::data`]) and the client-visible `Stat`, decoding
    /// the meta once.
    pub fn data_and_stat(&self) -> (Option<&[u8]>, Stat) {
        let (meta, data) = self.meta_and_data();
        let stat = meta.client_stat(data.map_or(0, <[u8]>::len), self.children().len());
        (data, stat)
    }
}

/// Most children one chunk holds. Inserting shifts at most this many
/// pointers, so a parent with a million children (a flat namespace, as the
/// load generator builds) still inserts in O(log n + CHUNK).
const CHUNK: usize = 512;

/// A run of children, shared between a parent and its copies until one of
/// them writes to it.
type Chunk = triomphe::Arc<Vec<Node>>;

/// Children in name order, split into sorted chunks: a two-level sorted
/// vector. Sixteen bytes per child plus slack, against ≈ 56 for a
/// `BTreeMap<Box<str>, Node>` with its separate key allocation.
///
/// Copy-on-write: the chunks are shared, so copying a parent (a write under
/// it while a snapshot holds the old tree) copies one pointer per chunk,
/// and a write into a chunk copies that chunk alone: O(n / CHUNK + CHUNK)
/// for a parent of n children, not O(n).
#[derive(Debug, Clone, Default)]
struct ChildChunks {
    len: usize,
    /// The most children this node has held at once since it was created
    /// or restored: ZooKeeper's children `HashSet` keeps the table it grew
    /// for them, and that table orders getChildren's reply.
    peak: usize,
    /// Non-empty chunks; every name in chunk `i` sorts before chunk `i + 1`.
    chunks: Vec<Chunk>,
    /// The last name of each chunk, so that finding the chunk reads one
    /// small block per probe rather than the chunk and then its node.
    lasts: Vec<Arc<[u8]>>,
    /// Each chunk's search keys, shared like the chunk (see [`ChunkKeys`]).
    keys: Vec<triomphe::Arc<ChunkKeys>>,
}

/// Fixed-width search keys for one chunk, so that a binary search among its
/// children compares integers in one small array instead of following a
/// pointer to every probed child's block (a cache miss each: with 10,000
/// children under one parent the search was ~10 % of a 3-server cluster's
/// CPU under a setData load). Key `i` is the 4 bytes of child `i`'s name
/// after `skip` bytes that every name in the chunk shares, big-endian and
/// zero-padded: if two keys differ they order the names, and only equal
/// keys need the names themselves. Four bytes per child: past the prefix
/// a chunk's names share (sequence numbers, `k1234`), four bytes tell
/// nearly all of a chunk's ≤ 512 names apart; eight cost ~6 MiB more per
/// million znodes for few fewer ties.
///
/// The search is two-level: first among `heads`, the first key of every
/// [`KEY_BLOCK`] keys (128 bytes for a full chunk, read by every search in
/// the chunk and so kept in cache), then within one block (one cache
/// line). A plain binary search over the 2 KiB of a full chunk's keys
/// touched a different line at each of its last probes, and was ≈ 8 % of a
/// server's runtime thread under set 32×8 (issue 4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ChunkKeys {
    /// A prefix length every name in the chunk shares (not necessarily the
    /// longest: a removal may leave a longer one).
    skip: usize,
    keys: Vec<u32>,
    /// `keys[j * KEY_BLOCK]` for every block `j`.
    heads: Vec<u32>,
}

/// Keys per block of [`ChunkKeys::heads`]: one cache line of `u32`s.
const KEY_BLOCK: usize = 16;

/// The search key of `name` in a chunk whose names share `skip` bytes.
fn window_key(name: &[u8], skip: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(rest) = name.get(skip..) {
        let n = rest.len().min(4);
        b[..n].copy_from_slice(&rest[..n]);
    }
    u32::from_be_bytes(b)
}

impl ChunkKeys {
    fn build(nodes: &[Node]) -> ChunkKeys {
        let skip = match (nodes.first(), nodes.last()) {
            (Some(f), Some(l)) => f
                .name_bytes()
                .iter()
                .zip(l.name_bytes())
                .take_while(|(x, y)| x == y)
                .count(),
            _ => 0,
        };
        let mut k = ChunkKeys {
            skip,
            keys: nodes
                .iter()
                .map(|n| window_key(n.name_bytes(), skip))
                .collect(),
            heads: Vec::new(),
        };
        k.refresh_heads(0);
        k
    }

    /// Recomputes the heads of the blocks from the one holding `from` on,
    /// after the keys changed there.
    fn refresh_heads(&mut self, from: usize) {
        let block = from / KEY_BLOCK;
        self.heads.truncate(block);
        let rest = self.keys.get(block * KEY_BLOCK..).unwrap_or_default();
        self.heads.extend(rest.iter().step_by(KEY_BLOCK));
    }

    fn insert(&mut self, at: usize, key: u32) {
        self.keys.insert(at, key);
        self.refresh_heads(at);
    }

    fn remove(&mut self, i: usize) {
        self.keys.remove(i);
        self.refresh_heads(i);
    }

    /// The number of keys below `key` (`keys.partition_point(|k| k < key)`).
    #[cfg(test)]
    fn lower_bound(&self, key: u32) -> usize {
        self.lower_bound_in(self.block_of(key), key)
    }

    /// The first index of the key block that holds `key`'s lower bound.
    fn block_of(&self, key: u32) -> usize {
        // Every block before `b` starts below `key`, block `b` does not:
        // the bound is in block `b - 1`, past its first key.
        let b = self.heads.partition_point(|&h| h < key);
        b.saturating_sub(1) * KEY_BLOCK
    }

    /// The lower bound of `key`, searched for in the block at `start`.
    fn lower_bound_in(&self, start: usize, key: u32) -> usize {
        let end = (start + KEY_BLOCK).min(self.keys.len());
        let block = self.keys.get(start..end).unwrap_or_default();
        start + block.partition_point(|&k| k < key)
    }

    /// Binary search of `name` among `nodes` (the chunk these keys were
    /// built for), whose last name is `last`.
    fn search(&self, nodes: &[Node], last: &[u8], name: &[u8]) -> Result<usize, usize> {
        let shared = last.get(..self.skip).unwrap_or(last);
        if name.get(..shared.len()) != Some(shared) {
            // Every name here starts with `shared` and `name` does not: it
            // sorts before all of them or after all of them.
            return match cmp_names(name, shared) {
                Ordering::Less => Err(0),
                _ => Err(nodes.len()),
            };
        }
        let key = window_key(name, self.skip);
        let start = self.block_of(key);
        touch_block(nodes, start);
        let lo = self.lower_bound_in(start, key);
        // Equal keys are rare (names alike for 4 bytes past the prefix):
        // counted by walking on from the first.
        let ties = self
            .keys
            .get(lo..)
            .map_or(0, |rest| rest.iter().take_while(|&&k| k == key).count());
        match nodes.get(lo..lo + ties) {
            Some(tied) if !tied.is_empty() => tied
                .binary_search_by(|n| cmp_names(n.name_bytes(), name))
                .map(|i| lo + i)
                .map_err(|i| lo + i),
            _ => Err(lo),
        }
    }

    /// Whether `name` shares this chunk's prefix (its key can be inserted
    /// without rebuilding), given the chunk's last name.
    fn fits(&self, last: &[u8], name: &[u8]) -> bool {
        last.get(..self.skip)
            .is_some_and(|shared| name.starts_with(shared))
    }
}

/// Starts loading the pointers of the nodes a key block covers (four cache
/// lines of a chunk), so that their cache misses overlap the one on the
/// block's keys: without it, a lookup's misses came one after another —
/// the keys, then the chunk's pointer to the node, then the node — and
/// under set 32×8 these three were nearly all of `locate`'s ≈ 17 % of a
/// server's runtime thread (issue 4, perf annotate). The loaded values are
/// only handed to `black_box`, which keeps the loads in the code; the CPU
/// runs them alongside the key search, which does not depend on them.
#[inline]
fn touch_block(nodes: &[Node], start: usize) {
    // At least one: `step_by(0)` would panic were a node ever a line wide.
    const PER_LINE: usize = match 64 / std::mem::size_of::<Node>() {
        0 => 1,
        n => n,
    };
    for n in nodes
        .iter()
        .skip(start)
        .step_by(PER_LINE)
        .take(KEY_BLOCK / PER_LINE)
    {
        std::hint::black_box(triomphe::Arc::as_ptr(&n.0));
    }
}

/// Byte order of two names, as `[u8]::cmp`, but inline for short names
/// (most are): a search compares a name at every probe, and a call to
/// `memcmp` costs more than the comparison.
#[inline]
fn cmp_names(a: &[u8], b: &[u8]) -> Ordering {
    if a.len().min(b.len()) > 16 {
        return a.cmp(b);
    }
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

impl ChildChunks {
    /// The chunk that holds `name` or should receive it, and the position
    /// in it: `Ok` if present, `Err` the insertion point.
    fn locate(&self, name: &[u8]) -> (usize, Result<usize, usize>) {
        let ci = self
            .lasts
            .partition_point(|last| cmp_names(last, name) == Ordering::Less)
            .min(self.chunks.len().saturating_sub(1));
        let pos = match (self.chunks.get(ci), self.keys.get(ci), self.lasts.get(ci)) {
            (Some(c), Some(k), Some(last)) => k.search(c, last, name),
            _ => Err(0),
        };
        (ci, pos)
    }

    /// Rebuilds chunk `ci`'s keys from its names (after a split or merge).
    fn rebuild_keys(&mut self, ci: usize) {
        if let (Some(c), Some(k)) = (self.chunks.get(ci), self.keys.get_mut(ci)) {
            *k = triomphe::Arc::new(ChunkKeys::build(c));
        }
    }

    /// Chunk `ci` for writing (copied first if shared).
    fn chunk_mut(&mut self, ci: usize) -> Option<&mut Vec<Node>> {
        self.chunks.get_mut(ci).map(triomphe::Arc::make_mut)
    }

    /// Records chunk `ci`'s last name after it changed.
    fn update_last(&mut self, ci: usize) {
        let last = self
            .chunks
            .get(ci)
            .and_then(|c| c.last())
            .map(|n| Arc::from(n.name_bytes()));
        if let (Some(last), Some(slot)) = (last, self.lasts.get_mut(ci)) {
            *slot = last;
        }
    }

    fn insert_chunk(&mut self, ci: usize, chunk: Vec<Node>) {
        let last: Arc<[u8]> = chunk
            .last()
            .map_or_else(|| Arc::from(&[][..]), |n| Arc::from(n.name_bytes()));
        self.keys
            .insert(ci, triomphe::Arc::new(ChunkKeys::build(&chunk)));
        self.chunks.insert(ci, triomphe::Arc::new(chunk));
        self.lasts.insert(ci, last);
    }

    fn remove_chunk(&mut self, ci: usize) -> Chunk {
        self.lasts.remove(ci);
        self.keys.remove(ci);
        self.chunks.remove(ci)
    }
}

/// A node's children by name, sorted. Absent (one null pointer) when empty,
/// as most znodes are leaves, unless the node once held so many children
/// that ZooKeeper's set would have grown its table (see
/// [`ChildChunks::peak`]): then an empty list stays, to remember it.
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
    pub fn get(&self, name: &str) -> Option<&Node> {
        let c = self.0.as_ref()?;
        match c.locate(name.as_bytes()) {
            (ci, Ok(i)) => c.chunks.get(ci)?.get(i),
            _ => None,
        }
    }
    /// Where the child `name` is, for [`Children::at_mut`]: looking up
    /// with a shared borrow first lets a writer find out that a path is
    /// missing before it copies anything.
    pub fn position(&self, name: &str) -> Option<(usize, usize)> {
        match self.0.as_ref()?.locate(name.as_bytes()) {
            (ci, Ok(i)) => Some((ci, i)),
            _ => None,
        }
    }
    /// The child at a [`Children::position`].
    pub fn at(&self, (ci, i): (usize, usize)) -> Option<&Node> {
        self.0.as_ref()?.chunks.get(ci)?.get(i)
    }
    /// The child at a [`Children::position`], for writing.
    pub fn at_mut(&mut self, (ci, i): (usize, usize)) -> Option<&mut Node> {
        self.0.as_mut()?.chunk_mut(ci)?.get_mut(i)
    }
    #[cfg(test)]
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Node> {
        let at = self.position(name)?;
        self.at_mut(at)
    }
    /// Inserts `node` under its own name, returning the node it replaces.
    pub fn insert(&mut self, node: Node) -> Option<Node> {
        let c = self.0.get_or_insert_with(Box::default);
        let (ci, pos) = c.locate(node.name_bytes());
        let at = match pos {
            Ok(i) => {
                let slot = c.chunk_mut(ci)?.get_mut(i)?;
                return Some(std::mem::replace(slot, node));
            }
            Err(at) => at,
        };
        c.len += 1;
        c.peak = c.peak.max(c.len);
        // The name's key in chunk `ci`, if it shares the chunk's prefix (read
        // before the chunk and its last name change).
        let key = match (c.keys.get(ci), c.lasts.get(ci)) {
            (Some(k), Some(last)) if k.fits(last, node.name_bytes()) => {
                Some(window_key(node.name_bytes(), k.skip))
            }
            _ => None,
        };
        let n_chunks = c.chunks.len();
        let Some(chunk) = c.chunk_mut(ci) else {
            c.insert_chunk(n_chunks, vec![node]);
            return None;
        };
        if chunk.len() < CHUNK {
            let new_last = at == chunk.len();
            chunk.insert(at, node);
            if new_last {
                c.update_last(ci);
            }
            match (key, c.keys.get_mut(ci)) {
                (Some(key), Some(k)) => triomphe::Arc::make_mut(k).insert(at, key),
                _ => c.rebuild_keys(ci),
            }
        } else if ci + 1 == n_chunks && at == chunk.len() {
            // Appending past the last name (sequential nodes): start a new
            // chunk rather than leave two half-full ones behind.
            c.insert_chunk(n_chunks, vec![node]);
        } else {
            let mut tail = chunk.split_off(CHUNK / 2);
            if at <= CHUNK / 2 {
                chunk.insert(at, node);
            } else {
                tail.insert(at - CHUNK / 2, node);
            }
            c.update_last(ci);
            c.rebuild_keys(ci);
            c.insert_chunk(ci + 1, tail);
        }
        None
    }
    pub fn remove(&mut self, name: &str) -> Option<Node> {
        let c = self.0.as_mut()?;
        let (ci, Ok(i)) = c.locate(name.as_bytes()) else {
            return None;
        };
        let chunk = c.chunk_mut(ci)?;
        let removed = chunk.remove(i);
        let (left, was_last) = (chunk.len(), i == chunk.len());
        if let Some(k) = c.keys.get_mut(ci) {
            // The shared prefix stays shared when a name leaves.
            triomphe::Arc::make_mut(k).remove(i);
        }
        c.len -= 1;
        if left == 0 {
            c.remove_chunk(ci);
        } else {
            if was_last {
                c.update_last(ci);
            }
            // Fold a nearly empty chunk into its predecessor when it fits,
            // so deletes do not leave a trail of tiny chunks.
            if left < CHUNK / 8
                && ci > 0
                && c.chunks
                    .get(ci - 1)
                    .is_some_and(|p| p.len() + left <= CHUNK)
            {
                let small = c.remove_chunk(ci);
                if let Some(prev) = c.chunk_mut(ci - 1) {
                    prev.extend(small.iter().cloned());
                }
                c.update_last(ci - 1);
                c.rebuild_keys(ci - 1);
            }
        }
        // An emptied set whose table Java had grown stays, to remember it.
        if c.len == 0
            && table_capacity(CHILDREN_INITIAL_CAPACITY, c.peak) == CHILDREN_INITIAL_CAPACITY
        {
            self.0 = None;
        }
        Some(removed)
    }
    /// The most children held at once (see [`ChildChunks::peak`]).
    pub fn peak(&self) -> usize {
        self.0.as_ref().map_or(0, |c| c.peak)
    }
    /// The children in the order ZooKeeper lists them: its children
    /// `HashSet`'s, each child ranked by its czxid (when it was added).
    pub fn in_java_order(&self) -> Vec<&Node> {
        in_java_order(CHILDREN_INITIAL_CAPACITY, self.peak(), self.values(), |n| {
            (n.name(), n.czxid())
        })
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.values().map(|n| n.name())
    }
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Node> + '_ {
        self.0
            .iter()
            .flat_map(|c| c.chunks.iter().flat_map(|chunk| chunk.iter()))
    }
    /// The children held by no one else: those in chunks this list alone
    /// holds (a shared chunk is released, its nodes stay with the other
    /// holder). For dropping a subtree without recursion.
    fn into_owned_values(self) -> impl Iterator<Item = Node> {
        self.0.into_iter().flat_map(|c| {
            c.chunks
                .into_iter()
                .filter_map(|chunk| triomphe::Arc::try_unwrap(chunk).ok())
                .flatten()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use zab_wire::jute::Acl;

    fn leaf(name: &str) -> Node {
        Node::new(name, None, Vec::new().into(), NodeMeta::default())
    }

    #[test]
    fn name_and_data_share_one_block() {
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

    fn metas() -> Vec<NodeMeta> {
        let zxids = [0, 1, -1, 0x7_0000_0001, i64::MAX, i64::MIN, i64::MIN + 1];
        let times = [0, 1_700_000_000_000, -5, i64::MAX, i64::MIN];
        let owners = [
            0,
            0x0100_0000_0000_0001,
            CONTAINER_OWNER,
            ttl_owner(1),
            ttl_owner(MAX_TTL),
            -1,
            i64::MAX,
        ];
        let mut out = Vec::new();
        for (i, &czxid) in zxids.iter().enumerate() {
            for (j, &ctime) in times.iter().enumerate() {
                let other = zxids[(i + j + 1) % zxids.len()];
                out.push(NodeMeta {
                    czxid,
                    // Deltas that wrap both ways.
                    mzxid: other,
                    pzxid: zxids[(i + 3 * j + 2) % zxids.len()],
                    ctime,
                    mtime: times[(i + j + 2) % times.len()],
                    version: [0, 1, -1, i32::MAX, i32::MIN][(i + j) % 5],
                    cversion: [i32::MIN, -2, 0, 300, i32::MAX][(i * 2 + j) % 5],
                    aversion: [-1, i32::MAX, 0, i32::MIN, 7][(i + 2 * j) % 5],
                    ephemeral_owner: owners[(i + j) % owners.len()],
                });
            }
        }
        out
    }

    #[test]
    fn meta_encoding_round_trips_extremes() {
        for m in metas() {
            let b = encode_meta(&m);
            assert!(b.len <= MAX_META);
            let mut bytes = b.as_slice().to_vec();
            // Data follows the meta in a block: decoding stops at its end.
            bytes.extend_from_slice(b"\xff\x80tail");
            assert_eq!(decode_meta(&bytes), (m, b.len), "{m:?}");
        }
        // Each field alone (the others absent from the presence byte).
        let one_each = [
            NodeMeta {
                czxid: -3,
                ..NodeMeta::default()
            },
            NodeMeta {
                mzxid: -3,
                ..NodeMeta::default()
            },
            NodeMeta {
                pzxid: i64::MIN,
                ..NodeMeta::default()
            },
            NodeMeta {
                ctime: 9,
                ..NodeMeta::default()
            },
            NodeMeta {
                mtime: i64::MAX,
                ..NodeMeta::default()
            },
            NodeMeta {
                version: -1,
                ..NodeMeta::default()
            },
            NodeMeta {
                cversion: i32::MIN,
                ..NodeMeta::default()
            },
            NodeMeta {
                aversion: 1,
                ..NodeMeta::default()
            },
            NodeMeta {
                ephemeral_owner: CONTAINER_OWNER,
                ..NodeMeta::default()
            },
        ];
        for m in one_each {
            let b = encode_meta(&m);
            assert_eq!(decode_meta(b.as_slice()), (m, b.len), "{m:?}");
        }
        assert_eq!(encode_meta(&NodeMeta::default()).len, 2);
        // A node never written since its create keeps czxid and ctime only:
        // 13 bytes with an epoch-5 zxid and a current ctime; 18 once written
        // to (mzxid, mtime and version too), against 64 as fixed fields.
        let fresh = NodeMeta {
            czxid: 0x5_0000_1234,
            mzxid: 0x5_0000_1234,
            pzxid: 0x5_0000_1234,
            ctime: 1_700_000_000_000,
            mtime: 1_700_000_000_000,
            ..NodeMeta::default()
        };
        assert_eq!(encode_meta(&fresh).len, 13);
        let written = NodeMeta {
            mzxid: 0x5_0000_1300,
            mtime: 1_700_000_000_500,
            version: 1,
            ..fresh
        };
        assert_eq!(encode_meta(&written).len, 18);
    }

    #[test]
    fn node_round_trips_name_meta_and_data() {
        let long_name = "n".repeat(200);
        let long_data = vec![7u8; 1000];
        let names = ["", "a", "c0001", "ünï", long_name.as_str()];
        let datas: [Option<&[u8]>; 4] = [None, Some(b""), Some(b"x"), Some(&long_data)];
        for m in metas() {
            for name in names {
                for data in datas {
                    let n = Node::new(name, data, Vec::new().into(), m);
                    assert_eq!((n.name(), n.meta(), n.data()), (name, m, data));
                    assert_eq!(n.czxid(), m.czxid);
                    assert_eq!(n.stat(), m.client_stat(data.map_or(0, <[u8]>::len), 0));
                    assert_eq!(n.data_and_stat(), (data, n.stat()));
                }
            }
        }
    }

    #[test]
    fn rewrites_keep_name_children_and_acl_and_copy_shared_blocks() {
        let acl: AclList = Acl::open_unsafe().into();
        let meta = NodeMeta {
            czxid: 5,
            mzxid: 5,
            pzxid: 5,
            ..NodeMeta::default()
        };
        let mut n = Node::new("p", Some(b"data"), acl.clone(), meta);
        n.children_mut().insert(leaf("a"));
        n.children_mut().insert(leaf("b"));
        let snapshot = n.clone();
        // Same encoded length (in place if unshared), then a longer one.
        n.update_meta(|m| m.version = 3);
        n.update_meta(|m| m.pzxid = i64::MIN);
        n.set_data_and_meta(
            None,
            &NodeMeta {
                aversion: -1,
                ..n.meta()
            },
        );
        for _ in 0..2 {
            // Unshared now: the in-place path and the new-block path.
            n.update_meta(|m| m.version += 1);
            n.update_meta(|m| m.cversion = i32::MAX);
        }
        assert_eq!(n.name(), "p");
        assert_eq!(n.data(), None);
        assert_eq!(
            n.meta(),
            NodeMeta {
                version: 5,
                cversion: i32::MAX,
                aversion: -1,
                pzxid: i64::MIN,
                ..meta
            }
        );
        assert_eq!(n.children().keys().collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(n.acl(), &acl);
        // The clone taken before is untouched.
        assert_eq!(
            (snapshot.meta(), snapshot.data(), snapshot.children().len()),
            (meta, Some(&b"data"[..]), 2)
        );
        n.set_acl(Vec::new().into());
        n.children_mut().remove("a");
        assert_eq!((snapshot.acl(), snapshot.children().len()), (&acl, 2));
        assert_eq!((n.acl().len(), n.children().len()), (0, 1));
    }

    #[test]
    fn same_sized_data_is_rewritten_in_place_unless_shared_or_nullness_changes() {
        // Zero fields are left out of the encoding: every meta here has
        // the same fields set.
        let meta = NodeMeta {
            version: 1,
            mzxid: 7,
            ..NodeMeta::default()
        };
        let mut n = Node::new("k", Some(b"aaaa"), Vec::new().into(), meta);
        n.children_mut().insert(leaf("c"));
        let block = n.block_addr();
        let next = NodeMeta {
            version: 2,
            mzxid: 8,
            ..meta
        };
        n.set_data_and_meta(Some(b"bbbb"), &next);
        assert_eq!(n.block_addr(), block, "same length, unshared: in place");
        assert_eq!((n.meta(), n.data()), (next, Some(&b"bbbb"[..])));
        // A meta one byte longer with data one byte shorter fills the same
        // block: still in place, the data moves.
        let longer = NodeMeta { mzxid: 200, ..next };
        n.set_data_and_meta(Some(b"ccc"), &longer);
        assert_eq!(n.block_addr(), block);
        assert_eq!((n.meta(), n.data()), (longer, Some(&b"ccc"[..])));
        // Shared with a snapshot: copied, the snapshot keeps its bytes.
        let snapshot = n.clone();
        n.set_data_and_meta(Some(b"ddd"), &longer);
        assert_ne!(n.block_addr(), block);
        assert_eq!(snapshot.data(), Some(&b"ccc"[..]));
        assert_eq!(n.data(), Some(&b"ddd"[..]));
        drop(snapshot);
        // Empty and null data have the same length but not the same header.
        let mut e = Node::new("e", Some(b""), Vec::new().into(), meta);
        e.set_data_and_meta(None, &meta);
        assert_eq!(e.data(), None);
        e.set_data_and_meta(Some(b""), &meta);
        assert_eq!(e.data(), Some(&b""[..]));
        // A longer value needs a new block; name and children survive all.
        n.set_data_and_meta(Some(b"a longer value"), &next);
        assert_eq!((n.name(), n.meta()), ("k", next));
        assert_eq!(n.data(), Some(&b"a longer value"[..]));
        assert_eq!(n.children().keys().collect::<Vec<_>>(), vec!["c"]);
    }

    #[test]
    fn dropping_a_deep_chain_does_not_overflow_the_stack() {
        let mut root = leaf("");
        {
            let mut cur = &mut root;
            for _ in 0..200_000 {
                cur.children_mut().insert(leaf("d"));
                cur = match cur.children_mut().get_mut("d") {
                    Some(c) => c,
                    None => unreachable!(),
                };
            }
        }
        drop(root);
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
            .values()
            .rev()
            .map(Node::name)
            .eq(model.iter().rev().map(String::as_str)));
        for i in 0..3000 {
            let name = format!("k{i}");
            assert_eq!(c.get(&name).is_some(), model.contains(&name), "{name}");
            assert_eq!(
                c.get_mut(&name).map(|n| n.name().to_owned()),
                model.get(&name).cloned()
            );
        }
        assert_lasts_match(&c);
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
        // Emptied, it keeps its peak (ZooKeeper's set keeps its table):
        // the 2,453 distinct names inserted before the removals.
        assert!(c.is_empty() && c.0.as_ref().is_some_and(|c| c.chunks.is_empty()));
        assert_eq!(c.peak(), 2453);
    }

    #[test]
    fn a_set_java_never_grew_is_dropped_when_emptied() {
        let mut c = Children::default();
        for name in ["a", "b", "c", "d", "e", "f"] {
            c.insert(leaf(name));
        }
        c.remove("a");
        c.insert(leaf("g"));
        assert_eq!((c.len(), c.peak()), (6, 6));
        for name in ["b", "c", "d", "e", "f", "g"] {
            c.remove(name);
        }
        assert!(c.0.is_none());
    }

    /// Names built to stress the search keys: long shared prefixes
    /// (sequential nodes), names that are prefixes of others, names equal
    /// in their first 8 bytes after the shared prefix, non-ASCII bytes.
    fn awkward_name(x: u64) -> String {
        match x % 6 {
            0 => format!("lock-{:010}", x % 5000),
            1 => format!("lock-{}", x % 700),
            2 => "a".repeat((x % 23) as usize + 1),
            3 => format!("member_0000000000{:03}", x % 900),
            4 => format!("ü{}é", x % 400),
            _ => format!("k{}", x % 3000),
        }
    }

    #[test]
    fn searching_by_chunk_keys_agrees_with_a_sorted_set() {
        let mut model = BTreeSet::new();
        let mut c = Children::default();
        let mut x: u64 = 7;
        let mut step = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 20
        };
        for round in 0..6 {
            for _ in 0..4000 {
                let name = awkward_name(step());
                let fresh = model.insert(name.clone());
                assert_eq!(c.insert(leaf(&name)).is_none(), fresh, "{name}");
            }
            // Remove about a third, from everywhere.
            for _ in 0..1500 {
                let name = awkward_name(step());
                assert_eq!(c.remove(&name).is_some(), model.remove(&name), "{name}");
            }
            assert_lasts_match(&c);
            assert!(
                c.keys().eq(model.iter().map(String::as_str)),
                "round {round}"
            );
            for probe in 0..3000 {
                let name = awkward_name(probe * 7 + round);
                assert_eq!(c.get(&name).is_some(), model.contains(&name), "{name}");
            }
            // Names sorting before, between and after everything present.
            for name in ["", "a", "lock-", "lock-00000049999", "zzzz", "\u{10ffff}"] {
                assert_eq!(c.get(name).is_some(), model.contains(name), "{name}");
            }
        }
    }

    #[test]
    fn a_copy_keeps_its_keys_when_the_original_is_written() {
        let mut a = Children::default();
        for i in 0..2000 {
            a.insert(leaf(&format!("lock-{i:010}")));
        }
        let snapshot = a.clone();
        for i in 0..2000 {
            if i % 2 == 0 {
                a.remove(&format!("lock-{i:010}"));
            }
        }
        a.insert(leaf("aaa"));
        assert_lasts_match(&a);
        assert_lasts_match(&snapshot);
        assert_eq!(snapshot.len(), 2000);
        assert!(snapshot.get("lock-0000000000").is_some());
        assert!(a.get("lock-0000000000").is_none());
        assert!(a.get("aaa").is_some() && snapshot.get("aaa").is_none());
    }

    #[test]
    fn name_order_is_byte_order() {
        let long_a = "a".repeat(40);
        let long_b = format!("{}b", "a".repeat(39));
        let names = [
            "", "a", "ab", "b", "a\u{ff}", "ü", "c0001", "c00010", "c0002", &long_a, &long_b,
        ];
        for x in names {
            for y in names {
                assert_eq!(
                    cmp_names(x.as_bytes(), y.as_bytes()),
                    x.as_bytes().cmp(y.as_bytes()),
                    "{x:?} {y:?}"
                );
            }
        }
    }

    #[test]
    fn the_two_level_key_search_agrees_with_a_plain_one() {
        // Sorted keys with runs of equal ones, of every length around the
        // block size, kept up to date through inserts and removals.
        for len in [0, 1, 2, 15, 16, 17, 31, 32, 33, 100, 511, 512] {
            let mut k = ChunkKeys {
                skip: 0,
                keys: (0..len as u32).map(|i| i / 3 * 2).collect(),
                heads: Vec::new(),
            };
            k.refresh_heads(0);
            let check = |k: &ChunkKeys| {
                let top = k.keys.last().map_or(0, |&x| x + 2);
                for key in 0..=top {
                    assert_eq!(
                        k.lower_bound(key),
                        k.keys.partition_point(|&x| x < key),
                        "len {len}, key {key}"
                    );
                }
            };
            check(&k);
            if len > 0 {
                k.insert(len / 2, k.keys[len / 2]);
                k.remove(0);
                k.insert(0, 0);
                k.remove(len - 1);
                check(&k);
                let heads: Vec<u32> = k.keys.iter().step_by(KEY_BLOCK).copied().collect();
                assert_eq!(k.heads, heads);
            }
        }
    }

    fn assert_lasts_match(c: &Children) {
        if let Some(c) = &c.0 {
            assert_eq!(c.lasts.len(), c.chunks.len());
            assert_eq!(c.keys.len(), c.chunks.len());
            for ((last, chunk), keys) in c.lasts.iter().zip(&c.chunks).zip(&c.keys) {
                assert_eq!(Some(&**last), chunk.last().map(Node::name_bytes));
                // Every name shares the recorded prefix, and each key is
                // its name's window after it.
                assert_eq!(keys.keys.len(), chunk.len());
                for (n, k) in chunk.iter().zip(&keys.keys) {
                    assert!(n.name_bytes().starts_with(&last[..keys.skip]));
                    assert_eq!(*k, window_key(n.name_bytes(), keys.skip));
                }
                // The first level of the search: each block's first key.
                let heads: Vec<u32> = keys.keys.iter().step_by(KEY_BLOCK).copied().collect();
                assert_eq!(keys.heads, heads);
            }
        }
    }

    #[test]
    fn copies_share_chunks_until_written() {
        let mut a = Children::default();
        for i in 0..(CHUNK * 4) {
            a.insert(leaf(&format!("n{i:06}")));
        }
        let snapshot = a.clone();
        let shared = |a: &Children, b: &Children| {
            let (Some(a), Some(b)) = (&a.0, &b.0) else {
                return 0;
            };
            a.chunks
                .iter()
                .zip(&b.chunks)
                .filter(|(x, y)| triomphe::Arc::ptr_eq(x, y))
                .count()
        };
        assert_eq!(shared(&a, &snapshot), 4);
        // A write under one chunk copies that chunk only.
        let at = a.position("n000700");
        assert!(at.and_then(|at| a.at_mut(at)).is_some());
        assert_eq!(shared(&a, &snapshot), 3);
        // Inserts, removes (one empties a chunk's tail) and a replace.
        a.insert(leaf("n000100x"));
        for i in (CHUNK * 3 + 10)..(CHUNK * 4) {
            assert!(a.remove(&format!("n{i:06}")).is_some());
        }
        assert!(a.insert(leaf("n000001")).is_some());
        assert_lasts_match(&a);
        assert_eq!(snapshot.len(), CHUNK * 4);
        assert!(snapshot
            .keys()
            .eq((0..(CHUNK * 4)).map(|i| format!("n{i:06}"))));
        assert_lasts_match(&snapshot);
        assert_eq!(a.len(), CHUNK * 3 + 11);
    }

    #[test]
    fn sequential_appends_fill_whole_chunks() {
        let mut c = Children::default();
        for i in 0..(CHUNK * 3) {
            c.insert(leaf(&format!("n{i:06}")));
        }
        let sizes: Vec<usize> =
            c.0.as_ref()
                .map(|c| c.chunks.iter().map(|c| c.len()).collect())
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
        // Layout guard for the memory budget (1M znodes in 250 MiB): a
        // handle is a fat pointer, the fixed part of the block two pointers.
        assert_eq!(std::mem::size_of::<Node>(), 16);
        assert_eq!(std::mem::size_of::<Head>(), 16);
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
