//! Kerberos between servers (`quorum.auth.*` with `Krb5LoginModule` in the
//! JAAS file's `QuorumServer` and `QuorumLearner` sections), end to end
//! with real processes and a KDC of the test's own (MIT's `krb5kdc` on
//! 127.0.0.1). Each node's quorum and election ports are on an address of
//! its own, 127.0.0.(i+1), and it logs in as `zkquorum/<that address>`;
//! the servers ask for `zkquorum/_HOST`, the host of the server each link
//! goes to. An ensemble so configured serves; a server whose learner logs
//! in as a principal of another host is refused by ZooKeeper's
//! `authzHosts` check and stays out until its login is fixed.
//!
//! `ZAB_TEST_TARGET=zookeeper` runs the same against ZooKeeper 3.8 (the
//! harness passes the JAAS file and krb5.conf as JVM properties).

mod support;

#[path = "support/cluster.rs"]
mod cluster;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cluster::{ClusterSpec, Mode, ServerCommand, TestCluster};
use support::kdc::{Kdc, REALM};
use support::{bounded, target, Target};
use zookeeper_client::Client;

const SERVE_WITHIN: Duration = Duration::from_secs(40);

/// Every server requires SASL both ways and asks for its peers' host
/// principals.
const REQUIRED: &str = "quorum.auth.enableSasl=true\n\
                        quorum.auth.learnerRequireSasl=true\n\
                        quorum.auth.serverRequireSasl=true\n\
                        quorum.auth.kerberos.servicePrincipal=zkquorum/_HOST\n";

/// One `Krb5LoginModule` section logging in as `principal` from `keytab`.
fn section(name: &str, principal: &str, keytab: &Path) -> String {
    format!(
        "{name} {{\n  com.sun.security.auth.module.Krb5LoginModule required\n  \
         useKeyTab=true\n  keyTab=\"{}\"\n  storeKey=true\n  useTicketCache=false\n  \
         principal=\"{principal}@{REALM}\";\n}};\n",
        keytab.display()
    )
}

/// The KDC, every node's principal and keytab, and the JAAS files.
struct Realm {
    kdc: Kdc,
    dir: tempfile::TempDir,
    /// Node `i`'s principal (without the realm) and keytab.
    logins: Vec<(String, PathBuf)>,
}

impl Realm {
    fn new(spec: &ClusterSpec) -> Realm {
        let kdc = Kdc::start();
        let logins = (0..spec.participants)
            .map(|i| {
                let principal = format!("zkquorum/{}", spec.host(i));
                let keytab = kdc.keytab(&principal);
                (principal, keytab)
            })
            .collect();
        Realm {
            kdc,
            dir: tempfile::tempdir().expect("temp dir"),
            logins,
        }
    }

    /// Writes node `i`'s JAAS file: its server login as its own principal,
    /// its learner login as `learner` (a principal and keytab).
    fn write_jaas(&self, i: usize, learner: &(String, PathBuf)) -> PathBuf {
        let (principal, keytab) = &self.logins[i];
        let path = self.dir.path().join(format!("node{i}.jaas"));
        let text = section("QuorumServer", principal, keytab)
            + &section("QuorumLearner", &learner.0, &learner.1);
        std::fs::write(&path, text).expect("write JAAS file");
        path
    }

    /// Node `i`'s zoo.cfg lines for `jaas`.
    fn cfg(&self, jaas: &Path) -> String {
        format!(
            "java.security.auth.login.config={}\njava.security.krb5.conf={}\n",
            jaas.display(),
            self.kdc.krb5_conf().display()
        )
    }
}

/// Three voters on 127.0.0.1–3 requiring Kerberos between them.
/// ZooKeeper's servers log, so that its refusals can be read too.
fn spec() -> ClusterSpec {
    let command = match target() {
        Target::ZooKeeper => ServerCommand::zookeeper().logged(),
        Target::Zab => ServerCommand::binary(env!("CARGO_BIN_EXE_zab-server")),
    };
    let mut spec = ClusterSpec::new(command, 3).with_distinct_hosts();
    spec.extra_cfg = REQUIRED.to_owned();
    spec
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
    support::replicates(&writer, &readers, path, b"over kerberos", SERVE_WITHIN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ensemble_that_authenticates_with_kerberos_serves_and_replicates() {
    let mut spec = spec();
    let realm = Realm::new(&spec);
    spec.node_cfg = (0..3)
        .map(|i| realm.cfg(&realm.write_jaas(i, &realm.logins[i])))
        .collect();
    let mut cluster = TestCluster::start(spec);
    let cluster = &mut cluster;
    bounded(async move {
        let leader = blocking(|| cluster.wait_until_serving(SERVE_WITHIN));
        let others: Vec<usize> = cluster.indices().filter(|&i| i != leader).collect();
        replicates(cluster, others[0], &[leader, others[1]], "/quorum-kerberos").await;
        // The leader admitted each follower as its host's principal (as
        // zab logs it, and ZooKeeper's `SaslQuorumServerCallbackHandler`).
        let log = cluster.output(leader);
        for &i in &others {
            let principal = format!("{}@{REALM}", realm.logins[i].0);
            let (line, who) = match target() {
                Target::Zab => ("learner authenticated", format!("user=\"{principal}\"")),
                Target::ZooKeeper => (
                    "Successfully authenticated learner",
                    format!("authenticationID={principal};"),
                ),
            };
            assert!(
                log.lines().any(|l| l.contains(line) && l.contains(&who)),
                "{principal} not authenticated in the leader's log:\n{log}"
            );
        }
    })
    .await;
}

/// Node 3's learner logs in as `zkquorum/127.0.0.9`, a principal the KDC
/// knows but of a host that is no server line's: 1 and 2 authenticate it
/// and then refuse it (ZooKeeper's `authzHosts`), so node 3, which opens
/// the election links to both, has none, and they serve as a pair. With
/// its learner login fixed and a restart, it joins and catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_learner_of_another_host_stays_out_until_its_login_is_fixed() {
    let mut spec = spec();
    let realm = Realm::new(&spec);
    let stranger = (
        "zkquorum/127.0.0.9".to_owned(),
        realm.kdc.keytab("zkquorum/127.0.0.9"),
    );
    let node3 = realm.write_jaas(2, &stranger);
    spec.node_cfg = vec![
        realm.cfg(&realm.write_jaas(0, &realm.logins[0])),
        realm.cfg(&realm.write_jaas(1, &realm.logins[1])),
        realm.cfg(&node3),
    ];
    let mut cluster = TestCluster::start(spec);
    let cluster = &mut cluster;
    bounded(async move {
        // The listeners say why: zab's, and ZooKeeper's
        // `SaslQuorumServerCallbackHandler`.
        let why = match target() {
            Target::Zab => "is not a server of the ensemble, so it is not authorized",
            Target::ZooKeeper => "is not authorized to connect",
        };
        blocking(|| {
            cluster.wait_for_pair_without(2, SERVE_WITHIN, |c, _| {
                (0..2).any(|i| {
                    let log = c.output(i);
                    log.contains("zkquorum/127.0.0.9@ZAB.TEST") && log.contains(why)
                })
            })
        });
        replicates(cluster, 0, &[1], "/without-3").await;
        let status = blocking(|| cluster.status(2)).map(|s| s.mode);
        assert!(
            !matches!(status, Some(Mode::Leader | Mode::Follower)),
            "node 3 joined as another host's principal: {status:?}"
        );

        realm.write_jaas(2, &realm.logins[2]);
        blocking(|| cluster.restart(2));
        blocking(|| cluster.wait_until_serving(SERVE_WITHIN));
        blocking(|| cluster.wait_until_converged(SERVE_WITHIN));
        let late = connect(&cluster.connect_string_of(2)).await;
        late.sync("/without-3").await.unwrap();
        assert_eq!(
            late.get_data("/without-3").await.unwrap().0,
            b"over kerberos".to_vec()
        );
    })
    .await;
}
