//! Quotas through prepare and apply, as zkCli's `setquota` sets them up
//! and as ZooKeeper 3.8's `DataTree` keeps their usage.

use zab_wire::jute::{op, ErrorCode, MultiOp, Request, Response};

use super::*;
use crate::testkit::{create, delete, set_data, Harness};
use crate::{DataTree, PrepareConfig};

/// What zkCli 3.8's `setquota -n 10 /app` leaves in the limit node.
const SOFT_COUNT_10: &[u8] = b"count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=-1";

fn stats(h: &Harness, quoted: &str) -> String {
    let data = h.tree.data(&stat_path(quoted)).expect("a stats node");
    String::from_utf8(data.to_vec()).expect("text")
}

/// `setquota`'s writes: the nodes on the way (null data), the limit node,
/// then the stats node with `count=0,bytes=0`.
fn set_quota(h: &mut Harness, p: &str, limits: &[u8]) {
    let mut at = path::QUOTA.to_owned();
    for part in p[1..].split('/') {
        at = format!("{at}/{part}");
        if !h.tree.exists(&at) {
            h.res(create(&at, None, 0)).expect("quota path");
        }
    }
    h.res(create(&limit_path(p), Some(limits), 0))
        .expect("limit node");
    h.res(create(&stat_path(p), Some(b"count=0,bytes=0"), 0))
        .expect("stats node");
}

fn enforcing() -> Harness {
    Harness::with_config(PrepareConfig {
        enforce_quota: true,
        ..Harness::new().prep.config()
    })
}

#[test]
fn the_stats_node_gets_the_usage_when_made_and_then_follows_writes() {
    let mut h = Harness::new();
    h.res(create("/app", Some(b"d"), 0)).unwrap();
    h.res(create("/app/x", Some(b"abc"), 0)).unwrap();
    h.res(create("/other", Some(b"zzzz"), 0)).unwrap();
    set_quota(&mut h, "/app", SOFT_COUNT_10);
    // The client wrote `count=0,bytes=0`; the tree counted /app and /app/x.
    assert_eq!(stats(&h, "/app"), "count=2,bytes=4");
    let made = h.tree.stat(&stat_path("/app")).unwrap();
    assert_eq!(made.data_length, "count=2,bytes=4".len() as i32);

    h.res(create("/app/y", Some(b"12345"), 0)).unwrap();
    assert_eq!(stats(&h, "/app"), "count=3,bytes=9");
    h.res(create("/app/y/z", None, 0)).unwrap();
    assert_eq!(stats(&h, "/app"), "count=4,bytes=9");
    h.res(set_data("/app/x", b"a", -1)).unwrap();
    assert_eq!(stats(&h, "/app"), "count=4,bytes=7");
    h.res(delete("/app/y/z", -1)).unwrap();
    h.res(delete("/app/y", -1)).unwrap();
    assert_eq!(stats(&h, "/app"), "count=2,bytes=2");
    // Writes elsewhere leave it alone.
    h.res(set_data("/other", b"", -1)).unwrap();
    assert_eq!(stats(&h, "/app"), "count=2,bytes=2");

    // Rewritten in place: the stats node's version and zxids never move.
    let now = h.tree.stat(&stat_path("/app")).unwrap();
    assert_eq!(
        (now.version, now.mzxid, now.czxid, now.mtime),
        (made.version, made.mzxid, made.czxid, made.mtime)
    );
    assert_eq!(now.data_length, "count=2,bytes=2".len() as i32);
}

#[test]
fn the_deepest_quota_counts_a_write_and_a_deleted_limit_ends_a_quota() {
    let mut h = Harness::new();
    h.mk("/a", 0);
    h.mk("/a/b", 0);
    set_quota(&mut h, "/a", SOFT_COUNT_10);
    set_quota(&mut h, "/a/b", SOFT_COUNT_10);
    // Both counted /a/b when made: ZooKeeper recounts the whole subtree.
    assert_eq!(stats(&h, "/a"), "count=2,bytes=2");
    assert_eq!(stats(&h, "/a/b"), "count=1,bytes=1");
    h.mk("/a/b/c", 0);
    h.mk("/a/bc", 0);
    assert_eq!(stats(&h, "/a/b"), "count=2,bytes=2");
    assert_eq!(stats(&h, "/a"), "count=3,bytes=3");

    h.res(delete(&limit_path("/a/b"), -1)).unwrap();
    h.mk("/a/b/d", 0);
    assert_eq!(stats(&h, "/a/b"), "count=2,bytes=2", "no quota any more");
    assert_eq!(stats(&h, "/a"), "count=4,bytes=4", "the next quota up");
}

#[test]
fn stats_that_do_not_parse_are_left_as_they_are() {
    let mut h = Harness::new();
    h.mk("/app", 0);
    set_quota(&mut h, "/app", SOFT_COUNT_10);
    h.res(set_data(&stat_path("/app"), b"count=1;bytes=5;other=7", -1))
        .unwrap();
    h.mk("/app/x", 0);
    // Re-written by `StatsTrack.toString`, with the key it did not know.
    assert_eq!(stats(&h, "/app"), "count=2,bytes=6=;other=7");
    h.res(set_data(&stat_path("/app"), b"not stats", -1))
        .unwrap();
    h.mk("/app/y", 0);
    assert_eq!(stats(&h, "/app"), "not stats");
}

/// A client may write any long into the stats: the sums wrap as Java's
/// longs do, and nothing panics.
#[test]
fn stats_at_the_edge_of_a_long_wrap() {
    let mut h = enforcing();
    h.mk("/app", 0);
    set_quota(
        &mut h,
        "/app",
        b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=5",
    );
    let max = i64::MAX.to_string();
    let text = format!("count={max},bytes={max}");
    h.res(set_data(&stat_path("/app"), text.as_bytes(), -1))
        .unwrap();
    // i64::MAX + 1 wraps below the limit of 5: ZooKeeper lets it pass.
    h.mk("/app/x", 0);
    assert_eq!(
        stats(&h, "/app"),
        format!("count={},bytes={}", i64::MIN, i64::MIN)
    );
    let _ = h.tree.quota_gauges();
}

/// Stats rewritten in place are not counted in `approximate_data_size`
/// (ZooKeeper's `nodeDataSize` misses them too), so a client that makes
/// them grow and then overwrites them drives the figure down. ZooKeeper's
/// goes negative; zab's stops at 0, and nothing that subtracts from it
/// panics.
#[test]
fn a_drifting_data_size_never_wraps() {
    let mut h = Harness::new();
    let config = bytes::Bytes::from(vec![b'#'; 1000]);
    h.tree.set_config(config.clone(), 0, 1);
    h.mk("/app", 0);
    set_quota(&mut h, "/app", SOFT_COUNT_10);
    let honest = h.tree.approximate_data_size();
    let big = vec![b'x'; 100_000];
    let reset = |h: &mut Harness| {
        h.res(set_data(&stat_path("/app"), b"count=0,bytes=0", -1))
            .unwrap();
    };
    for _ in 0..200 {
        // Each write below lengthens the stats in place (to
        // `count=1,bytes=100000`, then `count=-1,bytes=-100000`); each
        // overwrite takes the longer text off the figure.
        reset(&mut h);
        h.res(create("/app/x", Some(&big), 0)).unwrap();
        reset(&mut h);
        h.res(delete("/app/x", -1)).unwrap();
    }
    let drifted = h.tree.approximate_data_size();
    assert!(drifted < 1000 && drifted < honest, "{drifted}");
    // Replacing the 1000-byte membership subtracts more than is left.
    h.tree.set_config(config, 0, 2);
    assert!(h.tree.approximate_data_size() >= 1000);
}

#[test]
fn a_restored_tree_recounts_its_quotas() {
    let mut h = Harness::new();
    h.mk("/app", 0);
    h.mk("/app/x", 0);
    set_quota(&mut h, "/app", SOFT_COUNT_10);
    // A client overwrites the usage; a restart counts it anew.
    h.res(set_data(&stat_path("/app"), b"count=40,bytes=40", -1))
        .unwrap();
    let mut out = Vec::new();
    h.tree.snapshot().write_to(&mut out).unwrap();
    let mut restored = DataTree::restore(&mut &out[..]).unwrap();
    let stats_of = |t: &DataTree| t.data(&stat_path("/app")).unwrap().to_vec();
    assert_eq!(stats_of(&restored), b"count=2,bytes=2");
    // And the quota is live again.
    h.tree = restored.clone();
    h.mk("/app/y", 0);
    assert_eq!(stats(&h, "/app"), "count=3,bytes=3");
    restored = h.tree.clone();
    assert_eq!(
        restored.quota_gauges().count_usage.get("app"),
        Some(&3),
        "gauges read the same nodes"
    );
}

#[test]
fn gauges_add_up_per_namespace_hard_limits_first() {
    let mut h = Harness::new();
    h.mk("/app", 0);
    h.mk("/app/a", 0);
    h.mk("/app/b", 0);
    h.mk("/web", 0);
    set_quota(&mut h, "/app/a", SOFT_COUNT_10);
    set_quota(
        &mut h,
        "/app/b",
        b"count=-1,bytes=-1=;byteHardLimit=50;countHardLimit=4",
    );
    set_quota(&mut h, "/web", b"count=-1,bytes=100");
    let g = h.tree.quota_gauges();
    let pairs = |m: &BTreeMap<String, i64>| m.clone().into_iter().collect::<Vec<_>>();
    assert_eq!(
        pairs(&g.count_limit),
        [("app".into(), 14), ("web".into(), -1)]
    );
    assert_eq!(
        pairs(&g.bytes_limit),
        [("app".into(), 49), ("web".into(), 100)]
    );
    assert_eq!(
        pairs(&g.count_usage),
        [("app".into(), 2), ("web".into(), 1)]
    );
    assert_eq!(
        pairs(&g.bytes_usage),
        [("app".into(), 2), ("web".into(), 1)]
    );
}

#[test]
fn hard_limits_refuse_writes_only_when_enforced() {
    let hard = b"count=-1,bytes=-1=;byteHardLimit=6;countHardLimit=3";
    for enforced in [false, true] {
        let mut h = if enforced {
            enforcing()
        } else {
            Harness::new()
        };
        h.mk("/app", 0); // "d": count 1, bytes 1
        set_quota(&mut h, "/app", hard);
        h.mk("/app/x", 0);
        h.mk("/app/y", 0);
        assert_eq!(stats(&h, "/app"), "count=3,bytes=3");
        let fourth = h.write(create("/app/z", None, 0)).result;
        let big = h.write(set_data("/app/x", b"12345", -1)).result;
        if !enforced {
            assert!(fourth.is_ok() && big.is_ok(), "{fourth:?} {big:?}");
            continue;
        }
        assert_eq!(fourth, Err(ErrorCode::QuotaExceeded));
        assert_eq!(big, Err(ErrorCode::QuotaExceeded));
        // Up to the limit is allowed, and shrinking always is.
        h.res(set_data("/app/x", b"1234", -1)).unwrap();
        assert_eq!(stats(&h, "/app"), "count=3,bytes=6");
        h.res(set_data("/app/x", b"", -1)).unwrap();
        // QUOTAEXCEEDED comes before BADVERSION, as in ZooKeeper's
        // `PrepRequestProcessor`, and after NODEEXISTS.
        assert_eq!(
            h.err(set_data("/app/y", b"1234567", 99)),
            ErrorCode::QuotaExceeded
        );
        assert_eq!(h.err(create("/app/x", None, 0)), ErrorCode::NodeExists);
        // A multi fails at the op past the limit.
        let multi = Request::Multi(vec![
            MultiOp::SetData(zab_wire::jute::SetDataRequest {
                path: "/app/y".into(),
                data: None,
                version: -1,
            }),
            MultiOp::Create {
                op: op::CREATE,
                req: zab_wire::jute::CreateRequest {
                    path: "/app/z".into(),
                    data: None,
                    acl: Some(zab_wire::jute::Acl::open_unsafe()),
                    flags: 0,
                },
            },
        ]);
        match h.res(multi) {
            Ok(Response::Multi(m)) => assert_eq!(
                m.results
                    .iter()
                    .map(|r| match r {
                        zab_wire::jute::MultiResult::Error(e) => *e,
                        _ => 0,
                    })
                    .collect::<Vec<_>>(),
                [0, ErrorCode::QuotaExceeded.code()]
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(h.prep.quota_exceeded().get("app"), Some(&4));
        h.prep.reset_quota_exceeded();
        assert_eq!(h.prep.quota_exceeded().get("app"), Some(&0));
    }
}

#[test]
fn soft_limits_never_refuse() {
    let mut h = enforcing();
    h.mk("/app", 0);
    set_quota(&mut h, "/app", b"count=1,bytes=1");
    h.mk("/app/x", 0);
    h.res(set_data("/app/x", b"far more than a byte", -1))
        .unwrap();
    assert_eq!(stats(&h, "/app"), "count=2,bytes=21");
    assert!(h.prep.quota_exceeded().is_empty());
}

#[test]
fn usage_is_read_from_the_applied_tree_not_pending_writes() {
    // ZooKeeper's `checkQuota` reads the stats node of its `ZKDatabase`,
    // so writes prepared but not applied do not count yet.
    let mut h = enforcing();
    h.mk("/app", 0);
    set_quota(
        &mut h,
        "/app",
        b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2",
    );
    let first = h.prepare(h.session, &create("/app/x", None, 0));
    let second = h.prepare(h.session, &create("/app/y", None, 0));
    assert!(h.apply(first).result.is_ok());
    assert!(h.apply(second).result.is_ok());
    assert_eq!(stats(&h, "/app"), "count=3,bytes=1");
    assert_eq!(h.err(create("/app/z", None, 0)), ErrorCode::QuotaExceeded);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn stats_text() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"count=0,bytes=0".to_vec()),
            Just(SOFT_COUNT_10.to_vec()),
            Just(b"count=-1,bytes=-1=;byteHardLimit=8;countHardLimit=3".to_vec()),
            Just(b"".to_vec()),
            Just(b"not stats".to_vec()),
            Just(b"count=9223372036854775807,bytes=-9223372036854775808".to_vec()),
            prop::collection::vec(any::<u8>(), 0..12),
        ]
    }

    /// A write of the quota machinery's own nodes or of nodes below them.
    fn write(paths: &'static [&'static str]) -> impl Strategy<Value = Request> {
        let path = prop::sample::select(paths);
        prop_oneof![
            3 => (path.clone(), prop::option::of(stats_text()))
                .prop_map(|(p, d)| create(p, d.as_deref(), 0)),
            1 => path.clone().prop_map(|p| delete(p, -1)),
            2 => (path, stats_text()).prop_map(|(p, d)| set_data(p, &d, -1)),
        ]
    }

    const EVERYWHERE: &[&str] = &[
        "/a",
        "/a/b",
        "/a/b/c",
        "/b",
        "/zookeeper/quota/a",
        "/zookeeper/quota/a/zookeeper_limits",
        "/zookeeper/quota/a/zookeeper_stats",
        "/zookeeper/quota/a/b",
        "/zookeeper/quota/a/b/zookeeper_limits",
        "/zookeeper/quota/a/b/zookeeper_stats",
        "/zookeeper/quota/zookeeper_limits",
        "/zookeeper/quota/zookeeper_stats",
    ];

    const BELOW_A: &[&str] = &["/a/x", "/a/x/y", "/a/z", "/b", "/b/x"];

    fn snapshot_bytes(t: &DataTree) -> Vec<u8> {
        let mut out = Vec::new();
        t.snapshot().write_to(&mut out).expect("write to a Vec");
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// Any writes of limit and stats nodes, nested quotas, stats that
        /// do not parse: nothing panics, replaying the log gives the same
        /// tree, and a snapshot restores.
        #[test]
        fn any_quota_writes_apply_alike_and_never_panic(
            enforce in any::<bool>(),
            writes in prop::collection::vec(write(EVERYWHERE), 0..60),
        ) {
            let mut h = if enforce { enforcing() } else { Harness::new() };
            for w in writes {
                let _ = h.write(w);
            }
            let mut replica = DataTree::new();
            for txn in &h.log {
                replica.apply(txn);
            }
            prop_assert_eq!(snapshot_bytes(&replica), snapshot_bytes(&h.tree));
            prop_assert_eq!(replica.approximate_data_size(), h.tree.approximate_data_size());
            let _ = h.tree.quota_gauges();
            let bytes = snapshot_bytes(&h.tree);
            prop_assert!(DataTree::restore(&mut &bytes[..]).is_ok());
        }

        /// With one quota, on /a, whose stats no client writes: what the
        /// tree keeps up to date write by write is what a recount finds,
        /// and hard limits hold.
        #[test]
        fn usage_kept_write_by_write_is_the_recount(
            writes in prop::collection::vec(write(BELOW_A), 0..80),
        ) {
            let mut h = enforcing();
            h.mk("/a", 0);
            set_quota(
                &mut h,
                "/a",
                b"count=-1,bytes=-1=;byteHardLimit=20;countHardLimit=4",
            );
            for w in writes {
                let _ = h.write(w);
            }
            let kept = StatsTrack::parse(&h.tree.data(&stat_path("/a")).unwrap()).unwrap();
            let (count, bytes) = h.tree.usage("/a");
            prop_assert_eq!((kept.count(), kept.bytes()), (count, bytes));
            prop_assert!(count <= 4 && bytes <= 20, "{count} nodes, {bytes} bytes");
            let mut out = Vec::new();
            h.tree.snapshot().write_to(&mut out).unwrap();
            let restored = DataTree::restore(&mut &out[..]).unwrap();
            prop_assert_eq!(restored.data(&stat_path("/a")), h.tree.data(&stat_path("/a")));
        }
    }
}
