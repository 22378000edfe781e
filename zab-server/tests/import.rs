//! Importing a ZooKeeper data directory (`zab-server --import-zookeeper`)
//! end to end. Debian's ZooKeeper 3.8 writes the data — every kind of node,
//! ACLs, a multi, deletes, a closed session and an open one, enough txns
//! for several snapshots and logs — and is killed with `kill -9`, so the
//! newest txns are only in its log. zab imports the directory, and every
//! node must then read back the same through zab as it did through
//! ZooKeeper: data, the whole `Stat`, the ACL; the open session's
//! ephemerals too.

#[path = "support/cluster.rs"]
mod cluster;
mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use cluster::{ClusterSpec, ServerCommand, TestCluster};
use support::{bounded, Target, TestServer};
use zookeeper_client::{Acl, Acls, AuthId, Client, CreateMode, CreateOptions, Permission, Stat};

fn open() -> CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

async fn connect(server: &TestServer) -> Client {
    Client::connector()
        .with_session_timeout(Duration::from_secs(30))
        .connect(&server.connect_string())
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", server.connect_string()))
}

/// Every node: data, stat and ACL, read through `client`.
async fn tree(client: &Client) -> Tree {
    let mut out = BTreeMap::new();
    let mut todo = vec!["/".to_owned()];
    while let Some(path) = todo.pop() {
        let (data, stat) = client.get_data(&path).await.expect("getData");
        let (acl, _) = client.get_acl(&path).await.expect("getACL");
        let (children, _) = client.get_children(&path).await.expect("getChildren");
        for c in children {
            todo.push(if path == "/" {
                format!("/{c}")
            } else {
                format!("{path}/{c}")
            });
        }
        out.insert(path, (data, stat, acl));
    }
    out
}

type Tree = BTreeMap<String, (Vec<u8>, Stat, Vec<Acl>)>;

/// The paths where two trees differ, `/zookeeper` aside: its config node
/// is each server's own (empty on a standalone ZooKeeper; zab sets it when
/// it serves).
fn differences(before: &Tree, after: &Tree) -> Vec<String> {
    before
        .keys()
        .chain(after.keys())
        .filter(|p| !p.starts_with("/zookeeper"))
        .filter(|p| before.get(*p) != after.get(*p))
        .map(|p| format!("{p}: {:?}\n   vs {:?}", before.get(p), after.get(p)))
        .collect()
}

/// A stopped zab server with an empty store, then `zab-server
/// --import-zookeeper` of `zk`'s data into it; returns the server (not
/// started) and what the import logged.
fn import_into_new_zab(zk: &TestServer, cfg: &str) -> (TestServer, String) {
    let zab = new_zab(cfg);
    let log = import(&zk.data_dir(), zab.cfg_path());
    (zab, log)
}

/// A stopped zab server of `cfg` with an empty store.
fn new_zab(cfg: &str) -> TestServer {
    let mut zab = TestServer::start_target(Target::Zab, cfg);
    zab.kill9();
    std::fs::remove_dir_all(zab.data_dir().join("zab")).unwrap();
    zab
}

/// ZooKeeper on `cfg` with [`write_history`] written, read back whole (as
/// alice), then killed with `kill -9`: the server, what it served, and
/// the id of the session left open.
async fn zookeeper_with_history(cfg: &str) -> (TestServer, Tree, i64) {
    let mut zk = TestServer::start_target(Target::ZooKeeper, cfg);
    let stays = write_history(&zk).await;
    let session = stays.session_id().0;
    let reader = connect(&zk).await;
    reader.auth("digest", b"alice:secret").await.unwrap();
    let before = tree(&reader).await;
    drop(reader);
    zk.kill9();
    drop(stays);
    (zk, before, session)
}

/// Runs the import; returns its log, failing the test if it failed.
fn import(zk_data: &std::path::Path, zab_cfg: &std::path::Path) -> String {
    let (ok, log) = run_import(&[zk_data], zab_cfg);
    assert!(ok, "import failed:\n{log}");
    log
}

/// Runs the import of ZooKeeper's `dirs` (its dataDir, and its dataLogDir
/// if given); whether it succeeded, and its log.
fn run_import(dirs: &[&std::path::Path], zab_cfg: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zab-server"))
        .arg("--import-zookeeper")
        .args(dirs)
        .arg(zab_cfg)
        .output()
        .expect("run the import");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), log)
}

/// Starts `zab` on what was imported and checks that it serves `before`,
/// every znode's data, ACL and Stat (read as alice).
async fn assert_reads_back(zab: &mut TestServer, before: &Tree, what: &str) {
    zab.restart();
    let reader = connect(zab).await;
    reader.auth("digest", b"alice:secret").await.unwrap();
    let differ = differences(before, &tree(&reader).await);
    assert!(
        differ.is_empty(),
        "differs after {what}:\n{}",
        differ.join("\n")
    );
}

/// The number the import's log line gives for `key`.
fn count_in(log: &str, key: &str) -> u64 {
    log.split(&format!(" {key}="))
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in:\n{log}"))
}

/// Checks that the import compared the tree it built with ZooKeeper's own
/// digests (after its snapshot and after each logged txn) and that every
/// one matched; returns how many it compared.
fn digests_all_match(log: &str) -> u64 {
    let (checked, mismatched) = (
        count_in(log, "digests_checked"),
        count_in(log, "digests_mismatched"),
    );
    assert_eq!(mismatched, 0, "{checked} digests compared:\n{log}");
    assert!(checked > 0, "no digest compared:\n{log}");
    checked
}

/// ZooKeeper's history: ~400 txns, so that with `snapCount=100` there are
/// several snapshots and logs, and the last txns after the newest snapshot.
async fn write_history(zk: &TestServer) -> Client {
    let a = connect(zk).await;
    a.create("/app", b"root", &open()).await.unwrap();
    for i in 0..120 {
        let path = format!("/app/n{i}");
        a.create(&path, format!("v{i}").as_bytes(), &open())
            .await
            .unwrap();
        if i % 3 == 0 {
            a.set_data(&path, b"changed", None).await.unwrap();
        }
        if i % 7 == 0 {
            a.delete(&path, None).await.unwrap();
        }
    }
    let seq = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
    for _ in 0..5 {
        a.create("/app/seq-", b"", &seq).await.unwrap();
    }
    let container = CreateMode::Container.with_acls(Acls::anyone_all());
    a.create("/box", b"", &container).await.unwrap();
    a.create("/box/item", b"x", &open()).await.unwrap();
    let ttl = CreateMode::Persistent
        .with_acls(Acls::anyone_all())
        .with_ttl(Duration::from_secs(3600));
    a.create("/ttl", b"t", &ttl).await.unwrap();

    // ACLs: a digest user's node, and a changed ACL.
    a.auth("digest", b"alice:secret").await.unwrap();
    let mine = CreateMode::Persistent.with_acls(Acls::creator_all());
    a.create("/alice", b"private", &mine).await.unwrap();
    let read_only = [Acl::new(Permission::READ, AuthId::new("world", "anyone"))];
    a.create("/shared", b"s", &open()).await.unwrap();
    a.set_acl("/shared", &read_only, None).await.unwrap();

    let mut multi = a.new_multi_writer();
    multi.add_create("/m", b"", &open()).unwrap();
    multi.add_create("/m/a", b"a", &open()).unwrap();
    multi.add_set_data("/m/a", b"a1", Some(0)).unwrap();
    multi.commit().await.unwrap();

    // A session that ends takes its ephemerals; one that stays keeps them.
    let gone = connect(zk).await;
    let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    gone.create("/app/gone", b"", &eph).await.unwrap();
    drop(gone);
    let stays = connect(zk).await;
    stays.create("/app/stays", b"e", &eph).await.unwrap();
    let eseq = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
    stays.create("/app/eseq-", b"", &eseq).await.unwrap();
    for i in 0..150 {
        a.set_data("/app", format!("{i}").as_bytes(), None)
            .await
            .unwrap();
    }
    stays
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zookeeper_data_directory_reads_back_the_same_through_zab() {
    bounded(async {
        let cfg = "tickTime=2000\nsnapCount=100\nextendedTypesEnabled=true\n";
        let (zk, before, session) = zookeeper_with_history(cfg).await;

        let version2 = zk.data_dir().join("version-2");
        let snapshots = std::fs::read_dir(&version2)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("snapshot."))
            })
            .count();
        assert!(snapshots >= 2, "ZooKeeper took {snapshots} snapshots");

        let (mut zab, log) = import_into_new_zab(&zk, cfg);
        assert!(log.contains("imported ZooKeeper's data"), "{log}");
        // The newest txns came from the log, after the snapshot.
        let replayed = count_in(&log, "replayed");
        assert!(replayed > 0, "{log}");
        // Every replayed txn carried ZooKeeper's digest of its tree, and
        // zab's tree had the same one after it, but for those applied
        // while ZooKeeper wrote its snapshot (the fuzzy range, which
        // ZooKeeper does not compare either): how many depends on timing.
        let fuzzy = count_in(&log, "digests_fuzzy");
        assert!(fuzzy < replayed, "{log}");
        assert!(digests_all_match(&log) + fuzzy >= replayed, "{log}");
        zab.restart();

        let reader = connect(&zab).await;
        reader.auth("digest", b"alice:secret").await.unwrap();
        let after = tree(&reader).await;
        let differ = differences(&before, &after);
        assert!(
            differ.is_empty(),
            "differs after import:\n{}",
            differ.join("\n")
        );
        assert!(before.len() > 100, "{} nodes", before.len());
        assert!(before.contains_key("/app/stays") && before.contains_key("/ttl"));
        assert!(!after.contains_key("/app/gone"));
        assert_eq!(after["/app/stays"].1.ephemeral_owner, session);
        // The open session came along: its ephemerals are listed under it.
        let dump = zab.four_letter_word("dump").unwrap();
        assert!(dump.contains(&format!("0x{session:x}")), "{dump}");
        drop(zab);

        // The whole history, txn by txn: with only ZooKeeper's first
        // snapshot (zxid 0) left, the import replays every logged txn —
        // creates of every mode, sets, deletes, ACLs, a multi, sessions
        // and their ephemerals — and after each one zab's tree has the
        // digest ZooKeeper logged for its own.
        let history = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(&version2).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with("snapshot.") || name == "snapshot.0" {
                std::fs::copy(entry.path(), history.path().join(&name)).unwrap();
            }
        }
        let mut zab = new_zab(cfg);
        let log = import(history.path(), zab.cfg_path());
        assert!(log.contains("snapshot.0"), "{log}");
        let replayed = count_in(&log, "replayed");
        assert!(replayed > 300, "{log}");
        // ZooKeeper's first snapshot is written before any txn: no fuzzy
        // range, every txn compared.
        assert_eq!(count_in(&log, "digests_fuzzy"), 0, "{log}");
        assert_eq!(digests_all_match(&log), replayed, "{log}");
        assert_reads_back(&mut zab, &before, "the whole history").await;
        drop(zab);

        // An ensemble: the same import into every server's empty store.
        let command = ServerCommand::binary(env!("CARGO_BIN_EXE_zab-server"));
        let mut spec = ClusterSpec::new(command, 3);
        spec.extra_cfg = "extendedTypesEnabled=true\n".into();
        let mut ensemble = TestCluster::start(spec);
        ensemble.wait_until_serving(Duration::from_secs(60));
        for i in ensemble.indices() {
            ensemble.stop(i);
            let data = ensemble.data_dir(i);
            std::fs::remove_dir_all(data.join("zab")).unwrap();
            import(&zk.data_dir(), &data.parent().unwrap().join("zoo.cfg"));
        }
        for i in ensemble.indices() {
            ensemble.restart(i);
        }
        ensemble.wait_until_serving(Duration::from_secs(60));
        for i in ensemble.indices() {
            let client = Client::connector()
                .with_session_timeout(Duration::from_secs(30))
                .connect(&ensemble.connect_string_of(i))
                .await
                .expect("connect to one server");
            client.auth("digest", b"alice:secret").await.unwrap();
            client.sync("/").await.unwrap();
            let differ = differences(&before, &tree(&client).await);
            assert!(differ.is_empty(), "server {i} differs at {differ:?}");
        }
    })
    .await;
}

/// ZooKeeper with its txn logs in a `dataLogDir` of their own (the layout
/// its admin guide recommends): the import reads the snapshots from the
/// dataDir and the logs from the dataLogDir. Given the dataDir alone, it
/// refuses rather than import the newest snapshot without the txns after
/// it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zookeeper_with_a_data_log_dir_of_its_own_imports_whole() {
    bounded(async {
        let txlog = tempfile::tempdir().unwrap();
        let cfg = format!(
            "tickTime=2000\nsnapCount=100\nextendedTypesEnabled=true\ndataLogDir={}\n",
            txlog.path().display()
        );
        let (zk, before, _) = zookeeper_with_history(&cfg).await;
        let mut zab = new_zab("tickTime=2000\nextendedTypesEnabled=true\n");
        let (ok, log) = run_import(&[&zk.data_dir()], zab.cfg_path());
        assert!(!ok, "the dataDir alone was imported:\n{log}");
        assert!(log.contains("DATALOGDIR"), "{log}");
        let (ok, log) = run_import(&[&zk.data_dir(), txlog.path()], zab.cfg_path());
        assert!(ok, "import failed:\n{log}");
        digests_all_match(&log);
        assert_reads_back(&mut zab, &before, "the import").await;
        assert!(before.len() > 100, "{} nodes", before.len());
    })
    .await;
}

/// ZooKeeper's compressed snapshots (`snapshot.compression.method`): a
/// restart makes ZooKeeper snapshot its data compressed, a few writes
/// after it go to the log, and the import reads both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_snapshots_import_too() {
    bounded(async {
        for method in ["gz", "snappy"] {
            let cfg = format!("tickTime=2000\nsnapshot.compression.method={method}\n");
            let mut zk = TestServer::start_target(Target::ZooKeeper, &cfg);
            let a = connect(&zk).await;
            for i in 0..20 {
                a.create(
                    &format!("/c{i}"),
                    format!("{method}{i}").as_bytes(),
                    &open(),
                )
                .await
                .unwrap();
            }
            drop(a);
            zk.restart();
            let a = connect(&zk).await;
            a.set_data("/c3", b"after the snapshot", None)
                .await
                .unwrap();
            let before = tree(&a).await;
            drop(a);
            zk.kill9();
            let suffix = format!(".{method}");
            let compressed = std::fs::read_dir(zk.data_dir().join("version-2"))
                .unwrap()
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().ends_with(&suffix));
            assert!(compressed, "ZooKeeper wrote no {suffix} snapshot");

            let (mut zab, log) = import_into_new_zab(&zk, "tickTime=2000\n");
            assert!(
                log.contains(&suffix),
                "{method}: no {suffix} snapshot read: {log}"
            );
            digests_all_match(&log);
            zab.restart();
            let after = tree(&connect(&zab).await).await;
            let differ = differences(&before, &after);
            assert!(differ.is_empty(), "{method}: differs at {differ:?}");
            assert_eq!(after["/c3"].0, b"after the snapshot");
        }
    })
    .await;
}
