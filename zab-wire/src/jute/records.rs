//! The records of `zookeeper.jute` that clients and servers exchange, with
//! the numeric vocabularies (opcodes, error codes, event types, create modes).
//! Field order is the wire order (reference C).

use bytes::Bytes;

use super::codec::{DecodeError, Jute, Reader, Writer};
use crate::jute_record;

jute_record! {
    /// An identity: `world:anyone`, `digest:user:hash`, `ip:127.0.0.1`, ...
    pub struct Id { pub scheme: String, pub id: String }
}

jute_record! {
    pub struct Acl { pub perms: i32, pub id: Id }
}

jute_record! {
    /// A znode's metadata as clients see it (68 bytes on the wire).
    pub struct Stat {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub data_length: i32,
        pub num_children: i32,
        pub pzxid: i64,
    }
}

jute_record! {
    pub struct RequestHeader { pub xid: i32, pub op: i32 }
}

jute_record! {
    pub struct ReplyHeader { pub xid: i32, pub zxid: i64, pub err: i32 }
}

jute_record! {
    pub struct MultiHeader { pub op: i32, pub done: bool, pub err: i32 }
}

/// The readOnly byte that 3.4+ clients append to their handshake, and a
/// server to its answer to them; older clients leave it out, and the frame
/// ends before it.
fn read_trailing_flag(r: &mut Reader) -> Result<Option<bool>, DecodeError> {
    match r.remaining() {
        0 => Ok(None),
        _ => r.read_bool().map(Some),
    }
}

fn write_trailing_flag(w: &mut Writer, flag: Option<bool>) {
    if let Some(flag) = flag {
        w.write_bool(flag);
    }
}

/// The first frame a client sends. `read_only` is `None` for pre-3.4 clients
/// that do not send the trailing byte; such clients must get a
/// [`ConnectResponse`] without it (reference B, "old-client detection").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub time_out: i32,
    pub session_id: i64,
    pub passwd: Bytes,
    pub read_only: Option<bool>,
}

impl Jute for ConnectRequest {
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            time_out: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: Bytes::read(r)?,
            read_only: read_trailing_flag(r)?,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.write_i32(self.protocol_version);
        w.write_i64(self.last_zxid_seen);
        w.write_i32(self.time_out);
        w.write_i64(self.session_id);
        self.passwd.write(w);
        write_trailing_flag(w, self.read_only);
    }
}

/// The first frame a server sends. `read_only` is written only when the
/// request carried it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub time_out: i32,
    pub session_id: i64,
    pub passwd: Bytes,
    pub read_only: Option<bool>,
}

impl Jute for ConnectResponse {
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: r.read_i32()?,
            time_out: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: Bytes::read(r)?,
            read_only: read_trailing_flag(r)?,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.write_i32(self.protocol_version);
        w.write_i32(self.time_out);
        w.write_i64(self.session_id);
        self.passwd.write(w);
        write_trailing_flag(w, self.read_only);
    }
}

jute_record! {
    pub struct AuthPacket { pub auth_type: i32, pub scheme: String, pub auth: Bytes }
}

jute_record! {
    /// A watch notification body (after `ReplyHeader{xid: -1}`).
    pub struct WatcherEvent { pub event_type: i32, pub state: i32, pub path: String }
}

jute_record! {
    pub struct SetWatches {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
    }
}

jute_record! {
    pub struct SetWatches2 {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
        pub persistent_watches: Vec<String>,
        pub persistent_recursive_watches: Vec<String>,
    }
}

jute_record! {
    /// Ops 1, 15 and 19. A null ACL list (`None`) is refused as InvalidACL.
    pub struct CreateRequest {
        pub path: String,
        pub data: Option<Bytes>,
        pub acl: Option<Vec<Acl>>,
        pub flags: i32,
    }
}

jute_record! {
    /// Op 21.
    pub struct CreateTtlRequest {
        pub path: String,
        pub data: Option<Bytes>,
        pub acl: Option<Vec<Acl>>,
        pub flags: i32,
        pub ttl: i64,
    }
}

jute_record! {
    pub struct DeleteRequest { pub path: String, pub version: i32 }
}

jute_record! {
    /// Ops 3, 4, 8 and 12 all carry a path and a watch flag.
    pub struct PathWatchRequest { pub path: String, pub watch: bool }
}

jute_record! {
    pub struct SetDataRequest { pub path: String, pub data: Option<Bytes>, pub version: i32 }
}

jute_record! {
    pub struct CheckVersionRequest { pub path: String, pub version: i32 }
}

jute_record! {
    /// Ops 6 (getACL), 9 (sync), 103 (getEphemerals), 104 (getAllChildrenNumber).
    pub struct PathRequest { pub path: String }
}

jute_record! {
    pub struct SetAclRequest { pub path: String, pub acl: Option<Vec<Acl>>, pub version: i32 }
}

jute_record! {
    pub struct ReconfigRequest {
        pub joining_servers: String,
        pub leaving_servers: String,
        pub new_members: String,
        pub cur_config_id: i64,
    }
}

jute_record! {
    /// Ops 17 (checkWatches) and 18 (removeWatches).
    pub struct WatchesRequest { pub path: String, pub watcher_type: i32 }
}

jute_record! {
    pub struct AddWatchRequest { pub path: String, pub mode: i32 }
}

jute_record! {
    /// `GetSASLRequest` / `SetSASLResponse`: a null token (length -1) is
    /// what ZooKeeper answers when it has nothing to send.
    pub struct SaslToken { pub token: Option<Bytes> }
}

jute_record! {
    pub struct CreateResponse { pub path: String }
}

jute_record! {
    pub struct Create2Response { pub path: String, pub stat: Stat }
}

jute_record! {
    /// Exists, setData and setACL responses.
    pub struct StatResponse { pub stat: Stat }
}

jute_record! {
    pub struct GetDataResponse { pub data: Option<Bytes>, pub stat: Stat }
}

jute_record! {
    pub struct GetAclResponse { pub acl: Vec<Acl>, pub stat: Stat }
}

jute_record! {
    /// getChildren (8) and getEphemerals (103) responses: a list of strings.
    pub struct StringListResponse { pub items: Vec<String> }
}

jute_record! {
    pub struct GetChildren2Response { pub children: Vec<String>, pub stat: Stat }
}

jute_record! {
    pub struct GetAllChildrenNumberResponse { pub total_number: i32 }
}

jute_record! {
    /// sync's echo of its path.
    pub struct SyncResponse { pub path: String }
}

jute_record! {
    pub struct ErrorResponse { pub err: i32 }
}

jute_record! {
    pub struct ClientInfo { pub auth_scheme: String, pub user: String }
}

jute_record! {
    pub struct WhoAmIResponse { pub client_info: Vec<ClientInfo> }
}

/// Request opcodes (`ZooDefs.OpCode`).
pub mod op {
    pub const NOTIFICATION: i32 = 0;
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_ACL: i32 = 6;
    pub const SET_ACL: i32 = 7;
    pub const GET_CHILDREN: i32 = 8;
    pub const SYNC: i32 = 9;
    pub const PING: i32 = 11;
    pub const GET_CHILDREN2: i32 = 12;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CHECK_WATCHES: i32 = 17;
    pub const REMOVE_WATCHES: i32 = 18;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_TTL: i32 = 21;
    pub const MULTI_READ: i32 = 22;
    pub const AUTH: i32 = 100;
    pub const SET_WATCHES: i32 = 101;
    pub const SASL: i32 = 102;
    pub const GET_EPHEMERALS: i32 = 103;
    pub const GET_ALL_CHILDREN_NUMBER: i32 = 104;
    pub const SET_WATCHES2: i32 = 105;
    pub const ADD_WATCH: i32 = 106;
    pub const WHO_AM_I: i32 = 107;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;
}

/// Special xids (reference C).
pub mod xid {
    pub const NOTIFICATION: i32 = -1;
    pub const PING: i32 = -2;
    pub const AUTH: i32 = -4;
    pub const SET_WATCHES: i32 = -8;
}

/// `KeeperException.Code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ErrorCode {
    Ok = 0,
    SystemError = -1,
    RuntimeInconsistency = -2,
    DataInconsistency = -3,
    ConnectionLoss = -4,
    MarshallingError = -5,
    Unimplemented = -6,
    OperationTimeout = -7,
    BadArguments = -8,
    UnknownSession = -12,
    NewConfigNoQuorum = -13,
    ReconfigInProgress = -14,
    ApiError = -100,
    NoNode = -101,
    NoAuth = -102,
    BadVersion = -103,
    NoChildrenForEphemerals = -108,
    NodeExists = -110,
    NotEmpty = -111,
    SessionExpired = -112,
    InvalidCallback = -113,
    InvalidAcl = -114,
    AuthFailed = -115,
    SessionMoved = -118,
    NotReadOnly = -119,
    EphemeralOnLocalSession = -120,
    NoWatcher = -121,
    RequestTimeout = -122,
    ReconfigDisabled = -123,
    SessionClosedRequireSaslAuth = -124,
    QuotaExceeded = -125,
    ThrottledOp = -127,
}

/// `KeeperException.Code` by name and number, e.g. `NoNode (-101)`.
impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?} ({})", self.code())
    }
}

/// A reply's error code is an error a caller can `?` (the `Ok` code, 0, is
/// never one in a reply).
impl std::error::Error for ErrorCode {}

impl ErrorCode {
    pub fn code(self) -> i32 {
        self as i32
    }
    pub fn from_code(code: i32) -> Option<ErrorCode> {
        use ErrorCode::*;
        const ALL: [ErrorCode; 32] = [
            Ok,
            SystemError,
            RuntimeInconsistency,
            DataInconsistency,
            ConnectionLoss,
            MarshallingError,
            Unimplemented,
            OperationTimeout,
            BadArguments,
            UnknownSession,
            NewConfigNoQuorum,
            ReconfigInProgress,
            ApiError,
            NoNode,
            NoAuth,
            BadVersion,
            NoChildrenForEphemerals,
            NodeExists,
            NotEmpty,
            SessionExpired,
            InvalidCallback,
            InvalidAcl,
            AuthFailed,
            SessionMoved,
            NotReadOnly,
            EphemeralOnLocalSession,
            NoWatcher,
            RequestTimeout,
            ReconfigDisabled,
            SessionClosedRequireSaslAuth,
            QuotaExceeded,
            ThrottledOp,
        ];
        ALL.into_iter().find(|c| *c as i32 == code)
    }
}

/// `Watcher.Event.EventType` values a server sends.
pub mod event_type {
    pub const NONE: i32 = -1;
    pub const NODE_CREATED: i32 = 1;
    pub const NODE_DELETED: i32 = 2;
    pub const NODE_DATA_CHANGED: i32 = 3;
    pub const NODE_CHILDREN_CHANGED: i32 = 4;
}

/// `Watcher.Event.KeeperState`: servers only ever send SyncConnected.
pub const STATE_SYNC_CONNECTED: i32 = 3;

/// `WatcherType` for checkWatches / removeWatches.
pub mod watcher_type {
    pub const CHILDREN: i32 = 1;
    pub const DATA: i32 = 2;
    pub const ANY: i32 = 3;
    pub const PERSISTENT: i32 = 4;
    pub const PERSISTENT_RECURSIVE: i32 = 5;
}

/// `AddWatchMode`.
pub mod add_watch_mode {
    pub const PERSISTENT: i32 = 0;
    pub const PERSISTENT_RECURSIVE: i32 = 1;
}

/// Permission bits (`ZooDefs.Perms`).
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = 31;
}

/// `CreateMode`, from a create request's `flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreateMode {
    Persistent,
    Ephemeral,
    PersistentSequential,
    EphemeralSequential,
    Container,
    PersistentWithTtl,
    PersistentSequentialWithTtl,
}

impl CreateMode {
    pub fn from_flags(flags: i32) -> Option<CreateMode> {
        Some(match flags {
            0 => CreateMode::Persistent,
            1 => CreateMode::Ephemeral,
            2 => CreateMode::PersistentSequential,
            3 => CreateMode::EphemeralSequential,
            4 => CreateMode::Container,
            5 => CreateMode::PersistentWithTtl,
            6 => CreateMode::PersistentSequentialWithTtl,
            _ => return None,
        })
    }
    pub fn flags(self) -> i32 {
        match self {
            CreateMode::Persistent => 0,
            CreateMode::Ephemeral => 1,
            CreateMode::PersistentSequential => 2,
            CreateMode::EphemeralSequential => 3,
            CreateMode::Container => 4,
            CreateMode::PersistentWithTtl => 5,
            CreateMode::PersistentSequentialWithTtl => 6,
        }
    }
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }
    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }
    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }
}

impl Id {
    pub fn new(scheme: &str, id: &str) -> Id {
        Id {
            scheme: scheme.to_owned(),
            id: id.to_owned(),
        }
    }
    pub fn anyone() -> Id {
        Id::new("world", "anyone")
    }
}

impl Acl {
    /// `ZooDefs.Ids.OPEN_ACL_UNSAFE`.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: perms::ALL,
            id: Id::anyone(),
        }]
    }
    /// `ZooDefs.Ids.READ_ACL_UNSAFE`.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: perms::READ,
            id: Id::anyone(),
        }]
    }
    /// `ZooDefs.Ids.CREATOR_ALL_ACL`.
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl {
            perms: perms::ALL,
            id: Id::new("auth", ""),
        }]
    }
}
