//! Client requests and server responses as typed enums, decoded by opcode.

use bytes::Bytes;

use super::codec::{DecodeError, Jute, Reader, Writer};
use super::records::*;

/// One sub-operation of a `multi` (op 14) or `multiRead` (op 22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// `op` is 1, 15 or 19; it decides the shape of the result.
    Create {
        op: i32,
        req: CreateRequest,
    },
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    GetChildren(PathWatchRequest),
    GetData(PathWatchRequest),
}

impl MultiOp {
    pub fn op(&self) -> i32 {
        match self {
            MultiOp::Create { op, .. } => *op,
            MultiOp::CreateTtl(_) => op::CREATE_TTL,
            MultiOp::Delete(_) => op::DELETE,
            MultiOp::SetData(_) => op::SET_DATA,
            MultiOp::Check(_) => op::CHECK,
            MultiOp::GetChildren(_) => op::GET_CHILDREN,
            MultiOp::GetData(_) => op::GET_DATA,
        }
    }
    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetChildren(_) | MultiOp::GetData(_))
    }
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create { req, .. } => &req.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
            MultiOp::GetChildren(r) | MultiOp::GetData(r) => &r.path,
        }
    }
    fn write_body(&self, w: &mut Writer) {
        match self {
            MultiOp::Create { req, .. } => req.write(w),
            MultiOp::CreateTtl(r) => r.write(w),
            MultiOp::Delete(r) => r.write(w),
            MultiOp::SetData(r) => r.write(w),
            MultiOp::Check(r) => r.write(w),
            MultiOp::GetChildren(r) | MultiOp::GetData(r) => r.write(w),
        }
    }
}

/// Reads the ops of a multi up to its terminator. A read op in a multi,
/// reads and writes mixed in a multiRead, or an op no multi has, is a
/// decode error (-5 to the client; behaviour 48). A multiRead of writes
/// only decodes, as ZooKeeper's `MultiOperationRecord` checks no more than
/// that its ops are of one kind: the server refuses it when it runs it.
fn read_multi_ops(r: &mut Reader, reads: bool) -> Result<Vec<MultiOp>, DecodeError> {
    let mut ops = Vec::new();
    let mut of_reads = None;
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            return Ok(ops);
        }
        // Every op in a multi starts with its path, and a null one fails
        // the whole request on ZooKeeper, whatever the op (-5 for
        // setData and check too, which take it as "" outside a multi;
        // checked on 3.8.0).
        refuse_null_path(&r.rest())?;
        let op = match h.op {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => MultiOp::Create {
                op: h.op,
                req: CreateRequest::read(r)?,
            },
            op::CREATE_TTL => MultiOp::CreateTtl(CreateTtlRequest::read(r)?),
            op::DELETE => MultiOp::Delete(DeleteRequest::read(r)?),
            op::SET_DATA => MultiOp::SetData(SetDataRequest::read(r)?),
            op::CHECK => MultiOp::Check(CheckVersionRequest::read(r)?),
            op::GET_CHILDREN if reads => MultiOp::GetChildren(PathWatchRequest::read(r)?),
            op::GET_DATA if reads => MultiOp::GetData(PathWatchRequest::read(r)?),
            other => {
                return Err(DecodeError::Invalid {
                    what: "multi op",
                    value: other as i64,
                })
            }
        };
        let is_read = matches!(op, MultiOp::GetChildren(_) | MultiOp::GetData(_));
        if *of_reads.get_or_insert(is_read) != is_read {
            return Err(DecodeError::Invalid {
                what: "multiRead op mixed with other kinds",
                value: h.op as i64,
            });
        }
        ops.push(op);
    }
}

/// A body that starts with a null path (length -1) does not decode: a
/// null path reads as "" but is not "" where ZooKeeper uses it before any
/// check (a NullPointerException, answered MARSHALLINGERROR; for a write
/// that is an error txn), where "" finds the root or is a bad path
/// (checked on 3.8.0).
fn refuse_null_path(body: &[u8]) -> Result<(), DecodeError> {
    if body.starts_with(&(-1i32).to_be_bytes()) {
        return Err(DecodeError::Invalid {
            what: "path",
            value: -1,
        });
    }
    Ok(())
}

fn write_multi_ops(ops: &[MultiOp], w: &mut Writer) {
    for op in ops {
        MultiHeader {
            op: op.op(),
            done: false,
            err: -1,
        }
        .write(w);
        op.write_body(w);
    }
    MultiHeader {
        op: -1,
        done: true,
        err: -1,
    }
    .write(w);
}

/// A decoded client request body, by opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Ops 1 (create), 15 (create2) and 19 (createContainer).
    Create {
        op: i32,
        req: CreateRequest,
    },
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    Exists(PathWatchRequest),
    GetData(PathWatchRequest),
    SetData(SetDataRequest),
    GetAcl(PathRequest),
    SetAcl(SetAclRequest),
    GetChildren(PathWatchRequest),
    GetChildren2(PathWatchRequest),
    Sync(PathRequest),
    Ping,
    Check(CheckVersionRequest),
    Multi(Vec<MultiOp>),
    MultiRead(Vec<MultiOp>),
    Reconfig(ReconfigRequest),
    CheckWatches(WatchesRequest),
    RemoveWatches(WatchesRequest),
    DeleteContainer(PathRequest),
    Auth(AuthPacket),
    SetWatches(SetWatches),
    SetWatches2(SetWatches2),
    Sasl(SaslToken),
    GetEphemerals(PathRequest),
    GetAllChildrenNumber(PathRequest),
    AddWatch(AddWatchRequest),
    WhoAmI,
    CloseSession,
}

impl Request {
    /// Decodes the body of a request with opcode `op`.
    ///
    /// `DecodeError::UnknownOpcode` means the server must answer
    /// UNIMPLEMENTED (-6) and close; any other error is MARSHALLINGERROR (-5).
    pub fn decode(op: i32, body: Bytes) -> Result<Request, DecodeError> {
        // Reads, creates and deletes; setData, setACL and sync take a null
        // path as ZooKeeper does, as "".
        let uses_the_path_first = matches!(
            op,
            op::EXISTS
                | op::GET_DATA
                | op::GET_CHILDREN
                | op::GET_CHILDREN2
                | op::GET_ACL
                | op::GET_ALL_CHILDREN_NUMBER
                | op::CREATE
                | op::CREATE2
                | op::CREATE_CONTAINER
                | op::CREATE_TTL
                | op::DELETE
        );
        if uses_the_path_first {
            refuse_null_path(&body)?;
        }
        let r = &mut Reader::new(body);
        Ok(match op {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => Request::Create {
                op,
                req: CreateRequest::read(r)?,
            },
            op::CREATE_TTL => Request::CreateTtl(CreateTtlRequest::read(r)?),
            op::DELETE => Request::Delete(DeleteRequest::read(r)?),
            op::EXISTS => Request::Exists(PathWatchRequest::read(r)?),
            op::GET_DATA => Request::GetData(PathWatchRequest::read(r)?),
            op::SET_DATA => Request::SetData(SetDataRequest::read(r)?),
            op::GET_ACL => Request::GetAcl(PathRequest::read(r)?),
            op::SET_ACL => Request::SetAcl(SetAclRequest::read(r)?),
            op::GET_CHILDREN => Request::GetChildren(PathWatchRequest::read(r)?),
            op::GET_CHILDREN2 => Request::GetChildren2(PathWatchRequest::read(r)?),
            op::SYNC => Request::Sync(PathRequest::read(r)?),
            op::PING => Request::Ping,
            op::CHECK => Request::Check(CheckVersionRequest::read(r)?),
            op::MULTI => Request::Multi(read_multi_ops(r, false)?),
            op::MULTI_READ => Request::MultiRead(read_multi_ops(r, true)?),
            op::RECONFIG => Request::Reconfig(ReconfigRequest::read(r)?),
            op::CHECK_WATCHES => Request::CheckWatches(WatchesRequest::read(r)?),
            op::REMOVE_WATCHES => Request::RemoveWatches(WatchesRequest::read(r)?),
            op::DELETE_CONTAINER => Request::DeleteContainer(PathRequest::read(r)?),
            op::AUTH => Request::Auth(AuthPacket::read(r)?),
            op::SET_WATCHES => Request::SetWatches(SetWatches::read(r)?),
            op::SET_WATCHES2 => Request::SetWatches2(SetWatches2::read(r)?),
            op::SASL => Request::Sasl(SaslToken::read(r)?),
            op::GET_EPHEMERALS => Request::GetEphemerals(PathRequest::read(r)?),
            op::GET_ALL_CHILDREN_NUMBER => Request::GetAllChildrenNumber(PathRequest::read(r)?),
            op::ADD_WATCH => Request::AddWatch(AddWatchRequest::read(r)?),
            op::WHO_AM_I => Request::WhoAmI,
            op::CLOSE_SESSION => Request::CloseSession,
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    pub fn op(&self) -> i32 {
        match self {
            Request::Create { op, .. } => *op,
            Request::CreateTtl(_) => op::CREATE_TTL,
            Request::Delete(_) => op::DELETE,
            Request::Exists(_) => op::EXISTS,
            Request::GetData(_) => op::GET_DATA,
            Request::SetData(_) => op::SET_DATA,
            Request::GetAcl(_) => op::GET_ACL,
            Request::SetAcl(_) => op::SET_ACL,
            Request::GetChildren(_) => op::GET_CHILDREN,
            Request::GetChildren2(_) => op::GET_CHILDREN2,
            Request::Sync(_) => op::SYNC,
            Request::Ping => op::PING,
            Request::Check(_) => op::CHECK,
            Request::Multi(_) => op::MULTI,
            Request::MultiRead(_) => op::MULTI_READ,
            Request::Reconfig(_) => op::RECONFIG,
            Request::CheckWatches(_) => op::CHECK_WATCHES,
            Request::RemoveWatches(_) => op::REMOVE_WATCHES,
            Request::DeleteContainer(_) => op::DELETE_CONTAINER,
            Request::Auth(_) => op::AUTH,
            Request::SetWatches(_) => op::SET_WATCHES,
            Request::SetWatches2(_) => op::SET_WATCHES2,
            Request::Sasl(_) => op::SASL,
            Request::GetEphemerals(_) => op::GET_EPHEMERALS,
            Request::GetAllChildrenNumber(_) => op::GET_ALL_CHILDREN_NUMBER,
            Request::AddWatch(_) => op::ADD_WATCH,
            Request::WhoAmI => op::WHO_AM_I,
            Request::CloseSession => op::CLOSE_SESSION,
        }
    }

    /// True for requests that change replicated state and so go through the
    /// leader as txns.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Create { .. }
                | Request::CreateTtl(_)
                | Request::Delete(_)
                | Request::SetData(_)
                | Request::SetAcl(_)
                | Request::Check(_)
                | Request::Multi(_)
                | Request::Reconfig(_)
                | Request::DeleteContainer(_)
                | Request::CloseSession
        )
    }

    /// Whether ZooKeeper's `PrepRequestProcessor` turns requests of opcode
    /// `op` into txns. It takes the zxid before it reads the body, so a body
    /// of such an op that fails to decode is logged as an error txn
    /// (MARSHALLINGERROR) and still uses up a zxid (reference C).
    pub fn is_write_op(op: i32) -> bool {
        matches!(
            op,
            op::CREATE
                | op::CREATE2
                | op::CREATE_CONTAINER
                | op::CREATE_TTL
                | op::DELETE
                | op::SET_DATA
                | op::SET_ACL
                | op::MULTI
                | op::RECONFIG
        )
    }

    pub fn write_body(&self, w: &mut Writer) {
        match self {
            Request::Create { req, .. } => req.write(w),
            Request::CreateTtl(r) => r.write(w),
            Request::Delete(r) => r.write(w),
            Request::Exists(r)
            | Request::GetData(r)
            | Request::GetChildren(r)
            | Request::GetChildren2(r) => r.write(w),
            Request::SetData(r) => r.write(w),
            Request::GetAcl(r)
            | Request::Sync(r)
            | Request::DeleteContainer(r)
            | Request::GetEphemerals(r)
            | Request::GetAllChildrenNumber(r) => r.write(w),
            Request::SetAcl(r) => r.write(w),
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
            Request::Check(r) => r.write(w),
            Request::Multi(ops) | Request::MultiRead(ops) => write_multi_ops(ops, w),
            Request::Reconfig(r) => r.write(w),
            Request::CheckWatches(r) | Request::RemoveWatches(r) => r.write(w),
            Request::Auth(r) => r.write(w),
            Request::SetWatches(r) => r.write(w),
            Request::SetWatches2(r) => r.write(w),
            Request::Sasl(r) => r.write(w),
            Request::AddWatch(r) => r.write(w),
        }
    }

    /// The whole frame payload: header then body (without the length prefix).
    pub fn encode_with_header(&self, xid: i32) -> Bytes {
        let mut w = Writer::new();
        RequestHeader { xid, op: self.op() }.write(&mut w);
        self.write_body(&mut w);
        w.into_bytes()
    }
}

/// One result of a multi / multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    /// Result of op 1: the path only.
    Create(CreateResponse),
    /// Result of ops 15, 19 and 21.
    Create2(Create2Response),
    Delete,
    SetData(StatResponse),
    Check,
    GetChildren(StringListResponse),
    GetData(GetDataResponse),
    Error(i32),
}

impl MultiResult {
    fn op(&self) -> i32 {
        match self {
            MultiResult::Create(_) => op::CREATE,
            MultiResult::Create2(_) => op::CREATE2,
            MultiResult::Delete => op::DELETE,
            MultiResult::SetData(_) => op::SET_DATA,
            MultiResult::Check => op::CHECK,
            MultiResult::GetChildren(_) => op::GET_CHILDREN,
            MultiResult::GetData(_) => op::GET_DATA,
            MultiResult::Error(_) => op::ERROR,
        }
    }
}

/// A `MultiResponse`: per-op results and the terminator.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiResponse {
    pub results: Vec<MultiResult>,
}

impl Jute for MultiResponse {
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let mut results = Vec::new();
        loop {
            let h = MultiHeader::read(r)?;
            if h.done {
                return Ok(MultiResponse { results });
            }
            results.push(match h.op {
                op::CREATE => MultiResult::Create(CreateResponse::read(r)?),
                op::CREATE2 => MultiResult::Create2(Create2Response::read(r)?),
                op::DELETE => MultiResult::Delete,
                op::SET_DATA => MultiResult::SetData(StatResponse::read(r)?),
                op::CHECK => MultiResult::Check,
                op::GET_CHILDREN => MultiResult::GetChildren(StringListResponse::read(r)?),
                op::GET_DATA => MultiResult::GetData(GetDataResponse::read(r)?),
                op::ERROR => MultiResult::Error(ErrorResponse::read(r)?.err),
                other => {
                    return Err(DecodeError::Invalid {
                        what: "multi result",
                        value: other as i64,
                    })
                }
            });
        }
    }
    fn write(&self, w: &mut Writer) {
        for res in &self.results {
            let err = match res {
                MultiResult::Error(e) => *e,
                _ => 0,
            };
            MultiHeader {
                op: res.op(),
                done: false,
                err,
            }
            .write(w);
            match res {
                MultiResult::Create(r) => r.write(w),
                MultiResult::Create2(r) => r.write(w),
                MultiResult::SetData(r) => r.write(w),
                MultiResult::GetChildren(r) => r.write(w),
                MultiResult::GetData(r) => r.write(w),
                MultiResult::Error(e) => ErrorResponse { err: *e }.write(w),
                MultiResult::Delete | MultiResult::Check => {}
            }
        }
        MultiHeader {
            op: -1,
            done: true,
            err: -1,
        }
        .write(w);
    }
}

/// A successful response body. Error replies have no body (reference C).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Header only: delete, ping, auth, setWatches, check/removeWatches,
    /// closeSession.
    Empty,
    Create(CreateResponse),
    Create2(Create2Response),
    Stat(StatResponse),
    GetData(GetDataResponse),
    GetAcl(GetAclResponse),
    StringList(StringListResponse),
    GetChildren2(GetChildren2Response),
    Sync(SyncResponse),
    Multi(MultiResponse),
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    WhoAmI(WhoAmIResponse),
    /// addWatch's 4-byte `ErrorResponse{0}`.
    AddWatch(ErrorResponse),
    Sasl(SaslToken),
}

impl Response {
    pub fn write_body(&self, w: &mut Writer) {
        match self {
            Response::Empty => {}
            Response::Create(r) => r.write(w),
            Response::Create2(r) => r.write(w),
            Response::Stat(r) => r.write(w),
            Response::GetData(r) => r.write(w),
            Response::GetAcl(r) => r.write(w),
            Response::StringList(r) => r.write(w),
            Response::GetChildren2(r) => r.write(w),
            Response::Sync(r) => r.write(w),
            Response::Multi(r) => r.write(w),
            Response::GetAllChildrenNumber(r) => r.write(w),
            Response::WhoAmI(r) => r.write(w),
            Response::AddWatch(r) => r.write(w),
            Response::Sasl(r) => r.write(w),
        }
    }

    /// Decodes a success body for a request of opcode `op` (client side).
    pub fn decode(op: i32, body: Bytes) -> Result<Response, DecodeError> {
        let r = &mut Reader::new(body);
        Ok(match op {
            op::CREATE => Response::Create(CreateResponse::read(r)?),
            op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
                Response::Create2(Create2Response::read(r)?)
            }
            op::EXISTS | op::SET_DATA | op::SET_ACL => Response::Stat(StatResponse::read(r)?),
            // reconfig answers with the new config as a GetDataResponse.
            op::GET_DATA | op::RECONFIG => Response::GetData(GetDataResponse::read(r)?),
            op::GET_ACL => Response::GetAcl(GetAclResponse::read(r)?),
            op::GET_CHILDREN | op::GET_EPHEMERALS => {
                Response::StringList(StringListResponse::read(r)?)
            }
            op::GET_CHILDREN2 => Response::GetChildren2(GetChildren2Response::read(r)?),
            op::SYNC => Response::Sync(SyncResponse::read(r)?),
            op::MULTI | op::MULTI_READ => Response::Multi(MultiResponse::read(r)?),
            op::GET_ALL_CHILDREN_NUMBER => {
                Response::GetAllChildrenNumber(GetAllChildrenNumberResponse::read(r)?)
            }
            op::WHO_AM_I => Response::WhoAmI(WhoAmIResponse::read(r)?),
            op::ADD_WATCH => Response::AddWatch(ErrorResponse::read(r)?),
            op::SASL => Response::Sasl(SaslToken::read(r)?),
            op::DELETE
            | op::PING
            | op::AUTH
            | op::SET_WATCHES
            | op::SET_WATCHES2
            | op::CHECK_WATCHES
            | op::REMOVE_WATCHES
            | op::CLOSE_SESSION
            | op::DELETE_CONTAINER
            | op::CHECK => Response::Empty,
            other => return Err(DecodeError::UnknownOpcode(other)),
        })
    }

    /// A reply frame payload: header then (if `err == 0`) body.
    pub fn encode_reply(&self, header: ReplyHeader) -> Bytes {
        let mut w = Writer::new();
        header.write(&mut w);
        if header.err == 0 {
            self.write_body(&mut w);
        }
        w.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multi_frame(ops: &[(i32, Bytes)]) -> Bytes {
        let mut w = Writer::new();
        for (op, body) in ops {
            MultiHeader {
                op: *op,
                done: false,
                err: -1,
            }
            .write(&mut w);
            w.write_raw(body);
        }
        MultiHeader {
            op: -1,
            done: true,
            err: -1,
        }
        .write(&mut w);
        w.into_bytes()
    }

    fn get_data(path: &str) -> Bytes {
        PathWatchRequest {
            path: path.into(),
            watch: false,
        }
        .encode()
    }

    fn delete(path: &str) -> Bytes {
        DeleteRequest {
            path: path.into(),
            version: -1,
        }
        .encode()
    }

    fn reply_code(op: i32, body: Bytes) -> Option<ErrorCode> {
        Request::decode(op, body).err().map(|e| e.reply_code())
    }

    // Each case below was observed on ZooKeeper 3.8.0: the request is
    // refused with MARSHALLINGERROR (-5) (reference C, behaviour 48).
    #[test]
    fn reads_inside_multi_are_marshalling_errors() {
        let only_reads = multi_frame(&[(op::GET_DATA, get_data("/"))]);
        assert_eq!(
            reply_code(op::MULTI, only_reads),
            Some(ErrorCode::MarshallingError)
        );
        let mixed = multi_frame(&[(op::DELETE, delete("/zz")), (op::GET_DATA, get_data("/"))]);
        assert_eq!(
            reply_code(op::MULTI, mixed),
            Some(ErrorCode::MarshallingError)
        );
    }

    /// Mixed with reads they are refused; alone they decode, and the server
    /// refuses the request when it runs it (the pipeline's test checks
    /// that answer). Both checked on ZooKeeper 3.8.0 by the differential
    /// test.
    #[test]
    fn writes_inside_multi_read() {
        let mixed = multi_frame(&[(op::GET_DATA, get_data("/")), (op::DELETE, delete("/zz"))]);
        assert_eq!(
            reply_code(op::MULTI_READ, mixed),
            Some(ErrorCode::MarshallingError)
        );
        let mixed = multi_frame(&[(op::DELETE, delete("/zz")), (op::GET_DATA, get_data("/"))]);
        assert_eq!(
            reply_code(op::MULTI_READ, mixed),
            Some(ErrorCode::MarshallingError)
        );
        let writes = multi_frame(&[(op::DELETE, delete("/zz")), (op::DELETE, delete("/y"))]);
        let req = Request::decode(op::MULTI_READ, writes).expect("decodes");
        assert!(
            matches!(&req, Request::MultiRead(ops) if ops.len() == 2),
            "{req:?}"
        );
    }

    #[test]
    fn ops_not_allowed_in_multi_are_marshalling_errors() {
        let exists = multi_frame(&[(op::EXISTS, get_data("/"))]);
        assert_eq!(
            reply_code(op::MULTI, exists),
            Some(ErrorCode::MarshallingError)
        );
    }

    /// A null path is not "" for a read, a create or a delete: ZooKeeper
    /// fails them (MARSHALLINGERROR) where "" finds the root or is a bad
    /// path; setData's and sync's null path is "", as there.
    #[test]
    fn a_null_path_to_a_read_create_or_delete_does_not_decode() {
        let null = |watch: bool| {
            let mut b = (-1i32).to_be_bytes().to_vec();
            b.push(u8::from(watch));
            Bytes::from(b)
        };
        for op in [
            op::EXISTS,
            op::GET_DATA,
            op::GET_CHILDREN,
            op::GET_CHILDREN2,
        ] {
            assert_eq!(
                reply_code(op, null(true)),
                Some(ErrorCode::MarshallingError),
                "op {op}"
            );
        }
        let bare = Bytes::from_static(&[0xff; 4]);
        for op in [op::GET_ACL, op::GET_ALL_CHILDREN_NUMBER] {
            assert_eq!(
                reply_code(op, bare.clone()),
                Some(ErrorCode::MarshallingError),
                "op {op}"
            );
        }
        assert_eq!(reply_code(op::GET_DATA, get_data("")), None);
        assert_eq!(reply_code(op::SYNC, bare.clone()), None);
        let path_and_version = |len: i32| {
            let mut b = len.to_be_bytes().to_vec();
            b.extend_from_slice(&(-1i32).to_be_bytes());
            Bytes::from(b)
        };
        assert_eq!(
            reply_code(op::DELETE, path_and_version(-1)),
            Some(ErrorCode::MarshallingError)
        );
        assert_eq!(reply_code(op::DELETE, path_and_version(0)), None);
        let set_data_null = Bytes::from_static(&[0xff; 12]);
        assert_eq!(reply_code(op::SET_DATA, set_data_null.clone()), None);

        // Inside a multi or a multiRead a null path fails the whole
        // request, setData's and check's too (as on ZooKeeper 3.8.0).
        let multi = |op, body| multi_frame(&[(op::DELETE, delete("/a")), (op, body)]);
        for (op, body) in [
            (op::DELETE, path_and_version(-1)),
            (op::SET_DATA, set_data_null),
            (op::CHECK, path_and_version(-1)),
        ] {
            assert_eq!(
                reply_code(op::MULTI, multi(op, body)),
                Some(ErrorCode::MarshallingError),
                "op {op}"
            );
        }
        let reads = multi_frame(&[(op::GET_DATA, get_data("/")), (op::GET_DATA, null(false))]);
        assert_eq!(
            reply_code(op::MULTI_READ, reads),
            Some(ErrorCode::MarshallingError)
        );
    }

    #[test]
    fn write_ops_are_those_zookeeper_prepares_as_txns() {
        for op in [1, 15, 19, 21, 2, 5, 7, 14, 16] {
            assert!(Request::is_write_op(op), "op {op}");
        }
        // Reads, sync, watches and session ops are not; a bare check and
        // deleteContainer are refused before any of this.
        for op in [
            3, 4, 6, 8, 9, 11, 12, 13, 17, 18, 20, 22, 100, 101, 103, 104, 105, 106, 107,
        ] {
            assert!(!Request::is_write_op(op), "op {op}");
        }
    }

    #[test]
    fn bad_create_flags_inside_multi_still_decode() {
        // 3.8.0 decodes the multi and fails that op with BADARGUMENTS (-8)
        // in the MultiResponse: flag validation is not the codec's job.
        let create = CreateRequest {
            path: "/q".into(),
            data: None,
            acl: Some(Acl::open_unsafe()),
            flags: 9,
        }
        .encode();
        let req = Request::decode(op::MULTI, multi_frame(&[(op::CREATE, create)])).unwrap();
        assert!(matches!(&req, Request::Multi(ops) if ops.len() == 1));
    }

    #[test]
    fn unknown_and_internal_opcodes_are_unimplemented() {
        // Behaviour 17; 0 (notification), 10 and -10 (createSession) are not
        // client requests.
        for op in [0, 10, 50, op::CREATE_SESSION, op::ERROR] {
            assert_eq!(
                reply_code(op, Bytes::new()),
                Some(ErrorCode::Unimplemented),
                "op {op}"
            );
        }
    }

    #[test]
    fn multi_without_terminator_is_truncated() {
        let mut w = Writer::new();
        MultiHeader {
            op: op::DELETE,
            done: false,
            err: -1,
        }
        .write(&mut w);
        w.write_raw(&delete("/a"));
        assert!(matches!(
            Request::decode(op::MULTI, w.into_bytes()),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn create_ops_keep_their_opcode() {
        // The opcode decides the reply shape (reference C): create answers
        // CreateResponse, create2/createContainer Create2Response.
        let body = CreateRequest {
            path: "/c".into(),
            data: None,
            acl: Some(Acl::open_unsafe()),
            flags: 4,
        }
        .encode();
        for op in [op::CREATE, op::CREATE2, op::CREATE_CONTAINER] {
            assert_eq!(Request::decode(op, body.clone()).unwrap().op(), op);
        }
        assert!(matches!(
            Response::decode(op::CREATE_CONTAINER, Create2Response::default().encode()),
            Ok(Response::Create2(_))
        ));
    }
}
