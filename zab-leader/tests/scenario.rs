//! Socket-free scenario: a `Leader` and hand-written learner sides go
//! through discovery → DIFF / TRUNC / SNAP sync → broadcast → pings and
//! liveness → step-down, following the shared leader ⇄ learner protocol.
//!
//! Each simulated learner keeps the state a real one would (accepted and
//! current epoch, logged txns, last committed) and checks every packet it
//! receives against the protocol rules, so a wrong packet order, a missed
//! or duplicated txn, or a commit of something it does not hold fails the
//! test.

use std::collections::BTreeMap;

use bytes::Bytes;
use prost::Message;
use zab_leader::{CommittedLog, ConnId, Leader, LeaderAction, LeaderConfig, LeaderStart, Phase};
use zab_wire::proto::{self, PacketType, QuorumPacket};
use zab_wire::{Epoch, QuorumVerifier, ServerId, SessionId, Zxid};

const TICK: u64 = 1_000;
const INIT_LIMIT: u32 = 10;
const SYNC_LIMIT: u32 = 5;

fn z(e: u64, c: u32) -> Zxid {
    Zxid::new(Epoch(e), c)
}

fn txn_bytes(zxid: Zxid) -> Bytes {
    Bytes::from(txn(zxid).encode_to_vec())
}

fn txn(zxid: Zxid) -> proto::Txn {
    proto::Txn {
        origin: 0,
        session_id: 0x1234,
        cxid: zxid.counter() as i32,
        zxid: zxid.0,
        time: 0,
        body: Some(proto::TxnBody {
            op: Some(proto::txn_body::Op::Create(proto::CreateTxn {
                path: format!("/n{}", zxid.0),
                data: None,
                acl: vec![],
                op: 1,
                ephemeral_owner: 0,
                parent_cversion: 0,
            })),
        }),
    }
}

fn pkt(kind: PacketType, zxid: Zxid, data: Bytes) -> QuorumPacket {
    QuorumPacket {
        r#type: kind as i32,
        zxid: zxid.0,
        data,
        authinfo: vec![],
    }
}

fn kind_of(p: &QuorumPacket) -> PacketType {
    PacketType::try_from(p.r#type).expect("known packet type")
}

/// A learner as the shared protocol describes it.
#[derive(Debug)]
struct Learner {
    sid: u64,
    observer: bool,
    accepted: u64,
    current: u64,
    /// Logged txns, in order.
    log: Vec<Zxid>,
    committed: Zxid,
    sync_mode: Option<PacketType>,
    snapshot: Option<Zxid>,
    snapshot_pending: bool,
    newleader: Option<Zxid>,
    up_to_date: bool,
    pings: Vec<Zxid>,
    /// Each PING's payload: the leader's tree digest, once it has one.
    ping_data: Vec<Bytes>,
    syncs: Vec<proto::ForwardedRequest>,
    revalidated: Vec<(i64, bool)>,
    /// The last LEADER_DURABLE heard.
    leader_durable: Option<Zxid>,
    /// A learner of an earlier zab: its LearnerInfo does not say it
    /// understands LEADER_DURABLE.
    earlier_zab: bool,
}

impl Learner {
    fn new(sid: u64, observer: bool, accepted: u64, current: u64, log: Vec<Zxid>) -> Self {
        let committed = log.last().copied().unwrap_or(Zxid::ZERO);
        Learner {
            sid,
            observer,
            accepted,
            current,
            log,
            committed,
            sync_mode: None,
            snapshot: None,
            snapshot_pending: false,
            newleader: None,
            up_to_date: false,
            pings: vec![],
            ping_data: vec![],
            syncs: vec![],
            revalidated: vec![],
            leader_durable: None,
            earlier_zab: false,
        }
    }

    fn last(&self) -> Zxid {
        self.log.last().copied().unwrap_or(Zxid::ZERO)
    }

    fn info(&self) -> QuorumPacket {
        let li = proto::LearnerInfo {
            sid: self.sid,
            protocol_version: 0x10000,
            config_version: 0,
            accepts_leader_durable: !self.earlier_zab,
        };
        let kind = if self.observer {
            PacketType::Observerinfo
        } else {
            PacketType::Followerinfo
        };
        pkt(kind, z(self.accepted, 0), Bytes::from(li.encode_to_vec()))
    }

    fn ack_epoch(&self, already: bool) -> QuorumPacket {
        let ack = proto::AckEpoch {
            state: Some(proto::StateSummary {
                current_epoch: self.current,
                last_zxid: self.last().0,
            }),
            already_accepted: already,
        };
        pkt(
            PacketType::Ackepoch,
            self.last(),
            Bytes::from(ack.encode_to_vec()),
        )
    }

    fn receive(&mut self, p: &QuorumPacket) {
        let zxid = Zxid(p.zxid);
        assert!(
            !self.snapshot_pending,
            "learner {}: packet {:?} before the snapshot body",
            self.sid,
            kind_of(p)
        );
        match kind_of(p) {
            PacketType::Leaderinfo => {
                assert!(zxid.epoch().0 >= self.accepted, "LEADERINFO below accepted");
                self.accepted = zxid.epoch().0;
            }
            PacketType::Diff => self.sync_mode = Some(PacketType::Diff),
            PacketType::Trunc => {
                self.sync_mode = Some(PacketType::Trunc);
                self.log.retain(|l| *l <= zxid);
                self.committed = self.committed.min(zxid);
            }
            PacketType::Snap => {
                self.sync_mode = Some(PacketType::Snap);
                self.snapshot = Some(zxid);
                self.snapshot_pending = true;
            }
            PacketType::Proposal => {
                assert!(self.sync_mode.is_some(), "PROPOSAL before the sync mode");
                assert!(
                    !self.observer || self.newleader.is_none(),
                    "observer got a broadcast PROPOSAL"
                );
                let last = self.last().max(self.snapshot.unwrap_or(Zxid::ZERO));
                assert!(
                    zxid > last,
                    "learner {}: PROPOSAL {zxid} not after {last}",
                    self.sid
                );
                assert_eq!(p.data, txn_bytes(zxid), "PROPOSAL carries its txn");
                self.log.push(zxid);
            }
            PacketType::Commit => {
                assert!(
                    !self.observer || self.newleader.is_none(),
                    "observer got a broadcast COMMIT"
                );
                assert!(
                    zxid > self.committed,
                    "learner {}: COMMIT {zxid} not increasing",
                    self.sid
                );
                assert!(
                    self.log.contains(&zxid),
                    "learner {}: COMMIT {zxid} of a txn it lacks",
                    self.sid
                );
                self.committed = zxid;
            }
            PacketType::Inform => {
                assert!(self.observer, "INFORM to a follower");
                assert!(zxid > self.last());
                assert_eq!(p.data, txn_bytes(zxid));
                self.log.push(zxid);
                self.committed = zxid;
            }
            PacketType::Newleader => {
                assert!(self.sync_mode.is_some(), "NEWLEADER before the sync mode");
                self.current = zxid.epoch().0;
                self.newleader = Some(zxid);
            }
            PacketType::Uptodate => {
                assert!(self.newleader.is_some(), "UPTODATE before NEWLEADER");
                self.up_to_date = true;
            }
            PacketType::Ping => {
                self.pings.push(zxid);
                self.ping_data.push(p.data.clone());
            }
            PacketType::LeaderDurable => {
                assert!(!self.observer, "LEADER_DURABLE to an observer");
                assert!(!self.earlier_zab, "LEADER_DURABLE to an earlier zab");
                assert!(
                    self.leader_durable.is_none_or(|d| zxid > d),
                    "learner {}: LEADER_DURABLE {zxid} not increasing",
                    self.sid
                );
                self.leader_durable = Some(zxid);
            }
            PacketType::Sync => {
                self.syncs
                    .push(proto::ForwardedRequest::decode(p.data.clone()).unwrap());
            }
            PacketType::Revalidate => {
                let r = proto::RevalidateReply::decode(p.data.clone()).unwrap();
                self.revalidated.push((r.session_id, r.valid));
            }
            other => panic!("learner {}: unexpected {other:?}", self.sid),
        }
    }
}

/// The leader plus learners, delivering the leader's actions.
struct Net {
    leader: Leader,
    learners: BTreeMap<ConnId, Learner>,
    /// Every non-Send action, in order.
    events: Vec<LeaderAction>,
    closed: Vec<(ConnId, String)>,
    now: u64,
}

impl Net {
    fn deliver(&mut self, actions: Vec<LeaderAction>) {
        for a in actions {
            match a {
                LeaderAction::Send { conn, packet } => {
                    if let Some(l) = self.learners.get_mut(&conn) {
                        l.receive(&packet);
                    }
                }
                LeaderAction::SendSnapshot { conn, zxid, .. } => {
                    let l = self.learners.get_mut(&conn).unwrap();
                    assert!(l.snapshot_pending && l.snapshot == Some(zxid));
                    // The snapshot holds everything the leader applied.
                    l.log = LEADER_HISTORY.iter().map(|c| z(1, *c)).collect();
                    l.committed = l.last();
                    l.snapshot_pending = false;
                }
                LeaderAction::CloseLearner { conn, reason } => {
                    self.learners.remove(&conn);
                    self.closed.push((conn, reason));
                }
                other => self.events.push(other),
            }
        }
    }

    fn connect(&mut self, conn: u64, learner: Learner) {
        let conn = ConnId(conn);
        self.learners.insert(conn, learner);
        let a = self.leader.on_learner_connected(conn);
        self.deliver(a);
    }

    fn send(&mut self, conn: u64, p: QuorumPacket) {
        let a = self.leader.on_packet(ConnId(conn), p);
        self.deliver(a);
    }

    fn l(&self, conn: u64) -> &Learner {
        &self.learners[&ConnId(conn)]
    }

    fn tick(&mut self) {
        self.now += TICK / 2;
        let a = self.leader.on_tick(self.now);
        self.deliver(a);
    }

    fn take_events(&mut self) -> Vec<LeaderAction> {
        std::mem::take(&mut self.events)
    }
}

/// The leader has logged, committed and applied (1,1)..(1,10).
const LEADER_HISTORY: [u32; 10] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

fn start(voters: &[u64], observers: &[u64]) -> (Net, Vec<LeaderAction>) {
    let history: Vec<(Zxid, Bytes)> = LEADER_HISTORY
        .iter()
        .map(|c| (z(1, *c), txn_bytes(z(1, *c))))
        .collect();
    let qv = QuorumVerifier::new(
        voters.iter().copied().map(ServerId),
        observers.iter().copied().map(ServerId),
    );
    let cfg = LeaderConfig::new(ServerId(1), qv, TICK, INIT_LIMIT, SYNC_LIMIT);
    let start = LeaderStart {
        accepted_epoch: Epoch(1),
        current_epoch: Epoch(1),
        last_processed: z(1, 10),
        committed: CommittedLog::from_entries(500, history.clone()),
        // The log was purged below (1,3): an empty learner cannot DIFF.
        txn_log: Box::new(history[2..].to_vec()),
        snapshot_size: 1 << 20,
    };
    let (leader, actions) = Leader::start(cfg, start, 0);
    (
        Net {
            leader,
            learners: BTreeMap::new(),
            events: vec![],
            closed: vec![],
            now: 0,
        },
        actions,
    )
}

#[test]
fn discovery_sync_broadcast_liveness_and_step_down() {
    // Five voters (quorum 3), one observer.
    let (mut net, first) = start(&[1, 2, 3, 4, 5], &[9]);
    assert!(
        first.is_empty(),
        "the leader alone fixes nothing: {first:?}"
    );

    // ---------------------------------------------------------- discovery
    net.connect(
        2,
        Learner::new(2, false, 1, 1, (1..=10).map(|c| z(1, c)).collect()),
    );
    net.send(2, net.l(2).info());
    assert_eq!(net.l(2).accepted, 1, "no LEADERINFO before a quorum");
    assert!(net.take_events().is_empty());
    assert!(net.leader.is_gathering_quorum(), "2 of 5 registered");

    net.connect(
        3,
        Learner::new(3, false, 1, 1, (1..=7).map(|c| z(1, c)).collect()),
    );
    // Learner 3 accepted epoch 4 once (a failed attempt): the new epoch is
    // above every accepted one.
    net.learners.get_mut(&ConnId(3)).unwrap().accepted = 4;
    let info = net.l(3).info();
    let a = net.leader.on_packet(ConnId(3), info);
    // acceptedEpoch is persisted before any LEADERINFO reveals it.
    assert_eq!(a[0], LeaderAction::PersistAcceptedEpoch(Epoch(5)));
    assert!(a[1..].iter().all(|x| matches!(x, LeaderAction::Send { packet, .. } if kind_of(packet) == PacketType::Leaderinfo)));
    assert_eq!(a.len(), 3);
    net.deliver(a);
    assert_eq!(net.l(2).accepted, 5);
    assert_eq!(net.l(3).accepted, 5);
    assert_eq!(net.leader.epoch(), Some(Epoch(5)));
    assert!(!net.leader.is_gathering_quorum(), "3 of 5 registered");

    // Learner 4 claims a history newer than the leader's: while the epoch
    // quorum is open it is refused (F.3 step 4).
    net.connect(
        4,
        Learner::new(4, false, 1, 1, (1..=12).map(|c| z(1, c)).collect()),
    );
    net.send(4, net.l(4).info());
    assert_eq!(net.l(4).accepted, 5);
    net.send(4, net.l(4).ack_epoch(false));
    assert!(!net.learners.contains_key(&ConnId(4)));
    assert!(net.closed.last().unwrap().1.contains("ahead of the leader"));

    net.send(2, net.l(2).ack_epoch(false));
    assert!(
        net.l(2).sync_mode.is_none(),
        "no sync before the epoch quorum"
    );
    let ack3 = net.l(3).ack_epoch(false);
    let a = net.leader.on_packet(ConnId(3), ack3);
    assert_eq!(a[0], LeaderAction::PersistCurrentEpoch(Epoch(5)));
    net.deliver(a);
    assert_eq!(
        net.take_events(),
        vec![
            LeaderAction::PersistAcceptedEpoch(Epoch(5)),
            LeaderAction::PersistCurrentEpoch(Epoch(5))
        ]
    );

    // Learner 2 was in sync: empty DIFF. Learner 3 gets (1,8)..(1,10).
    assert_eq!(net.l(2).sync_mode, Some(PacketType::Diff));
    assert_eq!(net.l(2).log.len(), 10);
    assert_eq!(net.l(3).sync_mode, Some(PacketType::Diff));
    assert_eq!(net.l(3).log, (1..=10).map(|c| z(1, c)).collect::<Vec<_>>());
    assert_eq!(net.l(3).committed, z(1, 10));
    assert_eq!(net.l(3).newleader, Some(z(5, 0)));
    assert_eq!(net.l(3).current, 5);

    // ------------------------------------------------- NEWLEADER quorum
    net.send(2, pkt(PacketType::Ack, z(5, 0), Bytes::new()));
    assert!(!net.leader.is_established(), "2 of 5 acked NEWLEADER");
    assert!(!net.l(2).up_to_date);
    net.send(3, pkt(PacketType::Ack, z(5, 0), Bytes::new()));
    assert!(net.leader.is_established());
    assert_eq!(
        net.take_events(),
        vec![LeaderAction::Established { epoch: Epoch(5) }]
    );
    assert!(net.l(2).up_to_date && net.l(3).up_to_date);
    // The learners' own counter-0 ACK after UPTODATE is ignored.
    net.send(2, pkt(PacketType::Ack, z(5, 0), Bytes::new()));
    net.send(3, pkt(PacketType::Ack, z(5, 0), Bytes::new()));
    assert!(net.take_events().is_empty());

    // Learner 4 comes back after the quorum: no longer checked, TRUNC to
    // the leader's history, UPTODATE right after its NEWLEADER ack.
    net.connect(
        40,
        Learner::new(4, false, 5, 1, (1..=12).map(|c| z(1, c)).collect()),
    );
    net.send(40, net.l(40).info());
    net.send(40, net.l(40).ack_epoch(true));
    assert_eq!(net.l(40).sync_mode, Some(PacketType::Trunc));
    assert_eq!(net.l(40).log, (1..=10).map(|c| z(1, c)).collect::<Vec<_>>());
    net.send(40, pkt(PacketType::Ack, z(5, 0), Bytes::new()));
    assert!(net.l(40).up_to_date);

    // Learner 5 is empty and the log was purged: SNAP.
    net.connect(5, Learner::new(5, false, 0, 0, vec![]));
    net.send(5, net.l(5).info());
    net.send(5, net.l(5).ack_epoch(false));
    assert_eq!(net.l(5).sync_mode, Some(PacketType::Snap));
    // SNAP names lastProcessed, epoch << 32 once established.
    assert_eq!(net.l(5).snapshot, Some(z(5, 0)));
    assert_eq!(net.l(5).log.len(), 10);
    net.send(5, pkt(PacketType::Ack, z(5, 0), Bytes::new()));
    assert!(net.l(5).up_to_date);

    // ---------------------------------------------------------- broadcast
    for c in 1..=3 {
        let a = net.leader.propose(txn(z(5, c))).unwrap();
        assert_eq!(a.len(), 4, "a PROPOSAL to each of the 4 followers");
        net.deliver(a);
    }
    assert!(
        net.leader.propose(txn(z(5, 5))).is_err(),
        "zxids must not skip"
    );
    // Leader durable through 3, learner 2 through 3: 2 of 5 — a minority
    // never commits.
    let a = net.leader.on_local_durable(z(5, 3));
    assert!(a.is_empty());
    net.send(2, pkt(PacketType::Ack, z(5, 3), Bytes::new()));
    assert!(net.take_events().is_empty());
    assert_eq!(net.leader.last_committed(), z(5, 0));

    // The observer joins now: SNAP of what the leader applied (1,10); the
    // outstanding proposals are not its business (it gets INFORM later).
    net.connect(9, Learner::new(9, true, 0, 0, vec![]));
    net.send(9, net.l(9).info());
    net.send(9, net.l(9).ack_epoch(false));
    assert_eq!(net.l(9).sync_mode, Some(PacketType::Snap));
    net.send(9, pkt(PacketType::Ack, z(5, 0), Bytes::new()));
    assert!(net.l(9).up_to_date);
    // Its acks never count.
    net.send(9, pkt(PacketType::Ack, z(5, 3), Bytes::new()));
    assert!(net.take_events().is_empty());

    // A sync forwarded now waits for (5,3), the last outstanding proposal.
    let sync = proto::ForwardedRequest {
        session_id: 0x77,
        cxid: 9,
        op: 9,
        body: Bytes::from_static(b"\0\0\0\x01/"),
        origin: 0,
    };
    let req = pkt(
        PacketType::Request,
        Zxid(-1),
        Bytes::from(sync.encode_to_vec()),
    );
    net.send(3, req);
    let ev = net.take_events();
    let [LeaderAction::ForwardedRequest {
        conn,
        from,
        request,
        ..
    }] = ev.as_slice()
    else {
        panic!("{ev:?}");
    };
    assert_eq!((*conn, *from), (ConnId(3), ServerId(3)));
    assert_eq!(request, &sync);
    let a = net.leader.sync_request(*conn, request.clone());
    assert!(a.is_empty(), "outstanding proposals: the sync waits");

    // Learner 3 acks (5,2): leader + 2 + 3 hold 1 and 2 → they commit, in
    // order; followers get one COMMIT(5,2), the observer INFORMs.
    net.send(3, pkt(PacketType::Ack, z(5, 2), Bytes::new()));
    assert_eq!(
        net.take_events(),
        vec![
            LeaderAction::Commit { zxid: z(5, 1) },
            LeaderAction::Commit { zxid: z(5, 2) }
        ]
    );
    for conn in [2, 3, 40, 5] {
        assert_eq!(net.l(conn).committed, z(5, 2), "learner on {conn}");
    }
    assert_eq!(net.l(9).log.last(), Some(&z(5, 2)));
    assert!(net.l(3).syncs.is_empty());
    // Learner 40 acks 3: (5,3) commits and the sync is answered after it.
    net.send(40, pkt(PacketType::Ack, z(5, 3), Bytes::new()));
    assert_eq!(
        net.take_events(),
        vec![LeaderAction::Commit { zxid: z(5, 3) }]
    );
    assert_eq!(net.l(3).committed, z(5, 3));
    assert_eq!(net.l(3).syncs, vec![sync.clone()]);
    // With nothing outstanding, a sync is answered at once.
    let a = net.leader.sync_request(ConnId(2), sync.clone());
    net.deliver(a);
    assert_eq!(net.l(2).syncs.len(), 1);

    // The tree applied them: a learner syncing now is in the window.
    net.leader.on_applied(z(5, 3));
    assert_eq!(net.leader.last_processed(), z(5, 3));

    // ------------------------------------------------------ ping, liveness
    net.send(3, pkt(PacketType::Ack, z(5, 3), Bytes::new()));
    // Learners 2, 3, 40 answer pings (2 with session touches); learner 5
    // and the observer stay silent.
    let touch = proto::SessionTouches {
        sessions: vec![proto::SessionEntry {
            session_id: 0x77,
            timeout: 30_000,
        }],
    };
    let mut step_down = None;
    for round in 0..(2 * SYNC_LIMIT as usize + 4) {
        if round == 2 {
            // The server tells the leader its tree's digest; PINGs carry it.
            net.leader.note_digest(z(5, 0), -77);
        }
        net.tick();
        for conn in [2u64, 3, 40] {
            if let Some(l) = net.learners.get(&ConnId(conn)) {
                if let Some(last) = l.pings.last().copied() {
                    let data = if conn == 2 {
                        Bytes::from(touch.encode_to_vec())
                    } else {
                        Bytes::new()
                    };
                    net.send(conn, pkt(PacketType::Ping, last, data));
                }
            }
        }
        for e in net.take_events() {
            match e {
                LeaderAction::TouchSessions { from, sessions } => {
                    assert_eq!(from, ServerId(2));
                    assert_eq!(sessions, vec![(SessionId(0x77), 30_000)]);
                }
                LeaderAction::StepDown { reason } => step_down = Some(reason),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(step_down.is_none(), "three of five voters alive");
    assert_eq!(
        net.l(2).pings.last(),
        Some(&z(5, 3)),
        "PING carries lastProposed"
    );
    let data = &net.l(2).ping_data;
    assert!(data[0].is_empty(), "no digest noted yet: an empty PING");
    let digest = proto::TreeDigest::decode(data.last().unwrap().clone()).unwrap();
    assert_eq!((Zxid(digest.zxid), digest.digest), (z(5, 0), -77));
    let closed: Vec<ConnId> = net.closed.iter().map(|(c, _)| *c).collect();
    assert!(
        closed.contains(&ConnId(5)) && closed.contains(&ConnId(9)),
        "{closed:?}"
    );
    assert!(net.learners.contains_key(&ConnId(2)));

    // A proposal learner 40 never acks: dropped after syncLimit at ping time.
    let a = net.leader.propose(txn(z(5, 4))).unwrap();
    net.deliver(a);
    let a = net.leader.on_local_durable(z(5, 4));
    net.deliver(a);
    net.send(2, pkt(PacketType::Ack, z(5, 4), Bytes::new()));
    net.send(3, pkt(PacketType::Ack, z(5, 4), Bytes::new()));
    assert_eq!(
        net.take_events(),
        vec![LeaderAction::Commit { zxid: z(5, 4) }]
    );
    let mut dropped_at = None;
    for i in 0..(2 * SYNC_LIMIT as usize + 2) {
        net.tick();
        for conn in [2u64, 3, 40] {
            if let Some(last) = net
                .learners
                .get(&ConnId(conn))
                .and_then(|l| l.pings.last().copied())
            {
                net.send(conn, pkt(PacketType::Ping, last, Bytes::new()));
            }
        }
        net.take_events();
        if dropped_at.is_none() && !net.learners.contains_key(&ConnId(40)) {
            dropped_at = Some(i);
        }
    }
    let (_, reason) = net.closed.iter().find(|(c, _)| *c == ConnId(40)).unwrap();
    assert!(reason.contains("transaction timeout"), "{reason}");
    assert!(dropped_at.is_some());

    // ---------------------------------------------------------- step-down
    // Now only 2 and 3 remain (3 of 5 with the leader). Learner 3 goes
    // silent: within syncLimit it is no longer synced and the leader steps
    // down ("Not sufficient followers synced").
    let mut reason = None;
    for _ in 0..(2 * SYNC_LIMIT as usize + 4) {
        net.tick();
        if let Some(last) = net
            .learners
            .get(&ConnId(2))
            .and_then(|l| l.pings.last().copied())
        {
            net.send(2, pkt(PacketType::Ping, last, Bytes::new()));
        }
        for e in net.take_events() {
            if let LeaderAction::StepDown { reason: r } = e {
                reason = Some(r);
            }
        }
        if reason.is_some() {
            break;
        }
    }
    let reason = reason.expect("the leader steps down");
    assert!(
        reason.contains("Not sufficient followers synced"),
        "{reason}"
    );
    assert_eq!(net.leader.phase(), Phase::SteppedDown);
    assert!(net.leader.propose(txn(z(5, 5))).is_err());
    assert!(net.leader.on_tick(net.now + 10_000).is_empty());
}

#[test]
fn a_leader_that_cannot_gather_a_quorum_gives_up_after_init_limit() {
    let (mut net, _) = start(&[1, 2, 3], &[]);
    for _ in 0..(2 * INIT_LIMIT as usize - 1) {
        net.tick();
    }
    assert!(net.take_events().is_empty());
    net.tick();
    assert_eq!(
        net.take_events(),
        vec![LeaderAction::StepDown {
            reason: "Timeout while waiting for epoch from quorum".into()
        }]
    );
}

#[test]
fn a_single_voter_is_established_at_once_and_observers_join_later() {
    let (mut net, first) = start(&[1], &[9]);
    assert_eq!(
        first,
        vec![
            LeaderAction::PersistAcceptedEpoch(Epoch(2)),
            LeaderAction::PersistCurrentEpoch(Epoch(2)),
            LeaderAction::Established { epoch: Epoch(2) },
        ]
    );
    // Commits need only the leader's own durable ack.
    let a = net.leader.propose(txn(z(2, 1))).unwrap();
    net.deliver(a);
    let a = net.leader.on_local_durable(z(2, 1));
    assert_eq!(a, vec![LeaderAction::Commit { zxid: z(2, 1) }]);
    // Committed, not yet applied: an observer syncing now gets it after
    // the SNAP of what was applied (startForwarding's toBeApplied).
    net.connect(9, Learner::new(9, true, 0, 0, vec![]));
    net.send(9, net.l(9).info());
    net.send(9, net.l(9).ack_epoch(false));
    let l = net.l(9);
    assert_eq!(
        l.snapshot,
        Some(z(2, 0)),
        "SNAP names lastProcessed = epoch << 32"
    );
    assert_eq!(l.log.last(), Some(&z(2, 1)));
    assert_eq!(l.committed, z(2, 1));
}

/// A SNAP learner's initLimit for its NEWLEADER ack counts from when the
/// caller reports the snapshot written (`on_snapshot_sent`, as of the last
/// tick), not from when the sync was queued: ZooKeeper's handler reads the
/// ack only once `serializeSnapshot` has returned.
#[test]
fn a_learner_sent_a_long_snapshot_has_init_limit_after_it_to_ack() {
    let (mut net, _) = start(&[1], &[9]);
    net.connect(9, Learner::new(9, true, 0, 0, vec![]));
    net.send(9, net.l(9).info());
    net.send(9, net.l(9).ack_epoch(false));
    assert_eq!(net.l(9).sync_mode, Some(PacketType::Snap));
    // Streaming takes 8 of the 10 ticks of initLimit.
    while net.now < 8 * TICK {
        net.tick();
    }
    net.leader.on_snapshot_sent(ConnId(9));
    while net.now < 8 * TICK + u64::from(INIT_LIMIT) * TICK {
        net.tick();
    }
    assert!(
        net.closed.is_empty(),
        "closed within initLimit of the snapshot: {:?}",
        net.closed
    );
    net.tick();
    assert_eq!(
        net.closed.len(),
        1,
        "silent past initLimit after the snapshot"
    );
    assert_eq!(net.closed[0].0, ConnId(9));
}

/// A zxid whose counter would roll over is not proposed: the leader steps
/// down so that the next one starts a new epoch (reference F.1,
/// ZooKeeper's `Leader.propose` throwing `XidRolloverException`), and the
/// server, seeing it no longer established, does not log the txn either.
#[test]
fn a_rolled_over_zxid_counter_makes_the_leader_step_down_instead_of_proposing() {
    let (mut net, _) = start(&[1], &[]);
    assert!(net.leader.is_established());
    let a = net.leader.propose(txn(z(2, u32::MAX))).unwrap();
    assert!(
        matches!(&a[..], [LeaderAction::StepDown { reason }] if reason.contains("rolled over")),
        "{a:?}"
    );
    assert!(!net.leader.is_established());
    assert!(net.leader.propose(txn(z(2, 1))).is_err());
}

/// zab's LEADER_DURABLE: with three voters each follower forms a quorum
/// with the leader, so each hears when the leader's log holds a proposal
/// (it then commits what its own log holds too); observers never do, and
/// with five voters nobody does (the scenario above: the leader's durable
/// report sends nothing).
#[test]
fn followers_that_form_a_quorum_with_the_leader_hear_its_durability() {
    let (mut net, _) = start(&[1, 2, 3], &[9]);
    for (conn, sid, observer) in [(2, 2, false), (3, 3, false), (9, 9, true)] {
        net.connect(
            conn,
            Learner::new(sid, observer, 1, 1, (1..=10).map(|c| z(1, c)).collect()),
        );
        net.send(conn, net.l(conn).info());
        net.send(conn, net.l(conn).ack_epoch(false));
        net.send(conn, pkt(PacketType::Ack, z(2, 0), Bytes::new()));
        assert!(net.l(conn).up_to_date);
    }
    assert!(net.leader.is_established());
    net.take_events();
    for c in 1..=2 {
        let a = net.leader.propose(txn(z(2, c))).unwrap();
        net.deliver(a);
    }
    let a = net.leader.on_local_durable(z(2, 2));
    let told: Vec<ConnId> = a
        .iter()
        .map(|a| match a {
            LeaderAction::Send { conn, packet } => {
                assert_eq!(kind_of(packet), PacketType::LeaderDurable);
                assert_eq!(Zxid(packet.zxid), z(2, 2));
                *conn
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(told, [ConnId(2), ConnId(3)]);
    net.deliver(a);
    // The leader's own commit rule is unchanged: an ACK commits, and the
    // COMMIT still goes out.
    net.send(3, pkt(PacketType::Ack, z(2, 2), Bytes::new()));
    assert_eq!(
        net.take_events(),
        vec![
            LeaderAction::Commit { zxid: z(2, 1) },
            LeaderAction::Commit { zxid: z(2, 2) }
        ]
    );
    assert_eq!(net.l(2).committed, z(2, 2));
    assert_eq!(net.l(9).committed, z(2, 2), "INFORMed");
}

/// A follower of an earlier zab does not say in its LearnerInfo that it
/// understands LEADER_DURABLE, and hears none (it would log each as a
/// packet of unknown type, as ZooKeeper's learners do); it commits on the
/// COMMIT as before, and the other follower is still told.
#[test]
fn a_follower_of_an_earlier_zab_hears_no_leader_durable() {
    let (mut net, _) = start(&[1, 2, 3], &[]);
    for (conn, earlier) in [(2, true), (3, false)] {
        let mut l = Learner::new(conn, false, 1, 1, (1..=10).map(|c| z(1, c)).collect());
        l.earlier_zab = earlier;
        net.connect(conn, l);
        net.send(conn, net.l(conn).info());
        net.send(conn, net.l(conn).ack_epoch(false));
        net.send(conn, pkt(PacketType::Ack, z(2, 0), Bytes::new()));
        assert!(net.l(conn).up_to_date);
    }
    net.take_events();
    let a = net.leader.propose(txn(z(2, 1))).unwrap();
    net.deliver(a);
    let a = net.leader.on_local_durable(z(2, 1));
    let told: Vec<ConnId> = a
        .iter()
        .filter_map(|a| match a {
            LeaderAction::Send { conn, packet } if kind_of(packet) == PacketType::LeaderDurable => {
                Some(*conn)
            }
            _ => None,
        })
        .collect();
    assert_eq!(told, [ConnId(3)]);
    net.deliver(a);
    net.send(2, pkt(PacketType::Ack, z(2, 1), Bytes::new()));
    assert_eq!(
        net.take_events(),
        vec![LeaderAction::Commit { zxid: z(2, 1) }]
    );
    assert_eq!(net.l(2).committed, z(2, 1), "COMMIT still sent");
    assert_eq!(net.l(2).leader_durable, None);
}

/// A follower told of the leader's durability may have committed on its
/// own what both hold. When it reconnects before the leader heard its ACKs,
/// the leader counts them from its last zxid (up to what it told it) and
/// does not truncate those txns, as ZooKeeper's rule 3 (TRUNC to the
/// committed log) would: it commits them and sends DIFF, or truncates only
/// what lies beyond.
#[test]
fn a_reconnecting_follower_keeps_what_it_may_have_committed_on_its_own() {
    let (mut net, _) = start(&[1, 2, 3], &[]);
    let history: Vec<Zxid> = (1..=10).map(|c| z(1, c)).collect();
    for conn in [2, 3] {
        net.connect(conn, Learner::new(conn, false, 1, 1, history.clone()));
        net.send(conn, net.l(conn).info());
        net.send(conn, net.l(conn).ack_epoch(false));
        net.send(conn, pkt(PacketType::Ack, z(2, 0), Bytes::new()));
    }
    net.take_events();
    for c in 1..=3 {
        let a = net.leader.propose(txn(z(2, c))).unwrap();
        net.deliver(a);
    }
    // Durable here through (2,2), and both followers told so; no ACK
    // arrives, so nothing is committed.
    let a = net.leader.on_local_durable(z(2, 2));
    net.deliver(a);
    assert!(net.take_events().is_empty());
    assert_eq!(net.l(2).leader_durable, Some(z(2, 2)));

    // Server 2 reconnects having logged through (2,2): everything it holds
    // is committed now, and it keeps it (DIFF), then gets (2,3).
    let mut log = history.clone();
    log.extend([z(2, 1), z(2, 2)]);
    net.connect(20, Learner::new(2, false, 2, 2, log.clone()));
    net.send(20, net.l(20).info());
    net.send(20, net.l(20).ack_epoch(true));
    assert_eq!(
        net.take_events(),
        vec![
            LeaderAction::Commit { zxid: z(2, 1) },
            LeaderAction::Commit { zxid: z(2, 2) }
        ]
    );
    assert_eq!(net.l(20).sync_mode, Some(PacketType::Diff));
    assert_eq!(net.l(20).log.last(), Some(&z(2, 3)), "(2,3) forwarded");
    assert_eq!(net.leader.last_committed(), z(2, 2));

    // Server 3 reconnects having logged through (2,3), past what it was
    // told: (2,3) goes (TRUNC to (2,2)) and comes again as a proposal.
    log.push(z(2, 3));
    net.connect(30, Learner::new(3, false, 2, 2, log));
    net.send(30, net.l(30).info());
    net.send(30, net.l(30).ack_epoch(true));
    assert!(net.take_events().is_empty(), "(2,1), (2,2) were committed");
    assert_eq!(net.l(30).sync_mode, Some(PacketType::Trunc));
    assert_eq!(net.l(30).log.last(), Some(&z(2, 3)));
    assert_eq!(
        net.l(30).log.iter().filter(|&&x| x == z(2, 3)).count(),
        1,
        "truncated, then sent again"
    );
}

#[test]
fn malformed_and_out_of_order_packets_close_the_learner() {
    let (mut net, _) = start(&[1, 2, 3], &[]);
    net.connect(2, Learner::new(2, false, 1, 1, vec![]));
    net.send(2, pkt(PacketType::Ack, z(1, 0), Bytes::new()));
    assert!(net.learners.is_empty());
    net.connect(3, Learner::new(3, false, 1, 1, vec![]));
    net.send(
        3,
        pkt(
            PacketType::Followerinfo,
            z(1, 0),
            Bytes::from_static(&[0x0a, 0xff]),
        ),
    );
    assert!(net.learners.is_empty());
    assert_eq!(net.closed.len(), 2);
    assert!(net.closed[1].1.contains("malformed"), "{:?}", net.closed);
}

#[test]
fn revalidate_round_trip_and_a_reconnecting_server_replaces_its_old_stream() {
    let (mut net, _) = start(&[1, 2, 3], &[]);
    net.connect(
        2,
        Learner::new(2, false, 1, 1, (1..=10).map(|c| z(1, c)).collect()),
    );
    net.send(2, net.l(2).info());
    net.send(2, net.l(2).ack_epoch(false));
    net.send(2, pkt(PacketType::Ack, z(2, 0), Bytes::new()));
    assert!(net.leader.is_established() && net.l(2).up_to_date);
    net.take_events();

    let r = proto::Revalidate {
        session_id: 0x0200_0000_0000_0001,
        timeout: 10_000,
    };
    net.send(
        2,
        pkt(
            PacketType::Revalidate,
            Zxid(-1),
            Bytes::from(r.encode_to_vec()),
        ),
    );
    assert_eq!(
        net.take_events(),
        vec![LeaderAction::Revalidate {
            conn: ConnId(2),
            from: ServerId(2),
            session_id: SessionId(r.session_id),
            timeout: 10_000
        }]
    );
    let a = net
        .leader
        .revalidate_reply(ConnId(2), SessionId(r.session_id), true);
    net.deliver(a);
    assert_eq!(net.l(2).revalidated, vec![(r.session_id, true)]);

    // Server 2 reconnects on a new stream: the old one is closed, and its
    // acks no longer count until it acks again on the new one.
    net.connect(
        20,
        Learner::new(2, false, 2, 2, (1..=10).map(|c| z(1, c)).collect()),
    );
    net.send(20, net.l(20).info());
    assert!(!net.learners.contains_key(&ConnId(2)));
    assert!(net
        .closed
        .iter()
        .any(|(c, why)| *c == ConnId(2) && why.contains("reconnected")));
    net.send(20, net.l(20).ack_epoch(true));
    net.send(20, pkt(PacketType::Ack, z(2, 0), Bytes::new()));
    assert!(net.l(20).up_to_date);
    let a = net.leader.propose(txn(z(2, 1))).unwrap();
    assert_eq!(a.len(), 1, "one PROPOSAL, to the new stream only");
    net.deliver(a);
    // No commit on the leader's ack alone; LEADER_DURABLE to the new stream.
    let a = net.leader.on_local_durable(z(2, 1));
    assert_eq!(a.len(), 1, "{a:?}");
    net.deliver(a);
    assert_eq!(net.l(20).leader_durable, Some(z(2, 1)));
    assert!(net.take_events().is_empty());
    net.send(20, pkt(PacketType::Ack, z(2, 1), Bytes::new()));
    assert_eq!(
        net.take_events(),
        vec![LeaderAction::Commit { zxid: z(2, 1) }]
    );
    assert_eq!(net.l(20).committed, z(2, 1));
}
