//! What the learner core asks its caller to do, and the small vocabulary
//! (role, phase, sync mode) it reports itself with.

use bytes::Bytes;
use zab_wire::proto::{ForwardedRequest, QuorumPacket, Txn};
use zab_wire::{Epoch, SessionId, Zxid};

use crate::{LearnerError, SnapshotChunks};

/// Which kind of learner this is (reference F.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A voter: ACKs proposals, receives PROPOSAL + COMMIT.
    Follower,
    /// A non-voter: never ACKs, receives INFORM (committed txns with data).
    Observer,
}

/// Where the learner is in its life with one leader, for `srvr` / `mntr`
/// (ZooKeeper's `ZabState`: DISCOVERY, SYNCHRONIZATION, BROADCAST).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// FOLLOWERINFO / OBSERVERINFO sent, waiting for LEADERINFO.
    Registering,
    /// ACKEPOCH sent; receiving DIFF / TRUNC / SNAP and the sync txns,
    /// up to UPTODATE.
    Syncing,
    /// UPTODATE received: serving clients, processing the broadcast.
    Broadcasting,
    /// Gave up on this leader; every further input is ignored.
    Stopped,
}

/// How the leader chose to bring this learner up to date (reference F.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncMode {
    Diff,
    Trunc,
    Snap,
}

/// One thing for the caller to do. Actions come in a `Vec` and **must be
/// executed in order**: a persist action must be durable before any later
/// `Send` leaves (reference F.7), `TruncateLog` / `InstallSnapshot` must be
/// done before any later `AppendLog` / `Apply`.
#[derive(Clone, Debug, PartialEq)]
pub enum LearnerAction {
    /// Send this packet to the leader on the current connection.
    Send(QuorumPacket),
    /// Durably record acceptedEpoch, synchronously, before executing the
    /// next action (it is always followed by the ACKEPOCH that relies on it).
    PersistAcceptedEpoch(Epoch),
    /// Durably record currentEpoch, synchronously, before executing the next
    /// action (it is always followed by the ACK of NEWLEADER).
    PersistCurrentEpoch(Epoch),
    /// TRUNC sync: remove every log entry above `after` and rebuild the
    /// tree at `after` (reload the snapshot, replay the log up to it), as
    /// ZooKeeper's `ZKDatabase.truncateLog` does. Synchronous.
    TruncateLog { after: Zxid },
    /// SNAP sync: replace the tree with this snapshot (the reassembled
    /// SNAP_CHUNK stream: `DataTree::snapshot().write_to` output), save it
    /// durably as a snapshot at `zxid`, and drop log entries above `zxid`
    /// (they belong to a history the leader does not have). Synchronous.
    InstallSnapshot { zxid: Zxid, data: SnapshotChunks },
    /// Append these txns (zxid, prost-encoded `Txn` as received) to the log,
    /// in order, with group commit; report durability through
    /// [`Learner::on_durable`](crate::Learner::on_durable).
    AppendLog(Vec<(Zxid, Bytes)>),
    /// Committed txns to apply to the tree, in zxid order. The caller
    /// answers its own clients whose requests these are (session id + cxid).
    Apply(Vec<Txn>),
    /// A forwarded `sync` was answered by the leader: every txn the leader
    /// had committed when it saw the sync has been handed out in an `Apply`
    /// before this action (reference D.8), so the caller may reply.
    SyncDone { req: ForwardedRequest },
    /// The leader's answer to a [`Learner::revalidate`](crate::Learner::revalidate).
    RevalidateResult { session: SessionId, valid: bool },
    /// A SYNC or REVALIDATE answer for none of this server's own requests:
    /// on a follower hosting observers, one of theirs (see
    /// [`Learner::relay`](crate::Learner::relay)); otherwise a stray, which
    /// ZooKeeper logs and drops.
    Unclaimed(QuorumPacket),
    /// UPTODATE: start serving clients.
    StartServing,
    /// The leader's tree had `digest` after `zxid`: compare this server's
    /// own once it has applied `zxid` (a mismatch means the replicas
    /// differ; ZooKeeper logs it and counts `digest_mismatches_count`).
    LeaderDigest { zxid: Zxid, digest: i64 },
    /// Stop following this leader: close the stream and client connections,
    /// go back to LOOKING. Always the last action; the learner is inert after.
    GiveUp { reason: LearnerError },
}

/// Gathers the appends among `actions` into as few `AppendLog`s as their
/// order allows: a batch of proposals from the leader reaches the log as
/// one append (one trip through the log's queue, one durability report),
/// as ZooKeeper's `SyncRequestProcessor` groups the requests it logs.
///
/// Only `Apply` and `Send` may be moved ahead of an append: neither touches
/// the log, an `Apply` carries committed txns (a quorum holds them
/// durably), and a `Send` never carries an ACK the log has not reported
/// durable (the learner ACKs from `on_durable`). Every other action is a
/// barrier that no append crosses, so the order rules above still hold.
pub(crate) fn gather_appends(actions: Vec<LearnerAction>) -> Vec<LearnerAction> {
    let mut out = Vec::with_capacity(actions.len());
    // Appends gathered so far, and the applies and sends seen after the
    // latest of them: these go out after the gathered append.
    let mut gathered: Vec<(Zxid, Bytes)> = Vec::new();
    let mut after: Vec<LearnerAction> = Vec::new();
    for a in actions {
        match a {
            LearnerAction::AppendLog(entries) => {
                out.append(&mut after);
                gathered.extend(entries);
            }
            LearnerAction::Apply(_) | LearnerAction::Send(_) if !gathered.is_empty() => {
                after.push(a);
            }
            LearnerAction::Apply(_) | LearnerAction::Send(_) => out.push(a),
            barrier => {
                flush(&mut out, &mut gathered, &mut after);
                out.push(barrier);
            }
        }
    }
    flush(&mut out, &mut gathered, &mut after);
    out
}

fn flush(
    out: &mut Vec<LearnerAction>,
    gathered: &mut Vec<(Zxid, Bytes)>,
    after: &mut Vec<LearnerAction>,
) {
    if !gathered.is_empty() {
        out.push(LearnerAction::AppendLog(std::mem::take(gathered)));
    }
    out.append(after);
}

#[cfg(test)]
mod tests {
    use zab_wire::proto::QuorumPacket;

    use super::*;

    fn append(counters: &[u32]) -> LearnerAction {
        LearnerAction::AppendLog(
            counters
                .iter()
                .map(|&c| (Zxid::new(Epoch(1), c), Bytes::from(vec![c as u8])))
                .collect(),
        )
    }

    fn apply(counter: u32) -> LearnerAction {
        LearnerAction::Apply(vec![Txn {
            zxid: Zxid::new(Epoch(1), counter).0,
            ..Txn::default()
        }])
    }

    fn send(zxid: i64) -> LearnerAction {
        LearnerAction::Send(QuorumPacket {
            zxid,
            ..QuorumPacket::default()
        })
    }

    #[test]
    fn appends_in_a_row_become_one() {
        let got = gather_appends(vec![append(&[1]), append(&[2, 3]), append(&[4])]);
        assert_eq!(got, vec![append(&[1, 2, 3, 4])]);
    }

    #[test]
    fn applies_and_sends_between_appends_go_ahead_of_the_gathered_append() {
        let got = gather_appends(vec![
            send(7),
            append(&[1]),
            apply(1),
            append(&[2]),
            send(8),
            apply(2),
        ]);
        assert_eq!(
            got,
            vec![send(7), apply(1), append(&[1, 2]), send(8), apply(2)]
        );
    }

    #[test]
    fn no_append_crosses_a_barrier() {
        let truncate = LearnerAction::TruncateLog {
            after: Zxid::new(Epoch(1), 1),
        };
        let persist = LearnerAction::PersistCurrentEpoch(Epoch(2));
        let got = gather_appends(vec![
            append(&[1]),
            apply(1),
            truncate.clone(),
            append(&[2]),
            persist.clone(),
            send(9),
            append(&[3]),
        ]);
        assert_eq!(
            got,
            vec![
                append(&[1]),
                apply(1),
                truncate,
                append(&[2]),
                persist,
                send(9),
                append(&[3]),
            ]
        );
    }

    #[test]
    fn nothing_to_gather_leaves_the_actions_as_they_are() {
        let actions = vec![send(1), apply(1), LearnerAction::StartServing, apply(2)];
        assert_eq!(gather_appends(actions.clone()), actions);
    }
}
