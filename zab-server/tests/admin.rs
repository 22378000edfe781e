//! The admin server (ZooKeeper's AdminServer): `/commands/<name>` over
//! HTTP, JSON answers.
//!
//! Runs against zab, or against ZooKeeper 3.8 with
//! `ZAB_TEST_TARGET=zookeeper`: every assertion here holds on both.

mod support;

#[path = "support/cluster.rs"]
mod cluster;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use cluster::{free_ports_on, ClusterSpec, ServerCommand, TestCluster};
use serde_json::Value;
use support::{bounded, free_port, target, Target, TestServer};
use zookeeper_client::{Acls, Client, CreateMode};

/// One HTTP/1.1 exchange: status, headers (names lower case), body.
struct Http {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Http {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

fn request(addr: SocketAddr, method: &str, path: &str) -> Http {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Http {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

fn unix_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64
}

fn get(addr: SocketAddr, path: &str) -> Http {
    request(addr, "GET", path)
}

/// `GET /commands/<name>`: 200, JSON, and its document.
fn command(addr: SocketAddr, name: &str) -> Value {
    let r = get(addr, &format!("/commands/{name}"));
    assert_eq!(r.status, 200, "{name}: {}", r.body);
    assert_eq!(
        r.header("content-type")
            .map(|v| v.starts_with("application/json")),
        Some(true),
        "{name}: {:?}",
        r.headers
    );
    r.json()
}

fn admin_cfg(port: u16) -> String {
    format!("admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={port}\n")
}

/// Three voters and `observers` observers, zab or ZooKeeper (with its
/// admin server), each with its own admin port on 127.0.0.1; the ports
/// come back in node order.
fn admin_ensemble(observers: usize) -> (ClusterSpec, Vec<u16>) {
    let command = match target() {
        Target::ZooKeeper => ServerCommand::zookeeper_with_admin_server(),
        Target::Zab => ServerCommand::binary(env!("CARGO_BIN_EXE_zab-server")),
    };
    let mut spec = ClusterSpec::new(command, 3).with_observers(observers);
    let ports: Vec<u16> = (0..3 + observers).map(|_| free_port()).collect();
    spec.node_cfg = ports.iter().map(|p| admin_cfg(*p)).collect();
    (spec, ports)
}

/// The `mntr` keys, in order, without `zk_`.
fn mntr_keys(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split('\t').next())
        .filter_map(|k| k.strip_prefix("zk_"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_answer_json_with_the_servers_figures() {
    let port = free_port();
    let started_secs = unix_secs();
    let server = TestServer::start(&admin_cfg(port));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    bounded(async {
        let client = Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&server.connect_string())
            .await
            .expect("connect");
        let sid = client.session_id().0;
        let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
        client.create("/a", b"x", &opts).await.unwrap();
        let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
        client.create("/e", b"", &eph).await.unwrap();
        let (_, _, _w1) = client.get_and_watch_data("/a").await.unwrap();
        let (_, _w2) = client.check_and_watch_stat("/nope").await.unwrap();

        tokio::task::spawn_blocking(move || {
            // A server snapshots its tree at start-up, before any write
            // (ZooKeeper's `loadData`, after `restore` saved `snapshot.0`
            // for the empty database); `last_snapshot` gives its zxid and
            // the second it was saved. That save is timed in
            // `snapshottime` (the restore's is not).
            let snap = command(addr, "last_snapshot");
            assert_eq!(snap["zxid"], "0", "{snap}");
            let saved = snap["timestamp"].as_i64().expect("a timestamp");
            assert!((started_secs - 1..=unix_secs() + 1).contains(&saved), "{snap}");
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let snapshots = loop {
                let m = command(addr, "monitor");
                if m["cnt_snapshottime"] == 1 {
                    break m;
                }
                assert!(std::time::Instant::now() < deadline, "the start-up snapshot timed: {m}");
                std::thread::sleep(Duration::from_millis(25));
            };
            assert!(snapshots["max_snapshottime"].as_u64().is_some(), "{snapshots}");

            // The listing: a link per command, sorted.
            let list = get(addr, "/commands");
            assert_eq!(list.status, 200);
            for name in ["configuration", "monitor", "ruok", "voting_view", "zabstate"] {
                let link = format!("<a href=\"/commands/{name}\">{name}</a>");
                assert!(list.body.contains(&link), "{}", list.body);
            }
            assert_eq!(list.body.matches("<a href").count(), 26, "{}", list.body);

            // Byte for byte, Jackson's layout.
            let ruok = get(addr, "/commands/ruok");
            assert_eq!(
                ruok.body,
                "{\n  \"command\" : \"ruok\",\n  \"error\" : null\n}"
            );
            let unknown = get(addr, "/commands/nosuch");
            assert_eq!(unknown.status, 200);
            assert_eq!(
                unknown.body,
                "{\n  \"command\" : \"nosuch\",\n  \"error\" : \"Unknown command: nosuch\"\n}"
            );

            // Aliases answer under the primary name.
            assert_eq!(command(addr, "isro")["command"], "is_read_only");
            assert_eq!(command(addr, "isro")["read_only"], false);

            let sid_key = sid.to_string();
            let watches = command(addr, "watches");
            assert_eq!(
                watches["session_id_to_watched_paths"][&sid_key],
                serde_json::json!(["/a", "/nope"])
            );
            let by_path = command(addr, "wchp");
            assert_eq!(by_path["path_to_session_ids"]["/a"], serde_json::json!([sid]));
            assert_eq!(
                by_path["path_to_session_ids"]["/nope"],
                serde_json::json!([sid])
            );
            let summary = command(addr, "watch_summary");
            assert_eq!(
                (
                    &summary["num_connections"],
                    &summary["num_paths"],
                    &summary["num_total_watches"]
                ),
                (&serde_json::json!(1), &serde_json::json!(2), &serde_json::json!(2))
            );

            let dump = command(addr, "dump");
            assert_eq!(
                dump["session_id_to_ephemeral_paths"][&sid_key],
                serde_json::json!(["/e"])
            );
            let expiring: Vec<&Value> = dump["expiry_time_to_session_ids"]
                .as_object()
                .expect("an expiry map")
                .values()
                .flat_map(|ids| ids.as_array().expect("ids"))
                .collect();
            assert_eq!(expiring, [&serde_json::json!(sid)]);

            let cons = command(addr, "connections");
            let conns = cons["connections"].as_array().expect("connections");
            assert_eq!(conns.len(), 1, "{cons}");
            assert_eq!(conns[0]["session_id"], serde_json::json!(sid));
            assert_eq!(conns[0]["session_timeout"], 10000);
            assert_eq!(cons["secure_connections"], serde_json::json!([]));
            // `stats` lists them briefly.
            let stats = command(addr, "stats");
            let brief = &stats["connections"][0];
            assert!(brief.get("remote_socket_address").is_some() && brief.get("session_id").is_none());

            let conf = command(addr, "conf");
            assert_eq!(conf["client_port"], serde_json::json!(server.port()));
            assert_eq!(conf["tick_time"], 500);
            assert_eq!(conf["server_id"], 0);
            assert_eq!(conf["max_client_cnxns"], 60);

            // `monitor` lists what `mntr` prints, under the same keys.
            let monitor = command(addr, "monitor");
            let mntr = server.four_letter_word("mntr").expect("mntr");
            let keys: Vec<String> = monitor
                .as_object()
                .expect("an object")
                .keys()
                .filter(|k| *k != "command" && *k != "error")
                .cloned()
                .collect();
            let mut from_mntr = mntr_keys(&mntr);
            let mut from_monitor = keys.clone();
            from_mntr.sort();
            from_monitor.sort();
            assert_eq!(from_monitor, from_mntr);
            assert_eq!(monitor["server_state"], "standalone");
            assert_eq!(monitor["ephemerals_count"], 1);
            // The creates were synced to the txn log, and timed.
            assert!(monitor["cnt_fsynctime"].as_u64() >= Some(1), "{monitor}");
            assert!(monitor["cnt_updatelatency"].as_u64() >= Some(3), "{monitor}");
            assert_eq!(monitor["looking_count"], 0);

            let srvr = command(addr, "srvr");
            assert_eq!(srvr["server_stats"]["server_state"], "standalone");
            assert_eq!(srvr["read_only"], false);
            assert_eq!(srvr["node_count"], monitor["znode_count"]);
            assert!(srvr.get("proposal_stats").is_none());

            // Standalone: no leader, no voters.
            let leader = get(addr, "/commands/leader");
            assert_eq!(
                leader.body,
                "{\n  \"error\" : \"server is not initialized\",\n  \"command\" : \"leader\"\n}"
            );
            assert_eq!(command(addr, "voting_view")["current_config"], serde_json::json!({}));
            let zab = command(addr, "zabstate");
            assert_eq!((&zab["voting"], &zab["zabstate"]), (&serde_json::json!(false), &serde_json::json!("")));

            // The trace mask is the process's: what is set is read back,
            // by the admin server and by `gtmk`.
            let set = command(addr, "set_trace_mask?traceMask=42");
            assert_eq!(set["tracemask"], 42);
            assert_eq!(command(addr, "gtmk")["tracemask"], 42);
            assert_eq!(server.four_letter_word("gtmk").unwrap(), "42");
            let missing = get(addr, "/commands/stmk");
            assert_eq!(
                missing.body,
                "{\n  \"error\" : \"setTraceMask requires long traceMask argument\",\n  \"command\" : \"set_trace_mask\"\n}"
            );
            let bad = command(addr, "stmk?traceMask=x");
            assert_eq!(bad["error"], "setTraceMask requires long traceMask argument, got x");
            assert_eq!(command(addr, "stmk?traceMask=306")["tracemask"], 306);

            // Resets answer nothing else.
            for reset in ["stat_reset", "crst", "orst"] {
                let r = command(addr, reset);
                assert_eq!(r["error"], Value::Null, "{reset}: {r}");
            }
            let srvr = command(addr, "srvr");
            assert_eq!(srvr["server_stats"]["max_latency"], 0, "{srvr}");

            let icfg = command(addr, "initial_configuration");
            let text = icfg["initial_configuration"].as_str().expect("text");
            assert!(text.contains(&format!("admin.serverPort={port}")), "{text}");
            assert!(command(addr, "environment")["os.name"].is_string());
            assert!(command(addr, "dirs")["datadir_size"].is_u64());
            assert!(command(addr, "hash")["digests"].is_array());
            assert_eq!(command(addr, "observers")["synced_observers"], 0);

            // Outside the command URL: 404.
            assert_eq!(get(addr, "/nowhere").status, 404);
        })
        .await
        .unwrap();
        drop(client);
    })
    .await;
}

/// Starts a standalone server whose zoo.cfg gets `extra(port)` for a port
/// that is taken, and returns how it exited (it must not keep running).
fn exit_with_a_taken_port(extra: impl Fn(u16) -> String) -> std::process::ExitStatus {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=500\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n{}",
            data.display(),
            free_port(),
            extra(port)
        ),
    )
    .unwrap();
    let mut child = match target() {
        Target::Zab => std::process::Command::new(env!("CARGO_BIN_EXE_zab-server"))
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
        Target::ZooKeeper => std::process::Command::new("java")
            .args(["-Xmx256m", "-cp", support::ADMIN_CLASS_PATH])
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server kept running with its port taken");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(taken);
    status
}

/// A standalone server that cannot bind its admin port does not start,
/// and exits with 4, ERROR_STARTING_ADMIN_SERVER (ZooKeeper: "Unable to
/// start AdminServer, exiting abnormally").
#[test]
fn a_standalone_server_whose_admin_port_is_taken_exits_4() {
    // The later `admin.enableServer=true` wins over the line before it.
    let status = exit_with_a_taken_port(admin_cfg);
    assert_eq!(status.code(), Some(4), "{status}");
}

/// Nor one that cannot bind its metrics port (ZooKeeper: "Cannot boot
/// MetricsProvider"; zab only, as above).
#[test]
fn a_server_whose_metrics_port_is_taken_exits() {
    if target() == Target::ZooKeeper {
        eprintln!("skipped: Debian's ZooKeeper has no Prometheus provider");
        return;
    }
    let status = exit_with_a_taken_port(prometheus_cfg);
    assert!(!status.success(), "{status}");
}

/// In an ensemble every member answers: one leader, named alike by all,
/// the voters' addresses, the ZAB phase.
#[test]
fn an_ensemble_reports_its_leader_voters_and_zab_state() {
    let (spec, ports) = admin_ensemble(0);
    let mut cluster = TestCluster::start(spec);
    cluster.wait_until_serving(Duration::from_secs(60));
    let addr = |i: usize| -> SocketAddr { ([127, 0, 0, 1], ports[i]).into() };

    // The phase reaches broadcast on every member (polled: a follower may
    // still be syncing when the first answers).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let states = loop {
        let states: Vec<Value> = (0..3).map(|i| command(addr(i), "zabstate")).collect();
        if states.iter().all(|s| s["zabstate"] == "broadcast") {
            break states;
        }
        assert!(std::time::Instant::now() < deadline, "{states:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let leaders: Vec<Value> = (0..3).map(|i| command(addr(i), "leader")).collect();
    let leader_id = &leaders[0]["leader_id"];
    assert!(
        leader_id.as_u64().is_some_and(|id| (1..=3).contains(&id)),
        "{leaders:?}"
    );
    for (i, l) in leaders.iter().enumerate() {
        assert_eq!(&l["leader_id"], leader_id, "{leaders:?}");
        assert_eq!(l["leader_ip"], "127.0.0.1");
        let me = i as u64 + 1;
        assert_eq!(l["is_leader"], Value::Bool(leader_id.as_u64() == Some(me)));
        assert_eq!(states[i]["myid"], me);
        assert_eq!(states[i]["is_leader"], l["is_leader"]);
        assert_eq!(states[i]["voting"], true);
        let zxid = states[i]["last_zxid"].as_str().expect("a zxid");
        assert!(zxid.starts_with("0x"), "{zxid}");
        let quorum = cluster.quorum_addr(i).to_string();
        assert_eq!(states[i]["quorum_address"]["one"], quorum.as_str());
        assert_eq!(
            states[i]["election_address"]["all_addresses"],
            serde_json::json!([cluster.election_addr(i).to_string()])
        );
    }
    let view = command(addr(0), "voting_view");
    let current = view["current_config"].as_object().expect("a map");
    assert_eq!(current.len(), 3, "{view}");
    for i in 0..3 {
        let entry = &current[&(i + 1).to_string()];
        assert_eq!(
            entry["server_addresses"],
            serde_json::json!([cluster.quorum_addr(i).to_string()])
        );
        assert_eq!(entry["learner_type"], "participant");
    }
    // Every member looked for a leader and timed its election; the leader
    // synced each follower, by DIFF or SNAP (once, unless one resynced).
    let leader = leader_id.as_u64().unwrap() as usize - 1;
    for i in 0..3 {
        let m = command(addr(i), "monitor");
        assert!(m["looking_count"].as_u64() >= Some(1), "{m}");
        assert!(m["cnt_election_time"].as_u64() >= Some(1), "{m}");
        let synced = m["diff_count"].as_u64().unwrap_or(0) + m["snap_count"].as_u64().unwrap_or(0);
        if i == leader {
            assert!(synced >= 2, "{m}");
        } else {
            assert_eq!(synced, 0, "{m}");
        }
    }
    // Every member saved the empty database as a snapshot at zxid 0 when
    // it first opened it (ZooKeeper's `restore`), and the leader took one
    // again, timed, on taking the lead (`Leader.lead` → `loadData`; zab
    // takes it once a quorum holds its history, see quorum.rs). A
    // follower that joined after the quorum was established was sent a
    // SNAP of the new epoch's start, and saved that.
    for i in 0..3 {
        let snap = command(addr(i), "last_snapshot");
        let zxid = snap["zxid"]
            .as_str()
            .and_then(|z| u64::from_str_radix(z, 16).ok());
        let allowed = if i == leader { 0 } else { u32::MAX as u64 };
        assert!(zxid.is_some_and(|z| z & allowed == 0), "{snap}");
        // ZooKeeper 3.8 reports 0 for the snapshot a SNAP left: it writes
        // that one through an `AtomicFileOutputStream` (`syncSnapshot`)
        // and reads the file's mtime before the temporary file is renamed
        // (`FileSnap.serialize`). zab reports when it saved it.
        let snapped = zxid != Some(0);
        let expected_zero = snapped && target() == Target::ZooKeeper;
        let timestamp = snap["timestamp"].as_i64();
        if expected_zero {
            assert_eq!(timestamp, Some(0), "{snap}");
        } else {
            assert!(timestamp > Some(0), "{snap}");
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while command(addr(leader), "monitor")["cnt_snapshottime"].as_u64() < Some(1) {
        assert!(
            std::time::Instant::now() < deadline,
            "the leader's snapshot was not timed"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    // Only the leader reports proposal sizes.
    for i in 0..3 {
        let srvr = command(addr(i), "srvr");
        assert_eq!(srvr.get("proposal_stats").is_some(), i == leader, "{srvr}");
        let state = if i == leader { "leader" } else { "follower" };
        assert_eq!(srvr["server_stats"]["server_state"], state);
    }

    // A write: the leader proposes and commits it, each follower receives
    // its PROPOSAL and COMMIT (counted once each, as ZooKeeper counts).
    let at = cluster.connect_string_of(leader);
    tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(async move {
            let client = Client::connector().connect(&at).await.expect("connect");
            let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
            client.create("/counted", b"", &opts).await.expect("create");
        });
    let m = command(addr(leader), "monitor");
    assert!(
        m["proposal_count"].as_u64() >= Some(2),
        "createSession and create: {m}"
    );
    assert!(m["commit_count"].as_u64() >= Some(2), "{m}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for i in (0..3).filter(|&i| i != leader) {
        loop {
            let m = command(addr(i), "monitor");
            let got = |k: &str| m[k].as_u64().unwrap_or(0);
            if got("learner_proposal_received_count") >= 2
                && got("learner_commit_received_count") >= 2
            {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{m}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn prometheus_cfg(port: u16) -> String {
    format!(
        "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
         metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={port}\n"
    )
}

/// ZooKeeper's Prometheus endpoint: its gauges are `mntr`'s numbers. zab
/// only: Debian's ZooKeeper lacks the provider's jar
/// (`zookeeper-prometheus-metrics`), so this is checked against
/// ZooKeeper's source (`PrometheusMetricsProvider`, `registerGauge`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prometheus_endpoint_serves_mntrs_gauges() {
    if target() == Target::ZooKeeper {
        eprintln!("skipped: Debian's ZooKeeper has no Prometheus provider");
        return;
    }
    let port = free_port();
    let server = TestServer::start(&prometheus_cfg(port));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    bounded(async {
        let client = Client::connector()
            .connect(&server.connect_string())
            .await
            .expect("connect");
        let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
        for p in ["/m1", "/m2", "/m3"] {
            client.create(p, b"", &opts).await.unwrap();
        }
        tokio::task::spawn_blocking(move || {
            let r = get(addr, "/metrics");
            assert_eq!(r.status, 200);
            assert_eq!(
                r.header("content-type"),
                Some("text/plain; version=0.0.4; charset=utf-8")
            );
            let value = |name: &str| -> f64 {
                let prefix = format!("{name} ");
                r.body
                    .lines()
                    .find_map(|l| l.strip_prefix(&prefix))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("no {name} in\n{}", r.body))
            };
            let mntr = server.four_letter_word("mntr").expect("mntr");
            let mntr_value = |key: &str| -> f64 {
                mntr.lines()
                    .find_map(|l| l.strip_prefix(&format!("zk_{key}\t")))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("no zk_{key} in\n{mntr}"))
            };
            assert_eq!(value("znode_count"), mntr_value("znode_count"));
            assert!(value("znode_count") >= 8.0, "{}", r.body);
            assert_eq!(value("global_sessions"), 1.0);
            // The latency summaries are Prometheus summaries: the updates
            // are the session's creation and the three creates.
            assert!(r.body.contains("# TYPE updatelatency summary\n"));
            assert!(r
                .body
                .contains("# TYPE looking_count counter\nlooking_count 0.0\n"));
            assert_eq!(value("fsynctime_count"), mntr_value("cnt_fsynctime"));
            assert!(r.body.contains("# TYPE readlatency summary\n"));
            assert_eq!(
                value("updatelatency_count"),
                mntr_value("cnt_updatelatency")
            );
            assert_eq!(value("updatelatency_count"), 4.0);
            // Every other number `mntr` prints is a gauge; its text lines
            // are not.
            let counters = [
                "looking_count",
                "proposal_count",
                "commit_count",
                "learner_proposal_received_count",
                "learner_commit_received_count",
                "diff_count",
                "snap_count",
                "digest_mismatches_count",
            ];
            for key in mntr_keys(&mntr) {
                let summary = [
                    "readlatency",
                    "updatelatency",
                    "election_time",
                    "fsynctime",
                    "snapshottime",
                    "dbinittime",
                    "startup_snap_load_time",
                    "startup_txns_loaded",
                    "startup_txns_load_time",
                ]
                .iter()
                .any(|s| key.ends_with(s));
                if summary || counters.contains(&key.as_str()) {
                    continue;
                }
                let is_number = mntr
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("zk_{key}\t")))
                    .is_some_and(|v| v.parse::<f64>().is_ok());
                let gauge = format!("# TYPE {key} gauge\n");
                assert_eq!(r.body.contains(&gauge), is_number, "{key}");
            }
            assert!(value("process_resident_memory_bytes") > 1e6);
            assert!(value("process_open_fds") > 0.0);
            // The Java client's `name[]` filter.
            let only = get(addr, "/metrics?name[]=znode_count&name[]=process_max_fds");
            let families: Vec<&str> = only
                .body
                .lines()
                .filter_map(|l| l.strip_prefix("# TYPE "))
                .collect();
            assert_eq!(families, ["znode_count gauge", "process_max_fds gauge"]);
            assert_eq!(get(addr, "/").status, 404);
        })
        .await
        .unwrap();
        drop(client);
    })
    .await;
}

/// ZooKeeper's `LearnerHandler.getLearnerHandlerInfo` fields, in its order.
const LEARNER_HANDLER_INFO: [&str; 9] = [
    "remote_socket_address",
    "sid",
    "established",
    "queued_packets",
    "queued_packets_size",
    "packets_received",
    "packets_sent",
    "requests",
    "last_zxid",
];

/// The leader's `observers` lists each synced observer with the nine
/// fields of ZooKeeper's `LearnerHandler.getLearnerHandlerInfo`, in its
/// order; a follower, which is no observer master here, lists none.
#[test]
fn the_leader_lists_its_observers_as_learner_handlers() {
    let (spec, ports) = admin_ensemble(1);
    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut cluster = TestCluster::start(spec);
    let leader = cluster.wait_until_serving(Duration::from_secs(60));
    let addr = |i: usize| -> SocketAddr { ([127, 0, 0, 1], ports[i]).into() };
    let observer = 3;
    assert_eq!(cluster.sid(observer), 4);

    // Three writes forwarded by the observer: its session, two creates.
    let at = cluster.connect_string_of(observer);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(async move {
            let client = loop {
                match Client::connector().connect(&at).await {
                    Ok(c) => break c,
                    Err(e) => assert!(std::time::Instant::now() < deadline, "{e}"),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
            client.create("/o1", b"", &opts).await.expect("create");
            client.create("/o2", b"", &opts).await.expect("create");
        });
    // The last zxid sent to the observer catches up with the leader's
    // (the session's closeSession may still be on its way).
    let listed = loop {
        let o = command(addr(leader), "observers");
        let last_zxid = cluster.zxid(leader).expect("the leader's zxid");
        if o["synced_observers"] == 1 && o["observers"][0]["last_zxid"] == last_zxid {
            break o;
        }
        assert!(std::time::Instant::now() < deadline, "{o}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let info = listed["observers"][0].as_object().expect("an object");
    assert_eq!(
        info.keys().map(String::as_str).collect::<Vec<_>>(),
        LEARNER_HANDLER_INFO
    );
    let remote = info["remote_socket_address"].as_str().expect("text");
    assert!(remote.starts_with("/127.0.0.1:"), "{remote}");
    assert_eq!(info["sid"], 4);
    let established = info["established"].as_u64().expect("ms");
    assert!(
        established >= before_ms / 1000 * 1000,
        "{established} < {before_ms}"
    );
    // ZooKeeper 3.8.0's size can go below 0 (it counts the sync's packets
    // out but never in): only the count is compared.
    assert_eq!(info["queued_packets"], 0);
    assert!(info["queued_packets_size"].is_i64(), "{info:?}");
    assert!(info["requests"].as_u64() >= Some(3), "{info:?}");
    let received = info["packets_received"].as_u64().unwrap_or(0);
    assert!(
        received >= info["requests"].as_u64().unwrap_or(0),
        "{info:?}"
    );
    // At least an INFORM for each of the three writes.
    assert!(info["packets_sent"].as_u64() >= Some(3), "{info:?}");

    for i in (0..3).filter(|&i| i != leader) {
        let o = command(addr(i), "obsr");
        assert_eq!(o["synced_observers"], 0, "{o}");
        assert_eq!(o["observers"], serde_json::json!([]), "{o}");
    }
}

/// With `observerMasterPort` the follower an observer syncs from lists it in
/// `observers` (ZooKeeper's `SyncedObserverConsCommand` asks the follower's
/// `ObserverMaster`), with the same nine fields; the leader lists none.
#[test]
fn a_follower_hosting_an_observer_lists_it() {
    let (spec, ports) = admin_ensemble(1);
    let mut spec = spec.with_distinct_hosts();
    let master_port = free_ports_on(&spec.hosts(), 1)[0];
    spec.extra_cfg = format!("observerMasterPort={master_port}\n");
    let mut cluster = TestCluster::start(spec);
    let leader = cluster.wait_until_serving(Duration::from_secs(60));
    let addr = |i: usize| -> SocketAddr { ([127, 0, 0, 1], ports[i]).into() };
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let (master, listed) = loop {
        let hosting = (0..3).filter(|&i| i != leader).find_map(|i| {
            let o = command(addr(i), "observers");
            (o["synced_observers"] == 1).then_some((i, o))
        });
        if let Some(found) = hosting {
            break found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no follower lists the observer\n{}",
            cluster.report()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let info = listed["observers"][0].as_object().expect("an object");
    assert_eq!(
        info.keys().map(String::as_str).collect::<Vec<_>>(),
        LEARNER_HANDLER_INFO
    );
    assert_eq!(info["sid"], 4, "{listed}");
    let lead = command(addr(leader), "observers");
    assert_eq!(lead["synced_observers"], 0, "{lead}");
    assert_eq!(lead["observers"], serde_json::json!([]), "{lead}");
    for i in (0..3).filter(|&i| i != leader && i != master) {
        let o = command(addr(i), "obsr");
        assert_eq!(o["synced_observers"], 0, "{o}");
    }
}

/// ZooKeeper's start-up and snapshot summaries: loading the database is
/// timed once (`dbinittime`, `startup_snap_load_time`), the txns replayed
/// after the snapshot only when there were any (`startup_txns_loaded`);
/// snapshots are timed as they are taken (`snapshottime`); `srst` starts
/// them all afresh.
#[test]
fn start_up_and_snapshots_are_timed() {
    let cnt = |m: &Value, key: &str| {
        m[format!("cnt_{key}")]
            .as_u64()
            .unwrap_or_else(|| panic!("{key}: {m}"))
    };
    let write = |at: String, n: usize| {
        tokio::runtime::Runtime::new()
            .expect("a runtime")
            .block_on(async move {
                let client = Client::connector().connect(&at).await.expect("connect");
                let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
                for i in 0..n {
                    client
                        .create(&format!("/t{i}"), b"", &opts)
                        .await
                        .expect("create");
                }
            })
    };

    // The default snapCount: no snapshot after start-up, so a restart
    // replays every txn since.
    let port = free_port();
    let mut server = TestServer::start(&admin_cfg(port));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let fresh = command(addr, "monitor");
    assert_eq!(cnt(&fresh, "dbinittime"), 1, "{fresh}");
    assert_eq!(cnt(&fresh, "startup_snap_load_time"), 1, "{fresh}");
    assert_eq!(cnt(&fresh, "startup_txns_loaded"), 0, "{fresh}");
    assert_eq!(cnt(&fresh, "startup_txns_load_time"), 0, "{fresh}");
    write(server.connect_string(), 5);
    server.restart();
    let m = command(addr, "monitor");
    assert_eq!(cnt(&m, "dbinittime"), 1, "{m}");
    assert_eq!(cnt(&m, "startup_txns_loaded"), 1, "{m}");
    // The session's createSession and five creates, at least.
    assert!(m["max_startup_txns_loaded"].as_u64() >= Some(6), "{m}");
    command(addr, "srst");
    let reset = command(addr, "monitor");
    for key in [
        "dbinittime",
        "startup_snap_load_time",
        "startup_txns_loaded",
    ] {
        assert_eq!(cnt(&reset, key), 0, "{key}: {reset}");
    }

    // A snapshot every 10 txns or so, written off the request path: one
    // past the start-up snapshot (zxid 0), timed as that one is.
    let port = free_port();
    let server = TestServer::start(&format!("{}snapCount=10\n", admin_cfg(port)));
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    write(server.connect_string(), 30);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while cnt(&command(addr, "monitor"), "snapshottime") < 2
        || command(addr, "last_snapshot")["zxid"] == "0"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot was timed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A session's ephemerals, after a restart from a snapshot, come in the
/// order ZooKeeper's `DataTree.deserialize` adds them to the session's
/// `HashSet` (the snapshot's pre-order, each node's children in their own
/// set's order), not in the order the session created them; a restart
/// that replays them from the log keeps the creation order. "/e0" and
/// "/e17" share a bucket of the session's set, and the root's set lists
/// "e17" first. `last_snapshot` tells when a snapshot holds them.
#[test]
fn a_session_restored_from_a_snapshot_lists_its_ephemerals_in_its_order() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut server = TestServer::start(&admin_cfg(port));
    let client = runtime.block_on(bounded(async {
        Client::connector()
            .with_session_timeout(Duration::from_secs(30))
            .connect(&server.connect_string())
            .await
            .expect("connect")
    }));
    let ephemerals = |what: &str| {
        runtime.block_on(bounded(support::eventually(
            Duration::from_secs(30),
            what,
            || async { client.list_ephemerals("/").await.ok() },
        )))
    };
    let czxid = runtime.block_on(bounded(async {
        let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
        client.create("/e0", b"", &eph).await.unwrap();
        let (stat, _) = client.create("/e17", b"", &eph).await.unwrap();
        stat.czxid
    }));
    assert_eq!(ephemerals("the created ephemerals"), ["/e0", "/e17"]);

    // Restarted from the log: the creates are replayed in their order.
    server.restart();
    assert_eq!(ephemerals("the ephemerals replayed"), ["/e0", "/e17"]);
    // Both servers snapshot the tree they started with.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let snap = command(addr, "last_snapshot");
        let zxid = snap["zxid"]
            .as_str()
            .and_then(|z| i64::from_str_radix(z, 16).ok());
        if zxid >= Some(czxid) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot holds the ephemerals: {snap}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }

    // Restarted from that snapshot: its order.
    server.restart();
    assert_eq!(ephemerals("the ephemerals restored"), ["/e17", "/e0"]);
}
