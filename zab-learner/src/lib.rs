//! ZAB followers and observers, as a pure core.
//!
//! This crate owns the learner side of the leader ⇄ learner protocol
//! (reference F.3–F.9, seeds 000 and 001): register with a leader
//! (FOLLOWERINFO / OBSERVERINFO → LEADERINFO → ACKEPOCH), sync (DIFF, TRUNC
//! or SNAP, the txns that follow, NEWLEADER, UPTODATE), then process the
//! broadcast (PROPOSAL → durable log → ACK, COMMIT → apply, INFORM for
//! observers, PING with session touches, SYNC and REVALIDATE answers) and
//! forward client writes to the leader. It holds no leader logic.
//!
//! [`Learner`] does no I/O and reads no clock: the caller feeds it packets,
//! log durability reports and the time, and executes the
//! [`LearnerAction`]s it returns, in order (send a packet, persist an epoch,
//! truncate or append the log, install a snapshot, apply committed txns,
//! start serving, give up and go back to LOOKING).
//!
//! ```
//! use zab_learner::{Learner, LearnerAction, LearnerConfig, Phase, Role};
//! use zab_wire::{Epoch, ServerId, Zxid};
//!
//! let config = LearnerConfig::new(ServerId(2), Role::Follower);
//! let (learner, actions) = Learner::new(config, Epoch(1), Epoch(1), Zxid::new(Epoch(1), 5), 0);
//! assert_eq!(learner.phase(), Phase::Registering);
//! assert!(matches!(&actions[..], [LearnerAction::Send(_)])); // FOLLOWERINFO
//! ```

mod action;
mod error;
mod learner;
mod packet;
mod proposals;
mod relay;
mod snapshot_chunks;

pub use action::{LearnerAction, Phase, Role, SyncMode};
pub use error::LearnerError;
pub use learner::{Learner, LearnerConfig, Timing};
pub use snapshot_chunks::SnapshotChunks;
/// The vocabulary this crate's API speaks (`Zxid`, the jute records, the
/// quorum packets), so a user needs no version of its own to match.
pub use zab_wire;
