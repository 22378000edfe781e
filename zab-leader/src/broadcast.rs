//! The broadcast pipeline's bookkeeping (reference F.5, ZooKeeper's
//! `Leader.propose`, `processAck`, `tryToCommit`, `processSync`).
//!
//! [`Proposals`] tracks the proposals in flight, which voters have durably
//! logged each one (the leader's own durable append included), and yields
//! commits strictly in zxid order once a quorum of voters — as the
//! [`QuorumVerifier`] counts them; observers never do — holds a proposal.
//! Committed txns wait in `toBeApplied` until the leader's tree has applied
//! them. Forwarded syncs wait for the last proposal outstanding when they
//! arrived (reference D.8). Zxids are assigned by the caller.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use zab_wire::{QuorumVerifier, ServerId, Zxid};

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BroadcastError {
    /// Proposals must come in zxid order without gaps: failed writes
    /// consume zxids too (reference D.10), so a gap is a caller bug.
    #[error("proposal {got} out of order: expected {expected}")]
    OutOfOrder { expected: Zxid, got: Zxid },
}

/// A proposal the quorum has accepted, in commit order.
#[derive(Clone, Debug, PartialEq)]
pub struct Committed<S> {
    pub zxid: Zxid,
    /// The encoded `proto::Txn` (INFORM's payload for observers).
    pub data: Bytes,
    /// Syncs released by this commit: answer them after the COMMIT.
    pub syncs: Vec<S>,
}

/// Outstanding proposals, acks and in-order commit for one epoch. `S` is
/// whatever the caller needs to answer a pending sync.
#[derive(Clone, Debug)]
pub struct Proposals<S> {
    verifier: QuorumVerifier,
    /// In zxid order without gaps ([`Proposals::propose`] checks), as is
    /// `to_be_applied`: queues, not maps, since both only ever grow at the
    /// back and shrink at the front (issue 4: the maps' node allocations
    /// and the `applied` split were ≈ 4 % of the leader's runtime thread).
    outstanding: VecDeque<(Zxid, Bytes)>,
    /// Per voter, the highest zxid it acked: ACK(z) covers every proposal
    /// `<= z` it received (the shared protocol's cumulative ack).
    acked: BTreeMap<ServerId, Zxid>,
    to_be_applied: VecDeque<(Zxid, Bytes)>,
    last_proposed: Zxid,
    last_committed: Zxid,
    pending_syncs: BTreeMap<Zxid, Vec<S>>,
}

impl<S> Proposals<S> {
    /// A pipeline starting after `start`: `epoch << 32` for a freshly
    /// established leader (nothing proposed or committed in the epoch yet).
    pub fn new(verifier: QuorumVerifier, start: Zxid) -> Self {
        Proposals {
            verifier,
            outstanding: VecDeque::new(),
            acked: BTreeMap::new(),
            to_be_applied: VecDeque::new(),
            last_proposed: start,
            last_committed: start,
            pending_syncs: BTreeMap::new(),
        }
    }

    pub fn last_proposed(&self) -> Zxid {
        self.last_proposed
    }

    pub fn last_committed(&self) -> Zxid {
        self.last_committed
    }

    pub fn outstanding_len(&self) -> usize {
        self.outstanding.len()
    }

    /// How many proposals have syncs waiting on their commit (ZooKeeper's
    /// `pendingSyncs.size()`, keyed by zxid as this is).
    pub fn pending_syncs(&self) -> usize {
        self.pending_syncs.len()
    }

    /// Records a proposal (ZooKeeper's `outstandingProposals.put`).
    pub fn propose(&mut self, zxid: Zxid, data: Bytes) -> Result<(), BroadcastError> {
        let expected = self.last_proposed.next();
        if zxid != expected {
            return Err(BroadcastError::OutOfOrder {
                expected,
                got: zxid,
            });
        }
        self.outstanding.push_back((zxid, data));
        self.last_proposed = zxid;
        Ok(())
    }

    /// `from` has durably logged every proposal `<= zxid` it received
    /// (a follower's ACK, or the leader's own durable append). Returns the
    /// proposals that are now committed, in zxid order.
    pub fn ack(&mut self, from: ServerId, zxid: Zxid) -> Vec<Committed<S>> {
        // Counter 0 is the NEWLEADER / UPTODATE ack, handled by discovery
        // (ZooKeeper's processAck ignores it here).
        if zxid.is_epoch_start() || !self.verifier.is_voter(from) {
            return Vec::new();
        }
        if zxid > self.last_proposed {
            tracing::warn!(%from, %zxid, last_proposed = %self.last_proposed, "ack for a future proposal ignored");
            return Vec::new();
        }
        if zxid <= self.last_committed && self.outstanding.is_empty() {
            return Vec::new();
        }
        let mark = self.acked.entry(from).or_insert(zxid);
        if *mark < zxid {
            *mark = zxid;
        }
        self.commit_ready()
    }

    /// Drops what `from` acked: used when its connection ends, so that a
    /// learner which is then truncated and re-synced must ack again before
    /// it counts (ZooKeeper keeps such stale acks; dropping them only ever
    /// delays a commit).
    pub fn forget(&mut self, from: ServerId) {
        self.acked.remove(&from);
    }

    /// Commits the head while a quorum of voters holds it: strictly in zxid
    /// order, since a voter holding z holds everything before it.
    fn commit_ready(&mut self) -> Vec<Committed<S>> {
        let mut done = Vec::new();
        while let Some(&(zxid, _)) = self.outstanding.front() {
            let holders = self
                .acked
                .iter()
                .filter(|(_, mark)| **mark >= zxid)
                .map(|(sid, _)| sid);
            if !self.verifier.contains_quorum(holders) {
                break;
            }
            let Some((_, data)) = self.outstanding.pop_front() else {
                break;
            };
            self.last_committed = zxid;
            self.to_be_applied.push_back((zxid, data.clone()));
            let mut syncs = Vec::new();
            // A sync waits on the last proposal outstanding when it came
            // (reference D.8); keys are proposals, so `<= zxid` is exact.
            while let Some(entry) = self.pending_syncs.first_entry() {
                if *entry.key() > zxid {
                    break;
                }
                syncs.extend(entry.remove());
            }
            done.push(Committed { zxid, data, syncs });
        }
        done
    }

    /// A forwarded sync reached the leader's pipeline (ZooKeeper's
    /// `processSync`): answer now (`Some`) when nothing is outstanding, or
    /// once the last outstanding proposal commits.
    pub fn sync(&mut self, request: S) -> Option<S> {
        if self.outstanding.is_empty() {
            return Some(request);
        }
        self.pending_syncs
            .entry(self.last_proposed)
            .or_default()
            .push(request);
        None
    }

    /// The leader's tree applied every committed txn `<= zxid`: they leave
    /// `toBeApplied`. Yields them in order, for the committed log.
    pub fn applied(&mut self, zxid: Zxid) -> impl Iterator<Item = (Zxid, Bytes)> + '_ {
        let n = self.to_be_applied.partition_point(|(z, _)| *z <= zxid);
        self.to_be_applied.drain(..n)
    }

    /// Committed but not yet applied, above `zxid` (startForwarding).
    pub fn to_be_applied_above(&self, zxid: Zxid) -> impl Iterator<Item = (Zxid, &Bytes)> + '_ {
        above(&self.to_be_applied, zxid)
    }

    /// Outstanding above `zxid` (startForwarding, voters only).
    pub fn outstanding_above(&self, zxid: Zxid) -> impl Iterator<Item = (Zxid, &Bytes)> + '_ {
        above(&self.outstanding, zxid)
    }
}

/// The entries of a zxid-ordered queue above `zxid`.
fn above(queue: &VecDeque<(Zxid, Bytes)>, zxid: Zxid) -> impl Iterator<Item = (Zxid, &Bytes)> {
    let from = queue.partition_point(|(z, _)| *z <= zxid);
    queue.range(from..).map(|(z, d)| (*z, d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zab_wire::Epoch;

    const E: Epoch = Epoch(2);

    fn z(c: u32) -> Zxid {
        Zxid::new(E, c)
    }

    fn pipeline() -> Proposals<&'static str> {
        // voters 1 (leader), 2, 3; observer 9.
        let qv = QuorumVerifier::new([1, 2, 3].map(ServerId), [ServerId(9)]);
        Proposals::new(qv, z(0))
    }

    fn zxids<S>(c: &[Committed<S>]) -> Vec<Zxid> {
        c.iter().map(|c| c.zxid).collect()
    }

    #[test]
    fn proposals_must_follow_each_other() {
        let mut p = pipeline();
        assert_eq!(
            p.propose(z(2), Bytes::new()),
            Err(BroadcastError::OutOfOrder {
                expected: z(1),
                got: z(2)
            })
        );
        p.propose(z(1), Bytes::new()).unwrap();
        assert!(p.propose(z(1), Bytes::new()).is_err());
        assert_eq!(p.last_proposed(), z(1));
    }

    #[test]
    fn a_quorum_of_voters_commits_and_a_minority_never_does() {
        let mut p = pipeline();
        p.propose(z(1), Bytes::from_static(b"a")).unwrap();
        assert!(p.ack(ServerId(2), z(1)).is_empty(), "one voter of three");
        assert!(p.ack(ServerId(9), z(1)).is_empty(), "observers never count");
        let c = p.ack(ServerId(1), z(1));
        assert_eq!(zxids(&c), vec![z(1)]);
        assert_eq!(c[0].data, Bytes::from_static(b"a"));
        assert_eq!(p.last_committed(), z(1));
        assert!(p.ack(ServerId(3), z(1)).is_empty(), "already committed");
    }

    #[test]
    fn commits_are_strictly_in_zxid_order_and_acks_are_cumulative() {
        let mut p = pipeline();
        for c in 1..=3 {
            p.propose(z(c), Bytes::new()).unwrap();
        }
        // The leader's log is durable up to 3; follower 2 acks 3 only (a
        // batch ack): 1, 2 and 3 all commit, in order.
        assert!(p.ack(ServerId(1), z(3)).is_empty());
        assert_eq!(zxids(&p.ack(ServerId(2), z(3))), vec![z(1), z(2), z(3)]);
    }

    #[test]
    fn a_minority_holding_many_proposals_commits_nothing() {
        let mut p = pipeline();
        for c in 1..=5 {
            p.propose(z(c), Bytes::new()).unwrap();
        }
        // Only the leader is durable, followers silent (or only observers).
        assert!(p.ack(ServerId(1), z(5)).is_empty());
        assert!(p.ack(ServerId(9), z(5)).is_empty());
        assert_eq!(p.outstanding_len(), 5);
        assert_eq!(p.last_committed(), z(0));
        // A voter that holds only the first two commits exactly those.
        assert_eq!(zxids(&p.ack(ServerId(3), z(2))), vec![z(1), z(2)]);
        assert_eq!(p.outstanding_len(), 3);
    }

    #[test]
    fn acks_for_the_future_or_the_epoch_marker_are_ignored() {
        let mut p = pipeline();
        p.propose(z(1), Bytes::new()).unwrap();
        assert!(p.ack(ServerId(2), z(5)).is_empty());
        assert!(
            p.ack(ServerId(1), z(1)).is_empty(),
            "the future ack was not recorded"
        );
        assert!(p.ack(ServerId(2), z(0)).is_empty());
        assert_eq!(zxids(&p.ack(ServerId(3), z(1))), vec![z(1)]);
    }

    #[test]
    fn forgotten_acks_must_be_given_again() {
        let mut p = pipeline();
        p.propose(z(1), Bytes::new()).unwrap();
        assert!(p.ack(ServerId(2), z(1)).is_empty());
        p.forget(ServerId(2));
        assert!(p.ack(ServerId(1), z(1)).is_empty());
        assert_eq!(zxids(&p.ack(ServerId(2), z(1))), vec![z(1)]);
    }

    #[test]
    fn syncs_wait_for_the_last_outstanding_proposal() {
        let mut p = pipeline();
        assert_eq!(
            p.sync("idle"),
            Some("idle"),
            "nothing outstanding: answer now"
        );
        p.propose(z(1), Bytes::new()).unwrap();
        p.propose(z(2), Bytes::new()).unwrap();
        assert_eq!(p.sync("s1"), None);
        p.propose(z(3), Bytes::new()).unwrap();
        assert_eq!(p.sync("s2"), None);
        assert_eq!(p.pending_syncs(), 2, "mntr's zk_pending_syncs");
        p.ack(ServerId(1), z(3));
        let c = p.ack(ServerId(2), z(1));
        assert_eq!(zxids(&c), vec![z(1)]);
        assert!(c[0].syncs.is_empty());
        let c = p.ack(ServerId(2), z(3));
        assert_eq!(zxids(&c), vec![z(2), z(3)]);
        assert_eq!(c[0].syncs, vec!["s1"]);
        assert_eq!(c[1].syncs, vec!["s2"]);
        assert_eq!(p.pending_syncs(), 0);
    }

    #[test]
    fn committed_txns_wait_in_to_be_applied_until_applied() {
        let mut p = pipeline();
        for c in 1..=3 {
            p.propose(z(c), Bytes::from(vec![c as u8])).unwrap();
        }
        p.ack(ServerId(1), z(3));
        p.ack(ServerId(2), z(2));
        let above: Vec<Zxid> = p.to_be_applied_above(z(1)).map(|(z, _)| z).collect();
        assert_eq!(above, vec![z(2)]);
        let out: Vec<Zxid> = p.outstanding_above(z(0)).map(|(z, _)| z).collect();
        assert_eq!(out, vec![z(3)]);
        let applied: Vec<_> = p.applied(z(1)).collect();
        assert_eq!(applied, vec![(z(1), Bytes::from(vec![1u8]))]);
        assert_eq!(p.to_be_applied_above(z(0)).count(), 1);
        // Left unread, they are gone all the same.
        drop(p.applied(z(2)));
        assert_eq!(p.applied(z(2)).count(), 0);
        assert_eq!(p.to_be_applied_above(z(0)).count(), 0);
    }
}
