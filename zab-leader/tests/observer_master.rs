//! Socket-free: a follower's [`ObserverMaster`] and zab-learner's real
//! observer core, wired back to back. The observer registers, syncs (DIFF,
//! TRUNC or SNAP), follows the follower's commits as INFORM, and has its
//! syncs, revalidations and session touches relayed; the learner core's own
//! protocol checks fail the test on any wrong packet or order.

use std::collections::VecDeque;

use bytes::Bytes;
use prost::Message;
use zab_leader::{CommittedLog, ConnId, LeaderConfig, ObserverMaster, ObserverMasterAction};
use zab_learner::{Learner, LearnerAction, LearnerConfig, Role, SyncMode, Timing};
use zab_wire::jute::op;
use zab_wire::proto::{self, PacketType, QuorumPacket};
use zab_wire::{Epoch, QuorumVerifier, ServerId, SessionId, Zxid};

const TICK: u64 = 100;
const INIT_LIMIT: u32 = 10;
const SYNC_LIMIT: u32 = 5;
const EPOCH: Epoch = Epoch(3);
const FOLLOWER: ServerId = ServerId(2);

fn z(e: u64, c: u32) -> Zxid {
    Zxid::new(Epoch(e), c)
}

fn txn_bytes(zxid: Zxid) -> Bytes {
    let txn = proto::Txn {
        session_id: 0x1234,
        cxid: zxid.counter() as i32,
        zxid: zxid.0,
        body: Some(proto::TxnBody {
            op: Some(proto::txn_body::Op::Create(proto::CreateTxn {
                path: format!("/n{}", zxid.0),
                op: 1,
                ..Default::default()
            })),
        }),
        ..Default::default()
    };
    Bytes::from(txn.encode_to_vec())
}

/// Servers 1–3 vote, 7 and 8 observe; this follower is 2.
fn config() -> LeaderConfig {
    let voters = [ServerId(1), ServerId(2), ServerId(3)];
    let verifier = QuorumVerifier::new(voters, [ServerId(7), ServerId(8)]);
    LeaderConfig::new(FOLLOWER, verifier, TICK, INIT_LIMIT, SYNC_LIMIT)
}

/// A follower that applied `applied` (all of epoch 3's first txns), its
/// committed window holding the last `window` of them, its log all.
fn master(applied: u32, window: usize) -> ObserverMaster {
    let txns: Vec<(Zxid, Bytes)> = (1..=applied)
        .map(|c| (z(3, c), txn_bytes(z(3, c))))
        .collect();
    let committed = CommittedLog::from_entries(
        window,
        txns[txns.len().saturating_sub(window)..].iter().cloned(),
    );
    ObserverMaster::new(
        config(),
        EPOCH,
        z(3, applied),
        committed,
        Box::new(txns),
        1 << 20,
        0,
    )
}

/// zab-learner's observer core and what it did.
struct Observer {
    learner: Learner,
    now: u64,
    logged: Vec<Zxid>,
    applied: Vec<Zxid>,
    truncated: Option<Zxid>,
    snapshot: Option<(Zxid, Bytes)>,
    serving: bool,
    syncs_done: Vec<proto::ForwardedRequest>,
    revalidated: Vec<(SessionId, bool)>,
    /// Packets for the master not yet delivered.
    outbox: Vec<QuorumPacket>,
}

impl Observer {
    fn new(sid: u64, accepted: Epoch, last_logged: Zxid) -> Observer {
        let mut config = LearnerConfig::new(ServerId(sid), Role::Observer);
        config.timing = Timing {
            tick_ms: TICK,
            init_limit: INIT_LIMIT,
            sync_limit: SYNC_LIMIT,
        };
        let (learner, actions) = Learner::new(config, accepted, accepted, last_logged, 0);
        let mut o = Observer {
            learner,
            now: 0,
            logged: Vec::new(),
            applied: Vec::new(),
            truncated: None,
            snapshot: None,
            serving: false,
            syncs_done: Vec::new(),
            revalidated: Vec::new(),
            outbox: Vec::new(),
        };
        o.execute(actions);
        o
    }

    fn execute(&mut self, actions: Vec<LearnerAction>) {
        let mut queue = VecDeque::from(actions);
        while let Some(a) = queue.pop_front() {
            match a {
                LearnerAction::Send(p) => self.outbox.push(p),
                LearnerAction::PersistAcceptedEpoch(_) | LearnerAction::PersistCurrentEpoch(_) => {}
                LearnerAction::TruncateLog { after } => {
                    self.logged.retain(|z| *z <= after);
                    self.truncated = Some(after);
                }
                LearnerAction::InstallSnapshot { zxid, data } => {
                    self.snapshot = Some((zxid, data.to_bytes()));
                }
                LearnerAction::AppendLog(entries) => {
                    let last = entries.last().expect("a non-empty append").0;
                    self.logged.extend(entries.iter().map(|(z, _)| *z));
                    queue.extend(self.learner.on_durable(self.now, last));
                }
                LearnerAction::Apply(txns) => {
                    self.applied.extend(txns.iter().map(|t| Zxid(t.zxid)));
                }
                LearnerAction::SyncDone { req } => self.syncs_done.push(req),
                LearnerAction::RevalidateResult { session, valid } => {
                    self.revalidated.push((session, valid))
                }
                LearnerAction::StartServing => self.serving = true,
                // An observer master's PINGs carry no digest of its tree.
                LearnerAction::LeaderDigest { .. } => panic!("a digest from an observer master"),
                LearnerAction::Unclaimed(p) => panic!("an observer got an unclaimed {p:?}"),
                LearnerAction::GiveUp { reason } => panic!("the observer gave up: {reason}"),
            }
        }
    }
}

/// Delivers packets both ways until neither side has anything to say;
/// returns the master's actions other than sends to `conn`.
fn pump(
    master: &mut ObserverMaster,
    conn: ConnId,
    obs: &mut Observer,
    from_master: Vec<ObserverMasterAction>,
) -> Vec<ObserverMasterAction> {
    let mut other = Vec::new();
    let mut pending = from_master;
    loop {
        let mut to_observer = Vec::new();
        for a in pending.drain(..) {
            match a {
                ObserverMasterAction::Send { conn: c, packet } if c == conn => {
                    to_observer.push(packet)
                }
                ObserverMasterAction::SendSnapshot { conn: c, zxid } if c == conn => {
                    // The server streams its tree here; any bytes do for
                    // the learner, which hands them over whole.
                    let chunk = |t: PacketType, data: &'static [u8]| QuorumPacket {
                        r#type: t as i32,
                        zxid: zxid.0,
                        data: Bytes::from_static(data),
                        authinfo: vec![],
                    };
                    to_observer.push(chunk(PacketType::SnapChunk, b"tree-"));
                    to_observer.push(chunk(PacketType::SnapChunk, b"bytes"));
                    to_observer.push(chunk(PacketType::SnapEnd, b""));
                }
                a => other.push(a),
            }
        }
        if !to_observer.is_empty() {
            let actions = obs.learner.on_packets(obs.now, to_observer);
            obs.execute(actions);
        }
        let outbox = std::mem::take(&mut obs.outbox);
        if outbox.is_empty() {
            return other;
        }
        for p in outbox {
            pending.extend(master.on_packet(conn, p));
        }
    }
}

fn connect(
    master: &mut ObserverMaster,
    conn: ConnId,
    obs: &mut Observer,
) -> Vec<ObserverMasterAction> {
    master.on_connected(conn);
    pump(master, conn, obs, Vec::new())
}

fn kinds_sent(actions: &[ObserverMasterAction]) -> Vec<PacketType> {
    actions
        .iter()
        .filter_map(|a| match a {
            ObserverMasterAction::Send { packet, .. } => PacketType::try_from(packet.r#type).ok(),
            _ => None,
        })
        .collect()
}

#[test]
fn an_observer_syncs_by_diff_then_follows_the_followers_commits() {
    let mut m = master(5, 500);
    let mut obs = Observer::new(7, Epoch(2), z(3, 2));
    let other = connect(&mut m, ConnId(1), &mut obs);
    assert!(other.is_empty(), "{other:?}");
    assert!(obs.serving);
    assert_eq!(obs.learner.sync_mode(), Some(SyncMode::Diff));
    assert_eq!(obs.learner.leader_epoch(), Some(EPOCH));
    assert_eq!(obs.applied, [z(3, 3), z(3, 4), z(3, 5)]);
    assert_eq!(m.synced_observers(), 1);

    // What the follower applies from now on reaches the observer as INFORM.
    for c in 6..=8 {
        let sent = m.on_committed(z(3, c), txn_bytes(z(3, c)));
        assert_eq!(kinds_sent(&sent), [PacketType::Inform]);
        pump(&mut m, ConnId(1), &mut obs, sent);
    }
    assert_eq!(obs.applied.last(), Some(&z(3, 8)));
    assert_eq!(obs.logged.last(), Some(&z(3, 8)));

    // A second observer behind the window syncs from the txn log: the
    // INFORMed txns are part of the follower's history now.
    let mut late = Observer::new(8, EPOCH, z(3, 1));
    connect(&mut m, ConnId(2), &mut late);
    assert!(late.serving);
    assert_eq!(late.applied, (2..=8).map(|c| z(3, c)).collect::<Vec<_>>());
    assert_eq!(m.synced_observers(), 2);
}

#[test]
fn an_observer_far_behind_gets_the_followers_snapshot_and_one_ahead_is_refused() {
    // Nothing in the window and a log that does not reach back: SNAP.
    let mut m = master(5, 500);
    let mut far = Observer::new(7, Epoch(1), z(1, 9));
    // A follower whose log starts at its snapshot (3, 5).
    let mut sm = ObserverMaster::new(
        config(),
        EPOCH,
        z(3, 5),
        CommittedLog::new(500),
        Box::new(Vec::<(Zxid, Bytes)>::new()),
        1 << 20,
        0,
    );
    connect(&mut sm, ConnId(1), &mut far);
    assert!(far.serving);
    assert_eq!(far.learner.sync_mode(), Some(SyncMode::Snap));
    assert_eq!(
        far.snapshot,
        Some((z(3, 5), Bytes::from_static(b"tree-bytes")))
    );

    // An observer that holds more than the follower has applied (it synced
    // from a server further ahead) holds only committed txns: it is not
    // truncated (ZooKeeper's LearnerHandler would send TRUNC), but sent
    // away to learn elsewhere, before any sync.
    let mut ahead = Observer::new(8, EPOCH, z(3, 7));
    let other = connect(&mut m, ConnId(2), &mut ahead);
    assert!(
        matches!(
            other[..],
            [ObserverMasterAction::CloseObserver {
                conn: ConnId(2),
                ..
            }]
        ),
        "{other:?}"
    );
    assert!(!ahead.serving);
    assert_eq!(ahead.truncated, None);
    assert_eq!(m.synced_observers(), 0);

    // Once the follower has applied as far, the observer syncs from it.
    let mut m = master(7, 500);
    let mut ahead = Observer::new(8, EPOCH, z(3, 7));
    connect(&mut m, ConnId(3), &mut ahead);
    assert!(ahead.serving);
    assert_eq!(ahead.learner.sync_mode(), Some(SyncMode::Diff));
    assert_eq!(ahead.truncated, None);
}

#[test]
fn requests_go_to_the_leader_and_its_answers_back_to_the_observer_that_asked() {
    let mut m = master(5, 500);
    let mut a = Observer::new(7, EPOCH, z(3, 5));
    let mut b = Observer::new(8, EPOCH, z(3, 5));
    connect(&mut m, ConnId(1), &mut a);
    connect(&mut m, ConnId(2), &mut b);

    // A write and a sync from each: all go to the leader, naming the
    // observer as the origin whose client the txn answers.
    let request = |session: i64, cxid: i32, op: i32| proto::ForwardedRequest {
        session_id: session,
        cxid,
        op,
        body: Bytes::from_static(b"\0\0\0\x01/"),
        origin: 0,
    };
    let mut to_leader = Vec::new();
    for (obs, conn, session) in [(&mut a, ConnId(1), 0x71), (&mut b, ConnId(2), 0x81)] {
        let mut actions = obs.learner.forward(request(session, 1, op::CREATE), vec![]);
        actions.extend(obs.learner.forward(request(session, 2, op::SYNC), vec![]));
        obs.execute(actions);
        to_leader.extend(pump(&mut m, conn, obs, Vec::new()));
    }
    let forwarded: Vec<(i64, i32, u64)> = to_leader
        .iter()
        .map(|a| match a {
            ObserverMasterAction::ToLeader(p) => {
                assert_eq!(p.r#type, PacketType::Request as i32);
                let r = proto::ForwardedRequest::decode(p.data.clone()).unwrap();
                (r.session_id, r.cxid, r.origin)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        forwarded,
        [(0x71, 1, 7), (0x71, 2, 7), (0x81, 1, 8), (0x81, 2, 8)]
    );

    // The leader answers b's sync first; each answer reaches its observer,
    // after the INFORM of what committed before it.
    let sync = |session: i64| QuorumPacket {
        r#type: PacketType::Sync as i32,
        zxid: 0,
        data: Bytes::from(request(session, 2, op::SYNC).encode_to_vec()),
        authinfo: vec![],
    };
    let mut sent = m.on_committed(z(3, 6), txn_bytes(z(3, 6)));
    sent.extend(m.on_leader_reply(sync(0x81)));
    assert_eq!(
        kinds_sent(&sent),
        [PacketType::Inform, PacketType::Inform, PacketType::Sync]
    );
    let sent_to_b: Vec<_> = sent.clone();
    pump(&mut m, ConnId(1), &mut a, sent.clone());
    pump(&mut m, ConnId(2), &mut b, sent_to_b);
    assert!(a.syncs_done.is_empty());
    assert_eq!(b.syncs_done.len(), 1);
    assert_eq!(b.applied.last(), Some(&z(3, 6)));
    let sent = m.on_leader_reply(sync(0x71));
    pump(&mut m, ConnId(1), &mut a, sent);
    assert_eq!(a.syncs_done.len(), 1);

    // A stray answer goes nowhere.
    assert!(m.on_leader_reply(sync(0x99)).is_empty());

    // REVALIDATE: relayed, answered to the observer that asked, and a valid
    // session touched on the follower.
    let actions = a.learner.revalidate(SessionId(0x71), 4000);
    a.execute(actions);
    let relayed = pump(&mut m, ConnId(1), &mut a, Vec::new());
    assert!(
        matches!(&relayed[..], [ObserverMasterAction::ToLeader(p)] if p.r#type == PacketType::Revalidate as i32)
    );
    let reply = QuorumPacket {
        r#type: PacketType::Revalidate as i32,
        zxid: -1,
        data: Bytes::from(
            proto::RevalidateReply {
                session_id: 0x71,
                valid: true,
            }
            .encode_to_vec(),
        ),
        authinfo: vec![],
    };
    let back = m.on_leader_reply(reply);
    assert_eq!(
        back.first(),
        Some(&ObserverMasterAction::TouchSessions(vec![(
            SessionId(0x71),
            4000
        )]))
    );
    pump(&mut m, ConnId(1), &mut a, back);
    assert_eq!(a.revalidated, [(SessionId(0x71), true)]);
}

#[test]
fn pings_carry_touches_back_and_silent_or_duplicate_observers_are_dropped() {
    let mut m = master(5, 500);
    let mut a = Observer::new(7, EPOCH, z(3, 5));
    connect(&mut m, ConnId(1), &mut a);
    a.learner.touch(SessionId(0x71), 6000);
    let now = TICK / 2;
    a.now = now;
    let pings = m.on_tick(now);
    assert_eq!(kinds_sent(&pings), [PacketType::Ping]);
    let other = pump(&mut m, ConnId(1), &mut a, pings);
    assert_eq!(
        other,
        [ObserverMasterAction::TouchSessions(vec![(
            SessionId(0x71),
            6000
        )])]
    );

    // The same server on a new link replaces the old one.
    let mut again = Observer::new(7, EPOCH, z(3, 5));
    let other = connect(&mut m, ConnId(2), &mut again);
    assert!(
        other.contains(&ObserverMasterAction::CloseObserver {
            conn: ConnId(1),
            reason: "server 7 reconnected".into(),
        }),
        "{other:?}"
    );
    assert_eq!(m.synced_observers(), 1);

    // Silent past syncLimit: dropped.
    let late = now + TICK * u64::from(SYNC_LIMIT) + 1;
    let actions = m.on_tick(late);
    assert!(
        actions.iter().any(|a| matches!(
            a,
            ObserverMasterAction::CloseObserver {
                conn: ConnId(2),
                ..
            }
        )),
        "{actions:?}"
    );
    assert_eq!(m.synced_observers(), 0);
}

#[test]
fn only_observers_may_connect() {
    let mut m = master(5, 500);
    m.on_connected(ConnId(1));
    let info = proto::LearnerInfo {
        sid: 3,
        protocol_version: 0x10000,
        config_version: 0,
        accepts_leader_durable: true,
    };
    let followerinfo = QuorumPacket {
        r#type: PacketType::Followerinfo as i32,
        zxid: z(3, 0).0,
        data: Bytes::from(info.encode_to_vec()),
        authinfo: vec![],
    };
    let actions = m.on_packet(ConnId(1), followerinfo);
    assert!(
        matches!(
            &actions[..],
            [ObserverMasterAction::CloseObserver {
                conn: ConnId(1),
                ..
            }]
        ),
        "{actions:?}"
    );
    assert!(m.observers().is_empty());
    // Garbage instead of OBSERVERINFO's LearnerInfo closes the link too.
    m.on_connected(ConnId(2));
    let garbage = QuorumPacket {
        r#type: PacketType::Observerinfo as i32,
        zxid: 0,
        data: Bytes::from_static(b"\xff\xff\xff"),
        authinfo: vec![],
    };
    let actions = m.on_packet(ConnId(2), garbage);
    assert!(
        matches!(
            &actions[..],
            [ObserverMasterAction::CloseObserver {
                conn: ConnId(2),
                ..
            }]
        ),
        "{actions:?}"
    );
}
