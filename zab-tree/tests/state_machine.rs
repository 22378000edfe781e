//! Property tests of the state machine through its public API:
//! determinism of apply, snapshot round trips, prepare/apply agreement with
//! pipelined (pending) txns, and no panic on arbitrary input.

use std::net::{IpAddr, Ipv4Addr};

use bytes::Bytes;
use proptest::prelude::*;
use prost::Message;
use zab_tree::{Applied, AuthInfo, DataTree, PrepareConfig, Preparer, RequestContext};
use zab_wire::jute::{
    op, Acl, CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, Id, MultiOp,
    MultiResult, PathRequest, PathWatchRequest, Request, Response, SetAclRequest, SetDataRequest,
};
use zab_wire::proto::{self, txn_body::Op as TxnOp, Txn};
use zab_wire::{SessionId, Zxid};

fn auth() -> AuthInfo {
    AuthInfo::new(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn path_strategy() -> impl Strategy<Value = String> {
    let part = || prop::sample::select(vec!["a", "b", "c", "a", "b", "", "zookeeper"]);
    // Shallow paths are likelier, so that deeper creates find their parent.
    prop_oneof![
        3 => prop::collection::vec(part(), 1..2),
        2 => prop::collection::vec(part(), 2..3),
        1 => prop::collection::vec(part(), 3..4),
    ]
    .prop_map(|parts| format!("/{}", parts.join("/")))
}

fn acl_strategy() -> impl Strategy<Value = Vec<Acl>> {
    prop_oneof![
        8 => Just(Acl::open_unsafe()),
        1 => Just(Acl::read_unsafe()),
        1 => Just(vec![Acl { perms: 0b11101, id: Id::anyone() }]),
        1 => Just(vec![Acl { perms: 31, id: Id::new("ip", "127.0.0.0/8") }]),
        1 => Just(vec![]),
    ]
}

fn create_strategy() -> impl Strategy<Value = MultiOp> {
    (
        path_strategy(),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..8)),
        acl_strategy(),
        prop::sample::select(vec![0, 0, 0, 2, 2, 1, 3, 4, 5, 7]),
        prop::sample::select(vec![op::CREATE, op::CREATE2, op::CREATE_CONTAINER]),
    )
        .prop_map(|(path, data, acl, flags, op)| MultiOp::Create {
            op,
            req: CreateRequest {
                path,
                data: data.map(Bytes::from),
                acl: Some(acl),
                flags,
            },
        })
}

fn write_op_strategy() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        3 => create_strategy(),
        1 => (path_strategy(), 5..7i32, -1..3i64).prop_map(|(path, flags, ttl)| {
            MultiOp::CreateTtl(CreateTtlRequest {
                path,
                data: Some(Bytes::from_static(b"t")),
                acl: Some(Acl::open_unsafe()),
                flags,
                ttl,
            })
        }),
        2 => (path_strategy(), -1..2i32)
            .prop_map(|(path, version)| MultiOp::Delete(DeleteRequest { path, version })),
        2 => (path_strategy(), -1..2i32, prop::collection::vec(any::<u8>(), 0..4)).prop_map(
            |(path, version, d)| MultiOp::SetData(SetDataRequest {
                path,
                data: Some(Bytes::from(d)),
                version,
            })
        ),
        1 => (path_strategy(), -1..2i32)
            .prop_map(|(path, version)| MultiOp::Check(CheckVersionRequest { path, version })),
    ]
}

#[derive(Debug, Clone)]
enum Action {
    Write(u8, Request),
    OpenSession(u8),
    Apply,
}

fn single(o: MultiOp) -> Request {
    match o {
        MultiOp::Create { op, req } => Request::Create { op, req },
        MultiOp::CreateTtl(r) => Request::CreateTtl(r),
        MultiOp::Delete(r) => Request::Delete(r),
        MultiOp::SetData(r) => Request::SetData(r),
        MultiOp::Check(r) => Request::Multi(vec![MultiOp::Check(r)]),
        MultiOp::GetChildren(r) | MultiOp::GetData(r) => Request::GetData(r),
    }
}

fn action_strategy() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (0..3u8, write_op_strategy()).prop_map(|(s, o)| Action::Write(s, single(o))),
        2 => (0..3u8, prop::collection::vec(write_op_strategy(), 0..4))
            .prop_map(|(s, ops)| Action::Write(s, Request::Multi(ops))),
        1 => (0..3u8, path_strategy(), acl_strategy(), -1..2i32).prop_map(|(s, path, acl, version)| {
            Action::Write(s, Request::SetAcl(SetAclRequest { path, acl: Some(acl), version }))
        }),
        1 => path_strategy()
            .prop_map(|path| Action::Write(0, Request::DeleteContainer(PathRequest { path }))),
        1 => (0..3u8).prop_map(|s| Action::Write(s, Request::CloseSession)),
        2 => (0..3u8).prop_map(Action::OpenSession),
        3 => Just(Action::Apply),
    ]
}

fn session(i: u8) -> SessionId {
    SessionId(0x1000 + i as i64)
}

fn is_error(t: &Txn) -> bool {
    match t.body.as_ref().and_then(|b| b.op.as_ref()) {
        Some(TxnOp::Error(_)) => true,
        Some(TxnOp::Multi(m)) => m.ops.iter().any(|b| matches!(b.op, Some(TxnOp::Error(_)))),
        _ => false,
    }
}

fn succeeded(a: &Applied) -> bool {
    match &a.result {
        Ok(Response::Multi(m)) => !m.results.iter().any(|r| matches!(r, MultiResult::Error(_))),
        Ok(_) => true,
        Err(_) => false,
    }
}

/// Runs the actions like a leader that pipelines txns: prepared txns are
/// applied only at `Apply` (and at the end). Returns the tree and the log.
fn run(actions: &[Action]) -> (DataTree, Vec<Txn>, Vec<Applied>) {
    let mut tree = DataTree::new();
    let mut prep = Preparer::new(PrepareConfig {
        extended_types_enabled: true,
        ..PrepareConfig::default()
    });
    let a = auth();
    let mut zxid = Zxid::ZERO;
    let mut pending: Vec<Txn> = Vec::new();
    let mut log = Vec::new();
    let mut results = Vec::new();
    let mut time = 1_000;
    let mut flush = |tree: &mut DataTree, prep: &mut Preparer, pending: &mut Vec<Txn>| {
        for t in pending.drain(..) {
            let applied = tree.apply(&t);
            prep.applied(Zxid(t.zxid));
            // What prepare accepted, apply must carry out (pending changes
            // are an exact prediction of the tree).
            assert_eq!(succeeded(&applied), !is_error(&t), "{t:?} -> {applied:?}");
            log.push(t);
            results.push(applied);
        }
    };
    let opening = (0..3).map(Action::OpenSession).chain([Action::Apply]);
    for act in opening.chain(actions.iter().cloned()) {
        time += 7;
        match act {
            Action::Apply => flush(&mut tree, &mut prep, &mut pending),
            Action::OpenSession(s) => {
                zxid = zxid.next();
                let ctx = RequestContext {
                    session_id: session(s),
                    cxid: 0,
                    zxid,
                    time_ms: time,
                    auth: &a,
                    session_moved: false,
                    session_local: false,
                };
                pending.push(prep.prepare_create_session(&tree, &ctx, 5000));
            }
            Action::Write(s, req) => {
                zxid = zxid.next();
                let ctx = RequestContext {
                    session_id: session(s),
                    cxid: 1,
                    zxid,
                    time_ms: time,
                    auth: &a,
                    session_moved: false,
                    session_local: false,
                };
                pending.push(prep.prepare(&tree, &ctx, &req));
            }
        }
    }
    flush(&mut tree, &mut prep, &mut pending);
    (tree, log, results)
}

fn snapshot_bytes(tree: &DataTree) -> Vec<u8> {
    let mut out = Vec::new();
    tree.snapshot().write_to(&mut out).expect("write to a Vec");
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn replay_is_deterministic(actions in prop::collection::vec(action_strategy(), 0..100)) {
        let (tree, log, results) = run(&actions);
        let mut replica = DataTree::new();
        let replayed: Vec<Applied> = log.iter().map(|t| replica.apply(t)).collect();
        prop_assert_eq!(&replayed, &results);
        prop_assert_eq!(snapshot_bytes(&replica), snapshot_bytes(&tree));
        prop_assert_eq!(replica.last_zxid(), tree.last_zxid());
        prop_assert_eq!(replica.node_count(), tree.node_count());
        prop_assert_eq!(replica.approximate_data_size(), tree.approximate_data_size());
        prop_assert_eq!(replica.ephemerals().collect::<Vec<_>>(), tree.ephemerals().collect::<Vec<_>>());
        prop_assert_eq!(replica.sessions().collect::<Vec<_>>(), tree.sessions().collect::<Vec<_>>());
    }

    #[test]
    fn snapshot_round_trip(actions in prop::collection::vec(action_strategy(), 0..100)) {
        let (tree, _, _) = run(&actions);
        let bytes = snapshot_bytes(&tree);
        let restored = DataTree::restore(&mut &bytes[..]).expect("restore");
        prop_assert_eq!(snapshot_bytes(&restored), bytes);
        prop_assert_eq!(restored.last_zxid(), tree.last_zxid());
        prop_assert_eq!(restored.node_count(), tree.node_count());
        // Derived state is rebuilt, not stored: it must agree.
        prop_assert_eq!(restored.approximate_data_size(), tree.approximate_data_size());
        // A live tree keeps a session whose ephemerals are all gone (as
        // ZooKeeper's does, for `dump`); a restored one, rebuilt from the
        // nodes, lists only owners of nodes, as ZooKeeper's does. It lists
        // them in the order ZooKeeper's `deserialize` adds them, not the
        // order they were created in (unit tests in `snapshot.rs` hold
        // that order), so the lists compare as sets here.
        let owners = |t: &DataTree| {
            t.ephemerals()
                .filter(|(_, paths)| !paths.is_empty())
                .map(|(s, mut paths)| { paths.sort(); (s, paths) })
                .collect::<Vec<_>>()
        };
        prop_assert_eq!(owners(&restored), owners(&tree));
        // The reaper's candidates, kept write by write in the live tree,
        // match those rebuilt from the nodes, in the same order.
        for now in [0, 1 << 40, i64::MAX] {
            prop_assert_eq!(restored.reapable(now, 0), tree.reapable(now, 0));
        }
        // A second restart lists them as the first did.
        let again = DataTree::restore(&mut &snapshot_bytes(&restored)[..]).expect("restore");
        prop_assert_eq!(again.ephemerals().collect::<Vec<_>>(), restored.ephemerals().collect::<Vec<_>>());
        prop_assert_eq!(restored.sessions().collect::<Vec<_>>(), tree.sessions().collect::<Vec<_>>());
        for p in ["/", "/a", "/a/b", "/b", "/zookeeper", "/zookeeper/config"] {
            prop_assert_eq!(restored.stat(p), tree.stat(p));
            prop_assert_eq!(restored.acl(p), tree.acl(p));
            prop_assert_eq!(restored.data(p), tree.data(p));
        }
    }

    #[test]
    fn arbitrary_paths_never_panic(path in any::<String>(), flags in any::<i32>(), ttl in any::<i64>(), version in any::<i32>()) {
        let mut tree = DataTree::new();
        let mut prep = Preparer::new(PrepareConfig { extended_types_enabled: true, ..PrepareConfig::default() });
        let a = auth();
        let mut zxid = Zxid::ZERO;
        let mut step = |tree: &mut DataTree, prep: &mut Preparer, req: &Request| {
            zxid = zxid.next();
            let ctx = RequestContext { session_id: SessionId(0), cxid: 0, zxid, time_ms: 0, auth: &a, session_moved: false, session_local: false };
            let t = prep.prepare(tree, &ctx, req);
            tree.apply(&t);
            prep.applied(zxid);
        };
        step(&mut tree, &mut prep, &Request::Create { op: op::CREATE, req: CreateRequest { path: path.clone(), data: None, acl: Some(Acl::open_unsafe()), flags } });
        step(&mut tree, &mut prep, &Request::CreateTtl(CreateTtlRequest { path: path.clone(), data: None, acl: Some(Acl::open_unsafe()), flags, ttl }));
        step(&mut tree, &mut prep, &Request::SetData(SetDataRequest { path: path.clone(), data: None, version }));
        step(&mut tree, &mut prep, &Request::Delete(DeleteRequest { path: path.clone(), version }));
        step(&mut tree, &mut prep, &Request::DeleteContainer(PathRequest { path: path.clone() }));
        step(&mut tree, &mut prep, &Request::Multi(vec![MultiOp::Check(CheckVersionRequest { path: path.clone(), version })]));
        let pw = PathWatchRequest { path: path.clone(), watch: true };
        for r in [
            Request::Exists(pw.clone()),
            Request::GetData(pw.clone()),
            Request::GetChildren(pw.clone()),
            Request::GetChildren2(pw.clone()),
            Request::GetAcl(PathRequest { path: path.clone() }),
            Request::GetAllChildrenNumber(PathRequest { path: path.clone() }),
            Request::GetEphemerals(PathRequest { path: path.clone() }),
            Request::MultiRead(vec![MultiOp::GetData(pw.clone()), MultiOp::GetChildren(pw)]),
        ] {
            let _ = tree.read(&r, SessionId(0), &a);
        }
        let _ = tree.reapable(ttl, ttl);
    }

    #[test]
    fn arbitrary_txns_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut tree = DataTree::new();
        if let Ok(txn) = proto::Txn::decode(&bytes[..]) {
            tree.apply(&txn);
            let mut out = Vec::new();
            tree.snapshot().write_to(&mut out).expect("write to a Vec");
            prop_assert!(DataTree::restore(&mut &out[..]).is_ok());
        }
        let _ = DataTree::restore(&mut &bytes[..]);
    }
}

#[test]
fn truncated_snapshots_are_errors() {
    let (tree, _, _) = run(&[
        Action::Write(0, Request::CloseSession),
        Action::OpenSession(1),
        Action::Apply,
        Action::Write(
            1,
            single(MultiOp::Create {
                op: op::CREATE,
                req: CreateRequest {
                    path: "/a".into(),
                    data: Some(Bytes::from_static(b"x")),
                    acl: Some(Acl::open_unsafe()),
                    flags: 1,
                },
            }),
        ),
    ]);
    assert!(tree.stat("/a").is_some());
    let bytes = snapshot_bytes(&tree);
    for cut in 0..bytes.len() {
        assert!(
            DataTree::restore(&mut &bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    assert!(DataTree::restore(&mut &bytes[..]).is_ok());
}
