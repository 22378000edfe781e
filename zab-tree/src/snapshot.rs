//! Snapshots of the tree: a stream of length-delimited protobuf messages,
//! one `SnapshotHeader` then one `Znode` per node in pre-order (parents
//! before children, children by name), as `zab-wire/proto/zab.proto` defines.
//!
//! [`DataTree::snapshot`] only clones the root handle of the persistent tree,
//! so the caller can write the snapshot on another thread while writers keep
//! applying txns (they copy the nodes they touch).

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};

use prost::Message;
use zab_wire::proto::{SessionEntry, SnapshotHeader, Znode};
use zab_wire::{SessionId, Zxid};

use crate::acl::AclCache;
use crate::java_hash_set::JavaHashSet;
use crate::node::{Node, NodeMeta};
use crate::path;
use crate::tree::{acl_from_proto, acl_to_proto, DataTree};

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot i/o: {0}")]
    Io(#[from] io::Error),
    #[error("snapshot message does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("snapshot ends early: {0}")]
    Truncated(&'static str),
    #[error("corrupt snapshot: {0}")]
    Corrupt(String),
}

/// A point-in-time view of a [`DataTree`], cheap to take and `Send`.
#[derive(Debug, Clone)]
pub struct TreeSnapshot {
    zxid: Zxid,
    sessions: Vec<(SessionId, i32)>,
    root: Node,
    count: usize,
}

impl DataTree {
    /// Takes a snapshot: O(1) for the tree, O(sessions) for the sessions.
    pub fn snapshot(&self) -> TreeSnapshot {
        TreeSnapshot {
            zxid: self.last_zxid,
            sessions: self.sessions().collect(),
            root: self.root.clone(),
            count: self.count,
        }
    }

    /// Rebuilds a tree from a snapshot stream. Pass a buffered reader: the
    /// stream is read message by message and nothing past the last node is
    /// consumed. Each session's ephemerals come back in the order
    /// ZooKeeper's restore gives them (see `ephemerals_in_restore_order`).
    pub fn restore(input: &mut impl Read) -> Result<DataTree, SnapshotError> {
        let header_bytes = read_delimited(input)?.ok_or(SnapshotError::Truncated("no header"))?;
        let header = SnapshotHeader::decode(header_bytes.as_slice())?;
        let mut tree = DataTree::new();
        tree.root = Node::default();
        tree.count = 0;
        tree.ephemerals.clear();
        tree.data_size = 0;
        tree.digest = 0;
        tree.acl_cache = AclCache::default();
        tree.last_zxid = Zxid(header.zxid);
        tree.sessions = header
            .sessions
            .iter()
            .map(|s| (SessionId(s.session_id), s.timeout))
            .collect();
        let count = header.node_count;
        for i in 0..count {
            let bytes = read_delimited(input)?.ok_or(SnapshotError::Truncated("missing znode"))?;
            let z = Znode::decode(bytes.as_slice())?;
            if i == 0 {
                if z.path != path::ROOT {
                    return Err(SnapshotError::Corrupt(format!(
                        "first node is {:?}, not the root",
                        z.path
                    )));
                }
            } else {
                let (parent, name) = path::split(&z.path)
                    .ok_or_else(|| SnapshotError::Corrupt(format!("bad path {:?}", z.path)))?;
                if name.is_empty() || !tree.exists(parent) {
                    return Err(SnapshotError::Corrupt(format!(
                        "{:?} precedes its parent or is malformed",
                        z.path
                    )));
                }
            }
            if i > 0 && tree.exists(&z.path) {
                return Err(SnapshotError::Corrupt(format!("duplicate {:?}", z.path)));
            }
            let acl = tree.acl_cache.intern(&acl_from_proto(&z.acl));
            tree.insert_node(
                &z.path,
                z.data.as_deref(),
                acl,
                NodeMeta {
                    czxid: z.czxid,
                    mzxid: z.mzxid,
                    ctime: z.ctime,
                    mtime: z.mtime,
                    version: z.version,
                    cversion: z.cversion,
                    aversion: z.aversion,
                    ephemeral_owner: z.ephemeral_owner,
                    pzxid: z.pzxid,
                },
            );
        }
        if tree.count == 0 {
            return Err(SnapshotError::Corrupt("no root".into()));
        }
        tree.ephemerals = ephemerals_in_restore_order(&tree);
        // As ZooKeeper's `DataTree.deserialize`: quotas come from the
        // limit nodes, and their usage is counted anew.
        tree.setup_quotas();
        Ok(tree)
    }
}

/// Each session's ephemerals as ZooKeeper's `DataTree.deserialize` leaves
/// them: added to a fresh `HashSet` in the order its snapshot lists nodes,
/// which is pre-order with each node's children in the order of its own
/// `HashSet` (`serializeNode`). A restored session lists them in that
/// order (getEphemerals, the paths of its closeSession), not in the order
/// it created them. zab's snapshots list children by name, so the order is
/// taken from the restored children's sets; these agree with the ones the
/// snapshot was written from except where a set had grown past what it now
/// holds and Java's table stayed large.
fn ephemerals_in_restore_order(tree: &DataTree) -> BTreeMap<SessionId, JavaHashSet> {
    let mut ranks = HashMap::new();
    tree.ephemerals
        .iter()
        .map(|(&session, paths)| {
            if paths.len() < 2 {
                return (session, paths.clone());
            }
            let mut listed: Vec<(Vec<usize>, &str)> = paths
                .iter()
                .map(|p| (snapshot_position(tree, &mut ranks, p), p))
                .collect();
            listed.sort_unstable();
            let mut set = JavaHashSet::default();
            for (_, p) in listed {
                set.insert(p);
            }
            (session, set)
        })
        .collect()
}

/// Where ZooKeeper's snapshot of `tree` would list `p`: the rank of each of
/// its components among its siblings in Java's order. `ranks` caches each
/// parent's ranks.
fn snapshot_position<'t>(
    tree: &'t DataTree,
    ranks: &mut HashMap<&'t str, HashMap<&'t str, usize>>,
    p: &'t str,
) -> Vec<usize> {
    let mut key = Vec::new();
    let mut parent_end = 0;
    for name in p.split('/').skip(1) {
        let parent = if parent_end == 0 {
            path::ROOT
        } else {
            &p[..parent_end]
        };
        let ranked = ranks.entry(parent).or_insert_with(|| {
            tree.node(parent).map_or_else(HashMap::new, |n| {
                let order = n.children().in_java_order();
                order
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name(), i))
                    .collect()
            })
        });
        key.push(ranked.get(name).copied().unwrap_or(usize::MAX));
        parent_end += 1 + name.len();
    }
    key
}

/// Writes one node as a length-delimited `Znode` message.
fn write_znode(out: &mut impl Write, buf: &mut Vec<u8>, path: String, n: &Node) -> io::Result<()> {
    let meta = n.meta();
    let z = Znode {
        path,
        data: n.data_bytes(),
        acl: acl_to_proto(n.acl()),
        czxid: meta.czxid,
        mzxid: meta.mzxid,
        ctime: meta.ctime,
        mtime: meta.mtime,
        version: meta.version,
        cversion: meta.cversion,
        aversion: meta.aversion,
        ephemeral_owner: meta.ephemeral_owner,
        pzxid: meta.pzxid,
    };
    buf.clear();
    z.encode_length_delimited(buf).map_err(io::Error::other)?;
    out.write_all(buf)
}

impl TreeSnapshot {
    /// The zxid of the last txn the snapshot includes.
    pub fn zxid(&self) -> Zxid {
        self.zxid
    }

    pub fn node_count(&self) -> usize {
        self.count
    }

    /// Writes the snapshot stream (header, then nodes in pre-order).
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        let header = SnapshotHeader {
            zxid: self.zxid.0,
            sessions: self
                .sessions
                .iter()
                .map(|(s, t)| SessionEntry {
                    session_id: s.0,
                    timeout: *t,
                })
                .collect(),
            node_count: self.count as u64,
        };
        let mut buf = Vec::with_capacity(256);
        header
            .encode_length_delimited(&mut buf)
            .map_err(io::Error::other)?;
        out.write_all(&buf)?;
        write_znode(out, &mut buf, path::ROOT.to_owned(), &self.root)?;
        // Iterative pre-order: deep trees must not overflow the stack. One
        // child iterator per level, not every pending path: a parent with a
        // million children must not make a million path strings at once.
        type Level<'a> = (String, Box<dyn Iterator<Item = &'a Node> + 'a>);
        let mut stack: Vec<Level<'_>> = vec![(
            path::ROOT.to_owned(),
            Box::new(self.root.children().values()),
        )];
        while let Some((parent, children)) = stack.last_mut() {
            let Some(child) = children.next() else {
                stack.pop();
                continue;
            };
            let p = path::join(parent, child.name());
            write_znode(out, &mut buf, p.clone(), child)?;
            stack.push((p, Box::new(child.children().values())));
        }
        Ok(())
    }

    /// Sessions included in the snapshot.
    pub fn sessions(&self) -> &[(SessionId, i32)] {
        &self.sessions
    }
}

/// Largest message accepted when restoring (a znode holds at most ~1 MiB of
/// data plus its path and ACL; the header holds every session).
const MAX_MESSAGE: u64 = 256 << 20;

/// Reads one varint-length-delimited message; `None` at a clean end of input.
fn read_delimited(input: &mut impl Read) -> Result<Option<Vec<u8>>, SnapshotError> {
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let mut b = [0u8; 1];
        match input.read(&mut b) {
            Ok(0) if shift == 0 => return Ok(None),
            Ok(0) => return Err(SnapshotError::Truncated("inside a length prefix")),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        len |= u64::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return Err(SnapshotError::Corrupt("length prefix too long".into()));
        }
    }
    if len > MAX_MESSAGE {
        return Err(SnapshotError::Corrupt(format!("message of {len} bytes")));
    }
    let mut buf = vec![0u8; len as usize];
    input.read_exact(&mut buf).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            SnapshotError::Truncated("inside a message")
        } else {
            SnapshotError::Io(e)
        }
    })?;
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use zab_wire::jute::Request;

    fn bytes(s: &TreeSnapshot) -> Vec<u8> {
        let mut out = Vec::new();
        s.write_to(&mut out).expect("write to a Vec");
        out
    }

    #[test]
    fn snapshot_is_isolated_from_later_writes() {
        let mut h = Harness::new();
        h.mk("/a", 0);
        h.mk("/a/b", 1);
        let snap = h.tree.snapshot();
        let before = bytes(&snap);
        h.res(set_data("/a/b", b"changed", -1)).unwrap();
        h.mk("/a/c", 0);
        h.res(delete("/a/c", -1)).unwrap();
        h.write(Request::CloseSession);
        assert_eq!(bytes(&snap), before);
        assert_eq!(snap.node_count(), 6);
        let old = DataTree::restore(&mut &before[..]).unwrap();
        assert_eq!(old.data("/a/b"), Some(bytes::Bytes::from_static(b"d")));
        assert_eq!(old.ephemerals().count(), 1);
        assert_eq!(old.sessions().count(), 1);
        assert_eq!(old.last_zxid(), snap.zxid());
        assert!(!h.tree.exists("/a/b"));
        // The live tree round-trips too.
        let now = bytes(&h.tree.snapshot());
        let restored = DataTree::restore(&mut &now[..]).unwrap();
        assert_eq!(restored.stat("/a"), h.tree.stat("/a"));
        assert_eq!(restored.node_count(), h.tree.node_count());
    }

    fn ephemerals_of(tree: &DataTree) -> Vec<String> {
        tree.ephemerals().flat_map(|(_, paths)| paths).collect()
    }

    /// A restored session lists its ephemerals in the order ZooKeeper's
    /// `deserialize` adds them, not the order they were created in. "/e0"
    /// and "/e17" share a bucket of the session's set, and the root's set
    /// lists "e17" first. OpenJDK 17 printed, for the same adds: the live
    /// session set `[/e0, /e17]`, the root's `[e17, e0, zookeeper]`, and the
    /// set `deserialize` rebuilds `[/e17, /e0]`.
    #[test]
    fn a_restored_session_lists_its_ephemerals_in_snapshot_order() {
        let mut h = Harness::new();
        h.mk("/e0", 1);
        h.mk("/e17", 1);
        assert_eq!(ephemerals_of(&h.tree), ["/e0", "/e17"]);
        let restored = DataTree::restore(&mut &bytes(&h.tree.snapshot())[..]).unwrap();
        assert_eq!(ephemerals_of(&restored), ["/e17", "/e0"]);
        // A second restart keeps the order: the restored sets are the ones
        // the next snapshot is listed from.
        let again = DataTree::restore(&mut &bytes(&restored.snapshot())[..]).unwrap();
        assert_eq!(ephemerals_of(&again), ["/e17", "/e0"]);
    }

    /// A deeper path goes by each component's rank among its siblings.
    #[test]
    fn snapshot_order_ranks_every_component() {
        let mut h = Harness::new();
        h.mk("/p", 0);
        h.mk("/e0", 1);
        h.mk("/p/e17", 1);
        let restored = DataTree::restore(&mut &bytes(&h.tree.snapshot())[..]).unwrap();
        let ranks = |t: &DataTree, p: &str| {
            let mut cache = HashMap::new();
            snapshot_position(t, &mut cache, p)
        };
        let root_order = restored.node("/").unwrap().children().in_java_order();
        let rank_of = |name: &str| root_order.iter().position(|c| c.name() == name).unwrap();
        assert_eq!(ranks(&restored, "/e0"), [rank_of("e0")]);
        assert_eq!(ranks(&restored, "/p/e17"), [rank_of("p"), 0]);
        assert_eq!(ranks(&restored, "/missing"), [usize::MAX]);
    }

    /// A hand-made snapshot stream: a header claiming `paths.len()` nodes.
    fn stream(paths: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        SnapshotHeader {
            zxid: 1,
            sessions: vec![],
            node_count: paths.len() as u64,
        }
        .encode_length_delimited(&mut out)
        .expect("Vec grows");
        for p in paths {
            Znode {
                path: (*p).into(),
                ..Default::default()
            }
            .encode_length_delimited(&mut out)
            .expect("Vec grows");
        }
        out
    }

    #[test]
    fn restore_rejects_orphans_and_duplicates() {
        let corrupt = |paths: &[&str]| {
            matches!(
                DataTree::restore(&mut &stream(paths)[..]),
                Err(SnapshotError::Corrupt(_))
            )
        };
        assert!(corrupt(&["/", "/a/b"]));
        assert!(corrupt(&["/", "/a", "/a"]));
        assert!(corrupt(&["/a"]));
        assert!(corrupt(&[]));
        assert!(corrupt(&["/", "/a/"]));
        let ok = stream(&["/", "/a", "/a/b"]);
        assert_eq!(DataTree::restore(&mut &ok[..]).unwrap().node_count(), 4);
    }
}
