//! Compatibility with Apache Curator 5.4 (Debian's `libcurator-*-java`):
//! its fluent CRUD (create2, protected ephemeral-sequential nodes,
//! containers), transactions (multi), CuratorCache over a persistent
//! recursive watch, persistent watches, and recipes (InterProcessMutex,
//! LeaderLatch, DistributedAtomicLong, SharedCount, DistributedBarrier).
//!
//! The scenarios are `tests/curator/CuratorScenarios.java`, run by Java's
//! source launcher (a JDK); each test runs one on a server of its own.
//! They pass against ZooKeeper 3.8 too (`ZAB_TEST_TARGET=zookeeper`).

mod support;

use std::process::Command;
use std::time::Duration;

use support::{run_client_scenario, TestServer};

const CLASS_PATH: &str = "/usr/share/java/curator-client.jar:\
    /usr/share/java/curator-framework.jar:/usr/share/java/curator-recipes.jar:\
    /usr/share/java/zookeeper.jar:/usr/share/java/guava.jar:\
    /usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-nop.jar";

fn run(scenario: &str) {
    let server = TestServer::start("");
    let mut java = Command::new("java");
    java.args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
        .args(["-cp", CLASS_PATH])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/curator/CuratorScenarios.java"
        ))
        .arg(server.connect_string())
        .arg(scenario);
    run_client_scenario(java, scenario, &server, Duration::from_secs(120));
}

#[test]
fn crud_create2_protected_nodes_and_containers() {
    run("crud");
}

#[test]
fn transactions_commit_and_roll_back() {
    run("transactions");
}

#[test]
fn curator_cache_and_persistent_watches() {
    run("watches");
}

#[test]
fn recipes_mutex_leader_latch_atomic_long_shared_count_barrier() {
    run("recipes");
}
