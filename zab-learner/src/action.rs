//! What the learner core asks its caller to do, and the small vocabulary
//! (role, phase, sync mode) it reports itself with.

use bytes::Bytes;
use zab_wire::proto::{ForwardedRequest, QuorumPacket, Txn};
use zab_wire::{Epoch, SessionId, Zxid};

use crate::LearnerError;

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
    InstallSnapshot { zxid: Zxid, data: Bytes },
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
    /// UPTODATE: start serving clients.
    StartServing,
    /// Stop following this leader: close the stream and client connections,
    /// go back to LOOKING. Always the last action; the learner is inert after.
    GiveUp { reason: LearnerError },
}
