//! SASL between servers (`quorum.auth.*`, DIGEST-MD5 with the JAAS file's
//! `QuorumServer` and `QuorumLearner` sections), end to end with real
//! processes: an ensemble that requires it serves; a server whose password
//! is wrong stays out of the quorum until its password is fixed; and the
//! mixed settings of ZooKeeper's documented rolling upgrade to SASL
//! (enableSasl first, then learnerRequireSasl, then serverRequireSasl on
//! each server in turn) keep an ensemble serving.
//!
//! `ZAB_TEST_TARGET=zookeeper` runs the same against ZooKeeper 3.8 (the
//! harness passes each node's JAAS file as the JVM property).

mod support;

#[path = "support/cluster.rs"]
mod cluster;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cluster::{free_ports_on, ClusterSpec, Mode, ServerCommand, TestCluster};
use support::{bounded, target, Target};
use zookeeper_client::Client;

const SERVE_WITHIN: Duration = Duration::from_secs(40);

/// Every server requires SASL both ways (the upgrade's last step).
const REQUIRED: &str = "quorum.auth.enableSasl=true\n\
                        quorum.auth.learnerRequireSasl=true\n\
                        quorum.auth.serverRequireSasl=true\n";

/// A JAAS file with ZooKeeper's quorum sections: the user `test` may
/// authenticate with `password`, and this server logs in as `test` with it.
fn jaas(dir: &Path, name: &str, password: &str) -> PathBuf {
    let path = dir.join(name);
    write_jaas(&path, password);
    path
}

fn write_jaas(path: &Path, password: &str) {
    let text = format!(
        "QuorumServer {{\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    \
         user_test=\"{password}\";\n}};\n\
         QuorumLearner {{\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    \
         username=\"test\"\n    password=\"{password}\";\n}};\n"
    );
    std::fs::write(path, text).expect("write JAAS file");
}

/// Three voters, each with its own `zoo.cfg` lines.
fn spec(node_cfg: Vec<String>) -> ClusterSpec {
    let command = match target() {
        Target::ZooKeeper => ServerCommand::zookeeper(),
        Target::Zab => ServerCommand::binary(env!("CARGO_BIN_EXE_zab-server")),
    };
    let mut spec = ClusterSpec::new(command, 3);
    spec.node_cfg = node_cfg;
    spec
}

/// Three voters sharing one JAAS file (written in `dir`), every one
/// requiring SASL both ways.
fn required_everywhere(dir: &Path) -> TestCluster {
    let file = jaas(dir, "quorum.jaas", "secret");
    let mut spec = spec(vec![jaas_line(&file); 3]);
    spec.extra_cfg = REQUIRED.to_owned();
    TestCluster::start(spec)
}

fn jaas_line(path: &Path) -> String {
    format!("java.security.auth.login.config={}\n", path.display())
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

async fn connect(connect_string: &str) -> Client {
    support::connect_until(connect_string, Duration::from_secs(4), SERVE_WITHIN).await
}

/// Writes `path` through node `from` and reads it back, after a sync,
/// through every node in `on`.
async fn replicates(cluster: &TestCluster, from: usize, on: &[usize], path: &str) {
    let readers: Vec<String> = on.iter().map(|&i| cluster.connect_string_of(i)).collect();
    let writer = cluster.connect_string_of(from);
    support::replicates(&writer, &readers, path, b"over sasl", SERVE_WITHIN).await;
}

/// Restarts node `i`, waits until every node serves at the same zxid, and
/// reads through it `path`, written ([`replicates`]) while it was away.
async fn rejoins(cluster: &mut TestCluster, i: usize, path: &str) {
    blocking(|| cluster.restart(i));
    blocking(|| cluster.wait_until_serving(SERVE_WITHIN));
    blocking(|| cluster.wait_until_converged(SERVE_WITHIN));
    let late = connect(&cluster.connect_string_of(i)).await;
    late.sync(path).await.unwrap();
    assert_eq!(
        late.get_data(path).await.unwrap().0,
        b"over sasl".to_vec(),
        "node {i}"
    );
}

/// How long node 3 must have stayed out while 1 and 2 serve, on
/// ZooKeeper, whose harness logs nothing (no SLF4J binding on Debian's
/// class path) to show the refusals: `initLimit` (10 ticks of 200 ms), well
/// past the few hundred ms a server with the right password takes to join.
const STAYED_OUT_FOR: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ensemble_that_requires_sasl_serves_and_replicates() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = required_everywhere(dir.path());
    let cluster = &mut cluster;
    bounded(async move {
        let leader = blocking(|| cluster.wait_until_serving(SERVE_WITHIN));
        let others: Vec<usize> = cluster.indices().filter(|&i| i != leader).collect();
        replicates(cluster, others[0], &[leader, others[1]], "/quorum-sasl").await;
        if target() == Target::Zab {
            // The links were authenticated, not merely let through: the
            // leader admitted both followers after an exchange (at least
            // two exchanges: a follower that resyncs authenticates again,
            // and SASL is required, so none serves unauthenticated).
            let log = cluster.output(leader);
            assert!(
                log.matches("learner authenticated").count() >= 2,
                "the leader's log:\n{log}"
            );
        }
    })
    .await;
}

/// Links re-open through the exchange after a crash: the leader is killed
/// with kill -9, the other two elect a new one over authenticated links and
/// take a write, and the old leader restarts, authenticates and catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_leader_rejoins_over_authenticated_links() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = required_everywhere(dir.path());
    let cluster = &mut cluster;
    bounded(async move {
        let old = blocking(|| cluster.wait_until_serving(SERVE_WITHIN));
        let others: Vec<usize> = cluster.indices().filter(|&i| i != old).collect();
        replicates(cluster, others[0], &[old, others[1]], "/before").await;
        blocking(|| cluster.kill9(old));
        let new = blocking(|| cluster.wait_until_serving(SERVE_WITHIN));
        assert_ne!(new, old);
        replicates(cluster, others[0], &others, "/after").await;
        rejoins(cluster, old, "/after").await;
    })
    .await;
}

/// Node 3's password is wrong: 1 and 2 refuse its links, and it cannot
/// answer theirs, so they serve as a quorum of two while it stays out.
/// Once its password is right and it restarts, it joins and catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_with_the_wrong_password_stays_out_until_it_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let good = jaas(dir.path(), "good.jaas", "secret");
    let bad = jaas(dir.path(), "bad.jaas", "guess");
    let mut spec = spec(vec![jaas_line(&good), jaas_line(&good), jaas_line(&bad)]);
    spec.extra_cfg = REQUIRED.to_owned();
    let mut cluster = TestCluster::start(spec);
    let cluster = &mut cluster;
    bounded(async move {
        // 1 and 2 serve; 3 has tried and been refused.
        blocking(|| {
            cluster.wait_for_pair_without(2, SERVE_WITHIN, |c, serving| match target() {
                // The listeners say so.
                Target::Zab => (0..2).any(|i| c.output(i).contains("failed SASL authentication")),
                Target::ZooKeeper => serving >= STAYED_OUT_FOR,
            })
        });
        replicates(cluster, 0, &[1], "/without-3").await;
        let status = blocking(|| cluster.status(2)).map(|s| s.mode);
        assert!(
            !matches!(status, Some(Mode::Leader | Mode::Follower)),
            "node 3 joined with a wrong password: {status:?}"
        );

        write_jaas(&bad, "secret");
        rejoins(cluster, 2, "/without-3").await;
    })
    .await;
}

/// ZooKeeper's rolling upgrade to quorum SASL, two moments of it:
/// * step one half done: 1 and 2 have `enableSasl` (and require nothing,
///   so they authenticate no link of their own), 3 has no SASL at all;
/// * step three half done: every server authenticates its own links
///   (`learnerRequireSasl`), 1 and 2 already require it of others, 3 not
///   yet.
///
/// Both ensembles serve, and a server with a wrong password is still let
/// in while nobody requires SASL of it (ZooKeeper's learner authenticates
/// only under `learnerRequireSasl`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_upgrade_to_sasl_keeps_the_ensemble_serving() {
    let dir = tempfile::tempdir().unwrap();
    let file = jaas(dir.path(), "quorum.jaas", "secret");
    let wrong = jaas(dir.path(), "wrong.jaas", "guess");
    let enabled = format!("{}quorum.auth.enableSasl=true\n", jaas_line(&file));
    let mut cluster = TestCluster::start(spec(vec![
        enabled.clone(),
        format!("{}quorum.auth.enableSasl=true\n", jaas_line(&wrong)),
        String::new(),
    ]));
    {
        let cluster = &mut cluster;
        bounded(async move {
            blocking(|| cluster.wait_until_serving(SERVE_WITHIN));
            replicates(cluster, 2, &[0, 1], "/step-one").await;
        })
        .await;
    }
    drop(cluster);

    let learner = format!("{enabled}quorum.auth.learnerRequireSasl=true\n");
    let server = format!("{learner}quorum.auth.serverRequireSasl=true\n");
    let mut cluster = TestCluster::start(spec(vec![server.clone(), server, learner]));
    let cluster = &mut cluster;
    bounded(async move {
        blocking(|| cluster.wait_until_serving(SERVE_WITHIN));
        replicates(cluster, 2, &[0, 1], "/step-three").await;
    })
    .await;
}

/// An observer under `observerMasterPort` learns from a follower, never
/// from the leader (which does not listen on the port): with SASL required
/// everywhere, it authenticates to the follower that hosts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_observer_authenticates_to_the_follower_hosting_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = jaas(dir.path(), "quorum.jaas", "secret");
    let mut spec = spec(vec![jaas_line(&file); 4])
        .with_observers(1)
        .with_distinct_hosts();
    let port = free_ports_on(&spec.hosts(), 1)[0];
    spec.extra_cfg = format!("{REQUIRED}observerMasterPort={port}\n");
    let mut cluster = TestCluster::start(spec);
    let cluster = &mut cluster;
    bounded(async move {
        let leader = blocking(|| cluster.wait_until_serving(SERVE_WITHIN));
        let observer = 3;
        assert!(cluster.is_observer(observer));
        replicates(cluster, observer, &[0, 1, 2], "/observed").await;
        if target() == Target::Zab {
            let hosts = (0..3)
                .filter(|&i| i != leader)
                .filter(|&i| cluster.output(i).contains("learner authenticated"))
                .count();
            // One at a time; another, should the observer resync.
            assert!(hosts >= 1, "a follower admitted the observer");
        }
    })
    .await;
}
