//! The data tree: znodes, ephemerals and the replicated sessions table, with
//! the deterministic `apply` of committed txns and the local reads
//! (reference D.2 reads, D.3, D.4, D.5 triggers, D.7).
//!
//! Representation: a persistent trie. Each node owns its children as
//! shared handles ([`crate::node`]: one block per node holding its name, meta
//! and data), sorted by the child's own name in shared chunks; no full path
//! is stored anywhere. A lookup walks the path's components; a write copies
//! only the nodes (and chunks of children) on the path to its target that a
//! snapshot still shares, so [`DataTree::snapshot`] is O(1) (one clone of
//! the root's handle). ACL lists are interned ([`crate::acl`]).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use zab_wire::jute::{
    event_type, op, perms, Acl, Create2Response, CreateResponse, ErrorCode, GetAclResponse,
    GetAllChildrenNumberResponse, GetChildren2Response, GetDataResponse, MultiOp, MultiResponse,
    MultiResult, PathWatchRequest, Request, Response, Stat, StatResponse, StringListResponse,
};
use zab_wire::proto::{self, txn_body::Op as TxnOp};
use zab_wire::{SessionId, Zxid};

use crate::acl::{self, AclCache, AclList, AuthInfo};
use crate::digest::{self, DigestLog};
use crate::java_hash_set::JavaHashSet;
use crate::node::{Node, NodeMeta, Owner};
use crate::path;
use crate::quota::{self, QuotaPaths, StatsTrack};
use crate::WatchEvent;

/// The outcome of applying one committed txn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub zxid: Zxid,
    pub session_id: SessionId,
    pub cxid: i32,
    /// The reply for the originating session: `Create`/`Create2` for
    /// creates, `Stat` for setData/setACL, `Empty` for delete and session
    /// txns, `Multi` for multi (always Ok, per-op results inside, behaviour
    /// 46), `Err(code)` for an error txn.
    pub result: Result<Response, ErrorCode>,
    /// Watch triggers in order (D.5; multi sub-ops in order, D.6).
    pub events: Vec<WatchEvent>,
    /// The ACL each of `events` is delivered under, index for index (empty
    /// from [`DataTree::apply_with`] without ACLs): the changed, created or
    /// deleted node's, or for NodeChildrenChanged the parent's. A watcher
    /// without READ on it is not told (ZooKeeper ≥ 3.8.4 and 3.9.2,
    /// `ServerCnxn.process`, CVE-2024-23944).
    pub event_acls: Vec<AclList>,
    /// Set by closeSession txns, so the server drops that connection.
    pub closed_session: Option<SessionId>,
}

/// The most bytes a multiRead answers with unless its caller says
/// otherwise: 32 × ZooKeeper's default `jute.maxbuffer`, far above what
/// ZooKeeper's Java client takes in one answer.
pub const MULTI_READ_MAX_BYTES: usize = 32 << 20;

/// Why [`DataTree::multi_read`] stopped short of answering every op.
#[derive(Debug, Clone, PartialEq)]
pub enum MultiReadStop {
    /// A write op, with the results before it (answered as the body of a
    /// MARSHALLINGERROR reply).
    Write(MultiResponse),
    /// The answer would pass the byte limit: `bytes` so far.
    TooLarge { bytes: usize },
}

/// ZooKeeper's `DataTree` plus its sessions table.
#[derive(Debug, Clone)]
pub struct DataTree {
    pub(crate) root: Node,
    /// Number of znodes (the root once).
    pub(crate) count: usize,
    /// Each session's ephemerals, in the `HashSet` ZooKeeper keeps them
    /// in, whose order its closeSession txns, `getEphemerals` and `dump`
    /// show.
    pub(crate) ephemerals: BTreeMap<SessionId, JavaHashSet>,
    pub(crate) sessions: BTreeMap<SessionId, i32>,
    pub(crate) last_zxid: Zxid,
    /// Σ (path length + data length), as `zk_approximate_data_size`.
    pub(crate) data_size: u64,
    pub(crate) acl_cache: AclCache,
    /// The paths with a quota (ZooKeeper's `pTrie`), rebuilt on restore.
    pub(crate) quotas: QuotaPaths,
    /// The containers and TTL nodes (ZooKeeper's `containers` and `ttls`),
    /// so the reaper looks at these alone, not at every node.
    pub(crate) reapers: BTreeSet<String>,
    /// Σ of every node's [`digest::node_digest`], wrapping, as ZooKeeper's
    /// `NodeHashMapImpl` keeps it.
    pub(crate) digest: i64,
    /// The digest after recent zxids, for `hash` and for comparing trees.
    pub(crate) digest_log: DigestLog,
    skip_acl: bool,
    providers: acl::Providers,
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

/// Converts a jute ACL list to the txn (protobuf) form.
pub fn acl_to_proto(acl: &[Acl]) -> Vec<proto::Acl> {
    acl.iter()
        .map(|a| proto::Acl {
            perms: a.perms,
            id: Some(proto::Id {
                scheme: a.id.scheme.clone(),
                id: a.id.id.clone(),
            }),
        })
        .collect()
}

/// Converts a txn (protobuf) ACL list to the jute form.
pub fn acl_from_proto(acl: &[proto::Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            let (scheme, id) =
                a.id.as_ref()
                    .map_or(("", ""), |i| (i.scheme.as_str(), i.id.as_str()));
            Acl {
                perms: a.perms,
                id: zab_wire::jute::Id::new(scheme, id),
            }
        })
        .collect()
}

/// The watch triggers of one txn, each with the ACL it is delivered under.
#[derive(Default)]
struct Triggers {
    events: Vec<WatchEvent>,
    acls: Vec<AclList>,
    /// Whether the caller wants the ACLs (see [`DataTree::apply_with`]).
    with_acls: bool,
}

impl Triggers {
    /// `acl` is `Some` exactly when `with_acls` is set.
    fn push(&mut self, event_type: i32, path: &str, acl: Option<AclList>) {
        self.events.push(WatchEvent {
            event_type,
            path: path.to_owned(),
        });
        self.acls.extend(acl);
    }

    /// `acl`, cloned, if the caller wants ACLs.
    fn keep(&self, acl: &AclList) -> Option<AclList> {
        self.with_acls.then(|| acl.clone())
    }
}

impl DataTree {
    /// A fresh tree with the built-in nodes `/`, `/zookeeper`,
    /// `/zookeeper/quota` and `/zookeeper/config` (reference D.3): all Stat
    /// fields 0, empty (not null) data, OPEN ACL except `/zookeeper/config`
    /// which is `[READ world:anyone]` with aversion -1.
    pub fn new() -> DataTree {
        let mut t = DataTree {
            root: Node::default(),
            count: 0,
            ephemerals: BTreeMap::new(),
            sessions: BTreeMap::new(),
            last_zxid: Zxid::ZERO,
            data_size: 0,
            acl_cache: AclCache::default(),
            quotas: QuotaPaths::default(),
            reapers: BTreeSet::new(),
            digest: 0,
            digest_log: DigestLog::default(),
            skip_acl: false,
            providers: acl::Providers::default(),
        };
        let open = t.acl_cache.intern(&Acl::open_unsafe());
        let read = t.acl_cache.intern(&Acl::read_unsafe());
        let builtin = |acl: AclList, aversion| {
            (
                Some(&[][..]),
                acl,
                NodeMeta {
                    aversion,
                    ..NodeMeta::default()
                },
            )
        };
        for (p, (data, acl, meta)) in [
            (path::ROOT, builtin(open.clone(), 0)),
            (path::ZOOKEEPER, builtin(open.clone(), 0)),
            (path::QUOTA, builtin(open, 0)),
            (path::CONFIG, builtin(read, -1)),
        ] {
            t.insert_node(p, data, acl, meta);
        }
        t
    }

    /// Inserts a node at `p` and links it into its parent (no stat changes).
    pub(crate) fn insert_node(
        &mut self,
        p: &str,
        data: Option<&[u8]>,
        acl: AclList,
        meta: NodeMeta,
    ) {
        self.data_size += (p.len() + data.map_or(0, <[u8]>::len)) as u64;
        if let Some(owner) = Owner::session(meta.ephemeral_owner) {
            self.ephemerals.entry(owner).or_default().insert(p);
        }
        if is_reaped(meta.ephemeral_owner) {
            self.reapers.insert(p.to_owned());
        }
        let added = digest::node_digest(p, data, &meta);
        if p == path::ROOT {
            let old = std::mem::replace(&mut self.root, Node::new("", data, acl, meta));
            // A tree being built has no root counted yet.
            match self.count {
                0 => self.count = 1,
                _ => self.digest = self.digest.wrapping_sub(old.digest(p)),
            }
            self.digest = self.digest.wrapping_add(added);
            return;
        }
        if let Some((parent, name)) = path::split(p) {
            if let Ok(parent) = self.node_mut(parent) {
                let old = parent
                    .children_mut()
                    .insert(Node::new(name, data, acl, meta));
                let removed = old.as_ref().map_or(0, |old| old.digest(p));
                if old.is_none() {
                    self.count += 1;
                }
                self.digest = self.digest.wrapping_add(added).wrapping_sub(removed);
            }
        }
    }

    /// How reads and watch events check ACLs: not at all
    /// (`zookeeper.skipACL=yes`), and which providers' entries can match.
    pub fn set_acl_checks(&mut self, skip_acl: bool, providers: acl::Providers) {
        self.skip_acl = skip_acl;
        self.providers = providers;
    }

    /// Sets `/zookeeper/config` to the membership text (quorum mode shows it
    /// with version -1, reference D.3). Local, not a txn. As ZooKeeper's
    /// `ZKDatabase.initConfigInZKDatabase`, the node's mzxid is the
    /// membership's version (`version=` of the text; 0 for a static
    /// zoo.cfg) and its mtime the time it was set.
    pub fn set_config(&mut self, data: Bytes, membership_version: i64, now_ms: i64) {
        let Ok(n) = self.node_mut(path::CONFIG) else {
            return;
        };
        let old = n.data_len() as u64;
        let meta = NodeMeta {
            version: -1,
            mzxid: membership_version,
            mtime: now_ms,
            ..n.meta()
        };
        n.set_data_and_meta(Some(&data[..]), &meta);
        // Saturating, as every subtraction from it: quota stats rewritten
        // in place leave it short, as ZooKeeper's `nodeDataSize` is.
        self.data_size = self.data_size.saturating_sub(old) + data.len() as u64;
    }

    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    pub fn stat(&self, p: &str) -> Option<Stat> {
        self.node(p).map(|n| n.stat())
    }

    pub fn acl(&self, p: &str) -> Option<&[Acl]> {
        self.node(p).map(|n| &n.acl()[..])
    }

    /// The node's data (`None` for null data or a missing node).
    pub fn data(&self, p: &str) -> Option<Bytes> {
        self.node(p).and_then(|n| n.data_bytes())
    }

    pub fn exists(&self, p: &str) -> bool {
        self.node(p).is_some()
    }

    /// Child names of `p`, sorted.
    pub fn children(&self, p: &str) -> Option<Vec<String>> {
        self.node(p)
            .map(|n| n.children().keys().map(|c| c.to_string()).collect())
    }

    /// Walks `p`'s components from the root. Malformed paths (relative,
    /// empty components, trailing `/`) name no node.
    /// The node at `p`. ZooKeeper's `DataTree` keeps the root under "" as
    /// well as "/", and looks paths up without validating them (reads,
    /// setWatches), so "" finds the root here too (checked on 3.8.0);
    /// writes validate their paths before they look anything up.
    pub(crate) fn node(&self, p: &str) -> Option<&Node> {
        if p.is_empty() {
            return Some(&self.root);
        }
        let rest = p.strip_prefix('/')?;
        let mut cur = &self.root;
        if rest.is_empty() {
            return Some(cur);
        }
        for name in rest.split('/') {
            cur = cur.children().get(name)?;
        }
        Some(cur)
    }

    /// The node at `p` for writing: nodes on the way that a snapshot still
    /// shares are copied as the walk goes through them (copy-on-write), the
    /// node itself when it is written to.
    ///
    /// One search per level: the walk first finds each component's position
    /// with shared borrows (so a miss copies nothing), then descends by
    /// those positions.
    pub(crate) fn node_mut(&mut self, p: &str) -> Result<&mut Node, ErrorCode> {
        let rest = p.strip_prefix('/').ok_or(ErrorCode::NoNode)?;
        if rest.is_empty() {
            return Ok(&mut self.root);
        }
        // Positions on the stack for paths up to `SHALLOW` deep.
        const SHALLOW: usize = 16;
        let mut shallow = [(0, 0); SHALLOW];
        let mut deep = Vec::new();
        let mut depth = 0;
        let mut cur = &self.root;
        for name in rest.split('/') {
            let pos = cur.children().position(name).ok_or(ErrorCode::NoNode)?;
            match shallow.get_mut(depth) {
                Some(slot) => *slot = pos,
                None => deep.push(pos),
            }
            depth += 1;
            cur = cur.children().at(pos).ok_or(ErrorCode::NoNode)?;
        }
        let mut cur = &mut self.root;
        for &pos in shallow.iter().take(depth).chain(&deep) {
            cur = cur.children_mut().at_mut(pos).ok_or(ErrorCode::NoNode)?;
        }
        Ok(cur)
    }

    /// As `srvr`/`mntr` report it: the root is counted twice (ZooKeeper
    /// stores it under `""` and `/`), so a fresh tree has 5 (reference D.3).
    pub fn node_count(&self) -> usize {
        self.count + 1
    }

    pub fn approximate_data_size(&self) -> u64 {
        self.data_size
    }

    /// Session ephemerals by owner, for `dump`: each session's in the
    /// order of the copy ZooKeeper's `getEphemerals` makes of its set.
    pub fn ephemerals(&self) -> impl Iterator<Item = (SessionId, Vec<String>)> + '_ {
        self.ephemerals.iter().map(|(s, paths)| {
            let copy = paths.java_clone();
            (*s, copy.iter().map(str::to_owned).collect())
        })
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    pub(crate) fn ephemerals_of(&self, s: SessionId) -> Option<&JavaHashSet> {
        self.ephemerals.get(&s)
    }

    /// The replicated sessions table (createSession / closeSession txns).
    pub fn sessions(&self) -> impl Iterator<Item = (SessionId, i32)> + '_ {
        self.sessions.iter().map(|(s, t)| (*s, *t))
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub fn session_timeout(&self, id: SessionId) -> Option<i32> {
        self.sessions.get(&id).copied()
    }

    /// Paths the container/TTL reaper should delete (reference D.4,
    /// behaviours 21–22): childless containers and TTL nodes that are due
    /// (see `is_due` below; `never_used_ms` is
    /// `znode.container.maxNeverUsedIntervalMs`).
    ///
    /// In the order ZooKeeper's `ContainerManager.checkContainers` deletes
    /// them: `getCandidates` adds the containers, then the TTL nodes, to a
    /// `HashSet` and the deletes follow its order. It takes each kind from
    /// a `ConcurrentHashMap` key set; here a kind's paths go in creation
    /// order, which is that set's order within one of its bins until it
    /// resizes, so two candidates that share a bucket may come in the
    /// other order in ZooKeeper.
    pub fn reapable(&self, now_ms: i64, never_used_ms: i64) -> Vec<String> {
        let mut due: Vec<(bool, i64, &str)> = self
            .reapers
            .iter()
            .filter_map(|p| {
                let n = self.node(p)?;
                let meta = n.meta();
                let ttl = matches!(Owner::of(meta.ephemeral_owner), Owner::Ttl(_));
                is_reapable(n, now_ms, never_used_ms).then_some((ttl, meta.czxid, p.as_str()))
            })
            .collect();
        due.sort_unstable();
        let mut candidates = JavaHashSet::default();
        for (_, _, p) in due {
            candidates.insert(p);
        }
        candidates.iter().map(str::to_owned).collect()
    }

    fn allowed(&self, acl: &[Acl], perm: i32, auth: &AuthInfo) -> bool {
        self.skip_acl || acl::check_acl(acl, perm, auth, self.providers)
    }

    /// Whether a connection with `auth` may be told of a change under
    /// `acl` (READ, as `ServerCnxn.process` checks before it sends an event).
    pub fn may_read(&self, acl: &[Acl], auth: &AuthInfo) -> bool {
        self.allowed(acl, perms::READ, auth)
    }

    // ------------------------------------------------------------ reads

    /// Answers a read from the local tree (reference D.2, reads). Paths are
    /// not validated: a malformed path is simply NoNode (D.1), except that
    /// `exists` refuses an embedded NUL with BadArguments. Watches are not
    /// registered here.
    pub fn read(
        &self,
        req: &Request,
        session: SessionId,
        auth: &AuthInfo,
    ) -> Result<Response, ErrorCode> {
        match req {
            Request::Exists(r) => {
                if r.path.contains('\0') {
                    return Err(ErrorCode::BadArguments);
                }
                let n = self.node(&r.path).ok_or(ErrorCode::NoNode)?;
                // A node's Stat only for a caller that may READ it, as
                // ZooKeeper checks since 3.8.4 and 3.9.2 (ZOOKEEPER-2590;
                // 3.8.0 told anyone, behaviour 42). A missing node is
                // still NoNode, and its watch is still set.
                if !self.allowed(n.acl(), perms::READ, auth) {
                    return Err(ErrorCode::NoAuth);
                }
                Ok(Response::Stat(StatResponse { stat: n.stat() }))
            }
            Request::GetData(r) => self.get_data(r, auth).map(Response::GetData),
            Request::GetChildren(r) => self
                .get_children(r, auth)
                .map(|(items, _)| Response::StringList(StringListResponse { items })),
            Request::GetChildren2(r) => self.get_children(r, auth).map(|(children, stat)| {
                Response::GetChildren2(GetChildren2Response { children, stat })
            }),
            Request::GetAcl(r) => {
                let n = self.node(&r.path).ok_or(ErrorCode::NoNode)?;
                // Behaviour 43: READ or ADMIN; digest ids redacted without ADMIN.
                if !self.allowed(n.acl(), acl::READ_OR_ADMIN, auth) {
                    return Err(ErrorCode::NoAuth);
                }
                let acl = if self.allowed(n.acl(), perms::ADMIN, auth) {
                    n.acl().to_vec()
                } else {
                    acl::redact(n.acl())
                };
                Ok(Response::GetAcl(GetAclResponse {
                    acl,
                    stat: n.stat(),
                }))
            }
            Request::GetAllChildrenNumber(r) => {
                let n = self.node(&r.path).ok_or(ErrorCode::NoNode)?;
                if !self.allowed(n.acl(), perms::READ, auth) {
                    return Err(ErrorCode::NoAuth);
                }
                // ZooKeeper counts the keys under `path + "/"`: for "" that
                // is every node but the root's "" key, "/" included.
                let total = match r.path.as_str() {
                    "" => self.count_descendants(path::ROOT) + 1,
                    p => self.count_descendants(p),
                };
                Ok(Response::GetAllChildrenNumber(
                    GetAllChildrenNumberResponse {
                        total_number: total.min(i32::MAX as usize) as i32,
                    },
                ))
            }
            Request::GetEphemerals(r) => {
                // Plain string prefix; empty or "/" means all (reference
                // D.2), once trimmed as Java's `String.trim` does (every
                // char up to U+0020), as `FinalRequestProcessor` compares it.
                let trimmed = r.path.trim_matches(|c: char| c <= ' ');
                let prefix = if trimmed.is_empty() || trimmed == path::ROOT {
                    ""
                } else {
                    r.path.as_str()
                };
                // In the order of the set's copy (`DataTree.getEphemerals`).
                let items = self
                    .ephemerals
                    .get(&session)
                    .map(|set| {
                        set.java_clone()
                            .iter()
                            .filter(|p| p.starts_with(prefix))
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(Response::StringList(StringListResponse { items }))
            }
            Request::MultiRead(ops) => self
                .multi_read(ops, auth, MULTI_READ_MAX_BYTES)
                .map(Response::Multi)
                .map_err(|_| ErrorCode::MarshallingError),
            _ => Err(ErrorCode::Unimplemented),
        }
    }

    /// multiRead: each op answers on its own, and a failure does not stop
    /// the rest. A write op stops it: [`MultiReadStop::Write`] holds the
    /// results before it, which ZooKeeper sends as the body of its
    /// MARSHALLINGERROR reply (`FinalRequestProcessor` throws from inside
    /// the loop). The decoder lets writes through only when every op is
    /// one, so that body is an empty `MultiResponse` (checked on 3.8.0).
    ///
    /// An answer past `max_bytes` stops it too ([`MultiReadStop::TooLarge`]):
    /// one request of a few thousand getData ops on a large node would
    /// otherwise copy gigabytes. ZooKeeper has no such limit and runs out
    /// of heap instead; its Java client refuses any answer above its own
    /// `jute.maxbuffer` (1 MiB) anyway.
    pub fn multi_read(
        &self,
        ops: &[MultiOp],
        auth: &AuthInfo,
        max_bytes: usize,
    ) -> Result<MultiResponse, MultiReadStop> {
        // A result's header (type, done, err) and a GetData's Stat and
        // length prefix: what each result adds beside its data.
        const RESULT_BYTES: usize = 9;
        const STAT_BYTES: usize = 68;
        let mut results = Vec::with_capacity(ops.len().min(1024));
        let mut bytes = 0usize;
        for o in ops {
            let result = match o {
                MultiOp::GetData(r) => match self.get_data(r, auth) {
                    Ok(d) => {
                        bytes += 4 + STAT_BYTES + d.data.as_ref().map_or(0, Bytes::len);
                        MultiResult::GetData(d)
                    }
                    Err(e) => MultiResult::Error(e.code()),
                },
                MultiOp::GetChildren(r) => match self.get_children(r, auth) {
                    Ok((items, _)) => {
                        bytes += 4 + items.iter().map(|c| 4 + c.len()).sum::<usize>();
                        MultiResult::GetChildren(StringListResponse { items })
                    }
                    Err(e) => MultiResult::Error(e.code()),
                },
                _ => return Err(MultiReadStop::Write(MultiResponse { results })),
            };
            bytes += RESULT_BYTES;
            if bytes > max_bytes {
                return Err(MultiReadStop::TooLarge { bytes });
            }
            results.push(result);
        }
        Ok(MultiResponse { results })
    }

    fn get_data(
        &self,
        r: &PathWatchRequest,
        auth: &AuthInfo,
    ) -> Result<GetDataResponse, ErrorCode> {
        let n = self.node(&r.path).ok_or(ErrorCode::NoNode)?;
        if !self.allowed(n.acl(), perms::READ, auth) {
            return Err(ErrorCode::NoAuth);
        }
        let (data, stat) = n.data_and_stat();
        Ok(GetDataResponse {
            data: data.map(Bytes::copy_from_slice),
            stat,
        })
    }

    fn get_children(
        &self,
        r: &PathWatchRequest,
        auth: &AuthInfo,
    ) -> Result<(Vec<String>, Stat), ErrorCode> {
        let n = self.node(&r.path).ok_or(ErrorCode::NoNode)?;
        if !self.allowed(n.acl(), perms::READ, auth) {
            return Err(ErrorCode::NoAuth);
        }
        // In ZooKeeper's order, not ours: clients see it (kazoo and the C
        // client hand it on as it came).
        let children = n.children().in_java_order();
        Ok((
            children.iter().map(|c| c.name().to_string()).collect(),
            n.stat(),
        ))
    }

    fn count_descendants(&self, p: &str) -> usize {
        // Every node but the root: counted, not walked, as ZooKeeper's
        // `getAllChildrenNumber` answers "/" from its map's size.
        if p == path::ROOT {
            return self.count - 1;
        }
        let mut total = 0;
        let mut stack: Vec<&Node> = self.node(p).into_iter().collect();
        while let Some(n) = stack.pop() {
            total += n.children().len();
            stack.extend(n.children().values());
        }
        total
    }

    // ------------------------------------------------------------ apply

    /// Applies a committed txn. Deterministic: the same txns in the same
    /// order give the same tree on every server and on replay.
    pub fn apply(&mut self, txn: &proto::Txn) -> Applied {
        self.apply_with(txn, true)
    }

    /// [`DataTree::apply`], leaving `Applied::event_acls` empty unless
    /// `event_acls` is set: a server with no watch at all has no event to
    /// deliver, and need not clone an ACL per event.
    pub fn apply_with(&mut self, txn: &proto::Txn, event_acls: bool) -> Applied {
        let zxid = Zxid(txn.zxid);
        let session = SessionId(txn.session_id);
        let mut events = Triggers {
            with_acls: event_acls,
            ..Triggers::default()
        };
        let mut closed_session = None;
        let result = match txn.body.as_ref().and_then(|b| b.op.as_ref()) {
            Some(TxnOp::CreateSession(cs)) => {
                self.sessions.insert(session, cs.timeout);
                Ok(Response::Empty)
            }
            Some(TxnOp::CloseSession(cs)) => {
                self.close_session(session, &cs.paths_to_delete, txn, &mut events);
                closed_session = Some(session);
                Ok(Response::Empty)
            }
            Some(TxnOp::Multi(m)) => Ok(Response::Multi(self.apply_multi(m, txn, &mut events))),
            Some(TxnOp::Error(e)) => {
                Err(ErrorCode::from_code(e.err).unwrap_or(ErrorCode::SystemError))
            }
            Some(other) => self.apply_op(other, txn, &mut events).map(|r| match r {
                MultiResult::Create(c) => Response::Create(c),
                MultiResult::Create2(c) => Response::Create2(c),
                MultiResult::SetData(s) => Response::Stat(s),
                _ => Response::Empty,
            }),
            None => Err(ErrorCode::MarshallingError),
        };
        if zxid > self.last_zxid {
            self.last_zxid = zxid;
        }
        // After every whole txn, as `DataTree.processTxn` logs it.
        self.digest_log.record(zxid, self.digest);
        Applied {
            zxid,
            session_id: session,
            cxid: txn.cxid,
            result,
            events: events.events,
            event_acls: events.acls,
            closed_session,
        }
    }

    /// One non-multi, non-session op; the result is expressed as the multi
    /// result it would produce (the caller maps it to a `Response`).
    /// [`DataTree::apply_single`], and as `DataTree.processTxn` does after
    /// it: a plain create replayed over a fuzzy snapshot that already holds
    /// its node (deleted and created again while the snapshot was written)
    /// still moves its parent's cversion and pzxid. Live, a create never
    /// meets its node: it was prepared against this tree.
    fn apply_op(
        &mut self,
        op_: &TxnOp,
        txn: &proto::Txn,
        events: &mut Triggers,
    ) -> Result<MultiResult, ErrorCode> {
        let result = self.apply_single(op_, txn, events);
        if let (TxnOp::Create(c), Err(ErrorCode::NodeExists)) = (op_, &result) {
            if c.op == op::CREATE {
                if let Some((parent, _)) = path::split(&c.path) {
                    self.set_cversion_pzxid(parent, c.parent_cversion, txn.zxid);
                }
            }
        }
        result
    }

    fn apply_single(
        &mut self,
        op_: &TxnOp,
        txn: &proto::Txn,
        events: &mut Triggers,
    ) -> Result<MultiResult, ErrorCode> {
        match op_ {
            TxnOp::Create(c) => {
                let stat = self.create_node(c, txn.zxid, txn.time, events)?;
                Ok(if c.op == op::CREATE {
                    MultiResult::Create(CreateResponse {
                        path: c.path.clone(),
                    })
                } else {
                    MultiResult::Create2(Create2Response {
                        path: c.path.clone(),
                        stat,
                    })
                })
            }
            TxnOp::Delete(d) => {
                self.delete_node(&d.path, txn.zxid, events)?;
                Ok(MultiResult::Delete)
            }
            TxnOp::SetData(s) => {
                let n = self.node_mut(&s.path)?;
                let (meta, data) = n.meta_and_data();
                let old = data.map_or(0, <[u8]>::len) as u64;
                let old_digest = digest::node_digest(&s.path, data, &meta);
                let meta = NodeMeta {
                    version: s.version,
                    mzxid: txn.zxid,
                    mtime: txn.time,
                    ..meta
                };
                // Copy: the txn's Bytes may share a whole network/log buffer.
                n.set_data_and_meta(s.data.as_deref(), &meta);
                let new = s.data.as_ref().map_or(0, |d| d.len());
                let stat = meta.client_stat(new, n.children().len());
                events.push(event_type::NODE_DATA_CHANGED, &s.path, events.keep(n.acl()));
                let new_digest = digest::node_digest(&s.path, s.data.as_deref(), &meta);
                self.move_digest(old_digest, new_digest);
                let new = new as u64;
                self.data_size = self.data_size.saturating_sub(old) + new;
                self.count_quota_usage(&s.path, new as i64 - old as i64, 0);
                Ok(MultiResult::SetData(StatResponse { stat }))
            }
            TxnOp::SetAcl(s) => {
                let acl = self.acl_cache.intern(&acl_from_proto(&s.acl));
                let n = self.node_mut(&s.path)?;
                let old_digest = n.digest(&s.path);
                // Behaviour 5: only aversion changes; no watch fires (D.5).
                n.set_acl(acl);
                n.update_meta(|m| m.aversion = s.version);
                let (stat, new_digest) = (n.stat(), n.digest(&s.path));
                self.move_digest(old_digest, new_digest);
                Ok(MultiResult::SetData(StatResponse { stat }))
            }
            TxnOp::Check(c) => {
                if self.exists(&c.path) {
                    Ok(MultiResult::Check)
                } else {
                    Err(ErrorCode::NoNode)
                }
            }
            TxnOp::Error(e) => Err(ErrorCode::from_code(e.err).unwrap_or(ErrorCode::SystemError)),
            TxnOp::CreateSession(_) | TxnOp::CloseSession(_) | TxnOp::Multi(_) => {
                // Not allowed inside a multi.
                Err(ErrorCode::MarshallingError)
            }
        }
    }

    /// Multi (reference D.7, behaviour 46): if any sub-txn is an error txn the
    /// whole multi failed and nothing is applied; sub-ops before the first
    /// error report 0, error sub-ops their code, the others -2. Accepts both
    /// our form (all sub-ops error txns) and ZooKeeper's (real txns before
    /// the failing one).
    fn apply_multi(
        &mut self,
        m: &proto::MultiTxn,
        txn: &proto::Txn,
        events: &mut Triggers,
    ) -> MultiResponse {
        let is_err = |b: &proto::TxnBody| matches!(b.op, Some(TxnOp::Error(_)));
        if let Some(first) = m.ops.iter().position(is_err) {
            let results = m
                .ops
                .iter()
                .enumerate()
                .map(|(i, b)| match &b.op {
                    Some(TxnOp::Error(e)) => MultiResult::Error(e.err),
                    _ if i < first => MultiResult::Error(0),
                    _ => MultiResult::Error(ErrorCode::RuntimeInconsistency.code()),
                })
                .collect();
            return MultiResponse { results };
        }
        let results = m
            .ops
            .iter()
            .map(|b| match b.op.as_ref() {
                Some(o) => match self.apply_op(o, txn, events) {
                    Ok(r) => r,
                    Err(e) => MultiResult::Error(e.code()),
                },
                None => MultiResult::Error(ErrorCode::MarshallingError.code()),
            })
            .collect();
        MultiResponse { results }
    }

    /// `DataTree.createNode` (reference D.3).
    fn create_node(
        &mut self,
        c: &proto::CreateTxn,
        zxid: i64,
        time: i64,
        events: &mut Triggers,
    ) -> Result<Stat, ErrorCode> {
        let (parent_path, name) = path::split(&c.path).ok_or(ErrorCode::BadArguments)?;
        if name.is_empty() || c.path == path::ROOT {
            return Err(ErrorCode::NodeExists);
        }
        if self.exists(&c.path) {
            return Err(ErrorCode::NodeExists);
        }
        let acl = self.acl_cache.intern(&acl_from_proto(&c.acl));
        let event_acl = events.keep(&acl);
        let meta = NodeMeta {
            czxid: zxid,
            mzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: c.ephemeral_owner,
            pzxid: zxid,
        };
        // From the meta at hand, not decoded back out of the new node.
        let added = digest::node_digest(&c.path, c.data.as_deref(), &meta);
        let node = Node::new(name, c.data.as_deref(), acl, meta);
        let stat = node.stat();
        let size = (c.path.len() + node.data_len()) as u64;
        let parent = self.node_mut(parent_path)?;
        let moved = advance_cversion_of(parent, parent_path, c.parent_cversion, zxid);
        parent.children_mut().insert(node);
        let parent_acl = events.keep(parent.acl());
        self.move_digest(moved.0, moved.1);
        self.move_digest(0, added);
        self.data_size += size;
        if let Some(owner) = Owner::session(c.ephemeral_owner) {
            self.ephemerals.entry(owner).or_default().insert(&c.path);
        }
        if is_reaped(c.ephemeral_owner) {
            self.reapers.insert(c.path.clone());
        }
        self.count += 1;
        self.quotas_after_create(parent_path, name);
        self.count_quota_usage(&c.path, c.data.as_ref().map_or(0, |d| d.len() as i64), 1);
        events.push(event_type::NODE_CREATED, &c.path, event_acl);
        events.push(event_type::NODE_CHILDREN_CHANGED, parent_path, parent_acl);
        Ok(stat)
    }

    /// `DataTree.deleteNode` (reference D.3). Refuses to orphan children or
    /// delete the root, so a bad txn cannot corrupt the tree.
    fn delete_node(&mut self, p: &str, zxid: i64, events: &mut Triggers) -> Result<(), ErrorCode> {
        let (parent_path, name) = path::split(p).ok_or(ErrorCode::BadArguments)?;
        if p == path::ROOT {
            return Err(ErrorCode::BadArguments);
        }
        let Some(node) = self.node(p) else {
            // `DataTree.deleteNode` moves the parent's pzxid before it
            // looks for the child: a delete replayed over a fuzzy
            // snapshot that no longer holds its node still counts. Live,
            // a delete always finds its node: it was prepared against
            // this tree.
            self.set_pzxid(parent_path, zxid);
            return Err(ErrorCode::NoNode);
        };
        if !node.children().is_empty() {
            return Err(ErrorCode::NotEmpty);
        }
        let owner = node.meta().ephemeral_owner;
        let data_len = node.data_len();
        let size = (p.len() + data_len) as u64;
        let acl = events.keep(node.acl());
        let removed = node.digest(p);
        let parent = self.node_mut(parent_path)?;
        parent.children_mut().remove(name);
        let parent_acl = events.keep(parent.acl());
        let moved = raise_pzxid(parent, parent_path, zxid);
        self.move_digest(moved.0, moved.1);
        self.move_digest(removed, 0);
        self.count -= 1;
        // Saturating: a quota's stats node grows in place, uncounted, as
        // in ZooKeeper's `nodeDataSize`.
        self.data_size = self.data_size.saturating_sub(size);
        if parent_path.starts_with(path::ZOOKEEPER) && name == quota::LIMIT_NODE {
            // ZooKeeper cuts `/zookeeper/quota`'s length off any parent
            // under `/zookeeper` here (`Quotas.trimQuotaPath`).
            if let Some(quoted) = parent_path.get(path::QUOTA.len()..) {
                self.quotas.remove(quoted);
            }
        }
        self.count_quota_usage(p, -(data_len as i64), -1);
        if let Some(s) = Owner::session(owner) {
            // The session keeps its (maybe now empty) entry until it ends,
            // as ZooKeeper's `DataTree.deleteNode` leaves it, so `dump`
            // lists it (checked on 3.8.0).
            if let Some(set) = self.ephemerals.get_mut(&s) {
                set.remove(p);
            }
        }
        if is_reaped(owner) {
            self.reapers.remove(p);
        }
        // Behaviour 26: NodeDeleted(p) then NodeChildrenChanged(parent).
        events.push(event_type::NODE_DELETED, p, acl);
        events.push(event_type::NODE_CHILDREN_CHANGED, parent_path, parent_acl);
        Ok(())
    }

    /// `DataTree.createNode` on a child of `/zookeeper/quota…`: a limit
    /// node sets a quota, a stats node gets its subtree's usage at once
    /// (so the client's `count=0,bytes=0` is replaced).
    fn quotas_after_create(&mut self, parent_path: &str, name: &str) {
        let Some(quoted) = parent_path.strip_prefix(path::QUOTA) else {
            return;
        };
        if name == quota::LIMIT_NODE {
            self.quotas.add(quoted);
        }
        if name == quota::STAT_NODE {
            self.recount_quota(quoted);
        }
    }

    /// `updateQuotaForPath`: the stats node of `quoted` gets the usage
    /// counted afresh, `count` and `bytes` alone.
    fn recount_quota(&mut self, quoted: &str) {
        let (count, bytes) = self.usage(quoted);
        let mut stats = StatsTrack::default();
        stats.set_bytes(bytes);
        stats.set_count(count);
        self.rewrite_stats(quoted, |_| Some(stats));
    }

    /// `updateQuotaStat`: adds a write's change to the usage of the
    /// deepest quota at or above `p`, if there is one.
    fn count_quota_usage(&mut self, p: &str, bytes: i64, count: i64) {
        let Some(quoted) = self.quotas.max_prefix(p) else {
            return;
        };
        self.rewrite_stats(&quoted, |data| {
            // ZooKeeper throws from the middle of its apply on stats it
            // cannot parse; zab leaves them as they are.
            let mut stats = StatsTrack::parse(data?)?;
            // Java's longs wrap; a client can write any number into the
            // stats node.
            stats.set_count(stats.count().wrapping_add(count));
            stats.set_bytes(stats.bytes().wrapping_add(bytes));
            Some(stats)
        });
    }

    /// Rewrites the data of `quoted`'s stats node in place, keeping its
    /// Stat, if the node exists and `f` gives new stats.
    fn rewrite_stats(&mut self, quoted: &str, f: impl FnOnce(Option<&[u8]>) -> Option<StatsTrack>) {
        let Ok(node) = self.node_mut(&quota::stat_path(quoted)) else {
            return;
        };
        let (meta, data) = node.meta_and_data();
        if let Some(stats) = f(data) {
            node.set_data_and_meta(Some(stats.to_string().as_bytes()), &meta);
        }
    }

    /// `getCounts`: the nodes at and below `p` and their data bytes; none
    /// if `p` does not exist. `""` is the root, as in ZooKeeper's map.
    pub(crate) fn usage(&self, p: &str) -> (i64, i64) {
        let Some(top) = self.node(p) else {
            return (0, 0);
        };
        let (mut count, mut bytes) = (0, 0);
        let mut stack = vec![top];
        while let Some(n) = stack.pop() {
            count += 1;
            bytes += n.data_len() as i64;
            stack.extend(n.children().values());
        }
        (count, bytes)
    }

    /// The limits and usage of the deepest quota at or above `p`, if it
    /// has one and both its nodes parse.
    pub fn quota_of(&self, p: &str) -> Option<(StatsTrack, StatsTrack)> {
        let quoted = self.quotas.max_prefix(p)?;
        let read = |at: String| StatsTrack::parse(self.node(&at)?.data()?);
        Some((
            read(quota::limit_path(&quoted))?,
            read(quota::stat_path(&quoted))?,
        ))
    }

    /// ZooKeeper's per-namespace quota gauges (`QuotaMetricsUtils`): every
    /// leaf under `/zookeeper/quota` named `zookeeper_limits` adds its
    /// limits (hard before soft), every leaf `zookeeper_stats` its usage,
    /// to the namespace of the first component of the path it is for.
    pub fn quota_gauges(&self) -> quota::QuotaGauges {
        let mut g = quota::QuotaGauges::default();
        let mut stack = vec![path::QUOTA.to_owned()];
        while let Some(p) = stack.pop() {
            let Some(n) = self.node(&p) else { continue };
            if !n.children().is_empty() {
                stack.extend(n.children().keys().map(|c| format!("{p}/{c}")));
                continue;
            }
            let quoted = &p[path::QUOTA.len()..];
            let Some(ns) = quoted.split('/').nth(1).filter(|ns| !ns.is_empty()) else {
                continue;
            };
            let Some(stats) = n.data().and_then(StatsTrack::parse) else {
                continue;
            };
            let add = |m: &mut BTreeMap<String, i64>, v: i64| {
                let sum = m.entry(ns.to_owned()).or_default();
                *sum = sum.wrapping_add(v);
            };
            if p.ends_with(&format!("/{}", quota::LIMIT_NODE)) {
                add(&mut g.count_limit, stats.count_limit());
                add(&mut g.bytes_limit, stats.bytes_limit());
            } else if p.ends_with(&format!("/{}", quota::STAT_NODE)) {
                add(&mut g.count_usage, stats.count());
                add(&mut g.bytes_usage, stats.bytes());
            }
        }
        g
    }

    /// `setupQuota`, after a restore: every leaf under `/zookeeper/quota`
    /// named `zookeeper_limits` sets a quota, and its stats node (if any)
    /// gets the subtree's usage recounted.
    pub(crate) fn setup_quotas(&mut self) {
        self.quotas.clear();
        let mut limits = Vec::new();
        let mut stack = vec![path::QUOTA.to_owned()];
        while let Some(p) = stack.pop() {
            let Some(n) = self.node(&p) else { continue };
            if n.children().is_empty() {
                let end = format!("/{}", quota::LIMIT_NODE);
                if p.ends_with(&end) {
                    // `indexOf`: the first occurrence, as ZooKeeper cuts it.
                    if let Some(i) = p.find(&end) {
                        limits.push(p[path::QUOTA.len()..i].to_owned());
                    }
                }
                continue;
            }
            stack.extend(n.children().keys().map(|c| format!("{p}/{c}")));
        }
        for quoted in limits {
            self.recount_quota(&quoted);
            self.quotas.add(&quoted);
        }
    }

    /// Deletes the listed ephemerals, then any the session still owns (a
    /// defensive, deterministic sweep), and drops the session.
    /// `DataTree.setCversionPzxid` on the node at `path`, if any.
    fn set_cversion_pzxid(&mut self, path: &str, new_cversion: i32, zxid: i64) {
        let Ok(node) = self.node_mut(path) else {
            return;
        };
        let (old, new) = advance_cversion_of(node, path, new_cversion, zxid);
        self.move_digest(old, new);
    }

    /// Moves the pzxid of the node at `path` up to `zxid` (never down: a
    /// replayed create may have set a higher one).
    fn set_pzxid(&mut self, path: &str, zxid: i64) {
        let Ok(node) = self.node_mut(path) else {
            return;
        };
        let (old, new) = raise_pzxid(node, path, zxid);
        self.move_digest(old, new);
    }

    /// A node's part of the digest went from `old` to `new`
    /// (`NodeHashMapImpl.preChange` then `postChange`).
    fn move_digest(&mut self, old: i64, new: i64) {
        self.digest = self.digest.wrapping_sub(old).wrapping_add(new);
    }

    /// The tree's digest: ZooKeeper's `DataTree.getTreeDigest`.
    pub fn digest(&self) -> i64 {
        self.digest
    }

    /// The digests after recent zxids (`DataTree.getDigestLog`), for `hash`.
    pub fn digest_log(&self) -> &DigestLog {
        &self.digest_log
    }

    fn close_session(
        &mut self,
        session: SessionId,
        paths: &[String],
        txn: &proto::Txn,
        events: &mut Triggers,
    ) {
        // `DataTree.killSession` deletes the txn's paths whoever owns them
        // now (live, the session always does; a replay over a fuzzy
        // snapshot may find a node created again by another session),
        // then what is left of the session's own.
        for p in paths {
            let _ = self.delete_node(p, txn.zxid, events);
        }
        if let Some(rest) = self.ephemerals.get(&session).cloned() {
            for p in rest.iter() {
                let _ = self.delete_node(p, txn.zxid, events);
            }
        }
        self.ephemerals.remove(&session);
        self.sessions.remove(&session);
    }
}

/// [`advance_cversion`] on `node`, at `path`: the move of its part of the
/// digest, `(old, new)` (nothing moves if its stat did not change).
fn advance_cversion_of(node: &mut Node, path: &str, new_cversion: i32, zxid: i64) -> (i64, i64) {
    let mut meta = node.meta();
    if !advance_cversion(&mut meta, new_cversion, zxid) {
        return (0, 0);
    }
    let old = node.digest(path);
    node.set_meta(&meta);
    (old, node.digest(path))
}

/// The pzxid of `node`, at `path`, raised to `zxid` if that is higher, as
/// `DataTree.deleteNode` moves a parent's; the move of its digest part.
fn raise_pzxid(node: &mut Node, path: &str, zxid: i64) -> (i64, i64) {
    let meta = node.meta();
    if zxid <= meta.pzxid {
        return (0, 0);
    }
    let old = node.digest(path);
    node.set_meta(&NodeMeta {
        pzxid: zxid,
        ..meta
    });
    (old, node.digest(path))
}

/// As ZooKeeper's `setCversionPzxid`: the child counter only moves
/// forward, -1 meaning one more, and pzxid moves with it. Whether it moved.
fn advance_cversion(meta: &mut NodeMeta, new_cversion: i32, zxid: i64) -> bool {
    let new_cversion = if new_cversion == -1 {
        meta.cversion.wrapping_add(1)
    } else {
        new_cversion
    };
    let moved = new_cversion > meta.cversion;
    if moved {
        meta.cversion = new_cversion;
        meta.pzxid = zxid;
    }
    moved
}

/// Whether a node with this stored owner is a container or a TTL node.
fn is_reaped(stored_owner: i64) -> bool {
    matches!(Owner::of(stored_owner), Owner::Container | Owner::Ttl(_))
}

fn is_reapable(n: &Node, now_ms: i64, never_used_ms: i64) -> bool {
    n.children().is_empty() && is_due(&n.meta(), now_ms, never_used_ms)
}

/// Whether the reaper takes a childless node with this meta at `now_ms`,
/// as ZooKeeper's `ContainerManager.getCandidates` decides: a container
/// that had a child once (stored counter > 0), or one never used for
/// longer than `znode.container.maxNeverUsedIntervalMs` (`never_used_ms`,
/// 0 = never) since its mtime; a TTL node unmodified for longer than its
/// TTL.
pub(crate) fn is_due(meta: &NodeMeta, now_ms: i64, never_used_ms: i64) -> bool {
    let idle = now_ms.saturating_sub(meta.mtime);
    match Owner::of(meta.ephemeral_owner) {
        Owner::Container => meta.cversion > 0 || (never_used_ms != 0 && idle > never_used_ms),
        Owner::Ttl(ttl) => idle > ttl,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_with(paths: &[&str]) -> DataTree {
        let mut t = DataTree::new();
        let acl = t.acl_cache.intern(&Acl::open_unsafe());
        for p in paths {
            t.insert_node(p, Some(b"d"), acl.clone(), NodeMeta::default());
        }
        t
    }

    /// ZooKeeper 3.8's ensemble: `get -s /zookeeper/config` shows the
    /// membership text, dataVersion -1, mZxid the membership's version and
    /// mtime when the server set it; everything else as built in.
    #[test]
    fn set_config_writes_the_membership_as_zookeeper_does() {
        let mut t = DataTree::new();
        let before = t.approximate_data_size();
        let text = Bytes::from_static(b"server.1=127.0.0.1:2888:3888:participant\nversion=0");
        t.set_config(text.clone(), 0, 1_700_000_000_000);
        assert_eq!(t.data(path::CONFIG), Some(text.clone()));
        let stat = t.stat(path::CONFIG).unwrap();
        assert_eq!(
            (
                stat.version,
                stat.mzxid,
                stat.mtime,
                stat.czxid,
                stat.ctime,
                stat.aversion
            ),
            (-1, 0, 1_700_000_000_000, 0, 0, -1)
        );
        assert_eq!(t.approximate_data_size(), before + text.len() as u64);
        // Set again (a restart, a SNAP): replaced, not added to.
        t.set_config(text.clone(), 0x1_0000_0000, 1_700_000_000_001);
        assert_eq!(t.approximate_data_size(), before + text.len() as u64);
        assert_eq!(t.stat(path::CONFIG).map(|s| s.mzxid), Some(0x1_0000_0000));
        assert_eq!(t.last_zxid(), Zxid::ZERO, "not a txn");
    }

    /// Txns replayed over a fuzzy snapshot (ZooKeeper's import), as
    /// `DataTree.processTxn` replays them: a closeSession deletes its
    /// paths whoever owns them now, and a plain create that finds its node
    /// still moves the parent's cversion and pzxid (a create2 does not).
    #[test]
    fn replays_over_a_fuzzy_snapshot_move_the_parent_as_zookeeper_does() {
        let (s1, s2) = (SessionId(0x51), SessionId(0x52));
        let mut t = tree_with(&["/p"]);
        let acl = t.acl_cache.intern(&Acl::open_unsafe());
        let owned_by_s2 = NodeMeta {
            ephemeral_owner: s2.0,
            czxid: 12,
            ..NodeMeta::default()
        };
        t.insert_node("/p/c", None, acl, owned_by_s2);
        let txn = |zxid: i64, session: SessionId, op: TxnOp| proto::Txn {
            zxid,
            session_id: session.0,
            body: Some(proto::TxnBody { op: Some(op) }),
            ..Default::default()
        };
        let create = |kind: i32, parent_cversion: i32| {
            TxnOp::Create(proto::CreateTxn {
                path: "/p/c".into(),
                op: kind,
                ephemeral_owner: s2.0,
                parent_cversion,
                ..Default::default()
            })
        };
        // The node exists (the snapshot caught it after its re-creation).
        assert!(t.apply(&txn(12, s2, create(op::CREATE, 4))).result.is_err());
        // The stored counter (a client's Stat shows 2 × it − children).
        let parent = |t: &DataTree| t.node("/p").map(|n| n.meta()).unwrap();
        assert_eq!((parent(&t).cversion, parent(&t).pzxid), (4, 12));
        assert!(t
            .apply(&txn(13, s2, create(op::CREATE2, 9)))
            .result
            .is_err());
        assert_eq!(parent(&t).cversion, 4, "create2: no change");
        // S1's close lists the path; S2 owns it now: deleted all the same.
        let close = TxnOp::CloseSession(proto::CloseSessionTxn {
            paths_to_delete: vec!["/p/c".into()],
        });
        t.apply(&txn(14, s1, close));
        assert!(!t.exists("/p/c"));
        assert_eq!(parent(&t).pzxid, 14);
        // A delete whose node the snapshot no longer holds still moves
        // the parent's pzxid, as `DataTree.deleteNode` does first.
        let delete = TxnOp::Delete(proto::DeleteTxn {
            path: "/p/gone".into(),
            op: op::DELETE,
        });
        assert!(t.apply(&txn(15, s1, delete)).result.is_err());
        assert_eq!(parent(&t).pzxid, 15);
        // Every one of those moves kept the digest a recount finds.
        let mut out = Vec::new();
        t.snapshot().write_to(&mut out).unwrap();
        assert_eq!(
            DataTree::restore(&mut &out[..]).unwrap().digest(),
            t.digest()
        );
    }

    #[test]
    fn node_mut_copies_only_the_path_it_writes_and_nothing_on_a_miss() {
        let mut t = tree_with(&["/a", "/a/b", "/a/c", "/d"]);
        let snapshot = t.clone();
        let addr = |t: &DataTree, p: &str| t.node(p).map(Node::block_addr);
        let same =
            |t: &DataTree, s: &DataTree, p: &str| addr(t, p).is_some() && addr(t, p) == addr(s, p);
        for missing in ["/a/x", "/a/b/x", "/x/y", "a", "/a/", ""] {
            assert_eq!(t.node_mut(missing).err(), Some(ErrorCode::NoNode));
        }
        assert!(same(&t, &snapshot, "/"));
        t.node_mut("/a/b")
            .map(|n| n.update_meta(|m| m.version = 7))
            .ok();
        assert_eq!(t.stat("/a/b").map(|s| s.version), Some(7));
        assert_eq!(snapshot.stat("/a/b").map(|s| s.version), Some(0));
        for copied in ["/", "/a", "/a/b"] {
            assert!(!same(&t, &snapshot, copied), "{copied}");
        }
        for shared in ["/a/c", "/d", "/zookeeper"] {
            assert!(same(&t, &snapshot, shared), "{shared}");
        }
        // Unshared now: a second write copies nothing more.
        let before: Vec<_> = ["/", "/a", "/a/b"].map(|p| addr(&t, p)).into();
        t.node_mut("/a/b")
            .map(|n| n.update_meta(|m| m.version = 8))
            .ok();
        assert_eq!(before, ["/", "/a", "/a/b"].map(|p| addr(&t, p)));
        assert_eq!(t.stat("/a/b").map(|s| s.version), Some(8));
    }
}
