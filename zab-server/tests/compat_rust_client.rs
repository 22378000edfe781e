//! End-to-end compatibility with the `zookeeper-client` crate, a Rust
//! ZooKeeper client this project did not write: CRUD, create modes, watches,
//! multi, ACLs, session expiry and reconnection across a server restart.
//!
//! Runs against zab by default, or against Apache ZooKeeper 3.8 with
//! `ZAB_TEST_TARGET=zookeeper` (see `tests/support/mod.rs`).

mod support;

use std::time::Duration;

use base64::Engine as _;
use sha1::{Digest, Sha1};
use support::{bounded, eventually, Target, TestServer};
use zookeeper_client::{
    Acl, Acls, AddWatchMode, Client, CreateMode, CreateOptions, Error, EventType, MultiWriteError,
    MultiWriteResult, OneshotWatcher, PersistentWatcher, SessionState, WatchedEvent,
};

/// How long a watch event may take to arrive after the change that fires it.
const EVENT_WITHIN: Duration = Duration::from_secs(10);

fn persistent() -> CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

async fn connect(server: &TestServer) -> Client {
    connect_with_timeout(server, Duration::from_secs(10)).await
}

async fn connect_with_timeout(server: &TestServer, session_timeout: Duration) -> Client {
    Client::connector()
        .with_session_timeout(session_timeout)
        .connect(&server.connect_string())
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", server.connect_string()))
}

async fn next_oneshot(watcher: OneshotWatcher) -> WatchedEvent {
    tokio::time::timeout(EVENT_WITHIN, watcher.changed())
        .await
        .expect("watch event did not arrive in time")
}

async fn next_persistent(watcher: &mut PersistentWatcher) -> WatchedEvent {
    tokio::time::timeout(EVENT_WITHIN, watcher.changed())
        .await
        .expect("persistent watch event did not arrive in time")
}

fn assert_event(event: &WatchedEvent, event_type: EventType, path: &str) {
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (event_type, path),
        "unexpected watch event {event:?}"
    );
}

/// `user:base64(sha1("user:password"))`, the id a digest ACL stores (reference D.9).
fn digest_id(user: &str, password: &str) -> String {
    let hash = Sha1::digest(format!("{user}:{password}").as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_with_versions() {
    let server = TestServer::start("");
    bounded(async {
        let client = connect(&server).await;

        let (stat, _) = client.create("/crud", b"v0", &persistent()).await.unwrap();
        assert_eq!(stat.version, 0);
        assert_eq!(stat.czxid, stat.mzxid);
        assert_eq!(
            client.create("/crud", b"again", &persistent()).await,
            Err(Error::NodeExists)
        );

        let (data, got) = client.get_data("/crud").await.unwrap();
        assert_eq!(data, b"v0");
        assert_eq!(got, stat);
        assert_eq!(got.data_length, 2);

        let stat1 = client.set_data("/crud", b"v1", Some(0)).await.unwrap();
        assert_eq!(stat1.version, 1);
        assert!(stat1.mzxid > stat.mzxid);
        assert_eq!(stat1.czxid, stat.czxid);
        // Stale version: BadVersion, nothing changes.
        assert_eq!(
            client.set_data("/crud", b"v2", Some(0)).await,
            Err(Error::BadVersion)
        );
        assert_eq!(client.get_data("/crud").await.unwrap().0, b"v1");
        // Behaviour 6: identical bytes still bump the version.
        let stat2 = client.set_data("/crud", b"v1", None).await.unwrap();
        assert_eq!(stat2.version, 2);
        assert!(stat2.mzxid > stat1.mzxid);

        assert_eq!(
            client.delete("/crud", Some(1)).await,
            Err(Error::BadVersion)
        );
        assert!(client.check_stat("/crud").await.unwrap().is_some());
        client.delete("/crud", Some(2)).await.unwrap();
        assert_eq!(client.check_stat("/crud").await.unwrap(), None);
        assert_eq!(client.get_data("/crud").await, Err(Error::NoNode));
        assert_eq!(
            client.set_data("/crud", b"x", None).await,
            Err(Error::NoNode)
        );
        assert_eq!(client.delete("/crud", None).await, Err(Error::NoNode));

        // Parent must exist; a parent with children cannot be deleted.
        assert_eq!(
            client.create("/nope/child", b"", &persistent()).await,
            Err(Error::NoNode)
        );
        client.create("/parent", b"", &persistent()).await.unwrap();
        client
            .create("/parent/child", b"", &persistent())
            .await
            .unwrap();
        assert_eq!(client.delete("/parent", None).await, Err(Error::NotEmpty));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_children_and_exists() {
    let server = TestServer::start("");
    bounded(async {
        let client = connect(&server).await;
        client.create("/kids", b"", &persistent()).await.unwrap();
        for name in ["c", "a", "b"] {
            client
                .create(&format!("/kids/{name}"), name.as_bytes(), &persistent())
                .await
                .unwrap();
        }
        let (mut children, stat) = client.get_children("/kids").await.unwrap();
        children.sort();
        assert_eq!(children, ["a", "b", "c"]);
        assert_eq!(stat.num_children, 3);
        // Behaviour 2: cversion counts child creates and deletes.
        assert_eq!(stat.cversion, 3);
        client.delete("/kids/b", None).await.unwrap();
        let (mut children, stat) = client.get_children("/kids").await.unwrap();
        children.sort();
        assert_eq!(children, ["a", "c"]);
        assert_eq!(stat.cversion, 4);
        assert_eq!(stat.num_children, 2);

        assert!(client.list_children("/kids/a").await.unwrap().is_empty());
        assert_eq!(client.list_children("/missing").await, Err(Error::NoNode));

        let root = client.list_children("/").await.unwrap();
        assert!(root.contains(&"zookeeper".to_string()), "root: {root:?}");
        assert!(root.contains(&"kids".to_string()), "root: {root:?}");

        let stat = client.check_stat("/kids/a").await.unwrap().expect("exists");
        assert_eq!(stat.data_length, 1);
        assert_eq!(client.check_stat("/kids/zz").await.unwrap(), None);
    })
    .await;
}

/// ZooKeeper lists a node's children in its `HashSet`'s order, which
/// depends on the names, on how large the set has ever been and on the
/// order the children came in; clients hand that order on. The orders here
/// are the ones ZooKeeper 3.8 answers (and OpenJDK's `HashSet` prints).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_come_in_zookeepers_order() {
    let server = TestServer::start("");
    bounded(async {
        let client = connect(&server).await;
        client.create("/order", b"", &persistent()).await.unwrap();
        for i in 0..20 {
            let path = format!("/order/c{i}");
            client.create(&path, b"", &persistent()).await.unwrap();
        }
        let listed = |children: Vec<String>| children.join(",");
        assert_eq!(
            listed(client.list_children("/order").await.unwrap()),
            "c11,c10,c13,c12,c15,c14,c17,c16,c19,c18,c0,c1,c2,c3,c4,c5,c6,c7,c8,c9"
        );
        for i in (0..20).step_by(3) {
            client.delete(&format!("/order/c{i}"), None).await.unwrap();
        }
        for name in ["x", "c3"] {
            let path = format!("/order/{name}");
            client.create(&path, b"", &persistent()).await.unwrap();
        }
        let (children, _) = client.get_children("/order").await.unwrap();
        assert_eq!(
            listed(children),
            "c11,c10,c13,c14,c17,c16,c19,c1,c2,c3,c4,c5,c7,c8,x"
        );
        // The set keeps the table it grew for 20: with three children
        // left, `c1` still comes before `c7` (a fresh set puts it after).
        for name in [
            "c2", "c3", "c4", "c5", "c8", "c10", "c13", "c14", "c16", "c17", "c19", "x",
        ] {
            client
                .delete(&format!("/order/{name}"), None)
                .await
                .unwrap();
        }
        assert_eq!(
            listed(client.list_children("/order").await.unwrap()),
            "c11,c1,c7"
        );
        client.create("/fresh", b"", &persistent()).await.unwrap();
        for name in ["c1", "c7", "c11"] {
            let path = format!("/fresh/{name}");
            client.create(&path, b"", &persistent()).await.unwrap();
        }
        assert_eq!(
            listed(client.list_children("/fresh").await.unwrap()),
            "c11,c7,c1"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_create_mode() {
    // Fast container/TTL sweeps so the test does not wait the default minute.
    let server =
        TestServer::start("extendedTypesEnabled=true\nznode.container.checkIntervalMs=100");
    bounded(async {
        let client = connect(&server).await;
        let session = client.session_id().0;

        let (stat, _) = client.create("/plain", b"p", &persistent()).await.unwrap();
        assert_eq!(stat.ephemeral_owner, 0);

        let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
        let (stat, _) = client.create("/eph", b"e", &eph).await.unwrap();
        assert_eq!(stat.ephemeral_owner, session);
        // Ephemerals cannot have children.
        assert_eq!(
            client.create("/eph/child", b"", &persistent()).await,
            Err(Error::NoChildrenForEphemerals)
        );

        client.create("/seq", b"", &persistent()).await.unwrap();
        let pseq = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
        let eseq = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
        let (_, s0) = client.create("/seq/n-", b"", &pseq).await.unwrap();
        let (stat1, s1) = client.create("/seq/n-", b"", &eseq).await.unwrap();
        assert_eq!((s0.into_i64(), s1.into_i64()), (0, 1));
        assert_eq!(stat1.ephemeral_owner, session);
        // Behaviour 1: the suffix counts every child ever created, of any kind.
        client.create("/seq/x", b"", &persistent()).await.unwrap();
        client.delete("/seq/x", None).await.unwrap();
        let (_, s3) = client.create("/seq/n-", b"", &pseq).await.unwrap();
        assert_eq!(s3.into_i64(), 3);
        let mut names = client.list_children("/seq").await.unwrap();
        names.sort();
        assert_eq!(names, ["n-0000000000", "n-0000000001", "n-0000000003"]);

        // Container: kept while it never had a child (behaviour 22), removed
        // once its last child is gone.
        let container = CreateMode::Container.with_acls(Acls::anyone_all());
        let (stat, _) = client.create("/box", b"", &container).await.unwrap();
        assert_eq!(stat.ephemeral_owner, 0, "behaviour 8");
        client.create("/empty-box", b"", &container).await.unwrap();
        client
            .create("/box/item", b"", &persistent())
            .await
            .unwrap();
        client.delete("/box/item", None).await.unwrap();
        eventually(EVENT_WITHIN, "empty container /box removed", || async {
            match client.check_stat("/box").await.unwrap() {
                None => Some(()),
                Some(_) => None,
            }
        })
        .await;
        assert!(
            client.check_stat("/empty-box").await.unwrap().is_some(),
            "a container that never had a child must stay"
        );

        // TTL (needs extendedTypesEnabled): removed once childless and
        // unmodified for its TTL (behaviour 21).
        let ttl = CreateMode::Persistent
            .with_acls(Acls::anyone_all())
            .with_ttl(Duration::from_millis(500));
        let (stat, _) = client.create("/ttl", b"t", &ttl).await.unwrap();
        assert_eq!(stat.ephemeral_owner, 0, "behaviour 8");
        // Long enough that the check right after its create cannot race
        // the reaper on a slow machine.
        let ttl_seq = CreateMode::PersistentSequential
            .with_acls(Acls::anyone_all())
            .with_ttl(Duration::from_millis(2000));
        let (_, seq) = client.create("/ttl-", b"", &ttl_seq).await.unwrap();
        let seq_path = format!("/ttl-{seq}");
        assert!(client.check_stat(&seq_path).await.unwrap().is_some());
        eventually(EVENT_WITHIN, "TTL nodes removed", || async {
            let a = client.check_stat("/ttl").await.unwrap();
            let b = client.check_stat(&seq_path).await.unwrap();
            (a.is_none() && b.is_none()).then_some(())
        })
        .await;
        assert!(client.check_stat("/plain").await.unwrap().is_some());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_is_refused_without_extended_types() {
    let server = TestServer::start("");
    bounded(async {
        let client = connect(&server).await;
        let ttl = CreateMode::Persistent
            .with_acls(Acls::anyone_all())
            .with_ttl(Duration::from_secs(10));
        // ZooKeeper 3.8 answers UNIMPLEMENTED when TTL nodes are disabled.
        assert_eq!(
            client.create("/ttl", b"", &ttl).await,
            Err(Error::Unimplemented)
        );
        assert_eq!(client.check_stat("/ttl").await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_watches() {
    let server = TestServer::start("");
    bounded(async {
        let watcher_client = connect(&server).await;
        let writer = connect(&server).await;

        // Data watch.
        writer.create("/w", b"0", &persistent()).await.unwrap();
        let (_, _, data_watch) = watcher_client.get_and_watch_data("/w").await.unwrap();
        let stat = writer.set_data("/w", b"1", None).await.unwrap();
        let event = next_oneshot(data_watch).await;
        assert_event(&event, EventType::NodeDataChanged, "/w");
        assert_eq!(watcher_client.get_data("/w").await.unwrap().1, stat);

        // Exists watch on a missing node fires on creation (behaviour 27).
        let (none, exists_watch) = watcher_client.check_and_watch_stat("/later").await.unwrap();
        assert_eq!(none, None);
        writer.create("/later", b"", &persistent()).await.unwrap();
        assert_event(
            &next_oneshot(exists_watch).await,
            EventType::NodeCreated,
            "/later",
        );

        // Exists watch on an existing node fires on deletion.
        let (some, exists_watch) = watcher_client.check_and_watch_stat("/later").await.unwrap();
        assert!(some.is_some());
        writer.delete("/later", None).await.unwrap();
        assert_event(
            &next_oneshot(exists_watch).await,
            EventType::NodeDeleted,
            "/later",
        );

        // Child watch: creation and deletion of a child, not data changes.
        writer.create("/dir", b"", &persistent()).await.unwrap();
        let (_, _, child_watch) = watcher_client.get_and_watch_children("/dir").await.unwrap();
        writer.create("/dir/a", b"", &persistent()).await.unwrap();
        assert_event(
            &next_oneshot(child_watch).await,
            EventType::NodeChildrenChanged,
            "/dir",
        );
        let (children, child_watch) = watcher_client
            .list_and_watch_children("/dir")
            .await
            .unwrap();
        assert_eq!(children, ["a"]);
        writer.delete("/dir/a", None).await.unwrap();
        assert_event(
            &next_oneshot(child_watch).await,
            EventType::NodeChildrenChanged,
            "/dir",
        );

        // A watch fires once: after the event, further changes are silent
        // and the server holds no data watch for this connection.
        let (_, _, w) = watcher_client.get_and_watch_data("/w").await.unwrap();
        writer.set_data("/w", b"2", None).await.unwrap();
        assert_event(&next_oneshot(w).await, EventType::NodeDataChanged, "/w");
        writer.set_data("/w", b"3", None).await.unwrap();
        assert_eq!(total_watches(&server), 0);

        // Behaviour 27: a failed getData leaves no watch.
        assert!(matches!(
            watcher_client.get_and_watch_data("/absent").await,
            Err(Error::NoNode)
        ));
        assert_eq!(total_watches(&server), 0);
    })
    .await;
}

/// `Total watches:N` from `wchs` (data and exists watches only, behaviour 32).
fn total_watches(server: &TestServer) -> u64 {
    let text = server.four_letter_word("wchs").expect("wchs");
    text.lines()
        .find_map(|line| line.strip_prefix("Total watches:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected wchs answer {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_watch() {
    let server = TestServer::start("");
    bounded(async {
        let watcher_client = connect(&server).await;
        let writer = connect(&server).await;

        let mut watch = watcher_client
            .watch("/pw", AddWatchMode::Persistent)
            .await
            .unwrap();
        writer.create("/pw", b"", &persistent()).await.unwrap();
        assert_event(
            &next_persistent(&mut watch).await,
            EventType::NodeCreated,
            "/pw",
        );
        writer.set_data("/pw", b"x", None).await.unwrap();
        assert_event(
            &next_persistent(&mut watch).await,
            EventType::NodeDataChanged,
            "/pw",
        );
        writer.create("/pw/c", b"", &persistent()).await.unwrap();
        assert_event(
            &next_persistent(&mut watch).await,
            EventType::NodeChildrenChanged,
            "/pw",
        );
        // A grandchild or a child's data is not this node's business.
        writer.set_data("/pw/c", b"y", None).await.unwrap();
        writer.create("/pw/c/g", b"", &persistent()).await.unwrap();
        writer.delete("/pw/c/g", None).await.unwrap();
        writer.delete("/pw/c", None).await.unwrap();
        assert_event(
            &next_persistent(&mut watch).await,
            EventType::NodeChildrenChanged,
            "/pw",
        );
        writer.delete("/pw", None).await.unwrap();
        assert_event(
            &next_persistent(&mut watch).await,
            EventType::NodeDeleted,
            "/pw",
        );
        // Behaviour 29: it survives the node's deletion.
        writer.create("/pw", b"", &persistent()).await.unwrap();
        assert_event(
            &next_persistent(&mut watch).await,
            EventType::NodeCreated,
            "/pw",
        );
    })
    .await;
}

/// `znode.container.maxNeverUsedIntervalMs` (a JVM property for
/// ZooKeeper, a zoo.cfg key for zab): a container that never had a child
/// is reaped once that long has passed since it was last modified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_used_container_is_reaped_after_its_interval() {
    let server = TestServer::start(
        "znode.container.checkIntervalMs=100\nznode.container.maxNeverUsedIntervalMs=300",
    );
    bounded(async {
        let client = connect(&server).await;
        let container = CreateMode::Container.with_acls(Acls::anyone_all());
        let started = std::time::Instant::now();
        client.create("/idle", b"", &container).await.unwrap();
        eventually(
            EVENT_WITHIN,
            "never-used container /idle removed",
            || async {
                client
                    .check_stat("/idle")
                    .await
                    .unwrap()
                    .is_none()
                    .then_some(())
            },
        )
        .await;
        assert!(started.elapsed() > Duration::from_millis(300));
    })
    .await;
}

/// The reaper deletes the containers and TTL nodes one check finds in the
/// order of ZooKeeper's `ContainerManager.getCandidates` set: containers,
/// then TTL nodes, added to a Java `HashSet`. One multi empties all eight
/// at once, so one check finds them all. "/t1" shares a bucket with "/c0",
/// and "/t12" with "/c5"; the containers come first in each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_deletes_in_zookeepers_order() {
    let server =
        TestServer::start("extendedTypesEnabled=true\nznode.container.checkIntervalMs=100");
    bounded(async {
        let client = connect(&server).await;
        let ttl = CreateMode::Persistent
            .with_acls(Acls::anyone_all())
            .with_ttl(Duration::from_millis(1));
        let container = CreateMode::Container.with_acls(Acls::anyone_all());
        let mut parents = vec![("/t1".to_string(), &ttl)];
        parents.extend((0..6).map(|c| (format!("/c{c}"), &container)));
        parents.push(("/t12".to_string(), &ttl));
        // Each parent comes with its child in one multi: a TTL node of
        // 1 ms without children is due at the reaper's next check.
        for (p, mode) in &parents {
            let mut multi = client.new_multi_writer();
            multi.add_create(p, b"", mode).unwrap();
            multi
                .add_create(&format!("{p}/x"), b"", &persistent())
                .unwrap();
            multi.commit().await.unwrap();
        }
        let parents: Vec<String> = parents.into_iter().map(|(p, _)| p).collect();
        let mut watch = client
            .watch("/", AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        let mut multi = client.new_multi_writer();
        for p in &parents {
            multi.add_delete(&format!("{p}/x"), None).unwrap();
        }
        multi.commit().await.unwrap();
        let mut reaped = Vec::new();
        while reaped.len() < parents.len() {
            let e = next_persistent(&mut watch).await;
            if e.event_type == EventType::NodeDeleted && parents.contains(&e.path) {
                reaped.push(e.path);
            }
        }
        assert_eq!(
            reaped,
            ["/c4", "/c5", "/t12", "/c0", "/t1", "/c1", "/c2", "/c3"]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_recursive_watch() {
    let server = TestServer::start("");
    bounded(async {
        let watcher_client = connect(&server).await;
        let writer = connect(&server).await;

        let mut watch = watcher_client
            .watch("/rw", AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        writer.create("/rw", b"", &persistent()).await.unwrap();
        writer.create("/rw/a", b"", &persistent()).await.unwrap();
        writer.set_data("/rw/a", b"1", None).await.unwrap();
        writer.create("/rw/a/b", b"", &persistent()).await.unwrap();
        writer.delete("/rw/a/b", None).await.unwrap();
        writer
            .create("/elsewhere", b"", &persistent())
            .await
            .unwrap();
        writer.set_data("/rw", b"2", None).await.unwrap();
        // Behaviour 30: every node below, never NodeChildrenChanged.
        let expected = [
            (EventType::NodeCreated, "/rw"),
            (EventType::NodeCreated, "/rw/a"),
            (EventType::NodeDataChanged, "/rw/a"),
            (EventType::NodeCreated, "/rw/a/b"),
            (EventType::NodeDeleted, "/rw/a/b"),
            (EventType::NodeDataChanged, "/rw"),
        ];
        for (event_type, path) in expected {
            assert_event(&next_persistent(&mut watch).await, event_type, path);
        }
    })
    .await;
}

// `remove` is deprecated in favour of Drop, but only `remove` waits for the
// server's RemoveWatches reply, which keeps the `wchs` checks deterministic.
#[allow(deprecated)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_watches() {
    let server = TestServer::start("");
    bounded(async {
        let watcher_client = connect(&server).await;
        let writer = connect(&server).await;
        writer.create("/rm", b"", &persistent()).await.unwrap();
        writer.create("/kept", b"", &persistent()).await.unwrap();

        let (_, _, removed) = watcher_client.get_and_watch_data("/rm").await.unwrap();
        let (_, _, kept) = watcher_client.get_and_watch_data("/kept").await.unwrap();
        assert_eq!(total_watches(&server), 2);
        removed.remove().await.unwrap();
        assert_eq!(total_watches(&server), 1);

        let persistent_watch = watcher_client
            .watch("/rm", AddWatchMode::Persistent)
            .await
            .unwrap();
        persistent_watch.remove().await.unwrap();

        writer.set_data("/rm", b"1", None).await.unwrap();
        writer.set_data("/kept", b"1", None).await.unwrap();
        // The remaining watch still works, and it is the only event sent
        // (a stray /rm event would be reported first by a conforming server
        // and would not match here).
        assert_event(
            &next_oneshot(kept).await,
            EventType::NodeDataChanged,
            "/kept",
        );
        assert_eq!(total_watches(&server), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_success_and_atomic_failure() {
    let server = TestServer::start("");
    bounded(async {
        let client = connect(&server).await;
        let observer = connect(&server).await;
        client.create("/m", b"", &persistent()).await.unwrap();

        let mut multi = client.new_multi_writer();
        multi.add_create("/m/a", b"a", &persistent()).unwrap();
        multi.add_create("/m/b", b"b", &persistent()).unwrap();
        multi.add_set_data("/m/a", b"a1", Some(0)).unwrap();
        multi.add_check_version("/m/b", 0).unwrap();
        multi.add_delete("/m/b", Some(0)).unwrap();
        let results = multi.commit().await.unwrap();
        assert_eq!(results.len(), 5);
        // The Create results' stats are not compared: ZooKeeper 3.8 answers a
        // create2 inside multi as a plain create with no Stat (reference §0).
        assert!(matches!(&results[0], MultiWriteResult::Create { path, .. } if path == "/m/a"));
        assert!(matches!(&results[1], MultiWriteResult::Create { path, .. } if path == "/m/b"));
        let set_stat = match &results[2] {
            MultiWriteResult::SetData { stat } => stat,
            other => panic!("expected setData, got {other:?}"),
        };
        assert_eq!(set_stat.version, 1);
        assert_eq!(results[3], MultiWriteResult::Check);
        assert_eq!(results[4], MultiWriteResult::Delete);
        let (data, a_stat) = client.get_data("/m/a").await.unwrap();
        assert_eq!(data, b"a1");
        assert_eq!(&a_stat, set_stat);
        // Behaviour 10: a multi is a single zxid.
        assert_eq!(a_stat.czxid, a_stat.mzxid);
        assert_eq!(client.check_stat("/m/b").await.unwrap(), None);

        // A failing op in the middle: nothing applied, no watch fired, no
        // sequence number consumed (behaviours 46, 47).
        let (_, _, watch) = observer.get_and_watch_children("/m").await.unwrap();
        let before = client.check_stat("/m").await.unwrap().unwrap();
        let pseq = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
        let mut multi = client.new_multi_writer();
        multi.add_create("/m/c", b"", &persistent()).unwrap();
        multi.add_create("/m/s-", b"", &pseq).unwrap();
        multi.add_create("/m/a", b"dup", &persistent()).unwrap();
        multi.add_set_data("/m/a", b"never", None).unwrap();
        match multi.commit().await {
            Err(MultiWriteError::OperationFailed { index, source }) => {
                assert_eq!((index, source), (2, Error::NodeExists));
            }
            other => panic!("expected the third op to fail, got {other:?}"),
        }
        assert_eq!(client.check_stat("/m/c").await.unwrap(), None);
        assert_eq!(client.get_data("/m/a").await.unwrap().0, b"a1");
        let after = client.check_stat("/m").await.unwrap().unwrap();
        assert_eq!(after.cversion, before.cversion);
        assert_eq!(after.num_children, before.num_children);
        let (_, seq) = client.create("/m/s-", b"", &pseq).await.unwrap();
        // /m had children a, b created before: the counter is at 2.
        assert_eq!(seq.into_i64(), 2);
        // That create is the first change to /m's children since the watch.
        assert_event(
            &next_oneshot(watch).await,
            EventType::NodeChildrenChanged,
            "/m",
        );

        // Failing check: version mismatch.
        let mut multi = client.new_multi_writer();
        multi.add_check_version("/m/a", 0).unwrap();
        multi.add_create("/m/d", b"", &persistent()).unwrap();
        match multi.commit().await {
            Err(MultiWriteError::OperationFailed { index, source }) => {
                assert_eq!((index, source), (0, Error::BadVersion));
            }
            other => panic!("expected the check to fail, got {other:?}"),
        }
        assert_eq!(client.check_stat("/m/d").await.unwrap(), None);
    })
    .await;
}

/// A watcher without READ on a node is not told of its change: ZooKeeper
/// triggers the watch, then drops the event at delivery (3.8.4+ and 3.9.2+,
/// CVE-2024-23944; Debian's 3.8.0 carries the fix). Events on one
/// connection arrive in order, so once a later event has come, an earlier
/// one withheld would have come first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_events_skip_watchers_without_read_on_the_node() {
    let server = TestServer::start("");
    bounded(async {
        let alice = connect(&server).await;
        alice.auth("digest", b"alice:secret").await.unwrap();
        let stranger = connect(&server).await;
        let (_, hidden) = stranger.check_and_watch_stat("/hidden").await.unwrap();
        let (_, shown) = stranger.check_and_watch_stat("/shown").await.unwrap();

        let creator_all = CreateMode::Persistent.with_acls(Acls::creator_all());
        alice.create("/hidden", b"", &creator_all).await.unwrap();
        alice.create("/shown", b"", &persistent()).await.unwrap();
        assert_event(&next_oneshot(shown).await, EventType::NodeCreated, "/shown");
        assert!(
            tokio::time::timeout(Duration::ZERO, hidden.changed())
                .await
                .is_err(),
            "the event on /hidden reached a watcher without READ"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_acl() {
    let server = TestServer::start("");
    bounded(async {
        let alice = connect(&server).await;
        alice.auth("digest", b"alice:secret").await.unwrap();
        let creator_all = CreateMode::Persistent.with_acls(Acls::creator_all());
        alice.create("/vault", b"gold", &creator_all).await.unwrap();

        let (acl, stat) = alice.get_acl("/vault").await.unwrap();
        assert_eq!(acl.len(), 1, "{acl:?}");
        assert_eq!(acl[0].scheme(), "digest");
        assert_eq!(acl[0].id(), digest_id("alice", "secret"));
        assert_eq!(acl[0].permission(), zookeeper_client::Permission::ALL);
        assert_eq!(stat.aversion, 0);
        assert_eq!(alice.get_data("/vault").await.unwrap().0, b"gold");
        alice.set_data("/vault", b"gold2", None).await.unwrap();

        let stranger = connect(&server).await;
        assert_eq!(stranger.get_data("/vault").await, Err(Error::NoAuth));
        assert_eq!(
            stranger.set_data("/vault", b"stolen", None).await,
            Err(Error::NoAuth)
        );
        assert!(matches!(
            stranger.get_acl("/vault").await,
            Err(Error::NoAuth)
        ));
        assert_eq!(
            stranger.create("/vault/x", b"", &persistent()).await,
            Err(Error::NoAuth)
        );
        // Refused since ZooKeeper 3.8.4 (ZOOKEEPER-2590), as by zab;
        // Debian's 3.8.0 answered anyone (behaviour 42).
        match server.target() {
            Target::Zab => assert_eq!(stranger.check_stat("/vault").await, Err(Error::NoAuth)),
            Target::ZooKeeper => {
                assert!(stranger.check_stat("/vault").await.unwrap().is_some())
            }
        }

        // Behaviour 45: a wrong password "succeeds" but grants nothing.
        let mallory = connect(&server).await;
        mallory.auth("digest", b"alice:guess").await.unwrap();
        assert_eq!(mallory.get_data("/vault").await, Err(Error::NoAuth));

        // A second session with the right password gets in.
        let alice2 = connect(&server).await;
        alice2.auth("digest", b"alice:secret").await.unwrap();
        assert_eq!(alice2.get_data("/vault").await.unwrap().0, b"gold2");

        // setACL: grant world read; only aversion changes (behaviour 5).
        let acls = [
            Acl::new(
                zookeeper_client::Permission::ALL,
                zookeeper_client::AuthId::new("digest", &digest_id("alice", "secret")),
            ),
            Acl::new(
                zookeeper_client::Permission::READ,
                zookeeper_client::AuthId::anyone(),
            ),
        ];
        let before = alice.check_stat("/vault").await.unwrap().unwrap();
        let after = alice.set_acl("/vault", &acls, Some(0)).await.unwrap();
        assert_eq!(after.aversion, 1);
        assert_eq!((after.version, after.mzxid), (before.version, before.mzxid));
        assert_eq!(stranger.get_data("/vault").await.unwrap().0, b"gold2");
        assert_eq!(
            stranger.set_data("/vault", b"stolen", None).await,
            Err(Error::NoAuth)
        );

        // Creator ACL without any authenticated identity: InvalidACL (behaviour 44).
        assert_eq!(
            stranger.create("/nobody", b"", &creator_all).await,
            Err(Error::InvalidAcl)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_removes_ephemerals() {
    // tickTime 500: sessions of 1–10 s. Not the shortest: the ephemeral
    // must still be there right after the drop, on a slow machine too.
    let server = TestServer::start("");
    bounded(async {
        let observer = connect(&server).await;
        let doomed = Client::connector()
            .with_session_timeout(Duration::from_millis(4000))
            // Dropping a detached client closes its connection without a
            // closeSession, so the server must expire the session itself.
            .with_detached()
            .connect(&server.connect_string())
            .await
            .unwrap();
        let negotiated = doomed.session_timeout();
        assert!(
            negotiated == Duration::from_millis(4000),
            "negotiated {negotiated:?}"
        );
        let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
        doomed.create("/doomed", b"", &eph).await.unwrap();
        let (_, watch) = observer.check_and_watch_stat("/doomed").await.unwrap();
        drop(doomed);

        // Behaviour 34: the ephemeral stays until the session expires.
        assert!(observer.check_stat("/doomed").await.unwrap().is_some());
        eventually(
            Duration::from_secs(30),
            "ephemeral removed by expiry",
            || async {
                observer
                    .check_stat("/doomed")
                    .await
                    .unwrap()
                    .is_none()
                    .then_some(())
            },
        )
        .await;
        assert_event(
            &next_oneshot(watch).await,
            EventType::NodeDeleted,
            "/doomed",
        );

        // An explicit close removes ephemerals at once.
        let closing = connect(&server).await;
        closing.create("/closing", b"", &eph).await.unwrap();
        drop(closing);
        eventually(
            Duration::from_secs(5),
            "ephemeral removed by close",
            || async {
                observer
                    .check_stat("/closing")
                    .await
                    .unwrap()
                    .is_none()
                    .then_some(())
            },
        )
        .await;
    })
    .await;
}

/// Waits until the client's session state is `SyncConnected` again.
async fn wait_connected(client: &Client) {
    let mut states = client.state_watcher();
    let deadline = Duration::from_secs(30);
    tokio::time::timeout(deadline, async {
        loop {
            match states.state() {
                SessionState::SyncConnected => return,
                SessionState::Disconnected => {}
                terminal => panic!("session ended while reconnecting: {terminal:?}"),
            }
            states.changed().await;
        }
    })
    .await
    .expect("client did not reconnect in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_fires_for_change_after_restart() {
    // tickTime 1000 lets sessions last up to 20 s: room for a JVM restart.
    let mut server = TestServer::start("tickTime=1000");
    let client = bounded(async {
        let client = connect_with_timeout(&server, Duration::from_secs(20)).await;
        client
            .create("/survivor", b"0", &persistent())
            .await
            .unwrap();
        let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
        client.create("/survivor-eph", b"", &eph).await.unwrap();
        client
    })
    .await;
    let (_, _, watch) = bounded(client.get_and_watch_data("/survivor"))
        .await
        .unwrap();

    tokio::task::block_in_place(|| {
        server.kill9();
        server.restart();
    });

    bounded(async {
        wait_connected(&client).await;
        // Behaviour 40: the session and its ephemeral survived kill -9.
        let stat = eventually(Duration::from_secs(30), "read after reconnect", || async {
            match client.check_stat("/survivor-eph").await {
                Err(Error::ConnectionLoss) => None,
                other => Some(other.unwrap()),
            }
        })
        .await;
        assert_eq!(stat.map(|s| s.ephemeral_owner), Some(client.session_id().0));
        let writer = connect(&server).await;
        writer.set_data("/survivor", b"1", None).await.unwrap();
        assert_event(
            &next_oneshot(watch).await,
            EventType::NodeDataChanged,
            "/survivor",
        );
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn set_watches_fires_for_change_made_while_away() {
    // A current-thread runtime: while this thread is blocked restarting the
    // server and writing from another thread, the watching client cannot run,
    // so it can only learn about the change through SetWatches on reconnect
    // (behaviour 28).
    let mut server = TestServer::start("tickTime=1000");
    let client = bounded(connect_with_timeout(&server, Duration::from_secs(20))).await;
    bounded(async {
        client.create("/data", b"0", &persistent()).await.unwrap();
        client.create("/gone", b"", &persistent()).await.unwrap();
        client.create("/parent", b"", &persistent()).await.unwrap();
        client.create("/same", b"", &persistent()).await.unwrap();
    })
    .await;
    let (_, _, data_watch) = bounded(client.get_and_watch_data("/data")).await.unwrap();
    let (_, gone_watch) = bounded(client.check_and_watch_stat("/gone")).await.unwrap();
    let (none, born_watch) = bounded(client.check_and_watch_stat("/born")).await.unwrap();
    assert_eq!(none, None);
    let (_, child_watch) = bounded(client.list_and_watch_children("/parent"))
        .await
        .unwrap();
    let (_, _, same_watch) = bounded(client.get_and_watch_data("/same")).await.unwrap();

    server.kill9();
    server.restart();
    let cs = server.connect_string();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let c = Client::connect(&cs).await.expect("connect");
            c.set_data("/data", b"1", None).await.expect("set");
            c.delete("/gone", None).await.expect("delete");
            c.create("/born", b"", &persistent()).await.expect("create");
            c.create("/parent/kid", b"", &persistent())
                .await
                .expect("create child");
        })
    })
    .join()
    .expect("writer thread");

    bounded(async {
        assert_event(
            &next_oneshot(data_watch).await,
            EventType::NodeDataChanged,
            "/data",
        );
        assert_event(
            &next_oneshot(gone_watch).await,
            EventType::NodeDeleted,
            "/gone",
        );
        assert_event(
            &next_oneshot(born_watch).await,
            EventType::NodeCreated,
            "/born",
        );
        assert_event(
            &next_oneshot(child_watch).await,
            EventType::NodeChildrenChanged,
            "/parent",
        );
        // The unchanged node's watch was re-armed silently: the server holds
        // exactly that one data watch again, and it fires for the next change.
        assert_eq!(total_watches(&server), 1);
        client.set_data("/same", b"x", None).await.unwrap();
        assert_event(
            &next_oneshot(same_watch).await,
            EventType::NodeDataChanged,
            "/same",
        );
    })
    .await;
}

/// A four-letter word is a packet like any other and its connection one of
/// the server's: `srvr` and `mntr` count both, and `cons` and `stat` list
/// the asking connection in the brief form, with interest ops 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_letter_words_count_and_list_their_own_connection() {
    let server = TestServer::start("");
    bounded(async {
        let client = connect(&server).await;
        client.create("/4lw", b"", &persistent()).await.unwrap();

        // `srst` is received, resets the counters, then its answer is sent.
        server.four_letter_word("srst").expect("srst");
        let srvr = server.four_letter_word("srvr").expect("srvr");
        for line in ["Received: 1", "Sent: 1", "Connections: 2"] {
            assert!(srvr.lines().any(|l| l == line), "{line:?} in {srvr:?}");
        }
        let srvr = server.four_letter_word("srvr").expect("srvr");
        for line in ["Received: 2", "Sent: 2", "Connections: 2"] {
            assert!(srvr.lines().any(|l| l == line), "{line:?} in {srvr:?}");
        }
        let mntr = server.four_letter_word("mntr").expect("mntr");
        assert!(
            mntr.lines().any(|l| l == "zk_num_alive_connections\t2"),
            "{mntr:?}"
        );

        // The client's connection in the full form, the asking one brief.
        let cons = server.four_letter_word("cons").expect("cons");
        let lines: Vec<&str> = cons.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 2, "{cons:?}");
        assert_eq!(
            lines.iter().filter(|l| l.contains(",sid=0x")).count(),
            1,
            "{cons:?}"
        );
        let asker = lines
            .iter()
            .find(|l| !l.contains(",sid=0x"))
            .expect("the asking connection");
        assert!(
            asker.starts_with(" /127.0.0.1:") && asker.ends_with("[0](queued=0,recved=1,sent=0)"),
            "{asker:?}"
        );
        let stat = server.four_letter_word("stat").expect("stat");
        assert!(
            stat.lines()
                .any(|l| l.ends_with("[0](queued=0,recved=1,sent=0)")),
            "{stat:?}"
        );
        drop(client);
    })
    .await;
}

/// A session's line in `cons` is what ZooKeeper's connection recorded at
/// its last answer (`ServerCnxn.updateStatsForResponse`): the op and cxid
/// of a request, and after a ping its op but the cxid before it; `lresp`
/// is on the monotonic clock (`Time.currentElapsedTime()`), not a date;
/// `crst` resets the figures to `NA` and -1, and the cxid is then left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cons_shows_the_last_answer_as_zookeeper_records_it() {
    let server = TestServer::start("");
    bounded(async {
        let client = connect_with_timeout(&server, Duration::from_secs(2)).await;
        let sid = format!("sid=0x{:x},", client.session_id().0);
        let line = |server: &TestServer| {
            let cons = server.four_letter_word("cons").expect("cons");
            cons.lines()
                .find(|l| l.contains(&sid))
                .unwrap_or_else(|| panic!("no {sid} in {cons:?}"))
                .to_owned()
        };
        let field = |line: &str, key: &str| -> Option<String> {
            let start = line.find(&format!(",{key}="))? + key.len() + 2;
            let rest = &line[start..];
            let end = rest.find([',', ')']).unwrap_or(rest.len());
            Some(rest[..end].to_owned())
        };

        // This client pings as soon as it is connected, so the `SESS`
        // answer is seldom what `cons` shows here (the pipeline's tests
        // cover it); `lresp` is set either way.
        let created = line(&server);
        let lresp: i64 = field(&created, "lresp").unwrap().parse().unwrap();
        let now = monotonic_ms();
        assert!(
            lresp <= now + 1_000 && lresp > now - 60_000,
            "lresp {lresp} is not on the monotonic clock ({now}): {created}"
        );

        client.get_data("/").await.unwrap();
        let read = line(&server);
        let cxid = field(&read, "lcxid").expect("a request's cxid");
        let pinged = eventually(Duration::from_secs(20), "a ping answered", || async {
            let l = line(&server);
            (field(&l, "lop").as_deref() == Some("PING")).then_some(l)
        })
        .await;
        assert_eq!(field(&pinged, "lcxid"), Some(cxid), "{read} then {pinged}");

        server.four_letter_word("crst").expect("crst");
        let reset = line(&server);
        // A ping may come between `crst` and `cons`, but it sets no cxid.
        assert_eq!(field(&reset, "lcxid"), None, "{reset}");
        if field(&reset, "lop").as_deref() == Some("NA") {
            assert_eq!(
                field(&reset, "lzxid").as_deref(),
                Some("0xffffffffffffffff")
            );
            assert_eq!(field(&reset, "lresp").as_deref(), Some("0"));
        }
        drop(client);
    })
    .await;
}

/// Milliseconds since boot, from `/proc/uptime` (10 ms steps): the clock
/// Java's `System.nanoTime` reads on Linux, give or take time suspended.
fn monotonic_ms() -> i64 {
    let uptime = std::fs::read_to_string("/proc/uptime").expect("/proc/uptime");
    let seconds: f64 = uptime
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .expect("uptime seconds");
    (seconds * 1000.0) as i64
}

/// A long answer is sent in blocks, each a packet: ZooKeeper writes a
/// four-letter word's answer through an 8192-char buffer and counts every
/// block it sends (`NIOServerCnxn.sendBufferSync`), so `srvr` after `srst`
/// and a `wchp` of 8–16 KiB shows `Sent: 1 + 2`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_four_letter_answer_is_counted_in_8_kib_blocks() {
    let server = TestServer::start("");
    bounded(async {
        let client = connect(&server).await;
        // Kept: the client removes a watch whose watcher is dropped.
        let mut watchers = Vec::new();
        for n in 0..250 {
            let path = format!("/a-watched-znode-with-a-longer-name-{n:04}");
            let (_, watcher) = client.check_and_watch_stat(&path).await.unwrap();
            watchers.push(watcher);
        }
        server.four_letter_word("srst").expect("srst");
        let wchp = server.four_letter_word("wchp").expect("wchp");
        assert!((8193..=16384).contains(&wchp.len()), "{}", wchp.len());
        let srvr = server.four_letter_word("srvr").expect("srvr");
        for line in ["Received: 2", "Sent: 3"] {
            assert!(srvr.lines().any(|l| l == line), "{line:?} in {srvr:?}");
        }
        drop(watchers);
        drop(client);
    })
    .await;
}

/// `wchc` and `wchp` list data and exists watches (not child watches,
/// behaviour 32) by session and by path, in ZooKeeper's layout: a header
/// line, then one tab-indented line per entry, then an empty line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wchc_and_wchp_list_watches_by_session_and_by_path() {
    let server = TestServer::start("");
    bounded(async {
        let client = connect(&server).await;
        client.create("/wa", b"", &persistent()).await.unwrap();
        client.create("/wb", b"", &persistent()).await.unwrap();
        let (_, _, _a) = client.get_and_watch_data("/wa").await.unwrap();
        let (_, _, _b) = client.get_and_watch_data("/wb").await.unwrap();
        let (_, _c) = client.check_and_watch_stat("/wc").await.unwrap();
        let (_, _, _children) = client.get_and_watch_children("/").await.unwrap();
        let session = format!("0x{:x}", client.session_id().0);

        let wchc = server.four_letter_word("wchc").expect("wchc");
        let mut lines: Vec<&str> = wchc.lines().collect();
        assert_eq!(lines.first(), Some(&session.as_str()), "{wchc:?}");
        lines.remove(0);
        let mut paths = lines.clone();
        paths.retain(|l| !l.is_empty());
        paths.sort();
        assert_eq!(paths, ["\t/wa", "\t/wb", "\t/wc"], "{wchc:?}");
        assert!(wchc.ends_with("\n\n"), "{wchc:?}");

        let wchp = server.four_letter_word("wchp").expect("wchp");
        let blocks: Vec<&str> = wchp.trim_end().split('\n').collect();
        let mut by_path = Vec::new();
        for pair in blocks.chunks(2) {
            by_path.push((pair[0], pair.get(1).copied().unwrap_or_default()));
        }
        by_path.sort();
        let tabbed = format!("\t{session}");
        assert_eq!(
            by_path,
            [
                ("/wa", tabbed.as_str()),
                ("/wb", tabbed.as_str()),
                ("/wc", tabbed.as_str())
            ],
            "{wchp:?}"
        );
        assert!(wchp.ends_with("\n\n"), "{wchp:?}");
        drop(client);
    })
    .await;
}
