//! The pipeline driven without sockets, disk or clocks: inputs in, actions
//! out, the log made "durable" by feeding `Input::Durable` back.

use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use zab_tree::acl::AuthConfig;
use zab_tree::session_tracker::{session_password, SessionOwner};
use zab_tree::watch_manager::ConnectionId;
use zab_tree::{DataTree, PrepareConfig};
use zab_wire::jute::{
    event_type, op, Acl, AddWatchRequest, AuthPacket, ConnectRequest, ConnectResponse,
    CreateRequest, DecodeError, ErrorCode, GetDataResponse, Jute, PathWatchRequest, Reader,
    ReplyHeader, Request, RequestHeader, SetAclRequest, SetDataRequest, SetWatches, WatcherEvent,
    WatchesRequest,
};
use zab_wire::{ServerId, SessionId, Zxid};

use prost::Message;
use zab_wire::jute::{Id, PathRequest};
use zab_wire::proto::{ForwardedRequest, Txn};
use zab_wire::Epoch;

use super::{Action, Input, Mode, Now, Pipeline, PipelineConfig};

const T0: i64 = 1_700_000_000_000;

fn config() -> PipelineConfig {
    PipelineConfig {
        server_id: ServerId(1),
        tick_time_ms: 2000,
        min_session_timeout_ms: 4000,
        max_session_timeout_ms: 40000,
        snap_count: 100_000,
        snap_size_limit_bytes: 4 << 40,
        periodic_snapshots: true,
        container_check_interval_ms: 60_000,
        container_max_per_minute: 10_000,
        prepare: PrepareConfig::default(),
        auth: AuthConfig::default(),
        sasl: None,
        kerberos: None,
        allow_sasl_failed_clients: false,
        enforce_auth: None,
        local_sessions: false,
        local_sessions_upgrading: false,
    }
}

/// What a connection received, decoded.
#[derive(Debug, PartialEq)]
enum Got {
    Connected(ConnectResponse),
    Reply(ReplyHeader, Bytes),
    Event(ReplyHeader, WatcherEvent),
    Closed,
}

struct Harness {
    p: Pipeline,
    /// The monotonic clock; the wall clock reads `now + wall_step`.
    now: i64,
    wall_step: i64,
    /// Appends not yet reported durable.
    unsynced: Vec<Zxid>,
    appended: Vec<Zxid>,
    snapshots: usize,
    /// Appended txns, by zxid (to hand to learners as committed).
    txns: Vec<Txn>,
    /// Learner: requests for the leader.
    forwarded: Vec<(ForwardedRequest, Vec<Id>)>,
    revalidations: Vec<(SessionId, i32)>,
    inbox: Vec<(ConnectionId, Got)>,
    connected: std::collections::HashSet<ConnectionId>,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(config())
    }

    fn with(cfg: PipelineConfig) -> Harness {
        Harness::in_mode(cfg, Mode::Standalone)
    }

    fn in_mode(cfg: PipelineConfig, mode: Mode) -> Harness {
        Harness::over(cfg, mode, DataTree::new())
    }

    /// A pipeline serving `tree`, as after an election or a restart.
    fn over(cfg: PipelineConfig, mode: Mode, tree: DataTree) -> Harness {
        Harness {
            p: Pipeline::with_mode(cfg, mode, tree, Now::at(T0)),
            txns: Vec::new(),
            forwarded: Vec::new(),
            revalidations: Vec::new(),
            now: T0,
            wall_step: 0,
            unsynced: Vec::new(),
            appended: Vec::new(),
            snapshots: 0,
            inbox: Vec::new(),
            connected: Default::default(),
        }
    }

    fn feed(&mut self, input: Input) {
        let mut out = Vec::new();
        let now = Now {
            wall_ms: self.now + self.wall_step,
            elapsed_ms: self.now,
        };
        self.p.handle(now, input, &mut out);
        for a in out {
            match a {
                Action::Send { conn, frame } => {
                    let len = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
                    assert_eq!(len, frame.len() - 4, "length prefix");
                    let payload = frame.slice(4..);
                    let got = if !self.connected.contains(&conn) {
                        self.connected.insert(conn);
                        Got::Connected(ConnectResponse::decode(payload).expect("connect response"))
                    } else {
                        let mut r = Reader::new(payload);
                        let h = ReplyHeader::read(&mut r).expect("reply header");
                        if h.xid == -1 {
                            Got::Event(h, WatcherEvent::read(&mut r).expect("event"))
                        } else {
                            Got::Reply(h, r.rest())
                        }
                    };
                    self.inbox.push((conn, got));
                }
                Action::Close { conn } => self.inbox.push((conn, Got::Closed)),
                Action::Append { zxid, txn } => {
                    self.unsynced.push(zxid);
                    self.appended.push(zxid);
                    let decoded = Txn::decode(txn.clone()).expect("appended txn decodes");
                    // Exactly one txn: txns are cut from a shared buffer.
                    assert_eq!(decoded.encode_to_vec(), txn, "one txn per append");
                    assert_eq!(decoded.zxid, zxid.0);
                    self.txns.push(decoded);
                }
                Action::Snapshot(_) => self.snapshots += 1,
                Action::Forward { request, auth } => self.forwarded.push((request, auth)),
                Action::Revalidate {
                    session,
                    timeout_ms,
                } => self.revalidations.push((session, timeout_ms)),
            }
        }
    }

    /// Reports every appended txn durable.
    fn sync(&mut self) {
        if let Some(&last) = self.unsynced.last() {
            self.unsynced.clear();
            self.feed(Input::Durable { zxid: last });
        }
    }

    fn take(&mut self, conn: ConnectionId) -> Vec<Got> {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.inbox)
            .into_iter()
            .partition(|(c, _)| *c == conn);
        self.inbox = rest;
        mine.into_iter().map(|(_, g)| g).collect()
    }

    fn accept(&mut self, id: u64) -> ConnectionId {
        let conn = ConnectionId(id);
        let remote = SocketAddr::from((Ipv4Addr::LOCALHOST, 40000 + id as u16));
        self.feed(Input::Accepted {
            conn,
            remote,
            identities: Vec::new(),
        });
        conn
    }

    /// A new session, established (its createSession txn synced).
    fn session(&mut self, id: u64) -> (ConnectionId, SessionId) {
        let conn = self.accept(id);
        self.feed(Input::Connect {
            conn,
            request: connect_request(0, 0, Some(false)),
        });
        self.sync();
        match self.take(conn).as_slice() {
            [Got::Connected(r)] => (conn, SessionId(r.session_id)),
            other => panic!("expected a ConnectResponse, got {other:?}"),
        }
    }

    /// A new session whose first request created the ephemeral `path`
    /// (answered, and taken from the inbox).
    fn session_with_ephemeral(&mut self, id: u64, path: &str) -> ConnectionId {
        let (conn, _) = self.session(id);
        self.request(conn, 1, create(path, "", 1));
        self.sync();
        assert_eq!(reply(&self.take(conn)[0]).0.err, 0, "create {path}");
        conn
    }

    fn request(&mut self, conn: ConnectionId, xid: i32, req: Request) {
        let header = RequestHeader { xid, op: req.op() };
        self.feed(Input::Request {
            conn,
            header,
            body: Ok(req),
        });
    }
}

fn connect_request(session_id: i64, last_zxid: i64, read_only: Option<bool>) -> ConnectRequest {
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: last_zxid,
        time_out: 10_000,
        session_id,
        passwd: Bytes::from_static(&[0; 16]),
        read_only,
    }
}

fn create(path: &str, data: &str, flags: i32) -> Request {
    Request::Create {
        op: op::CREATE,
        req: CreateRequest {
            path: path.into(),
            data: Some(Bytes::copy_from_slice(data.as_bytes())),
            acl: Some(Acl::open_unsafe()),
            flags,
        },
    }
}

fn get_data(path: &str, watch: bool) -> Request {
    Request::GetData(PathWatchRequest {
        path: path.into(),
        watch,
    })
}

fn reply(got: &Got) -> (&ReplyHeader, &Bytes) {
    match got {
        Got::Reply(h, b) => (h, b),
        other => panic!("expected a reply, got {other:?}"),
    }
}

#[test]
fn new_session_is_answered_only_after_its_txn_is_durable() {
    let mut h = Harness::new();
    let conn = h.accept(1);
    h.feed(Input::Connect {
        conn,
        request: connect_request(0, 0, Some(false)),
    });
    assert_eq!(h.appended.len(), 1, "createSession is a txn");
    assert!(
        h.take(conn).is_empty(),
        "no ConnectResponse before the txn is durable"
    );
    h.sync();
    let got = h.take(conn);
    let [Got::Connected(r)] = got.as_slice() else {
        panic!("{got:?}")
    };
    assert_eq!(r.time_out, 10_000);
    assert_eq!(r.read_only, Some(false));
    // Standalone session ids carry server id 1 in the top byte (reference B).
    assert_eq!(r.session_id >> 56, 1);
    assert_eq!(
        r.passwd.as_ref(),
        session_password(SessionId(r.session_id)).as_slice()
    );
}

#[test]
fn old_clients_get_the_short_connect_response() {
    let mut h = Harness::new();
    let conn = h.accept(1);
    h.feed(Input::Connect {
        conn,
        request: connect_request(0, 0, None),
    });
    h.sync();
    let got = h.take(conn);
    let [Got::Connected(r)] = got.as_slice() else {
        panic!("{got:?}")
    };
    assert_eq!(
        r.read_only, None,
        "behaviour 39: no readOnly byte for old clients"
    );
}

#[test]
fn timeout_is_clamped_to_the_configured_range() {
    let mut h = Harness::new();
    let conn = h.accept(1);
    let mut req = connect_request(0, 0, Some(false));
    req.time_out = 1;
    h.feed(Input::Connect { conn, request: req });
    h.sync();
    let got = h.take(conn);
    let [Got::Connected(r)] = got.as_slice() else {
        panic!("{got:?}")
    };
    assert_eq!(r.time_out, 4000, "behaviour 33");
}

#[test]
fn a_read_behind_an_unapplied_write_of_its_session_waits_for_it() {
    let mut h = Harness::new();
    let (conn, _) = h.session(1);
    h.request(conn, 1, create("/a", "v1", 0));
    h.request(conn, 2, get_data("/a", false));
    assert!(
        h.take(conn).is_empty(),
        "neither the write nor the read may be answered yet"
    );
    h.sync();
    let got = h.take(conn);
    assert_eq!(got.len(), 2, "{got:?}");
    let (h1, _) = reply(&got[0]);
    let (h2, body) = reply(&got[1]);
    assert_eq!((h1.xid, h1.err), (1, 0));
    assert_eq!((h2.xid, h2.err), (2, 0));
    let data = GetDataResponse::decode(body.clone()).expect("getData body");
    assert_eq!(
        data.data.as_deref(),
        Some(&b"v1"[..]),
        "the read sees its session's earlier write"
    );
}

#[test]
fn another_sessions_read_is_answered_at_once_from_applied_state() {
    let mut h = Harness::new();
    let (a, _) = h.session(1);
    let (b, _) = h.session(2);
    h.request(a, 1, create("/a", "v1", 0));
    h.request(b, 1, get_data("/a", false));
    let got = h.take(b);
    let (hdr, _) = reply(&got[0]);
    assert_eq!(hdr.err, ErrorCode::NoNode.code(), "not applied yet: NoNode");
    h.sync();
    assert_eq!(h.take(a).len(), 1);
}

#[test]
fn watch_event_precedes_the_reply_that_reveals_the_change() {
    let mut h = Harness::new();
    let (conn, _) = h.session(1);
    h.request(conn, 1, create("/w", "v1", 0));
    h.sync();
    h.request(conn, 2, get_data("/w", true));
    h.take(conn);
    h.request(
        conn,
        3,
        Request::SetData(SetDataRequest {
            path: "/w".into(),
            data: Some(Bytes::from_static(b"v2")),
            version: -1,
        }),
    );
    h.sync();
    let got = h.take(conn);
    assert_eq!(got.len(), 2, "{got:?}");
    let Got::Event(eh, ev) = &got[0] else {
        panic!("event first (behaviour 23), got {got:?}")
    };
    assert_eq!(ev.event_type, event_type::NODE_DATA_CHANGED);
    assert_eq!(ev.path, "/w");
    let (rh, _) = reply(&got[1]);
    assert_eq!(rh.xid, 3);
    // ZooKeeper ≥ 3.9: the event carries the zxid of the txn that fired it.
    assert_eq!(eh.zxid, rh.zxid);
}

/// A watcher without READ on the changed node is not told, and its
/// one-shot watch is used up all the same: ZooKeeper triggers the watch,
/// then `ServerCnxn.process` drops the event (3.8.4+, 3.9.2+; seen on
/// Debian's 3.8.0). NodeChildrenChanged goes by the parent's ACL.
#[test]
fn watch_events_go_only_to_watchers_that_may_read_the_node() {
    let mut h = Harness::new();
    let (owner, _) = h.session(1);
    let (other, _) = h.session(2);
    h.request(
        owner,
        1,
        Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: Bytes::from_static(b"user:pass"),
        }),
    );
    let secret = vec![Acl {
        perms: 31,
        id: Id::new("digest", &zab_tree::acl::digest_id("user:pass")),
    }];
    let exists = |path: &str| {
        Request::Exists(PathWatchRequest {
            path: path.into(),
            watch: true,
        })
    };
    for (xid, r) in [(1, exists("/s")), (2, exists("/open"))] {
        h.request(other, xid, r);
    }
    h.request(
        other,
        3,
        Request::GetChildren(PathWatchRequest {
            path: "/".into(),
            watch: true,
        }),
    );
    h.take(other);
    h.take(owner);

    let mut create_s = create("/s", "x", 0);
    if let Request::Create { req, .. } = &mut create_s {
        req.acl = Some(secret);
    }
    h.request(owner, 2, create_s);
    h.request(owner, 3, create("/open", "", 0));
    h.sync();
    let events: Vec<(i32, String)> = h
        .take(other)
        .into_iter()
        .map(|g| match g {
            Got::Event(_, e) => (e.event_type, e.path),
            other => panic!("{other:?}"),
        })
        .collect();
    // NodeCreated /s is withheld; / is open, so its child watch fires.
    assert_eq!(
        events,
        [
            (event_type::NODE_CHILDREN_CHANGED, "/".to_string()),
            (event_type::NODE_CREATED, "/open".to_string())
        ]
    );
    // The withheld watch is gone: opening /s and changing it tells no one.
    h.request(
        owner,
        4,
        Request::SetAcl(SetAclRequest {
            path: "/s".into(),
            acl: Some(Acl::open_unsafe()),
            version: -1,
        }),
    );
    h.request(
        owner,
        5,
        Request::SetData(SetDataRequest {
            path: "/s".into(),
            data: None,
            version: -1,
        }),
    );
    h.sync();
    assert!(h.take(other).is_empty());
}

#[test]
fn failed_write_still_consumes_a_zxid() {
    let mut h = Harness::new();
    let (conn, _) = h.session(1);
    h.request(conn, 1, create("/a", "", 0));
    h.request(conn, 2, create("/a", "", 0));
    h.sync();
    let got = h.take(conn);
    let (h1, _) = reply(&got[0]);
    let (h2, body) = reply(&got[1]);
    assert_eq!(h2.err, ErrorCode::NodeExists.code());
    assert!(
        body.is_empty(),
        "behaviour 18: error replies are the header alone"
    );
    assert_eq!(h2.zxid, h1.zxid + 1, "behaviour 10");
}

#[test]
fn unknown_opcode_gets_unimplemented_then_close() {
    let mut h = Harness::new();
    let (conn, _) = h.session(1);
    h.feed(Input::Request {
        conn,
        header: RequestHeader { xid: 5, op: 50 },
        body: Err(DecodeError::UnknownOpcode(50)),
    });
    let got = h.take(conn);
    let (hdr, _) = reply(&got[0]);
    assert_eq!((hdr.xid, hdr.err), (5, ErrorCode::Unimplemented.code()));
    assert_eq!(got[1], Got::Closed);
}

#[test]
fn bare_check_is_refused_without_consuming_a_zxid() {
    let mut h = Harness::new();
    let (conn, _) = h.session(1);
    let before = h.appended.len();
    h.request(
        conn,
        1,
        Request::Check(zab_wire::jute::CheckVersionRequest {
            path: "/".into(),
            version: 0,
        }),
    );
    assert_eq!(h.appended.len(), before, "behaviour 19: nothing is logged");
    let got = h.take(conn);
    assert_eq!(reply(&got[0]).0.err, ErrorCode::Unimplemented.code());
    assert_eq!(got[1], Got::Closed);
}

#[test]
fn client_ahead_of_the_server_is_refused_without_answer() {
    let mut h = Harness::new();
    let conn = h.accept(1);
    h.feed(Input::Connect {
        conn,
        request: connect_request(0, 0x5_0000_0000, Some(false)),
    });
    assert_eq!(h.take(conn), vec![Got::Closed], "behaviour 38");
    assert!(h.appended.is_empty());
}

#[test]
fn resuming_with_a_wrong_password_gets_timeout_zero_and_closes_the_old_connection() {
    let mut h = Harness::new();
    let (old, session) = h.session(1);
    let conn = h.accept(2);
    let mut req = connect_request(session.0, 0, Some(false));
    req.passwd = Bytes::from_static(&[7; 16]);
    h.feed(Input::Connect { conn, request: req });
    assert_eq!(h.take(old), vec![Got::Closed], "behaviour 35");
    let got = h.take(conn);
    let Got::Connected(r) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!((r.time_out, r.session_id), (0, 0));
    assert_eq!(got[1], Got::Closed);
}

/// The connection's `cons` figures change as ZooKeeper's `ServerCnxn`
/// fields do (checked on 3.8.0): a new session's createSession is answered
/// as `SESS` with cxid 0 at its txn's zxid; an answered request records
/// its op, cxid, zxid and latency, a ping all but the cxid; `crst` puts
/// back `NA` and -1; a resumed session starts from Java's defaults.
#[test]
fn connection_figures_follow_the_answers_as_zookeeper_records_them() {
    let mut h = Harness::new();
    let conn = h.accept(1);
    h.feed(Input::Connect {
        conn,
        request: connect_request(0, 0, Some(false)),
    });
    h.now += 3;
    h.sync();
    let session = match h.take(conn).as_slice() {
        [Got::Connected(r)] => SessionId(r.session_id),
        other => panic!("{other:?}"),
    };
    let stats = |h: &Harness| {
        let (.., s) = h.p.connections().next().expect("the connection");
        s.clone()
    };
    let s = stats(&h);
    let created = h.p.tree().last_zxid().0;
    assert_eq!(
        (s.last_op, s.last_cxid, s.last_zxid, s.last_response_ms),
        ("SESS", 0, created, h.now)
    );
    assert_eq!(
        (s.last_latency_ms, s.max_latency_ms, s.latency_count),
        (3, 3, 1)
    );
    // ZooKeeper's per-connection minimum starts at Java's 0, so no
    // latency is below it until `crst`.
    assert_eq!(s.min_latency_ms, 0);

    h.request(conn, 5, get_data("/", false));
    h.now += 2;
    h.request(conn, -2, Request::Ping);
    h.take(conn);
    let s = stats(&h);
    assert_eq!((s.last_op, s.last_cxid, s.last_zxid), ("PING", 5, created));
    assert_eq!((s.received, s.sent, s.last_response_ms), (3, 3, h.now));

    h.p.reset_connection_stats();
    let s = stats(&h);
    assert_eq!(
        (s.last_op, s.last_cxid, s.last_zxid, s.last_response_ms),
        ("NA", -1, -1, 0)
    );
    assert_eq!((s.received, s.sent, s.min_latency_ms), (0, 0, i64::MAX));
    h.request(conn, -2, Request::Ping);
    let s = stats(&h);
    assert_eq!((s.last_op, s.last_cxid, s.min_latency_ms), ("PING", -1, 0));

    // The session resumed on a new connection: nothing answered there yet.
    let moved = h.accept(2);
    let mut req = connect_request(session.0, created, Some(false));
    req.passwd = Bytes::copy_from_slice(&session_password(session));
    h.feed(Input::Connect {
        conn: moved,
        request: req,
    });
    let (.., s) =
        h.p.connections()
            .find(|(c, ..)| *c == moved)
            .expect("the resumed connection");
    assert_eq!(
        (s.last_op, s.last_cxid, s.last_zxid, s.last_response_ms),
        ("null", 0, 0, 0)
    );
}

/// A write answered by an error txn leaves `lop` at `NA` (ZooKeeper throws
/// before it names the op), and events sent for setWatches count as sent
/// packets like any other (checked on 3.8.0 by the differential test).
#[test]
fn failed_writes_show_na_and_set_watches_events_count_as_sent() {
    let mut h = Harness::new();
    let (conn, _) = h.session(1);
    h.request(conn, 1, create("/x", "", 0));
    h.request(conn, 2, create("/x", "", 0));
    h.sync();
    h.take(conn);
    let stats = |h: &Harness| {
        let (.., s) = h.p.connections().next().expect("the connection");
        s.clone()
    };
    let s = stats(&h);
    assert_eq!((s.last_op, s.last_cxid), ("NA", 2));

    let sent = s.sent;
    h.request(
        conn,
        -8,
        Request::SetWatches(SetWatches {
            relative_zxid: 0,
            data_watches: vec!["/x".into(), "/gone".into()],
            exist_watches: vec![],
            child_watches: vec![],
        }),
    );
    let got = h.take(conn);
    assert_eq!(got.len(), 3, "two events and the reply: {got:?}");
    let s = stats(&h);
    assert_eq!((s.sent - sent, s.last_op), (3, "SETW"));
}

/// A session's order holds across its connections on one server: a
/// client whose write was still in flight when its connection went (its
/// read timed out) reconnects here, and its next read waits for that
/// write, as ZooKeeper's `CommitProcessor` holds a session's requests
/// behind its pending writes whatever connection sent them. (A recipe
/// looking for the node it just created would otherwise miss it.)
#[test]
fn a_read_on_a_sessions_new_connection_waits_for_its_old_connections_write() {
    let mut h = Harness::new();
    let (old, session) = h.session(1);
    h.request(old, 1, create("/x", "", 0));
    h.feed(Input::Disconnected { conn: old });
    let conn = h.accept(2);
    let mut req = connect_request(session.0, 0, Some(false));
    req.passwd = Bytes::copy_from_slice(&session_password(session));
    h.feed(Input::Connect { conn, request: req });
    assert!(matches!(h.take(conn).as_slice(), [Got::Connected(_)]));
    h.request(
        conn,
        1,
        Request::Exists(PathWatchRequest {
            path: "/x".into(),
            watch: false,
        }),
    );
    assert!(h.take(conn).is_empty(), "answered before the earlier write");
    h.sync();
    let got = h.take(conn);
    assert_eq!(got.len(), 1, "{got:?}");
    let (header, _) = reply(&got[0]);
    assert_eq!((header.xid, header.err), (1, 0), "the node exists");
}

/// On a learner, the session's new connection reuses an xid its old one
/// had in flight (kazoo counts from 1 on every connection): the old
/// write's txn is nobody's answer, and the new write gets its own.
#[test]
fn a_learner_answers_a_new_connection_with_its_own_txn_not_an_earlier_ones() {
    let mut d = Duo::new();
    let (old, session) = d.learner_session(1);
    d.learner.request(
        old,
        1,
        Request::Delete(zab_wire::jute::DeleteRequest {
            path: "/nope".into(),
            version: -1,
        }),
    );
    // The leader commits the delete; the learner has not applied it yet.
    let held = d.commit_forwarded();
    d.learner.feed(Input::Disconnected { conn: old });
    let conn = resume_on_learner(&mut d.leader, &mut d.learner, 2, session, LINK);
    d.learner.request(
        conn,
        1,
        Request::SetData(SetDataRequest {
            path: "/".into(),
            data: None,
            version: 99,
        }),
    );
    for txn in held {
        d.learner.feed(Input::Committed { txn });
    }
    assert!(
        d.learner.take(conn).is_empty(),
        "the delete's NONODE answered"
    );
    d.round_trip();
    let got = d.learner.take(conn);
    assert_eq!(got.len(), 1, "{got:?}");
    let (header, _) = reply(&got[0]);
    assert_eq!((header.xid, header.err), (1, ErrorCode::BadVersion.code()));
}

#[test]
fn resuming_with_the_right_password_keeps_the_session() {
    let mut h = Harness::new();
    let (old, session) = h.session(1);
    h.request(old, 1, create("/e", "", 1));
    h.sync();
    h.take(old);
    let conn = h.accept(2);
    let mut req = connect_request(session.0, h.p.tree().last_zxid().0, Some(false));
    req.passwd = Bytes::copy_from_slice(&session_password(session));
    h.feed(Input::Connect { conn, request: req });
    assert_eq!(
        h.take(old),
        vec![Got::Closed],
        "behaviour 36: the old connection is closed"
    );
    let got = h.take(conn);
    let Got::Connected(r) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(r.session_id, session.0);
    assert!(
        h.p.tree().exists("/e"),
        "the session's ephemeral survives the move"
    );
}

#[test]
fn expired_session_is_closed_by_a_txn_that_removes_its_ephemerals() {
    let mut h = Harness::new();
    let conn = h.session_with_ephemeral(1, "/e");
    // The negotiated timeout is 10 s; nothing touches the session.
    h.now += 13_000;
    h.feed(Input::Tick);
    assert!(!h.unsynced.is_empty(), "expiry is a closeSession txn");
    h.sync();
    assert!(
        !h.p.tree().exists("/e"),
        "behaviour 34: expiry removes ephemerals"
    );
    assert_eq!(h.take(conn), vec![Got::Closed]);
}

/// Session deadlines run on the monotonic clock, as ZooKeeper's
/// `ExpiryQueue` does since ZOOKEEPER-1366: the wall clock stepped an hour
/// forward expires nothing, stepped back keeps nothing alive; the session
/// expires when its timeout has passed on the monotonic clock.
#[test]
fn a_step_of_the_wall_clock_neither_expires_sessions_nor_keeps_them() {
    for step in [3_600_000, -3_600_000] {
        let mut h = Harness::new();
        h.session_with_ephemeral(1, "/e");
        h.wall_step = step;
        h.now += 1_000;
        h.feed(Input::Tick);
        assert!(h.unsynced.is_empty(), "step {step}: expired on a wall step");
        // The negotiated timeout is 10 s.
        h.now += 12_000;
        h.feed(Input::Tick);
        assert!(!h.unsynced.is_empty(), "step {step}: not expired");
        h.sync();
        assert!(!h.p.tree().exists("/e"));
        // The close txn records the wall clock, as ZooKeeper's txn times do.
        let close = h.txns.last().unwrap();
        assert_eq!(close.time, h.now + step);
    }
}

/// A request on a session whose closeSession is under way is dropped,
/// unanswered and without a txn, as ZooKeeper's `submitRequest` drops it
/// on the leader or a standalone server; the connection closes when the
/// close applies.
#[test]
fn a_request_on_a_closing_session_is_dropped() {
    let mut h = Harness::new();
    let conn = h.session_with_ephemeral(1, "/e");
    h.now += 13_000;
    h.feed(Input::Tick);
    assert_eq!(h.unsynced.len(), 1, "the expiry's closeSession");
    h.request(conn, 2, create("/late", "", 0));
    h.request(conn, 3, get_data("/e", false));
    assert_eq!(h.unsynced.len(), 1, "no txn for the late write");
    assert!(h.take(conn).is_empty(), "no answers");
    h.sync();
    assert_eq!(h.take(conn), vec![Got::Closed]);
    assert!(!h.p.tree().exists("/late"));
}

/// A touch with a timeout (a REVALIDATE's, a PING's entries) schedules the
/// session for that timeout, as ZooKeeper's `touchSession(id, timeout)`
/// does: a session created with 10 s and revalidated by a server that
/// negotiated 40 s lives for 40 s from then.
#[test]
fn a_touch_with_a_timeout_schedules_the_session_for_it() {
    let mut h = Harness::in_mode(config(), Mode::Leader { epoch: Epoch(1) });
    let (_, session) = h.session(1);
    assert!(h.p.revalidate(session, 40_000, LINK));
    h.now += 13_000;
    h.feed(Input::Tick);
    assert!(h.unsynced.is_empty(), "expired on the creation timeout");
    h.p.touch_sessions(Now::at(h.now), &[(session, 20_000)]);
    h.now += 19_000;
    h.feed(Input::Tick);
    assert!(h.unsynced.is_empty(), "expired before the PING's timeout");
    h.now += 3_000;
    h.feed(Input::Tick);
    assert_eq!(h.unsynced.len(), 1, "expired after it");
}

/// A learner leaves global sessions' deadlines to the leader: its clients'
/// requests only go into the touch table its PING reply drains. (Each
/// touch used to move the session to a new bucket, and a learner, which
/// never expires, kept every emptied bucket: one per tick for as long as
/// the session lived.)
#[test]
fn a_learner_keeps_no_deadline_per_touch() {
    let mut d = Duo::new();
    let (_, session) = d.learner_session(1);
    // The learner serves again over its tree, as after a resync: the
    // session is among the tree's, and its client comes back.
    let cfg = PipelineConfig {
        server_id: LEARNER,
        ..config()
    };
    let tree = d.learner.p.tree().clone();
    let mut learner = Harness::over(cfg, Mode::Learner, tree);
    let conn = resume_on_learner(&mut d.leader, &mut learner, 2, session, LINK);
    let before = learner.p.sessions().expiry_buckets().len();
    for xid in 1..=500 {
        learner.now += 2_000;
        learner.request(conn, xid, get_data("/", false));
    }
    assert_eq!(learner.take(conn).len(), 500);
    let after = learner.p.sessions().expiry_buckets().len();
    assert!(after <= before, "{before} buckets before, {after} after");
    assert_eq!(
        learner.p.take_touched(),
        vec![(session, 10_000)],
        "the touch goes to the leader"
    );
}

#[test]
fn close_session_replies_then_closes_and_removes_ephemerals_at_once() {
    let mut h = Harness::new();
    let (conn, _) = h.session(1);
    h.request(conn, 1, create("/e", "", 1));
    h.request(conn, 2, Request::CloseSession);
    h.sync();
    let got = h.take(conn);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(reply(&got[1]).0.xid, 2);
    assert_eq!(got[2], Got::Closed);
    assert!(!h.p.tree().exists("/e"));
}

#[test]
fn requests_pipelined_behind_the_connect_request_run_after_it() {
    let mut h = Harness::new();
    let conn = h.accept(1);
    h.feed(Input::Connect {
        conn,
        request: connect_request(0, 0, Some(false)),
    });
    h.request(conn, 1, create("/p", "x", 0));
    assert!(h.take(conn).is_empty());
    h.sync(); // the session
    h.sync(); // the create, prepared once the session existed
    let got = h.take(conn);
    assert!(matches!(got[0], Got::Connected(_)), "{got:?}");
    assert_eq!(reply(&got[1]).0.err, 0);
    assert!(h.p.tree().exists("/p"));
}

#[test]
fn snapshots_are_requested_after_about_snap_count_txns() {
    let mut h = Harness::with(PipelineConfig {
        snap_count: 10,
        ..config()
    });
    let (conn, _) = h.session(1);
    for i in 0..20 {
        h.request(conn, i + 1, create(&format!("/n{i}"), "", 0));
        h.sync();
    }
    assert!(
        h.snapshots >= 1,
        "snapCount/2 + random(snapCount/2) txns trigger a snapshot"
    );
}

/// `snapSizeLimitInKb`: large txns trigger a snapshot long before
/// `snapCount` does, once their bytes pass `limit/2 + random(limit/2)`.
#[test]
fn snapshots_are_requested_after_about_snap_size_limit_bytes() {
    // Twenty creates of 10 kB each; the snapshots they trigger.
    let snapshots_with = |snap_size_limit_bytes| {
        let mut h = Harness::with(PipelineConfig {
            snap_count: 100_000,
            snap_size_limit_bytes,
            ..config()
        });
        let (conn, _) = h.session(1);
        for i in 0..20 {
            let data = "x".repeat(10_000);
            h.request(conn, i + 1, create(&format!("/n{i}"), &data, 0));
            h.sync();
        }
        h.snapshots
    };
    // Each threshold is 50–100 kB, so one to three snapshots.
    let limited = snapshots_with(100_000);
    assert!((1..=3).contains(&limited), "{limited}");
    // Turned off (snapSizeLimitInKb ≤ 0), only snapCount counts.
    assert_eq!(snapshots_with(0), 0);
}

/// The leader's id for the link of [`Duo`]'s learner.
const LINK: SessionOwner = SessionOwner::Learner(1);
/// The duo's learner's server id, which its forwarded txns carry.
const LEARNER: ServerId = ServerId(2);

/// A leader pipeline and a learner pipeline wired by hand: what the learner
/// forwards is prepared by the leader, and what the leader commits is handed
/// to the learner as committed, as the ZAB layer will do.
struct Duo {
    leader: Harness,
    learner: Harness,
    /// How many of the leader's txns the learner has been given.
    delivered: usize,
}

impl Duo {
    fn new() -> Duo {
        Duo {
            leader: Harness::in_mode(config(), Mode::Leader { epoch: Epoch(1) }),
            learner: Harness::in_mode(
                PipelineConfig {
                    server_id: LEARNER,
                    ..config()
                },
                Mode::Learner,
            ),
            delivered: 0,
        }
    }

    /// A session created on the learner (through the leader).
    fn learner_session(&mut self, id: u64) -> (ConnectionId, SessionId) {
        let conn = self.learner.accept(id);
        self.learner.feed(Input::Connect {
            conn,
            request: connect_request(0, 0, Some(false)),
        });
        self.round_trip();
        match self.learner.take(conn).as_slice() {
            [Got::Connected(r)] => (conn, SessionId(r.session_id)),
            other => panic!("expected a ConnectResponse, got {other:?}"),
        }
    }

    /// Forwards what the learner queued and commits it on the leader:
    /// the committed txns the learner has not been given yet.
    fn commit_forwarded(&mut self) -> Vec<Txn> {
        for (request, auth) in std::mem::take(&mut self.learner.forwarded) {
            self.leader.feed(Input::Forwarded {
                request,
                auth,
                from: LINK,
                origin: LEARNER,
            });
        }
        self.leader.sync();
        let txns: Vec<Txn> = self.leader.txns[self.delivered..].to_vec();
        self.delivered = self.leader.txns.len();
        txns
    }

    /// Forwards what the learner queued, commits it on the leader, and hands
    /// the committed txns to the learner.
    fn round_trip(&mut self) {
        for txn in self.commit_forwarded() {
            self.learner.feed(Input::Committed { txn });
        }
    }
}

#[test]
fn leader_proposes_from_its_epoch() {
    let mut h = Harness::in_mode(config(), Mode::Leader { epoch: Epoch(3) });
    let conn = h.accept(1);
    h.feed(Input::Connect {
        conn,
        request: connect_request(0, 0, Some(false)),
    });
    assert_eq!(h.appended, vec![Zxid::new(Epoch(3), 1)], "reference F.1");
}

/// ZooKeeper's leader sets its last processed zxid to `epoch << 32` once a
/// quorum is in sync (`Leader.startZkServer`); checked on 3.8.0: a new
/// leader's `srvr` shows `Zxid: 0x100000000`, its followers' `0x0`. So a
/// client that saw the new epoch is accepted, and a read before the
/// epoch's first txn answers with it.
#[test]
fn a_new_leader_reports_its_epoch_zxid_until_its_first_txn() {
    let epoch_zxid = Zxid::new(Epoch(3), 0);
    let mut h = Harness::in_mode(config(), Mode::Leader { epoch: Epoch(3) });
    assert_eq!(h.p.last_processed_zxid(), epoch_zxid);
    assert_eq!(h.p.tree().last_zxid(), Zxid::ZERO, "the tree is untouched");

    let ahead = h.accept(1);
    h.feed(Input::Connect {
        conn: ahead,
        request: connect_request(0, epoch_zxid.0 + 1, Some(false)),
    });
    assert_eq!(h.take(ahead), vec![Got::Closed], "behaviour 38, one past");

    let conn = h.accept(2);
    h.feed(Input::Connect {
        conn,
        request: connect_request(0, epoch_zxid.0, Some(false)),
    });
    h.sync();
    assert!(matches!(h.take(conn).as_slice(), [Got::Connected(_)]));
    // The session's txn is the epoch's first: from here on the tree's
    // last zxid is the answer, as on every other server.
    assert_eq!(h.p.last_processed_zxid(), Zxid::new(Epoch(3), 1));
    h.request(conn, 1, get_data("/", false));
    let got = h.take(conn);
    assert_eq!(reply(&got[0]).0.zxid, Zxid::new(Epoch(3), 1).0);
}

#[test]
fn a_session_resumed_on_a_new_leader_reads_at_its_epoch_zxid() {
    // Epoch 1's leader logs a session and a node; then epoch 2's leader
    // serves the same tree, as after an election. A resumed session is no
    // txn, so its reads and pings come before the epoch has one.
    let mut old = Harness::in_mode(config(), Mode::Leader { epoch: Epoch(1) });
    let (conn, session) = old.session(1);
    old.request(conn, 1, create("/a", "x", 0));
    old.sync();
    let last_of_epoch_1 = Zxid::new(Epoch(1), 2);
    assert_eq!(old.p.tree().last_zxid(), last_of_epoch_1);

    let epoch_zxid = Zxid::new(Epoch(2), 0);
    let mut h = Harness::over(
        config(),
        Mode::Leader { epoch: Epoch(2) },
        old.p.tree().clone(),
    );
    assert_eq!(h.p.last_processed_zxid(), epoch_zxid);
    let conn = h.accept(7);
    let mut req = connect_request(session.0, last_of_epoch_1.0, Some(false));
    req.passwd = Bytes::copy_from_slice(&session_password(session));
    h.feed(Input::Connect { conn, request: req });
    assert!(h.appended.is_empty(), "a resumed session is no txn");
    assert!(matches!(h.take(conn).as_slice(), [Got::Connected(_)]));
    h.request(conn, 2, get_data("/a", false));
    h.request(conn, -2, Request::Ping);
    let got = h.take(conn);
    assert_eq!(got.len(), 2, "{got:?}");
    for g in &got {
        assert_eq!(reply(g).0.zxid, epoch_zxid.0, "{g:?}");
    }
}

/// Learners report their tree's last txn, as ZooKeeper's followers do.
#[test]
fn a_learner_reports_its_last_applied_txn() {
    let mut d = Duo::new();
    d.learner_session(1);
    assert_eq!(d.learner.p.last_processed_zxid(), Zxid::new(Epoch(1), 1));
    assert_eq!(
        d.learner.p.last_processed_zxid(),
        d.learner.p.tree().last_zxid()
    );
}

#[test]
fn learner_creates_sessions_through_the_leader() {
    let mut d = Duo::new();
    let conn = d.learner.accept(1);
    d.learner.feed(Input::Connect {
        conn,
        request: connect_request(0, 0, Some(false)),
    });
    assert!(
        d.learner.appended.is_empty(),
        "a learner never prepares txns itself"
    );
    assert_eq!(d.learner.forwarded.len(), 1);
    assert_eq!(d.learner.forwarded[0].0.op, op::CREATE_SESSION);
    assert!(d.learner.take(conn).is_empty());
    d.round_trip();
    let got = d.learner.take(conn);
    let [Got::Connected(r)] = got.as_slice() else {
        panic!("{got:?}")
    };
    // The learner's own id in the top byte (reference F.8).
    assert_eq!(r.session_id >> 56, 2);
    assert_eq!(
        d.leader.p.tree().session_timeout(SessionId(r.session_id)),
        Some(10_000)
    );
    assert_eq!(
        d.learner.p.tree().session_timeout(SessionId(r.session_id)),
        Some(10_000)
    );
}

#[test]
fn learner_answers_forwarded_writes_when_they_commit_in_session_order() {
    let mut d = Duo::new();
    let (conn, _) = d.learner_session(1);
    d.learner.request(conn, 1, create("/f", "v", 0));
    d.learner.request(conn, 2, get_data("/f", false));
    d.learner.request(conn, 3, create("/f", "v", 0));
    assert!(
        d.learner.take(conn).is_empty(),
        "nothing before the leader commits"
    );
    d.round_trip();
    let got = d.learner.take(conn);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(reply(&got[0]).0.xid, 1);
    let (h2, body) = reply(&got[1]);
    assert_eq!(h2.xid, 2);
    let data = GetDataResponse::decode(body.clone()).expect("getData body");
    assert_eq!(data.data.as_deref(), Some(&b"v"[..]));
    let (h3, _) = reply(&got[2]);
    assert_eq!(
        (h3.xid, h3.err),
        (3, ErrorCode::NodeExists.code()),
        "the leader validated it"
    );
    assert!(d.leader.p.tree().exists("/f"));
}

/// A write whose body does not decode takes a zxid, as ZooKeeper's error
/// txn does (reference C), and is answered in the session's order; a read
/// that does not decode takes none. On a learner the leader logs it.
#[test]
fn an_undecodable_write_is_an_error_txn_answered_in_order() {
    let undecodable = |h: &mut Harness, conn, xid, op| {
        h.feed(Input::Request {
            conn,
            header: RequestHeader { xid, op },
            body: Err(DecodeError::Truncated {
                offset: 0,
                needed: 4,
            }),
        });
    };
    let mut h = Harness::new();
    let (conn, _) = h.session(1);
    let before = h.p.tree().last_zxid();
    h.request(conn, 1, create("/a", "", 0));
    undecodable(&mut h, conn, 2, op::SET_DATA);
    undecodable(&mut h, conn, 3, op::GET_DATA);
    assert!(h.take(conn).is_empty(), "the read waits behind the writes");
    h.sync();
    let got = h.take(conn);
    let replies: Vec<(i32, i64, i32)> = got
        .iter()
        .map(|g| reply(g).0)
        .map(|r| (r.xid, r.zxid, r.err))
        .collect();
    let z = before.0;
    let marshalling = ErrorCode::MarshallingError.code();
    assert_eq!(
        replies,
        [
            (1, z + 1, 0),
            (2, z + 2, marshalling),
            (3, z + 2, marshalling)
        ]
    );
    assert_eq!(h.p.tree().last_zxid(), Zxid(z + 2));

    let mut d = Duo::new();
    let (conn, _) = d.learner_session(1);
    undecodable(&mut d.learner, conn, 7, op::MULTI);
    assert!(d.learner.appended.is_empty());
    let before = d.leader.p.tree().last_zxid();
    d.round_trip();
    let got = d.learner.take(conn);
    let (r, body) = reply(&got[0]);
    assert_eq!((r.xid, r.zxid, r.err), (7, before.0 + 1, marshalling));
    assert!(body.is_empty());
}

/// An addWatch mode or a watcher type ZooKeeper does not know makes its
/// enum conversion throw, answered MARSHALLINGERROR (3.8.0 and 3.9).
#[test]
fn unknown_watch_modes_and_types_are_marshalling_errors() {
    let mut h = Harness::new();
    let (conn, _) = h.session(1);
    h.request(
        conn,
        1,
        Request::AddWatch(AddWatchRequest {
            path: "/".into(),
            mode: 2,
        }),
    );
    for (xid, watcher_type) in [(2, 0), (3, 6)] {
        let req = WatchesRequest {
            path: "/".into(),
            watcher_type,
        };
        h.request(conn, xid, Request::CheckWatches(req.clone()));
        h.request(conn, xid + 10, Request::RemoveWatches(req));
    }
    h.request(
        conn,
        20,
        Request::CheckWatches(WatchesRequest {
            path: "/".into(),
            watcher_type: 3,
        }),
    );
    let errs: Vec<(i32, i32)> = h
        .take(conn)
        .iter()
        .map(|g| reply(g).0)
        .map(|r| (r.xid, r.err))
        .collect();
    let m = ErrorCode::MarshallingError.code();
    assert_eq!(
        errs,
        [
            (1, m),
            (2, m),
            (12, m),
            (3, m),
            (13, m),
            (20, ErrorCode::NoWatcher.code())
        ]
    );
}

#[test]
fn learner_sync_is_answered_in_order_after_the_leader_replies() {
    let mut d = Duo::new();
    let (conn, session) = d.learner_session(1);
    d.learner
        .request(conn, 1, Request::Sync(PathRequest { path: "/x".into() }));
    d.learner.request(conn, 2, get_data("/", false));
    assert_eq!(d.learner.forwarded.len(), 1, "the sync goes to the leader");
    assert!(
        d.learner.take(conn).is_empty(),
        "reads wait behind the sync"
    );
    d.learner.forwarded.clear();
    d.learner.feed(Input::SyncDone { session, cxid: 1 });
    let got = d.learner.take(conn);
    assert_eq!(got.len(), 2, "{got:?}");
    let (h1, body) = reply(&got[0]);
    assert_eq!(h1.xid, 1);
    assert_eq!(
        zab_wire::jute::SyncResponse::decode(body.clone())
            .unwrap()
            .path,
        "/x"
    );
    assert_eq!(reply(&got[1]).0.xid, 2);
}

#[test]
fn learner_revalidates_resumed_sessions_with_the_leader() {
    let mut d = Duo::new();
    let (_, session) = d.learner_session(1);
    let again = d.learner.accept(2);
    let mut req = connect_request(session.0, 0, Some(false));
    req.passwd = Bytes::copy_from_slice(&session_password(session));
    d.learner.feed(Input::Connect {
        conn: again,
        request: req.clone(),
    });
    assert_eq!(d.learner.revalidations, vec![(session, 10_000)]);
    assert!(d.learner.take(again).is_empty());
    assert!(
        d.leader.p.revalidate(session, 10_000, LINK),
        "the leader knows the session"
    );
    d.learner.feed(Input::Revalidated {
        session,
        valid: true,
    });
    let got = d.learner.take(again);
    let [Got::Connected(r)] = got.as_slice() else {
        panic!("{got:?}")
    };
    assert_eq!(r.session_id, session.0);

    let third = d.learner.accept(3);
    d.learner.feed(Input::Connect {
        conn: third,
        request: req,
    });
    d.learner.feed(Input::Revalidated {
        session,
        valid: false,
    });
    let got = d.learner.take(third);
    let Got::Connected(r) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(r.time_out, 0, "an invalid session gets timeout 0");
    assert_eq!(got[1], Got::Closed);
}

#[test]
fn learner_never_expires_sessions_itself() {
    let mut d = Duo::new();
    d.learner_session(1);
    d.learner.now += 60_000;
    d.learner.feed(Input::Tick);
    assert!(
        d.learner.forwarded.is_empty() && d.learner.appended.is_empty(),
        "only the leader expires sessions"
    );
}

/// Resumes `session` on a new connection `id` of learner `h`, the leader
/// revalidating it for `from`.
fn resume_on_learner(
    leader: &mut Harness,
    h: &mut Harness,
    id: u64,
    session: SessionId,
    from: SessionOwner,
) -> ConnectionId {
    let conn = h.accept(id);
    let mut req = connect_request(session.0, 0, Some(false));
    req.passwd = Bytes::copy_from_slice(&session_password(session));
    h.feed(Input::Connect { conn, request: req });
    let valid = leader.p.revalidate(session, 10_000, from);
    h.feed(Input::Revalidated { session, valid });
    assert!(matches!(h.take(conn).as_slice(), [Got::Connected(_)]));
    conn
}

/// A client resumes its session on a second learner while its connection
/// to the first is still open (ZooKeeper's ZOOKEEPER-710 case). The leader
/// made the second learner the owner; a write still coming through the
/// first becomes an error txn with SESSIONMOVED, and the first learner
/// closes that connection without an answer (reference D.11,
/// `FinalRequestProcessor`). Reads there are a learner's own and are not
/// checked, as on ZooKeeper.
#[test]
fn a_write_through_the_learner_a_session_left_closes_that_connection() {
    let mut d = Duo::new();
    let (old, session) = d.learner_session(1);
    let (mut other, new) = d.resume_on_another_learner(session);

    d.learner.request(old, 1, get_data("/", false));
    assert_eq!(reply(&d.learner.take(old)[0]).0.err, 0);

    let before = d.leader.p.tree().last_zxid();
    d.learner.request(old, 2, create("/stale", "x", 0));
    d.round_trip();
    assert_eq!(
        d.leader.p.tree().last_zxid(),
        before.next(),
        "a zxid is taken"
    );
    assert!(!d.leader.p.tree().exists("/stale"));
    assert_eq!(d.learner.take(old), vec![Got::Closed], "no answer");

    // The session lives on where the client took it.
    let txn = d.leader.txns.last().cloned().expect("a txn");
    other.feed(Input::Committed { txn });
    other.request(new, 3, create("/fresh", "x", 0));
    d.forward_from_another_learner(&mut other);
    assert!(d.leader.p.tree().exists("/fresh"));
    let txn = d.leader.txns.last().cloned().expect("a txn");
    other.feed(Input::Committed { txn });
    assert_eq!(reply(&other.take(new)[0]).0.err, 0);
}

impl Duo {
    /// A second learner (id 3, link 2), caught up with the leader, on
    /// which the client resumes `session`: the learner and the connection.
    fn resume_on_another_learner(&mut self, session: SessionId) -> (Harness, ConnectionId) {
        let mut other = Harness::in_mode(
            PipelineConfig {
                server_id: ServerId(3),
                ..config()
            },
            Mode::Learner,
        );
        for txn in self.leader.txns.clone() {
            other.feed(Input::Committed { txn });
        }
        let new = resume_on_learner(
            &mut self.leader,
            &mut other,
            1,
            session,
            SessionOwner::Learner(2),
        );
        (other, new)
    }

    /// Hands what the second learner queued to the leader and commits it.
    fn forward_from_another_learner(&mut self, other: &mut Harness) {
        for (request, auth) in std::mem::take(&mut other.forwarded) {
            self.leader.feed(Input::Forwarded {
                request,
                auth,
                from: SessionOwner::Learner(2),
                origin: ServerId(3),
            });
        }
        self.leader.sync();
    }
}

/// The race behind a flaky end-to-end run: the session's new connection,
/// on another learner, sends a write with the same cxid as the stale one
/// before that learner has applied the stale write's SESSIONMOVED error
/// txn. By (session, cxid) the error txn looks like the new write's
/// answer; it is not this learner's (its `origin` is the other learner),
/// so the new connection stays open and gets its own answer.
#[test]
fn another_learners_txn_with_the_same_cxid_is_not_this_connections_answer() {
    let mut d = Duo::new();
    let (old, session) = d.learner_session(1);
    let (mut other, new) = d.resume_on_another_learner(session);
    d.learner.request(old, 2, create("/stale", "x", 0));
    d.round_trip();
    assert_eq!(d.learner.take(old), vec![Got::Closed], "no answer");
    let stale = d.leader.txns.last().cloned().expect("the error txn");

    // The new connection's write, cxid 2 as well, is forwarded before the
    // error txn reaches this learner.
    other.request(new, 2, create("/fresh", "x", 0));
    other.feed(Input::Committed { txn: stale });
    assert_eq!(other.take(new), vec![], "neither answered nor closed");
    d.forward_from_another_learner(&mut other);
    let txn = d.leader.txns.last().cloned().expect("a txn");
    other.feed(Input::Committed { txn });
    assert_eq!(reply(&other.take(new)[0]).0.err, 0);
    assert!(other.p.tree().exists("/fresh"));
}

/// A multi's SESSIONMOVED closes the connection too (reference D.7).
#[test]
fn a_multi_from_a_connection_the_session_left_closes_it() {
    let mut d = Duo::new();
    let (old, session) = d.learner_session(1);
    let mut other = Harness::in_mode(config(), Mode::Learner);
    resume_on_learner(
        &mut d.leader,
        &mut other,
        1,
        session,
        SessionOwner::Learner(2),
    );
    d.learner.request(old, 1, Request::Multi(vec![]));
    d.learner.request(
        old,
        2,
        Request::Multi(vec![zab_wire::jute::MultiOp::Delete(
            zab_wire::jute::DeleteRequest {
                path: "/zookeeper".into(),
                version: -1,
            },
        )]),
    );
    d.round_trip();
    let got = d.learner.take(old);
    // The empty multi checks no session and is answered; the other closes.
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(reply(&got[0]).0.err, 0);
    assert_eq!(got[1], Got::Closed);
}

/// On the leader every request checks the session (ZooKeeper's leader runs
/// all of them through `PrepRequestProcessor`): once a learner revalidated
/// it, a ping or read on the leader's old connection closes it, and a
/// resume on the leader makes the session the leader's again.
#[test]
fn the_leaders_own_connection_a_session_left_is_closed_at_its_next_request() {
    let mut d = Duo::new();
    let (old, session) = d.leader.session(1);
    d.leader.request(old, -2, Request::Ping);
    assert_eq!(reply(&d.leader.take(old)[0]).0.err, 0);
    for txn in d.leader.txns.clone() {
        d.learner.feed(Input::Committed { txn });
    }
    d.delivered = d.leader.txns.len();
    resume_on_learner(&mut d.leader, &mut d.learner, 2, session, LINK);

    d.leader.request(old, -2, Request::Ping);
    assert_eq!(d.leader.take(old), vec![Got::Closed]);

    // Back on the leader: its own again, and the learner's writes now fail.
    let back = d.leader.accept(3);
    let mut req = connect_request(session.0, 0, Some(false));
    req.passwd = Bytes::copy_from_slice(&session_password(session));
    d.leader.feed(Input::Connect {
        conn: back,
        request: req,
    });
    assert!(matches!(
        d.leader.take(back).as_slice(),
        [Got::Connected(_)]
    ));
    d.leader.request(back, 1, get_data("/", false));
    assert_eq!(reply(&d.leader.take(back)[0]).0.err, 0);
    let moved_code = ErrorCode::SessionMoved.code();
    d.learner
        .request(ConnectionId(2), 2, create("/from-learner", "", 0));
    d.round_trip();
    let last = d.leader.txns.last().expect("an error txn");
    assert!(
        matches!(
            last.body.as_ref().and_then(|b| b.op.as_ref()),
            Some(zab_wire::proto::txn_body::Op::Error(e)) if e.err == moved_code
        ),
        "{last:?}"
    );
    assert_eq!(d.learner.take(ConnectionId(2)), vec![Got::Closed]);
}

/// A multiRead of writes: ZooKeeper decodes it (its ops are of one kind)
/// and, running it, answers MARSHALLINGERROR with an empty MultiResponse,
/// the terminator alone, as the body (`FinalRequestProcessor`; seen by the
/// differential test on 3.8.0). Nothing is written.
#[test]
fn a_multi_read_of_writes_is_answered_with_an_empty_multi_response() {
    use zab_wire::jute::{DeleteRequest, MultiOp, MultiResponse};
    let mut h = Harness::new();
    let (conn, _) = h.session(1);
    let delete = |p: &str| {
        MultiOp::Delete(DeleteRequest {
            path: p.into(),
            version: -1,
        })
    };
    h.request(
        conn,
        1,
        Request::MultiRead(vec![delete("/zookeeper"), delete("/")]),
    );
    let got = h.take(conn);
    let (header, body) = reply(&got[0]);
    assert_eq!(header.err, ErrorCode::MarshallingError.code());
    let m = MultiResponse::decode(body.clone()).expect("a MultiResponse body");
    assert!(m.results.is_empty(), "{m:?}");
    assert_eq!(
        body.len(),
        9,
        "the terminator: MultiHeader {{-1, true, -1}}"
    );
    assert_eq!(h.appended.len(), 1, "no txn besides the session's");
}

/// A multiRead whose answer would pass `MULTI_READ_MAX_BYTES` closes the
/// connection instead of building it: a few thousand getData ops on one
/// large node would otherwise take gigabytes. One below the limit is
/// answered in full.
#[test]
fn a_multi_read_too_large_to_answer_closes_the_connection() {
    use zab_wire::jute::{MultiOp, MultiResponse, MultiResult};
    let mut h = Harness::new();
    let (conn, _) = h.session(1);
    let big = "x".repeat(512 * 1024);
    h.request(conn, 1, create("/big", &big, 0));
    h.sync();
    assert_eq!(reply(&h.take(conn)[0]).0.err, 0);
    let reads = |n: usize| {
        Request::MultiRead(
            (0..n)
                .map(|_| {
                    MultiOp::GetData(PathWatchRequest {
                        path: "/big".into(),
                        watch: false,
                    })
                })
                .collect(),
        )
    };
    let fits = zab_tree::MULTI_READ_MAX_BYTES / (big.len() + 100);
    h.request(conn, 2, reads(fits));
    let got = h.take(conn);
    let (header, body) = reply(&got[0]);
    assert_eq!(header.err, 0);
    let m = MultiResponse::decode(body.clone()).expect("a MultiResponse");
    assert_eq!(m.results.len(), fits);
    assert!(
        matches!(&m.results[0], MultiResult::GetData(d) if d.data.as_ref().map(|b| b.len()) == Some(big.len()))
    );
    // 20,000 reads of 512 KiB: 10 GB, were it built.
    h.request(conn, 3, reads(20_000));
    assert!(matches!(h.take(conn).as_slice(), [Got::Closed]));
}

/// Without a JAAS file ZooKeeper has no SASL server for the connection and
/// answers a SASL token with OK and a null token (its NullPointerException
/// is caught in `processSasl`); the connection stays.
#[test]
fn sasl_without_a_jaas_file_answers_ok_with_a_null_token() {
    let mut h = Harness::new();
    let (conn, _) = h.session(1);
    h.request(
        conn,
        1,
        Request::Sasl(zab_wire::jute::SaslToken {
            token: Some(Bytes::new()),
        }),
    );
    let got = h.take(conn);
    let (header, body) = reply(&got[0]);
    assert_eq!((header.xid, header.zxid, header.err), (1, 0, 0));
    assert_eq!(&body[..], &[0xff; 4], "a null buffer");
    h.request(conn, 2, get_data("/", false));
    assert_eq!(reply(&h.take(conn)[0]).0.err, 0, "still connected");
}

/// DIGEST-MD5 through the pipeline: the challenge, then the identity
/// `sasl:bob` (and `super:` for the super user) once the response checks
/// out; a wrong password gets AUTHFAILED with a null token and a close.
#[test]
fn sasl_digest_md5_adds_the_users_identity() {
    use crate::sasl::SaslConfig;
    use std::sync::Arc;
    use zab_wire::jute::SaslToken;
    let sasl = SaslConfig {
        users: [("bob".to_owned(), "bobsecret".to_owned())].into(),
        super_users: vec!["bob".to_owned()],
    };
    let mut h = Harness::with(PipelineConfig {
        sasl: Some(Arc::new(sasl)),
        ..config()
    });
    let token = |t: Vec<u8>| {
        Request::Sasl(SaslToken {
            token: Some(Bytes::from(t)),
        })
    };
    let challenge = |h: &mut Harness, conn| {
        h.request(conn, 1, token(Vec::new()));
        let got = h.take(conn);
        let body = reply(&got[0]).1.clone();
        SaslToken::decode(body)
            .expect("a token")
            .token
            .expect("not null")
    };
    let (conn, _) = h.session(1);
    let c = challenge(&mut h, conn);
    h.request(
        conn,
        2,
        token(crate::sasl::client_response(&c, "bob", "bobsecret")),
    );
    let got = h.take(conn);
    assert_eq!(reply(&got[0]).0.err, 0);
    h.request(conn, 3, Request::WhoAmI);
    let got = h.take(conn);
    let who = zab_wire::jute::WhoAmIResponse::decode(reply(&got[0]).1.clone()).expect("whoAmI");
    let mut ids: Vec<(String, String)> = who
        .client_info
        .into_iter()
        .map(|i| (i.auth_scheme, i.user))
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            ("ip".to_owned(), "127.0.0.1".to_owned()),
            ("sasl".to_owned(), "bob".to_owned()),
            ("super".to_owned(), String::new())
        ]
    );

    let (other, _) = h.session(2);
    let c = challenge(&mut h, other);
    h.request(
        other,
        2,
        token(crate::sasl::client_response(&c, "bob", "wrong")),
    );
    let got = h.take(other);
    let (header, body) = reply(&got[0]);
    assert_eq!(header.err, ErrorCode::AuthFailed.code());
    assert_eq!(&body[..], &[0xff; 4]);
    assert_eq!(got[1], Got::Closed);
}

/// A read queued behind a write runs with the identities its connection
/// had when it came, not those an `auth` sent after it added: ZooKeeper's
/// `Request` carries a copy of them from its submission.
#[test]
fn a_queued_read_keeps_the_identities_it_came_with() {
    let mut h = Harness::new();
    let (conn, _) = h.session(1);
    let secret = vec![Acl {
        perms: 31,
        id: Id::new("digest", &zab_tree::acl::digest_id("bob:pw")),
    }];
    h.request(
        conn,
        1,
        Request::Create {
            op: op::CREATE,
            req: CreateRequest {
                path: "/secret".into(),
                data: Some(Bytes::from_static(b"s")),
                acl: Some(secret),
                flags: 0,
            },
        },
    );
    h.sync();
    h.take(conn);
    let auth = Request::Auth(AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: Bytes::from_static(b"bob:pw"),
    });
    h.request(conn, 2, create("/a", "", 0));
    h.request(conn, 3, get_data("/secret", false));
    h.request(conn, -4, auth);
    h.request(conn, 5, get_data("/secret", false));
    let got = h.take(conn);
    assert_eq!(got.len(), 1, "only the auth is answered at once: {got:?}");
    assert_eq!(reply(&got[0]).0.err, 0);
    h.sync();
    let got = h.take(conn);
    let answers: Vec<(i32, i32)> = got
        .iter()
        .map(|g| (reply(g).0.xid, reply(g).0.err))
        .collect();
    assert_eq!(
        answers,
        [(2, 0), (3, ErrorCode::NoAuth.code()), (5, 0)],
        "the read sent before the auth runs without it"
    );
}

/// A failed SASL login on a server that requires SASL
/// (`enforce.auth.schemes=sasl`) gets SESSIONCLOSEDREQUIRESASLAUTH (-124)
/// and the close, even with `allowSaslFailedClients`, as ZooKeeper's
/// `processSasl`; without the requirement that setting keeps the client.
#[test]
fn a_failed_sasl_login_where_sasl_is_required_is_closed_with_124() {
    use crate::sasl::SaslConfig;
    use std::sync::Arc;
    use zab_wire::jute::SaslToken;
    for required in [true, false] {
        let mut h = Harness::with(PipelineConfig {
            sasl: Some(Arc::new(SaslConfig {
                users: [("bob".to_owned(), "bobsecret".to_owned())].into(),
                super_users: Vec::new(),
            })),
            allow_sasl_failed_clients: true,
            enforce_auth: required.then(|| vec!["sasl".to_owned()]),
            ..config()
        });
        let token = |t: Vec<u8>| {
            Request::Sasl(SaslToken {
                token: Some(Bytes::from(t)),
            })
        };
        let (conn, _) = h.session(1);
        h.request(conn, 1, token(Vec::new()));
        let got = h.take(conn);
        let challenge = SaslToken::decode(reply(&got[0]).1.clone())
            .expect("a token")
            .token
            .expect("not null");
        let response = crate::sasl::client_response(&challenge, "bob", "wrong");
        h.request(conn, 2, token(response));
        let got = h.take(conn);
        let (header, _) = reply(&got[0]);
        if required {
            assert_eq!(header.err, ErrorCode::SessionClosedRequireSaslAuth.code());
            assert_eq!(got[1], Got::Closed);
        } else {
            assert_eq!(header.err, 0);
            assert_eq!(got.len(), 1, "{got:?}");
        }
    }
}

/// An auth or SASL packet whose body does not decode closes the connection
/// unanswered, as ZooKeeper's `processPacket` throws reading it.
#[test]
fn an_undecodable_auth_packet_closes_the_connection() {
    for op in [op::AUTH, op::SASL] {
        let mut h = Harness::new();
        let (conn, _) = h.session(1);
        h.feed(Input::Request {
            conn,
            header: RequestHeader { xid: -4, op },
            body: Err(DecodeError::Truncated {
                offset: 0,
                needed: 4,
            }),
        });
        assert_eq!(h.take(conn), vec![Got::Closed], "op {op}");
    }
}

/// An `auth` that fails (a scheme the server does not know) is answered
/// AUTHFAILED and closes the connection, and the requests the client
/// pipelined behind it are not run: ZooKeeper's `processPacket` stops
/// reading (`disableRecv`) after the failed auth.
#[test]
fn requests_behind_a_failed_auth_are_not_run() {
    let mut h = Harness::new();
    let (conn, _) = h.session(1);
    h.request(
        conn,
        -4,
        Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "nosuch".into(),
            auth: Bytes::from_static(b"x"),
        }),
    );
    h.request(conn, 1, create("/after", "", 0));
    h.sync();
    let got = h.take(conn);
    assert_eq!(reply(&got[0]).0.err, ErrorCode::AuthFailed.code());
    assert_eq!(got[1..], [Got::Closed], "{got:?}");
    assert!(!h.p.tree().exists("/after"));
}

/// `enforce.auth.enabled` with `digest`: a ping before `auth` gets
/// SESSIONCLOSEDREQUIRESASLAUTH (-124) and the close; after `auth` the
/// same requests run.
#[test]
fn enforced_auth_refuses_requests_until_the_connection_authenticates() {
    let mut h = Harness::with(PipelineConfig {
        enforce_auth: Some(vec!["digest".to_owned()]),
        ..config()
    });
    let (conn, _) = h.session(1);
    h.request(conn, -2, Request::Ping);
    let got = h.take(conn);
    assert_eq!(
        reply(&got[0]).0.err,
        ErrorCode::SessionClosedRequireSaslAuth.code()
    );
    assert_eq!(got[1], Got::Closed);

    let (conn, _) = h.session(2);
    h.request(
        conn,
        -4,
        Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: Bytes::from_static(b"user:pw"),
        }),
    );
    h.request(conn, 1, get_data("/", false));
    let got = h.take(conn);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|g| reply(g).0.err == 0), "{got:?}");
}

/// A leader and a learner with `localSessionsEnabled` (and upgrading as
/// given), wired as [`Duo`] wires them.
fn local_duo(upgrading: bool) -> Duo {
    let local = PipelineConfig {
        local_sessions: true,
        local_sessions_upgrading: upgrading,
        ..config()
    };
    Duo {
        leader: Harness::in_mode(local.clone(), Mode::Leader { epoch: Epoch(1) }),
        learner: Harness::in_mode(
            PipelineConfig {
                server_id: ServerId(2),
                ..local
            },
            Mode::Learner,
        ),
        delivered: 0,
    }
}

/// A new session on the learner of `d`: its connection and what the
/// learner answered.
fn learner_connect(d: &mut Duo) -> (ConnectionId, Vec<Got>) {
    let conn = d.learner.accept(1);
    d.learner.feed(Input::Connect {
        conn,
        request: connect_request(0, 0, Some(false)),
    });
    let got = d.learner.take(conn);
    (conn, got)
}

/// `localSessionsEnabled`: a learner's new session is its own — answered
/// at once, no txn, nothing forwarded — and its writes still go through
/// the leader, which takes a session it does not know from another server
/// as that server's local one. Its close is the learner's alone too.
#[test]
fn a_local_session_lives_on_its_learner_and_still_writes() {
    let mut d = local_duo(false);
    let (conn, got) = learner_connect(&mut d);
    let [Got::Connected(r)] = got.as_slice() else {
        panic!("answered at once: {got:?}")
    };
    assert!(r.time_out > 0);
    assert!(
        d.learner.forwarded.is_empty(),
        "no createSession for the leader"
    );
    assert_eq!(d.learner.p.take_touched(), vec![], "no touches to report");
    assert_eq!(
        d.learner.p.local_session_count(),
        1,
        "mntr's zk_local_sessions"
    );

    d.learner.request(conn, 1, create("/from-local", "x", 0));
    d.round_trip();
    assert_eq!(reply(&d.learner.take(conn)[0]).0.err, 0);
    assert!(d.leader.p.tree().exists("/from-local"));
    assert!(
        d.learner.p.take_touched().is_empty(),
        "touches of a local session stay here"
    );

    d.learner.request(conn, 2, Request::CloseSession);
    assert!(
        d.learner.forwarded.is_empty(),
        "no closeSession for the leader"
    );
    let got = d.learner.take(conn);
    assert_eq!(reply(&got[0]).0.err, 0);
    assert_eq!(got[1], Got::Closed);
    assert_eq!(d.leader.appended.len(), 1, "one txn: the create");
}

/// An ephemeral needs a global session: without upgrading, the leader's
/// SESSIONEXPIRED error txn is answered as EPHEMERALONLOCALSESSION; with
/// it, the learner first sends a createSession for the same id.
#[test]
fn an_ephemeral_upgrades_a_local_session_or_fails() {
    let mut d = local_duo(false);
    let (conn, _) = learner_connect(&mut d);
    d.learner.request(conn, 1, create("/eph", "", 1));
    d.round_trip();
    assert_eq!(
        reply(&d.learner.take(conn)[0]).0.err,
        ErrorCode::EphemeralOnLocalSession.code()
    );
    assert!(!d.leader.p.tree().exists("/eph"));

    let mut d = local_duo(true);
    let (conn, got) = learner_connect(&mut d);
    let Got::Connected(r) = &got[0] else {
        panic!("connected")
    };
    let session = SessionId(r.session_id);
    d.learner.request(conn, 1, create("/eph", "", 1));
    let ops: Vec<i32> = d.learner.forwarded.iter().map(|(f, _)| f.op).collect();
    assert_eq!(ops, [op::CREATE_SESSION, op::CREATE]);
    d.round_trip();
    assert_eq!(reply(&d.learner.take(conn)[0]).0.err, 0);
    assert_eq!(d.leader.p.tree().session_timeout(session), Some(10_000));
    let owner = d.leader.p.tree().stat("/eph").map(|s| s.ephemeral_owner);
    assert_eq!(owner, Some(session.0));
    // Global now: its touches go to the leader.
    d.learner.request(conn, -2, Request::Ping);
    assert_eq!(d.learner.p.take_touched(), vec![(session, 10_000)]);
}

/// A local session expires where it lives, closing its connection, with
/// no txn anywhere.
#[test]
fn a_local_session_expires_on_its_server_without_a_txn() {
    let mut d = local_duo(false);
    let (conn, _) = learner_connect(&mut d);
    d.learner.now += 60_000;
    d.learner.feed(Input::Tick);
    assert_eq!(d.learner.take(conn), vec![Got::Closed]);
    assert!(d.learner.forwarded.is_empty());
    assert!(d.leader.appended.is_empty());
}

/// Read-only mode (no quorum, `readonlymode.enabled`): a client that sent
/// readOnly=true gets a session of this server's own and a ConnectResponse
/// saying read-only; its reads are served, writes, sync and check refused
/// with NOTREADONLY on an open connection; a client that does not allow
/// a read-only server, or resumes a global session, is closed unanswered.
#[test]
fn a_read_only_server_serves_reads_to_read_only_clients_only() {
    let mut old = Harness::new();
    let (_, global) = old.session(9);
    old.request(ConnectionId(9), 1, create("/kept", "x", 0));
    old.sync();
    let mut h = Harness::over(config(), Mode::ReadOnly, old.p.tree().clone());

    let plain = h.accept(1);
    h.feed(Input::Connect {
        conn: plain,
        request: connect_request(0, 0, Some(false)),
    });
    assert_eq!(h.take(plain), vec![Got::Closed]);

    let resume = h.accept(2);
    let mut req = connect_request(global.0, 0, Some(true));
    req.passwd = Bytes::copy_from_slice(&session_password(global));
    h.feed(Input::Connect {
        conn: resume,
        request: req,
    });
    assert_eq!(h.take(resume), vec![Got::Closed], "a global session");

    let conn = h.accept(3);
    h.feed(Input::Connect {
        conn,
        request: connect_request(0, 0, Some(true)),
    });
    let got = h.take(conn);
    let [Got::Connected(r)] = got.as_slice() else {
        panic!("{got:?}")
    };
    assert_eq!(r.read_only, Some(true));
    h.request(conn, 1, get_data("/kept", false));
    h.request(conn, 2, create("/new", "x", 0));
    h.request(conn, 3, Request::Sync(PathRequest { path: "/".into() }));
    let got = h.take(conn);
    assert_eq!(reply(&got[0]).0.err, 0);
    assert_eq!(reply(&got[1]).0.err, ErrorCode::NotReadOnly.code());
    assert_eq!(reply(&got[2]).0.err, ErrorCode::NotReadOnly.code());

    // Requests keep the session alive past its timeout; idle, it expires
    // here; a close is answered and takes no txn either.
    for _ in 0..3 {
        h.now += 6_000;
        h.request(conn, -2, Request::Ping);
        h.feed(Input::Tick);
    }
    assert!(!h.take(conn).contains(&Got::Closed), "a busy session stays");
    h.request(conn, 4, Request::CloseSession);
    let got = h.take(conn);
    assert_eq!(reply(&got[0]).0.err, 0);
    assert_eq!(got[1], Got::Closed);
    let idle = h.accept(4);
    h.feed(Input::Connect {
        conn: idle,
        request: connect_request(0, 0, Some(true)),
    });
    h.take(idle);
    h.now += 60_000;
    h.feed(Input::Tick);
    assert_eq!(h.take(idle), vec![Got::Closed], "an idle session expires");
    assert!(h.appended.is_empty(), "no txn in read-only mode");
}

/// `zk_uptime` counts from when this pipeline began to serve (ZooKeeper
/// makes its `ServerStats` with each role's server), not from the
/// process's start.
#[test]
fn uptime_counts_from_when_the_pipeline_began_to_serve() {
    let h = Harness::new();
    assert_eq!(h.p.uptime_ms(T0), 0);
    assert_eq!(h.p.uptime_ms(T0 + 1_500), 1_500);
}

/// What ZooKeeper's `ServerMetrics` count for the process's life (read
/// and update latencies, quota refusals) goes over to the pipeline of the
/// server's next role; what its per-role `ServerStats` count does not.
#[test]
fn lifetime_figures_go_over_to_the_next_roles_pipeline() {
    let mut h = Harness::new();
    h.p.stats.read_latency.record(3);
    h.p.stats.update_latency.record(5);
    h.p.stats.update_latency.record(7);
    let (tree, figures) = h.p.into_parts();
    let mut next = Pipeline::with_mode(config(), Mode::Standalone, tree, Now::at(T0));
    assert_eq!(next.stats().read_latency.count(), 0);
    next.carry(figures);
    assert_eq!(next.stats().read_latency.count(), 1);
    assert_eq!(next.stats().update_latency.count(), 2);
    assert_eq!(next.stats().update_latency.sum(), 12);
}

/// A client whose reader is paused behind its reply backlog, but which
/// still takes its replies (`Input::Alive`), keeps its session, as
/// ZooKeeper, which keeps reading it, sees its pings; one that stops
/// taking them expires.
#[test]
fn a_paused_client_that_takes_its_replies_keeps_its_session() {
    let mut h = Harness::new();
    let conn = h.session_with_ephemeral(1, "/e");
    // The negotiated timeout is 10 s: 30 s of replies being taken.
    for _ in 0..30 {
        h.now += 1_000;
        h.feed(Input::Alive { conn });
        h.feed(Input::Tick);
    }
    assert!(h.unsynced.is_empty(), "expired while alive");
    assert!(h.p.tree().exists("/e"));
    h.now += 13_000;
    h.feed(Input::Tick);
    assert!(!h.unsynced.is_empty(), "not expired once silent");
}
