//! Prepare + apply, rule by rule, with the exact ZooKeeper error codes
//! (reference D; behaviour numbers cited per test).

use bytes::Bytes;
use zab_wire::jute::{
    event_type, op, perms, Acl, CheckVersionRequest, CreateRequest, CreateTtlRequest,
    DeleteRequest, ErrorCode, Id, MultiOp, MultiResult, PathRequest, Request, Response,
    SetDataRequest, Stat,
};
use zab_wire::proto::txn_body::Op as TxnOp;
use zab_wire::{SessionId, Zxid};

use crate::acl::{authenticate, digest_id, AuthConfig};
use crate::testkit::*;
use crate::{PrepareConfig, WatchEvent};

fn stat(h: &Harness, p: &str) -> Stat {
    h.tree.stat(p).unwrap_or_else(|| panic!("{p} missing"))
}

fn ev(t: i32, p: &str) -> WatchEvent {
    WatchEvent {
        event_type: t,
        path: p.into(),
    }
}

fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
    Acl {
        perms,
        id: Id::new(scheme, id),
    }
}

#[test]
fn fresh_tree_built_ins() {
    let h = Harness::new();
    assert_eq!(h.tree.node_count(), 5);
    assert_eq!(h.tree.approximate_data_size(), 44);
    assert_eq!(stat(&h, "/").cversion, -1);
    assert_eq!(stat(&h, "/zookeeper").cversion, -2);
    assert_eq!(stat(&h, "/zookeeper/config").aversion, -1);
    assert_eq!(
        h.tree.acl("/zookeeper/config").unwrap(),
        &Acl::read_unsafe()[..]
    );
    assert_eq!(h.tree.acl("/").unwrap(), &Acl::open_unsafe()[..]);
}

#[test]
fn sequential_suffix_counts_all_creates() {
    // Behaviour 1.
    let mut h = Harness::new();
    h.mk("/p", 0);
    assert_eq!(h.mk("/p/s-", 2), "/p/s-0000000000");
    h.mk("/p/x", 0);
    h.res(delete("/p/x", -1)).unwrap();
    // A failed create does not advance it either.
    assert_eq!(h.err(create("/p/x/y", None, 0)), ErrorCode::NoNode);
    assert_eq!(h.mk("/p/s-", 2), "/p/s-0000000002");
}

#[test]
fn client_cversion_is_derived() {
    // Behaviour 2, reference D.3: two creates, one delete → 3.
    let mut h = Harness::new();
    h.mk("/a", 0);
    let first = h.mk("/a/", 2);
    h.mk("/a/", 2);
    h.res(delete(&first, -1)).unwrap();
    let s = stat(&h, "/a");
    assert_eq!((s.cversion, s.num_children), (3, 1));
    assert_eq!(h.mk("/a/", 2), "/a/0000000002");
}

#[test]
fn sequential_under_slash_name() {
    // Behaviour 3.
    let mut h = Harness::new();
    h.mk("/p", 0);
    assert_eq!(h.mk("/p/", 2), "/p/0000000000");
}

#[test]
fn sequential_collision_is_node_exists_without_skipping() {
    // Behaviour 4.
    let mut h = Harness::new();
    h.mk("/q", 0);
    h.mk("/q/0000000001", 0); // counter is now 1
    assert_eq!(h.err(create("/q/", None, 2)), ErrorCode::NodeExists);
    assert_eq!(h.err(create("/q/", None, 2)), ErrorCode::NodeExists);
    h.res(delete("/q/0000000001", -1)).unwrap();
    assert_eq!(h.mk("/q/", 2), "/q/0000000001");
}

#[test]
fn set_acl_changes_only_aversion() {
    // Behaviour 5.
    let mut h = Harness::new();
    h.mk("/n", 0);
    let before = stat(&h, "/n");
    let admin = vec![acl(perms::READ | perms::ADMIN, "world", "anyone")];
    let r = h.res(set_acl("/n", admin.clone(), 0)).unwrap();
    let after = stat(&h, "/n");
    assert_eq!(
        r,
        Response::Stat(zab_wire::jute::StatResponse {
            stat: after.clone()
        })
    );
    assert_eq!(after.aversion, 1);
    assert_eq!(
        Stat {
            aversion: 0,
            ..after
        },
        before
    );
    // The version checked by setACL is the aversion.
    assert_eq!(
        h.err(set_acl("/n", admin.clone(), 0)),
        ErrorCode::BadVersion
    );
    // Without ADMIN on the node: NoAuth.
    h.res(set_acl("/n", Acl::read_unsafe(), 1)).unwrap();
    assert_eq!(h.err(set_acl("/n", admin, -1)), ErrorCode::NoAuth);
}

#[test]
fn set_data_identical_bytes_bumps_version() {
    // Behaviour 6.
    let mut h = Harness::new();
    h.mk("/n", 0);
    let a = h.write(set_data("/n", b"d", -1));
    let s = stat(&h, "/n");
    assert_eq!(s.version, 1);
    assert_eq!(s.mzxid, a.zxid.0);
    assert_eq!(a.events, vec![ev(event_type::NODE_DATA_CHANGED, "/n")]);
    assert_eq!(h.err(set_data("/n", b"d", 0)), ErrorCode::BadVersion);
    h.res(set_data("/n", b"d", 1)).unwrap();
    assert_eq!(stat(&h, "/n").version, 2);
}

#[test]
fn child_changes_leave_parent_alone() {
    // Behaviour 7.
    let mut h = Harness::new();
    h.mk("/p", 0);
    h.mk("/p/c", 0);
    let before = stat(&h, "/p");
    h.res(set_data("/p/c", b"x", -1)).unwrap();
    h.mk("/p/c/g", 0);
    h.res(delete("/p/c/g", -1)).unwrap();
    assert_eq!(stat(&h, "/p"), before);
}

#[test]
fn containers_and_ttl_show_owner_zero() {
    // Behaviour 8.
    let mut h = Harness::new();
    let c = h
        .res(create_op(
            op::CREATE_CONTAINER,
            "/c",
            None,
            4,
            Acl::open_unsafe(),
        ))
        .unwrap();
    let Response::Create2(c) = c else {
        panic!("{c:?}")
    };
    assert_eq!(c.stat.ephemeral_owner, 0);
    h.res(create_ttl("/t", 5, 1000)).unwrap();
    assert_eq!(stat(&h, "/t").ephemeral_owner, 0);
    h.mk("/e", 1);
    assert_eq!(stat(&h, "/e").ephemeral_owner, S1.0);
}

#[test]
fn null_data_reads_back_null() {
    // Behaviour 9.
    let mut h = Harness::new();
    h.res(create("/n", None, 0)).unwrap();
    match h.read(Request::GetData(pw("/n"))).unwrap() {
        Response::GetData(d) => {
            assert_eq!(d.data, None);
            assert_eq!(d.stat.data_length, 0);
        }
        other => panic!("{other:?}"),
    }
    h.res(create("/e", Some(b""), 0)).unwrap();
    assert_eq!(h.tree.data("/e"), Some(Bytes::new()));
}

#[test]
fn failed_writes_consume_zxids() {
    // Behaviour 10, reference D.10.
    let mut h = Harness::new();
    let before = h.tree.last_zxid();
    let a = h.write(delete("/missing", -1));
    assert_eq!(a.result, Err(ErrorCode::NoNode));
    assert_eq!(h.tree.last_zxid(), Zxid(before.0 + 1));
    assert!(matches!(
        h.log.last().and_then(|t| t.body.as_ref()).and_then(|b| b.op.as_ref()),
        Some(TxnOp::Error(e)) if e.err == -101
    ));
}

#[test]
fn create_path_shapes() {
    // Behaviour 11, reference D.1.
    let mut h = Harness::new();
    h.mk("/a", 0);
    assert_eq!(h.err(create("/a//b", None, 0)), ErrorCode::NoNode);
    assert_eq!(h.err(create("/a/./b", None, 0)), ErrorCode::NoNode);
    assert_eq!(h.err(create("/a/../b", None, 0)), ErrorCode::NoNode);
    assert_eq!(h.err(create("/a/", None, 0)), ErrorCode::BadArguments);
    assert_eq!(h.err(create("a", None, 0)), ErrorCode::BadArguments);
    assert_eq!(h.err(create("/", None, 0)), ErrorCode::NodeExists);
    assert_eq!(h.err(create("/zookeeper", None, 0)), ErrorCode::NodeExists);
    assert_eq!(h.err(create("/a\0b", None, 0)), ErrorCode::BadArguments);
    // Behaviours 12–14.
    assert_eq!(
        h.err(create("/\u{1f600}", None, 0)),
        ErrorCode::BadArguments
    );
    assert_eq!(h.err(create("/\u{fffd}", None, 0)), ErrorCode::BadArguments);
    assert_eq!(h.err(create("/\u{e000}", None, 0)), ErrorCode::BadArguments);
    h.mk("/\u{feff}", 0);
    h.mk("/..x", 0);
}

#[test]
fn reads_do_not_validate_but_exists_rejects_nul() {
    // Reference D.1.
    let h = Harness::new();
    assert_eq!(h.read(Request::GetData(pw("a//b"))), Err(ErrorCode::NoNode));
    assert_eq!(h.read(Request::Exists(pw("/a/"))), Err(ErrorCode::NoNode));
    assert_eq!(
        h.read(Request::Exists(pw("/a\0"))),
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(h.read(Request::GetData(pw("/a\0"))), Err(ErrorCode::NoNode));
}

/// ZooKeeper's `DataTree` keeps the root under "" as well as "/", and
/// reads and setWatches do not validate paths: a read of "" answers with
/// the root, and
/// getAllChildrenNumber counts "/" itself among the keys under "" + "/".
#[test]
fn reads_of_the_empty_path_find_the_root() {
    let mut h = Harness::new();
    h.mk("/a", 0);
    let root = h.read(Request::GetData(pw("/")));
    assert!(root.is_ok());
    assert_eq!(h.read(Request::GetData(pw(""))), root);
    assert_eq!(
        h.read(Request::Exists(pw(""))),
        h.read(Request::Exists(pw("/")))
    );
    assert_eq!(
        h.read(Request::GetChildren(pw(""))),
        h.read(Request::GetChildren(pw("/")))
    );
    let count = |h: &Harness, p: &str| match h.read(Request::GetAllChildrenNumber(PathRequest {
        path: p.into(),
    })) {
        Ok(Response::GetAllChildrenNumber(n)) => n.total_number,
        other => panic!("{other:?}"),
    };
    assert_eq!(count(&h, "/"), 4);
    assert_eq!(count(&h, ""), 5);
    // setWatches looks its paths up the same way: a watch on "" sees the
    // root, so it is re-registered, not answered NodeDeleted.
    assert_eq!(h.tree.stat(""), h.tree.stat("/"));
}

#[test]
fn ttl_rules() {
    // Behaviour 20.
    let mut h = Harness::new();
    assert_eq!(h.err(create_ttl("/t", 5, 0)), ErrorCode::BadArguments);
    assert_eq!(h.err(create_ttl("/t", 5, 1 << 40)), ErrorCode::BadArguments);
    assert_eq!(h.err(create_ttl("/t", 0, 100)), ErrorCode::BadArguments);
    assert_eq!(h.err(create("/t", None, 5)), ErrorCode::BadArguments);
    assert_eq!(h.err(create_ttl("/t", 7, 100)), ErrorCode::BadArguments);
    h.res(create_ttl("/t", 5, (1 << 40) - 1)).unwrap();
    match h.res(create_ttl("/t/", 6, 1)).unwrap() {
        Response::Create2(c) => assert_eq!(c.path, "/t/0000000000"),
        other => panic!("{other:?}"),
    }
    let mut off = Harness::with_config(PrepareConfig::default());
    assert_eq!(off.err(create_ttl("/t", 5, 100)), ErrorCode::Unimplemented);
}

/// A createTTL with a plain mode passes ZooKeeper's TTL check when its ttl
/// is negative, so the later checks answer; were they all to pass, 3.8.0
/// would log a txn it cannot apply (it exits, checked), and zab refuses it.
#[test]
fn create_ttl_with_a_plain_mode_and_a_negative_ttl_answers_the_later_checks() {
    let mut h = Harness::new();
    assert_eq!(h.err(create_ttl("/nope/x", 0, -1)), ErrorCode::NoNode);
    assert_eq!(
        h.err(create_ttl("/zookeeper", 0, -1)),
        ErrorCode::NodeExists
    );
    assert_eq!(h.err(create_ttl("/nope/x", 0, 5)), ErrorCode::BadArguments);
    assert_eq!(h.err(create_ttl("/x", 1, -1)), ErrorCode::BadArguments);
    assert!(!h.tree.exists("/x"));
}

#[test]
fn ttl_nodes_are_reaped_when_idle() {
    // Behaviour 21, reference D.4.
    let mut h = Harness::new();
    h.res(create_ttl("/t", 5, 1000)).unwrap();
    assert!(h.tree.reapable(h.time + 1000, 0).is_empty());
    assert_eq!(h.tree.reapable(h.time + 1001, 0), vec!["/t".to_string()]);
    h.time += 900;
    h.res(set_data("/t", b"renew", -1)).unwrap();
    assert!(h.tree.reapable(h.time + 1000, 0).is_empty());
    // The reaper's txn re-checks at prep time.
    let req = Request::DeleteContainer(PathRequest { path: "/t".into() });
    assert_eq!(h.err(req.clone()), ErrorCode::BadVersion);
    h.time += 2000;
    let a = h.write_as(SessionId(0), req);
    assert_eq!(a.result, Ok(Response::Empty));
    assert!(!h.tree.exists("/t"));
}

/// A container at `p`, open to all.
fn mk_container(h: &mut Harness, p: &str) {
    h.res(create_op(
        op::CREATE_CONTAINER,
        p,
        None,
        4,
        Acl::open_unsafe(),
    ))
    .unwrap();
}

/// The reaper deletes in the order of ZooKeeper's `getCandidates` set: the
/// containers, then the TTL nodes, added to a `HashSet`. OpenJDK 17 printed
/// `[/c4, /c5, /t12, /c0, /t1, /c1, /c2, /c3]` for the same adds: "/t1"
/// shares "/c0"'s bucket and follows it, though it was created first.
#[test]
fn the_reaper_lists_candidates_in_zookeepers_order() {
    let mut h = Harness::new();
    h.res(create_ttl("/t1", 5, 10)).unwrap();
    for c in 0..6 {
        let p = format!("/c{c}");
        mk_container(&mut h, &p);
        h.mk(&format!("{p}/x"), 0);
        h.res(delete(&format!("{p}/x"), -1)).unwrap();
    }
    h.res(create_ttl("/t12", 5, 10)).unwrap();
    // Neither a persistent node nor a container never used is a candidate.
    h.mk("/p", 0);
    mk_container(&mut h, "/unused");
    assert_eq!(
        h.tree.reapable(h.time + 11, 0),
        ["/c4", "/c5", "/t12", "/c0", "/t1", "/c1", "/c2", "/c3"]
    );
    // A deleted candidate is gone from the reaper's list, and a node
    // created at its path in its place is not a candidate.
    h.write_as(
        SessionId(0),
        Request::DeleteContainer(PathRequest { path: "/c0".into() }),
    );
    assert!(!h.tree.reapers.contains("/c0"));
    h.mk("/c0", 0);
    assert!(!h.tree.reapers.contains("/c0"));
    assert_eq!(
        h.tree.reapable(h.time + 11, 0),
        ["/c4", "/c5", "/t12", "/t1", "/c1", "/c2", "/c3"]
    );
}

/// `znode.container.maxNeverUsedIntervalMs`: a container that never had a
/// child goes once that long has passed since its mtime (ZooKeeper's
/// `getCandidates`); with 0, the default, it stays.
#[test]
fn a_never_used_container_goes_after_its_interval() {
    let mut h = Harness::with_config(PrepareConfig {
        container_max_never_used_ms: 1000,
        ..PrepareConfig::default()
    });
    mk_container(&mut h, "/c");
    assert!(h.tree.reapable(h.time + 1000, 1000).is_empty());
    assert!(h.tree.reapable(h.time + 1001, 0).is_empty());
    assert_eq!(h.tree.reapable(h.time + 1001, 1000), ["/c"]);
    let del = Request::DeleteContainer(PathRequest { path: "/c".into() });
    assert_eq!(h.err(del.clone()), ErrorCode::BadVersion, "not yet due");
    h.time += 1001;
    assert_eq!(h.write_as(SessionId(0), del).result, Ok(Response::Empty));
    assert!(!h.tree.exists("/c"));
}

#[test]
fn containers_are_reaped_once_used_and_empty() {
    // Behaviour 22.
    let mut h = Harness::new();
    mk_container(&mut h, "/c");
    assert!(h.tree.reapable(i64::MAX, 0).is_empty());
    h.mk("/c/x", 0);
    assert!(h.tree.reapable(i64::MAX, 0).is_empty());
    let del = Request::DeleteContainer(PathRequest { path: "/c".into() });
    assert_eq!(h.err(del.clone()), ErrorCode::NotEmpty);
    h.res(delete("/c/x", -1)).unwrap();
    assert_eq!(h.tree.reapable(0, 0), vec!["/c".to_string()]);
    let a = h.write_as(SessionId(0), del);
    assert_eq!(a.result, Ok(Response::Empty));
    assert_eq!(
        a.events,
        vec![
            ev(event_type::NODE_DELETED, "/c"),
            ev(event_type::NODE_CHILDREN_CHANGED, "/")
        ]
    );
    // Session ephemerals are refused with BadVersion (reference D.4).
    h.mk("/e", 1);
    let del = Request::DeleteContainer(PathRequest { path: "/e".into() });
    assert_eq!(h.err(del), ErrorCode::BadVersion);
}

#[test]
fn delete_needs_delete_on_parent_only() {
    // Behaviour 41.
    let mut h = Harness::new();
    h.res(create_op(
        op::CREATE,
        "/p",
        None,
        0,
        vec![acl(perms::ALL & !perms::DELETE, "world", "anyone")],
    ))
    .unwrap();
    h.res(create_op(
        op::CREATE,
        "/p/c",
        None,
        0,
        vec![acl(0, "world", "anyone")],
    ))
    .unwrap();
    assert_eq!(h.err(delete("/p/c", -1)), ErrorCode::NoAuth);
    h.res(create_op(op::CREATE, "/q", None, 0, Acl::open_unsafe()))
        .unwrap();
    h.res(create_op(
        op::CREATE,
        "/q/c",
        None,
        0,
        vec![acl(0, "world", "anyone")],
    ))
    .unwrap();
    h.res(delete("/q/c", -1)).unwrap();
}

#[test]
fn delete_checks_in_order() {
    let mut h = Harness::new();
    h.mk("/p", 0);
    h.mk("/p/c", 0);
    assert_eq!(h.err(delete("/p/c", 5)), ErrorCode::BadVersion);
    assert_eq!(h.err(delete("/p", -1)), ErrorCode::NotEmpty);
    assert_eq!(h.err(delete("/x/y", -1)), ErrorCode::NoNode);
    assert_eq!(h.err(delete("/p/zz", -1)), ErrorCode::NoNode);
    assert_eq!(h.err(delete("nope", -1)), ErrorCode::BadArguments);
    for special in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
        assert_eq!(
            h.err(delete(special, -1)),
            ErrorCode::BadArguments,
            "{special}"
        );
    }
    let before = stat(&h, "/p");
    let a = h.write(delete("/p/c", 0));
    let after = stat(&h, "/p");
    assert_eq!(after.num_children, 0);
    assert_eq!(after.pzxid, a.zxid.0);
    assert_eq!(after.cversion, before.cversion + 1);
}

/// `exists` on a node the caller may not READ is refused, as since
/// ZooKeeper 3.8.4 (ZOOKEEPER-2590; behaviour 42 was 3.8.0's, which
/// answered anyone); on a missing node it is NoNode for everyone.
#[test]
fn exists_needs_read_on_a_node_that_exists() {
    let mut h = Harness::new();
    let d = digest_id("u:p");
    h.res(create_op(
        op::CREATE,
        "/s",
        Some(b"x"),
        0,
        vec![acl(perms::ALL, "digest", &d)],
    ))
    .unwrap();
    assert_eq!(h.read(Request::Exists(pw("/s"))), Err(ErrorCode::NoAuth));
    assert_eq!(
        h.read(Request::Exists(pw("/s/missing"))),
        Err(ErrorCode::NoNode)
    );
    assert_eq!(h.read(Request::GetData(pw("/s"))), Err(ErrorCode::NoAuth));
    assert_eq!(
        h.read(Request::GetChildren(pw("/s"))),
        Err(ErrorCode::NoAuth)
    );
    assert_eq!(h.err(set_data("/s", b"y", -1)), ErrorCode::NoAuth);
    // The digest's owner, and the super user, are told.
    for who in [Id::new("digest", &d), Id::new("super", "")] {
        h.auth = crate::AuthInfo::from_ids(vec![who]);
        assert!(matches!(
            h.read(Request::Exists(pw("/s"))),
            Ok(Response::Stat(_))
        ));
    }
}

#[test]
fn get_acl_needs_read_or_admin_and_redacts() {
    // Behaviour 43, reference D.2 reads.
    let mut h = Harness::new();
    let d = digest_id("u:p");
    let list = vec![
        acl(perms::READ, "world", "anyone"),
        acl(perms::ALL, "digest", &d),
    ];
    h.res(create_op(op::CREATE, "/r", None, 0, list.clone()))
        .unwrap();
    let get = || Request::GetAcl(PathRequest { path: "/r".into() });
    match h.read(get()).unwrap() {
        Response::GetAcl(r) => assert_eq!(r.acl[1].id.id, "u:x"),
        other => panic!("{other:?}"),
    }
    authenticate(&mut h.auth, &AuthConfig::default(), "digest", b"u:p").unwrap();
    match h.read(get()).unwrap() {
        Response::GetAcl(r) => assert_eq!(r.acl, list),
        other => panic!("{other:?}"),
    }
    h.res(create_op(
        op::CREATE,
        "/w",
        None,
        0,
        vec![acl(perms::WRITE, "world", "anyone")],
    ))
    .unwrap();
    let w = Request::GetAcl(PathRequest { path: "/w".into() });
    assert_eq!(h.read(w), Err(ErrorCode::NoAuth));
}

#[test]
fn invalid_acls_on_create_and_set_acl() {
    // Behaviour 44.
    let mut h = Harness::new();
    for bad in [
        Acl::creator_all(),
        vec![],
        vec![acl(31, "unknown", "x")],
        vec![acl(31, "digest", "nocolon")],
        vec![acl(31, "ip", "1.2.3")],
    ] {
        assert_eq!(
            h.err(create_op(op::CREATE, "/x", None, 0, bad.clone())),
            ErrorCode::InvalidAcl,
            "{bad:?}"
        );
    }
    let null = Request::Create {
        op: op::CREATE,
        req: CreateRequest {
            path: "/x".into(),
            data: None,
            acl: None,
            flags: 0,
        },
    };
    assert_eq!(h.err(null), ErrorCode::InvalidAcl);
    h.mk("/x", 0);
    assert_eq!(h.err(set_acl("/x", vec![], -1)), ErrorCode::InvalidAcl);
    // ACL fix-up comes before the parent lookup (reference D.2 order).
    assert_eq!(
        h.err(create_op(op::CREATE, "/no/x", None, 0, vec![])),
        ErrorCode::InvalidAcl
    );
    // auth expands to the authenticated digest identity.
    authenticate(&mut h.auth, &AuthConfig::default(), "digest", b"u:p").unwrap();
    h.res(create_op(op::CREATE, "/mine", None, 0, Acl::creator_all()))
        .unwrap();
    assert_eq!(
        h.tree.acl("/mine").unwrap(),
        &[acl(31, "digest", &digest_id("u:p"))][..]
    );
}

#[test]
fn create_needs_create_on_parent() {
    let mut h = Harness::new();
    h.res(create_op(op::CREATE, "/ro", None, 0, Acl::read_unsafe()))
        .unwrap();
    assert_eq!(h.err(create("/ro/x", None, 0)), ErrorCode::NoAuth);
    // skipACL lets everything through.
    let mut s = Harness::with_config(PrepareConfig {
        extended_types_enabled: false,
        skip_acl: true,
        providers: Default::default(),
        enforce_quota: false,
        container_max_never_used_ms: 0,
    });
    s.res(create_op(op::CREATE, "/ro", None, 0, Acl::read_unsafe()))
        .unwrap();
    s.mk("/ro/x", 0);
}

#[test]
fn ephemerals_cannot_have_children() {
    let mut h = Harness::new();
    h.mk("/e", 1);
    assert_eq!(
        h.err(create("/e/c", None, 0)),
        ErrorCode::NoChildrenForEphemerals
    );
    // Containers and TTL parents may.
    h.res(create_ttl("/t", 5, 100)).unwrap();
    h.mk("/t/c", 0);
}

#[test]
fn sessions_unknown_or_closing_are_expired() {
    let mut h = Harness::new();
    assert_eq!(
        h.write_as(S2, create("/x", None, 0)).result,
        Err(ErrorCode::SessionExpired)
    );
    assert_eq!(
        h.write_as(S2, create("/x", None, 1)).result,
        Err(ErrorCode::SessionExpired)
    );
    h.open_session(S2, 10_000);
    assert_eq!(h.tree.session_timeout(S2), Some(10_000));
    h.write_as(S2, create("/e2", None, 1)).result.unwrap();
    // Prepare a close without applying it: later writes are refused.
    let close = h.prepare(S2, &Request::CloseSession);
    let refused = h.prepare(S2, &create("/late", None, 1));
    assert!(matches!(
        refused.body.as_ref().and_then(|b| b.op.as_ref()),
        Some(TxnOp::Error(e)) if e.err == ErrorCode::SessionExpired.code()
    ));
    let a = h.apply(close);
    h.apply(refused);
    assert_eq!(a.closed_session, Some(S2));
    assert_eq!(
        a.events,
        vec![
            ev(event_type::NODE_DELETED, "/e2"),
            ev(event_type::NODE_CHILDREN_CHANGED, "/")
        ]
    );
    assert!(!h.tree.exists("/e2"));
    assert_eq!(h.tree.session_timeout(S2), None);
    assert_eq!(h.tree.sessions().count(), 1);
}

/// A write from a connection the session has left (the leader knows
/// another owner) fails with SESSIONMOVED where ZooKeeper's `checkSession`
/// runs: after the create's mode and TTL checks, before everything else,
/// and after the session's own liveness (reference D.11). It still takes
/// a zxid, as every failed write does.
#[test]
fn writes_from_a_connection_the_session_left_are_session_moved() {
    let mut h = Harness::new();
    h.mk("/n", 0);
    let moved = |h: &mut Harness, req: Request| {
        let before = h.tree.last_zxid();
        let txn = h.prepare_from(S1, &req, true);
        let a = h.apply(txn);
        assert_eq!(a.zxid, before.next(), "{req:?} takes a zxid");
        a.result
    };
    // Even where the request would fail for another reason later on.
    for req in [
        create("/n", None, 0),
        create("/new", None, 0),
        delete("/n", 7),
        set_data("/missing", b"x", -1),
        set_acl("/n", vec![acl(perms::ALL, "world", "anyone")], -1),
    ] {
        assert_eq!(moved(&mut h, req), Err(ErrorCode::SessionMoved));
    }
    assert!(!h.tree.exists("/new"));
    assert!(h.tree.exists("/n"));
    // Mode and TTL are checked first.
    assert_eq!(
        moved(&mut h, create("/x", None, 99)),
        Err(ErrorCode::BadArguments)
    );
    // An unknown session is expired, wherever the request came from.
    let txn = h.prepare_from(S2, &create("/y", None, 0), true);
    assert_eq!(h.apply(txn).result, Err(ErrorCode::SessionExpired));
    // In a multi the first op fails with it and the rest are rolled back;
    // the pipeline closes the connection when it sees it (D.7).
    let ops = vec![mcreate("/m", 0), mcreate("/m/c", 0)];
    let Ok(Response::Multi(m)) = moved(&mut h, Request::Multi(ops)) else {
        panic!("a multi answers per op")
    };
    assert_eq!(
        m.results,
        vec![
            MultiResult::Error(ErrorCode::SessionMoved.code()),
            MultiResult::Error(ErrorCode::RuntimeInconsistency.code())
        ]
    );
    assert!(!h.tree.exists("/m"));
}

/// A session whose ephemerals are all deleted keeps its (empty) entry
/// until it ends, as ZooKeeper's `DataTree.deleteNode` leaves it: `dump`
/// lists it with no paths (checked on 3.8.0).
#[test]
fn a_session_keeps_its_ephemerals_entry_until_it_ends() {
    let mut h = Harness::new();
    h.mk("/e", 1);
    h.res(delete("/e", -1)).unwrap();
    let listed: Vec<(SessionId, Vec<String>)> = h.tree.ephemerals().collect();
    assert_eq!(listed, [(h.session, vec![])]);
    assert_eq!(h.tree.ephemeral_count(), 0);
    h.write(Request::CloseSession);
    assert!(h.tree.ephemerals().next().is_none());
}

#[test]
fn close_session_includes_pending_ephemerals() {
    let mut h = Harness::new();
    h.open_session(S2, 10_000);
    let t1 = h.prepare(S2, &create("/p1", None, 1));
    let t2 = h.prepare(S2, &create("/p2", None, 3));
    let close = h.prepare(S2, &Request::CloseSession);
    match close.body.as_ref().and_then(|b| b.op.as_ref()) {
        Some(TxnOp::CloseSession(c)) => {
            assert_eq!(
                c.paths_to_delete,
                vec!["/p1".to_string(), "/p20000000001".to_string()]
            )
        }
        other => panic!("{other:?}"),
    }
    h.apply(t1);
    h.apply(t2);
    h.apply(close);
    assert!(h.tree.ephemerals().next().is_none());
    assert_eq!(stat(&h, "/").num_children, 1);
}

#[test]
fn pending_changes_are_seen() {
    let mut h = Harness::new();
    let a = h.prepare(S1, &create("/a", None, 0));
    let b = h.prepare(S1, &create("/a/b", None, 0));
    let s1 = h.prepare(S1, &create("/a/s", None, 2));
    let s2 = h.prepare(S1, &create("/a/s", None, 2));
    let dup = h.prepare(S1, &create("/a", None, 0));
    let del = h.prepare(S1, &delete("/a", -1));
    for t in [a, b, s1, s2] {
        assert!(h.apply(t).result.is_ok());
    }
    assert_eq!(h.apply(dup).result, Err(ErrorCode::NodeExists));
    assert_eq!(h.apply(del).result, Err(ErrorCode::NotEmpty));
    assert_eq!(
        h.tree.children("/a").unwrap(),
        vec!["b", "s0000000001", "s0000000002"]
    );
    assert_eq!(h.prep.pending(), 0);
}

#[test]
fn reconfig_is_disabled() {
    let mut h = Harness::new();
    let r = Request::Reconfig(zab_wire::jute::ReconfigRequest::default());
    assert_eq!(h.err(r), ErrorCode::ReconfigDisabled);
    // A bare check outside a multi is refused (behaviour 19).
    let c = Request::Check(CheckVersionRequest {
        path: "/".into(),
        version: -1,
    });
    assert_eq!(h.err(c), ErrorCode::Unimplemented);
}

fn mcreate(p: &str, flags: i32) -> MultiOp {
    MultiOp::Create {
        op: op::CREATE,
        req: CreateRequest {
            path: p.into(),
            data: Some(Bytes::from_static(b"m")),
            acl: Some(Acl::open_unsafe()),
            flags,
        },
    }
}

#[test]
fn multi_applies_in_order_under_one_zxid() {
    // Reference D.7: ops see earlier ops' effects.
    let mut h = Harness::new();
    let ops = vec![
        mcreate("/m", 0),
        MultiOp::SetData(SetDataRequest {
            path: "/m".into(),
            data: Some(Bytes::from_static(b"z")),
            version: 0,
        }),
        mcreate("/m/s", 2),
        mcreate("/m/s", 2),
        MultiOp::Check(CheckVersionRequest {
            path: "/m".into(),
            version: 1,
        }),
        mcreate("/m/c", 0),
        MultiOp::Delete(DeleteRequest {
            path: "/m/c".into(),
            version: -1,
        }),
    ];
    let before = h.tree.last_zxid();
    let a = h.write(Request::Multi(ops));
    assert_eq!(a.zxid, before.next());
    let Ok(Response::Multi(m)) = a.result else {
        panic!("{:?}", a.result)
    };
    assert!(matches!(&m.results[2], MultiResult::Create(c) if c.path == "/m/s0000000000"));
    assert!(matches!(&m.results[3], MultiResult::Create(c) if c.path == "/m/s0000000001"));
    assert_eq!(m.results[4], MultiResult::Check);
    assert_eq!(m.results[6], MultiResult::Delete);
    assert_eq!(h.tree.data("/m").unwrap(), Bytes::from_static(b"z"));
    // Behaviour 26 order and D.6: events in sub-op order.
    assert_eq!(a.events[0], ev(event_type::NODE_CREATED, "/m"));
    assert_eq!(a.events[2], ev(event_type::NODE_DATA_CHANGED, "/m"));
    assert_eq!(
        &a.events[a.events.len() - 2..],
        &[
            ev(event_type::NODE_DELETED, "/m/c"),
            ev(event_type::NODE_CHILDREN_CHANGED, "/m")
        ]
    );
}

/// Inside a multi, a create's flags pick its opcode (ZooKeeper's
/// `MultiOperationRecord` and `Op.create`): the container flag makes any
/// create op 19, a createTTL without a TTL mode a plain create with its
/// ttl dropped, and otherwise the header's op stands (≥ 3.9). A TTL mode
/// on op 1 has no ttl: the whole request fails with MARSHALLINGERROR, as
/// an error txn.
#[test]
fn a_multis_creates_take_the_opcode_their_flags_name() {
    let mut h = Harness::new();
    let ttl_op = |p: &str, flags, ttl| {
        MultiOp::CreateTtl(CreateTtlRequest {
            path: p.into(),
            data: None,
            acl: Some(Acl::open_unsafe()),
            flags,
            ttl,
        })
    };
    let create2 = MultiOp::Create {
        op: op::CREATE2,
        req: CreateRequest {
            path: "/two".into(),
            data: None,
            acl: Some(Acl::open_unsafe()),
            flags: 0,
        },
    };
    let a = h.write(Request::Multi(vec![
        mcreate("/c", 4),
        ttl_op("/p", 0, 5),
        create2,
        mcreate("/c/x", 0),
    ]));
    let Ok(Response::Multi(m)) = a.result else {
        panic!("{:?}", a.result)
    };
    assert!(matches!(&m.results[0], MultiResult::Create2(c) if c.path == "/c"));
    assert!(matches!(&m.results[1], MultiResult::Create(c) if c.path == "/p"));
    assert!(matches!(&m.results[2], MultiResult::Create2(c) if c.path == "/two"));
    // /c is a container (reaped once emptied), /p a plain node.
    h.res(delete("/c/x", -1)).unwrap();
    assert_eq!(h.tree.reapable(i64::MAX, 0), vec!["/c".to_string()]);

    let before = h.tree.last_zxid();
    let a = h.write(Request::Multi(vec![mcreate("/t", 0), mcreate("/t2", 5)]));
    assert_eq!(a.result, Err(ErrorCode::MarshallingError));
    assert_eq!(a.zxid, before.next());
    assert!(!h.tree.exists("/t"));
    // An earlier op's failure stops the multi before that op is read.
    let a = h.write(Request::Multi(vec![
        mcreate("/nope/x", 0),
        mcreate("/t2", 5),
    ]));
    let Ok(Response::Multi(m)) = a.result else {
        panic!("{:?}", a.result)
    };
    assert_eq!(
        m.results,
        [
            MultiResult::Error(ErrorCode::NoNode.code()),
            MultiResult::Error(ErrorCode::RuntimeInconsistency.code())
        ]
    );
}

/// A multi long enough that its changes are found through the overlay's
/// index rather than by scanning: every op must still see the newest
/// change to its path, the parent's as well as the node's.
#[test]
fn a_long_multi_sees_its_own_newest_changes() {
    let mut h = Harness::new();
    let set = |p: &str, version| {
        MultiOp::SetData(SetDataRequest {
            path: p.into(),
            data: Some(Bytes::from_static(b"z")),
            version,
        })
    };
    let check = |p: &str, version| {
        MultiOp::Check(CheckVersionRequest {
            path: p.into(),
            version,
        })
    };
    let mut ops = vec![mcreate("/big", 0)];
    // Two changes per create (the parent and the child): 25 in all.
    ops.extend((0..12).map(|_| mcreate("/big/s", 2)));
    ops.extend([
        set("/big/s0000000003", 0),
        check("/big/s0000000003", 1),
        set("/big/s0000000003", 1),
        MultiOp::Delete(DeleteRequest {
            path: "/big/s0000000005".into(),
            version: -1,
        }),
        mcreate("/big/s", 2),
        check("/big/s0000000003", 2),
    ]);
    let a = h.write(Request::Multi(ops.clone()));
    let Ok(Response::Multi(m)) = a.result else {
        panic!("{:?}", a.result)
    };
    assert!(matches!(&m.results[17], MultiResult::Create(c) if c.path == "/big/s0000000012"));
    let s = stat(&h, "/big/s0000000003");
    assert_eq!((s.version, s.num_children), (2, 0));
    let big = stat(&h, "/big");
    assert_eq!((big.num_children, big.cversion), (12, 14));
    // The same ops again under another parent, ending with a stale check:
    // the multi fails at that op, so the overlay saw version 2 there.
    let mut again: Vec<MultiOp> = ops
        .iter()
        .map(|o| match o {
            MultiOp::Create { op, req } => MultiOp::Create {
                op: *op,
                req: CreateRequest {
                    path: req.path.replace("/big", "/big2"),
                    ..req.clone()
                },
            },
            MultiOp::SetData(r) => set(&r.path.replace("/big", "/big2"), r.version),
            MultiOp::Check(r) => check(&r.path.replace("/big", "/big2"), r.version),
            MultiOp::Delete(r) => MultiOp::Delete(DeleteRequest {
                path: r.path.replace("/big", "/big2"),
                version: r.version,
            }),
            other => other.clone(),
        })
        .collect();
    again.push(check("/big2/s0000000003", 1));
    let a = h.write(Request::Multi(again));
    let Ok(Response::Multi(m)) = a.result else {
        panic!("{:?}", a.result)
    };
    assert_eq!(
        m.results[19],
        MultiResult::Error(ErrorCode::BadVersion.code())
    );
    assert!(!h.tree.exists("/big2"));
    assert_eq!(h.prep.pending(), 0);
}

#[test]
fn failed_multi_applies_nothing() {
    // Behaviours 46–47, reference C multi example.
    let mut h = Harness::new();
    h.mk("/a", 0);
    h.mk("/p", 0);
    let tree_before = h.tree.clone();
    let ops = vec![
        mcreate("/m", 0),
        mcreate("/p/s", 2),
        mcreate("/a", 0),
        MultiOp::SetData(SetDataRequest {
            path: "/zz".into(),
            data: None,
            version: -1,
        }),
    ];
    let a = h.write(Request::Multi(ops));
    let Ok(Response::Multi(m)) = a.result else {
        panic!("{:?}", a.result)
    };
    assert_eq!(
        m.results,
        vec![
            MultiResult::Error(0),
            MultiResult::Error(0),
            MultiResult::Error(-110),
            MultiResult::Error(-2)
        ]
    );
    assert!(a.events.is_empty());
    assert!(!h.tree.exists("/m"));
    assert_eq!(h.tree.stat("/p"), tree_before.stat("/p"));
    assert_eq!(h.tree.last_zxid(), a.zxid);
    // No sequence number was consumed and no pending change is left.
    assert_eq!(h.prep.pending(), 0);
    assert_eq!(h.mk("/p/s", 2), "/p/s0000000000");
    // Deleting /p/c then /p in one multi (behaviour 26).
    h.mk("/p/c", 0);
    let ops = vec![
        MultiOp::Delete(DeleteRequest {
            path: "/p/c".into(),
            version: -1,
        }),
        MultiOp::Delete(DeleteRequest {
            path: "/p/s0000000000".into(),
            version: -1,
        }),
        MultiOp::Delete(DeleteRequest {
            path: "/p".into(),
            version: -1,
        }),
    ];
    let a = h.write(Request::Multi(ops));
    assert_eq!(
        a.events,
        vec![
            ev(event_type::NODE_DELETED, "/p/c"),
            ev(event_type::NODE_CHILDREN_CHANGED, "/p"),
            ev(event_type::NODE_DELETED, "/p/s0000000000"),
            ev(event_type::NODE_CHILDREN_CHANGED, "/p"),
            ev(event_type::NODE_DELETED, "/p"),
            ev(event_type::NODE_CHILDREN_CHANGED, "/"),
        ]
    );
    // An empty multi still consumes a zxid.
    let a = h.write(Request::Multi(vec![]));
    assert_eq!(a.result, Ok(Response::Multi(Default::default())));
    assert_eq!(h.tree.last_zxid(), a.zxid);
}

#[test]
fn create_reply_shapes_and_stats() {
    let mut h = Harness::new();
    h.time = 5_000;
    let a = h.write(create_op(
        op::CREATE2,
        "/c2",
        Some(b"abc"),
        0,
        Acl::open_unsafe(),
    ));
    let Ok(Response::Create2(c)) = a.result else {
        panic!("{:?}", a.result)
    };
    assert_eq!(c.path, "/c2");
    let s = c.stat;
    assert_eq!((s.czxid, s.mzxid, s.pzxid), (a.zxid.0, a.zxid.0, a.zxid.0));
    assert_eq!((s.ctime, s.mtime), (5_000, 5_000));
    assert_eq!(
        (s.version, s.cversion, s.aversion, s.data_length),
        (0, 0, 0, 3)
    );
    assert_eq!(stat(&h, "/").pzxid, a.zxid.0);
    assert_eq!(
        a.events,
        vec![
            ev(event_type::NODE_CREATED, "/c2"),
            ev(event_type::NODE_CHILDREN_CHANGED, "/")
        ]
    );
    let a = h.write(create("/c1", None, 0));
    assert!(matches!(a.result, Ok(Response::Create(_))));
}

#[test]
fn get_ephemerals_and_children_number() {
    let mut h = Harness::new();
    assert_eq!(
        h.read(Request::GetAllChildrenNumber(PathRequest {
            path: "/".into()
        })),
        Ok(Response::GetAllChildrenNumber(
            zab_wire::jute::GetAllChildrenNumberResponse { total_number: 3 }
        ))
    );
    h.mk("/e1", 1);
    h.mk("/x", 0);
    h.mk("/x/e2", 1);
    let eph = |h: &Harness, p: &str| match h
        .read(Request::GetEphemerals(PathRequest { path: p.into() }))
    {
        Ok(Response::StringList(l)) => l.items,
        other => panic!("{other:?}"),
    };
    // In the order of a Java `HashSet` holding both (OpenJDK 17 prints
    // `[/x/e2, /e1]`).
    assert_eq!(eph(&h, "/"), vec!["/x/e2", "/e1"]);
    assert_eq!(eph(&h, ""), vec!["/x/e2", "/e1"]);
    assert_eq!(eph(&h, "/x"), vec!["/x/e2"]);
    assert_eq!(eph(&h, "/e"), vec!["/e1"]);
    // Blank, or "/" with blanks round it, is all once Java-trimmed; a
    // real prefix is compared untrimmed.
    for all in ["  ", " / ", "\t/\n"] {
        assert_eq!(eph(&h, all), vec!["/x/e2", "/e1"], "{all:?}");
    }
    assert!(eph(&h, " /x").is_empty());
}
