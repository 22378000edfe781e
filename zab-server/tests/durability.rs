//! Durability end to end: every write a client was told succeeded survives
//! `kill -9` of the server in the middle of a load, and a data set large
//! enough to trigger snapshots (small `snapCount`) is intact after restart
//! (architecture invariant: an acknowledged write is never lost).

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{bounded, eventually, TestServer};
use tokio::task::JoinSet;
use zookeeper_client::{Acls, Client, CreateMode, CreateOptions, Error};

fn persistent() -> CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

async fn connect(server: &TestServer) -> Client {
    Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(&server.connect_string())
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", server.connect_string()))
}

/// Checks that every `path → data` in `expected` exists with that data.
async fn assert_all_present(client: &Client, expected: &BTreeMap<String, Vec<u8>>) {
    let mut missing = Vec::new();
    for (path, data) in expected {
        match client.get_data(path).await {
            Ok((got, _)) if &got == data => {}
            Ok((got, _)) => panic!(
                "{path}: data {:?}, expected {:?}",
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(data)
            ),
            Err(Error::NoNode) => missing.push(path.clone()),
            Err(e) => panic!("{path}: {e}"),
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged znodes lost, e.g. {:?}",
        missing.len(),
        expected.len(),
        &missing[..missing.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill9_mid_load() {
    let mut server = TestServer::start("tickTime=1000");
    kill9_mid_load(&mut server).await;
}

/// The same with the txn log in its own directory (zoo.cfg `dataLogDir`,
/// a dedicated log device in ZooKeeper's admin guide): the synced log is
/// there and nothing of it in `dataDir`, and recovery after `kill -9`
/// replays it from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill9_with_the_log_in_data_log_dir() {
    let log_dir = tempfile::Builder::new()
        .prefix("zab-datalogdir-")
        .tempdir()
        .expect("create temp dir");
    let mut server = TestServer::start(&format!(
        "tickTime=1000\ndataLogDir={}",
        log_dir.path().display()
    ));
    kill9_mid_load(&mut server).await;
    if server.target() == support::Target::Zab {
        // The txns are synced to the journal's two segments (RocksDB's
        // own WAL keeps the rest: epochs, truncations).
        let logs = |dir: &std::path::Path| {
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .filter(|e| {
                            let name = e.file_name();
                            let name = name.to_string_lossy();
                            name.ends_with(".log") || name.starts_with("journal-")
                        })
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        let in_log_dir = logs(&log_dir.path().join("zab"));
        for journal in ["journal-0", "journal-1"] {
            assert!(
                in_log_dir.iter().any(|f| f == journal),
                "no {journal} in dataLogDir/zab: {in_log_dir:?}"
            );
        }
        assert!(
            in_log_dir.iter().any(|f| f.ends_with(".log")),
            "no WAL in dataLogDir/zab: {in_log_dir:?}"
        );
        let in_data_dir = logs(&server.data_dir().join("zab"));
        assert!(
            in_data_dir.is_empty(),
            "log files in dataDir/zab: {in_data_dir:?}"
        );
        // `dirs` reports the log directory's size apart from dataDir's.
        let dirs = server.four_letter_word("dirs").expect("dirs");
        let size = |key: &str| -> u64 {
            dirs.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {key} in {dirs:?}"))
        };
        assert!(size("logdir_size:") > 0, "{dirs}");
        assert!(size("datadir_size:") > 0, "{dirs}");
    }
}

/// Writers create znodes until the server is killed with `kill -9` mid
/// load; after a restart every acknowledged znode is there.
async fn kill9_mid_load(server: &mut TestServer) {
    const WRITERS: usize = 4;
    const ACKED_BEFORE_KILL: usize = 300;

    let acked: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));

    let mut writers = JoinSet::new();
    bounded(async {
        let setup = connect(server).await;
        setup.create("/load", b"", &persistent()).await.unwrap();
        for w in 0..WRITERS {
            let client = connect(server).await;
            let acked = Arc::clone(&acked);
            let stop = Arc::clone(&stop);
            writers.spawn(async move {
                let mut n = 0u64;
                // Write until told to stop or the server goes away; only
                // writes the server acknowledged are recorded.
                while !stop.load(Ordering::Relaxed) {
                    let path = format!("/load/w{w}-{n}");
                    let data = format!("writer {w} write {n}").into_bytes();
                    match client.create(&path, &data, &persistent()).await {
                        Ok(_) => {
                            acked.lock().expect("acked lock").insert(path, data);
                        }
                        Err(_) => break,
                    }
                    n += 1;
                }
            });
        }
        eventually(
            Duration::from_secs(60),
            "enough acknowledged writes",
            || async {
                (acked.lock().expect("acked lock").len() >= ACKED_BEFORE_KILL).then_some(())
            },
        )
        .await;
    })
    .await;

    // Kill while the writers are still running, then bring the server back
    // before joining them: a writer whose request was in flight either gets
    // an error or (after its session reconnects) an acknowledgement, which
    // it records before it stops.
    tokio::task::block_in_place(|| server.kill9());
    stop.store(true, Ordering::Relaxed);
    tokio::task::block_in_place(|| server.restart());
    bounded(async {
        while let Some(result) = writers.join_next().await {
            result.expect("writer task");
        }
    })
    .await;
    let expected = acked.lock().expect("acked lock").clone();
    assert!(expected.len() >= ACKED_BEFORE_KILL);

    bounded(async {
        let client = connect(server).await;
        assert_all_present(&client, &expected).await;
        // Nothing beyond the writers' own names appeared.
        let children = client.list_children("/load").await.unwrap();
        assert!(children.len() >= expected.len());
        assert!(
            children.iter().all(|c| c.starts_with('w')),
            "unexpected children: {children:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_restart_after_snapshots() {
    // snapCount=50: a snapshot roughly every 25–50 txns (reference H), so
    // the ~1,000 txns below span many snapshots and log files.
    const NODES: usize = 600;

    let mut server = TestServer::start("snapCount=50");
    let expected = bounded(async {
        let client = connect(&server).await;
        client
            .create("/snap", b"root", &persistent())
            .await
            .unwrap();

        // Writes are pipelined in batches: the client sends each request when
        // its future is created.
        let mut expected: BTreeMap<String, (Vec<u8>, i32)> = BTreeMap::new();
        for chunk in (0..NODES).collect::<Vec<_>>().chunks(50) {
            let mut batch = JoinSet::new();
            for &i in chunk {
                let client = client.clone();
                batch.spawn(async move {
                    let path = format!("/snap/n{i:04}");
                    let data = format!("value {i}").into_bytes();
                    client.create(&path, &data, &persistent()).await.unwrap();
                    (path, data)
                });
            }
            while let Some(done) = batch.join_next().await {
                let (path, data) = done.expect("create task");
                expected.insert(path, (data, 0));
            }
        }
        for i in (0..NODES).step_by(3) {
            let path = format!("/snap/n{i:04}");
            let data = format!("updated {i}").into_bytes();
            let stat = client.set_data(&path, &data, Some(0)).await.unwrap();
            expected.insert(path, (data, stat.version));
        }
        for i in (0..NODES).step_by(5) {
            let path = format!("/snap/n{i:04}");
            let version = expected[&path].1;
            client.delete(&path, Some(version)).await.unwrap();
            expected.remove(&path);
        }
        expected
    })
    .await;

    tokio::task::block_in_place(|| server.restart());
    bounded(async {
        let client = connect(&server).await;
        let (data, _) = client.get_data("/snap").await.unwrap();
        assert_eq!(data, b"root");
        let mut children = client.list_children("/snap").await.unwrap();
        children.sort();
        let expected_names: Vec<String> = expected
            .keys()
            .map(|p| p.trim_start_matches("/snap/").to_string())
            .collect();
        assert_eq!(children, expected_names);
        for (path, (data, version)) in &expected {
            let (got, stat) = client.get_data(path).await.unwrap();
            assert_eq!(&got, data, "{path}");
            assert_eq!(stat.version, *version, "{path}");
        }
        // The restarted server keeps accepting writes on top of its recovered state.
        client
            .create("/snap/after", b"", &persistent())
            .await
            .unwrap();
    })
    .await;
}
