//! Real elections over the tonic transport on 127.0.0.1: every server runs
//! the election core in a task, and all of them must settle on the same
//! leader within a bounded time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use zab_election::{
    Election, ElectionTransport, Output, PeerSecurity, Responder, ServerState, Vote,
};
use zab_wire::quorum_auth::{Credentials, QuorumSasl};
use zab_wire::{Epoch, QuorumVerifier, ServerId, Zxid};

const DEADLINE: Duration = Duration::from_secs(30);

/// Runs one server: the election, then answering as a settled server.
/// Reports its decision on `decided`.
async fn run_server(
    me: ServerId,
    qv: QuorumVerifier,
    last_zxid: Zxid,
    transport: ElectionTransport,
    mut inbox: mpsc::Receiver<zab_election::Notification>,
    decided: mpsc::Sender<(ServerId, ServerState, Vote)>,
) {
    let start = Instant::now();
    let now_ms = move || start.elapsed().as_millis() as u64;
    let (mut election, out) = Election::new(me, qv.clone(), last_zxid, Epoch(1), 0, now_ms());
    let mut settled: Option<Responder> = None;
    let mut outputs = out;
    loop {
        for o in outputs.drain(..) {
            match o {
                Output::Send { to, n } => transport.send(to, n),
                Output::Decided { state, vote } => {
                    settled = Some(Responder::new(me, qv.clone(), state, vote, 0));
                    let _ = decided.send((me, state, vote)).await;
                }
            }
        }
        if let Some(r) = &settled {
            // Settled: answer LOOKING peers until the test ends.
            let Some(n) = inbox.recv().await else { return };
            if let Some(reply) = r.on_notification(&n) {
                transport.send(n.sender, reply);
            }
            continue;
        }
        let deadline = election.next_deadline().unwrap_or(u64::MAX);
        let wait = Duration::from_millis(deadline.saturating_sub(now_ms()));
        tokio::select! {
            n = inbox.recv() => match n {
                Some(n) => outputs = election.on_notification(now_ms(), n),
                None => return,
            },
            _ = tokio::time::sleep(wait) => outputs = election.on_timer(now_ms()),
        }
    }
}

struct Cluster {
    qv: QuorumVerifier,
    listeners: BTreeMap<ServerId, TcpListener>,
    addrs: BTreeMap<ServerId, SocketAddr>,
    decided_tx: mpsc::Sender<(ServerId, ServerState, Vote)>,
    decided_rx: mpsc::Receiver<(ServerId, ServerState, Vote)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Cluster {
    async fn new(ids: &[u64]) -> Cluster {
        let mut listeners = BTreeMap::new();
        let mut addrs = BTreeMap::new();
        for &id in ids {
            let l = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind a free port");
            addrs.insert(ServerId(id), l.local_addr().expect("local addr"));
            listeners.insert(ServerId(id), l);
        }
        let (decided_tx, decided_rx) = mpsc::channel(16);
        Cluster {
            qv: QuorumVerifier::new(ids.iter().copied().map(ServerId), []),
            listeners,
            addrs,
            decided_tx,
            decided_rx,
            tasks: Vec::new(),
        }
    }

    fn start(&mut self, id: u64, last_zxid: Zxid) {
        self.start_secured(id, last_zxid, PeerSecurity::default());
    }

    fn start_secured(&mut self, id: u64, last_zxid: Zxid, security: PeerSecurity) {
        let (transport, inbox) = self.link(id, security);
        self.elect(id, last_zxid, transport, inbox);
    }

    /// Starts server `id`'s transport only.
    fn link(
        &mut self,
        id: u64,
        security: PeerSecurity,
    ) -> (
        ElectionTransport,
        mpsc::Receiver<zab_election::Notification>,
    ) {
        let me = ServerId(id);
        let listener = self.listeners.remove(&me).expect("not started yet");
        ElectionTransport::start_secured(me, listener, self.addrs.clone(), security)
            .expect("transport starts")
    }

    /// Runs server `id`'s election over a transport [`Cluster::link`] started.
    fn elect(
        &mut self,
        id: u64,
        last_zxid: Zxid,
        transport: ElectionTransport,
        inbox: mpsc::Receiver<zab_election::Notification>,
    ) {
        self.tasks.push(tokio::spawn(run_server(
            ServerId(id),
            self.qv.clone(),
            last_zxid,
            transport,
            inbox,
            self.decided_tx.clone(),
        )));
    }

    /// Starts every server's transport, waits until each pair is linked,
    /// then runs the elections. FastLeaderElection promises the best vote
    /// among those a quorum hears within its finalize wait (200 ms), not
    /// the best log in the ensemble: a server whose links come up later
    /// (a slow dial, a SASL exchange on a loaded machine) may be left out
    /// by the others' quorum. Linked first, every vote reaches every server.
    async fn start_linked(&mut self, servers: &[(u64, Zxid, PeerSecurity)]) {
        let mut started = Vec::new();
        for (id, last_zxid, security) in servers {
            let (transport, inbox) = self.link(*id, security.clone());
            started.push((*id, *last_zxid, transport, inbox));
        }
        let ids: Vec<ServerId> = started.iter().map(|s| ServerId(s.0)).collect();
        eventually("every pair of servers is linked", || {
            started.iter().all(|(id, _, transport, _)| {
                ids.iter()
                    .all(|&peer| peer == ServerId(*id) || transport.is_linked(peer))
            })
        })
        .await;
        for (id, last_zxid, transport, inbox) in started {
            self.elect(id, last_zxid, transport, inbox);
        }
    }

    /// Waits for `n` decisions, bounded by `DEADLINE`.
    async fn decisions(&mut self, n: usize) -> BTreeMap<ServerId, (ServerState, ServerId)> {
        let mut got = BTreeMap::new();
        let until = tokio::time::Instant::now() + DEADLINE;
        while got.len() < n {
            match tokio::time::timeout_at(until, self.decided_rx.recv()).await {
                Ok(Some((id, state, vote))) => {
                    got.insert(id, (state, vote.leader));
                }
                Ok(None) => panic!("decision channel closed"),
                Err(_) => panic!("only {} of {n} servers decided in time: {got:?}", got.len()),
            }
        }
        got
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_elect_the_one_with_the_latest_log() {
    let mut c = Cluster::new(&[1, 2, 3]).await;
    // Server 2 has the latest log, so it must win over the higher sid 3.
    let none = PeerSecurity::default;
    c.start_linked(&[
        (1, Zxid::new(Epoch(1), 4), none()),
        (2, Zxid::new(Epoch(1), 9), none()),
        (3, Zxid::new(Epoch(1), 4), none()),
    ])
    .await;
    let d = c.decisions(3).await;
    assert_eq!(d[&ServerId(1)], (ServerState::Following, ServerId(2)));
    assert_eq!(d[&ServerId(2)], (ServerState::Leading, ServerId(2)));
    assert_eq!(d[&ServerId(3)], (ServerState::Following, ServerId(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_server_learns_the_leader_over_the_wire() {
    let mut c = Cluster::new(&[1, 2, 3]).await;
    c.start(1, Zxid::new(Epoch(1), 1));
    c.start(3, Zxid::new(Epoch(1), 1));
    let d = c.decisions(2).await;
    assert_eq!(d[&ServerId(3)], (ServerState::Leading, ServerId(3)));
    assert_eq!(d[&ServerId(1)], (ServerState::Following, ServerId(3)));
    // Server 2 arrives with a better log, yet must follow the settled 3. It
    // dials 1 (lower sid) itself, and asks 3 (higher sid) to dial it back.
    c.start(2, Zxid::new(Epoch(1), 7));
    let d = c.decisions(1).await;
    assert_eq!(d[&ServerId(2)], (ServerState::Following, ServerId(3)));
}

/// Polls `cond` every few milliseconds until it holds, bounded by `DEADLINE`.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let until = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is_linked_and_may_still_vote_follow_the_link_up_and_down() {
    let mut c = Cluster::new(&[1, 2]).await;
    let addrs = c.addrs.clone();
    let l1 = c.listeners.remove(&ServerId(1)).expect("listener 1");
    let l2 = c.listeners.remove(&ServerId(2)).expect("listener 2");
    let (t1, _in1) = ElectionTransport::start_with_listener(ServerId(1), l1, addrs.clone())
        .expect("transport 1 starts");
    assert!(!t1.is_linked(ServerId(2)));
    assert!(!t1.is_linked(ServerId(7)), "not a peer");
    // Never linked yet: 2 may be starting, and may still vote.
    assert!(t1.may_still_vote(ServerId(2)));
    assert!(!t1.may_still_vote(ServerId(7)), "not a peer");
    let (t2, _in2) =
        ElectionTransport::start_with_listener(ServerId(2), l2, addrs).expect("transport 2 starts");
    // 2 dials 1 (higher sid dials lower).
    eventually("1 and 2 are linked", || {
        t1.is_linked(ServerId(2)) && t2.is_linked(ServerId(1))
    })
    .await;
    // 2 goes away, as a killed server would: 1 sees its link drop.
    drop(t2);
    eventually("1 sees the link to 2 drop", || !t1.is_linked(ServerId(2))).await;
    // A link that was up and went down: 2 is gone, it will not vote.
    assert!(!t1.may_still_vote(ServerId(2)));
}

/// `quorum.auth.*` as one server holds it: the `QuorumServer` users are
/// `test`/`server_password`; `learner` is the password it logs in with
/// (`learnerRequireSasl`), if any.
fn sasl(server_password: &str, learner: Option<&str>, server_require: bool) -> PeerSecurity {
    PeerSecurity {
        tls: None,
        unified: None,
        sasl: Some(Arc::new(QuorumSasl::digest(
            learner.map(|password| Credentials {
                user: "test".into(),
                password: password.into(),
            }),
            [("test".to_owned(), server_password.to_owned())].into(),
            server_require,
        ))),
    }
}

/// Every server requires SASL both ways and knows the password: the
/// election runs as without it (server 2 has the latest log and wins; the
/// links, dial-backs included, all authenticated first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_that_authenticate_each_other_elect_as_without_sasl() {
    let mut c = Cluster::new(&[1, 2, 3]).await;
    let servers = [(1, 4), (2, 9), (3, 4)]
        .map(|(id, n)| (id, Zxid::new(Epoch(1), n), sasl("pw", Some("pw"), true)));
    c.start_linked(&servers).await;
    let d = c.decisions(3).await;
    assert_eq!(d[&ServerId(1)], (ServerState::Following, ServerId(2)));
    assert_eq!(d[&ServerId(2)], (ServerState::Leading, ServerId(2)));
    assert_eq!(d[&ServerId(3)], (ServerState::Following, ServerId(2)));
}

/// Server 3 has the latest log, so any vote of its that arrived would win
/// it the lead; its password is wrong, so 1 and 2 refuse its links and it
/// cannot answer theirs, and they elect 2 without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_the_wrong_password_is_kept_out_of_the_election() {
    let mut c = Cluster::new(&[1, 2, 3]).await;
    c.start_secured(1, Zxid::new(Epoch(1), 4), sasl("pw", Some("pw"), true));
    c.start_secured(2, Zxid::new(Epoch(1), 4), sasl("pw", Some("pw"), true));
    c.start_secured(
        3,
        Zxid::new(Epoch(1), 9),
        sasl("guess", Some("guess"), true),
    );
    let d = c.decisions(2).await;
    assert_eq!(d[&ServerId(1)], (ServerState::Following, ServerId(2)));
    assert_eq!(d[&ServerId(2)], (ServerState::Leading, ServerId(2)));
}

/// A rolling upgrade's first step: 1 and 2 have SASL on but require
/// nothing and do not authenticate themselves, 3 has none at all; 3's
/// links go through and its better log wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_that_require_nothing_link_with_one_without_sasl() {
    let mut c = Cluster::new(&[1, 2, 3]).await;
    c.start_linked(&[
        (1, Zxid::new(Epoch(1), 4), sasl("pw", None, false)),
        (2, Zxid::new(Epoch(1), 4), sasl("pw", None, false)),
        (3, Zxid::new(Epoch(1), 9), PeerSecurity::default()),
    ])
    .await;
    let d = c.decisions(3).await;
    for id in [1, 2, 3] {
        assert_eq!(d[&ServerId(id)].1, ServerId(3), "{d:?}");
    }
}

/// 3 requires SASL of the servers that link to it and authenticates its
/// own links; 1 and 2 have SASL off. 3's links are refused (a server
/// without SASL cannot answer an exchange), theirs to 3 are refused (they
/// do not authenticate): 1 and 2 elect without 3's better log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_requiring_sasl_cannot_link_with_servers_without_it() {
    let mut c = Cluster::new(&[1, 2, 3]).await;
    c.start(1, Zxid::new(Epoch(1), 4));
    c.start(2, Zxid::new(Epoch(1), 4));
    c.start_secured(3, Zxid::new(Epoch(1), 9), sasl("pw", Some("pw"), true));
    let d = c.decisions(2).await;
    assert_eq!(d[&ServerId(1)], (ServerState::Following, ServerId(2)));
    assert_eq!(d[&ServerId(2)], (ServerState::Leading, ServerId(2)));
}
