//! The tree digest, computed as ZooKeeper computes it, so that two trees
//! — zab's and zab's, or zab's and ZooKeeper's — can be compared by one
//! number.
//!
//! ZooKeeper (3.6+, `zookeeper.digest.enabled`, on by default) keeps a
//! running sum over its znodes of a CRC-32 per node (`DigestCalculator`,
//! digest version 2): the node's path, its data, then 60 bytes of its
//! persisted stat (czxid, mzxid, pzxid, ctime, mtime, version, cversion,
//! aversion, ephemeralOwner, big-endian). The sum is a Java `long`, so it
//! wraps (`AdHash`). Nodes under `/zookeeper/` count 0, and `/` is hashed
//! as `""`, the alias ZooKeeper's map keeps the root under. A change to a
//! node takes its old CRC off the sum and adds the new one
//! (`NodeHashMapImpl.preChange`/`postChange`).
//!
//! ZooKeeper writes the digest after every txn into its txn log
//! (`TxnDigest`) and at the end of a snapshot (`ZxidDigest`), and keeps
//! the digest after every 128th zxid for the `hash` four-letter word
//! (`DataTree.logZxidDigest`). zab does the same arithmetic, so the digests
//! in a ZooKeeper data directory check a tree imported from it.

use std::collections::VecDeque;

use zab_wire::Zxid;

use crate::node::NodeMeta;
use crate::DataTree;

/// `DigestCalculator.DIGEST_VERSION`: the version of the arithmetic above,
/// written beside every digest ZooKeeper stores.
pub const DIGEST_VERSION: i32 = 2;

/// `DataTree.DIGEST_LOG_INTERVAL`: the digest log keeps the digest after
/// each zxid that is a multiple of this.
pub const DIGEST_LOG_INTERVAL: i64 = 128;

/// `DataTree.DIGEST_LOG_LIMIT`: how many entries the digest log keeps.
pub const DIGEST_LOG_LIMIT: usize = 1024;

/// The CRC a node adds to the tree's digest (`DigestCalculator.
/// calculateDigest`): 0 for the nodes under `/zookeeper/`, whose quota
/// stats each server rewrites on its own.
pub fn node_digest(path: &str, data: Option<&[u8]>, meta: &NodeMeta) -> i64 {
    if path.starts_with("/zookeeper/") {
        return 0;
    }
    let path = if path == "/" { "" } else { path };
    let mut stat = [0u8; 60];
    let fields = [
        &meta.czxid.to_be_bytes()[..],
        &meta.mzxid.to_be_bytes(),
        &meta.pzxid.to_be_bytes(),
        &meta.ctime.to_be_bytes(),
        &meta.mtime.to_be_bytes(),
        &meta.version.to_be_bytes(),
        &meta.cversion.to_be_bytes(),
        &meta.aversion.to_be_bytes(),
        &meta.ephemeral_owner.to_be_bytes(),
    ];
    let mut at = 0;
    for f in fields {
        stat[at..at + f.len()].copy_from_slice(f);
        at += f.len();
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(path.as_bytes());
    crc.update(data.unwrap_or_default());
    crc.update(&stat);
    i64::from(crc.finalize())
}

/// A tree's digest after a txn: what ZooKeeper's `ZxidDigest` holds (its
/// version is always [`DIGEST_VERSION`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZxidDigest {
    pub zxid: Zxid,
    pub digest: i64,
}

/// The digests after recent zxids that are multiples of
/// [`DIGEST_LOG_INTERVAL`], the newest [`DIGEST_LOG_LIMIT`] of them, in the
/// order they were applied: what `hash` prints.
#[derive(Debug, Clone, Default)]
pub struct DigestLog {
    entries: VecDeque<ZxidDigest>,
}

impl DigestLog {
    /// Records the digest after `zxid`, if the log keeps that zxid.
    pub(crate) fn record(&mut self, zxid: Zxid, digest: i64) {
        if zxid.0 % DIGEST_LOG_INTERVAL != 0 {
            return;
        }
        self.entries.push_back(ZxidDigest { zxid, digest });
        if self.entries.len() > DIGEST_LOG_LIMIT {
            self.entries.pop_front();
        }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &ZxidDigest> + '_ {
        self.entries.iter()
    }

    /// The digest recorded after `zxid`, if it is still kept.
    pub fn get(&self, zxid: Zxid) -> Option<i64> {
        // Applied in zxid order: the newest entries are at the back.
        self.entries
            .iter()
            .rev()
            .find(|e| e.zxid == zxid)
            .map(|e| e.digest)
    }

    /// The newest entry.
    pub fn newest(&self) -> Option<ZxidDigest> {
        self.entries.back().copied()
    }
}

/// A digest another replica reported (the leader's, in its PINGs) checked
/// against this tree's own after the same zxid, once this tree has
/// applied it. Each zxid is judged once, however often it is reported.
#[derive(Debug, Default)]
pub struct DigestComparison {
    /// Reported for a zxid this tree has not applied yet.
    pending: Option<ZxidDigest>,
    /// The last zxid judged.
    judged: Option<Zxid>,
}

/// What a comparison found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestVerdict {
    Match,
    /// The trees differ after `zxid`.
    Mismatch {
        zxid: Zxid,
        ours: i64,
        theirs: i64,
    },
}

impl DigestComparison {
    /// The other replica's tree had `theirs.digest` after `theirs.zxid`.
    /// `None` until this tree has applied that zxid, or when it keeps no
    /// digest for it (taken from a snapshot after it, or long past).
    pub fn reported(&mut self, theirs: ZxidDigest, tree: &DataTree) -> Option<DigestVerdict> {
        if self.judged >= Some(theirs.zxid) {
            return None;
        }
        if theirs.zxid > tree.last_zxid() {
            self.pending = Some(theirs);
            return None;
        }
        self.judge(theirs, tree)
    }

    /// After this tree applied more txns: judges a pending report whose
    /// zxid it has now reached.
    pub fn applied(&mut self, tree: &DataTree) -> Option<DigestVerdict> {
        let theirs = self.pending.filter(|p| p.zxid <= tree.last_zxid())?;
        self.pending = None;
        self.judge(theirs, tree)
    }

    fn judge(&mut self, theirs: ZxidDigest, tree: &DataTree) -> Option<DigestVerdict> {
        let ours = tree.digest_log().get(theirs.zxid)?;
        self.judged = Some(theirs.zxid);
        Some(match ours == theirs.digest {
            true => DigestVerdict::Match,
            false => DigestVerdict::Mismatch {
                zxid: theirs.zxid,
                ours,
                theirs: theirs.digest,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CRC-32 (IEEE, as `java.util.zip.CRC32`) over path ‖ data ‖ stat,
    /// written out by hand against the same bytes.
    #[test]
    fn a_node_digest_is_the_crc_of_path_data_and_the_persisted_stat() {
        let meta = NodeMeta {
            czxid: 0x1_0000_0002,
            mzxid: 0x1_0000_0003,
            ctime: 1_700_000_000_000,
            mtime: 1_700_000_000_500,
            version: 1,
            cversion: 4,
            aversion: 2,
            ephemeral_owner: 0x7f00_0000_0000_0001,
            pzxid: 0x1_0000_0009,
        };
        let mut bytes = b"/app/node".to_vec();
        bytes.extend_from_slice(b"value");
        for v in [meta.czxid, meta.mzxid, meta.pzxid, meta.ctime, meta.mtime] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        for v in [meta.version, meta.cversion, meta.aversion] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        bytes.extend_from_slice(&meta.ephemeral_owner.to_be_bytes());
        assert_eq!(bytes.len(), "/app/node".len() + 5 + 60);
        assert_eq!(
            node_digest("/app/node", Some(b"value"), &meta),
            i64::from(crc32fast::hash(&bytes))
        );
        // Null data and empty data hash alike, as `crc.update` skips null.
        assert_eq!(
            node_digest("/a", None, &meta),
            node_digest("/a", Some(b""), &meta)
        );
    }

    #[test]
    fn the_root_hashes_as_its_alias_and_zookeepers_subtree_as_nothing() {
        let meta = NodeMeta::default();
        let mut empty = vec![0u8; 60];
        assert_eq!(
            node_digest("/", Some(b""), &meta),
            i64::from(crc32fast::hash(&empty))
        );
        empty.splice(0..0, b"/zookeeper".iter().copied());
        assert_eq!(
            node_digest("/zookeeper", Some(b""), &meta),
            i64::from(crc32fast::hash(&empty)),
            "/zookeeper itself counts"
        );
        assert_eq!(node_digest("/zookeeper/quota", Some(b"x"), &meta), 0);
        assert_eq!(node_digest("/zookeeper/config", None, &meta), 0);
    }

    #[test]
    fn the_log_keeps_every_128th_zxid_and_the_newest_1024() {
        let mut log = DigestLog::default();
        for z in 1..=(DIGEST_LOG_INTERVAL * (DIGEST_LOG_LIMIT as i64 + 10)) {
            log.record(Zxid(z), z * 3);
        }
        assert_eq!(log.iter().count(), DIGEST_LOG_LIMIT);
        let first = log.iter().next().unwrap();
        assert_eq!(first.zxid, Zxid(DIGEST_LOG_INTERVAL * 11));
        assert_eq!(
            log.get(Zxid(DIGEST_LOG_INTERVAL * 11)),
            Some(DIGEST_LOG_INTERVAL * 33)
        );
        assert_eq!(log.get(Zxid(DIGEST_LOG_INTERVAL * 10)), None, "dropped");
        assert_eq!(
            log.get(Zxid(DIGEST_LOG_INTERVAL * 11 + 1)),
            None,
            "never kept"
        );
        assert_eq!(
            log.newest().map(|e| e.zxid),
            Some(Zxid(DIGEST_LOG_INTERVAL * (DIGEST_LOG_LIMIT as i64 + 10)))
        );
    }

    /// A tree that applied creates of /n1 … /n`upto` at zxids 1 … `upto`.
    fn tree_upto(upto: i64, from: DataTree) -> DataTree {
        use zab_wire::proto::{txn_body::Op, CreateTxn, Txn, TxnBody};
        let mut t = from;
        for z in t.last_zxid().0 + 1..=upto {
            t.apply(&Txn {
                zxid: z,
                body: Some(TxnBody {
                    op: Some(Op::Create(CreateTxn {
                        path: format!("/n{z}"),
                        op: 1,
                        parent_cversion: -1,
                        ..Default::default()
                    })),
                }),
                ..Default::default()
            });
        }
        t
    }

    /// The leader reports its digest after 128 before this replica got
    /// there: judged once it does, once only, and a different digest is a
    /// mismatch.
    #[test]
    fn a_reported_digest_is_judged_once_the_tree_reaches_its_zxid() {
        let leader = tree_upto(200, DataTree::new());
        let at_128 = ZxidDigest {
            zxid: Zxid(128),
            digest: leader.digest_log().get(Zxid(128)).unwrap(),
        };
        let mut c = DigestComparison::default();
        let behind = tree_upto(100, DataTree::new());
        assert_eq!(c.reported(at_128, &behind), None, "not there yet");
        assert_eq!(c.applied(&behind), None);
        let caught_up = tree_upto(130, behind);
        assert_eq!(c.applied(&caught_up), Some(DigestVerdict::Match));
        assert_eq!(c.applied(&caught_up), None, "judged once");
        assert_eq!(c.reported(at_128, &caught_up), None, "reported again");

        let wrong = ZxidDigest {
            zxid: Zxid(256),
            digest: 42,
        };
        let further = tree_upto(300, caught_up);
        let ours = further.digest_log().get(Zxid(256)).unwrap();
        assert_eq!(
            c.reported(wrong, &further),
            Some(DigestVerdict::Mismatch {
                zxid: Zxid(256),
                ours,
                theirs: 42
            })
        );
        // A zxid this tree keeps no digest for says nothing.
        let unkept = ZxidDigest {
            zxid: Zxid(300),
            digest: 1,
        };
        assert_eq!(c.reported(unkept, &further), None);
    }
}

#[cfg(test)]
mod properties {
    use bytes::Bytes;
    use proptest::prelude::*;
    use zab_wire::jute::{Acl, CreateRequest, DeleteRequest, MultiOp, Request, SetDataRequest};

    use crate::testkit::{create, create_op, delete, set_acl, set_data, Harness, S2};
    use crate::DataTree;

    const PATHS: &[&str] = &["/a", "/a/b", "/a/b/c", "/a/d", "/e", "/zookeeper/quota/a"];

    /// A write of any kind a client can make, by either of two sessions.
    fn write() -> impl Strategy<Value = (bool, Request)> {
        let path = prop::sample::select(PATHS);
        let data = prop::option::of(prop::collection::vec(any::<u8>(), 0..8));
        // Persistent, ephemeral, sequential, ephemeral sequential, container.
        let flags = prop::sample::select(&[0, 1, 2, 3, 4][..]);
        let req = prop_oneof![
            4 => (path.clone(), data.clone(), flags)
                .prop_map(|(p, d, f)| create_op(if f == 4 { 19 } else { 1 }, p, d.as_deref(), f, Acl::open_unsafe())),
            2 => path.clone().prop_map(|p| delete(p, -1)),
            3 => (path.clone(), data).prop_map(|(p, d)| set_data(p, &d.unwrap_or_default(), -1)),
            1 => path.clone().prop_map(|p| set_acl(p, Acl::read_unsafe(), -1)),
            1 => (path.clone(), path).prop_map(|(p, q)| Request::Multi(vec![
                MultiOp::Create { op: 1, req: CreateRequest {
                    path: p.into(), data: Some(Bytes::from_static(b"m")),
                    acl: Some(Acl::open_unsafe()), flags: 0 } },
                MultiOp::SetData(SetDataRequest { path: q.into(), data: None, version: -1 }),
                MultiOp::Delete(DeleteRequest { path: p.into(), version: -1 }),
            ])),
            1 => Just(Request::CloseSession),
        ];
        (any::<bool>(), req)
    }

    fn restored(t: &DataTree) -> DataTree {
        let mut out = Vec::new();
        t.snapshot().write_to(&mut out).expect("write to a Vec");
        DataTree::restore(&mut &out[..]).expect("restores")
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// The digest kept change by change is the digest counted afresh
        /// over the nodes (a restore), and a replica that applies the same
        /// txns keeps the same digest and the same digest log.
        #[test]
        fn the_kept_digest_is_a_recount_and_replicas_agree(
            writes in prop::collection::vec(write(), 0..60),
        ) {
            let mut h = Harness::new();
            h.open_session(S2, 30_000);
            let _ = h.write(create("/a", Some(b"x"), 0));
            for (second, w) in writes {
                let session = if second { S2 } else { h.session };
                let _ = h.write_as(session, w);
                prop_assert_eq!(h.tree.digest(), restored(&h.tree).digest());
            }
            let mut replica = DataTree::new();
            for txn in &h.log {
                replica.apply(txn);
            }
            prop_assert_eq!(replica.digest(), h.tree.digest());
            let log: Vec<_> = h.tree.digest_log().iter().copied().collect();
            let replica_log: Vec<_> = replica.digest_log().iter().copied().collect();
            prop_assert_eq!(log, replica_log);
        }
    }
}
