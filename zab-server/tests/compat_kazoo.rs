//! Compatibility with kazoo, the Python client (Debian's `python3-kazoo`):
//! its CRUD, watches, transactions, recipes (lock, election, counter,
//! queues, semaphore, party, barrier) and ACLs against a running server.
//!
//! The scenarios are `tests/kazoo/scenarios.py`; each test runs one on a
//! server of its own. They pass against ZooKeeper 3.8 too
//! (`ZAB_TEST_TARGET=zookeeper`).

mod support;

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
