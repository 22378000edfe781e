//! Observers that sync from a follower (ZooKeeper 3.6+'s `ObserverMaster`):
//! with `observerMasterPort=P` in zoo.cfg each follower, once synced with
//! its leader, listens on P at its own quorum address, and an observer
//! tries the voters in shuffled order on P instead of the leader's quorum
//! port (`QuorumPeer.findLearnerMaster`). The leader does not listen on P,
//! so an observer that tries it fails and moves on to the next voter.
//!
//! Checked from the outside, through `mntr` and a client connected to the
//! observer alone: the observer names a follower as its master
//! (`zk_observer_master_id`), that follower counts it
//! (`zk_synced_observers`) and the leader does not; writes through the
//! observer reach every voter and the voters' writes reach the observer;
//! when the master dies, the observer syncs from the remaining follower
//! and serves again.
//!
//! Every node listens on the same P, so each gets its own loopback address
//! for its quorum and election ports ([`ClusterSpec::with_distinct_hosts`]).
//!
//! `ZAB_TEST_TARGET=zookeeper` runs the same tests against Apache ZooKeeper
//! 3.8 processes.

mod support;

#[path = "support/cluster.rs"]
mod cluster;

use std::time::{Duration, Instant};

use cluster::{free_ports_on, ClusterSpec, Mode, ServerCommand, TestCluster};
use support::{bounded, target, Target};
use zookeeper_client::{Acls, Client, CreateMode, CreateOptions};

/// How long an ensemble gets to elect a leader and sync everyone, and an
/// observer to find a master that serves it. ZooKeeper's observer found its
/// follower 1.6–3.5 s after the JVMs started; each voter it tries that does
/// not listen (the leader, a dead or not yet synced follower) costs about
/// 0.6 s: five refused connects 100 ms apart, up to 200 ms of jitter and an
/// election round.
const SERVE_WITHIN: Duration = Duration::from_secs(40);

/// The observer's index: after the three voters.
const OBSERVER: usize = 3;

/// 3 voters and 1 observer on distinct loopback addresses, every node with
/// `observerMasterPort` set to one port free on all of them; zab, or Apache
/// ZooKeeper 3.8 (the Debian package) with `ZAB_TEST_TARGET=zookeeper`.
fn spec() -> ClusterSpec {
    let command = match target() {
        Target::ZooKeeper => ServerCommand::zookeeper(),
        Target::Zab => ServerCommand::binary(env!("CARGO_BIN_EXE_zab-server")),
    };
    let mut spec = ClusterSpec::new(command, 3)
        .with_observers(1)
        .with_distinct_hosts();
    let port = free_ports_on(&spec.hosts(), 1)[0];
    spec.extra_cfg = format!("observerMasterPort={port}\n");
    spec
}

fn persistent() -> CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

/// Runs a blocking harness call (it polls four-letter words) without
/// stalling the client tasks on this runtime worker.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Node `i`'s `mntr` while it serves; `None` while it does not answer or
/// says it is not serving.
fn mntr(cluster: &TestCluster, i: usize) -> Option<String> {
    let text = blocking(|| cluster.four_letter_word(i, "mntr")).ok()?;
    text.lines()
        .any(|l| l.starts_with("zk_server_state\t"))
        .then_some(text)
}

/// What node `i`'s `srvr` says it is, if it answers.
fn mode(cluster: &TestCluster, i: usize) -> Option<Mode> {
    blocking(|| cluster.status(i)).map(|s| s.mode)
}

/// The value of `key` in a `mntr` answer (`key\tvalue` lines).
fn metric<'a>(mntr: &'a str, key: &str) -> Option<&'a str> {
    mntr.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('\t'))
}

/// The voter whose `myid` is `sid`.
fn voter_with_sid(cluster: &TestCluster, sid: &str) -> Option<usize> {
    cluster
        .indices()
        .find(|&i| !cluster.is_observer(i) && cluster.sid(i).to_string() == sid)
}

/// Polls until the observer serves and names as its master a running voter
/// that follows, and that follower's `mntr` counts one synced observer while
/// the leader's counts none. Returns the follower's index.
///
/// (The leader's `zk_synced_observers` counts the observers that sync from
/// it; ZooKeeper's follower prints the gauge only while it runs an
/// `ObserverMaster`, i.e. with `observerMasterPort` set, and then prints 0
/// when no observer syncs from it.)
async fn wait_for_follower_master(cluster: &TestCluster, leader: usize) -> usize {
    let deadline = Instant::now() + SERVE_WITHIN;
    loop {
        // What each node says, for the failure message.
        let mut seen = Vec::new();
        let found = (|| {
            let observer_mode = mode(cluster, OBSERVER);
            seen.push(format!("observer mode {observer_mode:?}"));
            if observer_mode != Some(Mode::Observer) {
                return None;
            }
            let observer = mntr(cluster, OBSERVER)?;
            let id = metric(&observer, "zk_observer_master_id");
            seen.push(format!("zk_observer_master_id {id:?}"));
            let master = voter_with_sid(cluster, id?)?;
            let master_mode = mode(cluster, master);
            seen.push(format!("master mode {master_mode:?}"));
            if master == leader || master_mode != Some(Mode::Follower) {
                return None;
            }
            let follower = mntr(cluster, master)?;
            let lead = mntr(cluster, leader)?;
            let counts = (
                metric(&follower, "zk_synced_observers"),
                metric(&lead, "zk_synced_observers"),
            );
            seen.push(format!("zk_synced_observers (master, leader) {counts:?}"));
            (counts == (Some("1"), Some("0"))).then_some(master)
        })();
        if let Some(master) = found {
            return master;
        }
        assert!(
            Instant::now() < deadline,
            "within {SERVE_WITHIN:?}, the observer (sid {}) did not name a follower as \
             zk_observer_master_id that reports zk_synced_observers 1 while the leader \
             (sid {}) reports 0; last seen: {}",
            cluster.sid(OBSERVER),
            cluster.sid(leader),
            seen.join(", ")
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Connects to `connect_string`, retrying until a server grants a session.
async fn connect(connect_string: &str) -> Client {
    support::connect_until(connect_string, Duration::from_secs(4), SERVE_WITHIN).await
}

/// A client of node `i` alone, which reads after a `sync` so that it sees
/// every write committed before.
async fn synced_client(cluster: &TestCluster, i: usize, path: &str) -> Client {
    let client = connect(&cluster.connect_string_of(i)).await;
    client.sync(path).await.unwrap();
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_observer_syncs_from_a_follower_and_serves_writes() {
    let mut cluster = TestCluster::start(spec());
    let cluster = &mut cluster;
    bounded(async move {
        let started = Instant::now();
        // No convergence check before the first write: a fresh ZooKeeper
        // ensemble's `srvr` zxid is 0x100000000 on the leader and 0 on the
        // learners until a txn is committed.
        let leader = blocking(|| cluster.wait_until_serving(SERVE_WITHIN));
        assert!(cluster.is_observer(OBSERVER));
        let master = wait_for_follower_master(cluster, leader).await;
        eprintln!(
            "observer's master: sid {} (leader sid {}), {:?} after start",
            cluster.sid(master),
            cluster.sid(leader),
            started.elapsed()
        );
        // The other follower serves no observer but runs an ObserverMaster.
        let other = (0..OBSERVER)
            .find(|&i| i != leader && i != master)
            .expect("a second follower");
        let idle = mntr(cluster, other).expect("the other follower serves");
        assert_eq!(metric(&idle, "zk_synced_observers"), Some("0"), "{idle}");
        assert_eq!(metric(&idle, "zk_observer_master_id"), None, "{idle}");

        // Writes through the observer alone.
        let via_observer = connect(&cluster.connect_string_of(OBSERVER)).await;
        via_observer
            .create("/om", b"root", &persistent())
            .await
            .unwrap();
        for n in 0..10 {
            via_observer
                .create(
                    &format!("/om/c{n}"),
                    format!("v{n}").as_bytes(),
                    &persistent(),
                )
                .await
                .unwrap();
        }
        let set = via_observer
            .set_data("/om/c3", b"changed", Some(0))
            .await
            .unwrap();
        assert_eq!(set.version, 1);
        via_observer.sync("/om").await.unwrap();
        let (data, stat) = via_observer.get_data("/om/c3").await.unwrap();
        assert_eq!((data.as_slice(), stat), (&b"changed"[..], set));
        let (mut children, _) = via_observer.get_children("/om").await.unwrap();
        children.sort();
        // c0…c9 sort as they were created.
        let want: Vec<String> = (0..10).map(|n| format!("c{n}")).collect();
        assert_eq!(children, want);

        // … are on every voter, with the same Stat.
        for i in cluster.indices().filter(|&i| i != OBSERVER) {
            let client = synced_client(cluster, i, "/om").await;
            assert_eq!(
                client.get_data("/om/c3").await.unwrap(),
                (b"changed".to_vec(), set),
                "node {i}"
            );
            let (mut seen, _) = client.get_children("/om").await.unwrap();
            seen.sort();
            assert_eq!(seen, want, "node {i}");
        }

        // A write through the leader reaches the observer.
        let via_leader = connect(&cluster.connect_string_of(leader)).await;
        let (from_leader, _) = via_leader
            .create("/om/from-leader", b"leader", &persistent())
            .await
            .unwrap();
        via_observer.sync("/om").await.unwrap();
        assert_eq!(
            via_observer.get_data("/om/from-leader").await.unwrap(),
            (b"leader".to_vec(), from_leader)
        );

        blocking(|| cluster.wait_until_converged(SERVE_WITHIN));
        // The observer is still its follower's, and only its.
        let observer = mntr(cluster, OBSERVER).expect("the observer serves");
        let sid = cluster.sid(master).to_string();
        assert_eq!(
            metric(&observer, "zk_observer_master_id"),
            Some(sid.as_str()),
            "{observer}"
        );
        let follower = mntr(cluster, master).expect("the master serves");
        assert_eq!(
            metric(&follower, "zk_synced_observers"),
            Some("1"),
            "{follower}"
        );
        let lead = mntr(cluster, leader).expect("the leader serves");
        assert_eq!(metric(&lead, "zk_synced_observers"), Some("0"), "{lead}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_observer_moves_to_another_follower_when_its_master_dies() {
    let mut cluster = TestCluster::start(spec());
    let cluster = &mut cluster;
    bounded(async move {
        let leader = blocking(|| cluster.wait_until_serving(SERVE_WITHIN));
        let master = wait_for_follower_master(cluster, leader).await;
        {
            let client = connect(&cluster.connect_string_of(OBSERVER)).await;
            client.create("/before", b"1", &persistent()).await.unwrap();
        }

        blocking(|| cluster.kill9(master));
        let killed = Instant::now();
        // Two voters are left, a quorum; whichever of them follows is the
        // only one listening on the observer master port.
        let leader = blocking(|| cluster.wait_until_serving(SERVE_WITHIN));
        let new_master = wait_for_follower_master(cluster, leader).await;
        assert_ne!(new_master, master);
        eprintln!(
            "observer moved from sid {} to sid {} (leader sid {}) {:?} after the kill",
            cluster.sid(master),
            cluster.sid(new_master),
            cluster.sid(leader),
            killed.elapsed()
        );

        // A fresh session: the old one's 4 s timeout may have run out while
        // the observer looked for a master.
        let via_observer = connect(&cluster.connect_string_of(OBSERVER)).await;
        via_observer.sync("/before").await.unwrap();
        assert_eq!(via_observer.get_data("/before").await.unwrap().0, b"1");
        let (stat, _) = via_observer
            .create("/after", b"2", &persistent())
            .await
            .unwrap();
        let via_leader = synced_client(cluster, leader, "/after").await;
        assert_eq!(
            via_leader.get_data("/after").await.unwrap(),
            (b"2".to_vec(), stat)
        );

        // The killed follower comes back and catches up; the observer keeps
        // the master it has.
        blocking(|| cluster.restart(master));
        blocking(|| cluster.wait_until_serving(SERVE_WITHIN));
        blocking(|| cluster.wait_until_converged(SERVE_WITHIN));
        let back = synced_client(cluster, master, "/after").await;
        assert_eq!(
            back.get_data("/after").await.unwrap(),
            (b"2".to_vec(), stat)
        );
        let observer = mntr(cluster, OBSERVER).expect("the observer serves");
        let sid = cluster.sid(new_master).to_string();
        assert_eq!(
            metric(&observer, "zk_observer_master_id"),
            Some(sid.as_str()),
            "{observer}"
        );
        let restarted = mntr(cluster, master).expect("the restarted follower serves");
        assert_eq!(
            metric(&restarted, "zk_server_state"),
            Some("follower"),
            "{restarted}"
        );
        assert_eq!(
            metric(&restarted, "zk_synced_observers"),
            Some("0"),
            "{restarted}"
        );
    })
    .await;
}

/// The observer's sessions live on the leader, which hears of them only
/// through the follower in between: their touches must go up in the
/// follower's own PING replies, and a session moving to the observer is
/// revalidated through the follower too (ZooKeeper's `ObserverMaster.touch`
/// and `revalidateSession`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_on_the_observer_are_kept_and_moved_through_its_master() {
    let mut cluster = TestCluster::start(spec());
    let cluster = &mut cluster;
    bounded(async move {
        let leader = blocking(|| cluster.wait_until_serving(SERVE_WITHIN));
        wait_for_follower_master(cluster, leader).await;

        // A session held by the observer alone outlives twice its timeout:
        // only the touches the follower relays keep it on the leader.
        let on_observer = connect(&cluster.connect_string_of(OBSERVER)).await;
        let ephemeral = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
        on_observer.create("/held", b"", &ephemeral).await.unwrap();
        let timeout = on_observer.session_timeout();
        let kept_until = Instant::now() + 2 * timeout;
        while Instant::now() < kept_until {
            on_observer.check_stat("/held").await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let via_leader = synced_client(cluster, leader, "/held").await;
        let stat = via_leader
            .check_stat("/held")
            .await
            .unwrap()
            .expect("the observer's ephemeral outlives its session timeout");
        assert_eq!(stat.ephemeral_owner, on_observer.session_id().0);

        // A session made on the leader moves to the observer: the observer
        // asks the leader, through the follower, whether it is still valid.
        // Detached and dropped before it moves: a connection left open on
        // the leader would ping there, be closed as the session moved
        // (SESSIONMOVED), reconnect and take the session back.
        let moving = tokio::time::timeout(
            Duration::from_secs(10),
            Client::connector()
                .with_detached()
                .with_session_timeout(Duration::from_secs(4))
                .connect(&cluster.connect_string_of(leader)),
        )
        .await
        .expect("the leader grants a session in time")
        .expect("a session on the leader");
        let session = moving.session().clone();
        let moving_id = moving.session_id();
        drop(moving);
        let moved = tokio::time::timeout(
            Duration::from_secs(10),
            Client::connector()
                .with_session(session)
                .with_session_timeout(Duration::from_secs(4))
                .connect(&cluster.connect_string_of(OBSERVER)),
        )
        .await
        .expect("the observer answers a reconnecting session")
        .expect("the session is still valid");
        assert_eq!(moved.session_id(), moving_id);
        moved.create("/moved", b"", &ephemeral).await.unwrap();
        via_leader.sync("/moved").await.unwrap();
        let stat = via_leader
            .check_stat("/moved")
            .await
            .unwrap()
            .expect("the moved session's ephemeral");
        assert_eq!(stat.ephemeral_owner, moving_id.0);
    })
    .await;
}

/// An observer too far behind for a DIFF gets a snapshot of its follower's
/// tree, streamed by the follower (`snapshotSizeFactor=-1`: nothing is
/// replayed from the txn log, so beyond the 500-txn committed window only
/// a SNAP will do). The follower counts it in `zk_snap_count`, as
/// ZooKeeper's `LearnerHandler` does on whichever server runs it; no other
/// voter counts one. (A voter may have counted a SNAP before: with the
/// factor at -1 a follower that registers after the leader is established
/// gets one too, on ZooKeeper as on zab.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_observer_far_behind_gets_its_followers_snapshot() {
    let mut spec = spec();
    spec.extra_cfg.push_str("snapshotSizeFactor=-1\n");
    let mut cluster = TestCluster::start(spec);
    let cluster = &mut cluster;
    bounded(async move {
        let leader = blocking(|| cluster.wait_until_serving(SERVE_WITHIN));
        wait_for_follower_master(cluster, leader).await;
        let writer = connect(&cluster.connect_string_of(leader)).await;
        writer.create("/far", b"", &persistent()).await.unwrap();

        blocking(|| cluster.kill9(OBSERVER));
        // 700 txns: past the committed window the follower keeps for DIFF.
        let mut writes = tokio::task::JoinSet::new();
        for lane in 0..8 {
            let writer = writer.clone();
            writes.spawn(async move {
                for n in (lane..700).step_by(8) {
                    let path = format!("/far/n{n:04}");
                    writer.create(&path, b"x", &persistent()).await.unwrap();
                }
            });
        }
        while let Some(done) = writes.join_next().await {
            done.unwrap();
        }

        let snaps = |cluster: &TestCluster| -> Vec<u64> {
            (0..OBSERVER)
                .map(|i| {
                    let text = mntr(cluster, i).expect("every voter serves");
                    let count = metric(&text, "zk_snap_count").expect("zk_snap_count");
                    count.parse().expect("a count")
                })
                .collect()
        };
        let before = snaps(cluster);
        blocking(|| cluster.restart(OBSERVER));
        let master = wait_for_follower_master(cluster, leader).await;
        let after = snaps(cluster);
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            if i == master {
                assert!(a > b, "the master counted no SNAP: {before:?} → {after:?}");
            } else {
                assert_eq!(a, b, "voter {i} counted a SNAP: {before:?} → {after:?}");
            }
        }
        if target() == Target::Zab {
            let log = cluster.output(OBSERVER);
            let restarted = log.rsplit("--- node").next().unwrap_or_default();
            assert!(
                restarted.contains("SNAP: installing"),
                "the restarted observer was expected to sync by snapshot:\n{log}"
            );
        }

        let on_observer = synced_client(cluster, OBSERVER, "/far").await;
        let (mut children, stat) = on_observer.get_children("/far").await.unwrap();
        children.sort();
        let want: Vec<String> = (0..700).map(|n| format!("n{n:04}")).collect();
        assert_eq!(children, want);
        writer.sync("/far").await.unwrap();
        let (_, on_leader) = writer.get_children("/far").await.unwrap();
        assert_eq!(stat, on_leader);
    })
    .await;
}

/// A follower that cannot bind the observer master port keeps following
/// and hosts nobody; the observer syncs from the other follower. This is
/// zab's choice: ZooKeeper's follower stops following instead (its
/// `ObserverMaster.start` throws inside `Follower.followLeader`) and stays
/// out of the quorum until the port is free, so the test runs on zab only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_whose_observer_port_is_taken_still_follows() {
    if target() != Target::Zab {
        return;
    }
    let spec = spec();
    let port: u16 = spec
        .extra_cfg
        .trim()
        .strip_prefix("observerMasterPort=")
        .and_then(|p| p.parse().ok())
        .expect("spec() sets observerMasterPort");
    // Node 0 (sid 1) finds its port taken. A fresh ensemble elects the
    // highest sid, so node 0 follows.
    let _squatter = std::net::TcpListener::bind((spec.host(0), port)).expect("bind the port");
    let mut cluster = TestCluster::start(spec);
    let cluster = &mut cluster;
    bounded(async move {
        let leader = blocking(|| cluster.wait_until_serving(SERVE_WITHIN));
        assert_ne!(leader, 0, "sid 1 leads a fresh ensemble of 3");
        let master = wait_for_follower_master(cluster, leader).await;
        assert_ne!(
            master, 0,
            "the observer learned from the follower without a port"
        );
        assert_eq!(mode(cluster, 0), Some(Mode::Follower));
        let idle = mntr(cluster, 0).expect("node 0 serves");
        assert_eq!(metric(&idle, "zk_synced_observers"), Some("0"), "{idle}");
        assert!(
            cluster.output(0).contains("cannot listen for observers"),
            "{}",
            cluster.output(0)
        );
        // It still votes and serves: a write through it commits.
        let client = connect(&cluster.connect_string_of(0)).await;
        client.create("/still", b"", &persistent()).await.unwrap();
    })
    .await;
}
