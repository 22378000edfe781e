//! Why a learner stops following its leader.
//!
//! Every variant ends the connection: the caller drops the stream, closes
//! its client connections and goes back to LOOKING (reference F.6), exactly
//! as ZooKeeper's `followLeader` / `observeLeader` do when any exception
//! escapes their packet loop.

use zab_wire::{Epoch, Zxid};

/// A reason to give up on the current leader.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LearnerError {
    /// LEADERINFO proposed an epoch below the one this server already
    /// promised (reference F.3 step 3, F.7: never accept it).
    #[error("leader proposed epoch {proposed}, below our accepted epoch {accepted}")]
    EpochBelowAccepted { proposed: Epoch, accepted: Epoch },

    /// NEWLEADER named another epoch than the LEADERINFO of this connection.
    #[error("NEWLEADER for epoch {got}, but this leader proposed epoch {expected}")]
    NewLeaderEpochMismatch { got: Epoch, expected: Epoch },

    /// A packet that the protocol does not allow at this point (for example
    /// UPTODATE before NEWLEADER, or a PROPOSAL in the middle of a snapshot).
    #[error("unexpected {packet} while {stage}")]
    UnexpectedPacket {
        packet: &'static str,
        stage: &'static str,
    },

    /// A payload that does not decode, or contradicts its packet.
    #[error("malformed {packet} at zxid {zxid}: {detail}")]
    Malformed {
        packet: &'static str,
        zxid: Zxid,
        detail: String,
    },

    /// A proposal or inform at or below one already queued: the log only
    /// takes strictly increasing zxids, so this history cannot be followed.
    #[error("txn {zxid} is not above the last queued txn {last_queued}")]
    TxnNotIncreasing { zxid: Zxid, last_queued: Zxid },

    /// A proposal of the sync skips txns of the same epoch: serving after
    /// it would leave a hole in this learner's history.
    #[error(
        "the sync's proposal {zxid} does not follow the last queued txn (expected {expected})"
    )]
    SyncGap { zxid: Zxid, expected: Zxid },

    /// A COMMIT that names no proposal this learner holds uncommitted
    /// (reference F.5: "a COMMIT must name the head (else the follower exits)").
    #[error("COMMIT {zxid} names no held proposal (oldest uncommitted: {head:?})")]
    UnexpectedCommit { zxid: Zxid, head: Option<Zxid> },

    /// Nothing heard from the leader for longer than the limit (initLimit
    /// ticks before NEWLEADER, syncLimit ticks after; reference F.6).
    #[error("no packet from the leader for {silent_ms} ms (limit {limit_ms} ms)")]
    LeaderSilent { silent_ms: u64, limit_ms: u64 },
}
