//! Compatibility with kazoo, the Python client (Debian's `python3-kazoo`):
//! its CRUD, watches, transactions, recipes (lock, election, counter,
//! queues, semaphore, party, barrier) and ACLs against a running server.
//!
//! The scenarios are `tests/kazoo/scenarios.py`; each test runs one on a
//! server of its own. They pass against ZooKeeper 3.8 too
//! (`ZAB_TEST_TARGET=zookeeper`).

mod support;

#[path = "support/cluster.rs"]
mod cluster;

use std::process::Command;
use std::time::Duration;

use support::{run_client_scenario, TestServer};

fn run(scenario: &str) {
    let server = TestServer::start("");
    // Debian's interpreter, whose packages hold python3-kazoo.
    let mut python = Command::new("/usr/bin/python3");
    python
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/kazoo/scenarios.py"
        ))
        .arg(server.connect_string())
        .arg(scenario);
    run_client_scenario(python, scenario, &server, Duration::from_secs(120));
}

#[test]
fn crud_sequences_ephemerals_and_the_async_api() {
    run("crud");
}

#[test]
fn data_and_children_watches() {
    run("watches");
}

#[test]
fn transactions_commit_and_roll_back() {
    run("transactions");
}

#[test]
fn recipes_lock_election_counter_queues_semaphore_party_barrier() {
    run("recipes");
}

#[test]
fn digest_acls_and_masked_digests() {
    run("acls");
}

#[test]
fn server_version_and_four_letter_words() {
    run("server_info");
}

/// kazoo on a 3-server ensemble: the server its session is on is killed
/// with kill -9, and kazoo carries the session, its ephemeral node, lock
/// and watch over to another server (`failover` in the script, which
/// names the server to kill on stdout and waits for `killed` on stdin).
#[test]
fn the_session_survives_the_kill_of_its_server() {
    use std::io::{BufRead, BufReader, Write};

    let command = match support::target() {
        support::Target::ZooKeeper => cluster::ServerCommand::zookeeper(),
        support::Target::Zab => cluster::ServerCommand::binary(env!("CARGO_BIN_EXE_zab-server")),
    };
    let mut cluster = cluster::TestCluster::start(cluster::ClusterSpec::new(command, 3));
    cluster.wait_until_serving(Duration::from_secs(60));
    let mut child = Command::new("/usr/bin/python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/kazoo/scenarios.py"
        ))
        .arg(cluster.connect_string())
        .arg("failover")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run /usr/bin/python3");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    // The script's stderr, read aside so that it cannot fill its pipe.
    let mut stderr = child.stderr.take().expect("stderr");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    // A watchdog: the script ends within two minutes or is killed.
    let pid = child.id();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(Duration::from_secs(120)).is_err() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    });
    let mut lines = Vec::new();
    for line in stdout.lines() {
        let line = line.expect("read the script");
        if let Some(addr) = line.strip_prefix("kill ") {
            let i = (0..cluster.len())
                .find(|&i| cluster.connect_string_of(i) == addr)
                .unwrap_or_else(|| panic!("no node at {addr}"));
            cluster.kill9(i);
            writeln!(stdin, "killed").expect("answer the script");
        }
        lines.push(line);
    }
    let status = child.wait().expect("wait");
    let _ = done_tx.send(());
    let _ = watchdog.join();
    let errors = errors.join().unwrap_or_default();
    assert!(
        status.success() && lines.iter().any(|l| l == "ok failover"),
        "kazoo failover failed ({status}):\n{}\n{errors}\n{}",
        lines.join("\n"),
        cluster.report()
    );
}
