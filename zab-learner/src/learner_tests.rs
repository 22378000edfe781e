//! One test per protocol rule of the learner core (reference F.3–F.9 and
//! the shared leader ⇄ learner protocol).

use bytes::Bytes;
use prost::Message;
use zab_wire::jute::op;
use zab_wire::proto::txn_body::Op;
use zab_wire::proto::{
    AckEpoch, ForwardedRequest, Id, LearnerInfo, PacketType, QuorumPacket, RevalidateReply,
    SessionTouches, SetDataTxn, Txn, TxnBody,
};
use zab_wire::{Epoch, ServerId, SessionId, Zxid};

use super::*;
use crate::{LearnerAction as A, LearnerError, Phase, Role, SyncMode};

const TICK: u64 = 100;

fn z(epoch: u64, counter: u32) -> Zxid {
    Zxid::new(Epoch(epoch), counter)
}

fn config(role: Role) -> LearnerConfig {
    LearnerConfig {
        me: ServerId(2),
        role,
        timing: Timing {
            tick_ms: TICK,
            init_limit: 10,
            sync_limit: 5,
        },
        config_version: 0,
        observer_logs: true,
    }
}

fn txn(zxid: Zxid) -> Txn {
    Txn {
        origin: 0,
        session_id: 0x42,
        cxid: zxid.counter() as i32,
        zxid: zxid.0,
        time: 1_700_000_000_000,
        body: Some(TxnBody {
            op: Some(Op::SetData(SetDataTxn {
                path: "/a".into(),
                data: Some(Bytes::from(zxid.to_string())),
                version: zxid.counter() as i32,
            })),
        }),
    }
}

fn pkt(ty: PacketType, zxid: Zxid, data: Bytes) -> QuorumPacket {
    QuorumPacket {
        r#type: ty as i32,
        zxid: zxid.0,
        data,
        authinfo: vec![],
    }
}

fn proposal(zxid: Zxid) -> QuorumPacket {
    pkt(PacketType::Proposal, zxid, txn(zxid).encode_to_vec().into())
}

fn inform(zxid: Zxid) -> QuorumPacket {
    pkt(PacketType::Inform, zxid, txn(zxid).encode_to_vec().into())
}

fn bare(ty: PacketType, zxid: Zxid) -> QuorumPacket {
    pkt(ty, zxid, Bytes::new())
}

fn commit(zxid: Zxid) -> QuorumPacket {
    bare(PacketType::Commit, zxid)
}

/// The packets among `actions`, as (type, zxid).
fn sent(actions: &[A]) -> Vec<(PacketType, Zxid)> {
    actions
        .iter()
        .filter_map(|a| match a {
            A::Send(p) => Some((PacketType::try_from(p.r#type).unwrap(), Zxid(p.zxid))),
            _ => None,
        })
        .collect()
}

fn appended(actions: &[A]) -> Vec<Zxid> {
    actions
        .iter()
        .filter_map(|a| match a {
            A::AppendLog(v) => Some(v.iter().map(|e| e.0)),
            _ => None,
        })
        .flatten()
        .collect()
}

fn applied(actions: &[A]) -> Vec<Zxid> {
    actions
        .iter()
        .filter_map(|a| match a {
            A::Apply(v) => Some(v.iter().map(|t| Zxid(t.zxid))),
            _ => None,
        })
        .flatten()
        .collect()
}

fn gave_up(actions: &[A]) -> Option<&LearnerError> {
    match actions.last() {
        Some(A::GiveUp { reason }) => Some(reason),
        _ => None,
    }
}

/// A learner at accepted = current = 1, last logged 1:5, that has accepted
/// epoch 2 (LEADERINFO handled).
fn registered(role: Role) -> Learner {
    let (mut l, _) = Learner::new(config(role), Epoch(1), Epoch(1), z(1, 5), 0);
    let out = l.on_packet(1, bare(PacketType::Leaderinfo, z(2, 0)));
    assert!(gave_up(&out).is_none());
    l
}

/// A follower or observer in broadcast in epoch 2 after an empty DIFF.
fn broadcasting(role: Role) -> Learner {
    let mut l = registered(role);
    l.on_packet(2, bare(PacketType::Diff, z(1, 5)));
    l.on_packet(3, bare(PacketType::Newleader, z(2, 0)));
    l.on_packet(4, bare(PacketType::Uptodate, Zxid(-1)));
    assert_eq!(l.phase(), Phase::Broadcasting);
    l
}

// ------------------------------------------------------------ registration

#[test]
fn registers_with_followerinfo_or_observerinfo_at_accepted_epoch() {
    for (role, ty) in [
        (Role::Follower, PacketType::Followerinfo),
        (Role::Observer, PacketType::Observerinfo),
    ] {
        let (l, out) = Learner::new(config(role), Epoch(3), Epoch(2), z(2, 9), 0);
        let [A::Send(p)] = &out[..] else {
            panic!("expected one packet, got {out:?}")
        };
        assert_eq!(p.r#type, ty as i32);
        assert_eq!(Zxid(p.zxid), z(3, 0));
        let info = LearnerInfo::decode(p.data.clone()).unwrap();
        assert_eq!(info.sid, 2);
        assert_eq!(info.protocol_version, 0x10000);
        assert!(info.accepts_leader_durable);
        assert_eq!(l.phase(), Phase::Registering);
    }
}

#[test]
fn accepted_epoch_is_persisted_before_ackepoch() {
    let (mut l, _) = Learner::new(config(Role::Follower), Epoch(1), Epoch(1), z(1, 5), 0);
    let out = l.on_packet(1, bare(PacketType::Leaderinfo, z(4, 0)));
    let [A::PersistAcceptedEpoch(e), A::Send(ack)] = &out[..] else {
        panic!("expected persist then send, got {out:?}")
    };
    assert_eq!(*e, Epoch(4));
    assert_eq!(ack.r#type, PacketType::Ackepoch as i32);
    assert_eq!(Zxid(ack.zxid), z(1, 5));
    let body = AckEpoch::decode(ack.data.clone()).unwrap();
    let state = body.state.unwrap();
    assert_eq!((state.current_epoch, Zxid(state.last_zxid)), (1, z(1, 5)));
    assert!(!body.already_accepted);
    assert_eq!(l.accepted_epoch(), Epoch(4));
    assert_eq!(l.leader_epoch(), Some(Epoch(4)));
    assert_eq!(l.phase(), Phase::Syncing);
}

#[test]
fn an_epoch_accepted_before_is_acked_as_already_accepted_without_persisting() {
    let (mut l, _) = Learner::new(config(Role::Observer), Epoch(4), Epoch(3), z(3, 7), 0);
    let out = l.on_packet(1, bare(PacketType::Leaderinfo, z(4, 0)));
    let [A::Send(ack)] = &out[..] else {
        panic!("expected only ACKEPOCH, got {out:?}")
    };
    let body = AckEpoch::decode(ack.data.clone()).unwrap();
    assert!(body.already_accepted);
    assert_eq!(body.state.unwrap().current_epoch, 3);
}

#[test]
fn leaderinfo_below_accepted_epoch_gives_up_and_the_learner_goes_inert() {
    let (mut l, _) = Learner::new(config(Role::Follower), Epoch(5), Epoch(5), z(5, 1), 0);
    let out = l.on_packet(1, bare(PacketType::Leaderinfo, z(4, 0)));
    assert_eq!(
        out,
        vec![A::GiveUp {
            reason: LearnerError::EpochBelowAccepted {
                proposed: Epoch(4),
                accepted: Epoch(5)
            }
        }]
    );
    assert_eq!(l.phase(), Phase::Stopped);
    assert!(l.on_packet(2, bare(PacketType::Diff, z(5, 1))).is_empty());
    assert!(l.on_tick(1_000_000).is_empty());
}

#[test]
fn anything_but_leaderinfo_while_registering_gives_up() {
    let (mut l, _) = Learner::new(config(Role::Follower), Epoch(1), Epoch(1), z(1, 5), 0);
    let out = l.on_packet(1, bare(PacketType::Newleader, z(2, 0)));
    assert!(matches!(
        gave_up(&out),
        Some(LearnerError::UnexpectedPacket {
            packet: "NEWLEADER",
            ..
        })
    ));
}

// ------------------------------------------------------------ sync

#[test]
fn diff_collects_pairs_until_newleader_then_logs_persists_and_acks_in_order() {
    let mut l = registered(Role::Follower);
    assert!(l.on_packet(2, bare(PacketType::Diff, z(1, 7))).is_empty());
    assert_eq!(l.sync_mode(), Some(SyncMode::Diff));
    for c in [6, 7] {
        // Nothing is logged or applied before NEWLEADER.
        assert!(l.on_packet(3, proposal(z(1, c))).is_empty());
        assert!(l.on_packet(3, commit(z(1, c))).is_empty());
    }
    let out = l.on_packet(4, bare(PacketType::Newleader, z(2, 0)));
    assert_eq!(appended(&out), [z(1, 6), z(1, 7)]);
    assert_eq!(applied(&out), [z(1, 6), z(1, 7)]);
    // Not durable yet: no currentEpoch, no ACK.
    assert!(sent(&out).is_empty());
    assert!(!out.iter().any(|a| matches!(a, A::PersistCurrentEpoch(_))));
    assert_eq!(l.current_epoch(), Epoch(1));
    // Durable up to 1:6 only: still waiting.
    assert!(l.on_durable(5, z(1, 6)).is_empty());
    let out = l.on_durable(5, z(1, 7));
    assert_eq!(
        out,
        vec![
            A::PersistCurrentEpoch(Epoch(2)),
            A::Send(bare(PacketType::Ack, z(2, 0))),
        ]
    );
    assert_eq!(l.current_epoch(), Epoch(2));
}

#[test]
fn empty_diff_acks_newleader_at_once() {
    let mut l = registered(Role::Follower);
    l.on_packet(2, bare(PacketType::Diff, z(1, 5)));
    let out = l.on_packet(3, bare(PacketType::Newleader, z(2, 0)));
    assert_eq!(
        out,
        vec![
            A::PersistCurrentEpoch(Epoch(2)),
            A::Send(bare(PacketType::Ack, z(2, 0))),
        ]
    );
}

/// The snapshot and the txns committed during the sync reach the disk
/// only at NEWLEADER, as ZooKeeper's `syncWithLeader` keeps them in memory
/// until then: a server stopped earlier keeps its old state, whose epoch
/// agrees with its currentEpoch.
#[test]
fn snap_reassembles_chunks_and_installs_them_at_newleader() {
    let mut l = registered(Role::Follower);
    assert!(l.on_packet(2, bare(PacketType::Snap, z(1, 9))).is_empty());
    for chunk in [&b"abc"[..], b"", b"defg"] {
        let out = l.on_packet(2, pkt(PacketType::SnapChunk, Zxid(0), Bytes::from(chunk)));
        assert!(out.is_empty());
    }
    assert!(l
        .on_packet(2, bare(PacketType::SnapEnd, Zxid(0)))
        .is_empty());
    assert_eq!(l.sync_mode(), Some(SyncMode::Snap));
    assert!(l.on_packet(3, proposal(z(1, 10))).is_empty());
    assert!(l.on_packet(3, commit(z(1, 10))).is_empty());
    let out = l.on_packet(4, bare(PacketType::Newleader, z(2, 0)));
    assert_eq!(
        out[0],
        A::InstallSnapshot {
            zxid: z(1, 9),
            data: Bytes::from_static(b"abcdefg").into()
        }
    );
    assert_eq!(appended(&out), [z(1, 10)]);
    assert_eq!(applied(&out), [z(1, 10)]);
    // NEWLEADER waits for that append.
    assert!(sent(&out).is_empty());
    assert_eq!(
        sent(&l.on_durable(5, z(1, 10))),
        [(PacketType::Ack, z(2, 0))]
    );
}

#[test]
fn anything_inside_a_snapshot_stream_gives_up() {
    let mut l = registered(Role::Follower);
    l.on_packet(2, bare(PacketType::Snap, z(1, 9)));
    let out = l.on_packet(3, proposal(z(1, 10)));
    assert!(matches!(
        gave_up(&out),
        Some(LearnerError::UnexpectedPacket {
            packet: "PROPOSAL",
            ..
        })
    ));
}

#[test]
fn trunc_truncates_at_once_and_applies_committed_proposals_at_newleader() {
    let mut l = registered(Role::Follower);
    let out = l.on_packet(2, bare(PacketType::Trunc, z(1, 3)));
    assert_eq!(out, vec![A::TruncateLog { after: z(1, 3) }]);
    assert_eq!(l.sync_mode(), Some(SyncMode::Trunc));
    // 1:4 follows the truncation point even though we had logged up to 1:5.
    assert!(l.on_packet(3, proposal(z(1, 4))).is_empty());
    // Committed during the sync: logged and applied at NEWLEADER.
    assert!(l.on_packet(3, commit(z(1, 4))).is_empty());
    let out = l.on_packet(4, bare(PacketType::Newleader, z(2, 0)));
    assert_eq!(appended(&out), [z(1, 4)]);
    assert_eq!(applied(&out), [z(1, 4)]);
}

#[test]
fn proposals_between_newleader_and_uptodate_are_logged_at_uptodate() {
    let mut l = registered(Role::Follower);
    l.on_packet(2, bare(PacketType::Diff, z(1, 5)));
    // An outstanding proposal of the old epoch, committed after NEWLEADER,
    // and a new-epoch proposal still outstanding at UPTODATE.
    assert!(l.on_packet(2, proposal(z(1, 6))).is_empty());
    let out = l.on_packet(3, bare(PacketType::Newleader, z(2, 0)));
    assert!(appended(&out).is_empty());
    assert_eq!(sent(&out), [(PacketType::Ack, z(2, 0))]);
    assert!(l.on_packet(3, commit(z(1, 6))).is_empty());
    assert!(l.on_packet(3, proposal(z(2, 1))).is_empty());
    assert_eq!(l.uncommitted(), 1);
    let out = l.on_packet(4, bare(PacketType::Uptodate, Zxid(-1)));
    assert_eq!(out[0], A::Send(bare(PacketType::Ack, z(2, 0))));
    assert_eq!(appended(&out), [z(1, 6), z(2, 1)]);
    assert_eq!(applied(&out), [z(1, 6)]);
    assert!(out.contains(&A::StartServing));
    assert_eq!(l.phase(), Phase::Broadcasting);
    // Those appends are ACKed when durable, and 2:1 commits normally.
    assert_eq!(
        sent(&l.on_durable(5, z(2, 1))),
        [(PacketType::Ack, z(2, 1))]
    );
    assert_eq!(applied(&l.on_packet(6, commit(z(2, 1)))), [z(2, 1)]);
}

#[test]
fn uptodate_before_newleader_gives_up() {
    let mut l = registered(Role::Follower);
    l.on_packet(2, bare(PacketType::Diff, z(1, 5)));
    let out = l.on_packet(3, bare(PacketType::Uptodate, Zxid(-1)));
    assert!(matches!(
        gave_up(&out),
        Some(LearnerError::UnexpectedPacket {
            packet: "UPTODATE",
            ..
        })
    ));
}

#[test]
fn uptodate_while_newleader_is_not_yet_durable_gives_up() {
    let mut l = registered(Role::Follower);
    l.on_packet(2, bare(PacketType::Diff, z(1, 5)));
    l.on_packet(2, proposal(z(1, 6)));
    l.on_packet(2, commit(z(1, 6)));
    l.on_packet(3, bare(PacketType::Newleader, z(2, 0)));
    let out = l.on_packet(3, bare(PacketType::Uptodate, Zxid(-1)));
    assert!(gave_up(&out).is_some());
}

/// Leaving between NEWLEADER and its ACK: the sync's txns are queued for
/// the log and land anyway, so the caller owes currentEpoch once they are
/// durable; before NEWLEADER nothing of the sync is queued, and after the
/// ACK the epoch is written already.
#[test]
fn giving_up_while_newleader_persists_leaves_the_epoch_due() {
    let mut l = registered(Role::Follower);
    l.on_packet(2, bare(PacketType::Diff, z(1, 5)));
    l.on_packet(2, proposal(z(2, 1)));
    l.on_packet(2, commit(z(2, 1)));
    assert_eq!(l.epoch_due_after_drain(), None);
    l.on_packet(3, bare(PacketType::Newleader, z(2, 0)));
    assert!(l.persisting_new_leader());
    assert_eq!(l.epoch_due_after_drain(), Some(Epoch(2)));
    // The leader goes silent past initLimit: the learner gives up, and the
    // epoch is still due.
    let out = l.on_tick(60_000);
    assert!(gave_up(&out).is_some());
    assert!(!l.persisting_new_leader());
    assert_eq!(l.epoch_due_after_drain(), Some(Epoch(2)));
    // Its own durability report after giving up sends and writes nothing:
    // the caller does, after its drain.
    assert!(l.on_durable(60_001, z(2, 1)).is_empty());

    // Giving up before NEWLEADER owes nothing.
    let mut l = registered(Role::Follower);
    l.on_packet(2, bare(PacketType::Diff, z(1, 5)));
    l.on_packet(2, proposal(z(2, 1)));
    assert!(gave_up(&l.on_tick(60_000)).is_some());
    assert_eq!(l.epoch_due_after_drain(), None);

    // Nor after the ACK, which wrote it.
    let mut l = registered(Role::Follower);
    l.on_packet(2, bare(PacketType::Diff, z(1, 5)));
    l.on_packet(2, proposal(z(2, 1)));
    l.on_packet(2, commit(z(2, 1)));
    l.on_packet(3, bare(PacketType::Newleader, z(2, 0)));
    l.on_durable(4, z(2, 1));
    assert_eq!(l.current_epoch(), Epoch(2));
    assert!(gave_up(&l.on_tick(60_000)).is_some());
    assert_eq!(l.epoch_due_after_drain(), None);
}

#[test]
fn newleader_of_another_epoch_gives_up() {
    let mut l = registered(Role::Follower);
    l.on_packet(2, bare(PacketType::Diff, z(1, 5)));
    let out = l.on_packet(3, bare(PacketType::Newleader, z(3, 0)));
    assert_eq!(
        gave_up(&out),
        Some(&LearnerError::NewLeaderEpochMismatch {
            got: Epoch(3),
            expected: Epoch(2)
        })
    );
}

#[test]
fn uptodate_starts_serving_and_acks_the_new_epoch() {
    let mut l = registered(Role::Follower);
    l.on_packet(2, bare(PacketType::Diff, z(1, 5)));
    l.on_packet(3, bare(PacketType::Newleader, z(2, 0)));
    let out = l.on_packet(4, bare(PacketType::Uptodate, Zxid(-1)));
    assert_eq!(
        out,
        vec![A::Send(bare(PacketType::Ack, z(2, 0))), A::StartServing]
    );
}

// ------------------------------------------------------------ broadcast

#[test]
fn proposal_is_logged_and_acked_only_once_durable() {
    let mut l = broadcasting(Role::Follower);
    let out = l.on_packet(10, proposal(z(2, 1)));
    assert_eq!(out.len(), 1);
    assert_eq!(appended(&out), [z(2, 1)]);
    assert!(l.on_durable(11, z(1, 5)).is_empty());
    assert_eq!(
        sent(&l.on_durable(12, z(2, 1))),
        [(PacketType::Ack, z(2, 1))]
    );
    // A repeated report acks nothing twice.
    assert!(l.on_durable(13, z(2, 1)).is_empty());
}

#[test]
fn a_group_commit_is_acked_once_at_its_highest_zxid() {
    let mut l = broadcasting(Role::Follower);
    for c in 1..=4 {
        l.on_packet(10, proposal(z(2, c)));
    }
    assert_eq!(
        sent(&l.on_durable(11, z(2, 3))),
        [(PacketType::Ack, z(2, 3))]
    );
    assert_eq!(
        sent(&l.on_durable(12, z(2, 4))),
        [(PacketType::Ack, z(2, 4))]
    );
}

#[test]
fn a_batch_of_proposals_off_the_wire_is_logged_as_one_append() {
    let mut l = broadcasting(Role::Follower);
    let batch = vec![
        proposal(z(2, 1)),
        proposal(z(2, 2)),
        commit(z(2, 1)),
        proposal(z(2, 3)),
    ];
    let out = l.on_packets(10, batch);
    // The commit's apply goes first: it needs nothing from the log.
    let [A::Apply(txns), A::AppendLog(entries)] = &out[..] else {
        panic!("expected one apply then one append, got {out:?}")
    };
    assert_eq!(
        txns.iter().map(|t| Zxid(t.zxid)).collect::<Vec<_>>(),
        [z(2, 1)]
    );
    let zxids: Vec<Zxid> = entries.iter().map(|e| e.0).collect();
    assert_eq!(zxids, [z(2, 1), z(2, 2), z(2, 3)]);
    // One durability report acks the whole batch once.
    assert_eq!(
        sent(&l.on_durable(11, z(2, 3))),
        [(PacketType::Ack, z(2, 3))]
    );
}

#[test]
fn commit_applies_the_head_or_a_batch_in_order() {
    let mut l = broadcasting(Role::Follower);
    for c in 1..=3 {
        l.on_packet(10, proposal(z(2, c)));
    }
    assert_eq!(applied(&l.on_packet(11, commit(z(2, 1)))), [z(2, 1)]);
    assert_eq!(
        applied(&l.on_packet(11, commit(z(2, 3)))),
        [z(2, 2), z(2, 3)]
    );
}

#[test]
fn commit_of_a_txn_not_held_gives_up() {
    let mut l = broadcasting(Role::Follower);
    l.on_packet(10, proposal(z(2, 1)));
    l.on_packet(10, proposal(z(2, 2)));
    l.on_packet(11, commit(z(2, 1)));
    for bad in [z(2, 1), z(2, 7)] {
        let mut l2 = broadcasting(Role::Follower);
        l2.on_packet(10, proposal(z(2, 2)));
        let out = l2.on_packet(11, commit(bad));
        assert_eq!(
            gave_up(&out),
            Some(&LearnerError::UnexpectedCommit {
                zxid: bad,
                head: Some(z(2, 2))
            })
        );
    }
    // A replayed commit of something already applied.
    let out = l.on_packet(12, commit(z(2, 1)));
    assert!(matches!(
        gave_up(&out),
        Some(LearnerError::UnexpectedCommit { .. })
    ));
}

fn leader_durable(zxid: Zxid) -> QuorumPacket {
    bare(PacketType::LeaderDurable, zxid)
}

/// zab's LEADER_DURABLE: a follower applies what both its log and the
/// leader's hold durably, in order, without waiting for the COMMIT; the
/// COMMITs that come later are no-ops, and the usual path still works.
#[test]
fn a_follower_commits_what_it_and_the_leader_hold_durably() {
    let mut l = broadcasting(Role::Follower);
    for c in 1..=3 {
        l.on_packet(10, proposal(z(2, c)));
    }
    let out = l.on_durable(11, z(2, 2));
    assert_eq!(sent(&out), [(PacketType::Ack, z(2, 2))]);
    assert!(
        applied(&out).is_empty(),
        "the leader's log is not known yet"
    );
    assert_eq!(
        applied(&l.on_packet(12, leader_durable(z(2, 1)))),
        [z(2, 1)]
    );
    // Only as far as this follower's own log.
    assert_eq!(
        applied(&l.on_packet(12, leader_durable(z(2, 3)))),
        [z(2, 2)]
    );
    let out = l.on_durable(13, z(2, 3));
    assert_eq!(sent(&out), [(PacketType::Ack, z(2, 3))]);
    assert_eq!(applied(&out), [z(2, 3)]);
    assert_eq!(l.uncommitted(), 0);
    for c in [1, 3] {
        let out = l.on_packet(14, commit(z(2, c)));
        assert!(out.is_empty(), "{out:?}");
    }
    l.on_packet(15, proposal(z(2, 4)));
    assert_eq!(applied(&l.on_packet(16, commit(z(2, 4)))), [z(2, 4)]);
    // A COMMIT of what was never held still gives up.
    let out = l.on_packet(17, commit(z(2, 9)));
    assert!(matches!(
        gave_up(&out),
        Some(LearnerError::UnexpectedCommit { .. })
    ));
}

/// A LEADER_DURABLE of another epoch says nothing about this leader's
/// proposals; an observer (never part of a quorum) ignores it.
#[test]
fn leader_durable_counts_only_for_this_epoch_and_for_followers() {
    let mut l = broadcasting(Role::Follower);
    l.on_packet(10, proposal(z(2, 1)));
    l.on_durable(11, z(2, 1));
    assert!(applied(&l.on_packet(12, leader_durable(z(1, 9)))).is_empty());
    assert!(applied(&l.on_packet(12, leader_durable(z(3, 1)))).is_empty());
    assert_eq!(l.uncommitted(), 1);

    let mut o = broadcasting(Role::Observer);
    let out = o.on_packet(10, leader_durable(z(2, 1)));
    assert!(
        out.is_empty() && o.phase() == Phase::Broadcasting,
        "{out:?}"
    );
}

/// A LEADER_DURABLE heard during sync counts once the follower serves: the
/// proposals made after NEWLEADER are committed when its log has them.
#[test]
fn leader_durable_heard_during_sync_counts_after_uptodate() {
    let mut l = registered(Role::Follower);
    l.on_packet(2, bare(PacketType::Diff, z(1, 5)));
    l.on_packet(3, bare(PacketType::Newleader, z(2, 0)));
    l.on_packet(4, proposal(z(2, 1)));
    assert!(applied(&l.on_packet(4, leader_durable(z(2, 1)))).is_empty());
    let out = l.on_packet(5, bare(PacketType::Uptodate, Zxid(-1)));
    assert_eq!(appended(&out), [z(2, 1)]);
    assert!(applied(&out).is_empty(), "not durable here yet");
    let out = l.on_durable(6, z(2, 1));
    assert_eq!(sent(&out), [(PacketType::Ack, z(2, 1))]);
    assert_eq!(applied(&out), [z(2, 1)]);
}

#[test]
fn a_gap_in_the_syncs_proposals_gives_up_but_a_new_epoch_may_start_anywhere() {
    let mut l = registered(Role::Follower);
    l.on_packet(2, bare(PacketType::Diff, z(1, 5)));
    assert!(gave_up(&l.on_packet(3, proposal(z(1, 6)))).is_none());
    let out = l.on_packet(3, proposal(z(1, 8)));
    assert_eq!(
        gave_up(&out),
        Some(&LearnerError::SyncGap {
            zxid: z(1, 8),
            expected: z(1, 7)
        })
    );
    // A later epoch's first proposal need not be counter 1 to pass here
    // (ZooKeeper only warns: it cannot tell a loss from a new epoch).
    let mut l = registered(Role::Follower);
    l.on_packet(2, bare(PacketType::Diff, z(1, 5)));
    assert!(gave_up(&l.on_packet(3, proposal(z(2, 3)))).is_none());
}

#[test]
fn a_gap_in_proposals_only_warns_but_going_backwards_gives_up() {
    let mut l = broadcasting(Role::Follower);
    assert_eq!(appended(&l.on_packet(10, proposal(z(2, 1)))), [z(2, 1)]);
    assert_eq!(appended(&l.on_packet(10, proposal(z(2, 3)))), [z(2, 3)]);
    let out = l.on_packet(10, proposal(z(2, 2)));
    assert_eq!(
        gave_up(&out),
        Some(&LearnerError::TxnNotIncreasing {
            zxid: z(2, 2),
            last_queued: z(2, 3)
        })
    );
}

#[test]
fn a_malformed_proposal_gives_up() {
    let mut l = broadcasting(Role::Follower);
    let garbage = pkt(
        PacketType::Proposal,
        z(2, 1),
        Bytes::from_static(b"\xff\xff"),
    );
    assert!(matches!(
        gave_up(&l.on_packet(10, garbage)),
        Some(LearnerError::Malformed { .. })
    ));
    let mut l = broadcasting(Role::Follower);
    // The txn inside names another zxid than the packet.
    let lying = pkt(
        PacketType::Proposal,
        z(2, 1),
        txn(z(2, 2)).encode_to_vec().into(),
    );
    assert!(matches!(
        gave_up(&l.on_packet(10, lying)),
        Some(LearnerError::Malformed { .. })
    ));
}

#[test]
fn observer_logs_and_applies_informs_and_never_acks() {
    let mut l = broadcasting(Role::Observer);
    let out = l.on_packet(10, inform(z(2, 1)));
    assert_eq!(appended(&out), [z(2, 1)]);
    assert_eq!(applied(&out), [z(2, 1)]);
    assert!(sent(&out).is_empty());
    assert!(l.on_durable(11, z(2, 1)).is_empty());
    // Proposals and commits are not for observers.
    assert!(l.on_packet(12, proposal(z(2, 2))).is_empty());
    assert!(l.on_packet(12, commit(z(2, 2))).is_empty());
    assert_eq!(l.phase(), Phase::Broadcasting);
}

#[test]
fn follower_ignores_inform() {
    let mut l = broadcasting(Role::Follower);
    assert!(l.on_packet(10, inform(z(2, 1))).is_empty());
    assert_eq!(l.phase(), Phase::Broadcasting);
}

#[test]
fn observer_sync_applies_committed_and_drops_uncommitted_at_uptodate() {
    let mut l = registered(Role::Observer);
    l.on_packet(2, bare(PacketType::Diff, z(1, 5)));
    l.on_packet(2, proposal(z(1, 6)));
    l.on_packet(2, commit(z(1, 6)));
    let out = l.on_packet(3, bare(PacketType::Newleader, z(2, 0)));
    assert_eq!(applied(&out), [z(1, 6)]);
    let out = l.on_durable(3, z(1, 6));
    assert_eq!(sent(&out), [(PacketType::Ack, z(2, 0))]);
    l.on_packet(4, inform(z(1, 7)));
    l.on_packet(4, proposal(z(2, 1)));
    let out = l.on_packet(5, bare(PacketType::Uptodate, Zxid(-1)));
    assert_eq!(appended(&out), [z(1, 7)]);
    assert_eq!(applied(&out), [z(1, 7)]);
    assert_eq!(l.uncommitted(), 0);
    assert!(l
        .on_durable(6, z(1, 7))
        .iter()
        .all(|a| !matches!(a, A::Send(_))));
}

/// A learner configured with `observer_logs` false, in a DIFF of one
/// committed txn (1:6), before NEWLEADER.
fn unlogged_diff_of_one(role: Role) -> Learner {
    let mut cfg = config(role);
    cfg.observer_logs = false;
    let (mut l, _) = Learner::new(cfg, Epoch(1), Epoch(1), z(1, 5), 0);
    l.on_packet(1, bare(PacketType::Leaderinfo, z(2, 0)));
    l.on_packet(2, bare(PacketType::Diff, z(1, 5)));
    l.on_packet(2, proposal(z(1, 6)));
    l.on_packet(2, commit(z(1, 6)));
    l
}

/// `syncEnabled=false`: the same sync and broadcast as above, with nothing
/// logged, so nothing is waited for: NEWLEADER is acked at once.
#[test]
fn an_observer_without_sync_applies_everything_and_logs_nothing() {
    let mut l = unlogged_diff_of_one(Role::Observer);
    let out = l.on_packet(3, bare(PacketType::Newleader, z(2, 0)));
    assert_eq!(applied(&out), [z(1, 6)]);
    assert!(appended(&out).is_empty());
    assert_eq!(sent(&out), [(PacketType::Ack, z(2, 0))]);
    l.on_packet(4, inform(z(1, 7)));
    let out = l.on_packet(5, bare(PacketType::Uptodate, Zxid(-1)));
    assert_eq!(applied(&out), [z(1, 7)]);
    assert!(appended(&out).is_empty());
    assert_eq!(l.phase(), Phase::Broadcasting);
    let out = l.on_packet(10, inform(z(2, 1)));
    assert_eq!(applied(&out), [z(2, 1)]);
    assert!(appended(&out).is_empty());
    assert!(sent(&out).is_empty());
}

/// `syncEnabled` is an observer's setting: a follower logs regardless, as
/// its ACKs promise.
#[test]
fn a_follower_logs_whatever_observer_logs_says() {
    let mut l = unlogged_diff_of_one(Role::Follower);
    let out = l.on_packet(3, bare(PacketType::Newleader, z(2, 0)));
    assert_eq!(appended(&out), [z(1, 6)]);
    assert!(sent(&out).is_empty(), "NEWLEADER waits for the log");
}

// ------------------------------------------------------------ clients

#[test]
fn ping_is_answered_with_the_sessions_touched_since_the_last_one() {
    let mut l = broadcasting(Role::Follower);
    l.touch(SessionId(9), 6000);
    l.touch(SessionId(3), 4000);
    let out = l.on_packet(10, bare(PacketType::Ping, z(2, 17)));
    let [A::Send(reply)] = &out[..] else {
        panic!("expected a ping reply, got {out:?}")
    };
    assert_eq!(reply.r#type, PacketType::Ping as i32);
    assert_eq!(Zxid(reply.zxid), z(2, 17));
    let touches = SessionTouches::decode(reply.data.clone()).unwrap();
    let got: Vec<_> = touches
        .sessions
        .iter()
        .map(|s| (s.session_id, s.timeout))
        .collect();
    assert_eq!(got, [(3, 4000), (9, 6000)]);
    let out = l.on_packet(11, bare(PacketType::Ping, z(2, 17)));
    let [A::Send(reply)] = &out[..] else {
        panic!("expected a ping reply, got {out:?}")
    };
    assert!(SessionTouches::decode(reply.data.clone())
        .unwrap()
        .sessions
        .is_empty());
}

/// A leader's PING may carry its tree's digest: the learner hands it on
/// to be compared, before its reply. A malformed one is dropped and the
/// PING still answered.
#[test]
fn a_pings_digest_is_handed_on_and_a_malformed_one_dropped() {
    let mut l = broadcasting(Role::Follower);
    let mut ping = bare(PacketType::Ping, z(2, 17));
    ping.data = zab_wire::proto::TreeDigest {
        zxid: z(2, 0).0,
        digest: -5,
    }
    .encode_to_vec()
    .into();
    let out = l.on_packet(10, ping.clone());
    let [A::LeaderDigest { zxid, digest }, A::Send(reply)] = &out[..] else {
        panic!("expected the digest then a ping reply, got {out:?}")
    };
    assert_eq!((*zxid, *digest), (z(2, 0), -5));
    assert_eq!(reply.r#type, PacketType::Ping as i32);
    ping.data = Bytes::from_static(&[0xff, 0xff, 0xff]);
    let out = l.on_packet(11, ping);
    let [A::Send(reply)] = &out[..] else {
        panic!("expected a ping reply alone, got {out:?}")
    };
    assert_eq!(reply.r#type, PacketType::Ping as i32);
}

#[test]
fn revalidate_round_trip() {
    let mut l = broadcasting(Role::Observer);
    let out = l.revalidate(SessionId(0x77), 5000);
    assert_eq!(sent(&out), [(PacketType::Revalidate, Zxid(-1))]);
    let reply = RevalidateReply {
        session_id: 0x77,
        valid: true,
    };
    let out = l.on_packet(
        10,
        pkt(
            PacketType::Revalidate,
            Zxid(-1),
            reply.encode_to_vec().into(),
        ),
    );
    assert_eq!(
        out,
        vec![A::RevalidateResult {
            session: SessionId(0x77),
            valid: true
        }]
    );
}

#[test]
fn forwarded_writes_carry_auth_and_a_forwarded_sync_is_released_by_sync() {
    let mut l = broadcasting(Role::Follower);
    let write = ForwardedRequest {
        session_id: 0x42,
        cxid: 1,
        op: op::CREATE,
        body: Bytes::from_static(b"body"),
        origin: 0,
    };
    let auth = vec![Id {
        scheme: "digest".into(),
        id: "u:x".into(),
    }];
    let out = l.forward(write.clone(), auth.clone());
    let [A::Send(p)] = &out[..] else {
        panic!("expected REQUEST, got {out:?}")
    };
    assert_eq!(p.r#type, PacketType::Request as i32);
    assert_eq!(p.zxid, -1);
    assert_eq!(p.authinfo, auth);
    assert_eq!(ForwardedRequest::decode(p.data.clone()).unwrap(), write);

    let sync = ForwardedRequest {
        cxid: 2,
        op: op::SYNC,
        ..write
    };
    l.forward(sync.clone(), vec![]);
    let answer = pkt(PacketType::Sync, Zxid(0), sync.encode_to_vec().into());
    assert_eq!(l.on_packet(10, answer), vec![A::SyncDone { req: sync }]);
}

#[test]
fn requests_before_uptodate_are_held_back_until_serving() {
    let mut l = registered(Role::Follower);
    let req = ForwardedRequest {
        session_id: 1,
        cxid: 1,
        op: op::SET_DATA,
        body: Bytes::new(),
        origin: 0,
    };
    assert!(l.forward(req, vec![]).is_empty());
    assert!(l.revalidate(SessionId(1), 3000).is_empty());
    l.on_packet(2, bare(PacketType::Diff, z(1, 5)));
    l.on_packet(3, bare(PacketType::Newleader, z(2, 0)));
    let out = l.on_packet(4, bare(PacketType::Uptodate, Zxid(-1)));
    assert_eq!(
        sent(&out),
        [
            (PacketType::Ack, z(2, 0)),
            (PacketType::Request, Zxid(-1)),
            (PacketType::Revalidate, Zxid(-1)),
        ]
    );
    let serving = out.iter().position(|a| *a == A::StartServing).unwrap();
    let request = out
        .iter()
        .position(|a| matches!(a, A::Send(p) if p.r#type == PacketType::Request as i32))
        .unwrap();
    assert!(serving < request);
}

// ------------------------------------------------------------ liveness

#[test]
fn leader_silence_past_sync_limit_gives_up_when_broadcasting() {
    let mut l = broadcasting(Role::Follower);
    l.on_packet(1000, bare(PacketType::Ping, z(2, 0)));
    assert!(l.on_tick(1000 + 5 * TICK).is_empty());
    let out = l.on_tick(1000 + 5 * TICK + 1);
    assert_eq!(
        out,
        vec![A::GiveUp {
            reason: LearnerError::LeaderSilent {
                silent_ms: 5 * TICK + 1,
                limit_ms: 5 * TICK
            }
        }]
    );
    assert_eq!(l.phase(), Phase::Stopped);
}

#[test]
fn before_newleader_the_init_limit_applies() {
    let mut l = registered(Role::Follower);
    l.on_packet(1000, bare(PacketType::Diff, z(1, 5)));
    // Past syncLimit but within initLimit.
    assert!(l.on_tick(1000 + 9 * TICK).is_empty());
    assert!(gave_up(&l.on_tick(1000 + 10 * TICK + 1)).is_some());
}

#[test]
fn any_packet_counts_as_hearing_from_the_leader() {
    let mut l = broadcasting(Role::Follower);
    l.on_packet(1000, proposal(z(2, 1)));
    assert!(l.on_tick(1000 + 5 * TICK).is_empty());
    l.on_packet(1000 + 5 * TICK, commit(z(2, 1)));
    assert!(l.on_tick(1000 + 10 * TICK).is_empty());
}

#[test]
fn an_observers_packets_are_relayed_as_they_came_and_the_answers_handed_back() {
    // Before UPTODATE the relay holds, as for the follower's own requests.
    let mut l = registered(Role::Follower);
    let observers = pkt(PacketType::Request, Zxid(-1), Bytes::from_static(b"req"));
    assert!(l.relay(observers.clone()).is_empty());

    let mut l = broadcasting(Role::Follower);
    let mut with_auth = observers.clone();
    with_auth.authinfo = vec![Id {
        scheme: "digest".into(),
        id: "u:x".into(),
    }];
    assert_eq!(l.relay(with_auth.clone()), vec![A::Send(with_auth.clone())]);
    // The leader's answer to it is not this follower's own: handed back.
    let sync = ForwardedRequest {
        session_id: 0x77,
        cxid: 3,
        op: op::SYNC,
        body: Bytes::new(),
        origin: 0,
    };
    let answer = pkt(PacketType::Sync, Zxid(0), sync.encode_to_vec().into());
    assert_eq!(l.on_packet(10, answer.clone()), vec![A::Unclaimed(answer)]);
}
