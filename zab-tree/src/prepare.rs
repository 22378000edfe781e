//! Turning client writes into txns: ZooKeeper's `PrepRequestProcessor`
//! (reference D.2, D.4, D.7, D.9–D.11).
//!
//! A write is validated against the tree *plus* the changes of txns already
//! prepared but not yet applied (ZooKeeper's `outstandingChanges`), in
//! ZooKeeper's check order, so that pipelined writes see each other. A
//! failed write still becomes a txn — an error txn — because it consumes a
//! zxid (D.10); a failed multi becomes a multi of error txns (D.7).

use std::collections::hash_map::Entry;
use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use foldhash::HashMap;
use zab_wire::jute::{
    op, perms, Acl, CheckVersionRequest, CreateMode, DeleteRequest, ErrorCode, MultiOp, Request,
    SetAclRequest, SetDataRequest,
};
use zab_wire::proto::{self, txn_body::Op as TxnOp, Txn, TxnBody};
use zab_wire::{SessionId, Zxid};

use crate::acl::{self, AclList, AuthInfo};
use crate::java_hash_set::JavaHashSet;
use crate::node::{ttl_owner, NodeMeta, Owner, CONTAINER_OWNER, MAX_TTL};
use crate::path;
use crate::tree::{acl_to_proto, is_due, DataTree};

/// Server settings that change how writes are validated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrepareConfig {
    /// `zookeeper.extendedTypesEnabled`: TTL nodes allowed (behaviour 20).
    pub extended_types_enabled: bool,
    /// `zookeeper.skipACL=yes`: no permission checks.
    pub skip_acl: bool,
    /// The authentication providers registered beside ip and digest.
    pub providers: acl::Providers,
    /// `enforceQuota`: creates and setData past a hard quota fail with
    /// QUOTAEXCEEDED (ZooKeeper ≥ 3.7).
    pub enforce_quota: bool,
    /// `znode.container.maxNeverUsedIntervalMs`: how long a container that
    /// never had a child lives before the reaper takes it; 0 = for ever.
    pub container_max_never_used_ms: i64,
}

/// Who sent a write, and the zxid and time the leader gives its txn.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    pub session_id: SessionId,
    pub cxid: i32,
    pub zxid: Zxid,
    /// Leader wall clock, ms since the epoch (becomes ctime/mtime).
    pub time_ms: i64,
    pub auth: &'a AuthInfo,
    /// The request came from a connection the session has left: the
    /// leader found another owner (ZooKeeper's `checkSession`, reference
    /// D.11). Every write checks it where it checks the session, so it
    /// fails with SESSIONMOVED in ZooKeeper's order of checks.
    pub session_moved: bool,
    /// The session may be a local one (`localSessionsEnabled`): not in the
    /// tree, yet valid for every write but an ephemeral create, which
    /// needs a global session (`checkGlobalSession`).
    pub session_local: bool,
}

/// ZooKeeper's `ChangeRecord`: what prepare needs to know of a node.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    meta: NodeMeta,
    num_children: i32,
    acl: AclList,
    /// The data's length: a setData's quota check counts from it.
    data_len: usize,
}

/// One pending change, in prepare order. The path is shared with its key
/// in `Preparer::latest`.
#[derive(Debug)]
struct Change {
    seq: u64,
    zxid: Zxid,
    path: Arc<str>,
    record: Option<Record>,
}

/// Changes made while preparing one request; merged into the pending
/// changes only if the request succeeds (a failed multi leaves nothing,
/// behaviour 47).
///
/// A single write makes one or two changes, so the overlay is searched
/// from its newest change back; only a multi with more than
/// [`Overlay::SCAN`] changes gets a map (a big multi would otherwise cost
/// its square in string compares). Issue 4: a map per write was ≈ 3 % of
/// the leader's runtime thread under set 32×8.
#[derive(Debug, Default)]
struct Overlay {
    changes: Vec<(Arc<str>, Option<Record>)>,
    /// Path → index of its newest change; built past `SCAN` changes.
    index: Option<HashMap<Arc<str>, usize>>,
}

impl Overlay {
    const SCAN: usize = 16;

    fn add(&mut self, path: &str, record: Option<Record>) {
        let path: Arc<str> = path.into();
        let i = self.changes.len();
        self.changes.push((path.clone(), record));
        match &mut self.index {
            Some(index) => {
                index.insert(path, i);
            }
            None if self.changes.len() > Self::SCAN => {
                // Later changes overwrite earlier ones: the newest wins.
                let index = self
                    .changes
                    .iter()
                    .enumerate()
                    .map(|(i, (p, _))| (p.clone(), i))
                    .collect();
                self.index = Some(index);
            }
            None => {}
        }
    }

    /// The newest change this request made to `path`, if any.
    fn get(&self, path: &str) -> Option<&Option<Record>> {
        let i = match &self.index {
            Some(index) => *index.get(path)?,
            None => self.changes.iter().rposition(|(p, _)| &**p == path)?,
        };
        self.changes.get(i).map(|(_, r)| r)
    }
}

/// One write, borrowed from a `Request` or a `MultiOp`.
enum Write<'r> {
    Create {
        op: i32,
        path: &'r str,
        data: &'r Option<Bytes>,
        acl: Option<&'r [Acl]>,
        flags: i32,
        /// -1 for ops other than 21.
        ttl: i64,
    },
    Delete(&'r DeleteRequest),
    SetData(&'r SetDataRequest),
    SetAcl(&'r SetAclRequest),
    Check(&'r CheckVersionRequest),
    DeleteContainer(&'r str),
}

impl<'r> Write<'r> {
    /// A multi's op as ZooKeeper runs it. Its `MultiOperationRecord` and
    /// `Op.create` give a create the opcode its flags name: a container
    /// mode makes op 19 of any create, a createTTL without a TTL mode is a
    /// plain create (op 1, its ttl dropped; 3.8 and 3.9), and otherwise the
    /// header's 1, 15 or 19 stands (≥ 3.9; 3.8 made 15 and 19 op 1). The
    /// opcode decides the node's kind and the result's shape.
    fn from_multi(o: &'r MultiOp) -> Option<Write<'r>> {
        let mode = |flags| CreateMode::from_flags(flags);
        Some(match o {
            MultiOp::Create { op, req } => Write::Create {
                op: match mode(req.flags) {
                    Some(CreateMode::Container) => op::CREATE_CONTAINER,
                    _ => *op,
                },
                path: &req.path,
                data: &req.data,
                acl: req.acl.as_deref(),
                flags: req.flags,
                ttl: -1,
            },
            MultiOp::CreateTtl(r) => {
                let (op, ttl) = match mode(r.flags) {
                    Some(m) if m.is_ttl() => (op::CREATE_TTL, r.ttl),
                    Some(CreateMode::Container) => (op::CREATE_CONTAINER, -1),
                    _ => (op::CREATE, -1),
                };
                Write::Create {
                    op,
                    path: &r.path,
                    data: &r.data,
                    acl: r.acl.as_deref(),
                    flags: r.flags,
                    ttl,
                }
            }
            MultiOp::Delete(r) => Write::Delete(r),
            MultiOp::SetData(r) => Write::SetData(r),
            MultiOp::Check(r) => Write::Check(r),
            MultiOp::GetChildren(_) | MultiOp::GetData(_) => return None,
        })
    }
}

/// ZooKeeper's `PrepRequestProcessor` with its outstanding changes.
#[derive(Debug, Default)]
pub struct Preparer {
    cfg: PrepareConfig,
    /// Pending changes with consecutive `seq`s: change `seq` sits at
    /// `seq - front.seq`.
    changes: VecDeque<Change>,
    /// The `seq` of the latest pending change per path. The record stays in
    /// `changes`, written in order, rather than in this map's scattered
    /// buckets (issue 4: writing it there was ≈ 2 % of the leader's
    /// runtime thread).
    latest: HashMap<Arc<str>, u64>,
    next_seq: u64,
    /// Pending createSession (true) / closeSession (false), in order.
    session_changes: VecDeque<(Zxid, SessionId, bool)>,
    session_latest: HashMap<SessionId, (Zxid, bool)>,
    /// Writes refused with QUOTAEXCEEDED, by the top component of their
    /// path: ZooKeeper's `quota_exceeded_error_per_namespace`.
    quota_exceeded: std::collections::BTreeMap<String, u64>,
}

fn body(op: TxnOp) -> TxnBody {
    TxnBody { op: Some(op) }
}

fn error_op(code: ErrorCode) -> TxnOp {
    TxnOp::Error(proto::ErrorTxn { err: code.code() })
}

/// A request's data length, null counting as 0.
fn data_len(data: &Option<Bytes>) -> usize {
    data.as_ref().map_or(0, Bytes::len)
}

/// `checkAndIncVersion`: -1 matches any version (reference D.3).
fn check_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

impl Preparer {
    pub fn new(cfg: PrepareConfig) -> Preparer {
        Preparer {
            cfg,
            ..Preparer::default()
        }
    }

    pub fn config(&self) -> PrepareConfig {
        self.cfg
    }

    /// Number of pending node changes (txns prepared, not yet applied).
    pub fn pending(&self) -> usize {
        self.changes.len()
    }

    /// Turns a write into its txn (an error txn if it fails validation).
    pub fn prepare(&mut self, tree: &DataTree, ctx: &RequestContext, req: &Request) -> Txn {
        let op = match req {
            Request::CloseSession => self.prepare_close_session(tree, ctx),
            Request::Multi(ops) => self.prepare_multi(tree, ctx, ops),
            // Reconfiguration is not supported (reconfigEnabled=false).
            Request::Reconfig(_) => error_op(ErrorCode::ReconfigDisabled),
            other => match single_write(other) {
                // A bare check outside a multi (behaviour 19) and any
                // non-write are refused without touching the tree.
                None => error_op(ErrorCode::Unimplemented),
                Some(w) => {
                    let mut ov = Overlay::default();
                    match self.prepare_write(tree, &mut ov, ctx, &w) {
                        Ok(op) => {
                            self.commit(ctx.zxid, ov);
                            op
                        }
                        Err(e) => {
                            self.count_refusal(&w, e);
                            error_op(e)
                        }
                    }
                }
            },
        };
        self.txn(ctx, op)
    }

    /// A createSession txn for a new session (its id is `ctx.session_id`).
    pub fn prepare_create_session(
        &mut self,
        _tree: &DataTree,
        ctx: &RequestContext,
        timeout_ms: i32,
    ) -> Txn {
        self.session_change(ctx.zxid, ctx.session_id, true);
        self.txn(
            ctx,
            TxnOp::CreateSession(proto::CreateSessionTxn {
                timeout: timeout_ms,
            }),
        )
    }

    /// Forgets pending changes of txns with zxid <= `zxid` (applied now).
    pub fn applied(&mut self, zxid: Zxid) {
        while self.changes.front().is_some_and(|c| c.zxid <= zxid) {
            let Some(c) = self.changes.pop_front() else {
                break;
            };
            if let Entry::Occupied(e) = self.latest.entry(c.path) {
                if *e.get() == c.seq {
                    e.remove();
                }
            }
        }
        while self.session_changes.front().is_some_and(|c| c.0 <= zxid) {
            let Some((z, s, _)) = self.session_changes.pop_front() else {
                break;
            };
            if self.session_latest.get(&s).is_some_and(|(lz, _)| *lz == z) {
                self.session_latest.remove(&s);
            }
        }
    }

    /// Writes refused for a hard quota, by namespace (the first component
    /// of their path).
    pub fn quota_exceeded(&self) -> &std::collections::BTreeMap<String, u64> {
        &self.quota_exceeded
    }

    /// `srst`: the counts go to 0, and their namespaces stay listed, as
    /// ZooKeeper's counter sets keep their keys.
    pub fn reset_quota_exceeded(&mut self) {
        self.quota_exceeded.values_mut().for_each(|n| *n = 0);
    }

    /// Hands the refusal counts over, to a preparer of the server's next
    /// role (they count for the process's life, as ZooKeeper's
    /// `ServerMetrics`).
    pub fn take_quota_exceeded(&mut self) -> std::collections::BTreeMap<String, u64> {
        std::mem::take(&mut self.quota_exceeded)
    }

    /// Takes counts a preparer of the previous role kept.
    pub fn carry_quota_exceeded(&mut self, counts: std::collections::BTreeMap<String, u64>) {
        self.quota_exceeded = counts;
    }

    fn count_refusal(&mut self, w: &Write, e: ErrorCode) {
        if e != ErrorCode::QuotaExceeded {
            return;
        }
        let path = match *w {
            Write::Create { path, .. } => path,
            Write::SetData(r) => &r.path,
            _ => return,
        };
        // `PathUtils.getTopNamespace`.
        if let Some(ns) = path.split('/').nth(1).filter(|ns| !ns.is_empty()) {
            *self.quota_exceeded.entry(ns.to_owned()).or_default() += 1;
        }
    }

    /// Forgets every pending change (e.g. on losing leadership).
    pub fn clear(&mut self) {
        self.changes.clear();
        self.latest.clear();
        self.session_changes.clear();
        self.session_latest.clear();
    }

    fn txn(&self, ctx: &RequestContext, op: TxnOp) -> Txn {
        Txn {
            origin: 0,
            session_id: ctx.session_id.0,
            cxid: ctx.cxid,
            zxid: ctx.zxid.0,
            time: ctx.time_ms,
            body: Some(body(op)),
        }
    }

    fn commit(&mut self, zxid: Zxid, ov: Overlay) {
        for (path, record) in ov.changes {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.latest.insert(path.clone(), seq);
            self.changes.push_back(Change {
                seq,
                zxid,
                path,
                record,
            });
        }
    }

    /// The pending change to `path` prepared last, if any.
    fn latest_change(&self, path: &str) -> Option<&Change> {
        let seq = *self.latest.get(path)?;
        let first = self.changes.front()?.seq;
        self.changes
            .get(usize::try_from(seq.checked_sub(first)?).ok()?)
    }

    fn session_change(&mut self, zxid: Zxid, s: SessionId, open: bool) {
        self.session_changes.push_back((zxid, s, open));
        self.session_latest.insert(s, (zxid, open));
    }

    /// `getRecordForPath`: the multi's own changes, then pending changes,
    /// then the tree.
    fn record(&self, tree: &DataTree, ov: &Overlay, p: &str) -> Option<Record> {
        if let Some(r) = ov.get(p) {
            return r.clone();
        }
        if let Some(c) = self.latest_change(p) {
            return c.record.clone();
        }
        tree.node(p).map(|n| Record {
            meta: n.meta(),
            num_children: n.children().len() as i32,
            acl: n.acl().clone(),
            data_len: n.data_len(),
        })
    }

    /// A session is usable unless unknown or closing (`checkSession` throws
    /// SessionExpired for both), or moved away from where the request came
    /// from (SessionMoved, checked last).
    fn check_session(&self, tree: &DataTree, ctx: &RequestContext) -> Result<(), ErrorCode> {
        self.check_session_of(tree, ctx, false)
    }

    /// [`Preparer::check_session`]; `global` for an ephemeral create, which
    /// a local session may not make.
    fn check_session_of(
        &self,
        tree: &DataTree,
        ctx: &RequestContext,
        global: bool,
    ) -> Result<(), ErrorCode> {
        let s = ctx.session_id;
        let open = match self.session_latest.get(&s) {
            Some((_, open)) => *open,
            None => tree.session_timeout(s).is_some() || (ctx.session_local && !global),
        };
        if !open {
            Err(ErrorCode::SessionExpired)
        } else if ctx.session_moved {
            Err(ErrorCode::SessionMoved)
        } else {
            Ok(())
        }
    }

    fn check_perm(&self, acl: &[Acl], perm: i32, auth: &AuthInfo) -> Result<(), ErrorCode> {
        if self.cfg.skip_acl || acl::check_acl(acl, perm, auth, self.cfg.providers) {
            Ok(())
        } else {
            Err(ErrorCode::NoAuth)
        }
    }

    /// `ZooKeeperServer.checkQuota`, with `enforceQuota` on: a write that
    /// would take the deepest quota above `p` past a hard limit fails.
    /// Usage and limits are read from the applied tree, not the pending
    /// changes, as ZooKeeper reads them; a soft limit only makes ZooKeeper
    /// log, and limit or stats nodes it cannot read let the write pass.
    fn check_quota(
        &self,
        tree: &DataTree,
        p: &str,
        bytes_diff: i64,
        count_diff: i64,
    ) -> Result<(), ErrorCode> {
        if !self.cfg.enforce_quota {
            return Ok(());
        }
        let Some((limits, usage)) = tree.quota_of(p) else {
            return Ok(());
        };
        let check_count =
            count_diff != 0 && (limits.count() > -1 || limits.count_hard_limit() > -1);
        let check_bytes = bytes_diff != 0 && (limits.bytes() > -1 || limits.byte_hard_limit() > -1);
        // Java's longs wrap; a client can write any number into the stats.
        let past = |used: i64, diff: i64, hard: i64| hard > -1 && used.wrapping_add(diff) > hard;
        if (check_count && past(usage.count(), count_diff, limits.count_hard_limit()))
            || (check_bytes && past(usage.bytes(), bytes_diff, limits.byte_hard_limit()))
        {
            return Err(ErrorCode::QuotaExceeded);
        }
        Ok(())
    }

    fn prepare_write(
        &self,
        tree: &DataTree,
        ov: &mut Overlay,
        ctx: &RequestContext,
        w: &Write,
    ) -> Result<TxnOp, ErrorCode> {
        match *w {
            Write::Create {
                op,
                path,
                data,
                acl,
                flags,
                ttl,
            } => self.prepare_create(tree, ov, ctx, op, path, data, acl, flags, ttl),
            Write::Delete(r) => self.prepare_delete(tree, ov, ctx, r),
            Write::SetData(r) => self.prepare_set_data(tree, ov, ctx, r),
            Write::SetAcl(r) => self.prepare_set_acl(tree, ov, ctx, r),
            Write::Check(r) => self.prepare_check(tree, ov, ctx, r),
            Write::DeleteContainer(p) => self.prepare_delete_container(tree, ov, ctx, p),
        }
    }

    /// Create, in ZooKeeper's check order (reference D.2).
    #[allow(clippy::too_many_arguments)]
    fn prepare_create(
        &self,
        tree: &DataTree,
        ov: &mut Overlay,
        ctx: &RequestContext,
        op_code: i32,
        p: &str,
        data: &Option<Bytes>,
        acl: Option<&[Acl]>,
        flags: i32,
        ttl: i64,
    ) -> Result<TxnOp, ErrorCode> {
        // 1. Mode and TTL (behaviour 20).
        let mode = CreateMode::from_flags(flags).ok_or(ErrorCode::BadArguments)?;
        if mode.is_ttl() && !self.cfg.extended_types_enabled {
            return Err(ErrorCode::Unimplemented);
        }
        if mode.is_ttl() != (op_code == op::CREATE_TTL) && ttl >= 0 {
            return Err(ErrorCode::BadArguments);
        }
        if mode.is_ttl() && !(1..=MAX_TTL).contains(&ttl) {
            return Err(ErrorCode::BadArguments);
        }
        // `EphemeralType.validateTTL` lets a plain mode through op 21 pass
        // when its ttl is negative, so ZooKeeper answers every check below
        // first; had they all passed, 3.8.0 would log a CreateTTLTxn it
        // then fails to apply (the server exits, checked). zab refuses it
        // after those checks instead.
        let plain_mode_as_ttl = op_code == op::CREATE_TTL && !mode.is_ttl();
        // 2. Session: a global one for an ephemeral (`checkGlobalSession`).
        self.check_session_of(tree, ctx, mode.is_ephemeral())?;
        // 3. Shape: a '/' and no NUL.
        if !p.contains('/') || p.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        // 4. ACL fix-up.
        let acl = acl::fixup_acl(acl, ctx.auth, self.cfg.providers)?;
        // 5–6. Parent (pending changes included) and CREATE on it.
        let (parent_path, _) = path::split(p).ok_or(ErrorCode::BadArguments)?;
        let mut parent = self
            .record(tree, ov, parent_path)
            .ok_or(ErrorCode::NoNode)?;
        self.check_perm(&parent.acl, perms::CREATE, ctx.auth)?;
        // 7. Sequential suffix from the stored counter (behaviours 1–4);
        // Rust's `{:010}` pads negatives like Java's `%010d`.
        let full = if mode.is_sequential() {
            format!("{p}{:010}", parent.meta.cversion)
        } else {
            p.to_owned()
        };
        // 8–10.
        path::validate(&full)?;
        if self.record(tree, ov, &full).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if Owner::session(parent.meta.ephemeral_owner).is_some() {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        self.check_quota(tree, &full, data_len(data) as i64, 1)?;
        if plain_mode_as_ttl {
            return Err(ErrorCode::BadArguments);
        }
        // The opcode decides the stored owner, as ZooKeeper's txn types do:
        // op 19 is always a container, op 21 a TTL node.
        let owner = match op_code {
            op::CREATE_CONTAINER => CONTAINER_OWNER,
            op::CREATE_TTL => ttl_owner(ttl),
            _ if mode.is_ephemeral() => ctx.session_id.0,
            _ => 0,
        };
        let new_cversion = parent.meta.cversion.wrapping_add(1);
        parent.meta.cversion = new_cversion;
        parent.meta.pzxid = ctx.zxid.0;
        parent.num_children += 1;
        ov.add(parent_path, Some(parent));
        ov.add(
            &full,
            Some(Record {
                meta: NodeMeta {
                    czxid: ctx.zxid.0,
                    mzxid: ctx.zxid.0,
                    ctime: ctx.time_ms,
                    mtime: ctx.time_ms,
                    version: 0,
                    cversion: 0,
                    aversion: 0,
                    ephemeral_owner: owner,
                    pzxid: ctx.zxid.0,
                },
                num_children: 0,
                acl: acl.clone().into(),
                data_len: data_len(data),
            }),
        );
        Ok(TxnOp::Create(proto::CreateTxn {
            path: full,
            data: data.clone(),
            acl: acl_to_proto(&acl),
            op: op_code,
            ephemeral_owner: owner,
            parent_cversion: new_cversion,
        }))
    }

    /// Records the removal of `p` and its parent's new child count.
    fn remove(
        &self,
        ov: &mut Overlay,
        ctx: &RequestContext,
        parent_path: &str,
        mut parent: Record,
        p: &str,
    ) {
        parent.num_children -= 1;
        parent.meta.pzxid = ctx.zxid.0;
        ov.add(parent_path, Some(parent));
        ov.add(p, None);
    }

    /// Delete (reference D.2; behaviour 41: DELETE is checked on the parent).
    fn prepare_delete(
        &self,
        tree: &DataTree,
        ov: &mut Overlay,
        ctx: &RequestContext,
        r: &DeleteRequest,
    ) -> Result<TxnOp, ErrorCode> {
        self.check_session(tree, ctx)?;
        let p = r.path.as_str();
        let (parent_path, _) = path::split(p).ok_or(ErrorCode::BadArguments)?;
        if p.contains('\0') || path::is_special(p) {
            return Err(ErrorCode::BadArguments);
        }
        let parent = self
            .record(tree, ov, parent_path)
            .ok_or(ErrorCode::NoNode)?;
        self.check_perm(&parent.acl, perms::DELETE, ctx.auth)?;
        let node = self.record(tree, ov, p).ok_or(ErrorCode::NoNode)?;
        check_version(node.meta.version, r.version)?;
        if node.num_children > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        self.remove(ov, ctx, parent_path, parent, p);
        Ok(TxnOp::Delete(proto::DeleteTxn {
            path: p.to_owned(),
            op: op::DELETE,
        }))
    }

    /// The reaper's deleteContainer (reference D.4): no session or ACL check,
    /// but the node must still be reapable when the txn is prepared.
    fn prepare_delete_container(
        &self,
        tree: &DataTree,
        ov: &mut Overlay,
        ctx: &RequestContext,
        p: &str,
    ) -> Result<TxnOp, ErrorCode> {
        let (parent_path, _) = path::split(p).ok_or(ErrorCode::BadArguments)?;
        if p.contains('\0') || path::is_special(p) {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.record(tree, ov, p).ok_or(ErrorCode::NoNode)?;
        if node.num_children > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        // ZooKeeper refuses session ephemerals with BadVersion; we also
        // refuse anything no longer reapable (a TTL node renewed by setData
        // since the scan, a plain node), so a stale scan cannot delete it.
        let never_used = self.cfg.container_max_never_used_ms;
        if !is_due(&node.meta, ctx.time_ms, never_used) {
            return Err(ErrorCode::BadVersion);
        }
        let parent = self
            .record(tree, ov, parent_path)
            .ok_or(ErrorCode::NoNode)?;
        self.remove(ov, ctx, parent_path, parent, p);
        Ok(TxnOp::Delete(proto::DeleteTxn {
            path: p.to_owned(),
            op: op::DELETE_CONTAINER,
        }))
    }

    /// setData (behaviour 6: identical bytes still bump the version).
    fn prepare_set_data(
        &self,
        tree: &DataTree,
        ov: &mut Overlay,
        ctx: &RequestContext,
        r: &SetDataRequest,
    ) -> Result<TxnOp, ErrorCode> {
        self.check_session(tree, ctx)?;
        path::validate(&r.path)?;
        let mut node = self.record(tree, ov, &r.path).ok_or(ErrorCode::NoNode)?;
        self.check_perm(&node.acl, perms::WRITE, ctx.auth)?;
        let new_len = data_len(&r.data);
        self.check_quota(tree, &r.path, new_len as i64 - node.data_len as i64, 0)?;
        let version = check_version(node.meta.version, r.version)?;
        node.meta.version = version;
        node.data_len = new_len;
        node.meta.mzxid = ctx.zxid.0;
        node.meta.mtime = ctx.time_ms;
        ov.add(&r.path, Some(node));
        Ok(TxnOp::SetData(proto::SetDataTxn {
            path: r.path.clone(),
            data: r.data.clone(),
            version,
        }))
    }

    /// setACL (behaviour 5: only aversion changes; the version checked is
    /// the aversion).
    fn prepare_set_acl(
        &self,
        tree: &DataTree,
        ov: &mut Overlay,
        ctx: &RequestContext,
        r: &SetAclRequest,
    ) -> Result<TxnOp, ErrorCode> {
        self.check_session(tree, ctx)?;
        path::validate(&r.path)?;
        let acl = acl::fixup_acl(r.acl.as_deref(), ctx.auth, self.cfg.providers)?;
        let mut node = self.record(tree, ov, &r.path).ok_or(ErrorCode::NoNode)?;
        self.check_perm(&node.acl, perms::ADMIN, ctx.auth)?;
        let version = check_version(node.meta.aversion, r.version)?;
        node.meta.aversion = version;
        node.acl = acl.clone().into();
        ov.add(&r.path, Some(node));
        Ok(TxnOp::SetAcl(proto::SetAclTxn {
            path: r.path.clone(),
            acl: acl_to_proto(&acl),
            version,
        }))
    }

    /// check, inside a multi only.
    fn prepare_check(
        &self,
        tree: &DataTree,
        ov: &mut Overlay,
        ctx: &RequestContext,
        r: &CheckVersionRequest,
    ) -> Result<TxnOp, ErrorCode> {
        self.check_session(tree, ctx)?;
        path::validate(&r.path)?;
        let node = self.record(tree, ov, &r.path).ok_or(ErrorCode::NoNode)?;
        self.check_perm(&node.acl, perms::READ, ctx.auth)?;
        check_version(node.meta.version, r.version)?;
        Ok(TxnOp::Check(proto::CheckTxn {
            path: r.path.clone(),
            version: node.meta.version,
        }))
    }

    /// Multi (reference D.7): ops see earlier ops' effects; on the first
    /// failure every op becomes an error txn (0 before, the code, -2 after)
    /// and the multi's changes are dropped (behaviour 47).
    fn prepare_multi(&mut self, tree: &DataTree, ctx: &RequestContext, ops: &[MultiOp]) -> TxnOp {
        let mut ov = Overlay::default();
        let mut bodies = Vec::with_capacity(ops.len());
        let mut failed = None;
        for (i, o) in ops.iter().enumerate() {
            // A TTL mode on op 1, 15 or 19 has no ttl to go with it: when
            // ZooKeeper reaches that op (no earlier op failed) it fails the
            // whole request, not the op (a ClassCastException in its
            // `PrepRequestProcessor`, answered MARSHALLINGERROR; checked on
            // 3.8.0).
            if matches!(o, MultiOp::Create { req, .. }
                if CreateMode::from_flags(req.flags).is_some_and(CreateMode::is_ttl))
            {
                return error_op(ErrorCode::MarshallingError);
            }
            let res = match Write::from_multi(o) {
                Some(w) => self.prepare_write(tree, &mut ov, ctx, &w),
                None => Err(ErrorCode::MarshallingError),
            };
            match res {
                Ok(op) => bodies.push(body(op)),
                Err(e) => {
                    if let Some(w) = Write::from_multi(o) {
                        self.count_refusal(&w, e);
                    }
                    failed = Some((i, e));
                    break;
                }
            }
        }
        match failed {
            None => {
                self.commit(ctx.zxid, ov);
                TxnOp::Multi(proto::MultiTxn { ops: bodies })
            }
            Some((at, e)) => TxnOp::Multi(proto::MultiTxn {
                ops: (0..ops.len())
                    .map(|i| {
                        body(error_op(match i.cmp(&at) {
                            std::cmp::Ordering::Less => ErrorCode::Ok,
                            std::cmp::Ordering::Equal => e,
                            std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency,
                        }))
                    })
                    .collect(),
            }),
        }
    }

    /// closeSession (reference D.11): the session's ephemerals, including
    /// pending creates and excluding pending deletes, go into the txn, and
    /// the session is marked closing so its later writes get SessionExpired.
    fn prepare_close_session(&mut self, tree: &DataTree, ctx: &RequestContext) -> TxnOp {
        let s = ctx.session_id;
        // As ZooKeeper builds the list: a copy of the session's set, each
        // pending change in order, then the set's order — which is the
        // order the paths are deleted and their events fire in.
        let mut set = tree
            .ephemerals_of(s)
            .map(JavaHashSet::java_clone)
            .unwrap_or_default();
        for c in &self.changes {
            match &c.record {
                None => {
                    set.remove(&c.path);
                }
                Some(r) if Owner::session(r.meta.ephemeral_owner) == Some(s) => {
                    set.insert(&c.path);
                }
                Some(_) => {}
            }
        }
        let paths: Vec<String> = set.iter().map(str::to_owned).collect();
        let mut ov = Overlay::default();
        for p in &paths {
            if let Some((parent_path, _)) = path::split(p) {
                if let Some(parent) = self.record(tree, &ov, parent_path) {
                    self.remove(&mut ov, ctx, parent_path, parent, p);
                }
            }
        }
        self.commit(ctx.zxid, ov);
        self.session_change(ctx.zxid, s, false);
        TxnOp::CloseSession(proto::CloseSessionTxn {
            paths_to_delete: paths.into_iter().collect(),
        })
    }
}

/// The single (non-multi) writes `prepare` handles through `prepare_write`.
fn single_write(req: &Request) -> Option<Write<'_>> {
    Some(match req {
        Request::Create { op, req } => Write::Create {
            op: *op,
            path: &req.path,
            data: &req.data,
            acl: req.acl.as_deref(),
            flags: req.flags,
            ttl: -1,
        },
        Request::CreateTtl(r) => Write::Create {
            op: op::CREATE_TTL,
            path: &r.path,
            data: &r.data,
            acl: r.acl.as_deref(),
            flags: r.flags,
            ttl: r.ttl,
        },
        Request::Delete(r) => Write::Delete(r),
        Request::SetData(r) => Write::SetData(r),
        Request::SetAcl(r) => Write::SetAcl(r),
        Request::DeleteContainer(r) => Write::DeleteContainer(&r.path),
        _ => return None,
    })
}

#[cfg(test)]
#[path = "prepare_tests.rs"]
mod tests;
