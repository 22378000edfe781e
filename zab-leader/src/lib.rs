//! The ZAB leader.
//!
//! This crate owns everything a server does as the master of learners — while
//! LEADING (reference F.3–F.9), and as a follower hosting observers —
//! as deterministic cores with no I/O, async or clocks:
//!
//! * [`discovery`]: epoch agreement — a new epoch above every accepted one,
//!   fixed by a quorum of voters, then acknowledged by a quorum (ACKEPOCH);
//! * [`sync_mode`]: per-learner sync selection exactly as ZooKeeper's
//!   `LearnerHandler.syncFollower` — DIFF from the committed-log window or
//!   the txn log, TRUNC, or SNAP;
//! * [`learner_handler`]: one connection's state machine, its sync packets
//!   (including `startForwarding`), in-flight window and liveness;
//! * [`broadcast`]: outstanding proposals, ack counting by a
//!   [`zab_wire::QuorumVerifier`], commits strictly in zxid order,
//!   toBeApplied and pending syncs;
//! * [`leader`]: the aggregate [`Leader`] the server drives with inputs and
//!   whose [`LeaderAction`]s it executes;
//! * [`observer_master`]: a follower hosting observers (`observerMasterPort`):
//!   the same handlers and sync selection, fed with what the follower has
//!   applied, relaying its observers' requests to the leader;
//! * [`snap_stream`]: the SNAP payload as SNAP_CHUNK/SNAP_END packets.
//!
//! It does no I/O: the leader's on-disk txn log reaches it through the
//! [`TxnLogView`] trait (zab-server implements it over zab-store).
//!
//! It holds no learner logic: the other side of every packet is
//! zab-learner's (a follower runs zab-learner toward its leader, and may
//! run an [`ObserverMaster`] toward its observers).

pub mod broadcast;
pub mod discovery;
pub mod leader;
pub mod learner_handler;
pub mod observer_master;
pub mod snap_stream;
pub mod sync_mode;

pub use broadcast::{BroadcastError, Committed, Proposals};
pub use discovery::{AckDecision, DiscoveryError, EpochAgreement, EpochDecision, StateSummary};
pub use leader::{
    Leader, LeaderAction, LeaderConfig, LeaderError, LeaderStart, LearnerStatus, PendingSync, Phase,
};
pub use learner_handler::{
    ConnId, HandlerState, LearnerHandler, LearnerKind, Limits, Outbound, ProtocolError,
};
pub use observer_master::{ObserverMaster, ObserverMasterAction};
pub use snap_stream::{SnapChunks, SNAP_CHUNK_SIZE};
pub use sync_mode::{select, select_with, CommittedLog, NoTxnLog, SyncPlan, TxnLogView};
/// The vocabulary this crate's API speaks (`Zxid`, the jute records, the
/// quorum packets), so a user needs no version of its own to match.
pub use zab_wire;
