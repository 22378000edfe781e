//! Discovery: agreeing on the new epoch (reference F.3, ZooKeeper's
//! `Leader.getEpochToPropose` and `Leader.waitForEpochAck`).
//!
//! [`EpochAgreement`] collects the acceptedEpoch of every connecting learner
//! and of the leader itself; once the voters among them (the leader
//! included) form a quorum, the new epoch — one above every accepted epoch
//! seen — is fixed. It then collects ACKEPOCHs until a quorum of voters (the
//! leader included) has acknowledged the epoch. It only decides; the caller
//! persists the epochs, sends the packets and enforces `initLimit`.

use std::collections::BTreeSet;

use zab_wire::{Epoch, QuorumVerifier, ServerId, Zxid};

/// A server's `(currentEpoch, lastZxid)`, ZooKeeper's `StateSummary`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateSummary {
    pub current_epoch: Epoch,
    pub last_zxid: Zxid,
}

impl StateSummary {
    /// Epoch first, then zxid (ZooKeeper's `isMoreRecentThan`).
    pub fn is_more_recent_than(&self, other: &StateSummary) -> bool {
        (self.current_epoch, self.last_zxid) > (other.current_epoch, other.last_zxid)
    }
}

/// Where the epoch proposal stands after a learner (or the leader) reported
/// its acceptedEpoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochDecision {
    /// No quorum of voters yet: the learner waits (no LEADERINFO yet).
    Pending,
    /// This report completed the quorum: the caller must persist
    /// acceptedEpoch = the epoch, then send LEADERINFO to every waiter.
    JustFixed(Epoch),
    /// The epoch was fixed earlier: send LEADERINFO at once.
    Fixed(Epoch),
}

/// Where the epoch acknowledgement stands after an ACKEPOCH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckDecision {
    /// No quorum of epoch acks yet: the learner waits (no sync yet).
    Pending,
    /// This ack completed the quorum: the caller must persist
    /// currentEpoch = the epoch, then sync every waiting learner.
    JustAcked(Epoch),
    /// The quorum was reached earlier: sync this learner at once.
    Acked(Epoch),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// Reference F.3 step 4: a learner whose history is newer than the
    /// leader's must not be synced from it.
    #[error("learner {sid} is ahead of the leader: {learner:?} > {leader:?}")]
    LearnerAhead {
        sid: ServerId,
        learner: StateSummary,
        leader: StateSummary,
    },
    #[error("the epoch is not fixed yet")]
    EpochNotFixed,
}

/// Epoch agreement for one leadership attempt.
#[derive(Clone, Debug)]
pub struct EpochAgreement {
    me: ServerId,
    verifier: QuorumVerifier,
    leader: StateSummary,
    /// max(acceptedEpoch seen) + 1; `None` until the first report.
    proposed: Option<Epoch>,
    connecting: BTreeSet<ServerId>,
    fixed: bool,
    electing: BTreeSet<ServerId>,
    acked: bool,
}

impl EpochAgreement {
    /// `leader` is the leader's own `(currentEpoch, lastProcessedZxid)`,
    /// taken before anything changes (ZooKeeper's `leaderStateSummary`).
    /// The leader still has to report its own acceptedEpoch through
    /// [`EpochAgreement::on_epoch`], as ZooKeeper's `lead()` does.
    pub fn new(me: ServerId, verifier: QuorumVerifier, leader: StateSummary) -> Self {
        EpochAgreement {
            me,
            verifier,
            leader,
            proposed: None,
            connecting: BTreeSet::new(),
            fixed: false,
            electing: BTreeSet::new(),
            acked: false,
        }
    }

    /// The fixed epoch, once agreed.
    pub fn epoch(&self) -> Option<Epoch> {
        self.fixed.then_some(self.proposed).flatten()
    }

    pub fn is_acked(&self) -> bool {
        self.acked
    }

    pub fn leader_summary(&self) -> StateSummary {
        self.leader
    }

    /// A server (learner via FOLLOWERINFO/OBSERVERINFO, or the leader)
    /// reports its acceptedEpoch. Every report raises the proposal, but only
    /// voters count toward the quorum (ZooKeeper's `isParticipant`).
    pub fn on_epoch(&mut self, sid: ServerId, accepted: Epoch) -> EpochDecision {
        if self.fixed {
            return self.fixed_epoch(EpochDecision::Fixed);
        }
        let next = Epoch(accepted.0.saturating_add(1));
        if self.proposed.is_none_or(|p| next > p) {
            self.proposed = Some(next);
        }
        if self.verifier.is_voter(sid) {
            self.connecting.insert(sid);
        }
        if self.connecting.contains(&self.me) && self.verifier.contains_quorum(&self.connecting) {
            self.fixed = true;
            return self.fixed_epoch(EpochDecision::JustFixed);
        }
        EpochDecision::Pending
    }

    fn fixed_epoch(&self, wrap: fn(Epoch) -> EpochDecision) -> EpochDecision {
        match self.proposed {
            Some(e) => wrap(e),
            None => EpochDecision::Pending,
        }
    }

    /// A server acknowledges the epoch. `summary` is `None` for ZooKeeper's
    /// epoch -1 (the learner had already accepted this epoch: it is synced
    /// but does not count). The leader acks itself with its own summary.
    pub fn on_ack_epoch(
        &mut self,
        sid: ServerId,
        summary: Option<StateSummary>,
    ) -> Result<AckDecision, DiscoveryError> {
        let Some(epoch) = self.epoch() else {
            return Err(DiscoveryError::EpochNotFixed);
        };
        // Once the quorum formed, later learners are not checked
        // (ZooKeeper returns from waitForEpochAck immediately); their sync
        // decides what they keep.
        if self.acked {
            return Ok(AckDecision::Acked(epoch));
        }
        if let Some(ss) = summary {
            if sid != self.me && ss.is_more_recent_than(&self.leader) {
                return Err(DiscoveryError::LearnerAhead {
                    sid,
                    learner: ss,
                    leader: self.leader,
                });
            }
            if ss.last_zxid != Zxid(-1) && self.verifier.is_voter(sid) {
                self.electing.insert(sid);
            }
        }
        if self.electing.contains(&self.me) && self.verifier.contains_quorum(&self.electing) {
            self.acked = true;
            return Ok(AckDecision::JustAcked(epoch));
        }
        Ok(AckDecision::Pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qv(voters: &[u64], observers: &[u64]) -> QuorumVerifier {
        QuorumVerifier::new(
            voters.iter().copied().map(ServerId),
            observers.iter().copied().map(ServerId),
        )
    }

    fn summary(epoch: u64, counter: u32) -> StateSummary {
        StateSummary {
            current_epoch: Epoch(epoch),
            last_zxid: Zxid::new(Epoch(epoch), counter),
        }
    }

    #[test]
    fn epoch_is_one_above_every_accepted_epoch_once_a_quorum_with_the_leader_reports() {
        let mut a = EpochAgreement::new(ServerId(1), qv(&[1, 2, 3], &[]), summary(3, 5));
        // A learner alone is no quorum, and the leader has not reported.
        assert_eq!(a.on_epoch(ServerId(2), Epoch(7)), EpochDecision::Pending);
        assert_eq!(a.epoch(), None);
        assert_eq!(
            a.on_epoch(ServerId(1), Epoch(3)),
            EpochDecision::JustFixed(Epoch(8))
        );
        // Late learners get the fixed epoch, even with a higher acceptedEpoch
        // (they will refuse LEADERINFO themselves).
        assert_eq!(
            a.on_epoch(ServerId(3), Epoch(20)),
            EpochDecision::Fixed(Epoch(8))
        );
        assert_eq!(a.epoch(), Some(Epoch(8)));
    }

    #[test]
    fn observers_raise_the_epoch_but_never_make_the_quorum() {
        let mut a = EpochAgreement::new(ServerId(1), qv(&[1, 2, 3], &[9]), summary(1, 0));
        assert_eq!(a.on_epoch(ServerId(1), Epoch(1)), EpochDecision::Pending);
        assert_eq!(a.on_epoch(ServerId(9), Epoch(4)), EpochDecision::Pending);
        assert_eq!(
            a.on_epoch(ServerId(2), Epoch(1)),
            EpochDecision::JustFixed(Epoch(5))
        );
    }

    #[test]
    fn a_single_voter_fixes_the_epoch_alone() {
        let mut a = EpochAgreement::new(ServerId(1), qv(&[1], &[]), summary(0, 0));
        assert_eq!(
            a.on_epoch(ServerId(1), Epoch(0)),
            EpochDecision::JustFixed(Epoch(1))
        );
        assert_eq!(
            a.on_ack_epoch(ServerId(1), Some(summary(0, 0))),
            Ok(AckDecision::JustAcked(Epoch(1)))
        );
    }

    fn fixed_three() -> EpochAgreement {
        let mut a = EpochAgreement::new(ServerId(1), qv(&[1, 2, 3], &[9]), summary(2, 10));
        a.on_epoch(ServerId(1), Epoch(2));
        assert_eq!(
            a.on_epoch(ServerId(2), Epoch(2)),
            EpochDecision::JustFixed(Epoch(3))
        );
        a
    }

    #[test]
    fn ack_before_the_epoch_is_fixed_is_an_error() {
        let mut a = EpochAgreement::new(ServerId(1), qv(&[1, 2, 3], &[]), summary(2, 10));
        assert_eq!(
            a.on_ack_epoch(ServerId(2), Some(summary(2, 1))),
            Err(DiscoveryError::EpochNotFixed)
        );
    }

    #[test]
    fn epoch_acks_from_a_quorum_with_the_leader_finish_discovery() {
        let mut a = fixed_three();
        assert_eq!(
            a.on_ack_epoch(ServerId(2), Some(summary(2, 9))),
            Ok(AckDecision::Pending)
        );
        assert_eq!(
            a.on_ack_epoch(ServerId(1), Some(summary(2, 10))),
            Ok(AckDecision::JustAcked(Epoch(3)))
        );
        assert!(a.is_acked());
        // Later acks are not checked against the leader any more.
        assert_eq!(
            a.on_ack_epoch(ServerId(3), Some(summary(2, 99))),
            Ok(AckDecision::Acked(Epoch(3)))
        );
    }

    #[test]
    fn learner_ahead_of_the_leader_is_rejected() {
        let mut a = fixed_three();
        let err = a
            .on_ack_epoch(ServerId(2), Some(summary(2, 11)))
            .unwrap_err();
        assert!(matches!(
            err,
            DiscoveryError::LearnerAhead {
                sid: ServerId(2),
                ..
            }
        ));
        // A newer currentEpoch wins even with a smaller zxid counter.
        let newer_epoch = StateSummary {
            current_epoch: Epoch(3),
            last_zxid: Zxid::new(Epoch(2), 1),
        };
        assert!(a.on_ack_epoch(ServerId(3), Some(newer_epoch)).is_err());
        // Nothing counted: the leader alone is no quorum.
        assert_eq!(
            a.on_ack_epoch(ServerId(1), Some(summary(2, 10))),
            Ok(AckDecision::Pending)
        );
    }

    #[test]
    fn already_accepted_observer_and_empty_acks_do_not_count() {
        let mut a = fixed_three();
        assert_eq!(
            a.on_ack_epoch(ServerId(1), Some(summary(2, 10))),
            Ok(AckDecision::Pending)
        );
        // epoch -1 (already accepted): synced, not counted.
        assert_eq!(a.on_ack_epoch(ServerId(2), None), Ok(AckDecision::Pending));
        // an observer
        assert_eq!(
            a.on_ack_epoch(ServerId(9), Some(summary(2, 1))),
            Ok(AckDecision::Pending)
        );
        // lastZxid -1
        let no_zxid = StateSummary {
            current_epoch: Epoch(1),
            last_zxid: Zxid(-1),
        };
        assert_eq!(
            a.on_ack_epoch(ServerId(3), Some(no_zxid)),
            Ok(AckDecision::Pending)
        );
        assert_eq!(
            a.on_ack_epoch(ServerId(3), Some(summary(1, 4))),
            Ok(AckDecision::JustAcked(Epoch(3)))
        );
    }
}
