//! Test helpers: a tree with a preparer, driven like a single server that
//! applies every txn right after preparing it.

use std::net::{IpAddr, Ipv4Addr};

use bytes::Bytes;
use zab_wire::jute::{
    op, Acl, CreateRequest, CreateTtlRequest, DeleteRequest, ErrorCode, PathWatchRequest, Request,
    Response, SetAclRequest, SetDataRequest,
};
use zab_wire::proto::Txn;
use zab_wire::{SessionId, Zxid};

use crate::{Applied, AuthInfo, DataTree, PrepareConfig, Preparer, RequestContext};

pub(crate) const S1: SessionId = SessionId(0x100);
pub(crate) const S2: SessionId = SessionId(0x200);

pub(crate) fn local() -> AuthInfo {
    AuthInfo::new(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

pub(crate) struct Harness {
    pub tree: DataTree,
    pub prep: Preparer,
    pub zxid: Zxid,
    pub time: i64,
    pub auth: AuthInfo,
    pub session: SessionId,
    pub log: Vec<Txn>,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_config(PrepareConfig {
            extended_types_enabled: true,
            skip_acl: false,
            providers: Default::default(),
            enforce_quota: false,
            container_max_never_used_ms: 0,
        })
    }

    pub fn with_config(cfg: PrepareConfig) -> Harness {
        let mut h = Harness {
            tree: DataTree::new(),
            prep: Preparer::new(cfg),
            zxid: Zxid::ZERO,
            time: 1_000,
            auth: local(),
            session: S1,
            log: Vec::new(),
        };
        h.open_session(S1, 30_000);
        h
    }

    pub fn open_session(&mut self, id: SessionId, timeout: i32) -> Applied {
        self.zxid = self.zxid.next();
        let auth = self.auth.clone();
        let ctx = RequestContext {
            session_id: id,
            cxid: 0,
            zxid: self.zxid,
            time_ms: self.time,
            auth: &auth,
            session_moved: false,
            session_local: false,
        };
        let txn = self.prep.prepare_create_session(&self.tree, &ctx, timeout);
        self.apply(txn)
    }

    /// Prepares without applying (to test pending changes).
    pub fn prepare(&mut self, session: SessionId, req: &Request) -> Txn {
        self.prepare_from(session, req, false)
    }

    /// As [`Harness::prepare`], from a connection the session has left
    /// when `moved`.
    pub fn prepare_from(&mut self, session: SessionId, req: &Request, moved: bool) -> Txn {
        self.zxid = self.zxid.next();
        let auth = self.auth.clone();
        let ctx = RequestContext {
            session_id: session,
            cxid: 1,
            zxid: self.zxid,
            time_ms: self.time,
            auth: &auth,
            session_moved: moved,
            session_local: false,
        };
        self.prep.prepare(&self.tree, &ctx, req)
    }

    pub fn apply(&mut self, txn: Txn) -> Applied {
        let a = self.tree.apply(&txn);
        self.prep.applied(Zxid(txn.zxid));
        self.log.push(txn);
        a
    }

    pub fn write_as(&mut self, session: SessionId, req: Request) -> Applied {
        let txn = self.prepare(session, &req);
        self.apply(txn)
    }

    pub fn write(&mut self, req: Request) -> Applied {
        self.write_as(self.session, req)
    }

    pub fn res(&mut self, req: Request) -> Result<Response, ErrorCode> {
        self.write(req).result
    }

    pub fn err(&mut self, req: Request) -> ErrorCode {
        match self.write(req).result {
            Ok(r) => panic!("expected an error, got {r:?}"),
            Err(e) => e,
        }
    }

    pub fn read(&self, req: Request) -> Result<Response, ErrorCode> {
        self.tree.read(&req, self.session, &self.auth)
    }

    /// Creates `path` (op 1) and returns the actual path.
    pub fn mk(&mut self, path: &str, flags: i32) -> String {
        match self.res(create(path, Some(b"d"), flags)) {
            Ok(Response::Create(c)) => c.path,
            other => panic!("create {path}: {other:?}"),
        }
    }
}

pub(crate) fn create(path: &str, data: Option<&[u8]>, flags: i32) -> Request {
    create_op(op::CREATE, path, data, flags, Acl::open_unsafe())
}

pub(crate) fn create_op(
    op: i32,
    path: &str,
    data: Option<&[u8]>,
    flags: i32,
    acl: Vec<Acl>,
) -> Request {
    Request::Create {
        op,
        req: CreateRequest {
            path: path.into(),
            data: data.map(Bytes::copy_from_slice),
            acl: Some(acl),
            flags,
        },
    }
}

pub(crate) fn create_ttl(path: &str, flags: i32, ttl: i64) -> Request {
    Request::CreateTtl(CreateTtlRequest {
        path: path.into(),
        data: Some(Bytes::from_static(b"t")),
        acl: Some(Acl::open_unsafe()),
        flags,
        ttl,
    })
}

pub(crate) fn delete(path: &str, version: i32) -> Request {
    Request::Delete(DeleteRequest {
        path: path.into(),
        version,
    })
}

pub(crate) fn set_data(path: &str, data: &[u8], version: i32) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        version,
    })
}

pub(crate) fn set_acl(path: &str, acl: Vec<Acl>, version: i32) -> Request {
    Request::SetAcl(SetAclRequest {
        path: path.into(),
        acl: Some(acl),
        version,
    })
}

pub(crate) fn pw(path: &str) -> PathWatchRequest {
    PathWatchRequest {
        path: path.into(),
        watch: false,
    }
}
